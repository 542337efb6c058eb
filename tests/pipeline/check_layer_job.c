// SPDX-License-Identifier: MIT
/*
 * NP_JOB_OP_LAYER on one emulated card, driven through its registers: the
 * card's output equals npk_run on the same image (layer card: header and
 * token table passed on, then the rows; output card: logits or top-k),
 * and every malformed job stops the compute queue with the documented
 * NP_ERR_* instead of touching memory it was not given.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "np/model.h"
#include "np_abi.h"
#include "np_emu.h"
#include "test.h"
#include "npk.h"

#define HOST_BASE 0x10000000ull
#define HOST_SIZE (8u << 20)
#define RING 64u

static const struct np_model_shape gqa = {2,   64, 4,	 2,    128,
					  512, 32, 1e4f, 1e-5f};

struct lj {
	uint8_t *host;
	struct np_emu *emu;
	struct np_model *m;
	struct np_quant_calib *cal;
	struct np_compiled *c;
	uint8_t *sram[2]; /* images of card 0 (layers) and card 2 (output) */
	uint32_t tail[2]; /* DMA engine 0, compute queue */
};

static struct lj L;

static int bus_read(void *o, uint64_t a, void *buf, size_t len)
{
	(void)o;
	if (a < HOST_BASE || a - HOST_BASE > HOST_SIZE - len)
		return -14;
	memcpy(buf, L.host + (a - HOST_BASE), len);
	return 0;
}

static int bus_write(void *o, uint64_t a, const void *buf, size_t len)
{
	(void)o;
	if (a < HOST_BASE || a - HOST_BASE > HOST_SIZE - len)
		return -14;
	memcpy(L.host + (a - HOST_BASE), buf, len);
	return 0;
}

static void bus_irq(void *o, unsigned int v)
{
	(void)o;
	(void)v;
}

/* Host layout: rings and records first, data from DATA_OFF. */
#define RING_OFF(q) ((uint64_t)(q)*0x2000u)
#define WB_OFF(q) (RING_OFF(q) + RING * 64u)
#define DATA_OFF 0x10000u

static uint32_t qbase(int q)
{
	return q ? NP_COMPUTE_BASE : NP_DMA_BASE(0);
}

static void queue_init(int q)
{
	uint64_t ring = HOST_BASE + RING_OFF(q), wb = HOST_BASE + WB_OFF(q);

	np_emu_mmio_write(L.emu, qbase(q) + NP_Q_RING_LO, (uint32_t)ring);
	np_emu_mmio_write(L.emu, qbase(q) + NP_Q_RING_HI, 0);
	np_emu_mmio_write(L.emu, qbase(q) + NP_Q_RING_SIZE, RING);
	np_emu_mmio_write(L.emu, qbase(q) + NP_Q_WB_LO, (uint32_t)wb);
	np_emu_mmio_write(L.emu, qbase(q) + NP_Q_WB_HI, 0);
	np_emu_mmio_write(L.emu, qbase(q) + NP_Q_CTRL, NP_Q_CTRL_ENABLE);
	L.tail[q] = 0;
}

/* Submit one descriptor and wait: returns NP_Q_ERROR (0 on success). */
static uint32_t run(int q, const void *desc)
{
	uint32_t want = np_emu_mmio_read(L.emu, qbase(q) + NP_Q_COMPLETED) + 1;
	struct timespec ts = {0, 100000};

	memcpy(L.host + RING_OFF(q) + L.tail[q] * 64u, desc, 64);
	L.tail[q] = (L.tail[q] + 1) % RING;
	np_emu_mmio_write(L.emu, qbase(q) + NP_Q_TAIL, L.tail[q]);
	for (int i = 0; i < 200000; i++) {
		if (np_emu_mmio_read(L.emu, qbase(q) + NP_Q_STATUS) &
		    NP_Q_STATUS_ERROR)
			return np_emu_mmio_read(L.emu, qbase(q) + NP_Q_ERROR);
		if (np_emu_mmio_read(L.emu, qbase(q) + NP_Q_COMPLETED) == want)
			return 0;
		nanosleep(&ts, NULL);
	}
	ck_abort_msg("queue %d did not complete", q);
	return 0;
}

/* Reset the compute queue after an expected error. */
static void cq_recover(void)
{
	np_emu_mmio_write(L.emu, NP_COMPUTE_BASE + NP_Q_CTRL,
			  NP_Q_CTRL_RESET | NP_Q_CTRL_ENABLE);
	L.tail[1] = 0;
}

