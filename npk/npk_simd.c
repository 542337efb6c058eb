// SPDX-License-Identifier: MIT
/*
 * npk_simd: AVX2 and AVX-512 VNNI kernels (see npk_simd.h): which variant
 * runs, and the portable C the dispatch falls back to. The kernels are in
 * npk_simd_matrix.c and npk_simd_vector.c.
 *
 * Each variant is compiled for its instruction set with a per-function
 * target attribute, so the files build with the baseline x86-64 flags and
 * the portable build still runs on any CPU; __builtin_cpu_supports picks
 * the variant at run time (libgcc's check includes the OS's XSAVE state).
 */
#include "npk_simd_priv.h"

#include <string.h>

#include "npk.h"

static void npk_requant_c(int32_t *acc, const void *rq, uint32_t n, int32_t lo,
			  int32_t hi)
{
	for (uint32_t r = 0; r < n; r++) {
		struct npk_rq q;

		memcpy(&q, (const uint8_t *)rq + (size_t)r * sizeof(q),
		       sizeof(q));
		acc[r] = npk_requant(acc[r], q, lo, hi);
	}
}

size_t npk_linear_tmp_size(uint32_t cols)
{
	/* a group's activations and one row tile, 128-column padded */
	return (size_t)(NPK_LIN_BLK + NPK_MM_R) *
	       (((size_t)cols + 127) & ~(size_t)127);
}

static int64_t npk_softmax_c(int32_t *p, uint32_t n, int32_t max,
			     const void *rq)
{
	struct npk_rq q;
	int64_t sum = 0;

	memcpy(&q, rq, sizeof(q));
	for (uint32_t t = 0; t < n; t++) {
		p[t] = npk_exp2_neg_q8(
			npk_requant((int64_t)max - p[t], q, 0, INT32_MAX));
		sum += p[t];
	}
	return sum;
}

/* npk_linear_isa without a variant of its own: block by block */
static void npk_linear_blocks(enum npk_isa isa, const struct npk_wmat *m,
			      const int8_t *a, size_t a_n, uint32_t n,
			      int32_t *acc, size_t acc_n)
{
	for (uint32_t r = 0; r < m->rows; r += m->rpc)
		npk_matmul_isa(isa, npk_wrow(m, r),
			       m->rows - r < m->rpc ? m->rows - r : m->rpc,
			       m->cols, m->row_bytes, m->bits, a, a_n, n,
			       acc + r, acc_n);
}

static void npk_wsumv_c(const uint8_t *v, size_t row_bytes, uint32_t n,
			uint32_t hd, const int32_t *w, size_t w_n,
			uint32_t heads, int32_t *o, size_t o_n)
{
	for (uint32_t j = 0; j < heads; j++)
		for (uint32_t t = 0; t < n; t++)
			npk_wsum4_isa(NPK_ISA_C, o + j * o_n, v + t * row_bytes,
				      hd, w[j * w_n + t]);
}

static void npk_wsumv8_c(const uint8_t *v, size_t row_bytes, uint32_t n,
			 uint32_t hd, const int32_t *w, size_t w_n,
			 uint32_t heads, int32_t *o, size_t o_n)
{
	for (uint32_t j = 0; j < heads; j++)
		for (uint32_t t = 0; t < n; t++)
			for (uint32_t d = 0; d < hd; d++)
				o[j * o_n +
				  d] = (int32_t)((uint32_t)o[j * o_n + d] +
						 (uint32_t)w[j * w_n + t] *
							 (uint32_t)(int32_t)(int8_t)
								 v[t * row_bytes +
								   d]);
}

#if defined(__x86_64__) && defined(__GNUC__)

int npk_isa_available(enum npk_isa isa)
{
	switch (isa) {
	case NPK_ISA_C:
		return 1;
	case NPK_ISA_AVX2:
		return __builtin_cpu_supports("avx2") != 0;
	case NPK_ISA_AVX512_VNNI:
		return __builtin_cpu_supports("avx512f") &&
		       __builtin_cpu_supports("avx512bw") &&
		       __builtin_cpu_supports("avx512vl") &&
		       __builtin_cpu_supports("avx512vnni");
	default:
		return 0;
	}
}

