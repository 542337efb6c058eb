// SPDX-License-Identifier: MIT
/*
 * npk: integer kernels and layer programs (see npk.h). Only stdint.h,
 * stddef.h and string.h: the emulator core compiles this file too.
 */
#include <string.h>

#include "np_abi.h"
#include "npk.h"
#include "npk_simd.h"
#include "npk_tables.h"

/* The primitives' bodies, inlined into this file's loops (a call each
 * was a tenth of a layer job); the exported functions wrap them. */
static inline int64_t npk_rshift_round_i(int64_t v, unsigned int shift)
{
	if (shift == 0)
		return v;
	if (shift > 62)
		return 0;
	/* arithmetic shift: floor((v + 2^(shift-1)) / 2^shift) */
	if (v > INT64_MAX - ((int64_t)1 << (shift - 1)))
		return (v >> shift) + ((v >> (shift - 1)) & 1);
	return (v + ((int64_t)1 << (shift - 1))) >> shift;
}

static inline int64_t npk_clamp64(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* a layer's activation and KV widths (0: the w4a4 of version 1) */
static inline uint32_t npk_actb(const struct npk_layer *L)
{
	return L->act_bits ? L->act_bits : 4;
}

static inline uint32_t npk_kvb(const struct npk_layer *L)
{
	return L->kv_bits ? L->kv_bits : 4;
}

/* [lo, hi] of a signed integer of `bits` */
static inline int32_t npk_lo(uint32_t bits)
{
	return -(1 << (bits - 1));
}

static inline int32_t npk_hi(uint32_t bits)
{
	return (1 << (bits - 1)) - 1;
}

static inline int32_t npk_requant_i(int64_t v, struct npk_rq rq, int32_t lo,
				    int32_t hi)
{
	int64_t x = npk_clamp64(v, INT32_MIN, INT32_MAX);

	x = npk_rshift_round_i(x * (int64_t)rq.m, (unsigned int)rq.shift);
	return (int32_t)npk_clamp64(x, lo, hi);
}

int64_t npk_rshift_round(int64_t v, unsigned int shift)
{
	return npk_rshift_round_i(v, shift);
}

int32_t npk_requant(int64_t v, struct npk_rq rq, int32_t lo, int32_t hi)
{
	return npk_requant_i(v, rq, lo, hi);
}

uint64_t npk_isqrt64(uint64_t v)
{
	uint64_t r = 0, bit = (uint64_t)1 << 62;

	while (bit > v)
		bit >>= 2;
	while (bit) {
		if (v >= r + bit) {
			v -= r + bit;
			r = (r >> 1) + bit;
		} else {
			r >>= 1;
		}
		bit >>= 2;
	}
	return r;
}

int64_t npk_div_round(int64_t num, int64_t den)
{
	/* round half away from zero; den > 0 */
	if (num >= 0)
		return (num + den / 2) / den;
	return -((-num + den / 2) / den);
}

void npk_sincos(uint32_t angle, int32_t *s, int32_t *c)
{
	uint32_t a[2] = {angle, angle + 0x40000000u};
	int32_t r[2];

	for (int k = 0; k < 2; k++) {
		uint32_t i = a[k] >> 22, f = (a[k] >> 6) & 0xffff;
		int32_t lo = npk_sin_tab[i], hi = npk_sin_tab[i + 1];

		r[k] = lo +
		       (int32_t)npk_rshift_round_i((int64_t)(hi - lo) * f, 16);
	}
	*s = r[0];
	*c = r[1];
}

int32_t npk_exp2_neg_q8(int64_t e)
{
	int64_t n;

	if (e < 0)
		e = 0;
	n = e >> 8;
	if (n > 46)
		return 0;
	return (int32_t)npk_rshift_round_i(npk_exp2_tab[e & 255],
					   (unsigned int)(15 + n));
}

void npk_rmsnorm_q(const int16_t *x, uint32_t n, uint64_t eps, struct npk_rq rq,
		   int32_t lo, int32_t hi, int8_t *q)
{
	uint64_t ss = 0, v, r, inv;

	for (uint32_t i = 0; i < n; i++)
		ss += (uint64_t)((int32_t)x[i] * (int32_t)x[i]);
	v = ((ss << 16) + n / 2) / n;
	v = v > UINT64_MAX - eps ? UINT64_MAX : v + eps;
	r = npk_isqrt64(v);
	if (r == 0)
		r = 1;
	inv = ((uint64_t)1 << 40) / r;
	for (uint32_t i = 0; i < n; i++) {
		int64_t y =
			npk_rshift_round_i((int64_t)x[i] * (int64_t)inv, 16);

		q[i] = (int8_t)npk_requant_i(y, rq, lo, hi);
	}
}

int8_t npk_unpack4(const uint8_t *p, uint32_t i)
{
	uint8_t b = p[i >> 1];
	int v = (i & 1) ? b >> 4 : b & 15;

	return (int8_t)(v >= 8 ? v - 16 : v);
}

void npk_pack4(const int8_t *q, uint32_t n, uint8_t *out)
{
	for (uint32_t i = 0; i < n; i += 2) {
		uint8_t lo = (uint8_t)q[i] & 15;
		uint8_t hi = i + 1 < n ? (uint8_t)q[i + 1] & 15 : 0;

		out[i >> 1] = (uint8_t)(lo | hi << 4);
	}
}

/* bits 2 (np_prog.h): column c of a row is field c' / q of byte
 * 64 b + c' % q, b = c / 256, c' = c % 256, q the block's bytes */
static inline uint32_t npk_q2(uint32_t cols, uint32_t b)
{
	uint32_t n = cols - b * 256;

	return n >= 256 ? 64 : (n + 3) / 4;
}

int8_t npk_unpack2(const uint8_t *p, uint32_t cols, uint32_t i)
{
	uint32_t b = i / 256, j = i % 256, q = npk_q2(cols, b);
	int v = (p[b * 64 + j % q] >> (2 * (j / q))) & 3;

	return (int8_t)(v >= 2 ? v - 4 : v);
}

void npk_pack2(const int8_t *q, uint32_t n, uint8_t *out)
{
	memset(out, 0, ((size_t)n + 3) / 4);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t b = i / 256, j = i % 256, qb = npk_q2(n, b);

		out[b * 64 + j % qb] |=
			(uint8_t)(((uint8_t)q[i] & 3) << (2 * (j / qb)));
	}
}

