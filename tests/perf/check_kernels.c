// SPDX-License-Identifier: MIT
/*
 * The SIMD matrix-vector kernels (npk_simd.c) against the portable C:
 * every variant this CPU runs must give the same int32 sums bit for bit,
 * on random data, on the extreme values of each precision (where the
 * AVX2 int16 pair sums come closest to saturating and the biased unsigned
 * operands reach 15 and 255), on every tail length, on unaligned rows and
 * vectors, and with garbage in the row padding, which no kernel may read.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "npk.h"
#include "npk_simd.h"

static uint64_t rng_state;

static uint32_t rng(void)
{
	/* xorshift64*: reproducible without libc's rand() state */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

enum fill {
	FILL_RANDOM, /* uniform over the precision */
	FILL_MIN, /* -8 / -128 everywhere */
	FILL_MAX, /* 7 / 127 everywhere */
	FILL_ALTERNATE, /* min, max, min, ... */
};

static int8_t value(enum fill f, uint32_t bits, uint32_t i)
{
	int32_t lo = -(1 << (bits - 1)), hi = (1 << (bits - 1)) - 1;

	switch (f) {
	case FILL_MIN:
		return (int8_t)lo;
	case FILL_MAX:
		return (int8_t)hi;
	case FILL_ALTERNATE:
		return (int8_t)(i & 1 ? hi : lo);
	default:
		return (int8_t)(lo +
				(int32_t)(rng() % (uint32_t)(hi - lo + 1)));
	}
}

/* n bytes of random weights (any byte: packed nibbles, padding) */
static void fill_bytes(uint8_t *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		w[i] = (uint8_t)rng();
}

/* n activations of abits, random or alternating extremes */
static void fill_acts(int8_t *a, size_t n, enum fill f, uint32_t abits)
{
	for (size_t i = 0; i < n; i++)
		a[i] = value(f, abits, (uint32_t)i);
}

/*
 * One comparison: rows x cols weights of `bits`, activations of abits
 * (w4a4 uses int4 activations, w4a8 the FFN's down projection int8 ones),
 * w and a shifted by wofs/aofs bytes from an aligned buffer.
 */
static void compare(uint32_t rows, uint32_t cols, uint32_t bits, uint32_t abits,
		    enum fill wf, enum fill af, uint32_t wofs, uint32_t aofs)
{
	uint32_t used = bits == 4 ? (cols + 1) / 2 :
			bits == 2 ? (cols + 3) / 4 :
				    cols;
	uint32_t row_bytes = used + rng() % 3;
	uint8_t *wbuf = malloc((size_t)rows * row_bytes + wofs + 1);
	int8_t *abuf = malloc((size_t)cols + aofs + 1);
	int8_t *q = malloc((size_t)cols + 1);
	int32_t *ref = malloc((size_t)rows * 4),
		*got = malloc((size_t)rows * 4);
	uint8_t *w = wbuf + wofs;
	int8_t *a = abuf + aofs;

