// SPDX-License-Identifier: MIT
/*
 * The row dequantisers against blocks built by hand: each test lays out
 * one block byte by byte from ggml-common.h's definition and states the
 * floats it must decode to, derived in the comments from the bit layout
 * (no second decoder computes them). Scales are powers of two so every
 * expected value is exact. Every sub-scale and min slot is probed, both
 * states of each high bit, and each nibble half. Then the writer's
 * quantisers: a round trip per writable type within the type's error,
 * the llama.cpp fallback for rows that do not fit 256-element blocks, and
 * the reader's refusal of rows that are not whole blocks.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

struct probe {
	int e; /* element of the block */
	float v; /* its value, derived by hand */
};

/*
 * Decode `blk` (one block of `type`) as a 2 x 2-block tensor whose four
 * blocks are all `blk`: the probes must hold in every copy, so the row
 * and block strides are checked too.
 */
static void check_block(enum np_ggml_type type, const uint8_t *blk,
			const struct probe *pr, size_t n_pr)
{
	uint32_t elems, bytes;
	struct np_gguf_tensor t = {.name = "hand", .type = type, .n_dims = 2};
	uint8_t *data;
	float *row;

	ck_assert_int_eq(np_ggml_type_block(type, &elems, &bytes), 0);
	ck_assert(np_ggml_type_readable(type));
	data = malloc(4 * bytes);
	row = malloc(2 * elems * sizeof(float));
	ck_assert_ptr_nonnull(data);
	ck_assert_ptr_nonnull(row);
	for (int i = 0; i < 4; i++)
		memcpy(data + i * bytes, blk, bytes);
	t.ne[0] = 2 * elems;
	t.ne[1] = 2;
	t.ne[2] = t.ne[3] = 1;
	t.n_elems = 4 * elems;
	t.size = 4 * bytes;
	t.data = data;
	for (uint64_t r = 0; r < 2; r++) {
		ck_assert_int_eq(np_gguf_tensor_row(&t, r, row), 0);
		for (size_t i = 0; i < n_pr; i++) {
			for (uint32_t b = 0; b < 2; b++) {
				float got = row[b * elems + (uint32_t)pr[i].e];

				ck_assert_msg(got == pr[i].v,
					      "%s row %llu block %u element "
					      "%d: %g, expected %g",
					      np_ggml_type_name(type),
					      (unsigned long long)r, b, pr[i].e,
					      (double)got, (double)pr[i].v);
			}
		}
	}
	ck_assert_int_eq(np_gguf_tensor_row(&t, 2, row), -ERANGE);
	free(row);
	free(data);
}

#define CHECK(type, blk, pr) \
	check_block(type, blk, pr, sizeof(pr) / sizeof(pr[0]))

/* f16 bit patterns of the scales used below */
#define H_0_25 0x00, 0x34
#define H_0_5 0x00, 0x38
#define H_1 0x00, 0x3c
#define H_2 0x00, 0x40
#define H_M2 0x00, 0xc0