static int32_t npk_dot2(const uint8_t *w, uint32_t cols, const int8_t *a)
{
	int32_t acc = 0;

	for (uint32_t c0 = 0; c0 < cols; c0 += 256) {
		uint32_t q = npk_q2(cols, c0 / 256), n = cols - c0;
		const uint8_t *wb = w + c0 / 4;

		n = n < 256 ? n : 256;
		for (uint32_t k = 0; k < 4; k++)
			for (uint32_t j = 0; j < q && k * q + j < n; j++) {
				int32_t v = (wb[j] >> (2 * k)) & 3;

				acc += (v - ((v & 2) << 1)) * a[c0 + k * q + j];
			}
	}
	return acc;
}

static int32_t npk_dot4(const uint8_t *w, uint32_t cols, const int8_t *a)
{
	int32_t acc = 0;

	for (uint32_t c = 0; c + 1 < cols; c += 2) {
		uint8_t b = w[c >> 1];
		int32_t lo = (int32_t)(b & 15) - ((b & 8) << 1);
		int32_t hi = (int32_t)(b >> 4) - ((b & 0x80) >> 3);

		acc += lo * a[c] + hi * a[c + 1];
	}
	if (cols & 1)
		acc += npk_unpack4(w, cols - 1) * a[cols - 1];
	return acc;
}

static int32_t npk_dot8(const uint8_t *w, uint32_t cols, const int8_t *a)
{
	int32_t acc = 0;

	for (uint32_t c = 0; c < cols; c++)
		acc += (int8_t)w[c] * a[c];
	return acc;
}

void npk_matvec_c(const uint8_t *w, uint32_t rows, uint32_t cols,
		  uint32_t row_bytes, uint32_t bits, const int8_t *a,
		  int32_t *acc)
{
	for (uint32_t r = 0; r < rows; r++, w += row_bytes)
		acc[r] = bits == 4 ? npk_dot4(w, cols, a) :
			 bits == 2 ? npk_dot2(w, cols, a) :
				     npk_dot8(w, cols, a);
}

void npk_matvec(const uint8_t *w, uint32_t rows, uint32_t cols,
		uint32_t row_bytes, uint32_t bits, const int8_t *a,
		int32_t *acc)
{
	/* the SIMD variants are bit-identical (npk_simd.h) */
	npk_matvec_isa(npk_isa_best(), w, rows, cols, row_bytes, bits, a, acc);
}

/* ---------------------------------------------------------------- */
/* Program validation                                                */

#define NPK_MAX_DIM 65536u
#define NPK_MAX_FFN (1u << 20)
#define NPK_MAX_SEQ 65536u
#define NPK_MAX_HEAD_DIM 1024u
#define NPK_MAX_BATCH 4096u
#define NPK_MAX_LAYERS 1024u
#define NPK_MAX_VOCAB (1u << 22)

/* a layer's act_bits or kv_bits: 0 (4), 4 or 8 */
static int npk_bits_ok(uint8_t b)
{
	return b == 0 || b == 4 || b == 8;
}

static int npk_rq_ok(struct npk_rq rq)
{
	return rq.m >= 0 && rq.shift >= 0 && rq.shift <= 62;
}

