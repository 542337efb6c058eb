// SPDX-License-Identifier: MIT
/*
 * np emulator core: DMA engines and the compute queue, the worker side.
 *
 * Queues are run by the worker pool (pool.c), one descriptor at a time per
 * queue. The worker takes q->lock only to pick the next descriptor and to
 * commit its completion; descriptor fetch, data movement, notify and
 * writeback run unlocked through the bus. A descriptor that waits parks
 * its queue (q->fl keeps it) and gives the worker back. Data moves in
 * NP_EMU_CHUNK pieces with a check of q->gen between them, so a queue or card
 * reset stops a 16 MiB transfer within one chunk.
 *
 * This file is the worker: descriptor decode and validation, execution,
 * completion and the queue statistics it counts. The queue registers, and
 * the stops they detect in MMIO context, are in queue_regs.c.
 */
#include <errno.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "compute.h"
#include "emu_priv.h"
#include "np_err_names.h"

static bool runnable(const struct np_emu_queue *q)
{
	return (q->ctrl & NP_Q_CTRL_ENABLE) && !q->error && !q->hold &&
	       q->head != q->tail && !atomic_load(&q->emu->dead);
}

/* q->lock held: tell the pool something changed. */
void np_emu_queue_kick(struct np_emu_queue *q)
{
	np_emu_pool_kick(q, runnable(q) || (q->stop_pending && !q->hold));
}

static void make_wb(struct np_queue_wb *wb, uint32_t head, uint32_t completed,
		    uint32_t status, uint32_t error, uint64_t user)
{
	memset(wb, 0, sizeof(*wb));
	wb->head = np_emu_le32(head);
	wb->completed = np_emu_le32(completed);
	wb->status =
		np_emu_le32(status & ~(NP_Q_STATUS_BUSY | NP_Q_STATUS_WAITING));
	wb->error = np_emu_le32(error);
	wb->user = np_emu_le64(user);
}

static void decode(const struct np_emu_queue *q, const void *raw,
		   struct np_emu_desc *d)
{
	if (q->compute) {
		struct np_job_desc j;

		memcpy(&j, raw, sizeof(j));
		d->opcode = j.opcode;
		d->flags = j.flags;
		d->wait_event = j.wait_event;
		d->signal_event = j.signal_event;
		d->len = np_emu_le32(j.arg_len);
		d->src = np_emu_le64(j.prog);
		d->dst = np_emu_le64(j.arg);
		d->notify_addr = np_emu_le64(j.notify_addr);
		d->notify_data = np_emu_le32(j.notify_data);
		d->wait_value = np_emu_le32(j.wait_value);
		d->user = np_emu_le64(j.user);
		d->out = np_emu_le64(j.out);
		d->rsvd_set = j.rsvd != 0;
	} else {
		struct np_dma_desc m;

		memcpy(&m, raw, sizeof(m));
		d->opcode = m.opcode;
		d->flags = m.flags;
		d->wait_event = m.wait_event;
		d->signal_event = m.signal_event;
		d->len = np_emu_le32(m.len);
		d->src = np_emu_le64(m.src);
		d->dst = np_emu_le64(m.dst);
		d->notify_addr = np_emu_le64(m.notify_addr);
		d->notify_data = np_emu_le32(m.notify_data);
		d->wait_value = np_emu_le32(m.wait_value);
		d->user = np_emu_le64(m.user);
		d->rsvd_set = m.rsvd[0] || m.rsvd[1];
	}
}

/* The host pointer of card range [addr, addr + len), or NULL if it does
 * not lie entirely within one memory. */
static uint8_t *card_ptr(struct np_emu *emu, uint64_t addr, uint64_t len)
{
	const uint64_t base[2] = {NP_CA_SRAM_BASE, NP_CA_FB_BASE};
	const uint64_t size[2] = {emu->sram_size, emu->fb_size};
	uint8_t *mem[2] = {emu->sram, emu->fb};

	for (unsigned int i = 0; i < 2; i++) {
		uint64_t off = addr - base[i];

		if (addr >= base[i] && off < size[i] && len <= size[i] - off)
			return mem[i] + off;
	}
	return NULL;
}

