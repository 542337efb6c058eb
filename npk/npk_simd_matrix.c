// SPDX-License-Identifier: MIT
/*
 * npk_simd_matrix: the SIMD matrix-vector products (AVX2 npk_mv4_avx2,
 * npk_mv8_avx2; AVX-512 VNNI npk_linear_vnni for plain and blocked
 * matrices), picked by npk_simd.c.
 *
 * Both instruction sets multiply unsigned by signed bytes, so the signed
 * weight is biased: an int4 nibble n holds w = n - 16 * (n >> 3), and
 * n ^ 8 = w + 8 in 0..15; an int8 byte b ^ 0x80 = w + 128 in 0..255. Then
 * sum (w + k) * a - k * sum a = sum w * a. All sums wrap modulo 2^32, as
 * the portable int32 accumulator does, so the result is the same bit for
 * bit whatever the inputs. The AVX2 vpmaddubsw saturates its int16 pair
 * sums: the int4 pairs reach at most 2 * 15 * 128 = 3840, the int8 kernel
 * widens to int16 and uses vpmaddwd instead.
 */
#include "npk_simd_priv.h"

#if defined(__x86_64__) && defined(__GNUC__)
/* GCC 12's AVX-512 headers self-initialise their "undefined" vectors and
 * then warn about them where they inline (GCC bug 105593) */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#ifndef __clang__
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

/* ---- AVX2 ---- */

NPK_AVX2 static uint32_t npk_hsum256(__m256i v)
{
	__m128i s = _mm_add_epi32(_mm256_castsi256_si128(v),
				  _mm256_extracti128_si256(v, 1));

	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
	return (uint32_t)_mm_cvtsi128_si32(s);
}

/* 16 packed bytes -> 32 biased nibbles (w + 8) in column order */
NPK_AVX2 static __m256i npk_nib_avx2(const uint8_t *p)
{
	__m256i x = _mm256_cvtepu8_epi16(_mm_loadu_si128((const void *)p));

	x = _mm256_or_si256(x, _mm256_slli_epi16(x, 4));
	x = _mm256_and_si256(x, _mm256_set1_epi16(0x0f0f));
	return _mm256_xor_si256(x, _mm256_set1_epi16(0x0808));
}

NPK_AVX2 void npk_mv4_avx2(const uint8_t *w, uint32_t rows, uint32_t cols,
			   uint32_t row_bytes, const int8_t *a, int32_t *acc)
{
	const __m256i one8 = _mm256_set1_epi8(1), one16 = _mm256_set1_epi16(1);
	uint32_t n = cols & ~63u, sum_a;
	__m256i s = _mm256_setzero_si256();

	for (uint32_t c = 0; c < n; c += 32) {
		__m256i p = _mm256_maddubs_epi16(
			one8, _mm256_loadu_si256((const void *)(a + c)));

		s = _mm256_add_epi32(s, _mm256_madd_epi16(p, one16));
	}
	sum_a = npk_hsum256(s);
	for (uint32_t r = 0; r < rows; r++, w += row_bytes) {
		__m256i s0 = _mm256_setzero_si256(), s1 = s0;
		int32_t tail = 0;

		for (uint32_t c = 0; c < n; c += 64) {
			__m256i p0 = _mm256_maddubs_epi16(
				npk_nib_avx2(w + c / 2),
				_mm256_loadu_si256((const void *)(a + c)));
			__m256i p1 = _mm256_maddubs_epi16(
				npk_nib_avx2(w + c / 2 + 16),
				_mm256_loadu_si256((const void *)(a + c + 32)));

			s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(p0, one16));
			s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(p1, one16));
		}
		if (n < cols)
			npk_matvec_c(w + n / 2, 1, cols - n, row_bytes, 4,
				     a + n, &tail);
		acc[r] = (int32_t)(npk_hsum256(_mm256_add_epi32(s0, s1)) -
				   8u * sum_a + (uint32_t)tail);
	}
}

/*
 * int2 (np_prog.h's blocks of 256 columns): field k of a full block's 64
 * bytes holds columns 64 k..64 k + 63, so a shift and a mask per field
 * give 32 biased weights (w + 2, 0..3) in column order per 32 bytes; the
 * last, partial block goes to the portable code, which reads it at its
 * own offset (blocks are self-contained).
 */