START_TEST(test_float_types)
{
	/* F16: 1.0, -2.0, the largest half, the smallest subnormal
	 * (2^-24), -0.0, and 0x3555 = (1 + 341/1024) / 4 */
	static const uint8_t f16[] = {0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b,
				      0x01, 0x00, 0x00, 0x80, 0x55, 0x35};
	static const struct probe pf16[] = {
		{0, 1.0f},     {1, -2.0f}, {2, 65504.0f},
		{3, 0x1p-24f}, {4, -0.0f}, {5, 0.333251953125f},
	};
	/* BF16: the top half of a float: 0x3f80 1.0, 0xc040 -3.0,
	 * 0x4049 = 2 * (1 + 73/128) = 3.140625, 0x0001 the float
	 * 0x00010000 = 2^-133 (subnormal), 0x7f80 +inf */
	static const uint8_t bf16[] = {0x80, 0x3f, 0x40, 0xc0, 0x49,
				       0x40, 0x01, 0x00, 0x80, 0x7f};
	static const struct probe pbf16[] = {
		{0, 1.0f},	{1, -3.0f},    {2, 3.140625f},
		{3, 0x1p-133f}, {4, INFINITY},
	};
	float f = -1.5f;
	uint8_t f32[4];
	static const struct probe pf32[] = {{0, -1.5f}};

	/* one element per block: each value is its own block 0 */
	for (size_t i = 0; i < sizeof(pf16) / sizeof(pf16[0]); i++)
		check_block(NP_GGML_F16, f16 + 2 * pf16[i].e,
			    &(struct probe){0, pf16[i].v}, 1);
	for (size_t i = 0; i < sizeof(pbf16) / sizeof(pbf16[0]); i++)
		check_block(NP_GGML_BF16, bf16 + 2 * pbf16[i].e,
			    &(struct probe){0, pbf16[i].v}, 1);
	memcpy(f32, &f, 4);
	CHECK(NP_GGML_F32, f32, pf32);
	/* -0.0 really is negative zero */
	{
		struct np_gguf_tensor t = {.type = NP_GGML_F16,
					   .n_dims = 1,
					   .ne = {1, 1, 1, 1},
					   .n_elems = 1,
					   .size = 2,
					   .data = f16 + 8};
		float v;

		ck_assert_int_eq(np_gguf_tensor_row(&t, 0, &v), 0);
		ck_assert(signbit(v));
	}
}
END_TEST

/* qs[j] = j | (15 - j) << 4: element j (low nibble) is j, element
 * j + 16 (high nibble) is 15 - j. */
static void nibbles(uint8_t *qs)
{
	for (int j = 0; j < 16; j++)
		qs[j] = (uint8_t)(j | (15 - j) << 4);
}

START_TEST(test_legacy_types)
{
	uint8_t b[34];
	/* Q4_0, d 0.5: (q - 8) * d */
	static const struct probe q4_0[] = {
		{0, -4.0f}, {5, -1.5f}, {15, 3.5f}, {16, 3.5f}, {31, -4.0f},
	};
	/* Q4_1, d 0.5, m -2: q * d + m */
	static const struct probe q4_1[] = {
		{0, -2.0f}, {5, 0.5f},	{15, 5.5f},
		{16, 5.5f}, {20, 3.5f}, {31, -2.0f},
	};
	/*
	 * Q5_0, d 0.25, qh bytes 0f f0 33 cc: fifth bits of elements
	 * 0-3 and 12-15 set, 4-11 clear; of elements 16 + j set for
	 * j = 0, 1, 4, 5, 10, 11, 14, 15. (q - 16) * d:
	 * e0 16 -> 0; e3 19 -> .75; e4 4 -> -3; e12 28 -> 3; e15 31 ->
	 * 3.75; e16 15|16 -> 3.75; e18 13 -> -.75; e21 10|16 -> 2.5;
	 * e24 7 -> -2.25; e26 5|16 -> 1.25; e31 0|16 -> 0.
	 */
	static const struct probe q5_0[] = {
		{0, 0.0f},    {3, 0.75f},  {4, -3.0f},	 {12, 3.0f},
		{15, 3.75f},  {16, 3.75f}, {18, -0.75f}, {21, 2.5f},
		{24, -2.25f}, {26, 1.25f}, {31, 0.0f},
	};
	/* Q5_1, d 0.5, m 1, the same qh and nibbles: q * d + m */
	static const struct probe q5_1[] = {
		{0, 9.0f},   {4, 3.0f},	 {15, 16.5f}, {18, 7.5f},
		{21, 14.0f}, {24, 4.5f}, {31, 9.0f},
	};
	/* Q8_0, d 0.5, qs[j] = 8j - 128: (8j - 128) * d */
	static const struct probe q8_0[] = {
		{0, -64.0f},
		{1, -60.0f},
		{16, 0.0f},
		{31, 60.0f},
	};
	/* IQ4_NL, d 2: d * level[q], levels -127 -104 -83 -65 -49 -35
	 * -22 -10 1 13 25 38 53 69 89 113 */
	static const struct probe iq4[] = {
		{0, -254.0f}, {7, -20.0f}, {8, 2.0f},	  {15, 226.0f},
		{16, 226.0f}, {20, 76.0f}, {31, -254.0f},
	};
	static const uint8_t qh5[4] = {0x0f, 0xf0, 0x33, 0xcc};

	memcpy(b, (uint8_t[]){H_0_5}, 2);
	nibbles(b + 2);
	CHECK(NP_GGML_Q4_0, b, q4_0);

	memcpy(b, (uint8_t[]){H_0_5, H_M2}, 4);
	nibbles(b + 4);
	CHECK(NP_GGML_Q4_1, b, q4_1);

	memcpy(b, (uint8_t[]){H_0_25}, 2);
	memcpy(b + 2, qh5, 4);
	nibbles(b + 6);
	CHECK(NP_GGML_Q5_0, b, q5_0);

	memcpy(b, (uint8_t[]){H_0_5, H_1}, 4);
	memcpy(b + 4, qh5, 4);
	nibbles(b + 8);
	CHECK(NP_GGML_Q5_1, b, q5_1);

	memcpy(b, (uint8_t[]){H_0_5}, 2);
	for (int j = 0; j < 32; j++)
		b[2 + j] = (uint8_t)(int8_t)(8 * j - 128);
	CHECK(NP_GGML_Q8_0, b, q8_0);

	memcpy(b, (uint8_t[]){H_2}, 2);
	nibbles(b + 2);
	CHECK(NP_GGML_IQ4_NL, b, iq4);
}
END_TEST