void npk_matmul_isa(enum npk_isa isa, const uint8_t *w, uint32_t rows,
		    uint32_t cols, uint32_t row_bytes, uint32_t bits,
		    const int8_t *a, size_t a_n, uint32_t n, int32_t *acc,
		    size_t acc_n)
{
	if (!npk_isa_available(isa))
		isa = NPK_ISA_C;
	if (isa == NPK_ISA_AVX512_VNNI) {
		/* one block: the rows a row_bytes stride apart */
		const struct npk_wmat m = {
			.w = w,
			.rows = rows,
			.cols = cols,
			.row_bytes = row_bytes,
			.bits = bits,
			.rpc = rows ? rows : 1,
		};

		npk_linear_vnni(&m, a, a_n, n, acc, acc_n, NULL);
		return;
	}
	for (uint32_t k = 0; k < n; k++) {
		const int8_t *ak = a + k * a_n;
		int32_t *acck = acc + k * acc_n;

		if (isa == NPK_ISA_AVX2 && bits == 4)
			npk_mv4_avx2(w, rows, cols, row_bytes, ak, acck);
		else if (isa == NPK_ISA_AVX2 && bits == 2)
			npk_mv2_avx2(w, rows, cols, row_bytes, ak, acck);
		else if (isa == NPK_ISA_AVX2 && bits == 8)
			npk_mv8_avx2(w, rows, cols, row_bytes, ak, acck);
		else
			npk_matvec_c(w, rows, cols, row_bytes, bits, ak, acck);
	}
}

void npk_linear_isa(enum npk_isa isa, const struct npk_wmat *m, const int8_t *a,
		    size_t a_n, uint32_t n, int32_t *acc, size_t acc_n,
		    void *tmp)
{
	if (isa == NPK_ISA_AVX512_VNNI && npk_isa_available(isa)) {
		npk_linear_vnni(m, a, a_n, n, acc, acc_n, tmp);
		return;
	}
	npk_linear_blocks(isa, m, a, a_n, n, acc, acc_n);
}

void npk_wsumv_isa(enum npk_isa isa, const uint8_t *v, size_t row_bytes,
		   uint32_t n, uint32_t hd, const int32_t *w, size_t w_n,
		   uint32_t heads, int32_t *o, size_t o_n)
{
	if (isa == NPK_ISA_AVX512_VNNI && npk_isa_available(isa)) {
		npk_wsumv_vnni(v, row_bytes, n, hd, w, w_n, heads, o, o_n);
		return;
	}
	npk_wsumv_c(v, row_bytes, n, hd, w, w_n, heads, o, o_n);
}

void npk_wsumv8_isa(enum npk_isa isa, const uint8_t *v, size_t row_bytes,
		    uint32_t n, uint32_t hd, const int32_t *w, size_t w_n,
		    uint32_t heads, int32_t *o, size_t o_n)
{
	if (isa == NPK_ISA_AVX512_VNNI && npk_isa_available(isa)) {
		npk_wsumv8_vnni(v, row_bytes, n, hd, w, w_n, heads, o, o_n);
		return;
	}
	npk_wsumv8_c(v, row_bytes, n, hd, w, w_n, heads, o, o_n);
}

int64_t npk_softmax_isa(enum npk_isa isa, int32_t *p, uint32_t n, int32_t max,
			const void *rq)
{
	if (isa == NPK_ISA_AVX512_VNNI && npk_isa_available(isa))
		return npk_softmax_vnni(p, n, max, rq);
	return npk_softmax_c(p, n, max, rq);
}

void npk_requant_isa(enum npk_isa isa, int32_t *acc, const void *rq, uint32_t n,
		     int32_t lo, int32_t hi)
{
	if (isa == NPK_ISA_AVX512_VNNI && npk_isa_available(isa)) {
		npk_requant_vnni(acc, rq, n, lo, hi);
		return;
	}
	npk_requant_c(acc, rq, n, lo, hi);
}

#else /* not x86-64 with GNU C: the portable kernel only */

