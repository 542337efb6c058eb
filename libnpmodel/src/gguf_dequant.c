// SPDX-License-Identifier: MIT
/*
 * ggml tensor types: the table of every type a GGUF file may hold (block
 * size, bytes, name) and the row dequantisers of the ones np reads. Each
 * decoder follows the block layout of ggml-common.h and computes every
 * float exactly as ggml's dequantize_row_* does (same operations in the
 * same order), so a row read here equals the row llama.cpp reads.
 * The quantisers of the writer are in gguf_quant.c.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "npim.h"

typedef void (*dq_fn)(const uint8_t *p, uint64_t nb, float *y);

static float f16_at(const uint8_t *p)
{
	uint16_t h;

	memcpy(&h, p, 2);
	return npim_f16_to_f32(h);
}

static void dq_f32(const uint8_t *p, uint64_t nb, float *y)
{
	memcpy(y, p, nb * 4);
}

static void dq_f16(const uint8_t *p, uint64_t nb, float *y)
{
	for (uint64_t i = 0; i < nb; i++)
		y[i] = f16_at(p + 2 * i);
}

/* bfloat16: the top half of a float32 */
static void dq_bf16(const uint8_t *p, uint64_t nb, float *y)
{
	for (uint64_t i = 0; i < nb; i++) {
		uint16_t h;
		uint32_t u;

		memcpy(&h, p + 2 * i, 2);
		u = (uint32_t)h << 16;
		memcpy(&y[i], &u, 4);
	}
}

/* Q4_0 (18 bytes): d, 16 bytes of nibbles; element j is the low nibble
 * of byte j, element j + 16 the high one; value (q - 8) * d. */
static void dq_q4_0(const uint8_t *p, uint64_t nb, float *y)
{
	for (uint64_t i = 0; i < nb; i++, p += 18, y += 32) {
		const float d = f16_at(p);

		for (int j = 0; j < 16; j++) {
			y[j] = (float)((p[2 + j] & 15) - 8) * d;
			y[j + 16] = (float)((p[2 + j] >> 4) - 8) * d;
		}
	}
}

/* Q4_1 (20 bytes): d, m, nibbles as Q4_0; value q * d + m. */
static void dq_q4_1(const uint8_t *p, uint64_t nb, float *y)
{
	for (uint64_t i = 0; i < nb; i++, p += 20, y += 32) {
		const float d = f16_at(p), m = f16_at(p + 2);

		for (int j = 0; j < 16; j++) {
			y[j] = (float)(p[4 + j] & 15) * d + m;
			y[j + 16] = (float)(p[4 + j] >> 4) * d + m;
		}
	}
}

/* Q5_0 (22 bytes): d, qh (32 fifth bits, bit j for element j), nibbles
 * as Q4_0; value (q - 16) * d. */
static void dq_q5_0(const uint8_t *p, uint64_t nb, float *y)
{
	for (uint64_t i = 0; i < nb; i++, p += 22, y += 32) {
		const float d = f16_at(p);
		uint32_t qh;

		memcpy(&qh, p + 2, 4);
		for (int j = 0; j < 16; j++) {
			int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;

			y[j] = (float)(((p[6 + j] & 15) | h0 << 4) - 16) * d;
			y[j + 16] =
				(float)(((p[6 + j] >> 4) | h1 << 4) - 16) * d;
		}
	}
}

/* Q5_1 (24 bytes): d, m, qh, nibbles; value q * d + m. */
static void dq_q5_1(const uint8_t *p, uint64_t nb, float *y)
{
	for (uint64_t i = 0; i < nb; i++, p += 24, y += 32) {
		const float d = f16_at(p), m = f16_at(p + 2);
		uint32_t qh;

		memcpy(&qh, p + 4, 4);
		for (int j = 0; j < 16; j++) {
			int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;

			y[j] = (float)((p[8 + j] & 15) | h0 << 4) * d + m;
			y[j + 16] = (float)((p[8 + j] >> 4) | h1 << 4) * d + m;
		}
	}
}

/* Q8_0 (34 bytes): d, 32 signed bytes; value q * d. */
static void dq_q8_0(const uint8_t *p, uint64_t nb, float *y)
{
	for (uint64_t i = 0; i < nb; i++, p += 34, y += 32) {
		const float d = f16_at(p);

		for (int j = 0; j < 32; j++)
			y[j] = (float)(int8_t)p[2 + j] * d;
	}
}

/*
 * Q2_K (84 bytes): scales[16] (low nibble: scale, high: min of each
 * 16-element sub-block), qs[64], d, dmin. Element e of the 256 sits in
 * qs[32 * (e / 128) + e % 32] at bits 2 * ((e % 128) / 32);
 * value d * scale * q - dmin * min.
 */