/*
 * Q2_K: scales[s] = s | (15 - s) << 4 (scale s, min 15 - s of sub-block
 * s = e / 16), every qs byte 0xe4 (2-bit fields 0, 1, 2, 3 from bit 0)
 * except qs[5] and qs[53] = 0x1b (fields 3, 2, 1, 0); d 1, dmin 0.5.
 * Element e: n = e / 128, field (e % 128) / 32 of qs[32n + e % 32];
 * value s * q - 0.5 * (15 - s).
 */
START_TEST(test_q2_k)
{
	static const struct probe pr[] = {
		/* first element of each sub-block: q = (e % 128) / 32 */
		{0, -7.5f},
		{16, -7.0f},
		{32, -4.5f},
		{48, -3.0f},
		{64, 2.5f},
		{80, 5.0f},
		{96, 13.5f},
		{112, 17.0f},
		{128, -3.5f},
		{144, -3.0f},
		{160, 7.5f},
		{176, 9.0f},
		{192, 22.5f},
		{208, 25.0f},
		{224, 41.5f},
		{240, 45.0f},
		/* qs[5]: e37 s2 q2 -> 4 - 6.5; e69 s4 q1 -> 4 - 5.5;
		 * e101 s6 q0 -> -4.5. qs[53]: e149 s9 q3 -> 27 - 3;
		 * e181 s11 q2 -> 22 - 2 */
		{37, -2.5f},
		{69, -1.5f},
		{101, -4.5f},
		{149, 24.0f},
		{181, 20.0f},
	};
	uint8_t b[84];

	for (int s = 0; s < 16; s++)
		b[s] = (uint8_t)(s | (15 - s) << 4);
	memset(b + 16, 0xe4, 64);
	b[16 + 5] = 0x1b;
	b[16 + 53] = 0x1b;
	memcpy(b + 80, (uint8_t[]){H_1, H_0_5}, 4);
	CHECK(NP_GGML_Q2_K, b, pr);
}
END_TEST

/*
 * Q3_K, d 0.5. The 6-bit scales S0..S15 = 1 10 20 33 40 50 63 0 17 31
 * 32 45 5 60 48 36 (signed S - 32 = -31 -22 -12 1 8 18 31 -32 -15 -1 0
 * 13 -27 28 16 4): scales[k] = low(S_k) | low(S_k+8) << 4 for k < 8,
 * scales[8 + i] = high(S_i) | high(S_i+4) << 2 | high(S_i+8) << 4 |
 * high(S_i+12) << 6 (high = S >> 4):
 *   11 fa 04 d1 58 c2 0f 40 | 18 dc ed a2.
 * qs all 0xe4 (low bits q2 = (e % 128) / 32 = b % 4, b = e / 32);
 * hmask[l] = 0x55 for even l, 0xaa for odd l, so the third bit of
 * element e (hmask[e % 32] bit b) is set when e % 32 + b is even; a
 * clear third bit subtracts 4. Value 0.5 * (S - 32) * q.
 */
