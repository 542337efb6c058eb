// SPDX-License-Identifier: MIT
/*
 * Emulator core device interface harness: the input is a program of
 * register writes and reads, descriptors and rings placed in host memory,
 * doorbells, pauses, resets and injected faults, run against a card with
 * small memories. Host memory is a heap buffer behind a bounds-checked bus
 * (anything else is refused, as an IOMMU would), so ASan sees every byte
 * the card touches on the host side.
 *
 * Afterwards the card is reset and must still do a correct DMA round trip
 * (host -> SRAM -> host, writeback record and all). Every wait is bounded;
 * a card that does not finish within WAIT_NS is a finding.
 */
#include <errno.h>
#include <pthread.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "np_abi.h"
#include "np_emu.h"
#include "np_fuzz.h"

#define HOST_BASE 0x10000000ull
#define HOST_SIZE 0x10000u
#define SRAM_SIZE 0x10000u
#define FB_SIZE 0x10000u
#define ENGINES 2u
#define MAX_OPS 256u
#define WAIT_NS 2000000000ull

/* The round trip's layout in host memory */
#define RT_RING 0x8000u
#define RT_ENTRIES 8u
#define RT_WB (RT_RING + RT_ENTRIES * 64u)
#define RT_SRC 0x9000u
#define RT_DST 0xa000u
#define RT_LEN 0x600u

struct fuzz_host {
	uint8_t *mem;
	unsigned int irqs;
	pthread_mutex_t lock;
	char last_warning[256]; /* shown when the round trip fails */
};

static int bus_span(uint64_t addr, size_t len, uint64_t *off)
{
	if (addr < HOST_BASE || addr - HOST_BASE > HOST_SIZE ||
	    len > HOST_SIZE - (addr - HOST_BASE))
		return -EFAULT;
	*off = addr - HOST_BASE;
	return 0;
}

static int bus_read(void *opaque, uint64_t addr, void *buf, size_t len)
{
	struct fuzz_host *h = opaque;
	uint64_t off;

	if (bus_span(addr, len, &off))
		return -EFAULT;
	memcpy(buf, h->mem + off, len);
	return 0;
}

static int bus_write(void *opaque, uint64_t addr, const void *buf, size_t len)
{
	struct fuzz_host *h = opaque;
	uint64_t off;

	if (bus_span(addr, len, &off))
		return -EFAULT;
	memcpy(h->mem + off, buf, len);
	return 0;
}

static void bus_irq(void *opaque, unsigned int vector)
{
	struct fuzz_host *h = opaque;

	NP_FUZZ_ASSERT(vector < NP_MSIX_VECTORS, "interrupt vector %u", vector);
	__atomic_fetch_add(&h->irqs, 1, __ATOMIC_RELAXED);
}

