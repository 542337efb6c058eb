// SPDX-License-Identifier: MIT
/*
 * The committed demo model (data/models/np-demo.gguf, trained in PyTorch
 * by scripts/train-demo.sh): it loads, its tokenizer round-trips text,
 * and np's float reference continues the recorded prompts greedily with
 * the ids PyTorch chose (np-demo.greedy, written by the training script).
 * Also np_model_from_floats, through which its weights came in.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

#define DEMO_GGUF NP_DEMO_MODEL_DIR "/np-demo.gguf"
#define DEMO_GREEDY NP_DEMO_MODEL_DIR "/np-demo.greedy"
#define DEMO_HELDOUT NP_DEMO_MODEL_DIR "/heldout.txt"
/* tokens of each recorded continuation np must reproduce */
#define DEMO_MATCH 16
#define DEMO_MAX_IDS 256

struct demo {
	struct np_gguf *g;
	struct np_model *m;
	struct np_tok *tok;
};

static void demo_open(struct demo *d)
{
	ck_assert_int_eq(np_gguf_open(DEMO_GGUF, &tst_log, &d->g), 0);
	ck_assert_int_eq(np_model_from_gguf(d->g, &tst_log, &d->m), 0);
	ck_assert_int_eq(np_tok_from_gguf(d->g, &tst_log, &d->tok), 0);
}

static void demo_close(struct demo *d)
{
	np_tok_destroy(d->tok);
	np_model_destroy(d->m);
	np_gguf_close(d->g);
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;

	ck_assert_msg(f, "cannot open %s", path);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	*len = (size_t)ftell(f);
	rewind(f);
	buf = malloc(*len + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, *len, f), *len);
	buf[*len] = 0;
	fclose(f);
	return buf;
}

/* Encode and decode back: the same bytes */
static void round_trip(const struct np_tok *tok, const char *text, size_t len)
{
	size_t cap = len + 16, n = 0, back_len = 0;
	int32_t *ids = malloc(cap * sizeof(*ids));
	char *back = malloc(4 * len + 16);

	ck_assert_ptr_nonnull(ids);
	ck_assert_ptr_nonnull(back);
	ck_assert_int_eq(np_tok_encode(tok, text, len, ids, cap, &n), 0);
	ck_assert_uint_gt(n, 0);
	ck_assert_uint_lt(n, len); /* a trained vocabulary: fewer than bytes */
	ck_assert_int_eq(
		np_tok_decode(tok, ids, n, back, 4 * len + 16, &back_len), 0);
	ck_assert_uint_eq(back_len, len);
	ck_assert_int_eq(memcmp(back, text, len), 0);
	free(back);
	free(ids);
}

START_TEST(test_demo_loads)
{
	struct demo d = {0};
	const struct np_model_shape *s;
	size_t len;
	char *text;

	demo_open(&d);
	s = np_model_get_shape(d.m);
	ck_assert_int_eq(np_tok_kind(d.tok), NP_TOK_SPM);
	ck_assert_uint_eq(np_tok_n_vocab(d.tok), s->vocab);
	ck_assert_int_ge(np_tok_bos(d.tok), 0);
	/* the held-out text (English, German, French, Spanish) and the
	 * shipped sample (more scripts) */
	text = read_all(DEMO_HELDOUT, &len);
	round_trip(d.tok, text, len);
	free(text);
	text = tst_sample(&len);
	round_trip(d.tok, text, len);
	free(text);
	demo_close(&d);
}
END_TEST

/* "key v1 v2 ..." -> ids; returns the count */
static size_t parse_ids(const char *line, const char *key, int32_t *ids)
{
	size_t n = 0, kl = strlen(key);
	const char *p = line + kl;
	char *end;

	ck_assert_msg(!strncmp(line, key, kl) && line[kl] == ' ',
		      "np-demo.greedy: expected '%s', found '%.40s'", key,
		      line);
	for (;;) {
		long v = strtol(p, &end, 10);

		if (end == p)
			break;
		ck_assert_uint_lt(n, DEMO_MAX_IDS);
		ids[n++] = (int32_t)v;
		p = end;
	}
	return n;
}

/* The float reference's greedy continuation of prompt (n ids), k ids */
static void ref_greedy(const struct np_model *m, const int32_t *prompt,
		       size_t n, int32_t *out, size_t k)
{
	uint32_t V = np_model_get_shape(m)->vocab;
	struct np_ref_float *r = NULL;
	float *logits = malloc(V * sizeof(float));
	int32_t tok = prompt[0];

	ck_assert_ptr_nonnull(logits);
	ck_assert_int_eq(np_ref_float_create(m, (uint32_t)(n + k), 1, &r), 0);
	for (size_t pos = 0; pos + 1 < n + k; pos++) {
		uint32_t best = 0;

		ck_assert_int_eq(
			np_ref_float_step(r, 0, (uint32_t)pos, tok, logits), 0);
		if (pos + 1 < n) {
			tok = prompt[pos + 1];
			continue;
		}
		for (uint32_t v = 1; v < V; v++)
			if (logits[v] > logits[best])
				best = v;
		out[pos + 1 - n] = tok = (int32_t)best;
	}
	np_ref_float_destroy(r);
	free(logits);
}

