// SPDX-License-Identifier: MIT
/*
 * np emulator core: the queue registers of the DMA engines and the compute
 * queue (np_abi.h NP_Q_*), read and written in MMIO context; the worker
 * that runs the descriptors is in queue.c.
 *
 * Register writes that stop a queue (bad tail, ring reconfiguration while
 * enabled, invalid ring on enable) are detected in MMIO context; they set
 * the error registers at once and leave the writeback record and interrupt
 * to the worker (stop_pending), because MMIO context must not call the bus.
 */
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "emu_priv.h"
#include "np_err_names.h"

/* Names of the read-only queue registers, by offset / 4. */
static const char *const queue_ro_names[] = {
	[NP_Q_HEAD / 4] = "HEAD",
	[NP_Q_STATUS / 4] = "STATUS",
	[NP_Q_ERROR / 4] = "ERROR",
	[NP_Q_ERR_INDEX / 4] = "ERR_INDEX",
	[NP_Q_ERR_ADDR_LO / 4] = "ERR_ADDR_LO",
	[NP_Q_ERR_ADDR_HI / 4] = "ERR_ADDR_HI",
	[NP_Q_COMPLETED / 4] = "COMPLETED",
	[NP_Q_BYTES_LO / 4] = "BYTES_LO",
	[NP_Q_BYTES_HI / 4] = "BYTES_HI",
	[NP_Q_FENCE_WAITS / 4] = "FENCE_WAITS",
	[NP_Q_FENCE_NS_LO / 4] = "FENCE_NS_LO",
	[NP_Q_FENCE_NS_HI / 4] = "FENCE_NS_HI",
	[NP_Q_WORK_WAITS / 4] = "WORK_WAITS",
	[NP_Q_WORK_WAIT_NS_LO / 4] = "WORK_WAIT_NS_LO",
	[NP_Q_WORK_WAIT_NS_HI / 4] = "WORK_WAIT_NS_HI",
	[NP_Q_WORK_DONE / 4] = "WORK_DONE",
	[NP_Q_WORK_NS_LO / 4] = "WORK_NS_LO",
	[NP_Q_WORK_NS_HI / 4] = "WORK_NS_HI",
};

const char *np_emu_queue_name(const struct np_emu_queue *q, char *buf,
			      size_t len)
{
	if (q->compute)
		return "compute queue";
	snprintf(buf, len, "DMA engine %u", q->index);
	return buf;
}

uint32_t np_emu_queue_status(const struct np_emu_queue *q)
{
	uint32_t s = 0;

	if (q->ctrl & NP_Q_CTRL_ENABLE)
		s |= NP_Q_STATUS_ENABLED;
	if (q->busy)
		s |= NP_Q_STATUS_BUSY;
	if (q->waiting)
		s |= NP_Q_STATUS_WAITING;
	if (q->error)
		s |= NP_Q_STATUS_ERROR;
	return s;
}

/* q->lock held: registers back to their reset values, except the ring
 * configuration. Aborts whatever the worker is doing. */
void np_emu_queue_clear(struct np_emu_queue *q)
{
	q->ctrl = 0;
	q->tail = 0;
	q->head = 0;
	q->error = 0;
	q->err_index = 0;
	q->err_addr = 0;
	q->completed = 0;
	q->bytes = 0;
	q->last_user = 0;
	q->bytes_hi_latch = 0;
	q->fence_waits = q->work_waits = q->work_done = q->work_max_ns = 0;
	q->fence_ns = q->work_wait_ns = q->work_ns = 0;
	q->fence_ns_hi_latch = 0;
	q->work_wait_ns_hi_latch = 0;
	q->work_ns_hi_latch = 0;
	q->stop_pending = false;
	atomic_fetch_add(&q->gen, 1);
	np_emu_queue_kick(q);
}

static bool ring_size_valid(uint32_t size)
{
	return size >= NP_RING_MIN_ENTRIES && size <= NP_RING_MAX_ENTRIES &&
	       !(size & (size - 1));
}

