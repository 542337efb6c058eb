// SPDX-License-Identifier: MIT
/* Integer reference against the float reference, and the invariants the
 * emulated cards will be held to: mapping-independent numerics, isolated
 * sessions, multi-token jobs equal to single-token jobs. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"
#include "np_abi.h"
#include "npk.h"

/* GQA: 4 query heads over 2 KV heads */
static const struct np_model_shape gqa = {2,   64, 4,	 2,    128,
					  512, 64, 1e4f, 1e-5f};
/* more layers than the 3 cards it gets */
static const struct np_model_shape deep = {6,	64, 2,	  2,	64,
					   512, 64, 1e4f, 1e-5f};

#define NTOK 40

struct fx {
	char path[64];
	struct np_gguf *g;
	struct np_model *m;
	struct np_tok *tok;
	struct np_quant_calib *cal;
	int32_t ids[NTOK];
};

static void fx_open(struct fx *f, const struct np_model_shape *s, int kind)
{
	size_t len, n;
	char *text = tst_sample(&len);
	int32_t *all = malloc(len * sizeof(*all));

	snprintf(f->path, sizeof(f->path), "%s",
		 tst_write_model(s, NP_GGML_F32, kind));
	ck_assert_int_eq(np_gguf_open(f->path, &tst_log, &f->g), 0);
	ck_assert_int_eq(np_model_from_gguf(f->g, &tst_log, &f->m), 0);
	ck_assert_int_eq(np_tok_from_gguf(f->g, &tst_log, &f->tok), 0);
	ck_assert_int_eq(np_tok_encode(f->tok, text, len, all, len, &n), 0);
	ck_assert_uint_ge(n, NTOK);
	memcpy(f->ids, all, sizeof(f->ids));
	ck_assert_int_eq(np_quant_calibrate(f->m, f->ids, NTOK, &f->cal), 0);
	free(all);
	free(text);
}

static void fx_close(struct fx *f)
{
	np_quant_calib_destroy(f->cal);
	np_tok_destroy(f->tok);
	np_model_destroy(f->m);
	np_gguf_close(f->g);
	unlink(f->path);
}

/* teacher-forced comparison over the calibration text */
static void int_vs_float(struct fx *f, const struct np_compile_opts *o,
			 double *top1, double *cosine)
{
	uint32_t V = np_model_get_shape(f->m)->vocab;
	struct np_compiled *c;
	struct np_ref_int *ri;
	struct np_ref_float *rf;
	int32_t *il = malloc(V * sizeof(*il));
	float *fl = malloc(V * sizeof(*fl));
	double cs = 0, s;
	int agree = 0;

	ck_assert_int_eq(np_compile(f->m, f->cal, o, &tst_log, &c), 0);
	ck_assert_int_eq(np_ref_int_create(c, &ri), 0);
	ck_assert_int_eq(np_ref_float_create(f->m, o->max_seq, o->batch, &rf),
			 0);
	s = np_compiled_logit_scale(c);
	ck_assert_double_gt(s, 0);
	for (uint32_t i = 0; i < NTOK; i++) {
		double dot = 0, a2 = 0, b2 = 0;
		uint32_t ai = 0, af = 0;

		ck_assert_int_eq(np_ref_int_step(ri, 1, i, f->ids[i], il), 0);
		ck_assert_int_eq(np_ref_float_step(rf, 1, i, f->ids[i], fl), 0);
		for (uint32_t v = 0; v < V; v++) {
			dot += il[v] * s * fl[v];
			a2 += il[v] * s * il[v] * s;
			b2 += (double)fl[v] * fl[v];
			ai = il[v] > il[ai] ? v : ai;
			af = fl[v] > fl[af] ? v : af;
		}
		agree += ai == af;
		cs += dot / sqrt(a2 * b2 + 1e-30);
	}
	*top1 = (double)agree / NTOK;
	*cosine = cs / NTOK;
	np_ref_float_destroy(rf);
	np_ref_int_destroy(ri);
	np_compiled_destroy(c);
	free(il);
	free(fl);
}

