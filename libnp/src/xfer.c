// SPDX-License-Identifier: MIT
/*
 * DMA engines and transfers.
 *
 * Each engine owns a descriptor ring and a writeback record in one DMA
 * buffer. Software counts descriptors submitted and completed since the
 * engine's last reset (32-bit, free-running like NP_Q_COMPLETED); a
 * transfer is done when completed passes its last descriptor. The card is
 * not trusted: a writeback record whose completed count runs ahead of what
 * was submitted is a card failure, never an index.
 *
 * Waiting: one thread per engine (the poller) sleeps in ppoll() on the
 * engine's interrupt eventfd; others wait on the engine's condition
 * variable and are woken whenever the poller or anyone else retires
 * transfers. The fd is drained only under the engine lock, immediately
 * followed by a reap, so no completion is ever lost between threads.
 */
#define _GNU_SOURCE /* ppoll */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "np_err_names.h"
#include "xfer_plan.h"

#define SPIN_NS 20000u /* busy-poll before sleeping: a wakeup costs more */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

static struct np_ctx *ectx(const struct npi_engine *eng)
{
	return eng->card->ctx;
}

static uint32_t qrd(struct npi_engine *eng, uint32_t off)
{
	return npi_ring_rd(&eng->q, off);
}

static int err_errno(unsigned int e)
{
	switch (e) {
	case NP_ERR_BUS_READ:
	case NP_ERR_BUS_WRITE:
	case NP_ERR_RING_FETCH:
	case NP_ERR_WB_WRITE:
	case NP_ERR_NOTIFY_WRITE:
		return -EFAULT;
	case NP_ERR_WAIT_TIMEOUT:
		return -ETIMEDOUT;
	case NP_ERR_ABORTED:
		return -ECANCELED;
	default:
		return -EIO;
	}
}

static void xfer_release(struct np_xfer *x)
{
	np_buf_free(x->bounce);
	free(x);
}

/* Unlink the head transfer and give it its final (stage) status. */
static void retire_head(struct npi_engine *eng, int status, unsigned int np_err,
			uint64_t addr)
{
	struct np_xfer *x = eng->head;

	eng->head = x->next;
	if (!eng->head)
		eng->tail = NULL;
	x->next = NULL;
	x->np_err = np_err;
	x->err_addr = addr;
	if (status)
		x->stage2_pending = false;
	if (x->orphan) {
		xfer_release(x);
		return;
	}
	__atomic_store_n(&x->status, status, __ATOMIC_RELEASE);
}

/* Abort the queue and wait until it no longer touches the ring or the
 * writeback record (an aborted descriptor still writes its record). A
 * removed card no longer reaches either. */
static int engine_stop(struct npi_engine *eng)
{
	static const struct npi_ring_stop stop = {
		.removed_first = true,
		.disable = true,
		.idle = NP_Q_STATUS_BUSY | NP_Q_STATUS_ENABLED,
		.poll_us = 10,
	};
	uint32_t st = 0;
	int ret = npi_ring_reset(&eng->q, &stop, &st);

	if (ret == -ETIMEDOUT)
		npi_log(ectx(eng), LOG_ERR,
			"np: card %s: DMA engine %u still busy after reset "
			"(status 0x%08x); reset the card",
			eng->card->name, eng->idx, st);
	return ret;
}

/* Program the ring and enable the engine; software counters restart. */
static int engine_hw_reset(struct npi_engine *eng)
{
	uint32_t st;
	int ret;

	ret = engine_stop(eng);
	if (ret)
		return ret;
	eng->completed = 0;
	st = npi_ring_program(&eng->q);
	if (!(st & NP_Q_STATUS_ENABLED) || (st & NP_Q_STATUS_ERROR)) {
		npi_log(ectx(eng), LOG_ERR,
			"np: card %s: DMA engine %u refused its ring at 0x%llx "
			"(%u entries): status 0x%08x, error %u (%s)",
			eng->card->name, eng->idx,
			(unsigned long long)np_buf_iova(eng->q.mem),
			eng->q.entries, st, qrd(eng, NP_Q_ERROR),
			np_err_name(qrd(eng, NP_Q_ERROR)));
		return -EIO;
	}
	return 0;
}