static int npk_tensor_ok(const uint8_t *sram, uint64_t sram_size,
			 const struct npk_tensor *t, uint32_t rows,
			 uint32_t cols, uint32_t bits)
{
	uint64_t last_core, end, rq_end, bias_end;

	/* bits 0: a layer's weights, any of 2, 4 and 8 */
	if (t->rows != rows || t->cols != cols ||
	    (bits ? t->bits != bits :
		    t->bits != 2 && t->bits != 4 && t->bits != 8))
		return 0;
	if (t->rows_per_core == 0 ||
	    (uint64_t)t->rows_per_core * NP_NUM_CORES < rows)
		return 0;
	if ((uint64_t)t->row_bytes * 8 < (uint64_t)cols * bits)
		return 0;
	end = (uint64_t)t->off + (uint64_t)t->rows_per_core * t->row_bytes;
	rq_end = (uint64_t)t->rq_off + (uint64_t)t->rows_per_core * 8;
	bias_end = (uint64_t)t->bias_off + (uint64_t)t->rows_per_core * 4;
	if (end > NP_CORE_SRAM_SIZE || rq_end > NP_CORE_SRAM_SIZE ||
	    (t->bias_off && bias_end > NP_CORE_SRAM_SIZE))
		return 0;
	last_core = (rows - 1) / t->rows_per_core;
	if (last_core * NP_CORE_SRAM_SIZE + end > sram_size ||
	    last_core * NP_CORE_SRAM_SIZE + rq_end > sram_size ||
	    (t->bias_off &&
	     last_core * NP_CORE_SRAM_SIZE + bias_end > sram_size))
		return 0;
	for (uint32_t r = 0; r < rows; r++) {
		uint64_t core = r / t->rows_per_core;
		uint64_t a = core * NP_CORE_SRAM_SIZE + t->rq_off +
			     (uint64_t)(r % t->rows_per_core) * 8;
		struct npk_rq rq;

		memcpy(&rq, sram + a, sizeof(rq));
		if (!npk_rq_ok(rq))
			return 0;
	}
	return 1;
}

static int npk_card_get(const uint8_t *sram, uint64_t sram_size, uint64_t prog,
			struct npk_card *c)
{
	if (prog > sram_size || sram_size - prog < sizeof(*c) || (prog & 7))
		return 0;
	memcpy(c, sram + prog, sizeof(*c));
	return 1;
}

int npk_validate(const uint8_t *sram, uint64_t sram_size, uint64_t prog)
{
	struct npk_card c;
	uint32_t qd, kvd, units;
	uint64_t kv_end;

	if (!npk_card_get(sram, sram_size, prog, &c))
		return NP_ERR_BAD_PROGRAM;
	if (c.magic != NPK_MAGIC || c.version != NPK_VERSION ||
	    c.hdr_size != sizeof(c))
		return NP_ERR_BAD_PROGRAM;
	if (c.block_size < sizeof(c) || c.block_size > sram_size - prog)
		return NP_ERR_BAD_PROGRAM;
	if (c.dim == 0 || c.dim > NPK_MAX_DIM || c.n_heads == 0 ||
	    c.n_kv_heads == 0 || c.n_heads % c.n_kv_heads || c.head_dim == 0 ||
	    c.head_dim > NPK_MAX_HEAD_DIM || (c.head_dim & 1) ||
	    c.n_heads > NPK_MAX_DIM / c.head_dim)
		return NP_ERR_BAD_PROGRAM;
	qd = c.n_heads * c.head_dim;
	kvd = c.n_kv_heads * c.head_dim;
	if (c.kind == NPK_KIND_OUTPUT) {
		struct npk_output o;

		if (c.vocab_end <= c.vocab_begin || c.vocab_end > NPK_MAX_VOCAB)
			return NP_ERR_BAD_PROGRAM;
		if (c.output_off < sizeof(c) ||
		    (uint64_t)c.output_off + sizeof(o) > c.block_size)
			return NP_ERR_BAD_PROGRAM;
		memcpy(&o, sram + prog + c.output_off, sizeof(o));
		if (!npk_rq_ok(o.norm) ||
		    !npk_tensor_ok(sram, sram_size, &o.w,
				   c.vocab_end - c.vocab_begin, c.dim, 8))
			return NP_ERR_BAD_PROGRAM;
		return NP_ERR_NONE;
	}
	/* n_layers 0 is a pass-through card: its output is its input */
	if (c.kind != NPK_KIND_LAYERS || c.n_layers > NPK_MAX_LAYERS ||
	    c.ffn == 0 || c.ffn > NPK_MAX_FFN || c.max_seq == 0 ||
	    c.max_seq > NPK_MAX_SEQ || c.batch == 0 || c.batch > NPK_MAX_BATCH)
		return NP_ERR_BAD_PROGRAM;
	if (c.layers_off < sizeof(c) ||
	    (uint64_t)c.layers_off +
			    (uint64_t)c.n_layers * sizeof(struct npk_layer) >
		    c.block_size)
		return NP_ERR_BAD_PROGRAM;
	if (c.rope_off < sizeof(c) ||
	    (uint64_t)c.rope_off + (uint64_t)c.head_dim / 2 * 4 > c.block_size)
		return NP_ERR_BAD_PROGRAM;
	units = c.batch * c.n_kv_heads;
	for (uint32_t l = 0; l < c.n_layers; l++) {
		struct npk_layer L;
		static const uint32_t bitsw = 0; /* 2, 4 or 8 */
		uint64_t last;

		memcpy(&L, sram + prog + c.layers_off + l * sizeof(L),
		       sizeof(L));
		/* a unit holds K and V of max_seq rows of head_dim */
		if (!npk_bits_ok(L.act_bits) || !npk_bits_ok(L.kv_bits) ||
		    L.rsvd != 0 ||
		    (uint64_t)c.kv_unit * 4 <
			    (uint64_t)c.max_seq * c.head_dim * npk_kvb(&L))
			return NP_ERR_BAD_PROGRAM;
		if (!npk_tensor_ok(sram, sram_size, &L.t[NPK_Q], qd, c.dim,
				   bitsw) ||
		    !npk_tensor_ok(sram, sram_size, &L.t[NPK_K], kvd, c.dim,
				   bitsw) ||
		    !npk_tensor_ok(sram, sram_size, &L.t[NPK_V], kvd, c.dim,
				   bitsw) ||
		    !npk_tensor_ok(sram, sram_size, &L.t[NPK_O], c.dim, qd,
				   bitsw) ||
		    !npk_tensor_ok(sram, sram_size, &L.t[NPK_GATE], c.ffn,
				   c.dim, bitsw) ||
		    !npk_tensor_ok(sram, sram_size, &L.t[NPK_UP], c.ffn, c.dim,
				   bitsw) ||
		    !npk_tensor_ok(sram, sram_size, &L.t[NPK_DOWN], c.dim,
				   c.ffn, bitsw))
			return NP_ERR_BAD_PROGRAM;
		if (!npk_rq_ok(L.norm1) || !npk_rq_ok(L.norm2) ||
		    !npk_rq_ok(L.rope_q) || !npk_rq_ok(L.rope_k) ||
		    !npk_rq_ok(L.softmax) || !npk_rq_ok(L.attn) ||
		    !npk_rq_ok(L.silu_mul) || !npk_rq_ok(L.res))
			return NP_ERR_BAD_PROGRAM;
		/* every unit of this layer inside its core and the SRAM */
		last = (uint64_t)L.kv_first_unit + units - 1;
		kv_end = c.kv_off + (last / NP_NUM_CORES + 1) * c.kv_unit;
		if (kv_end > NP_CORE_SRAM_SIZE)
			return NP_ERR_BAD_PROGRAM;
		for (uint64_t u = L.kv_first_unit;
		     u <= last && u < (uint64_t)L.kv_first_unit + NP_NUM_CORES;
		     u++) {
			uint64_t core = u % NP_NUM_CORES;

			if (core * NP_CORE_SRAM_SIZE + kv_end > sram_size)
				return NP_ERR_BAD_PROGRAM;
		}
	}
	return NP_ERR_NONE;
}

