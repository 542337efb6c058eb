// SPDX-License-Identifier: MIT
/*
 * Deterministic fault injection (np_emu_inject_args): a DMA error on the
 * n-th descriptor, a queue that hangs, a card that stops answering, SRAM
 * bit flips under SECDED ECC (read by DMA and by a layer job), the fault
 * spelling hosts use, and that a card reset disarms everything.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "test.h"
#include "np_prog.h"

#define HOST_SIZE (8u * 1024u * 1024u)
#define BUF (64u * 1024u)

static struct tst_bus tb;
static struct np_emu *emu;
static uint64_t src, dst; /* BUF bytes of host memory each */

static void setup(void)
{
	tst_bus_init(&tb, HOST_SIZE);
	emu = tst_card(&tb, 0, 0, 0);
	tst_wr(emu, NP_REG_INT_ENABLE, (1u << NP_NUM_IRQS) - 1);
	src = tst_alloc(&tb, BUF, 4096);
	dst = tst_alloc(&tb, BUF, 4096);
}

static void teardown(void)
{
	np_emu_destroy(emu);
	tst_bus_fini(&tb);
}

static uint64_t err_addr(const struct tst_queue *q)
{
	return (uint64_t)tst_rd(emu, q->base + NP_Q_ERR_ADDR_HI) << 32 |
	       tst_rd(emu, q->base + NP_Q_ERR_ADDR_LO);
}

static void inject(enum np_emu_fault f, unsigned int engine, uint32_t n,
		   uint64_t addr, unsigned int bits)
{
	struct np_emu_fault_args a = {
		.engine = engine, .n = n, .addr = addr, .bits = bits};

	ck_assert_int_eq(np_emu_inject_args(emu, f, &a), 0);
}

/* Queue reset, then one NOP completes: the queue works again. */
static void queue_recovers(struct tst_queue *q)
{
	struct np_dma_desc nop = tst_dma(NP_DMA_OP_NOP, 0, 0, 0);

	tst_wr(emu, q->base + NP_Q_CTRL, NP_Q_CTRL_RESET | NP_Q_CTRL_ENABLE);
	q->tail = 0;
	tst_submit(q, &nop);
	ck_assert_uint_eq(tst_wait_completed(q, 1), 1);
	ck_assert_uint_eq(tst_rd(emu, q->base + NP_Q_ERROR), NP_ERR_NONE);
}

/* Move BUF bytes host -> card at ca -> host on queue q; returns the
 * queue's error. */
static uint32_t round_trip(struct tst_queue *q, uint64_t ca, uint32_t seed)
{
	uint32_t done = tst_rd(emu, q->base + NP_Q_COMPLETED);
	struct np_dma_desc d;

	tst_fill(tst_ptr(&tb, src), BUF, seed);
	memset(tst_ptr(&tb, dst), 0, BUF);
	d = tst_dma(NP_DMA_OP_H2C, src, ca, BUF);
	tst_submit(q, &d);
	d = tst_dma(NP_DMA_OP_C2H, ca, dst, BUF);
	tst_submit(q, &d);
	tst_wait_completed(q, done + 2);
	return tst_rd(emu, q->base + NP_Q_ERROR);
}

