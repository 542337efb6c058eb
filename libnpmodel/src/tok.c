// SPDX-License-Identifier: MIT
/*
 * Tokenizers stored in GGUF metadata: SentencePiece-style "llama"
 * vocabularies (score-driven merges with byte fallback, as llama.cpp's
 * llm_tokenizer_spm) and GPT-2 byte-level BPE (the pre-tokenizer named by
 * tokenizer.ggml.pre, rank driven merges). Both round-trip any byte string
 * their vocabulary covers. This file loads a vocabulary, cuts special and
 * user-defined tokens out of the text (tok_special.c), dispatches the rest
 * to tok_spm.c or tok_bpe.c and decodes; np_tok_train (tok_train.c) learns
 * either kind from sample text.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "npim_tok.h"

const char npim_spm_space[] = "\xe2\x96\x81"; /* U+2581 */

/* ---------------------------------------------------------------- */
/* Vocab loading                                                     */

void npim_bpe_byte_map(uint32_t map[256])
{
	uint32_t n = 0;

	for (uint32_t b = 0; b < 256; b++) {
		if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) ||
		    (b >= 174 && b <= 255))
			map[b] = b;
		else
			map[b] = 256 + n++;
	}
}

size_t npim_utf8_put(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	out[0] = (char)(0xe0 | cp >> 12);
	out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[2] = (char)(0x80 | (cp & 0x3f));
	return 3;
}
static int tok_alloc(struct np_tok *t, uint32_t n)
{
	t->n = n;
	t->text = calloc(n, sizeof(*t->text));
	t->len = calloc(n, sizeof(*t->len));
	t->score = calloc(n, sizeof(*t->score));
	t->type = calloc(n, sizeof(*t->type));
	t->ids = npim_map_new(n);
	if (!t->text || !t->len || !t->score || !t->type || !t->ids)
		return -ENOMEM;
	for (int i = 0; i < 256; i++)
		t->byte_id[i] = -1;
	return 0;
}

static int tok_opt_id(const struct np_gguf *g, const char *key, uint32_t n,
		      int32_t *id, const struct np_log *log)
{
	uint64_t v;
	int ret = np_gguf_get_u64(g, key, &v);

	*id = -1;
	if (ret == -ENOENT)
		return 0;
	if (ret || v >= n) {
		npim_log(log, LOG_ERR,
			 "tokenizer: %s is not a token id below the vocabulary "
			 "size %u; the file is corrupt",
			 key, n);
		return -EINVAL;
	}
	*id = (int32_t)v;
	return 0;
}

/* tokenizer.ggml.pre: the BPE split rule; gpt-2's when absent */
static int tok_pre(const struct np_gguf *g, struct np_tok *t,
		   const struct np_log *log)
{
	const char *pre;
	size_t l;
	char list[512];
	int ret = np_gguf_get_str(g, "tokenizer.ggml.pre", &pre, &l);

	t->pre = NPIM_PRE_GPT2;
	if (ret == -ENOENT)
		return 0;
	if (ret) {
		npim_log(log, LOG_ERR,
			 "tokenizer: tokenizer.ggml.pre is not a string; the "
			 "file is corrupt");
		return -EINVAL;
	}
	t->pre = npim_pre_find(pre, l);
	if (t->pre >= 0)
		return 0;
	npim_pre_list(list, sizeof(list));
	npim_log(log, LOG_ERR,
		 "tokenizer: pre-tokenizer tokenizer.ggml.pre '%.*s' is not "
		 "supported; np splits text exactly as llama.cpp for: %s",
		 (int)(l > 64 ? 64 : l), pre, list);
	return -ENOTSUP;
}

int np_tok_from_gguf(const struct np_gguf *g, const struct np_log *log,
		     struct np_tok **out)
{
	struct np_tok *t;
	const char *model;
	size_t mlen;
	uint32_t atype;
	uint64_t n, cnt;
	int ret;

