// SPDX-License-Identifier: MIT
/*
 * Model shapes: the named presets (each defined here once), the
 * Granite-3B-like default of the performance model, and the one parser of
 * shape files (data/shapes/ *.shape): "key = value" lines whose model keys
 * are the struct np_model_shape field names and whose run keys are those
 * of struct np_perf_shape.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npim.h"
#include "np/perfmodel.h"

static const struct {
	const char *name;
	const char *alias; /* an earlier spelling, still accepted */
	struct np_model_shape s;
} presets[] = {
	/* the demo model */
	{"tiny", NULL, {14, 256, 8, 2, 704, 4096, 2048, 10000.0f, 1e-5f}},
	/* the emulator's reference shape */
	{"medium", NULL, {14, 1024, 16, 4, 2816, 32000, 2048, 10000.0f, 1e-5f}},
	/* Granite-3B-like: head_dim 128, 32 query heads sharing 8 KV heads */
	{"granite-3b",
	 "granite3b",
	 {14, 4096, 32, 8, 14336, 49152, 4096, 10000000.0f, 1e-5f}},
	/* IBM Granite-3.3-8B-instruct's config.json: 40 layers, hidden
	 * 4096, intermediate 12800, 32/8 heads, vocabulary 49159, context
	 * 131072, RoPE theta 10^7, RMS epsilon 1e-5 */
	{"granite-3.3-8b",
	 NULL,
	 {40, 4096, 32, 8, 12800, 49159, 131072, 10000000.0f, 1e-5f}},
};

int np_model_shape_preset(const char *name, struct np_model_shape *out)
{
	for (size_t i = 0; i < NPIM_ARRAY_SIZE(presets); i++) {
		if (!strcmp(name, presets[i].name) ||
		    (presets[i].alias && !strcmp(name, presets[i].alias))) {
			*out = presets[i].s;
			return 0;
		}
	}
	return -ENOENT;
}

void np_perf_shape_default(struct np_perf_shape *s)
{
	*s = (struct np_perf_shape){
		.name = "granite-3b",
		.prompt = 1024,
		.generate = 1024,
		.weight_bits = 4,
		.act_bits = 4,
		.kv_bits = 4,
		.out_bits = 8,
		.requests = NP_DEFAULT_SESSIONS,
		.micro_batches = NP_DEFAULT_MICRO_BATCHES,
		.cards = NP_DEFAULT_CARDS,
		.out_cards = 2,
		.top_k = 40,
	};
	np_model_shape_preset(s->name, &s->model);
}

int np_perf_shape_preset(const char *name, struct np_perf_shape *out)
{
	if (!strcmp(name, "northpole-2024")) {
		/* Appuswamy et al., IEEE HPEC 2024: 16 cards in one 2U
		 * server, one layer per card, the output layer on 2 */
		np_perf_shape_default(out);
		return 0;
	}
	if (strcmp(name, "northpole-2025"))
		return -ENOENT;
	/*
	 * DeBole et al., arXiv:2511.15950: one of 3 Granite-3.3-8B
	 * instances on the 18-server, 288-card rack (96 cards, 6 servers
	 * of 16), A8-C8-W4, 28 users, 2048 tokens of context. At A8-C8-W4
	 * a layer's weights (99.6 MB) and KV cache (117.4 MB) do not fit
	 * one card's 192 MiB, so a layer takes two cards: attention (with
	 * its KV cache) and FFN. The prompt/generated split of the 2048
	 * tokens and M are not published: 1024 + 1024 and M 14, as 2024.
	 */
	np_perf_shape_default(out);
	snprintf(out->name, sizeof(out->name), "granite-3.3-8b");
	np_model_shape_preset("granite-3.3-8b", &out->model);
	out->act_bits = 8;
	out->kv_bits = 8;
	out->cards = 96;
	out->hosts = 6;
	out->cards_per_host = 16;
	out->cards_per_layer = 2;
	return 0;
}

/* ---------------------------------------------------------------- */
/* Shape files                                                       */

enum shape_kind {
	SHAPE_MODEL_U32, /* offset into struct np_model_shape */
	SHAPE_MODEL_F32,
	SHAPE_RUN_U32, /* offset into struct np_perf_shape */
};

static const struct {
	const char *key;
	enum shape_kind kind;
	size_t off;
} shape_keys[] = {
#define M(f, k)                                           \
	{                                                 \
#f, k, offsetof(struct np_model_shape, f) \
	}
#define R(f)                                                         \
	{                                                            \
#f, SHAPE_RUN_U32, offsetof(struct np_perf_shape, f) \
	}
	M(n_layers, SHAPE_MODEL_U32),
	M(dim, SHAPE_MODEL_U32),
	M(n_heads, SHAPE_MODEL_U32),
	M(n_kv_heads, SHAPE_MODEL_U32),
	M(ffn, SHAPE_MODEL_U32),
	M(vocab, SHAPE_MODEL_U32),
	M(ctx, SHAPE_MODEL_U32),
	M(rope_base, SHAPE_MODEL_F32),
	M(norm_eps, SHAPE_MODEL_F32),
	R(prompt),
	R(generate),
	R(weight_bits),
	R(act_bits),
	R(kv_bits),
	R(out_bits),
	R(requests),
	R(micro_batches),
	R(cards),
	R(out_cards),
	R(top_k),
	R(hosts),
	R(cards_per_host),
	R(cards_per_layer),
	R(route_host),
#undef M
#undef R
};

/* The keys before they were the struct np_model_shape field names */
static const struct {
	const char *alias, *key;
} shape_aliases[] = {
	{"layers", "n_layers"},
	{"heads", "n_heads"},
	{"kv_heads", "n_kv_heads"},
};

