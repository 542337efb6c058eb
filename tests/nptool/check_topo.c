// SPDX-License-Identifier: MIT
/*
 * topo against a fake sysfs tree (NP_SYSFS_ROOT) with every path type:
 *
 *   pci0000:00 (NUMA 0)
 *     00:01.0 root port - 01:00.0 switch up - 02:01.0 down - 03:00.0 card 0
 *                                           - 02:02.0 down - 04:00.0 card 1
 *                                           - 02:03.0 down - 05:00.0 switch
 *                                               up - 06:01.0 down - 07:00.0 card 2
 *     00:02.0 root port - 08:00.0 card 3
 *   pci0000:40 (NUMA 1): 40:01.0 root port - 41:00.0 card 4
 *   pci0000:80 (NUMA 0): 80:01.0 root port - 81:00.0 card 5
 *
 * and against emulated cards (libnp's P2P mode).
 */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

static char root[256];

static void mkdirs(const char *rel)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s%s", root, rel);
	for (char *s = p + strlen(root) + 1;; s++) {
		s = strchr(s, '/');
		if (s)
			*s = '\0';
		ck_assert(!mkdir(p, 0755) || errno == EEXIST);
		if (!s)
			break;
		*s = '/';
	}
}

static void put(const char *dir, const char *name, const char *content)
{
	char p[PATH_MAX];
	FILE *f;

	snprintf(p, sizeof(p), "%s%s/%s", root, dir, name);
	f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fputs(content, f);
	ck_assert_int_eq(fclose(f), 0);
}

/* A card at /sys/devices/<path> with its /sys/bus/pci/devices link. */
static void card(const char *path, const char *numa, const char *cpus)
{
	char dir[PATH_MAX], link[PATH_MAX], target[PATH_MAX];
	const char *bdf = strrchr(path, '/') + 1;

	snprintf(dir, sizeof(dir), "/sys/devices/%s", path);
	mkdirs(dir);
	put(dir, "vendor", "0x1234\n");
	put(dir, "device", "0x4e50\n");
	put(dir, "numa_node", numa);
	put(dir, "local_cpulist", cpus);
	mkdirs("/sys/bus/pci/devices");
	snprintf(link, sizeof(link), "%s/sys/bus/pci/devices/%s", root, bdf);
	snprintf(target, sizeof(target), "../../../devices/%s", path);
	ck_assert_int_eq(symlink(target, link), 0);
}