START_TEST(parse_spellings)
{
	struct np_emu_fault_args a;
	enum np_emu_fault f;
	static const char *const bad[] = {
		"",
		"sram",
		"dead:n=1",
		"dma-error",
		"dma-error:",
		"dma-error:engine=0",
		"dma-error:engine=0,n=0",
		"dma-error:engine=0,n=1,",
		"dma-error:engine=0,n=1,n=2",
		"dma-error:engine=8,n=1",
		"dma-error:engine=0,n=1,bits=1",
		"hang:engine=-1,n=1",
		"sram-flip:addr=0x100,bits=3",
		"sram-flip:addr=0x100",
		"sram-flip:addr=zz,bits=1",
	};

	ck_assert_int_eq(np_emu_fault_parse("dead", &f, &a), 0);
	ck_assert_int_eq(f, NP_EMU_FAULT_DEAD);
	ck_assert_int_eq(np_emu_fault_parse("overheat", &f, &a), 0);
	ck_assert_int_eq(f, NP_EMU_FAULT_OVERHEAT);
	ck_assert_int_eq(np_emu_fault_parse("dma-error:engine=3,n=5", &f, &a),
			 0);
	ck_assert_int_eq(f, NP_EMU_FAULT_DMA_ERROR);
	ck_assert_uint_eq(a.engine, 3);
	ck_assert_uint_eq(a.n, 5);
	ck_assert_int_eq(np_emu_fault_parse("hang:n=2,engine=compute", &f, &a),
			 0);
	ck_assert_int_eq(f, NP_EMU_FAULT_HANG);
	ck_assert_uint_eq(a.engine, NP_EMU_ENGINE_COMPUTE);
	ck_assert_uint_eq(a.n, 2);
	ck_assert_int_eq(
		np_emu_fault_parse("sram-flip:addr=0x1008,bits=2", &f, &a), 0);
	ck_assert_int_eq(f, NP_EMU_FAULT_SRAM_FLIP);
	ck_assert_uint_eq(a.addr, 0x1008);
	ck_assert_uint_eq(a.bits, 2);
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(np_emu_fault_parse(bad[i], &f, &a) == -EINVAL,
			      "'%s' accepted", bad[i]);
}
END_TEST

START_TEST(bad_arguments_refused)
{
	struct np_emu_fault_args a = {.engine = 4, .n = 1};

	/* tst_card's card has 4 engines: 0..3 and the compute queue. */
	ck_assert_int_eq(np_emu_inject_args(emu, NP_EMU_FAULT_DMA_ERROR, &a),
			 -EINVAL);
	ck_assert_int_eq(np_emu_inject(emu, NP_EMU_FAULT_HANG), -EINVAL);
	a.engine = 0;
	a.n = 0;
	ck_assert_int_eq(np_emu_inject_args(emu, NP_EMU_FAULT_HANG, &a),
			 -EINVAL);
	a.addr = TST_SRAM_SIZE;
	a.bits = 1;
	ck_assert_int_eq(np_emu_inject_args(emu, NP_EMU_FAULT_SRAM_FLIP, &a),
			 -EINVAL);
	a.addr = 0;
	a.bits = 3;
	ck_assert_int_eq(np_emu_inject_args(emu, NP_EMU_FAULT_SRAM_FLIP, &a),
			 -EINVAL);
	a.bits = 1;
	for (unsigned int i = 0; i < NP_EMU_MAX_FLIPS; i++) {
		a.addr = (uint64_t)i * 8;
		ck_assert_int_eq(
			np_emu_inject_args(emu, NP_EMU_FAULT_SRAM_FLIP, &a), 0);
	}
	a.addr = NP_EMU_MAX_FLIPS * 8;
	ck_assert_int_eq(np_emu_inject_args(emu, NP_EMU_FAULT_SRAM_FLIP, &a),
			 -ENOSPC);
	/* The same word again is no new entry. */
	a.addr = 4;
	ck_assert_int_eq(np_emu_inject_args(emu, NP_EMU_FAULT_SRAM_FLIP, &a),
			 0);
}
END_TEST