static void dq_q2_k(const uint8_t *p, uint64_t nb, float *y)
{
	for (uint64_t i = 0; i < nb; i++, p += 84) {
		const float d = f16_at(p + 80), min = f16_at(p + 82);
		const uint8_t *q = p + 16;
		int is = 0;

		for (int n = 0; n < 256; n += 128, q += 32) {
			for (int shift = 0; shift < 8; shift += 2) {
				for (int h = 0; h < 32; h += 16) {
					uint8_t sc = p[is++];
					float dl = d * (float)(sc & 15);
					float ml = min * (float)(sc >> 4);

					for (int l = 0; l < 16; l++)
						*y++ = dl * (float)((q[h + l] >>
								     shift) &
								    3) -
						       ml;
				}
			}
		}
	}
}

/*
 * Q3_K (110 bytes): hmask[32], qs[64], scales[12], d. Sixteen 6-bit
 * signed scales (stored + 32): the low 4 bits of scale j in the low
 * (j < 8) or high (j >= 8) nibble of scales[j % 8], the top 2 bits in
 * scales[8 + j % 4] at bit 2 * (j / 4). Element e: low 2 bits as Q2_K,
 * the third bit in hmask[e % 32] at bit e / 32, and a clear third bit
 * subtracts 4; value d * (scale - 32) * q.
 */
static void dq_q3_k(const uint8_t *p, uint64_t nb, float *y)
{
	for (uint64_t i = 0; i < nb; i++, p += 110) {
		const uint8_t *hm = p, *q = p + 32, *s = p + 96;
		const float d_all = f16_at(p + 108);
		int8_t sc[16];
		uint8_t m = 1;
		int is = 0;

		for (int j = 0; j < 16; j++) {
			int lo = j < 8 ? s[j] & 15 : s[j - 8] >> 4;
			int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;

			sc[j] = (int8_t)(lo | hi << 4);
		}
		for (int n = 0; n < 256; n += 128, q += 32) {
			for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
				for (int h = 0; h < 32; h += 16) {
					float dl =
						d_all * (float)(sc[is++] - 32);

					for (int l = 0; l < 16; l++)
						*y++ = dl *
						       (float)(((q[h + l] >>
								 shift) &
								3) -
							       ((hm[h + l] &
								 m) ?
									0 :
									4));
				}
			}
		}
	}
}

/*
 * The 6-bit scale and min of sub-block j of a Q4_K/Q5_K block's 12
 * scale bytes: j < 4 in the low 6 bits of q[j] and q[j + 4]; j >= 4 the
 * low 4 bits in the nibbles of q[j + 4], the top 2 bits in the top bits
 * of q[j - 4] (scale) and q[j] (min).
 */
static void scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
	if (j < 4) {
		*d = q[j] & 63;
		*m = q[j + 4] & 63;
	} else {
		*d = (uint8_t)((q[j + 4] & 15) | (q[j - 4] >> 6) << 4);
		*m = (uint8_t)((q[j + 4] >> 4) | (q[j] >> 6) << 4);
	}
}

/*
 * Q4_K (144 bytes): d, dmin, scales[12], qs[128]. Eight sub-blocks of
 * 32: sub-block 2c in the low nibbles of qs[32c..32c+31], 2c + 1 in
 * their high nibbles; value d * scale * q - dmin * min.
 */
static void dq_q4_k(const uint8_t *p, uint64_t nb, float *y)
{
	for (uint64_t i = 0; i < nb; i++, p += 144) {
		const float d = f16_at(p), min = f16_at(p + 2);
		const uint8_t *q = p + 16;

		for (int is = 0; is < 8; is += 2, q += 32) {
			uint8_t sc, m;
			float d1, m1, d2, m2;

			scale_min_k4(is, p + 4, &sc, &m);
			d1 = d * (float)sc;
			m1 = min * (float)m;
			scale_min_k4(is + 1, p + 4, &sc, &m);
			d2 = d * (float)sc;
			m2 = min * (float)m;
			for (int l = 0; l < 32; l++)
				*y++ = d1 * (float)(q[l] & 15) - m1;
			for (int l = 0; l < 32; l++)
				*y++ = d2 * (float)(q[l] >> 4) - m2;
		}
	}
}

/*
 * Q5_K (176 bytes): d, dmin, scales[12], qh[32], qs[128]. As Q4_K, plus
 * a fifth bit (16) from qh[e % 32] at bit e / 32.
 */