START_TEST(test_gqa_int_vs_float)
{
	struct np_compile_opts o = {.batch = 2, .max_seq = 64};
	struct fx f;
	double top1, cosine;

	fx_open(&f, &gqa, NP_TOK_SPM);
	int_vs_float(&f, &o, &top1, &cosine);
	/* a scale off by 2x or a lost rounding step drops these sharply */
	ck_assert_msg(cosine >= 0.95, "cosine %.4f", cosine);
	ck_assert_msg(top1 >= 0.6, "top-1 %.3f", top1);
	fx_close(&f);
}
END_TEST

/*
 * The precisions against the float reference on the same model and
 * text: INT8 activations and KV cache (a8c8w4) keep the logits closer
 * than w4a4, INT8 weights as well (w8a8) closer still; INT2 weights
 * still compute a model (cosine well above noise).
 */
START_TEST(test_precision_vs_float)
{
	struct np_compile_opts o = {.batch = 2, .max_seq = 64};
	struct fx f;
	double top1[NP_PREC_COUNT], cos[NP_PREC_COUNT];

	fx_open(&f, &deep, NP_TOK_BPE);
	o.n_cards = 3;
	for (unsigned int p = 1; p < NP_PREC_COUNT; p++) {
		o.precision = p;
		int_vs_float(&f, &o, &top1[p], &cos[p]);
		if (getenv("NP_TEST_VERBOSE"))
			fprintf(stderr, "%s: cosine %.4f top-1 %.3f\n",
				np_precision_name(p), cos[p], top1[p]);
	}
	ck_assert_msg(cos[NP_PREC_A8C8W4] > cos[NP_PREC_W4A4],
		      "a8c8w4 cosine %.4f, w4a4 %.4f", cos[NP_PREC_A8C8W4],
		      cos[NP_PREC_W4A4]);
	ck_assert_msg(cos[NP_PREC_W8A8] > cos[NP_PREC_A8C8W4],
		      "w8a8 cosine %.4f, a8c8w4 %.4f", cos[NP_PREC_W8A8],
		      cos[NP_PREC_A8C8W4]);
	ck_assert_msg(cos[NP_PREC_W8A8] >= 0.98, "w8a8 cosine %.4f",
		      cos[NP_PREC_W8A8]);
	ck_assert_msg(top1[NP_PREC_W8A8] >= top1[NP_PREC_W4A4],
		      "w8a8 top-1 %.3f, w4a4 %.3f", top1[NP_PREC_W8A8],
		      top1[NP_PREC_W4A4]);
	ck_assert_msg(cos[NP_PREC_W2A8] >= 0.3, "w2a8 cosine %.4f",
		      cos[NP_PREC_W2A8]);
	fx_close(&f);
}
END_TEST

START_TEST(test_deep_int_vs_float)
{
	struct np_compile_opts o = {.n_cards = 3, .batch = 2, .max_seq = 64};
	struct fx f;
	double top1, cosine;

	fx_open(&f, &deep, NP_TOK_BPE);
	int_vs_float(&f, &o, &top1, &cosine);
	ck_assert_msg(cosine >= 0.9, "cosine %.4f", cosine);
	ck_assert_msg(top1 >= 0.5, "top-1 %.3f", top1);
	fx_close(&f);
}
END_TEST

static void run_int(struct fx *f, const struct np_compile_opts *o, int32_t *out,
		    uint32_t steps)
{
	uint32_t V = np_model_get_shape(f->m)->vocab;
	struct np_compiled *c;
	struct np_ref_int *ri;

	ck_assert_int_eq(np_compile(f->m, f->cal, o, &tst_log, &c), 0);
	ck_assert_int_eq(np_ref_int_create(c, &ri), 0);
	for (uint32_t i = 0; i < steps; i++)
		ck_assert_int_eq(np_ref_int_step(ri, 0, i, f->ids[i],
						 out + (size_t)i * V),
				 0);
	np_ref_int_destroy(ri);
	np_compiled_destroy(c);
}

