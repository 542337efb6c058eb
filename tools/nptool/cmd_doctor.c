// SPDX-License-Identifier: MIT
/*
 * doctor: is this host set up to run np cards through VFIO?
 *
 * Each check reads sysfs, /dev and /proc (under $NP_SYSFS_ROOT) and never
 * opens a card, so it is safe while a model runs. For each problem it
 * prints the exact command that fixes it.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nptool.h"
#include "sysfs.h"

/* Pinned host memory one card needs for its rings and nptool's and the
 * runtime's staging buffers (libnp pins every DMA buffer). */
#define NEED_MEMLOCK_PER_CARD (64ull << 20)
#define HUGEPAGES_DIR "/sys/kernel/mm/hugepages/hugepages-2048kB"

static bool path_exists(const char *fmt_path)
{
	char p[PATH_MAX];

	return !access(npt_path(p, sizeof(p), "%s", fmt_path), F_OK);
}

static unsigned int count_entries(const char *dir_path)
{
	char p[PATH_MAX];
	struct dirent *e;
	size_t n = 0;
	DIR *d;

	d = opendir(npt_path(p, sizeof(p), "%s", dir_path));
	if (!d)
		return 0;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return (unsigned int)n;
}

static const char *iommu_param(void)
{
	char p[PATH_MAX], line[256];
	const char *param = "intel_iommu=on";
	FILE *f = fopen(npt_path(p, sizeof(p), "/proc/cpuinfo"), "re");

	if (!f)
		return param;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "vendor_id", 9)) {
			if (strstr(line, "AuthenticAMD"))
				param = "amd_iommu=on";
			break;
		}
	}
	fclose(f);
	return param;
}

static void check_iommu(struct npt_checks *ck)
{
	unsigned int groups = count_entries("/sys/kernel/iommu_groups");
	char fix[256];

	if (groups) {
		npt_check(
			ck, NPT_PASS, "iommu", NULL,
			"IOMMU enabled: %u groups in /sys/kernel/iommu_groups",
			groups);
		return;
	}
	snprintf(fix, sizeof(fix),
		 "sudo sed -i 's/^GRUB_CMDLINE_LINUX=\"/&%s iommu=pt /' "
		 "/etc/default/grub && sudo update-grub && sudo reboot",
		 iommu_param());
	npt_check(ck, NPT_FAIL, "iommu", fix,
		  "IOMMU disabled: /sys/kernel/iommu_groups is empty; VFIO "
		  "needs %s on the kernel command line (and VT-d/AMD-Vi on "
		  "in the firmware setup)",
		  iommu_param());
}

static void check_modules(struct npt_checks *ck)
{
	if (path_exists("/sys/module/vfio_iommu_type1"))
		npt_check(ck, NPT_PASS, "vfio", NULL,
			  "vfio and vfio_iommu_type1 loaded");
	else
		npt_check(ck, NPT_FAIL, "vfio",
			  "sudo modprobe vfio_iommu_type1",
			  "module vfio_iommu_type1 is not loaded");
	if (path_exists("/sys/module/" NPT_DRIVER))
		npt_check(ck, NPT_PASS, "driver-loaded", NULL, "%s loaded",
			  NPT_DRIVER);
	else
		npt_check(ck, NPT_FAIL, "driver-loaded",
			  "sudo modprobe " NPT_DRIVER,
			  "module %s is not loaded: no telemetry for "
			  "'nptool status' while cards are in use",
			  NPT_DRIVER);
}

static bool vfio_driver(const char *drv)
{
	return !strcmp(drv, NPT_DRIVER) || !strcmp(drv, "vfio-pci");
}

/* The command that binds bdf to drv (unbinding it first if needed). */
static void bind_cmd(char *buf, size_t len, const char *bdf, const char *cur,
		     const char *drv)
{
	char unbind[128] = "";

	if (cur[0])
		snprintf(unbind, sizeof(unbind),
			 "echo %s | sudo tee /sys/bus/pci/devices/%s/driver/"
			 "unbind && ",
			 bdf, bdf);
	snprintf(buf, len,
		 "%secho %s | sudo tee /sys/bus/pci/devices/%s/driver_override"
		 " && echo %s | sudo tee /sys/bus/pci/drivers_probe",
		 unbind, drv, bdf, bdf);
}