static bool is_data_op(const struct np_emu_queue *q, uint8_t op)
{
	return !q->compute && op != NP_DMA_OP_NOP && op != NP_DMA_OP_FENCE;
}

/* Counted by the NP_Q_WORK_* statistics (np_abi.h). */
static bool is_work(const struct np_emu_queue *q, uint8_t op)
{
	return q->compute ? op == NP_JOB_OP_LAYER : is_data_op(q, op);
}

static uint32_t validate(struct np_emu_queue *q, const struct np_emu_desc *d,
			 uint64_t *err_addr)
{
	struct np_emu *emu = q->emu;

	if (q->compute ? d->opcode > NP_JOB_OP_MAX : d->opcode > NP_DMA_OP_MAX)
		return NP_ERR_BAD_OPCODE;
	if ((d->flags & ~NP_DESC_F_ALL) || d->rsvd_set)
		return NP_ERR_BAD_FLAGS;
	if (!q->compute && d->opcode == NP_DMA_OP_FENCE &&
	    !(d->flags & NP_DESC_F_WAIT))
		return NP_ERR_BAD_FLAGS;
	if (((d->flags & NP_DESC_F_WAIT) && d->wait_event >= NP_NUM_EVENTS) ||
	    ((d->flags & NP_DESC_F_SIGNAL) && d->signal_event >= NP_NUM_EVENTS))
		return NP_ERR_BAD_EVENT;
	if (!is_data_op(q, d->opcode))
		return NP_ERR_NONE;
	if (d->len == 0 || d->len > NP_DMA_MAX_LEN)
		return NP_ERR_BAD_LENGTH;
	/* A bus range may not wrap past 2^64: the access is refused as the
	 * bus would refuse it, before any piece of it moves. */
	if (d->opcode == NP_DMA_OP_H2C && d->len - 1 > UINT64_MAX - d->src) {
		*err_addr = d->src;
		return NP_ERR_BUS_READ;
	}
	if ((d->opcode == NP_DMA_OP_C2H || d->opcode == NP_DMA_OP_C2P) &&
	    d->len - 1 > UINT64_MAX - d->dst) {
		*err_addr = d->dst;
		return NP_ERR_BUS_WRITE;
	}
	if (d->opcode != NP_DMA_OP_H2C && !card_ptr(emu, d->src, d->len)) {
		*err_addr = d->src;
		return NP_ERR_SRC_RANGE;
	}
	if ((d->opcode == NP_DMA_OP_H2C || d->opcode == NP_DMA_OP_COPY) &&
	    !card_ptr(emu, d->dst, d->len)) {
		*err_addr = d->dst;
		return NP_ERR_DST_RANGE;
	}
	return NP_ERR_NONE;
}

static bool aborted(const struct np_emu_queue *q, unsigned int gen)
{
	return atomic_load_explicit(&q->gen, memory_order_acquire) != gen;
}

static bool event_reached(struct np_emu *emu, unsigned int n, uint32_t value)
{
	return (int32_t)(atomic_load(&emu->events[n]) - value) >= 0;
}

/* q->lock held: descriptor q->fl waits for its event. Returns false if
 * the event is already there; otherwise the queue parks. The waiter count
 * goes up before the last look at the counter, so a signal in between
 * finds the queue (np_emu_signal_event()). */
static bool begin_wait(struct np_emu_queue *q)
{
	struct np_emu *emu = q->emu;
	struct np_emu_flight *fl = &q->fl;

	atomic_fetch_add(&emu->ev_waiters, 1);
	if (event_reached(emu, fl->d.wait_event, fl->d.wait_value)) {
		atomic_fetch_sub(&emu->ev_waiters, 1);
		return false;
	}
	q->waiting = true;
	fl->park = NP_EMU_PARK_WAIT;
	fl->wait_t0_ns = np_emu_now_ns();
	fl->deadline_ns =
		fl->timeout_us ? np_emu_now_ns() + fl->timeout_us * 1000ull : 0;
	return true;
}

