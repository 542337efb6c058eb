// SPDX-License-Identifier: MIT
/*
 * Bad input: truncated, oversized, wrong-shape and wrong-type GGUF files
 * are refused with an error that names the problem. Files are built with
 * the project's own writer (or taken from the seed corpus) and then
 * broken in one way each.
 */
#define _GNU_SOURCE /* memmem */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "test.h"
#include "np/model.h"

static char last[1024];
static unsigned int n_err;

static void log_fn(void *opaque, enum np_log_level level, const char *msg)
{
	if (level <= LOG_ERR) {
		n_err++;
		snprintf(last, sizeof(last), "%s", msg);
	}
}

static const struct np_log npf_log = {.fn = log_fn, .opaque = NULL};

static void log_clear(void)
{
	last[0] = 0;
	n_err = 0;
}

/* A complete llama model of shape s through the writer (F32 norms,
 * weights of type wtype), with a vocabulary metadata count; with
 * count_as_str the layer count is stored as a string. */
static void *write_model(const struct np_model_shape *s, uint32_t wtype,
			 int count_as_str, size_t *len)
{
	struct np_gguf_writer *w;
	struct np_model *m;
	float *row;
	void *buf;

	ck_assert_int_eq(np_model_synthetic(s, 3, &m), 0);
	ck_assert_int_eq(np_gguf_writer_create(&w), 0);
	ck_assert_int_eq(
		np_gguf_writer_kv_str(w, "general.architecture", "llama"), 0);
	if (count_as_str)
		ck_assert_int_eq(
			np_gguf_writer_kv_str(w, "llama.block_count", "1"), 0);
	else
		ck_assert_int_eq(np_gguf_writer_kv_u32(w, "llama.block_count",
						       s->n_layers),
				 0);
	ck_assert_int_eq(
		np_gguf_writer_kv_u32(w, "llama.embedding_length", s->dim), 0);
	ck_assert_int_eq(
		np_gguf_writer_kv_u32(w, "llama.feed_forward_length", s->ffn),
		0);
	ck_assert_int_eq(np_gguf_writer_kv_u32(w, "llama.attention.head_count",
					       s->n_heads),
			 0);
	ck_assert_int_eq(np_gguf_writer_kv_u32(w,
					       "llama.attention.head_count_kv",
					       s->n_kv_heads),
			 0);
	ck_assert_int_eq(np_gguf_writer_kv_u32(w, "llama.vocab_size", s->vocab),
			 0);
	row = malloc(64 * 64 * sizeof(float));
	ck_assert_ptr_nonnull(row);
	for (uint32_t l = 0; l <= s->n_layers; l++) {
		for (int k = 0; k < NP_T_COUNT; k++) {
			static const char *const names[NP_T_COUNT] = {
				"attn_norm",  "attn_q",	     "attn_k",
				"attn_v",     "attn_output", "ffn_norm",
				"ffn_gate",   "ffn_up",	     "ffn_down",
				"token_embd", "output_norm", "output",
			};
			char name[64];
			uint32_t rows, cols;
			int norm = k == NP_T_ATTN_NORM || k == NP_T_FFN_NORM ||
				   k == NP_T_OUT_NORM;

			/* per-layer tensors for l < n_layers, the rest once */
			if ((k < NP_T_TOK_EMBD) != (l < s->n_layers))
				continue;
			if (k < NP_T_TOK_EMBD)
				snprintf(name, sizeof(name), "blk.%u.%s.weight",
					 l, names[k]);
			else
				snprintf(name, sizeof(name), "%s.weight",
					 names[k]);
			np_model_dims(m, k, &rows, &cols);
			ck_assert_uint_le((uint64_t)rows * cols, 64 * 64);
			for (uint32_t r = 0; r < rows; r++)
				ck_assert_int_eq(np_model_row(m, k, l, r,
							      row + r * cols),
						 0);
			ck_assert_int_eq(np_gguf_writer_tensor(
						 w, name,
						 norm ? NP_GGML_F32 : wtype,
						 rows, cols, rows > 1, row),
					 0);
		}
	}
	ck_assert_int_eq(np_gguf_writer_buf(w, &buf, len), 0);
	free(row);
	np_gguf_writer_destroy(w);
	np_model_destroy(m);
	return buf;
}