NPK_AVX2 void npk_mv2_avx2(const uint8_t *w, uint32_t rows, uint32_t cols,
			   uint32_t row_bytes, const int8_t *a, int32_t *acc)
{
	const __m256i one8 = _mm256_set1_epi8(1), one16 = _mm256_set1_epi16(1);
	const __m256i m3 = _mm256_set1_epi8(3), m2 = _mm256_set1_epi8(2);
	uint32_t n = cols & ~255u, sum_a;
	__m256i s = _mm256_setzero_si256();

	for (uint32_t c = 0; c < n; c += 32) {
		__m256i p = _mm256_maddubs_epi16(
			one8, _mm256_loadu_si256((const void *)(a + c)));

		s = _mm256_add_epi32(s, _mm256_madd_epi16(p, one16));
	}
	sum_a = npk_hsum256(s);
	for (uint32_t r = 0; r < rows; r++, w += row_bytes) {
		__m256i s0 = _mm256_setzero_si256(), s1 = s0;
		int32_t tail = 0;

		for (uint32_t c = 0; c < n; c += 256)
			for (uint32_t h = 0; h < 2; h++) {
				__m256i x = _mm256_loadu_si256(
					(const void *)(w + c / 4 + 32 * h));

				for (uint32_t k = 0; k < 4; k++) {
					__m256i u = _mm256_xor_si256(
						_mm256_and_si256(
							_mm256_srli_epi16(
								x,
								(int)(2 * k)),
							m3),
						m2);
					__m256i p = _mm256_maddubs_epi16(
						u,
						_mm256_loadu_si256((
							const void *)(a + c +
								      64 * k +
								      32 * h)));

					if (k & 1)
						s1 = _mm256_add_epi32(
							s1, _mm256_madd_epi16(
								    p, one16));
					else
						s0 = _mm256_add_epi32(
							s0, _mm256_madd_epi16(
								    p, one16));
				}
			}
		if (n < cols)
			npk_matvec_c(w + n / 4, 1, cols - n, row_bytes, 2,
				     a + n, &tail);
		acc[r] = (int32_t)(npk_hsum256(_mm256_add_epi32(s0, s1)) -
				   2u * sum_a + (uint32_t)tail);
	}
}

NPK_AVX2 void npk_mv8_avx2(const uint8_t *w, uint32_t rows, uint32_t cols,
			   uint32_t row_bytes, const int8_t *a, int32_t *acc)
{
	uint32_t n = cols & ~31u;

	for (uint32_t r = 0; r < rows; r++, w += row_bytes) {
		__m256i s0 = _mm256_setzero_si256(), s1 = s0;
		int32_t tail = 0;

		for (uint32_t c = 0; c < n; c += 32) {
			__m256i w0 = _mm256_cvtepi8_epi16(
				_mm_loadu_si128((const void *)(w + c)));
			__m256i w1 = _mm256_cvtepi8_epi16(
				_mm_loadu_si128((const void *)(w + c + 16)));
			__m256i a0 = _mm256_cvtepi8_epi16(
				_mm_loadu_si128((const void *)(a + c)));
			__m256i a1 = _mm256_cvtepi8_epi16(
				_mm_loadu_si128((const void *)(a + c + 16)));

			s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(w0, a0));
			s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(w1, a1));
		}
		if (n < cols)
			npk_matvec_c(w + n, 1, cols - n, row_bytes, 8, a + n,
				     &tail);
		acc[r] = (int32_t)(npk_hsum256(_mm256_add_epi32(s0, s1)) +
				   (uint32_t)tail);
	}
}

/* ---- AVX-512 VNNI ---- */

/* bytes 0..n-1 of a 64-byte block, n <= 64 */
NPK_VNNI static __mmask64 npk_mask64(uint32_t n)
{
	return n >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << n) - 1;
}

NPK_VNNI static uint32_t npk_sum_a_vnni(const int8_t *a, uint32_t cols)
{
	const __m512i one8 = _mm512_set1_epi8(1);
	__m512i s = _mm512_setzero_si512();

	for (uint32_t c = 0; c < cols; c += 64)
		s = _mm512_dpbusd_epi32(
			s, one8,
			_mm512_maskz_loadu_epi8(npk_mask64(cols - c), a + c));
	return (uint32_t)_mm512_reduce_add_epi32(s);
}