/* [a, a + alen) and [b, b + blen) overlap */
static int npk_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

int npk_validate_stable(const uint8_t *sram, uint64_t sram_size, uint64_t prog)
{
	struct npk_card c;
	uint64_t kv_end = 0, first, last;

	memcpy(&c, sram + prog, sizeof(c));
	if (c.kind == NPK_KIND_OUTPUT)
		return 1; /* writes nothing into the SRAM */
	/* The KV units of every layer, in per-core offsets: on every core,
	 * [kv_off, kv_end) at most. */
	for (uint32_t l = 0; l < c.n_layers; l++) {
		struct npk_layer L;
		uint64_t end;

		memcpy(&L, sram + prog + c.layers_off + l * sizeof(L),
		       sizeof(L));
		last = (uint64_t)L.kv_first_unit +
		       (uint64_t)c.batch * c.n_kv_heads - 1;
		end = c.kv_off + (last / NP_NUM_CORES + 1) * c.kv_unit;
		if (end > kv_end)
			kv_end = end;
	}
	/* the requantisation pairs and biases, at the same per-core
	 * offsets */
	for (uint32_t l = 0; l < c.n_layers; l++) {
		struct npk_layer L;

		memcpy(&L, sram + prog + c.layers_off + l * sizeof(L),
		       sizeof(L));
		for (unsigned int t = 0; t < NPK_N_TENSORS; t++)
			if (npk_overlap(L.t[t].rq_off,
					(uint64_t)L.t[t].rows_per_core * 8,
					c.kv_off, kv_end - c.kv_off) ||
			    (L.t[t].bias_off &&
			     npk_overlap(L.t[t].bias_off,
					 (uint64_t)L.t[t].rows_per_core * 4,
					 c.kv_off, kv_end - c.kv_off)))
				return 0;
	}
	/* the block, on each core it covers */
	first = prog / NP_CORE_SRAM_SIZE;
	last = (prog + c.block_size - 1) / NP_CORE_SRAM_SIZE;
	for (uint64_t k = first; k <= last && k * NP_CORE_SRAM_SIZE < sram_size;
	     k++)
		if (npk_overlap(prog, c.block_size,
				k * NP_CORE_SRAM_SIZE + c.kv_off,
				kv_end - c.kv_off))
			return 0;
	return 1;
}

/* ---------------------------------------------------------------- */
/* Execution                                                         */

/*
 * A job's tokens run in groups of up to NPK_GROUP: each layer takes the
 * whole group before the next layer, so one pass over a core's weight rows
 * (which stay in the host's cache) serves every token of the group. The
 * results are those of running the tokens one after the other: a layer's
 * KV entries are only read by the same layer, and within a layer every
 * token still writes its entry and then attends, in token order.
 */