static const struct np_model_shape tiny = {
	.n_layers = 1,
	.dim = 32,
	.n_heads = 2,
	.n_kv_heads = 1,
	.ffn = 32,
	.vocab = 48,
	.ctx = 64,
	.rope_base = 10000.0f,
	.norm_eps = 1e-5f,
};

/* Where tensor info `name` stores its type, in a writer's buffer. */
static size_t type_field(const uint8_t *buf, size_t len, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 8; i + n + 8 < len; i++) {
		uint64_t sl;
		uint32_t dims;

		memcpy(&sl, buf + i - 8, 8);
		if (sl != n || memcmp(buf + i, name, n))
			continue;
		memcpy(&dims, buf + i + n, 4);
		ck_assert_uint_le(dims, 4);
		return i + n + 4 + 8 * dims;
	}
	ck_abort_msg("tensor %s not in the file", name);
	return 0;
}

START_TEST(test_model_valid)
{
	struct np_gguf *g;
	struct np_model *m;
	size_t len;
	void *buf = write_model(&tiny, NP_GGML_Q8_0, 0, &len);

	log_clear();
	ck_assert_int_eq(np_gguf_open_mem(buf, len, &npf_log, &g), 0);
	ck_assert_int_eq(np_model_from_gguf(g, &npf_log, &m), 0);
	ck_assert_uint_eq(np_model_get_shape(m)->vocab, tiny.vocab);
	ck_assert_uint_eq(n_err, 0);
	np_model_destroy(m);
	np_gguf_close(g);
	free(buf);
}
END_TEST

/* Every cut of a valid file is refused, and the message says why. */
START_TEST(test_truncated)
{
	size_t len;
	uint8_t *buf = write_model(&tiny, NP_GGML_Q4_0, 0, &len);

	for (size_t cut = 0; cut < len; cut += cut < 2048 ? 1 : 61) {
		struct np_gguf *g;
		uint8_t *copy = malloc(cut ? cut : 1);

		ck_assert_ptr_nonnull(copy);
		memcpy(copy, buf, cut);
		log_clear();
		ck_assert_int_eq(np_gguf_open_mem(copy, cut, &npf_log, &g),
				 -EINVAL);
		ck_assert_ptr_null(g);
		/* a cut header says its counts cannot fit what is left */
		ck_assert_msg(strstr(last, "truncated") ||
				      strstr(last, "too short") ||
				      strstr(last, "cannot hold"),
			      "a file cut at %zu of %zu bytes: '%s'", cut, len,
			      last);
		free(copy);
	}
	free(buf);
}
END_TEST

/* Counts and sizes no file of this length can hold. */
START_TEST(test_oversized)
{
	static const char *const seeds[] = {
		"kv-count-huge.gguf",	"tensor-count-huge.gguf",
		"string-len-huge.gguf", "array-count-huge.gguf",
		"tensor-huge.gguf",
	};
	static const char *const says[] = {
		"1099511627776 metadata entries",
		"1099511627776 tensors",
		"claims 4611686018427387904 bytes",
		"claims 2305843009213693952 elements",
		"exceed 2^50 elements",
	};
	char path[4096];

	snprintf(path, sizeof(path), "%s/corpus/gguf/%s", NP_FUZZ_DIR,
		 seeds[_i]);
	{
		size_t len;
		uint8_t *buf = tst_read_file(path, &len);
		struct np_gguf *g;

		log_clear();
		ck_assert_int_eq(np_gguf_open_mem(buf, len, &npf_log, &g),
				 -EINVAL);
		ck_assert_msg(strstr(last, says[_i]), "%s: '%s'", seeds[_i],
			      last);
		free(buf);
	}
}
END_TEST