static void check_bound(struct npt_checks *ck, const struct npt_pci *c)
{
	char fix[512];

	if (!strcmp(c->driver, NPT_DRIVER)) {
		npt_check(ck, NPT_PASS, "driver-bound", NULL, "%s: bound to %s",
			  c->bdf, NPT_DRIVER);
		return;
	}
	bind_cmd(fix, sizeof(fix), c->bdf, c->driver, NPT_DRIVER);
	if (!strcmp(c->driver, "vfio-pci"))
		npt_check(ck, NPT_WARN, "driver-bound", fix,
			  "%s: bound to vfio-pci, which works but has no "
			  "hwmon/sysfs telemetry; bind it to %s",
			  c->bdf, NPT_DRIVER);
	else if (c->driver[0])
		npt_check(ck, NPT_FAIL, "driver-bound", fix,
			  "%s: bound to %s; bind it to %s", c->bdf, c->driver,
			  NPT_DRIVER);
	else
		npt_check(ck, NPT_FAIL, "driver-bound", fix,
			  "%s: no driver bound; bind it to %s", c->bdf,
			  NPT_DRIVER);
}

/* Drivers the kernel's VFIO accepts next to a VFIO device in a group. */
static bool group_ok_driver(const char *drv)
{
	return !drv[0] || vfio_driver(drv) || !strcmp(drv, "pci-stub") ||
	       !strcmp(drv, "pcieport");
}

static void check_group(struct npt_checks *ck, const struct npt_pci *c)
{
	char(*members)[NPT_BDF_LEN];
	char fix[512];
	size_t n;
	bool ok = true;

	if (c->iommu_group < 0) {
		npt_check(ck, NPT_FAIL, "iommu-group",
			  "see the 'iommu' check above",
			  "%s: no IOMMU group (IOMMU off)", c->bdf);
		return;
	}
	if (npt_group_members(c->iommu_group, &members, &n)) {
		npt_check(ck, NPT_FAIL, "iommu-group", NULL,
			  "%s: cannot read /sys/kernel/iommu_groups/%d/devices",
			  c->bdf, c->iommu_group);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct npt_pci m;

		if (npt_pci_read(members[i], &m) || group_ok_driver(m.driver))
			continue;
		bind_cmd(fix, sizeof(fix), m.bdf, m.driver, "vfio-pci");
		npt_check(ck, NPT_FAIL, "iommu-group", fix,
			  "%s: IOMMU group %d is not viable: %s is bound to "
			  "%s; bind it to vfio-pci or %s",
			  c->bdf, c->iommu_group, m.bdf, m.driver, NPT_DRIVER);
		ok = false;
	}
	if (ok)
		npt_check(ck, NPT_PASS, "iommu-group", NULL,
			  "%s: IOMMU group %d viable (%zu device%s)", c->bdf,
			  c->iommu_group, n, n == 1 ? "" : "s");
	free(members);
}

static void check_node(struct npt_checks *ck, const char *node,
		       const char *missing_fix)
{
	char p[PATH_MAX], fix[256];

	if (access(npt_path(p, sizeof(p), "%s", node), F_OK)) {
		npt_check(ck, NPT_FAIL, "dev-vfio", missing_fix,
			  "%s does not exist", node);
		return;
	}
	if (access(p, R_OK | W_OK)) {
		snprintf(fix, sizeof(fix), "sudo chown \"$(id -un)\" %s", node);
		npt_check(ck, NPT_FAIL, "dev-vfio", fix,
			  "%s is not readable and writable by uid %u", node,
			  (unsigned int)geteuid());
		return;
	}
	npt_check(ck, NPT_PASS, "dev-vfio", NULL, "%s accessible", node);
}

static bool has_cap_ipc_lock(void)
{
	struct __user_cap_header_struct h = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return false;
	return d[CAP_TO_INDEX(CAP_IPC_LOCK)].effective &
	       CAP_TO_MASK(CAP_IPC_LOCK);
}