/* heads of one KV head that attend in one pass over its K and V rows */
#define NPK_ATT_HEADS 4u

/* scratch offsets, and per-token strides in elements */
struct npk_scratch {
	size_t x, xmid, a, acc, q16, k16, q4, k4, v4, attn, g8, u8, p, oacc;
	size_t o32, lin, rq, bias;
	size_t a_n, acc_n; /* per-token elements of a and acc */
	size_t total;
};

static uint32_t npk_max3(uint32_t a, uint32_t b, uint32_t c)
{
	uint32_t m = a > b ? a : b;

	return m > c ? m : c;
}

static void npk_scratch_layout(const struct npk_card *c, struct npk_scratch *s)
{
	/* an output program uses x, a and acc only: its other fields are
	 * not validated and must not size anything */
	int out = c->kind == NPK_KIND_OUTPUT;
	uint32_t qd = out ? 0 : c->n_heads * c->head_dim;
	uint32_t kvd = out ? 0 : c->n_kv_heads * c->head_dim;
	uint32_t ffn = out ? 0 : c->ffn, seq = out ? 0 : c->max_seq;
	uint32_t hd = out ? 0 : c->head_dim;
	uint32_t rows = out ? c->vocab_end - c->vocab_begin :
			      npk_max3(qd, c->ffn, c->dim);
	size_t o = 0, g = NPK_GROUP;

#define NPK_TAKE(field, bytes)                           \
	do {                                             \
		s->field = o;                            \
		o += ((size_t)(bytes) + 7) & ~(size_t)7; \
	} while (0)
	s->a_n = npk_max3(c->dim, ffn, qd);
	s->acc_n = rows;
	NPK_TAKE(x, g * c->dim * 2);
	NPK_TAKE(xmid, g * c->dim * 2);
	NPK_TAKE(a, g * s->a_n);
	NPK_TAKE(acc, g * rows * 4);
	NPK_TAKE(q16, g * qd * 2);
	NPK_TAKE(k16, g * kvd * 2);
	NPK_TAKE(q4, g * qd);
	NPK_TAKE(k4, g * kvd);
	NPK_TAKE(v4, g * kvd);
	NPK_TAKE(attn, g * qd);
	NPK_TAKE(g8, g * ffn);
	NPK_TAKE(u8, g * ffn);
	NPK_TAKE(p, (size_t)NPK_ATT_HEADS * seq * 4);
	NPK_TAKE(oacc, (size_t)NPK_ATT_HEADS * hd * 8);
	NPK_TAKE(o32, (size_t)NPK_ATT_HEADS * hd * 4);
	/* the matrices' columns: dim, ffn (down) or qd (O) */
	NPK_TAKE(lin, npk_linear_tmp_size(npk_max3(c->dim, ffn, qd)));
	NPK_TAKE(rq, (size_t)rows * sizeof(struct npk_rq));
	NPK_TAKE(bias, (size_t)rows * 4);
#undef NPK_TAKE
	s->total = o;
}

size_t npk_scratch_size(const uint8_t *sram, uint64_t prog)
{
	struct npk_card c;
	struct npk_scratch s;

	memcpy(&c, sram + prog, sizeof(c));
	npk_scratch_layout(&c, &s);
	return s.total;
}

size_t npk_out_size(const uint8_t *sram, uint64_t prog, uint32_t n_tokens)
{
	struct npk_card c;

	memcpy(&c, sram + prog, sizeof(c));
	if (c.kind == NPK_KIND_OUTPUT)
		return (size_t)n_tokens * (c.vocab_end - c.vocab_begin) * 4;
	return (size_t)n_tokens * c.dim * 2;
}

/*
 * For each of n tokens (activations a + k * a_n, results out + k * out_n):
 * acc[r] for every row of t, then requantised into [lo, hi]: the whole
 * matrix in one call (npk_linear_isa takes the cores' blocks of rows in
 * order), then each token's rows in one call, with the cores'
 * requantisation pairs gathered into one array.
 */
static void npk_linear(const uint8_t *sram, const struct npk_tensor *t,
		       const int8_t *a, size_t a_n, uint32_t n, int32_t lo,
		       int32_t hi, int32_t *out, size_t out_n, uint8_t *s,
		       const struct npk_scratch *o)
{
	const struct npk_wmat m = {
		.w = sram + t->off,
		.stride = NP_CORE_SRAM_SIZE,
		.rows = t->rows,
		.cols = t->cols,
		.row_bytes = t->row_bytes,
		.bits = t->bits,
		.rpc = t->rows_per_core,
	};
	enum npk_isa isa = npk_isa_best();
	uint8_t *rq = s + o->rq;

	int32_t *bias = (int32_t *)(s + o->bias);

	npk_linear_isa(isa, &m, a, a_n, n, out, out_n, s + o->lin);
	/* the cores' requantisation pairs (and biases) in one array, so
	 * each token's rows requantise in one call of whole vectors */
	for (uint32_t r0 = 0; r0 < t->rows; r0 += t->rows_per_core) {
		uint32_t nr = t->rows - r0 < t->rows_per_core ?
				      t->rows - r0 :
				      t->rows_per_core;
		const uint8_t *core = sram + (size_t)(r0 / t->rows_per_core) *
						     NP_CORE_SRAM_SIZE;

		memcpy(rq + (size_t)r0 * sizeof(struct npk_rq),
		       core + t->rq_off, (size_t)nr * sizeof(struct npk_rq));
		if (t->bias_off)
			memcpy(bias + r0, core + t->bias_off, (size_t)nr * 4);
	}
	for (uint32_t k = 0; k < n; k++) {
		int32_t *y = out + k * out_n;

		for (uint32_t r = 0; t->bias_off && r < t->rows; r++)
			y[r] = (int32_t)npk_clamp64((int64_t)y[r] + bias[r],
						    INT32_MIN, INT32_MAX);
		npk_requant_isa(isa, y, rq, t->rows, lo, hi);
	}
}