START_TEST(test_mapping_invariant)
{
	/* one layer per card, all layers on one card, the output split in
	 * three: bit-identical logits */
	struct np_compile_opts a = {.batch = 1, .max_seq = 16};
	struct np_compile_opts b = {.n_cards = 2, .batch = 1, .max_seq = 16};
	struct np_compile_opts c = {
		.n_cards = 5, .out_cards = 3, .batch = 1, .max_seq = 16};
	struct fx f;
	uint32_t V = deep.vocab, steps = 12;
	int32_t *la = malloc(steps * V * 4), *lb = malloc(steps * V * 4),
		*lc = malloc(steps * V * 4);

	fx_open(&f, &deep, NP_TOK_SPM);
	run_int(&f, &a, la, steps);
	run_int(&f, &b, lb, steps);
	run_int(&f, &c, lc, steps);
	ck_assert_int_eq(memcmp(la, lb, steps * V * 4), 0);
	ck_assert_int_eq(memcmp(la, lc, steps * V * 4), 0);
	fx_close(&f);
	free(la);
	free(lb);
	free(lc);
}
END_TEST

START_TEST(test_sessions_isolated)
{
	struct np_compile_opts o = {.batch = 3, .max_seq = 16};
	struct fx f;
	struct np_compiled *c;
	struct np_ref_int *ri;
	uint32_t V = gqa.vocab;
	int32_t *alone = malloc(8 * V * 4), *mixed = malloc(V * 4);

	fx_open(&f, &gqa, NP_TOK_SPM);
	run_int(&f, &o, alone, 8);
	ck_assert_int_eq(np_compile(f.m, f.cal, &o, &tst_log, &c), 0);
	ck_assert_int_eq(np_ref_int_create(c, &ri), 0);
	for (uint32_t i = 0; i < 8; i++) {
		/* other sessions run different text in between */
		ck_assert_int_eq(
			np_ref_int_step(ri, 1, i, f.ids[39 - i], mixed), 0);
		ck_assert_int_eq(
			np_ref_int_step(ri, 2, i, f.ids[20 + i], mixed), 0);
		ck_assert_int_eq(np_ref_int_step(ri, 0, i, f.ids[i], mixed), 0);
		ck_assert_int_eq(memcmp(mixed, alone + (size_t)i * V, V * 4),
				 0);
	}
	ck_assert_int_eq(np_ref_int_step(ri, 3, 0, f.ids[0], mixed), -ERANGE);
	ck_assert_int_eq(np_ref_int_step(ri, 0, 16, f.ids[0], mixed), -ERANGE);
	ck_assert_int_eq(np_ref_int_step(ri, 0, 0, (int32_t)V, mixed), -ERANGE);
	np_ref_int_destroy(ri);
	np_compiled_destroy(c);
	fx_close(&f);
	free(alone);
	free(mixed);
}
END_TEST

/* npk_run directly: argument checks, and a two-token job equals two
 * one-token jobs */