/* the sums of the 16 lanes of a, b, c and d, in that order */
NPK_VNNI static inline __attribute__((always_inline)) __m128i
npk_hsum4x(__m512i a, __m512i b, __m512i c, __m512i d)
{
	/* 128-bit chunks: [a0 + a2, a1 + a3, b0 + b2, b1 + b3] */
	__m512i ab = _mm512_add_epi32(_mm512_shuffle_i64x2(a, b, 0x44),
				      _mm512_shuffle_i64x2(a, b, 0xee));
	__m512i cd = _mm512_add_epi32(_mm512_shuffle_i64x2(c, d, 0x44),
				      _mm512_shuffle_i64x2(c, d, 0xee));
	/* one chunk each for a, b, c, d */
	__m512i x = _mm512_add_epi32(_mm512_shuffle_i64x2(ab, cd, 0x88),
				     _mm512_shuffle_i64x2(ab, cd, 0xdd));

	/* every lane of a chunk: the sum of its four */
	x = _mm512_add_epi32(x, _mm512_shuffle_epi32(x, 0x4e));
	x = _mm512_add_epi32(x, _mm512_shuffle_epi32(x, 0xb1));
	return _mm512_castsi512_si128(_mm512_permutexvar_epi32(
		_mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4,
				 0),
		x));
}

/* ---- blocked matrices (npk_linear_isa) ---- */

#define NPK_LIN_AHEAD 4u /* row tiles fetched ahead, into L2 */
#define NPK_LIN_TILE_T NPK_MM_T /* most tokens of a register tile */

/* The rows of tile [r, r + NPK_MM_R) into L2, as far as m has them. */
NPK_VNNI static inline void npk_fetch_tile(const struct npk_wmat *m, uint32_t r,
					   uint32_t nb)
{
	for (uint32_t i = 0; i < NPK_MM_R && r + i < m->rows; i++) {
		const char *p = (const char *)npk_wrow(m, r + i);

		for (uint32_t j = 0; j < nb; j += 64)
			_mm_prefetch(p + j, _MM_HINT_T1);
	}
}

/*
 * The accumulators of an nr x nt register tile (s, and s2 if two) as nt
 * tokens' sums of nr rows, less bias x sum_a[k], to acc + k * acc_n,
 * [0, nr): a token's row sums are reduced together and stored with one
 * masked store.
 */
NPK_VNNI static inline __attribute__((always_inline)) void
npk_tile_store(__m512i (*s)[NPK_LIN_TILE_T], __m512i (*s2)[NPK_LIN_TILE_T],
	       int two, const uint32_t nr, const uint32_t nt, uint32_t bias,
	       const uint32_t *sum_a, int32_t *acc, size_t acc_n)
{
	for (uint32_t k = 0; k < nt; k++) {
		__mmask8 m = (__mmask8)((1u << nr) - 1);
		__m128i v;

		for (uint32_t r = 0; r < nr; r++)
			if (two)
				s[r][k] = _mm512_add_epi32(s[r][k], s2[r][k]);
		v = npk_hsum4x(s[0][k], s[1][k], s[2][k], s[3][k]);
		_mm_mask_storeu_epi32(
			acc + k * acc_n, m,
			_mm_sub_epi32(v,
				      _mm_set1_epi32((int)(bias * sum_a[k]))));
	}
}

/*
 * nt tokens' dot products with the nr rows w[0..nr) (int4 or int8, bits),
 * written to acc + k * acc_n, [0, nr). sum_a: the tokens' activation sums.
 * Each weight load serves every token and each activation load every row;
 * the nr x nt accumulators stay in registers for the whole row.
 *
 * int4, per 128 columns (64 weight bytes): the low nibbles (even columns)
 * and high nibbles (odd columns) are interleaved back into column order
 * per 128-bit lane, vpunpck{l,h}bw, which leaves u0 with columns 0-15,
 * 32-47, 64-79, 96-111 and u1 with the rest; one vshufi64x2 per half
 * brings a token's 128 activations into the same order. With few
 * accumulators, u0 and u1 get their own, so that enough vpdpbusd chains
 * run at once.
 */
