// SPDX-License-Identifier: MIT
/* Tokenizers: trained vocabularies round-trip the multilingual sample;
 * hand-built vocabularies give hand-computed answers. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

static struct np_gguf *g_buf_gguf(struct np_gguf_writer *w, void **buf)
{
	struct np_gguf *g;
	size_t len;

	ck_assert_int_eq(np_gguf_writer_buf(w, buf, &len), 0);
	np_gguf_writer_destroy(w);
	ck_assert_int_eq(np_gguf_open_mem(*buf, len, &tst_log, &g), 0);
	return g;
}

static struct np_tok *trained(int kind, uint32_t n_vocab, struct np_gguf **g,
			      void **buf)
{
	struct np_gguf_writer *w;
	struct np_tok *t;
	size_t len;
	char *text = tst_sample(&len);

	ck_assert_int_eq(np_gguf_writer_create(&w), 0);
	ck_assert_int_eq(np_tok_train(kind, text, len, n_vocab, w), 0);
	free(text);
	*g = g_buf_gguf(w, buf);
	ck_assert_int_eq(np_tok_from_gguf(*g, &tst_log, &t), 0);
	ck_assert_uint_eq(np_tok_n_vocab(t), n_vocab);
	return t;
}

static void round_trip(const struct np_tok *t, const char *s, size_t len)
{
	size_t cap = len * 4 + 8, n, out_len;
	int32_t *ids = malloc(cap * sizeof(*ids));
	char *back = malloc(len + 16);

	ck_assert_int_eq(np_tok_encode(t, s, len, ids, cap, &n), 0);
	ck_assert_uint_le(n, len + 1);
	ck_assert_int_eq(np_tok_decode(t, ids, n, back, len + 16, &out_len), 0);
	ck_assert_msg(out_len == len && memcmp(back, s, len) == 0,
		      "round trip of '%.*s' gave '%.*s'", (int)len, s,
		      (int)out_len, back);
	free(ids);
	free(back);
}

static const char *const edge[] = {
	"",
	" ",
	"  two leading",
	"trailing  ",
	"\n\n\t x",
	"a",
	"I'm   here's",
	"x  \n  y",
	"\xff\xfe bad utf8 \xc3",
	"nul\0inside",
	"<s> </s> <0x41> <unused9>",
	"🐈‍⬛ zwj",
	"mixed العربية and 中文 and ελληνικά",
};

static void edge_cases(const struct np_tok *t)
{
	for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++)
		round_trip(t, edge[i], i == 9 ? 10 : strlen(edge[i]));
}

static void sample_trips(const struct np_tok *t)
{
	size_t len, n;
	char *text = tst_sample(&len);
	int32_t *ids = malloc(len * sizeof(*ids));

	round_trip(t, text, len);
	/* each line on its own too */
	for (char *p = text, *nl; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		if (!nl)
			nl = p + strlen(p);
		round_trip(t, p, (size_t)(nl - p));
		if (!*nl)
			break;
	}
	/* the vocabulary learnt something: well under 1 token per 2 bytes */
	ck_assert_int_eq(np_tok_encode(t, text, len, ids, len, &n), 0);
	ck_assert_uint_lt(n, len / 3);
	free(ids);
	free(text);
}

START_TEST(test_spm_trained)
{
	struct np_gguf *g;
	void *buf;
	struct np_tok *t = trained(NP_TOK_SPM, 4096, &g, &buf);

	ck_assert_int_eq(np_tok_kind(t), NP_TOK_SPM);
	ck_assert_int_eq(np_tok_bos(t), 1);
	ck_assert_int_eq(np_tok_eos(t), 2);
	sample_trips(t);
	edge_cases(t);
	np_tok_destroy(t);
	np_gguf_close(g);
	free(buf);
}
END_TEST

START_TEST(test_bpe_trained)
{
	struct np_gguf *g;
	void *buf;
	struct np_tok *t = trained(NP_TOK_BPE, 4096, &g, &buf);

	ck_assert_int_eq(np_tok_kind(t), NP_TOK_BPE);
	sample_trips(t);
	edge_cases(t);
	np_tok_destroy(t);
	np_gguf_close(g);
	free(buf);
}
END_TEST

START_TEST(test_small_vocab_falls_back)
{
	/* a vocabulary with no room for merges still round-trips: bytes */
	struct np_gguf *g;
	void *buf;
	struct np_tok *t = trained(NP_TOK_BPE, 257, &g, &buf);

	edge_cases(t);
	np_tok_destroy(t);
	np_gguf_close(g);
	free(buf);
	{
		struct np_gguf_writer *w;

		np_gguf_writer_create(&w);
		ck_assert_int_eq(np_tok_train(NP_TOK_SPM, "abc", 3, 100, w),
				 -EINVAL);
		np_gguf_writer_destroy(w);
	}
}
END_TEST

