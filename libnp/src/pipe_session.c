// SPDX-License-Identifier: MIT
/*
 * Pipeline frames: the requests of a micro-batch fed to the cards in a
 * frame, one frame per micro-batch in flight (GPipe), every descriptor of
 * a frame posted ahead (pipe.h, the schedule), the results waited for
 * while the cards make progress. np_session_run: a batch of requests
 * through the scheduler (pipe_sched.c).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "pipe.h"

/* Post every descriptor of frame k of n tokens (len bytes, in
 * io->in at io->in_off): the H2C into the first card, every card's jobs
 * and forwards, the C2H of the results into io->out (out_at[o] per
 * output card; a member's segment that ends in a layer card: its output
 * frame at out_at[0]). Tracked transfers go to x[*nx]. */
int npi_post_frame(struct np_pipeline *p, uint32_t k, uint32_t n, uint32_t len,
		   const struct npi_post *io, struct np_xfer **x, uint32_t *nx)
{
	uint32_t s = k % p->slots, w = k + 1 - p->slots;
	bool wait_slot = k >= p->slots;
	uint64_t in = NP_CA_FB_BASE + p->in_off + s * p->in_size;
	uint64_t out =
		NP_CA_FB_BASE + p->out_off + s * (p->out_size / p->slots);
	int ret;

	{
		struct npi_stage *st = &p->st[0];
		struct np_xfer_spec xs = {
			.op = NP_XFER_H2C,
			.flags = NP_XFER_F_SIGNAL |
				 (wait_slot ? NP_XFER_F_WAIT : 0),
			.engine = 0,
			.buf = io->in,
			.buf_offset = io->in_off,
			.card_addr = in,
			.len = len,
			.wait_event = EV_DONE,
			.wait_value = npi_ev(st, EV_DONE, w),
			.signal_event = EV_DATA,
		};

		ret = np_xfer_submit(st->card, &xs, &x[*nx]);
		if (ret)
			return ret;
		(*nx)++;
	}
	for (uint32_t i = 0; i < p->n_stages; i++) {
		struct npi_stage *st = &p->st[i];
		bool is_out = i >= p->n_layer;
		bool tail = !p->n_out && i + 1 == p->n_layer;

		ret = npi_cq_post_frames(p, i, k);
		if (ret)
			return ret;
		if (is_out || tail) {
			uint32_t o = is_out ? i - p->n_layer : 0;
			struct np_xfer_spec xs = {
				.op = NP_XFER_C2H,
				.flags = NP_XFER_F_WAIT | NP_XFER_F_SIGNAL,
				.engine = 0,
				.buf = io->out,
				.buf_offset = io->out_at[o],
				.card_addr = out,
				.len = tail ? len :
					      n * (io->full_logits ?
							   (size_t)(st->plan->vocab_end -
								    st->plan->vocab_begin) *
								   4 :
							   (size_t)io->cand *
								   sizeof(struct
									  np_job_topk)),
				.wait_event = EV_DONE,
				.wait_value = npi_ev(st, EV_DONE, k + 1),
				.signal_event = EV_SENT,
			};

			ret = np_xfer_submit(st->card, &xs, &x[*nx]);
			if (ret)
				return ret;
			(*nx)++;
			continue;
		}
		/* forward to the consumers: the next layer card, or every
		 * output card; fences and copies behind one doorbell */
		{
			uint32_t c0 = i + 1 < p->n_layer ? i + 1 : p->n_layer;
			uint32_t c1 = i + 1 < p->n_layer ? i + 2 : p->n_stages;
			struct np_xfer_spec xs[2 * NPI_MAX_OUT];
			uint32_t nxs = 0;

			for (uint32_t c = c0; c < c1 && wait_slot; c++) {
				uint32_t e = EV_CREDIT + c - c0;

				xs[nxs++] = (struct np_xfer_spec){
					.op = NP_XFER_FENCE,
					.flags = NP_XFER_F_WAIT,
					.engine = (int)st->fwd_engine,
					.wait_event = e,
					.wait_value = npi_ev(st, e, w),
				};
			}
			for (uint32_t c = c0; c < c1; c++) {
				xs[nxs] = (struct np_xfer_spec){
					.op = NP_XFER_C2C,
					.flags = NP_XFER_F_PEER_EVENT,
					.engine = (int)st->fwd_engine,
					.card_addr = out,
					.dst_addr = in,
					.peer = p->st[c].card,
					.len = len,
					.wait_event = EV_DONE,
					.wait_value =
						npi_ev(st, EV_DONE, k + 1),
					.signal_event = EV_SENT,
					.peer_event = EV_DATA,
				};
				if (c == c0)
					xs[nxs].flags |= NP_XFER_F_WAIT;
				if (c == c1 - 1)
					xs[nxs].flags |= NP_XFER_F_SIGNAL;
				nxs++;
			}
			/* untracked: the output cards' results complete after
			 * them, and a failure stops the engine */
			ret = npi_xfer_submit_batch(st->card, st->fwd_engine,
						    xs, nxs, NULL);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/* Post every descriptor of frame f (rows already in the host slot). */
static int post_frame(struct npi_run *R, struct npi_frame *f, uint32_t len)
{
	struct np_pipeline *p = R->p;
	uint64_t hbase = f->m * R->host_slot;
	uint32_t opt = R->full_logits ? 0 : R->cand;
	struct npi_post io = {
		.in = R->host,
		.in_off = hbase,
		.out = R->host,
		.full_logits = R->full_logits,
		.cand = R->cand,
	};

	memcpy((uint8_t *)np_buf_ptr(R->host) + hbase + 4, &opt, 4);
	if (p->cl)
		return p->cl_ops->post(R, f, len);
	for (uint32_t o = 0; o < p->n_out; o++)
		io.out_at[o] = hbase + R->out_at[o];
	return npi_post_frame(p, f->k, f->n, len, &io, f->x, &f->nx);
}

/*
 * Build and post the next frame of micro-batch m. Its requests, in the
 * order they got their slots, share the frame equally (each at most
 * frame_tokens / active tokens: a decoding request takes its one token);
 * prompt tokens beyond the first of a request's chunk also draw on the
 * prefill budget, first come first served, so a long prompt arriving
 * does not stretch the frame that carries the others' decode tokens.
 */
int npi_submit(struct npi_run *R, uint32_t m)
{
	struct np_pipeline *p = R->p;
	struct npi_frame *f = &R->fr[m];
	uint8_t *h = (uint8_t *)np_buf_ptr(R->host) + m * R->host_slot;
	uint32_t active = 0, quota, n = 0, budget = R->prefill_budget;
	size_t row = (size_t)p->dim * 2;
	int ret;

	for (uint32_t r = 0; r < R->n_live; r++)
		active +=
			R->live[r]->mb == m &&
			!__atomic_load_n(&R->live[r]->cancel, __ATOMIC_RELAXED);
	if (!active)
		return 0;
	quota = p->frame_tokens / active;
	for (uint32_t r = 0; r < R->n_live; r++) {
		struct npi_req *q = R->live[r];
		uint32_t take = q->len - q->fed;

		if (q->mb != m || __atomic_load_n(&q->cancel, __ATOMIC_RELAXED))
			continue;
		take = take < quota ? take : quota;
		if (take > 1) {
			take = take - 1 < budget ? take : budget + 1;
			budget -= take - 1;
		}
		for (uint32_t t = 0; t < take; t++, n++) {
			struct npk_tok tk = {q->slot, q->fed};

			memcpy(h + NP_JOB_ARG_HDR + (size_t)n * sizeof(tk), &tk,
			       sizeof(tk));
			f->req[n] = q;
			f->sample[n] = q->fed + 1 == q->len;
			if (q->fed >= q->fed_hw) {
				q->fed_hw = q->fed + 1;
				R->prompt_tokens += q->fed < q->n_prompt;
			} else {
				q->st.replayed++;
			}
			q->fed++;
		}
	}
	/* the embeddings follow the token table */
	for (uint32_t i = 0; i < n; i++) {
		struct npk_tok tk;

		memcpy(&tk, h + NP_JOB_ARG_HDR + (size_t)i * sizeof(tk),
		       sizeof(tk));
		ret = np_compiled_embed(p->c, f->req[i]->seq[tk.pos],
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
	if (ret)
		return ret;
	R->fifo[(R->head + R->count++) % R->m] = m;
	R->in_flight_mb[m] = true;
	npi_in_flight(R, 1);
	return 1;
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
		int ret = npi_cq_check(p, &p->st[i]);

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
		npi_busy_sample(R);
		now = npi_now_ns();
		if (now - checked < NPI_POLL_MS * 1000000ull)
			continue;
		checked = now;
		r = stages_removed(p);
		if (!r)
			r = npi_cq_watch(p, now);
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

	if (p->cl)
		return p->cl_ops->finish(R, f);
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
			bool hung = false;

			ret = r;
			for (uint32_t s = 0; s < p->n_stages; s++) {
				if (npi_cq_check(p, &p->st[s]))
					ret = -EIO;
				hung |= p->st[s].hung; /* named already */
			}
			if (ret != -EIO && !hung)
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

struct npi_frame *npi_finish_next(struct npi_run *R, int *ret)
{
	struct npi_frame *f;

	if (!R->count)
		return NULL;
	f = &R->fr[R->fifo[R->head]];
	R->head = (R->head + 1) % R->m;
	R->count--;
	*ret = finish(R, f);
	R->in_flight_mb[f->m] = false;
	npi_in_flight(R, -1);
	return f;
}

void npi_abort_frames(struct npi_run *R)
{
	struct np_pipeline *p = R->p;

	if (p->cl)
		p->cl_ops->abort(R);
	/* Frames still queued to or from the host buffer must not reach it
	 * once it is reused or freed: cancel host I/O (engine 0). */
	for (uint32_t i = 0; i < p->n_stages; i++)
		npi_engine_cancel(&p->st[i].card->eng[0]);
	for (uint32_t m = 0; m < R->m; m++) {
		for (uint32_t i = 0; i < R->fr[m].nx; i++)
			np_xfer_free(R->fr[m].x[i]);
		R->fr[m].nx = 0;
		R->in_flight_mb[m] = false;
	}
	npi_in_flight(R, -(int)R->count);
	R->count = 0;
}

void npi_run_free(struct npi_run *R)
{
	if (R->fr)
		for (uint32_t m = 0; m < R->m; m++) {
			for (uint32_t i = 0; i < R->fr[m].nx; i++)
				np_xfer_free(R->fr[m].x[i]);
			free(R->fr[m].x);
			free(R->fr[m].req);
			free(R->fr[m].sample);
		}
	free(R->fr);
	free(R->live);
	free(R->mb_load);
	free(R->in_flight_mb);
	free(R->slot_used);
	free(R->fifo);
	free(R->logits);
	free(R->cv);
	free(R->ci);
	np_buf_free(R->host);
}

/* R's buffers for R->slots requests in R->m micro-batches. */
int npi_run_alloc(struct npi_run *R)
{
	struct np_pipeline *p = R->p;
	uint32_t max_x = 1 + p->n_out; /* the H2C, the C2H (forwards: none) */
	uint64_t at = npi_align_up(p->frame_max, 64);

	R->live = calloc(R->slots, sizeof(*R->live));
	R->slot_used = calloc(R->slots, sizeof(*R->slot_used));
	R->mb_load = calloc(R->m, sizeof(*R->mb_load));
	R->in_flight_mb = calloc(R->m, sizeof(*R->in_flight_mb));
	R->fifo = calloc(R->m, sizeof(*R->fifo));
	R->fr = calloc(R->m, sizeof(*R->fr));
	R->logits = calloc(p->vocab, sizeof(*R->logits));
	R->cv = calloc(R->cand, sizeof(*R->cv));
	R->ci = calloc(R->cand, sizeof(*R->ci));
	if (!R->live || !R->slot_used || !R->mb_load || !R->in_flight_mb ||
	    !R->fifo || !R->fr || !R->logits || !R->cv || !R->ci)
		return -ENOMEM;
	for (uint32_t m = 0; m < R->m; m++) {
		R->fr[m].x = calloc(max_x, sizeof(*R->fr[m].x));
		R->fr[m].req = calloc(p->frame_tokens, sizeof(*R->fr[m].req));
		R->fr[m].sample = calloc(p->frame_tokens, 1);
		if (!R->fr[m].x || !R->fr[m].req || !R->fr[m].sample)
			return -ENOMEM;
	}
	for (uint32_t o = 0; o < p->n_out; o++) {
		const struct np_card_plan *pl = p->st[p->n_layer + o].plan;
		uint64_t row =
			R->full_logits ?
				(uint64_t)(pl->vocab_end - pl->vocab_begin) *
					4 :
				(uint64_t)R->cand * sizeof(struct np_job_topk);

		R->out_at[o] = at;
		at = npi_align_up(at + row * p->frame_tokens, 64);
	}
	R->host_slot = npi_align_up(at, 4096);
	return np_buf_alloc(p->ctx, R->host_slot * R->m, &R->host);
}

static int run_check(struct np_pipeline *p, const struct np_request *req,
		     size_t n, const struct np_session_opts *o, uint32_t m)
{
	uint32_t vocab = p->vocab;

	if (!npi_resv_zero(p->ctx, "np_session_opts", o->resv, sizeof(o->resv)))
		return -EINVAL;
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

/* np_session_run over the scheduler: request r has index r. */
struct batch {
	const struct np_session_opts *o;
	struct np_request_stats *rs; /* n, or NULL */
	uint64_t t0;
};

struct batch_req {
	struct batch *b;
	uint32_t index;
};

static int batch_event(void *opaque, const struct np_sched_event *ev)
{
	const struct batch_req *br = opaque;
	struct batch *b = br->b;
	struct np_token_event e = {0};
	int stop = 0;

	if (ev->finish && b->rs) {
		struct np_request_stats *s = &b->rs[br->index];

		s->prompt_tokens = ev->stats->prompt_tokens;
		s->tokens = ev->stats->tokens;
		s->first_ns =
			ev->stats->first_ns ? ev->stats->first_ns - b->t0 : 0;
		s->last_ns =
			ev->stats->last_ns ? ev->stats->last_ns - b->t0 : 0;
		/* a request a failure ended is unfinished, as before */
		s->stop = ev->stop == NP_STOP_ERROR ? NP_STOP_NONE : ev->stop;
	}
	/* the end event of a request its callback stopped has no token */
	if (ev->token < 0 || !b->o->on_token)
		return 0;
	e.request = br->index;
	e.pos = ev->pos;
	e.token = ev->token;
	e.stop = ev->stop;
	e.n_cand = ev->n_cand;
	e.cand_logit = ev->cand_logit;
	e.cand_id = ev->cand_id;
	e.logits = ev->logits;
	e.t_ns = ev->t_ns - b->t0;
	stop = b->o->on_token(b->o->opaque, &e);
	return stop;
}

/* The request of a batch as a scheduler request. */
static void batch_sreq(const struct np_request *r, struct batch_req *br,
		       struct np_sched_req *sr)
{
	memset(sr, 0, sizeof(*sr));
	sr->prompt = r->prompt;
	sr->n_prompt = r->n_prompt;
	sr->max_tokens = r->max_tokens;
	sr->sampling = r->sampling;
	sr->stop = r->stop;
	sr->n_stop = r->n_stop;
	sr->on_event = batch_event;
	sr->opaque = br;
}

int np_session_run(struct np_pipeline *p, const struct np_request *req,
		   size_t n, const struct np_session_opts *opts,
		   struct np_session_stats *stats)
{
	const struct np_session_opts none = {0};
	const struct np_session_opts *o = opts ? opts : &none;
	uint64_t cpu0 = npi_thread_cpu_ns();
	struct npi_reg_acct reg0 = npi_reg_acct;
	struct np_sched_opts so = {0};
	struct batch b = {.o = o, .rs = stats ? stats->req : NULL};
	struct batch_req *br = NULL;
	struct np_sched *s = NULL;
	struct npi_run R;
	uint32_t m;
	int ret;

	if (!p || !req)
		return -EINVAL;
	m = o->micro_batches ?
		    o->micro_batches :
		    (n < NP_DEFAULT_MICRO_BATCHES ? (uint32_t)n :
						    NP_DEFAULT_MICRO_BATCHES);
	ret = run_check(p, req, n, o, m);
	if (ret)
		return ret;
	br = calloc(n, sizeof(*br));
	if (!br)
		return -ENOMEM;
	so.slots = (uint32_t)n;
	so.micro_batches = m;
	so.max_queue = (uint32_t)n;
	so.candidates = o->candidates;
	so.full_logits = o->full_logits;
	ret = np_sched_create(p, &so, &s);
	if (!ret) {
		b.t0 = s->R.t0;
		s->text = false; /* the batch API has no text */
	}
	for (uint32_t r = 0; r < n && !ret; r++) {
		struct np_sched_req sr;

		br[r] = (struct batch_req){&b, r};
		batch_sreq(&req[r], &br[r], &sr);
		ret = np_sched_submit(s, &sr, NULL);
	}
	if (!ret) {
		np_sched_drain(s);
		ret = np_sched_run(s);
	}
	if (stats && s) {
		npi_stats_run(&s->R, stats, ret);
		/* the host's share counts the scheduler's teardown, as it
		 * counted np_session_run's */
		R = s->R;
	}
	np_sched_destroy(s);
	if (stats && s)
		npi_stats_host(&R, stats, cpu0, &reg0);
	free(br);
	return ret;
}