/* Fail the head transfer with err and the rest with -ECANCELED, then
 * restart the engine. Returns the number of transfers retired. */
static int engine_fail(struct npi_engine *eng, int err, unsigned int np_err,
		       uint64_t addr)
{
	int n = 0;

	while (eng->head) {
		retire_head(eng, n ? -ECANCELED : err, n ? NP_ERR_NONE : np_err,
			    n ? 0 : addr);
		n++;
	}
	engine_hw_reset(eng);
	pthread_cond_broadcast(&eng->cond);
	return n;
}

static int retire_completed(struct npi_engine *eng, uint32_t c)
{
	int n = 0;

	eng->completed = c;
	while (eng->head && (int32_t)(c - eng->head->end) >= 0) {
		retire_head(eng, 0, NP_ERR_NONE, 0);
		n++;
	}
	return n;
}

/* The queue reports a stop: take the authoritative registers. */
static int engine_check_error(struct npi_engine *eng)
{
	uint32_t st = qrd(eng, NP_Q_STATUS);
	uint32_t err, idx, c;
	uint64_t addr;
	int n;

	if (!(st & NP_Q_STATUS_ERROR))
		return 0;
	err = qrd(eng, NP_Q_ERROR);
	idx = qrd(eng, NP_Q_ERR_INDEX);
	addr = qrd(eng, NP_Q_ERR_ADDR_LO) | (uint64_t)qrd(eng, NP_Q_ERR_ADDR_HI)
						    << 32;
	c = qrd(eng, NP_Q_COMPLETED);
	n = 0;
	if (c - eng->completed <= eng->q.submitted - eng->completed)
		n = retire_completed(eng, c);
	__atomic_fetch_or(&eng->card->dma_failed, 1u << eng->idx,
			  __ATOMIC_RELEASE);
	npi_log(ectx(eng), LOG_ERR,
		"np: card %s: DMA engine %u stopped at descriptor %u: error %u "
		"(%s), address 0x%llx",
		eng->card->name, eng->idx, idx, err, np_err_name(err),
		(unsigned long long)addr);
	return n + engine_fail(eng, err_errno(err), err, addr);
}

static int engine_reap_locked(struct npi_engine *eng)
{
	uint32_t c = __atomic_load_n(&eng->wb->completed, __ATOMIC_ACQUIRE);
	uint32_t st = __atomic_load_n(&eng->wb->status, __ATOMIC_RELAXED);
	uint32_t head = __atomic_load_n(&eng->wb->head, __ATOMIC_RELAXED);
	int n;

	if (c - eng->completed > eng->q.submitted - eng->completed ||
	    head >= eng->q.entries) {
		npi_log(ectx(eng), LOG_ERR,
			"np: card %s: DMA engine %u wrote an invalid writeback "
			"record (completed %u, head %u; submitted %u of %u "
			"entries): engine reset",
			eng->card->name, eng->idx, c, head, eng->q.submitted,
			eng->q.entries);
		return engine_fail(eng, -EIO, NP_ERR_NONE, 0);
	}
	n = c != eng->completed ? retire_completed(eng, c) : 0;
	if (st & NP_Q_STATUS_ERROR)
		n += engine_check_error(eng);
	if (n)
		pthread_cond_broadcast(&eng->cond);
	return n;
}

/*
 * Consume the engine's interrupt, then re-arm it. The caller reaps next:
 * the exchange orders the re-arm before the writeback loads, so a
 * completion either shows in the reap or signals the fd again.
 */
