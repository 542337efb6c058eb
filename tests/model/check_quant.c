// SPDX-License-Identifier: MIT
/* Quantiser and npk integer numerics, against docs/numerics.md. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "npk.h"

START_TEST(test_row_scale)
{
	const float w[4] = {0.5f, -3.5f, 1.0f, 2.0f};
	const float z[3] = {0, 0, 0};

	ck_assert_float_eq(np_quant_row_scale(w, 4, 4), 0.5f);
	ck_assert_float_eq_tol(np_quant_row_scale(w, 4, 8), 3.5f / 127, 1e-9f);
	ck_assert_float_eq(np_quant_row_scale(z, 3, 4), 1.0f);
}
END_TEST

START_TEST(test_row_round_saturate)
{
	/* halves round away from zero; beyond the range saturates */
	const float w[8] = {0.5f, -0.5f, 1.5f, 2.5f, -2.5f, 100, -100, 0.49f};
	int8_t q[8];

	np_quant_row(w, 8, 1.0f, 4, q);
	ck_assert_int_eq(q[0], 1);
	ck_assert_int_eq(q[1], -1);
	ck_assert_int_eq(q[2], 2);
	ck_assert_int_eq(q[3], 3);
	ck_assert_int_eq(q[4], -3);
	ck_assert_int_eq(q[5], 7);
	ck_assert_int_eq(q[6], -8);
	ck_assert_int_eq(q[7], 0);
	np_quant_row(w, 8, 0.5f, 8, q);
	ck_assert_int_eq(q[3], 5);
	ck_assert_int_eq(q[5], 127);
	ck_assert_int_eq(q[6], -128);
}
END_TEST

START_TEST(test_multiplier)
{
	int32_t m, sh;

	ck_assert_int_eq(np_quant_multiplier(1.0, &m, &sh), 0);
	ck_assert_int_eq(m, 1 << 30);
	ck_assert_int_eq(sh, 30);
	ck_assert_int_eq(np_quant_multiplier(0.75, &m, &sh), 0);
	ck_assert_int_eq(m, 1610612736);
	ck_assert_int_eq(sh, 31);
	ck_assert_int_eq(np_quant_multiplier(0.0, &m, &sh), 0);
	ck_assert_int_eq(m, 0);
	ck_assert_int_eq(np_quant_multiplier(4294967296.0, &m, &sh), -ERANGE);
	ck_assert_int_eq(np_quant_multiplier(-1.0, &m, &sh), -ERANGE);
	ck_assert_int_eq(np_quant_multiplier(NAN, &m, &sh), -ERANGE);
	ck_assert_int_eq(np_quant_multiplier(ldexp(1.0, -70), &m, &sh),
			 -ERANGE);
	/* accurate to 2^-30 relative over a wide range */
	for (int i = -31; i <= 30; i++) {
		double f = ldexp(1.2345678901, i);

		ck_assert_int_eq(np_quant_multiplier(f, &m, &sh), 0);
		ck_assert_int_ge(m, 1 << 30);
		ck_assert_int_ge(sh, 0);
		ck_assert_int_le(sh, 62);
		ck_assert_double_le(fabs(ldexp(m, -sh) - f) / f, ldexp(1, -30));
	}
}
END_TEST

START_TEST(test_rshift_requant)
{
	struct npk_rq half = {1 << 30, 31}, one = {1 << 30, 30};

	ck_assert_int_eq(npk_rshift_round(5, 1), 3); /* 2.5 -> 3 */
	ck_assert_int_eq(npk_rshift_round(-5, 1), -2); /* -2.5 -> -2 */
	ck_assert_int_eq(npk_rshift_round(7, 2), 2);
	ck_assert_int_eq(npk_rshift_round(-7, 2), -2);
	ck_assert_int_eq(npk_rshift_round(-6, 2), -1); /* -1.5 -> -1 */
	ck_assert_int_eq(npk_rshift_round(9, 0), 9);
	ck_assert_int_eq(npk_rshift_round(INT64_MAX, 1), (int64_t)1 << 62);
	ck_assert_int_eq(npk_requant(3, half, -8, 7), 2); /* 1.5 -> 2 */
	ck_assert_int_eq(npk_requant(-3, half, -8, 7), -1); /* -1.5 -> -1 */
	ck_assert_int_eq(npk_requant(100, one, -8, 7), 7);
	ck_assert_int_eq(npk_requant(-100, one, -8, 7), -8);
	/* inputs beyond int32 saturate before the multiply */
	ck_assert_int_eq(
		npk_requant((int64_t)1 << 40, one, INT32_MIN, INT32_MAX),
		INT32_MAX);
	ck_assert_int_eq(npk_div_round(5, 2), 3);
	ck_assert_int_eq(npk_div_round(-5, 2), -3);
	ck_assert_int_eq(npk_div_round(4, 3), 1);
	ck_assert_int_eq(npk_div_round(-4, 3), -1);
}
END_TEST

START_TEST(test_isqrt)
{
	for (uint64_t v = 0; v < 70000; v++) {
		uint64_t r = npk_isqrt64(v);

		ck_assert_uint_le(r * r, v);
		ck_assert_uint_gt((r + 1) * (r + 1), v);
	}
	ck_assert_uint_eq(npk_isqrt64(UINT64_MAX), 0xffffffffu);
	ck_assert_uint_eq(npk_isqrt64((uint64_t)1 << 62), (uint64_t)1 << 31);
}
END_TEST

