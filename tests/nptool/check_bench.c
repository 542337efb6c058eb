// SPDX-License-Identifier: MIT
/*
 * nptool bench: a model shape read from a GGUF file's metadata, the
 * sensitivity report (present, and a slower parameter never faster), the
 * table against the published NorthPole systems.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"
#include "np/model.h"

/* the demo GGUF's shape, from its metadata, is the tiny preset */
START_TEST(test_bench_gguf_shape)
{
	struct np_model_shape want;
	struct tst_run r;
	struct tst_jv *e;

	ck_assert_int_eq(np_model_shape_preset("tiny", &want), 0);
	tst_run(&r, "--json", "bench", "--model-shape", NPT_DEMO_MODEL, "-c",
		"16", NULL);
	e = tst_envelope(&r, "bench", 0);
	ck_assert_str_eq(tst_jv_str(e, "shape"), "np-tiny");
	ck_assert_double_eq(tst_jv_num(e, "n_layers"), want.n_layers);
	ck_assert_double_eq(tst_jv_num(e, "dim"), want.dim);
	ck_assert_double_eq(tst_jv_num(e, "n_heads"), want.n_heads);
	ck_assert_double_eq(tst_jv_num(e, "n_kv_heads"), want.n_kv_heads);
	ck_assert_double_eq(tst_jv_num(e, "ffn"), want.ffn);
	ck_assert_double_eq(tst_jv_num(e, "vocab"), want.vocab);
	ck_assert(tst_jv_num(e, "tokens_per_s") > 0);
	tst_run_free(&r);
}
END_TEST

/* a file with the GGUF magic and nothing valid after it: a usage error
 * naming the file */
START_TEST(test_bench_bad_gguf)
{
	char path[] = "/tmp/np-bench-XXXXXX";
	int fd = mkstemp(path);
	struct tst_run r;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "GGUF\x03\0\0\0\xff\xff", 10), 10);
	close(fd);
	tst_run(&r, "bench", "--model-shape", path, NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, path));
	ck_assert_ptr_nonnull(strstr(r.err, "gguf"));
	tst_run_free(&r);
	unlink(path);
}
END_TEST

/* times: more is never faster; rates: less is never faster */
START_TEST(test_bench_sensitivity)
{
	static const char *const times[] = {"pcie_latency_s", "dma_setup_s",
					    "host_step_s",    "host_hop_s",
					    "nic_latency_s",  "net_host_s"};
	static const char *const rates[] = {"pcie_efficiency", "nic_bw",
					    "host_copy_bw", "sram_bw",
					    "clock_hz"};
	struct tst_run r;
	struct tst_jv *e, *sens;
	size_t seen = 0;

	tst_run(&r, "--json", "bench", "--model-shape",
		NPT_SHAPES_DIR "/granite-3.3-8b.shape", "--route-host",
		"--sensitivity", NULL);
	e = tst_envelope(&r, "bench", 0);
	sens = tst_jv_get(e, "sensitivity");
	ck_assert_ptr_nonnull(sens);
	ck_assert_uint_eq(sens->n, 11);
	for (size_t i = 0; i < sens->n; i++) {
		struct tst_jv *p = tst_jv_at(sens, i);
		const char *name = tst_jv_str(p, "parameter");
		double lo = tst_jv_num(p, "latency_ms_half");
		double hi = tst_jv_num(p, "latency_ms_1_5");

		ck_assert_ptr_nonnull(name);
		for (size_t k = 0; k < 6; k++)
			if (!strcmp(name, times[k])) {
				ck_assert_msg(hi > lo, "%s: %g vs %g", name, hi,
					      lo);
				seen++;
			}
		for (size_t k = 0; k < 5; k++)
			if (!strcmp(name, rates[k])) {
				ck_assert_msg(lo > hi, "%s: %g vs %g", name, lo,
					      hi);
				seen++;
			}
	}
	ck_assert_uint_eq(seen, 11);
	tst_run_free(&r);
	/* the text report has the table */
	tst_run(&r, "bench", "--sensitivity", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "sensitivity of granite-3b"));
	ck_assert_ptr_nonnull(strstr(r.out, "nic_latency_s"));
	tst_run_free(&r);
}
END_TEST

/* both systems, both routes, each with its published figure */
START_TEST(test_bench_published)
{
	struct tst_run r;
	struct tst_jv *e, *p;

	tst_run(&r, "--json", "bench", "--published", NULL);
	e = tst_envelope(&r, "bench", 0);
	p = tst_jv_get(e, "published");
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p->n, 4);
	ck_assert_str_eq(tst_jv_str(tst_jv_at(p, 0), "preset"),
			 "northpole-2024");
	ck_assert_double_eq(
		tst_jv_num(tst_jv_at(p, 0), "published_tokens_per_s"), 28356);
	ck_assert_str_eq(tst_jv_str(tst_jv_at(p, 2), "preset"),
			 "northpole-2025");
	ck_assert_double_eq(tst_jv_num(tst_jv_at(p, 2), "published_latency_ms"),
			    2.8);
	ck_assert_double_eq(tst_jv_num(tst_jv_at(p, 2), "cards_used"), 82);
	ck_assert_double_eq(tst_jv_num(tst_jv_at(p, 2), "net_hops"), 6);
	ck_assert_str_eq(tst_jv_str(tst_jv_at(p, 3), "route"), "host");
	ck_assert(tst_jv_num(tst_jv_at(p, 3), "token_latency_ms") >
		  tst_jv_num(tst_jv_at(p, 2), "token_latency_ms"));
	tst_run_free(&r);
	tst_run(&r, "bench", "--published", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "NorthPole 2024"));
	ck_assert_ptr_nonnull(strstr(r.out, "NorthPole 2025"));
	ck_assert_ptr_nonnull(strstr(r.out, "sensitivity of granite-3.3-8b"));
	tst_run_free(&r);
	/* it configures both systems itself */
	tst_run(&r, "bench", "--published", "-n", "4", NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "--published"));
	tst_run_free(&r);
}
END_TEST

Suite *np_suite_bench(void)
{
	Suite *s = suite_create("bench");
	TCase *tc = tcase_create("bench");

	tcase_add_test(tc, test_bench_gguf_shape);
	tcase_add_test(tc, test_bench_bad_gguf);
	tcase_add_test(tc, test_bench_sensitivity);
	tcase_add_test(tc, test_bench_published);
	suite_add_tcase(s, tc);
	return s;
}
