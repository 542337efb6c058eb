// SPDX-License-Identifier: MIT
/*
 * Pipeline creation: a compiled model's card images loaded onto the
 * cards, the frame buffer laid out, the compute queues started
 * (np_pipeline_create, np_model_load, which opens, calibrates and compiles
 * the model first); its reload and card replacement for recovery.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pipe.h"

const struct np_tok *np_pipeline_tok(const struct np_pipeline *p)
{
	return p->tok;
}

const struct np_compiled *np_pipeline_compiled(const struct np_pipeline *p)
{
	return p->c;
}

int np_pipeline_cached(const struct np_pipeline *p)
{
	return npi_cache_hit(p->cache);
}

uint32_t np_pipeline_cards(const struct np_pipeline *p)
{
	/* a cluster's head: the members' cards */
	if (p->cl)
		return np_compiled_n_cards(p->c);
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
		uint64_t cb = st->plan->core_bytes, stride = NP_CORE_SRAM_SIZE;
		uint64_t n = cb;
		const uint8_t *src;

		if (p->cache) {
			/* the cached image: weights and program, the KV
			 * cache above them zero */
			src = npi_cache_card(p->cache, p->first + i, &n,
					     &st->sum);
			stride = n;
		} else {
			/* fresh zero pages: only the cores' used parts get
			 * touched */
			sram = calloc(1, NP_SRAM_SIZE);
			if (!sram) {
				ret = -ENOMEM;
				break;
			}
			ret = np_compile_card_image(p->c, p->first + i, sram);
			if (!ret)
				npi_weights_sum(sram, st->plan, &st->sum);
			src = sram;
		}
		for (uint32_t c0 = 0; c0 < NP_NUM_CORES && !ret;
		     c0 += NPI_LOAD_CORES) {
			struct np_xfer *x[NPI_LOAD_CORES] = {0};

			for (uint32_t c = 0; c < NPI_LOAD_CORES; c++) {
				uint8_t *d =
					(uint8_t *)np_buf_ptr(buf) + c * cb;

				memcpy(d, src + (uint64_t)(c0 + c) * stride, n);
				memset(d + n, 0, cb - n);
			}
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
		sram = NULL;
		if (ret)
			npi_log(p->ctx, LOG_ERR,
				"pipeline: card %s: loading its image failed "
				"(%s)",
				st->card->name, strerror(-ret));
	}
	np_buf_free(buf);
	return ret;
}

/* dim, sessions and context length, from the first card's program
 * (cluster.c: the head's too) */
