// SPDX-License-Identifier: MIT
/*
 * Resets and memory: card reset in the middle of a transfer (async through
 * NP_CONTROL_RESET and synchronous), what a reset clears, queue reset of a
 * busy engine, destroy of a busy card, and memory that stays uncommitted
 * until touched, also for full-size cards.
 */
#include <stdatomic.h>
#include <string.h>

#include "test.h"

#define MIB (1024u * 1024u)

static struct tst_bus tb;
static struct np_emu *emu;

static void setup(void)
{
	tst_bus_init(&tb, 64 * MIB);
	emu = tst_card(&tb, 32 * MIB, 0, 0);
}

static void teardown(void)
{
	tst_gate_open(&tb);
	np_emu_destroy(emu);
	tst_bus_fini(&tb);
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* Everything a card reset returns to its reset value. */
static void check_clean(struct np_emu *e)
{
	ck_assert_uint_eq(tst_rd(e, NP_REG_STATUS), NP_STATUS_READY);
	ck_assert_uint_eq(tst_rd(e, NP_REG_INT_STATUS), 0);
	ck_assert_uint_eq(tst_rd(e, NP_REG_INT_ENABLE), 0);
	ck_assert_uint_eq(tst_rd(e, NP_REG_SCRATCH), 0);
	ck_assert_uint_eq(tst_rd(e, NP_REG_EVENT_IRQ_LO), 0);
	ck_assert_uint_eq(tst_rd(e, NP_REG_EVENT_PEND_LO), 0);
	ck_assert_uint_eq(tst_rd(e, NP_REG_DMA_DESCS), 0);
	ck_assert_uint_eq(tst_rd(e, NP_REG_DMA_BYTES_LO), 0);
	ck_assert_uint_eq(tst_rd(e, NP_REG_DMA_ERRORS), 0);
	for (unsigned int n = 0; n < NP_NUM_EVENTS; n++)
		ck_assert_uint_eq(tst_rd(e, NP_MBOX_EVENT(n)), 0);
	for (unsigned int q = 0; q < 4; q++)
		for (uint32_t r = 0; r <= NP_Q_BYTES_HI; r += 4)
			ck_assert_uint_eq(tst_rd(e, NP_DMA_BASE(q) + r), 0);
	for (uint32_t r = 0; r <= NP_Q_BYTES_HI; r += 4)
		ck_assert_uint_eq(tst_rd(e, NP_COMPUTE_BASE + r), 0);
}

/* Start 8 MiB H2Cs on every engine and hold the first one that reaches
 * its second chunk; returns with all four running or held. */
static void start_big_transfers(struct tst_queue *q, uint64_t src)
{
	unsigned int busy = 0;

	tst_gate_close(&tb, src + 256 * 1024, src + 256 * 1024 + 1);
	for (unsigned int e = 0; e < 4; e++) {
		/* Each engine its own 8 MiB of SRAM. */
		struct np_dma_desc d =
			tst_dma(NP_DMA_OP_H2C, src,
				NP_CA_SRAM_BASE + e * 8 * MIB, 8 * MIB);

		tst_queue_init(&q[e], &tb, emu, NP_DMA_BASE(e),
			       TST_RING_ENTRIES);
		for (unsigned int i = 0; i < 8; i++)
			tst_queue_put(&q[e], &d);
		tst_kick(&q[e]);
	}
	ck_assert(tst_gate_wait_blocked(&tb));
	for (unsigned int e = 0; e < 4; e++)
		busy += !!(tst_rd(emu, NP_DMA_BASE(e) + NP_Q_STATUS) &
			   NP_Q_STATUS_BUSY);
	ck_assert_uint_ge(busy, 1);
}

START_TEST(control_reset_mid_transfer)
{
	struct tst_queue q[4];
	uint64_t src = tst_alloc(&tb, NP_DMA_MAX_LEN, 4096);
	uint64_t fb_size;
	uint8_t *fb = np_emu_fb(emu, &fb_size);
	struct np_dma_desc d;

	memset(fb, 0xab, fb_size);
	tst_fill(tst_ptr(&tb, src), NP_DMA_MAX_LEN, 9);
	tst_wr(emu, NP_REG_SCRATCH, 1);
	tst_wr(emu, NP_REG_INT_ENABLE, 0x7ff);
	tst_wr(emu, NP_MBOX_EVENT(3), 4);
	start_big_transfers(q, src);

	tst_wr(emu, NP_REG_CONTROL, NP_CONTROL_RESET);
	/* An engine is held inside a bus read: the reset cannot finish. */
	ck_assert_uint_eq(tst_rd(emu, NP_REG_STATUS), NP_STATUS_RESETTING);
	tst_wr(emu, NP_REG_SCRATCH, 5);
	ck_assert(tst_log_contains(&tb, "while the card resets"));
	tst_wr(emu, NP_DMA_BASE(1) + NP_Q_CTRL, NP_Q_CTRL_ENABLE);
	ck_assert(tst_log_contains(&tb, "while the card resets"));
	tst_wr(emu, NP_MBOX_EVENT(3), 1);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_STATUS), NP_STATUS_RESETTING);

	tst_gate_open(&tb);
	ck_assert(tst_wait_ready(emu));
	/* Memory is uncommitted again (checked before reading it back,
	 * since reading maps zero pages) and reads as zeros. */
	ck_assert_uint_lt(np_emu_resident_bytes(emu), 64 * 1024);
	check_clean(emu);
	ck_assert(all_zero(fb, fb_size));
	ck_assert(np_emu_fb(emu, NULL) == fb);

	/* Engines work again after being programmed again. */
	tst_queue_init(&q[2], &tb, emu, NP_DMA_BASE(2), TST_RING_ENTRIES);
	d = tst_dma(NP_DMA_OP_H2C, src, NP_CA_FB_BASE, 64 * 1024);
	tst_submit(&q[2], &d);
	ck_assert_uint_eq(tst_wait_completed(&q[2], 1), 1);
	ck_assert(tst_check(fb, 64 * 1024, 9));
}
END_TEST

