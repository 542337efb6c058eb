/* SPDX-License-Identifier: MIT */
/*
 * np model pipeline: GGUF files in, card images and reference runs out.
 *
 *   np_gguf_open()            read, parse and validate a GGUF file
 *   np_model_from_gguf()      the model in it, of an architecture np
 *                             compiles (or
 *   np_model_synthetic()      seed-derived weights of a given shape)
 *   np_tok_from_gguf()        the tokenizer stored in the file
 *   np_quant_calibrate()      activation scales from sample text
 *   np_compile()              w4a4 quantisation, layer-to-card mapping,
 *                             SRAM layout; np_compile_card_image() then
 *                             renders one card's SRAM contents
 *   np_ref_int_create()       the integer reference: runs the card images
 *                             exactly as the cards will (the oracle)
 *   np_ref_float_create()     the float reference
 *
 * The library never prints: errors go to an optional log callback as a
 * sentence naming the thing, the value and the fix, and every function that
 * can fail returns 0 or a negative errno. Destroy functions accept NULL.
 * docs/numerics.md specifies the integer arithmetic, docs/model-format.md
 * the card image layout.
 */
#ifndef NP_MODEL_H
#define NP_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include <np/log.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- */
/* GGUF                                                               */

struct np_gguf;

enum np_gguf_type {
	NP_GGUF_UINT8 = 0,
	NP_GGUF_INT8 = 1,
	NP_GGUF_UINT16 = 2,
	NP_GGUF_INT16 = 3,
	NP_GGUF_UINT32 = 4,
	NP_GGUF_INT32 = 5,
	NP_GGUF_FLOAT32 = 6,
	NP_GGUF_BOOL = 7,
	NP_GGUF_STRING = 8,
	NP_GGUF_ARRAY = 9,
	NP_GGUF_UINT64 = 10,
	NP_GGUF_INT64 = 11,
	NP_GGUF_FLOAT64 = 12,
};

/*
 * ggml tensor types (ids as in ggml.h). np_gguf_open accepts a file with
 * any of them; np_gguf_tensor_row dequantises those np_ggml_type_readable
 * says it does, np_gguf_writer_tensor writes np_ggml_type_writable ones.
 */
enum np_ggml_type {
	NP_GGML_F32 = 0,
	NP_GGML_F16 = 1,
	NP_GGML_Q4_0 = 2,
	NP_GGML_Q4_1 = 3,
	NP_GGML_Q5_0 = 6,
	NP_GGML_Q5_1 = 7,
	NP_GGML_Q8_0 = 8,
	NP_GGML_Q8_1 = 9,
	NP_GGML_Q2_K = 10,
	NP_GGML_Q3_K = 11,
	NP_GGML_Q4_K = 12,
	NP_GGML_Q5_K = 13,
	NP_GGML_Q6_K = 14,
	NP_GGML_Q8_K = 15,
	NP_GGML_IQ2_XXS = 16,
	NP_GGML_IQ2_XS = 17,
	NP_GGML_IQ3_XXS = 18,
	NP_GGML_IQ1_S = 19,
	NP_GGML_IQ4_NL = 20,
	NP_GGML_IQ3_S = 21,
	NP_GGML_IQ2_S = 22,
	NP_GGML_IQ4_XS = 23,
	NP_GGML_I8 = 24,
	NP_GGML_I16 = 25,
	NP_GGML_I32 = 26,
	NP_GGML_I64 = 27,
	NP_GGML_F64 = 28,
	NP_GGML_IQ1_M = 29,
	NP_GGML_BF16 = 30,
	NP_GGML_TQ1_0 = 34,
	NP_GGML_TQ2_0 = 35,
	NP_GGML_MXFP4 = 39,
	NP_GGML_NVFP4 = 40,
	NP_GGML_Q1_0 = 41,
};

#define NP_GGUF_MAX_DIMS 4

struct np_gguf_tensor {
	const char *name;
	enum np_ggml_type type;
	uint32_t n_dims;
	uint64_t ne[NP_GGUF_MAX_DIMS]; /* ne[0] is the contiguous dimension */
	uint64_t n_elems;
	uint64_t size; /* bytes */
	/* Inside the file, at an offset that is a multiple of the file's
	 * general.alignment (32 by default): aligned in memory for
	 * np_gguf_open (a page-aligned copy), for np_gguf_open_mem only
	 * as far as the caller's buffer is. */
	const void *data;
};

