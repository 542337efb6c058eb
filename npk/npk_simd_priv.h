/* SPDX-License-Identifier: MIT */
/*
 * npk_simd's private parts: what the dispatch (npk_simd.c) and the kernel
 * files (npk_simd_matrix.c: matrix-vector products; npk_simd_vector.c:
 * requantisation, softmax and attention's weighted sums) share.
 */
#ifndef NPK_SIMD_PRIV_H
#define NPK_SIMD_PRIV_H

#include "npk_simd.h"

/* Row r of m. */
static inline const uint8_t *npk_wrow(const struct npk_wmat *m, uint32_t r)
{
	return m->w + (size_t)(r / m->rpc) * m->stride +
	       (size_t)(r % m->rpc) * m->row_bytes;
}

#define NPK_MM_T 4u /* tokens per pass over a row */
#define NPK_MM_R 4u /* rows per pass over the activations */
#define NPK_LIN_BLK 32u /* tokens on a row tile while it is in the cache */

#if defined(__x86_64__) && defined(__GNUC__)
#define NPK_AVX2 __attribute__((target("avx2")))
#define NPK_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

/* npk_simd_matrix.c */
NPK_AVX2 void npk_mv4_avx2(const uint8_t *w, uint32_t rows, uint32_t cols,
			   uint32_t row_bytes, const int8_t *a, int32_t *acc);
NPK_AVX2 void npk_mv2_avx2(const uint8_t *w, uint32_t rows, uint32_t cols,
			   uint32_t row_bytes, const int8_t *a, int32_t *acc);
NPK_AVX2 void npk_mv8_avx2(const uint8_t *w, uint32_t rows, uint32_t cols,
			   uint32_t row_bytes, const int8_t *a, int32_t *acc);
NPK_VNNI void npk_linear_vnni(const struct npk_wmat *m, const int8_t *a,
			      size_t a_n, uint32_t n, int32_t *acc,
			      size_t acc_n, void *tmp);

/* npk_simd_vector.c */
NPK_VNNI void npk_requant_vnni(int32_t *acc, const void *rq, uint32_t n,
			       int32_t lo, int32_t hi);
NPK_VNNI void npk_wsum4_vnni(int32_t *o, const uint8_t *v, uint32_t n,
			     int32_t w);
NPK_VNNI void npk_wsumv_vnni(const uint8_t *v, size_t row_bytes, uint32_t n,
			     uint32_t hd, const int32_t *w, size_t w_n,
			     uint32_t heads, int32_t *o, size_t o_n);
NPK_VNNI void npk_wsumv8_vnni(const uint8_t *v, size_t row_bytes, uint32_t n,
			      uint32_t hd, const int32_t *w, size_t w_n,
			      uint32_t heads, int32_t *o, size_t o_n);
NPK_VNNI int64_t npk_softmax_vnni(int32_t *p, uint32_t n, int32_t max,
				  const void *rq);
#endif

#endif /* NPK_SIMD_PRIV_H */
