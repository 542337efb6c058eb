// SPDX-License-Identifier: MIT
/*
 * SentencePiece-style encoding: score-driven merges of adjacent pieces
 * (a max-heap of bigrams, as llama.cpp's llm_tokenizer_spm), byte
 * fallback for what the vocabulary lacks.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "npim_tok.h"

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

int npim_spm_encode(const struct np_tok *t, const char *text, size_t len,
		    int space_prefix, struct npim_tok_out *o)
{
	size_t cap = len * 3 + 3, n = 0, nsym = 0, hn = 0;
	char *s = malloc(cap);
	struct spm_sym *sym = NULL;
	struct spm_bigram *h = NULL;
	int ret = 0;

	if (!s)
		return -ENOMEM;
	if (space_prefix) {
		memcpy(s, npim_spm_space, 3);
		n = 3;
	}
	for (size_t i = 0; i < len; i++) {
		if (text[i] == ' ') {
			memcpy(s + n, npim_spm_space, 3);
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
			npim_tok_out_put(o, id);
		else if ((ret = npim_tok_out_bytes(t, o, s + sym[i].off,
						   sym[i].n)))
			break;
	}
out:
	free(s);
	free(sym);
	free(h);
	return ret;
}
