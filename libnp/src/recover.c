// SPDX-License-Identifier: MIT
/*
 * libnp fault handling: fault injection into emulated cards, checksums of
 * resident weights, and sessions that survive a card failure (np/recover.h).
 *
 * Recovery works at the granularity the hardware offers: a failed run
 * leaves jobs and forwards waiting on events in every card of the
 * pipeline, so every card is reset, reloaded from the host copy (the
 * compiled model renders each image again) and verified by reading its
 * weights back. What the cards lost is only KV cache, and that is a pure
 * function of each request's tokens so far: running them again as a
 * prompt rebuilds it bit for bit, since the integer layer job does not
 * depend on how tokens are grouped into frames.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "journal.h"
#include "pipe.h"
#include "np/recover.h"
#include "np_prog.h"
#include "recover.h"

#define NPI_VERIFY_CORES 32u /* cores per read-back batch */
#define NPI_DEF_RECOVERIES 4u

/* ---------------------------------------------------------------- */
/* CRC32C (Castagnoli), reflected, as iSCSI and ext4 use it            */

static uint32_t crc_table[256];

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t crc_sw(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t
crc_hw(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c = crc;

	for (; len >= 8; p += 8, len -= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
	}
	crc = (uint32_t)c;
	while (len--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return crc;
}
#endif

/* Continue crc (start from 0) over len bytes at p. */
static uint32_t crc32c(uint32_t crc, const void *p, size_t len)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	crc = ~crc;
#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2"))
		return ~crc_hw(crc, p, len);
#endif
	pthread_once(&once, crc_init);
	return ~crc_sw(crc, p, len);
}

/* ---------------------------------------------------------------- */
/* Weights checksum                                                   */

/* Per-core bytes of weights: below the KV cache of a layer card, the
 * whole used part of an output card. */
static uint64_t weights_reach(const uint8_t *image,
			      const struct np_card_plan *pl)
{
	struct npk_card h;

	memcpy(&h, image + pl->prog, sizeof(h));
	if (h.kind == NPK_KIND_LAYERS && h.kv_off && h.kv_off < pl->core_bytes)
		return h.kv_off;
	return pl->core_bytes;
}

void npi_weights_sum(const uint8_t *image, const struct np_card_plan *pl,
		     struct npi_weights_sum *out)
{
	uint32_t crc = 0;

	out->reach = weights_reach(image, pl);
	for (uint32_t c = 0; c < NP_NUM_CORES; c++)
		crc = crc32c(crc, image + (uint64_t)c * NP_CORE_SRAM_SIZE,
			     out->reach);
	out->crc = crc;
}

/* CRC32C of the weights card holds now, read back by DMA. */
static int read_sum(struct np_card *card, uint64_t reach, uint32_t *crc)
{
	struct np_buf *buf;
	int ret;

	*crc = 0;
	if (!reach)
		return 0;
	ret = np_buf_alloc(card->ctx, reach * NPI_VERIFY_CORES, &buf);
	if (ret)
		return ret;
	for (uint32_t c0 = 0; c0 < NP_NUM_CORES && !ret;
	     c0 += NPI_VERIFY_CORES) {
		struct np_xfer *x[NPI_VERIFY_CORES] = {0};

		for (uint32_t c = 0; c < NPI_VERIFY_CORES && !ret; c++) {
			struct np_xfer_spec s = {
				.op = NP_XFER_C2H,
				.engine = 0,
				.buf = buf,
				.buf_offset = c * reach,
				.card_addr =
					NP_CA_SRAM_BASE +
					(uint64_t)(c0 + c) * NP_CORE_SRAM_SIZE,
				.len = reach,
			};

			ret = np_xfer_submit(card, &s, &x[c]);
		}
		for (uint32_t c = 0; c < NPI_VERIFY_CORES; c++) {
			int r = x[c] ? np_xfer_wait(x[c], NP_TIMEOUT_DEFAULT) :
				       0;

			ret = ret ? ret : r;
			np_xfer_free(x[c]);
		}
		if (!ret)
			*crc = crc32c(*crc, np_buf_ptr(buf),
				      reach * NPI_VERIFY_CORES);
	}
	np_buf_free(buf);
	return ret;
}

int np_pipeline_verify(struct np_pipeline *p, uint32_t card, uint32_t *crc)
{
	struct npi_weights_sum sum;
	struct np_card *c;
	uint32_t found;
	int ret;

	c = p ? npi_pipeline_card(p, card, &sum) : NULL;
	if (!c)
		return -EINVAL;
	ret = read_sum(c, sum.reach, &found);
	if (ret) {
		npi_log(c->ctx, LOG_ERR,
			"np: card %s: reading its weights back failed (%s); "
			"reset the card and reload the model",
			c->name, strerror(-ret));
		return ret;
	}
	if (crc)
		*crc = found;
	if (found != sum.crc) {
		npi_log(c->ctx, LOG_ERR,
			"np: card %s: weights checksum 0x%08x, loaded 0x%08x; "
			"the card's SRAM is corrupt: reset it and reload the "
			"model",
			c->name, found, sum.crc);
		return -EBADMSG;
	}
	return 0;
}

/* What card reports wrong, as a recovery event names it; NULL if
 * nothing. *engine gets the engine of a DMA error. Silent. */
static const char *card_fault(struct np_card *card, unsigned int *engine)
{
	uint32_t st;

	if (npi_card_gone(card))
		return "removed";
	st = card->ctx->ops->reg_read(card, NP_REG_STATUS);
	if (st == 0xffffffffu)
		return "not answering";
	if (st & NP_STATUS_FATAL)
		return "uncorrected SRAM error";
	for (unsigned int e = 0; e < card->num_engines; e++) {
		const struct np_queue_wb *wb = card->eng[e].wb;

		if (wb && (__atomic_load_n(&wb->status, __ATOMIC_ACQUIRE) &
			   NP_Q_STATUS_ERROR)) {
			*engine = e;
			return "DMA error";
		}
	}
	return NULL;
}

/* The first time since its last reset that card is found failed. */
static bool first_failure(struct np_card *card)
{
	return !__atomic_exchange_n(&card->failure_journaled, true,
				    __ATOMIC_RELAXED);
}

int npi_card_failed(struct np_card *card)
{
	unsigned int e = 0;
	const char *f = card_fault(card, &e);

	if (!f)
		return 0;
	if (first_failure(card)) {
		if (!strcmp(f, "DMA error"))
			npi_journal(card, NPI_EV_ERROR,
				    "DMA engine %u stopped with error %u", e,
				    __atomic_load_n(&card->eng[e].wb->error,
						    __ATOMIC_RELAXED));
		else
			npi_journal(card, NPI_EV_ERROR, "card failed: %s", f);
	}
	if (np_card_removed(card)) {
		npi_log(card->ctx, LOG_ERR, "np: card %s was removed",
			card->name);
		return -ENODEV;
	}
	if (!strcmp(f, "not answering")) {
		npi_log(card->ctx, LOG_ERR,
			"np: card %s does not answer (registers read "
			"0xffffffff): it needs a reset",
			card->name);
		return -EIO;
	}
	if (!strcmp(f, "uncorrected SRAM error")) {
		npi_log(card->ctx, LOG_ERR,
			"np: card %s: uncorrected SRAM error (NP_STATUS_FATAL, "
			"%u so far): its SRAM needs a reset and reload",
			card->name,
			card->ctx->ops->reg_read(card, NP_REG_SRAM_UE));
		return -EIO;
	}
	npi_log(card->ctx, LOG_ERR,
		"np: card %s: DMA engine %u stopped with error %u", card->name,
		e, __atomic_load_n(&card->eng[e].wb->error, __ATOMIC_RELAXED));
	return -EIO;
}

/* ---------------------------------------------------------------- */
/* Fault injection                                                    */

int np_card_inject(struct np_card *card, const char *fault)
{
	int ret;

	if (!card || !fault)
		return -EINVAL;
	if (!card->ctx->ops->inject)
		return -EOPNOTSUPP;
	ret = card->ctx->ops->inject(card, fault);
	if (!ret)
		npi_journal(card, NPI_EV_FAULT, "%s", fault);
	npi_log(card->ctx, ret ? LOG_ERR : LOG_NOTICE,
		"np: card %s: inject '%s': %s", card->name, fault,
		!ret	       ? "armed" :
		ret == -EINVAL ? "no such fault for this card "
				 "(docs/hardware.md, Fault injection)" :
				 strerror(-ret));
	return ret;
}

/* ---------------------------------------------------------------- */
/* Sessions that survive a card failure                               */

struct rec_req {
	int32_t *seq; /* prompt, then every token delivered */
	size_t len;
	uint32_t generated;
	bool done;
	uint64_t first_ns, last_ns;
	enum np_stop_reason stop;
};

struct rec_run {
	struct rec_req *r;
	uint32_t *map; /* request of the current attempt -> index in req */
	const struct np_session_opts *user;
	uint64_t t0, offset; /* run start; start of this attempt - t0 */
	uint64_t last_ns; /* the last token delivered, or the attempt's start */
};

static int rec_token(void *opaque, const struct np_token_event *ev)
{
	struct rec_run *R = opaque;
	uint32_t i = R->map[ev->request];
	struct rec_req *q = &R->r[i];
	struct np_token_event e = *ev;
	int stop = 0;

	e.request = i;
	e.t_ns += R->offset;
	q->seq[q->len++] = ev->token;
	if (!q->generated++)
		q->first_ns = e.t_ns;
	q->last_ns = e.t_ns;
	R->last_ns = npi_now_ns();
	q->stop = ev->stop;
	q->done = ev->stop != NP_STOP_NONE;
	if (R->user && R->user->on_token)
		stop = R->user->on_token(R->user->opaque, &e);
	if (stop) {
		q->stop = NP_STOP_CALLER;
		q->done = true;
	}
	return stop;
}

/* Which card of p failed and how, as far as the cards tell. A card that
 * is gone makes its peers' transfers to it fail too: a removed card is
 * the cause before one that does not answer, and that one before any
 * other fault. */
static void diagnose(struct np_pipeline *p, struct np_recover_event *ev)
{
	int rank = 3;

	ev->card = -1;
	ev->fault = "timeout";
	for (uint32_t i = 0; i < np_pipeline_cards(p); i++) {
		struct np_card *c = npi_pipeline_card(p, i, NULL);
		unsigned int e;
		const char *f = card_fault(c, &e);
		int r = 2;

		/* an engine that failed a transfer was restarted at once */
		if (!f && __atomic_load_n(&c->dma_failed, __ATOMIC_ACQUIRE))
			f = "DMA error";
		if (!f && npi_pipeline_cq_failed(p, i))
			f = "compute error";
		if (!f && npi_pipeline_cq_hung(p, i))
			f = npi_pipeline_dma_hung(p, i) >= 0 ?
				    "DMA engine hang" :
				    "compute queue hang";
		if (!f)
			continue;
		if (!strcmp(f, "removed"))
			r = 0;
		else if (!strcmp(f, "not answering"))
			r = 1;
		if (r < rank) {
			rank = r;
			ev->card = (int32_t)i;
			ev->fault = f;
		}
	}
}

/* A card of the context that p does not use and that is still there. */
static struct np_card *spare_card(struct np_pipeline *p, struct np_ctx *ctx)
{
	for (unsigned int k = 0; k < np_ctx_num_cards(ctx); k++) {
		struct np_card *s = np_ctx_card(ctx, k);
		bool used = np_card_removed(s);

		for (uint32_t i = 0; i < np_pipeline_cards(p) && !used; i++)
			used = npi_pipeline_card(p, i, NULL) == s;
		if (!used)
			return s;
	}
	return NULL;
}

/* A removed card cannot be reset: its image moves to a spare card. A
 * card holds one compiled image (the compiler fills its SRAM), so without
 * a spare the pipeline cannot go on. */
static int replace_removed(struct np_pipeline *p, struct np_recover_event *ev)
{
	for (uint32_t i = 0; i < np_pipeline_cards(p); i++) {
		struct np_card *c = npi_pipeline_card(p, i, NULL);
		struct np_card *s;

		if (!np_card_removed(c))
			continue;
		s = spare_card(p, c->ctx);
		if (!s) {
			npi_log(c->ctx, LOG_ERR,
				"pipeline: card %s (card %u of the pipeline) "
				"was removed and the context has no spare card "
				"to take its image: open more cards than the "
				"model is compiled for to survive a removal",
				c->name, i);
			return -ENODEV;
		}
		npi_log(c->ctx, LOG_WARNING,
			"pipeline: card %s (card %u of the pipeline) was "
			"removed; spare card %s takes its image",
			c->name, i, s->name);
		npi_pipeline_replace(p, i, s);
		ev->spare = (int32_t)s->index;
	}
	return 0;
}

/* Move the images of removed cards to spares, then reset, reload and
 * verify every card of p. */
static int recover(struct np_pipeline *p, struct np_recover_event *ev)
{
	int ret = replace_removed(p, ev);

	ret = ret ? ret : npi_pipeline_reload(p);

	for (uint32_t i = 0; i < np_pipeline_cards(p) && !ret; i++)
		ret = np_pipeline_verify(p, i, NULL);
	return ret;
}

int npi_recover(struct np_pipeline *p, int err, uint32_t attempt, uint32_t max,
		uint32_t requests, struct np_recover_event *ev)
{
	uint64_t t = npi_now_ns();
	struct np_card *card;
	char what[96];
	int ret;

	if (p->cl)
		return p->cl_ops->recover(p, err, attempt, max, requests, ev);
	ev->attempt = attempt;
	ev->error = err;
	ev->spare = -1;
	ev->requests = requests;
	diagnose(p, ev);
	if (ev->card >= 0)
		snprintf(what, sizeof(what), "card %s: %s",
			 npi_pipeline_card(p, (uint32_t)ev->card, NULL)->name,
			 ev->fault);
	else
		snprintf(what, sizeof(what), "no card reported a fault");
	npi_log(npi_pipeline_card(p, 0, NULL)->ctx, LOG_WARNING,
		"pipeline: run failed (%s), %s; recovery %u of %u: resetting "
		"and reloading %u cards, then resuming %u requests",
		strerror(-err), what, attempt, max, np_pipeline_cards(p),
		requests);
	card = npi_pipeline_card(p, ev->card >= 0 ? (uint32_t)ev->card : 0,
				 NULL);
	npi_journal(card, NPI_EV_RECOVERY,
		    "recovery %u of %u started: run failed (%s), %s; %u "
		    "requests to resume",
		    attempt, max, strerror(-err), what, requests);
	ret = recover(p, ev);
	ev->recover_ns = npi_now_ns() - t;
	if (ret)
		npi_journal(card, NPI_EV_RECOVERY,
			    "recovery %u of %u failed after %.1f ms: %s",
			    attempt, max, (double)ev->recover_ns / 1e6,
			    strerror(-ret));
	else
		npi_journal(
			card, NPI_EV_RECOVERY,
			"recovery %u of %u done in %.1f ms: %u cards reset, "
			"reloaded and verified%s",
			attempt, max, (double)ev->recover_ns / 1e6,
			np_pipeline_cards(p),
			ev->spare >= 0 ? ", a spare card took a removed "
					 "card's image" :
					 "");
	return ret;
}

static void fill_stats(struct np_session_stats *stats, struct rec_run *R,
		       const struct np_request *req, size_t n, uint64_t frames)
{
	struct np_request_stats *rs = stats->req;
	struct np_card_stats *cs = stats->card;
	uint32_t n_cs = cs ? stats->n_card : 0;
	uint64_t tokens = 0, prompt = 0;

	memset(stats, 0, sizeof(*stats));
	stats->req = rs;
	stats->card = cs;
	stats->n_card = n_cs;
	if (cs)
		memset(cs, 0, n_cs * sizeof(*cs));
	for (size_t i = 0; i < n; i++) {
		tokens += R->r[i].generated;
		prompt += req[i].n_prompt;
		if (stats->req) {
			struct np_request_stats *s = &stats->req[i];

			s->prompt_tokens = (uint32_t)req[i].n_prompt;
			s->tokens = R->r[i].generated;
			s->first_ns = R->r[i].first_ns;
			s->last_ns = R->r[i].last_ns;
			s->stop = R->r[i].stop;
		}
	}
	stats->wall_ns = npi_now_ns() - R->t0;
	stats->tokens = tokens;
	stats->prompt_tokens = prompt;
	stats->frames = frames;
	stats->tokens_per_s =
		stats->wall_ns ? (double)tokens * 1e9 / (double)stats->wall_ns :
				 0;
}

int np_session_run_recover(struct np_pipeline *p, const struct np_request *req,
			   size_t n, const struct np_session_opts *opts,
			   const struct np_recover_opts *ropts,
			   struct np_session_stats *stats)
{
	uint32_t max_rec = ropts && ropts->max_recoveries ?
				   ropts->max_recoveries :
				   NPI_DEF_RECOVERIES;
	uint32_t max_seq = p ? np_pipeline_max_seq(p) : 0;
	struct np_session_opts sopts = {0};
	struct np_request *sub = NULL;
	struct rec_run R = {0};
	uint64_t frames = 0;
	uint32_t attempt = 0;
	int ret = 0;

	if (!p || !req || !n || n > np_pipeline_max_sessions(p))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!req[i].prompt || !req[i].n_prompt ||
		    req[i].n_prompt > max_seq)
			return req[i].n_prompt > max_seq ? -ERANGE : -EINVAL;
	if (ropts &&
	    !npi_resv_zero(npi_pipeline_card(p, 0, NULL)->ctx,
			   "np_recover_opts", ropts->resv, sizeof(ropts->resv)))
		return -EINVAL;
	R.r = calloc(n, sizeof(*R.r));
	R.map = calloc(n, sizeof(*R.map));
	sub = calloc(n, sizeof(*sub));
	if (!R.r || !R.map || !sub) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		R.r[i].seq = malloc((max_seq + 1) * sizeof(int32_t));
		if (!R.r[i].seq) {
			ret = -ENOMEM;
			goto out;
		}
		memcpy(R.r[i].seq, req[i].prompt,
		       req[i].n_prompt * sizeof(int32_t));
		R.r[i].len = req[i].n_prompt;
	}
	if (opts)
		sopts = *opts;
	R.user = opts;
	R.t0 = npi_now_ns();
	sopts.on_token = rec_token;
	sopts.opaque = &R;

	for (;;) {
		struct np_session_stats st = {0};
		struct np_recover_event ev = {0};
		uint32_t m = 0, live = 0;
		uint64_t t;

		for (size_t i = 0; i < n; i++) {
			if (R.r[i].done)
				continue;
			R.map[m] = (uint32_t)i;
			sub[m] = req[i];
			sub[m].prompt = R.r[i].seq;
			sub[m].n_prompt = R.r[i].len;
			if (req[i].max_tokens)
				sub[m].max_tokens =
					req[i].max_tokens - R.r[i].generated;
			m++;
		}
		if (!m)
			break;
		if (opts && opts->micro_batches > m)
			sopts.micro_batches = m;
		R.offset = npi_now_ns() - R.t0;
		R.last_ns = npi_now_ns();
		ret = np_session_run(p, sub, m, &sopts, &st);
		frames += st.frames;
		if (!ret || ret == -EINVAL || ret == -ERANGE || ret == -EBUSY ||
		    attempt == max_rec)
			break;

		t = npi_now_ns();
		for (size_t i = 0; i < n; i++)
			live += !R.r[i].done;
		ret = npi_recover(p, ret, ++attempt, max_rec, live, &ev);
		if (ret)
			break;
		ev.detect_ns = t - R.last_ns;
		for (size_t i = 0; i < n; i++)
			if (!R.r[i].done)
				ev.replayed_tokens += R.r[i].len;
		if (ropts && ropts->on_recover)
			ropts->on_recover(ropts->opaque, &ev);
	}
	if (stats)
		fill_stats(stats, &R, req, n, frames);
out:
	for (size_t i = 0; R.r && i < n; i++)
		free(R.r[i].seq);
	free(R.r);
	free(R.map);
	free(sub);
	return ret;
}
