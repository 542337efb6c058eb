/* SPDX-License-Identifier: MIT */
/*
 * PCI-level view of the host through sysfs, /dev and /proc: what list,
 * status (on real cards), doctor and cdi read without opening a card.
 *
 * Every path is prefixed by $NP_SYSFS_ROOT when it is set, so tests run
 * these commands against a fake tree built in a temporary directory.
 */
#ifndef NPTOOL_SYSFS_H
#define NPTOOL_SYSFS_H

#include <stdbool.h>
#include <stddef.h>

/* The np kernel driver (driver/), a vfio_pci_core variant. */
#define NPT_DRIVER "np_vfio_pci"
#define NPT_BDF_LEN 16

struct npt_pci {
	char bdf[NPT_BDF_LEN]; /* 0000:03:00.0 */
	unsigned int vendor, device, subsys_vendor, subsys_device;
	unsigned int revision, class_code;
	char driver[64]; /* "" when no driver is bound */
	int iommu_group; /* -1 when the device has none */
	int numa_node; /* -1 when unknown */
	char link_speed[32]; /* current_link_speed, "" if unknown */
	int link_width; /* current_link_width, -1 if unknown */
	char max_link_speed[32];
	int max_link_width;
};

/* $NP_SYSFS_ROOT + the formatted path. Returns buf. */
const char *npt_path(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* First line of a file without the newline. 0 or -errno. */
int npt_read_line(const char *path, char *buf, size_t len);
/* A number in a file (decimal, or 0x hex). 0 or -errno. */
int npt_read_ll(const char *path, long long *v);

/* Read one PCI function. 0, or -ENOENT if it does not exist. */
int npt_pci_read(const char *bdf, struct npt_pci *d);
/* All np cards (vendor/device of np_abi.h), sorted by BDF. The caller
 * frees *out. 0 or -errno. */
int npt_pci_cards(struct npt_pci **out, size_t *n);
/* Functions in IOMMU group g, sorted. The caller frees *out. */
int npt_group_members(int group, char (**out)[NPT_BDF_LEN], size_t *n);

/* PCIe generation of a link speed ("8.0 GT/s PCIe" -> 3), -1 if unknown */
int npt_speed_to_gen(const char *s);

/* An attribute of the np driver's "np" group on the card ("fw_version"). */
int npt_card_attr(const char *bdf, const char *attr, char *buf, size_t len);
/* A hwmon attribute of the card ("temp1_input"). 0 or -errno. */
int npt_card_hwmon(const char *bdf, const char *attr, long long *v);

/* A process that holds a card's VFIO file open. */
struct npt_holder {
	int pid;
	char comm[32]; /* /proc/<pid>/comm */
};
#define NPT_MAX_HOLDERS 4

/*
 * The processes (at most max, by PID) with an open descriptor of the
 * card's VFIO group /dev/vfio/<group> (group < 0: none) or of its VFIO
 * device cdev /dev/vfio/devices/vfioN, from the /proc/<pid>/fd links.
 * Processes whose descriptors this user may not read are not seen.
 * Returns how many it found, or -errno when /proc cannot be read.
 */
int npt_card_holders(const char *bdf, int group, struct npt_holder *h,
		     size_t max);

struct npt;

/*
 * The np cards of t->spec (vfio:all, vfio:BDF[,BDF...]; BDF may omit the
 * domain; libnp's np_spec_parse() reads it) as sysfs shows them, in the
 * spec's order (vfio:all: by BDF). The caller frees *out. Returns 0, or
 * an exit code after printing why: usage for a spec libnp refuses or one
 * that names no PCI cards (emu:N), no device when none matches.
 */
int npt_sysfs_cards(struct npt *t, struct npt_pci **out, size_t *n);

#endif /* NPTOOL_SYSFS_H */