/* q->lock held, MMIO context: stop the queue with err. */
static void mmio_stop(struct np_emu_queue *q, uint32_t err, uint64_t addr)
{
	if (q->error)
		return;
	q->error = err;
	q->err_index = q->head;
	q->err_addr = addr;
	q->ctrl &= ~NP_Q_CTRL_ENABLE;
	q->stop_pending = true;
	np_emu_queue_kick(q);
}

uint32_t np_emu_queue_read(struct np_emu_queue *q, uint32_t reg)
{
	struct np_emu_msg m = NP_EMU_MSG_INIT, *msg = &m;
	char name[32];
	uint32_t v;

	pthread_mutex_lock(&q->lock);
	switch (reg) {
	case NP_Q_RING_LO:
		v = (uint32_t)q->ring;
		break;
	case NP_Q_RING_HI:
		v = (uint32_t)(q->ring >> 32);
		break;
	case NP_Q_RING_SIZE:
		v = q->ring_size;
		break;
	case NP_Q_CTRL:
		v = q->ctrl;
		break;
	case NP_Q_TAIL:
		v = q->tail;
		break;
	case NP_Q_HEAD:
		v = q->head;
		break;
	case NP_Q_STATUS:
		v = np_emu_queue_status(q);
		break;
	case NP_Q_ERROR:
		v = q->error;
		break;
	case NP_Q_ERR_INDEX:
		v = q->err_index;
		break;
	case NP_Q_ERR_ADDR_LO:
		v = (uint32_t)q->err_addr;
		break;
	case NP_Q_ERR_ADDR_HI:
		v = (uint32_t)(q->err_addr >> 32);
		break;
	case NP_Q_WB_LO:
		v = (uint32_t)q->wb;
		break;
	case NP_Q_WB_HI:
		v = (uint32_t)(q->wb >> 32);
		break;
	case NP_Q_COMPLETED:
		v = q->completed;
		break;
	case NP_Q_WAIT_TIMEOUT:
		v = q->wait_timeout;
		break;
	case NP_Q_BYTES_LO:
		v = (uint32_t)q->bytes;
		q->bytes_hi_latch = (uint32_t)(q->bytes >> 32);
		break;
	case NP_Q_BYTES_HI:
		v = q->bytes_hi_latch;
		break;
	case NP_Q_FENCE_WAITS:
		v = q->fence_waits;
		break;
	case NP_Q_WORK_WAITS:
		v = q->work_waits;
		break;
	case NP_Q_WORK_DONE:
		v = q->work_done;
		break;
	case NP_Q_WORK_MAX_NS:
		v = q->work_max_ns;
		break;
	case NP_Q_FENCE_NS_LO:
		v = (uint32_t)q->fence_ns;
		q->fence_ns_hi_latch = (uint32_t)(q->fence_ns >> 32);
		break;
	case NP_Q_FENCE_NS_HI:
		v = q->fence_ns_hi_latch;
		break;
	case NP_Q_WORK_WAIT_NS_LO:
		v = (uint32_t)q->work_wait_ns;
		q->work_wait_ns_hi_latch = (uint32_t)(q->work_wait_ns >> 32);
		break;
	case NP_Q_WORK_WAIT_NS_HI:
		v = q->work_wait_ns_hi_latch;
		break;
	case NP_Q_WORK_NS_LO:
		v = (uint32_t)q->work_ns;
		q->work_ns_hi_latch = (uint32_t)(q->work_ns >> 32);
		break;
	case NP_Q_WORK_NS_HI:
		v = q->work_ns_hi_latch;
		break;
	default:
		v = 0;
		np_emu_msgf(msg, LOG_WARNING,
			    "read of %s register 0x%02x: no register there; "
			    "reads as 0",
			    np_emu_queue_name(q, name, sizeof(name)), reg);
		break;
	}
	pthread_mutex_unlock(&q->lock);
	np_emu_msg_flush(q->emu, msg);
	return v;
}

