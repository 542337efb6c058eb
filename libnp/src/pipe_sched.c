// SPDX-License-Identifier: MIT
/*
 * The scheduler (np/sched.h): continuous batching over a pipeline.
 *
 * Requests wait in a FIFO queue until a KV slot is free, then join the
 * micro-batch with the fewest requests. The frame loop (np_sched_run, on
 * the caller's thread) keeps one frame per micro-batch in flight, as
 * np_session_run always did; a frame carries every request of its
 * micro-batch: decode tokens and prompt chunks side by side (npi_submit
 * has the share and the prefill budget). Between frames the loop admits
 * queued requests, ends cancelled ones and posts frames for micro-batches
 * that got work, so a request joins, and a slot frees, within one frame.
 * A card failure is recovered as np_session_run_recover does it: every
 * card reset, reloaded and verified, then each live request's prompt and
 * tokens so far prefilled again; its sampler's state is kept, so seeded
 * requests go on as if nothing happened.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "pipe.h"

static void wake(struct np_sched *s)
{
	uint64_t one = 1;
	ssize_t w = write(s->efd, &one, sizeof(one));

	(void)w; /* a full counter is awake anyway */
}

int np_sched_create(struct np_pipeline *p, const struct np_sched_opts *opts,
		    struct np_sched **out)
{
	const struct np_sched_opts none = {0};
	const struct np_sched_opts *o = opts ? opts : &none;
	struct np_sched *s;
	struct npi_run *R;
	uint32_t slots, m;
	int ret;

	if (!p || !out)
		return -EINVAL;
	*out = NULL;
	if (!npi_resv_zero(p->ctx, "np_sched_opts", o->resv, sizeof(o->resv)))
		return -EINVAL;
	if (p->broken) {
		npi_log(p->ctx, LOG_ERR,
			"pipeline: an earlier run failed; destroy the pipeline "
			"and load the model again");
		return -EIO;
	}
	if (p->sched) {
		npi_log(p->ctx, LOG_ERR,
			"scheduler: the pipeline has one already (or an "
			"np_session_run is running): destroy it first");
		return -EBUSY;
	}
	slots = o->slots ? o->slots : p->batch;
	m = o->micro_batches ? o->micro_batches :
			       (slots < NP_DEFAULT_MICRO_BATCHES ?
					slots :
					NP_DEFAULT_MICRO_BATCHES);
	if (slots > p->batch || m > slots ||
	    (slots + m - 1) / m > p->frame_tokens ||
	    o->candidates > NP_JOB_TOPK_MAX) {
		npi_log(p->ctx, LOG_ERR,
			"scheduler: %u slots in %u micro-batches with %u "
			"candidates: slots must be 1..%u, micro-batches "
			"1..slots with at most %u slots each, candidates 0..%u",
			slots, m, o->candidates, p->batch, p->frame_tokens,
			NP_JOB_TOPK_MAX);
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->efd < 0) {
		ret = -errno;
		free(s);
		return ret;
	}
	pthread_mutex_init(&s->mu, NULL);
	R = &s->R;
	R->p = p;
	R->slots = slots;
	R->m = m;
	R->full_logits = o->full_logits != 0;
	R->cand = o->candidates ? o->candidates : NP_DEFAULT_CANDIDATES;
	if (R->cand > p->max_slice)
		R->cand = p->max_slice;
	R->prefill_budget =
		o->prefill_budget ? o->prefill_budget : p->frame_tokens;
	s->max_queue = o->max_queue ? o->max_queue : NP_SCHED_DEFAULT_QUEUE;
	s->max_rec = o->max_recoveries;
	s->on_recover = o->on_recover;
	s->recover_opaque = o->recover_opaque;
	s->next_id = 1;
	s->text = np_pipeline_tok(p) != NULL;
	s->pub.slots = slots;
	ret = npi_run_alloc(R);
	s->lp_val = calloc(R->cand, sizeof(*s->lp_val));
	s->lp_id = calloc(R->cand, sizeof(*s->lp_id));
	if (!ret && (!s->lp_val || !s->lp_id))
		ret = -ENOMEM;
	if (ret) {
		np_sched_destroy(s);
		return ret;
	}
	p->sched = true;
	R->t0 = npi_now_ns();
	R->in_flight_t = R->t0;
	R->busy_t = R->t0;
	s->last_token_ns = R->t0;
	npi_fwd_start(R);
	*out = s;
	return 0;
}

