// SPDX-License-Identifier: MIT
/*
 * Byte-level BPE encoding: the vocabulary's pre-tokenizer (tok_pre.c)
 * splits text into pieces, rank-driven merges turn each piece into tokens.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "npim_tok.h"

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
		    struct npim_tok_out *o)
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
		size_t l = npim_utf8_put(t->unicode_of_byte[w[i]], buf + blen);

		sym[i] = (struct bpe_sym){
			(int)i - 1, i + 1 < n ? (int)i + 1 : -1, blen, l, i, 1};
		blen += l;
	}
	/* llama.cpp's ignore_merges (Llama 3): a piece that is a token */
	if (npim_pre_ignore_merges(t->pre)) {
		int32_t id = npim_map_get(t->ids, buf, blen);

		if (id >= 0) {
			npim_tok_out_put(o, id);
			goto out;
		}
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
			npim_tok_out_put(o, id);
			continue;
		}
		/*
		 * Not a token (a byte the vocabulary lacks, or a merge whose
		 * result is not in it): each byte of its mapped text that is
		 * a token on its own, the others dropped, as llama.cpp does.
		 */
		for (size_t j = 0; j < sym[i].n; j++) {
			id = npim_map_get(t->ids, buf + sym[i].off + j, 1);
			if (id >= 0)
				npim_tok_out_put(o, id);
		}
	}
out:
	free(buf);
	free(key);
	free(sym);
	free(h);
	return ret;
}

int npim_bpe_encode(const struct np_tok *t, const char *text, size_t len,
		    struct npim_tok_out *o)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t *ends, n, a = 0;
	int ret = npim_pre_split(t->pre, text, len, &ends, &n);

	for (size_t i = 0; !ret && i < n; i++) {
		ret = bpe_word(t, p + a, ends[i] - a, o);
		a = ends[i];
	}
	free(ends);
	return ret;
}
