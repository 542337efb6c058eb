// SPDX-License-Identifier: MIT
/*
 * Every way a descriptor or a register write can stop a queue, with the
 * error code, ERR_INDEX, ERR_ADDR, the stop's writeback record and
 * interrupt; that nothing else is disturbed; and that NP_Q_CTRL_RESET brings
 * the queue back.
 */
#include <string.h>

#include "test.h"

static struct tst_bus tb;
static struct np_emu *emu;
static struct tst_queue q;
static uint64_t host_buf; /* 1 MiB of host memory */

#define HOST_BUF_SIZE (1u << 20)

static void setup(void)
{
	tst_bus_init(&tb, 8u << 20);
	emu = tst_card(&tb, 0, 0, 0);
	host_buf = tst_alloc(&tb, HOST_BUF_SIZE, 4096);
	tst_wr(emu, NP_REG_INT_ENABLE, (1u << NP_NUM_IRQS) - 1);
	tst_queue_init(&q, &tb, emu, NP_DMA_BASE(2), TST_RING_ENTRIES);
}

static void teardown(void)
{
	np_emu_destroy(emu);
	tst_bus_fini(&tb);
}

static uint64_t err_addr(void)
{
	return (uint64_t)tst_rd(emu, q.base + NP_Q_ERR_ADDR_HI) << 32 |
	       tst_rd(emu, q.base + NP_Q_ERR_ADDR_LO);
}

/* After the stop: queue reset, then the engine works again. */
static void check_recovers(void)
{
	struct np_dma_desc nop = tst_dma(NP_DMA_OP_NOP, 0, 0, 0);

	/* Enable is refused while the error stands. */
	tst_wr(emu, q.base + NP_Q_CTRL, NP_Q_CTRL_ENABLE);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_STATUS), NP_Q_STATUS_ERROR);
	tst_wr(emu, q.base + NP_Q_CTRL, NP_Q_CTRL_RESET);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_STATUS), 0);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_ERROR), 0);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_ERR_INDEX), 0);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_HEAD), 0);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_TAIL), 0);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_COMPLETED), 0);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_CTRL), 0);
	tst_wr(emu, q.base + NP_Q_CTRL, NP_Q_CTRL_ENABLE);
	q.tail = 0;
	nop.user = 4242;
	tst_submit(&q, &nop);
	ck_assert_uint_eq(tst_wait_completed(&q, 1), 1);
	ck_assert_uint_eq(tst_wb(&q)->user, 4242);
	ck_assert_uint_eq(tst_wb(&q)->error, NP_ERR_NONE);
}

/*
 * Submit a good NOP, then bad, then another NOP: the queue stops at the
 * bad one with err and addr, and the third descriptor never runs.
 */
static void expect_stop(const struct np_dma_desc *bad, uint32_t err,
			uint64_t addr)
{
	struct np_dma_desc nop = tst_dma(NP_DMA_OP_NOP, 0, 0, 0);
	unsigned int irqs = tst_irqs(&tb, NP_IRQ_DMA(2));
	uint32_t errors = tst_rd(emu, NP_REG_DMA_ERRORS);
	uint32_t bad_index = (q.tail + 1) % q.entries;
	uint32_t done = tst_rd(emu, q.base + NP_Q_COMPLETED) + 1;

	nop.user = 77;
	tst_queue_put(&q, &nop);
	tst_queue_put(&q, bad);
	tst_queue_put(&q, &nop);
	tst_kick(&q);
	ck_assert_uint_eq(tst_wait_error(&q), err);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_STATUS), NP_Q_STATUS_ERROR);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_ERR_INDEX), bad_index);
	ck_assert_uint_eq(err_addr(), addr);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_HEAD), bad_index);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_COMPLETED), done);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_DMA_ERRORS), errors + 1);
	/* The stop is reported with a record and the queue's vector, F_IRQ
	 * or not. */
	ck_assert(tst_wait_irqs(&tb, NP_IRQ_DMA(2), irqs + 1));
	ck_assert_uint_eq(tst_wb(&q)->error, err);
	ck_assert_uint_eq(tst_wb(&q)->status, NP_Q_STATUS_ERROR);
	ck_assert_uint_eq(tst_wb(&q)->head, bad_index);
	ck_assert_uint_eq(tst_wb(&q)->completed, done);
	ck_assert_uint_eq(tst_wb(&q)->user, 77);
	ck_assert(tst_log_contains(&tb, "queue stopped"));
	check_recovers();
}