START_TEST(test_sincos)
{
	int32_t s, c;

	npk_sincos(0, &s, &c);
	ck_assert_int_eq(s, 0);
	ck_assert_int_eq(c, 16384);
	npk_sincos(0x40000000u, &s, &c);
	ck_assert_int_eq(s, 16384);
	ck_assert_int_eq(c, 0);
	npk_sincos(0x80000000u, &s, &c);
	ck_assert_int_eq(s, 0);
	ck_assert_int_eq(c, -16384);
	for (uint64_t a = 0; a < ((uint64_t)1 << 32); a += 12345677) {
		double th = (double)a / 4294967296.0 * 2 * M_PI;

		npk_sincos((uint32_t)a, &s, &c);
		ck_assert_double_le(fabs(s - 16384 * sin(th)), 2.0);
		ck_assert_double_le(fabs(c - 16384 * cos(th)), 2.0);
	}
}
END_TEST

START_TEST(test_exp2)
{
	int32_t prev = INT32_MAX;

	ck_assert_int_eq(npk_exp2_neg_q8(0), 32768);
	ck_assert_int_eq(npk_exp2_neg_q8(256), 16384);
	ck_assert_int_eq(npk_exp2_neg_q8(512), 8192);
	ck_assert_int_eq(npk_exp2_neg_q8(-5), 32768);
	ck_assert_int_eq(npk_exp2_neg_q8((int64_t)1 << 40), 0);
	for (int64_t e = 0; e < 256 * 20; e++) {
		int32_t v = npk_exp2_neg_q8(e);

		ck_assert_int_le(v, prev);
		ck_assert_double_le(fabs(v - 32768 * exp2(-e / 256.0)), 1.0);
		prev = v;
	}
}
END_TEST

START_TEST(test_pack_matvec)
{
	int8_t q[256], a[255];
	uint8_t w[2][128];
	int32_t acc[2];

	for (int i = 0; i < 256; i++)
		q[i] = (int8_t)((i % 16) - 8);
	npk_pack4(q, 256, w[0]);
	for (int i = 0; i < 256; i++)
		ck_assert_int_eq(npk_unpack4(w[0], (uint32_t)i), q[i]);
	ck_assert_uint_eq(w[0][0], 0x98); /* -8 low, -7 high */
	for (int i = 0; i < 256; i++)
		q[i] = (int8_t)(7 - (i * 7) % 16);
	npk_pack4(q, 256, w[1]);
	for (int i = 0; i < 255; i++)
		a[i] = (int8_t)((i * 37) % 256 - 128);
	/* odd column count exercises the tail */
	npk_matvec(w[0], 2, 255, 128, 4, a, acc);
	for (int r = 0; r < 2; r++) {
		int32_t want = 0;

		for (int i = 0; i < 255; i++)
			want += npk_unpack4(w[r], (uint32_t)i) * a[i];
		ck_assert_int_eq(acc[r], want);
	}
	npk_matvec((const uint8_t *)a, 1, 255, 255, 8, a, acc);
	{
		int32_t want = 0;

		for (int i = 0; i < 255; i++)
			want += a[i] * a[i];
		ck_assert_int_eq(acc[0], want);
	}
}
END_TEST

START_TEST(test_rmsnorm)
{
	int16_t x[64];
	int8_t q[64];
	/* output scale 1/4: unit RMS -> 4 */
	struct npk_rq rq = {1 << 30, 44};

	for (int i = 0; i < 64; i++)
		x[i] = 1000;
	npk_rmsnorm_q(x, 64, 0, rq, -8, 7, q);
	for (int i = 0; i < 64; i++)
		ck_assert_int_eq(q[i], 4);
	for (int i = 0; i < 64; i++)
		x[i] = (int16_t)(i & 1 ? -3 : 3);
	npk_rmsnorm_q(x, 64, 0, rq, -8, 7, q);
	for (int i = 0; i < 64; i++)
		ck_assert_int_eq(q[i], i & 1 ? -4 : 4);
	/* a single spike: x / rms = sqrt(64) = 8 -> 32, saturated to 7 */
	memset(x, 0, sizeof(x));
	x[5] = -32768;
	npk_rmsnorm_q(x, 64, 0, rq, -8, 7, q);
	ck_assert_int_eq(q[5], -8);
	ck_assert_int_eq(q[6], 0);
	/* all zero, zero epsilon: no division by zero */
	memset(x, 0, sizeof(x));
	npk_rmsnorm_q(x, 64, 0, rq, -8, 7, q);
	for (int i = 0; i < 64; i++)
		ck_assert_int_eq(q[i], 0);
	/* epsilon dominating shrinks the output */
	for (int i = 0; i < 64; i++)
		x[i] = 1;
	npk_rmsnorm_q(x, 64, (uint64_t)3 << 16, rq, -8, 7, q);
	ck_assert_int_eq(q[0], 2); /* 1 / sqrt(1 + 3) * 4 */
}
END_TEST

Suite *np_suite_quant(void)
{
	Suite *s = suite_create("quant");
	TCase *tc = tcase_create("numerics");

	tcase_add_test(tc, test_row_scale);
	tcase_add_test(tc, test_row_round_saturate);
	tcase_add_test(tc, test_multiplier);
	tcase_add_test(tc, test_rshift_requant);
	tcase_add_test(tc, test_isqrt);
	tcase_add_test(tc, test_sincos);
	tcase_add_test(tc, test_exp2);
	tcase_add_test(tc, test_pack_matvec);
	tcase_add_test(tc, test_rmsnorm);
	suite_add_tcase(s, tc);
	return s;
}
