// SPDX-License-Identifier: MIT
/* Layer-to-card mapping, SRAM budget, the not-fits message and the
 * program blocks of rendered card images. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"
#include "np_abi.h"
#include "npk.h"

static const struct np_model_shape granite = {14,    4096, 32,	 8,    14336,
					      49152, 4096, 1e7f, 1e-5f};
/* GQA: 8 query heads share 2 KV heads */
static const struct np_model_shape tiny = {14,	 256,  8,	 2,    704,
					   4096, 2048, 10000.0f, 1e-5f};
static const struct np_model_shape deep = {20,	128, 4,	       4,    256,
					   512, 256, 10000.0f, 1e-5f};

static struct np_compiled *plan(const struct np_model_shape *s,
				const struct np_compile_opts *o,
				struct np_model **m)
{
	struct np_compiled *c = NULL;

	ck_assert_int_eq(np_model_synthetic(s, 1, m), 0);
	tst_reset();
	ck_assert_int_eq(np_compile(*m, NULL, o, &tst_log, &c), 0);
	return c;
}

/* layers appear once each, in order, on consecutive cards; then the
 * output rows, split without gaps */
static void check_mapping(const struct np_compiled *c,
			  const struct np_model_shape *s, uint32_t max_per_card)
{
	uint32_t next_layer = 0, next_row = 0, n = np_compiled_n_cards(c);

	for (uint32_t i = 0; i < n; i++) {
		const struct np_card_plan *p = np_compiled_card(c, i);

		ck_assert_uint_le(p->core_bytes, NP_CORE_SRAM_SIZE);
		if (p->kind == NP_CARD_LAYERS) {
			ck_assert_uint_eq(next_row, 0);
			ck_assert_uint_eq(p->first_layer, next_layer);
			ck_assert_uint_ge(p->n_layers, 1);
			ck_assert_uint_le(p->n_layers, max_per_card);
			next_layer += p->n_layers;
		} else {
			ck_assert_int_eq(p->kind, NP_CARD_OUTPUT);
			ck_assert_uint_eq(p->vocab_begin, next_row);
			ck_assert_uint_gt(p->vocab_end, p->vocab_begin);
			next_row = p->vocab_end;
		}
	}
	ck_assert_uint_eq(next_layer, s->n_layers);
	ck_assert_uint_eq(next_row, s->vocab);
	ck_assert_ptr_null(np_compiled_card(c, n));
}

/* the 2024 design point: w4a4 (test_kv_budget: the A8 precisions) */
START_TEST(test_granite_design_point)
{
	const struct np_compile_opts o = {.precision = NP_PREC_W4A4};
	struct np_model *m;
	struct np_compiled *c = plan(&granite, &o, &m);
	char desc[4096];

	/* 14 layer cards + 2 output cards, one layer each, N=28 x 2048 */
	ck_assert_uint_eq(np_compiled_n_cards(c), 16);
	check_mapping(c, &granite, 1);
	for (uint32_t i = 0; i < 14; i++)
		ck_assert_int_eq(np_compiled_card(c, i)->kind, NP_CARD_LAYERS);
	ck_assert_uint_eq(np_compiled_card(c, 14)->vocab_end, 24576);
	/* INT4 weights of a layer: 218M parameters, 104 MiB */
	ck_assert_uint_ge(np_compiled_card(c, 0)->weight_bytes,
			  218103808ull / 2);
	/* INT4 KV: 28 x 8 heads x 2048 x 128 x 2 / 2 bytes */
	ck_assert_uint_eq(np_compiled_card(c, 0)->kv_bytes,
			  28ull * 8 * 2048 * 128);
	np_compiled_describe(c, desc, sizeof(desc));
	ck_assert_ptr_nonnull(
		strstr(desc, "card 15: output rows 24576..49151"));
	np_compiled_destroy(c);
	np_model_destroy(m);
}
END_TEST

START_TEST(test_gqa_one_layer_per_card)
{
	struct np_model *m;
	struct np_compiled *c = plan(&tiny, NULL, &m);

	/* 16 cards, the output fits one: 14 layer cards, 1 output card */
	ck_assert_uint_eq(np_compiled_n_cards(c), 15);
	check_mapping(c, &tiny, 1);
	/* KV cache of 2 KV heads (not 8), INT8 at the default a8c8w4:
	 * 28 x 2 x 2048 x 32 x 2 bytes */
	ck_assert_uint_eq(np_compiled_card(c, 0)->kv_bytes,
			  28ull * 2 * 2048 * 32 * 2);
	np_compiled_destroy(c);
	np_model_destroy(m);
}
END_TEST