	ck_assert_ptr_nonnull(wbuf);
	ck_assert_ptr_nonnull(abuf);
	ck_assert_ptr_nonnull(q);
	ck_assert_ptr_nonnull(ref);
	ck_assert_ptr_nonnull(got);
	/* padding and the high nibble past an odd row end: garbage */
	for (size_t i = 0; i < (size_t)rows * row_bytes + 1; i++)
		wbuf[wofs + i] = (uint8_t)rng();
	for (uint32_t r = 0; r < rows; r++) {
		for (uint32_t c = 0; c < cols; c++)
			q[c] = value(wf, bits, c);
		if (bits == 2) {
			npk_pack2(q, cols, w + (size_t)r * row_bytes);
		} else if (bits == 4) {
			uint8_t last = w[(size_t)r * row_bytes + used - 1];

			npk_pack4(q, cols, w + (size_t)r * row_bytes);
			if (cols & 1)
				w[(size_t)r * row_bytes + used - 1] =
					(uint8_t)((last & 0xf0) |
						  ((uint8_t)q[cols - 1] & 15));
		} else {
			memcpy(w + (size_t)r * row_bytes, q, cols);
		}
	}
	for (uint32_t c = 0; c < cols; c++)
		a[c] = value(af, abits, c);
	npk_matvec_c(w, rows, cols, row_bytes, bits, a, ref);
	for (int isa = 0; isa < NPK_ISA_N; isa++) {
		if (!npk_isa_available((enum npk_isa)isa))
			continue;
		memset(got, 0x5a, (size_t)rows * 4);
		npk_matvec_isa((enum npk_isa)isa, w, rows, cols, row_bytes,
			       bits, a, got);
		for (uint32_t r = 0; r < rows; r++)
			ck_assert_msg(got[r] == ref[r],
				      "%s: w%ua%u rows %u cols %u fill %d/%d "
				      "row %u: %d, portable %d",
				      npk_isa_name((enum npk_isa)isa), bits,
				      abits, rows, cols, wf, af, r, got[r],
				      ref[r]);
	}
	npk_matvec(w, rows, cols, row_bytes, bits, a, got);
	ck_assert_mem_eq(got, ref, (size_t)rows * 4);
	free(wbuf);
	free(abuf);
	free(q);
	free(ref);
	free(got);
}

static const uint32_t col_list[] = {1,	 2,   3,   31,	 32,   33,  63,
				    64,	 65,  127, 128,	 129,  255, 256,
				    257, 511, 700, 1024, 2816, 4097};
static const struct {
	uint32_t bits, abits;
} prec[] = {{4, 4}, {4, 8}, {8, 8}, {2, 8}};

START_TEST(tails_and_alignment)
{
	rng_state = 0x9e3779b97f4a7c15ull + (uint64_t)_i;
	for (size_t p = 0; p < sizeof(prec) / sizeof(prec[0]); p++)
		for (size_t k = 0; k < sizeof(col_list) / sizeof(col_list[0]);
		     k++)
			compare(1 + rng() % 5, col_list[k], prec[p].bits,
				prec[p].abits, FILL_RANDOM, FILL_RANDOM,
				(uint32_t)_i % 4, (uint32_t)(_i * 3) % 5);
}
END_TEST

START_TEST(extreme_values)
{
	static const enum fill fills[] = {FILL_MIN, FILL_MAX, FILL_ALTERNATE,
					  FILL_RANDOM};

	rng_state = 42;
	for (size_t p = 0; p < sizeof(prec) / sizeof(prec[0]); p++)
		for (size_t i = 0; i < 4; i++)
			for (size_t j = 0; j < 4; j++) {
				compare(3, 1024, prec[p].bits, prec[p].abits,
					fills[i], fills[j], 0, 0);
				compare(2, 129, prec[p].bits, prec[p].abits,
					fills[i], fills[j], 1, 3);
			}
}
END_TEST

/* the largest row a program may have (NPK_MAX_DIM inputs): int8 -128 *
 * -128 sums to 2^30, the biased VNNI sum to more than 2^31 before the
 * correction brings it back */
START_TEST(longest_rows)
{
	rng_state = 7;
	compare(2, 65536, 8, 8, FILL_MIN, FILL_MIN, 0, 0);
	compare(2, 65536, 8, 8, FILL_MAX, FILL_MIN, 0, 0);
	compare(2, 65536, 4, 8, FILL_MAX, FILL_MIN, 0, 0);
	compare(2, 65535, 4, 8, FILL_MIN, FILL_MIN, 1, 1);
}
END_TEST