	*out = NULL;
	ret = np_gguf_get_str(g, "tokenizer.ggml.model", &model, &mlen);
	if (ret) {
		npim_log(log, LOG_ERR,
			 "tokenizer: tokenizer.ggml.model is %s; the file "
			 "carries no tokenizer np can use",
			 ret == -ENOENT ? "missing" : "not a string");
		return -EINVAL;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	if (mlen == 5 && !memcmp(model, "llama", 5)) {
		t->kind = NP_TOK_SPM;
	} else if (mlen == 4 && !memcmp(model, "gpt2", 4)) {
		t->kind = NP_TOK_BPE;
	} else {
		npim_log(log, LOG_ERR,
			 "tokenizer: tokenizer.ggml.model '%.*s' is not "
			 "supported; np reads 'llama' (SentencePiece) and "
			 "'gpt2' (byte-level BPE)",
			 (int)(mlen > 64 ? 64 : mlen), model);
		free(t);
		return -ENOTSUP;
	}
	ret = np_gguf_get_arr(g, "tokenizer.ggml.tokens", &atype, &n);
	if (ret || atype != NP_GGUF_STRING || n == 0 || n > (1u << 22)) {
		npim_log(
			log, LOG_ERR,
			"tokenizer: tokenizer.ggml.tokens is missing, not a "
			"string array or empty/too large; the file is corrupt");
		ret = -EINVAL;
		goto fail;
	}
	ret = tok_alloc(t, (uint32_t)n);
	if (ret)
		goto fail;
	for (uint32_t i = 0; i < n; i++) {
		const char *s;
		size_t l;

		np_gguf_arr_str(g, "tokenizer.ggml.tokens", i, &s, &l);
		t->text[i] = malloc(l + 1);
		if (!t->text[i]) {
			ret = -ENOMEM;
			goto fail;
		}
		memcpy(t->text[i], s, l);
		t->text[i][l] = 0;
		t->len[i] = l;
		t->type[i] = TOK_TYPE_NORMAL;
	}
	if (!np_gguf_get_arr(g, "tokenizer.ggml.scores", &atype, &cnt)) {
		if (cnt != n || atype == NP_GGUF_STRING ||
		    atype == NP_GGUF_ARRAY) {
			npim_log(log, LOG_ERR,
				 "tokenizer: tokenizer.ggml.scores has %llu "
				 "numbers for %llu tokens; the file is corrupt",
				 (unsigned long long)cnt,
				 (unsigned long long)n);
			ret = -EINVAL;
			goto fail;
		}
		for (uint32_t i = 0; i < n; i++) {
			double d;

			np_gguf_arr_num(g, "tokenizer.ggml.scores", i, &d);
			t->score[i] = (float)d;
		}
	}
	if (!np_gguf_get_arr(g, "tokenizer.ggml.token_type", &atype, &cnt)) {
		if (cnt != n || atype == NP_GGUF_STRING ||
		    atype == NP_GGUF_ARRAY) {
			npim_log(
				log, LOG_ERR,
				"tokenizer: tokenizer.ggml.token_type has %llu "
				"entries for %llu tokens; the file is corrupt",
				(unsigned long long)cnt, (unsigned long long)n);
			ret = -EINVAL;
			goto fail;
		}
		for (uint32_t i = 0; i < n; i++) {
			double d;

			np_gguf_arr_num(g, "tokenizer.ggml.token_type", i, &d);
			/* NaN fails both comparisons */
			if (!(d >= INT32_MIN && d <= INT32_MAX)) {
				npim_log(log, LOG_ERR,
					 "tokenizer: tokenizer.ggml.token_type "
					 "of token %u is %g, not a token type; "
					 "the file is corrupt",
					 i, d);
				ret = -EINVAL;
				goto fail;
			}
			t->type[i] = (int32_t)d;
		}
	}
	/* later duplicates do not shadow earlier tokens */
	for (uint32_t i = n; i-- > 0;)
		if (npim_map_put(t->ids, t->text[i], t->len[i], (int32_t)i)) {
			ret = -ENOMEM;
			goto fail;
		}
	if ((ret = tok_opt_id(g, "tokenizer.ggml.bos_token_id", t->n, &t->bos,
			      log)) ||
	    (ret = tok_opt_id(g, "tokenizer.ggml.eos_token_id", t->n, &t->eos,
			      log)) ||
	    (ret = tok_opt_id(g, "tokenizer.ggml.unknown_token_id", t->n,
			      &t->unk, log)))
		goto fail;
	if (t->kind == NP_TOK_SPM) {
		int v = 1;

		np_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &v);
		t->add_space_prefix = v;
		for (int b = 0; b < 256; b++) {
			char s[8];

			snprintf(s, sizeof(s), "<0x%02X>", b);
			t->byte_id[b] = npim_map_get(t->ids, s, 6);
		}
	} else {
		ret = np_gguf_get_arr(g, "tokenizer.ggml.merges", &atype, &cnt);
		if (ret || atype != NP_GGUF_STRING) {
			npim_log(log, LOG_ERR,
				 "tokenizer: a gpt2 tokenizer needs "
				 "tokenizer.ggml.merges (string array); the "
				 "file is corrupt");
			ret = -EINVAL;
			goto fail;
		}
		t->ranks = npim_map_new(cnt);
		if (!t->ranks) {
			ret = -ENOMEM;
			goto fail;
		}
		for (uint64_t i = 0; i < cnt && i < INT32_MAX; i++) {
			const char *s;
			size_t l;

			np_gguf_arr_str(g, "tokenizer.ggml.merges", i, &s, &l);
			if (npim_map_get(t->ranks, s, l) < 0 &&
			    npim_map_put(t->ranks, s, l, (int32_t)i)) {
				ret = -ENOMEM;
				goto fail;
			}
		}
		ret = tok_pre(g, t, log);
		if (ret)
			goto fail;
		/* bytes without a token (0xc0, 0xf5.. in StarCoder's) are
		 * dropped on encode, as llama.cpp does */
		npim_bpe_byte_map(t->unicode_of_byte);
		for (int b = 0; b < 256; b++) {
			char s[4];
			size_t l = npim_utf8_put(t->unicode_of_byte[b], s);

			t->byte_id[b] = npim_map_get(t->ids, s, l);
		}
	}
	ret = npim_special_init(t);
	if (ret)
		goto fail;
	*out = t;
	return 0;
fail:
	np_tok_destroy(t);
	return ret;
}