static uint8_t *npk_kv_unit(uint8_t *sram, const struct npk_card *c,
			    const struct npk_layer *L, uint32_t slot,
			    uint32_t g)
{
	uint64_t u =
		(uint64_t)L->kv_first_unit + (uint64_t)slot * c->n_kv_heads + g;

	return sram + (u % NP_NUM_CORES) * NP_CORE_SRAM_SIZE + c->kv_off +
	       (u / NP_NUM_CORES) * c->kv_unit;
}

static void npk_rope(const uint32_t *freq, uint32_t hd, uint32_t pos,
		     const int16_t *in, struct npk_rq rq, uint32_t bits,
		     int8_t *out)
{
	int32_t lo = npk_lo(bits), hi = npk_hi(bits);

	for (uint32_t i = 0; i < hd / 2; i++) {
		int32_t s, co, x0 = in[2 * i], x1 = in[2 * i + 1];

		npk_sincos(pos * freq[i], &s, &co);
		out[2 * i] =
			(int8_t)npk_requant_i(x0 * co - x1 * s, rq, lo, hi);
		out[2 * i + 1] =
			(int8_t)npk_requant_i(x0 * s + x1 * co, rq, lo, hi);
	}
}

/*
 * Attention of one token: the heads that share a KV head go up to
 * NPK_ATT_HEADS at a time, so one pass over the K rows scores all of them
 * (as tokens of one matmul) and one pass over the V rows sums for all.
 */
static void npk_attention(uint8_t *sram, const struct npk_card *c,
			  const struct npk_layer *L, uint32_t slot,
			  uint32_t pos, const int8_t *q4, int8_t *attn,
			  uint8_t *s, const struct npk_scratch *o)
{
	enum npk_isa isa = npk_isa_best();
	uint32_t hd = c->head_dim, kvb = npk_kvb(L), rowb = hd * kvb / 8;
	uint32_t seq = c->max_seq, group = c->n_heads / c->n_kv_heads;
	/* |w * v| <= 2^15 * 2^(kvb - 1): positions whose sum fits int32 */
	uint32_t chunk = kvb == 4 ? 4096 : 256;
	int32_t alo = npk_lo(npk_actb(L)), ahi = npk_hi(npk_actb(L));
	int32_t *p = (int32_t *)(s + o->p);
	int64_t *oacc = (int64_t *)(s + o->oacc);
	int32_t *o32 = (int32_t *)(s + o->o32);

	for (uint32_t h0 = 0, g; h0 < c->n_heads; h0 += g) {
		const uint8_t *unit = npk_kv_unit(sram, c, L, slot, h0 / group);
		const uint8_t *K = unit, *V = unit + (size_t)seq * rowb;
		int64_t sum[NPK_ATT_HEADS] = {0};

		/* heads h0.. of one KV head, at most NPK_ATT_HEADS */
		g = h0 / group * group + group - h0;
		g = g < NPK_ATT_HEADS ? g : NPK_ATT_HEADS;
		/* scores: the K rows are a matrix of pos + 1 rows */
		npk_matmul_isa(isa, K, pos + 1, hd, rowb, kvb,
			       q4 + (size_t)h0 * hd, hd, g, p, seq);
		for (uint32_t j = 0; j < g; j++) {
			int32_t *pj = p + (size_t)j * seq, max = INT32_MIN;

			for (uint32_t t = 0; t <= pos; t++)
				if (pj[t] > max)
					max = pj[t];
			/* the score becomes its softmax weight */
			sum[j] = npk_softmax_isa(isa, pj, pos + 1, max,
						 &L->softmax);
		}
		memset(oacc, 0, (size_t)g * hd * sizeof(*oacc));
		for (uint32_t t0 = 0; t0 <= pos; t0 += chunk) {
			uint32_t nt =
				pos + 1 - t0 < chunk ? pos + 1 - t0 : chunk;

			memset(o32, 0, (size_t)g * hd * sizeof(*o32));
			if (kvb == 4)
				npk_wsumv_isa(isa, V + (size_t)t0 * rowb, rowb,
					      nt, hd, p + t0, seq, g, o32, hd);
			else
				npk_wsumv8_isa(isa, V + (size_t)t0 * rowb, rowb,
					       nt, hd, p + t0, seq, g, o32, hd);
			for (uint32_t d = 0; d < g * hd; d++)
				oacc[d] += o32[d];
		}
		for (uint32_t j = 0; j < g; j++)
			for (uint32_t d = 0; d < hd; d++) {
				int64_t v = npk_div_round(
					oacc[(size_t)j * hd + d] * 65536,
					sum[j]);

				attn[(size_t)(h0 + j) * hd + d] =
					(int8_t)npk_requant_i(v, L->attn, alo,
							      ahi);
			}
	}
}

