// SPDX-License-Identifier: MIT
/* GGUF reader and writer: round trips, and every kind of broken file. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

/* Hand-crafted GGUF byte buffers */
struct hb {
	uint8_t b[4096];
	size_t n;
};

static void hb_put(struct hb *h, const void *p, size_t n)
{
	ck_assert_uint_le(h->n + n, sizeof(h->b));
	memcpy(h->b + h->n, p, n);
	h->n += n;
}

static void hb_u32(struct hb *h, uint32_t v)
{
	hb_put(h, &v, 4);
}

static void hb_u64(struct hb *h, uint64_t v)
{
	hb_put(h, &v, 8);
}

static void hb_str(struct hb *h, const char *s)
{
	hb_u64(h, strlen(s));
	hb_put(h, s, strlen(s));
}

static void hb_header(struct hb *h, uint32_t version, uint64_t n_t,
		      uint64_t n_kv)
{
	h->n = 0;
	hb_put(h, "GGUF", 4);
	hb_u32(h, version);
	hb_u64(h, n_t);
	hb_u64(h, n_kv);
}

/* one F32 tensor "t" of 8 elements with the given dims/type/offset */
static void hb_tensor(struct hb *h, uint32_t n_dims, const uint64_t *ne,
		      uint32_t type, uint64_t off)
{
	hb_str(h, "t");
	hb_u32(h, n_dims);
	for (uint32_t i = 0; i < n_dims; i++)
		hb_u64(h, ne[i]);
	hb_u32(h, type);
	hb_u64(h, off);
}

static void hb_pad_data(struct hb *h, size_t data)
{
	while (h->n % 32)
		hb_put(h, "", 1);
	for (size_t i = 0; i < data; i++)
		hb_put(h, "\0", 1);
}

static int open_hb(struct hb *h)
{
	struct np_gguf *g = NULL;
	int ret;

	tst_reset();
	ret = np_gguf_open_mem(h->b, h->n, &tst_log, &g);
	if (ret == 0) {
		ck_assert_ptr_nonnull(g);
		np_gguf_close(g);
	} else {
		ck_assert_ptr_null(g);
		ck_assert_msg(strncmp(tst_last, "gguf: ", 6) == 0,
			      "error not logged: '%s'", tst_last);
	}
	return ret;
}

/* A valid file with metadata of every kind and four tensor types */
static void *make_file(size_t *len, float *src)
{
	struct np_gguf_writer *w;
	static const char *const strs[] = {"a", "", "ünïcode"};
	const float f[3] = {1.5f, -2.0f, 0.25f};
	const int32_t i3[3] = {-1, 0, 7};
	void *buf;

	for (int i = 0; i < 2 * 64; i++)
		src[i] = sinf((float)i * 0.37f) * (1.0f + (float)(i % 5));
	ck_assert_int_eq(np_gguf_writer_create(&w), 0);
	ck_assert_int_eq(
		np_gguf_writer_kv_str(w, "general.architecture", "llama"), 0);
	ck_assert_int_eq(np_gguf_writer_kv_u32(w, "k.u32", 4000000000u), 0);
	ck_assert_int_eq(np_gguf_writer_kv_i32(w, "k.i32", -5), 0);
	ck_assert_int_eq(np_gguf_writer_kv_f32(w, "k.f32", 0.125f), 0);
	ck_assert_int_eq(np_gguf_writer_kv_bool(w, "k.bool", 1), 0);
	ck_assert_int_eq(np_gguf_writer_kv_arr_str(w, "k.strs", strs, 3), 0);
	ck_assert_int_eq(np_gguf_writer_kv_arr_f32(w, "k.f32s", f, 3), 0);
	ck_assert_int_eq(np_gguf_writer_kv_arr_i32(w, "k.i32s", i3, 3), 0);
	ck_assert_int_eq(
		np_gguf_writer_tensor(w, "f32", NP_GGML_F32, 2, 64, 1, src), 0);
	ck_assert_int_eq(
		np_gguf_writer_tensor(w, "f16", NP_GGML_F16, 2, 64, 1, src), 0);
	ck_assert_int_eq(
		np_gguf_writer_tensor(w, "q8", NP_GGML_Q8_0, 2, 64, 1, src), 0);
	ck_assert_int_eq(
		np_gguf_writer_tensor(w, "q4", NP_GGML_Q4_0, 2, 64, 1, src), 0);
	ck_assert_int_eq(
		np_gguf_writer_tensor(w, "vec", NP_GGML_F32, 1, 32, 0, src), 0);
	ck_assert_int_eq(np_gguf_writer_buf(w, &buf, len), 0);
	np_gguf_writer_destroy(w);
	return buf;
}