START_TEST(test_npk_run_jobs)
{
	struct np_compile_opts o = {.n_cards = 2, .batch = 2, .max_seq = 8};
	struct fx f;
	struct np_compiled *c;
	uint8_t *s1 = calloc(1, NP_SRAM_SIZE), *s2 = calloc(1, NP_SRAM_SIZE);
	uint32_t dim = gqa.dim;
	size_t one = NPK_ARG_HDR + 8 + dim * 2,
	       two = NPK_ARG_HDR + 16 + dim * 4;
	uint8_t *a1 = calloc(1, one), *a2 = calloc(1, two);
	int16_t *o1 = malloc(dim * 4), *o2 = malloc(dim * 4),
		*x = malloc(dim * 4);
	void *scratch;
	uint32_t n;
	struct npk_tok t[2] = {{1, 0}, {1, 1}};

	fx_open(&f, &gqa, NP_TOK_SPM);
	ck_assert_int_eq(np_compile(f.m, f.cal, &o, &tst_log, &c), 0);
	ck_assert_int_eq(np_compile_card_image(c, 0, s1), 0);
	ck_assert_int_eq(np_compile_card_image(c, 0, s2), 0);
	scratch = malloc(npk_scratch_size(s1, 0));
	ck_assert_int_eq(np_compiled_embed(c, f.ids[0], x), 0);
	ck_assert_int_eq(np_compiled_embed(c, f.ids[1], x + dim), 0);
	/* two tokens, one job */
	n = 2;
	memcpy(a2, &n, 4);
	memcpy(a2 + NPK_ARG_HDR, t, sizeof(t));
	memcpy(a2 + NPK_ARG_HDR + 16, x, dim * 4);
	ck_assert_uint_eq(npk_out_size(s2, 0, 2), dim * 4);
	ck_assert_int_eq(npk_run(s2, 0, a2, two, o2, dim * 4, scratch), 0);
	/* the same tokens as two jobs */
	n = 1;
	for (int i = 0; i < 2; i++) {
		memcpy(a1, &n, 4);
		memcpy(a1 + NPK_ARG_HDR, &t[i], 8);
		memcpy(a1 + NPK_ARG_HDR + 8, x + i * dim, dim * 2);
		ck_assert_int_eq(
			npk_run(s1, 0, a1, one, o1 + i * dim, dim * 2, scratch),
			0);
	}
	ck_assert_int_eq(memcmp(o1, o2, dim * 4), 0);
	ck_assert_int_eq(memcmp(s1, s2, np_compiled_card(c, 0)->core_bytes), 0);
	/* argument errors: short arg, short out, bad slot/pos, count 0,
	 * nonzero reserved word */
	ck_assert_int_eq(npk_run(s1, 0, a1, one - 1, o1, dim * 2, scratch),
			 NP_ERR_BAD_PROGRAM);
	ck_assert_int_eq(npk_run(s1, 0, a1, 4, o1, dim * 2, scratch),
			 NP_ERR_BAD_PROGRAM);
	ck_assert_int_eq(npk_run(s1, 0, a1, one, o1, dim * 2 - 1, scratch),
			 NP_ERR_BAD_PROGRAM);
	t[0].slot = 2;
	memcpy(a1 + NPK_ARG_HDR, &t[0], 8);
	ck_assert_int_eq(npk_run(s1, 0, a1, one, o1, dim * 2, scratch),
			 NP_ERR_BAD_PROGRAM);
	t[0].slot = 0;
	t[0].pos = 8;
	memcpy(a1 + NPK_ARG_HDR, &t[0], 8);
	ck_assert_int_eq(npk_run(s1, 0, a1, one, o1, dim * 2, scratch),
			 NP_ERR_BAD_PROGRAM);
	n = 0;
	memcpy(a1, &n, 4);
	ck_assert_int_eq(npk_run(s1, 0, a1, one, o1, dim * 2, scratch),
			 NP_ERR_BAD_PROGRAM);
	n = (uint32_t)-1;
	memcpy(a1, &n, 4);
	ck_assert_int_eq(npk_run(s1, 0, a1, one, o1, dim * 2, scratch),
			 NP_ERR_BAD_PROGRAM);
	n = 1;
	memcpy(a1, &n, 4);
	memcpy(a1 + 4, &n, 4);
	ck_assert_int_eq(npk_run(s1, 0, a1, one, o1, dim * 2, scratch),
			 NP_ERR_BAD_PROGRAM);
	np_compiled_destroy(c);
	fx_close(&f);
	free(scratch);
	free(s1);
	free(s2);
	free(a1);
	free(a2);
	free(o1);
	free(o2);
	free(x);
}
END_TEST