START_TEST(test_q3_k)
{
	static const struct probe pr[] = {
		/* sub-block s: e = 16s (even l) and 16s + 1 (odd l) */
		{0, 0.0f}, /* -31 * 0 */
		{1, 62.0f}, /* -31 * -4 */
		{16, 0.0f},    {17, 44.0f}, /* -22: 0, -4 */
		{32, 18.0f},   {33, -6.0f}, /* -12: -3, 1 */
		{48, -1.5f},   {49, 0.5f}, /* 1: -3, 1 */
		{64, 8.0f},    {65, -8.0f}, /* 8: 2, -2 */
		{80, 18.0f},   {81, -18.0f}, /* 18: 2, -2 */
		{96, -15.5f},  {97, 46.5f}, /* 31: -1, 3 */
		{112, 16.0f},  {113, -48.0f}, /* -32: -1, 3 */
		{128, 0.0f},   {129, 30.0f}, /* -15: 0, -4 */
		{144, 0.0f},   {145, 2.0f}, /* -1: 0, -4 */
		{160, 0.0f},   {161, 0.0f}, /* 0 */
		{176, -19.5f}, {177, 6.5f}, /* 13: -3, 1 */
		{192, -27.0f}, {193, 27.0f}, /* -27: 2, -2 */
		{208, 28.0f},  {209, -28.0f}, /* 28: 2, -2 */
		{224, -8.0f},  {225, 24.0f}, /* 16: -1, 3 */
		{240, -2.0f},  {241, 6.0f}, /* 4: -1, 3 */
	};
	static const uint8_t scales[12] = {0x11, 0xfa, 0x04, 0xd1, 0x58, 0xc2,
					   0x0f, 0x40, 0x18, 0xdc, 0xed, 0xa2};
	uint8_t b[110];

	for (int l = 0; l < 32; l++)
		b[l] = l % 2 ? 0xaa : 0x55;
	memset(b + 32, 0xe4, 64);
	memcpy(b + 96, scales, 12);
	memcpy(b + 108, (uint8_t[]){H_0_5}, 2);
	CHECK(NP_GGML_Q3_K, b, pr);
}
END_TEST

/*
 * The 12 scale bytes of Q4_K/Q5_K for scales 1 17 33 63 5 20 48 62 and
 * mins 2 30 40 0 9 63 16 33 of sub-blocks 0..7: for j < 4 scales[j] =
 * sc_j | (sc_j+4 >> 4) << 6 and scales[j + 4] = m_j | (m_j+4 >> 4) << 6;
 * scales[8 + i] = (sc_i+4 & 15) | (m_i+4 & 15) << 4.
 */
static const uint8_t k4_scales[12] = {0x01, 0x51, 0xe1, 0xff, 0x02, 0xde,
				      0x68, 0x80, 0x95, 0xf4, 0x00, 0x1e};

/* qs[k] = (k & 15) | (15 - (k & 15)) << 4: element 32j + t of an even
 * sub-block j is t % 16, of an odd one 15 - t % 16. */
static void k_nibbles(uint8_t *qs)
{
	for (int k = 0; k < 128; k++)
		qs[k] = (uint8_t)((k & 15) | (15 - (k & 15)) << 4);
}

/* Q4_K, d 1, dmin 0.5: sc_j * q - 0.5 * m_j, probes t = 0 and 7 */
START_TEST(test_q4_k)
{
	static const struct probe pr[] = {
		{0, -1.0f},    {7, 6.0f}, /* 1, 2: q 0, 7 */
		{32, 240.0f},  {39, 121.0f}, /* 17, 30: q 15, 8 */
		{64, -20.0f},  {71, 211.0f}, /* 33, 40 */
		{96, 945.0f},  {103, 504.0f}, /* 63, 0 */
		{128, -4.5f},  {135, 30.5f}, /* 5, 9 */
		{160, 268.5f}, {167, 128.5f}, /* 20, 63 */
		{192, -8.0f},  {199, 328.0f}, /* 48, 16 */
		{224, 913.5f}, {231, 479.5f}, /* 62, 33 */
	};
	uint8_t b[144];

	memcpy(b, (uint8_t[]){H_1, H_0_5}, 4);
	memcpy(b + 4, k4_scales, 12);
	k_nibbles(b + 16);
	CHECK(NP_GGML_Q4_K, b, pr);
}
END_TEST

