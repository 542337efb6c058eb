// SPDX-License-Identifier: MIT
/*
 * npk_simd_vector: the AVX-512 VNNI vector kernels picked by npk_simd.c:
 * requantisation, softmax weights and attention's weighted sums of int4
 * V rows.
 */
#include "npk_simd_priv.h"

#include <string.h>

#include "npk.h"
#include "npk_tables.h"

#if defined(__x86_64__) && defined(__GNUC__)
/* GCC 12's AVX-512 headers self-initialise their "undefined" vectors and
 * then warn about them where they inline (GCC bug 105593) */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#ifndef __clang__
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

/* npk_requant on 8 values at a time: |acc * m| <= 2^62, so adding the
 * rounding half cannot overflow and the shift is exact */
NPK_VNNI void npk_requant_vnni(int32_t *acc, const void *rq, uint32_t n,
			       int32_t lo, int32_t hi)
{
	const __m512i one = _mm512_set1_epi64(1), c62 = _mm512_set1_epi64(62);
	const __m512i vlo = _mm512_set1_epi64(lo), vhi = _mm512_set1_epi64(hi);
	uint32_t r = 0;

	for (; r < n; r += 8) {
		__mmask8 m =
			n - r >= 8 ? 0xff : (__mmask8)((1u << (n - r)) - 1);
		__m512i x = _mm512_cvtepi32_epi64(
			_mm256_maskz_loadu_epi32(m, acc + r));
		__m512i q = _mm512_maskz_loadu_epi64(m, (const uint8_t *)rq +
								(size_t)r * 8);
		__m512i sh = _mm512_srli_epi64(q, 32);
		__m512i p = _mm512_mul_epi32(x, q);
		__m512i half =
			_mm512_sllv_epi64(one, _mm512_sub_epi64(sh, one));
		__m512i y = _mm512_srav_epi64(_mm512_add_epi64(p, half), sh);

		/* shift 0: the product itself (half is 0); over 62: 0 */
		y = _mm512_maskz_mov_epi64(_mm512_cmple_epu64_mask(sh, c62), y);
		y = _mm512_min_epi64(_mm512_max_epi64(y, vlo), vhi);
		_mm256_mask_storeu_epi32(acc + r, m, _mm512_cvtepi64_epi32(y));
	}
}

/* 32 nibbles of v (16 bytes) times w, added to o[0, 32) */
NPK_VNNI void npk_wsum4_vnni(int32_t *o, const uint8_t *v, uint32_t n,
			     int32_t w)
{
	const __m512i m0f = _mm512_set1_epi32(15), m8 = _mm512_set1_epi32(8);
	const __m512i lo_idx = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19,
						3, 18, 2, 17, 1, 16, 0);
	const __m512i hi_idx = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12,
						27, 11, 26, 10, 25, 9, 24, 8);
	const __m512i wv = _mm512_set1_epi32(w);
	uint32_t d = 0;

	for (; d + 32 <= n; d += 32) {
		__m512i x = _mm512_cvtepu8_epi32(
			_mm_loadu_si128((const void *)(v + d / 2)));
		/* sign-extended nibbles: (n ^ 8) - 8 */
		__m512i lo = _mm512_sub_epi32(
			_mm512_xor_si512(_mm512_and_si512(x, m0f), m8), m8);
		__m512i hi = _mm512_sub_epi32(
			_mm512_xor_si512(_mm512_srli_epi32(x, 4), m8), m8);
		/* column order: lo0 hi0 lo1 hi1 ... */
		__m512i c0 = _mm512_permutex2var_epi32(lo, lo_idx, hi);
		__m512i c1 = _mm512_permutex2var_epi32(lo, hi_idx, hi);

		_mm512_storeu_si512(
			o + d, _mm512_add_epi32(_mm512_loadu_si512(o + d),
						_mm512_mullo_epi32(c0, wv)));
		_mm512_storeu_si512(
			o + d + 16,
			_mm512_add_epi32(_mm512_loadu_si512(o + d + 16),
					 _mm512_mullo_epi32(c1, wv)));
	}
	for (; d < n; d += 2) {
		uint8_t b = v[d / 2];

		o[d] = (int32_t)((uint32_t)o[d] +
				 (uint32_t)w *
					 (uint32_t)((b & 15) - ((b & 8) << 1)));
		o[d + 1] =
			(int32_t)((uint32_t)o[d + 1] +
				  (uint32_t)w * (uint32_t)((b >> 4) -
							   ((b & 0x80) >> 3)));
	}
}