START_TEST(test_more_layers_than_cards)
{
	struct np_compile_opts o = {.n_cards = 4, .batch = 2, .max_seq = 64};
	struct np_model *m;
	struct np_compiled *c = plan(&deep, &o, &m);

	/* 20 layers over 3 layer cards: 7, 7, 6; 1 output card */
	ck_assert_uint_eq(np_compiled_n_cards(c), 4);
	check_mapping(c, &deep, 7);
	ck_assert_uint_eq(np_compiled_card(c, 0)->n_layers, 7);
	ck_assert_uint_eq(np_compiled_card(c, 2)->n_layers, 6);
	np_compiled_destroy(c);
	np_model_destroy(m);
}
END_TEST

START_TEST(test_output_split)
{
	struct np_compile_opts o = {.out_cards = 3, .batch = 1, .max_seq = 16};
	struct np_model *m;
	struct np_compiled *c = plan(&tiny, &o, &m);

	ck_assert_uint_eq(np_compiled_n_cards(c), 16);
	check_mapping(c, &tiny, 2);
	/* 14 layers on 13 cards: the first card takes two */
	ck_assert_uint_eq(np_compiled_card(c, 0)->n_layers, 2);
	ck_assert_uint_eq(np_compiled_card(c, 1)->n_layers, 1);
	ck_assert_int_eq(np_compiled_card(c, 13)->kind, NP_CARD_OUTPUT);
	ck_assert_int_eq(np_compiled_card(c, 15)->kind, NP_CARD_OUTPUT);
	ck_assert_uint_eq(np_compiled_card(c, 15)->vocab_end -
				  np_compiled_card(c, 15)->vocab_begin,
			  1365);
	np_compiled_destroy(c);
	np_model_destroy(m);
}
END_TEST

START_TEST(test_does_not_fit)
{
	struct np_model *m;
	struct np_compiled *c = NULL;
	struct np_compile_opts few = {.n_cards = 8, .precision = NP_PREC_W4A4};
	struct np_compile_opts big = {
		.batch = 64, .max_seq = 2048, .precision = NP_PREC_W4A4};

	ck_assert_int_eq(np_model_synthetic(&granite, 1, &m), 0);
	tst_reset();
	ck_assert_int_eq(np_compile(m, NULL, &few, &tst_log, &c), -E2BIG);
	ck_assert_ptr_null(c);
	ck_assert_ptr_nonnull(strstr(tst_last, "does not fit 8 cards"));
	ck_assert_ptr_nonnull(strstr(
		tst_last, "budget per card 192 MiB = 256 cores x 768 KiB"));
	ck_assert_ptr_nonnull(strstr(tst_last, "1 layer(s) fit a card"));
	ck_assert_ptr_nonnull(strstr(tst_last, "needs 2 card(s)"));
	ck_assert_ptr_nonnull(strstr(tst_last, "would fit"));
	/* 64 sessions: the KV cache alone overflows a card */
	tst_reset();
	ck_assert_int_eq(np_compile(m, NULL, &big, &tst_log, &c), -E2BIG);
	ck_assert_ptr_nonnull(strstr(tst_last, "0 layer(s) fit a card"));
	ck_assert_ptr_nonnull(strstr(tst_last, "64 sessions x 2048 tokens"));
	ck_assert_ptr_nonnull(
		strstr(tst_last, "would fit: 32 sessions of 2048 tokens"));
	np_model_destroy(m);
}
END_TEST

/*
 * The INT8 KV cache of the A8 precisions is twice w4a4's: the 3B design
 * point (one layer per card at w4a4, 28 sessions x 2048 tokens) no longer
 * fits. Left to the default, the context shrinks until it does, and the
 * log names the sizes; asked for explicitly, the compile fails.
 */
