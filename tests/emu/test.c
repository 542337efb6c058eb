// SPDX-License-Identifier: MIT
/*
 * Test bus and helpers for the emulator core suites.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <syslog.h>
#include <time.h>

#include "test.h"

/* Failsafe for waits: far above anything a passing test needs. */
#define TST_POLL_LIMIT_NS (10ull * 1000 * 1000 * 1000)

static bool faulted(struct tst_bus *tb, uint64_t addr, size_t len)
{
	return tb->fault_hi > tb->fault_lo && addr < tb->fault_hi &&
	       addr + len > tb->fault_lo;
}

/* Host pointer for [addr, addr + len) in window [base, base + size). */
static uint8_t *window(uint8_t *mem, uint64_t base, uint64_t size,
		       uint64_t addr, size_t len)
{
	if (!mem || addr < base || addr - base >= size ||
	    len > size - (addr - base))
		return NULL;
	return mem + (addr - base);
}

static uint8_t *resolve(struct tst_bus *tb, uint64_t addr, size_t len)
{
	uint8_t *p = window(tb->host, TST_HOST_BASE, tb->host_size, addr, len);
	uint64_t fb_size;
	uint8_t *fb;

	if (p || !tb->peer)
		return p;
	fb = np_emu_fb(tb->peer, &fb_size);
	return window(fb, TST_PEER_FB_BASE, fb_size, addr, len);
}

static bool mailbox(struct tst_bus *tb, uint64_t addr, size_t len,
		    uint32_t *off)
{
	if (!tb->peer || addr < TST_PEER_MBOX_BASE ||
	    addr - TST_PEER_MBOX_BASE >= NP_MBOX_SIZE || len != 4 ||
	    (addr & 3u))
		return false;
	*off = NP_MBOX_OFFSET + (uint32_t)(addr - TST_PEER_MBOX_BASE);
	return true;
}

static void gate(struct tst_bus *tb, uint64_t addr, size_t len)
{
	pthread_mutex_lock(&tb->lock);
	if (addr < tb->gate_hi && addr + len > tb->gate_lo) {
		tb->gate_blocked++;
		while (tb->gate_closed)
			pthread_cond_wait(&tb->gate_cond, &tb->lock);
		tb->gate_blocked--;
	}
	pthread_mutex_unlock(&tb->lock);
}

static int bus_read(void *opaque, uint64_t addr, void *buf, size_t len)
{
	struct tst_bus *tb = opaque;
	uint8_t *p = resolve(tb, addr, len);
	uint32_t off, v;

	gate(tb, addr, len);
	if (faulted(tb, addr, len))
		return -EFAULT;
	if (p) {
		memcpy(buf, p, len);
		return 0;
	}
	if (mailbox(tb, addr, len, &off)) {
		v = np_emu_mmio_read(tb->peer, off);
		memcpy(buf, &v, 4);
		return 0;
	}
	return -EFAULT;
}

static int bus_write(void *opaque, uint64_t addr, const void *buf, size_t len)
{
	struct tst_bus *tb = opaque;
	uint8_t *p = resolve(tb, addr, len);
	uint32_t off, v;

	if (faulted(tb, addr, len))
		return -EFAULT;
	if (p) {
		memcpy(p, buf, len);
		return 0;
	}
	if (mailbox(tb, addr, len, &off)) {
		memcpy(&v, buf, 4);
		np_emu_mmio_write(tb->peer, off, v);
		return 0;
	}
	return -EFAULT;
}

static void bus_irq(void *opaque, unsigned int vector)
{
	struct tst_bus *tb = opaque;

	pthread_mutex_lock(&tb->lock);
	if (tb->snap_wb)
		memcpy(&tb->snap, tst_ptr(tb, tb->snap_wb), sizeof(tb->snap));
	if (tb->peer)
		tb->snap_event_value = np_emu_mmio_read(
			tb->peer, NP_MBOX_EVENT(tb->snap_event));
	if (vector < NP_MSIX_VECTORS)
		tb->irqs[vector]++;
	pthread_mutex_unlock(&tb->lock);
}

static void bus_log(void *opaque, int level, const char *msg)
{
	struct tst_bus *tb = opaque;

	pthread_mutex_lock(&tb->lock);
	if (level <= LOG_WARNING) {
		tb->warnings++;
		snprintf(tb->last_log, sizeof(tb->last_log), "%s", msg);
	}
	pthread_mutex_unlock(&tb->lock);
}

