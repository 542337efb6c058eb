// SPDX-License-Identifier: MIT
/*
 * Event counters as seen by descriptors: F_WAIT (blocking, wrap-aware,
 * timeout), F_SIGNAL, F_NOTIFY, F_IRQ and the order of their effects;
 * FENCE across engines; the compute queue's NOP job; and the card-to-card
 * protocol with credits between two cards.
 */
#include <string.h>

#include "test.h"

static struct tst_bus tb;
static struct np_emu *emu;

static void setup(void)
{
	tst_bus_init(&tb, 8u << 20);
	emu = tst_card(&tb, 0, 0, 0);
}

static void teardown(void)
{
	tb.peer = NULL;
	np_emu_destroy(emu);
	tst_bus_fini(&tb);
}

struct status_arg {
	struct np_emu *emu;
	uint32_t reg, mask, want;
};

static bool status_is(void *p)
{
	struct status_arg *a = p;

	return (tst_rd(a->emu, a->reg) & a->mask) == a->want;
}

static void wait_status(struct np_emu *e, uint32_t reg, uint32_t mask,
			uint32_t want)
{
	struct status_arg a = {e, reg, mask, want};

	ck_assert(tst_poll(status_is, &a));
}

START_TEST(wait_blocks_until_mailbox)
{
	struct tst_queue q;
	uint64_t src = tst_alloc(&tb, 4096, 4096);
	struct np_dma_desc d = tst_dma(NP_DMA_OP_H2C, src, NP_CA_FB_BASE, 4096);

	tst_fill(tst_ptr(&tb, src), 4096, 3);
	tst_queue_init(&q, &tb, emu, NP_DMA_BASE(0), TST_RING_ENTRIES);
	d.flags = NP_DESC_F_WAIT;
	d.wait_event = 12;
	d.wait_value = 2;
	tst_submit(&q, &d);
	wait_status(emu, q.base + NP_Q_STATUS,
		    NP_Q_STATUS_WAITING | NP_Q_STATUS_BUSY,
		    NP_Q_STATUS_WAITING | NP_Q_STATUS_BUSY);
	tst_wr(emu, NP_MBOX_EVENT(12), 1);
	/* Still short of 2: nothing moved. */
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_COMPLETED), 0);
	ck_assert(!tst_check(np_emu_fb(emu, NULL), 4096, 3));
	tst_wr(emu, NP_MBOX_EVENT(12), 1);
	ck_assert_uint_eq(tst_wait_completed(&q, 1), 1);
	ck_assert(tst_check(np_emu_fb(emu, NULL), 4096, 3));
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_STATUS),
			  NP_Q_STATUS_ENABLED);
}
END_TEST

START_TEST(wait_already_satisfied)
{
	struct tst_queue q;
	struct np_dma_desc d = tst_dma(NP_DMA_OP_FENCE, 0, 0, 0);

	tst_queue_init(&q, &tb, emu, NP_DMA_BASE(1), TST_RING_ENTRIES);
	tst_wr(emu, NP_MBOX_EVENT(0), 10);
	d.flags = NP_DESC_F_WAIT;
	d.wait_value = 7; /* counter past the value also satisfies */
	tst_submit(&q, &d);
	ck_assert_uint_eq(tst_wait_completed(&q, 1), 1);
}
END_TEST

START_TEST(wait_is_wrap_aware)
{
	struct tst_queue q;
	struct np_dma_desc d = tst_dma(NP_DMA_OP_FENCE, 0, 0, 0);

	tst_queue_init(&q, &tb, emu, NP_DMA_BASE(2), TST_RING_ENTRIES);
	tst_wr(emu, NP_MBOX_EVENT(5), 0xfffffff0u);
	/* 5 is "after" 0xfffffff0 in serial-number arithmetic. */
	d.flags = NP_DESC_F_WAIT;
	d.wait_event = 5;
	d.wait_value = 5;
	tst_submit(&q, &d);
	wait_status(emu, q.base + NP_Q_STATUS, NP_Q_STATUS_WAITING,
		    NP_Q_STATUS_WAITING);
	tst_wr(emu, NP_MBOX_EVENT(5), 0x10); /* wraps to 0 */
	ck_assert_uint_eq(tst_rd(emu, NP_MBOX_EVENT(5)), 0);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_COMPLETED), 0);
	tst_wr(emu, NP_MBOX_EVENT(5), 5);
	ck_assert_uint_eq(tst_wait_completed(&q, 1), 1);
}
END_TEST

