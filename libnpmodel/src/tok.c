// SPDX-License-Identifier: MIT
/*
 * Tokenizers stored in GGUF metadata: SentencePiece-style "llama"
 * vocabularies (score-driven merges with byte fallback, as llama.cpp's
 * llm_tokenizer_spm) and GPT-2 byte-level BPE (pre-tokenizer regex, rank
 * driven merges). Both round-trip any byte string exactly. np_tok_train
 * learns either kind from sample text.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "npim.h"

#define TOK_TYPE_NORMAL 1
#define TOK_TYPE_UNKNOWN 2
#define TOK_TYPE_CONTROL 3
#define TOK_TYPE_UNUSED 5
#define TOK_TYPE_BYTE 6

static const char spm_space[] = "\xe2\x96\x81"; /* U+2581 */

struct np_tok {
	int kind;
	uint32_t n;
	char **text;
	size_t *len;
	float *score;
	int32_t *type;
	struct npim_map *ids;
	struct npim_map *ranks; /* BPE: "left right" -> rank */
	int32_t byte_id[256]; /* SPM <0xXX>, BPE byte char */
	uint32_t unicode_of_byte[256]; /* BPE */
	int32_t bos, eos, unk;
	int add_space_prefix;
};

/* ---------------------------------------------------------------- */
/* Vocab loading                                                     */

static void bpe_byte_map(uint32_t map[256])
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

static size_t utf8_put(uint32_t cp, char *out)
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
		      int32_t *id, const struct np_model_log *log)
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

int np_tok_from_gguf(const struct np_gguf *g, const struct np_model_log *log,
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
		bpe_byte_map(t->unicode_of_byte);
		for (int b = 0; b < 256; b++) {
			char s[4];
			size_t l = utf8_put(t->unicode_of_byte[b], s);

			t->byte_id[b] = npim_map_get(t->ids, s, l);
			if (t->byte_id[b] < 0) {
				npim_log(log, LOG_ERR,
					 "tokenizer: gpt2 vocabulary lacks the "
					 "token for byte 0x%02x; byte-level "
					 "BPE needs all 256",
					 b);
				ret = -EINVAL;
				goto fail;
			}
		}
	}
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

struct tok_out {
	int32_t *ids;
	size_t cap, n;
};

static void out_put(struct tok_out *o, int32_t id)
{
	if (o->n < o->cap)
		o->ids[o->n] = id;
	o->n++;
}

static int out_bytes(const struct np_tok *t, struct tok_out *o, const char *s,
		     size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int32_t id = t->byte_id[(unsigned char)s[i]];

		if (id < 0)
			id = t->unk;
		if (id < 0)
			return -EILSEQ;
		out_put(o, id);
	}
	return 0;
}

struct spm_sym {
	int prev, next;
	size_t off, n;
};

struct spm_bigram {
	float score;
	int left;
	size_t size;
};

/* max-heap on (score, then lower left index) */
static int bg_less(const struct spm_bigram *a, const struct spm_bigram *b)
{
	if (a->score != b->score)
		return a->score < b->score;
	return a->left > b->left;
}

static void heap_push(struct spm_bigram *h, size_t *n, struct spm_bigram v)
{
	size_t i = (*n)++;

	h[i] = v;
	while (i && bg_less(&h[(i - 1) / 2], &h[i])) {
		struct spm_bigram tmp = h[i];

		h[i] = h[(i - 1) / 2];
		h[(i - 1) / 2] = tmp;
		i = (i - 1) / 2;
	}
}

static struct spm_bigram heap_pop(struct spm_bigram *h, size_t *n)
{
	struct spm_bigram top = h[0];
	size_t i = 0;

	h[0] = h[--(*n)];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < *n && bg_less(&h[m], &h[l]))
			m = l;
		if (r < *n && bg_less(&h[m], &h[r]))
			m = r;
		if (m == i)
			break;
		struct spm_bigram tmp = h[i];

		h[i] = h[m];
		h[m] = tmp;
		i = m;
	}
	return top;
}

