// SPDX-License-Identifier: MIT
/*
 * np emulator core: the worker pool.
 *
 * Every queue of every card in the process (DMA engines and compute queues)
 * is run by one pool of as many worker threads as there are online CPUs,
 * created with the first card and joined with the last. A queue with work
 * is put on a run list; a worker takes the queue at its front and runs
 * up to NP_EMU_TURN of its descriptors (np_emu_queue_turn()), then puts it
 * back at the end if it has more. A queue is on a list or with a worker
 * at most once, so its descriptors run one at a time and in order.
 *
 * DMA engines have a list of their own that workers empty first: moving a
 * frame is short next to a layer job, and the frames a compute queue
 * finds when its turn comes are the ones it runs in one pass over its
 * weights (compute.c), so a card's forwards land before its consumer
 * starts computing rather than one frame at a time behind it.
 *
 * A descriptor that waits (an event wait, an injected hang, a card that
 * stopped answering) parks its queue: the worker moves on, and the queue
 * goes back on the run list when something it may be waiting for happens
 * (np_emu_pool_kick() from a register write or reset, an event signal, or
 * the wait's deadline, which sleeping workers time their sleep to).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "emu_priv.h"

static struct {
	pthread_mutex_t lock;
	pthread_cond_t work; /* idle workers sleep here */
	pthread_cond_t drained; /* np_emu_pool_drain() sleeps here */
	/* run lists: [0] DMA engines, [1] compute queues */
	struct np_emu_queue *run_head[2], **run_tail[2];
	struct np_emu_queue *parked;
	atomic_uint queued; /* length of the run list, polled unlocked */
	unsigned int sleeping; /* workers on work */
	unsigned int draining; /* callers of np_emu_pool_drain() */
	bool exit;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Creation and teardown, serialised by their own lock: a worker being
 * joined still takes pool.lock. */
static pthread_mutex_t pool_ref_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned int pool_refs;
static unsigned int pool_workers;
static pthread_t *pool_threads;

/* Start a thread with every signal blocked: hosts (QEMU) direct their
 * signals at threads of their own. */
int np_emu_start_thread(pthread_t *t, void *(*fn)(void *), void *arg,
			const char *name)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!rc)
		pthread_setname_np(*t, name);
	return -rc;
}

/* pool.lock held. */
static void enqueue(struct np_emu_queue *q)
{
	unsigned int l = q->compute;

	q->sched = NP_EMU_SCHED_QUEUED;
	q->run_next = NULL;
	*pool.run_tail[l] = q;
	pool.run_tail[l] = &q->run_next;
	atomic_fetch_add(&pool.queued, 1);
	if (pool.sleeping)
		pthread_cond_signal(&pool.work);
}

/* pool.lock held. */
static struct np_emu_queue *dequeue(void)
{
	unsigned int l = pool.run_head[0] ? 0 : 1;
	struct np_emu_queue *q = pool.run_head[l];

	if (!q)
		return NULL;
	pool.run_head[l] = q->run_next;
	if (!pool.run_head[l])
		pool.run_tail[l] = &pool.run_head[l];
	atomic_fetch_sub(&pool.queued, 1);
	q->sched = NP_EMU_SCHED_RUNNING;
	q->again = false;
	return q;
}

/* pool.lock held. */
static void park(struct np_emu_queue *q, uint64_t deadline_ns)
{
	q->sched = NP_EMU_SCHED_PARKED;
	q->park_deadline_ns = deadline_ns;
	q->park_next = pool.parked;
	if (pool.parked)
		pool.parked->park_pprev = &q->park_next;
	q->park_pprev = &pool.parked;
	pool.parked = q;
}

/* pool.lock held: a parked queue goes back on the run list. */
static void unpark(struct np_emu_queue *q)
{
	*q->park_pprev = q->park_next;
	if (q->park_next)
		q->park_next->park_pprev = q->park_pprev;
	enqueue(q);
}

/* pool.lock held: something q may be waiting for happened. */
static void wake(struct np_emu_queue *q, bool work)
{
	switch (q->sched) {
	case NP_EMU_SCHED_IDLE:
		if (work)
			enqueue(q);
		break;
	case NP_EMU_SCHED_RUNNING:
		q->again = true;
		break;
	case NP_EMU_SCHED_PARKED:
		unpark(q);
		break;
	case NP_EMU_SCHED_QUEUED:
		break;
	}
}

void np_emu_pool_kick(struct np_emu_queue *q, bool work)
{
	pthread_mutex_lock(&pool.lock);
	wake(q, work);
	pthread_mutex_unlock(&pool.lock);
}

void np_emu_pool_wake_parked(struct np_emu *emu)
{
	pthread_mutex_lock(&pool.lock);
	for (unsigned int i = 0; i < NP_EMU_NUM_QUEUES; i++)
		if (emu->q[i].present)
			wake(&emu->q[i], false);
	pthread_mutex_unlock(&pool.lock);
}

static bool emu_drained(const struct np_emu *emu)
{
	for (unsigned int i = 0; i < NP_EMU_NUM_QUEUES; i++)
		if (emu->q[i].sched != NP_EMU_SCHED_IDLE)
			return false;
	return true;
}