/* ---- hand-built SentencePiece vocabulary ---- */

#define SP "\xe2\x96\x81"

static struct np_tok *spm_vocab(float s_sp_a, float s_ab, struct np_gguf **g,
				void **buf)
{
	const char *tok[] = {"<unk>", "<s>",  "</s>", SP,      "a",
			     "b",     SP "a", "ab",   "<0x63>"};
	const float score[] = {0, 0, 0, -10, -10, -10, s_sp_a, s_ab, 0};
	const int32_t type[] = {2, 3, 3, 1, 1, 1, 1, 1, 6};
	struct np_gguf_writer *w;
	struct np_tok *t;

	np_gguf_writer_create(&w);
	np_gguf_writer_kv_str(w, "tokenizer.ggml.model", "llama");
	np_gguf_writer_kv_arr_str(w, "tokenizer.ggml.tokens", tok, 9);
	np_gguf_writer_kv_arr_f32(w, "tokenizer.ggml.scores", score, 9);
	np_gguf_writer_kv_arr_i32(w, "tokenizer.ggml.token_type", type, 9);
	np_gguf_writer_kv_u32(w, "tokenizer.ggml.unknown_token_id", 0);
	*g = g_buf_gguf(w, buf);
	ck_assert_int_eq(np_tok_from_gguf(*g, &tst_log, &t), 0);
	return t;
}

static void expect(const struct np_tok *t, const char *s, const int32_t *want,
		   size_t n_want)
{
	int32_t ids[32];
	size_t n;

	ck_assert_int_eq(np_tok_encode(t, s, strlen(s), ids, 32, &n), 0);
	ck_assert_uint_eq(n, n_want);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(ids[i], want[i]);
}

START_TEST(test_spm_known_answers)
{
	struct np_gguf *g;
	void *buf;
	struct np_tok *t;
	int32_t ids[4];
	size_t n;
	char out[16];

	/* "ab" -> "▁ab": "▁a" scores higher than "ab": [▁a][b] */
	t = spm_vocab(-1, -2, &g, &buf);
	expect(t, "ab", (const int32_t[]){6, 5}, 2);
	/* "c" is not a piece: byte fallback <0x63>; "a c" -> ▁a ▁ <0x63> */
	expect(t, "a c", (const int32_t[]){6, 3, 8}, 3);
	/* "d" has neither piece nor byte token: <unk> */
	expect(t, "d", (const int32_t[]){3, 0}, 2);
	/* decoding drops the prefix space once and maps bytes */
	ck_assert_int_eq(np_tok_decode(t, (const int32_t[]){6, 3, 8}, 3, out,
				       sizeof(out), &n),
			 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_int_eq(memcmp(out, "a c", 3), 0);
	/* control tokens decode to nothing; bad ids are refused */
	ck_assert_int_eq(np_tok_decode(t, (const int32_t[]){1, 4, 2}, 3, out,
				       sizeof(out), &n),
			 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(
		np_tok_decode(t, (const int32_t[]){9}, 1, out, sizeof(out), &n),
		-EINVAL);
	/* too small an output array: -ENOSPC with the needed count */
	ck_assert_int_eq(np_tok_encode(t, "a c", 3, ids, 1, &n), -ENOSPC);
	ck_assert_uint_eq(n, 3);
	np_tok_destroy(t);
	np_gguf_close(g);
	free(buf);
	/* "ab" scores higher: [▁][ab] */
	t = spm_vocab(-2, -1, &g, &buf);
	expect(t, "ab", (const int32_t[]){3, 7}, 2);
	np_tok_destroy(t);
	np_gguf_close(g);
	free(buf);
}
END_TEST

/* ---- hand-built GPT-2 vocabulary ---- */

static void gpt2_bytes(uint32_t map[256])
{
	uint32_t n = 0;

	for (uint32_t b = 0; b < 256; b++)
		map[b] = ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) ||
			  (b >= 174)) ?
				 b :
				 256 + n++;
}

