// SPDX-License-Identifier: MIT
/*
 * np emulator core: card lifecycle, memories, interrupts, event counters
 * and card reset.
 *
 * The queues are run by the process's worker pool (pool.c); besides, each
 * card has a service thread. It performs
 * the part of a card reset that must wait for the workers to go idle, and it
 * delivers interrupts raised from inside np_emu_mmio_write() (a mailbox
 * write, enabling a pending vector). That way bus callbacks are only ever
 * called from the pool's and the card's own threads, never from a host's
 * MMIO handler that may hold the lock those callbacks take.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "emu_priv.h"

#define NP_EMU_DEFAULT_DMA_ENGINES 4u
#define NP_EMU_MIN_FB_SIZE (64u * 1024u)

void np_emu_logf(struct np_emu *emu, int level, const char *fmt, ...)
{
	char msg[384];
	int n;
	va_list ap;

	if (!emu->bus.log)
		return;
	n = snprintf(msg, sizeof(msg), "np-emu card %u: ", emu->cfg.card_index);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return;
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	emu->bus.log(emu->bus.opaque, level, msg);
}

/* Record a message; a second one is appended to the first. */
void np_emu_msgf(struct np_emu_msg *msg, int level, const char *fmt, ...)
{
	size_t n = 0;
	va_list ap;

	if (msg->level >= 0) {
		n = strlen(msg->text);
		if (n + 2 < sizeof(msg->text)) {
			memcpy(msg->text + n, "; ", 3);
			n += 2;
		}
	}
	if (msg->level < 0 || level < msg->level)
		msg->level = level;
	va_start(ap, fmt);
	vsnprintf(msg->text + n, sizeof(msg->text) - n, fmt, ap);
	va_end(ap);
}

void np_emu_msg_flush(struct np_emu *emu, struct np_emu_msg *msg)
{
	if (msg->level >= 0)
		np_emu_logf(emu, msg->level, "%s", msg->text);
	msg->level = -1;
}

uint64_t np_emu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Worker context: set the INT_STATUS bit and deliver the vector if it is
 * enabled. Called without any core lock held. */
void np_emu_raise_irq(struct np_emu *emu, unsigned int vector)
{
	uint32_t bit = 1u << vector;
	bool deliver;

	pthread_mutex_lock(&emu->lock);
	emu->int_status |= bit;
	deliver = (emu->int_enable & bit) &&
		  !(emu->status & NP_STATUS_RESETTING) &&
		  !atomic_load(&emu->dead);
	pthread_mutex_unlock(&emu->lock);
	if (deliver)
		emu->bus.irq(emu->bus.opaque, vector);
}

/*
 * Add value to event counter n (n < NP_NUM_EVENTS), requeue the queues
 * parked on event waits, and raise NP_IRQ_MAILBOX if the event has its EVENT_IRQ bit. From
 * a worker the interrupt is delivered directly; from MMIO context it is
 * handed to the service thread.
 */
void np_emu_signal_event(struct np_emu *emu, unsigned int n, uint32_t value,
			 bool from_worker)
{
	uint64_t bit = 1ull << n;
	uint32_t vbit = 1u << NP_IRQ_MAILBOX;
	bool deliver = false;

	atomic_fetch_add(&emu->events[n], value);
	if (atomic_load(&emu->ev_waiters))
		np_emu_pool_wake_parked(emu);

	pthread_mutex_lock(&emu->lock);
	if ((emu->event_irq & bit) && !(emu->status & NP_STATUS_RESETTING)) {
		emu->event_pend |= bit;
		emu->int_status |= vbit;
		if ((emu->int_enable & vbit) && from_worker)
			deliver = true;
		else if (emu->int_enable & vbit)
			np_emu_defer_irq_locked(emu, vbit);
	}
	pthread_mutex_unlock(&emu->lock);
	if (deliver && !atomic_load(&emu->dead))
		emu->bus.irq(emu->bus.opaque, NP_IRQ_MAILBOX);
}

/* Card range [addr, addr + len) was written (or partly, by a transfer
 * that failed): if it touches the SRAM, validated programs are stale. */
void np_emu_sram_written(struct np_emu *emu, uint64_t addr, uint64_t len)
{
	_Static_assert(NP_CA_SRAM_BASE == 0, "the SRAM starts at 0");
	if (addr < emu->sram_size && len)
		atomic_fetch_add_explicit(&emu->sram_gen, 1,
					  memory_order_release);
}

/* A worker went idle while a card reset waits for it. */
void np_emu_worker_idle(struct np_emu *emu)
{
	pthread_mutex_lock(&emu->lock);
	emu->quiesce_seq++;
	pthread_cond_signal(&emu->service_cond);
	pthread_mutex_unlock(&emu->lock);
}