/*
 * Q5_K, d 1, dmin 1, the Q4_K scales and nibbles, qh[l] = 0x5a (bits 1
 * 3 4 6) for even l and 0xa5 (bits 0 2 5 7) for odd l: the fifth bit of
 * element 32j + t is bit j of qh[t]. sc_j * (q + 16 h) - m_j.
 */
START_TEST(test_q5_k)
{
	static const struct probe pr[] = {
		{0, -2.0f},    {7, 21.0f}, /* 1, 2: 0, 7+16 */
		{32, 497.0f},  {39, 106.0f}, /* 17, 30: 15+16, 8 */
		{64, -40.0f},  {71, 719.0f}, /* 33, 40: 0, 7+16 */
		{96, 1953.0f}, {103, 504.0f}, /* 63, 0: 15+16, 8 */
		{128, 71.0f},  {135, 26.0f}, /* 5, 9: 0+16, 7 */
		{160, 237.0f}, {167, 417.0f}, /* 20, 63: 15, 8+16 */
		{192, 752.0f}, {199, 320.0f}, /* 48, 16: 0+16, 7 */
		{224, 897.0f}, {231, 1455.0f}, /* 62, 33: 15, 8+16 */
	};
	uint8_t b[176];

	memcpy(b, (uint8_t[]){H_1, H_1}, 4);
	memcpy(b + 4, k4_scales, 12);
	for (int l = 0; l < 32; l++)
		b[16 + l] = l % 2 ? 0xa5 : 0x5a;
	k_nibbles(b + 48);
	CHECK(NP_GGML_Q5_K, b, pr);
}
END_TEST

/*
 * Q6_K, d 0.5, int8 scales -128 -100 -50 -7 -1 1 5 17 33 64 100 127
 * -64 2 3 -3 (sub-block e / 16). ql[k] = (k & 15) | (15 - (k & 15)) <<
 * 4; qh[l] = 0xe4 in the first half (2-bit fields 0 1 2 3), 0x1b in the
 * second (3 2 1 0). Element e: half h = e / 128, quarter k = e % 128 /
 * 32, l = e % 32; nibble low (k < 2) or high of ql[64h + l + 32 (k & 1)]
 * = l % 16 or 15 - l % 16; top bits field k of qh[32h + l];
 * value 0.5 * scale * ((nibble | top << 4) - 32).
 */
START_TEST(test_q6_k)
{
	static const struct probe pr[] = {
		{0, 2048.0f},  {5, 1728.0f}, /* -128: -32, -27 */
		{16, 1600.0f}, {21, 1350.0f}, /* -100 */
		{32, 400.0f},  {37, 275.0f}, /* -50: -16, -11 */
		{48, 56.0f},   {53, 38.5f}, /* -7 */
		{64, -7.5f},   {69, -5.0f}, /* -1: 15, 10 */
		{80, 7.5f},    {85, 5.0f}, /* 1 */
		{96, 77.5f},   {101, 65.0f}, /* 5: 31, 26 */
		{112, 263.5f}, {117, 221.0f}, /* 17 */
		{128, 264.0f}, {133, 346.5f}, /* 33: 16, 21 */
		{144, 512.0f}, {149, 672.0f}, /* 64 */
		{160, 0.0f},   {165, 250.0f}, /* 100: 0, 5 */
		{176, 0.0f},   {181, 317.5f}, /* 127 */
		{192, 32.0f},  {197, 192.0f}, /* -64: -1, -6 */
		{208, -1.0f},  {213, -6.0f}, /* 2 */
		{224, -25.5f}, {229, -33.0f}, /* 3: -17, -22 */
		{240, 25.5f},  {245, 33.0f}, /* -3 */
	};
	static const int8_t sc[16] = {-128, -100, -50, -7,  -1,	 1, 5, 17,
				      33,   64,	  100, 127, -64, 2, 3, -3};
	uint8_t b[210];

	k_nibbles(b);
	memset(b + 128, 0xe4, 32);
	memset(b + 160, 0x1b, 32);
	memcpy(b + 192, sc, 16);
	memcpy(b + 208, (uint8_t[]){H_0_5}, 2);
	CHECK(NP_GGML_Q6_K, b, pr);
}
END_TEST