/* npk_matmul_isa: n tokens with their own strides, as n matvecs */
START_TEST(multi_token)
{
	static const uint32_t cols[] = {1, 63, 64, 129, 1024, 2049, 2816};

	rng_state = 1234 + (uint64_t)_i;
	for (size_t p = 0; p < sizeof(prec) / sizeof(prec[0]); p++)
		for (size_t ci = 0; ci < sizeof(cols) / sizeof(cols[0]); ci++)
			for (uint32_t n = 1; n <= 9; n++) {
				uint32_t bits = prec[p].bits, C = cols[ci];
				/* up to 11 rows: the SIMD kernels take
				 * them 4 at a time, and the medium
				 * shape gives a core 11 */
				uint32_t rows = 1 + rng() % 11;
				uint32_t row_bytes = (bits == 4 ? (C + 1) / 2 :
						      bits == 2 ? (C + 3) / 4 :
								  C) +
						     rng() % 4;
				size_t a_n = C + rng() % 5, acc_n = rows + 3;
				uint8_t *w = malloc((size_t)rows * row_bytes);
				int8_t *a = malloc(a_n * n);
				int32_t *ref = malloc(acc_n * n * 4);
				int32_t *got = malloc(acc_n * n * 4);

				ck_assert_ptr_nonnull(w);
				ck_assert_ptr_nonnull(a);
				ck_assert_ptr_nonnull(ref);
				ck_assert_ptr_nonnull(got);
				fill_bytes(w, (size_t)rows * row_bytes);
				fill_acts(a, a_n * n,
					  _i & 1 ? FILL_ALTERNATE : FILL_RANDOM,
					  prec[p].abits);
				memset(ref, 0x11, acc_n * n * 4);
				for (uint32_t k = 0; k < n; k++)
					npk_matvec_c(w, rows, C, row_bytes,
						     bits, a + k * a_n,
						     ref + k * acc_n);
				for (int isa = 0; isa < NPK_ISA_N; isa++) {
					if (!npk_isa_available(
						    (enum npk_isa)isa))
						continue;
					memset(got, 0x11, acc_n * n * 4);
					npk_matmul_isa((enum npk_isa)isa, w,
						       rows, C, row_bytes, bits,
						       a, a_n, n, got, acc_n);
					ck_assert_msg(
						!memcmp(got, ref,
							acc_n * n * 4),
						"%s: w%u rows %u cols %u "
						"tokens %u",
						npk_isa_name((enum npk_isa)isa),
						bits, rows, C, n);
				}
				free(w);
				free(a);
				free(ref);
				free(got);
			}
}
END_TEST

/* attention's weighted V sum: every variant against the portable one */
START_TEST(weighted_v_sum)
{
	static const uint32_t ns[] = {2, 4, 30, 32, 34, 64, 96, 128, 130, 1024};
	static const int32_t ws[] = {0, 1, 32768, 12345, -7};

	rng_state = 99;
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
		for (size_t j = 0; j < sizeof(ws) / sizeof(ws[0]); j++) {
			uint32_t n = ns[i];
			uint8_t v[512];
			int32_t ref[1024], got[1024], init[1024];

			for (uint32_t k = 0; k < n / 2; k++)
				v[k] = (uint8_t)(j == 0 ? 0x88 : rng());
			for (uint32_t k = 0; k < n; k++)
				init[k] = (int32_t)rng();
			memcpy(ref, init, n * 4);
			npk_wsum4_isa(NPK_ISA_C, ref, v, n, ws[j]);
			for (int isa = 0; isa < NPK_ISA_N; isa++) {
				if (!npk_isa_available((enum npk_isa)isa))
					continue;
				memcpy(got, init, n * 4);
				npk_wsum4_isa((enum npk_isa)isa, got, v, n,
					      ws[j]);
				ck_assert_msg(!memcmp(got, ref, n * 4),
					      "%s: n %u w %d",
					      npk_isa_name((enum npk_isa)isa),
					      n, ws[j]);
			}
			/* and the portable one is the definition */
			for (uint32_t k = 0; k < n; k++)
				ck_assert_int_eq(
					ref[k],
					(int32_t)((uint32_t)init[k] +
						  (uint32_t)ws[j] *
							  (uint32_t)npk_unpack4(
								  v, k)));
		}
}
END_TEST

