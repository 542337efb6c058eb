// SPDX-License-Identifier: MIT
/*
 * list, status, doctor and cdi on real-card hosts, simulated by a fake
 * sysfs, /dev and /proc tree in a temporary directory (NP_SYSFS_ROOT):
 *
 *   0000:03:00.0  np card, np_vfio_pci, IOMMU group 12, telemetry
 *   0000:04:00.0  np card, vfio-pci, group 13, link x4, no telemetry
 *   0000:04:00.1  an NVMe drive bound to nvme, also in group 13
 *   0000:00:1f.0  some other device, group 14
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/capability.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

static char root[256];

static void mkparents(const char *path)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s", path);
	for (char *s = p + strlen(root) + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		ck_assert(!mkdir(p, 0755) || errno == EEXIST);
		*s = '/';
	}
}

static void put(const char *rel, const char *content)
{
	char p[PATH_MAX];
	FILE *f;

	ck_assert_int_lt(snprintf(p, sizeof(p), "%s%s", root, rel),
			 (int)sizeof(p));
	mkparents(p);
	f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fputs(content, f);
	ck_assert_int_eq(fclose(f), 0);
}

static void link_to(const char *rel, const char *target)
{
	char p[PATH_MAX];

	ck_assert_int_lt(snprintf(p, sizeof(p), "%s%s", root, rel),
			 (int)sizeof(p));
	mkparents(p);
	unlink(p);
	ck_assert_int_eq(symlink(target, p), 0);
}

static void rm(const char *rel)
{
	char p[PATH_MAX];

	ck_assert_int_lt(snprintf(p, sizeof(p), "%s%s", root, rel),
			 (int)sizeof(p));
	ck_assert_int_eq(unlink(p), 0);
}

static void pci(const char *bdf, const char *vendor, const char *device,
		const char *driver, int group, const char *width)
{
	char p[PATH_MAX], t[64];
	static const char *const attrs[][2] = {
		{"subsystem_vendor", "0x1af4\n"},
		{"subsystem_device", "0x1100\n"},
		{"revision", "0x01\n"},
		{"class", "0x120000\n"},
		{"numa_node", "0\n"},
		{"current_link_speed", "8.0 GT/s PCIe\n"},
		{"max_link_speed", "8.0 GT/s PCIe\n"},
		{"max_link_width", "8\n"},
	};

#define DEV(attr) \
	(snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/%s", bdf, attr), p)
	put(DEV("vendor"), vendor);
	put(DEV("device"), device);
	put(DEV("current_link_width"), width);
	for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++)
		put(DEV(attrs[i][0]), attrs[i][1]);
	snprintf(t, sizeof(t), "../../../bus/pci/drivers/%s", driver);
	link_to(DEV("driver"), t);
	snprintf(t, sizeof(t), "../../../kernel/iommu_groups/%d", group);
	link_to(DEV("iommu_group"), t);
	snprintf(p, sizeof(p), "/sys/kernel/iommu_groups/%d/devices/%s", group,
		 bdf);
	put(p, "");
#undef DEV
}

static void telemetry(const char *bdf)
{
	static const char *const np[][2] = {
		{"fw_version", "1.2.3\n"},
		{"serial", "00000000000000aa\n"},
		{"card_state", "ready\n"},
		{"core_clock_mhz", "1000\n"},
		{"uptime_ms", "5000\n"},
		{"busy_percent", "42\n"},
		{"dma_bytes", "123456\n"},
		{"dma_errors", "0\n"},
		{"sram_ce", "1\n"},
		{"sram_ue", "0\n"},
		{"throttle_count", "0\n"},
		/* a model another process loaded: 60 MiB of weights, 8 MiB
		 * of KV cache, 1 MiB of programs, 3 MiB of frames */
		{"sram_weight_bytes", "62914560\n"},
		{"sram_kv_bytes", "8388608\n"},
		{"sram_prog_bytes", "1048576\n"},
		{"fb_used_bytes", "3145728\n"},
	};
	static const char *const hw[][2] = {
		{"temp1_input", "45000\n"}, {"temp1_max", "85000\n"},
		{"temp1_crit", "95000\n"},  {"power1_input", "25000000\n"},
		{"in0_input", "850\n"},
	};
	char p[PATH_MAX];

	for (size_t i = 0; i < sizeof(np) / sizeof(np[0]); i++) {
		snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/np/%s", bdf,
			 np[i][0]);
		put(p, np[i][1]);
	}
	for (size_t i = 0; i < sizeof(hw) / sizeof(hw[0]); i++) {
		snprintf(p, sizeof(p),
			 "/sys/bus/pci/devices/%s/hwmon/hwmon3/%s", bdf,
			 hw[i][0]);
		put(p, hw[i][1]);
	}
}