/* Take q out of its slot (mu held). */
static void retire_locked(struct np_sched *s, struct npi_req *q)
{
	struct npi_run *R = &s->R;
	uint32_t j = 0;

	for (uint32_t r = 0; r < R->n_live; r++)
		if (R->live[r] != q)
			R->live[j++] = R->live[r];
	R->n_live = j;
	R->slot_used[q->slot] = false;
	R->mb_load[q->mb]--;
	s->pub.slots_used = R->n_live;
}

/* End q (no longer in a slot or the queue) with an event, count it,
 * free it. */
static void end_req(struct np_sched *s, struct npi_req *q,
		    enum np_stop_reason why, int error)
{
	npi_req_end(s, q, why, error);
	pthread_mutex_lock(&s->mu);
	s->pub.finished[npi_finish_of(why)]++;
	pthread_mutex_unlock(&s->mu);
	npi_req_free(q);
}

/* Between frames: end cancelled requests that no frame carries, give
 * free slots to queued requests, in order. */
static void service(struct np_sched *s)
{
	struct npi_run *R = &s->R;
	struct npi_req *ended = NULL, **qp;

	pthread_mutex_lock(&s->mu);
	s->q_tail = NULL;
	for (qp = &s->q_head; *qp;) {
		struct npi_req *q = *qp;

		if (!__atomic_load_n(&q->cancel, __ATOMIC_RELAXED)) {
			s->q_tail = q;
			qp = &q->next;
			continue;
		}
		*qp = q->next;
		s->n_queued--;
		q->next = ended;
		ended = q;
	}
	for (uint32_t r = 0; r < R->n_live;) {
		struct npi_req *q = R->live[r];

		if (!__atomic_load_n(&q->cancel, __ATOMIC_RELAXED) ||
		    R->in_flight_mb[q->mb]) {
			r++;
			continue;
		}
		retire_locked(s, q);
		q->next = ended;
		ended = q;
	}
	while (s->q_head && R->n_live < R->slots) {
		struct npi_req *q = s->q_head;
		uint32_t slot = 0, mb = 0;

		s->q_head = q->next;
		if (!s->q_head)
			s->q_tail = NULL;
		s->n_queued--;
		while (R->slot_used[slot])
			slot++;
		for (uint32_t m = 1; m < R->m; m++)
			if (R->mb_load[m] < R->mb_load[mb])
				mb = m;
		R->slot_used[slot] = true;
		R->mb_load[mb]++;
		q->slot = slot;
		q->mb = mb;
		q->next = NULL;
		q->st.start_ns = npi_now_ns();
		R->live[R->n_live++] = q;
	}
	s->pub.slots_used = R->n_live;
	s->pub.queued = s->n_queued;
	pthread_mutex_unlock(&s->mu);
	while (ended) {
		struct npi_req *q = ended;

		ended = q->next;
		end_req(s, q, NP_STOP_CANCELLED, 0);
	}
}

/* Every live and queued request ends with why (the scheduler stops). */
static void end_all(struct np_sched *s, enum np_stop_reason why, int error)
{
	struct npi_run *R = &s->R;

	for (;;) {
		struct npi_req *q = NULL;

		pthread_mutex_lock(&s->mu);
		if (R->n_live) {
			q = R->live[0];
			retire_locked(s, q);
		} else if (s->q_head) {
			q = s->q_head;
			s->q_head = q->next;
			if (!s->q_head)
				s->q_tail = NULL;
			s->pub.queued = --s->n_queued;
		}
		pthread_mutex_unlock(&s->mu);
		if (!q)
			return;
		end_req(s, q, why, error);
	}
}

/* The tokens of frame f, to their requests. */
static void deliver(struct np_sched *s, const struct npi_frame *f)
{
	struct npi_run *R = &s->R;
	struct np_pipeline *p = R->p;

	for (uint32_t i = 0; i < f->n; i++) {
		struct npi_req *q = f->req[i];

		if (!f->sample[i] ||
		    __atomic_load_n(&q->cancel, __ATOMIC_RELAXED))
			continue;
		s->rec_row = 0;
		s->last_token_ns = npi_now_ns();
		if (!npi_req_token(s, q, f, i))
			continue;
		pthread_mutex_lock(&s->mu);
		retire_locked(s, q);
		s->pub.finished[npi_finish_of(q->end)]++;
		pthread_mutex_unlock(&s->mu);
		npi_req_free(q);
	}
	pthread_mutex_lock(&s->mu);
	s->pub.tokens = R->tokens;
	s->pub.prompt_tokens = R->prompt_tokens;
	s->pub.frames = R->frames;
	memcpy(s->busy_pub, R->busy_ns, p->n_stages * sizeof(uint64_t));
	pthread_mutex_unlock(&s->mu);
}