/* Deterministic values in -1..1 with a few outliers, rows x cols */
static float *sample_rows(uint64_t n)
{
	float *x = malloc(n * sizeof(float));
	uint32_t s = 12345;

	ck_assert_ptr_nonnull(x);
	for (uint64_t i = 0; i < n; i++) {
		s = s * 1664525u + 1013904223u;
		x[i] = ((float)(s >> 8) / 8388608.0f - 1.0f) *
		       (i % 97 == 0 ? 3.0f : 1.0f);
	}
	return x;
}

/* Write every writable type, read it back: the error stays within the
 * type's resolution (max over |x| of each row), and the reader takes
 * the writer's sizes. */
START_TEST(test_writer_round_trip)
{
	static const struct {
		enum np_ggml_type type;
		/* max error / max |x| of the row: half a step, more where
		 * round to nearest clamps the value opposite the
		 * sub-block's largest (ggml's scale search avoids that) */
		float tol;
	} tt[] = {
		{NP_GGML_F32, 0.0f},	{NP_GGML_F16, 0.001f},
		{NP_GGML_BF16, 0.004f}, {NP_GGML_Q8_0, 0.005f},
		{NP_GGML_Q6_K, 0.035f}, {NP_GGML_Q5_0, 0.07f},
		{NP_GGML_Q5_1, 0.03f},	{NP_GGML_Q5_K, 0.04f},
		{NP_GGML_Q4_0, 0.13f},	{NP_GGML_Q4_1, 0.06f},
		{NP_GGML_Q4_K, 0.08f},	{NP_GGML_IQ4_NL, 0.13f},
		{NP_GGML_Q3_K, 0.3f},	{NP_GGML_Q2_K, 0.4f},
	};
	const uint64_t rows = 3, cols = 512;
	float *x = sample_rows(rows * cols), row[512];
	int n_writable = 0;

	for (int ty = 0; ty < 64; ty++)
		n_writable += np_ggml_type_writable((enum np_ggml_type)ty);
	ck_assert_int_eq(n_writable, (int)(sizeof(tt) / sizeof(tt[0])));
	for (size_t i = 0; i < sizeof(tt) / sizeof(tt[0]); i++) {
		struct np_gguf_writer *w;
		struct np_gguf *g;
		const struct np_gguf_tensor *t;
		uint32_t elems, bytes;
		void *buf;
		size_t len;

		ck_assert(np_ggml_type_writable(tt[i].type));
		ck_assert(np_ggml_type_readable(tt[i].type));
		ck_assert_int_eq(np_gguf_writer_create(&w), 0);
		ck_assert_int_eq(np_gguf_writer_tensor(w, "t", tt[i].type, rows,
						       cols, 1, x),
				 0);
		ck_assert_int_eq(np_gguf_writer_buf(w, &buf, &len), 0);
		np_gguf_writer_destroy(w);
		ck_assert_int_eq(np_gguf_open_mem(buf, len, &tst_log, &g), 0);
		t = np_gguf_find_tensor(g, "t");
		ck_assert_ptr_nonnull(t);
		ck_assert_int_eq(t->type, tt[i].type);
		ck_assert_int_eq(np_ggml_type_block(t->type, &elems, &bytes),
				 0);
		ck_assert_uint_eq(t->size, rows * cols / elems * bytes);
		for (uint64_t r = 0; r < rows; r++) {
			const float *xr = x + r * cols;
			float amax = 0.0f, err = 0.0f;

			ck_assert_int_eq(np_gguf_tensor_row(t, r, row), 0);
			for (uint64_t c = 0; c < cols; c++) {
				amax = fmaxf(amax, fabsf(xr[c]));
				err = fmaxf(err, fabsf(row[c] - xr[c]));
			}
			ck_assert_msg(err <= tt[i].tol * amax,
				      "%s row %llu: error %g of max %g",
				      np_ggml_type_name(tt[i].type),
				      (unsigned long long)r, (double)err,
				      (double)amax);
		}
		np_gguf_close(g);
		free(buf);
	}
	free(x);
}
END_TEST