/*
 * npk_wsumv_isa for heads (compile-time) <= 4: 32 dimensions at a time,
 * their sums for every head in registers while the positions go by, so a
 * V row is read and unpacked once for all heads.
 */
NPK_VNNI static inline __attribute__((always_inline)) void
npk_wsumv_heads(const uint8_t *v, size_t row_bytes, uint32_t n, uint32_t hd,
		const int32_t *w, size_t w_n, const uint32_t heads, int32_t *o,
		size_t o_n)
{
	const __m512i m0f = _mm512_set1_epi32(15), m8 = _mm512_set1_epi32(8);
	const __m512i lo_idx = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19,
						3, 18, 2, 17, 1, 16, 0);
	const __m512i hi_idx = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12,
						27, 11, 26, 10, 25, 9, 24, 8);
	uint32_t d = 0;

	for (; d + 32 <= hd; d += 32) {
		__m512i s0[4], s1[4];

		for (uint32_t j = 0; j < heads; j++) {
			s0[j] = _mm512_loadu_si512(o + j * o_n + d);
			s1[j] = _mm512_loadu_si512(o + j * o_n + d + 16);
		}
		for (uint32_t t = 0; t < n; t++) {
			__m512i x = _mm512_cvtepu8_epi32(_mm_loadu_si128(
				(const void *)(v + t * row_bytes + d / 2)));
			/* sign-extended nibbles: (n ^ 8) - 8 */
			__m512i lo = _mm512_sub_epi32(
				_mm512_xor_si512(_mm512_and_si512(x, m0f), m8),
				m8);
			__m512i hi = _mm512_sub_epi32(
				_mm512_xor_si512(_mm512_srli_epi32(x, 4), m8),
				m8);
			/* column order: lo0 hi0 lo1 hi1 ... */
			__m512i c0 = _mm512_permutex2var_epi32(lo, lo_idx, hi);
			__m512i c1 = _mm512_permutex2var_epi32(lo, hi_idx, hi);

			for (uint32_t j = 0; j < heads; j++) {
				__m512i wv = _mm512_set1_epi32(w[j * w_n + t]);

				s0[j] = _mm512_add_epi32(
					s0[j], _mm512_mullo_epi32(c0, wv));
				s1[j] = _mm512_add_epi32(
					s1[j], _mm512_mullo_epi32(c1, wv));
			}
		}
		for (uint32_t j = 0; j < heads; j++) {
			_mm512_storeu_si512(o + j * o_n + d, s0[j]);
			_mm512_storeu_si512(o + j * o_n + d + 16, s1[j]);
		}
	}
	if (d < hd)
		for (uint32_t j = 0; j < heads; j++)
			for (uint32_t t = 0; t < n; t++)
				npk_wsum4_isa(NPK_ISA_C, o + j * o_n + d,
					      v + t * row_bytes + d / 2, hd - d,
					      w[j * w_n + t]);
}

NPK_VNNI void npk_wsumv_vnni(const uint8_t *v, size_t row_bytes, uint32_t n,
			     uint32_t hd, const int32_t *w, size_t w_n,
			     uint32_t heads, int32_t *o, size_t o_n)
{
	for (uint32_t j = 0; j < heads; j += 4) {
		uint32_t h = heads - j < 4 ? heads - j : 4;
		const int32_t *wj = w + j * w_n;
		int32_t *oj = o + j * o_n;

		if (h == 4)
			npk_wsumv_heads(v, row_bytes, n, hd, wj, w_n, 4, oj,
					o_n);
		else if (h == 3)
			npk_wsumv_heads(v, row_bytes, n, hd, wj, w_n, 3, oj,
					o_n);
		else if (h == 2)
			npk_wsumv_heads(v, row_bytes, n, hd, wj, w_n, 2, oj,
					o_n);
		else
			npk_wsumv_heads(v, row_bytes, n, hd, wj, w_n, 1, oj,
					o_n);
	}
}