START_TEST(test_round_trip)
{
	float src[128], row[64];
	size_t len, slen;
	void *buf = make_file(&len, src);
	struct np_gguf *g;
	const struct np_gguf_tensor *t;
	const char *s;
	uint64_t u, cnt;
	uint32_t type;
	float f;
	double d;
	int b;
	static const struct {
		const char *name;
		float tol; /* relative to the block's max */
	} types[] = {{"f32", 0},
		     {"f16", 1e-3f},
		     {"q8", 1.0f / 127},
		     {"q4", 1.0f / 8}};

	ck_assert_int_eq(np_gguf_open_mem(buf, len, &tst_log, &g), 0);
	ck_assert_uint_eq(np_gguf_version(g), 3);
	ck_assert_uint_eq(np_gguf_n_tensors(g), 5);
	ck_assert_int_eq(np_gguf_get_str(g, "general.architecture", &s, &slen),
			 0);
	ck_assert_uint_eq(slen, 5);
	ck_assert_int_eq(memcmp(s, "llama", 5), 0);
	ck_assert_int_eq(np_gguf_get_u64(g, "k.u32", &u), 0);
	ck_assert_uint_eq(u, 4000000000u);
	ck_assert_int_eq(np_gguf_get_u64(g, "k.i32", &u), -EINVAL); /* < 0 */
	ck_assert_int_eq(np_gguf_get_f32(g, "k.f32", &f), 0);
	ck_assert_float_eq(f, 0.125f);
	ck_assert_int_eq(np_gguf_get_bool(g, "k.bool", &b), 0);
	ck_assert_int_eq(b, 1);
	ck_assert_int_eq(np_gguf_get_u64(g, "nope", &u), -ENOENT);
	ck_assert_int_eq(np_gguf_get_f32(g, "k.u32", &f), -EINVAL);
	ck_assert_int_eq(np_gguf_get_str(g, "k.u32", &s, &slen), -EINVAL);
	ck_assert_int_eq(np_gguf_get_arr(g, "k.strs", &type, &cnt), 0);
	ck_assert_uint_eq(type, NP_GGUF_STRING);
	ck_assert_uint_eq(cnt, 3);
	ck_assert_int_eq(np_gguf_arr_str(g, "k.strs", 2, &s, &slen), 0);
	ck_assert_uint_eq(slen, strlen("ünïcode"));
	ck_assert_int_eq(memcmp(s, "ünïcode", slen), 0);
	ck_assert_int_eq(np_gguf_arr_str(g, "k.strs", 1, &s, &slen), 0);
	ck_assert_uint_eq(slen, 0);
	ck_assert_int_eq(np_gguf_arr_str(g, "k.strs", 3, &s, &slen), -EINVAL);
	ck_assert_int_eq(np_gguf_arr_num(g, "k.f32s", 1, &d), 0);
	ck_assert_double_eq(d, -2.0);
	ck_assert_int_eq(np_gguf_arr_num(g, "k.i32s", 0, &d), 0);
	ck_assert_double_eq(d, -1.0);
	ck_assert_int_eq(np_gguf_arr_num(g, "k.strs", 0, &d), -EINVAL);

	for (size_t k = 0; k < 4; k++) {
		t = np_gguf_find_tensor(g, types[k].name);
		ck_assert_ptr_nonnull(t);
		ck_assert_uint_eq(t->n_dims, 2);
		ck_assert_uint_eq(t->ne[0], 64);
		ck_assert_uint_eq(t->ne[1], 2);
		/* aligned within the file; malloc's buffer may be less */
		ck_assert_uint_eq(
			((const uint8_t *)t->data - (const uint8_t *)buf) % 32,
			0);
		for (uint64_t r = 0; r < 2; r++) {
			ck_assert_int_eq(np_gguf_tensor_row(t, r, row), 0);
			for (int blk = 0; blk < 2; blk++) {
				float amax = 0;

				for (int i = 0; i < 32; i++)
					amax = fmaxf(amax,
						     fabsf(src[r * 64 +
							       blk * 32 + i]));
				for (int i = 0; i < 32; i++) {
					int j = blk * 32 + i;

					ck_assert_float_le(
						fabsf(row[j] - src[r * 64 + j]),
						types[k].tol * amax + 1e-6f);
				}
			}
		}
		ck_assert_int_eq(np_gguf_tensor_row(t, 2, row), -ERANGE);
	}
	t = np_gguf_find_tensor(g, "vec");
	ck_assert_uint_eq(t->n_dims, 1);
	ck_assert_uint_eq(t->n_elems, 32);
	ck_assert_ptr_null(np_gguf_find_tensor(g, "absent"));
	np_gguf_close(g);
	free(buf);
}
END_TEST