/*
 * Open and fully validate a GGUF file (versions 2 and 3). Metadata and
 * tensor infos are parsed and checked (sizes, overflow, alignment, bounds,
 * no two tensors sharing bytes). The whole file is read into private
 * memory, so truncating or rewriting the file afterwards does not affect
 * (or fault) the reader. Returns 0, -ENOENT/-EACCES/-ELOOP/... from
 * open(), -EINVAL for a malformed file or one that is not a regular file
 * (a FIFO is refused without waiting for a writer; the log says what and
 * where), -ENOMEM.
 */
int np_gguf_open(const char *path, const struct np_log *log,
		 struct np_gguf **out);
/*
 * The metadata and tensor infos of a GGUF file only, without reading its
 * tensor data: for the shape of a model of any size (nptool bench
 * --model-shape). Tensors' data pointers are NULL; np_model_from_gguf
 * refuses such a handle, np_model_shape_from_gguf takes it. Returns as
 * np_gguf_open.
 */
int np_gguf_open_meta(const char *path, const struct np_log *log,
		      struct np_gguf **out);
/* The same on a caller buffer, which must outlive the handle. */
int np_gguf_open_mem(const void *buf, size_t len, const struct np_log *log,
		     struct np_gguf **out);
void np_gguf_close(struct np_gguf *g);

uint32_t np_gguf_version(const struct np_gguf *g);
size_t np_gguf_n_tensors(const struct np_gguf *g);
const struct np_gguf_tensor *np_gguf_tensor(const struct np_gguf *g, size_t i);
/* NULL when absent */
const struct np_gguf_tensor *np_gguf_find_tensor(const struct np_gguf *g,
						 const char *name);

/* Metadata lookups: 0, -ENOENT if absent, -EINVAL if of another type.
 * Integer getters accept every integer type whose value fits. */
int np_gguf_get_u64(const struct np_gguf *g, const char *key, uint64_t *v);
int np_gguf_get_f32(const struct np_gguf *g, const char *key, float *v);
int np_gguf_get_bool(const struct np_gguf *g, const char *key, int *v);
/* The string is not NUL-terminated in the file: *s points into the map. */
int np_gguf_get_str(const struct np_gguf *g, const char *key, const char **s,
		    size_t *len);
/* Array: element type and count; np_gguf_arr_str/np_gguf_arr_num index it. */
int np_gguf_get_arr(const struct np_gguf *g, const char *key, uint32_t *type,
		    uint64_t *count);
int np_gguf_arr_str(const struct np_gguf *g, const char *key, uint64_t i,
		    const char **s, size_t *len);
int np_gguf_arr_num(const struct np_gguf *g, const char *key, uint64_t i,
		    double *v);

/* ggml's name of a tensor type ("Q8_0", "F32", "Q4_K"...), NULL when
 * the type is unknown. Any known type may appear in a file np_gguf_open
 * accepts. */
const char *np_ggml_type_name(enum np_ggml_type type);
/* The type of a ggml name, case-insensitive ("q4_k" -> NP_GGML_Q4_K):
 * 0, or -ENOENT for a name no ggml type has. */
int np_ggml_type_from_name(const char *name, enum np_ggml_type *type);
/* A type's block: elements and bytes (1 and 4 for F32, 256 and 144 for
 * Q4_K). 0, or -EINVAL for an unknown type. */
int np_ggml_type_block(enum np_ggml_type type, uint32_t *elems,
		       uint32_t *bytes);
/* 1 when np_gguf_tensor_row dequantises the type: F32, F16, BF16, Q4_0,
 * Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL. */
int np_ggml_type_readable(enum np_ggml_type type);
/* 1 when np_gguf_writer_tensor quantises to the type: every readable one. */
int np_ggml_type_writable(enum np_ggml_type type);
/*
 * The type a weight row of `cols` elements is written in when `want` is
 * asked for: `want` itself when cols is a multiple of its block, else
 * llama.cpp's fallback (llama-quantize) for a row that does not fit
 * 256-element super-blocks: Q2_K and Q3_K -> IQ4_NL, Q4_K -> Q5_0,
 * Q5_K -> Q5_1, Q6_K -> Q8_0; F16 when even that block does not fit.
 * Any other type is returned as it is.
 */