void tst_bus_init(struct tst_bus *tb, uint64_t host_size)
{
	memset(tb, 0, sizeof(*tb));
	tb->host = mmap(NULL, host_size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ck_assert_ptr_ne(tb->host, MAP_FAILED);
	tb->host_size = host_size;
	pthread_mutex_init(&tb->lock, NULL);
	pthread_cond_init(&tb->gate_cond, NULL);
}

void tst_bus_fini(struct tst_bus *tb)
{
	munmap(tb->host, tb->host_size);
	pthread_cond_destroy(&tb->gate_cond);
	pthread_mutex_destroy(&tb->lock);
}

struct np_emu_bus tst_bus_ops(struct tst_bus *tb)
{
	struct np_emu_bus bus = {
		.opaque = tb,
		.dma_read = bus_read,
		.dma_write = bus_write,
		.irq = bus_irq,
		.log = bus_log,
	};

	return bus;
}

struct np_emu *tst_card(struct tst_bus *tb, uint64_t sram, uint64_t fb,
			unsigned int engines)
{
	struct np_emu_config cfg = {
		.sram_size = sram ? sram : TST_SRAM_SIZE,
		.fb_size = fb ? fb : TST_FB_SIZE,
		.dma_engines = engines,
		.serial = 0x1122334455667788ull,
	};
	struct np_emu_bus bus = tst_bus_ops(tb);
	struct np_emu *emu;

	ck_assert_int_eq(np_emu_create(&cfg, &bus, &emu), 0);
	ck_assert_ptr_nonnull(emu);
	return emu;
}

uint64_t tst_alloc(struct tst_bus *tb, uint64_t size, uint64_t align)
{
	uint64_t off = (tb->next + align - 1) & ~(align - 1);

	ck_assert_uint_le(off + size, tb->host_size);
	tb->next = off + size;
	return TST_HOST_BASE + off;
}

void *tst_ptr(struct tst_bus *tb, uint64_t bus_addr)
{
	ck_assert_uint_ge(bus_addr, TST_HOST_BASE);
	ck_assert_uint_lt(bus_addr - TST_HOST_BASE, tb->host_size);
	return tb->host + (bus_addr - TST_HOST_BASE);
}

void tst_fault(struct tst_bus *tb, uint64_t lo, uint64_t hi)
{
	tb->fault_lo = lo;
	tb->fault_hi = hi;
}

void tst_gate_close(struct tst_bus *tb, uint64_t lo, uint64_t hi)
{
	pthread_mutex_lock(&tb->lock);
	tb->gate_lo = lo;
	tb->gate_hi = hi;
	tb->gate_closed = true;
	pthread_mutex_unlock(&tb->lock);
}

static bool gate_blocked(void *p)
{
	struct tst_bus *tb = p;
	bool blocked;

	pthread_mutex_lock(&tb->lock);
	blocked = tb->gate_blocked > 0;
	pthread_mutex_unlock(&tb->lock);
	return blocked;
}

bool tst_gate_wait_blocked(struct tst_bus *tb)
{
	return tst_poll(gate_blocked, tb);
}

void tst_gate_open(struct tst_bus *tb)
{
	pthread_mutex_lock(&tb->lock);
	tb->gate_closed = false;
	pthread_cond_broadcast(&tb->gate_cond);
	pthread_mutex_unlock(&tb->lock);
}

unsigned int tst_irqs(struct tst_bus *tb, unsigned int vector)
{
	unsigned int n;

	pthread_mutex_lock(&tb->lock);
	n = tb->irqs[vector];
	pthread_mutex_unlock(&tb->lock);
	return n;
}

unsigned int tst_warnings(struct tst_bus *tb)
{
	unsigned int n;

	pthread_mutex_lock(&tb->lock);
	n = tb->warnings;
	pthread_mutex_unlock(&tb->lock);
	return n;
}

bool tst_log_contains(struct tst_bus *tb, const char *needle)
{
	bool found;

	pthread_mutex_lock(&tb->lock);
	found = strstr(tb->last_log, needle) != NULL;
	pthread_mutex_unlock(&tb->lock);
	return found;
}

uint32_t tst_rd(struct np_emu *emu, uint32_t off)
{
	return np_emu_mmio_read(emu, off);
}

void tst_wr(struct np_emu *emu, uint32_t off, uint32_t v)
{
	np_emu_mmio_write(emu, off, v);
}

void tst_queue_init(struct tst_queue *q, struct tst_bus *tb, struct np_emu *emu,
		    uint32_t base, uint32_t entries)
{
	memset(q, 0, sizeof(*q));
	q->emu = emu;
	q->tb = tb;
	q->base = base;
	q->entries = entries;
	q->ring = tst_alloc(tb, (uint64_t)entries * 64u, NP_RING_ALIGN);
	q->wb = tst_alloc(tb, sizeof(struct np_queue_wb), NP_WB_ALIGN);
	tst_wr(emu, base + NP_Q_RING_LO, (uint32_t)q->ring);
	tst_wr(emu, base + NP_Q_RING_HI, (uint32_t)(q->ring >> 32));
	tst_wr(emu, base + NP_Q_RING_SIZE, entries);
	tst_wr(emu, base + NP_Q_WB_LO, (uint32_t)q->wb);
	tst_wr(emu, base + NP_Q_WB_HI, (uint32_t)(q->wb >> 32));
	tst_wr(emu, base + NP_Q_CTRL, NP_Q_CTRL_ENABLE);
	ck_assert_uint_eq(tst_rd(emu, base + NP_Q_STATUS), NP_Q_STATUS_ENABLED);
}

void tst_queue_put(struct tst_queue *q, const void *desc)
{
	memcpy(tst_ptr(q->tb, q->ring + (uint64_t)q->tail * 64u), desc, 64);
	q->tail = (q->tail + 1) & (q->entries - 1);
}

void tst_kick(struct tst_queue *q)
{
	tst_wr(q->emu, q->base + NP_Q_TAIL, q->tail);
}

void tst_submit(struct tst_queue *q, const void *desc)
{
	tst_queue_put(q, desc);
	tst_kick(q);
}

const struct np_queue_wb *tst_wb(struct tst_queue *q)
{
	return tst_ptr(q->tb, q->wb);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

bool tst_poll(bool (*cond)(void *), void *arg)
{
	uint64_t start = now_ns();
	struct timespec nap = {0, 20000};

	while (!cond(arg)) {
		if (now_ns() - start > TST_POLL_LIMIT_NS)
			return false;
		nanosleep(&nap, NULL);
	}
	return true;
}

struct completed_arg {
	struct tst_queue *q;
	uint32_t n;
};

static bool completed_or_error(void *p)
{
	struct completed_arg *a = p;
	uint32_t base = a->q->base;

	return tst_rd(a->q->emu, base + NP_Q_COMPLETED) - a->n < 0x80000000u ||
	       (tst_rd(a->q->emu, base + NP_Q_STATUS) & NP_Q_STATUS_ERROR);
}

uint32_t tst_wait_completed(struct tst_queue *q, uint32_t n)
{
	struct completed_arg a = {q, n};

	ck_assert(tst_poll(completed_or_error, &a));
	return tst_rd(q->emu, q->base + NP_Q_COMPLETED);
}

static bool has_error(void *p)
{
	struct tst_queue *q = p;

	return tst_rd(q->emu, q->base + NP_Q_STATUS) & NP_Q_STATUS_ERROR;
}

uint32_t tst_wait_error(struct tst_queue *q)
{
	ck_assert(tst_poll(has_error, q));
	return tst_rd(q->emu, q->base + NP_Q_ERROR);
}

struct irq_arg {
	struct tst_bus *tb;
	unsigned int vector, n;
};

static bool irqs_reached(void *p)
{
	struct irq_arg *a = p;

	return tst_irqs(a->tb, a->vector) >= a->n;
}

bool tst_wait_irqs(struct tst_bus *tb, unsigned int vector, unsigned int n)
{
	struct irq_arg a = {tb, vector, n};

	return tst_poll(irqs_reached, &a);
}

static bool is_ready(void *p)
{
	return tst_rd(p, NP_REG_STATUS) == NP_STATUS_READY;
}

bool tst_wait_ready(struct np_emu *emu)
{
	return tst_poll(is_ready, emu);
}

struct np_dma_desc tst_dma(uint8_t op, uint64_t src, uint64_t dst, uint32_t len)
{
	struct np_dma_desc d = {
		.opcode = op,
		.len = len,
		.src = src,
		.dst = dst,
	};

	return d;
}

/* xorshift pattern: cheap, and a shifted or truncated copy never matches. */
static uint32_t next(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

void tst_fill(void *p, size_t len, uint32_t seed)
{
	uint8_t *b = p;
	uint32_t s = seed | 1u;

	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)next(&s);
}

bool tst_check(const void *p, size_t len, uint32_t seed)
{
	const uint8_t *b = p;
	uint32_t s = seed | 1u;

	for (size_t i = 0; i < len; i++)
		if (b[i] != (uint8_t)next(&s))
			return false;
	return true;
}