START_TEST(bad_opcode)
{
	struct np_dma_desc d = tst_dma(NP_DMA_OP_MAX + 1, 0, 0, 0);

	expect_stop(&d, NP_ERR_BAD_OPCODE, 0);
	d.opcode = 0xff;
	expect_stop(&d, NP_ERR_BAD_OPCODE, 0);
}
END_TEST

START_TEST(bad_flags)
{
	struct np_dma_desc d = tst_dma(NP_DMA_OP_NOP, 0, 0, 0);

	d.flags = NP_DESC_F_ALL + 1;
	expect_stop(&d, NP_ERR_BAD_FLAGS, 0);
	d.flags = 0x80;
	expect_stop(&d, NP_ERR_BAD_FLAGS, 0);
}
END_TEST

START_TEST(reserved_fields)
{
	struct np_dma_desc d =
		tst_dma(NP_DMA_OP_H2C, host_buf, NP_CA_SRAM_BASE, 64);

	d.rsvd[0] = 1;
	expect_stop(&d, NP_ERR_BAD_FLAGS, 0);
	d.rsvd[0] = 0;
	d.rsvd[1] = 1ull << 63;
	expect_stop(&d, NP_ERR_BAD_FLAGS, 0);
}
END_TEST

START_TEST(fence_without_wait)
{
	struct np_dma_desc d = tst_dma(NP_DMA_OP_FENCE, 0, 0, 0);

	d.flags = NP_DESC_F_SIGNAL;
	expect_stop(&d, NP_ERR_BAD_FLAGS, 0);
}
END_TEST

START_TEST(bad_length)
{
	struct np_dma_desc d =
		tst_dma(NP_DMA_OP_H2C, host_buf, NP_CA_SRAM_BASE, 0);

	expect_stop(&d, NP_ERR_BAD_LENGTH, 0);
	d.len = NP_DMA_MAX_LEN + 1;
	expect_stop(&d, NP_ERR_BAD_LENGTH, 0);
	d = tst_dma(NP_DMA_OP_COPY, NP_CA_FB_BASE, NP_CA_SRAM_BASE, 0);
	expect_stop(&d, NP_ERR_BAD_LENGTH, 0);
}
END_TEST

START_TEST(bad_event_index)
{
	struct np_dma_desc d = tst_dma(NP_DMA_OP_NOP, 0, 0, 0);

	d.flags = NP_DESC_F_WAIT;
	d.wait_event = NP_NUM_EVENTS;
	expect_stop(&d, NP_ERR_BAD_EVENT, 0);
	d.flags = NP_DESC_F_SIGNAL;
	d.wait_event = 0;
	d.signal_event = 0xff;
	expect_stop(&d, NP_ERR_BAD_EVENT, 0);
}
END_TEST

START_TEST(src_range)
{
	const uint64_t sram_end = NP_CA_SRAM_BASE + TST_SRAM_SIZE;
	const uint64_t fb_end = NP_CA_FB_BASE + TST_FB_SIZE;
	struct np_dma_desc d;

	/* Past the end of SRAM, straddling its end, in the hole between
	 * SRAM and FB, straddling the FB end, and at a wrapping address. */
	d = tst_dma(NP_DMA_OP_C2H, sram_end, host_buf, 4);
	expect_stop(&d, NP_ERR_SRC_RANGE, sram_end);
	d = tst_dma(NP_DMA_OP_C2H, sram_end - 4, host_buf, 8);
	expect_stop(&d, NP_ERR_SRC_RANGE, sram_end - 4);
	d = tst_dma(NP_DMA_OP_C2P, NP_CA_FB_BASE - 8, host_buf, 4);
	expect_stop(&d, NP_ERR_SRC_RANGE, NP_CA_FB_BASE - 8);
	d = tst_dma(NP_DMA_OP_COPY, fb_end - 16, NP_CA_SRAM_BASE, 17);
	expect_stop(&d, NP_ERR_SRC_RANGE, fb_end - 16);
	d = tst_dma(NP_DMA_OP_C2H, ~0ull - 3, host_buf, 16);
	expect_stop(&d, NP_ERR_SRC_RANGE, ~0ull - 3);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_DMA_BYTES_LO), 0);
}
END_TEST