static void dq_q5_k(const uint8_t *p, uint64_t nb, float *y)
{
	for (uint64_t i = 0; i < nb; i++, p += 176) {
		const float d = f16_at(p), min = f16_at(p + 2);
		const uint8_t *qh = p + 16, *ql = p + 48;
		uint8_t u1 = 1, u2 = 2;

		for (int is = 0; is < 8; is += 2, ql += 32) {
			uint8_t sc, m;
			float d1, m1, d2, m2;

			scale_min_k4(is, p + 4, &sc, &m);
			d1 = d * (float)sc;
			m1 = min * (float)m;
			scale_min_k4(is + 1, p + 4, &sc, &m);
			d2 = d * (float)sc;
			m2 = min * (float)m;
			for (int l = 0; l < 32; l++)
				*y++ = d1 * (float)((ql[l] & 15) +
						    (qh[l] & u1 ? 16 : 0)) -
				       m1;
			for (int l = 0; l < 32; l++)
				*y++ = d2 * (float)((ql[l] >> 4) +
						    (qh[l] & u2 ? 16 : 0)) -
				       m2;
			u1 <<= 2;
			u2 <<= 2;
		}
	}
}

/*
 * Q6_K (210 bytes): ql[128], qh[64], scales[16] (int8), d. Per half of
 * 128 elements (ql + 64h, qh + 32h): element l (0..31) + 32k takes the
 * low (k = 0, 1) or high (k = 2, 3) nibble of ql[l + 32 * (k & 1)] and
 * bits 2k..2k+1 of qh[l]; value d * scale[e / 16] * (q - 32).
 */
static void dq_q6_k(const uint8_t *p, uint64_t nb, float *y)
{
	for (uint64_t i = 0; i < nb; i++, p += 210) {
		const float d = f16_at(p + 208);
		const uint8_t *ql = p, *qh = p + 128;
		const int8_t *sc = (const int8_t *)(p + 192);

		for (int n = 0; n < 256; n += 128) {
			for (int l = 0; l < 32; l++) {
				int is = l / 16;
				int q1 = ((ql[l] & 15) | ((qh[l] >> 0) & 3)
								 << 4) -
					 32;
				int q2 = ((ql[l + 32] & 15) | ((qh[l] >> 2) & 3)
								      << 4) -
					 32;
				int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3)
								 << 4) -
					 32;
				int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3)
								      << 4) -
					 32;

				y[l] = d * (float)sc[is] * (float)q1;
				y[l + 32] = d * (float)sc[is + 2] * (float)q2;
				y[l + 64] = d * (float)sc[is + 4] * (float)q3;
				y[l + 96] = d * (float)sc[is + 6] * (float)q4;
			}
			y += 128;
			ql += 64;
			qh += 32;
			sc += 8;
		}
	}
}

/* IQ4_NL's 16 non-linear levels (ggml-common.h kvalues_iq4nl) */
const int8_t npim_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
				      1,    13,	  25,  38,  53,	 69,  89,  113};

/* IQ4_NL (18 bytes): d, nibbles laid out as Q4_0; value
 * d * level[q]. */
static void dq_iq4_nl(const uint8_t *p, uint64_t nb, float *y)
{
	for (uint64_t i = 0; i < nb; i++, p += 18, y += 32) {
		const float d = f16_at(p);

		for (int j = 0; j < 16; j++) {
			y[j] = d * (float)npim_iq4nl_values[p[2 + j] & 15];
			y[j + 16] = d * (float)npim_iq4nl_values[p[2 + j] >> 4];
		}
	}
}

/* Every ggml type id a GGUF may hold (ggml.h; the gaps are types ggml
 * removed), with its dequantiser where np reads it. */
