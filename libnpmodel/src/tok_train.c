// SPDX-License-Identifier: MIT
/*
 * Vocabulary training (np_tok_train): frequency-driven merges learnt from
 * sample text, stored as tokenizer.ggml.* metadata of either kind
 * (SentencePiece with byte fallback and scores, or GPT-2 byte-level BPE).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "npim_tok.h"

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

		memcpy(s, npim_spm_space, 3);
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
					memcpy(s + n, npim_spm_space, 3);
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
		size_t *ends, ne, i = 0;

		npim_bpe_byte_map(map);
		ret = npim_pre_split(NPIM_PRE_GPT2, text, len, &ends, &ne);
		for (size_t e = 0; !ret && e < ne; e++) {
			size_t l = ends[e] - i, n = 0;

			for (size_t j = 0; j < l; j++) {
				sl[j] = npim_utf8_put(
					map[(unsigned char)text[i + j]], s + n);
				n += sl[j];
			}
			ret = tr_add_word(r, s, n, sl, l);
			i = ends[e];
		}
		free(ends);
	}
out:
	free(s);
	free(sl);
	return ret;
}

int np_tok_train(enum np_tok_kind kind, const char *text, size_t len,
		 uint32_t n_vocab, struct np_gguf_writer *w)
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

		npim_bpe_byte_map(map);
		for (int b = 0; b < 256; b++) {
			char s[4];

			if (tr_piece(&r, s, npim_utf8_put(map[b], s)) < 0) {
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
		/* the split rule the merges were learnt under */
		ret = ret ? ret :
			    np_gguf_writer_kv_str(w, "tokenizer.ggml.pre",
						  npim_pre_name(NPIM_PRE_GPT2));
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
