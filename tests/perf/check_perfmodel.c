// SPDX-License-Identifier: MIT
/*
 * The performance model (np/perfmodel.h): its defaults are the card's
 * documented architecture, its times follow from operation counts and
 * rates (checked by recounting them here and by scaling the rates), the
 * schedule obeys its bounds, and bad shapes are refused with a message.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "np/perfmodel.h"
#include "np_abi.h"

static char err[512];

static struct np_perf_result *estimate(const struct np_perf_arch *a,
				       const struct np_perf_shape *s)
{
	struct np_perf_result *r = malloc(sizeof(*r));

	ck_assert_ptr_nonnull(r);
	err[0] = 0;
	ck_assert_msg(np_perf_estimate(a, s, r, err, sizeof(err)) == 0, "%s",
		      err);
	return r;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = malloc(65536);

	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(buf);
	*len = fread(buf, 1, 65536, f);
	ck_assert_uint_gt(*len, 0);
	fclose(f);
	return buf;
}

START_TEST(defaults_are_the_abi)
{
	struct np_perf_arch a;

	np_perf_arch_default(&a);
	ck_assert_uint_eq(a.cores, NP_NUM_CORES);
	ck_assert_uint_eq(a.ops_int8, NP_OPS_PER_CYCLE_INT8);
	ck_assert_uint_eq(a.ops_int4, NP_OPS_PER_CYCLE_INT4);
	ck_assert_uint_eq(a.ops_int2, NP_OPS_PER_CYCLE_INT2);
	ck_assert_uint_eq(a.vector_lanes, NP_VECTOR_SLICES * NP_VECTOR_WAYS);
	ck_assert_uint_eq(a.act_lanes, NP_ACT_SLICES);
	ck_assert_uint_eq(a.sram_bytes, NP_SRAM_SIZE);
	ck_assert_uint_eq(a.fb_bytes, NP_FB_SIZE);
	/* Gen3: 8 GT/s per lane, 128b/130b, 8 lanes */
	ck_assert_double_eq_tol(a.pcie_raw_bw, 8e9 * 8 / 8 * 128 / 130, 1);
	ck_assert(a.pcie_efficiency > 0 && a.pcie_efficiency < 1);
}
END_TEST

START_TEST(granite_file_is_the_default)
{
	struct np_perf_shape def, s;
	size_t len;
	char *text = slurp(NP_SHAPES_DIR "/granite-3b.shape", &len);

	np_perf_shape_default(&def);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(np_perf_shape_parse(text, len, &s, err, sizeof(err)),
			 0);
	ck_assert_mem_eq(&s, &def, sizeof(s));
	free(text);
}
END_TEST

START_TEST(shape_files_estimate)
{
	static const char *const files[] = {"granite-3b", "medium", "tiny"};
	struct np_perf_arch a;

	np_perf_arch_default(&a);
	for (size_t i = 0; i < 3; i++) {
		char path[256];
		struct np_perf_shape s;
		struct np_perf_result *r;
		size_t len;
		char *text;

		snprintf(path, sizeof(path), "%s/%s.shape", NP_SHAPES_DIR,
			 files[i]);
		text = slurp(path, &len);
		np_perf_shape_default(&s);
		ck_assert_int_eq(
			np_perf_shape_parse(text, len, &s, err, sizeof(err)),
			0);
		ck_assert_str_eq(s.name, files[i]);
		r = estimate(&a, &s);
		ck_assert_int_eq(r->fits, 1);
		ck_assert(r->tokens_per_s > 0);
		free(r);
		free(text);
	}
}
END_TEST

/* Each shipped file's model is the preset of its name (np/model.h), the
 * default's model the granite-3b preset */
START_TEST(shape_files_are_the_presets)
{
	static const char *const files[] = {"granite-3b", "medium", "tiny"};
	struct np_model_shape want, got, alias;
	struct np_perf_shape def;

	for (size_t i = 0; i < 3; i++) {
		char path[256];
		size_t len;
		char *text;

		snprintf(path, sizeof(path), "%s/%s.shape", NP_SHAPES_DIR,
			 files[i]);
		text = slurp(path, &len);
		memset(&got, 0, sizeof(got));
		ck_assert_int_eq(
			np_model_shape_parse(text, len, &got, err, sizeof(err)),
			0);
		ck_assert_int_eq(np_model_shape_preset(files[i], &want), 0);
		ck_assert_mem_eq(&got, &want, sizeof(got));
		free(text);
	}
	np_perf_shape_default(&def);
	ck_assert_int_eq(np_model_shape_preset("granite-3b", &want), 0);
	ck_assert_mem_eq(&def.model, &want, sizeof(want));
	/* the earlier spelling of the name */
	ck_assert_int_eq(np_model_shape_preset("granite3b", &alias), 0);
	ck_assert_mem_eq(&alias, &want, sizeof(want));
	ck_assert_int_eq(np_model_shape_preset("granite", &alias), -ENOENT);
}
END_TEST