/*
 * npk_linear_isa: a matrix split in blocks of rpc rows a stride apart, as
 * a card's cores hold it, with garbage between the blocks, against the
 * portable matvec of each row; token counts from 1 (one register tile or
 * part of one) to past two of the kernel's groups of 32.
 */
START_TEST(blocked_matrix)
{
	static const uint32_t cols[] = {1, 64, 127, 1024, 2816};

	rng_state = 555 + (uint64_t)_i;
	for (size_t p = 0; p < sizeof(prec) / sizeof(prec[0]); p++)
		for (size_t ci = 0; ci < sizeof(cols) / sizeof(cols[0]); ci++)
			for (uint32_t n = 1; n <= 70; n += 1 + n / 4) {
				uint32_t bits = prec[p].bits, C = cols[ci];
				uint32_t rows = 1 + rng() % 23;
				uint32_t rpc = 1 + rng() % 12;
				uint32_t row_bytes = (bits == 4 ? (C + 1) / 2 :
						      bits == 2 ? (C + 3) / 4 :
								  C) +
						     rng() % 3;
				size_t stride =
					(size_t)rpc * row_bytes + rng() % 200;
				size_t blocks = (rows + rpc - 1) / rpc;
				size_t wlen = blocks * stride;
				size_t a_n = C + rng() % 5, acc_n = rows + 2;
				uint8_t *w = malloc(wlen);
				int8_t *a = malloc(a_n * n);
				int32_t *ref = malloc(acc_n * n * 4);
				int32_t *got = malloc(acc_n * n * 4);
				void *tmp = malloc(npk_linear_tmp_size(C));
				struct npk_wmat m = {
					.w = w,
					.stride = stride,
					.rows = rows,
					.cols = C,
					.row_bytes = row_bytes,
					.bits = bits,
					.rpc = rpc,
				};

				ck_assert_ptr_nonnull(w);
				ck_assert_ptr_nonnull(a);
				ck_assert_ptr_nonnull(ref);
				ck_assert_ptr_nonnull(got);
				ck_assert_ptr_nonnull(tmp);
				fill_bytes(w, wlen);
				fill_acts(a, a_n * n,
					  _i & 1 ? FILL_ALTERNATE : FILL_RANDOM,
					  prec[p].abits);
				memset(ref, 0x22, acc_n * n * 4);
				for (uint32_t k = 0; k < n; k++)
					for (uint32_t r = 0; r < rows; r++)
						npk_matvec_c(
							w + r / rpc * stride +
								r % rpc *
									row_bytes,
							1, C, row_bytes, bits,
							a + k * a_n,
							ref + k * acc_n + r);
				/* without working memory, and with
				 * garbage in it */
				memset(tmp, 0xa5, npk_linear_tmp_size(C));
				for (int v = 0; v < 2 * NPK_ISA_N; v++) {
					enum npk_isa isa =
						(enum npk_isa)(v / 2);

					if (!npk_isa_available(isa))
						continue;
					memset(got, 0x22, acc_n * n * 4);
					npk_linear_isa(isa, &m, a, a_n, n, got,
						       acc_n,
						       v & 1 ? tmp : NULL);
					ck_assert_msg(
						!memcmp(got, ref,
							acc_n * n * 4),
						"%s: w%u rows %u rpc %u cols "
						"%u tokens %u tmp %d",
						npk_isa_name(isa), bits, rows,
						rpc, C, n, v & 1);
				}
				free(tmp);
				free(w);
				free(a);
				free(ref);
				free(got);
			}
}
END_TEST

/* npk_requant_isa against npk_requant, on every shift (the validated
 * 0..62 and past them) and on the extreme values of both factors */