START_TEST(test_kv_budget)
{
	struct np_compile_opts o = {.precision = NP_PREC_A8C8W4};
	struct np_model *m;
	struct np_compiled *c = NULL;
	char buf[4096];
	unsigned int seq = 0;
	const char *p;

	ck_assert_int_eq(np_model_synthetic(&granite, 1, &m), 0);
	tst_reset();
	ck_assert_int_eq(np_compile(m, NULL, &o, &tst_log, &c), 0);
	ck_assert_ptr_nonnull(strstr(tst_last, "at a8c8w4 the model does not "
					       "fit"));
	ck_assert_ptr_nonnull(strstr(tst_last, "28 sessions x 2048 tokens"));
	ck_assert_ptr_nonnull(strstr(tst_last, "KV cache"));
	ck_assert_ptr_nonnull(strstr(tst_last, "at INT8"));
	p = strstr(tst_last, "compiled for 28 sessions x ");
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(sscanf(p, "compiled for 28 sessions x %u", &seq), 1);
	ck_assert_uint_lt(seq, 2048);
	ck_assert_uint_ge(seq, 1024);
	ck_assert_uint_eq(seq % 16, 0);
	check_mapping(c, &granite, 1);
	np_compiled_describe(c, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "precision a8c8w4"));
	snprintf(buf + 2048, 64, "28 sessions x %u tokens", seq);
	ck_assert_ptr_nonnull(strstr(buf, buf + 2048));
	np_compiled_destroy(c);
	/* 16 tokens more than that do not fit: the largest that does */
	o.max_seq = seq + 16;
	tst_reset();
	ck_assert_int_eq(np_compile(m, NULL, &o, &tst_log, &c), -E2BIG);
	ck_assert_ptr_nonnull(strstr(tst_last, "at a8c8w4"));
	ck_assert_ptr_nonnull(strstr(tst_last, "at INT8"));
	/* an explicit context: a unit (one session's KV head) of 2048
	 * tokens is 512 KiB of a core at INT8, so fewer sessions cannot
	 * help either; the message names the context that fits */
	tst_reset();
	o.batch = 0;
	o.max_seq = 2048;
	ck_assert_int_eq(np_compile(m, NULL, &o, &tst_log, &c), -E2BIG);
	snprintf(buf, 64, "would fit: 28 sessions of %u tokens", seq);
	ck_assert_ptr_nonnull(strstr(tst_last, buf));
	/* w4a4 still fits the design point as it is */
	o = (struct np_compile_opts){.precision = NP_PREC_W4A4};
	ck_assert_int_eq(np_compile(m, NULL, &o, &tst_log, &c), 0);
	np_compiled_describe(c, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "28 sessions x 2048 tokens"));
	ck_assert_ptr_nonnull(strstr(buf, "precision w4a4"));
	np_compiled_destroy(c);
	np_model_destroy(m);
}
END_TEST

/* np_precision_layers: the per-layer override's syntax */
START_TEST(test_layer_precision_spec)
{
	uint8_t p[8];
	char err[160];

	ck_assert_int_eq(
		np_precision_layers(NULL, 8, NP_PREC_W4A4, p, err, sizeof(err)),
		0);
	for (int i = 0; i < 8; i++)
		ck_assert_uint_eq(p[i], NP_PREC_W4A4);
	ck_assert_int_eq(np_precision_layers("0-2:w8a8,2:w2a8,7:A8-C8-W4", 8,
					     NP_PREC_DEFAULT, p, err,
					     sizeof(err)),
			 0);
	ck_assert_uint_eq(p[0], NP_PREC_W8A8);
	ck_assert_uint_eq(p[1], NP_PREC_W8A8);
	ck_assert_uint_eq(p[2], NP_PREC_W2A8);
	ck_assert_uint_eq(p[3], NP_DEFAULT_PRECISION);
	ck_assert_uint_eq(p[7], NP_PREC_A8C8W4);
	ck_assert_int_eq(np_precision_layers("8:w8a8", 8, NP_PREC_W4A4, p, err,
					     sizeof(err)),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "'8:w8a8'"));
	ck_assert_ptr_nonnull(strstr(err, "layers 0..7"));
	ck_assert_int_eq(np_precision_layers("3-1:w8a8", 8, NP_PREC_W4A4, p,
					     err, sizeof(err)),
			 -EINVAL);
	ck_assert_int_eq(np_precision_layers("1:w3a3", 8, NP_PREC_W4A4, p, err,
					     sizeof(err)),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "unknown mode 'w3a3'"));
	ck_assert_int_eq(np_precision_layers("w8a8", 8, NP_PREC_W4A4, p, err,
					     sizeof(err)),
			 -EINVAL);
	ck_assert_int_eq(np_precision_layers("1:w8a8,", 8, NP_PREC_W4A4, p, err,
					     sizeof(err)),
			 0);
	ck_assert_int_eq(
		np_precision_layers("x-1:w8a8", 8, NP_PREC_W4A4, p, NULL, 0),
		-EINVAL);
}
END_TEST