/* q->lock held: the wait of q->fl ends (err: how). It is counted, unless
 * a reset cleared the statistics meanwhile. */
static void end_wait(struct np_emu_queue *q, uint32_t err)
{
	struct np_emu_flight *fl = &q->fl;

	atomic_fetch_sub(&q->emu->ev_waiters, 1);
	q->waiting = false;
	fl->park = NP_EMU_PARK_NONE;
	fl->err = err;
	fl->wait_ns = np_emu_now_ns() - fl->wait_t0_ns;
	if (aborted(q, fl->gen))
		return;
	if (is_work(q, fl->d.opcode)) {
		q->work_waits++;
		q->work_wait_ns += fl->wait_ns;
	} else {
		q->fence_waits++;
		q->fence_ns += fl->wait_ns;
	}
}

static uint32_t copy_local(struct np_emu_queue *q, unsigned int gen,
			   const struct np_emu_desc *d)
{
	uint8_t *src = card_ptr(q->emu, d->src, d->len);
	uint8_t *dst = card_ptr(q->emu, d->dst, d->len);
	bool backwards = dst > src && dst < src + d->len;

	/* Overlapping ranges move like memmove: chunks in the order that
	 * never overwrites source bytes not yet copied. */
	for (uint32_t done = 0; done < d->len;) {
		uint32_t n = d->len - done;
		uint32_t off;

		if (aborted(q, gen))
			return NP_ERR_ABORTED;
		if (n > NP_EMU_CHUNK)
			n = NP_EMU_CHUNK;
		off = backwards ? d->len - done - n : done;
		memmove(dst + off, src + off, n);
		done += n;
	}
	return NP_ERR_NONE;
}

/*
 * Compute queue, unlocked: the layer jobs right after descriptor fl, at
 * most max, that are ready to run now (their waits met) with nothing but
 * plain NOPs whose waits are met between them, so they may run along with
 * fl's job. Returns how many were stored in next.
 */
static unsigned int next_layers(struct np_emu_queue *q,
				const struct np_emu_flight *fl,
				struct np_emu_desc *next, unsigned int max)
{
	struct np_emu *emu = q->emu;
	uint32_t idx = fl->next, tail, size;
	uint64_t ring, ignored;
	unsigned int n = 0;
	bool ok;

	pthread_mutex_lock(&q->lock);
	tail = q->tail;
	size = q->ring_size;
	ring = q->ring;
	ok = (q->ctrl & NP_Q_CTRL_ENABLE) && !q->error && !q->hold &&
	     !q->fault_countdown;
	pthread_mutex_unlock(&q->lock);
	/* a NOP may come before every layer job */
	for (unsigned int i = 0; ok && n < max && i < 2 * max && idx != tail;
	     i++) {
		uint8_t raw[sizeof(struct np_dma_desc)];
		struct np_emu_desc *d = &next[n];

		if (emu->bus.dma_read(emu->bus.opaque,
				      ring + (uint64_t)idx * sizeof(raw), raw,
				      sizeof(raw)))
			break;
		decode(q, raw, d);
		if (validate(q, d, &ignored) ||
		    ((d->flags & NP_DESC_F_WAIT) &&
		     !event_reached(emu, d->wait_event, d->wait_value)))
			break;
		if (d->opcode == NP_JOB_OP_LAYER)
			n++;
		else if (d->flags & ~NP_DESC_F_WAIT)
			break;
		idx = (idx + 1) & (size - 1);
	}
	return n;
}

