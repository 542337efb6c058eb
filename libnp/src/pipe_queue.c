// SPDX-License-Identifier: MIT
/*
 * The pipeline's compute queues: one per card, on the ring driver
 * (ring.c), with the NOP and LAYER jobs of every frame (pipe.h, the
 * schedule).
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "pipe.h"
#include "recover.h"

/*
 * Reset stage st's compute queue and wait until it no longer runs a job
 * (a job in flight is abandoned and still writes its record; until BUSY
 * clears the card ignores new ring and writeback addresses). -ETIMEDOUT
 * if it still runs one after the context's timeout, -ENODEV if the card
 * is gone. The reset is written to a removed card too: an emulated one
 * still runs its jobs.
 */
static int cq_quiesce(struct npi_stage *st)
{
	static const struct npi_ring_stop stop = {
		.idle = NP_Q_STATUS_BUSY,
		.poll_us = 100,
	};

	return npi_ring_reset(&st->cq, &stop, NULL);
}

/* What the pipeline's image takes of st's card, in the card's use
 * registers (np_abi.h), for every process to read; zeros: released. */
static void publish_use(struct np_pipeline *p, struct npi_stage *st, bool on)
{
	const struct np_card_plan *pl = st->plan;
	const uint32_t v[4] = {
		on ? (uint32_t)pl->weight_bytes : 0,
		on ? (uint32_t)pl->kv_bytes : 0,
		on ? (uint32_t)pl->prog_bytes : 0,
		on ? (uint32_t)(p->out_off + (uint64_t)p->slots * p->out_size) :
		     0,
	};

	/* cards before ABI 1.2 have no such registers */
	if (np_card_removed(st->card) || st->card->info.abi_minor < 2)
		return;
	for (unsigned int i = 0; i < 4; i++)
		st->card->ctx->ops->reg_write(st->card,
					      NP_REG_USE_WEIGHTS + 4 * i, v[i]);
}

int npi_cq_start(struct np_pipeline *p, struct npi_stage *st)
{
	int ret;

	ret = npi_ring_alloc(&st->cq, st->card, NP_COMPUTE_BASE, NPI_CQ_ENTRIES,
			     sizeof(struct np_job_desc));
	if (ret)
		return ret;
	ret = cq_quiesce(st);
	if (ret) {
		npi_log(p->ctx, LOG_ERR,
			"pipeline: card %s: compute queue still runs a job "
			"%u ms after its reset%s; reset the card (nptool "
			"reset)",
			st->card->name, p->ctx->timeout_ms,
			ret == -ENODEV ? " (the card is gone)" : "");
		return ret;
	}
	if (!(npi_ring_program(&st->cq) & NP_Q_STATUS_ENABLED)) {
		npi_log(p->ctx, LOG_ERR,
			"pipeline: card %s: compute queue did not enable "
			"(error %u); reset the card (nptool reset)",
			st->card->name, npi_ring_rd(&st->cq, NP_Q_ERROR));
		return -EIO;
	}
	st->cq_frames = 0;
	memset(&st->cq_hang, 0, sizeof(st->cq_hang));
	memset(st->dma_hang, 0, sizeof(st->dma_hang));
	st->cq_hang.done = npi_ring_rd(&st->cq, NP_Q_COMPLETED);
	for (unsigned int e = 0; e < st->card->num_engines; e++)
		if (st->card->eng[e].q.mem)
			st->dma_hang[e].done = npi_ring_rd(&st->card->eng[e].q,
							   NP_Q_COMPLETED);
	st->hung = false;
	st->hung_engine = -1;
	publish_use(p, st, true);
	return 0;
}

void npi_cq_stop(struct np_pipeline *p, struct npi_stage *st)
{
	if (!st->cq.mem)
		return;
	publish_use(p, st, false);
	/* the ring and record stay in use until the job in flight ends (a
	 * removed card no longer reaches them) */
	cq_quiesce(st);
	npi_ring_free(&st->cq);
}

/* The queue stopped: say where and why. */
int npi_cq_check(struct np_pipeline *p, struct npi_stage *st)
{
	uint32_t status = __atomic_load_n(&st->cq.wb->status, __ATOMIC_ACQUIRE);

	if (!(status & NP_Q_STATUS_ERROR))
		return 0;
	npi_log(p->ctx, LOG_ERR,
		"pipeline: card %s: compute queue stopped at job %u with "
		"NP_ERR %u (%s); the card image or frame layout is wrong: "
		"reload the model",
		st->card->name, npi_ring_rd(&st->cq, NP_Q_ERR_INDEX),
		npi_ring_rd(&st->cq, NP_Q_ERROR),
		npi_ring_rd(&st->cq, NP_Q_ERROR) == NP_ERR_BAD_PROGRAM ?
			"bad program or arguments" :
			"see docs/hardware.md, Errors");
	return -EIO;
}

/* How long a queue may run one job: in proportion to its jobs so far,
 * the context timeout until one completed. */