START_TEST(test_bpe_known_answers)
{
	static const char *const merges[] = {
		"o \xc4\xa0", "h e", "l l", "he ll", "\xc4\xa0 w", "x x",
	};
	char *tok[261];
	uint32_t map[256];
	struct np_gguf_writer *w;
	struct np_gguf *g;
	struct np_tok *t;
	void *buf;

	gpt2_bytes(map);
	for (int b = 0; b < 256; b++) {
		tok[b] = calloc(4, 1);
		if (map[b] < 0x80)
			tok[b][0] = (char)map[b];
		else {
			tok[b][0] = (char)(0xc0 | map[b] >> 6);
			tok[b][1] = (char)(0x80 | (map[b] & 0x3f));
		}
	}
	tok[256] = strdup("he");
	tok[257] = strdup("ll");
	tok[258] = strdup("hell");
	tok[259] = strdup("\xc4\xa0w"); /* "Ġw": space then w */
	tok[260] = strdup("o\xc4\xa0");
	np_gguf_writer_create(&w);
	np_gguf_writer_kv_str(w, "tokenizer.ggml.model", "gpt2");
	np_gguf_writer_kv_arr_str(w, "tokenizer.ggml.tokens",
				  (const char *const *)tok, 261);
	np_gguf_writer_kv_arr_str(w, "tokenizer.ggml.merges", merges, 6);
	g = g_buf_gguf(w, &buf);
	ck_assert_int_eq(np_tok_from_gguf(g, &tst_log, &t), 0);
	/* "hello" -> he,l,l,o -> he,ll,o -> hell,o; " world" -> Ġw,o,r,l,d.
	 * "o Ġ" ranks first but never applies: the pre-tokenizer splits
	 * "hello| world" before merging. */
	expect(t, "hello world",
	       (const int32_t[]){258, 'o', 259, 'o', 'r', 'l', 'd'}, 7);
	/* contractions and digit runs are their own pieces */
	expect(t, "he'll 42", (const int32_t[]){256, '\'', 257, 0x20, '4', '2'},
	       6);
	/* a merge with no token ("x x" ranks, "xx" absent): its bytes */
	expect(t, "xx", (const int32_t[]){'x', 'x'}, 2);
	for (int i = 0; i < 261; i++)
		free(tok[i]);
	np_tok_destroy(t);
	np_gguf_close(g);
	free(buf);
}
END_TEST

START_TEST(test_tok_errors)
{
	struct np_gguf_writer *w;
	struct np_gguf *g;
	struct np_tok *t = NULL;
	void *buf;
	static const char *const tok[2] = {"a", "b"};

	np_gguf_writer_create(&w);
	np_gguf_writer_kv_str(w, "tokenizer.ggml.model", "bert");
	np_gguf_writer_kv_arr_str(w, "tokenizer.ggml.tokens", tok, 2);
	g = g_buf_gguf(w, &buf);
	tst_reset();
	ck_assert_int_eq(np_tok_from_gguf(g, &tst_log, &t), -ENOTSUP);
	ck_assert_ptr_null(t);
	ck_assert_ptr_nonnull(strstr(tst_last, "'bert'"));
	np_gguf_close(g);
	free(buf);

	np_gguf_writer_create(&w);
	np_gguf_writer_kv_str(w, "tokenizer.ggml.model", "gpt2");
	np_gguf_writer_kv_arr_str(w, "tokenizer.ggml.tokens", tok, 2);
	np_gguf_writer_kv_arr_str(w, "tokenizer.ggml.merges", tok, 0);
	g = g_buf_gguf(w, &buf);
	tst_reset();
	ck_assert_int_eq(np_tok_from_gguf(g, &tst_log, &t), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_last, "byte 0x00"));
	np_gguf_close(g);
	free(buf);

	np_gguf_writer_create(&w);
	np_gguf_writer_kv_str(w, "tokenizer.ggml.model", "llama");
	np_gguf_writer_kv_arr_str(w, "tokenizer.ggml.tokens", tok, 2);
	np_gguf_writer_kv_u32(w, "tokenizer.ggml.bos_token_id", 7);
	g = g_buf_gguf(w, &buf);
	tst_reset();
	ck_assert_int_eq(np_tok_from_gguf(g, &tst_log, &t), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_last, "bos_token_id"));
	np_gguf_close(g);
	free(buf);

	np_gguf_writer_create(&w);
	np_gguf_writer_kv_u32(w, "x", 1);
	g = g_buf_gguf(w, &buf);
	ck_assert_int_eq(np_tok_from_gguf(g, &tst_log, &t), -EINVAL);
	np_gguf_close(g);
	free(buf);
	np_tok_destroy(NULL);
}
END_TEST

Suite *np_suite_tok(void)
{
	Suite *s = suite_create("tok");
	TCase *tc = tcase_create("tokenizers");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_spm_trained);
	tcase_add_test(tc, test_bpe_trained);
	tcase_add_test(tc, test_small_vocab_falls_back);
	tcase_add_test(tc, test_spm_known_answers);
	tcase_add_test(tc, test_bpe_known_answers);
	tcase_add_test(tc, test_tok_errors);
	suite_add_tcase(s, tc);
	return s;
}