static void check_memlock(struct npt_checks *ck, size_t ncards)
{
	unsigned long long need = NEED_MEMLOCK_PER_CARD * (ncards ? ncards : 1);
	const char *fix = "echo \"$(id -un) - memlock unlimited\" | sudo tee "
			  "/etc/security/limits.d/90-np.conf (then log in "
			  "again)";
	struct rlimit rl;

	if (has_cap_ipc_lock()) {
		npt_check(ck, NPT_PASS, "memlock", NULL,
			  "CAP_IPC_LOCK held: pinned memory is not limited");
		return;
	}
	if (getrlimit(RLIMIT_MEMLOCK, &rl)) {
		npt_check(ck, NPT_FAIL, "memlock", NULL,
			  "getrlimit(RLIMIT_MEMLOCK): %s", strerror(errno));
		return;
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
		npt_check(ck, NPT_PASS, "memlock", NULL,
			  "RLIMIT_MEMLOCK %s is enough for %zu card%s",
			  rl.rlim_cur == RLIM_INFINITY ? "unlimited" : "",
			  ncards, ncards == 1 ? "" : "s");
	else
		npt_check(ck, NPT_FAIL, "memlock", fix,
			  "RLIMIT_MEMLOCK is %llu KiB; %zu card%s need at "
			  "least %llu KiB of pinned memory",
			  (unsigned long long)rl.rlim_cur >> 10, ncards,
			  ncards == 1 ? "" : "s", need >> 10);
}

static void check_hugepages(struct npt_checks *ck, size_t ncards)
{
	char p[PATH_MAX], fix[256];
	long long total = 0, avail = 0;
	long long want = 32 * (long long)(ncards ? ncards : 1);

	if (npt_read_ll(npt_path(p, sizeof(p), HUGEPAGES_DIR "/nr_hugepages"),
			&total)) {
		npt_check(ck, NPT_WARN, "hugepages", NULL,
			  "kernel without 2 MiB huge pages: DMA buffers use "
			  "4 KiB pages (more IOMMU mappings)");
		return;
	}
	npt_read_ll(npt_path(p, sizeof(p), HUGEPAGES_DIR "/free_hugepages"),
		    &avail);
	snprintf(fix, sizeof(fix),
		 "echo %lld | sudo tee " HUGEPAGES_DIR "/nr_hugepages",
		 total > want ? total + want : want);
	if (avail >= want)
		npt_check(ck, NPT_PASS, "hugepages", NULL,
			  "%lld of %lld 2 MiB huge pages free", avail, total);
	else
		npt_check(
			ck, NPT_WARN, "hugepages", fix,
			"%lld of %lld 2 MiB huge pages free, %lld wanted "
			"for %zu card%s: DMA buffers fall back to 4 KiB pages",
			avail, total, want, ncards, ncards == 1 ? "" : "s");
}

int npt_cmd_doctor(struct npt *t, int argc, char **argv)
{
	struct npt_checks ck;
	struct npt_pci *cards;
	size_t n;
	int rc;

	if (argc > 1)
		return npt_usage(t, "doctor: unexpected argument '%s'",
				 argv[1]);
	rc = npt_pci_cards(&cards, &n);
	if (rc) {
		npt_err(t, "cannot scan PCI devices: %s", strerror(-rc));
		return NPT_EXIT_DEVERR;
	}
	npt_checks_begin(t, &ck);
	check_iommu(&ck);
	check_modules(&ck);
	if (n)
		npt_check(&ck, NPT_PASS, "cards", NULL, "%zu np card%s found",
			  n, n == 1 ? "" : "s");
	else
		npt_check(&ck, NPT_FAIL, "cards", "lspci -nn -d 1234:4e50",
			  "no np card (1234:4e50) on the PCI bus");
	for (size_t i = 0; i < n; i++) {
		char node[64], fix[512];

		check_bound(&ck, &cards[i]);
		check_group(&ck, &cards[i]);
		if (cards[i].iommu_group < 0 || !vfio_driver(cards[i].driver))
			continue;
		snprintf(node, sizeof(node), "/dev/vfio/%d",
			 cards[i].iommu_group);
		bind_cmd(fix, sizeof(fix), cards[i].bdf, cards[i].driver,
			 NPT_DRIVER);
		check_node(&ck, node, fix);
	}
	check_node(&ck, "/dev/vfio/vfio", "sudo modprobe vfio");
	check_memlock(&ck, n);
	check_hugepages(&ck, n);
	free(cards);
	return npt_checks_end(&ck);
}