START_TEST(dma_error_on_nth_descriptor)
{
	struct np_dma_desc nop = tst_dma(NP_DMA_OP_NOP, 0, 0, 0);
	uint64_t ca = NP_CA_FB_BASE + 8192;
	uint32_t errors = tst_rd(emu, NP_REG_DMA_ERRORS);
	struct tst_queue q;
	struct np_dma_desc d;

	tst_queue_init(&q, &tb, emu, NP_DMA_BASE(1), TST_RING_ENTRIES);
	inject(NP_EMU_FAULT_DMA_ERROR, 1, 3, 0, 0);
	tst_fill(tst_ptr(&tb, src), BUF, 5);
	tst_queue_put(&q, &nop);
	tst_queue_put(&q, &nop);
	d = tst_dma(NP_DMA_OP_H2C, src, ca, BUF);
	tst_queue_put(&q, &d);
	tst_queue_put(&q, &nop);
	tst_kick(&q);
	ck_assert_uint_eq(tst_wait_error(&q), NP_ERR_BUS_READ);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_COMPLETED), 2);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_ERR_INDEX), 2);
	ck_assert_uint_eq(err_addr(&q), src);
	ck_assert_uint_eq(tst_wb(&q)->error, NP_ERR_BUS_READ);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_DMA_ERRORS), errors + 1);
	ck_assert(tst_wait_irqs(&tb, NP_IRQ_DMA(1), 1));
	/* Nothing of the descriptor moved. */
	ck_assert(!tst_check((uint8_t *)np_emu_fb(emu, NULL) + 8192, BUF, 5));
	/* The fault is spent: the queue runs the same transfer again. */
	queue_recovers(&q);
	ck_assert_uint_eq(round_trip(&q, ca, 5), NP_ERR_NONE);
	ck_assert(tst_check(tst_ptr(&tb, dst), BUF, 5));
}
END_TEST

START_TEST(dma_error_names_the_failed_access)
{
	struct np_dma_desc nop = tst_dma(NP_DMA_OP_NOP, 0, 0, 0);
	struct tst_queue q;
	struct np_dma_desc d;

	tst_queue_init(&q, &tb, emu, NP_DMA_BASE(0), TST_RING_ENTRIES);
	inject(NP_EMU_FAULT_DMA_ERROR, 0, 1, 0, 0);
	d = tst_dma(NP_DMA_OP_C2H, NP_CA_SRAM_BASE, dst, 4096);
	tst_submit(&q, &d);
	ck_assert_uint_eq(tst_wait_error(&q), NP_ERR_BUS_WRITE);
	ck_assert_uint_eq(err_addr(&q), dst);
	queue_recovers(&q);

	inject(NP_EMU_FAULT_DMA_ERROR, 0, 1, 0, 0);
	tst_submit(&q, &nop);
	ck_assert_uint_eq(tst_wait_error(&q), NP_ERR_RING_FETCH);
	ck_assert_uint_eq(err_addr(&q), q.ring + 1 * sizeof(nop));
	queue_recovers(&q);
}
END_TEST

struct busy_arg {
	struct tst_queue *q;
	uint32_t completed;
};

static bool busy_at(void *p)
{
	struct busy_arg *a = p;

	return (tst_rd(emu, a->q->base + NP_Q_STATUS) & NP_Q_STATUS_BUSY) &&
	       tst_rd(emu, a->q->base + NP_Q_COMPLETED) == a->completed;
}

static void hang_then_abort(uint32_t base, unsigned int engine)
{
	struct np_dma_desc nop = tst_dma(NP_DMA_OP_NOP, 0, 0, 0);
	struct timespec ms = {.tv_nsec = 20 * 1000 * 1000};
	unsigned int irqs = tst_irqs(&tb, engine == NP_EMU_ENGINE_COMPUTE ?
						  NP_IRQ_COMPUTE :
						  NP_IRQ_DMA(engine));
	struct tst_queue q;
	struct busy_arg a = {.q = &q, .completed = 1};

	tst_queue_init(&q, &tb, emu, base, TST_RING_ENTRIES);
	inject(NP_EMU_FAULT_HANG, engine, 2, 0, 0);
	nop.flags = NP_DESC_F_IRQ;
	for (unsigned int i = 0; i < 3; i++)
		tst_queue_put(&q, &nop);
	tst_kick(&q);
	ck_assert(tst_poll(busy_at, &a));
	/* A while later it still sits on the second descriptor. */
	nanosleep(&ms, NULL);
	ck_assert(busy_at(&a));
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_HEAD), 1);
	ck_assert_uint_eq(tst_wb(&q)->completed, 1);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_ERROR), NP_ERR_NONE);
	ck_assert_uint_eq(tst_irqs(&tb, engine == NP_EMU_ENGINE_COMPUTE ?
						NP_IRQ_COMPUTE :
						NP_IRQ_DMA(engine)),
			  irqs + 1);
	/* The documented abort ends the hang. */
	queue_recovers(&q);
}

