// SPDX-License-Identifier: MIT
/*
 * The GGUF writer's quantisers: float rows to ggml blocks (layouts in
 * gguf_dequant.c, which reads them back). Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0
 * are ggml's reference quantisers (quantize_row_*_ref); the K-quants and
 * IQ4_NL use round to nearest with the same scale packing as ggml's
 * references but without their search for better scales: each
 * sub-block's scale (and min) from its range, the scales quantised
 * against the super-block's largest, then every value rounded against the
 * scale as it will be decoded. The files are valid for any GGUF reader;
 * they are meant for test models, not for the best possible accuracy.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "npim.h"

/* Nearest integer (ties to even), clamped to lo..hi; NaN gives lo. */
static int q_near(float v, int lo, int hi)
{
	if (!(v >= (float)lo))
		return lo;
	if (v >= (float)hi)
		return hi;
	return (int)lrintf(v);
}

/* ggml's truncating round of the legacy quantisers: (int)(v), v >= 0 */
static int q_trunc(float v, int hi)
{
	if (!(v >= 0.0f))
		return 0;
	if (v >= (float)hi)
		return hi;
	return (int)v;
}

static void put_f16(uint8_t *p, float f)
{
	uint16_t h = npim_f32_to_f16(f);

	memcpy(p, &h, 2);
}

static float f16_round(const uint8_t *p)
{
	uint16_t h;

	memcpy(&h, p, 2);
	return npim_f16_to_f32(h);
}

/* The value of largest magnitude (its sign kept), 0 for all zero */
static float signed_max(const float *x, int n)
{
	float amax = 0.0f, max = 0.0f;

	for (int j = 0; j < n; j++) {
		if (fabsf(x[j]) > amax) {
			amax = fabsf(x[j]);
			max = x[j];
		}
	}
	return max;
}

