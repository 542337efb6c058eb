/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * np layer programs: the card's compute contract.
 *
 * What an NP_JOB_OP_LAYER job (np_abi.h) runs: the program block a job's
 * prog field points at in SRAM, the weight, requantisation and KV cache
 * layout it describes, and the job's argument and output frames. The
 * model compiler (libnpmodel) writes these structures, the card (the
 * emulator core, through npk) reads them, libnp's pipeline fills the
 * frames. Like np_abi.h it holds only integer constants and fixed-layout
 * little-endian structures; docs/model-format.md is its prose version and
 * docs/numerics.md specifies the arithmetic.
 */
#ifndef NP_PROG_H
#define NP_PROG_H

#include <stdint.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "np layer programs are little-endian structures overlaid on memory"
#endif

#define NPK_MAGIC 0x504c504eu /* "NPLP" */
#define NPK_VERSION 1u
#define NPK_ALIGN 64u /* every per-core offset and row stride */

enum npk_kind {
	NPK_KIND_LAYERS = 1,
	NPK_KIND_OUTPUT = 2,
};

/* Requantisation: y = round_half_up(x * m / 2^shift), m in [0, 2^31) */
struct npk_rq {
	int32_t m;
	int32_t shift; /* 0..62 */
};

/*
 * A weight matrix split by output rows over the 256 cores: row r lives on
 * core r / rows_per_core at per-core offset off + (r % rows_per_core) *
 * row_bytes, its requantisation parameters at rq_off + (r %
 * rows_per_core) * 8 and, when bias_off is not 0, its int32 bias at
 * bias_off + (r % rows_per_core) * 4, all on the same core. Elements are
 * packed four per byte (bits 2: npk_pack2), two per byte (bits 4, low
 * nibble first) or one per byte (bits 8), row padded with zeros to
 * row_bytes.
 *
 * bits 2: the row's columns in blocks of 256 (the last block holds the
 * rest, n columns), block b at byte 64 b; with q = min(64, ceil(n / 4)),
 * column j of a block is the two's complement 2-bit field j / q (bits
 * 2 (j / q) and up) of the block's byte j % q. A full block is 64 bytes
 * whose field k holds 64 consecutive columns: SIMD unpacks it with a
 * shift and a mask per 64 columns.
 */
struct npk_tensor {
	uint32_t off;
	uint32_t rq_off;
	uint32_t rows;
	uint32_t cols;
	uint32_t rows_per_core;
	uint32_t row_bytes;
	uint32_t bits; /* 2, 4 or 8 (the output layer: 8) */
	uint32_t bias_off; /* 0: no bias; else added to the accumulator
			    * (saturating to int32) before requantisation */
};

enum npk_layer_tensor {
	NPK_Q,
	NPK_K,
	NPK_V,
	NPK_O,
	NPK_GATE,
	NPK_UP,
	NPK_DOWN,
	NPK_N_TENSORS,
};

/*
 * A layer's precision (docs/numerics.md): act_bits is the width of h1, h2,
 * q after RoPE and the attention output, kv_bits that of k after RoPE and
 * v (the KV cache); 0 means 4, so images written before these fields
 * existed (rsvd zero) still mean w4a4. The weights' width is each
 * tensor's bits (2, 4 or 8).
 */
struct npk_layer {
	struct npk_tensor t[NPK_N_TENSORS];
	uint64_t eps1; /* RMSNorm epsilon in x units^2 * 2^16 */
	uint64_t eps2;
	struct npk_rq norm1; /* Q16 unit-RMS -> h1 (act_bits) */
	struct npk_rq norm2; /* Q16 unit-RMS -> h2 (act_bits) */
	struct npk_rq rope_q; /* rotated int16 (Q14 products) -> q */
	struct npk_rq rope_k; /* -> k (cache, kv_bits) */
	struct npk_rq softmax; /* score difference -> exp2 exponent, Q8 */
	struct npk_rq attn; /* Q16 weighted V -> attention output */
	struct npk_rq silu_mul; /* int8 silu * int8 up -> int8 a */
	struct npk_rq res; /* x_mid -> x_out scale */
	uint32_t kv_first_unit; /* KV units: see npk_card */
	uint8_t act_bits; /* 0 or 4: INT4; 8: INT8 */
	uint8_t kv_bits; /* 0 or 4: INT4; 8: INT8 */
	uint16_t rsvd; /* zero */
	int8_t silu_lut[256]; /* indexed by (uint8_t)gate8 */
};

struct npk_output {
	struct npk_tensor w; /* bits 8, rows = vocab_end - vocab_begin */
	uint64_t eps;
	struct npk_rq norm; /* Q16 unit-RMS -> int8 h */
	uint32_t rsvd[2];
};

/*
 * Program block, at the card address a job's prog field names (core 0,
 * offset 0 as the compiler lays it out). Offsets are from its start.
 */
struct npk_card {
	uint32_t magic;
	uint16_t version;
	uint16_t hdr_size; /* sizeof(struct npk_card) */
	uint32_t kind; /* enum npk_kind */
	uint32_t block_size; /* whole program block, bytes */
	uint32_t first_layer;
	uint32_t n_layers; /* NPK_KIND_LAYERS: npk_layer array at layers_off;
			    * 0: a pass-through card, out rows = in rows */
	uint32_t dim;
	uint32_t n_heads;
	uint32_t n_kv_heads;
	uint32_t head_dim;
	uint32_t ffn;
	uint32_t vocab_begin; /* NPK_KIND_OUTPUT: rows of this card */
	uint32_t vocab_end;
	uint32_t max_seq;
	uint32_t batch;
	uint32_t layers_off;
	uint32_t output_off; /* struct npk_output */
	uint32_t rope_off; /* head_dim / 2 uint32: rotation per position,
			    * in 2^-32 turns */
	/* KV cache: unit u = (layer unit base + slot * n_kv_heads + kv head)
	 * on core u % 256 at per-core offset kv_off + (u / 256) * kv_unit;
	 * a unit holds K then V, each max_seq rows of head_dim elements of
	 * the layer's kv_bits (int4 packed as npk_pack4, or int8): kv_unit
	 * is at least max_seq * head_dim * kv_bits / 4 for every layer. */
	uint32_t kv_off;
	uint32_t kv_unit;
	uint32_t core_bytes; /* per-core high-water mark */
	uint32_t rsvd[3];
};

_Static_assert(sizeof(struct npk_tensor) == 32, "npk_tensor layout");
_Static_assert(sizeof(struct npk_layer) == 7 * 32 + 16 + 64 + 8 + 256,
	       "npk_layer layout");
_Static_assert(sizeof(struct npk_output) == 32 + 8 + 8 + 8, "npk_output");
_Static_assert(sizeof(struct npk_card) == 96, "npk_card layout");

/* Job arguments (the job descriptor's arg) and output (its out). */
struct npk_tok {
	uint32_t slot; /* session, < batch */
	uint32_t pos; /* position in the session, < max_seq */
};
/*
 * arg: uint32 n_tokens, uint32 zero, n_tokens struct npk_tok, then
 * n_tokens rows of dim int16 (x). Tokens run in order, so a later token
 * sees KV entries an earlier one wrote.
 * out: layer cards n_tokens rows of dim int16; output cards n_tokens rows
 * of (vocab_end - vocab_begin) int32 logits.
 */
#define NPK_ARG_HDR 8u

#endif /* NP_PROG_H */