/*
 * Mixed precisions: every layer on consecutive cards, every rendered
 * image validates and carries each layer's widths (weights per tensor,
 * activations and KV cache per layer). A width the cards do not compute
 * is refused.
 */
START_TEST(test_mixed_precision_map)
{
	struct np_model_shape s = tiny;
	struct np_compile_opts o = {.n_cards = 4,
				    .batch = 1,
				    .max_seq = 64,
				    .precision = NP_PREC_A8C8W4,
				    .layer_precision = "0-1:w8a8,13:w2a8"};
	struct np_model *m;
	struct np_quant_calib *cal;
	struct np_compiled *c = NULL;
	uint8_t *sram = calloc(1, NP_SRAM_SIZE);
	char buf[2048];

	ck_assert_ptr_nonnull(sram);
	s.dim = 1024;
	s.ffn = 2816;
	s.n_heads = 8;
	s.n_kv_heads = 8;
	ck_assert_int_eq(np_model_synthetic(&s, 5, &m), 0);
	ck_assert_int_eq(np_quant_calib_default(m, &cal), 0);
	tst_reset();
	ck_assert_int_eq(np_compile(m, cal, &o, &tst_log, &c), 0);
	check_mapping(c, &s, 14);
	np_compiled_describe(c, buf, sizeof(buf));
	ck_assert_ptr_nonnull(
		strstr(buf, "precision a8c8w4 (layers 0-1:w8a8,13:w2a8)"));
	for (uint32_t i = 0; i < np_compiled_n_cards(c); i++) {
		const struct np_card_plan *p = np_compiled_card(c, i);
		struct npk_card h;

		memset(sram, 0, NP_SRAM_SIZE);
		ck_assert_int_eq(np_compile_card_image(c, i, sram), 0);
		ck_assert_int_eq(npk_validate(sram, NP_SRAM_SIZE, p->prog), 0);
		memcpy(&h, sram + p->prog, sizeof(h));
		for (uint32_t l = 0;
		     p->kind == NP_CARD_LAYERS && l < h.n_layers; l++) {
			struct npk_layer L;
			uint32_t ml = h.first_layer + l;
			uint32_t wb = ml < 2 ? 8 : ml == 13 ? 2 : 4;

			memcpy(&L,
			       sram + p->prog + h.layers_off + l * sizeof(L),
			       sizeof(L));
			ck_assert_uint_eq(L.act_bits, 8);
			ck_assert_uint_eq(L.kv_bits, 8);
			for (int t = 0; t < NPK_N_TENSORS; t++)
				ck_assert_uint_eq(L.t[t].bits, wb);
			/* widths the cards do not compute */
			L.act_bits = 6;
			memcpy(sram + p->prog + h.layers_off, &L, sizeof(L));
			ck_assert_int_eq(
				npk_validate(sram, NP_SRAM_SIZE, p->prog),
				NP_ERR_BAD_PROGRAM);
			L.act_bits = 8;
			L.t[NPK_UP].bits = 3;
			memcpy(sram + p->prog + h.layers_off, &L, sizeof(L));
			ck_assert_int_eq(
				npk_validate(sram, NP_SRAM_SIZE, p->prog),
				NP_ERR_BAD_PROGRAM);
			L.t[NPK_UP].bits = wb;
			L.rsvd = 1;
			memcpy(sram + p->prog + h.layers_off, &L, sizeof(L));
			ck_assert_int_eq(
				npk_validate(sram, NP_SRAM_SIZE, p->prog),
				NP_ERR_BAD_PROGRAM);
			break;
		}
	}
	np_compiled_destroy(c);
	/* a bad override is refused with the reason */
	o.layer_precision = "0-20:w8a8";
	tst_reset();
	ck_assert_int_eq(np_compile(m, cal, &o, &tst_log, &c), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_last, "'0-20:w8a8'"));
	np_quant_calib_destroy(cal);
	np_model_destroy(m);
	free(sram);
}
END_TEST

