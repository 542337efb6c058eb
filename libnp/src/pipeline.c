// SPDX-License-Identifier: MIT
/*
 * libnp pipeline: a model resident on cards, and GPipe sessions over it.
 *
 * Card roles (np_compile's order): layer cards 0..L-1, then output cards
 * L..L+O-1. Every card has S input slots and S output slots in its frame
 * buffer; frame k (counted over the pipeline's life) uses slot k % S on
 * every card. Mailbox events per card, as offsets from the values read at
 * creation (counters are wrap-around, targets are base + count):
 *
 *   EV_DATA    frames that arrived in an input slot
 *   EV_DONE    layer jobs completed (the input slot is free again)
 *   EV_SENT    output slots drained (forwarded, or read by the host)
 *   EV_CREDIT+j  input slots consumer j freed (its layer job finished)
 *
 * Frame k, slot s = k % S, w = k - S + 1 (the count that frees slot s):
 *   host    H2C embeddings -> card 0 in[s]   wait DONE >= w, signal DATA
 *   card i  job NOP                          wait SENT >= w  (out[s] free)
 *           job LAYER in[s] -> out[s]        wait DATA >= k+1, signal DONE,
 *                                            notify producer CREDIT+j
 *   layer   FENCE per consumer j             wait CREDIT+j >= w
 *           C2P out[s] -> consumer in[s]     wait DONE >= k+1, notify its
 *                                            DATA; the last signals SENT
 *   output  C2H out[s] -> host (top-k)       wait DONE >= k+1, signal SENT
 *
 * so the host posts descriptors ahead and only touches the first card's
 * input and the output cards' results. Host I/O uses DMA engine 0,
 * card-to-card forwarding engine 1, so neither blocks the other.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "np/pipeline.h"
#include "np_prog.h"
#include "recover.h"

/* frame buffer slots per direction: as many as fit, up to NPI_MAX_SLOTS.
 * More than two let frames queue at a card while it computes, so the
 * emulated card runs several of them in one pass over its weights. */
#define NPI_MAX_SLOTS 8u
#define NPI_MIN_SLOTS 2u
#define NPI_CQ_ENTRIES 256u
#define NPI_CQ_AHEAD 8u /* frames of compute jobs per doorbell */
#define NPI_MAX_OUT 5u
_Static_assert(2 * NPI_MAX_OUT <= NPI_XFER_BATCH, "a card's forwards");
#define NPI_CALIB_TOKENS 64u
#define NPI_LOAD_CORES 32u /* cores per image transfer batch */
#define NPI_POLL_MS 20 /* progress and failure checks while waiting */
#define NPI_SAMPLE_NS 1000000ull /* utilization samples at most this often */
#define NPI_PHASE_SAMPLE_BITS 3 /* 1 in 2^3 token loop iterations timed */

enum {
	EV_DATA = 0,
	EV_DONE = 1,
	EV_SENT = 2,
	EV_CREDIT = 3, /* .. EV_CREDIT + NPI_MAX_OUT - 1 */
	EV_COUNT = EV_CREDIT + NPI_MAX_OUT,
};

struct npi_stage {
	struct np_card *card;
	const struct np_card_plan *plan;
	unsigned int fwd_engine; /* 1, or 0 on a single-engine card */
	uint32_t ev[EV_COUNT]; /* counter values at creation */
	/* compute queue */
	struct np_buf *cq_mem;
	struct np_job_desc *ring;
	volatile struct np_queue_wb *wb;
	uint32_t cq_submitted;
	uint32_t cq_frames; /* frames whose jobs are in the ring */
	/* role */
	uint32_t producer; /* stage feeding this one (stage 0: none) */
	uint32_t consumer_idx; /* this stage's j at its producer */
	struct npi_weights_sum sum; /* of the image loaded (recover.c) */
};

struct np_pipeline {
	struct np_ctx *ctx;
	/* owned by np_model_load, NULL for np_pipeline_create */
	struct np_gguf *gguf;
	struct np_model *model;
	struct np_tok *tok;
	struct np_quant_calib *calib;
	struct np_compiled *owned;
	const struct np_compiled *c;

	uint32_t n_stages, n_layer, n_out;
	struct npi_stage st[NP_MAX_CARDS];
	uint32_t dim, vocab, batch, max_seq, frame_tokens;
	uint32_t max_slice; /* most vocabulary rows of one output card */
	uint64_t frame_max; /* bytes of a full frame */
	uint64_t in_off, in_size, out_off, out_size; /* FB layout */
	uint32_t slots; /* per direction; frame k uses slot k % slots */
	uint32_t frames; /* frames submitted so far (k of the next one) */
	int broken;
};

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

static void model_log(void *opaque, int level, const char *msg)
{
	npi_log(opaque, level, "%s", msg);
}

const struct np_tok *np_pipeline_tok(const struct np_pipeline *p)
{
	return p->tok;
}

const struct np_compiled *np_pipeline_compiled(const struct np_pipeline *p)
{
	return p->c;
}

uint32_t np_pipeline_cards(const struct np_pipeline *p)
{
	return p->n_stages;
}

uint32_t np_pipeline_max_sessions(const struct np_pipeline *p)
{
	return p->batch;
}

uint32_t np_pipeline_max_seq(const struct np_pipeline *p)
{
	return p->max_seq;
}

/* ---------------------------------------------------------------- */
/* Compute queues                                                     */

static void cq_write(struct npi_stage *st, uint32_t reg, uint32_t v)
{
	st->card->ctx->ops->reg_write(st->card, NP_COMPUTE_BASE + reg, v);
}

static uint32_t cq_read(struct npi_stage *st, uint32_t reg)
{
	return st->card->ctx->ops->reg_read(st->card, NP_COMPUTE_BASE + reg);
}

/*
 * Reset stage st's compute queue and wait until it no longer runs a job
 * (a job in flight is abandoned and still writes its record; until BUSY
 * clears the card ignores new ring and writeback addresses). -ETIMEDOUT
 * if it still runs one after the context's timeout, -ENODEV if the card
 * is gone.
 */
static int cq_quiesce(struct np_pipeline *p, struct npi_stage *st)
{
	uint64_t deadline =
		npi_now_ns() + (uint64_t)p->ctx->timeout_ms * 1000000ull;

	cq_write(st, NP_Q_CTRL, NP_Q_CTRL_RESET);
	while (cq_read(st, NP_Q_STATUS) & NP_Q_STATUS_BUSY) {
		if (np_card_removed(st->card))
			return -ENODEV;
		if (npi_now_ns() >= deadline)
			return -ETIMEDOUT;
		usleep(100);
	}
	return 0;
}

static int cq_start(struct np_pipeline *p, struct npi_stage *st)
{
	size_t ring = NPI_CQ_ENTRIES * sizeof(struct np_job_desc);
	uint64_t iova;
	int ret;

	ret = np_buf_alloc(p->ctx, ring + sizeof(struct np_queue_wb),
			   &st->cq_mem);
	if (ret)
		return ret;
	st->ring = np_buf_ptr(st->cq_mem);
	st->wb = (volatile struct np_queue_wb *)((uint8_t *)st->ring + ring);
	iova = np_buf_iova(st->cq_mem);
	ret = cq_quiesce(p, st);
	if (ret) {
		npi_log(p->ctx, LOG_ERR,
			"pipeline: card %s: compute queue still runs a job "
			"%u ms after its reset%s; reset the card (nptool "
			"reset)",
			st->card->name, p->ctx->timeout_ms,
			ret == -ENODEV ? " (the card is gone)" : "");
		return ret;
	}
	cq_write(st, NP_Q_RING_LO, (uint32_t)iova);
	cq_write(st, NP_Q_RING_HI, (uint32_t)(iova >> 32));
	cq_write(st, NP_Q_RING_SIZE, NPI_CQ_ENTRIES);
	cq_write(st, NP_Q_WB_LO, (uint32_t)(iova + ring));
	cq_write(st, NP_Q_WB_HI, (uint32_t)((iova + ring) >> 32));
	cq_write(st, NP_Q_WAIT_TIMEOUT, 0);
	cq_write(st, NP_Q_CTRL, NP_Q_CTRL_ENABLE);
	if (!(cq_read(st, NP_Q_STATUS) & NP_Q_STATUS_ENABLED)) {
		npi_log(p->ctx, LOG_ERR,
			"pipeline: card %s: compute queue did not enable "
			"(error %u); reset the card (nptool reset)",
			st->card->name, cq_read(st, NP_Q_ERROR));
		return -EIO;
	}
	st->cq_submitted = 0;
	st->cq_frames = 0;
	return 0;
}