START_TEST(dma_engine_hangs)
{
	hang_then_abort(NP_DMA_BASE(2), 2);
}
END_TEST

START_TEST(compute_queue_hangs)
{
	hang_then_abort(NP_COMPUTE_BASE, NP_EMU_ENGINE_COMPUTE);
}
END_TEST

START_TEST(hang_ends_with_card_reset)
{
	struct np_dma_desc nop = tst_dma(NP_DMA_OP_NOP, 0, 0, 0);
	struct tst_queue q;
	struct busy_arg a = {.q = &q, .completed = 0};

	tst_queue_init(&q, &tb, emu, NP_DMA_BASE(0), TST_RING_ENTRIES);
	inject(NP_EMU_FAULT_HANG, 0, 1, 0, 0);
	tst_submit(&q, &nop);
	ck_assert(tst_poll(busy_at, &a));
	np_emu_reset(emu);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_STATUS), NP_STATUS_READY);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_STATUS), 0);
}
END_TEST

START_TEST(dead_card)
{
	uint64_t ca = NP_CA_SRAM_BASE + 4096;
	unsigned int irqs = tst_irqs(&tb, NP_IRQ_DMA(0));
	struct tst_queue q;
	struct np_dma_desc d;

	tst_queue_init(&q, &tb, emu, NP_DMA_BASE(0), TST_RING_ENTRIES);
	/* A transfer in flight when the card dies never completes. */
	tst_gate_close(&tb, src, src + 1);
	d = tst_dma(NP_DMA_OP_H2C, src, ca, BUF);
	d.flags = NP_DESC_F_IRQ;
	tst_submit(&q, &d);
	ck_assert(tst_gate_wait_blocked(&tb));
	ck_assert_int_eq(np_emu_inject(emu, NP_EMU_FAULT_DEAD), 0);
	tst_gate_open(&tb);

	ck_assert_uint_eq(tst_rd(emu, NP_REG_ID), 0xffffffffu);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_STATUS), 0xffffffffu);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_TEMP), 0xffffffffu);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_COMPLETED), 0xffffffffu);
	/* Its own reset register is not heard either. */
	tst_wr(emu, NP_REG_CONTROL, NP_CONTROL_RESET);
	tst_wr(emu, NP_REG_SCRATCH, 0x1234);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_ID), 0xffffffffu);
	ck_assert_uint_eq(tst_wb(&q)->completed, 0);
	ck_assert_uint_eq(tst_irqs(&tb, NP_IRQ_DMA(0)), irqs);

	/* FLR brings it back, freshly reset. */
	np_emu_reset(emu);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_ID), NP_ID_VALUE);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_STATUS), NP_STATUS_READY);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_SCRATCH), 0);
	ck_assert_uint_eq(tst_wb(&q)->completed, 0);
	ck_assert_uint_eq(tst_irqs(&tb, NP_IRQ_DMA(0)), irqs);
	tst_queue_init(&q, &tb, emu, NP_DMA_BASE(0), TST_RING_ENTRIES);
	ck_assert_uint_eq(round_trip(&q, ca, 9), NP_ERR_NONE);
	ck_assert(tst_check(tst_ptr(&tb, dst), BUF, 9));
}
END_TEST