START_TEST(test_bad_opts)
{
	struct np_model *m;
	struct np_compiled *c = NULL;
	struct np_compile_opts one = {.n_cards = 1};

	ck_assert_int_eq(np_model_synthetic(&tiny, 1, &m), 0);
	ck_assert_int_eq(np_compile(m, NULL, &one, &tst_log, &c), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_last, "cards must be"));
	one = (struct np_compile_opts){.flags = 1u << 31};
	ck_assert_int_eq(np_compile(m, NULL, &one, &tst_log, &c), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_last, "flags 0x80000000"));
	one = (struct np_compile_opts){.precision = NP_PREC_COUNT};
	ck_assert_int_eq(np_compile(m, NULL, &one, &tst_log, &c), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_last, "not an enum np_precision"));
	np_model_destroy(m);
	np_compiled_destroy(NULL);
}
END_TEST

START_TEST(test_precision_names)
{
	enum np_precision p = NP_PREC_DEFAULT;

	for (unsigned int i = 1; i < NP_PREC_COUNT; i++) {
		const char *n = np_precision_name((enum np_precision)i);

		ck_assert_ptr_nonnull(n);
		ck_assert_int_eq(np_precision_parse(n, &p), 0);
		ck_assert_int_eq(p, i);
	}
	ck_assert_str_eq(np_precision_name(NP_PREC_DEFAULT),
			 np_precision_name(NP_DEFAULT_PRECISION));
	ck_assert_ptr_null(np_precision_name(NP_PREC_COUNT));
	ck_assert_int_eq(np_precision_parse("A8-C8-W4", &p), 0);
	ck_assert_int_eq(p, NP_PREC_A8C8W4);
	ck_assert_int_eq(np_precision_parse("w4a16", &p), -EINVAL);
	ck_assert_int_eq(np_precision_parse("", &p), -EINVAL);
	ck_assert_int_eq(np_precision_parse("w4a4w4a4w4a4w4a4w4a4", &p),
			 -EINVAL);
}
END_TEST

START_TEST(test_out_cards_above_vocab)
{
	struct np_model_shape s = deep;
	struct np_compile_opts o = {.n_cards = 2, .batch = 1, .max_seq = 16};
	struct np_model *m;
	struct np_compiled *c = NULL;

	/* fewer tokens than output cards would leave cards without rows */
	s.vocab = 16;
	s.n_layers = 1;
	o.out_cards = s.vocab + 1;
	o.n_cards = o.out_cards + 1;
	ck_assert_int_eq(np_model_synthetic(&s, 1, &m), 0);
	tst_reset();
	ck_assert_int_eq(np_compile(m, NULL, &o, &tst_log, &c), -EINVAL);
	ck_assert_ptr_null(c);
	ck_assert_ptr_nonnull(strstr(tst_last, "17 output cards"));
	ck_assert_ptr_nonnull(strstr(tst_last, "16-token vocabulary"));
	o.out_cards = s.vocab;
	ck_assert_int_eq(np_compile(m, NULL, &o, &tst_log, &c), 0);
	check_mapping(c, &s, 1);
	np_compiled_destroy(c);
	np_model_destroy(m);
}
END_TEST