int npi_read_shape(struct np_pipeline *p)
{
	const struct np_card_plan *pl = p->st[0].plan;
	struct npk_card h;
	uint8_t *sram;
	int ret;

	if (p->cache) {
		struct npi_weights_sum sum;
		uint64_t n;

		memcpy(&h,
		       npi_cache_card(p->cache, p->first, &n, &sum) + pl->prog,
		       sizeof(h));
		p->dim = h.dim;
		p->batch = h.batch;
		p->max_seq = h.max_seq;
		return 0;
	}
	sram = calloc(1, NP_SRAM_SIZE);
	if (!sram)
		return -ENOMEM;
	ret = np_compile_card_image(p->c, p->first, sram);
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
				"np_open_opts.emu sizes at 0)",
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
	uint32_t n = p->seg_cards ? p->seg_cards : np_compiled_n_cards(c);
	uint64_t row;
	int ret;

	if ((!p->seg_cards && n < 2) || n > np_ctx_num_cards(p->ctx)) {
		npi_log(p->ctx, LOG_ERR,
			"pipeline: the model is compiled for %u cards, the "
			"context has %u: open as many cards "
			"(NP_DEVICES=emu:%u)",
			n, np_ctx_num_cards(p->ctx), n);
		return -ENODEV;
	}
	p->n_stages = n;
	for (uint32_t i = 0; i < n; i++) {
		const struct np_card_plan *pl =
			np_compiled_card(c, p->first + i);

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
	/* a member's segment may end with a layer card (its frames go on
	 * to the next host) */
	if (!p->n_layer || (!p->n_out && !p->seg_cards) ||
	    p->n_out > NPI_MAX_OUT) {
		npi_log(p->ctx, LOG_ERR,
			"pipeline: %u layer cards and %u output cards; the "
			"pipeline needs at least one of each and at most %u "
			"output cards: compile with out_cards <= %u",
			p->n_layer, p->n_out, NPI_MAX_OUT, NPI_MAX_OUT);
		return -EINVAL;
	}
	ret = npi_read_shape(p);
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
	p->in_size = npi_align_up(p->frame_max, 4096);
	{
		uint64_t lo = (uint64_t)p->frame_tokens * p->max_slice * 4;
		uint64_t tk = (uint64_t)p->frame_tokens * NP_JOB_TOPK_MAX *
			      sizeof(struct np_job_topk);
		uint64_t m = lo > tk ? lo : tk;

		m = m > p->frame_max ? m : p->frame_max;
		p->out_size = npi_align_up(m, 4096);
	}
	p->slots = fb_slots(p, p->in_size + p->out_size);
	p->out_off = p->in_off + p->slots * p->in_size;
	p->out_size *= p->slots;
	ret = check_cards(p);
	if (ret)
		return ret;
	ret = load_images(p, o);
	for (uint32_t i = 0; i < n && !ret; i++)
		ret = npi_cq_start(p, &p->st[i]);
	return ret;
}

void np_pipeline_destroy(struct np_pipeline *p)
{
	if (!p)
		return;
	if (p->cl)
		p->cl_ops->destroy(p);
	for (uint32_t i = 0; i < p->n_stages; i++)
		npi_cq_stop(p, &p->st[i]);
	np_compiled_destroy(p->owned);
	npi_cache_free(p->cache);
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

int npi_segment_create(struct np_ctx *ctx, const struct np_compiled *c,
		       uint32_t first, uint32_t count, uint32_t frame_tokens,
		       struct np_pipeline **out)
{
	struct np_pipeline_opts o = {.frame_tokens = frame_tokens};
	struct np_pipeline *p;
	int ret;

	*out = NULL;
	if (!count || first + count > np_compiled_n_cards(c))
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->ctx = ctx;
	p->c = c;
	p->first = first;
	p->seg_cards = count;
	ret = pipeline_init(p, &o);
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

	return st->cq.mem &&
	       (__atomic_load_n(&st->cq.wb->status, __ATOMIC_ACQUIRE) &
		NP_Q_STATUS_ERROR);
}

bool npi_pipeline_cq_hung(const struct np_pipeline *p, uint32_t i)
{
	return p->st[i].hung;
}

void npi_pipeline_replace(struct np_pipeline *p, uint32_t i,
			  struct np_card *card)
{
	npi_cq_stop(p, &p->st[i]);
	p->st[i].card = card;
}

int npi_pipeline_reload(struct np_pipeline *p)
{
	const struct np_pipeline_opts none = {0};
	int ret = 0;

	/* Reset first: a hung or dead card's compute queue then stops at
	 * once instead of after npi_cq_stop's timeout. */
	for (uint32_t i = 0; i < p->n_stages && !ret; i++) {
		ret = np_card_reset(p->st[i].card);
		npi_cq_stop(p, &p->st[i]);
	}
	if (!ret)
		ret = check_cards(p);
	if (!ret)
		ret = load_images(p, &none);
	for (uint32_t i = 0; i < p->n_stages && !ret; i++)
		ret = npi_cq_start(p, &p->st[i]);
	if (ret)
		return ret;
	p->frames = 0;
	p->broken = 0;
	return 0;
}

/* The calibration text's prefix calibrate() reads: a prefix of the text
 * is enough; a token covers at least a byte */
static size_t calib_prefix(const struct np_pipeline_opts *o)
{
	if (!o->calib_text)
		return 0;
	return o->calib_len > 16 * NPI_CALIB_TOKENS ? 16 * NPI_CALIB_TOKENS :
						      o->calib_len;
}

/* Activation scales from the first NPI_CALIB_TOKENS tokens of the text. */
static int calibrate(struct np_pipeline *p, const struct np_pipeline_opts *o)
{
	size_t len = calib_prefix(o), n = 0;
	int32_t *ids;
	int ret;

	if (!len)
		return np_quant_calib_default(p->model, &p->calib);
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

/*
 * The compiled model and its card images: from the cache entry on a hit
 * (its calibration, the plan checked against it), else calibrated,
 * compiled and rendered into a new entry.
 */
static int compile(struct np_pipeline *p, const struct np_pipeline_opts *o,
		   const struct np_compile_opts *co)
{
	const struct np_log *lg = &p->ctx->log;
	int ret;

	if (npi_cache_lookup(p, p->cache, o) &&
	    !npi_cache_calib(p, p->cache, &p->calib)) {
		ret = np_compile(p->model, p->calib, co, lg, &p->owned);
		p->c = p->owned;
		if (ret || npi_cache_matches(p, p->cache, p->c))
			return ret;
		np_compiled_destroy(p->owned);
		p->c = p->owned = NULL;
	}
	np_quant_calib_destroy(p->calib);
	p->calib = NULL;
	if (o->progress)
		o->progress(o->progress_opaque, NP_LOAD_CALIBRATE, 0, 1);
	ret = calibrate(p, o);
	if (!ret && o->progress)
		o->progress(o->progress_opaque, NP_LOAD_CALIBRATE, 1, 1);
	ret = ret ? ret : np_compile(p->model, p->calib, co, lg, &p->owned);
	p->c = p->owned;
	return ret ? ret : npi_cache_build(p, p->cache, o);
}

int np_model_load(struct np_ctx *ctx, const char *path,
		  const struct np_pipeline_opts *opts, struct np_pipeline **out)
{
	const struct np_pipeline_opts none = {0};
	const struct np_pipeline_opts *o = opts ? opts : &none;
	const struct np_log *lg = &ctx->log; /* one sink for both libraries */
	struct np_compile_opts co = {0};
	struct np_pipeline *p;
	int ret;

	*out = NULL;
	if (!ctx || !path)
		return -EINVAL;
	if (!npi_resv_zero(ctx, "np_pipeline_opts", o->resv, sizeof(o->resv)) ||
	    !npi_resv_zero(ctx, "np_pipeline_opts", &o->resv0,
			   sizeof(o->resv0)))
		return -EINVAL;
	if (o->flags & ~NP_LOAD_NO_CACHE) {
		npi_log(ctx, LOG_ERR,
			"pipeline: np_pipeline_opts.flags 0x%x: unknown bits; "
			"use NP_LOAD_* flags",
			o->flags);
		return -EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->ctx = ctx;
	if (o->progress)
		o->progress(o->progress_opaque, NP_LOAD_MODEL, 0, 1);
	ret = np_gguf_open(path, lg, &p->gguf);
	if (ret)
		npi_log(ctx, LOG_ERR, "pipeline: cannot open model %s (%s)",
			path, strerror(-ret));
	ret = ret ? ret : np_model_from_gguf(p->gguf, lg, &p->model);
	ret = ret ? ret : np_tok_from_gguf(p->gguf, lg, &p->tok);
	if (!ret) {
		co.n_cards = o->n_cards ? o->n_cards : np_ctx_num_cards(ctx);
		co.out_cards = o->out_cards    ? o->out_cards :
			       co.n_cards >= 3 ? 2 :
						 0;
		co.batch =
			o->max_sessions ? o->max_sessions : NP_DEFAULT_SESSIONS;
		co.max_seq = o->max_seq ? o->max_seq : NP_DEFAULT_LOAD_MAX_SEQ;
		co.precision = o->precision;
		co.layer_precision = o->layer_precision;
		if (co.n_cards > np_ctx_num_cards(ctx)) {
			npi_log(ctx, LOG_ERR,
				"pipeline: %u cards asked for, the context has "
				"%u: open more cards (NP_DEVICES=emu:%u) or "
				"ask for fewer",
				co.n_cards, np_ctx_num_cards(ctx), co.n_cards);
			ret = -ENODEV;
		}
	}
	ret = ret ? ret :
		    npi_cache_init(p, path, o, &co, o->calib_text,
				   calib_prefix(o), &p->cache);
	if (!ret && o->progress)
		o->progress(o->progress_opaque, NP_LOAD_MODEL, 1, 1);
	ret = ret ? ret : compile(p, o, &co);
	ret = ret ? ret : pipeline_init(p, o);
	if (ret) {
		np_pipeline_destroy(p);
		return ret;
	}
	*out = p;
	return 0;
}