START_TEST(dst_range)
{
	const uint64_t fb_end = NP_CA_FB_BASE + TST_FB_SIZE;
	struct np_dma_desc d;

	d = tst_dma(NP_DMA_OP_H2C, host_buf, fb_end, 1);
	expect_stop(&d, NP_ERR_DST_RANGE, fb_end);
	/* A range must lie in one memory, even if both ends are valid. */
	d = tst_dma(NP_DMA_OP_H2C, host_buf, NP_CA_SRAM_BASE, 0);
	d.len = 4096;
	d.dst = NP_CA_SRAM_BASE + TST_SRAM_SIZE - 2048;
	expect_stop(&d, NP_ERR_DST_RANGE, d.dst);
	d = tst_dma(NP_DMA_OP_COPY, NP_CA_SRAM_BASE, fb_end - 100, 101);
	expect_stop(&d, NP_ERR_DST_RANGE, fb_end - 100);
}
END_TEST

START_TEST(bus_read_refused)
{
	struct np_dma_desc d;
	uint32_t len = 3 * 256 * 1024;

	/* Unmapped address; then a fault in the middle of a transfer
	 * reports the address of the refused access. */
	d = tst_dma(NP_DMA_OP_H2C, 0x1000, NP_CA_SRAM_BASE, 64);
	expect_stop(&d, NP_ERR_BUS_READ, 0x1000);
	/* A bus range wrapping past 2^64 is refused as a whole. */
	d = tst_dma(NP_DMA_OP_H2C, ~0ull - 4095, NP_CA_SRAM_BASE, 8192);
	expect_stop(&d, NP_ERR_BUS_READ, ~0ull - 4095);
	tst_fault(&tb, host_buf + 300 * 1024, host_buf + 300 * 1024 + 1);
	d = tst_dma(NP_DMA_OP_H2C, host_buf, NP_CA_SRAM_BASE, len);
	expect_stop(&d, NP_ERR_BUS_READ, host_buf + 256 * 1024);
}
END_TEST

START_TEST(bus_write_refused)
{
	struct np_dma_desc d;

	d = tst_dma(NP_DMA_OP_C2H, NP_CA_SRAM_BASE, TST_HOST_BASE + (8u << 20),
		    8);
	expect_stop(&d, NP_ERR_BUS_WRITE, TST_HOST_BASE + (8u << 20));
	d = tst_dma(NP_DMA_OP_C2P, NP_CA_FB_BASE, TST_PEER_FB_BASE, 8);
	expect_stop(&d, NP_ERR_BUS_WRITE, TST_PEER_FB_BASE);
	d = tst_dma(NP_DMA_OP_C2H, NP_CA_SRAM_BASE, ~0ull, 2);
	expect_stop(&d, NP_ERR_BUS_WRITE, ~0ull);
}
END_TEST

START_TEST(notify_write_refused)
{
	struct np_dma_desc d = tst_dma(NP_DMA_OP_NOP, 0, 0, 0);

	d.flags = NP_DESC_F_NOTIFY | NP_DESC_F_SIGNAL;
	d.signal_event = 9;
	d.notify_addr = TST_PEER_MBOX_BASE;
	expect_stop(&d, NP_ERR_NOTIFY_WRITE, TST_PEER_MBOX_BASE);
	/* The signal before the notify happened. */
	ck_assert_uint_eq(tst_rd(emu, NP_MBOX_EVENT(9)), 1);
}
END_TEST