START_TEST(wait_timeout)
{
	struct tst_queue q;
	struct np_dma_desc d = tst_dma(NP_DMA_OP_FENCE, 0, 0, 0);
	tst_wr(emu, NP_REG_INT_ENABLE, 1u << NP_IRQ_DMA(3));
	tst_queue_init(&q, &tb, emu, NP_DMA_BASE(3), TST_RING_ENTRIES);
	tst_wr(emu, q.base + NP_Q_WAIT_TIMEOUT, 2000);
	d.flags = NP_DESC_F_WAIT;
	d.wait_event = 1;
	d.wait_value = 1;
	tst_submit(&q, &d);
	ck_assert_uint_eq(tst_wait_error(&q), NP_ERR_WAIT_TIMEOUT);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_ERR_INDEX), 0);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_STATUS), NP_Q_STATUS_ERROR);
	ck_assert_uint_eq(tst_wb(&q)->error, NP_ERR_WAIT_TIMEOUT);
	ck_assert(tst_wait_irqs(&tb, NP_IRQ_DMA(3), 1));
	ck_assert_uint_eq(tst_rd(emu, NP_REG_INT_STATUS), 1u << NP_IRQ_DMA(3));
}
END_TEST

START_TEST(fence_orders_engines)
{
	/* Engine 0 reads back what engine 1 writes, ordered by event 3. */
	struct tst_queue q0, q1;
	uint32_t len = 600 * 1024;
	uint64_t src = tst_alloc(&tb, len, 4096);
	uint64_t dst = tst_alloc(&tb, len, 4096);
	struct np_dma_desc d;

	tst_fill(tst_ptr(&tb, src), len, 17);
	tst_queue_init(&q0, &tb, emu, NP_DMA_BASE(0), TST_RING_ENTRIES);
	tst_queue_init(&q1, &tb, emu, NP_DMA_BASE(1), TST_RING_ENTRIES);
	d = tst_dma(NP_DMA_OP_FENCE, 0, 0, 0);
	d.flags = NP_DESC_F_WAIT;
	d.wait_event = 3;
	d.wait_value = 1;
	tst_submit(&q0, &d);
	d = tst_dma(NP_DMA_OP_C2H, NP_CA_SRAM_BASE, dst, len);
	tst_submit(&q0, &d);
	wait_status(emu, q0.base + NP_Q_STATUS, NP_Q_STATUS_WAITING,
		    NP_Q_STATUS_WAITING);
	d = tst_dma(NP_DMA_OP_H2C, src, NP_CA_SRAM_BASE, len);
	d.flags = NP_DESC_F_SIGNAL;
	d.signal_event = 3;
	tst_submit(&q1, &d);
	ck_assert_uint_eq(tst_wait_completed(&q0, 2), 2);
	ck_assert(tst_check(tst_ptr(&tb, dst), len, 17));
	ck_assert_uint_eq(tst_rd(emu, NP_MBOX_EVENT(3)), 1);
}
END_TEST

START_TEST(signal_counts)
{
	struct tst_queue q;
	struct np_dma_desc d = tst_dma(NP_DMA_OP_NOP, 0, 0, 0);

	tst_queue_init(&q, &tb, emu, NP_DMA_BASE(0), TST_RING_ENTRIES);
	d.flags = NP_DESC_F_SIGNAL;
	d.signal_event = 63;
	for (unsigned int i = 0; i < 10; i++)
		tst_queue_put(&q, &d);
	tst_kick(&q);
	ck_assert_uint_eq(tst_wait_completed(&q, 10), 10);
	ck_assert_uint_eq(tst_rd(emu, NP_MBOX_EVENT(63)), 10);
	ck_assert_uint_eq(tst_rd(emu, NP_MBOX_EVENT(62)), 0);
}
END_TEST