START_TEST(test_demo_greedy)
{
	struct demo d = {0};
	size_t len, n_prompts = 0;
	char *text = read_all(DEMO_GREEDY, &len), *save = NULL, *line;
	const char *prompt = NULL;
	int32_t pids[DEMO_MAX_IDS], want[DEMO_MAX_IDS], got[DEMO_MAX_IDS];
	int32_t enc[DEMO_MAX_IDS];
	size_t np = 0, nw, ne;

	demo_open(&d);
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#')
			continue;
		if (!strncmp(line, "prompt ", 7)) {
			prompt = line + 7;
			continue;
		}
		if (!strncmp(line, "prompt_ids ", 11)) {
			np = parse_ids(line, "prompt_ids", pids);
			continue;
		}
		nw = parse_ids(line, "ids", want);
		ck_assert_msg(prompt && np > 0, "np-demo.greedy: ids before "
						"prompt and prompt_ids");
		ck_assert_uint_ge(nw, DEMO_MATCH);
		/* np's tokenizer gives the prompt ids PyTorch was fed */
		enc[0] = np_tok_bos(d.tok);
		ck_assert_int_eq(np_tok_encode(d.tok, prompt, strlen(prompt),
					       enc + 1, DEMO_MAX_IDS - 1, &ne),
				 0);
		ck_assert_uint_eq(ne + 1, np);
		ck_assert_int_eq(memcmp(enc, pids, np * sizeof(*pids)), 0);
		ref_greedy(d.m, pids, np, got, DEMO_MATCH);
		for (size_t i = 0; i < DEMO_MATCH; i++)
			ck_assert_msg(got[i] == want[i],
				      "'%s': token %zu is %d in np's float "
				      "reference, %d in PyTorch",
				      prompt, i, got[i], want[i]);
		n_prompts++;
		prompt = NULL;
		np = 0;
	}
	ck_assert_uint_ge(n_prompts, 3);
	free(text);
	demo_close(&d);
}
END_TEST

/* A model's floats, in np_model_from_floats' order */
static float *model_floats(const struct np_model *m, size_t *n)
{
	const struct np_model_shape *s = np_model_get_shape(m);
	float *w = malloc(np_model_n_floats(s) * sizeof(float)), *p = w;

	ck_assert_ptr_nonnull(w);
	for (int k = -1; k <= (int)s->n_layers; k++) {
		int first = k < 0 || k == (int)s->n_layers ? NP_T_TOK_EMBD : 0;
		int last = k < 0		 ? NP_T_TOK_EMBD :
			   k == (int)s->n_layers ? NP_T_OUTPUT :
						   NP_T_DOWN;

		for (int t = first; t <= last; t++) {
			uint32_t rows, cols;

			if (k == (int)s->n_layers && t == NP_T_TOK_EMBD)
				continue;
			np_model_dims(m, t, &rows, &cols);
			for (uint32_t r = 0; r < rows; r++, p += cols)
				ck_assert_int_eq(
					np_model_row(m, t, k < 0 ? 0 : k, r, p),
					0);
		}
	}
	*n = (size_t)(p - w);
	return w;
}

START_TEST(test_from_floats)
{
	struct np_model_shape s = {.n_layers = 2,
				   .dim = 64,
				   .n_heads = 4,
				   .n_kv_heads = 2,
				   .ffn = 96,
				   .vocab = 300,
				   .ctx = 128,
				   .rope_base = 10000.0f,
				   .norm_eps = 1e-5f};
	struct np_model *syn = NULL, *m = NULL, *bad = NULL;
	float a[96], b[96];
	size_t n;
	float *w;

	ck_assert_int_eq(np_model_synthetic(&s, 7, &syn), 0);
	w = model_floats(syn, &n);
	ck_assert_uint_eq(n, np_model_n_floats(&s));
	ck_assert_int_eq(np_model_from_floats("llama", &s, w, n, &tst_log, &m),
			 0);
	for (int t = 0; t < NP_T_COUNT; t++) {
		uint32_t rows, cols;

		np_model_dims(m, t, &rows, &cols);
		for (uint32_t l = 0; l < s.n_layers; l++)
			for (uint32_t r = 0; r < rows; r++) {
				ck_assert_int_eq(np_model_row(syn, t, l, r, a),
						 0);
				ck_assert_int_eq(np_model_row(m, t, l, r, b),
						 0);
				ck_assert_int_eq(memcmp(a, b, cols * 4), 0);
			}
	}
	/* one float short: refused with both counts */
	tst_reset();
	ck_assert_int_eq(
		np_model_from_floats("llama", &s, w, n - 1, &tst_log, &bad),
		-EINVAL);
	ck_assert_ptr_null(bad);
	ck_assert_ptr_nonnull(strstr(tst_last, "weights given"));
	ck_assert_int_eq(
		np_model_from_floats("qwen2", &s, w, n, &tst_log, &bad),
		-ENOTSUP);
	ck_assert_int_eq(
		np_model_from_floats("nosuch", &s, w, n, &tst_log, &bad),
		-EINVAL);
	s.dim = 65; /* not a shape */
	ck_assert_uint_eq(np_model_n_floats(&s), 0);
	np_model_destroy(m);
	np_model_destroy(syn);
	free(w);
}
END_TEST

Suite *np_suite_demo(void)
{
	Suite *s = suite_create("demo");
	TCase *tc = tcase_create("demo");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_demo_loads);
	tcase_add_test(tc, test_demo_greedy);
	tcase_add_test(tc, test_from_floats);
	suite_add_tcase(s, tc);
	return s;
}