/* q->lock held: a ring register may change only while the queue is idle. */
static bool ring_writable(struct np_emu_queue *q, const char *reg,
			  uint32_t value, struct np_emu_msg *msg)
{
	char name[32];

	if (q->ctrl & NP_Q_CTRL_ENABLE) {
		np_emu_msgf(msg, LOG_WARNING,
			    "%s: write of 0x%08x to %s while the queue is "
			    "enabled; queue stopped with NP_ERR_RING_CONFIG "
			    "(clear NP_Q_CTRL_ENABLE and wait for STATUS.BUSY "
			    "to clear first)",
			    np_emu_queue_name(q, name, sizeof(name)), value,
			    reg);
		mmio_stop(q, NP_ERR_RING_CONFIG, 0);
		return false;
	}
	if (q->busy) {
		np_emu_msgf(
			msg, LOG_WARNING,
			"%s: write of 0x%08x to %s while a descriptor still "
			"executes; ignored (wait for STATUS.BUSY to clear)",
			np_emu_queue_name(q, name, sizeof(name)), value, reg);
		return false;
	}
	return true;
}

/* q->lock held: validate the ring and start fetching. */
static void enable(struct np_emu_queue *q, struct np_emu_msg *msg)
{
	char name[32];
	const char *why = NULL;

	if (q->ctrl & NP_Q_CTRL_ENABLE)
		return;
	if (q->error) {
		np_emu_msgf(msg, LOG_WARNING,
			    "%s: enable while stopped with error %u (%s); "
			    "ignored (write NP_Q_CTRL_RESET first)",
			    np_emu_queue_name(q, name, sizeof(name)), q->error,
			    np_err_name(q->error));
		return;
	}
	if (!ring_size_valid(q->ring_size))
		why = "ring size is not a power of two in 2..65536";
	else if (!q->ring || q->ring % NP_RING_ALIGN)
		why = "ring base is 0 or not 64-byte aligned";
	else if (q->wb % NP_WB_ALIGN)
		why = "writeback address is not 32-byte aligned";
	else if (q->head >= q->ring_size || q->tail >= q->ring_size)
		why = "head or tail beyond the ring size (reset the queue "
		      "after resizing the ring)";
	if (why) {
		np_emu_msgf(msg, LOG_WARNING,
			    "%s: enable refused, %s (ring 0x%llx, size %u, "
			    "writeback 0x%llx); queue stopped with "
			    "NP_ERR_RING_CONFIG",
			    np_emu_queue_name(q, name, sizeof(name)), why,
			    (unsigned long long)q->ring, q->ring_size,
			    (unsigned long long)q->wb);
		mmio_stop(q, NP_ERR_RING_CONFIG, 0);
		return;
	}
	q->ctrl |= NP_Q_CTRL_ENABLE;
	np_emu_queue_kick(q);
}

static void ctrl_write(struct np_emu_queue *q, uint32_t value,
		       struct np_emu_msg *msg)
{
	const uint32_t known = NP_Q_CTRL_ENABLE | NP_Q_CTRL_RESET;
	char name[32];

	if (value & ~known)
		np_emu_msgf(msg, LOG_WARNING,
			    "%s: CTRL write 0x%08x has undefined bits 0x%08x; "
			    "they are ignored",
			    np_emu_queue_name(q, name, sizeof(name)), value,
			    value & ~known);
	if (value & NP_Q_CTRL_RESET)
		np_emu_queue_clear(q);
	if (value & NP_Q_CTRL_ENABLE) {
		enable(q, msg);
	} else if (q->ctrl & NP_Q_CTRL_ENABLE) {
		/* Graceful: the current descriptor completes, no new fetch. */
		q->ctrl &= ~NP_Q_CTRL_ENABLE;
		np_emu_queue_kick(q);
	}
}

static void tail_write(struct np_emu_queue *q, uint32_t value,
		       struct np_emu_msg *msg)
{
	char name[32];