START_TEST(signal_raises_mailbox_irq)
{
	struct tst_queue q;
	struct np_dma_desc d = tst_dma(NP_DMA_OP_NOP, 0, 0, 0);

	tst_wr(emu, NP_REG_INT_ENABLE, 1u << NP_IRQ_MAILBOX);
	tst_wr(emu, NP_REG_EVENT_IRQ_HI, 1u << (33 - 32));
	tst_queue_init(&q, &tb, emu, NP_DMA_BASE(0), TST_RING_ENTRIES);
	d.flags = NP_DESC_F_SIGNAL;
	d.signal_event = 33;
	tst_submit(&q, &d);
	ck_assert(tst_wait_irqs(&tb, NP_IRQ_MAILBOX, 1));
	ck_assert_uint_eq(tst_rd(emu, NP_REG_EVENT_PEND_HI), 1u << 1);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_INT_STATUS) &
				  (1u << NP_IRQ_MAILBOX),
			  1u << NP_IRQ_MAILBOX);
}
END_TEST

START_TEST(effect_order)
{
	/* The card notifies its own mailbox (the test bus routes the
	 * "peer" window back to it). When the interrupt arrives, signal,
	 * notify and the writeback record must all be visible. */
	struct tst_queue q;
	struct np_dma_desc d = tst_dma(NP_DMA_OP_NOP, 0, 0, 0);

	tb.peer = emu;
	tst_wr(emu, NP_REG_INT_ENABLE, 1u << NP_IRQ_DMA(2));
	tst_queue_init(&q, &tb, emu, NP_DMA_BASE(2), TST_RING_ENTRIES);
	tb.snap_wb = q.wb;
	tb.snap_event = 20;
	d.flags = NP_DESC_F_SIGNAL | NP_DESC_F_NOTIFY | NP_DESC_F_IRQ;
	d.signal_event = 19;
	d.notify_addr = TST_PEER_MBOX_BASE + 20 * 4;
	d.notify_data = 0x100;
	d.user = 55;
	tst_submit(&q, &d);
	ck_assert(tst_wait_irqs(&tb, NP_IRQ_DMA(2), 1));
	ck_assert_uint_eq(tb.snap.completed, 1);
	ck_assert_uint_eq(tb.snap.user, 55);
	ck_assert_uint_eq(tb.snap_event_value, 0x100);
	ck_assert_uint_eq(tst_rd(emu, NP_MBOX_EVENT(19)), 1);
}
END_TEST

START_TEST(compute_nop_jobs)
{
	struct tst_queue cq;
	struct np_job_desc j = {.opcode = NP_JOB_OP_NOP};

	tb.peer = emu;
	tst_wr(emu, NP_REG_INT_ENABLE, 1u << NP_IRQ_COMPUTE);
	tst_queue_init(&cq, &tb, emu, NP_COMPUTE_BASE, 8);
	tst_wr(emu, NP_MBOX_EVENT(2), 1);
	j.flags = NP_DESC_F_ALL;
	j.wait_event = 2;
	j.wait_value = 1;
	j.signal_event = 4;
	j.notify_addr = TST_PEER_MBOX_BASE + 6 * 4;
	j.notify_data = 9;
	j.user = 0x1234;
	/* prog/arg/out are not looked at by a NOP job. */
	j.prog = ~0ull;
	for (unsigned int i = 0; i < 3; i++)
		tst_queue_put(&cq, &j);
	tst_kick(&cq);
	ck_assert_uint_eq(tst_wait_completed(&cq, 3), 3);
	ck_assert(tst_wait_irqs(&tb, NP_IRQ_COMPUTE, 3));
	ck_assert_uint_eq(tst_rd(emu, NP_MBOX_EVENT(4)), 3);
	ck_assert_uint_eq(tst_rd(emu, NP_MBOX_EVENT(6)), 27);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_JOBS), 3);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_DMA_DESCS), 0);
	ck_assert_uint_eq(tst_wb(&cq)->user, 0x1234);
	ck_assert_uint_eq(tst_wb(&cq)->completed, 3);
}
END_TEST

