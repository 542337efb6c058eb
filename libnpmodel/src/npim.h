/* SPDX-License-Identifier: MIT */
/* Internal helpers shared by the files of np_model. */
#ifndef NPIM_H
#define NPIM_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "np/model.h"

#define NPIM_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

__attribute__((format(printf, 3, 4))) void
npim_log(const struct np_log *log, int level, const char *fmt, ...);

/* Whole file, NUL-terminated; 0 or -errno. */
int npim_read_file(const char *path, char **buf, size_t *len);
float npim_f16_to_f32(uint16_t h);
uint16_t npim_f32_to_f16(float f);

#define NPIM_GGUF_MAGIC 0x46554747u /* "GGUF", the file's first bytes */

/* ggml type table (gguf_dequant.c): block elements and bytes; 0 if
 * unknown */
int npim_ggml_type_info(uint32_t type, uint32_t *blck, uint32_t *bytes,
			const char **name);
/* "F32, F16, ...": the types np_gguf_tensor_row reads, for messages;
 * returns the length written (truncated to len - 1) */
size_t npim_ggml_readable_list(char *buf, size_t len);
/* IQ4_NL's 16 levels */
extern const int8_t npim_iq4nl_values[16];

/* Growable byte buffer */
struct npim_buf {
	uint8_t *p;
	size_t len, cap;
	int err;
};
void npim_buf_put(struct npim_buf *b, const void *d, size_t n);
/* Quantise n floats (a multiple of the type's block) to `type`, appended
 * to b (gguf_quant.c); -EINVAL when the writer does not write the type */
int npim_ggml_quantize(uint32_t type, const float *x, uint64_t n,
		       struct npim_buf *b);
/* x through `type` and back (ggml's quantize_row_*_ref, then
 * dequantize_row_*) into out (may be x); scratch is reused */
int npim_ggml_roundtrip(uint32_t type, const float *x, uint64_t n, float *out,
			struct npim_buf *scratch);
void npim_buf_u32(struct npim_buf *b, uint32_t v);
void npim_buf_u64(struct npim_buf *b, uint64_t v);
void npim_buf_str(struct npim_buf *b, const char *s, size_t n);
void npim_buf_pad(struct npim_buf *b, size_t align);

/* Row b of stream a: n seed-derived floats base + amp * U[-1, 1) */
void npim_rand_row(uint64_t seed, uint64_t a, uint64_t b, float amp, float base,
		   float *out, size_t n);

/* UTF-8: length of the sequence at s (1 for an invalid byte), decoded
 * code point in *cp (0xfffd for invalid) */
size_t npim_utf8_next(const unsigned char *s, size_t len, uint32_t *cp);
int npim_is_letter(uint32_t cp);
int npim_is_number(uint32_t cp);
int npim_is_space(uint32_t cp);
int npim_is_punct(uint32_t cp); /* Unicode category P */

/* String -> int32 hash map (open addressing); keys are copied. */
struct npim_map;
struct npim_map *npim_map_new(size_t hint);
void npim_map_free(struct npim_map *m);
/* 0, -ENOMEM; replaces an existing value */
int npim_map_put(struct npim_map *m, const char *k, size_t n, int32_t v);
/* value or -1 */
int32_t npim_map_get(const struct npim_map *m, const char *k, size_t n);

struct npim_arch;
struct npim_family;

/*
 * The arithmetic of a model beyond a plain llama decoder, as llama.cpp
 * computes it; 1 (0 for kq_scale) where the model has none, and every
 * reader multiplies by these unconditionally: x * 1 is x.
 */
struct npim_math {
	float emb_scale; /* token embeddings are multiplied by it */
	float res_scale; /* attention and FFN outputs, before the residual */
	float kq_scale; /* attention scores; 0: 1 / sqrt(head_dim) */
	float logit_scale; /* logits are multiplied by 1 / logit_scale */
	float rope_factor; /* linear RoPE scaling: angles / rope_factor */
	int neox; /* RoPE pairs (i, i + hd/2) */
	uint32_t bias_mask; /* bit NP_T_Q/K/V: some layer has that bias */
};

/* The model pieces np_compile and the references need */
struct np_model {
	struct np_model_shape shape;
	const struct npim_arch *arch; /* npim_arch.h */
	const struct npim_family *fam; /* synthetic: what it generates */
	const struct np_gguf *g;
	const struct np_gguf_tensor **t; /* [n_layers * 9 + 3] when g */
	const struct np_gguf_tensor **bias; /* [n_layers * 3] Q/K/V, when g */
	const struct np_gguf_tensor *rope_freqs; /* NULL: none */
	struct npim_math x;
	uint64_t seed;
	const float *w; /* np_model_from_floats: the caller's weights */
	/* np_model_ptq: materialised weights [n_layers * 9 + 3] and Q/K/V
	 * biases [n_layers * 3], read in place of g or the seed */
	float **mem;
	float **mem_bias;
};