enum np_ggml_type np_ggml_type_for_row(enum np_ggml_type want, uint64_t cols);

/* Dequantise row `row` of a tensor (ne[0] elements) to float, exactly as
 * ggml's dequantize_row_* does. -ENOTSUP for a type that is not
 * readable, -ERANGE for a row past the tensor. */
int np_gguf_tensor_row(const struct np_gguf_tensor *t, uint64_t row,
		       float *out);

/* Writer: build a file in memory, then np_gguf_writer_save(). */
struct np_gguf_writer;
int np_gguf_writer_create(struct np_gguf_writer **out);
void np_gguf_writer_destroy(struct np_gguf_writer *w);
int np_gguf_writer_kv_u32(struct np_gguf_writer *w, const char *key,
			  uint32_t v);
int np_gguf_writer_kv_i32(struct np_gguf_writer *w, const char *key, int32_t v);
int np_gguf_writer_kv_f32(struct np_gguf_writer *w, const char *key, float v);
int np_gguf_writer_kv_bool(struct np_gguf_writer *w, const char *key, int v);
int np_gguf_writer_kv_str(struct np_gguf_writer *w, const char *key,
			  const char *v);
int np_gguf_writer_kv_arr_str(struct np_gguf_writer *w, const char *key,
			      const char *const *v, size_t n);
int np_gguf_writer_kv_arr_f32(struct np_gguf_writer *w, const char *key,
			      const float *v, size_t n);
int np_gguf_writer_kv_arr_i32(struct np_gguf_writer *w, const char *key,
			      const int32_t *v, size_t n);
/* 2-D tensor: rows x cols floats (row-major), stored as `type`, one of
 * the writable types, quantised as ggml's reference quantisers do it
 * (round to nearest); cols must be a multiple of the type's block.
 * 1-D: rows == 1. -EINVAL for another type or a row not made of whole
 * blocks. */
int np_gguf_writer_tensor(struct np_gguf_writer *w, const char *name,
			  enum np_ggml_type type, uint64_t rows, uint64_t cols,
			  int two_d, const float *data);
/* Write the file to a temporary name beside path (path.tmp.PID.N), sync
 * it, then rename() it over path: a process reading the old file keeps
 * its data and no reader sees half a file. 0 or -errno (the temporary
 * file is removed on failure). */
int np_gguf_writer_save(struct np_gguf_writer *w, const char *path);
/* Serialise to a malloc()ed buffer (for tests). */
int np_gguf_writer_buf(struct np_gguf_writer *w, void **buf, size_t *len);

/* ---------------------------------------------------------------- */
/* Tokenizers                                                          */

struct np_tok;

enum np_tok_kind {
	NP_TOK_SPM = 1, /* tokenizer.ggml.model "llama" */
	NP_TOK_BPE = 2, /* tokenizer.ggml.model "gpt2" (byte level) */
};

/*
 * The tokenizer of a GGUF: tokenizer.ggml.model "llama" or "gpt2"; for
 * gpt2, tokenizer.ggml.pre names the pre-tokenizer (np_tok_pre; gpt-2's
 * rule when the key is absent). Returns 0, -EINVAL for missing or corrupt
 * keys, -ENOTSUP for a model or pre-tokenizer np does not implement (the
 * log names it and lists the supported ones), -ENOMEM.
 */
int np_tok_from_gguf(const struct np_gguf *g, const struct np_log *log,
		     struct np_tok **out);
void np_tok_destroy(struct np_tok *t);
int np_tok_kind(const struct np_tok *t);
uint32_t np_tok_n_vocab(const struct np_tok *t);
int32_t np_tok_bos(const struct np_tok *t); /* -1 if none */
int32_t np_tok_eos(const struct np_tok *t);
/* The BPE pre-tokenizer in use, by its tokenizer.ggml.pre name ("gpt-2",
 * "llama-bpe", "qwen2", ...); NULL for a SentencePiece vocabulary. */