START_TEST(card_to_card_with_credits)
{
	/*
	 * Card A streams frames into two slots of card B's frame buffer.
	 * A: H2C frame -> SRAM; C2P SRAM -> B's slot, after waiting for a
	 *    credit (A's event 1), then notify B's event 0.
	 * B: C2H slot -> host after waiting for frame i (event 0 >= i + 1),
	 *    then notify A's event 1: a credit back.
	 */
	enum { FRAMES = 8, SLOTS = 2 };
	const uint32_t len = 128 * 1024;
	struct tst_bus tbb;
	struct np_emu *b;
	struct tst_queue qa, qb;
	uint64_t src = tst_alloc(&tb, FRAMES * len, 4096);
	uint64_t dst;

	tst_bus_init(&tbb, 4u << 20);
	b = tst_card(&tbb, 0, 0, 1);
	tb.peer = b;
	tbb.peer = emu;
	dst = tst_alloc(&tbb, FRAMES * len, 4096);
	tst_fill(tst_ptr(&tb, src), FRAMES * len, 1000);
	tst_queue_init(&qa, &tb, emu, NP_DMA_BASE(0), TST_RING_ENTRIES);
	tst_queue_init(&qb, &tbb, b, NP_DMA_BASE(0), TST_RING_ENTRIES);

	for (uint32_t i = 0; i < FRAMES; i++) {
		uint64_t slot = (uint64_t)(i % SLOTS) * len;
		struct np_dma_desc d;

		d = tst_dma(NP_DMA_OP_H2C, src + i * len, NP_CA_SRAM_BASE, len);
		tst_queue_put(&qa, &d);
		d = tst_dma(NP_DMA_OP_C2P, NP_CA_SRAM_BASE,
			    TST_PEER_FB_BASE + slot, len);
		d.flags = NP_DESC_F_WAIT | NP_DESC_F_NOTIFY;
		d.wait_event = 1;
		d.wait_value = i >= SLOTS ? i - SLOTS + 1 : 0;
		d.notify_addr = TST_PEER_MBOX_BASE + 0 * 4;
		d.notify_data = 1;
		tst_queue_put(&qa, &d);

		d = tst_dma(NP_DMA_OP_C2H, NP_CA_FB_BASE + slot, dst + i * len,
			    len);
		d.flags = NP_DESC_F_WAIT | NP_DESC_F_NOTIFY;
		d.wait_event = 0;
		d.wait_value = i + 1;
		d.notify_addr = TST_PEER_MBOX_BASE + 1 * 4;
		d.notify_data = 1;
		tst_queue_put(&qb, &d);
	}
	/* The consumer first: it waits for frames that do not exist yet. */
	tst_kick(&qb);
	tst_kick(&qa);
	ck_assert_uint_eq(tst_wait_completed(&qa, 2 * FRAMES), 2 * FRAMES);
	ck_assert_uint_eq(tst_wait_completed(&qb, FRAMES), FRAMES);
	ck_assert(tst_check(tst_ptr(&tbb, dst), FRAMES * len, 1000));
	ck_assert_uint_eq(tst_rd(b, NP_MBOX_EVENT(0)), FRAMES);
	ck_assert_uint_eq(tst_rd(emu, NP_MBOX_EVENT(1)), FRAMES);

	tb.peer = NULL;
	np_emu_destroy(b);
	tst_bus_fini(&tbb);
}
END_TEST