static void shape_err(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void shape_err(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

static char *shape_trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = 0;
	return s;
}

static int shape_unknown(const char *key, unsigned int no, char *err,
			 size_t errlen)
{
	char keys[768];
	size_t n = (size_t)snprintf(keys, sizeof(keys), "name");

	for (size_t i = 0; i < NPIM_ARRAY_SIZE(shape_keys) && n < sizeof(keys);
	     i++)
		n += (size_t)snprintf(keys + n, sizeof(keys) - n, ", %s",
				      shape_keys[i].key);
	shape_err(err, errlen,
		  "line %u: unknown key \"%s\"; the keys are %s, precision", no,
		  key, keys);
	return -EINVAL;
}

/* One line into m (and p, the run, when not NULL: else the name and the
 * run keys are read and dropped) */
static int shape_line(char *line, unsigned int no, struct np_model_shape *m,
		      struct np_perf_shape *p, char *err, size_t errlen)
{
	char *eq, *key, *val, *end;
	size_t i;

	line[strcspn(line, "#")] = 0;
	key = shape_trim(line);
	if (!*key)
		return 0;
	eq = strchr(key, '=');
	if (!eq) {
		shape_err(err, errlen,
			  "line %u: \"%s\" is not key = value; write e.g. "
			  "\"dim = 4096\"",
			  no, key);
		return -EINVAL;
	}
	*eq = 0;
	key = shape_trim(key);
	val = shape_trim(eq + 1);
	if (!strcmp(key, "name")) {
		if (strlen(val) >= sizeof(p->name) || !*val) {
			shape_err(err, errlen,
				  "line %u: name \"%s\" must be 1 to %zu "
				  "characters",
				  no, val, sizeof(p->name) - 1);
			return -EINVAL;
		}
		if (p)
			strcpy(p->name, val);
		return 0;
	}
	if (!strcmp(key, "precision")) {
		/* np/model.h enum np_precision: bits of weights, activations
		 * and KV cache (docs/numerics.md) */
		static const uint32_t bits[NP_PREC_COUNT][3] = {
			[NP_PREC_W4A4] = {4, 4, 4},
			[NP_PREC_A8C8W4] = {4, 8, 8},
			[NP_PREC_W8A8] = {8, 8, 8},
			[NP_PREC_W2A8] = {2, 8, 8},
		};
		enum np_precision pr;

		if (np_precision_parse(val, &pr) || pr == NP_PREC_DEFAULT) {
			shape_err(err, errlen,
				  "line %u: precision \"%s\" is not one of "
				  "w4a4, a8c8w4, w8a8, w2a8",
				  no, val);
			return -EINVAL;
		}
		if (p) {
			p->weight_bits = bits[pr][0];
			p->act_bits = bits[pr][1];
			p->kv_bits = bits[pr][2];
		}
		return 0;
	}
	for (i = 0; i < NPIM_ARRAY_SIZE(shape_aliases); i++)
		if (!strcmp(key, shape_aliases[i].alias))
			key = (char *)shape_aliases[i].key;
	for (i = 0; i < NPIM_ARRAY_SIZE(shape_keys); i++)
		if (!strcmp(key, shape_keys[i].key))
			break;
	if (i == NPIM_ARRAY_SIZE(shape_keys))
		return shape_unknown(key, no, err, errlen);
	errno = 0;
	if (shape_keys[i].kind == SHAPE_MODEL_F32) {
		float f = strtof(val, &end);

		if (!*val || *end || errno || !isfinite(f)) {
			shape_err(err, errlen,
				  "line %u: %s = \"%s\" is not a finite "
				  "number",
				  no, key, val);
			return -EINVAL;
		}
		memcpy((char *)m + shape_keys[i].off, &f, sizeof(f));
	} else {
		unsigned long long v = strtoull(val, &end, 10);
		uint32_t u = (uint32_t)v;

		if (!*val || *end || errno || v > UINT32_MAX || *val == '-') {
			shape_err(err, errlen,
				  "line %u: %s = \"%s\" is not a number from "
				  "0 to %u",
				  no, key, val, UINT32_MAX);
			return -EINVAL;
		}
		if (shape_keys[i].kind == SHAPE_MODEL_U32)
			memcpy((char *)m + shape_keys[i].off, &u, sizeof(u));
		else if (p)
			memcpy((char *)p + shape_keys[i].off, &u, sizeof(u));
	}
	return 0;
}

static int shape_parse(const char *text, size_t len, struct np_model_shape *m,
		       struct np_perf_shape *p, char *err, size_t errlen)
{
	char *buf = malloc(len + 1), *line, *save = NULL;
	unsigned int no = 0;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	memcpy(buf, text, len);
	buf[len] = 0;
	if (memchr(buf, 0, len)) {
		shape_err(err, errlen, "a shape file is text: NUL byte at %zu",
			  (size_t)((char *)memchr(buf, 0, len) - buf));
		free(buf);
		return -EINVAL;
	}
	/* strtok_r would skip empty lines and miscount */
	for (line = buf; line && !ret; line = save) {
		save = strchr(line, '\n');
		if (save)
			*save++ = 0;
		ret = shape_line(line, ++no, m, p, err, errlen);
	}
	free(buf);
	return ret;
}

int np_model_shape_parse(const char *text, size_t len,
			 struct np_model_shape *out, char *err, size_t errlen)
{
	return shape_parse(text, len, out, NULL, err, errlen);
}

int np_perf_shape_parse(const char *text, size_t len, struct np_perf_shape *out,
			char *err, size_t errlen)
{
	return shape_parse(text, len, &out->model, out, err, errlen);
}