/* one layer for the n tokens of a group, x in and out */
static void npk_layer_group(uint8_t *sram, const struct npk_card *c,
			    const struct npk_layer *L, const uint32_t *freq,
			    const struct npk_tok *tk, uint32_t n, uint8_t *s,
			    const struct npk_scratch *o)
{
	uint32_t hd = c->head_dim, qd = c->n_heads * hd;
	uint32_t kvd = c->n_kv_heads * hd, dim = c->dim, ffn = c->ffn;
	int16_t *x = (int16_t *)(s + o->x), *xmid = (int16_t *)(s + o->xmid);
	int8_t *a = (int8_t *)(s + o->a);
	int32_t *acc = (int32_t *)(s + o->acc);
	int16_t *q16 = (int16_t *)(s + o->q16), *k16 = (int16_t *)(s + o->k16);
	int8_t *q4 = (int8_t *)(s + o->q4), *k4 = (int8_t *)(s + o->k4);
	int8_t *v4 = (int8_t *)(s + o->v4), *attn = (int8_t *)(s + o->attn);
	int8_t *g8 = (int8_t *)(s + o->g8), *u8 = (int8_t *)(s + o->u8);
	size_t an = o->a_n, accn = o->acc_n;
	uint32_t ab = npk_actb(L), kvb = npk_kvb(L);

	/* attention */
	for (uint32_t k = 0; k < n; k++)
		npk_rmsnorm_q(x + k * dim, dim, L->eps1, L->norm1, npk_lo(ab),
			      npk_hi(ab), a + k * an);
	npk_linear(sram, &L->t[NPK_Q], a, an, n, INT16_MIN, INT16_MAX, acc,
		   accn, s, o);
	for (uint32_t k = 0; k < n; k++)
		for (uint32_t i = 0; i < qd; i++)
			q16[k * qd + i] = (int16_t)acc[k * accn + i];
	npk_linear(sram, &L->t[NPK_K], a, an, n, INT16_MIN, INT16_MAX, acc,
		   accn, s, o);
	for (uint32_t k = 0; k < n; k++)
		for (uint32_t i = 0; i < kvd; i++)
			k16[k * kvd + i] = (int16_t)acc[k * accn + i];
	npk_linear(sram, &L->t[NPK_V], a, an, n, npk_lo(kvb), npk_hi(kvb), acc,
		   accn, s, o);
	for (uint32_t k = 0; k < n; k++)
		for (uint32_t i = 0; i < kvd; i++)
			v4[k * kvd + i] = (int8_t)acc[k * accn + i];
	/* in token order: a token's KV entries, then its attention */
	for (uint32_t k = 0; k < n; k++) {
		uint32_t pos = tk[k].pos;

		for (uint32_t h = 0; h < c->n_heads; h++)
			npk_rope(freq, hd, pos, q16 + k * qd + (size_t)h * hd,
				 L->rope_q, ab, q4 + k * qd + (size_t)h * hd);
		for (uint32_t g = 0; g < c->n_kv_heads; g++) {
			uint8_t *unit = npk_kv_unit(sram, c, L, tk[k].slot, g);
			size_t rowb = (size_t)hd * kvb / 8;
			int8_t *kk = k4 + k * kvd + (size_t)g * hd;
			int8_t *vv = v4 + k * kvd + (size_t)g * hd;
			uint8_t *kr = unit + pos * rowb;
			uint8_t *vr =
				unit + (size_t)c->max_seq * rowb + pos * rowb;

			npk_rope(freq, hd, pos, k16 + k * kvd + (size_t)g * hd,
				 L->rope_k, kvb, kk);
			if (kvb == 4) {
				npk_pack4(kk, hd, kr);
				npk_pack4(vv, hd, vr);
			} else {
				memcpy(kr, kk, hd);
				memcpy(vr, vv, hd);
			}
		}
		npk_attention(sram, c, L, tk[k].slot, pos, q4 + k * qd,
			      attn + k * qd, s, o);
	}
	npk_linear(sram, &L->t[NPK_O], attn, qd, n, INT16_MIN, INT16_MAX, acc,
		   accn, s, o);
	for (uint32_t k = 0; k < n; k++)
		for (uint32_t i = 0; i < dim; i++)
			xmid[k * dim + i] = (int16_t)npk_clamp64(
				(int64_t)x[k * dim + i] + acc[k * accn + i],
				INT16_MIN, INT16_MAX);

	/* feed-forward */
	for (uint32_t k = 0; k < n; k++)
		npk_rmsnorm_q(xmid + k * dim, dim, L->eps2, L->norm2,
			      npk_lo(ab), npk_hi(ab), a + k * an);
	npk_linear(sram, &L->t[NPK_GATE], a, an, n, -128, 127, acc, accn, s, o);
	for (uint32_t k = 0; k < n; k++)
		for (uint32_t i = 0; i < ffn; i++)
			g8[k * ffn + i] = (int8_t)acc[k * accn + i];
	npk_linear(sram, &L->t[NPK_UP], a, an, n, -128, 127, acc, accn, s, o);
	for (uint32_t k = 0; k < n; k++)
		for (uint32_t i = 0; i < ffn; i++)
			u8[k * ffn + i] = (int8_t)acc[k * accn + i];
	for (uint32_t k = 0; k < n; k++)
		for (uint32_t i = 0; i < ffn; i++) {
			int32_t sl = L->silu_lut[(uint8_t)g8[k * ffn + i]];

			a[k * an + i] = (int8_t)npk_requant_i(
				sl * u8[k * ffn + i], L->silu_mul, -128, 127);
		}
	npk_linear(sram, &L->t[NPK_DOWN], a, an, n, INT16_MIN, INT16_MAX, acc,
		   accn, s, o);
	for (uint32_t k = 0; k < n; k++)
		for (uint32_t i = 0; i < dim; i++) {
			int64_t r = npk_requant_i(xmid[k * dim + i], L->res,
						  INT16_MIN, INT16_MAX);

			x[k * dim + i] = (int16_t)npk_clamp64(
				r + acc[k * accn + i], INT16_MIN, INT16_MAX);
		}
}