/* layers, heads and kv_heads, the keys before the field names, still read */
START_TEST(old_key_spellings)
{
	static const char old[] = "layers = 3\nheads = 4\nkv_heads = 2\n";
	static const char now[] = "n_layers = 3\nn_heads = 4\nn_kv_heads = 2\n";
	static const char run[] = "name = x\nprompt = 5\ndim = 64\n";
	struct np_perf_shape a, b;
	struct np_model_shape m;

	np_perf_shape_default(&a);
	np_perf_shape_default(&b);
	ck_assert_int_eq(
		np_perf_shape_parse(old, strlen(old), &a, err, sizeof(err)), 0);
	ck_assert_int_eq(
		np_perf_shape_parse(now, strlen(now), &b, err, sizeof(err)), 0);
	ck_assert_uint_eq(a.model.n_layers, 3);
	ck_assert_uint_eq(a.model.n_heads, 4);
	ck_assert_uint_eq(a.model.n_kv_heads, 2);
	ck_assert_mem_eq(&a, &b, sizeof(a));
	/* the model parser reads the model keys and skips the run's */
	np_perf_shape_default(&a);
	m = a.model;
	ck_assert_int_eq(
		np_model_shape_parse(run, strlen(run), &m, err, sizeof(err)),
		0);
	a.model.dim = 64;
	ck_assert_mem_eq(&m, &a.model, sizeof(m));
	ck_assert_int_eq(np_model_shape_parse("rope_base = inf\n", 16, &m, err,
					      sizeof(err)),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "rope_base"));
}
END_TEST

START_TEST(parse_errors_name_the_line)
{
	static const struct {
		const char *text, *needle;
	} bad[] = {
		{"dim = 4096\nfoo = 1\n", "line 2: unknown key \"foo\""},
		{"# c\n\ndim 4096\n", "line 3"},
		{"heads = -4\n", "heads"},
		{"heads = 4x\n", "not a number"},
		{"vocab = 99999999999\n", "vocab"},
		{"name = \n", "name"},
	};
	struct np_perf_shape s;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		np_perf_shape_default(&s);
		err[0] = 0;
		ck_assert_int_eq(np_perf_shape_parse(bad[i].text,
						     strlen(bad[i].text), &s,
						     err, sizeof(err)),
				 -EINVAL);
		ck_assert_msg(strstr(err, bad[i].needle), "%s: \"%s\"",
			      bad[i].text, err);
	}
	/* comments, blank lines, CRLF and spaces are fine */
	{
		static const char ok[] = "  dim=512 # d\r\n\n\tffn =  7\n";

		np_perf_shape_default(&s);
		ck_assert_int_eq(np_perf_shape_parse(ok, strlen(ok), &s, err,
						     sizeof(err)),
				 0);
	}
	ck_assert_uint_eq(s.model.dim, 512);
	ck_assert_uint_eq(s.model.ffn, 7);
}
END_TEST

START_TEST(bad_shapes_refused)
{
	struct np_perf_arch a;
	struct np_perf_shape s;
	struct np_perf_result *r = malloc(sizeof(*r));

	ck_assert_ptr_nonnull(r);
	np_perf_arch_default(&a);
	np_perf_shape_default(&s);
	s.micro_batches = 5;
	ck_assert_int_eq(np_perf_estimate(&a, &s, r, err, sizeof(err)),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "micro_batches = 5"));
	np_perf_shape_default(&s);
	s.model.n_heads = 24; /* 4096 / 24 */
	ck_assert_int_eq(np_perf_estimate(&a, &s, r, err, sizeof(err)),
			 -EINVAL);
	np_perf_shape_default(&s);
	s.weight_bits = 3;
	ck_assert_int_eq(np_perf_estimate(&a, &s, r, err, sizeof(err)),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "weight_bits = 3"));
	np_perf_shape_default(&s);
	s.cards = 2;
	ck_assert_int_eq(np_perf_estimate(&a, &s, r, err, sizeof(err)),
			 -EINVAL);
	np_perf_shape_default(&s);
	a.clock_hz = 0;
	ck_assert_int_eq(np_perf_estimate(&a, &s, r, err, sizeof(err)),
			 -EINVAL);
	free(r);
}
END_TEST

/* the matrix time of a layer stage, recounted: MACs x 2 at the rate of
 * each precision (the FFN down projection takes INT8 activations) */
START_TEST(matrix_time_is_ops_over_rate)
{
	struct np_perf_arch a;
	struct np_perf_shape s;
	struct np_perf_result *r;
	double hd, kvd, b, macs4, macs8, want, rate4, rate8;

	np_perf_arch_default(&a);
	np_perf_shape_default(&s);
	r = estimate(&a, &s);
	hd = (double)s.model.dim / s.model.n_heads;
	kvd = hd * s.model.n_kv_heads;
	b = (double)s.requests / s.micro_batches;
	macs4 = (double)s.model.dim * (s.model.dim + 2 * kvd) +
		(double)s.model.dim * s.model.dim +
		2.0 * s.model.dim * s.model.ffn;
	macs8 = (double)s.model.ffn * s.model.dim;
	rate4 = (double)a.cores * a.ops_int4 * a.clock_hz;
	rate8 = (double)a.cores * a.ops_int8 * a.clock_hz;
	want = b * (2 * macs4 / rate4 + 2 * macs8 / rate8);
	ck_assert_double_eq_tol(r->stage[0].matrix_s, want, want * 1e-9);
	/* the output stage: vocab / out_cards rows at INT8 */
	want = b * 2.0 * (s.model.vocab / s.out_cards) * s.model.dim / rate8;
	ck_assert_double_eq_tol(r->stage[r->n_stages - 1].matrix_s, want,
				want * 1e-9);
	/* one hop: DMA setup + latency + the INT16 frame over the link */
	want = a.dma_setup_s + a.pcie_latency_s +
	       (b * s.model.dim * 2 + 8 + b * 8) /
		       (a.pcie_raw_bw * a.pcie_efficiency);
	ck_assert_double_eq_tol(r->stage[0].hop_s, want, want * 1e-9);
	free(r);
}
END_TEST