static uint64_t hang_limit_ns(const struct np_pipeline *p,
			      const struct npi_hang *h)
{
	uint64_t cap = (uint64_t)p->ctx->timeout_ms * 1000000ull;
	uint64_t lim = h->job_max_ns * NPI_HANG_FACTOR;

	if (!h->job_max_ns)
		return cap;
	if (lim < NPI_HANG_MIN_MS * 1000000ull)
		lim = NPI_HANG_MIN_MS * 1000000ull;
	return lim < cap ? lim : cap;
}

/*
 * One look at queue r: true once it has run the same job for longer
 * than its limit. A job that ended since the last look counts as having
 * taken all the time since it was seen running: on a host busy elsewhere
 * the looks come late and the jobs' times are overestimated, which keeps
 * the limit generous where the cards' threads are starved too.
 */
static bool hang_step(const struct np_pipeline *p, struct npi_hang *h,
		      const struct npi_ring *r, uint64_t now, uint64_t *busy_ns)
{
	uint32_t status = npi_ring_rd(r, NP_Q_STATUS);
	uint32_t done = npi_ring_rd(r, NP_Q_COMPLETED);
	bool running;

	/* all ones: the card is gone, which is found elsewhere */
	if (status == UINT32_MAX)
		return false;
	/* waiting for an event is no hang: the queue feeding it is */
	running =
		(status & NP_Q_STATUS_BUSY) && !(status & NP_Q_STATUS_WAITING);
	if (done != h->done || !running) {
		uint64_t took = h->busy_since ? now - h->busy_since :
						NPI_POLL_MS * 1000000ull;

		if (done != h->done && took > h->job_max_ns)
			h->job_max_ns = took;
		h->done = done;
		h->busy_since = running ? now : 0;
		return false;
	}
	if (!h->busy_since) {
		h->busy_since = now;
		return false;
	}
	*busy_ns = now - h->busy_since;
	return *busy_ns > hang_limit_ns(p, h);
}

int npi_cq_watch(struct np_pipeline *p, uint64_t now)
{
	for (uint32_t i = 0; i < p->n_stages; i++) {
		struct npi_stage *st = &p->st[i];
		struct np_card *c = st->card;
		uint64_t busy = 0;

		if (!st->cq.mem)
			continue;
		if (hang_step(p, &st->cq_hang, &st->cq, now, &busy)) {
			st->hung = true;
			st->hung_engine = -1;
			npi_log(p->ctx, LOG_ERR,
				"pipeline: card %s (card %u of the pipeline): "
				"compute queue hung at job %u: busy for %llu "
				"ms, its longest job so far took %.1f ms",
				c->name, i, st->cq_hang.done,
				(unsigned long long)(busy / 1000000),
				st->cq_hang.job_max_ns / 1e6);
			return -ETIMEDOUT;
		}
		for (unsigned int e = 0; e < c->num_engines; e++) {
			struct npi_hang *h = &st->dma_hang[e];

			if (!c->eng[e].q.mem ||
			    !hang_step(p, h, &c->eng[e].q, now, &busy))
				continue;
			st->hung = true;
			st->hung_engine = (int)e;
			npi_log(p->ctx, LOG_ERR,
				"pipeline: card %s (card %u of the pipeline): "
				"DMA engine %u hung at descriptor %u: busy for "
				"%llu ms, its longest transfer so far took "
				"%.1f ms",
				c->name, i, e, h->done,
				(unsigned long long)(busy / 1000000),
				h->job_max_ns / 1e6);
			return -ETIMEDOUT;
		}
	}
	return 0;
}

int npi_pipeline_dma_hung(const struct np_pipeline *p, uint32_t i)
{
	return i < p->n_stages && p->st[i].hung ? p->st[i].hung_engine : -1;
}

/* Write job j into the ring; npi_ring_doorbell() hands what was written
 * to the card. */
static int cq_push(struct np_pipeline *p, struct npi_stage *st,
		   const struct np_job_desc *j)
{
	uint64_t deadline = 0;
	int ret;

	while (npi_ring_used(&st->cq, npi_ring_completed(&st->cq)) >=
	       NPI_CQ_ENTRIES - 1) {
		ret = npi_cq_check(p, st);
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
	*(struct np_job_desc *)npi_ring_next(&st->cq) = *j;
	return 0;
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
		.wait_value = npi_ev(st, EV_SENT, w),
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
	j.wait_value = npi_ev(st, EV_DATA, k + 1);
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
int npi_cq_post_frames(struct np_pipeline *p, uint32_t i, uint32_t k)
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
	       npi_ring_used(&st->cq, npi_ring_completed(&st->cq)) + 2 <
		       NPI_CQ_ENTRIES;
	     st->cq_frames++, n++) {
		ret = cq_post_frame(p, i, st->cq_frames);
		if (ret)
			return ret;
	}
	npi_ring_doorbell(&st->cq);
	return 0;
}