START_TEST(ring_fetch_refused)
{
	struct np_dma_desc nop = tst_dma(NP_DMA_OP_NOP, 0, 0, 0);
	uint32_t b = NP_DMA_BASE(0);

	/* A ring whose second slot lies beyond host memory. */
	tst_wr(emu, b + NP_Q_RING_LO,
	       (uint32_t)(TST_HOST_BASE + tb.host_size - 64));
	tst_wr(emu, b + NP_Q_RING_HI,
	       (uint32_t)((TST_HOST_BASE + tb.host_size - 64) >> 32));
	tst_wr(emu, b + NP_Q_RING_SIZE, 4);
	tst_wr(emu, b + NP_Q_CTRL, NP_Q_CTRL_ENABLE);
	memcpy(tb.host + tb.host_size - 64, &nop, sizeof(nop));
	tst_wr(emu, b + NP_Q_TAIL, 2);
	q.emu = emu;
	q.base = b;
	ck_assert_uint_eq(tst_wait_error(&q), NP_ERR_RING_FETCH);
	ck_assert_uint_eq(tst_rd(emu, b + NP_Q_ERR_INDEX), 1);
	ck_assert_uint_eq(tst_rd(emu, b + NP_Q_COMPLETED), 1);
	ck_assert_uint_eq(err_addr(), TST_HOST_BASE + tb.host_size);
	ck_assert(tst_wait_irqs(&tb, NP_IRQ_DMA(0), 1));
}
END_TEST

START_TEST(writeback_refused)
{
	struct np_dma_desc nop = tst_dma(NP_DMA_OP_NOP, 0, 0, 0);
	uint32_t b = NP_DMA_BASE(1);
	struct tst_queue q1;

	tst_queue_init(&q1, &tb, emu, b, 8);
	tst_wr(emu, b + NP_Q_CTRL, 0);
	tst_wr(emu, b + NP_Q_WB_LO, 0x20);
	tst_wr(emu, b + NP_Q_WB_HI, 0);
	tst_wr(emu, b + NP_Q_CTRL, NP_Q_CTRL_ENABLE);
	tst_submit(&q1, &nop);
	tst_submit(&q1, &nop);
	ck_assert_uint_eq(tst_wait_error(&q1), NP_ERR_WB_WRITE);
	/* The descriptor itself completed; the record did not land. */
	ck_assert_uint_eq(tst_rd(emu, b + NP_Q_COMPLETED), 1);
	ck_assert_uint_eq(tst_rd(emu, b + NP_Q_HEAD), 1);
	ck_assert_uint_eq(tst_rd(emu, b + NP_Q_ERR_INDEX), 0);
	ck_assert_uint_eq(tst_rd(emu, b + NP_Q_ERR_ADDR_LO), 0x20);
	ck_assert(tst_wait_irqs(&tb, NP_IRQ_DMA(1), 1));
	ck_assert_uint_eq(tst_rd(emu, NP_REG_DMA_ERRORS), 1);
}
END_TEST

START_TEST(bad_tail)
{
	unsigned int irqs = tst_irqs(&tb, NP_IRQ_DMA(2));

	tst_wr(emu, q.base + NP_Q_TAIL, TST_RING_ENTRIES);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_ERROR), NP_ERR_BAD_TAIL);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_STATUS), NP_Q_STATUS_ERROR);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_TAIL), 0);
	ck_assert(tst_log_contains(&tb, "NP_ERR_BAD_TAIL"));
	/* Record and interrupt follow from the engine. */
	ck_assert(tst_wait_irqs(&tb, NP_IRQ_DMA(2), irqs + 1));
	ck_assert_uint_eq(tst_wb(&q)->error, NP_ERR_BAD_TAIL);
	check_recovers();
}
END_TEST

static void expect_enable_refused(uint32_t b, const char *why)
{
	tst_wr(emu, b + NP_Q_CTRL, NP_Q_CTRL_ENABLE);
	ck_assert_uint_eq(tst_rd(emu, b + NP_Q_ERROR), NP_ERR_RING_CONFIG);
	ck_assert_uint_eq(tst_rd(emu, b + NP_Q_STATUS), NP_Q_STATUS_ERROR);
	ck_assert(tst_log_contains(&tb, why));
	tst_wr(emu, b + NP_Q_CTRL, NP_Q_CTRL_RESET);
	ck_assert_uint_eq(tst_rd(emu, b + NP_Q_STATUS), 0);
}

