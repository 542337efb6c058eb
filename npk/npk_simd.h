/* SPDX-License-Identifier: MIT */
/*
 * npk_simd: x86-64 SIMD versions of npk's matrix-vector kernel, chosen at
 * run time from what the CPU supports. The integer sums are exact, so every
 * variant is bit-identical to the portable C (tests/perf checks it on
 * random and extreme inputs); a build for another architecture, or a CPU
 * without AVX2, runs the portable code. Self-contained like npk.c (stdint,
 * stddef only): the emulator core compiles it in QEMU's tree as well.
 */
#ifndef NPK_SIMD_H
#define NPK_SIMD_H

#include <stddef.h>
#include <stdint.h>

enum npk_isa {
	NPK_ISA_C, /* portable C, always available */
	NPK_ISA_AVX2, /* AVX2: vpmaddubsw/vpmaddwd */
	NPK_ISA_AVX512_VNNI, /* AVX-512 BW, VL + VNNI: vpdpbusd */
	NPK_ISA_N,
};

/* 1 if this CPU (and OS) runs variant isa, else 0. */
int npk_isa_available(enum npk_isa isa);
/* The fastest available variant: what npk_matvec runs. */
enum npk_isa npk_isa_best(void);
/* "c", "avx2", "avx512-vnni"; NULL for an unknown value. */
const char *npk_isa_name(enum npk_isa isa);
/*
 * npk_matvec (npk.h) computed by variant isa, which must be available
 * (an unavailable one runs the portable code).
 */
void npk_matvec_isa(enum npk_isa isa, const uint8_t *w, uint32_t rows,
		    uint32_t cols, uint32_t row_bytes, uint32_t bits,
		    const int8_t *a, int32_t *acc);
/*
 * n tokens at once: acc + k * acc_n = rows of w times a + k * a_n, for
 * k < n; each as npk_matvec_isa, but a row is read once for up to four
 * tokens.
 */
void npk_matmul_isa(enum npk_isa isa, const uint8_t *w, uint32_t rows,
		    uint32_t cols, uint32_t row_bytes, uint32_t bits,
		    const int8_t *a, size_t a_n, uint32_t n, int32_t *acc,
		    size_t acc_n);
/*
 * A weight matrix as a card holds it: rows in blocks of rpc rows (one
 * core's share), block b at w + b * stride, row i of a block at
 * + i * row_bytes. A contiguous matrix is one block: rpc = rows.
 */
struct npk_wmat {
	const uint8_t *w;
	size_t stride;
	uint32_t rows, cols, row_bytes, bits, rpc;
};
/*
 * npk_matmul_isa over a blocked matrix: acc + k * acc_n = rows of m times
 * a + k * a_n, for k < n. The SIMD variants take the rows a few at a time
 * across block boundaries, every token of a group of up to 16 on rows
 * while they are in the cache, and fetch the next rows ahead. tmp, if not
 * NULL, is npk_linear_tmp_size(m->cols) bytes of working memory (any
 * alignment) that lets them unpack int4 rows once for many tokens.
 * bits 2, 4 or 8.
 */
void npk_linear_isa(enum npk_isa isa, const struct npk_wmat *m, const int8_t *a,
		    size_t a_n, uint32_t n, int32_t *acc, size_t acc_n,
		    void *tmp);
size_t npk_linear_tmp_size(uint32_t cols);
/*
 * acc[r] = npk_requant(acc[r], rq[r], lo, hi) for r < n, rq an array of n
 * struct npk_rq (npk.h; 8 bytes each, any alignment).
 */
void npk_requant_isa(enum npk_isa isa, int32_t *acc, const void *rq, uint32_t n,
		     int32_t lo, int32_t hi);
/*
 * Softmax weights of attention scores p[0..n), max their maximum:
 * p[t] = npk_exp2_neg_q8(npk_requant(max - p[t], rq, 0, INT32_MAX)),
 * rq one struct npk_rq (npk.h); returns the sum of the weights.
 */
int64_t npk_softmax_isa(enum npk_isa isa, int32_t *p, uint32_t n, int32_t max,
			const void *rq);
/*
 * o[d] += w * v[d] for d < n (n even), v packed int4 (npk_pack4 order):
 * attention's weighted sum of V rows. Wraps modulo 2^32 like int32.
 */
void npk_wsum4_isa(enum npk_isa isa, int32_t *o, const uint8_t *v, uint32_t n,
		   int32_t w);
/*
 * o[j * o_n + d] += sum over t < n of w[j * w_n + t] * v[t][d], for
 * j < heads, d < hd (hd even), v[t] the int4 row t (npk_pack4 order) at
 * v + t * row_bytes: attention's weighted sums of V rows for heads that
 * share them. Wraps modulo 2^32 like int32, as npk_wsum4_isa.
 */
void npk_wsumv_isa(enum npk_isa isa, const uint8_t *v, size_t row_bytes,
		   uint32_t n, uint32_t hd, const int32_t *w, size_t w_n,
		   uint32_t heads, int32_t *o, size_t o_n);
/*
 * npk_wsumv_isa for int8 V rows (an INT8 KV cache): v[t] hd int8 at
 * v + t * row_bytes.
 */
void npk_wsumv8_isa(enum npk_isa isa, const uint8_t *v, size_t row_bytes,
		    uint32_t n, uint32_t hd, const int32_t *w, size_t w_n,
		    uint32_t heads, int32_t *o, size_t o_n);
/* npk_matvec's portable body (npk.c). */
void npk_matvec_c(const uint8_t *w, uint32_t rows, uint32_t cols,
		  uint32_t row_bytes, uint32_t bits, const int8_t *a,
		  int32_t *acc);

#endif /* NPK_SIMD_H */