START_TEST(single_flip_corrected)
{
	uint64_t ca = NP_CA_SRAM_BASE + NP_CORE_SRAM_OFFSET(1, 0) + 512;
	struct tst_queue q;
	struct np_dma_desc d;

	tst_queue_init(&q, &tb, emu, NP_DMA_BASE(0), TST_RING_ENTRIES);
	ck_assert_uint_eq(round_trip(&q, ca, 3), NP_ERR_NONE);
	inject(NP_EMU_FAULT_SRAM_FLIP, 0, 0, ca + 100, 1);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_SRAM_CE), 0);

	memset(tst_ptr(&tb, dst), 0, BUF);
	d = tst_dma(NP_DMA_OP_C2H, ca, dst, BUF);
	tst_submit(&q, &d);
	ck_assert_uint_eq(tst_wait_completed(&q, 3), 3);
	ck_assert(tst_check(tst_ptr(&tb, dst), BUF, 3));
	ck_assert_uint_eq(tst_rd(emu, NP_REG_SRAM_CE), 1);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_SRAM_UE), 0);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_STATUS), NP_STATUS_READY);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_INT_STATUS) & (1u << NP_IRQ_ERROR),
			  0);
	/* Scrubbed: a second read counts nothing. */
	tst_submit(&q, &d);
	ck_assert_uint_eq(tst_wait_completed(&q, 4), 4);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_SRAM_CE), 1);
}
END_TEST

START_TEST(double_flip_uncorrected)
{
	uint64_t ca = NP_CA_SRAM_BASE + NP_CORE_SRAM_OFFSET(3, 0);
	uint64_t bad = ca + 1000; /* in the word at ca + 1000 & ~7 */
	struct tst_queue q;
	struct np_dma_desc d;

	tst_queue_init(&q, &tb, emu, NP_DMA_BASE(3), TST_RING_ENTRIES);
	ck_assert_uint_eq(round_trip(&q, ca, 4), NP_ERR_NONE);
	inject(NP_EMU_FAULT_SRAM_FLIP, 0, 0, bad, 2);

	d = tst_dma(NP_DMA_OP_C2H, ca, dst, BUF);
	tst_submit(&q, &d);
	ck_assert_uint_eq(tst_wait_error(&q), NP_ERR_SRAM_UE);
	ck_assert_uint_eq(err_addr(&q), bad & ~7ull);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_SRAM_UE), 1);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_STATUS),
			  NP_STATUS_READY | NP_STATUS_FATAL);
	ck_assert(tst_wait_irqs(&tb, NP_IRQ_ERROR, 1));

	/* Reads beside the word are fine; the word itself fails again. */
	queue_recovers(&q);
	d = tst_dma(NP_DMA_OP_C2H, ca, dst, 1000 & ~7u);
	tst_submit(&q, &d);
	ck_assert_uint_eq(tst_wait_completed(&q, 2), 2);
	d = tst_dma(NP_DMA_OP_COPY, bad, NP_CA_FB_BASE, 1);
	tst_submit(&q, &d);
	ck_assert_uint_eq(tst_wait_error(&q), NP_ERR_SRAM_UE);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_SRAM_UE), 2);

	/* Rewriting the word stores good check bits and data. */
	tst_wr(emu, NP_REG_CONTROL, NP_CONTROL_CLEAR_FATAL);
	queue_recovers(&q);
	ck_assert_uint_eq(round_trip(&q, ca, 6), NP_ERR_NONE);
	ck_assert(tst_check(tst_ptr(&tb, dst), BUF, 6));
	ck_assert_uint_eq(tst_rd(emu, NP_REG_SRAM_UE), 2);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_STATUS), NP_STATUS_READY);
}
END_TEST

/* A program header that claims core_bytes on every core; the job reads
 * that much of each core's SRAM before it validates the rest. */
