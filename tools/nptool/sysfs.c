// SPDX-License-Identifier: MIT
/* PCI-level view of the host; see sysfs.h. */
#include "sysfs.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <np/np.h>

#include "np_abi.h"
#include "nptool.h"

const char *npt_path(char *buf, size_t len, const char *fmt, ...)
{
	const char *root = getenv("NP_SYSFS_ROOT");
	size_t n;
	va_list ap;

	if (!root)
		root = "";
	n = (size_t)snprintf(buf, len, "%s", root);
	if (n >= len)
		n = len - 1;
	va_start(ap, fmt);
	vsnprintf(buf + n, len - n, fmt, ap);
	va_end(ap);
	return buf;
}

int npt_read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	int rc = 0;

	if (!f)
		return -errno;
	errno = 0;
	if (!fgets(buf, (int)len, f))
		rc = !ferror(f) ? -ENODATA : errno ? -errno : -EIO;
	else
		buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
	return rc;
}

int npt_read_ll(const char *path, long long *v)
{
	char buf[64], *end;
	int rc = npt_read_line(path, buf, sizeof(buf));

	if (rc)
		return rc;
	errno = 0;
	*v = strtoll(buf, &end, 0);
	if (errno || end == buf)
		return -EINVAL;
	return 0;
}

static int dev_ll(const char *bdf, const char *attr, long long *v)
{
	char p[PATH_MAX];

	return npt_read_ll(
		npt_path(p, sizeof(p), "/sys/bus/pci/devices/%s/%s", bdf, attr),
		v);
}

static unsigned int dev_uint(const char *bdf, const char *attr)
{
	long long v = 0;

	dev_ll(bdf, attr, &v);
	return (unsigned int)v;
}

/* basename of the symlink /sys/bus/pci/devices/<bdf>/<link>, or "" */
static void dev_link(const char *bdf, const char *link, char *buf, size_t len)
{
	char p[PATH_MAX], target[PATH_MAX];
	ssize_t n;
	char *base;

	buf[0] = '\0';
	n = readlink(
		npt_path(p, sizeof(p), "/sys/bus/pci/devices/%s/%s", bdf, link),
		target, sizeof(target) - 1);
	if (n < 0)
		return;
	target[n] = '\0';
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	if (strlen(base) < len)
		memcpy(buf, base, strlen(base) + 1);
}

int npt_pci_read(const char *bdf, struct npt_pci *d)
{
	char p[PATH_MAX], group[32];
	long long v;

	memset(d, 0, sizeof(*d));
	if (access(npt_path(p, sizeof(p), "/sys/bus/pci/devices/%s", bdf),
		   F_OK))
		return -ENOENT;
	snprintf(d->bdf, sizeof(d->bdf), "%s", bdf);
	d->vendor = dev_uint(bdf, "vendor");
	d->device = dev_uint(bdf, "device");
	d->subsys_vendor = dev_uint(bdf, "subsystem_vendor");
	d->subsys_device = dev_uint(bdf, "subsystem_device");
	d->revision = dev_uint(bdf, "revision");
	d->class_code = dev_uint(bdf, "class");
	dev_link(bdf, "driver", d->driver, sizeof(d->driver));
	dev_link(bdf, "iommu_group", group, sizeof(group));
	d->iommu_group = group[0] ? atoi(group) : -1;
	d->numa_node = dev_ll(bdf, "numa_node", &v) ? -1 : (int)v;
	npt_read_line(npt_path(p, sizeof(p),
			       "/sys/bus/pci/devices/%s/current_link_speed",
			       bdf),
		      d->link_speed, sizeof(d->link_speed));
	npt_read_line(npt_path(p, sizeof(p),
			       "/sys/bus/pci/devices/%s/max_link_speed", bdf),
		      d->max_link_speed, sizeof(d->max_link_speed));
	d->link_width = dev_ll(bdf, "current_link_width", &v) ? -1 : (int)v;
	d->max_link_width = dev_ll(bdf, "max_link_width", &v) ? -1 : (int)v;
	return 0;
}