static void spm_try(const struct np_tok *t, const char *s,
		    const struct spm_sym *sym, int l, int r,
		    struct spm_bigram *h, size_t *hn)
{
	int32_t id;

	if (l < 0 || r < 0)
		return;
	id = npim_map_get(t->ids, s + sym[l].off, sym[l].n + sym[r].n);
	/* only ordinary pieces merge: never into <s>, <0x41>, <unused7> */
	if (id < 0 || t->type[id] != TOK_TYPE_NORMAL)
		return;
	heap_push(h, hn,
		  (struct spm_bigram){t->score[id], l, sym[l].n + sym[r].n});
}

static int spm_encode(const struct np_tok *t, const char *text, size_t len,
		      struct tok_out *o)
{
	size_t cap = len * 3 + 3, n = 0, nsym = 0, hn = 0;
	char *s = malloc(cap);
	struct spm_sym *sym = NULL;
	struct spm_bigram *h = NULL;
	int ret = 0;

	if (!s)
		return -ENOMEM;
	if (t->add_space_prefix) {
		memcpy(s, spm_space, 3);
		n = 3;
	}
	for (size_t i = 0; i < len; i++) {
		if (text[i] == ' ') {
			memcpy(s + n, spm_space, 3);
			n += 3;
		} else {
			s[n++] = text[i];
		}
	}
	sym = calloc(n, sizeof(*sym));
	h = calloc(n * 2 + 1, sizeof(*h));
	if (!sym || !h) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t off = 0; off < n; nsym++) {
		uint32_t cp;
		/* invalid UTF-8 bytes are symbols of their own (byte
		 * fallback), never glued to the next character */
		size_t l = npim_utf8_next((const unsigned char *)s + off,
					  n - off, &cp);

		sym[nsym] = (struct spm_sym){(int)nsym - 1,
					     off + l < n ? (int)nsym + 1 : -1,
					     off, l};
		off += l;
	}
	for (size_t i = 1; i < nsym; i++)
		spm_try(t, s, sym, (int)i - 1, (int)i, h, &hn);
	while (hn) {
		struct spm_bigram b = heap_pop(h, &hn);
		struct spm_sym *L = &sym[b.left], *R;

		if (L->n == 0 || L->next < 0)
			continue;
		R = &sym[L->next];
		if (L->n + R->n != b.size)
			continue;
		L->n += R->n;
		R->n = 0;
		L->next = R->next;
		if (R->next >= 0)
			sym[R->next].prev = b.left;
		spm_try(t, s, sym, L->prev, b.left, h, &hn);
		spm_try(t, s, sym, b.left, L->next, h, &hn);
	}
	for (int i = nsym ? 0 : -1; i >= 0; i = sym[i].next) {
		int32_t id = npim_map_get(t->ids, s + sym[i].off, sym[i].n);

		if (id >= 0 && t->type[id] != TOK_TYPE_CONTROL &&
		    t->type[id] != TOK_TYPE_UNUSED)
			out_put(o, id);
		else if ((ret = out_bytes(t, o, s + sym[i].off, sym[i].n)))
			break;
	}
out:
	free(s);
	free(sym);
	free(h);
	return ret;
}