static void cq_stop(struct np_pipeline *p, struct npi_stage *st)
{
	if (!st->cq_mem)
		return;
	/* the ring and record stay in use until the job in flight ends (a
	 * removed card no longer reaches them) */
	cq_quiesce(p, st);
	np_buf_free(st->cq_mem);
	st->cq_mem = NULL;
}

static uint32_t cq_completed(struct npi_stage *st)
{
	return __atomic_load_n(&st->wb->completed, __ATOMIC_ACQUIRE);
}

/* The queue stopped: say where and why. */
static int cq_check(struct np_pipeline *p, struct npi_stage *st)
{
	uint32_t status = __atomic_load_n(&st->wb->status, __ATOMIC_ACQUIRE);

	if (!(status & NP_Q_STATUS_ERROR))
		return 0;
	npi_log(p->ctx, LOG_ERR,
		"pipeline: card %s: compute queue stopped at job %u with "
		"NP_ERR %u (%s); the card image or frame layout is wrong: "
		"reload the model",
		st->card->name, cq_read(st, NP_Q_ERR_INDEX),
		cq_read(st, NP_Q_ERROR),
		cq_read(st, NP_Q_ERROR) == NP_ERR_BAD_PROGRAM ?
			"bad program or arguments" :
			"see docs/hardware.md, Errors");
	return -EIO;
}

/* Write job j into the ring; cq_doorbell() hands what was written to
 * the card. */
static int cq_push(struct np_pipeline *p, struct npi_stage *st,
		   const struct np_job_desc *j)
{
	uint64_t deadline = 0;
	int ret;

	while (st->cq_submitted - cq_completed(st) >= NPI_CQ_ENTRIES - 1) {
		ret = cq_check(p, st);
		if (ret)
			return ret;
		if (!deadline) {
			deadline = npi_now_ns() +
				   (uint64_t)p->ctx->timeout_ms * 1000000ull;
		} else if (npi_now_ns() > deadline) {
			npi_log(p->ctx, LOG_ERR,
				"pipeline: card %s: compute queue full for %d "
				"ms; a card stopped forwarding (check nptool "
				"status)",
				st->card->name, p->ctx->timeout_ms);
			return -ETIMEDOUT;
		}
		usleep(50);
	}
	st->ring[st->cq_submitted % NPI_CQ_ENTRIES] = *j;
	st->cq_submitted++;
	return 0;
}

static void cq_doorbell(struct npi_stage *st)
{
	__atomic_thread_fence(__ATOMIC_RELEASE);
	cq_write(st, NP_Q_TAIL, st->cq_submitted % NPI_CQ_ENTRIES);
}

/* ---------------------------------------------------------------- */
/* Creation                                                           */

static int load_images(struct np_pipeline *p, const struct np_pipeline_opts *o)
{
	uint64_t total = 0, done = 0, core_max = 0;
	struct np_buf *buf = NULL;
	uint8_t *sram = NULL;
	int ret = 0;

	for (uint32_t i = 0; i < p->n_stages; i++) {
		uint64_t cb = p->st[i].plan->core_bytes;

		total += cb * NP_NUM_CORES;
		core_max = cb > core_max ? cb : core_max;
	}
	if (o->progress)
		o->progress(o->progress_opaque, NP_LOAD_CARDS, 0, total);
	ret = np_buf_alloc(p->ctx, core_max * NPI_LOAD_CORES, &buf);
	for (uint32_t i = 0; i < p->n_stages && !ret; i++) {
		struct npi_stage *st = &p->st[i];
		uint64_t cb = st->plan->core_bytes;

		/* fresh zero pages: only the cores' used parts get touched */
		sram = calloc(1, NP_SRAM_SIZE);
		if (!sram) {
			ret = -ENOMEM;
			break;
		}
		ret = np_compile_card_image(p->c, i, sram);
		if (!ret)
			npi_weights_sum(sram, st->plan, &st->sum);
		for (uint32_t c0 = 0; c0 < NP_NUM_CORES && !ret;
		     c0 += NPI_LOAD_CORES) {
			struct np_xfer *x[NPI_LOAD_CORES] = {0};

			for (uint32_t c = 0; c < NPI_LOAD_CORES; c++)
				memcpy((uint8_t *)np_buf_ptr(buf) + c * cb,
				       sram + (uint64_t)(c0 + c) *
						       NP_CORE_SRAM_SIZE,
				       cb);
			for (uint32_t c = 0; c < NPI_LOAD_CORES && !ret; c++) {
				struct np_xfer_spec s = {
					.op = NP_XFER_H2C,
					.engine = 0,
					.buf = buf,
					.buf_offset = c * cb,
					.card_addr = NP_CA_SRAM_BASE +
						     (uint64_t)(c0 + c) *
							     NP_CORE_SRAM_SIZE,
					.len = cb,
				};

				ret = np_xfer_submit(st->card, &s, &x[c]);
			}
			for (uint32_t c = 0; c < NPI_LOAD_CORES; c++) {
				int r = x[c] ? np_xfer_wait(
						       x[c],
						       NP_TIMEOUT_DEFAULT) :
					       0;

				ret = ret ? ret : r;
				np_xfer_free(x[c]);
			}
			done += cb * NPI_LOAD_CORES;
			if (!ret && o->progress)
				o->progress(o->progress_opaque, NP_LOAD_CARDS,
					    done, total);
		}
		free(sram);
		if (ret)
			npi_log(p->ctx, LOG_ERR,
				"pipeline: card %s: loading its image failed "
				"(%s)",
				st->card->name, strerror(-ret));
	}
	np_buf_free(buf);
	return ret;
}

/* dim, sessions and context length, from the first card's program */
static int read_shape(struct np_pipeline *p)
{
	const struct np_card_plan *pl = p->st[0].plan;
	uint8_t *sram = calloc(1, NP_SRAM_SIZE);
	struct npk_card h;
	int ret;

	if (!sram)
		return -ENOMEM;
	ret = np_compile_card_image(p->c, 0, sram);
	if (!ret) {
		memcpy(&h, sram + pl->prog, sizeof(h));
		p->dim = h.dim;
		p->batch = h.batch;
		p->max_seq = h.max_seq;
	}
	free(sram);
	return ret;
}

/*
 * Slots per direction for a slot pair of pair bytes: as many as every
 * card's frame buffer holds, at most NPI_MAX_SLOTS, at least NPI_MIN_SLOTS
 * (check_cards() says so if even those do not fit).
 */
static uint32_t fb_slots(const struct np_pipeline *p, uint64_t pair)
{
	uint64_t fb = UINT64_MAX, n;

	for (uint32_t i = 0; i < p->n_stages; i++)
		if (p->st[i].card->info.fb_size < fb)
			fb = p->st[i].card->info.fb_size;
	n = fb / pair;
	if (n > NPI_MAX_SLOTS)
		n = NPI_MAX_SLOTS;
	return n < NPI_MIN_SLOTS ? NPI_MIN_SLOTS : (uint32_t)n;
}

