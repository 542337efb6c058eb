// SPDX-License-Identifier: MIT
/*
 * Calibration on every core: np_quant_calibrate runs the tokens layer by
 * layer with each matrix's rows split over threads; its scales must be
 * bit for bit those of the token-by-token float pass
 * (npim_ref_float_forward, the float reference's own step), for any
 * thread count. And a calibration survives export and import.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "npim.h"
#include "test.h"

/* odd vocabulary and row counts: the last row of a pair, the last
 * partial group of tokens */
static const struct np_model_shape shape = {2,	 64, 4,	   2,	 96,
					    301, 64, 1e4f, 1e-5f};
static const char *const fams[] = {"llama", "qwen2", "granite"};

/* The token-by-token pass: scales exported into out */
static void sequential(const struct np_model *m, const int32_t *tok, uint32_t n,
		       float *out, size_t len)
{
	struct npim_stat *st = calloc(
		(size_t)(shape.n_layers + 1) * NPIM_A_COUNT, sizeof(*st));
	float *logits = malloc(shape.vocab * sizeof(float));
	struct np_ref_float *r;
	struct np_quant_calib *c;

	ck_assert_ptr_nonnull(st);
	ck_assert_ptr_nonnull(logits);
	ck_assert_int_eq(np_ref_float_create(m, n, 1, &r), 0);
	for (uint32_t i = 0; i < n; i++)
		ck_assert_int_eq(
			npim_ref_float_forward(r, 0, i, tok[i], logits, st), 0);
	np_ref_float_destroy(r);
	ck_assert_int_eq(npim_calib_from_stats(shape.n_layers, st, &c), 0);
	ck_assert_int_eq(np_quant_calib_export(c, out, len), 0);
	np_quant_calib_destroy(c);
	free(st);
	free(logits);
}

START_TEST(threads_equal_sequential)
{
	static const uint32_t counts[] = {1, 37};
	size_t len = (shape.n_layers + 1) * NP_QUANT_CALIB_ROW;
	float *want = malloc(len * sizeof(float)),
	      *got = malloc(len * sizeof(float));
	struct np_model *m;
	int32_t tok[37];

	ck_assert_int_eq(
		np_model_synthetic_arch(fams[_i], &shape, 11, NULL, &m), 0);
	for (uint32_t i = 0; i < 37; i++)
		tok[i] = (int32_t)((i * 97 + 5) % shape.vocab);
	for (int k = 0; k < 2; k++) {
		uint32_t n = counts[k];

		sequential(m, tok, n, want, len);
		for (uint32_t th = 1; th <= 4; th += 2) {
			struct np_quant_calib *c;

			ck_assert_int_eq(
				npim_quant_calibrate_threads(m, tok, n, th, &c),
				0);
			ck_assert_uint_eq(np_quant_calib_len(c), len);
			ck_assert_int_eq(np_quant_calib_export(c, got, len), 0);
			ck_assert_msg(!memcmp(want, got, len * sizeof(float)),
				      "%s, %u tokens, %u threads: scales "
				      "differ from the token-by-token pass",
				      fams[_i], n, th);
			np_quant_calib_destroy(c);
		}
	}
	free(want);
	free(got);
	np_model_destroy(m);
}
END_TEST

START_TEST(export_import)
{
	size_t len = (shape.n_layers + 1) * NP_QUANT_CALIB_ROW;
	float *a = malloc(len * sizeof(float)),
	      *b = malloc(len * sizeof(float));
	struct np_quant_calib *c, *d;
	struct np_model *m;
	int32_t tok[5] = {1, 2, 3, 4, 5};

	ck_assert_int_eq(np_model_synthetic_arch("llama", &shape, 3, NULL, &m),
			 0);
	ck_assert_int_eq(np_quant_calibrate(m, tok, 5, &c), 0);
	ck_assert_int_eq(np_quant_calib_export(c, a, len - 1), -EINVAL);
	ck_assert_int_eq(np_quant_calib_export(c, a, len), 0);
	ck_assert_int_eq(np_quant_calib_import(m, a, len - 1, &d), -EINVAL);
	ck_assert_ptr_null(d);
	ck_assert_int_eq(np_quant_calib_import(m, a, len, &d), 0);
	ck_assert_int_eq(np_quant_calib_export(d, b, len), 0);
	ck_assert_mem_eq(a, b, len * sizeof(float));
	np_quant_calib_destroy(d);
	a[3] = -a[3];
	ck_assert_int_eq(np_quant_calib_import(m, a, len, &d), -EINVAL);
	np_quant_calib_destroy(c);
	np_model_destroy(m);
	free(a);
	free(b);
}
END_TEST

Suite *np_suite_calib(void)
{
	Suite *s = suite_create("calib");
	TCase *tc = tcase_create("calib");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, threads_equal_sequential, 0,
			    (int)(sizeof(fams) / sizeof(fams[0])));
	tcase_add_test(tc, export_import);
	suite_add_tcase(s, tc);
	return s;
}