/* GPT-2 pre-tokenizer: the length of the piece starting at text[i] */
static size_t gpt2_piece(const unsigned char *p, size_t len)
{
	static const char *const contr[] = {"'s", "'t",	 "'re", "'ve",
					    "'m", "'ll", "'d"};
	uint32_t cp;
	size_t i = 0, l;
	int cls;

	if (p[0] == '\'') {
		for (size_t k = 0; k < NPIM_ARRAY_SIZE(contr); k++) {
			size_t cl = strlen(contr[k]);

			if (cl <= len && !memcmp(p, contr[k], cl))
				return cl;
		}
	}
	/* ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+' */
	if (p[0] == ' ' && len > 1)
		i = 1;
	l = npim_utf8_next(p + i, len - i, &cp);
	cls = npim_is_letter(cp) ? 1 :
	      npim_is_number(cp) ? 2 :
	      npim_is_space(cp)	 ? 0 :
				   3;
	if (cls) {
		size_t j = i + l;

		while (j < len) {
			size_t k = npim_utf8_next(p + j, len - j, &cp);
			int c2 = npim_is_letter(cp) ? 1 :
				 npim_is_number(cp) ? 2 :
				 npim_is_space(cp)  ? 0 :
						      3;

			if (c2 != cls)
				break;
			j += k;
		}
		return j;
	}
	/* whitespace run: '\s+(?!\S)' then '\s+' */
	{
		size_t j = 0, last = 0, nchars = 0;

		while (j < len) {
			size_t k = npim_utf8_next(p + j, len - j, &cp);

			if (!npim_is_space(cp))
				break;
			last = j;
			j += k;
			nchars++;
		}
		if (j < len && nchars > 1)
			return last;
		return j;
	}
}

/* BPE merge candidates: min-heap on (rank, left position) */
struct bpe_cand {
	int32_t rank;
	int left;
	size_t left_n, right_n; /* sizes when queued, to spot stale entries */
};

static int cand_less(const struct bpe_cand *a, const struct bpe_cand *b)
{
	return a->rank != b->rank ? a->rank < b->rank : a->left < b->left;
}

static void cand_push(struct bpe_cand *h, size_t *n, struct bpe_cand v)
{
	size_t i = (*n)++;

	h[i] = v;
	while (i && cand_less(&h[i], &h[(i - 1) / 2])) {
		struct bpe_cand tmp = h[i];

		h[i] = h[(i - 1) / 2];
		h[(i - 1) / 2] = tmp;
		i = (i - 1) / 2;
	}
}

static struct bpe_cand cand_pop(struct bpe_cand *h, size_t *n)
{
	struct bpe_cand top = h[0];
	size_t i = 0;

	h[0] = h[--(*n)];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < *n && cand_less(&h[l], &h[m]))
			m = l;
		if (r < *n && cand_less(&h[r], &h[m]))
			m = r;
		if (m == i)
			break;
		struct bpe_cand tmp = h[i];

		h[i] = h[m];
		h[m] = tmp;
		i = m;
	}
	return top;
}

/* symbols of a word: mapped text buf[off..off+n), source bytes
 * w[src..src+nb) */
struct bpe_sym {
	int prev, next;
	size_t off, n, src, nb;
};

static void bpe_try(const struct np_tok *t, const char *buf, char *key,
		    const struct bpe_sym *sym, int l, int r, struct bpe_cand *h,
		    size_t *hn)
{
	int32_t rank;

	if (l < 0 || r < 0)
		return;
	memcpy(key, buf + sym[l].off, sym[l].n);
	key[sym[l].n] = ' ';
	memcpy(key + sym[l].n + 1, buf + sym[r].off, sym[r].n);
	rank = npim_map_get(t->ranks, key, sym[l].n + sym[r].n + 1);
	if (rank >= 0)
		cand_push(h, hn,
			  (struct bpe_cand){rank, l, sym[l].n, sym[r].n});
}

/*
 * Rank-ordered merging, as llama.cpp's llm_tokenizer_bpe: the lowest
 * ranked adjacent pair first, the leftmost among equals; O(n log n).
 */
static int bpe_word(const struct np_tok *t, const unsigned char *w, size_t n,
		    struct tok_out *o)
{
	char *buf = malloc(n * 2 + 1), *key = malloc(n * 4 + 2);
	struct bpe_sym *sym = calloc(n, sizeof(*sym));
	struct bpe_cand *h = calloc(n * 3 + 1, sizeof(*h));
	size_t blen = 0, hn = 0;
	int ret = 0;