static void release_memory(struct np_emu *emu)
{
	/* MAP_PRIVATE anonymous: MADV_DONTNEED drops the pages and later
	 * reads see zeros, so this both clears and uncommits. */
	madvise(emu->sram, emu->sram_size, MADV_DONTNEED);
	madvise(emu->fb, emu->fb_size, MADV_DONTNEED);
}

static bool any_queue_busy(struct np_emu *emu)
{
	bool busy = false;

	for (unsigned int i = 0; i < NP_EMU_NUM_QUEUES && !busy; i++) {
		struct np_emu_queue *q = &emu->q[i];

		if (!q->present)
			continue;
		pthread_mutex_lock(&q->lock);
		busy = q->active;
		pthread_mutex_unlock(&q->lock);
	}
	return busy;
}

/* Service thread, emu->lock held: finish the reset requested up to seq. */
static void finish_reset(struct np_emu *emu, uint64_t seq)
{
	uint64_t now;

	for (;;) {
		uint64_t qseq = emu->quiesce_seq;
		bool busy;

		pthread_mutex_unlock(&emu->lock);
		busy = any_queue_busy(emu);
		pthread_mutex_lock(&emu->lock);
		if (!busy || emu->exit)
			break;
		while (emu->quiesce_seq == qseq && !emu->exit)
			pthread_cond_wait(&emu->service_cond, &emu->lock);
	}
	if (emu->exit)
		return;

	/* Every worker is idle and holds off new work. */
	pthread_mutex_unlock(&emu->lock);
	release_memory(emu);
	atomic_fetch_add(&emu->sram_gen, 1);
	np_emu_fault_clear(emu);
	for (unsigned int n = 0; n < NP_NUM_EVENTS; n++)
		atomic_store(&emu->events[n], 0);
	atomic_store(&emu->busy_ns, 0);
	atomic_store(&emu->dma_bytes, 0);
	atomic_store(&emu->dma_descs, 0);
	atomic_store(&emu->dma_errors, 0);
	atomic_store(&emu->jobs, 0);
	atomic_store(&emu->sram_ce, 0);
	atomic_store(&emu->sram_ue, 0);
	for (unsigned int i = 0; i < NP_EMU_NUM_QUEUES; i++) {
		struct np_emu_queue *q = &emu->q[i];

		if (!q->present)
			continue;
		pthread_mutex_lock(&q->lock);
		np_emu_queue_clear(q);
		q->ring = 0;
		q->ring_size = 0;
		q->wb = 0;
		q->wait_timeout = 0;
		q->fault_countdown = 0;
		/* A reset requested meanwhile keeps its hold. */
		if (q->hold_seq <= seq)
			q->hold = false;
		pthread_mutex_unlock(&q->lock);
	}
	now = np_emu_now_ns();
	pthread_mutex_lock(&emu->lock);
	emu->int_status = 0;
	emu->int_enable = 0;
	emu->scratch = 0;
	memset(emu->use, 0, sizeof(emu->use));
	emu->event_irq = 0;
	emu->event_pend = 0;
	emu->uptime_hi_latch = 0;
	emu->dma_bytes_hi_latch = 0;
	emu->irq_deferred = 0;
	np_emu_telemetry_reset(emu, now);
	if (emu->reset_requested == seq) {
		emu->status = NP_STATUS_READY;
	}
	emu->reset_done = seq;
	pthread_cond_broadcast(&emu->reset_cond);
	pthread_mutex_unlock(&emu->lock);
	np_emu_logf(emu, LOG_INFO, "card reset complete");
	pthread_mutex_lock(&emu->lock);
}

static void *service_thread(void *arg)
{
	struct np_emu *emu = arg;

	pthread_mutex_lock(&emu->lock);
	while (!emu->exit) {
		if (emu->irq_deferred) {
			uint32_t mask = emu->irq_deferred;

			emu->irq_deferred = 0;
			pthread_mutex_unlock(&emu->lock);
			/* A card that stopped answering sends no message. */
			for (unsigned int v = 0; v < NP_NUM_IRQS; v++)
				if ((mask & (1u << v)) &&
				    !atomic_load(&emu->dead))
					emu->bus.irq(emu->bus.opaque, v);
			pthread_mutex_lock(&emu->lock);
			continue;
		}
		if (emu->reset_done != emu->reset_requested &&
		    !emu->resets_arming) {
			finish_reset(emu, emu->reset_requested);
			continue;
		}
		pthread_cond_wait(&emu->service_cond, &emu->lock);
	}
	pthread_mutex_unlock(&emu->lock);
	return NULL;
}

