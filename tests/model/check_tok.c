// SPDX-License-Identifier: MIT
/* Tokenizers: trained vocabularies round-trip the multilingual sample;
 * hand-built vocabularies give hand-computed answers. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npim_tok.h"
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
	ck_assert_ptr_null(np_tok_pre(t));
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
	/* the writer records the split rule the merges were learnt under */
	ck_assert_str_eq(np_tok_pre(t), "gpt-2");
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

/* pieces of text under a pre-tokenizer, joined by '|' */
static void expect_split(const char *pre, const char *text, const char *want)
{
	char got[256];
	size_t *ends, n, a = 0, o = 0;
	int k = npim_pre_find(pre, strlen(pre));

	ck_assert_int_ge(k, 0);
	ck_assert_str_eq(npim_pre_name(k), pre);
	ck_assert_int_eq(npim_pre_split(k, text, strlen(text), &ends, &n), 0);
	for (size_t i = 0; i < n; i++) {
		ck_assert_uint_lt(o + ends[i] - a + 1, sizeof(got));
		if (i)
			got[o++] = '|';
		memcpy(got + o, text + a, ends[i] - a);
		o += ends[i] - a;
		a = ends[i];
	}
	got[o] = 0;
	free(ends);
	ck_assert_msg(!strcmp(got, want), "%s: '%s' split as '%s', not '%s'",
		      pre, text, got, want);
}

/* Splits worked by hand from llama.cpp's expressions (llama-vocab.cpp);
 * gpt-2, starcoder, refact and deepseek-llm are also checked against
 * llama.cpp's own vocabularies and ids in the vocab test. */
START_TEST(test_pre_rules)
{
	static const char s[] = "Hello world 12345 it's\n\n  x";

	expect_split("gpt-2", s, "Hello| world| 12345| it|'s|\n\n | x");
	expect_split("mpt", s, "Hello| world| 12345| it|'s|\n\n | x");
	expect_split("starcoder", s,
		     "Hello| world| |1|2|3|4|5| it|'s|\n\n | x");
	/* digits in threes, letters take one leading non-letter, a newline
	 * run ends a white space piece; contractions in any case */
	expect_split("llama-bpe", s, "Hello| world| |123|45| it|'s|\n\n| | x");
	expect_split("llama-bpe", "IT'S ok!\n", "IT|'S| ok|!\n");
	expect_split("qwen2", s, "Hello| world| |1|2|3|4|5| it|'s|\n\n| | x");
	/* punctuation runs first, then gpt-2, then ASCII digit triples */
	expect_split("falcon", "a+b=3,1234;", "a|+|b|=|3|,|123|4|;");
	expect_split("falcon", "a `b", "a| |`|b");
	expect_split("default", "a `b", "a| `|b");
	expect_split("default", "x=12345", "x|=|123|45");
	/* newlines, letter runs, punctuation (= is a symbol), single digits */
	expect_split("deepseek-coder", "int x=42;\n", "int| x|=|4|2|;|\n");
	expect_split("deepseek-llm", "Hi  \n", "Hi|  |\n");
	/* non-ASCII white space counts as white space, U+3000 included */
	expect_split("gpt-2",
		     "a\xe3\x80\x80\xe3\x80\x80"
		     "b",
		     "a|\xe3\x80\x80|\xe3\x80\x80|"
		     "b");
	expect_split("gpt-2", "", "");
	ck_assert_int_lt(npim_pre_find("gpt2", 4), 0);
}
END_TEST

/* the byte tokens of GPT-2's byte map plus extra tokens of given types */
static struct np_tok *bpe_with(const char *const *extra, const int32_t *types,
			       int n_extra, struct np_gguf **g, void **buf)
{
	char *tok[300];
	int32_t type[300];
	uint32_t map[256];
	struct np_gguf_writer *w;
	struct np_tok *t;

	gpt2_bytes(map);
	for (int b = 0; b < 256; b++) {
		tok[b] = calloc(4, 1);
		npim_utf8_put(map[b], tok[b]);
		type[b] = TOK_TYPE_NORMAL;
	}
	for (int i = 0; i < n_extra; i++) {
		tok[256 + i] = strdup(extra[i]);
		type[256 + i] = types[i];
	}
	np_gguf_writer_create(&w);
	np_gguf_writer_kv_str(w, "tokenizer.ggml.model", "gpt2");
	np_gguf_writer_kv_arr_str(w, "tokenizer.ggml.tokens",
				  (const char *const *)tok, 256 + n_extra);
	np_gguf_writer_kv_arr_i32(w, "tokenizer.ggml.token_type", type,
				  256 + n_extra);
	np_gguf_writer_kv_arr_str(w, "tokenizer.ggml.merges", extra, 0);
	*g = g_buf_gguf(w, buf);
	ck_assert_int_eq(np_tok_from_gguf(*g, &tst_log, &t), 0);
	for (int i = 0; i < 256 + n_extra; i++)
		free(tok[i]);
	return t;
}