/* Rendered images carry valid program blocks; corruptions are refused */
START_TEST(test_images_validate)
{
	struct np_compile_opts o = {.n_cards = 3, .batch = 2, .max_seq = 32};
	struct np_model *m;
	struct np_quant_calib *cal;
	struct np_compiled *c = NULL;
	uint8_t *sram = calloc(1, NP_SRAM_SIZE);
	struct npk_card h;
	struct npk_layer L;

	ck_assert_ptr_nonnull(sram);
	ck_assert_int_eq(np_model_synthetic(&deep, 3, &m), 0);
	ck_assert_int_eq(np_quant_calib_default(m, &cal), 0);
	ck_assert_int_eq(np_compile(m, cal, &o, &tst_log, &c), 0);
	ck_assert_uint_eq(np_compiled_n_cards(c), 3);
	for (uint32_t i = 0; i < 3; i++) {
		const struct np_card_plan *p = np_compiled_card(c, i);

		memset(sram, 0, NP_SRAM_SIZE);
		ck_assert_int_eq(np_compile_card_image(c, i, sram), 0);
		ck_assert_int_eq(npk_validate(sram, NP_SRAM_SIZE, p->prog), 0);
		/* its runs leave what validation read alone */
		ck_assert_int_eq(
			npk_validate_stable(sram, NP_SRAM_SIZE, p->prog), 1);
		/* a smaller SRAM than the image needs is refused */
		ck_assert_int_eq(npk_validate(sram, 4096, p->prog),
				 NP_ERR_BAD_PROGRAM);
	}
	/* card 0 again, then break it in several ways */
	memset(sram, 0, NP_SRAM_SIZE);
	ck_assert_int_eq(np_compile_card_image(c, 0, sram), 0);
	memcpy(&h, sram, sizeof(h));
	ck_assert_uint_eq(h.magic, NPK_MAGIC);
	ck_assert_uint_eq(h.n_layers, 10);
	ck_assert_uint_eq(h.core_bytes, np_compiled_card(c, 0)->core_bytes);
	sram[0] ^= 1;
	ck_assert_int_eq(npk_validate(sram, NP_SRAM_SIZE, 0),
			 NP_ERR_BAD_PROGRAM);
	sram[0] ^= 1;
	ck_assert_int_eq(npk_validate(sram, NP_SRAM_SIZE, 4),
			 NP_ERR_BAD_PROGRAM);
	ck_assert_int_eq(npk_validate(sram, NP_SRAM_SIZE, NP_SRAM_SIZE),
			 NP_ERR_BAD_PROGRAM);
	/* KV units over a tensor's requantisation pairs, or over the
	 * program block: valid, but its runs may change them */
	memcpy(&L, sram + h.layers_off, sizeof(L));
	h.kv_off = L.t[NPK_UP].rq_off;
	memcpy(sram, &h, sizeof(h));
	ck_assert_int_eq(npk_validate(sram, NP_SRAM_SIZE, 0), 0);
	ck_assert_int_eq(npk_validate_stable(sram, NP_SRAM_SIZE, 0), 0);
	h.kv_off = 0;
	memcpy(sram, &h, sizeof(h));
	ck_assert_int_eq(npk_validate(sram, NP_SRAM_SIZE, 0), 0);
	ck_assert_int_eq(npk_validate_stable(sram, NP_SRAM_SIZE, 0), 0);
	ck_assert_int_eq(np_compile_card_image(c, 0, sram), 0);
	memcpy(&h, sram, sizeof(h));
	L.t[NPK_DOWN].off = NP_CORE_SRAM_SIZE - 16;
	memcpy(sram + h.layers_off, &L, sizeof(L));
	ck_assert_int_eq(npk_validate(sram, NP_SRAM_SIZE, 0),
			 NP_ERR_BAD_PROGRAM);
	memcpy(&L, sram + h.layers_off + sizeof(L), sizeof(L));
	memcpy(sram + h.layers_off, &L, sizeof(L)); /* layer 0 := layer 1 */
	L.kv_first_unit = 0;
	memcpy(sram + h.layers_off, &L, sizeof(L));
	ck_assert_int_eq(npk_validate(sram, NP_SRAM_SIZE, 0), 0);
	L.softmax.shift = 63;
	memcpy(sram + h.layers_off, &L, sizeof(L));
	ck_assert_int_eq(npk_validate(sram, NP_SRAM_SIZE, 0),
			 NP_ERR_BAD_PROGRAM);
	L.softmax.shift = 20;
	L.kv_first_unit = 0xfffffff0u; /* units past the cores' SRAM */
	memcpy(sram + h.layers_off, &L, sizeof(L));
	ck_assert_int_eq(npk_validate(sram, NP_SRAM_SIZE, 0),
			 NP_ERR_BAD_PROGRAM);
	h.n_heads = 3; /* no longer a multiple of the KV heads */
	memcpy(sram, &h, sizeof(h));
	ck_assert_int_eq(npk_validate(sram, NP_SRAM_SIZE, 0),
			 NP_ERR_BAD_PROGRAM);
	np_compiled_destroy(c);
	np_quant_calib_destroy(cal);
	np_model_destroy(m);
	free(sram);
}
END_TEST