/* Queue an interrupt for delivery by the service thread; emu->lock held. */
void np_emu_defer_irq_locked(struct np_emu *emu, uint32_t mask)
{
	if (!mask)
		return;
	emu->irq_deferred |= mask;
	pthread_cond_signal(&emu->service_cond);
}

/* emu->lock held, any context: raise NP_IRQ_ERROR. */
void np_emu_error_irq_locked(struct np_emu *emu)
{
	uint32_t bit = 1u << NP_IRQ_ERROR;

	emu->int_status |= bit;
	if (emu->int_enable & bit)
		np_emu_defer_irq_locked(emu, bit);
}

static uint64_t reset_begin(struct np_emu *emu)
{
	uint64_t seq;

	pthread_mutex_lock(&emu->lock);
	emu->status = NP_STATUS_RESETTING;
	/* A card that stopped answering answers again, RESETTING. */
	atomic_store(&emu->dead, false);
	seq = ++emu->reset_requested;
	emu->resets_arming++;
	pthread_mutex_unlock(&emu->lock);

	for (unsigned int i = 0; i < NP_EMU_NUM_QUEUES; i++) {
		struct np_emu_queue *q = &emu->q[i];

		if (!q->present)
			continue;
		pthread_mutex_lock(&q->lock);
		q->hold = true;
		if (q->hold_seq < seq)
			q->hold_seq = seq;
		q->ctrl = 0;
		q->stop_pending = false;
		atomic_fetch_add(&q->gen, 1);
		np_emu_queue_kick(q);
		pthread_mutex_unlock(&q->lock);
	}

	pthread_mutex_lock(&emu->lock);
	emu->resets_arming--;
	pthread_cond_signal(&emu->service_cond);
	pthread_mutex_unlock(&emu->lock);
	return seq;
}

void np_emu_reset_async(struct np_emu *emu)
{
	np_emu_logf(emu, LOG_INFO, "card reset requested");
	reset_begin(emu);
}

void np_emu_reset(struct np_emu *emu)
{
	uint64_t seq;

	np_emu_logf(emu, LOG_INFO, "card reset requested");
	seq = reset_begin(emu);
	pthread_mutex_lock(&emu->lock);
	while (emu->reset_done < seq && !emu->exit)
		pthread_cond_wait(&emu->reset_cond, &emu->lock);
	pthread_mutex_unlock(&emu->lock);
}

void *np_emu_fb(struct np_emu *emu, uint64_t *size)
{
	if (size)
		*size = emu->fb_size;
	return emu->fb;
}

uint64_t np_emu_resident_bytes(struct np_emu *emu)
{
	const uint8_t *regions[2] = {emu->sram, emu->fb};
	const uint64_t sizes[2] = {emu->sram_size, emu->fb_size};
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t resident = 0;
	unsigned char vec[4096];

	for (unsigned int r = 0; r < 2; r++) {
		for (uint64_t off = 0; off < sizes[r];) {
			uint64_t len = sizes[r] - off;
			uint64_t pages;

			if (len > sizeof(vec) * page)
				len = sizeof(vec) * page;
			pages = (len + page - 1) / page;
			if (mincore((void *)(regions[r] + off), len, vec))
				return resident;
			for (uint64_t p = 0; p < pages; p++)
				if (vec[p] & 1)
					resident += page;
			off += len;
		}
	}
	return resident;
}

static int check_config(const struct np_emu_config *cfg,
			const struct np_emu_bus *bus)
{
	if (!bus || !bus->dma_read || !bus->dma_write || !bus->irq)
		return -EINVAL;
	if (!cfg)
		return 0;
	if (cfg->sram_size > NP_SRAM_SIZE || cfg->sram_size % 4096u)
		return -EINVAL;
	if (cfg->fb_size &&
	    (cfg->fb_size < NP_EMU_MIN_FB_SIZE || cfg->fb_size > NP_FB_SIZE ||
	     (cfg->fb_size & (cfg->fb_size - 1))))
		return -EINVAL;
	if (cfg->dma_engines > NP_MAX_DMA_ENGINES)
		return -EINVAL;
	return 0;
}