START_TEST(ring_config_invalid)
{
	uint32_t b = NP_DMA_BASE(3);
	uint64_t ring = tst_alloc(&tb, 64 * 64, 64);

	/* Nothing programmed. */
	expect_enable_refused(b, "ring size");
	tst_wr(emu, b + NP_Q_RING_SIZE, 3);
	expect_enable_refused(b, "ring size");
	tst_wr(emu, b + NP_Q_RING_SIZE, NP_RING_MAX_ENTRIES * 2);
	expect_enable_refused(b, "ring size");
	tst_wr(emu, b + NP_Q_RING_SIZE, 1);
	expect_enable_refused(b, "ring size");
	tst_wr(emu, b + NP_Q_RING_SIZE, 64);
	expect_enable_refused(b, "ring base");
	tst_wr(emu, b + NP_Q_RING_LO, (uint32_t)ring + 32);
	expect_enable_refused(b, "ring base");
	tst_wr(emu, b + NP_Q_RING_LO, (uint32_t)ring);
	tst_wr(emu, b + NP_Q_WB_LO, (uint32_t)ring + 16);
	expect_enable_refused(b, "writeback");
	tst_wr(emu, b + NP_Q_WB_LO, 0);
	tst_wr(emu, b + NP_Q_CTRL, NP_Q_CTRL_ENABLE);
	ck_assert_uint_eq(tst_rd(emu, b + NP_Q_STATUS), NP_Q_STATUS_ENABLED);
}
END_TEST

START_TEST(ring_reconfig_while_enabled)
{
	static const uint32_t regs[] = {NP_Q_RING_LO, NP_Q_RING_HI,
					NP_Q_RING_SIZE, NP_Q_WB_LO, NP_Q_WB_HI};

	/* Each ring register: the write is ignored and stops the queue. */
	for (unsigned int i = 0; i < 5; i++) {
		uint32_t before = tst_rd(emu, q.base + regs[i]);

		tst_wr(emu, q.base + regs[i], 0x1000);
		ck_assert_uint_eq(tst_rd(emu, q.base + regs[i]), before);
		ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_ERROR),
				  NP_ERR_RING_CONFIG);
		ck_assert(tst_log_contains(&tb, "while the queue is enabled"));
		check_recovers();
	}
}
END_TEST

START_TEST(resized_ring_needs_reset)
{
	struct np_dma_desc nop = tst_dma(NP_DMA_OP_NOP, 0, 0, 0);

	/* head = 5, then shrink the ring to 4 entries. */
	for (unsigned int i = 0; i < 5; i++)
		tst_queue_put(&q, &nop);
	tst_kick(&q);
	ck_assert_uint_eq(tst_wait_completed(&q, 5), 5);
	tst_wr(emu, q.base + NP_Q_CTRL, 0);
	tst_wr(emu, q.base + NP_Q_RING_SIZE, 4);
	tst_wr(emu, q.base + NP_Q_CTRL, NP_Q_CTRL_ENABLE);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_ERROR), NP_ERR_RING_CONFIG);
	ck_assert(tst_log_contains(&tb, "head or tail"));
}
END_TEST

START_TEST(error_leaves_other_queues_alone)
{
	struct tst_queue good;
	struct np_dma_desc bad = tst_dma(NP_DMA_OP_MAX + 1, 0, 0, 0);
	struct np_dma_desc d =
		tst_dma(NP_DMA_OP_H2C, host_buf, NP_CA_FB_BASE, 4096);

	tst_queue_init(&good, &tb, emu, NP_DMA_BASE(0), TST_RING_ENTRIES);
	tst_fill(tst_ptr(&tb, host_buf), 4096, 8);
	tst_submit(&q, &bad);
	ck_assert_uint_eq(tst_wait_error(&q), NP_ERR_BAD_OPCODE);
	tst_submit(&good, &d);
	ck_assert_uint_eq(tst_wait_completed(&good, 1), 1);
	ck_assert_uint_eq(tst_rd(emu, good.base + NP_Q_STATUS),
			  NP_Q_STATUS_ENABLED);
	ck_assert(tst_check(np_emu_fb(emu, NULL), 4096, 8));
	ck_assert_uint_eq(tst_rd(emu, NP_REG_STATUS), NP_STATUS_READY);
}
END_TEST

