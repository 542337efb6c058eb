// SPDX-License-Identifier: MIT
/*
 * Pipeline sessions (np_session_run): requests fed to the cards in frames,
 * one per micro-batch in flight (GPipe), every descriptor of a frame
 * posted ahead (pipe.h, the schedule), the results waited for while the
 * cards make progress, and the token loop around them.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "pipe.h"

static int add_xfer(struct npi_frame *f, struct np_card *card,
		    const struct np_xfer_spec *s)
{
	struct np_xfer *x;
	int ret = np_xfer_submit(card, s, &x);

	if (!ret)
		f->x[f->nx++] = x;
	return ret;
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
			.wait_value = npi_ev(st, EV_DONE, w),
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

		ret = npi_cq_post_frames(p, i, k);
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
				.wait_value = npi_ev(st, EV_DONE, k + 1),
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
					.wait_value = npi_ev(st, e, w),
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
					.wait_value =
						npi_ev(st, EV_DONE, k + 1),
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
		e.n_cand = npi_candidates(R, f, i);
		e.cand_logit = R->cv;
		e.cand_id = R->ci;
		e.logits = R->o->full_logits ? R->logits : NULL;
		e.token = npi_sample(&r->sampling, &q->rng, R->cv, R->ci,
				     e.n_cand, scale);
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
	uint64_t at = npi_align_up(p->frame_max, 64);

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
		at = npi_align_up(at + row * p->frame_tokens, 64);
	}
	R->host_slot = npi_align_up(at, 4096);
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
	npi_fwd_start(&R);
	/* GPipe: every micro-batch has one frame in flight; frames leave the
	 * output cards in the order they entered the first card */
	for (uint32_t m = 0; m < R.m && !ret; m++) {
		ret = submit(&R, m);
		if (ret == 1) {
			fifo[(head + count++) % R.m] = m;
			npi_in_flight(&R, 1);
			ret = 0;
		}
	}
	while (count && !ret) {
		struct npi_frame *f = &R.fr[fifo[head]];

		head = (head + 1) % R.m;
		count--;
		npi_phase_begin(&R);
		ret = finish(&R, f);
		npi_in_flight(&R, -1);
		npi_phase_end(&R, NPI_WAIT);
		ret = ret ? ret : process(&R, f);
		npi_phase_end(&R, NPI_SAMPLE);
		ret = ret ? ret : submit(&R, f->m);
		if (ret == 1) {
			fifo[(head + count++) % R.m] = f->m;
			npi_in_flight(&R, 1);
			ret = 0;
		}
		npi_phase_end(&R, NPI_SUBMIT);
	}
	if (ret) {
		p->broken = 1;
		/* Frames still queued to or from the host buffer must not
		 * reach it once it is freed: cancel host I/O (engine 0). */
		for (uint32_t i = 0; i < p->n_stages; i++)
			npi_engine_cancel(&p->st[i].card->eng[0]);
	}
	if (stats)
		npi_stats_run(&R, stats, ret);
	free(fifo);
	run_free(&R);
	if (stats)
		npi_stats_host(&R, stats, cpu0, &reg0);
	return ret;
}
