/* SPDX-License-Identifier: MIT */
/*
 * The emulator core tests' shared header: the suites, one per check_*.c,
 * and their fixture (test.c): a bus with a bounds-checked host memory
 * window, an optional peer card's frame buffer and mailbox page, interrupt
 * counters and a log recorder.
 *
 * Bus map seen by the card under test:
 *   [TST_HOST_BASE, + host_size)     host memory (tb->host)
 *   [TST_PEER_FB_BASE, + fb size)    the peer card's frame buffer (BAR2)
 *   [TST_PEER_MBOX_BASE, + 4 KiB)    the peer card's mailbox page (BAR0)
 * Anything else, or an access that crosses a window's end, is refused with
 * -EFAULT, as is any range added with tst_fault().
 */
#ifndef TESTS_EMU_TEST_H
#define TESTS_EMU_TEST_H

#include <check.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "np_abi.h"
#include "np_emu.h"

/* Above 4 GiB, so every address needs its _HI register. */
#define TST_HOST_BASE 0x7f0010000000ull
#define TST_PEER_FB_BASE 0x4000000000ull
#define TST_PEER_MBOX_BASE 0x5000000000ull

/* Small memories for the tests that do not need full-size ones. */
#define TST_SRAM_SIZE (4u * 1024u * 1024u)
#define TST_FB_SIZE (1u * 1024u * 1024u)

#define TST_RING_ENTRIES 64u

struct tst_bus {
	uint8_t *host;
	uint64_t host_size;
	uint64_t next; /* bump allocator, offset into host */
	struct np_emu *peer;

	pthread_mutex_t lock;
	unsigned int irqs[NP_MSIX_VECTORS];
	unsigned int warnings;
	char last_log[256];
	uint64_t fault_lo, fault_hi; /* refused bus range, if hi > lo */

	/* Bus reads that touch [gate_lo, gate_hi) block while the gate is
	 * closed: a transfer can be held at a chunk boundary. */
	uint64_t gate_lo, gate_hi;
	bool gate_closed;
	unsigned int gate_blocked;
	pthread_cond_t gate_cond;

	/* On each interrupt, copy the record at snap_wb (if set) and read
	 * event snap_event of the peer card, to check effect ordering. */
	uint64_t snap_wb;
	unsigned int snap_event;
	struct np_queue_wb snap;
	uint32_t snap_event_value;
};

/* One queue's ring and writeback record in host memory. */
struct tst_queue {
	struct np_emu *emu;
	struct tst_bus *tb;
	uint32_t base; /* NP_DMA_BASE(e) or NP_COMPUTE_BASE */
	uint64_t ring; /* bus address */
	uint32_t entries;
	uint64_t wb; /* bus address */
	uint32_t tail;
};

void tst_bus_init(struct tst_bus *tb, uint64_t host_size);
void tst_bus_fini(struct tst_bus *tb);
struct np_emu_bus tst_bus_ops(struct tst_bus *tb);
/* Create a card on tb with small memories (sram/fb 0 = TST_* sizes). */
struct np_emu *tst_card(struct tst_bus *tb, uint64_t sram, uint64_t fb,
			unsigned int engines);

uint64_t tst_alloc(struct tst_bus *tb, uint64_t size, uint64_t align);
void *tst_ptr(struct tst_bus *tb, uint64_t bus_addr);
void tst_fault(struct tst_bus *tb, uint64_t lo, uint64_t hi);
void tst_gate_close(struct tst_bus *tb, uint64_t lo, uint64_t hi);
/* Wait until a bus read is blocked at the gate. */
bool tst_gate_wait_blocked(struct tst_bus *tb);
void tst_gate_open(struct tst_bus *tb);
unsigned int tst_irqs(struct tst_bus *tb, unsigned int vector);
unsigned int tst_warnings(struct tst_bus *tb);
bool tst_log_contains(struct tst_bus *tb, const char *needle);

uint32_t tst_rd(struct np_emu *emu, uint32_t off);
void tst_wr(struct np_emu *emu, uint32_t off, uint32_t v);

/* Program and enable a queue (base = NP_DMA_BASE(e) / NP_COMPUTE_BASE). */
void tst_queue_init(struct tst_queue *q, struct tst_bus *tb, struct np_emu *emu,
		    uint32_t base, uint32_t entries);
/* Put a descriptor in the next slot; tst_kick() publishes the tail. */
void tst_queue_put(struct tst_queue *q, const void *desc);
void tst_kick(struct tst_queue *q);
void tst_submit(struct tst_queue *q, const void *desc);
const struct np_queue_wb *tst_wb(struct tst_queue *q);

/* Poll (up to a generous failsafe limit) until the queue has completed n
 * descriptors in total or stopped; returns NP_Q_COMPLETED. */
uint32_t tst_wait_completed(struct tst_queue *q, uint32_t n);
/* Poll until the queue reports STATUS.ERROR; returns NP_Q_ERROR. */
uint32_t tst_wait_error(struct tst_queue *q);
/* Poll until cond(arg) holds; false on the failsafe limit. */
bool tst_poll(bool (*cond)(void *), void *arg);
bool tst_wait_irqs(struct tst_bus *tb, unsigned int vector, unsigned int n);
bool tst_wait_ready(struct np_emu *emu);

struct np_dma_desc tst_dma(uint8_t op, uint64_t src, uint64_t dst,
			   uint32_t len);
void tst_fill(void *p, size_t len, uint32_t seed);
bool tst_check(const void *p, size_t len, uint32_t seed);

Suite *np_suite_regs(void);
Suite *np_suite_dma(void);
Suite *np_suite_errors(void);
Suite *np_suite_events(void);
Suite *np_suite_reset(void);
Suite *np_suite_faults(void);

#endif /* TESTS_EMU_TEST_H */