START_TEST(sync_reset_mid_transfer)
{
	struct tst_queue q[4];
	uint64_t src = tst_alloc(&tb, NP_DMA_MAX_LEN, 4096);
	uint64_t out = tst_alloc(&tb, MIB, 4096);
	struct np_dma_desc d;

	start_big_transfers(q, src);
	tst_gate_open(&tb);
	np_emu_reset(emu);
	check_clean(emu);

	/* SRAM reads back as zeros. */
	memset(tst_ptr(&tb, out), 0x5a, MIB);
	tst_queue_init(&q[0], &tb, emu, NP_DMA_BASE(0), TST_RING_ENTRIES);
	d = tst_dma(NP_DMA_OP_C2H, NP_CA_SRAM_BASE, out, MIB);
	tst_submit(&q[0], &d);
	ck_assert_uint_eq(tst_wait_completed(&q[0], 1), 1);
	ck_assert(all_zero(tst_ptr(&tb, out), MIB));
}
END_TEST

START_TEST(reset_aborts_waits_and_compute)
{
	struct tst_queue q, cq;
	struct np_dma_desc d = tst_dma(NP_DMA_OP_FENCE, 0, 0, 0);
	struct np_job_desc j = {.opcode = NP_JOB_OP_NOP,
				.flags = NP_DESC_F_WAIT,
				.wait_event = 1,
				.wait_value = 1};

	tst_queue_init(&q, &tb, emu, NP_DMA_BASE(3), TST_RING_ENTRIES);
	tst_queue_init(&cq, &tb, emu, NP_COMPUTE_BASE, TST_RING_ENTRIES);
	d.flags = NP_DESC_F_WAIT;
	d.wait_value = 1;
	tst_submit(&q, &d);
	tst_submit(&cq, &j);
	np_emu_reset(emu);
	check_clean(emu);
	/* A card reset writes no record: the host may be gone. */
	ck_assert_uint_eq(tst_wb(&q)->error, 0);
	ck_assert_uint_eq(tst_wb(&cq)->error, 0);
}
END_TEST

START_TEST(reset_twice_and_idle)
{
	np_emu_reset_async(emu);
	np_emu_reset_async(emu);
	np_emu_reset(emu);
	check_clean(emu);
	ck_assert_uint_eq(tst_warnings(&tb), 0);
}
END_TEST