static int check_cards(struct np_pipeline *p)
{
	for (uint32_t i = 0; i < p->n_stages; i++) {
		struct npi_stage *st = &p->st[i];
		const struct np_card_info *in = &st->card->info;

		if (in->sram_size < NP_SRAM_SIZE ||
		    in->fb_size < p->out_off + p->out_size) {
			npi_log(p->ctx, LOG_ERR,
				"pipeline: card %s has %llu MiB SRAM and %llu "
				"KiB frame buffer; the model needs %u MiB and "
				"%llu KiB: use full-size cards (emu: leave "
				"emu_sram_size/emu_fb_size at 0)",
				st->card->name,
				(unsigned long long)(in->sram_size >> 20),
				(unsigned long long)(in->fb_size >> 10),
				NP_SRAM_SIZE >> 20,
				(unsigned long long)((p->out_off +
						      p->out_size) >>
						     10));
			return -E2BIG;
		}
		if (i && !p->st[st->producer].card->info.mbox_iova) {
			npi_log(p->ctx, LOG_ERR,
				"pipeline: card %s cannot reach the mailbox of "
				"card %s (peers not mapped); the pipeline "
				"needs direct card-to-card access: do not "
				"force bounce mode, put the cards in one "
				"IOMMU-capable context",
				st->card->name, p->st[st->producer].card->name);
			return -ENOTSUP;
		}
		for (uint32_t e = 0; e < EV_COUNT; e++) {
			int ret = np_card_event_read(st->card, e, &st->ev[e]);

			if (ret)
				return ret;
		}
		st->fwd_engine = st->card->num_engines > 1 ? 1 : 0;
	}
	return 0;
}

static int pipeline_init(struct np_pipeline *p,
			 const struct np_pipeline_opts *o)
{
	const struct np_compiled *c = p->c;
	uint32_t n = np_compiled_n_cards(c);
	uint64_t row;
	int ret;

	if (n < 2 || n > np_ctx_num_cards(p->ctx)) {
		npi_log(p->ctx, LOG_ERR,
			"pipeline: the model is compiled for %u cards, the "
			"context has %u: open as many cards "
			"(NP_DEVICES=emu:%u)",
			n, np_ctx_num_cards(p->ctx), n);
		return -ENODEV;
	}
	p->n_stages = n;
	for (uint32_t i = 0; i < n; i++) {
		const struct np_card_plan *pl = np_compiled_card(c, i);

		p->st[i].plan = pl;
		p->st[i].card = np_ctx_card(p->ctx, i);
		if (pl->kind == NP_CARD_LAYERS) {
			if (p->n_out) {
				npi_log(p->ctx, LOG_ERR,
					"pipeline: card %u holds layers after "
					"an output card; recompile the model",
					i);
				return -EINVAL;
			}
			p->n_layer++;
		} else {
			uint32_t rows = pl->vocab_end - pl->vocab_begin;

			p->n_out++;
			p->vocab = pl->vocab_end;
			p->max_slice =
				rows > p->max_slice ? rows : p->max_slice;
		}
	}
	if (!p->n_layer || !p->n_out || p->n_out > NPI_MAX_OUT) {
		npi_log(p->ctx, LOG_ERR,
			"pipeline: %u layer cards and %u output cards; the "
			"pipeline needs at least one of each and at most %u "
			"output cards: compile with out_cards <= %u",
			p->n_layer, p->n_out, NPI_MAX_OUT, NPI_MAX_OUT);
		return -EINVAL;
	}
	ret = read_shape(p);
	if (ret)
		return ret;
	/* who feeds whom: layer cards in a chain, the last one feeding every
	 * output card */
	for (uint32_t i = 1; i < n; i++) {
		struct npi_stage *st = &p->st[i];

		if (i < p->n_layer) {
			st->producer = i - 1;
			st->consumer_idx = 0;
		} else {
			st->producer = p->n_layer - 1;
			st->consumer_idx = i - p->n_layer;
		}
	}
	p->frame_tokens =
		o->frame_tokens ? o->frame_tokens : NP_DEFAULT_FRAME_TOKENS;
	row = NP_JOB_ARG_TOK + (uint64_t)p->dim * 2;
	p->frame_max = NP_JOB_ARG_HDR + p->frame_tokens * row;
	p->in_off = 0;
	p->in_size = align_up(p->frame_max, 4096);
	{
		uint64_t lo = (uint64_t)p->frame_tokens * p->max_slice * 4;
		uint64_t tk = (uint64_t)p->frame_tokens * NP_JOB_TOPK_MAX *
			      sizeof(struct np_job_topk);
		uint64_t m = lo > tk ? lo : tk;

		m = m > p->frame_max ? m : p->frame_max;
		p->out_size = align_up(m, 4096);
	}
	p->slots = fb_slots(p, p->in_size + p->out_size);
	p->out_off = p->in_off + p->slots * p->in_size;
	p->out_size *= p->slots;
	ret = check_cards(p);
	if (ret)
		return ret;
	ret = load_images(p, o);
	for (uint32_t i = 0; i < n && !ret; i++)
		ret = cq_start(p, &p->st[i]);
	return ret;
}

void np_pipeline_destroy(struct np_pipeline *p)
{
	if (!p)
		return;
	for (uint32_t i = 0; i < p->n_stages; i++)
		cq_stop(p, &p->st[i]);
	np_compiled_destroy(p->owned);
	np_quant_calib_destroy(p->calib);
	np_tok_destroy(p->tok);
	np_model_destroy(p->model);
	np_gguf_close(p->gguf);
	free(p);
}

int np_pipeline_create(struct np_ctx *ctx, const struct np_compiled *c,
		       const struct np_pipeline_opts *opts,
		       struct np_pipeline **out)
{
	const struct np_pipeline_opts none = {0};
	struct np_pipeline *p;
	int ret;

	*out = NULL;
	if (!ctx || !c)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->ctx = ctx;
	p->c = c;
	ret = pipeline_init(p, opts ? opts : &none);
	if (ret) {
		np_pipeline_destroy(p);
		return ret;
	}
	*out = p;
	return 0;
}

struct np_card *npi_pipeline_card(struct np_pipeline *p, uint32_t i,
				  struct npi_weights_sum *sum)
{
	if (i >= p->n_stages)
		return NULL;
	if (sum)
		*sum = p->st[i].sum;
	return p->st[i].card;
}

int npi_pipeline_cq_failed(struct np_pipeline *p, uint32_t i)
{
	const struct npi_stage *st = &p->st[i];

	return st->cq_mem &&
	       (__atomic_load_n(&st->wb->status, __ATOMIC_ACQUIRE) &
		NP_Q_STATUS_ERROR);
}

void npi_pipeline_replace(struct np_pipeline *p, uint32_t i,
			  struct np_card *card)
{
	cq_stop(p, &p->st[i]);
	p->st[i].card = card;
}

int npi_pipeline_reload(struct np_pipeline *p)
{
	const struct np_pipeline_opts none = {0};
	int ret = 0;

	/* Reset first: a hung or dead card's compute queue then stops at
	 * once instead of after cq_stop's timeout. */
	for (uint32_t i = 0; i < p->n_stages && !ret; i++) {
		ret = np_card_reset(p->st[i].card);
		cq_stop(p, &p->st[i]);
	}
	if (!ret)
		ret = check_cards(p);
	if (!ret)
		ret = load_images(p, &none);
	for (uint32_t i = 0; i < p->n_stages && !ret; i++)
		ret = cq_start(p, &p->st[i]);
	if (ret)
		return ret;
	p->frames = 0;
	p->broken = 0;
	return 0;
}