void np_tok_destroy(struct np_tok *t)
{
	if (!t)
		return;
	if (t->text)
		for (uint32_t i = 0; i < t->n; i++)
			free(t->text[i]);
	free(t->text);
	free(t->len);
	free(t->score);
	free(t->type);
	free(t->special);
	npim_map_free(t->ids);
	npim_map_free(t->ranks);
	free(t);
}

int np_tok_kind(const struct np_tok *t)
{
	return t->kind;
}

uint32_t np_tok_n_vocab(const struct np_tok *t)
{
	return t->n;
}

int32_t np_tok_bos(const struct np_tok *t)
{
	return t->bos;
}

int32_t np_tok_eos(const struct np_tok *t)
{
	return t->eos;
}

/* ---------------------------------------------------------------- */
/* Encoding                                                          */

void npim_tok_out_put(struct npim_tok_out *o, int32_t id)
{
	if (o->n < o->cap)
		o->ids[o->n] = id;
	o->n++;
}

int npim_tok_out_bytes(const struct np_tok *t, struct npim_tok_out *o,
		       const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int32_t id = t->byte_id[(unsigned char)s[i]];

		if (id < 0)
			id = t->unk;
		if (id < 0)
			return -EILSEQ;
		npim_tok_out_put(o, id);
	}
	return 0;
}

const char *np_tok_pre(const struct np_tok *t)
{
	return t->kind == NP_TOK_BPE ? npim_pre_name(t->pre) : NULL;
}