START_TEST(test_truncated_everywhere)
{
	float src[128];
	size_t len;
	uint8_t *buf = make_file(&len, src);

	/* every prefix: the header, each metadata entry, each tensor info,
	 * the padding and each tensor's data are cut somewhere */
	for (size_t n = 0; n < len; n++) {
		struct np_gguf *g = NULL;
		uint8_t *copy = malloc(n ? n : 1);

		ck_assert_ptr_nonnull(copy);
		memcpy(copy, buf, n);
		tst_reset();
		ck_assert_int_eq(np_gguf_open_mem(copy, n, &tst_log, &g),
				 -EINVAL);
		ck_assert_ptr_null(g);
		ck_assert_msg(strncmp(tst_last, "gguf: ", 6) == 0,
			      "length %zu: no message", n);
		free(copy);
	}
	free(buf);
}
END_TEST

START_TEST(test_bad_magic_version)
{
	struct hb h;

	hb_header(&h, 3, 0, 0);
	memcpy(h.b, "GGML", 4);
	ck_assert_int_eq(open_hb(&h), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_last, "magic"));
	hb_header(&h, 1, 0, 0);
	ck_assert_int_eq(open_hb(&h), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_last, "version 1"));
	hb_header(&h, 4, 0, 0);
	ck_assert_int_eq(open_hb(&h), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_last, "version 4"));
	hb_header(&h, 2, 0, 0);
	ck_assert_int_eq(open_hb(&h), 0);
	hb_header(&h, 3, 0, 0);
	ck_assert_int_eq(open_hb(&h), 0);
}
END_TEST

START_TEST(test_absurd_counts)
{
	struct hb h;

	hb_header(&h, 3, (uint64_t)1 << 40, 0);
	ck_assert_int_eq(open_hb(&h), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_last, "1099511627776 tensors"));
	hb_header(&h, 3, 0, UINT64_MAX);
	ck_assert_int_eq(open_hb(&h), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_last, "metadata entries"));
	/* string longer than the file */
	hb_header(&h, 3, 0, 1);
	hb_u64(&h, (uint64_t)1 << 62);
	hb_put(&h, "abcdefgh", 8);
	ck_assert_int_eq(open_hb(&h), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_last, "key"));
	/* array claiming 2^60 uint32 elements */
	hb_header(&h, 3, 0, 1);
	hb_str(&h, "arr");
	hb_u32(&h, NP_GGUF_ARRAY);
	hb_u32(&h, NP_GGUF_UINT32);
	hb_u64(&h, (uint64_t)1 << 60);
	hb_u32(&h, 0);
	ck_assert_int_eq(open_hb(&h), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_last, "elements"));
	/* nested arrays deeper than the limit */
	hb_header(&h, 3, 0, 1);
	hb_str(&h, "nest");
	hb_u32(&h, NP_GGUF_ARRAY);
	for (int i = 0; i < 5; i++) {
		hb_u32(&h, NP_GGUF_ARRAY);
		hb_u64(&h, 1);
	}
	hb_u32(&h, NP_GGUF_UINT8);
	hb_u64(&h, 1);
	hb_put(&h, "x", 1);
	ck_assert_int_eq(open_hb(&h), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_last, "nested"));
}
END_TEST