static void q_bf16(const float *x, uint8_t *blk)
{
	uint32_t u;
	uint16_t h;

	memcpy(&u, x, 4);
	if ((u & 0x7fffffffu) > 0x7f800000u)
		h = (uint16_t)((u >> 16) | 64); /* NaN stays a quiet NaN */
	else
		h = (uint16_t)((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
	memcpy(blk, &h, 2);
}

static void q_f16(const float *x, uint8_t *blk)
{
	put_f16(blk, x[0]);
}

static void q_f32(const float *x, uint8_t *blk)
{
	memcpy(blk, x, 4);
}

static void q_q8_0(const float *x, uint8_t *blk)
{
	float amax = 0.0f, d, id;

	for (int j = 0; j < 32; j++)
		amax = fmaxf(amax, fabsf(x[j]));
	d = amax / 127.0f;
	id = d != 0.0f ? 1.0f / d : 0.0f;
	put_f16(blk, d);
	for (int j = 0; j < 32; j++) {
		float v = roundf(x[j] * id);

		/* NaN (only from NaN input) stores 0 */
		blk[2 + j] =
			(uint8_t)(int8_t)(v >= -127.0f && v <= 127.0f ? (int)v :
									0);
	}
}

/* Q4_0 and Q5_0: d = max / -2^(bits-1), q = trunc(x / d + 2^(bits-1) + .5) */
static void q_sym(const float *x, uint8_t *blk, int bits)
{
	const float half = (float)(1 << (bits - 1));
	const int hi = (1 << bits) - 1;
	float d = signed_max(x, 32) / -half, id = d != 0.0f ? 1.0f / d : 0.0f;
	uint8_t *qs = blk + (bits == 4 ? 2 : 6);
	uint32_t qh = 0;

	put_f16(blk, d);
	for (int j = 0; j < 16; j++) {
		int a = q_trunc(x[j] * id + half + 0.5f, hi);
		int b = q_trunc(x[j + 16] * id + half + 0.5f, hi);

		qs[j] = (uint8_t)((a & 15) | (b & 15) << 4);
		qh |= (uint32_t)(a >> 4) << j | (uint32_t)(b >> 4) << (j + 16);
	}
	if (bits == 5)
		memcpy(blk + 2, &qh, 4);
}

/* Q4_1 and Q5_1: d = (max - min) / (2^bits - 1), m = min */
static void q_asym(const float *x, uint8_t *blk, int bits)
{
	const int hi = (1 << bits) - 1;
	float min = FLT_MAX, max = -FLT_MAX, d, id;
	uint8_t *qs = blk + (bits == 4 ? 4 : 8);
	uint32_t qh = 0;

	for (int j = 0; j < 32; j++) {
		min = fminf(min, x[j]);
		max = fmaxf(max, x[j]);
	}
	d = (max - min) / (float)hi;
	id = d != 0.0f ? 1.0f / d : 0.0f;
	put_f16(blk, d);
	put_f16(blk + 2, min);
	for (int j = 0; j < 16; j++) {
		int a = q_trunc((x[j] - min) * id + 0.5f, hi);
		int b = q_trunc((x[j + 16] - min) * id + 0.5f, hi);

		qs[j] = (uint8_t)((a & 15) | (b & 15) << 4);
		qh |= (uint32_t)(a >> 4) << j | (uint32_t)(b >> 4) << (j + 16);
	}
	if (bits == 5)
		memcpy(blk + 4, &qh, 4);
}

static void q_q4_0(const float *x, uint8_t *blk)
{
	q_sym(x, blk, 4);
}

static void q_q5_0(const float *x, uint8_t *blk)
{
	q_sym(x, blk, 5);
}

static void q_q4_1(const float *x, uint8_t *blk)
{
	q_asym(x, blk, 4);
}

static void q_q5_1(const float *x, uint8_t *blk)
{
	q_asym(x, blk, 5);
}

static void q_iq4_nl(const float *x, uint8_t *blk)
{
	float d = signed_max(x, 32) / (float)npim_iq4nl_values[0];
	float id = d != 0.0f ? 1.0f / d : 0.0f;
	int idx[32];

	put_f16(blk, d);
	for (int j = 0; j < 32; j++) {
		float v = x[j] * id, best = FLT_MAX;

		idx[j] = 0;
		for (int k = 0; k < 16; k++) {
			float e = fabsf(v - (float)npim_iq4nl_values[k]);

			if (e < best) {
				best = e;
				idx[j] = k;
			}
		}
	}
	for (int j = 0; j < 16; j++)
		blk[2 + j] = (uint8_t)(idx[j] | idx[j + 16] << 4);
}

/*
 * Scale and min of an asymmetric sub-block of n values on levels 0..nmax:
 * x ~ scale * q - min, with min >= 0 (the range always includes 0, as
 * ggml's make_qkx quantisers have it).
 */
static void sub_scale_min(const float *x, int n, int nmax, float *scale,
			  float *min)
{
	float lo = 0.0f, hi = x[0];

	for (int j = 0; j < n; j++) {
		lo = fminf(lo, x[j]);
		hi = fmaxf(hi, x[j]);
	}
	*scale = (hi - lo) / (float)nmax;
	*min = -lo;
}

/* Quantise sub-scales v[0..n) >= 0 to 0..lmax against their maximum;
 * returns the step (max / lmax), 0 when all are zero. */
static float quant_scales(const float *v, int n, int lmax, uint8_t *l)
{
	float max = 0.0f, step, inv;

	for (int j = 0; j < n; j++)
		max = fmaxf(max, v[j]);
	step = max / (float)lmax;
	inv = max > 0.0f ? (float)lmax / max : 0.0f;
	for (int j = 0; j < n; j++)
		l[j] = (uint8_t)q_near(inv * v[j], 0, lmax);
	return step;
}

/* Q2_K: 16 sub-blocks of 16, 2-bit values, 4-bit scales and mins */
static void q_q2_k(const float *x, uint8_t *blk)
{
	float sc[16], mn[16], d, dmin;
	uint8_t ls[16], lm[16], L[256];

	for (int j = 0; j < 16; j++)
		sub_scale_min(x + 16 * j, 16, 3, &sc[j], &mn[j]);
	put_f16(blk + 80, quant_scales(sc, 16, 15, ls));
	put_f16(blk + 82, quant_scales(mn, 16, 15, lm));
	d = f16_round(blk + 80);
	dmin = f16_round(blk + 82);
	for (int j = 0; j < 16; j++) {
		float dl = d * (float)ls[j], ml = dmin * (float)lm[j];

		blk[j] = (uint8_t)(ls[j] | lm[j] << 4);
		for (int i = 0; i < 16; i++)
			L[16 * j + i] =
				(uint8_t)(dl != 0.0f ? q_near((x[16 * j + i] +
							       ml) / dl,
							      0, 3) :
						       0);
	}
	for (int h = 0; h < 2; h++)
		for (int l = 0; l < 32; l++)
			blk[16 + 32 * h + l] =
				(uint8_t)(L[128 * h + l] |
					  L[128 * h + l + 32] << 2 |
					  L[128 * h + l + 64] << 4 |
					  L[128 * h + l + 96] << 6);
}

/* Q3_K: 16 sub-blocks of 16, values -4..3, 6-bit signed scales */
static void q_q3_k(const float *x, uint8_t *blk)
{
	float sc[16], d, iscale, max = 0.0f;
	uint8_t L[256];

	memset(blk, 0, 110);
	for (int j = 0; j < 16; j++) {
		/* the largest magnitude on level -4 */
		sc[j] = signed_max(x + 16 * j, 16) / -4.0f;
		if (fabsf(sc[j]) > fabsf(max))
			max = sc[j];
	}
	iscale = max != 0.0f ? -32.0f / max : 0.0f;
	for (int j = 0; j < 16; j++) {
		int l = q_near(iscale * sc[j], -32, 31) + 32;

		if (j < 8)
			blk[96 + j] = (uint8_t)(l & 15);
		else
			blk[96 + j - 8] |= (uint8_t)((l & 15) << 4);
		blk[96 + 8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
	}
	put_f16(blk + 108, max != 0.0f ? 1.0f / iscale : 0.0f);
	d = f16_round(blk + 108);
	for (int j = 0; j < 16; j++) {
		int lo = j < 8 ? blk[96 + j] & 15 : blk[96 + j - 8] >> 4;
		int hi = (blk[96 + 8 + j % 4] >> (2 * (j / 4))) & 3;
		float dl = d * (float)((lo | hi << 4) - 32);

		for (int i = 0; i < 16; i++)
			L[16 * j + i] =
				(uint8_t)(dl != 0.0f ?
						  q_near(x[16 * j + i] / dl, -4,
							 3) +
							  4 :
						  4);
	}
	/* third bits: element e in hmask[e % 32] bit e / 32 */
	for (int e = 0; e < 256; e++) {
		if (L[e] > 3) {
			blk[e % 32] |= (uint8_t)(1u << (e / 32));
			L[e] -= 4;
		}
	}
	for (int h = 0; h < 2; h++)
		for (int l = 0; l < 32; l++)
			blk[32 + 32 * h + l] =
				(uint8_t)(L[128 * h + l] |
					  L[128 * h + l + 32] << 2 |
					  L[128 * h + l + 64] << 4 |
					  L[128 * h + l + 96] << 6);
}

/* Q4_K and Q5_K: 8 sub-blocks of 32, 6-bit scales and mins */
static void q_k45(const float *x, uint8_t *blk, int bits)
{
	const int nmax = (1 << bits) - 1;
	uint8_t *s = blk + 4, *qh = blk + 16, *qs = blk + (bits == 4 ? 16 : 48);
	float sc[8], mn[8], d, dmin;
	uint8_t ls[8], lm[8], L[256];

	memset(blk, 0, bits == 4 ? 144 : 176);
	for (int j = 0; j < 8; j++)
		sub_scale_min(x + 32 * j, 32, nmax, &sc[j], &mn[j]);
	put_f16(blk, quant_scales(sc, 8, 63, ls));
	put_f16(blk + 2, quant_scales(mn, 8, 63, lm));
	for (int j = 0; j < 8; j++) {
		if (j < 4) {
			s[j] = ls[j];
			s[j + 4] = lm[j];
		} else {
			s[j + 4] = (uint8_t)((ls[j] & 15) | (lm[j] & 15) << 4);
			s[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
			s[j] |= (uint8_t)((lm[j] >> 4) << 6);
		}
	}
	d = f16_round(blk);
	dmin = f16_round(blk + 2);
	for (int j = 0; j < 8; j++) {
		float dl = d * (float)ls[j], ml = dmin * (float)lm[j];

		for (int i = 0; i < 32; i++)
			L[32 * j + i] =
				(uint8_t)(dl != 0.0f ? q_near((x[32 * j + i] +
							       ml) / dl,
							      0, nmax) :
						       0);
	}
	/* sub-block 2c: low nibbles of qs[32c..], 2c + 1: high nibbles;
	 * Q5_K's fifth bit of element e in qh[e % 32] at bit e / 32 */
	for (int c = 0; c < 4; c++) {
		for (int l = 0; l < 32; l++) {
			int a = L[64 * c + l], b = L[64 * c + 32 + l];

			qs[32 * c + l] = (uint8_t)((a & 15) | (b & 15) << 4);
			if (bits == 5)
				qh[l] |= (uint8_t)((a >> 4) << (2 * c) |
						   (b >> 4) << (2 * c + 1));
		}
	}
}

static void q_q4_k(const float *x, uint8_t *blk)
{
	q_k45(x, blk, 4);
}

static void q_q5_k(const float *x, uint8_t *blk)
{
	q_k45(x, blk, 5);
}

/* Q6_K: 16 sub-blocks of 16, values -32..31, 8-bit signed scales */
static void q_q6_k(const float *x, uint8_t *blk)
{
	float sc[16], d, iscale, max = 0.0f;
	int8_t *scales = (int8_t *)(blk + 192);
	uint8_t L[256];

	memset(blk, 0, 210);
	for (int j = 0; j < 16; j++) {
		/* the largest magnitude on level -32 */
		sc[j] = signed_max(x + 16 * j, 16) / -32.0f;
		if (fabsf(sc[j]) > fabsf(max))
			max = sc[j];
	}
	if (max == 0.0f)
		return;
	iscale = -128.0f / max;
	put_f16(blk + 208, 1.0f / iscale);
	for (int j = 0; j < 16; j++)
		scales[j] = (int8_t)q_near(iscale * sc[j], -128, 127);
	d = f16_round(blk + 208);
	for (int j = 0; j < 16; j++) {
		float dl = d * (float)scales[j];

		for (int i = 0; i < 16; i++)
			L[16 * j + i] =
				(uint8_t)(dl != 0.0f ?
						  q_near(x[16 * j + i] / dl,
							 -32, 31) +
							  32 :
						  32);
	}
	for (int h = 0; h < 2; h++) {
		uint8_t *ql = blk + 64 * h, *qh = blk + 128 + 32 * h;
		const uint8_t *q = L + 128 * h;

		for (int l = 0; l < 32; l++) {
			ql[l] = (uint8_t)((q[l] & 15) | (q[l + 64] & 15) << 4);
			ql[l + 32] = (uint8_t)((q[l + 32] & 15) |
					       (q[l + 96] & 15) << 4);
			qh[l] = (uint8_t)(q[l] >> 4 | (q[l + 32] >> 4) << 2 |
					  (q[l + 64] >> 4) << 4 |
					  (q[l + 96] >> 4) << 6);
		}
	}
}

typedef void (*q_fn)(const float *x, uint8_t *blk);

static const struct {
	uint32_t type;
	q_fn q;
} writers[] = {
	{NP_GGML_F32, q_f32},	{NP_GGML_F16, q_f16},
	{NP_GGML_BF16, q_bf16}, {NP_GGML_Q4_0, q_q4_0},
	{NP_GGML_Q4_1, q_q4_1}, {NP_GGML_Q5_0, q_q5_0},
	{NP_GGML_Q5_1, q_q5_1}, {NP_GGML_Q8_0, q_q8_0},
	{NP_GGML_Q2_K, q_q2_k}, {NP_GGML_Q3_K, q_q3_k},
	{NP_GGML_Q4_K, q_q4_k}, {NP_GGML_Q5_K, q_q5_k},
	{NP_GGML_Q6_K, q_q6_k}, {NP_GGML_IQ4_NL, q_iq4_nl},
};

static q_fn writer_of(uint32_t type)
{
	for (size_t i = 0; i < NPIM_ARRAY_SIZE(writers); i++)
		if (writers[i].type == type)
			return writers[i].q;
	return NULL;
}

int np_ggml_type_writable(enum np_ggml_type type)
{
	return writer_of(type) != NULL;
}

int npim_ggml_quantize(uint32_t type, const float *x, uint64_t n,
		       struct npim_buf *b)
{
	q_fn q = writer_of(type);
	uint32_t blck, bytes;
	uint8_t blk[292];

	if (!q || !npim_ggml_type_info(type, &blck, &bytes, NULL) || n % blck)
		return -EINVAL;
	for (uint64_t i = 0; i < n; i += blck) {
		q(x + i, blk);
		npim_buf_put(b, blk, bytes);
	}
	return b->err;
}

int npim_ggml_roundtrip(uint32_t type, const float *x, uint64_t n, float *out,
			struct npim_buf *scratch)
{
	struct np_gguf_tensor t = {.type = (enum np_ggml_type)type,
				   .n_dims = 1,
				   .ne = {n, 1, 1, 1},
				   .n_elems = n};
	int ret;

	scratch->len = 0;
	ret = npim_ggml_quantize(type, x, n, scratch);
	if (ret)
		return ret;
	t.data = scratch->p;
	return np_gguf_tensor_row(&t, 0, out);
}
