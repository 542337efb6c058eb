// SPDX-License-Identifier: MIT
/*
 * Tokenizer harness: arbitrary text encoded under each BPE pre-tokenizer
 * np implements (tok_pre.c) and by a SentencePiece vocabulary, with and
 * without special-token parsing, over vocabularies that hold control and
 * user-defined tokens (tok_special.c).
 *
 * Input: byte 0 picks the tokenizer (the pre-tokenizers in the order of
 * `pres`, then SentencePiece), bit 0 of byte 1 asks for special-token
 * parsing; the rest is the text.
 *
 * Invariants: encoding never fails (every byte has a token), the count
 * does not depend on the output's capacity (a short buffer gets -ENOSPC
 * and the same count), every id is in the vocabulary, and without
 * special-token parsing a byte-level vocabulary decodes the ids back to
 * the text exactly.
 */
#include <errno.h>

#include "np/model.h"
#include "np_fuzz.h"

static const char *const pres[] = {
	"gpt-2",     "mpt",	"llama-bpe",	"qwen2",
	"starcoder", "refact",	"deepseek-llm", "deepseek-coder",
	"falcon",    "default", "command-r",	"smaug-bpe",
};

#define N_PRE (sizeof(pres) / sizeof(pres[0]))

static struct np_tok *toks[N_PRE + 1];
static void *bufs[N_PRE + 1];
static struct np_gguf *ggufs[N_PRE + 1];

/* GPT-2's byte -> code point map of byte-level BPE, as UTF-8 */
static size_t byte_char(unsigned int b, char *out)
{
	unsigned int n = 0, cp = b;

	if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) ||
	      (b >= 174 && b <= 255))) {
		for (unsigned int k = 0; k < b; k++)
			n += !((k >= 33 && k <= 126) ||
			       (k >= 161 && k <= 172) ||
			       (k >= 174 && k <= 255));
		cp = 256 + n;
	}
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	out[0] = (char)(0xc0 | cp >> 6);
	out[1] = (char)(0x80 | (cp & 0x3f));
	return 2;
}

static struct np_tok *open_tok(struct np_gguf_writer *w, size_t k)
{
	size_t len;

	NP_FUZZ_ASSERT(!np_gguf_writer_buf(w, &bufs[k], &len), "writer");
	np_gguf_writer_destroy(w);
	NP_FUZZ_ASSERT(!np_gguf_open_mem(bufs[k], len, NULL, &ggufs[k]),
		       "open");
	NP_FUZZ_ASSERT(!np_tok_from_gguf(ggufs[k], NULL, &toks[k]),
		       "tokenizer %zu", k);
	return toks[k];
}

/*
 * 256 byte tokens, a few merges, a control and two user-defined tokens.
 * A user-defined token is raw text: one spelt in the byte alphabet ("Ġ!")
 * would also be the token of the piece " !" under llama-bpe's
 * ignore_merges, as in llama.cpp, and decode to other bytes than the text.
 */
static void bpe_vocab(size_t k)
{
	static const char *const extra[] = {
		"he", "ll",	      "hell", "\xc4\xa0w",
		"12", "<|im_start|>", "xyz",  "a b",
	};
	static const int32_t extra_type[] = {1, 1, 1, 1, 1, 3, 4, 4};
	static const char *const merges[] = {"h e", "l l", "he ll",
					     "\xc4\xa0 w", "1 2"};
	char tok[256 + 8][16];
	const char *p[256 + 8];
	int32_t type[256 + 8];
	struct np_gguf_writer *w;

	for (unsigned int b = 0; b < 256; b++) {
		tok[b][byte_char(b, tok[b])] = 0;
		p[b] = tok[b];
		type[b] = 1;
	}
	for (size_t i = 0; i < 8; i++) {
		p[256 + i] = extra[i];
		type[256 + i] = extra_type[i];
	}
	NP_FUZZ_ASSERT(!np_gguf_writer_create(&w), "writer");
	np_gguf_writer_kv_str(w, "tokenizer.ggml.model", "gpt2");
	np_gguf_writer_kv_str(w, "tokenizer.ggml.pre", pres[k]);
	np_gguf_writer_kv_arr_str(w, "tokenizer.ggml.tokens", p, 256 + 8);
	np_gguf_writer_kv_arr_i32(w, "tokenizer.ggml.token_type", type,
				  256 + 8);
	np_gguf_writer_kv_arr_str(w, "tokenizer.ggml.merges", merges, 5);
	open_tok(w, k);
}

static void spm_vocab(void)
{
	static const char text[] = "The cards run the model. Die Karten "
				   "rechnen. \xe6\x97\xa5\xe6\x9c\xac 42!";
	struct np_gguf_writer *w;

	NP_FUZZ_ASSERT(!np_gguf_writer_create(&w), "writer");
	NP_FUZZ_ASSERT(
		!np_tok_train(NP_TOK_SPM, text, sizeof(text) - 1, 300, w),
		"train");
	open_tok(w, N_PRE);
}

int np_fuzz_tok(const uint8_t *data, size_t size)
{
	struct np_fuzz_in in = {data, size};
	size_t k = np_fuzz_u8(&in) % (N_PRE + 1), n, n2, back;
	unsigned int flags = np_fuzz_u8(&in) & 1 ? NP_TOK_PARSE_SPECIAL : 0;
	const char *text = (const char *)in.p;
	struct np_tok *t;
	int32_t *ids, one;
	char *out;
	int ret;

	if (!toks[k]) {
		if (k < N_PRE)
			bpe_vocab(k);
		else
			spm_vocab();
	}
	t = toks[k];
	ret = np_tok_encode_flags(t, text, in.n, flags, &one, 0, &n);
	NP_FUZZ_ASSERT(ret == 0 || ret == -ENOSPC, "encode: %d", ret);
	NP_FUZZ_ASSERT(!ret == !n, "empty encode for %zu tokens", n);
	ids = malloc((n + 1) * sizeof(*ids));
	out = malloc(in.n + 1);
	NP_FUZZ_ASSERT(ids && out, "out of memory");
	NP_FUZZ_ASSERT(!np_tok_encode_flags(t, text, in.n, flags, ids, n, &n2),
		       "encode into %zu ids", n);
	NP_FUZZ_ASSERT(n2 == n, "%zu ids, then %zu", n, n2);
	for (size_t i = 0; i < n; i++)
		NP_FUZZ_ASSERT(ids[i] >= 0 &&
				       (uint32_t)ids[i] < np_tok_n_vocab(t),
			       "id %d", ids[i]);
	if (k < N_PRE && !flags) {
		NP_FUZZ_ASSERT(!np_tok_decode(t, ids, n, out, in.n, &back),
			       "decode");
		NP_FUZZ_ASSERT(back == in.n && !memcmp(out, text, back),
			       "%s: decoding gives %zu bytes, not the %zu "
			       "of the text",
			       pres[k], back, in.n);
	}
	free(ids);
	free(out);
	return 0;
}