START_TEST(test_bad_types)
{
	struct hb h;
	const uint64_t ne[2] = {32, 1};

	/* metadata value type */
	hb_header(&h, 3, 0, 1);
	hb_str(&h, "k");
	hb_u32(&h, 13);
	hb_u32(&h, 0);
	ck_assert_int_eq(open_hb(&h), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_last, "value type 13"));
	/* array element type */
	hb_header(&h, 3, 0, 1);
	hb_str(&h, "k");
	hb_u32(&h, NP_GGUF_ARRAY);
	hb_u32(&h, 99);
	hb_u64(&h, 1);
	ck_assert_int_eq(open_hb(&h), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_last, "element type 99"));
	/* tensor type */
	hb_header(&h, 3, 1, 0);
	hb_tensor(&h, 2, ne, 99, 0);
	hb_pad_data(&h, 128);
	ck_assert_int_eq(open_hb(&h), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_last, "type 99"));
	/* alignment of the wrong type */
	hb_header(&h, 3, 0, 1);
	hb_str(&h, "general.alignment");
	hb_u32(&h, NP_GGUF_UINT64);
	hb_u64(&h, 32);
	ck_assert_int_eq(open_hb(&h), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_last, "general.alignment"));
	/* duplicate key */
	hb_header(&h, 3, 0, 2);
	for (int i = 0; i < 2; i++) {
		hb_str(&h, "dup");
		hb_u32(&h, NP_GGUF_UINT8);
		hb_put(&h, "x", 1);
	}
	ck_assert_int_eq(open_hb(&h), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_last, "twice"));
}
END_TEST

START_TEST(test_absurd_shapes)
{
	struct hb h;
	uint64_t ne[5] = {32, 1, 1, 1, 1};

	hb_header(&h, 3, 1, 0);
	hb_tensor(&h, 5, ne, NP_GGML_F32, 0);
	ck_assert_int_eq(open_hb(&h), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_last, "5 dimensions"));
	ne[0] = 0;
	hb_header(&h, 3, 1, 0);
	hb_tensor(&h, 2, ne, NP_GGML_F32, 0);
	ck_assert_int_eq(open_hb(&h), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_last, "dimension 0 is 0"));
	/* product overflows 64 bits */
	ne[0] = (uint64_t)1 << 32;
	ne[1] = (uint64_t)1 << 32;
	hb_header(&h, 3, 1, 0);
	hb_tensor(&h, 2, ne, NP_GGML_F32, 0);
	ck_assert_int_eq(open_hb(&h), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_last, "2^50"));
	/* row not a multiple of the Q4_0 block */
	ne[0] = 33;
	ne[1] = 1;
	hb_header(&h, 3, 1, 0);
	hb_tensor(&h, 2, ne, NP_GGML_Q4_0, 0);
	ck_assert_int_eq(open_hb(&h), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_last, "block"));
	/* data beyond the end of the file */
	ne[0] = 32;
	hb_header(&h, 3, 1, 0);
	hb_tensor(&h, 2, ne, NP_GGML_F32, 0);
	hb_pad_data(&h, 64);
	ck_assert_int_eq(open_hb(&h), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_last, "truncated"));
	/* misaligned offset */
	hb_header(&h, 3, 1, 0);
	hb_tensor(&h, 2, ne, NP_GGML_F32, 4);
	hb_pad_data(&h, 256);
	ck_assert_int_eq(open_hb(&h), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_last, "alignment"));
	/* offset near 2^64 must not wrap */
	hb_header(&h, 3, 1, 0);
	hb_tensor(&h, 2, ne, NP_GGML_F32, UINT64_MAX - 31);
	hb_pad_data(&h, 256);
	ck_assert_int_eq(open_hb(&h), -EINVAL);
	/* and the good one */
	hb_header(&h, 3, 1, 0);
	hb_tensor(&h, 2, ne, NP_GGML_F32, 0);
	hb_pad_data(&h, 128);
	ck_assert_int_eq(open_hb(&h), 0);
}
END_TEST

START_TEST(test_open_errors)
{
	struct np_gguf *g = NULL;

	tst_reset();
	ck_assert_int_eq(np_gguf_open("/nonexistent/x.gguf", &tst_log, &g),
			 -ENOENT);
	ck_assert_ptr_null(g);
	ck_assert_ptr_nonnull(strstr(tst_last, "/nonexistent/x.gguf"));
	ck_assert_int_eq(np_gguf_open("/tmp", &tst_log, &g), -EINVAL);
	ck_assert_int_eq(np_gguf_open_mem("GG", 2, &tst_log, &g), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_last, "too short"));
	np_gguf_close(NULL);
}
END_TEST