/* A weight row in the image is the quantised, gamma-folded model row */
START_TEST(test_image_layout)
{
	struct np_compile_opts o = {.n_cards = 2, .batch = 1, .max_seq = 8};
	const struct np_model_shape s = {1,   512, 4,	 2,    512,
					 300, 64,  1e4f, 1e-5f};
	struct np_model *m;
	struct np_quant_calib *cal;
	struct np_compiled *c = NULL;
	uint8_t *sram = calloc(1, NP_SRAM_SIZE);
	float row[512], gamma[512];
	int8_t q[512];
	struct npk_card h;
	struct npk_layer L;

	ck_assert_int_eq(np_model_synthetic(&s, 5, &m), 0);
	ck_assert_int_eq(np_quant_calib_default(m, &cal), 0);
	ck_assert_int_eq(np_compile(m, cal, &o, &tst_log, &c), 0);
	ck_assert_int_eq(np_compile_card_image(c, 0, sram), 0);
	memcpy(&h, sram, sizeof(h));
	memcpy(&L, sram + h.layers_off, sizeof(L));
	/* 512 gate rows over 256 cores: 2 per core */
	ck_assert_uint_eq(L.t[NPK_GATE].rows_per_core, 2);
	ck_assert_uint_eq(L.t[NPK_GATE].row_bytes, 256);
	ck_assert_int_eq(np_model_row(m, NP_T_FFN_NORM, 0, 0, gamma), 0);
	for (uint32_t r = 0; r < 512; r += 77) {
		const uint8_t *p = sram +
				   (uint64_t)(r / 2) * NP_CORE_SRAM_SIZE +
				   L.t[NPK_GATE].off + (r % 2) * 256;

		ck_assert_int_eq(np_model_row(m, NP_T_GATE, 0, r, row), 0);
		for (int i = 0; i < 512; i++)
			row[i] *= gamma[i];
		np_quant_row(row, 512, np_quant_row_scale(row, 512, 4), 4, q);
		for (uint32_t i = 0; i < 512; i++)
			ck_assert_int_eq(npk_unpack4(p, i), q[i]);
	}
	np_compiled_destroy(c);
	np_quant_calib_destroy(cal);
	np_model_destroy(m);
	free(sram);
}
END_TEST

START_TEST(test_write_files)
{
	struct np_compile_opts o = {.n_cards = 3, .batch = 1, .max_seq = 8};
	const struct np_model_shape s = {2, 64, 2, 1, 64, 300, 64, 1e4f, 1e-5f};
	char dir[] = "/tmp/np-compile-XXXXXX", path[128];
	struct np_model *m;
	struct np_quant_calib *cal;
	struct np_compiled *c = NULL;
	uint8_t *sram = calloc(1, NP_SRAM_SIZE), *seg;
	int16_t *x = malloc(64 * 2), *xf = malloc(64 * 2);
	struct {
		uint32_t magic, version, card, kind;
		uint64_t prog;
		uint32_t n_segments, rsvd;
		uint64_t segment_len;
	} h;
	struct {
		uint32_t magic, version, n_cards, dim, vocab, batch, max_seq,
			rsvd;
		double logit_scale;
	} hh;
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(np_model_synthetic(&s, 9, &m), 0);
	ck_assert_int_eq(np_quant_calib_default(m, &cal), 0);
	ck_assert_int_eq(np_compile(m, cal, &o, &tst_log, &c), 0);
	ck_assert_int_eq(np_compile_write(c, dir), 0);
	for (uint32_t i = 0; i < np_compiled_n_cards(c); i++) {
		snprintf(path, sizeof(path), "%s/card-%02u.npimg", dir, i);
		f = fopen(path, "rb");
		ck_assert_ptr_nonnull(f);
		ck_assert_uint_eq(fread(&h, sizeof(h), 1, f), 1);
		ck_assert_uint_eq(h.magic, 0x4943504eu); /* "NPCI" */
		ck_assert_uint_eq(h.card, i);
		ck_assert_uint_eq(h.n_segments, 256);
		ck_assert_uint_eq(h.segment_len,
				  np_compiled_card(c, i)->core_bytes);
		/* every segment equals the rendered core */
		memset(sram, 0, NP_SRAM_SIZE);
		ck_assert_int_eq(np_compile_card_image(c, i, sram), 0);
		seg = malloc(h.segment_len);
		for (uint32_t k = 0; k < 256; k++) {
			ck_assert_uint_eq(fread(seg, 1, h.segment_len, f),
					  h.segment_len);
			ck_assert_int_eq(
				memcmp(seg,
				       sram + (uint64_t)k * NP_CORE_SRAM_SIZE,
				       h.segment_len),
				0);
		}
		ck_assert_int_eq(fgetc(f), EOF);
		free(seg);
		fclose(f);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/host.nphost", dir);
	f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fread(&hh, sizeof(hh), 1, f), 1);
	ck_assert_uint_eq(hh.magic, 0x4f48504eu); /* "NPHO" */
	ck_assert_uint_eq(hh.vocab, 300);
	ck_assert_double_eq(hh.logit_scale, np_compiled_logit_scale(c));
	ck_assert_int_eq(fseek(f, (long)(sizeof(hh) + 7 * 64 * 2), SEEK_SET),
			 0);
	ck_assert_uint_eq(fread(xf, 2, 64, f), 64);
	ck_assert_int_eq(np_compiled_embed(c, 7, x), 0);
	ck_assert_int_eq(memcmp(x, xf, 64 * 2), 0);
	fclose(f);
	unlink(path);
	ck_assert_int_eq(rmdir(dir), 0);
	ck_assert_int_eq(np_compile_write(c, "/nonexistent/dir"), -ENOENT);
	np_compiled_destroy(c);
	np_quant_calib_destroy(cal);
	np_model_destroy(m);
	free(sram);
	free(x);
	free(xf);
}
END_TEST