	if (!buf || !key || !sym || !h) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		size_t l = utf8_put(t->unicode_of_byte[w[i]], buf + blen);

		sym[i] = (struct bpe_sym){
			(int)i - 1, i + 1 < n ? (int)i + 1 : -1, blen, l, i, 1};
		blen += l;
	}
	for (size_t i = 1; i < n; i++)
		bpe_try(t, buf, key, sym, (int)i - 1, (int)i, h, &hn);
	while (hn) {
		struct bpe_cand c = cand_pop(h, &hn);
		struct bpe_sym *L = &sym[c.left], *R;

		if (L->n != c.left_n || L->next < 0)
			continue;
		R = &sym[L->next];
		if (R->n != c.right_n)
			continue;
		/* merged symbols stay contiguous in buf: extend the left */
		L->n += R->n;
		L->nb += R->nb;
		R->n = 0;
		L->next = R->next;
		if (R->next >= 0)
			sym[R->next].prev = c.left;
		bpe_try(t, buf, key, sym, L->prev, c.left, h, &hn);
		bpe_try(t, buf, key, sym, c.left, L->next, h, &hn);
	}
	for (int i = n ? 0 : -1; i >= 0; i = sym[i].next) {
		int32_t id = npim_map_get(t->ids, buf + sym[i].off, sym[i].n);

		if (id >= 0) {
			out_put(o, id);
			continue;
		}
		/* a merge whose result is not a token: its bytes */
		for (size_t j = sym[i].src; j < sym[i].src + sym[i].nb; j++)
			out_put(o, t->byte_id[w[j]]);
	}
out:
	free(buf);
	free(key);
	free(sym);
	free(h);
	return ret;
}

static int bpe_encode(const struct np_tok *t, const char *text, size_t len,
		      struct tok_out *o)
{
	const unsigned char *p = (const unsigned char *)text;

	for (size_t i = 0; i < len;) {
		size_t l = gpt2_piece(p + i, len - i);
		int ret;

		if (l == 0)
			l = 1;
		ret = bpe_word(t, p + i, l, o);
		if (ret)
			return ret;
		i += l;
	}
	return 0;
}