/* An all-zero row stays zero in every type (no 0/0 in the scales) */
START_TEST(test_writer_zero_rows)
{
	float z[256] = {0}, row[256];

	for (int ty = 0; ty < 64; ty++) {
		struct np_gguf_writer *w;
		struct np_gguf *g;
		void *buf;
		size_t len;

		if (!np_ggml_type_writable((enum np_ggml_type)ty))
			continue;
		ck_assert_int_eq(np_gguf_writer_create(&w), 0);
		ck_assert_int_eq(np_gguf_writer_tensor(w, "z",
						       (enum np_ggml_type)ty, 1,
						       256, 1, z),
				 0);
		ck_assert_int_eq(np_gguf_writer_buf(w, &buf, &len), 0);
		np_gguf_writer_destroy(w);
		ck_assert_int_eq(np_gguf_open_mem(buf, len, &tst_log, &g), 0);
		ck_assert_int_eq(
			np_gguf_tensor_row(np_gguf_tensor(g, 0), 0, row), 0);
		for (int c = 0; c < 256; c++)
			ck_assert_msg(row[c] == 0.0f, "%s element %d: %g",
				      np_ggml_type_name((enum np_ggml_type)ty),
				      c, (double)row[c]);
		np_gguf_close(g);
		free(buf);
	}
}
END_TEST

START_TEST(test_writer_refuses)
{
	struct np_gguf_writer *w;
	float x[300] = {0};

	ck_assert_int_eq(np_gguf_writer_create(&w), 0);
	/* a K-quant row must be whole 256-element super-blocks */
	ck_assert_int_eq(
		np_gguf_writer_tensor(w, "a", NP_GGML_Q4_K, 1, 288, 1, x),
		-EINVAL);
	ck_assert_int_eq(
		np_gguf_writer_tensor(w, "b", NP_GGML_IQ4_NL, 1, 48, 1, x),
		-EINVAL);
	/* types np reads but does not write, and unknown ones */
	ck_assert_int_eq(
		np_gguf_writer_tensor(w, "c", NP_GGML_IQ2_XXS, 1, 256, 1, x),
		-EINVAL);
	ck_assert_int_eq(np_gguf_writer_tensor(w, "d", (enum np_ggml_type)4, 1,
					       256, 1, x),
			 -EINVAL);
	np_gguf_writer_destroy(w);
}
END_TEST