/* Activation scales from the first NPI_CALIB_TOKENS tokens of the text. */
static int calibrate(struct np_pipeline *p, const struct np_pipeline_opts *o)
{
	size_t len = o->calib_len, n = 0;
	int32_t *ids;
	int ret;

	if (!o->calib_text || !len)
		return np_quant_calib_default(p->model, &p->calib);
	/* a prefix of the text is enough; a token covers at least a byte */
	if (len > 16 * NPI_CALIB_TOKENS)
		len = 16 * NPI_CALIB_TOKENS;
	ids = malloc((len + 1) * sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	ret = np_tok_encode(p->tok, o->calib_text, len, ids, len + 1, &n);
	if (!ret && n > NPI_CALIB_TOKENS)
		n = NPI_CALIB_TOKENS;
	if (!ret)
		ret = n ? np_quant_calibrate(p->model, ids, n, &p->calib) :
			  np_quant_calib_default(p->model, &p->calib);
	free(ids);
	return ret;
}

int np_model_load(struct np_ctx *ctx, const char *path,
		  const struct np_pipeline_opts *opts, struct np_pipeline **out)
{
	const struct np_pipeline_opts none = {0};
	const struct np_pipeline_opts *o = opts ? opts : &none;
	struct np_model_log lg = {model_log, ctx};
	struct np_compile_opts co = {0};
	struct np_pipeline *p;
	int ret;

	*out = NULL;
	if (!ctx || !path)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->ctx = ctx;
	if (o->progress)
		o->progress(o->progress_opaque, NP_LOAD_MODEL, 0, 1);
	ret = np_gguf_open(path, &lg, &p->gguf);
	if (ret)
		npi_log(ctx, LOG_ERR, "pipeline: cannot open model %s (%s)",
			path, strerror(-ret));
	ret = ret ? ret : np_model_from_gguf(p->gguf, &lg, &p->model);
	ret = ret ? ret : np_tok_from_gguf(p->gguf, &lg, &p->tok);
	if (!ret && o->progress) {
		o->progress(o->progress_opaque, NP_LOAD_MODEL, 1, 1);
		o->progress(o->progress_opaque, NP_LOAD_COMPILE, 0, 1);
	}
	ret = ret ? ret : calibrate(p, o);
	if (!ret) {
		co.n_cards = o->n_cards ? o->n_cards : np_ctx_num_cards(ctx);
		co.out_cards = o->out_cards    ? o->out_cards :
			       co.n_cards >= 3 ? 2 :
						 0;
		co.batch =
			o->max_sessions ? o->max_sessions : NP_DEFAULT_SESSIONS;
		co.max_seq = o->max_seq ? o->max_seq : NP_DEFAULT_LOAD_MAX_SEQ;
		if (co.n_cards > np_ctx_num_cards(ctx)) {
			npi_log(ctx, LOG_ERR,
				"pipeline: %u cards asked for, the context has "
				"%u: open more cards (NP_DEVICES=emu:%u) or "
				"ask for fewer",
				co.n_cards, np_ctx_num_cards(ctx), co.n_cards);
			ret = -ENODEV;
		}
	}
	ret = ret ? ret : np_compile(p->model, p->calib, &co, &lg, &p->owned);
	if (!ret && o->progress)
		o->progress(o->progress_opaque, NP_LOAD_COMPILE, 1, 1);
	p->c = p->owned;
	ret = ret ? ret : pipeline_init(p, o);
	if (ret) {
		np_pipeline_destroy(p);
		return ret;
	}
	*out = p;
	return 0;
}

/* ---------------------------------------------------------------- */
/* Sessions                                                           */

struct npi_req {
	const struct np_request *r;
	int32_t *seq; /* prompt, then generated tokens */
	uint32_t len; /* tokens in seq */
	uint32_t fed; /* tokens of seq sent to the cards */
	uint64_t rng;
	enum np_stop_reason stop; /* != NONE: finished */
	struct np_request_stats st;
};

struct npi_frame {
	uint32_t k, m, n;
	uint32_t *req; /* per row: request */
	uint8_t *sample; /* per row: its output picks the next token */
	struct np_xfer **x;
	uint32_t nx;
};

/* Statistics registers of a stage's forwarding engine (np_abi.h) */
struct npi_fwd_stats {
	uint32_t fence_waits, work_done;
	uint64_t fence_ns, work_ns;
};

enum npi_phase {
	NPI_SUBMIT,
	NPI_WAIT,
	NPI_SAMPLE,
	NPI_PHASES,
};

struct npi_run {
	struct np_pipeline *p;
	uint64_t removed_at; /* last look for removed cards */
	const struct np_session_opts *o;
	struct npi_req *rq;
	uint32_t n, m, cand;
	struct np_buf *host;
	uint64_t host_slot, out_at[NPI_MAX_OUT]; /* offsets in a host slot */
	struct npi_frame *fr; /* one per micro-batch */
	int32_t *logits; /* full_logits: vocab */
	int32_t *cv; /* candidates */
	uint32_t *ci;
	uint64_t t0;
	/* statistics */
	uint64_t busy_t, in_flight_t, in_flight_acc;
	uint32_t in_flight;
	uint64_t busy_ns[NP_MAX_CARDS];
	struct npi_fwd_stats fwd0[NP_MAX_CARDS]; /* at the start of the run */
	uint64_t frames, prompt_tokens, tokens;
	/* host CPU time of the token loop's parts (enum npi_phase) and their
	 * register access counts over the timed iterations (timing: this one
	 * is), the token callback's CPU time (all, in timed iterations) */
	uint64_t cpu[NPI_PHASES];
	struct npi_reg_acct reg[NPI_PHASES];
	uint64_t loops, timed_loops;
	bool timing;
	uint64_t cpu_callback, cpu_callback_timed;
	/* the last phase_end() */
	uint64_t cpu_t;
	struct npi_reg_acct reg_t;
};

/* Start timing a token loop iteration, one in 2^NPI_PHASE_SAMPLE_BITS
 * (the CPU clock costs a system call), picked by Fibonacci hashing of the
 * count: an iteration's work has periods (micro-batches, compute jobs
 * posted 8 frames at a time) that every n-th one would alias with. */
static void phase_begin(struct npi_run *R)
{
	R->timing = (R->loops++ * 0x9e3779b97f4a7c15ull) >>
			    (64 - NPI_PHASE_SAMPLE_BITS) ==
		    0;
	if (!R->timing)
		return;
	R->timed_loops++;
	npi_thread_cpu_cost();
	R->cpu_t = npi_thread_cpu_ns();
	R->reg_t = npi_reg_acct;
}

/* Charge the CPU time and register accesses since the last call to
 * phase ph (np_session_stats.host_*), in a timed iteration. */
static void phase_end(struct npi_run *R, enum npi_phase ph)
{
	uint64_t now;
	struct npi_reg_acct b, *a = &R->reg_t;

	if (!R->timing)
		return;
	now = npi_thread_cpu_ns();
	b = npi_reg_acct;
	/* less the clock's own cost, which a loop not timed does not pay */
	R->cpu[ph] += now - R->cpu_t > npi_thread_cpu_cost() ?
			      now - R->cpu_t - npi_thread_cpu_cost() :
			      0;
	for (int k = 0; k < 2; k++)
		R->reg[ph].n[k] += b.n[k] - a->n[k];
	R->cpu_t = now;
	R->reg_t = b;
}

/* CPU time of phase ph over the whole loop without the emulated cards'
 * register handling (at the run's time per access; run: the whole call's
 * accesses) and, for NPI_SAMPLE, without the token callback. */
static uint64_t phase_host_ns(const struct npi_run *R, enum npi_phase ph,
			      const struct npi_reg_acct *run)
{
	uint64_t emu = npi_reg_emu_ns(run, &R->reg[ph]);
	uint64_t cb = ph == NPI_SAMPLE ? R->cpu_callback_timed : 0;

	if (!R->timed_loops || R->cpu[ph] < emu + cb)
		return 0;
	return (uint64_t)((double)(R->cpu[ph] - emu - cb) * (double)R->loops /
			  (double)R->timed_loops);
}

static bool better(int32_t a, uint32_t ia, int32_t b, uint32_t ib)
{
	return a > b || (a == b && ia < ib);
}

/* Insert (val, idx) into the k best so far (largest first, ties by lower
 * index): the order the output cards use. */
static void topk_push(int32_t *v, uint32_t *id, uint32_t *have, uint32_t k,
		      int32_t val, uint32_t idx)
{
	uint32_t j;

	if (*have == k && !better(val, idx, v[k - 1], id[k - 1]))
		return;
	j = *have < k ? (*have)++ : k - 1;
	while (j > 0 && better(val, idx, v[j - 1], id[j - 1])) {
		v[j] = v[j - 1];
		id[j] = id[j - 1];
		j--;
	}
	v[j] = val;
	id[j] = idx;
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int32_t sample(const struct np_sampling *sp, uint64_t *rng,
		      const int32_t *v, const uint32_t *id, uint32_t n,
		      double scale)
{
	double w[NP_JOB_TOPK_MAX], sum = 0, cut, u;
	uint32_t k = sp->top_k && sp->top_k < n ? sp->top_k : n;

	if (sp->temperature <= 0)
		return (int32_t)id[0];
	for (uint32_t i = 0; i < k; i++) {
		w[i] = exp(((double)v[i] - v[0]) * scale / sp->temperature);
		sum += w[i];
	}
	if (sp->top_p > 0 && sp->top_p < 1) {
		double acc = 0;

		for (uint32_t i = 0; i < k; i++) {
			acc += w[i];
			if (acc >= sp->top_p * sum) {
				k = i + 1;
				break;
			}
		}
		sum = acc;
	}
	cut = (double)(splitmix64(rng) >> 11) * 0x1.0p-53 * sum;
	u = 0;
	for (uint32_t i = 0; i < k; i++) {
		u += w[i];
		if (cut < u)
			return (int32_t)id[i];
	}
	return (int32_t)id[k - 1];
}

static int add_xfer(struct npi_frame *f, struct np_card *card,
		    const struct np_xfer_spec *s)
{
	struct np_xfer *x;
	int ret = np_xfer_submit(card, s, &x);

	if (!ret)
		f->x[f->nx++] = x;
	return ret;
}

/* Count c as an event target of stage st. */
static uint32_t ev(const struct npi_stage *st, unsigned int e, uint32_t c)
{
	return st->ev[e] + c;
}

/* The NOP and LAYER jobs of frame k on stage i. */
static int cq_post_frame(struct np_pipeline *p, uint32_t i, uint32_t k)
{
	struct npi_stage *st = &p->st[i];
	uint32_t s = k % p->slots, w = k + 1 - p->slots;
	struct np_job_desc j = {
		.opcode = NP_JOB_OP_NOP,
		.flags = NP_DESC_F_WAIT,
		.wait_event = EV_SENT,
		.wait_value = ev(st, EV_SENT, w),
	};
	int ret;

	if (k >= p->slots) {
		ret = cq_push(p, st, &j);
		if (ret)
			return ret;
	}
	memset(&j, 0, sizeof(j));
	j.opcode = NP_JOB_OP_LAYER;
	j.flags = NP_DESC_F_WAIT | NP_DESC_F_SIGNAL;
	j.wait_event = EV_DATA;
	j.wait_value = ev(st, EV_DATA, k + 1);
	j.signal_event = EV_DONE;
	/* the whole slot: the frame's header says how much of it is used */
	j.arg_len = (uint32_t)p->in_size;
	j.prog = st->plan->prog;
	j.arg = NP_CA_FB_BASE + p->in_off + s * p->in_size;
	j.out = NP_CA_FB_BASE + p->out_off + s * (p->out_size / p->slots);
	j.user = k;
	if (i) {
		const struct npi_stage *pr = &p->st[st->producer];

		j.flags |= NP_DESC_F_NOTIFY;
		j.notify_addr = pr->card->info.mbox_iova +
				NP_MBOX_EVENT(EV_CREDIT + st->consumer_idx) -
				NP_MBOX_OFFSET;
		j.notify_data = 1;
	}
	return cq_push(p, st, &j);
}

/*
 * Make sure stage i's jobs for frame k are posted. They depend on k
 * alone, so jobs for up to NPI_CQ_AHEAD frames go behind one doorbell
 * while the ring has room; jobs of frames not sent yet just wait for
 * their data, in this run or the next.
 */
static int cq_post_frames(struct np_pipeline *p, uint32_t i, uint32_t k)
{
	struct npi_stage *st = &p->st[i];
	uint32_t n = 0;
	int ret;

	if ((int32_t)(st->cq_frames - k) > 0)
		return 0;
	/* every job in the ring is for a frame already sent: room comes */
	for (; (int32_t)(st->cq_frames - k) <= 0; st->cq_frames++, n++) {
		ret = cq_post_frame(p, i, st->cq_frames);
		if (ret)
			return ret;
	}
	for (; n < NPI_CQ_AHEAD &&
	       st->cq_submitted - cq_completed(st) + 2 < NPI_CQ_ENTRIES;
	     st->cq_frames++, n++) {
		ret = cq_post_frame(p, i, st->cq_frames);
		if (ret)
			return ret;
	}
	cq_doorbell(st);
	return 0;
}

/* Post every descriptor of frame f (rows already in the host slot). */
static int post_frame(struct npi_run *R, struct npi_frame *f, uint32_t len)
{
	struct np_pipeline *p = R->p;
	uint32_t k = f->k, s = k % p->slots, w = k + 1 - p->slots;
	bool wait_slot = k >= p->slots;
	uint64_t in = NP_CA_FB_BASE + p->in_off + s * p->in_size;
	uint64_t out =
		NP_CA_FB_BASE + p->out_off + s * (p->out_size / p->slots);
	uint64_t hbase = f->m * R->host_slot;
	uint32_t opt = R->o->full_logits ? 0 : R->cand;
	int ret;

	{
		struct npi_stage *st = &p->st[0];
		struct np_xfer_spec x = {
			.op = NP_XFER_H2C,
			.flags = NP_XFER_F_SIGNAL |
				 (wait_slot ? NP_XFER_F_WAIT : 0),
			.engine = 0,
			.buf = R->host,
			.buf_offset = hbase,
			.card_addr = in,
			.len = len,
			.wait_event = EV_DONE,
			.wait_value = ev(st, EV_DONE, w),
			.signal_event = EV_DATA,
		};

		memcpy((uint8_t *)np_buf_ptr(R->host) + hbase + 4, &opt, 4);
		ret = add_xfer(f, st->card, &x);
		if (ret)
			return ret;
	}
	for (uint32_t i = 0; i < p->n_stages; i++) {
		struct npi_stage *st = &p->st[i];
		bool is_out = i >= p->n_layer;

		ret = cq_post_frames(p, i, k);
		if (ret)
			return ret;
		if (is_out) {
			uint32_t o = i - p->n_layer;
			struct np_xfer_spec x = {
				.op = NP_XFER_C2H,
				.flags = NP_XFER_F_WAIT | NP_XFER_F_SIGNAL,
				.engine = 0,
				.buf = R->host,
				.buf_offset = hbase + R->out_at[o],
				.card_addr = out,
				.len = f->n *
				       (R->o->full_logits ?
						(size_t)(st->plan->vocab_end -
							 st->plan->vocab_begin) *
							4 :
						(size_t)R->cand *
							sizeof(struct
							       np_job_topk)),
				.wait_event = EV_DONE,
				.wait_value = ev(st, EV_DONE, k + 1),
				.signal_event = EV_SENT,
			};

			ret = add_xfer(f, st->card, &x);
			if (ret)
				return ret;
			continue;
		}
		/* forward to the consumers: the next layer card, or every
		 * output card; fences and copies behind one doorbell */
		{
			uint32_t c0 = i + 1 < p->n_layer ? i + 1 : p->n_layer;
			uint32_t c1 = i + 1 < p->n_layer ? i + 2 : p->n_stages;
			struct np_xfer_spec x[2 * NPI_MAX_OUT];
			uint32_t nx = 0;

			for (uint32_t c = c0; c < c1 && wait_slot; c++) {
				uint32_t e = EV_CREDIT + c - c0;

				x[nx++] = (struct np_xfer_spec){
					.op = NP_XFER_FENCE,
					.flags = NP_XFER_F_WAIT,
					.engine = (int)st->fwd_engine,
					.wait_event = e,
					.wait_value = ev(st, e, w),
				};
			}
			for (uint32_t c = c0; c < c1; c++) {
				x[nx] = (struct np_xfer_spec){
					.op = NP_XFER_C2C,
					.flags = NP_XFER_F_PEER_EVENT,
					.engine = (int)st->fwd_engine,
					.card_addr = out,
					.dst_addr = in,
					.peer = p->st[c].card,
					.len = len,
					.wait_event = EV_DONE,
					.wait_value = ev(st, EV_DONE, k + 1),
					.signal_event = EV_SENT,
					.peer_event = EV_DATA,
				};
				if (c == c0)
					x[nx].flags |= NP_XFER_F_WAIT;
				if (c == c1 - 1)
					x[nx].flags |= NP_XFER_F_SIGNAL;
				nx++;
			}
			/* untracked: the output cards' results complete after
			 * them, and a failure stops the engine */
			ret = npi_xfer_submit_batch(st->card, st->fwd_engine, x,
						    nx, NULL);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/* Build and post the next frame of micro-batch m; 0 if it has nothing to
 * send, 1 if posted, or -errno. */
static int submit(struct npi_run *R, uint32_t m)
{
	struct np_pipeline *p = R->p;
	struct npi_frame *f = &R->fr[m];
	uint8_t *h = (uint8_t *)np_buf_ptr(R->host) + m * R->host_slot;
	uint32_t active = 0, quota, n = 0;
	size_t row = (size_t)p->dim * 2;
	int ret;

	for (uint32_t r = m; r < R->n; r += R->m)
		active += !R->rq[r].stop;
	if (!active)
		return 0;
	quota = p->frame_tokens / active;
	for (uint32_t r = m; r < R->n; r += R->m) {
		struct npi_req *q = &R->rq[r];
		uint32_t take = q->len - q->fed;

		if (q->stop)
			continue;
		take = take < quota ? take : quota;
		for (uint32_t t = 0; t < take; t++, n++) {
			struct npk_tok tk = {r, q->fed};

			memcpy(h + NP_JOB_ARG_HDR + (size_t)n * sizeof(tk), &tk,
			       sizeof(tk));
			f->req[n] = r;
			f->sample[n] = q->fed + 1 == q->len;
			R->prompt_tokens += q->fed < q->r->n_prompt;
			q->fed++;
		}
	}
	/* the embeddings follow the token table */
	for (uint32_t i = 0; i < n; i++) {
		struct npk_tok tk;

		memcpy(&tk, h + NP_JOB_ARG_HDR + (size_t)i * sizeof(tk),
		       sizeof(tk));
		ret = np_compiled_embed(p->c, R->rq[tk.slot].seq[tk.pos],
					(int16_t *)(h + NP_JOB_ARG_HDR +
						    (size_t)n * sizeof(tk) +
						    i * row));
		if (ret)
			return ret;
	}
	memcpy(h, &n, 4);
	f->k = p->frames++;
	f->m = m;
	f->n = n;
	f->nx = 0;
	R->frames++;
	ret = post_frame(R, f,
			 NP_JOB_ARG_HDR + n * (uint32_t)(NP_JOB_ARG_TOK + row));
	return ret ? ret : 1;
}

/*
 * Hop latency and credit stalls come from the card's own statistics
 * registers of the forwarding engine, exact (np_session_stats): its work
 * is the forwards (C2P), its fence waits the credit waits. A single-engine
 * card 0 also moves the host's frames on that engine: not measured; nor
 * is a card older than ABI 1.1, which has no statistics.
 */
static bool fwd_measured(const struct np_pipeline *p, uint32_t i)
{
	const struct npi_stage *st = &p->st[i];

	return i < p->n_layer && p->n_stages > 1 &&
	       st->card->info.abi_minor >= 1 && (st->fwd_engine || i);
}

static uint32_t fwd_rd(const struct npi_stage *st, uint32_t reg)
{
	return st->card->ctx->ops->reg_read(st->card,
					    NP_DMA_BASE(st->fwd_engine) + reg);
}

static void fwd_read(const struct npi_stage *st, struct npi_fwd_stats *s)
{
	s->fence_waits = fwd_rd(st, NP_Q_FENCE_WAITS);
	/* _LO first: it latches _HI */
	s->fence_ns = fwd_rd(st, NP_Q_FENCE_NS_LO);
	s->fence_ns |= (uint64_t)fwd_rd(st, NP_Q_FENCE_NS_HI) << 32;
	s->work_done = fwd_rd(st, NP_Q_WORK_DONE);
	s->work_ns = fwd_rd(st, NP_Q_WORK_NS_LO);
	s->work_ns |= (uint64_t)fwd_rd(st, NP_Q_WORK_NS_HI) << 32;
}

/*
 * Wait until the forwarding engine executed everything posted to it. A
 * forward the host saw complete (its writeback record) is in the
 * statistics once HEAD moved past it; between runs no frame is left, so
 * the engine drains.
 */
static void fwd_drain(const struct npi_stage *st, uint64_t deadline)
{
	while ((fwd_rd(st, NP_Q_HEAD) != fwd_rd(st, NP_Q_TAIL) ||
		(fwd_rd(st, NP_Q_STATUS) & NP_Q_STATUS_BUSY)) &&
	       npi_now_ns() < deadline)
		usleep(50);
}

static uint64_t fwd_deadline(const struct np_pipeline *p)
{
	return npi_now_ns() + (uint64_t)p->ctx->timeout_ms * 1000000ull;
}

static void fwd_start(struct npi_run *R)
{
	struct np_pipeline *p = R->p;
	uint64_t deadline = fwd_deadline(p);

	for (uint32_t i = 0; i < p->n_stages; i++) {
		struct npi_stage *st = &p->st[i];

		if (!fwd_measured(p, i))
			continue;
		/* the last forward of the previous run is not this run's */
		fwd_drain(st, deadline);
		fwd_read(st, &R->fwd0[i]);
		st->card->ctx->ops->reg_write(
			st->card,
			NP_DMA_BASE(st->fwd_engine) + NP_Q_WORK_MAX_NS, 0);
	}
}

/* The run's statistics of every forwarding engine into stats. */
static void fwd_end(struct npi_run *R, struct np_session_stats *stats)
{
	struct np_pipeline *p = R->p;
	uint64_t deadline = fwd_deadline(p);

	for (uint32_t i = 0; i < p->n_stages; i++) {
		const struct npi_fwd_stats *a = &R->fwd0[i];
		struct npi_stage *st = &p->st[i];
		struct npi_fwd_stats b;

		if (!fwd_measured(p, i))
			continue;
		fwd_drain(st, deadline);
		fwd_read(st, &b);
		/* a reset during the run cleared the counters */
		if (b.fence_ns < a->fence_ns || b.work_ns < a->work_ns)
			continue;
		stats->hop_frames[i] = b.work_done - a->work_done;
		stats->hop_mean_ns[i] = stats->hop_frames[i] ?
						(b.work_ns - a->work_ns) /
							stats->hop_frames[i] :
						0;
		stats->hop_max_ns[i] = fwd_rd(st, NP_Q_WORK_MAX_NS);
		stats->credit_stalls[i] = b.fence_waits - a->fence_waits;
		stats->credit_stall_ns[i] = b.fence_ns - a->fence_ns;
	}
}

/*
 * Card utilization: a card is busy while it has a frame to compute, its
 * input arrived (DATA) and its layer job has not finished (DONE). The
 * host samples the counters when it wakes, at most every NPI_SAMPLE_NS
 * and at least every NPI_POLL_MS, and charges the interval since the
 * last sample to the cards busy now.
 */
static void sample_busy(struct npi_run *R)
{
	struct np_pipeline *p = R->p;
	uint64_t now = npi_now_ns(), dt = now - R->busy_t;

	/* register reads cost a PCIe round trip each on real cards */
	if (dt < NPI_SAMPLE_NS)
		return;

	for (uint32_t i = 0; i < p->n_stages; i++) {
		struct npi_stage *st = &p->st[i];
		uint32_t data = 0, done = 0;

		np_card_event_read(st->card, EV_DATA, &data);
		np_card_event_read(st->card, EV_DONE, &done);
		if ((int32_t)((data - st->ev[EV_DATA]) -
			      (done - st->ev[EV_DONE])) > 0)
			R->busy_ns[i] += dt;
	}
	R->busy_t = now;
}

static void account_in_flight(struct npi_run *R, int delta)
{
	uint64_t now = npi_now_ns();

	R->in_flight_acc += (now - R->in_flight_t) * R->in_flight;
	R->in_flight_t = now;
	R->in_flight += delta;
	sample_busy(R);
}

/* Layer jobs completed over all cards: moves while the pipeline works. */
static uint64_t progress_mark(struct np_pipeline *p)
{
	uint64_t sum = 0;

	for (uint32_t i = 0; i < p->n_stages; i++) {
		uint32_t v = 0;

		np_card_event_read(p->st[i].card, EV_DONE, &v);
		sum += v;
	}
	return sum;
}

/* A card failed in a way no waiting cures (recover.c says which). */
static int stages_failed(struct np_pipeline *p)
{
	for (uint32_t i = 0; i < p->n_stages; i++) {
		int ret = cq_check(p, &p->st[i]);

		if (!ret)
			ret = npi_card_failed(p->st[i].card);
		if (ret)
			return ret;
	}
	return 0;
}

/* A card was removed (or the kernel asks for it back: it is released
 * now). A card asked back still works, so this is checked whether or not
 * the pipeline makes progress. */
static int stages_removed(struct np_pipeline *p)
{
	for (uint32_t i = 0; i < p->n_stages; i++)
		if (npi_card_gone(p->st[i].card))
			return -ENODEV;
	return 0;
}

/*
 * Wait for x without resetting its engine while the cards still make
 * progress: a deep pipeline of slow cards may take longer than the
 * context timeout per frame, but no card may stall that long.
 */
static int wait_progress(struct npi_run *R, struct np_xfer *x)
{
	struct np_pipeline *p = R->p;
	uint64_t t = npi_now_ns(), checked = t, mark = 0;
	uint64_t limit = (uint64_t)p->ctx->timeout_ms * 1000000ull;
	bool marked = false;
	int r;

	/* the cards are looked at every NPI_POLL_MS, not on every wakeup:
	 * a frame usually completes before the first look */
	while ((r = np_xfer_poll(x)) == -EINPROGRESS) {
		struct pollfd pfd = {.fd = np_xfer_fd(x), .events = POLLIN};
		uint64_t now, m;

		poll(&pfd, 1, NPI_POLL_MS);
		sample_busy(R);
		now = npi_now_ns();
		if (now - checked < NPI_POLL_MS * 1000000ull)
			continue;
		checked = now;
		r = stages_removed(p);
		if (r)
			return r;
		m = progress_mark(p);
		if (!marked || m != mark) {
			marked = true;
			mark = m;
			t = now;
		} else if (now - t > limit) {
			/* the engine reset that reports the stall */
			return np_xfer_wait(x, 1);
		} else if ((r = stages_failed(p))) {
			return r;
		}
	}
	return r;
}

/* Wait for frame f's results; free its transfers. */
static int finish(struct npi_run *R, struct npi_frame *f)
{
	struct np_pipeline *p = R->p;
	uint64_t now = npi_now_ns();
	int ret = 0;

	/* frames that complete before they are waited for never reach
	 * wait_progress's checks: look for removed cards here too */
	if (now - R->removed_at >= NPI_POLL_MS * 1000000ull) {
		R->removed_at = now;
		ret = stages_removed(p);
	}

	/* the output cards' C2H come last in the list: once they are done,
	 * the H2C mostly is, and a look at the writeback record tells */
	for (uint32_t i = f->nx; i-- > 0;) {
		/* after a failure the rest is released unwaited: it may
		 * never complete */
		int r = ret ? 0 : npi_xfer_reap(f->x[i]);

		if (r == -EINPROGRESS)
			r = wait_progress(R, f->x[i]);

		if (r && !ret) {
			ret = r;
			for (uint32_t s = 0; s < p->n_stages; s++)
				if (cq_check(p, &p->st[s]))
					ret = -EIO;
			if (ret != -EIO)
				npi_log(p->ctx, LOG_ERR,
					"pipeline: frame %u of micro-batch %u "
					"did not complete (%s); no card "
					"finished a layer job for %d ms: check "
					"the cards with nptool status",
					f->k, f->m, strerror(-r),
					p->ctx->timeout_ms);
		}
		np_xfer_free(f->x[i]);
	}
	f->nx = 0;
	return ret;
}

/* The candidates of row i of frame f, merged over the output cards. */
static uint32_t candidates(struct npi_run *R, const struct npi_frame *f,
			   uint32_t i)
{
	struct np_pipeline *p = R->p;
	const uint8_t *h =
		(const uint8_t *)np_buf_ptr(R->host) + f->m * R->host_slot;
	uint32_t have = 0, k = R->cand;

	for (uint32_t o = 0; o < p->n_out; o++) {
		const struct np_card_plan *pl = p->st[p->n_layer + o].plan;
		uint32_t slice = pl->vocab_end - pl->vocab_begin;

		if (R->o->full_logits) {
			const int32_t *l = (const int32_t *)(h + R->out_at[o]) +
					   (size_t)i * slice;

			memcpy(R->logits + pl->vocab_begin, l,
			       (size_t)slice * 4);
			for (uint32_t v = 0; v < slice; v++)
				topk_push(R->cv, R->ci, &have, k, l[v],
					  pl->vocab_begin + v);
		} else {
			const struct np_job_topk *t =
				(const struct np_job_topk *)(h + R->out_at[o]) +
				(size_t)i * k;

			for (uint32_t v = 0; v < k; v++)
				topk_push(R->cv, R->ci, &have, k, t[v].value,
					  t[v].index);
		}
	}
	return have;
}

static int process(struct npi_run *R, const struct npi_frame *f)
{
	struct np_pipeline *p = R->p;
	double scale = np_compiled_logit_scale(p->c);

	for (uint32_t i = 0; i < f->n; i++) {
		struct npi_req *q = &R->rq[f->req[i]];
		const struct np_request *r = q->r;
		struct np_token_event e = {0};
		uint64_t now;

		if (!f->sample[i])
			continue;
		e.n_cand = candidates(R, f, i);
		e.cand_logit = R->cv;
		e.cand_id = R->ci;
		e.logits = R->o->full_logits ? R->logits : NULL;
		e.token = sample(&r->sampling, &q->rng, R->cv, R->ci, e.n_cand,
				 scale);
		e.request = f->req[i];
		e.pos = q->len;
		q->seq[q->len++] = e.token;
		q->st.tokens++;
		R->tokens++;
		for (size_t s = 0; s < r->n_stop && !e.stop; s++)
			if (r->stop[s] == e.token)
				e.stop = NP_STOP_TOKEN;
		if (!e.stop && r->max_tokens && q->st.tokens >= r->max_tokens)
			e.stop = NP_STOP_MAX_TOKENS;
		if (!e.stop && q->len >= p->max_seq)
			e.stop = NP_STOP_LENGTH;
		now = npi_now_ns() - R->t0;
		if (q->st.tokens == 1)
			q->st.first_ns = now;
		q->st.last_ns = now;
		e.t_ns = now;
		if (R->o->on_token) {
			uint64_t c0 = npi_thread_cpu_ns();

			if (R->o->on_token(R->o->opaque, &e) && !e.stop)
				e.stop = NP_STOP_CALLER;
			c0 = npi_thread_cpu_ns() - c0;
			R->cpu_callback += c0;
			R->cpu_callback_timed += R->timing ? c0 : 0;
		}
		q->stop = e.stop;
		q->st.stop = e.stop;
	}
	return 0;
}

static int run_check(struct np_pipeline *p, const struct np_request *req,
		     size_t n, const struct np_session_opts *o, uint32_t m)
{
	uint32_t vocab = p->vocab;

	if (p->broken) {
		npi_log(p->ctx, LOG_ERR,
			"pipeline: an earlier run failed; destroy the pipeline "
			"and load the model again");
		return -EIO;
	}
	if (!n || n > p->batch || m > n || (n + m - 1) / m > p->frame_tokens ||
	    o->candidates > NP_JOB_TOPK_MAX) {
		npi_log(p->ctx, LOG_ERR,
			"pipeline: %zu requests in %u micro-batches with %u "
			"candidates: requests must be 1..%u, micro-batches "
			"1..requests with at most %u requests each, candidates "
			"0..%u",
			n, m, o->candidates, p->batch, p->frame_tokens,
			NP_JOB_TOPK_MAX);
		return -EINVAL;
	}
	for (size_t r = 0; r < n; r++) {
		if (!req[r].prompt || !req[r].n_prompt) {
			npi_log(p->ctx, LOG_ERR,
				"pipeline: request %zu has an empty prompt; "
				"give at least one token (BOS)",
				r);
			return -EINVAL;
		}
		if (req[r].n_prompt >= p->max_seq) {
			npi_log(p->ctx, LOG_ERR,
				"pipeline: request %zu: prompt of %zu tokens "
				"does not fit the context of %u; shorten it or "
				"load with a larger max_seq",
				r, req[r].n_prompt, p->max_seq);
			return -ERANGE;
		}
		for (size_t t = 0; t < req[r].n_prompt; t++)
			if (req[r].prompt[t] < 0 ||
			    (uint32_t)req[r].prompt[t] >= vocab) {
				npi_log(p->ctx, LOG_ERR,
					"pipeline: request %zu: token %d at "
					"%zu is outside the vocabulary of %u",
					r, req[r].prompt[t], t, vocab);
				return -EINVAL;
			}
	}
	return 0;
}

static void run_free(struct npi_run *R)
{
	if (R->fr)
		for (uint32_t m = 0; m < R->m; m++) {
			for (uint32_t i = 0; i < R->fr[m].nx; i++)
				np_xfer_free(R->fr[m].x[i]);
			free(R->fr[m].x);
			free(R->fr[m].req);
			free(R->fr[m].sample);
		}
	if (R->rq)
		for (uint32_t r = 0; r < R->n; r++)
			free(R->rq[r].seq);
	free(R->fr);
	free(R->rq);
	free(R->logits);
	free(R->cv);
	free(R->ci);
	np_buf_free(R->host);
}

static int run_alloc(struct npi_run *R, const struct np_request *req)
{
	struct np_pipeline *p = R->p;
	uint32_t max_x = 1 + p->n_out; /* the H2C, the C2H (forwards: none) */
	uint64_t at = align_up(p->frame_max, 64);

	R->rq = calloc(R->n, sizeof(*R->rq));
	R->fr = calloc(R->m, sizeof(*R->fr));
	R->logits = calloc(p->vocab, sizeof(*R->logits));
	R->cv = calloc(R->cand, sizeof(*R->cv));
	R->ci = calloc(R->cand, sizeof(*R->ci));
	if (!R->rq || !R->fr || !R->logits || !R->cv || !R->ci)
		return -ENOMEM;
	for (uint32_t r = 0; r < R->n; r++) {
		struct npi_req *q = &R->rq[r];

		q->r = &req[r];
		q->seq = malloc((size_t)p->max_seq * sizeof(*q->seq));
		if (!q->seq)
			return -ENOMEM;
		memcpy(q->seq, req[r].prompt,
		       req[r].n_prompt * sizeof(int32_t));
		q->len = (uint32_t)req[r].n_prompt;
		q->rng = req[r].sampling.seed;
		q->st.prompt_tokens = q->len;
	}
	for (uint32_t m = 0; m < R->m; m++) {
		R->fr[m].x = calloc(max_x, sizeof(*R->fr[m].x));
		R->fr[m].req = calloc(p->frame_tokens, sizeof(uint32_t));
		R->fr[m].sample = calloc(p->frame_tokens, 1);
		if (!R->fr[m].x || !R->fr[m].req || !R->fr[m].sample)
			return -ENOMEM;
	}
	for (uint32_t o = 0; o < p->n_out; o++) {
		const struct np_card_plan *pl = p->st[p->n_layer + o].plan;
		uint64_t row =
			R->o->full_logits ?
				(uint64_t)(pl->vocab_end - pl->vocab_begin) *
					4 :
				(uint64_t)R->cand * sizeof(struct np_job_topk);

		R->out_at[o] = at;
		at = align_up(at + row * p->frame_tokens, 64);
	}
	R->host_slot = align_up(at, 4096);
	return np_buf_alloc(p->ctx, R->host_slot * R->m, &R->host);
}

int np_session_run(struct np_pipeline *p, const struct np_request *req,
		   size_t n, const struct np_session_opts *opts,
		   struct np_session_stats *stats)
{
	const struct np_session_opts none = {0};
	const struct np_session_opts *o = opts ? opts : &none;
	struct npi_run R = {0};
	uint32_t *fifo = NULL, head = 0, count = 0;
	uint64_t cpu0 = npi_thread_cpu_ns();
	struct npi_reg_acct reg0 = npi_reg_acct;
	int ret;

	if (!p || !req)
		return -EINVAL;
	R.p = p;
	R.o = o;
	R.n = (uint32_t)(n < UINT32_MAX ? n : UINT32_MAX);
	R.m = o->micro_batches ? o->micro_batches :
				 (R.n < NP_DEFAULT_MICRO_BATCHES ?
					  R.n :
					  NP_DEFAULT_MICRO_BATCHES);
	R.cand = o->candidates ? o->candidates : NP_DEFAULT_CANDIDATES;
	ret = run_check(p, req, n, o, R.m);
	if (ret)
		return ret;
	if (R.cand > p->max_slice)
		R.cand = p->max_slice;
	ret = run_alloc(&R, req);
	fifo = calloc(R.m, sizeof(*fifo));
	if (!ret && !fifo)
		ret = -ENOMEM;
	R.t0 = npi_now_ns();
	R.in_flight_t = R.t0;
	R.busy_t = R.t0;
	fwd_start(&R);
	/* GPipe: every micro-batch has one frame in flight; frames leave the
	 * output cards in the order they entered the first card */
	for (uint32_t m = 0; m < R.m && !ret; m++) {
		ret = submit(&R, m);
		if (ret == 1) {
			fifo[(head + count++) % R.m] = m;
			account_in_flight(&R, 1);
			ret = 0;
		}
	}
	while (count && !ret) {
		struct npi_frame *f = &R.fr[fifo[head]];

		head = (head + 1) % R.m;
		count--;
		phase_begin(&R);
		ret = finish(&R, f);
		account_in_flight(&R, -1);
		phase_end(&R, NPI_WAIT);
		ret = ret ? ret : process(&R, f);
		phase_end(&R, NPI_SAMPLE);
		ret = ret ? ret : submit(&R, f->m);
		if (ret == 1) {
			fifo[(head + count++) % R.m] = f->m;
			account_in_flight(&R, 1);
			ret = 0;
		}
		phase_end(&R, NPI_SUBMIT);
	}
	if (ret) {
		p->broken = 1;
		/* Frames still queued to or from the host buffer must not
		 * reach it once it is freed: cancel host I/O (engine 0). */
		for (uint32_t i = 0; i < p->n_stages; i++)
			npi_engine_cancel(&p->st[i].card->eng[0]);
	}
	if (stats) {
		uint64_t wall = npi_now_ns() - R.t0;
		struct np_request_stats *rs = stats->req;

		memset(stats, 0, sizeof(*stats));
		stats->req = rs;
		stats->wall_ns = wall;
		stats->tokens = R.tokens;
		stats->prompt_tokens = R.prompt_tokens;
		stats->frames = R.frames;
		stats->tokens_per_s = wall ? R.tokens * 1e9 / wall : 0;
		stats->avg_in_flight =
			wall ? (double)R.in_flight_acc / wall : 0;
		for (uint32_t i = 0; i < p->n_stages && wall; i++) {
			stats->card_busy[i] = (double)R.busy_ns[i] / wall;
			stats->utilization += stats->card_busy[i] / p->n_stages;
		}
		if (!ret)
			fwd_end(&R, stats);
		for (uint32_t r = 0; rs && R.rq && r < R.n; r++)
			rs[r] = R.rq[r].st;
	}
	free(fifo);
	run_free(&R);
	if (stats) {
		struct npi_reg_acct d = npi_reg_acct;
		uint64_t cpu = npi_thread_cpu_ns() - cpu0 - R.cpu_callback;

		for (int k = 0; k < 2; k++) {
			d.n[k] -= reg0.n[k];
			d.timed[k] -= reg0.timed[k];
			d.ns[k] -= reg0.ns[k];
		}
		stats->host_emu_ns = npi_reg_emu_ns(&d, &d);
		stats->host_reg_reads = d.n[0];
		stats->host_reg_writes = d.n[1];
		stats->host_cpu_ns =
			cpu > stats->host_emu_ns ? cpu - stats->host_emu_ns : 0;
		stats->host_submit_ns = phase_host_ns(&R, NPI_SUBMIT, &d);
		stats->host_wait_ns = phase_host_ns(&R, NPI_WAIT, &d);
		stats->host_sample_ns = phase_host_ns(&R, NPI_SAMPLE, &d);
	}
	return ret;
}
