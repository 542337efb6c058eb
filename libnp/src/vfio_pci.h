/* SPDX-License-Identifier: MIT */
/*
 * The PCI side of the vfio backend (vfio_pci.c), for vfio.c: the cards on
 * the bus, a device spec's addresses, and the sysfs checks that say why a
 * card cannot be opened.
 */
#ifndef NP_VFIO_PCI_H
#define NP_VFIO_PCI_H

struct np_ctx;

#define SYSFS_PCI "/sys/bus/pci/devices"
#define BDF_LEN 16 /* "0000:03:00.0" + NUL */

/* Every np card on the bus (at most NP_MAX_CARDS), in bus scan order. */
int npi_vfio_find_cards(struct np_ctx *ctx, char (*bdf)[BDF_LEN],
			unsigned int *n);
/* Card bdf exists, is bound to vfio-pci or np_vfio_pci and has an IOMMU
 * group (*group); otherwise says what to do. */
int npi_vfio_check_binding(struct np_ctx *ctx, const char *bdf, int *group);
/* -EBUSY (logged) if a device of IOMMU group num is bound to a driver
 * that makes the group not viable for VFIO. */
int npi_vfio_group_viable(struct np_ctx *ctx, const char *bdf, int num);

#endif /* NP_VFIO_PCI_H */