START_TEST(test_float_ref)
{
	struct fx f;
	struct np_model *syn;
	struct np_ref_float *a, *b;
	float *la = malloc(gqa.vocab * 4), *lb = malloc(gqa.vocab * 4);

	/* an F32 file and the generator it came from give equal logits */
	fx_open(&f, &gqa, NP_TOK_SPM);
	ck_assert_int_eq(np_model_synthetic(&gqa, 7, &syn), 0);
	ck_assert_int_eq(np_ref_float_create(f.m, 8, 1, &a), 0);
	ck_assert_int_eq(np_ref_float_create(syn, 8, 1, &b), 0);
	for (uint32_t i = 0; i < 8; i++) {
		ck_assert_int_eq(np_ref_float_step(a, 0, i, f.ids[i], la), 0);
		ck_assert_int_eq(np_ref_float_step(b, 0, i, f.ids[i], lb), 0);
		ck_assert_int_eq(memcmp(la, lb, gqa.vocab * 4), 0);
	}
	ck_assert_int_eq(np_ref_float_step(a, 0, 8, 0, la), -ERANGE);
	ck_assert_int_eq(np_ref_float_step(a, 1, 0, 0, la), -ERANGE);
	ck_assert_int_eq(np_ref_float_step(a, 0, 0, -1, la), -ERANGE);
	{
		struct np_ref_float *bad = NULL;

		ck_assert_int_eq(np_ref_float_create(syn, 0, 1, &bad), -EINVAL);
		ck_assert_ptr_null(bad);
	}
	np_ref_float_destroy(a);
	np_ref_float_destroy(b);
	np_ref_float_destroy(NULL);
	np_model_destroy(syn);
	fx_close(&f);
	free(la);
	free(lb);
}
END_TEST

/* The model the build ships: loads, tokenizes, maps onto 15 cards */
START_TEST(test_demo_model)
{
	struct np_gguf *g;
	struct np_model *m;
	struct np_tok *t;
	struct np_compiled *c;
	const struct np_model_shape *s;
	size_t len, n, back_len;
	char *text = tst_sample(&len), *back = malloc(len);
	int32_t *ids = malloc(len * sizeof(*ids));

	ck_assert_int_eq(np_gguf_open(NP_DEMO_GGUF, &tst_log, &g), 0);
	ck_assert_int_eq(np_model_from_gguf(g, &tst_log, &m), 0);
	s = np_model_get_shape(m);
	ck_assert_uint_eq(s->n_layers, 14);
	ck_assert_uint_eq(s->n_heads, 8);
	ck_assert_uint_eq(s->n_kv_heads, 2);
	ck_assert_int_eq(np_tok_from_gguf(g, &tst_log, &t), 0);
	ck_assert_uint_eq(np_tok_n_vocab(t), s->vocab);
	ck_assert_int_eq(np_tok_encode(t, text, len, ids, len, &n), 0);
	ck_assert_int_eq(np_tok_decode(t, ids, n, back, len, &back_len), 0);
	ck_assert_uint_eq(back_len, len);
	ck_assert_int_eq(memcmp(back, text, len), 0);
	ck_assert_int_eq(np_compile(m, NULL, NULL, &tst_log, &c), 0);
	ck_assert_uint_eq(np_compiled_n_cards(c), 15);
	np_compiled_destroy(c);
	np_tok_destroy(t);
	np_model_destroy(m);
	np_gguf_close(g);
	free(text);
	free(back);
	free(ids);
}
END_TEST

Suite *np_suite_ref(void)
{
	Suite *s = suite_create("ref");
	TCase *tc = tcase_create("reference");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_gqa_int_vs_float);
	tcase_add_test(tc, test_deep_int_vs_float);
	tcase_add_test(tc, test_precision_vs_float);
	tcase_add_test(tc, test_mapping_invariant);
	tcase_add_test(tc, test_sessions_isolated);
	tcase_add_test(tc, test_npk_run_jobs);
	tcase_add_test(tc, test_float_ref);
	tcase_add_test(tc, test_demo_model);
	suite_add_tcase(s, tc);
	return s;
}