void np_emu_pool_drain(struct np_emu *emu)
{
	pthread_mutex_lock(&pool.lock);
	pool.draining++;
	while (!emu_drained(emu))
		pthread_cond_wait(&pool.drained, &pool.lock);
	pool.draining--;
	pthread_mutex_unlock(&pool.lock);
}

/* pool.lock held: a worker is done with q for now. */
static void put_back(struct np_emu_queue *q, enum np_emu_turn turn,
		     uint64_t deadline_ns)
{
	if (q->again)
		turn = NP_EMU_TURN_AGAIN;
	switch (turn) {
	case NP_EMU_TURN_AGAIN:
		enqueue(q);
		break;
	case NP_EMU_TURN_PARK:
		park(q, deadline_ns);
		break;
	case NP_EMU_TURN_IDLE:
		q->sched = NP_EMU_SCHED_IDLE;
		if (pool.draining)
			pthread_cond_broadcast(&pool.drained);
		break;
	}
}

/* pool.lock held: requeue parked queues whose deadline passed; returns the
 * earliest deadline still ahead, 0 if none. */
static uint64_t expire(uint64_t now)
{
	uint64_t next = 0;
	struct np_emu_queue *q = pool.parked, *n;

	for (; q; q = n) {
		n = q->park_next;
		if (!q->park_deadline_ns)
			continue;
		if (q->park_deadline_ns <= now)
			unpark(q);
		else if (!next || q->park_deadline_ns < next)
			next = q->park_deadline_ns;
	}
	return next;
}

/* pool.lock held: sleep until there is work or the deadline passes. */
static void sleep_until(uint64_t deadline_ns)
{
	struct timespec ts;

	pool.sleeping++;
	if (!deadline_ns) {
		pthread_cond_wait(&pool.work, &pool.lock);
	} else {
		ts.tv_sec = (time_t)(deadline_ns / 1000000000u);
		ts.tv_nsec = (long)(deadline_ns % 1000000000u);
		pthread_cond_timedwait(&pool.work, &pool.lock, &ts);
	}
	pool.sleeping--;
}

static void *worker(void *arg)
{
	bool worked = false;

	(void)arg;
	pthread_mutex_lock(&pool.lock);
	for (;;) {
		struct np_emu_queue *q = dequeue();
		enum np_emu_turn turn;
		uint64_t deadline = 0, next, now;

		if (q) {
			pthread_mutex_unlock(&pool.lock);
			turn = np_emu_queue_turn(q, &deadline);
			pthread_mutex_lock(&pool.lock);
			put_back(q, turn, deadline);
			worked = true;
			continue;
		}
		if (pool.exit)
			break;
		now = np_emu_now_ns();
		next = expire(now);
		if (pool.run_head[0] || pool.run_head[1])
			continue;
		if (worked) {
			/* Poll briefly: a submitter that keeps its queues
			 * fed should not pay a futex wake-up per descriptor. */
			pthread_mutex_unlock(&pool.lock);
			while (!atomic_load_explicit(&pool.queued,
						     memory_order_relaxed) &&
			       np_emu_now_ns() - now < NP_EMU_POLL_NS)
				np_emu_cpu_relax();
			worked = false;
			pthread_mutex_lock(&pool.lock);
			continue;
		}
		sleep_until(next);
	}
	pthread_mutex_unlock(&pool.lock);
	return NULL;
}

static void stop_workers(unsigned int n)
{
	pthread_mutex_lock(&pool.lock);
	pool.exit = true;
	pthread_cond_broadcast(&pool.work);
	pthread_mutex_unlock(&pool.lock);
	for (unsigned int i = 0; i < n; i++)
		pthread_join(pool_threads[i], NULL);
	free(pool_threads);
	pool_threads = NULL;
	pthread_cond_destroy(&pool.work);
	pthread_cond_destroy(&pool.drained);
}

static int start_workers(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned int n = cpus < 1 ? 1u : cpus > 256 ? 256u : (unsigned int)cpus;
	pthread_condattr_t attr;
	int rc = 0;

	pool_threads = calloc(n, sizeof(*pool_threads));
	if (!pool_threads)
		return -ENOMEM;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&pool.work, &attr);
	pthread_condattr_destroy(&attr);
	pthread_cond_init(&pool.drained, NULL);
	for (unsigned int l = 0; l < 2; l++) {
		pool.run_head[l] = NULL;
		pool.run_tail[l] = &pool.run_head[l];
	}
	pool.parked = NULL;
	pool.exit = false;
	for (unsigned int i = 0; i < n; i++) {
		char name[16];

		snprintf(name, sizeof(name), "np-worker%u", i % 1000u);
		rc = np_emu_start_thread(&pool_threads[i], worker, NULL, name);
		if (rc) {
			stop_workers(i);
			return rc;
		}
	}
	pool_workers = n;
	return 0;
}

int np_emu_pool_get(void)
{
	int rc = 0;

	pthread_mutex_lock(&pool_ref_lock);
	if (!pool_refs)
		rc = start_workers();
	if (!rc)
		pool_refs++;
	pthread_mutex_unlock(&pool_ref_lock);
	return rc;
}

void np_emu_pool_put(void)
{
	pthread_mutex_lock(&pool_ref_lock);
	if (!--pool_refs)
		stop_workers(pool_workers);
	pthread_mutex_unlock(&pool_ref_lock);
}