START_TEST(test_special_tokens)
{
	static const char *const extra[] = {"<|im_start|>", "xyz", "\xc4\xa0!",
					    "xy"};
	static const int32_t types[] = {TOK_TYPE_CONTROL, TOK_TYPE_USER_DEFINED,
					TOK_TYPE_USER_DEFINED,
					TOK_TYPE_USER_DEFINED};
	struct np_gguf *g;
	void *buf;
	struct np_tok *t = bpe_with(extra, types, 4, &g, &buf);
	int32_t ids[32];
	size_t n;
	char out[32];

	/* user-defined tokens are cut out first, the longest first */
	expect(t, "axyzb", (const int32_t[]){'a', 257, 'b'}, 3);
	expect(t, "xyxyz", (const int32_t[]){259, 257}, 2);
	/* control tokens in raw text are their characters... */
	expect(t, "<|im_start|>",
	       (const int32_t[]){'<', '|', 'i', 'm', '_', 's', 't', 'a', 'r',
				 't', '|', '>'},
	       12);
	/* ...and the token when asked to parse them */
	ck_assert_int_eq(np_tok_encode_flags(t, "a<|im_start|>b", 14,
					     NP_TOK_PARSE_SPECIAL, ids, 32, &n),
			 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_int_eq(ids[0], 'a');
	ck_assert_int_eq(ids[1], 256);
	ck_assert_int_eq(ids[2], 'b');
	ck_assert_int_eq(np_tok_encode_flags(t, "a", 1, 2, ids, 32, &n),
			 -EINVAL);
	/* decoding: user-defined text verbatim (its "Ġ" is not a space),
	 * control tokens nothing */
	ids[0] = 258;
	ids[1] = 256;
	ids[2] = 257;
	ck_assert_int_eq(np_tok_decode(t, ids, 3, out, sizeof(out), &n), 0);
	ck_assert_uint_eq(n, 6);
	ck_assert_int_eq(memcmp(out, "\xc4\xa0!xyz", 6), 0);
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
	np_gguf_writer_kv_str(w, "tokenizer.ggml.pre", "bogus-pre");
	g = g_buf_gguf(w, &buf);
	tst_reset();
	ck_assert_int_eq(np_tok_from_gguf(g, &tst_log, &t), -ENOTSUP);
	ck_assert_ptr_null(t);
	ck_assert_ptr_nonnull(strstr(tst_last, "'bogus-pre'"));
	ck_assert_ptr_nonnull(strstr(tst_last, "qwen2"));
	np_gguf_close(g);
	free(buf);

	/* a vocabulary without most byte tokens loads; their bytes drop */
	np_gguf_writer_create(&w);
	np_gguf_writer_kv_str(w, "tokenizer.ggml.model", "gpt2");
	np_gguf_writer_kv_arr_str(w, "tokenizer.ggml.tokens", tok, 2);
	np_gguf_writer_kv_arr_str(w, "tokenizer.ggml.merges", tok, 0);
	g = g_buf_gguf(w, &buf);
	ck_assert_int_eq(np_tok_from_gguf(g, &tst_log, &t), 0);
	ck_assert_str_eq(np_tok_pre(t), "gpt-2");
	expect(t,
	       "a\xff"
	       "cb",
	       (const int32_t[]){0, 1}, 2);
	np_tok_destroy(t);
	t = NULL;
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
	tcase_add_test(tc, test_pre_rules);
	tcase_add_test(tc, test_special_tokens);
	tcase_add_test(tc, test_tok_errors);
	suite_add_tcase(s, tc);
	return s;
}