int np_tok_encode(const struct np_tok *t, const char *text, size_t len,
		  int32_t *ids, size_t cap, size_t *n_out)
{
	struct tok_out o = {ids, cap, 0};
	int ret = 0;

	if (len)
		ret = t->kind == NP_TOK_SPM ? spm_encode(t, text, len, &o) :
					      bpe_encode(t, text, len, &o);
	*n_out = o.n;
	if (ret)
		return ret;
	return o.n > cap ? -ENOSPC : 0;
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
				    !memcmp(s + j, spm_space, 3)) {
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

/* ---------------------------------------------------------------- */
/* Training                                                          */

struct tr_word {
	int32_t *sym;
	size_t n;
	uint32_t count;
};

struct tr {
	char **piece;
	size_t *plen;
	uint32_t np, cap;
	struct npim_map *ids;
	struct tr_word *w;
	size_t nw;
	struct npim_map *words;
};

static int32_t tr_piece(struct tr *r, const char *s, size_t n)
{
	int32_t id = npim_map_get(r->ids, s, n);

	if (id >= 0)
		return id;
	if (r->np == r->cap) {
		uint32_t cap = r->cap ? r->cap * 2 : 1024;
		char **p = realloc(r->piece, cap * sizeof(*p));
		size_t *l;

		if (!p)
			return -ENOMEM;
		r->piece = p;
		l = realloc(r->plen, cap * sizeof(*l));
		if (!l)
			return -ENOMEM;
		r->plen = l;
		r->cap = cap;
	}
	r->piece[r->np] = malloc(n + 1);
	if (!r->piece[r->np])
		return -ENOMEM;
	memcpy(r->piece[r->np], s, n);
	r->piece[r->np][n] = 0;
	r->plen[r->np] = n;
	if (npim_map_put(r->ids, s, n, (int32_t)r->np))
		return -ENOMEM;
	return (int32_t)r->np++;
}

/* Add one word made of `syms` symbol strings (byte lengths in sl) */
static int tr_add_word(struct tr *r, const char *s, size_t n, const size_t *sl,
		       size_t nsl)
{
	int32_t wi = npim_map_get(r->words, s, n);
	struct tr_word *w;
	size_t off = 0;

	if (wi >= 0) {
		r->w[wi].count++;
		return 0;
	}
	if ((r->nw & 1023) == 0) {
		struct tr_word *nwp =
			realloc(r->w, (r->nw + 1024) * sizeof(*nwp));

		if (!nwp)
			return -ENOMEM;
		r->w = nwp;
	}
	w = &r->w[r->nw];
	w->sym = malloc(nsl * sizeof(*w->sym));
	if (!w->sym)
		return -ENOMEM;
	w->n = nsl;
	w->count = 1;
	for (size_t i = 0; i < nsl; i++) {
		w->sym[i] = tr_piece(r, s + off, sl[i]);
		if (w->sym[i] < 0)
			return w->sym[i];
		off += sl[i];
	}
	if (npim_map_put(r->words, s, n, (int32_t)r->nw))
		return -ENOMEM;
	r->nw++;
	return 0;
}

struct pair_tab {
	uint64_t *key;
	int64_t *cnt;
	size_t cap;
};

static int64_t *pair_slot(struct pair_tab *p, uint64_t k)
{
	size_t i = (size_t)((k * 0x9e3779b97f4a7c15ull) >> 20) & (p->cap - 1);

	while (p->key[i] != UINT64_MAX && p->key[i] != k)
		i = (i + 1) & (p->cap - 1);
	p->key[i] = k;
	return &p->cnt[i];
}

/* Learn merges until `budget` new pieces exist or no pair is left.
 * merge_out[i] receives (left, right) of piece first_new + i. */
static int tr_learn(struct tr *r, uint32_t budget, int32_t (*merge)[2],
		    uint32_t *n_merges)
{
	struct pair_tab p;
	size_t total = 0;

	for (size_t i = 0; i < r->nw; i++)
		total += r->w[i].n;
	p.cap = 1024;
	while (p.cap < total * 2)
		p.cap *= 2;
	p.key = malloc(p.cap * sizeof(*p.key));
	p.cnt = malloc(p.cap * sizeof(*p.cnt));
	if (!p.key || !p.cnt) {
		free(p.key);
		free(p.cnt);
		return -ENOMEM;
	}
	*n_merges = 0;
	while (*n_merges < budget) {
		uint64_t best = UINT64_MAX;
		int64_t bc = 0;
		int32_t a, b, id;
		char *cat;
		size_t cl;

		memset(p.key, 0xff, p.cap * sizeof(*p.key));
		for (size_t i = 0; i < r->nw; i++)
			for (size_t j = 0; j + 1 < r->w[i].n; j++)
				*pair_slot(
					&p,
					(uint64_t)r->w[i].sym[j] << 32 |
						(uint32_t)r->w[i].sym[j + 1]) =
					0;
		for (size_t i = 0; i < r->nw; i++)
			for (size_t j = 0; j + 1 < r->w[i].n; j++)
				*pair_slot(
					&p,
					(uint64_t)r->w[i].sym[j] << 32 |
						(uint32_t)r->w[i].sym[j + 1]) +=
					r->w[i].count;
		for (size_t i = 0; i < p.cap; i++) {
			if (p.key[i] == UINT64_MAX)
				continue;
			if (p.cnt[i] > bc ||
			    (p.cnt[i] == bc && p.key[i] < best)) {
				bc = p.cnt[i];
				best = p.key[i];
			}
		}
		if (bc == 0)
			break;
		a = (int32_t)(best >> 32);
		b = (int32_t)(uint32_t)best;
		cl = r->plen[a] + r->plen[b];
		cat = malloc(cl);
		if (!cat)
			break;
		memcpy(cat, r->piece[a], r->plen[a]);
		memcpy(cat + r->plen[a], r->piece[b], r->plen[b]);
		id = tr_piece(r, cat, cl);
		free(cat);
		if (id < 0)
			break;
		merge[*n_merges][0] = a;
		merge[*n_merges][1] = b;
		(*n_merges)++;
		for (size_t i = 0; i < r->nw; i++) {
			struct tr_word *w = &r->w[i];
			size_t o = 0;

			for (size_t j = 0; j < w->n; j++) {
				if (j + 1 < w->n && w->sym[j] == a &&
				    w->sym[j + 1] == b) {
					w->sym[o++] = id;
					j++;
				} else {
					w->sym[o++] = w->sym[j];
				}
			}
			w->n = o;
		}
	}
	free(p.key);
	free(p.cnt);
	return 0;
}

static void tr_free(struct tr *r)
{
	for (uint32_t i = 0; i < r->np; i++)
		free(r->piece[i]);
	free(r->piece);
	free(r->plen);
	for (size_t i = 0; i < r->nw; i++)
		free(r->w[i].sym);
	free(r->w);
	npim_map_free(r->ids);
	npim_map_free(r->words);
}

struct tr_char {
	const char *p;
	size_t n;
	int32_t count;
};

static int tr_char_cmp(const void *a, const void *b)
{
	const struct tr_char *x = a, *y = b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	if (x->n != y->n)
		return x->n < y->n ? -1 : 1;
	return memcmp(x->p, y->p, x->n);
}

/* The `max` most frequent characters (and the space mark) as a map */
static struct npim_map *tr_allowed(const char *text, size_t len, uint32_t max)
{
	struct npim_map *cnt = npim_map_new(1024), *ok = npim_map_new(max + 1);
	struct tr_char *ch = calloc(len + 1, sizeof(*ch));
	size_t nch = 0;

	if (!cnt || !ok || !ch)
		goto fail;
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t l = npim_utf8_next((const unsigned char *)text + i,
					  len - i, &cp);
		int32_t c = npim_map_get(cnt, text + i, l);

		if (c < 0) {
			ch[nch++] = (struct tr_char){text + i, l, 0};
			c = 0;
		}
		if (npim_map_put(cnt, text + i, l, c + 1))
			goto fail;
		i += l;
	}
	for (size_t i = 0; i < nch; i++)
		ch[i].count = npim_map_get(cnt, ch[i].p, ch[i].n);
	qsort(ch, nch, sizeof(*ch), tr_char_cmp);
	for (size_t i = 0; i < nch && i < max; i++)
		if (npim_map_put(ok, ch[i].p, ch[i].n, 1))
			goto fail;
	if (npim_map_put(ok, " ", 1, 1))
		goto fail;
	npim_map_free(cnt);
	free(ch);
	return ok;
fail:
	npim_map_free(cnt);
	npim_map_free(ok);
	free(ch);
	return NULL;
}