const char *np_tok_pre(const struct np_tok *t);
/*
 * Encode `len` bytes of text (any bytes; invalid UTF-8 is kept through byte
 * tokens where the vocabulary has them, bytes without a token are dropped)
 * without BOS, exactly as llama.cpp's llama_tokenize(add_special false).
 * User-defined tokens are matched before anything else. *n_out receives the
 * count; returns -ENOSPC (with the needed count in *n_out) when cap is too
 * small, -E2BIG for text of 4 GiB or more, -ENOMEM.
 */
int np_tok_encode(const struct np_tok *t, const char *text, size_t len,
		  int32_t *ids, size_t cap, size_t *n_out);
/* np_tok_encode_flags: control tokens written in the text ("<|im_start|>")
 * become those tokens instead of their characters' (parse_special) */
#define NP_TOK_PARSE_SPECIAL (1u << 0)
/* np_tok_encode with NP_TOK_* flags; -EINVAL for an unknown flag */
int np_tok_encode_flags(const struct np_tok *t, const char *text, size_t len,
			unsigned int flags, int32_t *ids, size_t cap,
			size_t *n_out);
/* Decode ids to text (control tokens produce nothing, user-defined ones
 * their text verbatim); -ENOSPC as above, -EINVAL for an id out of range.
 * The output is not NUL-terminated. */
int np_tok_decode(const struct np_tok *t, const int32_t *ids, size_t n,
		  char *text, size_t cap, size_t *len_out);

/*
 * Train a vocabulary on sample text and store it in a GGUF writer as
 * tokenizer.ggml.* metadata: kind NP_TOK_SPM (byte fallback, scores) or
 * NP_TOK_BPE (byte-level merges). Up to n_vocab tokens are learnt; when
 * n_vocab exceeds what the text supports the rest are unused tokens, so
 * the vocabulary has exactly n_vocab entries. Returns -EINVAL if n_vocab
 * is below the fixed part (bytes and specials: 259 for SPM, 257 for BPE).
 */
int np_tok_train(enum np_tok_kind kind, const char *text, size_t len,
		 uint32_t n_vocab, struct np_gguf_writer *w);

/* ---------------------------------------------------------------- */
/* Models                                                              */

struct np_model_shape {
	uint32_t n_layers;
	uint32_t dim;
	uint32_t n_heads;
	uint32_t n_kv_heads;
	uint32_t ffn;
	uint32_t vocab;
	uint32_t ctx; /* context length in the metadata */
	float rope_base;
	float norm_eps;
};

/* A model of an architecture np compiles (llama, granite, qwen2);
 * weights read through from the source. */
struct np_model;

/* Checks architecture, hyperparameters and every tensor's name, type and
 * shape. -EINVAL (logged: which key or tensor, what was found, what was
 * expected), -ENOTSUP for an architecture np does not compile (logged
 * with the ones it does: llama, granite, qwen2), a tensor the architecture
 * does not compute with, RoPE scaling other than none or linear, or a
 * tensor type that is not np_ggml_type_readable (logged with the tensor's
 * name). The gguf must outlive the model. */
int np_model_from_gguf(const struct np_gguf *g, const struct np_log *log,
		       struct np_model **out);
/* The shape of the model in g (np_gguf_open or np_gguf_open_meta) from
 * its metadata, checked as np_model_from_gguf checks it, no tensor read.
 * Returns 0 or np_model_from_gguf's errors for the metadata. */
int np_model_shape_from_gguf(const struct np_gguf *g, const struct np_log *log,
			     struct np_model_shape *out);
/* Weights generated on demand from (seed, tensor, row): nothing is stored,
 * so any shape (the 3B one included) costs no memory. */
int np_model_synthetic(const struct np_model_shape *shape, uint64_t seed,
		       struct np_model **out);
/*
 * The same for a model family: "llama" (Llama 2, what np_model_synthetic
 * makes), "llama3" (Llama 3.1's RoPE frequency factors), "mistral" (both
 * general.architecture "llama"), "granite" (its four multipliers) or
 * "qwen2" (Q/K/V biases, NeoX RoPE). A shape->rope_base of 0 takes the
 * family's (10^4, 5 * 10^5, 10^6, 10^4, 10^6). Returns 0, -EINVAL
 * (logged: an unknown family, with the known ones, or a bad shape),
 * -ENOMEM.
 */