/* Model-level checks on GGUF metadata: architecture, shapes, types */
static void *model_file(const char *arch, uint32_t q_type, uint64_t q_rows,
			size_t *len)
{
	struct np_gguf_writer *w;
	float *z = calloc(64 * 300, sizeof(float));
	static const char *const tok[1] = {"a"};
	void *buf;
	char name[64];

	ck_assert_ptr_nonnull(z);
	np_gguf_writer_create(&w);
	np_gguf_writer_kv_str(w, "general.architecture", arch);
	np_gguf_writer_kv_u32(w, "llama.block_count", 1);
	np_gguf_writer_kv_u32(w, "llama.embedding_length", 64);
	np_gguf_writer_kv_u32(w, "llama.feed_forward_length", 64);
	np_gguf_writer_kv_u32(w, "llama.attention.head_count", 2);
	np_gguf_writer_kv_arr_str(w, "tokenizer.ggml.tokens", tok, 1);
	np_gguf_writer_tensor(w, "token_embd.weight", NP_GGML_F32, 1, 64, 1, z);
	np_gguf_writer_tensor(w, "output_norm.weight", NP_GGML_F32, 1, 64, 0,
			      z);
	for (int i = 0; i < 9; i++) {
		static const char *const n[9] = {
			"attn_norm", "attn_q",	    "attn_k",
			"attn_v",    "attn_output", "ffn_norm",
			"ffn_gate",  "ffn_up",	    "ffn_down"};
		int vec = i == 0 || i == 5;

		snprintf(name, sizeof(name), "blk.0.%s.weight", n[i]);
		np_gguf_writer_tensor(w, name, i == 1 ? q_type : NP_GGML_F32,
				      vec    ? 1 :
				      i == 1 ? q_rows :
					       64,
				      64, !vec, z);
	}
	ck_assert_int_eq(np_gguf_writer_buf(w, &buf, len), 0);
	np_gguf_writer_destroy(w);
	free(z);
	return buf;
}

static int model_open(void *buf, size_t len)
{
	struct np_gguf *g;
	struct np_model *m = NULL;
	int ret;

	ck_assert_int_eq(np_gguf_open_mem(buf, len, &tst_log, &g), 0);
	tst_reset();
	ret = np_model_from_gguf(g, &tst_log, &m);
	if (!ret)
		ck_assert_uint_eq(np_model_get_shape(m)->n_kv_heads, 2);
	else
		ck_assert_ptr_null(m);
	np_model_destroy(m);
	np_gguf_close(g);
	return ret;
}

START_TEST(test_model_checks)
{
	size_t len;
	void *buf;

	buf = model_file("llama", NP_GGML_F32, 64, &len);
	ck_assert_int_eq(model_open(buf, len), 0);
	free(buf);
	buf = model_file("mamba", NP_GGML_F32, 64, &len);
	ck_assert_int_eq(model_open(buf, len), -ENOTSUP);
	ck_assert_ptr_nonnull(strstr(tst_last, "architecture 'mamba'"));
	free(buf);
	buf = model_file("llama", NP_GGML_F32, 32, &len);
	ck_assert_int_eq(model_open(buf, len), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_last, "blk.0.attn_q.weight"));
	ck_assert_ptr_nonnull(strstr(tst_last, "shape"));
	free(buf);
}
END_TEST