static void set_state(struct np_sched *s, enum np_sched_state st)
{
	pthread_mutex_lock(&s->mu);
	s->pub.state = st;
	pthread_mutex_unlock(&s->mu);
}

/*
 * A frame failed with err: drop the frames in flight, then recover the
 * cards and replay every live request, or end them all. 0 when the loop
 * goes on, else the failure.
 */
static int fail(struct np_sched *s, int err)
{
	struct npi_run *R = &s->R;
	struct np_pipeline *p = R->p;
	struct np_recover_event ev = {0};
	uint64_t detect = npi_now_ns() - s->last_token_ns;
	int ret = err;

	npi_abort_frames(R);
	if (s->max_rec && s->rec_row < s->max_rec) {
		set_state(s, NP_SCHED_RECOVERING);
		ret = npi_recover(p, err, ++s->rec_row, s->max_rec, R->n_live,
				  &ev);
	}
	if (!ret) {
		ev.detect_ns = detect;
		for (uint32_t r = 0; r < R->n_live; r++) {
			ev.replayed_tokens += R->live[r]->len;
			R->live[r]->fed = 0;
		}
		pthread_mutex_lock(&s->mu);
		s->pub.recoveries++;
		s->pub.state = __atomic_load_n(&s->drain, __ATOMIC_RELAXED) ?
				       NP_SCHED_DRAINING :
				       NP_SCHED_RUNNING;
		pthread_mutex_unlock(&s->mu);
		s->last_token_ns = npi_now_ns();
		if (s->on_recover)
			s->on_recover(s->recover_opaque, &ev);
		return 0;
	}
	p->broken = 1;
	pthread_mutex_lock(&s->mu);
	s->failed = ret;
	s->pub.state = NP_SCHED_FAILED;
	pthread_mutex_unlock(&s->mu);
	end_all(s, NP_STOP_ERROR, ret);
	return ret;
}

/* Sleep until a submission, cancel, stop or drain. */
static void wait_wake(struct np_sched *s)
{
	struct pollfd pfd = {.fd = s->efd, .events = POLLIN};
	struct np_pipeline *p = s->R.p;

	/* a pipeline over other hosts keeps its links alive meanwhile */
	while (poll(&pfd, 1, p->cl ? p->cl_ops->idle(p) : -1) == 0)
		;
}

static bool idle(struct np_sched *s)
{
	bool r;

	pthread_mutex_lock(&s->mu);
	r = !s->R.n_live && !s->q_head;
	pthread_mutex_unlock(&s->mu);
	return r;
}

/* Post a frame for every micro-batch with work and none in flight. */
static int post_idle(struct np_sched *s)
{
	struct npi_run *R = &s->R;

	for (uint32_t m = 0; m < R->m; m++) {
		int ret = R->in_flight_mb[m] ? 0 : npi_submit(R, m);

		if (ret < 0)
			return ret;
	}
	return 0;
}