/* npk_wsumv8_isa for up to 4 heads: 32 columns of int8 V rows,
 * sign-extended to int32, at a time */
NPK_VNNI static inline __attribute__((always_inline)) void
npk_wsumv8_heads(const uint8_t *v, size_t row_bytes, uint32_t n, uint32_t hd,
		 const int32_t *w, size_t w_n, const uint32_t heads, int32_t *o,
		 size_t o_n)
{
	uint32_t d = 0;

	for (; d + 32 <= hd; d += 32) {
		__m512i s0[4], s1[4];

		for (uint32_t j = 0; j < heads; j++) {
			s0[j] = _mm512_loadu_si512(o + j * o_n + d);
			s1[j] = _mm512_loadu_si512(o + j * o_n + d + 16);
		}
		for (uint32_t t = 0; t < n; t++) {
			const uint8_t *vt = v + t * row_bytes + d;
			__m512i c0 = _mm512_cvtepi8_epi32(
				_mm_loadu_si128((const void *)vt));
			__m512i c1 = _mm512_cvtepi8_epi32(
				_mm_loadu_si128((const void *)(vt + 16)));

			for (uint32_t j = 0; j < heads; j++) {
				__m512i wv = _mm512_set1_epi32(w[j * w_n + t]);

				s0[j] = _mm512_add_epi32(
					s0[j], _mm512_mullo_epi32(c0, wv));
				s1[j] = _mm512_add_epi32(
					s1[j], _mm512_mullo_epi32(c1, wv));
			}
		}
		for (uint32_t j = 0; j < heads; j++) {
			_mm512_storeu_si512(o + j * o_n + d, s0[j]);
			_mm512_storeu_si512(o + j * o_n + d + 16, s1[j]);
		}
	}
	for (uint32_t j = 0; j < heads; j++)
		for (uint32_t t = 0; t < n; t++)
			for (uint32_t e = d; e < hd; e++)
				o[j * o_n +
				  e] = (int32_t)((uint32_t)o[j * o_n + e] +
						 (uint32_t)w[j * w_n + t] *
							 (uint32_t)(int32_t)(int8_t)
								 v[t * row_bytes +
								   e]);
}

NPK_VNNI void npk_wsumv8_vnni(const uint8_t *v, size_t row_bytes, uint32_t n,
			      uint32_t hd, const int32_t *w, size_t w_n,
			      uint32_t heads, int32_t *o, size_t o_n)
{
	for (uint32_t j = 0; j < heads; j += 4) {
		uint32_t h = heads - j < 4 ? heads - j : 4;
		const int32_t *wj = w + j * w_n;
		int32_t *oj = o + j * o_n;

		if (h == 4)
			npk_wsumv8_heads(v, row_bytes, n, hd, wj, w_n, 4, oj,
					 o_n);
		else if (h == 3)
			npk_wsumv8_heads(v, row_bytes, n, hd, wj, w_n, 3, oj,
					 o_n);
		else if (h == 2)
			npk_wsumv8_heads(v, row_bytes, n, hd, wj, w_n, 2, oj,
					 o_n);
		else
			npk_wsumv8_heads(v, row_bytes, n, hd, wj, w_n, 1, oj,
					 o_n);
	}
}