START_TEST(requant_rows)
{
	static const int32_t xs[] = {0,		1,     -1,    INT32_MAX,
				     INT32_MIN, 12345, -98765};
	static const int32_t ms[] = {0, 1, INT32_MAX, INT32_MIN, -3, 77777};
	enum { N = 67 };
	struct npk_rq rq[N];
	int32_t in[N], ref[N], got[N];

	rng_state = 4242;
	for (uint32_t round = 0; round < 200; round++) {
		int32_t lo = round % 3 == 0 ? INT32_MIN : -8 - (int32_t)round;
		int32_t hi = round % 3 == 0 ? INT32_MAX : 7 + (int32_t)round;
		uint32_t n = 1 + round % N;

		for (uint32_t r = 0; r < n; r++) {
			in[r] = round & 1 ? xs[rng() % 7] : (int32_t)rng();
			rq[r].m = round & 2 ? ms[rng() % 6] : (int32_t)rng();
			rq[r].shift = (int32_t)(rng() % 70);
			if (round % 5 == 0)
				rq[r].shift = (int32_t)rng();
			ref[r] = npk_requant(in[r], rq[r], lo, hi);
		}
		for (int isa = 0; isa < NPK_ISA_N; isa++) {
			if (!npk_isa_available((enum npk_isa)isa))
				continue;
			memcpy(got, in, sizeof(in));
			npk_requant_isa((enum npk_isa)isa, got, rq, n, lo, hi);
			for (uint32_t r = 0; r < n; r++)
				ck_assert_msg(got[r] == ref[r],
					      "%s: %d * %d >> %d in [%d, %d]: "
					      "%d, portable %d",
					      npk_isa_name((enum npk_isa)isa),
					      in[r], rq[r].m, rq[r].shift, lo,
					      hi, got[r], ref[r]);
		}
	}
}
END_TEST

/* npk_softmax_isa against npk_requant + npk_exp2_neg_q8 per score: every
 * shift (the validated 0..62 and past them), scores from close to the
 * maximum to 2^32 below it */
START_TEST(softmax_weights)
{
	enum { N = 300 };
	int32_t init[N], ref[N], got[N];

	rng_state = 2718;
	for (uint32_t round = 0; round < 400; round++) {
		uint32_t n = 1 + rng() % N;
		int32_t max = INT32_MIN;
		struct npk_rq rq = {
			.m = round & 1 ? (int32_t)(rng() >> 1) :
					 (int32_t)(rng() % 70000),
			.shift = (int32_t)(round % 70),
		};
		int64_t want = 0;

		for (uint32_t t = 0; t < n; t++) {
			switch (round % 4) {
			case 0: /* near each other */
				init[t] = (int32_t)(rng() % 5000);
				break;
			case 1: /* anything */
				init[t] = (int32_t)rng();
				break;
			default: /* the extremes */
				init[t] = rng() & 1 ? INT32_MIN : INT32_MAX;
				break;
			}
			max = init[t] > max ? init[t] : max;
		}
		for (uint32_t t = 0; t < n; t++) {
			ref[t] = npk_exp2_neg_q8(npk_requant(
				(int64_t)max - init[t], rq, 0, INT32_MAX));
			want += ref[t];
		}
		for (int isa = 0; isa < NPK_ISA_N; isa++) {
			int64_t sum;

			if (!npk_isa_available((enum npk_isa)isa))
				continue;
			memcpy(got, init, n * 4);
			sum = npk_softmax_isa((enum npk_isa)isa, got, n, max,
					      &rq);
			ck_assert_msg(!memcmp(got, ref, n * 4) && sum == want,
				      "%s: n %u m %d shift %d round %u",
				      npk_isa_name((enum npk_isa)isa), n, rq.m,
				      rq.shift, round);
		}
	}
}
END_TEST