static int run_loop(struct np_sched *s)
{
	struct npi_run *R = &s->R;
	int ret = 0;

	for (;;) {
		bool stop;
		struct npi_frame *f;
		uint64_t v;

		if (read(s->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			return -errno;
		service(s);
		stop = __atomic_load_n(&s->stop, __ATOMIC_ACQUIRE);
		ret = stop ? 0 : post_idle(s);
		if (ret) {
			/* recovered: post the replays */
			if ((ret = fail(s, ret)))
				return ret;
			continue;
		}
		if (!R->count) {
			if (stop ||
			    (__atomic_load_n(&s->drain, __ATOMIC_ACQUIRE) &&
			     idle(s)))
				return 0;
			wait_wake(s);
			continue;
		}
		npi_phase_begin(R);
		f = npi_finish_next(R, &ret);
		npi_phase_end(R, NPI_WAIT);
		if (ret) {
			if ((ret = fail(s, ret)))
				return ret;
			continue;
		}
		deliver(s, f);
		npi_phase_end(R, NPI_SAMPLE);
		service(s);
		ret = stop ? 0 : npi_submit(R, f->m);
		npi_phase_end(R, NPI_SUBMIT);
		if (ret < 0 && (ret = fail(s, ret)))
			return ret;
	}
}

int np_sched_run(struct np_sched *s)
{
	int ret;

	if (!s)
		return -EINVAL;
	if (__atomic_exchange_n(&s->running, 1, __ATOMIC_ACQ_REL))
		return -EBUSY;
	if (s->failed) {
		__atomic_store_n(&s->running, 0, __ATOMIC_RELEASE);
		return s->failed;
	}
	set_state(s, __atomic_load_n(&s->drain, __ATOMIC_RELAXED) ?
			     NP_SCHED_DRAINING :
			     NP_SCHED_RUNNING);
	ret = run_loop(s);
	__atomic_store_n(&s->stop, 0, __ATOMIC_RELEASE);
	if (!ret)
		set_state(s, NP_SCHED_IDLE);
	__atomic_store_n(&s->running, 0, __ATOMIC_RELEASE);
	return ret;
}

void np_sched_stop(struct np_sched *s)
{
	if (!s)
		return;
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
	wake(s);
}

void np_sched_drain(struct np_sched *s)
{
	if (!s)
		return;
	__atomic_store_n(&s->drain, 1, __ATOMIC_RELEASE);
	wake(s);
}

int np_sched_fd(const struct np_sched *s)
{
	return s ? s->efd : -EINVAL;
}

int np_sched_submit(struct np_sched *s, const struct np_sched_req *req,
		    uint64_t *id)
{
	struct npi_req *q;
	int ret;

	if (!s || !req)
		return -EINVAL;
	ret = npi_req_new(s, req, &q);
	if (ret)
		return ret;
	pthread_mutex_lock(&s->mu);
	if (s->failed || __atomic_load_n(&s->drain, __ATOMIC_ACQUIRE)) {
		ret = -ESHUTDOWN;
	} else if (s->R.n_live + s->n_queued >= s->R.slots + s->max_queue) {
		s->pub.rejected++;
		ret = -EAGAIN;
	} else {
		q->id = s->next_id++;
		q->st.submit_ns = npi_now_ns();
		if (s->q_tail)
			s->q_tail->next = q;
		else
			s->q_head = q;
		s->q_tail = q;
		s->pub.queued = ++s->n_queued;
		s->pub.submitted++;
		if (id)
			*id = q->id;
	}
	pthread_mutex_unlock(&s->mu);
	if (ret) {
		npi_req_free(q);
		return ret;
	}
	wake(s);
	return 0;
}

int np_sched_cancel(struct np_sched *s, uint64_t id)
{
	struct npi_req *found = NULL;

	if (!s)
		return -EINVAL;
	pthread_mutex_lock(&s->mu);
	for (struct npi_req *q = s->q_head; q && !found; q = q->next)
		if (q->id == id)
			found = q;
	for (uint32_t r = 0; r < s->R.n_live && !found; r++)
		if (s->R.live[r]->id == id)
			found = s->R.live[r];
	if (found)
		__atomic_store_n(&found->cancel, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&s->mu);
	if (!found)
		return -ENOENT;
	wake(s);
	return 0;
}

int np_sched_stats(struct np_sched *s, struct np_sched_stats *st)
{
	uint64_t *busy;
	uint32_t n;

	if (!s || !st)
		return -EINVAL;
	busy = st->card_busy_ns;
	n = busy ? st->n_card : 0;
	pthread_mutex_lock(&s->mu);
	*st = s->pub;
	for (uint32_t i = 0; i < n; i++)
		busy[i] = i < s->R.p->n_stages ? s->busy_pub[i] : 0;
	pthread_mutex_unlock(&s->mu);
	st->card_busy_ns = busy;
	st->n_card = n;
	st->wall_ns = npi_now_ns() - s->R.t0;
	return 0;
}

void np_sched_destroy(struct np_sched *s)
{
	if (!s)
		return;
	if (s->R.live)
		end_all(s, NP_STOP_CANCELLED, 0);
	if (s->R.t0)
		s->R.p->sched = false;
	npi_run_free(&s->R);
	free(s->txt);
	free(s->lp_val);
	free(s->lp_id);
	close(s->efd);
	pthread_mutex_destroy(&s->mu);
	free(s);
}