START_TEST(rates_scale_times)
{
	struct np_perf_arch a, fast;
	struct np_perf_shape s;
	struct np_perf_result *r1, *r2;

	np_perf_arch_default(&a);
	np_perf_shape_default(&s);
	fast = a;
	fast.clock_hz *= 2;
	fast.sram_bw *= 2;
	r1 = estimate(&a, &s);
	r2 = estimate(&fast, &s);
	for (uint32_t i = 0; i < r1->n_stages; i++) {
		const struct np_perf_stage *x = &r1->stage[i],
					   *y = &r2->stage[i];

		ck_assert_double_eq_tol(y->matrix_s * 2, x->matrix_s,
					x->matrix_s * 1e-9);
		ck_assert_double_eq_tol(y->attn_s * 2, x->attn_s,
					x->attn_s * 1e-9 + 1e-18);
		ck_assert_double_eq_tol(y->vector_s * 2, x->vector_s,
					x->vector_s * 1e-9);
		ck_assert_double_eq_tol(y->sram_s * 2, x->sram_s,
					x->sram_s * 1e-9);
		ck_assert_double_eq_tol(y->time_s * 2, x->time_s,
					x->time_s * 1e-9);
	}
	ck_assert(r2->tokens_per_s > r1->tokens_per_s);
	free(r1);
	free(r2);
}
END_TEST

START_TEST(schedule_bounds)
{
	struct np_perf_arch a;
	struct np_perf_shape s;
	struct np_perf_result *r;
	double sum = 0;

	np_perf_arch_default(&a);
	np_perf_shape_default(&s);
	r = estimate(&a, &s);
	/* a round is at least M x the slowest stage and one trip around */
	ck_assert(r->round_s >= s.micro_batches * r->bound_stage_s * 0.999);
	ck_assert(r->round_s >= r->loop_s * 0.999);
	for (uint32_t i = 0; i < r->n_stages; i++)
		sum += r->stage[i].time_s + r->stage[i].hop_s;
	ck_assert_double_eq_tol(r->loop_s, sum + a.host_step_s + r->host_in_s,
				1e-12);
	ck_assert_double_eq_tol(r->tokens_per_s,
				s.requests * (s.generate - 1.0) / r->decode_s,
				1e-6);
	ck_assert_double_eq_tol(r->tokens_per_s_card * s.cards, r->tokens_per_s,
				1e-6);
	ck_assert_double_eq_tol(r->total_s, r->prefill_s + r->decode_s, 1e-12);
	free(r);
	/* a slow host: every round is M host steps */
	a.host_step_s = 1;
	r = estimate(&a, &s);
	ck_assert_double_eq_tol(r->round_s, s.micro_batches * 1.0, 1e-6);
	free(r);
}
END_TEST

START_TEST(capacity)
{
	struct np_perf_arch a;
	struct np_perf_shape s;
	struct np_perf_result *r;

	np_perf_arch_default(&a);
	np_perf_shape_default(&s);
	r = estimate(&a, &s);
	ck_assert_int_eq(r->fits, 1);
	ck_assert_uint_le(r->stage[0].sram_used, NP_SRAM_SIZE);
	free(r);
	/* 64 requests of 2048 tokens: the INT4 KV cache alone is 128 MiB */
	s.requests = 64;
	s.micro_batches = 16;
	r = estimate(&a, &s);
	ck_assert_int_eq(r->fits, 0);
	free(r);
}
END_TEST

Suite *np_suite_perfmodel(void)
{
	Suite *s = suite_create("perfmodel");
	TCase *tc = tcase_create("model");

	tcase_add_test(tc, defaults_are_the_abi);
	tcase_add_test(tc, granite_file_is_the_default);
	tcase_add_test(tc, shape_files_estimate);
	tcase_add_test(tc, shape_files_are_the_presets);
	tcase_add_test(tc, old_key_spellings);
	tcase_add_test(tc, parse_errors_name_the_line);
	tcase_add_test(tc, bad_shapes_refused);
	tcase_add_test(tc, matrix_time_is_ops_over_rate);
	tcase_add_test(tc, rates_scale_times);
	tcase_add_test(tc, schedule_bounds);
	tcase_add_test(tc, capacity);
	suite_add_tcase(s, tc);
	return s;
}