START_TEST(test_model_unsupported_type)
{
	struct hb h;
	const uint64_t ne[1] = {256};
	struct np_gguf *g;
	struct np_model *m;

	/* an IQ2_XXS tensor: a valid GGUF the model loader must refuse by
	 * name */
	hb_header(&h, 3, 1, 6);
	hb_str(&h, "llama.vocab_size");
	hb_u32(&h, NP_GGUF_UINT32);
	hb_u32(&h, 16);
	hb_str(&h, "general.architecture");
	hb_u32(&h, NP_GGUF_STRING);
	hb_str(&h, "llama");
	hb_str(&h, "llama.block_count");
	hb_u32(&h, NP_GGUF_UINT32);
	hb_u32(&h, 1);
	hb_str(&h, "llama.embedding_length");
	hb_u32(&h, NP_GGUF_UINT32);
	hb_u32(&h, 256);
	hb_str(&h, "llama.feed_forward_length");
	hb_u32(&h, NP_GGUF_UINT32);
	hb_u32(&h, 256);
	hb_str(&h, "llama.attention.head_count");
	hb_u32(&h, NP_GGUF_UINT32);
	hb_u32(&h, 2);
	hb_str(&h, "blk.0.attn_norm.weight");
	hb_u32(&h, 1);
	hb_u64(&h, ne[0]);
	hb_u32(&h, NP_GGML_IQ2_XXS); /* 66 bytes per 256 */
	hb_u64(&h, 0);
	hb_pad_data(&h, 66);
	ck_assert_int_eq(np_gguf_open_mem(h.b, h.n, &tst_log, &g), 0);
	tst_reset();
	ck_assert_int_eq(np_model_from_gguf(g, &tst_log, &m), -ENOTSUP);
	ck_assert_ptr_nonnull(strstr(tst_last, "IQ2_XXS"));
	ck_assert_ptr_nonnull(strstr(tst_last, "blk.0.attn_norm.weight"));
	np_gguf_close(g);
}
END_TEST

/* Random corruption of a complete model file: every layer of loading
 * either refuses it with a message or works within bounds (ASan run). */