int np_model_synthetic_arch(const char *family,
			    const struct np_model_shape *shape, uint64_t seed,
			    const struct np_log *log, struct np_model **out);
/*
 * A model of a family (as np_model_synthetic_arch names them) whose
 * weights are the caller's floats, e.g. trained elsewhere: w holds n
 * floats, the tensors one after the other in the order
 * np_model_write_gguf writes them: the token embedding, then per layer
 * the nine from NP_T_ATTN_NORM to NP_T_DOWN, then the output norm and
 * the output, each the [rows x cols] row-major matrix of np_model_dims
 * (PyTorch's nn.Linear layout; Q and K rotated by RoPE as ggml's llama
 * does, adjacent pairs). w must outlive the model. Returns 0, -EINVAL
 * (logged: an unknown family, a bad shape, or n not the count the shape
 * needs, with both counts), -ENOTSUP for a family with Q/K/V biases,
 * -ENOMEM.
 */
int np_model_from_floats(const char *family, const struct np_model_shape *shape,
			 const float *w, size_t n, const struct np_log *log,
			 struct np_model **out);
/* The floats np_model_from_floats needs for a shape (0 for an invalid
 * one) */
size_t np_model_n_floats(const struct np_model_shape *shape);
/* The shapes nptool model mkgguf generates by name: "tiny" (the demo
 * model), "medium" (the emulator's reference shape) and "granite-3b"
 * (also spelt "granite3b"); data/shapes/<name>.shape holds the same.
 * Returns 0, or -ENOENT for any other name. */
int np_model_shape_preset(const char *name, struct np_model_shape *out);
/*
 * Read the model keys of a shape file (data/shapes/ *.shape, format in
 * docs/perfmodel.md): lines "key = value", '#' comments, keys the field
 * names above (n_layers, dim, n_heads, n_kv_heads, ffn, vocab, ctx,
 * rope_base, norm_eps); "name" and the run keys np_perf_shape_parse
 * reads are skipped. Keys left out keep the values *out holds on entry.
 * On error, err (errlen bytes) names the line, the key or value and what
 * is allowed. Returns 0, -EINVAL (unknown key, bad number, missing '='),
 * -ENOMEM.
 */
int np_model_shape_parse(const char *text, size_t len,
			 struct np_model_shape *out, char *err, size_t errlen);
void np_model_destroy(struct np_model *m);
const struct np_model_shape *np_model_get_shape(const struct np_model *m);
/* Check a shape's consistency: -EINVAL with a logged reason. */
int np_model_shape_check(const struct np_model_shape *s,
			 const struct np_log *log);

/* Tensor kinds of a layer, in card order */
enum np_model_tensor {
	NP_T_ATTN_NORM,
	NP_T_Q,
	NP_T_K,
	NP_T_V,
	NP_T_O,
	NP_T_FFN_NORM,
	NP_T_GATE,
	NP_T_UP,
	NP_T_DOWN,
	NP_T_TOK_EMBD, /* layer ignored */
	NP_T_OUT_NORM,
	NP_T_OUTPUT,
	NP_T_COUNT,
};
/* Row r (of the [rows x cols] torch-layout matrix) as floats. */
int np_model_row(const struct np_model *m, enum np_model_tensor tensor,
		 uint32_t layer, uint32_t row, float *out);
void np_model_dims(const struct np_model *m, enum np_model_tensor tensor,
		   uint32_t *rows, uint32_t *cols);

/*
 * Write a GGUF of this model in its architecture, with the keys and
 * tensors of its family (Granite's multipliers, Q/K/V biases and
 * rope_freqs.weight in F32): weights in `wtype` (norms always F32; a
 * weight whose rows do not fit wtype's block in
 * np_ggml_type_for_row(wtype, cols)), plus a vocabulary trained on `text`
 * (np_tok_train) of shape->vocab tokens.
 * Returns 0, -EINVAL (wtype not writable, columns not a multiple of the
 * block of a type without a fallback, e.g. 32 for Q8_0, vocabulary below
 * the fixed part), -ENOMEM,
 * -EIO or -errno of fopen().
 */
int np_model_write_gguf(const struct np_model *m, enum np_ggml_type wtype,
			enum np_tok_kind tok_kind, const char *text,
			size_t text_len, const char *path);

/* ---------------------------------------------------------------- */
/* Float reference                                                     */