static void setup(void)
{
	snprintf(root, sizeof(root), "%s/npt-topo-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(root));
	setenv("NP_SYSFS_ROOT", root, 1);
	setenv("NP_DEVICES", "vfio:all", 1);
	tst_pre_exec = NULL;
	card("pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:01.0/0000:03:00.0",
	     "0\n", "0-7\n");
	card("pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:02.0/0000:04:00.0",
	     "0\n", "0-7\n");
	card("pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:03.0/0000:05:00.0/"
	     "0000:06:01.0/0000:07:00.0",
	     "0\n", "0-7\n");
	card("pci0000:00/0000:00:02.0/0000:08:00.0", "0\n", "0-7\n");
	card("pci0000:40/0000:40:01.0/0000:41:00.0", "1\n", "8-15\n");
	card("pci0000:80/0000:80:01.0/0000:81:00.0", "0\n", "0-7\n");
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	return remove(path);
}

static void teardown(void)
{
	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	unsetenv("NP_SYSFS_ROOT");
}

static const char *path_of(struct tst_jv *pairs, unsigned int a, unsigned int b)
{
	for (size_t i = 0; i < pairs->n; i++) {
		struct tst_jv *p = tst_jv_at(pairs, i);

		if (tst_jv_num(p, "src") == a && tst_jv_num(p, "dst") == b)
			return tst_jv_str(p, "path");
	}
	ck_abort_msg("no pair %u -> %u", a, b);
	return NULL;
}

START_TEST(test_pcie)
{
	static const struct {
		unsigned int a, b;
		const char *path;
	} want[] = {
		{0, 1, "PIX"},	{1, 0, "PIX"},	{0, 2, "PXB"}, {2, 1, "PXB"},
		{0, 3, "PHB"},	{2, 3, "PHB"},	{0, 4, "SYS"}, {4, 5, "SYS"},
		{0, 5, "NODE"}, {3, 5, "NODE"},
	};
	struct tst_run r;
	struct tst_jv *cards, *pairs, *c0;

	tst_run(&r, "--json", "topo", NULL);
	tst_envelope(&r, "topo", 0);
	ck_assert_str_eq(tst_jv_str(r.json, "source"), "sysfs");
	cards = tst_jv_get(r.json, "cards");
	pairs = tst_jv_get(r.json, "pairs");
	ck_assert_uint_eq(cards->n, 6);
	ck_assert_uint_eq(pairs->n, 6 * 5);
	c0 = tst_jv_at(cards, 0);
	ck_assert_str_eq(tst_jv_str(c0, "bdf"), "0000:03:00.0");
	ck_assert_str_eq(tst_jv_str(c0, "cpu_affinity"), "0-7");
	ck_assert_double_eq(tst_jv_num(tst_jv_at(cards, 4), "numa_node"), 1);
	ck_assert_uint_eq(tst_jv_get(c0, "pcie_path")->n, 4);
	ck_assert_str_eq(tst_jv_at(tst_jv_get(c0, "pcie_path"), 0)->str,
			 "pci0000:00");
	ck_assert_str_eq(tst_jv_at(tst_jv_get(c0, "pcie_path"), 3)->str,
			 "0000:02:01.0");
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ck_assert_msg(!strcmp(path_of(pairs, want[i].a, want[i].b),
				      want[i].path),
			      "%u -> %u: %s, not %s", want[i].a, want[i].b,
			      path_of(pairs, want[i].a, want[i].b),
			      want[i].path);
	tst_run_free(&r);

	tst_run(&r, "topo", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "CARD0  X      PIX    PXB    PHB "
					    "   SYS    NODE"));
	ck_assert_ptr_nonnull(strstr(r.out, "8-15"));
	ck_assert_ptr_nonnull(strstr(r.out, "PXB  = "));
	tst_run_free(&r);
}
END_TEST

/* Emulated cards: the pair type is libnp's P2P mode, agreeing with info. */
START_TEST(test_emu)
{
	struct tst_run r, in;
	struct tst_jv *pairs, *cards;

	unsetenv("NP_SYSFS_ROOT");
	setenv("NP_DEVICES", "emu:16", 1);
	tst_run(&r, "--json", "topo", NULL);
	tst_envelope(&r, "topo", 0);
	tst_run(&in, "--json", "info", NULL);
	cards = tst_jv_get(tst_envelope(&in, "info", 0), "cards");
	pairs = tst_jv_get(r.json, "pairs");
	ck_assert_uint_eq(pairs->n, 16 * 15);
	for (unsigned int a = 0; a < 16; a++) {
		double direct = 0,
		       want = tst_jv_num(tst_jv_get(tst_jv_at(cards, a), "p2p"),
					 "direct_peers");

		for (unsigned int b = 0; b < 16; b++)
			if (a != b)
				direct += !strcmp(path_of(pairs, a, b), "DIR");
		ck_assert_double_eq(direct, want);
	}
	ck_assert_int_eq(tst_jv_get(tst_jv_at(tst_jv_get(r.json, "cards"), 0),
				    "pcie_path")
				 ->type,
			 TST_JV_NULL);
	tst_run_free(&r);
	tst_run_free(&in);
}
END_TEST

Suite *np_suite_topo(void)
{
	Suite *s = suite_create("topo");
	TCase *tc = tcase_create("sysfs");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_pcie);
	tcase_add_test(tc, test_emu);
	suite_add_tcase(s, tc);
	return s;
}