START_TEST(test_random_corruption)
{
	const struct np_model_shape sh = {1,   32, 2,	 1,    32,
					  300, 64, 1e4f, 1e-5f};
	const char *path = tst_write_model(&sh, NP_GGML_Q4_0, NP_TOK_BPE);
	FILE *f = fopen(path, "rb");
	uint8_t *good, *buf;
	long len;
	uint32_t rng = 777, opened = 0;
	float row[300];

	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	good = malloc((size_t)len);
	buf = malloc((size_t)len);
	ck_assert_uint_eq(fread(good, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	unlink(path);
	for (int it = 0; it < 400; it++) {
		struct np_gguf *g;
		struct np_model *m;
		struct np_tok *t;

		memcpy(buf, good, (size_t)len);
		for (int k = 0; k < 1 + it % 4; k++) {
			rng = rng * 1103515245u + 12345u;
			/* mostly the metadata and tensor infos at the front */
			buf[(rng >> 8) % (uint32_t)(it % 2 ? len : len / 8)] ^=
				(uint8_t)(1u << ((rng >> 4) & 7));
		}
		if (np_gguf_open_mem(buf, (size_t)len, &tst_log, &g))
			continue;
		opened++;
		if (np_model_from_gguf(g, &tst_log, &m) == 0) {
			const struct np_model_shape *ms = np_model_get_shape(m);

			if (ms->dim <= 300)
				for (int tn = 0; tn < NP_T_COUNT; tn++)
					np_model_row(m, tn, 0, 0, row);
			np_model_destroy(m);
		}
		if (np_tok_from_gguf(g, &tst_log, &t) == 0) {
			int32_t ids[64];
			char back[64];
			size_t n, bl;

			if (np_tok_encode(t, "héllo wörld 42", 16, ids, 64,
					  &n) == 0)
				np_tok_decode(t, ids, n, back, sizeof(back),
					      &bl);
			np_tok_destroy(t);
		}
		np_gguf_close(g);
	}
	ck_assert_uint_gt(opened, 50);
	free(good);
	free(buf);
}
END_TEST

/*
 * np_gguf_open_meta: the metadata and tensor infos without the tensor
 * data, over more than the first 1 MiB it reads (3 MB of metadata), the
 * shape from them as from a full open, and np_model_from_gguf refusing
 * the handle. A file cut inside its tensor data still opens that way,
 * cut inside its metadata it does not.
 */
START_TEST(test_open_meta)
{
	char path[] = "/tmp/np-meta-XXXXXX";
	struct np_gguf_writer *w;
	struct np_gguf *g, *full;
	struct np_model_shape a, b;
	struct np_model *m;
	const char **fill = calloc(3000, sizeof(*fill));
	char *big = malloc(1001);
	float *emb = calloc(100 * 64, sizeof(float));
	long len;
	FILE *f;
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_ptr_nonnull(fill);
	ck_assert_ptr_nonnull(big);
	ck_assert_ptr_nonnull(emb);
	memset(big, 'x', 1000);
	big[1000] = 0;
	for (int i = 0; i < 3000; i++)
		fill[i] = big;
	ck_assert_int_eq(np_gguf_writer_create(&w), 0);
	ck_assert_int_eq(
		np_gguf_writer_kv_str(w, "general.architecture", "llama"), 0);
	ck_assert_int_eq(
		np_gguf_writer_kv_arr_str(w, "test.filler", fill, 3000), 0);
	ck_assert_int_eq(np_gguf_writer_kv_u32(w, "llama.block_count", 2), 0);
	ck_assert_int_eq(np_gguf_writer_kv_u32(w, "llama.embedding_length", 64),
			 0);
	ck_assert_int_eq(
		np_gguf_writer_kv_u32(w, "llama.feed_forward_length", 128), 0);
	ck_assert_int_eq(
		np_gguf_writer_kv_u32(w, "llama.attention.head_count", 4), 0);
	ck_assert_int_eq(
		np_gguf_writer_kv_u32(w, "llama.attention.head_count_kv", 2),
		0);
	ck_assert_int_eq(np_gguf_writer_tensor(w, "token_embd.weight",
					       NP_GGML_F32, 100, 64, 1, emb),
			 0);
	ck_assert_int_eq(np_gguf_writer_save(w, path), 0);
	np_gguf_writer_destroy(w);

	ck_assert_int_eq(np_gguf_open_meta(path, &tst_log, &g), 0);
	ck_assert_uint_eq(np_gguf_n_tensors(g), 1);
	ck_assert_ptr_null(np_gguf_tensor(g, 0)->data);
	ck_assert_uint_eq(np_gguf_tensor(g, 0)->ne[1], 100);
	ck_assert_int_eq(np_model_shape_from_gguf(g, &tst_log, &a), 0);
	ck_assert_uint_eq(a.n_layers, 2);
	ck_assert_uint_eq(a.dim, 64);
	ck_assert_uint_eq(a.ffn, 128);
	ck_assert_uint_eq(a.n_heads, 4);
	ck_assert_uint_eq(a.n_kv_heads, 2);
	ck_assert_uint_eq(a.vocab, 100);
	ck_assert_int_eq(np_model_from_gguf(g, &tst_log, &m), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_last, "np_gguf_open_meta"));
	np_gguf_close(g);
	ck_assert_int_eq(np_gguf_open(path, &tst_log, &full), 0);
	ck_assert_int_eq(np_model_shape_from_gguf(full, &tst_log, &b), 0);
	ck_assert_mem_eq(&a, &b, sizeof(a));
	np_gguf_close(full);

	/* cut inside the tensor data: the metadata is all there */
	f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	len = ftell(f);
	fclose(f);
	ck_assert_int_eq(truncate(path, len - 100), 0);
	ck_assert_int_eq(np_gguf_open(path, &tst_log, &full), -EINVAL);
	ck_assert_int_eq(np_gguf_open_meta(path, &tst_log, &g), 0);
	np_gguf_close(g);
	/* cut inside the metadata */
	ck_assert_int_eq(truncate(path, 2000000), 0);
	ck_assert_int_eq(np_gguf_open_meta(path, &tst_log, &g), -EINVAL);
	ck_assert_ptr_null(g);
	unlink(path);
	free(fill);
	free(big);
	free(emb);
}
END_TEST

Suite *np_suite_gguf(void)
{
	Suite *s = suite_create("gguf");
	TCase *tc = tcase_create("reader");

	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_truncated_everywhere);
	tcase_add_test(tc, test_bad_magic_version);
	tcase_add_test(tc, test_absurd_counts);
	tcase_add_test(tc, test_bad_types);
	tcase_add_test(tc, test_absurd_shapes);
	tcase_add_test(tc, test_open_errors);
	tcase_add_test(tc, test_model_checks);
	tcase_add_test(tc, test_model_unsupported_type);
	tcase_add_test(tc, test_random_corruption);
	tcase_add_test(tc, test_open_meta);
	suite_add_tcase(s, tc);
	return s;
}