struct np_ref_float;
/* Materialises the weights as F32 (4 bytes per parameter) and a float KV
 * cache of batch x layers x max_seq x kv_dim x 2. Returns 0, -EINVAL for
 * max_seq outside 1..65536 or batch outside 1..4096, -ENOMEM, or the
 * model's row read error. */
int np_ref_float_create(const struct np_model *m, uint32_t max_seq,
			uint32_t batch, struct np_ref_float **out);
void np_ref_float_destroy(struct np_ref_float *r);
/* One token of session `slot` at position `pos` (0.. in order): logits of
 * np_model_shape.vocab floats. -ERANGE for pos >= max_seq, slot >= batch. */
int np_ref_float_step(struct np_ref_float *r, uint32_t slot, uint32_t pos,
		      int32_t token, float *logits);

/* The float reference with another engine's arithmetic simulated */
enum np_ref_float_quant {
	NP_REF_FLOAT_EXACT = 0, /* F32 weights, double accumulation */
	/*
	 * ggml's Q4_0 x Q8_0, the most common CPU engine's arithmetic:
	 * every weight matrix (embeddings and output layer included) rounded
	 * through Q4_0 blocks (32 weights, one f16 scale) and every matmul
	 * input through Q8_0 blocks, exactly as ggml's quantize_row_q4_0_ref
	 * and quantize_row_q8_0_ref; norms, attention and the KV cache stay
	 * float.
	 */
	NP_REF_FLOAT_Q4_0_Q8_0 = 1,
};
struct np_ref_float_opts {
	uint32_t fake_quant; /* enum np_ref_float_quant */
	uint32_t resv0; /* must be zero */
	uint64_t resv[3]; /* must be zero */
};
/* np_ref_float_create with options (NULL: none); also -EINVAL for an
 * unknown fake_quant, resv not zero, or Q4_0_Q8_0 on a model whose
 * matrix rows are not multiples of 32 */
int np_ref_float_create_opts(const struct np_model *m, uint32_t max_seq,
			     uint32_t batch, const struct np_ref_float_opts *o,
			     struct np_ref_float **out);

/* ---------------------------------------------------------------- */
/* Quantisation and compilation                                        */

struct np_quant_calib;
/*
 * Run the float reference over `tokens` (teacher forced, one session)
 * and choose every activation scale (docs/numerics.md, "Calibration").
 * Returns 0, -EINVAL for n of 0 or above 65536, -ERANGE for a token
 * outside the vocabulary, -ENOMEM, or the model's row read error.
 */
int np_quant_calibrate(const struct np_model *m, const int32_t *tokens,
		       size_t n, struct np_quant_calib **out);
/* Scales for a model no text was run through: unit-RMS assumptions. */
int np_quant_calib_default(const struct np_model *m,
			   struct np_quant_calib **out);
void np_quant_calib_destroy(struct np_quant_calib *c);
/*
 * A calibration as floats, to store it (libnp's image cache):
 * (layers + 1) rows of NP_QUANT_CALIB_ROW scales. export writes
 * np_quant_calib_len(c) floats to out (n must be that: -EINVAL
 * otherwise); import makes a calibration for m from them: -EINVAL for n
 * other than (m's layers + 1) x NP_QUANT_CALIB_ROW or a scale that is
 * negative or not finite, -ENOMEM.
 */
#define NP_QUANT_CALIB_ROW 27u
size_t np_quant_calib_len(const struct np_quant_calib *c);
int np_quant_calib_export(const struct np_quant_calib *c, float *out, size_t n);
int np_quant_calib_import(const struct np_model *m, const float *in, size_t n,
			  struct np_quant_calib **out);

/* Weight quantisation primitives (docs/numerics.md "Weights") */
float np_quant_row_scale(const float *w, size_t n, int bits);
void np_quant_row(const float *w, size_t n, float scale, int bits, int8_t *q);
/* Real factor -> (multiplier in [2^30, 2^31), shift in 0..62), or (0, 0)
 * for 0; -ERANGE for a negative or non-finite factor, one >= 2^31, or one
 * too small to keep a nonzero multiplier at shift 62. */
int np_quant_multiplier(double f, int32_t *m, int32_t *shift);