static uint32_t job_over_flip(uint64_t flip_ca)
{
	struct npk_card c = {.magic = NPK_MAGIC, .core_bytes = 8192};
	uint64_t hdr = tst_alloc(&tb, sizeof(c), 64);
	struct tst_queue dq, cq;
	struct np_job_desc j = {0};
	struct np_dma_desc d;

	memcpy(tst_ptr(&tb, hdr), &c, sizeof(c));
	tst_queue_init(&dq, &tb, emu, NP_DMA_BASE(0), TST_RING_ENTRIES);
	d = tst_dma(NP_DMA_OP_H2C, hdr, NP_CA_SRAM_BASE, sizeof(c));
	tst_submit(&dq, &d);
	ck_assert_uint_eq(tst_wait_completed(&dq, 1), 1);
	inject(NP_EMU_FAULT_SRAM_FLIP, 0, 0, flip_ca, 2);

	tst_queue_init(&cq, &tb, emu, NP_COMPUTE_BASE, TST_RING_ENTRIES);
	j.opcode = NP_JOB_OP_LAYER;
	j.prog = NP_CA_SRAM_BASE;
	j.arg = NP_CA_FB_BASE;
	j.arg_len = 4096;
	j.out = NP_CA_FB_BASE + 4096;
	tst_submit(&cq, &j);
	return tst_wait_error(&cq);
}

START_TEST(layer_job_reads_flipped_weights)
{
	uint64_t flip = NP_CA_SRAM_BASE + NP_CORE_SRAM_OFFSET(2, 0) + 4000;

	ck_assert_uint_eq(job_over_flip(flip), NP_ERR_SRAM_UE);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_SRAM_UE), 1);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_STATUS) & NP_STATUS_FATAL,
			  NP_STATUS_FATAL);
}
END_TEST

START_TEST(layer_job_skips_sram_it_does_not_use)
{
	uint64_t flip = NP_CA_SRAM_BASE + NP_CORE_SRAM_OFFSET(2, 0) + 9000;

	ck_assert_uint_ne(job_over_flip(flip), NP_ERR_SRAM_UE);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_SRAM_UE), 0);
}
END_TEST

START_TEST(card_reset_disarms)
{
	uint64_t ca = NP_CA_SRAM_BASE + 65536;
	struct tst_queue q;

	inject(NP_EMU_FAULT_DMA_ERROR, 0, 1, 0, 0);
	inject(NP_EMU_FAULT_HANG, 1, 1, 0, 0);
	inject(NP_EMU_FAULT_SRAM_FLIP, 0, 0, ca, 2);
	np_emu_reset(emu);
	tst_wr(emu, NP_REG_INT_ENABLE, (1u << NP_NUM_IRQS) - 1);
	for (unsigned int e = 0; e < 2; e++) {
		tst_queue_init(&q, &tb, emu, NP_DMA_BASE(e), TST_RING_ENTRIES);
		ck_assert_uint_eq(round_trip(&q, ca, 10 + e), NP_ERR_NONE);
		ck_assert(tst_check(tst_ptr(&tb, dst), BUF, 10 + e));
	}
	ck_assert_uint_eq(tst_rd(emu, NP_REG_SRAM_UE), 0);
}
END_TEST

Suite *np_suite_faults(void)
{
	Suite *s = suite_create("emu_faults");
	TCase *tc = tcase_create("faults");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, parse_spellings);
	tcase_add_test(tc, bad_arguments_refused);
	tcase_add_test(tc, dma_error_on_nth_descriptor);
	tcase_add_test(tc, dma_error_names_the_failed_access);
	tcase_add_test(tc, dma_engine_hangs);
	tcase_add_test(tc, compute_queue_hangs);
	tcase_add_test(tc, hang_ends_with_card_reset);
	tcase_add_test(tc, dead_card);
	tcase_add_test(tc, single_flip_corrected);
	tcase_add_test(tc, double_flip_uncorrected);
	tcase_add_test(tc, layer_job_reads_flipped_weights);
	tcase_add_test(tc, layer_job_skips_sram_it_does_not_use);
	tcase_add_test(tc, card_reset_disarms);
	suite_add_tcase(s, tc);
	return s;
}