static void bus_log(void *opaque, int level, const char *msg)
{
	struct fuzz_host *h = opaque;

	NP_FUZZ_ASSERT(msg && *msg, "empty log message at level %d", level);
	if (level > LOG_WARNING)
		return;
	pthread_mutex_lock(&h->lock);
	snprintf(h->last_warning, sizeof(h->last_warning), "%s", msg);
	pthread_mutex_unlock(&h->lock);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A bus or card address: mostly inside (or straddling the end of) one of
 * the windows, sometimes anything at all. */
static uint64_t address(struct np_fuzz_in *in)
{
	uint8_t sel = np_fuzz_u8(in);
	uint64_t off = np_fuzz_u16(in);

	switch (sel % 6) {
	case 0:
		return HOST_BASE + off % HOST_SIZE;
	case 1:
		return NP_CA_SRAM_BASE + off % SRAM_SIZE;
	case 2:
		return NP_CA_FB_BASE + off % FB_SIZE;
	case 3: /* just below the end of a window */
		return (sel & 8	 ? HOST_BASE + HOST_SIZE :
			sel & 16 ? NP_CA_FB_BASE + FB_SIZE :
				   NP_CA_SRAM_BASE + SRAM_SIZE) -
		       (off & 0xff);
	case 4:
		return HOST_BASE + (off & 0xff) * 64;
	default:
		return np_fuzz_u64(in);
	}
}

static uint32_t length(struct np_fuzz_in *in)
{
	uint8_t sel = np_fuzz_u8(in);

	if (sel < 0xe0)
		return sel * 16u + (np_fuzz_u8(in) & 15);
	return np_fuzz_u32(in);
}

static uint32_t queue_base(uint8_t q)
{
	q %= ENGINES + 2; /* one engine past the card's, and compute */
	return q == ENGINES + 1 ? NP_COMPUTE_BASE : NP_DMA_BASE(q);
}

/* Any BAR0 offset, weighted to the registers that do something. */
static uint64_t reg_offset(struct np_fuzz_in *in)
{
	uint8_t sel = np_fuzz_u8(in), r = np_fuzz_u8(in);

	switch (sel % 5) {
	case 0:
		return (r * 4u) % 0x144u;
	case 1:
		return queue_base(sel >> 3) + (r * 4u) % 0x44u;
	case 2:
		return NP_MBOX_OFFSET + (r * 4u) % (NP_NUM_EVENTS * 4u + 8u);
	case 3:
		return NP_DMA_BASE(r % NP_MAX_DMA_ENGINES) + (sel >> 3) * 4u;
	default:
		return np_fuzz_u8(in) & 1 ? np_fuzz_u64(in) : np_fuzz_u16(in);
	}
}

static void put_desc(struct fuzz_host *h, struct np_fuzz_in *in)
{
	uint32_t slot = np_fuzz_u16(in) % (HOST_SIZE / 64);
	uint8_t rsvd = np_fuzz_u8(in);
	struct np_dma_desc d = {
		.opcode = np_fuzz_u8(in) % 8,
		.flags = np_fuzz_u8(in) % 32,
		.wait_event = np_fuzz_u8(in) % (NP_NUM_EVENTS + 8),
		.signal_event = np_fuzz_u8(in) % (NP_NUM_EVENTS + 8),
		.len = length(in),
		.src = address(in),
		.dst = address(in),
	};

	if (d.flags & NP_DESC_F_NOTIFY) {
		d.notify_addr = address(in);
		d.notify_data = np_fuzz_u32(in);
	}
	if (d.flags & NP_DESC_F_WAIT)
		d.wait_value = np_fuzz_u8(in);
	d.user = np_fuzz_u64(in);
	if (rsvd == 0xff)
		d.rsvd[rsvd & 1] = np_fuzz_u64(in);
	memcpy(h->mem + slot * 64, &d, sizeof(d));
}

/* Program a ring, writeback record and wait timeout, then enable. */
static void put_queue(struct np_emu *emu, struct np_fuzz_in *in)
{
	uint32_t q = queue_base(np_fuzz_u8(in));
	uint8_t size = np_fuzz_u8(in);
	uint64_t ring = address(in), wb = address(in);
	uint32_t timeout = np_fuzz_u16(in) % 2000;

	np_emu_mmio_write(emu, q + NP_Q_CTRL, 0);
	np_emu_mmio_write(emu, q + NP_Q_RING_LO, (uint32_t)ring);
	np_emu_mmio_write(emu, q + NP_Q_RING_HI, (uint32_t)(ring >> 32));
	np_emu_mmio_write(emu, q + NP_Q_RING_SIZE,
			  size & 0x80 ? size * 0x1010101u : 1u << (size % 17));
	np_emu_mmio_write(emu, q + NP_Q_WB_LO, (uint32_t)wb);
	np_emu_mmio_write(emu, q + NP_Q_WB_HI, (uint32_t)(wb >> 32));
	np_emu_mmio_write(emu, q + NP_Q_WAIT_TIMEOUT, timeout);
	np_emu_mmio_write(emu, q + NP_Q_CTRL, NP_Q_CTRL_ENABLE);
}

static void run_op(struct np_emu *emu, struct fuzz_host *h,
		   struct np_fuzz_in *in)
{
	uint8_t op = np_fuzz_u8(in);

	switch (op % 9) {
	case 0: {
		uint64_t off = reg_offset(in);

		np_emu_mmio_write(emu, off, np_fuzz_u32(in));
		break;
	}
	case 1:
		np_emu_mmio_read(emu, reg_offset(in));
		break;
	case 2: {
		uint32_t off = np_fuzz_u16(in) % HOST_SIZE;
		uint32_t len = np_fuzz_u8(in);

		if (len > HOST_SIZE - off)
			len = HOST_SIZE - off;
		if (len > in->n)
			len = (uint32_t)in->n;
		memcpy(h->mem + off, in->p, len);
		in->p += len;
		in->n -= len;
		break;
	}
	case 3:
		put_desc(h, in);
		break;
	case 4:
		put_queue(emu, in);
		break;
	case 5: {
		uint32_t q = queue_base(np_fuzz_u8(in));
		uint8_t t = np_fuzz_u8(in);

		np_emu_mmio_write(emu, q + NP_Q_TAIL,
				  t == 0xff ? np_fuzz_u32(in) : t);
		break;
	}
	case 6:
		usleep((np_fuzz_u8(in) % 32u) * 20u);
		break;
	case 7: {
		uint8_t what = np_fuzz_u8(in);

		if (what < 8)
			np_emu_reset_async(emu);
		else if (what < 64)
			np_emu_inject(emu, (enum np_emu_fault)(what % 5));
		else
			np_emu_mmio_write(
				emu, queue_base(what) + NP_Q_CTRL,
				NP_Q_CTRL_RESET |
					(what & 1 ? NP_Q_CTRL_ENABLE : 0));
		break;
	}
	default: {
		uint64_t size;
		uint8_t *fb = np_emu_fb(emu, &size);
		uint32_t off = np_fuzz_u16(in);

		NP_FUZZ_ASSERT(fb && size == FB_SIZE, "frame buffer %llu bytes",
			       (unsigned long long)size);
		fb[off % size] = np_fuzz_u8(in);
		np_emu_resident_bytes(emu);
		break;
	}
	}
}

static void round_trip(struct np_emu *emu, struct fuzz_host *h)
{
	const uint32_t q = NP_DMA_BASE(0);
	struct np_dma_desc d[2] = {
		{.opcode = NP_DMA_OP_H2C,
		 .len = RT_LEN,
		 .src = HOST_BASE + RT_SRC,
		 .dst = NP_CA_SRAM_BASE + 0x100,
		 .user = 1},
		{.opcode = NP_DMA_OP_C2H,
		 .len = RT_LEN,
		 .src = NP_CA_SRAM_BASE + 0x100,
		 .dst = HOST_BASE + RT_DST,
		 .user = 2},
	};
	uint64_t deadline = now_ns() + WAIT_NS;
	struct np_queue_wb wb;

	NP_FUZZ_ASSERT(np_emu_mmio_read(emu, NP_REG_STATUS) & NP_STATUS_READY,
		       "card not ready after reset: status 0x%08x",
		       np_emu_mmio_read(emu, NP_REG_STATUS));
	for (uint32_t i = 0; i < RT_LEN; i++)
		h->mem[RT_SRC + i] = (uint8_t)(i * 7 + 3);
	memset(h->mem + RT_DST, 0, RT_LEN);
	memset(h->mem + RT_WB, 0, sizeof(wb));
	memcpy(h->mem + RT_RING, d, sizeof(d));
	np_emu_mmio_write(emu, q + NP_Q_RING_LO,
			  (uint32_t)(HOST_BASE + RT_RING));
	np_emu_mmio_write(emu, q + NP_Q_RING_HI, 0);
	np_emu_mmio_write(emu, q + NP_Q_RING_SIZE, RT_ENTRIES);
	np_emu_mmio_write(emu, q + NP_Q_WB_LO, (uint32_t)(HOST_BASE + RT_WB));
	np_emu_mmio_write(emu, q + NP_Q_WB_HI, 0);
	np_emu_mmio_write(emu, q + NP_Q_CTRL, NP_Q_CTRL_ENABLE);
	np_emu_mmio_write(emu, q + NP_Q_TAIL, 2);
	for (;;) {
		memcpy(&wb, h->mem + RT_WB, sizeof(wb));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (wb.completed == 2 || wb.error)
			break;
		NP_FUZZ_ASSERT(
			now_ns() < deadline,
			"round trip after reset did not finish: status 0x%08x, "
			"head %u, completed %u; last warning: %s",
			np_emu_mmio_read(emu, q + NP_Q_STATUS),
			np_emu_mmio_read(emu, q + NP_Q_HEAD),
			np_emu_mmio_read(emu, q + NP_Q_COMPLETED),
			h->last_warning);
		usleep(10);
	}
	NP_FUZZ_ASSERT(
		wb.completed == 2 && wb.head == 2 && !wb.error && wb.user == 2,
		"round trip writeback: completed %u, head %u, error %u, user "
		"%llu",
		wb.completed, wb.head, wb.error, (unsigned long long)wb.user);
	NP_FUZZ_ASSERT(!memcmp(h->mem + RT_SRC, h->mem + RT_DST, RT_LEN),
		       "round trip data differs");
}

int np_fuzz_emu(const uint8_t *data, size_t size)
{
	struct np_fuzz_in in = {data, size};
	struct fuzz_host h = {.lock = PTHREAD_MUTEX_INITIALIZER};
	const struct np_emu_config cfg = {
		.sram_size = SRAM_SIZE,
		.fb_size = FB_SIZE,
		.dma_engines = ENGINES,
	};
	const struct np_emu_bus bus = {
		.opaque = &h,
		.dma_read = bus_read,
		.dma_write = bus_write,
		.irq = bus_irq,
		.log = bus_log,
	};
	struct np_emu *emu;

	h.mem = calloc(1, HOST_SIZE);
	if (!h.mem)
		return 0;
	NP_FUZZ_ASSERT(np_emu_create(&cfg, &bus, &emu) == 0, "card creation");
	for (unsigned int i = 0; i < MAX_OPS && in.n; i++)
		run_op(emu, &h, &in);
	np_emu_reset(emu);
	pthread_mutex_lock(&h.lock);
	h.last_warning[0] = 0;
	pthread_mutex_unlock(&h.lock);
	round_trip(emu, &h);
	np_emu_destroy(emu);
	free(h.mem);
	return 0;
}