START_TEST(queue_reset_while_waiting)
{
	struct tst_queue q;
	struct np_dma_desc d = tst_dma(NP_DMA_OP_FENCE, 0, 0, 0);

	tst_queue_init(&q, &tb, emu, NP_DMA_BASE(1), TST_RING_ENTRIES);
	d.flags = NP_DESC_F_WAIT;
	d.wait_event = 8;
	d.wait_value = 1;
	tst_submit(&q, &d);
	wait_status(emu, q.base + NP_Q_STATUS, NP_Q_STATUS_WAITING,
		    NP_Q_STATUS_WAITING);
	tst_wr(emu, q.base + NP_Q_CTRL, NP_Q_CTRL_RESET);
	/* The wait is abandoned: the engine goes idle, reports the abort
	 * in its record, and the queue is clean. */
	wait_status(emu, q.base + NP_Q_STATUS, 0xffffffff, 0);
	ck_assert_uint_eq(tst_wb(&q)->error, NP_ERR_ABORTED);
	ck_assert_uint_eq(tst_wb(&q)->completed, 0);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_ERROR), 0);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_HEAD), 0);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_DMA_ERRORS), 1);
	/* Signalling the event now runs nothing. */
	tst_wr(emu, NP_MBOX_EVENT(8), 1);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_COMPLETED), 0);
}
END_TEST

static uint64_t rd64(uint32_t lo)
{
	uint64_t v = tst_rd(emu, lo);

	return v | (uint64_t)tst_rd(emu, lo + 4) << 32;
}

struct completed_arg {
	struct tst_queue *q;
	uint32_t n;
};

static bool waiting_after(void *p)
{
	struct completed_arg *a = p;

	return tst_rd(emu, a->q->base + NP_Q_COMPLETED) == a->n &&
	       (tst_rd(emu, a->q->base + NP_Q_STATUS) & NP_Q_STATUS_WAITING);
}

START_TEST(statistics_count_waits_and_service)
{
	struct tst_queue q;
	uint64_t src = tst_alloc(&tb, 8192, 4096);
	struct completed_arg a = {&q, 1};
	struct np_dma_desc d;
	uint64_t work_ns;
	uint32_t max_ns;

	tst_queue_init(&q, &tb, emu, NP_DMA_BASE(1), TST_RING_ENTRIES);
	/* a fence and a transfer that both block, a NOP, and a transfer
	 * whose wait is already satisfied */
	d = tst_dma(NP_DMA_OP_FENCE, 0, 0, 0);
	d.flags = NP_DESC_F_WAIT;
	d.wait_event = 20;
	d.wait_value = 1;
	tst_queue_put(&q, &d);
	d = tst_dma(NP_DMA_OP_H2C, src, NP_CA_FB_BASE, 4096);
	d.flags = NP_DESC_F_WAIT;
	d.wait_event = 21;
	d.wait_value = 1;
	tst_queue_put(&q, &d);
	d = tst_dma(NP_DMA_OP_NOP, 0, 0, 0);
	tst_queue_put(&q, &d);
	d = tst_dma(NP_DMA_OP_H2C, src + 4096, NP_CA_FB_BASE, 4096);
	d.flags = NP_DESC_F_WAIT;
	d.wait_event = 20;
	d.wait_value = 1;
	tst_queue_put(&q, &d);
	tst_kick(&q);
	wait_status(emu, q.base + NP_Q_STATUS, NP_Q_STATUS_WAITING,
		    NP_Q_STATUS_WAITING);
	tst_wr(emu, NP_MBOX_EVENT(20), 1);
	ck_assert(tst_poll(waiting_after, &a));
	tst_wr(emu, NP_MBOX_EVENT(21), 1);
	ck_assert_uint_eq(tst_wait_completed(&q, 4), 4);

	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_FENCE_WAITS), 1);
	ck_assert_uint_gt(rd64(q.base + NP_Q_FENCE_NS_LO), 0);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_WORK_WAITS), 1);
	ck_assert_uint_gt(rd64(q.base + NP_Q_WORK_WAIT_NS_LO), 0);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_WORK_DONE), 2);
	work_ns = rd64(q.base + NP_Q_WORK_NS_LO);
	max_ns = tst_rd(emu, q.base + NP_Q_WORK_MAX_NS);
	ck_assert_uint_gt(max_ns, 0);
	ck_assert_uint_le(max_ns, work_ns);
	ck_assert_uint_ge(2 * (uint64_t)max_ns, work_ns);
	/* the engines and the compute queue keep their own statistics */
	ck_assert_uint_eq(tst_rd(emu, NP_DMA_BASE(0) + NP_Q_WORK_DONE), 0);
	ck_assert_uint_eq(tst_rd(emu, NP_COMPUTE_BASE + NP_Q_FENCE_WAITS), 0);

	/* any write clears the maximum, the rest is read-only */
	tst_wr(emu, q.base + NP_Q_WORK_MAX_NS, 12345);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_WORK_MAX_NS), 0);
	tst_wr(emu, q.base + NP_Q_WORK_DONE, 0);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_WORK_DONE), 2);
	ck_assert_uint_eq(rd64(q.base + NP_Q_WORK_NS_LO), work_ns);

	tst_wr(emu, q.base + NP_Q_CTRL, NP_Q_CTRL_RESET);
	for (uint32_t r = NP_Q_FENCE_WAITS; r <= NP_Q_WORK_MAX_NS; r += 4)
		ck_assert_uint_eq(tst_rd(emu, q.base + r), 0);
}
END_TEST