int npk_isa_available(enum npk_isa isa)
{
	return isa == NPK_ISA_C;
}

void npk_matmul_isa(enum npk_isa isa, const uint8_t *w, uint32_t rows,
		    uint32_t cols, uint32_t row_bytes, uint32_t bits,
		    const int8_t *a, size_t a_n, uint32_t n, int32_t *acc,
		    size_t acc_n)
{
	(void)isa;
	for (uint32_t k = 0; k < n; k++)
		npk_matvec_c(w, rows, cols, row_bytes, bits, a + k * a_n,
			     acc + k * acc_n);
}

void npk_linear_isa(enum npk_isa isa, const struct npk_wmat *m, const int8_t *a,
		    size_t a_n, uint32_t n, int32_t *acc, size_t acc_n,
		    void *tmp)
{
	(void)tmp;
	npk_linear_blocks(isa, m, a, a_n, n, acc, acc_n);
}

void npk_wsumv_isa(enum npk_isa isa, const uint8_t *v, size_t row_bytes,
		   uint32_t n, uint32_t hd, const int32_t *w, size_t w_n,
		   uint32_t heads, int32_t *o, size_t o_n)
{
	(void)isa;
	npk_wsumv_c(v, row_bytes, n, hd, w, w_n, heads, o, o_n);
}

void npk_wsumv8_isa(enum npk_isa isa, const uint8_t *v, size_t row_bytes,
		    uint32_t n, uint32_t hd, const int32_t *w, size_t w_n,
		    uint32_t heads, int32_t *o, size_t o_n)
{
	(void)isa;
	npk_wsumv8_c(v, row_bytes, n, hd, w, w_n, heads, o, o_n);
}

int64_t npk_softmax_isa(enum npk_isa isa, int32_t *p, uint32_t n, int32_t max,
			const void *rq)
{
	(void)isa;
	return npk_softmax_c(p, n, max, rq);
}

void npk_requant_isa(enum npk_isa isa, int32_t *acc, const void *rq, uint32_t n,
		     int32_t lo, int32_t hi)
{
	(void)isa;
	npk_requant_c(acc, rq, n, lo, hi);
}

#endif

void npk_matvec_isa(enum npk_isa isa, const uint8_t *w, uint32_t rows,
		    uint32_t cols, uint32_t row_bytes, uint32_t bits,
		    const int8_t *a, int32_t *acc)
{
	npk_matmul_isa(isa, w, rows, cols, row_bytes, bits, a, 0, 1, acc, 0);
}

void npk_wsum4_isa(enum npk_isa isa, int32_t *o, const uint8_t *v, uint32_t n,
		   int32_t w)
{
#if defined(__x86_64__) && defined(__GNUC__)
	if (isa == NPK_ISA_AVX512_VNNI && npk_isa_available(isa)) {
		npk_wsum4_vnni(o, v, n, w);
		return;
	}
#else
	(void)isa;
#endif
	for (uint32_t d = 0; d < n; d += 2) {
		uint8_t b = v[d / 2];
		int32_t lo = (int32_t)(b & 15) - ((b & 8) << 1);
		int32_t hi = (int32_t)(b >> 4) - ((b & 0x80) >> 3);

		o[d] = (int32_t)((uint32_t)o[d] + (uint32_t)w * (uint32_t)lo);
		o[d + 1] = (int32_t)((uint32_t)o[d + 1] +
				     (uint32_t)w * (uint32_t)hi);
	}
}

enum npk_isa npk_isa_best(void)
{
	if (npk_isa_available(NPK_ISA_AVX512_VNNI))
		return NPK_ISA_AVX512_VNNI;
	if (npk_isa_available(NPK_ISA_AVX2))
		return NPK_ISA_AVX2;
	return NPK_ISA_C;
}

const char *npk_isa_name(enum npk_isa isa)
{
	static const char *const names[NPK_ISA_N] = {
		[NPK_ISA_C] = "c",
		[NPK_ISA_AVX2] = "avx2",
		[NPK_ISA_AVX512_VNNI] = "avx512-vnni",
	};

	return (unsigned int)isa < NPK_ISA_N ? names[isa] : NULL;
}