/* DMA the used part of every core of image into the card's SRAM. */
static void load(const uint8_t *image, uint64_t core_bytes)
{
	ck_assert_uint_le(core_bytes, HOST_SIZE - DATA_OFF);
	for (uint32_t core = 0; core < NP_NUM_CORES; core++) {
		struct np_dma_desc d = {.opcode = NP_DMA_OP_H2C,
					.len = (uint32_t)core_bytes,
					.src = HOST_BASE + DATA_OFF};

		d.dst = NP_CA_SRAM_BASE + (uint64_t)core * NP_CORE_SRAM_SIZE;
		memcpy(L.host + DATA_OFF,
		       image + (uint64_t)core * NP_CORE_SRAM_SIZE, core_bytes);
		ck_assert_uint_eq(run(0, &d), 0);
	}
}

static void setup(void)
{
	struct np_emu_config cfg = {0};
	struct np_emu_bus bus = {
		.dma_read = bus_read, .dma_write = bus_write, .irq = bus_irq};
	struct np_compile_opts co = {
		.n_cards = 4, .batch = 2, .max_seq = 32, .out_cards = 2};

	memset(&L, 0, sizeof(L));
	L.host = mmap(NULL, HOST_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(L.host, MAP_FAILED);
	ck_assert_int_eq(np_emu_create(&cfg, &bus, &L.emu), 0);
	queue_init(0);
	queue_init(1);
	ck_assert_int_eq(np_model_synthetic(&gqa, 99, &L.m), 0);
	ck_assert_int_eq(np_quant_calib_default(L.m, &L.cal), 0);
	ck_assert_int_eq(np_compile(L.m, L.cal, &co, NULL, &L.c), 0);
	ck_assert_int_eq(np_compiled_card(L.c, 0)->kind, NP_CARD_LAYERS);
	ck_assert_int_eq(np_compiled_card(L.c, 2)->kind, NP_CARD_OUTPUT);
	for (int i = 0; i < 2; i++) {
		L.sram[i] = calloc(1, NP_SRAM_SIZE);
		ck_assert_ptr_nonnull(L.sram[i]);
		ck_assert_int_eq(
			np_compile_card_image(L.c, i ? 2 : 0, L.sram[i]), 0);
	}
}

static void teardown(void)
{
	np_emu_destroy(L.emu);
	free(L.sram[0]);
	free(L.sram[1]);
	np_compiled_destroy(L.c);
	np_quant_calib_destroy(L.cal);
	np_model_destroy(L.m);
	munmap(L.host, HOST_SIZE);
}

/* A frame of n tokens (slot i % 2, position pos0 + i / 2) in the FB. */
static size_t put_frame(uint64_t fb_off, uint32_t n, uint32_t opt,
			uint32_t pos0)
{
	uint64_t size;
	uint8_t *fb = np_emu_fb(L.emu, &size), *f = fb + fb_off;
	size_t len = NP_JOB_ARG_HDR + (size_t)n * (NP_JOB_ARG_TOK + 2 * 64);

	memcpy(f, &n, 4);
	memcpy(f + 4, &opt, 4);
	for (uint32_t i = 0; i < n; i++) {
		struct npk_tok tk = {i % 2, pos0 + i / 2};
		int16_t *x = (int16_t *)(f + NP_JOB_ARG_HDR + n * 8u) + i * 64;

		memcpy(f + NP_JOB_ARG_HDR + i * 8u, &tk, 8);
		ck_assert_int_eq(
			np_compiled_embed(L.c, (int32_t)(i * 37 % 512), x), 0);
	}
	return len;
}

static struct np_job_desc job(uint64_t arg, uint32_t len, uint64_t out)
{
	struct np_job_desc j = {.opcode = NP_JOB_OP_LAYER,
				.prog = np_compiled_card(L.c, 0)->prog,
				.arg = NP_CA_FB_BASE + arg,
				.arg_len = len,
				.out = NP_CA_FB_BASE + out};
	return j;
}

START_TEST(layer_card_matches_npk)
{
	uint64_t size;
	uint8_t *fb = np_emu_fb(L.emu, &size);
	size_t len = put_frame(0, 5, 0, 0);
	size_t out_len = npk_out_size(L.sram[0], 0, 5);
	uint8_t *want = malloc(out_len), *arg = malloc(len);
	void *scratch = malloc(npk_scratch_size(L.sram[0], 0));
	struct np_job_desc j = job(0, (uint32_t)len, 0x100000);

	load(L.sram[0], np_compiled_card(L.c, 0)->core_bytes);
	memcpy(arg, fb, len);
	ck_assert_uint_eq(run(1, &j), 0);
	ck_assert_uint_eq(np_emu_mmio_read(L.emu, NP_REG_JOBS), 1);
	ck_assert_int_eq(
		npk_run(L.sram[0], 0, arg, len, want, out_len, scratch), 0);
	/* header and token table passed on, then the layer's rows */
	ck_assert_mem_eq(fb + 0x100000, arg, NP_JOB_ARG_HDR + 5 * 8);
	ck_assert_mem_eq(fb + 0x100000 + NP_JOB_ARG_HDR + 5 * 8, want, out_len);
	/* the KV cache the job wrote is the one npk wrote: a second frame
	 * at the next positions still agrees */
	len = put_frame(0, 2, 0, 3);
	memcpy(arg, fb, len);
	j.arg_len = (uint32_t)len;
	ck_assert_uint_eq(run(1, &j), 0);
	ck_assert_int_eq(
		npk_run(L.sram[0], 0, arg, len, want, out_len, scratch), 0);
	ck_assert_mem_eq(fb + 0x100000 + NP_JOB_ARG_HDR + 2 * 8, want,
			 npk_out_size(L.sram[0], 0, 2));
	free(want);
	free(arg);
	free(scratch);
}
END_TEST

/* Frames queued together, a plain NOP before each as the pipeline posts
 * them (the card may run up to 8 in one pass over the weights, more than
 * that in several): each output is the one npk gives running them one by
 * one, every later frame seeing the KV entries of the earlier ones. */
#define QF 11
START_TEST(queued_frames_match_npk)
{
	uint8_t *fb = np_emu_fb(L.emu, NULL);
	size_t out_len = npk_out_size(L.sram[0], 0, 2), len[QF];
	uint8_t *want = malloc(QF * out_len), *arg = malloc(0x20000);
	void *scratch = malloc(npk_scratch_size(L.sram[0], 0));
	struct timespec ts = {0, 100000};

	ck_assert_ptr_nonnull(want);
	ck_assert_ptr_nonnull(arg);
	ck_assert_ptr_nonnull(scratch);
	load(L.sram[0], np_compiled_card(L.c, 0)->core_bytes);
	for (int i = 0; i < QF; i++) {
		len[i] = put_frame(0x20000u * i, 2, 0, (uint32_t)i);
		memcpy(arg, fb + 0x20000u * i, len[i]);
		ck_assert_int_eq(npk_run(L.sram[0], 0, arg, len[i],
					 want + i * out_len, out_len, scratch),
				 0);
	}
	for (int i = 0; i < QF; i++) {
		struct np_job_desc d[2] = {
			{.opcode = NP_JOB_OP_NOP},
			job(0x20000u * i, (uint32_t)len[i],
			    0x400000u + 0x20000u * i),
		};

		for (int k = 0; k < 2; k++) {
			memcpy(L.host + RING_OFF(1) + L.tail[1] * 64u, &d[k],
			       64);
			L.tail[1] = (L.tail[1] + 1) % RING;
		}
	}
	np_emu_mmio_write(L.emu, NP_COMPUTE_BASE + NP_Q_TAIL, L.tail[1]);
	for (int i = 0;
	     i < 200000 && np_emu_mmio_read(L.emu, NP_REG_JOBS) < 2 * QF &&
	     !np_emu_mmio_read(L.emu, NP_COMPUTE_BASE + NP_Q_ERROR);
	     i++)
		nanosleep(&ts, NULL);
	ck_assert_uint_eq(np_emu_mmio_read(L.emu, NP_COMPUTE_BASE + NP_Q_ERROR),
			  0);
	/* the NOPs count as jobs too */
	ck_assert_uint_eq(np_emu_mmio_read(L.emu, NP_REG_JOBS), 2 * QF);
	for (int i = 0; i < QF; i++) {
		const uint8_t *o = fb + 0x400000u + 0x20000u * i;

		/* its own header and token table, then its rows */
		ck_assert_mem_eq(o, fb + 0x20000u * i, NP_JOB_ARG_HDR + 2 * 8);
		ck_assert_msg(!memcmp(o + NP_JOB_ARG_HDR + 2 * 8,
				      want + i * out_len, out_len),
			      "frame %d of %d differs from npk", i, QF);
	}
	free(want);
	free(arg);
	free(scratch);
}
END_TEST

START_TEST(output_card_topk)
{
	const struct np_card_plan *pl = np_compiled_card(L.c, 2);
	uint32_t slice = pl->vocab_end - pl->vocab_begin, k = 7;
	uint64_t size;
	uint8_t *fb = np_emu_fb(L.emu, &size);
	size_t len = put_frame(0, 3, k, 0);
	size_t full = npk_out_size(L.sram[1], pl->prog, 3);
	int32_t *logits = malloc(full);
	uint8_t *arg = malloc(len);
	void *scratch = malloc(npk_scratch_size(L.sram[1], pl->prog));
	struct np_job_desc j = job(0, (uint32_t)len, 0x100000);

	j.prog = pl->prog;
	load(L.sram[1], pl->core_bytes);
	memcpy(arg, fb, len);
	memset(arg + 4, 0, 4);
	ck_assert_int_eq(
		npk_run(L.sram[1], pl->prog, arg, len, logits, full, scratch),
		0);
	ck_assert_uint_eq(run(1, &j), 0);
	for (uint32_t t = 0; t < 3; t++) {
		const struct np_job_topk *got =
			(const struct np_job_topk *)(fb + 0x100000) + t * k;
		const int32_t *l = logits + (size_t)t * slice;

		for (uint32_t i = 0; i < k; i++) {
			uint32_t above = 0;

			ck_assert_uint_ge(got[i].index, pl->vocab_begin);
			ck_assert_uint_lt(got[i].index, pl->vocab_end);
			ck_assert_int_eq(l[got[i].index - pl->vocab_begin],
					 got[i].value);
			/* exactly i entries rank above the i-th */
			for (uint32_t v = 0; v < slice; v++)
				above += l[v] > got[i].value ||
					 (l[v] == got[i].value &&
					  v + pl->vocab_begin < got[i].index);
			ck_assert_uint_eq(above, i);
		}
	}
	/* options 0: the whole slice */
	put_frame(0, 3, 0, 0);
	ck_assert_uint_eq(run(1, &j), 0);
	ck_assert_mem_eq(fb + 0x100000, logits, full);
	free(logits);
	free(arg);
	free(scratch);
}
END_TEST

/* A layer program of no layers (NP_COMPILE_PASS_THROUGH): the card
 * validates and runs it, and its output frame is its argument frame. */
START_TEST(pass_through_card)
{
	struct np_compile_opts co = {.n_cards = 4,
				     .batch = 2,
				     .max_seq = 32,
				     .out_cards = 2,
				     .flags = NP_COMPILE_PASS_THROUGH};
	const struct np_card_plan *pl;
	struct np_compiled *c;
	uint64_t size;
	uint8_t *fb = np_emu_fb(L.emu, &size), *image = calloc(1, NP_SRAM_SIZE);
	size_t len = put_frame(0, 5, 3, 7);
	struct np_job_desc j = job(0, (uint32_t)len, 0x100000);

	ck_assert_ptr_nonnull(image);
	ck_assert_int_eq(np_compile(L.m, L.cal, &co, NULL, &c), 0);
	pl = np_compiled_card(c, 0);
	ck_assert_int_eq(pl->kind, NP_CARD_LAYERS);
	ck_assert_uint_eq(pl->n_layers, 0);
	ck_assert_int_eq(np_compile_card_image(c, 0, image), 0);
	ck_assert_int_eq(npk_validate(image, NP_SRAM_SIZE, pl->prog), 0);
	load(image, pl->core_bytes);
	j.prog = pl->prog;
	ck_assert_uint_eq(run(1, &j), 0);
	/* header, options, token table and rows, byte for byte */
	ck_assert_mem_eq(fb + 0x100000, fb, len);
	/* the token table is still checked against the program */
	put_frame(0, 2, 0, 40);
	ck_assert_uint_eq(run(1, &j), NP_ERR_BAD_PROGRAM);
	cq_recover();
	np_compiled_destroy(c);
	free(image);
}
END_TEST

START_TEST(bad_jobs_stop_the_queue)
{
	uint64_t size;
	size_t len;
	struct np_job_desc j;

	np_emu_fb(L.emu, &size);
	len = put_frame(0, 2, 0, 0);
	/* no program loaded: SRAM is zero */
	j = job(0, (uint32_t)len, 0x100000);
	ck_assert_uint_eq(run(1, &j), NP_ERR_BAD_PROGRAM);
	cq_recover();
	load(L.sram[0], np_compiled_card(L.c, 0)->core_bytes);
	/* program outside SRAM */
	j.prog = NP_SRAM_SIZE;
	ck_assert_uint_eq(run(1, &j), NP_ERR_BAD_PROGRAM);
	cq_recover();
	/* arguments crossing the end of the frame buffer */
	j = job(size - 16, (uint32_t)len, 0x100000);
	ck_assert_uint_eq(run(1, &j), NP_ERR_SRC_RANGE);
	ck_assert_uint_eq(
		np_emu_mmio_read(L.emu, NP_COMPUTE_BASE + NP_Q_ERR_ADDR_LO),
		(uint32_t)(NP_CA_FB_BASE + size - 16));
	cq_recover();
	/* output crossing it */
	j = job(0, (uint32_t)len, size - 64);
	ck_assert_uint_eq(run(1, &j), NP_ERR_DST_RANGE);
	cq_recover();
	/* arg_len shorter than the token count says */
	j = job(0, (uint32_t)len - 1, 0x100000);
	ck_assert_uint_eq(run(1, &j), NP_ERR_BAD_PROGRAM);
	cq_recover();
	/* no tokens; unknown option bits; a position beyond the context */
	put_frame(0, 0, 0, 0);
	j = job(0, (uint32_t)len, 0x100000);
	ck_assert_uint_eq(run(1, &j), NP_ERR_BAD_PROGRAM);
	cq_recover();
	put_frame(0, 2, 0x100, 0);
	ck_assert_uint_eq(run(1, &j), NP_ERR_BAD_PROGRAM);
	cq_recover();
	put_frame(0, 2, 0, 40);
	ck_assert_uint_eq(run(1, &j), NP_ERR_BAD_PROGRAM);
	cq_recover();
	/* the card still works */
	put_frame(0, 2, 0, 0);
	ck_assert_uint_eq(run(1, &j), 0);
	ck_assert_uint_eq(np_emu_mmio_read(L.emu, NP_REG_JOBS), 1);
}
END_TEST

/* The card validates a program again after any write into the SRAM: a
 * DMA over its header, or a job's output landing on it. */
START_TEST(program_rewritten_is_validated_again)
{
	uint64_t prog = np_compiled_card(L.c, 0)->prog;
	struct np_dma_desc d = {.opcode = NP_DMA_OP_H2C,
				.len = 8,
				.src = HOST_BASE + DATA_OFF,
				.dst = NP_CA_SRAM_BASE + prog};
	struct np_job_desc j;
	size_t len;

	load(L.sram[0], np_compiled_card(L.c, 0)->core_bytes);
	len = put_frame(0, 2, 0, 0);
	j = job(0, (uint32_t)len, 0x100000);
	ck_assert_uint_eq(run(1, &j), 0);
	ck_assert_uint_eq(run(1, &j), 0);
	/* zero the magic by DMA */
	memset(L.host + DATA_OFF, 0, 8);
	ck_assert_uint_eq(run(0, &d), 0);
	ck_assert_uint_eq(run(1, &j), NP_ERR_BAD_PROGRAM);
	cq_recover();
	/* restored, the same job runs again */
	memcpy(L.host + DATA_OFF, L.sram[0] + prog, 8);
	ck_assert_uint_eq(run(0, &d), 0);
	ck_assert_uint_eq(run(1, &j), 0);
	/* a job whose output overwrites the program: the next one fails */
	j.out = NP_CA_SRAM_BASE + prog;
	ck_assert_uint_eq(run(1, &j), 0);
	j.out = NP_CA_FB_BASE + 0x100000;
	ck_assert_uint_eq(run(1, &j), NP_ERR_BAD_PROGRAM);
}
END_TEST

Suite *np_suite_layer_job(void)
{
	Suite *s = suite_create("layer_job");
	TCase *tc = tcase_create("layer_job");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, layer_card_matches_npk);
	tcase_add_test(tc, queued_frames_match_npk);
	tcase_add_test(tc, output_card_topk);
	tcase_add_test(tc, pass_through_card);
	tcase_add_test(tc, bad_jobs_stop_the_queue);
	tcase_add_test(tc, program_rewritten_is_validated_again);
	suite_add_tcase(s, tc);
	return s;
}
