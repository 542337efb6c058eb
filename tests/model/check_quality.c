// SPDX-License-Identifier: MIT
/*
 * Quantization quality (np/quality.h): the figures on hand-made
 * distributions, ggml's Q4_0 / Q8_0 block rounding, the PTQ transforms
 * keeping the float function, and a measurement end to end.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "np/quality.h"
#include "npim.h"
#include "test.h"

START_TEST(test_compare_equal)
{
	const float l[4] = {0.5f, -1.0f, 3.0f, 2.0f};
	struct np_quality_tok t;

	ck_assert_int_eq(np_quality_compare(l, l, 4, &t), 0);
	ck_assert(t.kld == 0.0);
	ck_assert_double_eq_tol(t.cos, 1.0, 1e-15);
	ck_assert_int_eq(t.same_top, 1);
}
END_TEST

START_TEST(test_compare_by_hand)
{
	/* P = (1/2, 1/2), Q = (3/4, 1/4) (softmax ignores the shift of 1):
	 * KL = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3); ties go to index 0 */
	const float r1[2] = {1.0f, 1.0f};
	float t1[2] = {1.0f + logf(3.0f), 1.0f};
	/* logits (2, 1, 0) against (0, 1, 2): log P - log Q = ref - test
	 * (same normaliser), so KL = 2 P0 - 2 P2 = 2 (e^2 - 1) / (e^2 + e
	 * + 1); cosine 1 / (sqrt 5 sqrt 5) = 1/5; tops 0 and 2 */
	const float r2[3] = {2, 1, 0}, t2[3] = {0, 1, 2};
	const double e = M_E;
	struct np_quality_tok t;

	ck_assert_int_eq(np_quality_compare(r1, t1, 2, &t), 0);
	ck_assert_double_eq_tol(t.kld, 0.5 * log(4.0 / 3.0), 1e-7);
	ck_assert_double_eq_tol(
		t.cos, (2.0 + log(3.0)) / (sqrt(2.0) * hypot(1 + log(3.0), 1)),
		1e-7);
	ck_assert_int_eq(t.same_top, 1);
	ck_assert_int_eq(np_quality_compare(r2, t2, 3, &t), 0);
	ck_assert_double_eq_tol(t.kld, 2 * (e * e - 1) / (e * e + e + 1),
				1e-12);
	ck_assert_double_eq_tol(t.cos, 0.2, 1e-15);
	ck_assert_int_eq(t.same_top, 0);
	/* a zero vector: cosine 0 against another, 1 against itself */
	{
		const float z[2] = {0, 0}, o[2] = {1, 0};

		ck_assert_int_eq(np_quality_compare(z, o, 2, &t), 0);
		ck_assert(t.cos == 0.0);
		ck_assert_int_eq(np_quality_compare(z, z, 2, &t), 0);
		ck_assert(t.cos == 1.0);
		ck_assert(t.kld == 0.0);
	}
	t1[1] = NAN;
	ck_assert_int_eq(np_quality_compare(r1, t1, 2, &t), -EINVAL);
	t1[1] = INFINITY;
	ck_assert_int_eq(np_quality_compare(r1, t1, 2, &t), -EINVAL);
	ck_assert_int_eq(np_quality_compare(r1, r1, 0, &t), -EINVAL);
}
END_TEST