START_TEST(ping_pong_between_engines)
{
	/* Engines 0 and 1 take turns through events 10 and 11, 500 rounds
	 * each: a lost wake-up would hang here. */
	enum { ROUNDS = 500 };
	struct tst_queue q0, q1;

	tst_queue_init(&q0, &tb, emu, NP_DMA_BASE(0), 1024);
	tst_queue_init(&q1, &tb, emu, NP_DMA_BASE(1), 1024);
	for (uint32_t i = 0; i < ROUNDS; i++) {
		struct np_dma_desc d = tst_dma(NP_DMA_OP_FENCE, 0, 0, 0);

		d.flags = NP_DESC_F_WAIT | NP_DESC_F_SIGNAL;
		d.wait_event = 10;
		d.wait_value = i;
		d.signal_event = 11;
		tst_queue_put(&q0, &d);
		d.wait_event = 11;
		d.wait_value = i + 1;
		d.signal_event = 10;
		tst_queue_put(&q1, &d);
	}
	tst_kick(&q1);
	tst_kick(&q0);
	ck_assert_uint_eq(tst_wait_completed(&q0, ROUNDS), ROUNDS);
	ck_assert_uint_eq(tst_wait_completed(&q1, ROUNDS), ROUNDS);
	ck_assert_uint_eq(tst_rd(emu, NP_MBOX_EVENT(10)), ROUNDS);
	ck_assert_uint_eq(tst_rd(emu, NP_MBOX_EVENT(11)), ROUNDS);
}
END_TEST

Suite *np_suite_events(void)
{
	Suite *s = suite_create("emu_events");
	TCase *tc = tcase_create("events");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, wait_blocks_until_mailbox);
	tcase_add_test(tc, wait_already_satisfied);
	tcase_add_test(tc, wait_is_wrap_aware);
	tcase_add_test(tc, wait_timeout);
	tcase_add_test(tc, fence_orders_engines);
	tcase_add_test(tc, signal_counts);
	tcase_add_test(tc, signal_raises_mailbox_irq);
	tcase_add_test(tc, effect_order);
	tcase_add_test(tc, compute_nop_jobs);
	tcase_add_test(tc, card_to_card_with_credits);
	tcase_add_test(tc, queue_reset_while_waiting);
	tcase_add_test(tc, ping_pong_between_engines);
	tcase_add_test(tc, statistics_count_waits_and_service);
	suite_add_tcase(s, tc);
	return s;
}