/* Bias of layer tensor NP_T_Q/K/V (rows floats): zeros where none */
int npim_model_bias(const struct np_model *m, int tensor, uint32_t layer,
		    float *out);
/* head_dim / 2 RoPE frequency divisors (rope_freqs.weight): 1 where none */
int npim_model_rope_factors(const struct np_model *m, float *out);

/* model_math.c: m->x, m->bias and m->rope_freqs from m->g (arch and shape
 * set); 0, -EINVAL or -ENOTSUP (logged), -ENOMEM */
int npim_math_load(struct np_model *m, const struct np_log *log);
/* m->x of a synthetic model of family m->fam */
void npim_math_synthetic(struct np_model *m);
/* The keys and tensors of m->x that np_model_write_gguf adds */
int npim_math_write_keys(struct np_gguf_writer *w, const struct np_model *m);
int npim_math_write_tensors(struct np_gguf_writer *w, const struct np_model *m);

/* Calibration points: float activations the quantiser observes */
enum npim_act {
	NPIM_A_X, /* layer input residual */
	NPIM_A_XMID, /* residual after attention */
	NPIM_A_N1, /* x / rms(x) before attention */
	NPIM_A_Q16, /* q before RoPE */
	NPIM_A_K16,
	NPIM_A_Q4, /* q after RoPE */
	NPIM_A_K4,
	NPIM_A_V4,
	NPIM_A_ATT, /* attention output */
	NPIM_A_N2,
	NPIM_A_G8, /* gate */
	NPIM_A_U8, /* up */
	NPIM_A_A8, /* silu(gate) * up */
	NPIM_A_COUNT,
	/* model level, stored with layer = n_layers */
	NPIM_A_NOUT = NPIM_A_N1,
	NPIM_A_LOGIT = NPIM_A_Q16,
	NPIM_A_XFIN = NPIM_A_X,
};

#define NPIM_SAMPLES 8192

struct npim_stat {
	float amax;
	uint32_t n, stride, seen;
	float s[NPIM_SAMPLES];
};

void npim_stat_add(struct npim_stat *st, const float *v, size_t n);

/* Float forward pass; stats ([n_layers + 1][NPIM_A_COUNT]) may be NULL */
int npim_ref_float_forward(struct np_ref_float *r, uint32_t slot, uint32_t pos,
			   int32_t token, float *logits,
			   struct npim_stat *stats);

/* Per channel max|x| of the attention output (qd) and the FFN product
 * (ffn) of every layer into chmax ([n_layers][qd + ffn], zeroed by the
 * caller) on the following steps; NULL stops */
void npim_ref_float_chmax(struct np_ref_float *r, float *chmax);

/* ptq.c: the row scale of least squared error over clip ratios
 * (NP_COMPILE_MSE_CLIP); np_quant_row_scale's for a zero row */
float npim_ptq_row_scale(const float *w, size_t n, int bits);

struct npim_layer_scales {
	float s[NPIM_A_COUNT]; /* N1, N2, Q4, K4, V4, ATT as INT4 */
	float sl8; /* silu output */
	/* the same points as INT8 (A8 precisions: np_precision); the
	 * points that are INT8 or INT16 in every mode repeat s[] */
	float s8[NPIM_A_COUNT];
};

struct np_quant_calib {
	uint32_t n_layers;
	struct npim_layer_scales *l; /* [n_layers + 1]: the last holds x_final,
				     * n_out, logits */
};

/* The scales from the observations st ([n_layers + 1][NPIM_A_COUNT]) */
int npim_calib_from_stats(uint32_t n_layers, const struct npim_stat *st,
			  struct np_quant_calib **out);
/* np_quant_calibrate on threads threads (1..NPIM_CALIB_THREADS; more are
 * cut): the same scales, bit for bit, for any count */
#define NPIM_CALIB_THREADS 64u
int npim_quant_calibrate_threads(const struct np_model *m,
				 const int32_t *tokens, size_t n,
				 uint32_t threads, struct np_quant_calib **out);

#define NPIM_MAX_CARDS 256

/* card-NN.npimg: header, then n_segments segments of segment_len bytes,
 * segment k loaded at card address NP_CORE_SRAM_OFFSET of core k */
#define NPIM_IMG_MAGIC 0x4943504eu /* "NPCI" */
struct npim_img_hdr {
	uint32_t magic;
	uint32_t version;
	uint32_t card;
	uint32_t kind; /* enum np_card_kind */
	uint64_t prog; /* card address of the program block */
	uint32_t n_segments;
	uint32_t rsvd;
	uint64_t segment_len;
};

/* host.nphost: header, then vocab rows of dim int16 embeddings */
#define NPIM_HOST_MAGIC 0x4f48504eu /* "NPHO" */
struct npim_host_hdr {
	uint32_t magic;
	uint32_t version;
	uint32_t n_cards;
	uint32_t dim;
	uint32_t vocab;
	uint32_t batch;
	uint32_t max_seq;
	uint32_t rsvd;
	double logit_scale;
};

#endif /* NPIM_H */
