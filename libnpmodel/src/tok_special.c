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

struct frags {
	struct npim_frag *f;
	size_t n, cap;
};

static int frag_put(struct frags *v, struct npim_frag x)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? 2 * v->cap : 16;
		struct npim_frag *f = realloc(v->f, cap * sizeof(*f));

		if (!f)
			return -ENOMEM;
		v->f = f;
		v->cap = cap;
	}
	v->f[v->n++] = x;
	return 0;
}

/* cut raw fragment f at every occurrence of token id into out */
static int sp_cut(const struct np_tok *t, const char *text, struct npim_frag f,
		  int32_t id, struct frags *out)
{
	const char *s = t->text[id];
	size_t l = t->len[id], end = f.off + f.len, at = f.off;
	int ret = 0;

	while (!ret && end - at >= l) {
		const char *m = memmem(text + at, end - at, s, l);
		size_t pos;

		if (!m)
			break;
		pos = (size_t)(m - text);
		if (pos > at)
			ret = frag_put(out,
				       (struct npim_frag){at, pos - at, -1});
		ret = ret ? ret : frag_put(out, (struct npim_frag){pos, l, id});
		at = pos + l;
	}
	if (!ret && at < end)
		ret = frag_put(out, (struct npim_frag){at, end - at, -1});
	return ret;
}

int npim_special_split(const struct np_tok *t, const char *text, size_t len,
		       int parse_special, struct npim_frag **frags,
		       size_t *n_out)
{
	struct frags f = {0}, g = {0};
	int ret = 0;

	*frags = NULL;
	*n_out = 0;
	if (len)
		ret = frag_put(&f, (struct npim_frag){0, len, -1});
	for (uint32_t s = 0; !ret && s < t->n_special; s++) {
		int32_t id = t->special[s];
		struct frags tmp;

		if (!parse_special && t->type[id] != TOK_TYPE_USER_DEFINED)
			continue;
		g.n = 0;
		for (size_t i = 0; !ret && i < f.n; i++)
			ret = f.f[i].id >= 0 ? frag_put(&g, f.f[i]) :
					       sp_cut(t, text, f.f[i], id, &g);
		tmp = f;
		f = g;
		g = tmp;
	}
	free(g.f);
	if (ret) {
		free(f.f);
		return ret;
	}
	*frags = f.f;
	*n_out = f.n;
	return 0;
}