/* Split text into training words with per-symbol byte lengths */
static int tr_words(struct tr *r, int kind, const char *text, size_t len,
		    const struct npim_map *allowed)
{
	size_t cap = len * 3 + 4, *sl = malloc(cap * sizeof(*sl));
	char *s = malloc(cap);
	int ret = 0;

	if (!s || !sl) {
		ret = -ENOMEM;
		goto out;
	}
	if (kind == NP_TOK_SPM) {
		/* "▁word" units: a word starts at each (replaced) space;
		 * characters left out of the vocabulary split words */
		size_t n = 0, ns = 0, ws = 0, wsym = 0;

		memcpy(s, spm_space, 3);
		n = 3;
		sl[ns++] = 3;
		for (size_t i = 0; i < len;) {
			uint32_t cp;
			size_t l = npim_utf8_next(
				(const unsigned char *)text + i, len - i, &cp);
			int keep = npim_map_get(allowed, text + i, l) >= 0;

			if (text[i] == ' ' || !keep) {
				if (ns > wsym)
					ret = tr_add_word(r, s + ws, n - ws,
							  sl + wsym, ns - wsym);
				if (ret)
					goto out;
				ws = n;
				wsym = ns;
				if (keep) {
					memcpy(s + n, spm_space, 3);
					n += 3;
					sl[ns++] = 3;
				}
			} else {
				memcpy(s + n, text + i, l);
				n += l;
				sl[ns++] = l;
			}
			i += l;
		}
		if (ns > wsym)
			ret = tr_add_word(r, s + ws, n - ws, sl + wsym,
					  ns - wsym);
	} else {
		uint32_t map[256];

		bpe_byte_map(map);
		for (size_t i = 0; i < len;) {
			size_t l = gpt2_piece((const unsigned char *)text + i,
					      len - i),
			       n = 0;

			for (size_t j = 0; j < l; j++) {
				sl[j] = utf8_put(
					map[(unsigned char)text[i + j]], s + n);
				n += sl[j];
			}
			ret = tr_add_word(r, s, n, sl, l);
			if (ret)
				goto out;
			i += l;
		}
	}
out:
	free(s);
	free(sl);
	return ret;
}