static void tree_setup(void)
{
	snprintf(root, sizeof(root), "%s/npt-sysfs-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(root));
	setenv("NP_SYSFS_ROOT", root, 1);
	setenv("NP_DEVICES", "vfio:all", 1);
	tst_pre_exec = NULL;
	pci("0000:03:00.0", "0x1234\n", "0x4e50\n", "np_vfio_pci", 12, "8\n");
	telemetry("0000:03:00.0");
	pci("0000:04:00.0", "0x1234\n", "0x4e50\n", "vfio-pci", 13, "4\n");
	pci("0000:04:00.1", "0x144d\n", "0xa808\n", "nvme", 13, "4\n");
	pci("0000:00:1f.0", "0x8086\n", "0x7a06\n", "lpc_ich", 14, "1\n");
	put("/sys/module/vfio_iommu_type1/refcnt", "1\n");
	put("/sys/module/np_vfio_pci/refcnt", "1\n");
	put("/dev/vfio/vfio", "");
	put("/dev/vfio/12", "");
	put("/dev/vfio/13", "");
	put("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "1024\n");
	put("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages",
	    "1024\n");
	put("/proc/cpuinfo", "processor\t: 0\nvendor_id\t: GenuineIntel\n");
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	return remove(path);
}

static void tree_teardown(void)
{
	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The check called name whose detail mentions what (NULL: any). */
static struct tst_jv *find_check(struct tst_jv *e, const char *name,
				 const char *what)
{
	struct tst_jv *checks = tst_jv_get(e, "checks");

	for (size_t i = 0; checks && i < checks->n; i++) {
		struct tst_jv *c = tst_jv_at(checks, i);

		if (!strcmp(tst_jv_str(c, "name"), name) &&
		    (!what || strstr(tst_jv_str(c, "detail"), what)))
			return c;
	}
	ck_abort_msg("no check %s about %s", name, what ? what : "anything");
	return NULL;
}

START_TEST(test_list)
{
	struct tst_run r;
	struct tst_jv *cards, *a, *b;

	tst_run(&r, "--json", "list", NULL);
	tst_envelope(&r, "list", 0);
	cards = tst_jv_get(r.json, "cards");
	ck_assert_uint_eq(cards->n, 2);
	a = tst_jv_at(cards, 0);
	b = tst_jv_at(cards, 1);
	ck_assert_str_eq(tst_jv_str(a, "bdf"), "0000:03:00.0");
	ck_assert_str_eq(tst_jv_str(a, "fw_version"), "1.2.3");
	ck_assert_str_eq(tst_jv_str(a, "serial"), "00000000000000aa");
	ck_assert_str_eq(tst_jv_str(a, "driver"), "np_vfio_pci");
	ck_assert_str_eq(tst_jv_str(a, "state"), "ready");
	ck_assert_double_eq(tst_jv_num(a, "iommu_group"), 12);
	ck_assert_double_eq(tst_jv_num(a, "numa_node"), 0);
	ck_assert_double_eq(tst_jv_num(tst_jv_get(a, "link"), "gen"), 3);
	ck_assert_double_eq(tst_jv_num(tst_jv_get(a, "link"), "width"), 8);
	ck_assert_str_eq(tst_jv_str(tst_jv_get(a, "ids"), "subsystem_vendor"),
			 "0x1af4");
	ck_assert_str_eq(tst_jv_str(b, "driver"), "vfio-pci");
	ck_assert_str_eq(tst_jv_str(b, "state"), "no-telemetry");
	ck_assert_int_eq(tst_jv_get(b, "fw_version")->type, TST_JV_NULL);
	ck_assert_double_eq(tst_jv_num(tst_jv_get(b, "link"), "width"), 4);
	ck_assert_double_eq(tst_jv_num(tst_jv_get(b, "link"), "max_width"), 8);
	tst_run_free(&r);

	tst_run(&r, "list", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_uint_eq(tst_lines(r.out), 3);
	ck_assert_ptr_nonnull(strstr(r.out, "Gen3 x4"));
	ck_assert_ptr_nonnull(strstr(r.out, "np_vfio_pci"));
	tst_run_free(&r);
}
END_TEST

/* The holders of a card: processes with a /proc/<pid>/fd link to its
 * VFIO group or to its VFIO device cdev; others are not holders. */
START_TEST(test_holders)
{
	struct tst_run r;
	struct tst_jv *h;

	put("/proc/4242/comm", "llama-server\n");
	link_to("/proc/4242/fd/3", "/dev/null");
	link_to("/proc/4242/fd/7", "/dev/vfio/12");
	link_to("/proc/4242/fd/8", "/dev/vfio/vfio");
	put("/proc/77/comm", "bash\n");
	link_to("/proc/77/fd/0", "/dev/pts/0");
	link_to("/proc/77/fd/1", "/dev/vfio/120");
	put("/sys/bus/pci/devices/0000:04:00.0/vfio-dev/vfio3/dev", "511:3\n");
	put("/proc/99/comm", "trainer\n");
	link_to("/proc/99/fd/9", "/dev/vfio/devices/vfio3");
	/* a name CSV must quote; holders are sorted by PID */
	put("/proc/5/comm", "we,ird\"x\n");
	link_to("/proc/5/fd/4", "/dev/vfio/13");

	tst_run(&r, "list", "--query", "name,holder,holder_pid", "--format",
		"csv", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.out,
			 "name,holder,holder_pid\n"
			 "0000:03:00.0,llama-server[4242],4242\n"
			 "0000:04:00.0,\"we,ird\"\"x[5] trainer[99]\",5\n");
	tst_run_free(&r);

	tst_run(&r, "list", NULL);
	ck_assert_ptr_nonnull(strstr(r.out, "HOLDER"));
	ck_assert_ptr_nonnull(strstr(r.out, "llama-server[4242]"));
	tst_run_free(&r);

	tst_run(&r, "--json", "list", NULL);
	h = tst_jv_get(
		tst_jv_at(tst_jv_get(tst_envelope(&r, "list", 0), "cards"), 0),
		"holders");
	ck_assert_uint_eq(h->n, 1);
	ck_assert_double_eq(tst_jv_num(tst_jv_at(h, 0), "pid"), 4242);
	ck_assert_str_eq(tst_jv_str(tst_jv_at(h, 0), "name"), "llama-server");
	tst_run_free(&r);

	tst_run(&r, "--json", "-d", "vfio:03:00.0", "status", "-i", "0.01",
		NULL);
	h = tst_jv_get(
		tst_jv_at(tst_jv_get(tst_envelope(&r, "status", 0), "cards"),
			  0),
		"holders");
	ck_assert_uint_eq(h->n, 1);
	ck_assert_str_eq(tst_jv_str(tst_jv_at(h, 0), "name"), "llama-server");
	tst_run_free(&r);

	/* the holder gone: nobody holds the card */
	rm("/proc/4242/fd/7");
	tst_run(&r, "-d", "vfio:03:00.0", "list", "--query", "holder",
		"--format", "json", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_eq(
		tst_jv_get(tst_jv_at(tst_jv_get(r.json, "cards"), 0), "holder")
			->type,
		TST_JV_NULL);
	tst_run_free(&r);
}
END_TEST

/* A card on a root bus has no link registers: the PCI core shows no
 * link, the driver's np/link the card's own. */
START_TEST(test_list_driver_link)
{
	struct tst_run r;
	struct tst_jv *link;

	put("/sys/bus/pci/devices/0000:03:00.0/current_link_speed",
	    "Unknown\n");
	put("/sys/bus/pci/devices/0000:03:00.0/current_link_width", "0\n");
	tst_run(&r, "--json", "list", NULL);
	link = tst_jv_get(
		tst_jv_at(tst_jv_get(tst_envelope(&r, "list", 0), "cards"), 0),
		"link");
	ck_assert_int_eq(tst_jv_get(link, "gen")->type, TST_JV_NULL);
	tst_run_free(&r);

	put("/sys/bus/pci/devices/0000:03:00.0/np/link", "Gen4 x16\n");
	tst_run(&r, "--json", "list", NULL);
	link = tst_jv_get(
		tst_jv_at(tst_jv_get(tst_envelope(&r, "list", 0), "cards"), 0),
		"link");
	ck_assert_double_eq(tst_jv_num(link, "gen"), 4);
	ck_assert_double_eq(tst_jv_num(link, "width"), 16);
	tst_run_free(&r);
	tst_run(&r, "list", NULL);
	ck_assert_ptr_nonnull(strstr(r.out, "Gen4 x16"));
	tst_run_free(&r);
}
END_TEST

/* Serves the lines of a FIFO one per open: what a sysfs attribute that
 * changes between two reads shows. */
struct fifo_lines {
	char path[PATH_MAX];
	const char *line[2];
	int served;
};

static void *fifo_serve(void *arg)
{
	struct fifo_lines *f = arg;

	for (int i = 0; i < 2; i++) {
		int fd = -1;

		/* no reader yet: ENXIO; give nptool 60 s to open it */
		for (int tries = 0; fd < 0 && tries < 60000; tries++) {
			fd = open(f->path, O_WRONLY | O_NONBLOCK);
			if (fd < 0)
				usleep(1000);
		}
		if (fd < 0)
			break;
		if (write(fd, f->line[i], strlen(f->line[i])) > 0)
			f->served++;
		/* the next open must meet the next reader, not this one */
		poll(&(struct pollfd){.fd = fd}, 1, 60000);
		close(fd);
	}
	return NULL;
}

/* pipeline on a card another process holds: hops and credit stalls are
 * the differences of the driver's dma1_stat over the interval */
START_TEST(test_pipeline_driver_stats)
{
	struct fifo_lines f = {
		.line = {"3 5000 7 9000 100 2000000 30000\n",
			 "5 65000 9 9100 150 3500000 31000\n"},
	};
	struct tst_run r;
	pthread_t th;
	struct tst_jv *c;

	snprintf(f.path, sizeof(f.path),
		 "%s/sys/bus/pci/devices/0000:03:00.0/np/dma1_stat", root);
	ck_assert_int_eq(mkfifo(f.path, 0644), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, fifo_serve, &f), 0);
	tst_run(&r, "-d", "vfio:0000:03:00.0", "--json", "pipeline", "-i",
		"0.2", NULL);
	pthread_join(th, NULL);
	ck_assert_int_eq(f.served, 2);
	c = tst_jv_at(tst_jv_get(tst_envelope(&r, "pipeline", 0), "cards"), 0);
	ck_assert_str_eq(tst_jv_str(r.json, "source"), "sysfs");
	ck_assert_double_eq(tst_jv_num(c, "hops"), 50);
	ck_assert_double_eq(tst_jv_num(c, "hop_latency_us"), 30);
	ck_assert_double_eq(tst_jv_num(c, "credit_stalls"), 2);
	ck_assert_double_eq(tst_jv_num(c, "credit_stall_us"), 60);
	/* the running maximum is the model process's, not the interval's */
	ck_assert_int_eq(tst_jv_get(c, "hop_latency_max_us")->type,
			 TST_JV_NULL);
	tst_run_free(&r);
}
END_TEST

START_TEST(test_list_spec)
{
	struct tst_run r;

	/* short BDF, as lspci prints it */
	tst_run(&r, "--json", "-d", "vfio:04:00.0", "list", NULL);
	tst_envelope(&r, "list", 0);
	ck_assert_uint_eq(tst_jv_get(r.json, "cards")->n, 1);
	tst_run_free(&r);

	/* cards come in the order the spec lists them, as in libnp */
	tst_run(&r, "--json", "-d", "vfio:0000:04:00.0,03:00.0", "list", NULL);
	tst_envelope(&r, "list", 0);
	ck_assert_str_eq(
		tst_jv_str(tst_jv_at(tst_jv_get(r.json, "cards"), 0), "bdf"),
		"0000:04:00.0");
	ck_assert_str_eq(
		tst_jv_str(tst_jv_at(tst_jv_get(r.json, "cards"), 1), "bdf"),
		"0000:03:00.0");
	tst_run_free(&r);

	/* addresses compare as numbers, as libnp reads them */
	tst_run(&r, "--json", "-d", "vfio:4:0.0", "list", NULL);
	tst_envelope(&r, "list", 0);
	ck_assert_str_eq(
		tst_jv_str(tst_jv_at(tst_jv_get(r.json, "cards"), 0), "bdf"),
		"0000:04:00.0");
	tst_run_free(&r);

	/* emulated cards have no PCI view */
	tst_run(&r, "-d", "emu:2", "cdi", NULL);
	ck_assert_int_eq(r.status, 2);
	tst_run_free(&r);

	/* a spec libnp refuses: usage, with libnp's sentence */
	tst_run(&r, "-d", "vfio:", "list", NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "list: device spec \"vfio:\" "
					    "names no card"));
	tst_run_free(&r);
	tst_run(&r, "-d", "bogus", "status", NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "is not understood"));
	tst_run_free(&r);

	tst_run(&r, "-d", "vfio:0000:09:00.0", "list", NULL);
	ck_assert_int_eq(r.status, 3);
	ck_assert_ptr_nonnull(strstr(r.err, "nptool doctor"));
	tst_run_free(&r);
}
END_TEST

START_TEST(test_list_no_cards)
{
	struct tst_run r;

	setenv("NP_SYSFS_ROOT", "/nonexistent-npt-root", 1);
	tst_run(&r, "--json", "list", NULL);
	tst_envelope(&r, "list", 3);
	ck_assert_uint_eq(tst_jv_get(r.json, "cards")->n, 0);
	tst_run_free(&r);
}
END_TEST

START_TEST(test_status)
{
	struct tst_run r;
	struct tst_jv *c;

	tst_run(&r, "--json", "-d", "vfio:0000:03:00.0", "status", "-i", "0.01",
		NULL);
	tst_envelope(&r, "status", 0);
	ck_assert_str_eq(tst_jv_str(r.json, "source"), "sysfs");
	c = tst_jv_at(tst_jv_get(r.json, "cards"), 0);
	ck_assert_str_eq(tst_jv_str(c, "state"), "ready");
	ck_assert_double_eq(tst_jv_num(c, "temp_mc"), 45000);
	ck_assert_double_eq(tst_jv_num(c, "temp_crit_mc"), 95000);
	/* hwmon's microwatts, reported in milliwatts */
	ck_assert_double_eq(tst_jv_num(c, "power_mw"), 25000);
	ck_assert_double_eq(tst_jv_num(c, "voltage_mv"), 850);
	ck_assert_double_eq(tst_jv_num(c, "core_clock_mhz"), 1000);
	ck_assert_double_eq(tst_jv_num(c, "busy_percent"), 42);
	ck_assert_double_eq(tst_jv_num(c, "sram_ce"), 1);
	ck_assert_double_eq(tst_jv_num(c, "dma_bytes"), 123456);
	ck_assert_double_eq(tst_jv_num(c, "dma_bytes_per_s"), 0);
	/* what the model of the process holding the card takes */
	ck_assert_double_eq(tst_jv_num(c, "sram_weight_bytes"), 62914560);
	ck_assert_double_eq(tst_jv_num(c, "sram_kv_bytes"), 8388608);
	ck_assert_double_eq(tst_jv_num(c, "sram_prog_bytes"), 1048576);
	ck_assert_double_eq(tst_jv_num(c, "sram_used_bytes"), 72351744);
	ck_assert_double_eq(tst_jv_num(c, "fb_used_bytes"), 3145728);
	tst_run_free(&r);

	tst_run(&r, "-d", "vfio:0000:03:00.0", "status", "-i", "0.01",
		"--query", "sram_used_bytes,sram_kv_bytes,fb_used_bytes",
		"--format", "csv", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.out, "sram_used_bytes,sram_kv_bytes,fb_used_bytes\n"
				"72351744,8388608,3145728\n");
	tst_run_free(&r);

	/* -d takes a card's serial in a vfio: list, as the commands do */
	tst_run(&r, "-d", "vfio:00000000000000AA", "status", "-i", "0.01",
		"--query", "name,sram_kv_bytes", "--format", "csv", NULL);
	ck_assert_msg(r.status == 0, "%s", r.err);
	ck_assert_str_eq(r.out, "name,sram_kv_bytes\n0000:03:00.0,8388608\n");
	tst_run_free(&r);
	tst_run(&r, "-d", "vfio:00000000000000bb", "status", NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "no card with serial "
					    "00000000000000bb"));
	tst_run_free(&r);

	/* list shows the same, and nothing for the card without telemetry */
	tst_run(&r, "list", "--query", "name,sram_used_bytes,fb_used_bytes",
		"--format", "csv", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.out, "name,sram_used_bytes,fb_used_bytes\n"
				"0000:03:00.0,72351744,3145728\n"
				"0000:04:00.0,,\n");
	tst_run_free(&r);

	/* the vfio-pci card has no telemetry: reported, exit 4 */
	tst_run(&r, "status", "-i", "0.01", NULL);
	ck_assert_int_eq(r.status, 4);
	ck_assert_ptr_nonnull(strstr(r.err, "0000:04:00.0"));
	ck_assert_ptr_nonnull(strstr(r.err, "np_vfio_pci"));
	ck_assert_ptr_nonnull(strstr(r.out, "45.0C"));
	ck_assert_ptr_nonnull(strstr(r.out, "25.0W"));
	ck_assert_ptr_nonnull(strstr(r.out, "69.0M")); /* SRAM used */
	ck_assert_ptr_nonnull(strstr(r.out, "3.0M")); /* FB */
	tst_run_free(&r);
}
END_TEST

START_TEST(test_doctor_problems)
{
	struct tst_run r;
	struct tst_jv *e, *c;

	tst_run(&r, "--json", "doctor", NULL);
	e = tst_envelope(&r, "doctor", 1);
	ck_assert_str_eq(tst_jv_str(find_check(e, "iommu", NULL), "result"),
			 "pass");
	ck_assert_str_eq(
		tst_jv_str(find_check(e, "cards", "2 np cards"), "result"),
		"pass");
	c = find_check(e, "driver-bound", "0000:04:00.0");
	ck_assert_str_eq(tst_jv_str(c, "result"), "warn");
	ck_assert_ptr_nonnull(strstr(tst_jv_str(c, "fix"), "driver_override"));
	c = find_check(e, "iommu-group", "0000:04:00.1 is bound to nvme");
	ck_assert_str_eq(tst_jv_str(c, "result"), "fail");
	ck_assert_ptr_nonnull(
		strstr(tst_jv_str(c, "fix"),
		       "/sys/bus/pci/devices/0000:04:00.1/driver/unbind"));
	c = find_check(e, "iommu-group", "0000:03:00.0");
	ck_assert_str_eq(tst_jv_str(c, "result"), "pass");
	ck_assert_int_eq(tst_jv_get(c, "fix")->type, TST_JV_NULL);
	ck_assert_str_eq(
		tst_jv_str(find_check(e, "dev-vfio", "/dev/vfio/13"), "result"),
		"pass");
	ck_assert_str_eq(tst_jv_str(find_check(e, "hugepages", NULL), "result"),
			 "pass");
	ck_assert_double_eq(tst_jv_num(tst_jv_get(e, "summary"), "fail"), 1);
	tst_run_free(&r);

	tst_run(&r, "doctor", NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_ptr_nonnull(strstr(r.out, "[FAIL] iommu-group"));
	ck_assert_ptr_nonnull(strstr(r.out, "       fix: echo 0000:04:00.1"));
	tst_run_free(&r);
}
END_TEST

START_TEST(test_doctor_fixed)
{
	struct tst_run r;
	struct tst_jv *e;

	/* what the printed fixes do */
	link_to("/sys/bus/pci/devices/0000:04:00.1/driver",
		"../../../bus/pci/drivers/vfio-pci");
	link_to("/sys/bus/pci/devices/0000:04:00.0/driver",
		"../../../bus/pci/drivers/np_vfio_pci");
	tst_run(&r, "--json", "doctor", NULL);
	e = tst_envelope(&r, "doctor", geteuid() == 0 ? 0 : r.status);
	if (geteuid() == 0) {
		ck_assert_double_eq(
			tst_jv_num(tst_jv_get(e, "summary"), "fail"), 0);
		ck_assert_double_eq(
			tst_jv_num(tst_jv_get(e, "summary"), "warn"), 0);
	}
	ck_assert_str_eq(
		tst_jv_str(find_check(e, "iommu-group", "group 13"), "result"),
		"pass");
	tst_run_free(&r);
}
END_TEST

START_TEST(test_doctor_iommu_off)
{
	struct tst_run r;
	struct tst_jv *c;

	tree_teardown();
	ck_assert_int_eq(mkdir(root, 0700), 0);
	put("/sys/kernel/iommu_groups/.keep", "");
	put("/sys/bus/pci/devices/.keep", "");
	put("/proc/cpuinfo", "vendor_id\t: AuthenticAMD\n");
	tst_run(&r, "--json", "doctor", NULL);
	tst_envelope(&r, "doctor", 1);
	c = find_check(r.json, "iommu", NULL);
	ck_assert_str_eq(tst_jv_str(c, "result"), "fail");
	ck_assert_ptr_nonnull(strstr(tst_jv_str(c, "fix"), "amd_iommu=on"));
	ck_assert_ptr_nonnull(strstr(tst_jv_str(c, "fix"), "update-grub"));
	ck_assert_str_eq(
		tst_jv_str(find_check(r.json, "cards", NULL), "result"),
		"fail");
	ck_assert_str_eq(tst_jv_str(find_check(r.json, "vfio", NULL), "fix"),
			 "sudo modprobe vfio_iommu_type1");
	tst_run_free(&r);
}
END_TEST

static void low_memlock(void)
{
	struct rlimit rl;

	/* lose CAP_IPC_LOCK across exec (fails harmlessly without root) */
	prctl(PR_CAPBSET_DROP, CAP_IPC_LOCK, 0, 0, 0);
	getrlimit(RLIMIT_MEMLOCK, &rl);
	rl.rlim_cur = 64 * 1024;
	setrlimit(RLIMIT_MEMLOCK, &rl);
}

START_TEST(test_doctor_memlock_hugepages_nodes)
{
	struct tst_run r;
	struct tst_jv *c;

	tst_pre_exec = low_memlock;
	put("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "0\n");
	rm("/dev/vfio/13");
	tst_run(&r, "--json", "doctor", NULL);
	tst_envelope(&r, "doctor", 1);
	c = find_check(r.json, "memlock", NULL);
	ck_assert_str_eq(tst_jv_str(c, "result"), "fail");
	ck_assert_ptr_nonnull(strstr(tst_jv_str(c, "detail"), "64 KiB"));
	ck_assert_ptr_nonnull(
		strstr(tst_jv_str(c, "fix"), "memlock unlimited"));
	c = find_check(r.json, "hugepages", NULL);
	ck_assert_str_eq(tst_jv_str(c, "result"), "warn");
	ck_assert_ptr_nonnull(strstr(tst_jv_str(c, "fix"), "nr_hugepages"));
	c = find_check(r.json, "dev-vfio", "/dev/vfio/13");
	ck_assert_str_eq(tst_jv_str(c, "result"), "fail");
	ck_assert_ptr_nonnull(strstr(tst_jv_str(c, "fix"), "drivers_probe"));
	tst_run_free(&r);
}
END_TEST

static struct tst_jv *cdi_device(struct tst_jv *spec, const char *name)
{
	struct tst_jv *devs = tst_jv_get(spec, "devices");

	for (size_t i = 0; i < devs->n; i++)
		if (!strcmp(tst_jv_str(tst_jv_at(devs, i), "name"), name))
			return tst_jv_at(devs, i);
	ck_abort_msg("no CDI device %s", name);
	return NULL;
}

static void check_spec(struct tst_jv *spec, const char *kind)
{
	struct tst_jv *d, *nodes, *edits;

	ck_assert_str_eq(tst_jv_str(spec, "cdiVersion"), "0.6.0");
	ck_assert_str_eq(tst_jv_str(spec, "kind"), kind);
	ck_assert_uint_eq(tst_jv_get(spec, "devices")->n, 5);
	d = cdi_device(spec, "0");
	nodes = tst_jv_get(tst_jv_get(d, "containerEdits"), "deviceNodes");
	ck_assert_uint_eq(nodes->n, 1);
	ck_assert_str_eq(tst_jv_str(tst_jv_at(nodes, 0), "path"),
			 "/dev/vfio/12");
	d = cdi_device(spec, "0000:04:00.0");
	nodes = tst_jv_get(tst_jv_get(d, "containerEdits"), "deviceNodes");
	ck_assert_str_eq(tst_jv_str(tst_jv_at(nodes, 0), "path"),
			 "/dev/vfio/13");
	ck_assert_uint_eq(tst_jv_get(d, "annotations")->n, 1);
	d = cdi_device(spec, "all");
	ck_assert_uint_eq(
		tst_jv_get(tst_jv_get(d, "containerEdits"), "deviceNodes")->n,
		2);
	edits = tst_jv_get(spec, "containerEdits");
	ck_assert_str_eq(
		tst_jv_str(tst_jv_at(tst_jv_get(edits, "deviceNodes"), 0),
			   "path"),
		"/dev/vfio/vfio");
	ck_assert_str_eq(tst_jv_at(tst_jv_get(edits, "env"), 0)->str,
			 "NP_DEVICES=vfio:all");
}

START_TEST(test_cdi_file)
{
	char path[PATH_MAX], *text;
	struct tst_run r;
	struct stat st;
	struct tst_jv *spec;
	FILE *f;

	snprintf(path, sizeof(path), "%s/np.json", root);
	tst_run(&r, "cdi", "-o", path, NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "wrote"));
	tst_run_free(&r);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0644);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	text = calloc(1, (size_t)st.st_size + 1);
	ck_assert_uint_eq(fread(text, 1, (size_t)st.st_size, f),
			  (size_t)st.st_size);
	fclose(f);
	spec = tst_jv_parse(text, NULL);
	ck_assert_ptr_nonnull(spec);
	check_spec(spec, "northpole.example/card");
	tst_jv_free(spec);
	free(text);
}
END_TEST

START_TEST(test_cdi_stdout_and_json)
{
	struct tst_run r;

	tst_run(&r, "cdi", "--kind", "example.com/npu", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(r.json);
	check_spec(r.json, "example.com/npu");
	tst_run_free(&r);

	tst_run(&r, "--json", "cdi", NULL);
	tst_envelope(&r, "cdi", 0);
	ck_assert_int_eq(tst_jv_get(r.json, "path")->type, TST_JV_NULL);
	check_spec(tst_jv_get(r.json, "spec"), "northpole.example/card");
	tst_run_free(&r);
}
END_TEST

START_TEST(test_cdi_errors)
{
	struct tst_run r;

	tst_run(&r, "cdi", "-o", "/nonexistent-npt-dir/np.json", NULL);
	ck_assert_int_eq(r.status, 4);
	ck_assert_ptr_nonnull(strstr(r.err, "/nonexistent-npt-dir"));
	tst_run_free(&r);

	/* a card no container can use: named, exit 1 */
	rm("/sys/bus/pci/devices/0000:04:00.0/driver");
	tst_run(&r, "cdi", NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_ptr_nonnull(strstr(r.err, "0000:04:00.0"));
	tst_run_free(&r);
}
END_TEST

Suite *np_suite_sysfs(void)
{
	Suite *s = suite_create("sysfs");
	TCase *tc = tcase_create("fake-tree");

	tcase_add_checked_fixture(tc, tree_setup, tree_teardown);
	tcase_add_test(tc, test_list);
	tcase_add_test(tc, test_list_driver_link);
	tcase_add_test(tc, test_holders);
	tcase_add_test(tc, test_pipeline_driver_stats);
	tcase_add_test(tc, test_list_spec);
	tcase_add_test(tc, test_list_no_cards);
	tcase_add_test(tc, test_status);
	tcase_add_test(tc, test_doctor_problems);
	tcase_add_test(tc, test_doctor_fixed);
	tcase_add_test(tc, test_doctor_iommu_off);
	tcase_add_test(tc, test_doctor_memlock_hugepages_nodes);
	tcase_add_test(tc, test_cdi_file);
	tcase_add_test(tc, test_cdi_stdout_and_json);
	tcase_add_test(tc, test_cdi_errors);
	suite_add_tcase(s, tc);
	return s;
}