START_TEST(garbage_descriptors)
{
	/* Random bytes as descriptors: each stops the queue with some
	 * error code or completes, never anything else. */
	struct np_dma_desc d;

	for (uint32_t seed = 1; seed <= 200; seed++) {
		uint32_t st;

		tst_fill(&d, sizeof(d), seed);
		d.flags &= ~NP_DESC_F_WAIT; /* no waits on random events */
		if (d.opcode == NP_DMA_OP_FENCE)
			d.opcode = NP_DMA_OP_NOP;
		tst_submit(&q, &d);
		tst_wait_completed(&q,
				   tst_rd(emu, q.base + NP_Q_COMPLETED) + 1);
		st = tst_rd(emu, q.base + NP_Q_STATUS);
		if (st & NP_Q_STATUS_ERROR) {
			ck_assert_uint_ge(tst_rd(emu, q.base + NP_Q_ERROR), 1);
			ck_assert_uint_le(tst_rd(emu, q.base + NP_Q_ERROR),
					  NP_ERR_MAX);
			tst_wr(emu, q.base + NP_Q_CTRL,
			       NP_Q_CTRL_RESET | NP_Q_CTRL_ENABLE);
			q.tail = 0;
		}
	}
	ck_assert_uint_eq(tst_rd(emu, NP_REG_STATUS), NP_STATUS_READY);
}
END_TEST

START_TEST(compute_bad_jobs)
{
	struct tst_queue cq;
	struct np_job_desc j = {.opcode = NP_JOB_OP_MAX + 1};

	tst_queue_init(&cq, &tb, emu, NP_COMPUTE_BASE, 8);
	tst_submit(&cq, &j);
	ck_assert_uint_eq(tst_wait_error(&cq), NP_ERR_BAD_OPCODE);
	ck_assert(tst_wait_irqs(&tb, NP_IRQ_COMPUTE, 1));
	tst_wr(emu, cq.base + NP_Q_CTRL, NP_Q_CTRL_RESET | NP_Q_CTRL_ENABLE);
	cq.tail = 0;
	j.opcode = NP_JOB_OP_NOP;
	j.rsvd = 1;
	tst_submit(&cq, &j);
	ck_assert_uint_eq(tst_wait_error(&cq), NP_ERR_BAD_FLAGS);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_JOBS), 0);
}
END_TEST

Suite *np_suite_errors(void)
{
	Suite *s = suite_create("emu_errors");
	TCase *tc = tcase_create("errors");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, bad_opcode);
	tcase_add_test(tc, bad_flags);
	tcase_add_test(tc, reserved_fields);
	tcase_add_test(tc, fence_without_wait);
	tcase_add_test(tc, bad_length);
	tcase_add_test(tc, bad_event_index);
	tcase_add_test(tc, src_range);
	tcase_add_test(tc, dst_range);
	tcase_add_test(tc, bus_read_refused);
	tcase_add_test(tc, bus_write_refused);
	tcase_add_test(tc, notify_write_refused);
	tcase_add_test(tc, ring_fetch_refused);
	tcase_add_test(tc, writeback_refused);
	tcase_add_test(tc, bad_tail);
	tcase_add_test(tc, ring_config_invalid);
	tcase_add_test(tc, ring_reconfig_while_enabled);
	tcase_add_test(tc, resized_ring_needs_reset);
	tcase_add_test(tc, error_leaves_other_queues_alone);
	tcase_add_test(tc, garbage_descriptors);
	tcase_add_test(tc, compute_bad_jobs);
	suite_add_tcase(s, tc);
	return s;
}