START_TEST(uptime_restarts)
{
	struct timespec nap = {0, 30 * 1000 * 1000};

	nanosleep(&nap, NULL);
	ck_assert_uint_ge(tst_rd(emu, NP_REG_UPTIME_LO), 30);
	np_emu_reset(emu);
	ck_assert_uint_lt(tst_rd(emu, NP_REG_UPTIME_LO), 30);
}
END_TEST

START_TEST(queue_reset_mid_transfer)
{
	struct tst_queue q;
	uint32_t len = 4 * 256 * 1024;
	uint64_t src = tst_alloc(&tb, len, 4096);
	struct np_dma_desc d = tst_dma(NP_DMA_OP_H2C, src, NP_CA_FB_BASE, len);
	struct np_queue_wb wb;

	tst_fill(tst_ptr(&tb, src), len, 4);
	tst_queue_init(&q, &tb, emu, NP_DMA_BASE(1), TST_RING_ENTRIES);
	tst_gate_close(&tb, src + 256 * 1024, src + 256 * 1024 + 1);
	d.user = 31;
	tst_submit(&q, &d);
	ck_assert(tst_gate_wait_blocked(&tb));
	tst_wr(emu, q.base + NP_Q_CTRL, NP_Q_CTRL_RESET);
	/* Registers are clean at once; the engine is busy until it reaches
	 * the next chunk boundary. */
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_HEAD), 0);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_TAIL), 0);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_STATUS), NP_Q_STATUS_BUSY);
	/* Ring registers stay programmed but cannot change while busy. */
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_RING_SIZE),
			  TST_RING_ENTRIES);
	tst_wr(emu, q.base + NP_Q_RING_SIZE, 8);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_RING_SIZE),
			  TST_RING_ENTRIES);
	ck_assert(tst_log_contains(&tb, "still executes"));
	tst_gate_open(&tb);
	tst_wait_completed(&q, 0);
	while (tst_rd(emu, q.base + NP_Q_STATUS) & NP_Q_STATUS_BUSY)
		tst_wait_completed(&q, 0);
	memcpy(&wb, tst_wb(&q), sizeof(wb));
	ck_assert_uint_eq(wb.error, NP_ERR_ABORTED);
	ck_assert_uint_eq(wb.completed, 0);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_COMPLETED), 0);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_DMA_DESCS), 0);
	/* Only the chunks before the abort were moved. */
	ck_assert(!tst_check(np_emu_fb(emu, NULL), len, 4));

	tst_wr(emu, q.base + NP_Q_CTRL, NP_Q_CTRL_ENABLE);
	q.tail = 0;
	tst_submit(&q, &d);
	ck_assert_uint_eq(tst_wait_completed(&q, 1), 1);
	ck_assert(tst_check(np_emu_fb(emu, NULL), len, 4));
	ck_assert_uint_eq(tst_wb(&q)->user, 31);
}
END_TEST

START_TEST(destroy_busy_card)
{
	struct tst_queue q[4];
	uint64_t src = tst_alloc(&tb, NP_DMA_MAX_LEN, 4096);
	struct tst_queue w;
	struct np_dma_desc d = tst_dma(NP_DMA_OP_FENCE, 0, 0, 0);
	struct np_emu *other = tst_card(&tb, 0, 0, 1);

	/* One card waits forever on an event, the other moves data. */
	tst_queue_init(&w, &tb, other, NP_DMA_BASE(0), TST_RING_ENTRIES);
	d.flags = NP_DESC_F_WAIT;
	d.wait_value = 1;
	tst_submit(&w, &d);
	np_emu_destroy(other);

	start_big_transfers(q, src);
	tst_gate_open(&tb);
	np_emu_destroy(emu);
	emu = tst_card(&tb, 0, 0, 0);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_STATUS), NP_STATUS_READY);
}
END_TEST