static uint32_t transfer(struct np_emu_queue *q, struct np_emu_flight *fl)
{
	struct np_emu *emu = q->emu;
	const struct np_emu_bus *bus = &emu->bus;
	const struct np_emu_desc *d = &fl->d;
	uint64_t *err_addr = &fl->err_addr;
	unsigned int gen = fl->gen;
	struct np_emu_desc next[NP_EMU_JOIN - 1];
	uint8_t *card;
	uint32_t err;

	if (q->compute) {
		if (d->opcode != NP_JOB_OP_LAYER)
			return NP_ERR_NONE;
		err = np_emu_fault_job_read(emu, d->src, err_addr);
		if (err)
			return err;
		return np_emu_layer_job(
			emu, d, next, next_layers(q, fl, next, NP_EMU_JOIN - 1),
			gen, err_addr);
	}
	/* SRAM's ECC is checked as the source is read. */
	if (d->opcode == NP_DMA_OP_C2H || d->opcode == NP_DMA_OP_C2P ||
	    d->opcode == NP_DMA_OP_COPY) {
		err = np_emu_fault_sram_read(emu, d->src, d->len, err_addr);
		if (err)
			return err;
	}
	switch (d->opcode) {
	case NP_DMA_OP_H2C:
		card = card_ptr(emu, d->dst, d->len);
		for (uint32_t off = 0; off < d->len; off += NP_EMU_CHUNK) {
			uint32_t n = d->len - off;

			if (n > NP_EMU_CHUNK)
				n = NP_EMU_CHUNK;
			if (aborted(q, gen))
				return NP_ERR_ABORTED;
			if (bus->dma_read(bus->opaque, d->src + off, card + off,
					  n)) {
				*err_addr = d->src + off;
				return NP_ERR_BUS_READ;
			}
		}
		return NP_ERR_NONE;
	case NP_DMA_OP_C2H:
	case NP_DMA_OP_C2P:
		card = card_ptr(emu, d->src, d->len);
		for (uint32_t off = 0; off < d->len; off += NP_EMU_CHUNK) {
			uint32_t n = d->len - off;

			if (n > NP_EMU_CHUNK)
				n = NP_EMU_CHUNK;
			if (aborted(q, gen))
				return NP_ERR_ABORTED;
			if (bus->dma_write(bus->opaque, d->dst + off,
					   card + off, n)) {
				*err_addr = d->dst + off;
				return NP_ERR_BUS_WRITE;
			}
		}
		return NP_ERR_NONE;
	case NP_DMA_OP_COPY:
		return copy_local(q, gen, d);
	default:
		return NP_ERR_NONE;
	}
}

/*
 * The part of descriptor fl after its event wait, up to (not including) its
 * writeback and interrupt. Returns the NP_ERR_* code; fl->err_addr is set
 * for address faults.
 */
static uint32_t execute(struct np_emu_queue *q, struct np_emu_flight *fl)
{
	struct np_emu *emu = q->emu;
	const struct np_emu_desc *d = &fl->d;
	uint32_t err;
	uint64_t t0;

	t0 = np_emu_now_ns();
	err = transfer(q, fl);
	if (!q->compute &&
	    (d->opcode == NP_DMA_OP_H2C || d->opcode == NP_DMA_OP_COPY))
		np_emu_sram_written(emu, d->dst, d->len);
	if (!err && is_data_op(q, d->opcode))
		fl->bytes = d->len;
	/* Written words get fresh check bits. */
	if (!err &&
	    (d->opcode == NP_DMA_OP_H2C || d->opcode == NP_DMA_OP_COPY) &&
	    !q->compute)
		np_emu_fault_sram_write(emu, d->dst, d->len);
	if (!err && aborted(q, fl->gen))
		err = NP_ERR_ABORTED;
	if (!err && (d->flags & NP_DESC_F_SIGNAL))
		np_emu_signal_event(emu, d->signal_event, 1, true);
	if (!err && (d->flags & NP_DESC_F_NOTIFY)) {
		uint32_t data = np_emu_le32(d->notify_data);

		if (emu->bus.dma_write(emu->bus.opaque, d->notify_addr, &data,
				       sizeof(data))) {
			fl->err_addr = d->notify_addr;
			err = NP_ERR_NOTIFY_WRITE;
		}
	}
	atomic_fetch_add(&emu->busy_ns, np_emu_now_ns() - t0);
	return err;
}