START_TEST(test_summarize)
{
	struct np_quality_tok t[200] = {0};
	struct np_quality_sum s;

	/* kld i for i = 1..100 in reverse order, every other top agreeing,
	 * cosine 0.5 and 1 alternately */
	for (int i = 0; i < 100; i++)
		t[i] = (struct np_quality_tok){100 - i, i % 2 ? 1.0 : 0.5,
					       i % 2};
	ck_assert_int_eq(np_quality_summarize(t, 100, &s), 0);
	ck_assert_uint_eq(s.n, 100);
	ck_assert(s.kld_mean == 50.5);
	ck_assert(s.kld_p99 == 99.0); /* the 99th smallest of 100 */
	ck_assert(s.kld_max == 100.0);
	ck_assert(s.same_top == 0.5);
	ck_assert(s.cos_mean == 0.75);
	/* 10 tokens: ceil(9.9) = 10, the largest; 200: the 198th */
	ck_assert_int_eq(np_quality_summarize(t + 90, 10, &s), 0);
	ck_assert(s.kld_p99 == 10.0);
	for (int i = 0; i < 200; i++)
		t[i].kld = i + 1;
	ck_assert_int_eq(np_quality_summarize(t, 200, &s), 0);
	ck_assert(s.kld_p99 == 198.0);
	ck_assert_int_eq(np_quality_summarize(t, 1, &s), 0);
	ck_assert(s.kld_p99 == 1.0);
	ck_assert_int_eq(np_quality_summarize(t, 0, &s), -EINVAL);
}
END_TEST

/* ggml's quantize_row_q4_0_ref: d = (the value of largest |x|) / -8,
 * q = min(15, (int)(x / d + 8.5)), back (q - 8) d */
START_TEST(test_q4_0_block)
{
	struct npim_buf b = {0};
	float x[32], y[32];

	/* x = -16..15: d = 2; an even x comes back, an odd one is x + 1
	 * (x / 2 + 8.5 truncates upwards of the half), 15 saturates to 14 */
	for (int j = 0; j < 32; j++)
		x[j] = (float)(j - 16);
	ck_assert_int_eq(npim_ggml_roundtrip(NP_GGML_Q4_0, x, 32, y, &b), 0);
	for (int j = 0; j < 32; j++) {
		int v = j - 16, want = v == 15 ? 14 : v % 2 ? v + 1 : v;

		ck_assert_msg(y[j] == (float)want, "x %d: %g, want %d", v,
			      (double)y[j], want);
	}
	/* largest |x| positive: d = -16 / 8 = -2, the sign flips the grid:
	 * x = 16 -> q 0 -> 16; x = -15 -> 7.5 + 8.5 = 16 -> 15 -> -14 */
	for (int j = 0; j < 32; j++)
		x[j] = (float)(16 - j);
	ck_assert_int_eq(npim_ggml_roundtrip(NP_GGML_Q4_0, x, 32, y, &b), 0);
	ck_assert(y[0] == 16.0f);
	ck_assert(y[31] == -14.0f);
	free(b.p);
}
END_TEST

/* ggml's quantize_row_q8_0_ref: d = amax / 127 (stored f16), q =
 * roundf(x / d): half away from zero, not to even */
START_TEST(test_q8_0_block)
{
	static const float in[8] = {127,  -0.5f, 0.5f,	1.5f,
				    2.5f, -2.5f, 3.49f, -126.5f};
	static const float want[8] = {127, -1, 1, 2, 3, -3, 3, -127};
	struct npim_buf b = {0};
	float x[32] = {0}, y[32];

	memcpy(x, in, sizeof(in));
	ck_assert_int_eq(npim_ggml_roundtrip(NP_GGML_Q8_0, x, 32, y, &b), 0);
	for (int j = 0; j < 8; j++)
		ck_assert_msg(y[j] == want[j], "x %g: %g, want %g",
			      (double)in[j], (double)y[j], (double)want[j]);
	for (int j = 8; j < 32; j++)
		ck_assert(y[j] == 0.0f);
	/* amax 254: d = 2, 3 / 2 = 1.5 -> 2 -> 4 */
	x[0] = 254;
	x[1] = 3;
	ck_assert_int_eq(npim_ggml_roundtrip(NP_GGML_Q8_0, x, 32, y, &b), 0);
	ck_assert(y[0] == 254.0f);
	ck_assert(y[1] == 4.0f);
	free(b.p);
}
END_TEST