	if (value >= q->ring_size && !(value == 0 && !q->ring_size)) {
		np_emu_msgf(msg, LOG_WARNING,
			    "%s: tail %u is not below the ring size %u; queue "
			    "stopped with NP_ERR_BAD_TAIL",
			    np_emu_queue_name(q, name, sizeof(name)), value,
			    q->ring_size);
		mmio_stop(q, NP_ERR_BAD_TAIL, 0);
		return;
	}
	q->tail = value;
	np_emu_queue_kick(q);
}

void np_emu_queue_write(struct np_emu_queue *q, uint32_t reg, uint32_t value)
{
	struct np_emu_msg m = NP_EMU_MSG_INIT, *msg = &m;
	char name[32];
	const char *ro = NULL;

	pthread_mutex_lock(&q->lock);
	if (q->hold) {
		np_emu_msgf(msg, LOG_WARNING,
			    "%s: write of 0x%08x to register 0x%02x while the "
			    "card resets; ignored (wait for NP_STATUS_READY)",
			    np_emu_queue_name(q, name, sizeof(name)), value,
			    reg);
		pthread_mutex_unlock(&q->lock);
		np_emu_msg_flush(q->emu, msg);
		return;
	}
	switch (reg) {
	case NP_Q_RING_LO:
		if (ring_writable(q, "RING_LO", value, msg))
			q->ring = (q->ring & ~0xffffffffull) | value;
		break;
	case NP_Q_RING_HI:
		if (ring_writable(q, "RING_HI", value, msg))
			q->ring = (q->ring & 0xffffffffull) | (uint64_t)value
								      << 32;
		break;
	case NP_Q_RING_SIZE:
		if (ring_writable(q, "RING_SIZE", value, msg))
			q->ring_size = value;
		break;
	case NP_Q_WB_LO:
		if (ring_writable(q, "WB_LO", value, msg))
			q->wb = (q->wb & ~0xffffffffull) | value;
		break;
	case NP_Q_WB_HI:
		if (ring_writable(q, "WB_HI", value, msg))
			q->wb = (q->wb & 0xffffffffull) | (uint64_t)value << 32;
		break;
	case NP_Q_CTRL:
		ctrl_write(q, value, msg);
		break;
	case NP_Q_TAIL:
		tail_write(q, value, msg);
		break;
	case NP_Q_WAIT_TIMEOUT:
		q->wait_timeout = value;
		break;
	case NP_Q_WORK_MAX_NS:
		q->work_max_ns = 0;
		break;
	case NP_Q_HEAD:
	case NP_Q_STATUS:
	case NP_Q_ERROR:
	case NP_Q_ERR_INDEX:
	case NP_Q_ERR_ADDR_LO:
	case NP_Q_ERR_ADDR_HI:
	case NP_Q_COMPLETED:
	case NP_Q_BYTES_LO:
	case NP_Q_BYTES_HI:
	case NP_Q_FENCE_WAITS:
	case NP_Q_FENCE_NS_LO:
	case NP_Q_FENCE_NS_HI:
	case NP_Q_WORK_WAITS:
	case NP_Q_WORK_WAIT_NS_LO:
	case NP_Q_WORK_WAIT_NS_HI:
	case NP_Q_WORK_DONE:
	case NP_Q_WORK_NS_LO:
	case NP_Q_WORK_NS_HI:
		ro = queue_ro_names[reg / 4];
		break;
	default:
		np_emu_msgf(msg, LOG_WARNING,
			    "%s: write of 0x%08x to 0x%02x: no register there; "
			    "ignored",
			    np_emu_queue_name(q, name, sizeof(name)), value,
			    reg);
		break;
	}
	if (ro)
		np_emu_msgf(
			msg, LOG_WARNING,
			"%s: write of 0x%08x to read-only register %s; ignored",
			np_emu_queue_name(q, name, sizeof(name)), value, ro);
	pthread_mutex_unlock(&q->lock);
	np_emu_msg_flush(q->emu, msg);
}