int npk_run(uint8_t *sram, uint64_t prog, const void *arg, size_t arg_len,
	    void *out, size_t out_len, void *scratch)
{
	const uint8_t *ab = arg;
	uint8_t *s = scratch, *ob = out;
	struct npk_card c;
	struct npk_scratch o;
	uint32_t n, zero;
	uint32_t freq[NPK_MAX_HEAD_DIM / 2];
	size_t row_in, row_out;

	memcpy(&c, sram + prog, sizeof(c));
	npk_scratch_layout(&c, &o);
	if (arg_len < NPK_ARG_HDR)
		return NP_ERR_BAD_PROGRAM;
	memcpy(&n, ab, 4);
	memcpy(&zero, ab + 4, 4);
	row_in = (size_t)c.dim * 2;
	row_out = c.kind == NPK_KIND_OUTPUT ?
			  (size_t)(c.vocab_end - c.vocab_begin) * 4 :
			  row_in;
	if (zero != 0 || n == 0 ||
	    (arg_len - NPK_ARG_HDR) / (sizeof(struct npk_tok) + row_in) < n ||
	    out_len / row_out < n)
		return NP_ERR_BAD_PROGRAM;
	for (uint32_t i = 0; i < n; i++) {
		struct npk_tok tk;

		memcpy(&tk, ab + NPK_ARG_HDR + i * sizeof(tk), sizeof(tk));
		if (c.kind == NPK_KIND_LAYERS &&
		    (tk.slot >= c.batch || tk.pos >= c.max_seq))
			return NP_ERR_BAD_PROGRAM;
	}
	if (c.kind == NPK_KIND_LAYERS)
		memcpy(freq, sram + prog + c.rope_off,
		       (size_t)c.head_dim / 2 * 4);
	for (uint32_t i0 = 0; i0 < n; i0 += NPK_GROUP) {
		uint32_t g = n - i0 < NPK_GROUP ? n - i0 : NPK_GROUP;
		struct npk_tok tk[NPK_GROUP];
		const uint8_t *xin = ab + NPK_ARG_HDR +
				     (size_t)n * sizeof(struct npk_tok) +
				     (size_t)i0 * row_in;

		memcpy(tk, ab + NPK_ARG_HDR + (size_t)i0 * sizeof(tk[0]),
		       g * sizeof(tk[0]));
		memcpy(s + o.x, xin, g * row_in);
		if (c.kind == NPK_KIND_OUTPUT) {
			struct npk_output ou;

			memcpy(&ou, sram + prog + c.output_off, sizeof(ou));
			for (uint32_t k = 0; k < g; k++)
				npk_rmsnorm_q((const int16_t *)(s + o.x) +
						      (size_t)k * c.dim,
					      c.dim, ou.eps, ou.norm, -127, 127,
					      (int8_t *)(s + o.a) + k * o.a_n);
			npk_linear(sram, &ou.w, (const int8_t *)(s + o.a),
				   o.a_n, g, INT32_MIN, INT32_MAX,
				   (int32_t *)(s + o.acc), o.acc_n, s, &o);
			for (uint32_t k = 0; k < g; k++)
				memcpy(ob + (size_t)(i0 + k) * row_out,
				       s + o.acc + (size_t)k * o.acc_n * 4,
				       row_out);
			continue;
		}
		for (uint32_t l = 0; l < c.n_layers; l++) {
			struct npk_layer L;

			memcpy(&L, sram + prog + c.layers_off + l * sizeof(L),
			       sizeof(L));
			npk_layer_group(sram, &c, &L, freq, tk, g, s, &o);
		}
		memcpy(ob + (size_t)i0 * row_out, s + o.x, g * row_out);
	}
	return NP_ERR_NONE;
}