START_TEST(memory_commits_on_touch)
{
	struct np_emu_bus bus = tst_bus_ops(&tb);
	struct np_emu *full;
	struct tst_queue q;
	uint64_t src = tst_alloc(&tb, 4 * MIB, 4096);
	uint64_t before, after;
	struct np_dma_desc d;

	ck_assert_int_eq(np_emu_create(NULL, &bus, &full), 0);
	before = np_emu_resident_bytes(full);
	ck_assert_uint_lt(before, 64 * 1024);

	/* 4 MiB into the SRAM of the last cores, 1 MiB into the FB. */
	tst_queue_init(&q, &tb, full, NP_DMA_BASE(0), TST_RING_ENTRIES);
	d = tst_dma(NP_DMA_OP_H2C, src,
		    NP_CA_SRAM_BASE + NP_CORE_SRAM_OFFSET(15, 15) -
			    5 * NP_CORE_SRAM_SIZE,
		    4 * MIB);
	tst_submit(&q, &d);
	d = tst_dma(NP_DMA_OP_H2C, src, NP_CA_FB_BASE + 16 * MIB, MIB);
	tst_submit(&q, &d);
	ck_assert_uint_eq(tst_wait_completed(&q, 2), 2);
	after = np_emu_resident_bytes(full);
	ck_assert_uint_ge(after, before + 5 * MIB);
	ck_assert_uint_lt(after, before + 6 * MIB);

	np_emu_reset(full);
	ck_assert_uint_lt(np_emu_resident_bytes(full), 64 * 1024);
	np_emu_destroy(full);
}
END_TEST

START_TEST(sixteen_full_size_cards)
{
	struct np_emu_bus bus = tst_bus_ops(&tb);
	struct np_emu *cards[16];
	uint64_t resident = 0;

	for (unsigned int i = 0; i < 16; i++) {
		struct np_emu_config cfg = {.card_index = i, .serial = i};

		ck_assert_int_eq(np_emu_create(&cfg, &bus, &cards[i]), 0);
		ck_assert_uint_eq(tst_rd(cards[i], NP_REG_SRAM_SIZE),
				  NP_SRAM_SIZE);
		ck_assert_uint_eq(tst_rd(cards[i], NP_REG_SERIAL_LO), i);
	}
	for (unsigned int i = 0; i < 16; i++)
		resident += np_emu_resident_bytes(cards[i]);
	/* 16 x 224 MiB reserved, next to nothing committed. */
	ck_assert_uint_lt(resident, MIB);
	for (unsigned int i = 0; i < 16; i++)
		np_emu_destroy(cards[i]);
}
END_TEST

struct storm {
	struct np_emu *emu;
	atomic_bool stop;
};

static void *reset_storm(void *arg)
{
	struct storm *st = arg;
	struct timespec nap = {0, 200 * 1000};

	while (!atomic_load(&st->stop)) {
		np_emu_mmio_write(st->emu, NP_REG_CONTROL, NP_CONTROL_RESET);
		np_emu_mmio_write(st->emu, NP_MBOX_EVENT(1), 1);
		nanosleep(&nap, NULL);
	}
	return NULL;
}