/* npk_wsumv_isa: heads sharing V rows, against npk_wsum4 per row */
START_TEST(shared_v_sum)
{
	static const uint32_t hds[] = {2, 30, 32, 64, 66, 128};

	rng_state = 31337;
	for (size_t i = 0; i < sizeof(hds) / sizeof(hds[0]); i++)
		for (uint32_t heads = 1; heads <= 9; heads++) {
			uint32_t hd = hds[i], n = 1 + rng() % 300;
			size_t rowb = hd / 2 + rng() % 3, w_n = n + 3,
			       o_n = hd + 5;
			uint8_t *v = malloc(rowb * n);
			int32_t *w = malloc(w_n * heads * 4);
			int32_t *init = malloc(o_n * heads * 4);
			int32_t *ref = malloc(o_n * heads * 4);
			int32_t *got = malloc(o_n * heads * 4);

			ck_assert_ptr_nonnull(v);
			ck_assert_ptr_nonnull(w);
			ck_assert_ptr_nonnull(init);
			ck_assert_ptr_nonnull(ref);
			ck_assert_ptr_nonnull(got);
			for (size_t k = 0; k < rowb * n; k++)
				v[k] = (uint8_t)rng();
			for (size_t k = 0; k < w_n * heads; k++)
				w[k] = k % 7 ? (int32_t)(rng() % 32769) :
					       (int32_t)rng();
			for (size_t k = 0; k < o_n * heads; k++)
				init[k] = (int32_t)rng();
			memcpy(ref, init, o_n * heads * 4);
			for (uint32_t j = 0; j < heads; j++)
				for (uint32_t t = 0; t < n; t++)
					npk_wsum4_isa(NPK_ISA_C, ref + j * o_n,
						      v + t * rowb, hd,
						      w[j * w_n + t]);
			for (int isa = 0; isa < NPK_ISA_N; isa++) {
				if (!npk_isa_available((enum npk_isa)isa))
					continue;
				memcpy(got, init, o_n * heads * 4);
				npk_wsumv_isa((enum npk_isa)isa, v, rowb, n, hd,
					      w, w_n, heads, got, o_n);
				ck_assert_msg(
					!memcmp(got, ref, o_n * heads * 4),
					"%s: hd %u heads %u rows %u",
					npk_isa_name((enum npk_isa)isa), hd,
					heads, n);
			}
			free(v);
			free(w);
			free(init);
			free(ref);
			free(got);
		}
}
END_TEST

/* npk_wsumv8_isa (INT8 KV cache): every variant against the definition,
 * o += w * (int8)v per column, computed here directly */
START_TEST(shared_v_sum8)
{
	static const uint32_t hds[] = {2, 30, 32, 64, 66, 128};

	rng_state = 4242;
	for (size_t i = 0; i < sizeof(hds) / sizeof(hds[0]); i++)
		for (uint32_t heads = 1; heads <= 9; heads += 2) {
			uint32_t hd = hds[i], n = 1 + rng() % 256;
			size_t rowb = hd + rng() % 3, w_n = n + 3, o_n = hd + 5;
			uint8_t *v = malloc(rowb * n);
			int32_t *w = malloc(w_n * heads * 4);
			int32_t *init = malloc(o_n * heads * 4);
			int32_t *ref = malloc(o_n * heads * 4);
			int32_t *got = malloc(o_n * heads * 4);

			ck_assert_ptr_nonnull(v);
			ck_assert_ptr_nonnull(w);
			ck_assert_ptr_nonnull(init);
			ck_assert_ptr_nonnull(ref);
			ck_assert_ptr_nonnull(got);
			for (size_t k = 0; k < rowb * n; k++)
				v[k] = (uint8_t)(k % 5 ? rng() : 0x80);
			for (size_t k = 0; k < w_n * heads; k++)
				w[k] = k % 7 ? (int32_t)(rng() % 32769) :
					       (int32_t)rng();
			for (size_t k = 0; k < o_n * heads; k++)
				init[k] = (int32_t)rng();
			memcpy(ref, init, o_n * heads * 4);
			for (uint32_t j = 0; j < heads; j++)
				for (uint32_t t = 0; t < n; t++)
					for (uint32_t d = 0; d < hd; d++)
						ref[j * o_n + d] =
							(int32_t)((uint32_t)ref
									  [j * o_n +
									   d] +
								  (uint32_t)w[j * w_n +
									      t] *
									  (uint32_t)(int8_t)
										  v[t * rowb +
										    d]);
			for (int isa = 0; isa < NPK_ISA_N; isa++) {
				if (!npk_isa_available((enum npk_isa)isa))
					continue;
				memcpy(got, init, o_n * heads * 4);
				npk_wsumv8_isa((enum npk_isa)isa, v, rowb, n,
					       hd, w, w_n, heads, got, o_n);
				ck_assert_msg(
					!memcmp(got, ref, o_n * heads * 4),
					"%s: int8 V hd %u heads %u rows %u",
					npk_isa_name((enum npk_isa)isa), hd,
					heads, n);
			}
			free(v);
			free(w);
			free(init);
			free(ref);
			free(got);
		}
}
END_TEST