/*
 * The defaults of every np component, defined here once: an option of 0
 * means "the library default", and these are the defaults. They are the
 * 2024 NorthPole run: N = 28 requests in M = 14 micro-batches on 16 cards.
 * Where a default differs by use (a compile plans for the paper's 2048
 * tokens, a pipeline loads with a smaller KV cache), each has its name.
 */
#define NP_DEFAULT_CARDS 16u
#define NP_DEFAULT_SESSIONS 28u /* N */
#define NP_DEFAULT_MICRO_BATCHES 14u /* M */
#define NP_DEFAULT_PLAN_MAX_SEQ 2048u /* np_compile's tokens per session */
#define NP_DEFAULT_LOAD_MAX_SEQ 512u /* np_model_load's */
#define NP_DEFAULT_FRAME_TOKENS 64u /* most tokens of one frame */
#define NP_DEFAULT_CANDIDATES 40u /* top-k pairs per token and output card */
/* the cards' arithmetic: NorthPole 2025's 8-bit activations and KV cache
 * with 4-bit weights */
#define NP_DEFAULT_PRECISION NP_PREC_A8C8W4

/*
 * The cards' arithmetic, per model (docs/numerics.md specifies each mode
 * bit for bit). Names: "a8c8w4", "w4a4", "w8a8", "w2a8".
 *   A8C8W4  8-bit activations and KV cache, 4-bit weights: NorthPole 2025
 *   W4A4    4-bit weights and activations: NorthPole 2024
 *   W8A8    8-bit weights, activations and KV cache
 *   W2A8    2-bit weights, 8-bit activations and KV cache
 */
enum np_precision {
	NP_PREC_DEFAULT = 0, /* the library default, NP_DEFAULT_PRECISION */
	NP_PREC_W4A4 = 1,
	NP_PREC_A8C8W4 = 2,
	NP_PREC_W8A8 = 3,
	NP_PREC_W2A8 = 4,
	NP_PREC_COUNT, /* one past the last */
};
/* "w4a4" etc.; NULL for a value outside the enum. DEFAULT names the
 * mode it stands for. */
const char *np_precision_name(enum np_precision p);
/* Name (case-insensitive; "a8-c8-w4" and "A8C8W4" both work) -> mode.
 * Returns 0 or -EINVAL. */
int np_precision_parse(const char *name, enum np_precision *out);
/*
 * The precision of each of n_layers layers into out[] (enum np_precision
 * values): base (DEFAULT: NP_DEFAULT_PRECISION) everywhere but where spec
 * says otherwise. spec: comma-separated FIRST[-LAST]:MODE items, layers
 * counted from 0, a later item overriding an earlier one, e.g.
 * "0-1:w8a8,31:w8a8"; NULL or "" overrides nothing. Returns 0 or -EINVAL
 * with the item and what is expected in err (errlen bytes, may be NULL).
 */
int np_precision_layers(const char *spec, uint32_t n_layers,
			enum np_precision base, uint8_t *out, char *err,
			size_t errlen);

struct np_compile_opts {
	uint32_t n_cards; /* 0: NP_DEFAULT_CARDS */
	uint32_t batch; /* sessions N, 0: NP_DEFAULT_SESSIONS */
	uint32_t max_seq; /* tokens per session, 0: NP_DEFAULT_PLAN_MAX_SEQ */
	uint32_t out_cards; /* 0: as few as fit, at most the vocabulary */
	uint32_t flags; /* NP_COMPILE_* */
	uint32_t precision; /* enum np_precision; 0: NP_DEFAULT_PRECISION */
	/* per-layer override, np_precision_layers' syntax ("0-3:w8a8,
	 * 30-31:w2a8"); NULL or "": every layer at precision */
	const char *layer_precision;
	uint64_t resv[3]; /* must be zero: room for new options */
};

/*
 * Every card but the output cards gets a layer program of no layers: it
 * passes its input frame on unchanged, and the output cards see the
 * embeddings. The pipeline still runs every hop, transfer, event and
 * top-k, with no arithmetic on the layer cards: the runtime's own cost
 * (bench/np_bench_runtime). The model's layers are not mapped.
 */
#define NP_COMPILE_PASS_THROUGH (1u << 0)
/*
 * Weight scales of least quantisation error: each row's clip ratio is
 * searched (docs/numerics.md "Post-training quantization") instead of
 * the row's max|w|.
 */