START_TEST(test_type_table)
{
	enum np_ggml_type t;
	uint32_t elems, bytes;

	/* llama-quantize's fallbacks for rows that are not whole blocks */
	ck_assert_int_eq(np_ggml_type_for_row(NP_GGML_Q4_K, 512), NP_GGML_Q4_K);
	ck_assert_int_eq(np_ggml_type_for_row(NP_GGML_Q2_K, 704),
			 NP_GGML_IQ4_NL);
	ck_assert_int_eq(np_ggml_type_for_row(NP_GGML_Q3_K, 704),
			 NP_GGML_IQ4_NL);
	ck_assert_int_eq(np_ggml_type_for_row(NP_GGML_Q4_K, 704), NP_GGML_Q5_0);
	ck_assert_int_eq(np_ggml_type_for_row(NP_GGML_Q5_K, 704), NP_GGML_Q5_1);
	ck_assert_int_eq(np_ggml_type_for_row(NP_GGML_Q6_K, 704), NP_GGML_Q8_0);
	ck_assert_int_eq(np_ggml_type_for_row(NP_GGML_Q6_K, 100), NP_GGML_F16);
	ck_assert_int_eq(np_ggml_type_for_row(NP_GGML_Q8_0, 100), NP_GGML_Q8_0);
	/* names both ways, case-insensitive */
	ck_assert_int_eq(np_ggml_type_from_name("q4_k", &t), 0);
	ck_assert_int_eq(t, NP_GGML_Q4_K);
	ck_assert_int_eq(np_ggml_type_from_name("BF16", &t), 0);
	ck_assert_int_eq(t, NP_GGML_BF16);
	ck_assert_int_eq(np_ggml_type_from_name("q4_k_m", &t), -ENOENT);
	ck_assert_str_eq(np_ggml_type_name(NP_GGML_IQ4_NL), "IQ4_NL");
	ck_assert_ptr_null(np_ggml_type_name((enum np_ggml_type)4));
	/* block sizes of ggml-common.h */
	ck_assert_int_eq(np_ggml_type_block(NP_GGML_Q3_K, &elems, &bytes), 0);
	ck_assert_uint_eq(elems, 256);
	ck_assert_uint_eq(bytes, 110);
	ck_assert_int_eq(np_ggml_type_block(NP_GGML_IQ4_XS, &elems, &bytes), 0);
	ck_assert_uint_eq(bytes, 136);
	ck_assert_int_eq(
		np_ggml_type_block((enum np_ggml_type)5, &elems, &bytes),
		-EINVAL);
	/* known, not read: the row reader says so */
	ck_assert(!np_ggml_type_readable(NP_GGML_IQ2_XXS));
	ck_assert(!np_ggml_type_readable(NP_GGML_Q8_K));
	{
		uint8_t blk[66] = {0};
		float row[256];
		struct np_gguf_tensor tn = {.type = NP_GGML_IQ2_XXS,
					    .n_dims = 1,
					    .ne = {256, 1, 1, 1},
					    .n_elems = 256,
					    .size = 66,
					    .data = blk};

		ck_assert_int_eq(np_gguf_tensor_row(&tn, 0, row), -ENOTSUP);
	}
}
END_TEST

/* A file whose Q6_K tensor rows are not whole 256-element blocks is
 * refused naming the tensor, the type and the shape. */
START_TEST(test_reader_refuses_partial_block)
{
	struct np_gguf_writer *w;
	struct np_gguf *g;
	float x[512] = {0};
	uint8_t *buf;
	size_t len, at;
	uint64_t cols = 320;

	ck_assert_int_eq(np_gguf_writer_create(&w), 0);
	ck_assert_int_eq(np_gguf_writer_tensor(w, "blk.0.ffn_down.weight",
					       NP_GGML_Q6_K, 2, 256, 1, x),
			 0);
	ck_assert_int_eq(np_gguf_writer_buf(w, (void **)&buf, &len), 0);
	np_gguf_writer_destroy(w);
	/* header (24 bytes), no metadata, the tensor info: name (length,
	 * bytes), n_dims, ne[0] */
	at = 24 + 8 + strlen("blk.0.ffn_down.weight") + 4;
	ck_assert_int_eq(memcmp(buf + 32, "blk.0.ffn_down.weight", 21), 0);
	memcpy(buf + at, &cols, 8);
	tst_reset();
	ck_assert_int_eq(np_gguf_open_mem(buf, len, &tst_log, &g), -EINVAL);
	ck_assert_msg(strstr(tst_last, "blk.0.ffn_down.weight") &&
			      strstr(tst_last, "Q6_K") &&
			      strstr(tst_last, "320x2x1x1") &&
			      strstr(tst_last, "256"),
		      "'%s'", tst_last);
	free(buf);
}
END_TEST

Suite *np_suite_dequant(void)
{
	Suite *s = suite_create("dequant");
	TCase *tc = tcase_create("hand");
	TCase *tw = tcase_create("writer");

	tcase_add_test(tc, test_float_types);
	tcase_add_test(tc, test_legacy_types);
	tcase_add_test(tc, test_q2_k);
	tcase_add_test(tc, test_q3_k);
	tcase_add_test(tc, test_q4_k);
	tcase_add_test(tc, test_q5_k);
	tcase_add_test(tc, test_q6_k);
	tcase_add_test(tw, test_writer_round_trip);
	tcase_add_test(tw, test_writer_zero_rows);
	tcase_add_test(tw, test_writer_refuses);
	tcase_add_test(tw, test_type_table);
	tcase_add_test(tw, test_reader_refuses_partial_block);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, tw);
	return s;
}
