// SPDX-License-Identifier: MIT
/*
 * qtest suite for the np-card QEMU device: two cards on q35's pcie.0,
 * driven from outside the guest through the qtest protocol. Guest RAM
 * plays the host memory: rings, buffers and MSI-X messages live there.
 * Every register and bit is named through np_abi.h, the header the device
 * and the core are built from.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <endian.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "np_abi.h"
#include "test.h"

/* PCI configuration space (include/uapi/linux/pci_regs.h) */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_REVISION_ID 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_CLASS_DEVICE 0x0a
#define PCI_BASE_ADDRESS_0 0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID 0x2e
#define PCI_BASE_ADDRESS_MEM_TYPE_64 0x04
#define PCI_BASE_ADDRESS_MEM_PREFETCH 0x08
#define PCI_PRIMARY_BUS 0x18
#define PCI_MEMORY_BASE 0x20
#define PCI_PREF_MEMORY_BASE 0x24
#define PCI_CAP_ID_EXP 0x10
#define PCI_CAP_ID_MSIX 0x11
#define PCI_EXP_DEVCAP 4
#define PCI_EXP_DEVCAP_FLR 0x10000000
#define PCI_EXP_DEVCTL 8
#define PCI_EXP_DEVCTL_BCR_FLR 0x8000
#define PCI_EXP_SLTCTL 24
#define PCI_EXP_SLTCTL_PIC 0x0300
#define PCI_EXP_SLTCTL_PWR_IND_OFF 0x0300
#define PCI_EXP_SLTCTL_PCC 0x0400
#define PCI_EXP_SLTSTA 26
#define PCI_EXP_SLTSTA_PDS 0x0040
#define PCI_MSIX_FLAGS 2
#define PCI_MSIX_FLAGS_QSIZE 0x07ff
#define PCI_MSIX_FLAGS_ENABLE 0x8000
#define PCI_MSIX_TABLE 4
#define PCI_MSIX_PBA 8
#define PCI_MSIX_ENTRY_SIZE 16
#define PCI_MSIX_ENTRY_DATA 8
#define PCI_MSIX_ENTRY_VECTOR_CTRL 12

/* Where the test maps things. q35 routes non-RAM addresses to PCI. */
#define NCARDS 2
#define CARD_SLOT(i) (4u + (i))
#define CARD_DEVFN(i) (CARD_SLOT(i) << 3)
#define CARD_REGS(i) (0xe0000000ull + (i)*0x100000ull)
#define CARD_MSIX(i) (CARD_REGS(i) + 0x80000ull)
#define CARD_FB(i) (0xe8000000ull + (i) * (uint64_t)NP_FB_SIZE)
#define GUEST_HEAP 0x01000000ull /* 16 MiB .. 256 MiB of guest RAM */
#define GUEST_HEAP_END 0x10000000ull

#define WAIT_MS 10000
#define RING_ENTRIES 64u

struct card {
	unsigned int idx;
	unsigned int devfn;
	uint64_t regs, fb, msix;
};

struct ring {
	unsigned int engine;
	uint64_t base;
	uint32_t entries;
	uint32_t tail;
};

static struct tst_qtest *qt;
static struct card cards[NCARDS];
static uint64_t heap;

/* ---- helpers ---- */

static uint64_t guest_alloc(uint64_t size, uint64_t align)
{
	uint64_t p = (heap + align - 1) & ~(align - 1);

	ck_assert_uint_le(p + size, GUEST_HEAP_END);
	heap = p + size;
	return p;
}

static uint32_t rd(const struct card *c, uint32_t off)
{
	return tst_readl(qt, c->regs + off);
}

static void wr(const struct card *c, uint32_t off, uint32_t v)
{
	tst_writel(qt, c->regs + off, v);
}

static uint32_t qrd(const struct card *c, unsigned int e, uint32_t reg)
{
	return rd(c, NP_DMA_BASE(e) + reg);
}