static void *map_memory(uint64_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Locks are held for a few dozen instructions: spin briefly on contention
 * rather than sleep in the kernel at once (a submitter writing TAIL while
 * the worker commits a completion). */
static void init_lock(pthread_mutex_t *lock)
{
	pthread_mutexattr_t attr;

	pthread_mutexattr_init(&attr);
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
	pthread_mutex_init(lock, &attr);
	pthread_mutexattr_destroy(&attr);
}

static void init_cond(pthread_cond_t *cond)
{
	pthread_condattr_t attr;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
}

static void init_queue(struct np_emu *emu, unsigned int i)
{
	struct np_emu_queue *q = &emu->q[i];

	q->emu = emu;
	q->index = i;
	q->compute = i == NP_EMU_COMPUTE_Q;
	q->vector = q->compute ? NP_IRQ_COMPUTE : NP_IRQ_DMA(i);
	q->present = q->compute || i < emu->cfg.dma_engines;
	init_lock(&q->lock);
	atomic_init(&q->gen, 0);
}

int np_emu_create(const struct np_emu_config *cfg, const struct np_emu_bus *bus,
		  struct np_emu **out)
{
	struct np_emu *emu;
	char name[16];
	int rc;

	*out = NULL;
	rc = check_config(cfg, bus);
	if (rc)
		return rc;
	emu = calloc(1, sizeof(*emu));
	if (!emu)
		return -ENOMEM;
	if (cfg)
		emu->cfg = *cfg;
	emu->bus = *bus;
	if (!emu->cfg.sram_size)
		emu->cfg.sram_size = NP_SRAM_SIZE;
	if (!emu->cfg.fb_size)
		emu->cfg.fb_size = NP_FB_SIZE;
	if (!emu->cfg.dma_engines)
		emu->cfg.dma_engines = NP_EMU_DEFAULT_DMA_ENGINES;
	emu->sram_size = emu->cfg.sram_size;
	emu->fb_size = emu->cfg.fb_size;

	init_lock(&emu->lock);
	init_cond(&emu->service_cond);
	init_cond(&emu->reset_cond);
	for (unsigned int n = 0; n < NP_NUM_EVENTS; n++)
		atomic_init(&emu->events[n], 0);
	atomic_init(&emu->ev_waiters, 0);
	atomic_init(&emu->sram_gen, 0);
	atomic_init(&emu->dead, false);
	atomic_init(&emu->n_flips, 0);
	for (unsigned int i = 0; i < NP_EMU_NUM_QUEUES; i++)
		init_queue(emu, i);
	emu->status = NP_STATUS_READY;
	np_emu_telemetry_reset(emu, np_emu_now_ns());

	emu->sram = map_memory(emu->sram_size);
	emu->fb = map_memory(emu->fb_size);
	if (!emu->sram || !emu->fb) {
		rc = -ENOMEM;
		goto fail;
	}

	rc = np_emu_pool_get();
	if (rc)
		goto fail;
	emu->pool_ref = true;
	snprintf(name, sizeof(name), "np%u-service",
		 emu->cfg.card_index % 1000u);
	rc = np_emu_start_thread(&emu->service, service_thread, emu, name);
	if (rc)
		goto fail;
	emu->service_started = true;
	*out = emu;
	return 0;

fail:
	np_emu_destroy(emu);
	return rc;
}

void np_emu_destroy(struct np_emu *emu)
{
	if (!emu)
		return;
	for (unsigned int i = 0; i < NP_EMU_NUM_QUEUES; i++) {
		struct np_emu_queue *q = &emu->q[i];

		pthread_mutex_lock(&q->lock);
		q->exit = true;
		atomic_fetch_add(&q->gen, 1);
		np_emu_queue_kick(q);
		pthread_mutex_unlock(&q->lock);
	}
	pthread_mutex_lock(&emu->lock);
	emu->exit = true;
	pthread_cond_broadcast(&emu->service_cond);
	pthread_cond_broadcast(&emu->reset_cond);
	pthread_mutex_unlock(&emu->lock);

	/* Every queue finishes or aborts what it was doing; then no worker
	 * touches this card again. */
	if (emu->pool_ref) {
		np_emu_pool_drain(emu);
		np_emu_pool_put();
	}
	if (emu->service_started)
		pthread_join(emu->service, NULL);
	for (unsigned int i = 0; i < NP_EMU_NUM_QUEUES; i++)
		pthread_mutex_destroy(&emu->q[i].lock);

	if (emu->sram)
		munmap(emu->sram, emu->sram_size);
	if (emu->fb)
		munmap(emu->fb, emu->fb_size);
	for (unsigned int i = 0; i < NP_EMU_JOIN - 1; i++)
		free(emu->stash[i].buf.p);
	for (unsigned int i = 0; i < NP_EMU_JOB_MEMS; i++)
		free(emu->job_mem[i].p);
	pthread_cond_destroy(&emu->reset_cond);
	pthread_cond_destroy(&emu->service_cond);
	pthread_mutex_destroy(&emu->lock);
	free(emu);
}