NPK_VNNI static inline __attribute__((always_inline)) void
npk_lin_tile(const uint8_t *const *w, uint32_t cols, const uint32_t bits,
	     const int8_t *a, size_t a_n, const uint32_t *sum_a,
	     const uint32_t nr, const uint32_t nt, int32_t *acc, size_t acc_n)
{
	const __m512i m0f = _mm512_set1_epi8(0x0f), m08 = _mm512_set1_epi8(8);
	const __m512i bias = _mm512_set1_epi8((char)0x80);
	const __m512i zero = _mm512_setzero_si512();
	const int two = nr * nt <= 8;
	__m512i s[NPK_MM_R][NPK_LIN_TILE_T], s2[NPK_MM_R][NPK_LIN_TILE_T];

	for (uint32_t r = 0; r < NPK_MM_R; r++)
		for (uint32_t k = 0; k < nt; k++)
			s[r][k] = s2[r][k] = zero;
	if (bits == 2) {
		const __m512i m03 = _mm512_set1_epi8(3);
		const __m512i m02 = _mm512_set1_epi8(2);

		/* per block of 256 columns (q bytes, np_prog.h): field f of
		 * the bytes is columns f q..f q + q - 1 */
		for (uint32_t c0 = 0; c0 < cols; c0 += 256) {
			uint32_t n = cols - c0 < 256 ? cols - c0 : 256;
			uint32_t q = n == 256 ? 64 : (n + 3) / 4;
			__m512i x[NPK_MM_R];

			for (uint32_t r = 0; r < nr; r++)
				x[r] = _mm512_maskz_loadu_epi8(npk_mask64(q),
							       w[r] + c0 / 4);
			for (uint32_t f = 0; f < 4 && f * q < n; f++) {
				__mmask64 ma = npk_mask64(
					n - f * q < q ? n - f * q : q);
				__m512i u[NPK_MM_R];

				for (uint32_t r = 0; r < nr; r++)
					u[r] = _mm512_ternarylogic_epi32(
						_mm512_srli_epi16(x[r], 2 * f),
						m03, m02, 0x6a);
				for (uint32_t k = 0; k < nt; k++) {
					__m512i ak = _mm512_maskz_loadu_epi8(
						ma, a + k * a_n + c0 + f * q);

					for (uint32_t r = 0; r < nr; r++)
						if (two && (f & 1))
							s2[r]
							  [k] = _mm512_dpbusd_epi32(
								  s2[r][k],
								  u[r], ak);
						else
							s[r]
							 [k] = _mm512_dpbusd_epi32(
								 s[r][k], u[r],
								 ak);
				}
			}
		}
	} else if (bits == 4) {
		uint32_t nb = (cols + 1) / 2;

		for (uint32_t j = 0; j < nb; j += 64) {
			__mmask64 mw = npk_mask64(nb - j);
			__mmask64 ma0 = npk_mask64(cols - 2 * j);
			__mmask64 ma1 = npk_mask64(
				cols - 2 * j > 64 ? cols - 2 * j - 64 : 0);
			__m512i u0[NPK_MM_R], u1[NPK_MM_R];

			for (uint32_t r = 0; r < nr; r++) {
				__m512i x =
					_mm512_maskz_loadu_epi8(mw, w[r] + j);
				__m512i lo = _mm512_ternarylogic_epi32(
					x, m0f, m08, 0x6a);
				__m512i hi = _mm512_ternarylogic_epi32(
					_mm512_srli_epi16(x, 4), m0f, m08,
					0x6a);

				u0[r] = _mm512_unpacklo_epi8(lo, hi);
				u1[r] = _mm512_unpackhi_epi8(lo, hi);
			}
			for (uint32_t k = 0; k < nt; k++) {
				const int8_t *ak = a + k * a_n + 2 * j;
				__m512i a0 = _mm512_maskz_loadu_epi8(ma0, ak);
				__m512i a1 =
					_mm512_maskz_loadu_epi8(ma1, ak + 64);
				__m512i p0 = _mm512_shuffle_i64x2(a0, a1, 0x88);
				__m512i p1 = _mm512_shuffle_i64x2(a0, a1, 0xdd);

				for (uint32_t r = 0; r < nr; r++) {
					s[r][k] = _mm512_dpbusd_epi32(
						s[r][k], u0[r], p0);
					if (two)
						s2[r][k] = _mm512_dpbusd_epi32(
							s2[r][k], u1[r], p1);
					else
						s[r][k] = _mm512_dpbusd_epi32(
							s[r][k], u1[r], p1);
				}
			}
		}
	} else {
		/* with few accumulators, alternate 64-column chunks go to
		 * s and s2: two vpdpbusd chains per pair */
		for (uint32_t c = 0; c < cols; c += 64) {
			__mmask64 m = npk_mask64(cols - c);
			__m512i x[NPK_MM_R];
			const int odd = two && (c & 64);

			for (uint32_t r = 0; r < nr; r++)
				x[r] = _mm512_xor_si512(
					_mm512_maskz_loadu_epi8(m, w[r] + c),
					bias);
			for (uint32_t k = 0; k < nt; k++) {
				__m512i ak = _mm512_maskz_loadu_epi8(
					m, a + k * a_n + c);

				for (uint32_t r = 0; r < nr; r++)
					if (odd)
						s2[r][k] = _mm512_dpbusd_epi32(
							s2[r][k], x[r], ak);
					else
						s[r][k] = _mm512_dpbusd_epi32(
							s[r][k], x[r], ak);
			}
		}
	}
	npk_tile_store(s, s2, two, nr, nt,
		       bits == 4 ? 8u :
		       bits == 2 ? 2u :
				   128u,
		       sum_a, acc, acc_n);
}

