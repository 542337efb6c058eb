// SPDX-License-Identifier: MIT
/*
 * The PCI side of the vfio backend: which np cards are on the bus, and
 * the sysfs checks (driver binding, IOMMU group) that turn a VFIO errno
 * into a sentence. A "vfio:" spec's addresses are read by np_spec_parse().
 *
 * Card discovery uses libpci in the shared library. The static library
 * (linked into fully static binaries) scans sysfs itself, because Debian's
 * libpci-dev ships no static archive; libpci reads the same sysfs files.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef NP_HAVE_LIBPCI
#include <pci/pci.h>
#include <setjmp.h>
#endif

#include "internal.h"
#include "vfio_pci.h"

static const char *const allowed_drivers[] = {
	"vfio-pci",
	"np_vfio_pci",
	"pci-stub",
	"pcieport",
};

/* Basename of the symlink bdf/attr, or "" if absent. */
static void sysfs_link(const char *bdf, const char *attr, char *buf, size_t len)
{
	char path[PATH_MAX], target[PATH_MAX];
	ssize_t n;
	char *b;

	snprintf(path, sizeof(path), SYSFS_PCI "/%s/%s", bdf, attr);
	n = readlink(path, target, sizeof(target) - 1);
	buf[0] = 0;
	if (n < 0)
		return;
	target[n] = 0;
	b = strrchr(target, '/');
	b = b ? b + 1 : target;
	n = (ssize_t)strlen(b);
	if ((size_t)n >= len)
		n = (ssize_t)len - 1;
	memcpy(buf, b, (size_t)n);
	buf[n] = 0;
}

static bool driver_allowed(const char *drv)
{
	unsigned int i;

	if (!*drv)
		return true;
	for (i = 0; i < sizeof(allowed_drivers) / sizeof(allowed_drivers[0]);
	     i++)
		if (!strcmp(drv, allowed_drivers[i]))
			return true;
	return false;
}

#ifdef NP_HAVE_LIBPCI
static jmp_buf pci_jmp;

static void __attribute__((noreturn)) pci_fatal(char *msg, ...)
{
	longjmp(pci_jmp, 1);
}

static void pci_quiet(char *msg, ...)
{
}

/* Every np card on the bus, by libpci. */
int npi_vfio_find_cards(struct np_ctx *ctx, char (*bdf)[BDF_LEN],
			unsigned int *n)
{
	struct pci_access *pa = pci_alloc();
	struct pci_dev *d;

	*n = 0;
	if (!pa)
		return -ENOMEM;
	pa->error = pci_fatal;
	pa->warning = pci_quiet;
	pa->debug = pci_quiet;
	if (setjmp(pci_jmp)) {
		npi_log(ctx, LOG_ERR,
			"np: libpci cannot read the PCI bus (is /sys "
			"mounted?)");
		return -ENODEV;
	}
	pci_init(pa);
	pci_scan_bus(pa);
	for (d = pa->devices; d && *n < NP_MAX_CARDS; d = d->next) {
		pci_fill_info(d, PCI_FILL_IDENT);
		if (d->vendor_id != NP_PCI_VENDOR_ID ||
		    d->device_id != NP_PCI_DEVICE_ID)
			continue;
		snprintf(bdf[(*n)++], BDF_LEN, "%04x:%02x:%02x.%d",
			 d->domain & 0xffff, d->bus, d->dev, d->func);
	}
	pci_cleanup(pa);
	return 0;
}
#else
static int sysfs_read(const char *bdf, const char *attr, char *buf, size_t len)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), SYSFS_PCI "/%s/%s", bdf, attr);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

static bool is_np_card(const char *bdf)
{
	char v[16], d[16];

	return !sysfs_read(bdf, "vendor", v, sizeof(v)) &&
	       !sysfs_read(bdf, "device", d, sizeof(d)) &&
	       strtoul(v, NULL, 16) == NP_PCI_VENDOR_ID &&
	       strtoul(d, NULL, 16) == NP_PCI_DEVICE_ID;
}

/* Every np card on the bus, from sysfs (what libpci reads too). */
int npi_vfio_find_cards(struct np_ctx *ctx, char (*bdf)[BDF_LEN],
			unsigned int *n)
{
	DIR *dir = opendir(SYSFS_PCI);
	struct dirent *de;

	*n = 0;
	if (!dir) {
		npi_log(ctx, LOG_ERR, "np: cannot read " SYSFS_PCI ": %s",
			strerror(errno));
		return -ENODEV;
	}
	while ((de = readdir(dir)) && *n < NP_MAX_CARDS)
		if (strlen(de->d_name) < BDF_LEN && is_np_card(de->d_name))
			memcpy(bdf[(*n)++], de->d_name, BDF_LEN);
	closedir(dir);
	return 0;
}
#endif

int npi_vfio_group_viable(struct np_ctx *ctx, const char *bdf, int num)
{
	char path[PATH_MAX], drv[64];
	struct dirent *de;
	DIR *dir;

	snprintf(path, sizeof(path), "/sys/kernel/iommu_groups/%d/devices",
		 num);
	dir = opendir(path);
	if (!dir)
		return 0; /* VFIO_GROUP_GET_STATUS decides */
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		sysfs_link(de->d_name, "driver", drv, sizeof(drv));
		if (!driver_allowed(drv)) {
			npi_log(ctx, LOG_ERR,
				"np: card %s: IOMMU group %d is not viable: "
				"%s is bound to %s; bind it to vfio-pci or "
				"np_vfio_pci (echo %s > " SYSFS_PCI
				"/%s/driver/unbind)",
				bdf, num, de->d_name, drv, de->d_name,
				de->d_name);
			closedir(dir);
			return -EBUSY;
		}
	}
	closedir(dir);
	return 0;
}

/* Sysfs checks that turn a VFIO errno into a sentence. */
int npi_vfio_check_binding(struct np_ctx *ctx, const char *bdf, int *group)
{
	char drv[64], grp[32];
	struct stat sb;
	char path[PATH_MAX];

	snprintf(path, sizeof(path), SYSFS_PCI "/%s", bdf);
	if (stat(path, &sb)) {
		npi_log(ctx, LOG_ERR,
			"np: card %s: no such PCI device (see lspci -d "
			"%04x:%04x)",
			bdf, NP_PCI_VENDOR_ID, NP_PCI_DEVICE_ID);
		return -ENOENT;
	}
	sysfs_link(bdf, "driver", drv, sizeof(drv));
	if (strcmp(drv, "vfio-pci") && strcmp(drv, "np_vfio_pci")) {
		npi_log(ctx, LOG_ERR,
			"np: card %s: %s%s; bind it with `echo np_vfio_pci "
			"> " SYSFS_PCI "/%s/driver_override; echo %s > "
			"/sys/bus/pci/drivers_probe`%s",
			bdf, *drv ? "bound to " : "bound to no driver", drv,
			bdf, bdf, *drv ? " after unbinding it" : "");
		return -EBUSY;
	}
	sysfs_link(bdf, "iommu_group", grp, sizeof(grp));
	if (!*grp) {
		npi_log(ctx, LOG_ERR,
			"np: card %s: no IOMMU group; enable the IOMMU "
			"(intel_iommu=on or amd_iommu=on on the kernel "
			"command line)",
			bdf);
		return -ENODEV;
	}
	*group = atoi(grp);
	return 0;
}