/* A tensor whose shape disagrees with the metadata is named. */
START_TEST(test_wrong_shape)
{
	struct np_model_shape s = tiny;
	struct np_gguf *g;
	struct np_model *m;
	size_t len;
	void *buf;

	/* 2 KV heads' worth of K/V rows against metadata claiming 1 */
	s.n_kv_heads = 2;
	buf = write_model(&s, NP_GGML_F16, 0, &len);
	/* the metadata, not the tensors, says 1: patch head_count_kv */
	{
		static const char key[] = "llama.attention.head_count_kv";
		uint8_t *p = memmem(buf, len, key, sizeof(key) - 1);
		uint32_t one = 1;

		ck_assert_ptr_nonnull(p);
		memcpy(p + sizeof(key) - 1 + 4, &one, 4);
	}
	log_clear();
	ck_assert_int_eq(np_gguf_open_mem(buf, len, &npf_log, &g), 0);
	ck_assert_int_eq(np_model_from_gguf(g, &npf_log, &m), -EINVAL);
	ck_assert_ptr_null(m);
	ck_assert_msg(strstr(last, "blk.0.attn_k.weight") &&
			      strstr(last, "expected 32x16"),
		      "'%s'", last);
	np_gguf_close(g);
	free(buf);
}
END_TEST

/* A tensor type np does not compute with, and metadata of the wrong
 * type, are named. */
START_TEST(test_wrong_type)
{
	struct np_gguf *g;
	struct np_model *m;
	size_t len, at;
	uint8_t *buf = write_model(&tiny, NP_GGML_F16, 0, &len);
	uint32_t i16 = NP_GGML_I16;

	/* F16 and I16 rows have the same size: only the type changes */
	at = type_field(buf, len, "blk.0.ffn_up.weight");
	memcpy(buf + at, &i16, 4);
	log_clear();
	ck_assert_int_eq(np_gguf_open_mem(buf, len, &npf_log, &g), 0);
	ck_assert_int_eq(np_model_from_gguf(g, &npf_log, &m), -ENOTSUP);
	ck_assert_msg(strstr(last, "blk.0.ffn_up.weight") &&
			      strstr(last, "I16"),
		      "'%s'", last);
	np_gguf_close(g);
	free(buf);

	/* llama.block_count stored as a string */
	buf = write_model(&tiny, NP_GGML_F16, 1, &len);
	log_clear();
	ck_assert_int_eq(np_gguf_open_mem(buf, len, &npf_log, &g), 0);
	ck_assert_int_eq(np_model_from_gguf(g, &npf_log, &m), -EINVAL);
	ck_assert_msg(strstr(last, "llama.block_count"), "'%s'", last);
	np_gguf_close(g);
	free(buf);
}
END_TEST

/* Two tensors sharing data bytes (issue 22): refused, both named. */
START_TEST(test_overlap)
{
	struct np_gguf *g;
	size_t len, up, gate;
	uint8_t *buf = write_model(&tiny, NP_GGML_F16, 0, &len);

	/* ffn_up's data offset (after its type) pointed into ffn_gate's */
	up = type_field(buf, len, "blk.0.ffn_up.weight") + 4;
	gate = type_field(buf, len, "blk.0.ffn_gate.weight") + 4;
	memcpy(buf + up, buf + gate, 8);
	log_clear();
	ck_assert_int_eq(np_gguf_open_mem(buf, len, &npf_log, &g), -EINVAL);
	ck_assert_ptr_null(g);
	ck_assert_msg(strstr(last, "blk.0.ffn_up.weight") &&
			      strstr(last, "blk.0.ffn_gate.weight") &&
			      strstr(last, "overlap"),
		      "'%s'", last);
	free(buf);
}
END_TEST

Suite *np_suite_badinput(void)
{
	Suite *s = suite_create("badinput");
	TCase *tc = tcase_create("gguf");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_model_valid);
	tcase_add_test(tc, test_truncated);
	tcase_add_loop_test(tc, test_oversized, 0, 5);
	tcase_add_test(tc, test_wrong_shape);
	tcase_add_test(tc, test_wrong_type);
	tcase_add_test(tc, test_overlap);
	suite_add_tcase(s, tc);
	return s;
}