/*
 * The int4 rows w[0..nr) unpacked to biased bytes (w + 8) into ub, row r
 * at ub + r * cp, in npk_lin_tile's register order: per 128 columns the
 * 64 of u0, then the 64 of u1. Past the row: 8 (a zero weight), met by
 * the zero activations npk_lin_perm pads with.
 */
NPK_VNNI static void npk_lin_unpack(const uint8_t *const *w, uint32_t nr,
				    uint32_t cols, uint8_t *ub, uint32_t cp)
{
	const __m512i m0f = _mm512_set1_epi8(0x0f), m08 = _mm512_set1_epi8(8);
	uint32_t nb = (cols + 1) / 2;

	for (uint32_t r = 0; r < nr; r++)
		for (uint32_t j = 0; j < cp / 2; j += 64) {
			__m512i x = _mm512_maskz_loadu_epi8(
				j < nb ? npk_mask64(nb - j) : 0, w[r] + j);
			__m512i lo =
				_mm512_ternarylogic_epi32(x, m0f, m08, 0x6a);
			__m512i hi = _mm512_ternarylogic_epi32(
				_mm512_srli_epi16(x, 4), m0f, m08, 0x6a);

			_mm512_storeu_si512(ub + (size_t)r * cp + 2 * j,
					    _mm512_unpacklo_epi8(lo, hi));
			_mm512_storeu_si512(ub + (size_t)r * cp + 2 * j + 64,
					    _mm512_unpackhi_epi8(lo, hi));
		}
}

/* n tokens' activations into ap (token k at ap + k * cp) in the order of
 * npk_lin_unpack's rows, zero past cols */
NPK_VNNI static void npk_lin_perm(const int8_t *a, size_t a_n, uint32_t n,
				  uint32_t cols, int8_t *ap, uint32_t cp)
{
	for (uint32_t k = 0; k < n; k++)
		for (uint32_t c = 0; c < cp; c += 128) {
			const int8_t *ak = a + k * a_n + c;
			__m512i a0 = _mm512_maskz_loadu_epi8(
				c < cols ? npk_mask64(cols - c) : 0, ak);
			__m512i a1 = _mm512_maskz_loadu_epi8(
				c + 64 < cols ? npk_mask64(cols - c - 64) : 0,
				ak + 64);

			_mm512_storeu_si512(ap + (size_t)k * cp + c,
					    _mm512_shuffle_i64x2(a0, a1, 0x88));
			_mm512_storeu_si512(ap + (size_t)k * cp + c + 64,
					    _mm512_shuffle_i64x2(a0, a1, 0xdd));
		}
}

/* npk_lin_tile on rows and activations laid out by npk_lin_unpack and
 * npk_lin_perm: two loads per row and per token for 2 * nr * nt vpdpbusd */