/* The error an injected DMA error gives descriptor d (np_emu.h). */
static uint32_t injected_error(const struct np_emu_queue *q,
			       const struct np_emu_desc *d, uint64_t desc_addr,
			       uint64_t *err_addr)
{
	if (!q->compute && d->opcode == NP_DMA_OP_H2C) {
		*err_addr = d->src;
		return NP_ERR_BUS_READ;
	}
	if (!q->compute &&
	    (d->opcode == NP_DMA_OP_C2H || d->opcode == NP_DMA_OP_C2P)) {
		*err_addr = d->dst;
		return NP_ERR_BUS_WRITE;
	}
	*err_addr = desc_addr;
	return NP_ERR_RING_FETCH;
}

static bool write_wb(struct np_emu *emu, uint64_t addr,
		     const struct np_queue_wb *wb)
{
	return !emu->bus.dma_write(emu->bus.opaque, addr, wb, sizeof(*wb));
}

/* q->lock held: the descriptor at idx failed with err. */
static void stop_locked(struct np_emu_queue *q, uint32_t idx, uint32_t err,
			uint64_t addr)
{
	atomic_fetch_add(&q->emu->dma_errors, 1);
	if (q->error)
		return;
	q->error = err;
	q->err_index = idx;
	q->err_addr = addr;
	q->ctrl &= ~NP_Q_CTRL_ENABLE;
}