static void drain_irq(struct npi_engine *eng)
{
	uint64_t v;

	if (read(eng->irq_fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing pending */
	}
	__atomic_exchange_n(&eng->card->irq_pending[NP_IRQ_DMA(eng->idx)], 0,
			    __ATOMIC_SEQ_CST);
}

/*
 * Sleep until an interrupt, a retirement by another thread, or deadline.
 * Engine lock held on entry and exit.
 */
static void engine_sleep_locked(struct npi_engine *eng, uint64_t deadline)
{
	uint64_t now = npi_now_ns(), left = deadline > now ? deadline - now : 0;
	struct pollfd pfd = {.fd = eng->irq_fd, .events = POLLIN};
	struct timespec ts;

	if (eng->poller) {
		ts.tv_sec = (time_t)(deadline / 1000000000ull);
		ts.tv_nsec = (long)(deadline % 1000000000ull);
		pthread_cond_timedwait(&eng->cond, &eng->lock, &ts);
		return;
	}
	eng->poller = true;
	pthread_mutex_unlock(&eng->lock);
	ts.tv_sec = (time_t)(left / 1000000000ull);
	ts.tv_nsec = (long)(left % 1000000000ull);
	ppoll(&pfd, 1, &ts, NULL);
	pthread_mutex_lock(&eng->lock);
	eng->poller = false;
	drain_irq(eng);
	/* A follower takes over polling if its transfer is still running. */
	pthread_cond_broadcast(&eng->cond);
}

/* Spin briefly on the writeback record: cheaper than an interrupt when
 * the transfer is about to finish. */
static void engine_spin(struct npi_engine *eng, uint32_t end)
{
	uint64_t stop = npi_now_ns() + SPIN_NS;
	unsigned int i = 0;

	for (;;) {
		uint32_t c =
			__atomic_load_n(&eng->wb->completed, __ATOMIC_ACQUIRE);
		uint32_t st =
			__atomic_load_n(&eng->wb->status, __ATOMIC_RELAXED);

		if ((int32_t)(c - end) >= 0 || (st & NP_Q_STATUS_ERROR))
			return;
		cpu_relax();
		/* The clock costs more than a writeback poll. */
		if (!(++i & 31) && npi_now_ns() >= stop)
			return;
	}
}

/* Deadline passed with work outstanding: the card stopped answering. */
static void engine_timeout(struct npi_engine *eng, int timeout_ms)
{
	if (engine_check_error(eng))
		return;
	if (!eng->head)
		return;
	npi_log(ectx(eng), LOG_ERR,
		"np: card %s: DMA engine %u made no progress for %d ms "
		"(status 0x%08x, head %u, completed %u of %u): engine reset",
		eng->card->name, eng->idx, timeout_ms, qrd(eng, NP_Q_STATUS),
		qrd(eng, NP_Q_HEAD), eng->completed, eng->q.submitted);
	engine_fail(eng, -ETIMEDOUT, NP_ERR_NONE, 0);
}

int npi_engine_init(struct np_card *card, unsigned int idx)
{
	struct npi_engine *eng = &card->eng[idx];
	struct np_ctx *ctx = card->ctx;
	pthread_condattr_t ca;
	int ret;

	eng->card = card;
	eng->idx = idx;
	eng->irq_fd = card->irq_fd[NP_IRQ_DMA(idx)];
	pthread_mutex_init(&eng->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&eng->cond, &ca);
	pthread_condattr_destroy(&ca);
	ret = npi_ring_alloc(&eng->q, card, NP_DMA_BASE(idx), ctx->ring_entries,
			     sizeof(struct np_dma_desc));
	if (ret)
		return ret;
	eng->wb = eng->q.wb;
	return 0;
}

int npi_engine_start(struct npi_engine *eng)
{
	int ret;

	pthread_mutex_lock(&eng->lock);
	ret = engine_hw_reset(eng);
	pthread_mutex_unlock(&eng->lock);
	return ret;
}

void npi_engine_abort(struct npi_engine *eng, int err)
{
	pthread_mutex_lock(&eng->lock);
	while (eng->head)
		retire_head(eng, err, NP_ERR_ABORTED, 0);
	pthread_cond_broadcast(&eng->cond);
	pthread_mutex_unlock(&eng->lock);
}

void npi_engine_cancel(struct npi_engine *eng)
{
	if (!eng->q.mem)
		return;
	pthread_mutex_lock(&eng->lock);
	while (eng->head)
		retire_head(eng, -ECANCELED, NP_ERR_ABORTED, 0);
	pthread_cond_broadcast(&eng->cond);
	/* A card that reads all-ones does not answer: it moves no data, and
	 * waiting for its engine to stop would only add the timeout. */
	if (!np_card_removed(eng->card) && qrd(eng, NP_Q_STATUS) != UINT32_MAX)
		engine_hw_reset(eng);
	pthread_mutex_unlock(&eng->lock);
}

void npi_engine_fini(struct npi_engine *eng)
{
	if (!eng->q.mem)
		return;
	npi_engine_abort(eng, -ECANCELED);
	pthread_mutex_lock(&eng->lock);
	engine_stop(eng);
	pthread_mutex_unlock(&eng->lock);
	npi_ring_free(&eng->q);
	eng->wb = NULL;
	pthread_cond_destroy(&eng->cond);
	pthread_mutex_destroy(&eng->lock);
}

int npi_engine_process(struct npi_engine *eng)
{
	int n;

	pthread_mutex_lock(&eng->lock);
	if (!eng->poller)
		drain_irq(eng);
	n = engine_reap_locked(eng);
	pthread_mutex_unlock(&eng->lock);
	return n;
}

/* ---------------------------------------------------------------- */

static struct npi_engine *pick_engine(struct np_card *card, int engine)
{
	unsigned int e;

	if (engine >= 0)
		return &card->eng[engine];
	e = __atomic_fetch_add(&card->rr, 1, __ATOMIC_RELAXED);
	return &card->eng[e % card->num_engines];
}

/* Post n transfers (plans p[], records x[] or none) with one doorbell. */
static int engine_submit(struct npi_engine *eng, const struct npi_plan *p,
			 struct np_xfer **x, unsigned int n_x)
{
	struct np_ctx *ctx = ectx(eng);
	uint32_t n = 0;
	uint64_t deadline = 0;

	if (eng->card->removed) {
		npi_log(ctx, LOG_ERR, "np: card %s was removed",
			eng->card->name);
		return -ENODEV;
	}
	if (!eng->card->ready) {
		/* Its engines lost their rings in a reset that failed:
		 * descriptors written now would never run. */
		npi_log(ctx, LOG_ERR,
			"np: card %s: not ready, its last reset failed; reset "
			"it with `nptool reset %s` or np_card_reset() before "
			"submitting",
			eng->card->name, eng->card->name);
		return -EIO;
	}
	for (unsigned int i = 0; i < n_x; i++)
		n += npi_plan_descs(&p[i]);
	if (n > eng->q.entries - 1)
		return npi_xfer_bad_spec(
			eng->card, "needs more descriptors than a ring", n);
	pthread_mutex_lock(&eng->lock);
	for (;;) {
		if (eng->q.submitted - eng->completed + n <= eng->q.entries - 1)
			break;
		engine_reap_locked(eng);
		if (eng->q.submitted - eng->completed + n <= eng->q.entries - 1)
			break;
		if (!deadline)
			deadline = npi_now_ns() +
				   (uint64_t)ctx->timeout_ms * 1000000;
		if (npi_now_ns() >= deadline) {
			engine_timeout(eng, ctx->timeout_ms);
			if (eng->q.submitted - eng->completed + n <=
			    eng->q.entries - 1)
				break;
			pthread_mutex_unlock(&eng->lock);
			return -ETIMEDOUT;
		}
		engine_sleep_locked(eng, deadline);
	}
	for (unsigned int i = 0; i < n_x; i++) {
		npi_plan_write(&eng->q, &p[i], npi_plan_descs(&p[i]));
		if (!x)
			continue;
		x[i]->eng = eng;
		x[i]->end = eng->q.submitted;
		x[i]->status = -EINPROGRESS;
		x[i]->next = NULL;
		if (eng->tail)
			eng->tail->next = x[i];
		else
			eng->head = x[i];
		eng->tail = x[i];
	}
	npi_ring_doorbell(&eng->q);
	pthread_mutex_unlock(&eng->lock);
	return 0;
}

int np_xfer_submit(struct np_card *card, const struct np_xfer_spec *spec,
		   struct np_xfer **out)
{
	struct np_xfer_spec s1;
	struct np_xfer *x;
	struct npi_plan p;
	int ret;

	if (!card || !spec || !out)
		return -EINVAL;
	*out = NULL;
	if (spec->engine >= (int)card->num_engines || spec->engine < -1)
		return npi_xfer_bad_spec(card, "names an engine the card lacks",
					 (unsigned long long)spec->engine);
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->ctx = card->ctx;
	s1 = *spec;
	if (spec->op == NP_XFER_C2C && spec->peer &&
	    np_card_p2p_mode(card, spec->peer) == NP_P2P_BOUNCE) {
		/* Validate the whole transfer before allocating. */
		ret = npi_plan_build(card, spec, &p);
		if (ret)
			goto err;
		ret = np_buf_alloc(card->ctx, spec->len, &x->bounce);
		if (ret)
			goto err;
		x->stage2 = (struct np_xfer_spec){
			.op = NP_XFER_H2C,
			.engine = -1,
			.buf = x->bounce,
			.card_addr = spec->dst_addr,
			.len = spec->len,
			.flags = (spec->flags & NP_XFER_F_PEER_EVENT) ?
					 NP_XFER_F_SIGNAL :
					 0,
			.signal_event = spec->peer_event,
			.peer = spec->peer,
		};
		x->stage2_pending = true;
		s1.op = NP_XFER_C2H;
		s1.buf = x->bounce;
		s1.buf_offset = 0;
		s1.flags &= ~NP_XFER_F_PEER_EVENT;
	}
	ret = npi_plan_build(card, &s1, &p);
	if (!ret)
		ret = engine_submit(pick_engine(card, spec->engine), &p, &x, 1);
	if (ret)
		goto err;
	*out = x;
	return 0;
err:
	xfer_release(x);
	return ret;
}

int npi_xfer_submit_batch(struct np_card *card, unsigned int engine,
			  const struct np_xfer_spec *spec, unsigned int n,
			  struct np_xfer **out)
{
	struct npi_plan p[NPI_XFER_BATCH] = {0};
	unsigned int i;
	int ret = 0;

	if (n > NPI_XFER_BATCH || engine >= card->num_engines)
		return -EINVAL;
	for (i = 0; out && i < n; i++)
		out[i] = NULL;
	for (i = 0; i < n && !ret; i++) {
		if (spec[i].engine != (int)engine ||
		    (spec[i].op == NP_XFER_C2C && spec[i].peer &&
		     np_card_p2p_mode(card, spec[i].peer) == NP_P2P_BOUNCE))
			ret = npi_xfer_bad_spec(
				card,
				"in a batch is not a direct transfer "
				"on the batch's engine",
				(unsigned long long)spec[i].engine);
		if (!ret)
			ret = npi_plan_build(card, &spec[i], &p[i]);
		p[i].quiet = !out;
		if (ret || !out)
			continue;
		out[i] = calloc(1, sizeof(*out[i]));
		if (!out[i])
			ret = -ENOMEM;
		else
			out[i]->ctx = card->ctx;
	}
	if (!ret)
		ret = engine_submit(&card->eng[engine], p, out, n);
	if (ret && out)
		for (i = 0; i < n; i++) {
			free(out[i]);
			out[i] = NULL;
		}
	return ret;
}

int npi_xfer_reap(struct np_xfer *x)
{
	struct npi_engine *eng = x->eng;
	int st;

	/* a bounce's second stage starts in np_xfer_poll */
	if (x->bounce)
		return np_xfer_poll(x);
	st = __atomic_load_n(&x->status, __ATOMIC_ACQUIRE);
	if (st != -EINPROGRESS)
		return st;
	pthread_mutex_lock(&eng->lock);
	engine_reap_locked(eng);
	st = x->status;
	pthread_mutex_unlock(&eng->lock);
	return st;
}

/* The bounce's first stage landed in host memory: start the second. */
static int xfer_stage2(struct np_xfer *x)
{
	struct np_card *peer = x->stage2.peer;
	struct npi_plan p;
	int ret;

	x->stage2_pending = false;
	ret = npi_plan_build(peer, &x->stage2, &p);
	if (!ret)
		ret = engine_submit(pick_engine(peer, -1), &p, &x, 1);
	if (ret)
		x->status = ret;
	return ret ? ret : -EINPROGRESS;
}

int np_xfer_poll(struct np_xfer *x)
{
	struct npi_engine *eng = x->eng;
	int st;

	pthread_mutex_lock(&eng->lock);
	if (!eng->poller)
		drain_irq(eng);
	engine_reap_locked(eng);
	st = x->status;
	pthread_mutex_unlock(&eng->lock);
	if (st == 0 && x->stage2_pending)
		return xfer_stage2(x);
	return st;
}

int np_xfer_wait(struct np_xfer *x, int timeout_ms)
{
	uint64_t deadline;
	struct npi_engine *eng;
	int st;

	if (timeout_ms == NP_TIMEOUT_DEFAULT)
		timeout_ms = x->ctx->timeout_ms;
	else if (timeout_ms <= 0)
		return -EINVAL;
	deadline = npi_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	for (;;) {
		eng = x->eng;
		if (__atomic_load_n(&x->status, __ATOMIC_ACQUIRE) ==
		    -EINPROGRESS)
			engine_spin(eng, x->end);
		pthread_mutex_lock(&eng->lock);
		for (;;) {
			engine_reap_locked(eng);
			if (x->status != -EINPROGRESS)
				break;
			if (npi_now_ns() >= deadline) {
				engine_timeout(eng, timeout_ms);
				continue;
			}
			engine_sleep_locked(eng, deadline);
		}
		st = x->status;
		pthread_mutex_unlock(&eng->lock);
		if (st || !x->stage2_pending)
			return st;
		st = xfer_stage2(x);
		if (st != -EINPROGRESS)
			return st;
	}
}

unsigned int np_xfer_error(const struct np_xfer *x, uint64_t *addr)
{
	if (addr)
		*addr = x->err_addr;
	return x->np_err;
}

int np_xfer_fd(const struct np_xfer *x)
{
	return x->eng->irq_fd;
}

void np_xfer_free(struct np_xfer *x)
{
	struct npi_engine *eng;

	if (!x)
		return;
	/* Retirement stores the status last and never touches x again. */
	if (__atomic_load_n(&x->status, __ATOMIC_ACQUIRE) != -EINPROGRESS) {
		xfer_release(x);
		return;
	}
	eng = x->eng;
	pthread_mutex_lock(&eng->lock);
	if (x->status == -EINPROGRESS) {
		x->orphan = true;
		pthread_mutex_unlock(&eng->lock);
		return;
	}
	pthread_mutex_unlock(&eng->lock);
	xfer_release(x);
}

int np_xfer_run(struct np_card *card, const struct np_xfer_spec *spec)
{
	struct np_xfer *x;
	int ret;

	ret = np_xfer_submit(card, spec, &x);
	if (ret)
		return ret;
	ret = np_xfer_wait(x, NP_TIMEOUT_DEFAULT);
	np_xfer_free(x);
	return ret;
}
