// SPDX-License-Identifier: MIT
/*
 * cache: a run writes an entry to the image cache (NP_CACHE_DIR, here a
 * directory of the test's own), the next run of the same model and
 * options takes its images from it, cache list shows it and cache clear
 * removes it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

static char dir[256];

static void cache_setup(void)
{
	snprintf(dir, sizeof(dir), "%s/npt-cache-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	setenv("NP_CACHE_DIR", dir, 1);
	setenv("NP_DEVICES", "emu:16", 1);
}

static void cache_teardown(void)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
	setenv("NP_CACHE_DIR", "off", 1);
}

/* A run of the demo model on 5 cards; whether its images were cached */
static bool run_cached(void)
{
	struct tst_run r;
	struct tst_jv *env;
	struct tst_jv *c;
	bool cached;

	tst_run(&r, "--json", "run", "-m", NPT_DEMO_MODEL, "-c", "5", "-n", "2",
		"-M", "1", "-t", "2", NULL);
	env = tst_envelope(&r, "run", 0);
	c = tst_jv_get(env, "load_cached");
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(c->type, TST_JV_BOOL);
	cached = c->b;
	tst_run_free(&r);
	return cached;
}

START_TEST(test_run_list_clear)
{
	struct tst_run r;
	struct tst_jv *env, *e;

	ck_assert(!run_cached());
	ck_assert(run_cached());
	tst_run(&r, "cache", "list", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(strstr(r.out, "1 entries") && strstr(r.out, ".npc"), "%s",
		      r.out);
	tst_run_free(&r);
	tst_run(&r, "--json", "cache", "list", NULL);
	env = tst_envelope(&r, "cache", 0);
	ck_assert_str_eq(tst_jv_str(env, "dir"), dir);
	e = tst_jv_at(tst_jv_get(env, "entries"), 0);
	ck_assert_ptr_nonnull(e);
	ck_assert_ptr_null(tst_jv_at(tst_jv_get(env, "entries"), 1));
	ck_assert(tst_jv_num(e, "cards") == 5);
	ck_assert(tst_jv_num(e, "sessions") == 2);
	ck_assert(tst_jv_num(e, "bytes") > 0);
	ck_assert_ptr_null(tst_jv_get(e, "problem"));
	tst_run_free(&r);
	tst_run(&r, "cache", "clear", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "1 entries removed"));
	tst_run_free(&r);
	tst_run(&r, "cache", "list", NULL);
	ck_assert_ptr_nonnull(strstr(r.out, "0 entries"));
	tst_run_free(&r);
	ck_assert(!run_cached());
}
END_TEST

START_TEST(test_off_and_usage)
{
	struct tst_run r;

	setenv("NP_CACHE_DIR", "off", 1);
	tst_run(&r, "cache", "list", NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "the image cache is off"));
	tst_run_free(&r);
	tst_run(&r, "cache", "bogus", NULL);
	ck_assert_int_eq(r.status, 2);
	tst_run_free(&r);
	tst_run(&r, "cache", "clear", "--dir", dir, "--keep", "12X", NULL);
	ck_assert_int_eq(r.status, 2);
	tst_run_free(&r);
}
END_TEST

Suite *np_suite_cache(void)
{
	Suite *s = suite_create("cache");
	TCase *tc = tcase_create("cache");

	tcase_add_checked_fixture(tc, cache_setup, cache_teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_run_list_clear);
	tcase_add_test(tc, test_off_and_usage);
	suite_add_tcase(s, tc);
	return s;
}