static int cmp_bdf(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Names in a directory that do not start with '.', sorted. */
static int list_dir(const char *path, char (**out)[NPT_BDF_LEN], size_t *n)
{
	char(*names)[NPT_BDF_LEN] = NULL;
	size_t cnt = 0;
	struct dirent *e;
	DIR *dir = opendir(path);

	*out = NULL;
	*n = 0;
	if (!dir)
		return -errno;
	while ((e = readdir(dir))) {
		char(*grown)[NPT_BDF_LEN];

		if (e->d_name[0] == '.' || strlen(e->d_name) >= NPT_BDF_LEN)
			continue;
		grown = realloc(names, (cnt + 1) * sizeof(*names));
		if (!grown) {
			free(names);
			closedir(dir);
			return -ENOMEM;
		}
		names = grown;
		memcpy(names[cnt++], e->d_name, strlen(e->d_name) + 1);
	}
	closedir(dir);
	if (cnt)
		qsort(names, cnt, sizeof(*names), cmp_bdf);
	*out = names;
	*n = cnt;
	return 0;
}

int npt_pci_cards(struct npt_pci **out, size_t *n)
{
	char p[PATH_MAX];
	char(*names)[NPT_BDF_LEN];
	struct npt_pci *cards;
	size_t cnt, k = 0;
	int rc;

	*out = NULL;
	*n = 0;
	rc = list_dir(npt_path(p, sizeof(p), "/sys/bus/pci/devices"), &names,
		      &cnt);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	cards = calloc(cnt ? cnt : 1, sizeof(*cards));
	if (!cards) {
		free(names);
		return -ENOMEM;
	}
	for (size_t i = 0; i < cnt; i++) {
		if (npt_pci_read(names[i], &cards[k]))
			continue;
		if (cards[k].vendor == NP_PCI_VENDOR_ID &&
		    cards[k].device == NP_PCI_DEVICE_ID)
			k++;
	}
	free(names);
	*out = cards;
	*n = k;
	return 0;
}

int npt_group_members(int group, char (**out)[NPT_BDF_LEN], size_t *n)
{
	char p[PATH_MAX];

	return list_dir(npt_path(p, sizeof(p),
				 "/sys/kernel/iommu_groups/%d/devices", group),
			out, n);
}

/* "/dev/vfio/devices/vfioN" of the card's VFIO cdev, if it has one. */
static void vfio_cdev(const char *bdf, char *buf, size_t len)
{
	char p[PATH_MAX];
	struct dirent *e;
	DIR *dir;

	buf[0] = '\0';
	dir = opendir(npt_path(p, sizeof(p), "/sys/bus/pci/devices/%s/vfio-dev",
			       bdf));
	if (!dir)
		return;
	while ((e = readdir(dir)))
		if (!strncmp(e->d_name, "vfio", 4) &&
		    snprintf(buf, len, "/dev/vfio/devices/%s", e->d_name) >=
			    (int)len)
			buf[0] = '\0';
	closedir(dir);
}

/* Whether process pid has a descriptor linked to path a or b. */
static bool holds(const char *pid, const char *a, const char *b)
{
	char p[PATH_MAX], fd[PATH_MAX], target[PATH_MAX];
	bool found = false;
	struct dirent *e;
	DIR *dir = opendir(npt_path(p, sizeof(p), "/proc/%s/fd", pid));

	if (!dir)
		return false;
	while (!found && (e = readdir(dir))) {
		ssize_t n;

		if (e->d_name[0] == '.' ||
		    snprintf(fd, sizeof(fd), "%s/%s", p, e->d_name) >=
			    (int)sizeof(fd))
			continue;
		n = readlink(fd, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		found = (a[0] && !strcmp(target, a)) ||
			(b[0] && !strcmp(target, b));
	}
	closedir(dir);
	return found;
}

static int cmp_holder(const void *a, const void *b)
{
	const struct npt_holder *x = a, *y = b;

	return (x->pid > y->pid) - (x->pid < y->pid);
}

int npt_card_holders(const char *bdf, int group, struct npt_holder *h,
		     size_t max)
{
	char p[PATH_MAX], grp[32] = "", cdev[64];
	size_t n = 0;
	struct dirent *e;
	DIR *dir;

	if (group >= 0)
		snprintf(grp, sizeof(grp), "/dev/vfio/%d", group);
	vfio_cdev(bdf, cdev, sizeof(cdev));
	if (!grp[0] && !cdev[0])
		return 0;
	dir = opendir(npt_path(p, sizeof(p), "/proc"));
	if (!dir)
		return -errno;
	while (n < max && (e = readdir(dir))) {
		char comm[PATH_MAX];

		if (e->d_name[strspn(e->d_name, "0123456789")] != '\0' ||
		    !holds(e->d_name, grp, cdev))
			continue;
		h[n].pid = atoi(e->d_name);
		if (npt_read_line(npt_path(comm, sizeof(comm), "/proc/%s/comm",
					   e->d_name),
				  h[n].comm, sizeof(h[n].comm)))
			h[n].comm[0] = '\0';
		n++;
	}
	closedir(dir);
	qsort(h, n, sizeof(*h), cmp_holder);
	return (int)n;
}

int npt_card_attr(const char *bdf, const char *attr, char *buf, size_t len)
{
	char p[PATH_MAX];

	return npt_read_line(npt_path(p, sizeof(p),
				      "/sys/bus/pci/devices/%s/np/%s", bdf,
				      attr),
			     buf, len);
}

int npt_card_hwmon(const char *bdf, const char *attr, long long *v)
{
	char p[PATH_MAX];
	struct dirent *e;
	DIR *dir;
	int rc = -ENOENT;

	dir = opendir(
		npt_path(p, sizeof(p), "/sys/bus/pci/devices/%s/hwmon", bdf));
	if (!dir)
		return -errno;
	while ((e = readdir(dir))) {
		if (strncmp(e->d_name, "hwmon", 5))
			continue;
		rc = npt_read_ll(npt_path(p, sizeof(p),
					  "/sys/bus/pci/devices/%s/hwmon/%s/%s",
					  bdf, e->d_name, attr),
				 v);
		break;
	}
	closedir(dir);
	return rc;
}

/* 0 when spec does not select bdf, else its rank: 1 for vfio:all, the
 * 1-based position in a list. */
static int spec_rank(const struct np_spec *spec, const char *bdf)
{
	if (spec->kind == NP_SPEC_VFIO_ALL)
		return 1;
	for (unsigned int i = 0; i < spec->count; i++)
		if (!strcmp(spec->bdf[i], bdf))
			return (int)i + 1;
	return 0;
}

struct ranked {
	struct npt_pci pci;
	int rank;
};

static int cmp_ranked(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;

	if (x->rank != y->rank)
		return x->rank - y->rank;
	return strcmp(x->pci.bdf, y->pci.bdf);
}

int npt_sysfs_cards(struct npt *t, struct npt_pci **out, size_t *n)
{
	struct npt_pci *all;
	struct ranked *r;
	size_t n_all, k = 0;
	char p[PATH_MAX], why[512];
	struct np_spec spec;
	int rc;

	*out = NULL;
	*n = 0;
	if (np_spec_parse(t->spec, &spec, why, sizeof(why)))
		return npt_usage(t, "%s: %s", t->cmd, why);
	if (spec.kind == NP_SPEC_EMU)
		return npt_usage(t,
				 "%s: device spec '%s' is not vfio:all "
				 "or vfio:BDF[,BDF...]",
				 t->cmd, t->spec);
	rc = npt_pci_cards(&all, &n_all);
	if (rc) {
		npt_err(t, "cannot scan %s: %s",
			npt_path(p, sizeof(p), "/sys/bus/pci/devices"),
			strerror(-rc));
		return NPT_EXIT_DEVERR;
	}
	r = calloc(n_all ? n_all : 1, sizeof(*r));
	if (!r) {
		free(all);
		return NPT_EXIT_DEVERR;
	}
	for (size_t i = 0; i < n_all; i++) {
		rc = spec_rank(&spec, all[i].bdf);
		if (!rc)
			continue;
		r[k].pci = all[i];
		r[k++].rank = rc;
	}
	if (!k) {
		npt_err(t,
			"no np card (%04x:%04x) matches '%s' under %s; "
			"'nptool doctor' checks the host",
			NP_PCI_VENDOR_ID, NP_PCI_DEVICE_ID, t->spec,
			npt_path(p, sizeof(p), "/sys/bus/pci/devices"));
		free(r);
		free(all);
		return NPT_EXIT_NODEV;
	}
	qsort(r, k, sizeof(*r), cmp_ranked);
	for (size_t i = 0; i < k; i++)
		all[i] = r[i].pci;
	free(r);
	*out = all;
	*n = k;
	return NPT_EXIT_OK;
}

/* "8.0 GT/s PCIe" -> 3 */
int npt_speed_to_gen(const char *s)
{
	static const struct {
		double gts;
		int gen;
	} g[] = {{2.5, 1}, {5, 2}, {8, 3}, {16, 4}, {32, 5}, {64, 6}};
	double v = strtod(s, NULL);

	for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++)
		if (v == g[i].gts)
			return g[i].gen;
	return -1;
}