/* npk_pack2: np_prog.h's blocks of 256 columns, read back by
 * npk_unpack2 and by the field formula written out here */
START_TEST(pack2_layout)
{
	static const uint32_t ns[] = {1, 3, 4, 5, 255, 256, 257, 300, 512, 777};

	rng_state = 2;
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		uint32_t n = ns[i];
		int8_t q[1024];
		uint8_t p[256];

		for (uint32_t c = 0; c < n; c++)
			q[c] = (int8_t)((int32_t)(rng() % 4) - 2);
		memset(p, 0xee, sizeof(p));
		npk_pack2(q, n, p);
		/* exactly ceil(n / 4) bytes written */
		ck_assert_uint_eq(p[(n + 3) / 4], 0xee);
		for (uint32_t c = 0; c < n; c++) {
			uint32_t b = c / 256, j = c % 256;
			uint32_t rest = n - b * 256;
			uint32_t qb = rest >= 256 ? 64 : (rest + 3) / 4;
			int f = (p[b * 64 + j % qb] >> (2 * (j / qb))) & 3;

			ck_assert_int_eq(npk_unpack2(p, n, c), q[c]);
			ck_assert_int_eq(f >= 2 ? f - 4 : f, q[c]);
		}
	}
}
END_TEST

START_TEST(dispatch)
{
	enum npk_isa best = npk_isa_best();

	ck_assert_int_eq(npk_isa_available(NPK_ISA_C), 1);
	ck_assert_int_eq(npk_isa_available(best), 1);
	ck_assert_int_eq(npk_isa_available(NPK_ISA_N), 0);
	ck_assert_str_eq(npk_isa_name(NPK_ISA_C), "c");
	ck_assert_ptr_null(npk_isa_name(NPK_ISA_N));
	/* the best is at least every available one */
	for (int isa = best + 1; isa < NPK_ISA_N; isa++)
		ck_assert_int_eq(npk_isa_available((enum npk_isa)isa), 0);
}
END_TEST

Suite *np_suite_kernels(void)
{
	Suite *s = suite_create("kernels");
	TCase *tc = tcase_create("simd");

	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, tails_and_alignment, 0, 8);
	tcase_add_test(tc, extreme_values);
	tcase_add_test(tc, longest_rows);
	tcase_add_loop_test(tc, multi_token, 0, 2);
	tcase_add_test(tc, weighted_v_sum);
	tcase_add_loop_test(tc, blocked_matrix, 0, 2);
	tcase_add_test(tc, requant_rows);
	tcase_add_test(tc, shared_v_sum);
	tcase_add_test(tc, shared_v_sum8);
	tcase_add_test(tc, pack2_layout);
	tcase_add_test(tc, softmax_weights);
	tcase_add_test(tc, dispatch);
	suite_add_tcase(s, tc);
	return s;
}