int np_tok_train(int kind, const char *text, size_t len, uint32_t n_vocab,
		 struct np_gguf_writer *w)
{
	uint32_t fixed = kind == NP_TOK_SPM ? 259 : 257, n_base, n_merges = 0;
	struct tr r = {0};
	struct npim_map *allowed = NULL;
	int32_t(*merge)[2] = NULL;
	char **tok = NULL;
	char **mstr = NULL;
	float *score = NULL;
	int32_t *type = NULL;
	uint32_t n = 0;
	int ret;

	if ((kind != NP_TOK_SPM && kind != NP_TOK_BPE) || n_vocab < fixed ||
	    n_vocab > (1u << 22))
		return -EINVAL;
	r.ids = npim_map_new(n_vocab);
	r.words = npim_map_new(1024);
	tok = calloc(n_vocab, sizeof(*tok));
	score = calloc(n_vocab, sizeof(*score));
	type = calloc(n_vocab, sizeof(*type));
	merge = calloc(n_vocab, sizeof(*merge));
	if (!r.ids || !r.words || !tok || !score || !type || !merge) {
		ret = -ENOMEM;
		goto out;
	}
	if (kind == NP_TOK_BPE) {
		/* the 256 byte symbols are pieces 0..255 */
		uint32_t map[256];

		bpe_byte_map(map);
		for (int b = 0; b < 256; b++) {
			char s[4];

			if (tr_piece(&r, s, utf8_put(map[b], s)) < 0) {
				ret = -ENOMEM;
				goto out;
			}
		}
	}
	if (kind == NP_TOK_SPM) {
		/* at most half of the free entries go to single characters;
		 * the rest reach the text through byte fallback */
		allowed = tr_allowed(text, len, (n_vocab - fixed) / 2);
		if (!allowed) {
			ret = -ENOMEM;
			goto out;
		}
	}
	ret = tr_words(&r, kind, text, len, allowed);
	if (ret)
		goto out;
	n_base = r.np;
	if (n_base + (fixed - (kind == NP_TOK_BPE ? 256 : 0)) > n_vocab) {
		ret = -EINVAL;
		goto out;
	}
	ret = tr_learn(&r,
		       n_vocab - fixed -
			       (kind == NP_TOK_SPM ? n_base : n_base - 256),
		       merge, &n_merges);
	if (ret)
		goto out;
	if (kind == NP_TOK_SPM) {
		static const char *const sp[3] = {"<unk>", "<s>", "</s>"};

		for (int i = 0; i < 3; i++) {
			tok[n] = strdup(sp[i]);
			type[n++] =
				i == 0 ? TOK_TYPE_UNKNOWN : TOK_TYPE_CONTROL;
		}
		for (int b = 0; b < 256; b++) {
			char s[8];

			snprintf(s, sizeof(s), "<0x%02X>", b);
			tok[n] = strdup(s);
			type[n++] = TOK_TYPE_BYTE;
		}
		for (uint32_t i = 0; i < r.np; i++) {
			tok[n] = strdup(r.piece[i]);
			type[n] = TOK_TYPE_NORMAL;
			/* merged pieces by merge order, characters last */
			score[n++] = i < n_base ? -1e6f - (float)i :
						  -(float)(i - n_base);
		}
	} else {
		for (uint32_t i = 0; i < r.np; i++) {
			tok[n] = strdup(r.piece[i]);
			type[n++] = TOK_TYPE_NORMAL;
		}
		tok[n] = strdup("<|endoftext|>");
		type[n++] = TOK_TYPE_CONTROL;
	}
	while (n < n_vocab) {
		char s[32];

		snprintf(s, sizeof(s), "<unused%u>", n);
		tok[n] = strdup(s);
		score[n] = -1e9f;
		type[n++] = TOK_TYPE_UNUSED;
	}
	for (uint32_t i = 0; i < n; i++)
		if (!tok[i]) {
			ret = -ENOMEM;
			goto out;
		}
	ret = np_gguf_writer_kv_str(w, "tokenizer.ggml.model",
				    kind == NP_TOK_SPM ? "llama" : "gpt2");
	ret = ret ? ret :
		    np_gguf_writer_kv_arr_str(w, "tokenizer.ggml.tokens",
					      (const char *const *)tok, n);
	ret = ret ? ret :
		    np_gguf_writer_kv_arr_i32(w, "tokenizer.ggml.token_type",
					      type, n);
	if (kind == NP_TOK_SPM) {
		ret = ret ? ret :
			    np_gguf_writer_kv_arr_f32(
				    w, "tokenizer.ggml.scores", score, n);
		ret = ret ? ret :
			    np_gguf_writer_kv_u32(
				    w, "tokenizer.ggml.bos_token_id", 1);
		ret = ret ? ret :
			    np_gguf_writer_kv_u32(
				    w, "tokenizer.ggml.eos_token_id", 2);
		ret = ret ? ret :
			    np_gguf_writer_kv_u32(
				    w, "tokenizer.ggml.unknown_token_id", 0);
	} else {
		mstr = calloc(n_merges ? n_merges : 1, sizeof(*mstr));
		if (!mstr) {
			ret = -ENOMEM;
			goto out;
		}
		for (uint32_t i = 0; i < n_merges; i++) {
			size_t la = r.plen[merge[i][0]],
			       lb = r.plen[merge[i][1]];

			mstr[i] = malloc(la + lb + 2);
			if (!mstr[i]) {
				ret = -ENOMEM;
				goto out;
			}
			memcpy(mstr[i], r.piece[merge[i][0]], la);
			mstr[i][la] = ' ';
			memcpy(mstr[i] + la + 1, r.piece[merge[i][1]], lb);
			mstr[i][la + lb + 1] = 0;
		}
		ret = ret ? ret :
			    np_gguf_writer_kv_arr_str(
				    w, "tokenizer.ggml.merges",
				    (const char *const *)mstr, n_merges);
		ret = ret ? ret :
			    np_gguf_writer_kv_u32(
				    w, "tokenizer.ggml.bos_token_id", r.np);
		ret = ret ? ret :
			    np_gguf_writer_kv_u32(
				    w, "tokenizer.ggml.eos_token_id", r.np);
	}
out:
	if (mstr)
		for (uint32_t i = 0; i < n_merges; i++)
			free(mstr[i]);
	free(mstr);
	if (tok)
		for (uint32_t i = 0; i < n_vocab; i++)
			free(tok[i]);
	free(tok);
	free(score);
	free(type);
	free(merge);
	tr_free(&r);
	npim_map_free(allowed);
	return ret;
}