static const struct ggml_type_info {
	uint32_t type, blck, bytes;
	const char *name;
	dq_fn dq;
} types[] = {
	{NP_GGML_F32, 1, 4, "F32", dq_f32},
	{NP_GGML_F16, 1, 2, "F16", dq_f16},
	{NP_GGML_Q4_0, 32, 18, "Q4_0", dq_q4_0},
	{NP_GGML_Q4_1, 32, 20, "Q4_1", dq_q4_1},
	{NP_GGML_Q5_0, 32, 22, "Q5_0", dq_q5_0},
	{NP_GGML_Q5_1, 32, 24, "Q5_1", dq_q5_1},
	{NP_GGML_Q8_0, 32, 34, "Q8_0", dq_q8_0},
	{NP_GGML_Q8_1, 32, 36, "Q8_1", NULL},
	{NP_GGML_Q2_K, 256, 84, "Q2_K", dq_q2_k},
	{NP_GGML_Q3_K, 256, 110, "Q3_K", dq_q3_k},
	{NP_GGML_Q4_K, 256, 144, "Q4_K", dq_q4_k},
	{NP_GGML_Q5_K, 256, 176, "Q5_K", dq_q5_k},
	{NP_GGML_Q6_K, 256, 210, "Q6_K", dq_q6_k},
	{NP_GGML_Q8_K, 256, 292, "Q8_K", NULL},
	{NP_GGML_IQ2_XXS, 256, 66, "IQ2_XXS", NULL},
	{NP_GGML_IQ2_XS, 256, 74, "IQ2_XS", NULL},
	{NP_GGML_IQ3_XXS, 256, 98, "IQ3_XXS", NULL},
	{NP_GGML_IQ1_S, 256, 50, "IQ1_S", NULL},
	{NP_GGML_IQ4_NL, 32, 18, "IQ4_NL", dq_iq4_nl},
	{NP_GGML_IQ3_S, 256, 110, "IQ3_S", NULL},
	{NP_GGML_IQ2_S, 256, 82, "IQ2_S", NULL},
	{NP_GGML_IQ4_XS, 256, 136, "IQ4_XS", NULL},
	{NP_GGML_I8, 1, 1, "I8", NULL},
	{NP_GGML_I16, 1, 2, "I16", NULL},
	{NP_GGML_I32, 1, 4, "I32", NULL},
	{NP_GGML_I64, 1, 8, "I64", NULL},
	{NP_GGML_F64, 1, 8, "F64", NULL},
	{NP_GGML_IQ1_M, 256, 56, "IQ1_M", NULL},
	{NP_GGML_BF16, 1, 2, "BF16", dq_bf16},
	{NP_GGML_TQ1_0, 256, 54, "TQ1_0", NULL},
	{NP_GGML_TQ2_0, 256, 66, "TQ2_0", NULL},
	{NP_GGML_MXFP4, 32, 17, "MXFP4", NULL},
	{NP_GGML_NVFP4, 64, 36, "NVFP4", NULL},
	{NP_GGML_Q1_0, 128, 18, "Q1_0", NULL},
};

static const struct ggml_type_info *type_info(uint32_t type)
{
	for (size_t i = 0; i < NPIM_ARRAY_SIZE(types); i++)
		if (types[i].type == type)
			return &types[i];
	return NULL;
}

int npim_ggml_type_info(uint32_t type, uint32_t *blck, uint32_t *bytes,
			const char **name)
{
	const struct ggml_type_info *ti = type_info(type);

	if (!ti)
		return 0;
	*blck = ti->blck;
	*bytes = ti->bytes;
	if (name)
		*name = ti->name;
	return 1;
}

size_t npim_ggml_readable_list(char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = 0;
	for (size_t i = 0; i < NPIM_ARRAY_SIZE(types); i++) {
		int w;

		if (!types[i].dq)
			continue;
		w = snprintf(buf + n, len - n, "%s%s", n ? ", " : "",
			     types[i].name);
		if (w < 0 || (size_t)w >= len - n)
			break;
		n += (size_t)w;
	}
	return n;
}

const char *np_ggml_type_name(enum np_ggml_type type)
{
	const struct ggml_type_info *ti = type_info(type);

	return ti ? ti->name : NULL;
}

int np_ggml_type_from_name(const char *name, enum np_ggml_type *type)
{
	for (size_t i = 0; i < NPIM_ARRAY_SIZE(types); i++) {
		if (!strcasecmp(name, types[i].name)) {
			*type = (enum np_ggml_type)types[i].type;
			return 0;
		}
	}
	return -ENOENT;
}

int np_ggml_type_block(enum np_ggml_type type, uint32_t *elems, uint32_t *bytes)
{
	return npim_ggml_type_info(type, elems, bytes, NULL) ? 0 : -EINVAL;
}

int np_ggml_type_readable(enum np_ggml_type type)
{
	const struct ggml_type_info *ti = type_info(type);

	return ti && ti->dq;
}

enum np_ggml_type np_ggml_type_for_row(enum np_ggml_type want, uint64_t cols)
{
	const struct ggml_type_info *ti = type_info(want);
	enum np_ggml_type fb;

	if (!ti || cols % ti->blck == 0)
		return want;
	switch (want) {
	case NP_GGML_Q2_K:
	case NP_GGML_Q3_K:
		fb = NP_GGML_IQ4_NL;
		break;
	case NP_GGML_Q4_K:
		fb = NP_GGML_Q5_0;
		break;
	case NP_GGML_Q5_K:
		fb = NP_GGML_Q5_1;
		break;
	case NP_GGML_Q6_K:
		fb = NP_GGML_Q8_0;
		break;
	default:
		return want;
	}
	return cols % type_info(fb)->blck ? NP_GGML_F16 : fb;
}

int np_gguf_tensor_row(const struct np_gguf_tensor *t, uint64_t row, float *out)
{
	const struct ggml_type_info *ti = type_info(t->type);
	uint64_t n = t->ne[0], row_size;

	if (!ti || !ti->dq)
		return -ENOTSUP;
	if (row >= t->n_elems / n)
		return -ERANGE;
	row_size = n / ti->blck * ti->bytes;
	ti->dq((const uint8_t *)t->data + row * row_size, n / ti->blck, out);
	return 0;
}