/* q->lock held: a working descriptor completed after ns of service. */
static void work_done(struct np_emu_queue *q, uint64_t ns)
{
	q->work_done++;
	q->work_ns += ns;
	if (ns > q->work_max_ns)
		q->work_max_ns = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

/*
 * Finish descriptor q->fl: writeback, registers, interrupt. q->lock held on
 * entry and exit.
 *
 * The writeback record goes out before the registers are updated, so once
 * software sees NP_Q_COMPLETED or STATUS.ERROR move, the record that
 * describes it is already in memory; the interrupt comes last.
 */
static void complete(struct np_emu_queue *q)
{
	struct np_emu *emu = q->emu;
	const struct np_emu_flight *fl = &q->fl;
	const struct np_emu_desc *d = &fl->d;
	unsigned int gen = fl->gen;
	uint32_t idx = fl->idx, err = fl->err;
	uint64_t wb_addr = fl->wb_addr;
	struct np_emu_msg msg = NP_EMU_MSG_INIT;
	struct np_queue_wb wb;
	bool wb_ok = true, irq = false;
	char name[32];

	if (aborted(q, gen)) {
		/* A queue reset, card reset or destroy took the queue away
		 * and already cleared its registers. Only after a queue
		 * reset is the bus still usable for an ABORTED record. */
		bool report = wb_addr && !q->hold && !q->exit;

		atomic_fetch_add(&emu->dma_errors, 1);
		make_wb(&wb, q->head, q->completed, np_emu_queue_status(q),
			NP_ERR_ABORTED, q->last_user);
		pthread_mutex_unlock(&q->lock);
		if (report)
			write_wb(emu, wb_addr, &wb);
		pthread_mutex_lock(&q->lock);
		q->busy = false;
		q->active = false;
		return;
	}
	if (err) {
		np_emu_msgf(&msg, LOG_WARNING,
			    "%s: descriptor %u (opcode %u, flags 0x%x) failed: "
			    "%s (error %u, address 0x%llx); queue stopped, "
			    "write NP_Q_CTRL_RESET to recover",
			    np_emu_queue_name(q, name, sizeof(name)), idx,
			    d->opcode, d->flags, np_err_name(err), err,
			    (unsigned long long)fl->err_addr);
		make_wb(&wb, q->head, q->completed, NP_Q_STATUS_ERROR,
			q->error ? q->error : err, q->last_user);
		irq = true;
	} else {
		make_wb(&wb, fl->next, q->completed + 1,
			np_emu_queue_status(q) & ~NP_Q_STATUS_BUSY, q->error,
			d->user);
		irq = d->flags & NP_DESC_F_IRQ;
	}
	pthread_mutex_unlock(&q->lock);
	np_emu_msg_flush(emu, &msg);

	if (wb_addr)
		wb_ok = write_wb(emu, wb_addr, &wb);

	pthread_mutex_lock(&q->lock);
	if (!aborted(q, gen)) {
		if (err) {
			stop_locked(q, idx, err, fl->err_addr);
		} else {
			q->head = fl->next;
			q->completed++;
			q->bytes += fl->bytes;
			q->last_user = d->user;
			if (is_work(q, d->opcode))
				work_done(q, np_emu_now_ns() - fl->fetch_ns -
						     fl->wait_ns);
			if (q->compute) {
				atomic_fetch_add(&emu->jobs, 1);
			} else {
				atomic_fetch_add(&emu->dma_descs, 1);
				atomic_fetch_add(&emu->dma_bytes, fl->bytes);
			}
		}
		if (!wb_ok && !err) {
			np_emu_msgf(&msg, LOG_WARNING,
				    "%s: writeback to 0x%llx refused after "
				    "descriptor %u; queue stopped with "
				    "NP_ERR_WB_WRITE",
				    np_emu_queue_name(q, name, sizeof(name)),
				    (unsigned long long)wb_addr, idx);
			stop_locked(q, idx, NP_ERR_WB_WRITE, wb_addr);
			irq = true;
		}
	}
	q->busy = false;
	pthread_mutex_unlock(&q->lock);
	np_emu_msg_flush(emu, &msg);

	if (irq && !aborted(q, gen))
		np_emu_raise_irq(emu, q->vector);
	pthread_mutex_lock(&q->lock);
	q->active = false;
}

/* q->lock held on entry and exit: descriptor q->fl has run (or failed).
 * A card that stopped answering never finishes it: only a queue or card
 * reset (or destroy) ends that wait. Returns true if the queue parks. */
static bool ran(struct np_emu_queue *q)
{
	if (atomic_load(&q->emu->dead) && !aborted(q, q->fl.gen)) {
		q->fl.park = NP_EMU_PARK_DEAD;
		return true;
	}
	complete(q);
	return false;
}

/* q->lock held on entry and exit: run descriptor q->fl past its wait. */
static bool run_rest(struct np_emu_queue *q)
{
	pthread_mutex_unlock(&q->lock);
	q->fl.err = execute(q, &q->fl);
	pthread_mutex_lock(&q->lock);
	return ran(q);
}

/*
 * Start the descriptor at the head. q->lock held on entry and exit. Returns
 * true if it parks: an injected hang, an event that has not come, a card
 * that stopped answering; resume() picks it up again.
 */
static bool run_one(struct np_emu_queue *q)
{
	struct np_emu *emu = q->emu;
	const struct np_emu_bus *bus = &emu->bus;
	struct np_emu_flight *fl = &q->fl;
	uint8_t raw[sizeof(struct np_dma_desc)];
	enum np_emu_fault fault = 0;
	char name[32];

	memset(fl, 0, sizeof(*fl));
	fl->fetch_ns = np_emu_now_ns();
	fl->gen = atomic_load(&q->gen);
	fl->idx = q->head;
	fl->next = (fl->idx + 1) & (q->ring_size - 1);
	fl->desc_addr =
		q->ring + (uint64_t)fl->idx * sizeof(struct np_dma_desc);
	fl->wb_addr = q->wb;
	fl->timeout_us = q->wait_timeout;
	if (q->fault_countdown && !--q->fault_countdown)
		fault = q->fault;
	q->busy = true;
	q->active = true;
	pthread_mutex_unlock(&q->lock);

	if (fault == NP_EMU_FAULT_HANG) {
		/* Never finishes: only a queue or card reset (or destroy)
		 * ends it. */
		np_emu_logf(emu, LOG_DEBUG,
			    "%s: injected hang at descriptor %u",
			    np_emu_queue_name(q, name, sizeof(name)), fl->idx);
		pthread_mutex_lock(&q->lock);
		fl->park = NP_EMU_PARK_HANG;
		return true;
	}
	if (bus->dma_read(bus->opaque, fl->desc_addr, raw, sizeof(raw))) {
		fl->err = NP_ERR_RING_FETCH;
		fl->err_addr = fl->desc_addr;
	} else {
		decode(q, raw, &fl->d);
		if (fault == NP_EMU_FAULT_DMA_ERROR)
			fl->err = injected_error(q, &fl->d, fl->desc_addr,
						 &fl->err_addr);
		else
			fl->err = validate(q, &fl->d, &fl->err_addr);
	}
	pthread_mutex_lock(&q->lock);
	if (fl->err)
		return ran(q);
	if ((fl->d.flags & NP_DESC_F_WAIT) && begin_wait(q))
		return true;
	return run_rest(q);
}

/* q->lock held on entry and exit: look at parked descriptor q->fl again.
 * Returns true if it stays parked. */
static bool resume(struct np_emu_queue *q)
{
	struct np_emu_flight *fl = &q->fl;

	switch (fl->park) {
	case NP_EMU_PARK_HANG:
		if (!aborted(q, fl->gen))
			return true;
		fl->park = NP_EMU_PARK_NONE;
		fl->err = NP_ERR_ABORTED;
		return ran(q);
	case NP_EMU_PARK_DEAD:
		if (!aborted(q, fl->gen))
			return true;
		fl->park = NP_EMU_PARK_NONE;
		complete(q);
		return false;
	case NP_EMU_PARK_WAIT:
		if (event_reached(q->emu, fl->d.wait_event, fl->d.wait_value)) {
			end_wait(q, NP_ERR_NONE);
			return run_rest(q);
		}
		if (aborted(q, fl->gen)) {
			end_wait(q, NP_ERR_ABORTED);
		} else if (fl->deadline_ns &&
			   np_emu_now_ns() >= fl->deadline_ns) {
			end_wait(q, NP_ERR_WAIT_TIMEOUT);
		} else {
			return true;
		}
		return ran(q);
	case NP_EMU_PARK_NONE:
		break;
	}
	return false;
}

/* q->lock held on entry and exit: deliver a stop detected in MMIO. */
static void report_stop(struct np_emu_queue *q)
{
	struct np_emu *emu = q->emu;
	unsigned int gen = atomic_load(&q->gen);
	uint64_t wb_addr = q->wb;
	struct np_queue_wb wb;
	bool have_wb = wb_addr && !(wb_addr % NP_WB_ALIGN);

	q->stop_pending = false;
	make_wb(&wb, q->head, q->completed, np_emu_queue_status(q), q->error,
		q->last_user);
	q->active = true;
	pthread_mutex_unlock(&q->lock);
	if (have_wb)
		write_wb(emu, wb_addr, &wb);
	if (!aborted(q, gen))
		np_emu_raise_irq(emu, q->vector);
	pthread_mutex_lock(&q->lock);
	q->active = false;
}

/* q->lock held on entry and exit: a card reset waits for this worker. */
static void quiesced(struct np_emu_queue *q)
{
	if (!q->hold)
		return;
	pthread_mutex_unlock(&q->lock);
	np_emu_worker_idle(q->emu);
	pthread_mutex_lock(&q->lock);
}

/*
 * A pool worker's turn at q (pool.c): pick up a parked descriptor, deliver
 * a stop detected in MMIO, run up to NP_EMU_TURN descriptors.
 */
enum np_emu_turn np_emu_queue_turn(struct np_emu_queue *q,
				   uint64_t *deadline_ns)
{
	unsigned int budget = NP_EMU_TURN;
	enum np_emu_turn turn = NP_EMU_TURN_IDLE;

	pthread_mutex_lock(&q->lock);
	if (q->fl.park != NP_EMU_PARK_NONE) {
		if (resume(q))
			goto park;
		quiesced(q);
	}
	while (!q->exit) {
		if (q->stop_pending && !q->hold) {
			report_stop(q);
			quiesced(q);
			continue;
		}
		if (!runnable(q))
			break;
		if (!budget--) {
			turn = NP_EMU_TURN_AGAIN;
			break;
		}
		if (run_one(q))
			goto park;
		quiesced(q);
	}
	pthread_mutex_unlock(&q->lock);
	return turn;
park:
	*deadline_ns = q->fl.park == NP_EMU_PARK_WAIT ? q->fl.deadline_ns : 0;
	pthread_mutex_unlock(&q->lock);
	return NP_EMU_TURN_PARK;
}