START_TEST(test_mse_clip)
{
	float w[1024], s, a;
	double e[2] = {0, 0};
	int8_t q[1024];

	/* representable at max|w| / 7: no clip ratio does better */
	for (int i = 0; i < 64; i++)
		w[i] = (float)(i % 15 - 7);
	ck_assert(npim_ptq_row_scale(w, 64, 4) == 1.0f);
	/* Laplace-distributed (u spread over (0, 1)): the tail's few large
	 * values cost less clipped than the coarse grid costs every other */
	for (int i = 0; i < 1024; i++) {
		double u = fmod((i + 0.5) * 0.6180339887, 1.0);

		w[i] = (float)((i % 2 ? 1 : -1) * -log(u));
	}
	a = np_quant_row_scale(w, 1024, 4);
	s = npim_ptq_row_scale(w, 1024, 4);
	ck_assert(s < a);
	for (int k = 0; k < 2; k++) {
		float sc = k ? s : a;

		np_quant_row(w, 1024, sc, 4, q);
		for (int i = 0; i < 1024; i++)
			e[k] += (double)(w[i] - q[i] * sc) * (w[i] - q[i] * sc);
	}
	ck_assert(e[1] < e[0]);
	/* INT2: np_quant_row_scale is already the least-error scale; the
	 * clip search keeps it (it once scaled it by 127 and zeroed every
	 * weight) */
	ck_assert(npim_ptq_row_scale(w, 1024, 2) ==
		  np_quant_row_scale(w, 1024, 2));
}
END_TEST

/* Float logits of m and of np_model_ptq(m, flags) agree to rounding */
static void ptq_keeps(const char *family, uint32_t flags)
{
	const struct np_model_shape sh = {2, 64, 4, 2, 96, 256, 64, 0, 1e-5f};
	struct np_model *m, *p;
	struct np_ref_float *a, *b;
	struct np_ptq_opts o = {.flags = flags};
	int32_t tok[12];
	float la[256], lb[256], r0[64], r1[64];

	for (int i = 0; i < 12; i++)
		tok[i] = (i * 37 + 5) % 256;
	ck_assert_int_eq(np_model_synthetic_arch(family, &sh, 3, &tst_log, &m),
			 0);
	ck_assert_int_eq(np_model_ptq(m, tok, 12, &o, &tst_log, &p), 0);
	/* the transform changed the weights it should */
	ck_assert_int_eq(np_model_row(m,
				      flags & NP_PTQ_ROTATE ? NP_T_Q : NP_T_V,
				      1, 3, r0),
			 0);
	ck_assert_int_eq(np_model_row(p,
				      flags & NP_PTQ_ROTATE ? NP_T_Q : NP_T_V,
				      1, 3, r1),
			 0);
	ck_assert(memcmp(r0, r1, sizeof(r0)));
	ck_assert_int_eq(np_ref_float_create(m, 12, 1, &a), 0);
	ck_assert_int_eq(np_ref_float_create(p, 12, 1, &b), 0);
	for (int i = 0; i < 12; i++) {
		double d = 0, n = 0;

		ck_assert_int_eq(np_ref_float_step(a, 0, i, tok[i], la), 0);
		ck_assert_int_eq(np_ref_float_step(b, 0, i, tok[i], lb), 0);
		for (int v = 0; v < 256; v++) {
			d = fmax(d, fabs(la[v] - lb[v]));
			n = fmax(n, fabs(la[v]));
		}
		ck_assert_msg(d <= 1e-4 * n, "%s flags %u token %d: %g of %g",
			      family, flags, i, d, n);
	}
	np_ref_float_destroy(a);
	np_ref_float_destroy(b);
	np_model_destroy(p);
	np_model_destroy(m);
}

START_TEST(test_ptq_keeps_float)
{
	ptq_keeps("llama", NP_PTQ_SMOOTH);
	ptq_keeps("llama", NP_PTQ_ROTATE);
	ptq_keeps("llama", NP_PTQ_ALL);
	/* Q/K/V biases (V's is smoothed), NeoX RoPE */
	ptq_keeps("qwen2", NP_PTQ_ALL);
	/* the four multipliers */
	ptq_keeps("granite", NP_PTQ_ALL);
}
END_TEST