static void qwr(const struct card *c, unsigned int e, uint32_t reg, uint32_t v)
{
	wr(c, NP_DMA_BASE(e) + reg, v);
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
			      .tv_nsec = (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* Program the BARs and enable memory decoding and bus mastering. */
static void card_map(const struct card *c)
{
	tst_cfg_writel(qt, c->devfn, PCI_BASE_ADDRESS_0 + 4 * NP_BAR_REGS,
		       (uint32_t)c->regs);
	tst_cfg_writel(qt, c->devfn, PCI_BASE_ADDRESS_0 + 4 * NP_BAR_REGS + 4,
		       (uint32_t)(c->regs >> 32));
	tst_cfg_writel(qt, c->devfn, PCI_BASE_ADDRESS_0 + 4 * NP_BAR_FB,
		       (uint32_t)c->fb);
	tst_cfg_writel(qt, c->devfn, PCI_BASE_ADDRESS_0 + 4 * NP_BAR_FB + 4,
		       (uint32_t)(c->fb >> 32));
	tst_cfg_writel(qt, c->devfn, PCI_BASE_ADDRESS_0 + 4 * NP_BAR_MSIX,
		       (uint32_t)c->msix);
	tst_cfg_writew(qt, c->devfn, PCI_COMMAND,
		       PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
}

static void card_wait_ready(const struct card *c)
{
	unsigned int waited;
	uint32_t st = 0;

	for (waited = 0; waited < WAIT_MS; waited++) {
		st = rd(c, NP_REG_STATUS);
		if ((st & NP_STATUS_READY) && !(st & NP_STATUS_RESETTING))
			return;
		sleep_ms(1);
	}
	ck_abort_msg("card %u not READY after %u ms: STATUS 0x%08x", c->idx,
		     WAIT_MS, st);
}

/* Wait until (register & mask) == want; effects after completion (the
 * interrupt) may trail the COMPLETED count a little. */
static void wait_reg(const struct card *c, uint32_t off, uint32_t mask,
		     uint32_t want)
{
	unsigned int waited;
	uint32_t v = 0;

	for (waited = 0; waited < WAIT_MS; waited++) {
		v = rd(c, off);
		if ((v & mask) == want)
			return;
		sleep_ms(1);
	}
	ck_abort_msg("card %u register 0x%04x: 0x%08x, want 0x%08x under mask "
		     "0x%08x",
		     c->idx, off, v, want, mask);
}

static void ring_init(const struct card *c, unsigned int e, struct ring *r)
{
	r->engine = e;
	r->entries = RING_ENTRIES;
	r->tail = 0;
	r->base = guest_alloc(RING_ENTRIES * sizeof(struct np_dma_desc),
			      NP_RING_ALIGN);
	tst_memset(qt, r->base, 0, RING_ENTRIES * sizeof(struct np_dma_desc));
	qwr(c, e, NP_Q_CTRL, NP_Q_CTRL_RESET);
	/* Ring registers take writes once an aborted descriptor is gone. */
	wait_reg(c, NP_DMA_BASE(e) + NP_Q_STATUS, NP_Q_STATUS_BUSY, 0);
	qwr(c, e, NP_Q_RING_LO, (uint32_t)r->base);
	qwr(c, e, NP_Q_RING_HI, (uint32_t)(r->base >> 32));
	qwr(c, e, NP_Q_RING_SIZE, RING_ENTRIES);
	qwr(c, e, NP_Q_CTRL, NP_Q_CTRL_ENABLE);
	ck_assert_uint_eq(qrd(c, e, NP_Q_STATUS) & NP_Q_STATUS_ERROR, 0);
}

static struct np_dma_desc desc_make(uint8_t op, uint8_t flags, uint32_t len,
				    uint64_t src, uint64_t dst)
{
	struct np_dma_desc d;

	memset(&d, 0, sizeof(d));
	d.opcode = op;
	d.flags = flags;
	d.len = htole32(len);
	d.src = htole64(src);
	d.dst = htole64(dst);
	return d;
}

static void ring_push(const struct card *c, struct ring *r,
		      const struct np_dma_desc *d)
{
	tst_memwrite(qt, r->base + (uint64_t)r->tail * sizeof(*d), d,
		     sizeof(*d));
	r->tail = (r->tail + 1) % r->entries;
	qwr(c, r->engine, NP_Q_TAIL, r->tail);
}

/* Wait until the queue completed n descriptors in total, or stopped. */
static void ring_wait(const struct card *c, const struct ring *r, uint32_t n)
{
	unsigned int waited;

	for (waited = 0; waited < WAIT_MS; waited++) {
		uint32_t st = qrd(c, r->engine, NP_Q_STATUS);

		ck_assert_msg(!(st & NP_Q_STATUS_ERROR),
			      "card %u engine %u stopped: error %u at index %u",
			      c->idx, r->engine, qrd(c, r->engine, NP_Q_ERROR),
			      qrd(c, r->engine, NP_Q_ERR_INDEX));
		if (qrd(c, r->engine, NP_Q_COMPLETED) >= n)
			return;
		sleep_ms(1);
	}
	ck_abort_msg("card %u engine %u: %u of %u descriptors after %u ms",
		     c->idx, r->engine, qrd(c, r->engine, NP_Q_COMPLETED), n,
		     WAIT_MS);
}

/* Wait until the queue stops with an error; return NP_Q_ERROR. */
static uint32_t ring_wait_error(const struct card *c, const struct ring *r)
{
	unsigned int waited;

	for (waited = 0; waited < WAIT_MS; waited++) {
		if (qrd(c, r->engine, NP_Q_STATUS) & NP_Q_STATUS_ERROR)
			return qrd(c, r->engine, NP_Q_ERROR);
		sleep_ms(1);
	}
	ck_abort_msg("card %u engine %u did not stop with an error", c->idx,
		     r->engine);
	return 0;
}

static void fill_pattern(uint8_t *buf, size_t len, uint32_t seed)
{
	size_t i;

	for (i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = (uint8_t)(seed >> 16);
	}
}

/*
 * Host -> card (dst) -> host round trip of len bytes on engine e, with the
 * data checked at the end. Returns the number of descriptors it queued.
 */
static uint32_t dma_round_trip(const struct card *c, struct ring *r,
			       uint64_t card_addr, size_t len, uint32_t seed)
{
	uint64_t src = guest_alloc(len, 4096), dst = guest_alloc(len, 4096);
	uint8_t *in = malloc(len), *out = malloc(len);
	uint32_t done = qrd(c, r->engine, NP_Q_COMPLETED);
	struct np_dma_desc d;

	ck_assert_ptr_nonnull(in);
	ck_assert_ptr_nonnull(out);
	fill_pattern(in, len, seed);
	tst_memwrite(qt, src, in, len);
	tst_memset(qt, dst, 0, len);

	d = desc_make(NP_DMA_OP_H2C, 0, (uint32_t)len, src, card_addr);
	ring_push(c, r, &d);
	d = desc_make(NP_DMA_OP_C2H, 0, (uint32_t)len, card_addr, dst);
	ring_push(c, r, &d);
	ring_wait(c, r, done + 2);

	tst_memread(qt, dst, out, len);
	ck_assert_mem_eq(out, in, len);
	free(in);
	free(out);
	return 2;
}

/* MSI-X: enable the function and point vector v at guest memory. */
static unsigned int msix_cap(const struct card *c)
{
	unsigned int cap = tst_cfg_find_cap(qt, c->devfn, PCI_CAP_ID_MSIX);

	ck_assert_uint_ne(cap, 0);
	return cap;
}

static void msix_enable(const struct card *c)
{
	unsigned int cap = msix_cap(c);
	uint16_t ctrl = tst_cfg_readw(qt, c->devfn, cap + PCI_MSIX_FLAGS);

	tst_cfg_writew(qt, c->devfn, cap + PCI_MSIX_FLAGS,
		       ctrl | PCI_MSIX_FLAGS_ENABLE);
}

static uint64_t msix_entry(const struct card *c, unsigned int v)
{
	uint32_t table =
		tst_cfg_readl(qt, c->devfn, msix_cap(c) + PCI_MSIX_TABLE);

	ck_assert_uint_eq(table & 7, NP_BAR_MSIX);
	return c->msix + (table & ~7u) + (uint64_t)v * PCI_MSIX_ENTRY_SIZE;
}

static void msix_route(const struct card *c, unsigned int v, uint64_t addr,
		       uint32_t data, int masked)
{
	uint64_t e = msix_entry(c, v);

	tst_writel(qt, e, (uint32_t)addr);
	tst_writel(qt, e + 4, (uint32_t)(addr >> 32));
	tst_writel(qt, e + PCI_MSIX_ENTRY_DATA, data);
	tst_writel(qt, e + PCI_MSIX_ENTRY_VECTOR_CTRL, masked ? 1 : 0);
}

static int msix_pending(const struct card *c, unsigned int v)
{
	uint32_t pba = tst_cfg_readl(qt, c->devfn, msix_cap(c) + PCI_MSIX_PBA);

	return (tst_readl(qt, c->msix + (pba & ~7u) + (v / 32) * 4) >>
		(v % 32)) &
	       1;
}

static void wait_guest_u32(uint64_t addr, uint32_t want, const char *what)
{
	unsigned int waited;
	uint32_t v = 0;

	for (waited = 0; waited < WAIT_MS; waited++) {
		v = tst_readl(qt, addr);
		if (v == want)
			return;
		sleep_ms(1);
	}
	ck_abort_msg("%s: 0x%08x at 0x%" PRIx64 ", want 0x%08x", what, v, addr,
		     want);
}

static void wait_pending(const struct card *c, unsigned int v)
{
	unsigned int waited;

	for (waited = 0; waited < WAIT_MS; waited++) {
		if (msix_pending(c, v))
			return;
		sleep_ms(1);
	}
	ck_abort_msg("card %u: MSI-X vector %u never became pending", c->idx,
		     v);
}

static void pcie_flr(const struct card *c)
{
	unsigned int cap = tst_cfg_find_cap(qt, c->devfn, PCI_CAP_ID_EXP);
	uint16_t ctl;

	ck_assert_uint_ne(cap, 0);
	ctl = tst_cfg_readw(qt, c->devfn, cap + PCI_EXP_DEVCTL);
	tst_cfg_writew(qt, c->devfn, cap + PCI_EXP_DEVCTL,
		       ctl | PCI_EXP_DEVCTL_BCR_FLR);
}

/* ---- fixture: two cards, mapped and READY ---- */

static void setup_cards(const char *props)
{
	char args[512];
	unsigned int i;

	snprintf(args, sizeof(args),
		 "-device np-card,id=np0,addr=%02x.0%s "
		 "-device np-card,id=np1,addr=%02x.0%s",
		 CARD_SLOT(0), props, CARD_SLOT(1), props);
	qt = tst_start(args);
	heap = GUEST_HEAP;
	for (i = 0; i < NCARDS; i++) {
		cards[i] = (struct card){.idx = i,
					 .devfn = CARD_DEVFN(i),
					 .regs = CARD_REGS(i),
					 .fb = CARD_FB(i),
					 .msix = CARD_MSIX(i)};
		card_map(&cards[i]);
		card_wait_ready(&cards[i]);
	}
}

static void setup(void)
{
	setup_cards("");
}

static void teardown(void)
{
	tst_stop(qt);
	qt = NULL;
}

/* ---- identity and configuration space ---- */

START_TEST(test_pci_identity)
{
	unsigned int devfn = cards[0].devfn, pcie, msix;
	uint32_t class;

	ck_assert_uint_eq(tst_cfg_readw(qt, devfn, PCI_VENDOR_ID),
			  NP_PCI_VENDOR_ID);
	ck_assert_uint_eq(tst_cfg_readw(qt, devfn, PCI_DEVICE_ID),
			  NP_PCI_DEVICE_ID);
	ck_assert_uint_eq(tst_cfg_readb(qt, devfn, PCI_REVISION_ID),
			  NP_PCI_REVISION);
	class = (uint32_t)tst_cfg_readw(qt, devfn, PCI_CLASS_DEVICE) << 8 |
		tst_cfg_readb(qt, devfn, PCI_CLASS_PROG);
	ck_assert_uint_eq(class, NP_PCI_CLASS);
	ck_assert_uint_eq(tst_cfg_readw(qt, devfn, PCI_SUBSYSTEM_VENDOR_ID),
			  NP_PCI_SUBSYS_VENDOR_ID);
	ck_assert_uint_eq(tst_cfg_readw(qt, devfn, PCI_SUBSYSTEM_ID),
			  NP_PCI_SUBSYS_ID);

	pcie = tst_cfg_find_cap(qt, devfn, PCI_CAP_ID_EXP);
	ck_assert_uint_ne(pcie, 0);
	ck_assert_uint_ne(tst_cfg_readl(qt, devfn, pcie + PCI_EXP_DEVCAP) &
				  PCI_EXP_DEVCAP_FLR,
			  0);
	msix = tst_cfg_find_cap(qt, devfn, PCI_CAP_ID_MSIX);
	ck_assert_uint_ne(msix, 0);
	ck_assert_uint_eq((tst_cfg_readw(qt, devfn, msix + PCI_MSIX_FLAGS) &
			   PCI_MSIX_FLAGS_QSIZE) +
				  1,
			  NP_MSIX_VECTORS);
	ck_assert_uint_eq(tst_cfg_readl(qt, devfn, msix + PCI_MSIX_TABLE) & 7,
			  NP_BAR_MSIX);
	ck_assert_uint_eq(tst_cfg_readl(qt, devfn, msix + PCI_MSIX_PBA) & 7,
			  NP_BAR_MSIX);
}
END_TEST

/* Size a 64-bit memory BAR the way firmware does. */
static uint64_t bar64_size(unsigned int devfn, unsigned int bar,
			   uint32_t *flags)
{
	unsigned int off = PCI_BASE_ADDRESS_0 + 4 * bar;
	uint32_t lo, hi;

	tst_cfg_writew(qt, devfn, PCI_COMMAND, 0);
	tst_cfg_writel(qt, devfn, off, 0xffffffff);
	tst_cfg_writel(qt, devfn, off + 4, 0xffffffff);
	lo = tst_cfg_readl(qt, devfn, off);
	hi = tst_cfg_readl(qt, devfn, off + 4);
	*flags = lo & 0xf;
	return ~((uint64_t)hi << 32 | (lo & ~0xfu)) + 1;
}

START_TEST(test_bars)
{
	unsigned int devfn = cards[0].devfn;
	uint32_t flags;

	ck_assert_uint_eq(bar64_size(devfn, NP_BAR_REGS, &flags), NP_REGS_SIZE);
	ck_assert_uint_eq(flags, PCI_BASE_ADDRESS_MEM_TYPE_64);
	ck_assert_uint_eq(bar64_size(devfn, NP_BAR_FB, &flags), NP_FB_SIZE);
	ck_assert_uint_eq(flags, PCI_BASE_ADDRESS_MEM_TYPE_64 |
					 PCI_BASE_ADDRESS_MEM_PREFETCH);
	card_map(&cards[0]);
	ck_assert_uint_eq(rd(&cards[0], NP_REG_ID), NP_ID_VALUE);
	ck_assert_uint_eq(rd(&cards[0], NP_REG_FB_SIZE), NP_FB_SIZE);
}
END_TEST

START_TEST(test_id_version)
{
	uint32_t id = rd(&cards[0], NP_REG_ID);

	ck_assert_uint_eq(id, NP_ID_VALUE);
	ck_assert_uint_eq(NP_ID_GET_MAGIC(id), NP_ID_MAGIC);
	ck_assert_uint_eq(NP_ID_GET_MAJOR(id), NP_ABI_MAJOR);
	ck_assert_uint_ge(NP_ID_GET_MINOR(id), NP_ABI_MINOR);
	ck_assert_uint_eq(rd(&cards[1], NP_REG_ID), NP_ID_VALUE);
	ck_assert_uint_ne(rd(&cards[0], NP_REG_CAPS) & NP_CAPS_P2P, 0);
	ck_assert_uint_ne(rd(&cards[0], NP_REG_CAPS) & NP_CAPS_MAILBOX, 0);
	ck_assert_uint_ne(rd(&cards[0], NP_REG_CAPS) & NP_CAPS_WRITEBACK, 0);
	ck_assert_uint_eq(NP_LINK_GEN(rd(&cards[0], NP_REG_LINK)), 3);
	ck_assert_uint_eq(NP_LINK_WIDTH(rd(&cards[0], NP_REG_LINK)), 8);
}
END_TEST

/* Defaults and properties reach the card's identity registers. */
START_TEST(test_properties)
{
	const struct card *c = &cards[0];
	uint32_t cfg = rd(c, NP_REG_CONFIG), cores = rd(c, NP_REG_CORES);
	uint64_t s0, s1;

	ck_assert_uint_eq(NP_CONFIG_DMA_ENGINES(cfg), 3);
	ck_assert_uint_eq(NP_CONFIG_EVENTS(cfg), NP_NUM_EVENTS);
	ck_assert_uint_eq(rd(c, NP_REG_SRAM_SIZE), 64u << 20);
	ck_assert_uint_eq(rd(c, NP_REG_FB_SIZE), 1u << 20);
	ck_assert_uint_eq(cores & 0xff, NP_CORES_X);
	ck_assert_uint_eq((cores >> 8) & 0xff, NP_CORES_Y);
	ck_assert_uint_eq(cores >> 16, NP_CORE_SRAM_SIZE / 1024);
	s0 = (uint64_t)rd(&cards[0], NP_REG_SERIAL_HI) << 32 |
	     rd(&cards[0], NP_REG_SERIAL_LO);
	s1 = (uint64_t)rd(&cards[1], NP_REG_SERIAL_HI) << 32 |
	     rd(&cards[1], NP_REG_SERIAL_LO);
	ck_assert_uint_eq(s0, 0x1234567890abull);
	ck_assert_uint_eq(s1, 0x1234567890abull);
}
END_TEST

static void setup_props(void)
{
	setup_cards(",dma-engines=3,sram-size=64M,fb-size=1M,serial="
		    "0x1234567890ab");
}

START_TEST(test_default_serials_differ)
{
	uint64_t s0 = (uint64_t)rd(&cards[0], NP_REG_SERIAL_HI) << 32 |
		      rd(&cards[0], NP_REG_SERIAL_LO);
	uint64_t s1 = (uint64_t)rd(&cards[1], NP_REG_SERIAL_HI) << 32 |
		      rd(&cards[1], NP_REG_SERIAL_LO);

	ck_assert_uint_ne(s0, 0);
	ck_assert_uint_ne(s0, s1);
	ck_assert_uint_eq(rd(&cards[0], NP_REG_SRAM_SIZE), NP_SRAM_SIZE);
	ck_assert_uint_eq(NP_CONFIG_DMA_ENGINES(rd(&cards[0], NP_REG_CONFIG)),
			  4);
}
END_TEST

static const char *const bad_props[] = {
	"fb-size=12345",  "fb-size=64M",    "fb-size=32K",   "sram-size=0",
	"sram-size=193M", "sram-size=5000", "dma-engines=0", "dma-engines=9",
};

/* A bad property stops QEMU at startup with a message naming it. */
START_TEST(test_bad_property)
{
	char args[128], err[2048], name[32];
	int status;

	snprintf(args, sizeof(args), "-device np-card,%s", bad_props[_i]);
	status = tst_run_expect_exit(args, err, sizeof(err));
	ck_assert(WIFEXITED(status));
	ck_assert_int_ne(WEXITSTATUS(status), 0);
	snprintf(name, sizeof(name), "%.*s",
		 (int)(strchr(bad_props[_i], '=') - bad_props[_i]),
		 bad_props[_i]);
	ck_assert_msg(strstr(err, name) && strstr(err, "invalid"),
		      "QEMU said \"%s\" for %s", err, bad_props[_i]);
}
END_TEST

/* ---- registers ---- */

static const uint32_t ro_regs[] = {
	NP_REG_ID,	   NP_REG_CAPS,		NP_REG_CONFIG,
	NP_REG_SRAM_SIZE,  NP_REG_FB_SIZE,	NP_REG_CORES,
	NP_REG_FW_VERSION, NP_REG_SERIAL_LO,	NP_REG_SERIAL_HI,
	NP_REG_LINK,	   NP_REG_STATUS,	NP_REG_TEMP_CRIT,
	NP_REG_TEMP_MAX,   NP_REG_DMA_ERRORS,	NP_REG_SRAM_CE,
	NP_REG_SRAM_UE,	   NP_REG_DMA_BYTES_LO, NP_REG_DMA_BYTES_HI,
	NP_REG_DMA_DESCS,  NP_REG_JOBS,		NP_REG_THROTTLE_COUNT,
};

START_TEST(test_ro_registers)
{
	const struct card *c = &cards[0];
	unsigned int i;

	for (i = 0; i < sizeof(ro_regs) / sizeof(ro_regs[0]); i++) {
		uint32_t before = rd(c, ro_regs[i]);

		wr(c, ro_regs[i], ~before);
		ck_assert_msg(rd(c, ro_regs[i]) == before,
			      "RO register 0x%03x changed by a write",
			      ro_regs[i]);
	}
	ck_assert_uint_eq(rd(c, NP_REG_CONTROL), 0);
	ck_assert_uint_eq(rd(c, NP_DMA_BASE(0) + NP_Q_HEAD), 0);
	qwr(c, 0, NP_Q_HEAD, 5);
	ck_assert_uint_eq(qrd(c, 0, NP_Q_HEAD), 0);
}
END_TEST

START_TEST(test_telemetry)
{
	const struct card *c = &cards[0];
	uint32_t crit = rd(c, NP_REG_TEMP_CRIT), max = rd(c, NP_REG_TEMP_MAX);
	uint32_t temp = rd(c, NP_REG_TEMP);

	ck_assert_uint_gt(crit, max);
	ck_assert_uint_gt(temp, 0);
	ck_assert_uint_lt(temp, crit);
	ck_assert_uint_gt(rd(c, NP_REG_POWER), 0);
	ck_assert_uint_gt(rd(c, NP_REG_VOLTAGE), 0);
	ck_assert_uint_gt(rd(c, NP_REG_CORE_CLK), 0);
	ck_assert_uint_le(rd(c, NP_REG_BUSY), 100);
}
END_TEST

START_TEST(test_scratch)
{
	static const uint32_t pat[] = {0,	   0xffffffff, 0xa5a5a5a5,
				       0x5a5a5a5a, 0x12345678, 1,
				       0x80000000};
	unsigned int i;

	for (i = 0; i < sizeof(pat) / sizeof(pat[0]); i++) {
		wr(&cards[0], NP_REG_SCRATCH, pat[i]);
		ck_assert_uint_eq(rd(&cards[0], NP_REG_SCRATCH), pat[i]);
	}
	/* Cards are independent. */
	wr(&cards[1], NP_REG_SCRATCH, 0xc0ffee);
	ck_assert_uint_eq(rd(&cards[0], NP_REG_SCRATCH), pat[i - 1]);
	ck_assert_uint_eq(rd(&cards[1], NP_REG_SCRATCH), 0xc0ffee);
}
END_TEST

START_TEST(test_int_enable_and_status)
{
	const struct card *c = &cards[0];
	struct ring r;
	struct np_dma_desc d;

	wr(c, NP_REG_INT_ENABLE, 1u << NP_IRQ_DMA(0) | 1u << NP_IRQ_MAILBOX);
	ck_assert_uint_eq(rd(c, NP_REG_INT_ENABLE),
			  1u << NP_IRQ_DMA(0) | 1u << NP_IRQ_MAILBOX);
	wr(c, NP_REG_INT_ENABLE, 0);
	ck_assert_uint_eq(rd(c, NP_REG_INT_ENABLE), 0);

	/* A completed F_IRQ descriptor sets its engine's status bit. */
	ring_init(c, 0, &r);
	d = desc_make(NP_DMA_OP_NOP, NP_DESC_F_IRQ, 0, 0, 0);
	ring_push(c, &r, &d);
	ring_wait(c, &r, 1);
	wait_reg(c, NP_REG_INT_STATUS, 1u << NP_IRQ_DMA(0),
		 1u << NP_IRQ_DMA(0));
	/* RW1C: writing 0 keeps it, writing 1 clears it. */
	wr(c, NP_REG_INT_STATUS, 0);
	ck_assert_uint_ne(rd(c, NP_REG_INT_STATUS) & (1u << NP_IRQ_DMA(0)), 0);
	wr(c, NP_REG_INT_STATUS, 1u << NP_IRQ_DMA(0));
	ck_assert_uint_eq(rd(c, NP_REG_INT_STATUS) & (1u << NP_IRQ_DMA(0)), 0);
}
END_TEST

START_TEST(test_mailbox_events)
{
	const struct card *c = &cards[0];

	/* EVENT_PEND records signals of the events selected in EVENT_IRQ. */
	wr(c, NP_REG_EVENT_IRQ_LO, 1u << 5);
	wr(c, NP_REG_EVENT_IRQ_HI, 1u << 31);
	ck_assert_uint_eq(rd(c, NP_REG_EVENT_IRQ_LO), 1u << 5);
	ck_assert_uint_eq(rd(c, NP_REG_EVENT_IRQ_HI), 1u << 31);

	ck_assert_uint_eq(rd(c, NP_MBOX_EVENT(5)), 0);
	wr(c, NP_MBOX_EVENT(5), 3);
	wr(c, NP_MBOX_EVENT(5), 4);
	ck_assert_uint_eq(rd(c, NP_MBOX_EVENT(5)), 7);
	wr(c, NP_MBOX_EVENT(63), 0xffffffff);
	wr(c, NP_MBOX_EVENT(63), 2);
	ck_assert_uint_eq(rd(c, NP_MBOX_EVENT(63)), 1); /* mod 2^32 */

	ck_assert_uint_eq(rd(c, NP_REG_EVENT_PEND_LO) & (1u << 5), 1u << 5);
	ck_assert_uint_eq(rd(c, NP_REG_EVENT_PEND_HI) & (1u << 31), 1u << 31);
	/* RW1C: 0 keeps, 1 clears, one half at a time. */
	wr(c, NP_REG_EVENT_PEND_LO, 0);
	ck_assert_uint_eq(rd(c, NP_REG_EVENT_PEND_LO) & (1u << 5), 1u << 5);
	wr(c, NP_REG_EVENT_PEND_LO, 1u << 5);
	ck_assert_uint_eq(rd(c, NP_REG_EVENT_PEND_LO) & (1u << 5), 0);
	ck_assert_uint_ne(rd(c, NP_REG_EVENT_PEND_HI) & (1u << 31), 0);
	wr(c, NP_REG_EVENT_PEND_HI, 1u << 31);
	ck_assert_uint_eq(rd(c, NP_REG_EVENT_PEND_HI) & (1u << 31), 0);
	/* Reading the counter does not consume it. */
	ck_assert_uint_eq(rd(c, NP_MBOX_EVENT(5)), 7);
	/* Other cards keep their own counters. */
	ck_assert_uint_eq(rd(&cards[1], NP_MBOX_EVENT(5)), 0);
}
END_TEST

START_TEST(test_queue_registers)
{
	const struct card *c = &cards[0];
	unsigned int e;

	for (e = 0; e < NP_CONFIG_DMA_ENGINES(rd(c, NP_REG_CONFIG)); e++) {
		qwr(c, e, NP_Q_RING_LO, 0x12340040);
		qwr(c, e, NP_Q_RING_HI, 0x1);
		qwr(c, e, NP_Q_RING_SIZE, 256);
		qwr(c, e, NP_Q_WB_LO, 0x5000 + e * NP_WB_ALIGN);
		qwr(c, e, NP_Q_WB_HI, 0);
		qwr(c, e, NP_Q_WAIT_TIMEOUT, 1000 + e);
		ck_assert_uint_eq(qrd(c, e, NP_Q_RING_LO), 0x12340040);
		ck_assert_uint_eq(qrd(c, e, NP_Q_RING_HI), 0x1);
		ck_assert_uint_eq(qrd(c, e, NP_Q_RING_SIZE), 256);
		ck_assert_uint_eq(qrd(c, e, NP_Q_WB_LO),
				  0x5000 + e * NP_WB_ALIGN);
		ck_assert_uint_eq(qrd(c, e, NP_Q_WAIT_TIMEOUT), 1000 + e);
		ck_assert_uint_eq(qrd(c, e, NP_Q_STATUS) & NP_Q_STATUS_ENABLED,
				  0);
		ck_assert_uint_eq(qrd(c, e, NP_Q_COMPLETED), 0);
	}
	/* The compute queue has the same block layout. */
	wr(c, NP_COMPUTE_BASE + NP_Q_RING_SIZE, 128);
	ck_assert_uint_eq(rd(c, NP_COMPUTE_BASE + NP_Q_RING_SIZE), 128);
}
END_TEST

/* Non-32-bit and unaligned BAR0 accesses are ignored, never fatal. */
START_TEST(test_bad_access_sizes)
{
	const struct card *c = &cards[0];

	wr(c, NP_REG_SCRATCH, 0x11223344);
	ck_assert_uint_eq(tst_readb(qt, c->regs + NP_REG_SCRATCH), 0);
	ck_assert_uint_eq(tst_readw(qt, c->regs + NP_REG_SCRATCH), 0);
	ck_assert_uint_eq(tst_readq(qt, c->regs + NP_REG_SCRATCH), 0);
	ck_assert_uint_eq(tst_readl(qt, c->regs + NP_REG_SCRATCH + 1), 0);
	tst_writeb(qt, c->regs + NP_REG_SCRATCH, 0xff);
	tst_writew(qt, c->regs + NP_REG_SCRATCH, 0xffff);
	tst_writeq(qt, c->regs + NP_REG_SCRATCH, ~0ull);
	tst_writel(qt, c->regs + NP_REG_SCRATCH + 2, 0xffffffff);
	ck_assert_uint_eq(rd(c, NP_REG_SCRATCH), 0x11223344);
	/* Holes read as 0. */
	ck_assert_uint_eq(rd(c, 0x3000), 0);
	ck_assert_uint_eq(rd(c, NP_REGS_SIZE - 4), 0);
	ck_assert(tst_alive(qt));
}
END_TEST

/* ---- DMA ---- */

/* A 64-bit counter: _LO first, it latches _HI. */
static uint64_t rd64(const struct card *c, uint32_t lo_off, uint32_t hi_off)
{
	uint32_t lo = rd(c, lo_off);

	return (uint64_t)rd(c, hi_off) << 32 | lo;
}

START_TEST(test_dma_round_trip)
{
	const struct card *c = &cards[0];
	const uint64_t moved = 2 * (65536 + 12345 + 4096);
	uint32_t descs = rd(c, NP_REG_DMA_DESCS);
	uint64_t bytes = rd64(c, NP_REG_DMA_BYTES_LO, NP_REG_DMA_BYTES_HI);
	struct ring r;

	ring_init(c, 1, &r);
	/* Into SRAM of core (3, 7), into the frame buffer, odd length. */
	dma_round_trip(c, &r, NP_CA_SRAM_BASE + NP_CORE_SRAM_OFFSET(3, 7),
		       65536, 1);
	dma_round_trip(c, &r, NP_CA_FB_BASE + 4096, 12345, 2);
	dma_round_trip(c, &r, NP_CA_SRAM_BASE + NP_SRAM_SIZE - 4096, 4096, 3);
	ck_assert_uint_eq(qrd(c, 1, NP_Q_COMPLETED), 6);
	ck_assert_uint_eq(qrd(c, 1, NP_Q_HEAD), 6);
	ck_assert_uint_eq(rd(c, NP_REG_DMA_DESCS) - descs, 6);
	ck_assert_uint_eq(rd64(c, NP_DMA_BASE(1) + NP_Q_BYTES_LO,
			       NP_DMA_BASE(1) + NP_Q_BYTES_HI),
			  moved);
	ck_assert_uint_eq(rd64(c, NP_REG_DMA_BYTES_LO, NP_REG_DMA_BYTES_HI) -
				  bytes,
			  moved);
}
END_TEST

/* The frame buffer is BAR2: what DMA put there is visible through it. */
START_TEST(test_fb_bar)
{
	const struct card *c = &cards[0];
	uint8_t in[8192], out[8192];
	uint64_t src = guest_alloc(sizeof(in), 4096);
	struct np_dma_desc d;
	struct ring r;

	fill_pattern(in, sizeof(in), 9);
	tst_memwrite(qt, src, in, sizeof(in));
	ring_init(c, 0, &r);
	d = desc_make(NP_DMA_OP_H2C, 0, sizeof(in), src,
		      NP_CA_FB_BASE + 0x10000);
	ring_push(c, &r, &d);
	ring_wait(c, &r, 1);
	tst_memread(qt, c->fb + 0x10000, out, sizeof(out));
	ck_assert_mem_eq(out, in, sizeof(in));

	/* And the other way: host writes to BAR2, the card reads them. */
	fill_pattern(in, sizeof(in), 10);
	tst_memwrite(qt, c->fb + 0x20000, in, sizeof(in));
	d = desc_make(NP_DMA_OP_C2H, 0, sizeof(in), NP_CA_FB_BASE + 0x20000,
		      src);
	ring_push(c, &r, &d);
	ring_wait(c, &r, 2);
	tst_memread(qt, src, out, sizeof(out));
	ck_assert_mem_eq(out, in, sizeof(in));
}
END_TEST

START_TEST(test_dma_writeback)
{
	const struct card *c = &cards[0];
	uint64_t wb = guest_alloc(sizeof(struct np_queue_wb), NP_WB_ALIGN);
	struct np_queue_wb rec;
	struct np_dma_desc d;
	struct ring r;

	tst_memset(qt, wb, 0xff, sizeof(rec));
	qwr(c, 2, NP_Q_CTRL, NP_Q_CTRL_RESET);
	qwr(c, 2, NP_Q_WB_LO, (uint32_t)wb);
	qwr(c, 2, NP_Q_WB_HI, (uint32_t)(wb >> 32));
	r.engine = 2;
	r.entries = RING_ENTRIES;
	r.tail = 0;
	r.base = guest_alloc(RING_ENTRIES * sizeof(d), NP_RING_ALIGN);
	qwr(c, 2, NP_Q_RING_LO, (uint32_t)r.base);
	qwr(c, 2, NP_Q_RING_HI, (uint32_t)(r.base >> 32));
	qwr(c, 2, NP_Q_RING_SIZE, RING_ENTRIES);
	qwr(c, 2, NP_Q_CTRL, NP_Q_CTRL_ENABLE);

	d = desc_make(NP_DMA_OP_NOP, 0, 0, 0, 0);
	d.user = htole64(0x1122334455667788ull);
	ring_push(c, &r, &d);
	ring_wait(c, &r, 1);
	tst_memread(qt, wb, &rec, sizeof(rec));
	ck_assert_uint_eq(le32toh(rec.head), 1);
	ck_assert_uint_eq(le32toh(rec.completed), 1);
	ck_assert_uint_eq(le32toh(rec.error), NP_ERR_NONE);
	ck_assert_uint_eq(le64toh(rec.user), 0x1122334455667788ull);
}
END_TEST

START_TEST(test_dma_errors)
{
	const struct card *c = &cards[0];
	uint64_t buf = guest_alloc(4096, 4096);
	struct np_dma_desc d;
	struct ring r;

	ring_init(c, 0, &r);
	d = desc_make(NP_DMA_OP_MAX + 1, 0, 64, buf, 0);
	ring_push(c, &r, &d);
	ck_assert_uint_eq(ring_wait_error(c, &r), NP_ERR_BAD_OPCODE);
	ck_assert_uint_eq(qrd(c, 0, NP_Q_ERR_INDEX), 0);
	ck_assert_uint_ge(rd(c, NP_REG_DMA_ERRORS), 1);

	/* Queue reset clears the error; a card range error is next. */
	ring_init(c, 0, &r);
	d = desc_make(NP_DMA_OP_H2C, 0, 8192, buf,
		      NP_CA_SRAM_BASE + NP_SRAM_SIZE - 4096);
	ring_push(c, &r, &d);
	ck_assert_uint_eq(ring_wait_error(c, &r), NP_ERR_DST_RANGE);

	/* Reading host memory that does not exist is refused by the bus. */
	ring_init(c, 0, &r);
	d = desc_make(NP_DMA_OP_H2C, 0, 4096, 0xfd00000000ull, NP_CA_FB_BASE);
	ring_push(c, &r, &d);
	ck_assert_uint_eq(ring_wait_error(c, &r), NP_ERR_BUS_READ);
	ck_assert_uint_eq((uint64_t)qrd(c, 0, NP_Q_ERR_ADDR_HI) << 32 |
				  qrd(c, 0, NP_Q_ERR_ADDR_LO),
			  0xfd00000000ull);
	ck_assert(tst_alive(qt));
}
END_TEST

/* Without bus mastering the card cannot reach host memory. */
START_TEST(test_dma_needs_bus_master)
{
	const struct card *c = &cards[0];
	struct np_dma_desc d;
	struct ring r;
	uint64_t buf = guest_alloc(4096, 4096);

	ring_init(c, 0, &r);
	tst_cfg_writew(qt, c->devfn, PCI_COMMAND, PCI_COMMAND_MEMORY);
	d = desc_make(NP_DMA_OP_H2C, 0, 4096, buf, NP_CA_FB_BASE);
	ring_push(c, &r, &d);
	ck_assert_uint_eq(ring_wait_error(c, &r), NP_ERR_RING_FETCH);

	tst_cfg_writew(qt, c->devfn, PCI_COMMAND,
		       PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	ring_init(c, 0, &r);
	dma_round_trip(c, &r, NP_CA_FB_BASE, 4096, 4);
}
END_TEST

/*
 * Card to card: card 0 pushes a tensor from its SRAM straight into card
 * 1's frame buffer (BAR2 bus address) and then rings card 1's mailbox
 * (F_NOTIFY to its BAR0 event page). Card 1 reads the data back to host.
 */
START_TEST(test_card_to_card)
{
	const struct card *a = &cards[0], *b = &cards[1];
	const size_t len = 256 * 1024;
	uint64_t src = guest_alloc(len, 4096), dst = guest_alloc(len, 4096);
	uint8_t *in = malloc(len), *out = malloc(len);
	uint64_t sram = NP_CA_SRAM_BASE + NP_CORE_SRAM_OFFSET(15, 15);
	struct np_dma_desc d;
	struct ring ra, rb;

	ck_assert_ptr_nonnull(in);
	ck_assert_ptr_nonnull(out);
	fill_pattern(in, len, 77);
	tst_memwrite(qt, src, in, len);
	ring_init(a, 0, &ra);
	ring_init(b, 3, &rb);
	wr(b, NP_REG_EVENT_IRQ_LO, 1u << 12);

	d = desc_make(NP_DMA_OP_H2C, 0, (uint32_t)len, src, sram);
	ring_push(a, &ra, &d);
	d = desc_make(NP_DMA_OP_C2P, NP_DESC_F_NOTIFY, (uint32_t)len, sram,
		      b->fb + 0x100000);
	d.notify_addr = htole64(b->regs + NP_MBOX_EVENT(12));
	d.notify_data = htole32(1);
	ring_push(a, &ra, &d);
	ring_wait(a, &ra, 2);
	ck_assert_uint_eq(rd(b, NP_MBOX_EVENT(12)), 1);
	ck_assert_uint_ne(rd(b, NP_REG_EVENT_PEND_LO) & (1u << 12), 0);
	ck_assert_uint_eq(rd(a, NP_MBOX_EVENT(12)), 0);

	/* Card 1 waits for the event, then copies its frame buffer out. */
	d = desc_make(NP_DMA_OP_C2H, NP_DESC_F_WAIT, (uint32_t)len,
		      NP_CA_FB_BASE + 0x100000, dst);
	d.wait_event = 12;
	d.wait_value = htole32(1);
	ring_push(b, &rb, &d);
	ring_wait(b, &rb, 1);
	tst_memread(qt, dst, out, len);
	ck_assert_mem_eq(out, in, len);
	/* Also visible to the host straight through card 1's BAR2. */
	tst_memread(qt, b->fb + 0x100000, out, 4096);
	ck_assert_mem_eq(out, in, 4096);
	free(in);
	free(out);
}
END_TEST

/* The queue statistics count a blocked fence wait and the service of a
 * transfer, in the device as in the core (docs/hardware.md). */
START_TEST(test_queue_statistics)
{
	const struct card *c = &cards[0];
	uint64_t src = guest_alloc(4096, 4096);
	struct np_dma_desc d;
	struct ring r;
	uint64_t ns;

	ring_init(c, 2, &r);
	ck_assert_uint_eq(qrd(c, 2, NP_Q_FENCE_WAITS), 0);
	d = desc_make(NP_DMA_OP_FENCE, NP_DESC_F_WAIT, 0, 0, 0);
	d.wait_event = 30;
	d.wait_value = htole32(rd(c, NP_MBOX_EVENT(30)) + 1);
	ring_push(c, &r, &d);
	d = desc_make(NP_DMA_OP_H2C, 0, 4096, src, NP_CA_FB_BASE);
	ring_push(c, &r, &d);
	wait_reg(c, NP_DMA_BASE(2) + NP_Q_STATUS, NP_Q_STATUS_WAITING,
		 NP_Q_STATUS_WAITING);
	wr(c, NP_MBOX_EVENT(30), 1);
	ring_wait(c, &r, 2);

	ck_assert_uint_eq(qrd(c, 2, NP_Q_FENCE_WAITS), 1);
	ns = qrd(c, 2, NP_Q_FENCE_NS_LO); /* _LO first: latches _HI */
	ns |= (uint64_t)qrd(c, 2, NP_Q_FENCE_NS_HI) << 32;
	ck_assert_uint_gt(ns, 0);
	ck_assert_uint_eq(qrd(c, 2, NP_Q_WORK_WAITS), 0);
	ck_assert_uint_eq(qrd(c, 2, NP_Q_WORK_DONE), 1);
	ns = qrd(c, 2, NP_Q_WORK_NS_LO);
	ns |= (uint64_t)qrd(c, 2, NP_Q_WORK_NS_HI) << 32;
	ck_assert_uint_gt(ns, 0);
	ck_assert_uint_eq(qrd(c, 2, NP_Q_WORK_MAX_NS), ns);
	qwr(c, 2, NP_Q_CTRL, NP_Q_CTRL_RESET);
	ck_assert_uint_eq(qrd(c, 2, NP_Q_FENCE_WAITS), 0);
	ck_assert_uint_eq(qrd(c, 2, NP_Q_WORK_DONE), 0);
	ck_assert_uint_eq(qrd(c, 2, NP_Q_WORK_MAX_NS), 0);
}
END_TEST

/* ---- MSI-X ---- */

START_TEST(test_msix_dma_completion)
{
	const struct card *c = &cards[0];
	uint64_t msg = guest_alloc(64, 64);
	struct np_dma_desc d;
	struct ring r;

	tst_memset(qt, msg, 0, 64);
	msix_enable(c);
	msix_route(c, NP_IRQ_DMA(1), msg, 0xabcd0001, 0);
	wr(c, NP_REG_INT_ENABLE, 1u << NP_IRQ_DMA(1));
	ring_init(c, 1, &r);
	d = desc_make(NP_DMA_OP_NOP, NP_DESC_F_IRQ, 0, 0, 0);
	ring_push(c, &r, &d);
	ring_wait(c, &r, 1);
	wait_guest_u32(msg, 0xabcd0001, "MSI-X message of NP_IRQ_DMA(1)");

	/* Masked: the vector becomes pending, unmasking delivers it. */
	tst_writel(qt, msg, 0);
	msix_route(c, NP_IRQ_DMA(1), msg, 0xabcd0002, 1);
	d = desc_make(NP_DMA_OP_NOP, NP_DESC_F_IRQ, 0, 0, 0);
	ring_push(c, &r, &d);
	ring_wait(c, &r, 2);
	wait_pending(c, NP_IRQ_DMA(1));
	ck_assert_uint_eq(tst_readl(qt, msg), 0);
	tst_writel(qt,
		   msix_entry(c, NP_IRQ_DMA(1)) + PCI_MSIX_ENTRY_VECTOR_CTRL,
		   0);
	wait_guest_u32(msg, 0xabcd0002, "MSI-X message after unmask");
	ck_assert_int_eq(msix_pending(c, NP_IRQ_DMA(1)), 0);
}
END_TEST

/* A mailbox write to an event with EVENT_IRQ set raises NP_IRQ_MAILBOX. */
START_TEST(test_msix_mailbox)
{
	const struct card *c = &cards[1];
	uint64_t msg = guest_alloc(64, 64);

	tst_memset(qt, msg, 0, 64);
	msix_enable(c);
	msix_route(c, NP_IRQ_MAILBOX, msg, 0x3a11b0c5, 0);
	wr(c, NP_REG_INT_ENABLE, 1u << NP_IRQ_MAILBOX);
	wr(c, NP_REG_EVENT_IRQ_LO, 1u << 9);
	wr(c, NP_MBOX_EVENT(8), 1); /* no EVENT_IRQ bit: no message */
	wr(c, NP_MBOX_EVENT(9), 1);
	wait_guest_u32(msg, 0x3a11b0c5, "MSI-X message of NP_IRQ_MAILBOX");
	ck_assert_uint_ne(rd(c, NP_REG_INT_STATUS) & (1u << NP_IRQ_MAILBOX), 0);
	ck_assert_uint_eq(rd(c, NP_REG_EVENT_PEND_LO), 1u << 9);
}
END_TEST

/* ---- fault injection ---- */

static void inject(const char *dev, const char *fault)
{
	const char *reply = tst_qmp(
		qt,
		"{\"execute\": \"qom-set\", \"arguments\": {\"path\": "
		"\"/machine/peripheral/%s\", \"property\": \"inject-fault\", "
		"\"value\": \"%s\"}}",
		dev, fault);

	ck_assert_msg(strstr(reply, "\"return\""), "inject %s into %s: %s",
		      fault, dev, reply);
}

START_TEST(test_fault_injection)
{
	const struct card *c = &cards[0];
	uint64_t msg = guest_alloc(64, 64);
	const char *reply;

	tst_memset(qt, msg, 0, 64);
	msix_enable(c);
	msix_route(c, NP_IRQ_ERROR, msg, 0xe5505001, 0);
	wr(c, NP_REG_INT_ENABLE, 1u << NP_IRQ_ERROR);

	/* Corrected: counted, nothing else. */
	inject("np0", "sram-ce");
	ck_assert_uint_eq(rd(c, NP_REG_SRAM_CE), 1);
	ck_assert_uint_eq(rd(c, NP_REG_STATUS) & NP_STATUS_FATAL, 0);

	/* Uncorrected: FATAL until cleared, and NP_IRQ_ERROR. */
	inject("np0", "sram-ue");
	ck_assert_uint_eq(rd(c, NP_REG_SRAM_UE), 1);
	ck_assert_uint_ne(rd(c, NP_REG_STATUS) & NP_STATUS_FATAL, 0);
	wait_guest_u32(msg, 0xe5505001, "MSI-X message of NP_IRQ_ERROR");
	wr(c, NP_REG_CONTROL, NP_CONTROL_CLEAR_FATAL);
	ck_assert_uint_eq(rd(c, NP_REG_STATUS) & NP_STATUS_FATAL, 0);
	ck_assert_uint_eq(rd(c, NP_REG_SRAM_UE), 1);

	/* Overheat: a throttle episode, signalled the same way. */
	tst_writel(qt, msg, 0);
	wr(c, NP_REG_INT_STATUS, 1u << NP_IRQ_ERROR);
	inject("np0", "overheat");
	ck_assert_uint_eq(rd(c, NP_REG_THROTTLE_COUNT), 1);
	wait_guest_u32(msg, 0xe5505001, "MSI-X message after overheat");

	/* Only the card named was hit. */
	ck_assert_uint_eq(rd(&cards[1], NP_REG_SRAM_CE), 0);
	ck_assert_uint_eq(rd(&cards[1], NP_REG_SRAM_UE), 0);

	/* Unknown faults are refused with a message naming the choices. */
	reply = tst_qmp(qt, "{\"execute\": \"qom-set\", \"arguments\": "
			    "{\"path\": \"/machine/peripheral/np1\", "
			    "\"property\": \"inject-fault\", "
			    "\"value\": \"meltdown\"}}");
	ck_assert_ptr_nonnull(strstr(reply, "\"error\""));
	ck_assert_ptr_nonnull(strstr(reply, "sram-ue"));
	ck_assert(tst_alive(qt));
}
END_TEST

/* ---- reset ---- */

/* Queue enough copying to keep engine 0 busy, return its ring. */
static void start_long_transfer(const struct card *c, struct ring *r)
{
	unsigned int i;

	ring_init(c, 0, r);
	for (i = 0; i < 16; i++) {
		struct np_dma_desc d = desc_make(
			NP_DMA_OP_COPY, 0, NP_DMA_MAX_LEN,
			NP_CA_SRAM_BASE + (i % 4) * (uint64_t)NP_DMA_MAX_LEN,
			NP_CA_SRAM_BASE +
				(4 + i % 4) * (uint64_t)NP_DMA_MAX_LEN);

		tst_memwrite(qt, r->base + (uint64_t)i * sizeof(d), &d,
			     sizeof(d));
	}
	r->tail = 16;
	qwr(c, 0, NP_Q_TAIL, r->tail);
	wr(c, NP_REG_SCRATCH, 0xdeadbeef);
	wr(c, NP_MBOX_EVENT(1), 5);
}

static void check_after_reset(const struct card *c)
{
	struct ring r;

	ck_assert_uint_eq(qrd(c, 0, NP_Q_STATUS) & NP_Q_STATUS_ENABLED, 0);
	ck_assert_uint_eq(qrd(c, 0, NP_Q_HEAD), 0);
	ck_assert_uint_eq(qrd(c, 0, NP_Q_TAIL), 0);
	ck_assert_uint_eq(qrd(c, 0, NP_Q_COMPLETED), 0);
	ck_assert_uint_eq(rd(c, NP_REG_SCRATCH), 0);
	ck_assert_uint_eq(rd(c, NP_MBOX_EVENT(1)), 0);
	ring_init(c, 0, &r);
	dma_round_trip(c, &r, NP_CA_SRAM_BASE + 8192, 16384, 5);
}

/* Deterministic faults: they strike where qom-set names them. */
START_TEST(test_fault_injection_deterministic)
{
	const struct card *c = &cards[0];
	struct np_dma_desc nop = desc_make(NP_DMA_OP_NOP, 0, 0, 0, 0);
	uint64_t buf = guest_alloc(4096, 4096);
	struct np_dma_desc d;
	struct ring r;
	const char *reply;

	/* A bus error on engine 0's second descriptor from now on. */
	ring_init(c, 0, &r);
	inject("np0", "dma-error:engine=0,n=2");
	ring_push(c, &r, &nop);
	d = desc_make(NP_DMA_OP_H2C, 0, 4096, buf, NP_CA_SRAM_BASE);
	ring_push(c, &r, &d);
	ck_assert_uint_eq(ring_wait_error(c, &r), NP_ERR_BUS_READ);
	ck_assert_uint_eq(qrd(c, 0, NP_Q_COMPLETED), 1);
	ck_assert_uint_eq(qrd(c, 0, NP_Q_ERR_INDEX), 1);

	/* Engine 1 hangs at its next descriptor; a queue reset ends it. */
	ring_init(c, 1, &r);
	inject("np0", "hang:engine=1,n=1");
	ring_push(c, &r, &nop);
	wait_reg(c, NP_DMA_BASE(1) + NP_Q_STATUS, NP_Q_STATUS_BUSY,
		 NP_Q_STATUS_BUSY);
	sleep_ms(20);
	ck_assert_uint_eq(qrd(c, 1, NP_Q_COMPLETED), 0);
	ring_init(c, 1, &r);
	dma_round_trip(c, &r, NP_CA_SRAM_BASE + 65536, 4096, 3);

	/* Two flipped bits in a word that was written: its read fails. */
	ring_init(c, 0, &r);
	dma_round_trip(c, &r, NP_CA_SRAM_BASE, 4096, 4);
	inject("np0", "sram-flip:addr=0x100,bits=2");
	d = desc_make(NP_DMA_OP_C2H, 0, 4096, NP_CA_SRAM_BASE, buf);
	ring_push(c, &r, &d);
	ck_assert_uint_eq(ring_wait_error(c, &r), NP_ERR_SRAM_UE);
	ck_assert_uint_eq(rd(c, NP_REG_SRAM_UE), 1);
	ck_assert_uint_ne(rd(c, NP_REG_STATUS) & NP_STATUS_FATAL, 0);

	/* A dead card reads all-ones until FLR. */
	inject("np0", "dead");
	ck_assert_uint_eq(rd(c, NP_REG_ID), 0xffffffffu);
	wr(c, NP_REG_CONTROL, NP_CONTROL_RESET);
	ck_assert_uint_eq(rd(c, NP_REG_STATUS), 0xffffffffu);
	pcie_flr(c);
	card_map(c);
	card_wait_ready(c);
	ck_assert_uint_eq(rd(c, NP_REG_ID), NP_ID_VALUE);
	ck_assert_uint_eq(rd(c, NP_REG_SRAM_UE), 0);
	check_after_reset(c);

	/* An engine the card does not have is refused, naming the limit. */
	reply = tst_qmp(qt, "{\"execute\": \"qom-set\", \"arguments\": "
			    "{\"path\": \"/machine/peripheral/np1\", "
			    "\"property\": \"inject-fault\", "
			    "\"value\": \"dma-error:engine=6,n=1\"}}");
	ck_assert_ptr_nonnull(strstr(reply, "\"error\""));
	ck_assert_ptr_nonnull(strstr(reply, "dma-engines"));
	ck_assert(tst_alive(qt));
}
END_TEST

START_TEST(test_reset_control_mid_transfer)
{
	const struct card *c = &cards[0];
	struct ring r;

	start_long_transfer(c, &r);
	wr(c, NP_REG_CONTROL, NP_CONTROL_RESET);
	card_wait_ready(c);
	check_after_reset(c);
	/* The peer card was not touched. */
	ck_assert_uint_eq(rd(&cards[1], NP_REG_ID), NP_ID_VALUE);
}
END_TEST

START_TEST(test_flr_mid_transfer)
{
	const struct card *c = &cards[0];
	struct ring r;

	start_long_transfer(c, &r);
	pcie_flr(c);
	/* FLR clears the command register and the BARs, as on hardware. */
	ck_assert_uint_eq(tst_cfg_readw(qt, c->devfn, PCI_COMMAND) &
				  (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER),
			  0);
	card_map(c);
	card_wait_ready(c);
	check_after_reset(c);
}
END_TEST

/* ---- hot unplug ---- */

#define RP_DEVFN (6u << 3)
#define RP_BUS 1u

/* Bridge memory base/limit register pair for [base, base + size). */
static uint32_t bridge_window(uint64_t base, uint64_t size)
{
	return (uint32_t)((base + size - 1) & 0xfff00000u) |
	       (uint32_t)(base >> 16 & 0xfff0u);
}

/*
 * A card behind a PCIe root port is unplugged while engine 0 copies and
 * engine 1 waits for an event that never comes: powering the slot off
 * (what a guest does after an attention button press) unrealizes the
 * device at once. QEMU must stay up, and a card elsewhere must keep working.
 */
START_TEST(test_unplug_mid_transfer)
{
	struct card c = {.idx = 2,
			 .devfn = RP_BUS << 8,
			 .regs = CARD_REGS(2),
			 .fb = CARD_FB(2),
			 .msix = CARD_MSIX(2)};
	unsigned int exp;
	struct np_dma_desc d;
	struct ring r0, r1, rp;
	unsigned int i;
	uint16_t ctl;

	tst_stop(qt);
	/* Native PCIe hotplug on the root port instead of ACPI's. */
	qt = tst_start("-global ICH9-LPC.acpi-pci-hotplug-with-bridge-"
		       "support=off -device np-card,addr=04.0 "
		       "-device pcie-root-port,id=rp,chassis=1,slot=1,"
		       "addr=06.0 -device np-card,bus=rp,addr=00.0");
	/* Bus 1 behind the port; its memory window covers card 2's BARs. */
	tst_cfg_writel(qt, RP_DEVFN, PCI_PRIMARY_BUS,
		       RP_BUS << 16 | RP_BUS << 8);
	tst_cfg_writel(qt, RP_DEVFN, PCI_MEMORY_BASE,
		       bridge_window(CARD_REGS(2), 0x100000));
	tst_cfg_writel(qt, RP_DEVFN, PCI_PREF_MEMORY_BASE,
		       bridge_window(CARD_FB(2), NP_FB_SIZE));
	tst_cfg_writew(qt, RP_DEVFN, PCI_COMMAND,
		       PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	ck_assert_uint_eq(tst_cfg_readw(qt, c.devfn, PCI_VENDOR_ID),
			  NP_PCI_VENDOR_ID);
	card_map(&c);
	card_wait_ready(&c);
	ck_assert_uint_eq(rd(&c, NP_REG_ID), NP_ID_VALUE);

	/* Card 0 streams into card 2's frame buffer and rings its mailbox. */
	cards[0] = (struct card){.idx = 0,
				 .devfn = CARD_DEVFN(0),
				 .regs = CARD_REGS(0),
				 .fb = CARD_FB(0),
				 .msix = CARD_MSIX(0)};
	card_map(&cards[0]);
	card_wait_ready(&cards[0]);
	ring_init(&cards[0], 0, &rp);
	for (i = 0; i < 32; i++) {
		d = desc_make(NP_DMA_OP_C2P, NP_DESC_F_NOTIFY, 1 << 20,
			      NP_CA_SRAM_BASE, c.fb + (i % 16) * (1 << 20));
		d.notify_addr = htole64(c.regs + NP_MBOX_EVENT(2));
		d.notify_data = htole32(1);
		tst_memwrite(qt, rp.base + i * sizeof(d), &d, sizeof(d));
	}

	start_long_transfer(&c, &r0);
	rp.tail = 32;
	qwr(&cards[0], 0, NP_Q_TAIL, rp.tail);
	ring_init(&c, 1, &r1);
	d = desc_make(NP_DMA_OP_FENCE, NP_DESC_F_WAIT, 0, 0, 0);
	d.wait_event = 3;
	d.wait_value = htole32(1);
	ring_push(&c, &r1, &d);
	wait_reg(&c, NP_DMA_BASE(1) + NP_Q_STATUS, NP_Q_STATUS_WAITING,
		 NP_Q_STATUS_WAITING);

	exp = tst_cfg_find_cap(qt, RP_DEVFN, PCI_CAP_ID_EXP);
	ck_assert_uint_ne(exp, 0);
	ck_assert_uint_ne(tst_cfg_readw(qt, RP_DEVFN, exp + PCI_EXP_SLTSTA) &
				  PCI_EXP_SLTSTA_PDS,
			  0);
	ctl = tst_cfg_readw(qt, RP_DEVFN, exp + PCI_EXP_SLTCTL);
	tst_cfg_writew(qt, RP_DEVFN, exp + PCI_EXP_SLTCTL,
		       (ctl & ~PCI_EXP_SLTCTL_PIC) |
			       PCI_EXP_SLTCTL_PWR_IND_OFF | PCI_EXP_SLTCTL_PCC);

	ck_assert_uint_eq(tst_cfg_readw(qt, RP_DEVFN, exp + PCI_EXP_SLTSTA) &
				  PCI_EXP_SLTSTA_PDS,
			  0);
	ck_assert_uint_eq(tst_cfg_readw(qt, c.devfn, PCI_VENDOR_ID), 0xffff);
	ck_assert(tst_alive(qt));

	/*
	 * Card 0 either finished or stopped on a refused bus write (the data
	 * or the mailbox notify); either way it works once its queue is reset.
	 */
	for (i = 0; i < WAIT_MS; i++) {
		if ((qrd(&cards[0], 0, NP_Q_STATUS) & NP_Q_STATUS_ERROR) ||
		    qrd(&cards[0], 0, NP_Q_COMPLETED) == 32)
			break;
		sleep_ms(1);
	}
	ck_assert_uint_lt(i, WAIT_MS);
	if (qrd(&cards[0], 0, NP_Q_STATUS) & NP_Q_STATUS_ERROR) {
		uint32_t err = qrd(&cards[0], 0, NP_Q_ERROR);

		ck_assert_msg(err == NP_ERR_BUS_WRITE ||
				      err == NP_ERR_NOTIFY_WRITE,
			      "card 0 stopped with error %u", err);
	}
	ring_init(&cards[0], 0, &r0);
	dma_round_trip(&cards[0], &r0, NP_CA_FB_BASE, 8192, 8);
}
END_TEST

/* ---- fuzz ---- */

#define FUZZ_WRITES 5000u /* NP_QTEST_FUZZ_WRITES overrides */
#define FUZZ_RING_ENTRIES 16u

static uint64_t fuzz_state;

static uint32_t fuzz_rand(void)
{
	/* xorshift64*: deterministic for a printed seed. */
	fuzz_state ^= fuzz_state >> 12;
	fuzz_state ^= fuzz_state << 25;
	fuzz_state ^= fuzz_state >> 27;
	return (uint32_t)((fuzz_state * 0x2545f4914f6cdd1dull) >> 32);
}

/* A descriptor that is mostly plausible, sometimes garbage. */
static void fuzz_desc(struct np_dma_desc *d, const struct card *peer)
{
	/* Card memories, host memory, the peer's and its own BARs, a hole. */
	static const uint64_t addrs[] = {
		NP_CA_SRAM_BASE, NP_CA_FB_BASE, GUEST_HEAP,   CARD_FB(1),
		CARD_REGS(1),	 CARD_FB(0),	CARD_REGS(0), 0xfd00000000ull,
	};
	const unsigned int naddrs = sizeof(addrs) / sizeof(addrs[0]);
	unsigned int i;

	for (i = 0; i < sizeof(*d) / 4; i++)
		((uint32_t *)d)[i] = fuzz_rand();
	if (fuzz_rand() % 8 == 0)
		return;
	d->opcode = (uint8_t)(fuzz_rand() % (NP_DMA_OP_MAX + 2));
	d->flags &= NP_DESC_F_ALL & ~NP_DESC_F_WAIT;
	d->wait_event %= NP_NUM_EVENTS;
	d->signal_event %= NP_NUM_EVENTS;
	d->len = htole32(1 + fuzz_rand() % 65536);
	d->src = htole64(addrs[fuzz_rand() % naddrs] + fuzz_rand() % 0x100000);
	d->dst = htole64(addrs[fuzz_rand() % naddrs] + fuzz_rand() % 0x100000);
	d->notify_addr = htole64(peer->regs + NP_MBOX_EVENT(fuzz_rand() % 64));
	d->rsvd[0] = d->rsvd[1] = 0;
}

static uint64_t fuzz_slot(uint64_t rings, unsigned int e, uint32_t idx)
{
	return rings +
	       ((uint64_t)e * FUZZ_RING_ENTRIES + idx % FUZZ_RING_ENTRIES) *
		       sizeof(struct np_dma_desc);
}

/* What a driver does to (re)start a queue, with a short event timeout. */
static void fuzz_queue_setup(const struct card *c, unsigned int e,
			     uint64_t rings)
{
	uint64_t base = fuzz_slot(rings, e, 0);

	qwr(c, e, NP_Q_CTRL, NP_Q_CTRL_RESET);
	qwr(c, e, NP_Q_RING_LO, (uint32_t)base);
	qwr(c, e, NP_Q_RING_HI, (uint32_t)(base >> 32));
	qwr(c, e, NP_Q_RING_SIZE, FUZZ_RING_ENTRIES);
	qwr(c, e, NP_Q_WAIT_TIMEOUT, 1000);
	qwr(c, e, NP_Q_CTRL, NP_Q_CTRL_ENABLE);
}

START_TEST(test_fuzz_registers)
{
	const struct card *c = &cards[0];
	const char *env = getenv("NP_QTEST_SEED");
	unsigned int seed =
		env ? (unsigned int)strtoul(env, NULL, 0) :
		      (unsigned int)time(NULL) ^ (unsigned int)getpid();
	const char *nenv = getenv("NP_QTEST_FUZZ_WRITES");
	unsigned int writes =
		nenv ? (unsigned int)strtoul(nenv, NULL, 0) : FUZZ_WRITES;
	unsigned int engines = NP_CONFIG_DMA_ENGINES(rd(c, NP_REG_CONFIG));
	uint64_t rings =
		guest_alloc((uint64_t)engines * FUZZ_RING_ENTRIES * 64, 4096);
	unsigned int i, e;
	struct ring r;

	fprintf(stderr,
		"np-card fuzz: seed %u (NP_QTEST_SEED=%u reproduces), "
		"%u writes\n",
		seed, seed, writes);
	fuzz_state = seed ? seed : 1;
	for (e = 0; e < engines; e++)
		fuzz_queue_setup(c, e, rings);

	/*
	 * Each step is one guest action: mostly what a driver does (fill a
	 * descriptor, ring a doorbell, restart a queue) with random content,
	 * interleaved with random writes to any register and, rarely, a
	 * card reset.
	 */
	for (i = 0; i < writes; i++) {
		uint32_t pick = fuzz_rand() % 100, v = fuzz_rand(), off;

		e = fuzz_rand() % engines;
		if (pick < 25) {
			struct np_dma_desc d;

			fuzz_desc(&d, &cards[1]);
			tst_memwrite(qt, fuzz_slot(rings, e, fuzz_rand()), &d,
				     sizeof(d));
			continue;
		}
		if (pick < 50) {
			qwr(c, e, NP_Q_TAIL, v % FUZZ_RING_ENTRIES);
			continue;
		}
		if (pick < 58) {
			fuzz_queue_setup(c, e, rings);
			continue;
		}
		if (pick < 75) {
			/* Any queue register (the compute queue too). */
			e = fuzz_rand() % (NP_MAX_DMA_ENGINES + 1);
			off = (fuzz_rand() % (NP_QUEUE_BLOCK_SIZE / 4)) * 4;
			off += e < NP_MAX_DMA_ENGINES ? NP_DMA_BASE(e) :
							NP_COMPUTE_BASE;
		} else if (pick < 87) {
			off = (fuzz_rand() % (NP_REG_TEMP_MAX / 4 + 1)) * 4;
			if (off == NP_REG_CONTROL && fuzz_rand() % 16)
				v &= ~NP_CONTROL_RESET;
		} else if (pick < 95) {
			off = NP_MBOX_EVENT(fuzz_rand() % NP_NUM_EVENTS);
		} else {
			/* Anywhere, any size, any alignment. */
			off = fuzz_rand() % NP_REGS_SIZE;
			switch (fuzz_rand() % 4) {
			case 0:
				tst_writeb(qt, c->regs + off, (uint8_t)v);
				break;
			case 1:
				tst_writew(qt, c->regs + (off & ~1u),
					   (uint16_t)v);
				break;
			case 2:
				tst_writeq(qt, c->regs + (off & ~7u),
					   (uint64_t)v << 32 | fuzz_rand());
				break;
			default:
				tst_readl(qt, c->regs + off);
				break;
			}
			continue;
		}
		wr(c, off, v);
	}

	/* QEMU survived and answers; the card still identifies itself. */
	ck_assert(tst_alive(qt));
	ck_assert_uint_eq(rd(c, NP_REG_ID), NP_ID_VALUE);
	ck_assert_uint_eq(rd(&cards[1], NP_REG_ID), NP_ID_VALUE);
	fprintf(stderr,
		"np-card fuzz: card 0 completed %u descriptors, %u "
		"ended in an error\n",
		rd(c, NP_REG_DMA_DESCS), rd(c, NP_REG_DMA_ERRORS));

	/* After a reset the card works again. */
	wr(c, NP_REG_CONTROL, NP_CONTROL_RESET);
	card_wait_ready(c);
	ring_init(c, 0, &r);
	dma_round_trip(c, &r, NP_CA_SRAM_BASE, 65536, 6);
	ring_init(c, engines - 1, &r);
	dma_round_trip(c, &r, NP_CA_FB_BASE, 4096, 7);
}
END_TEST

Suite *np_suite_np_card(void)
{
	Suite *s = suite_create("np_card");
	TCase *tc;

	tc = tcase_create("identity");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_pci_identity);
	tcase_add_test(tc, test_bars);
	tcase_add_test(tc, test_id_version);
	tcase_add_test(tc, test_default_serials_differ);
	suite_add_tcase(s, tc);

	tc = tcase_create("properties");
	tcase_add_checked_fixture(tc, setup_props, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_properties);
	suite_add_tcase(s, tc);

	tc = tcase_create("bad_properties");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_bad_property, 0,
			    sizeof(bad_props) / sizeof(bad_props[0]));
	suite_add_tcase(s, tc);

	tc = tcase_create("registers");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_ro_registers);
	tcase_add_test(tc, test_telemetry);
	tcase_add_test(tc, test_scratch);
	tcase_add_test(tc, test_int_enable_and_status);
	tcase_add_test(tc, test_mailbox_events);
	tcase_add_test(tc, test_queue_registers);
	tcase_add_test(tc, test_bad_access_sizes);
	suite_add_tcase(s, tc);

	tc = tcase_create("dma");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_dma_round_trip);
	tcase_add_test(tc, test_fb_bar);
	tcase_add_test(tc, test_dma_writeback);
	tcase_add_test(tc, test_dma_errors);
	tcase_add_test(tc, test_dma_needs_bus_master);
	tcase_add_test(tc, test_card_to_card);
	tcase_add_test(tc, test_queue_statistics);
	suite_add_tcase(s, tc);

	tc = tcase_create("msix");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_msix_dma_completion);
	tcase_add_test(tc, test_msix_mailbox);
	suite_add_tcase(s, tc);

	tc = tcase_create("faults");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_fault_injection);
	tcase_add_test(tc, test_fault_injection_deterministic);
	suite_add_tcase(s, tc);

	tc = tcase_create("reset");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_reset_control_mid_transfer);
	tcase_add_test(tc, test_flr_mid_transfer);
	suite_add_tcase(s, tc);

	tc = tcase_create("unplug");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_unplug_mid_transfer);
	suite_add_tcase(s, tc);

	tc = tcase_create("fuzz");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_fuzz_registers);
	suite_add_tcase(s, tc);

	return s;
}