NPK_VNNI static inline __attribute__((always_inline)) void
npk_lin_tile_pre(const uint8_t *ub, uint32_t cp, const int8_t *ap,
		 const uint32_t *sum_a, const uint32_t nr, const uint32_t nt,
		 int32_t *acc, size_t acc_n)
{
	const __m512i zero = _mm512_setzero_si512();
	const int two = nr * nt <= 8;
	__m512i s[NPK_MM_R][NPK_LIN_TILE_T], s2[NPK_MM_R][NPK_LIN_TILE_T];

	for (uint32_t r = 0; r < NPK_MM_R; r++)
		for (uint32_t k = 0; k < nt; k++)
			s[r][k] = s2[r][k] = zero;
	for (uint32_t c = 0; c < cp; c += 128) {
		__m512i u0[NPK_MM_R], u1[NPK_MM_R];

		for (uint32_t r = 0; r < nr; r++) {
			u0[r] = _mm512_loadu_si512(ub + (size_t)r * cp + c);
			u1[r] = _mm512_loadu_si512(ub + (size_t)r * cp + c +
						   64);
		}
		for (uint32_t k = 0; k < nt; k++) {
			__m512i p0 =
				_mm512_loadu_si512(ap + (size_t)k * cp + c);
			__m512i p1 = _mm512_loadu_si512(ap + (size_t)k * cp +
							c + 64);

			for (uint32_t r = 0; r < nr; r++) {
				s[r][k] =
					_mm512_dpbusd_epi32(s[r][k], u0[r], p0);
				if (two)
					s2[r][k] = _mm512_dpbusd_epi32(
						s2[r][k], u1[r], p1);
				else
					s[r][k] = _mm512_dpbusd_epi32(
						s[r][k], u1[r], p1);
			}
		}
	}
	npk_tile_store(s, s2, two, nr, nt, 8u, sum_a, acc, acc_n);
}

NPK_VNNI static inline __attribute__((always_inline)) void
npk_lin_pre_tokens(const uint8_t *ub, uint32_t cp, const int8_t *ap,
		   const uint32_t *sum_a, const uint32_t nr, uint32_t nt,
		   int32_t *acc, size_t acc_n)
{
	if (nt == 4)
		npk_lin_tile_pre(ub, cp, ap, sum_a, nr, 4, acc, acc_n);
	else if (nt == 3)
		npk_lin_tile_pre(ub, cp, ap, sum_a, nr, 3, acc, acc_n);
	else if (nt == 2)
		npk_lin_tile_pre(ub, cp, ap, sum_a, nr, 2, acc, acc_n);
	else
		npk_lin_tile_pre(ub, cp, ap, sum_a, nr, 1, acc, acc_n);
}

/* every token tile of a group on one unpacked row tile */
NPK_VNNI static void npk_lin_pre_rows(const uint8_t *ub, uint32_t cp,
				      const int8_t *ap, const uint32_t *sum_a,
				      uint32_t nr, uint32_t g, int32_t *acc,
				      size_t acc_n)
{
	for (uint32_t k = 0; k < g; k += NPK_MM_T) {
		uint32_t nt = g - k < NPK_MM_T ? g - k : NPK_MM_T;
		const int8_t *apk = ap + (size_t)k * cp;
		int32_t *ak = acc + k * acc_n;

		if (nr == 4)
			npk_lin_pre_tokens(ub, cp, apk, sum_a + k, 4, nt, ak,
					   acc_n);
		else if (nr == 3)
			npk_lin_pre_tokens(ub, cp, apk, sum_a + k, 3, nt, ak,
					   acc_n);
		else if (nr == 2)
			npk_lin_pre_tokens(ub, cp, apk, sum_a + k, 2, nt, ak,
					   acc_n);
		else
			npk_lin_pre_tokens(ub, cp, apk, sum_a + k, 1, nt, ak,
					   acc_n);
	}
}

/* nr rows (compile-time at every call) against nt tokens, nt < 5 */
NPK_VNNI static inline __attribute__((always_inline)) void
npk_lin_tokens(const uint8_t *const *w, uint32_t cols, const uint32_t bits,
	       const int8_t *a, size_t a_n, const uint32_t *sum_a,
	       const uint32_t nr, uint32_t nt, int32_t *acc, size_t acc_n)
{
	if (nt == 4)
		npk_lin_tile(w, cols, bits, a, a_n, sum_a, nr, 4, acc, acc_n);
	else if (nt == 3)
		npk_lin_tile(w, cols, bits, a, a_n, sum_a, nr, 3, acc, acc_n);
	else if (nt == 2)
		npk_lin_tile(w, cols, bits, a, a_n, sum_a, nr, 2, acc, acc_n);
	else
		npk_lin_tile(w, cols, bits, a, a_n, sum_a, nr, 1, acc, acc_n);
}