START_TEST(test_ptq_refuses)
{
	const struct np_model_shape odd = {1,	96, 4,	  2,	96,
					   256, 64, 1e4f, 1e-5f};
	struct np_model *m, *p;
	struct np_ptq_opts o = {.flags = NP_PTQ_ROTATE};
	int32_t tok = 1;

	ck_assert_int_eq(np_model_synthetic(&odd, 1, &m), 0);
	tst_reset();
	ck_assert_int_eq(np_model_ptq(m, &tok, 1, &o, &tst_log, &p), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_last, "power of two"));
	o.flags = NP_PTQ_SMOOTH;
	ck_assert_int_eq(np_model_ptq(m, NULL, 0, &o, &tst_log, &p), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_last, "calibration"));
	o.flags = 1u << 7;
	ck_assert_int_eq(np_model_ptq(m, &tok, 1, &o, &tst_log, &p), -EINVAL);
	o.flags = NP_PTQ_SMOOTH;
	o.resv[2] = 1;
	ck_assert_int_eq(np_model_ptq(m, &tok, 1, &o, &tst_log, &p), -EINVAL);
	np_model_destroy(m);
}
END_TEST

START_TEST(test_measure)
{
	const struct np_model_shape sh = {2,   64, 4,	 2,    96,
					  256, 64, 1e4f, 1e-5f};
	struct np_model *m;
	struct np_quality *q;
	struct np_quality_sum s, s2;
	int32_t tok[24], cal[24];
	int computed = 0;

	for (int i = 0; i < 24; i++) {
		tok[i] = (i * 37 + 5) % 256;
		cal[i] = (i * 53 + 11) % 256;
	}
	ck_assert_int_eq(np_model_synthetic(&sh, 5, &m), 0);
	ck_assert_int_eq(np_quality_create(m, tok, 24, &tst_log, &q), 0);
	for (int p = 1; p < NP_PREC_COUNT; p++) {
		struct np_quality_opts o = {.precision = (uint32_t)p};
		int ret = np_quality_measure(q, cal, 24, &o, &s);

		/* modes the compiler does not compute yet say so */
		ck_assert_msg(ret == 0 || ret == -EOPNOTSUPP, "%s: %d",
			      np_precision_name(p), ret);
		if (ret)
			continue;
		computed++;
		ck_assert_uint_eq(s.n, 24);
		ck_assert(s.kld_mean > 0 && s.kld_p99 >= s.kld_mean &&
			  s.kld_max >= s.kld_p99);
		ck_assert(s.cos_mean > 0.3 && s.cos_mean < 1.0);
		ck_assert(s.same_top >= 0 && s.same_top <= 1);
		/* deterministic */
		ck_assert_int_eq(np_quality_measure(q, cal, 24, &o, &s2), 0);
		ck_assert(s.kld_mean == s2.kld_mean);
	}
	ck_assert_int_ge(computed, 1);
	{
		struct np_quality_opts o = {.arith = NP_QUALITY_GGML_Q4_0};

		ck_assert_int_eq(np_quality_measure(q, NULL, 0, &o, &s), 0);
		ck_assert(s.kld_mean > 0 && s.cos_mean > 0.5);
		o.arith = NP_QUALITY_CARDS;
		ck_assert_int_eq(np_quality_measure(q, NULL, 0, &o, &s),
				 -EINVAL);
		o.arith = 9;
		ck_assert_int_eq(np_quality_measure(q, cal, 24, &o, &s),
				 -EINVAL);
	}
	np_quality_destroy(q);
	np_model_destroy(m);
}
END_TEST

Suite *np_suite_quality(void)
{
	Suite *s = suite_create("quality");
	TCase *tc = tcase_create("quality");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_compare_equal);
	tcase_add_test(tc, test_compare_by_hand);
	tcase_add_test(tc, test_summarize);
	tcase_add_test(tc, test_q4_0_block);
	tcase_add_test(tc, test_q8_0_block);
	tcase_add_test(tc, test_mse_clip);
	tcase_add_test(tc, test_ptq_keeps_float);
	tcase_add_test(tc, test_ptq_refuses);
	tcase_add_test(tc, test_measure);
	suite_add_tcase(s, tc);
	return s;
}