START_TEST(resets_racing_traffic)
{
	/* Card resets from one thread while another keeps programming
	 * queues and submitting: nothing hangs or crashes, and after a
	 * final reset the card is clean and works. */
	struct storm st = {.emu = emu};
	uint64_t src = tst_alloc(&tb, MIB, 4096);
	uint64_t rings[4], wbs[4];
	struct tst_queue q;
	struct np_dma_desc d;
	pthread_t t;

	for (unsigned int e = 0; e < 4; e++) {
		rings[e] = tst_alloc(&tb, 8 * 64, 64);
		wbs[e] = tst_alloc(&tb, 32, 32);
	}
	atomic_init(&st.stop, false);
	ck_assert_int_eq(pthread_create(&t, NULL, reset_storm, &st), 0);
	for (unsigned int i = 0; i < 200; i++) {
		unsigned int e = i % 4;
		uint32_t b = NP_DMA_BASE(e);

		memset(&q, 0, sizeof(q));
		q.emu = emu;
		q.tb = &tb;
		q.base = b;
		q.entries = 8;
		q.ring = rings[e];
		q.wb = wbs[e];
		tst_wr(emu, b + NP_Q_CTRL, NP_Q_CTRL_RESET);
		tst_wr(emu, b + NP_Q_RING_LO, (uint32_t)q.ring);
		tst_wr(emu, b + NP_Q_RING_HI, (uint32_t)(q.ring >> 32));
		tst_wr(emu, b + NP_Q_RING_SIZE, 8);
		tst_wr(emu, b + NP_Q_WB_LO, (uint32_t)q.wb);
		tst_wr(emu, b + NP_Q_WB_HI, (uint32_t)(q.wb >> 32));
		tst_wr(emu, b + NP_Q_CTRL, NP_Q_CTRL_ENABLE);
		d = tst_dma(NP_DMA_OP_H2C, src, NP_CA_SRAM_BASE + e * MIB, MIB);
		d.flags = NP_DESC_F_SIGNAL | NP_DESC_F_IRQ;
		tst_submit(&q, &d);
		d = tst_dma(NP_DMA_OP_FENCE, 0, 0, 0);
		d.flags = NP_DESC_F_WAIT;
		d.wait_event = 1;
		d.wait_value = 3;
		tst_submit(&q, &d);
	}
	atomic_store(&st.stop, true);
	pthread_join(t, NULL);
	np_emu_reset(emu);
	check_clean(emu);
	tst_queue_init(&q, &tb, emu, NP_DMA_BASE(3), 8);
	d = tst_dma(NP_DMA_OP_H2C, src, NP_CA_FB_BASE, 4096);
	tst_fill(tst_ptr(&tb, src), 4096, 12);
	tst_submit(&q, &d);
	ck_assert_uint_eq(tst_wait_completed(&q, 1), 1);
	ck_assert(tst_check(np_emu_fb(emu, NULL), 4096, 12));
}
END_TEST

/* The queue registers of every engine take a value: no queue is left held
 * by a reset that has finished. */
static void check_queues_writable(struct np_emu *e, unsigned int round)
{
	uint32_t bases[5] = {NP_DMA_BASE(0), NP_DMA_BASE(1), NP_DMA_BASE(2),
			     NP_DMA_BASE(3), NP_COMPUTE_BASE};

	for (unsigned int i = 0; i < 5; i++) {
		uint32_t ring = 0x1000u * (round % 64u + 1u);

		tst_wr(e, bases[i] + NP_Q_RING_LO, ring);
		ck_assert_msg(tst_rd(e, bases[i] + NP_Q_RING_LO) == ring,
			      "queue at 0x%x still held after reset %u",
			      bases[i], round);
	}
}

START_TEST(resets_with_service_work_release_every_queue)
{
	/* Each reset starts while the service thread has an interrupt to
	 * deliver, so it runs while reset_begin() is still holding the
	 * queues: it must not finish the reset before all are held. */
	uint32_t mbox = 1u << NP_IRQ_MAILBOX;

	for (unsigned int round = 0; round < 400; round++) {
		tst_wr(emu, NP_REG_INT_ENABLE, mbox);
		tst_wr(emu, NP_REG_EVENT_IRQ_LO, 1u);
		tst_wr(emu, NP_MBOX_EVENT(0), 1);
		np_emu_reset(emu);
		ck_assert_uint_eq(tst_rd(emu, NP_REG_STATUS), NP_STATUS_READY);
		check_queues_writable(emu, round);
	}
	np_emu_reset(emu);
	check_clean(emu);
}
END_TEST

Suite *np_suite_reset(void)
{
	Suite *s = suite_create("emu_reset");
	TCase *tc = tcase_create("reset");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, control_reset_mid_transfer);
	tcase_add_test(tc, sync_reset_mid_transfer);
	tcase_add_test(tc, reset_aborts_waits_and_compute);
	tcase_add_test(tc, reset_twice_and_idle);
	tcase_add_test(tc, uptime_restarts);
	tcase_add_test(tc, queue_reset_mid_transfer);
	tcase_add_test(tc, destroy_busy_card);
	tcase_add_test(tc, memory_commits_on_touch);
	tcase_add_test(tc, sixteen_full_size_cards);
	tcase_add_test(tc, resets_racing_traffic);
	tcase_add_test(tc, resets_with_service_work_release_every_queue);
	suite_add_tcase(s, tc);
	return s;
}