NPK_VNNI static inline __attribute__((always_inline)) void
npk_lin_rows(const uint8_t *const *w, uint32_t cols, const uint32_t bits,
	     const int8_t *a, size_t a_n, const uint32_t *sum_a, uint32_t nr,
	     uint32_t nt, int32_t *acc, size_t acc_n)
{
	if (nr == 4)
		npk_lin_tokens(w, cols, bits, a, a_n, sum_a, 4, nt, acc, acc_n);
	else if (nr == 3)
		npk_lin_tokens(w, cols, bits, a, a_n, sum_a, 3, nt, acc, acc_n);
	else if (nr == 2)
		npk_lin_tokens(w, cols, bits, a, a_n, sum_a, 2, nt, acc, acc_n);
	else
		npk_lin_tokens(w, cols, bits, a, a_n, sum_a, 1, nt, acc, acc_n);
}

/*
 * Row tiles outer, tokens inner: a tile's rows come from memory once per
 * group of NPK_LIN_BLK tokens and stay in L1 for its token tiles, while
 * the tiles NPK_LIN_AHEAD ahead are fetched into L2 (the blocks of a
 * card's matrix lie a core's SRAM apart, no stream the hardware
 * prefetcher follows; into L2, the fetches do not hold up the L1's miss
 * buffers the loads need: np_bench_kernels gains 20-30 % at 1 and 4
 * tokens over fetching 2 tiles ahead into L1). The activation sums are taken once per group. With more
 * tokens than one tile and tmp, an int4 row tile is unpacked once for
 * all of them and the activations are put in its order once per group.
 */
NPK_VNNI void npk_linear_vnni(const struct npk_wmat *m, const int8_t *a,
			      size_t a_n, uint32_t n, int32_t *acc,
			      size_t acc_n, void *tmp)
{
	uint32_t nb = m->bits == 4 ? (m->cols + 1) / 2 :
		      m->bits == 2 ? (m->cols + 3) / 4 :
				     m->cols;
	uint32_t cp = (m->cols + 127) & ~127u;
	uint32_t sum_a[NPK_LIN_BLK];
	int8_t *ap = tmp;
	/* no offset from a NULL tmp: undefined even when unused */
	uint8_t *ub = tmp ? (uint8_t *)tmp + (size_t)NPK_LIN_BLK * cp : NULL;

	for (uint32_t t0 = 0; t0 < n; t0 += NPK_LIN_BLK) {
		uint32_t g = n - t0 < NPK_LIN_BLK ? n - t0 : NPK_LIN_BLK;
		const int8_t *at = a + t0 * a_n;
		int32_t *ac = acc + t0 * acc_n;
		int pre = tmp && m->bits == 4 && g > NPK_MM_T;

		for (uint32_t k = 0; k < g; k++)
			sum_a[k] = npk_sum_a_vnni(at + k * a_n, m->cols);
		if (pre)
			npk_lin_perm(at, a_n, g, m->cols, ap, cp);
		for (uint32_t i = 0; i < NPK_LIN_AHEAD; i++)
			npk_fetch_tile(m, i * NPK_MM_R, nb);
		for (uint32_t r = 0; r < m->rows; r += NPK_MM_R) {
			uint32_t nr =
				m->rows - r < NPK_MM_R ? m->rows - r : NPK_MM_R;
			const uint8_t *w[NPK_MM_R];

			for (uint32_t i = 0; i < NPK_MM_R; i++)
				w[i] = i < nr ? npk_wrow(m, r + i) : NULL;
			npk_fetch_tile(m, r + NPK_LIN_AHEAD * NPK_MM_R, nb);
			if (pre) {
				npk_lin_unpack(w, nr, m->cols, ub, cp);
				npk_lin_pre_rows(ub, cp, ap, sum_a, nr, g,
						 ac + r, acc_n);
				continue;
			}
			for (uint32_t k = 0; k < g; k += NPK_MM_T) {
				uint32_t nt =
					g - k < NPK_MM_T ? g - k : NPK_MM_T;

				npk_lin_rows(w, m->cols, m->bits, at + k * a_n,
					     a_n, sum_a + k, nr, nt,
					     ac + k * acc_n + r, acc_n);
			}
		}
	}
}

#pragma GCC diagnostic pop

#endif