int np_tok_encode_flags(const struct np_tok *t, const char *text, size_t len,
			unsigned int flags, int32_t *ids, size_t cap,
			size_t *n_out)
{
	struct npim_tok_out o = {ids, cap, 0};
	struct npim_frag *f;
	size_t nf;
	int ret, prev_special = 1;

	*n_out = 0;
	if (flags & ~NP_TOK_PARSE_SPECIAL)
		return -EINVAL;
	ret = npim_special_split(t, text, len, !!(flags & NP_TOK_PARSE_SPECIAL),
				 &f, &nf);
	for (size_t i = 0; !ret && i < nf; i++) {
		if (f[i].id >= 0) {
			npim_tok_out_put(&o, f[i].id);
			prev_special = 1;
			continue;
		}
		ret = t->kind == NP_TOK_SPM ?
			      npim_spm_encode(
				      t, text + f[i].off, f[i].len,
				      t->add_space_prefix && prev_special, &o) :
			      npim_bpe_encode(t, text + f[i].off, f[i].len, &o);
		prev_special = 0;
	}
	free(f);
	*n_out = o.n;
	if (ret)
		return ret;
	return o.n > cap ? -ENOSPC : 0;
}

int np_tok_encode(const struct np_tok *t, const char *text, size_t len,
		  int32_t *ids, size_t cap, size_t *n_out)
{
	return np_tok_encode_flags(t, text, len, 0, ids, cap, n_out);
}

/* ---------------------------------------------------------------- */
/* Decoding                                                          */

static void dec_put(char *out, size_t cap, size_t *n, const void *s, size_t l)
{
	if (*n < cap)
		memcpy(out + *n, s, *n + l <= cap ? l : cap - *n);
	*n += l;
}

int np_tok_decode(const struct np_tok *t, const int32_t *ids, size_t n,
		  char *text, size_t cap, size_t *len_out)
{
	size_t o = 0;
	int first = 1;

	for (size_t i = 0; i < n; i++) {
		const char *s;
		size_t l;

		if (ids[i] < 0 || (uint32_t)ids[i] >= t->n) {
			*len_out = o;
			return -EINVAL;
		}
		s = t->text[ids[i]];
		l = t->len[ids[i]];
		if (t->type[ids[i]] == TOK_TYPE_CONTROL ||
		    t->type[ids[i]] == TOK_TYPE_UNUSED)
			continue;
		if (t->type[ids[i]] == TOK_TYPE_USER_DEFINED) {
			dec_put(text, cap, &o, s, l);
			first = 0;
			continue;
		}
		if (t->kind == NP_TOK_SPM) {
			if (t->type[ids[i]] == TOK_TYPE_BYTE && l == 6) {
				unsigned char b =
					(unsigned char)strtoul(s + 3, NULL, 16);

				dec_put(text, cap, &o, &b, 1);
				first = 0;
				continue;
			}
			for (size_t j = 0; j < l;) {
				if (l - j >= 3 &&
				    !memcmp(s + j, npim_spm_space, 3)) {
					if (!(first && t->add_space_prefix))
						dec_put(text, cap, &o, " ", 1);
					j += 3;
				} else {
					dec_put(text, cap, &o, s + j, 1);
					j++;
				}
				first = 0;
			}
			continue;
		}
		for (size_t j = 0; j < l;) {
			uint32_t cp;
			size_t k = npim_utf8_next((const unsigned char *)s + j,
						  l - j, &cp);
			int b;

			for (b = 0; b < 256; b++)
				if (t->unicode_of_byte[b] == cp)
					break;
			if (b < 256) {
				unsigned char c = (unsigned char)b;

				dec_put(text, cap, &o, &c, 1);
			} else {
				dec_put(text, cap, &o, s + j, k);
			}
			j += k;
		}
	}
	*len_out = o;
	return o > cap ? -ENOSPC : 0;
}