#define NP_COMPILE_MSE_CLIP (1u << 1)

enum np_card_kind {
	NP_CARD_UNUSED = 0,
	NP_CARD_LAYERS = 1,
	NP_CARD_OUTPUT = 2,
};

struct np_card_plan {
	enum np_card_kind kind;
	uint32_t first_layer, n_layers; /* NP_CARD_LAYERS */
	uint32_t vocab_begin, vocab_end; /* NP_CARD_OUTPUT */
	uint64_t prog; /* card address of the program block */
	uint64_t core_bytes; /* per-core high-water mark */
	uint64_t weight_bytes, kv_bytes, prog_bytes; /* whole card */
};

struct np_compiled;

/*
 * Plan the mapping and the SRAM layout, quantise nothing yet. Returns 0,
 * -EINVAL (cards not 2..256, sessions or tokens out of range,
 * calibration for another layer count, more output cards than vocabulary
 * tokens), -ENOMEM, or -E2BIG when the model does not fit the cards: the
 * log shows the per-card budget, what one layer and the output layer need,
 * and what would fit.
 * calib may be NULL only for planning (np_compile_card_image needs it).
 */
int np_compile(const struct np_model *m, const struct np_quant_calib *calib,
	       const struct np_compile_opts *opts, const struct np_log *log,
	       struct np_compiled **out);
void np_compiled_destroy(struct np_compiled *c);
uint32_t np_compiled_n_cards(const struct np_compiled *c); /* used ones */
/* The options it compiled for: every default filled in (cards, sessions,
 * tokens, precision), max_seq as lowered to fit (np_compile) */
const struct np_compile_opts *np_compiled_opts(const struct np_compiled *c);
const struct np_card_plan *np_compiled_card(const struct np_compiled *c,
					    uint32_t card);
/* Human readable mapping summary into buf (NUL-terminated, truncated). */
void np_compiled_describe(const struct np_compiled *c, char *buf, size_t len);

/*
 * Render card `card`'s SRAM: `sram` must be NP_SRAM_SIZE bytes (zeroed by
 * the caller where nothing is placed). Only [core base, core base +
 * core_bytes) of each core is written. Quantises that card's weights.
 * Returns 0, -EINVAL (no such card, compiled without calibration),
 * -ERANGE (a scale gives a multiplier out of range: calibration
 * degenerate), -ENOMEM, or the model's row read error.
 */
int np_compile_card_image(const struct np_compiled *c, uint32_t card,
			  uint8_t *sram);
/* Write card images (card-NN.npimg) and the host part (host.nphost)
 * into directory dir; format in docs/model-format.md. Returns 0, -EINVAL
 * (no calibration), -ENOMEM, an np_compile_card_image error or -errno of
 * open()/write(). */
int np_compile_write(const struct np_compiled *c, const char *dir);

/* Host side: int16 embedding row of a token at the first layer's scale.
 * Returns 0, -ERANGE for a token outside the vocabulary, -EINVAL without
 * calibration, -ENOMEM. */
int np_compiled_embed(const struct np_compiled *c, int32_t token, int16_t *x);
/* Real value of one integer logit unit. */
double np_compiled_logit_scale(const struct np_compiled *c);

/* ---------------------------------------------------------------- */
/* Integer reference                                                   */

struct np_ref_int;
/* Renders every card image into its own SRAM (reserved, not committed).
 * Returns 0, -ENOMEM, -EPROTO if a rendered program fails npk_validate,
 * or an np_compile_card_image error. */
int np_ref_int_create(const struct np_compiled *c, struct np_ref_int **out);
void np_ref_int_destroy(struct np_ref_int *r);
/* One token: int32 logits of vocab entries (np_compiled_logit_scale).
 * Returns 0, -ERANGE for a token, slot or position out of range. */
int np_ref_int_step(struct np_ref_int *r, uint32_t slot, uint32_t pos,
		    int32_t token, int32_t *logits);
/* A card's SRAM, as the emulator should hold it after loading. */
const uint8_t *np_ref_int_sram(const struct np_ref_int *r, uint32_t card);

#ifdef __cplusplus
}
#endif

#endif /* NP_MODEL_H */
