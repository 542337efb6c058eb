// SPDX-License-Identifier: MIT
/*
 * Special and user-defined tokens in text, before the encoders see it
 * (llama.cpp's tokenizer_st_partition): each such token, longest first,
 * cuts every stretch of raw text left at each of its occurrences, leftmost
 * first. User-defined tokens (type 4) are always cut out; control and
 * unknown tokens only when the caller asks for special-token parsing.
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "npim_tok.h"

struct sp_key {
	size_t len;
	int32_t id;
};

static int sp_cmp(const void *a, const void *b)
{
	const struct sp_key *x = a, *y = b;

	if (x->len != y->len)
		return x->len > y->len ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

int npim_special_init(struct np_tok *t)
{
	struct sp_key *k;
	uint32_t n = 0;

	for (uint32_t i = 0; i < t->n; i++)
		n += t->len[i] && (t->type[i] == TOK_TYPE_CONTROL ||
				   t->type[i] == TOK_TYPE_USER_DEFINED ||
				   t->type[i] == TOK_TYPE_UNKNOWN);
	if (!n)
		return 0;
	k = malloc(n * sizeof(*k));
	t->special = malloc(n * sizeof(*t->special));
	if (!k || !t->special) {
		free(k);
		return -ENOMEM;
	}
	n = 0;
	for (uint32_t i = 0; i < t->n; i++)
		if (t->len[i] && (t->type[i] == TOK_TYPE_CONTROL ||
				  t->type[i] == TOK_TYPE_USER_DEFINED ||
				  t->type[i] == TOK_TYPE_UNKNOWN))
			k[n++] = (struct sp_key){t->len[i], (int32_t)i};
	qsort(k, n, sizeof(*k), sp_cmp);
	for (uint32_t i = 0; i < n; i++)
		t->special[i] = k[i].id;
	t->n_special = n;
	free(k);
	return 0;
}

/* cut raw fragment f at every occurrence of token id into out */
static size_t sp_cut(const struct np_tok *t, const char *text,
		     struct npim_frag f, int32_t id, struct npim_frag *out,
		     size_t k)
{
	const char *s = t->text[id];
	size_t l = t->len[id], end = f.off + f.len, at = f.off;

	while (end - at >= l) {
		const char *m = memmem(text + at, end - at, s, l);
		size_t pos;

		if (!m)
			break;
		pos = (size_t)(m - text);
		if (pos > at)
			out[k++] = (struct npim_frag){at, pos - at, -1};
		out[k++] = (struct npim_frag){pos, l, id};
		at = pos + l;
	}
	if (at < end)
		out[k++] = (struct npim_frag){at, end - at, -1};
	return k;
}

int npim_special_split(const struct np_tok *t, const char *text, size_t len,
		       int parse_special, struct npim_frag **frags,
		       size_t *n_out)
{
	/* every cut adds at most two fragments and takes a byte */
	size_t cap = 2 * len + 1, n = 0;
	struct npim_frag *f = malloc(cap * sizeof(*f)),
			 *g = malloc(cap * sizeof(*g));

	*frags = NULL;
	*n_out = 0;
	if (!f || !g) {
		free(f);
		free(g);
		return -ENOMEM;
	}
	if (len)
		f[n++] = (struct npim_frag){0, len, -1};
	for (uint32_t s = 0; s < t->n_special; s++) {
		int32_t id = t->special[s];
		size_t k = 0;
		struct npim_frag *tmp;

		if (!parse_special && t->type[id] != TOK_TYPE_USER_DEFINED)
			continue;
		for (size_t i = 0; i < n; i++)
			if (f[i].id >= 0)
				g[k++] = f[i];
			else
				k = sp_cut(t, text, f[i], id, g, k);
		tmp = f;
		f = g;
		g = tmp;
		n = k;
	}
	free(g);
	*frags = f;
	*n_out = n;
	return 0;
}