/*
 * npk_softmax_isa, 16 scores at a time. max >= p[t], so max - p[t] is
 * exact as an unsigned 32-bit difference before the clamp to INT32_MAX;
 * the requantisation product (< 2^62) and its rounding take 64-bit lanes.
 * exp2: e = 256 n + i gives round(tab[i] / 2^(15 + n)), tab[i] <= 2^30:
 * for n <= 16 the rounding fits 32 unsigned bits (tab[i] + 2^30 <= 2^31;
 * n = 16 rounds tab[0] = 2^30 up to 1), beyond it the result is 0, as
 * npk_exp2_neg_q8 gives.
 */
NPK_VNNI static inline __m512i
npk_softmax_rq(__m512i x, __m512i m, __m512i half, __m128i sh, __m512i keep)
{
	__m512i y = _mm512_sra_epi64(
		_mm512_add_epi64(_mm512_mul_epi32(x, m), half), sh);

	/* into [0, INT32_MAX]; a shift over 62 gives 0 */
	y = _mm512_max_epi64(y, _mm512_setzero_si512());
	y = _mm512_min_epi64(y, _mm512_set1_epi64(INT32_MAX));
	return _mm512_and_si512(y, keep);
}

NPK_VNNI int64_t npk_softmax_vnni(int32_t *p, uint32_t n, int32_t max,
				  const void *rq)
{
	const __m512i vmax = _mm512_set1_epi32(max);
	const __m512i imax = _mm512_set1_epi32(INT32_MAX);
	const __m512i one = _mm512_set1_epi32(1), c15 = _mm512_set1_epi32(15);
	const __m512i c16 = _mm512_set1_epi32(16);
	const __m512i b255 = _mm512_set1_epi32(255);
	__m512i m, half, keep, vsum = _mm512_setzero_si512();
	__m128i shv;
	struct npk_rq q;
	uint32_t sh;

	memcpy(&q, rq, sizeof(q));
	sh = (uint32_t)q.shift;
	m = _mm512_set1_epi64(q.m);
	half = _mm512_set1_epi64(sh && sh <= 62 ? (int64_t)1 << (sh - 1) : 0);
	keep = _mm512_set1_epi64(sh <= 62 ? -1 : 0);
	shv = _mm_cvtsi32_si128((int)(sh <= 62 ? sh : 0));
	for (uint32_t t = 0; t < n; t += 16) {
		__mmask16 k =
			n - t >= 16 ? 0xffff : (__mmask16)((1u << (n - t)) - 1);
		__m512i x = _mm512_maskz_loadu_epi32(k, p + t);
		/* max - p, clamped to INT32_MAX */
		__m512i d = _mm512_min_epu32(_mm512_sub_epi32(vmax, x), imax);
		__m512i lo = npk_softmax_rq(
			_mm512_cvtepu32_epi64(_mm512_castsi512_si256(d)), m,
			half, shv, keep);
		__m512i hi = npk_softmax_rq(
			_mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(d, 1)),
			m, half, shv, keep);
		__m512i e = _mm512_inserti64x4(
			_mm512_castsi256_si512(_mm512_cvtepi64_epi32(lo)),
			_mm512_cvtepi64_epi32(hi), 1);
		__m512i nn = _mm512_srli_epi32(e, 8);
		__m512i v =
			_mm512_i32gather_epi32(_mm512_and_si512(e, b255),
					       (const void *)npk_exp2_tab, 4);
		__m512i s = _mm512_add_epi32(nn, c15);
		__m512i w = _mm512_srlv_epi32(
			_mm512_add_epi32(
				v, _mm512_sllv_epi32(one,
						     _mm512_sub_epi32(s, one))),
			s);

		w = _mm512_maskz_mov_epi32(_mm512_cmple_epu32_mask(nn, c16) & k,
					   w);
		_mm512_mask_storeu_epi32(p + t, k, w);
		vsum = _mm512_add_epi64(
			vsum,
			_mm512_add_epi64(
				_mm512_cvtepu32_epi64(
					_mm512_castsi512_si256(w)),
				_mm512_cvtepu32_epi64(
					_mm512_extracti64x4_epi64(w, 1))));
	}
	return _mm512_reduce_add_epi64(vsum);
}

#pragma GCC diagnostic pop

#endif