/*
 * Program blocks come from the guest: random corruption of a valid block
 * is either refused by npk_validate or runs within the SRAM (ASan run).
 */
START_TEST(test_validate_random_corruption)
{
	struct np_compile_opts o = {.n_cards = 3, .batch = 2, .max_seq = 8};
	const struct np_model_shape sh = {4,   64, 4,	 2,    64,
					  300, 64, 1e4f, 1e-5f};
	struct np_model *m;
	struct np_quant_calib *cal;
	struct np_compiled *c = NULL;
	uint8_t *sram = calloc(1, NP_SRAM_SIZE), *pristine[2];
	uint8_t arg[NPK_ARG_HDR + 8 + 64 * 2] = {0};
	uint32_t one = 1, block[2], valid = 0, rng = 12345;
	size_t out_cap = 300 * 4;
	void *out = malloc(out_cap);

	ck_assert_int_eq(np_model_synthetic(&sh, 4, &m), 0);
	ck_assert_int_eq(np_quant_calib_default(m, &cal), 0);
	ck_assert_int_eq(np_compile(m, cal, &o, &tst_log, &c), 0);
	memcpy(arg, &one, 4);
	for (int card = 0; card < 2; card++) {
		/* card 0 holds layers, card 2 the output */
		uint32_t ci = card ? 2 : 0;
		struct npk_card h;

		memset(sram, 0, NP_SRAM_SIZE);
		ck_assert_int_eq(np_compile_card_image(c, ci, sram), 0);
		memcpy(&h, sram, sizeof(h));
		block[card] = h.block_size;
		pristine[card] = malloc(h.block_size);
		memcpy(pristine[card], sram, h.block_size);
		for (int it = 0; it < 1500; it++) {
			int flips = 1 + it % 3;
			void *scratch;

			memcpy(sram, pristine[card], block[card]);
			for (int f = 0; f < flips; f++) {
				rng = rng * 1103515245u + 12345u;
				sram[(rng >> 8) % block[card]] ^=
					(uint8_t)(1u << ((rng >> 4) & 7));
			}
			if (npk_validate(sram, NP_SRAM_SIZE, 0) != 0)
				continue;
			valid++;
			scratch = malloc(npk_scratch_size(sram, 0));
			ck_assert_ptr_nonnull(scratch);
			if (npk_out_size(sram, 0, 1) <= out_cap) {
				int r = npk_run(sram, 0, arg, sizeof(arg), out,
						out_cap, scratch);

				ck_assert(r == 0 || r == NP_ERR_BAD_PROGRAM);
			}
			free(scratch);
		}
		free(pristine[card]);
	}
	/* flips of weights' data or unused header words stay valid */
	ck_assert_uint_gt(valid, 100);
	np_compiled_destroy(c);
	np_quant_calib_destroy(cal);
	np_model_destroy(m);
	free(sram);
	free(out);
}
END_TEST

Suite *np_suite_compile(void)
{
	Suite *s = suite_create("compile");
	TCase *tc = tcase_create("mapping");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_granite_design_point);
	tcase_add_test(tc, test_gqa_one_layer_per_card);
	tcase_add_test(tc, test_more_layers_than_cards);
	tcase_add_test(tc, test_output_split);
	tcase_add_test(tc, test_does_not_fit);
	tcase_add_test(tc, test_kv_budget);
	tcase_add_test(tc, test_layer_precision_spec);
	tcase_add_test(tc, test_mixed_precision_map);
	tcase_add_test(tc, test_bad_opts);
	tcase_add_test(tc, test_precision_names);
	tcase_add_test(tc, test_out_cards_above_vocab);
	tcase_add_test(tc, test_images_validate);
	tcase_add_test(tc, test_image_layout);
	tcase_add_test(tc, test_write_files);
	tcase_add_test(tc, test_validate_random_corruption);
	suite_add_tcase(s, tc);
	return s;
}
