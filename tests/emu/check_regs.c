// SPDX-License-Identifier: MIT
/*
 * Register behaviour: identity and size registers, read-only registers
 * ignoring writes, RW1C interrupt status, scratch, event interrupt masks,
 * the mailbox page, queue register reset values, telemetry ranges, and
 * guest mistakes (bad offsets, unaligned accesses) logged and harmless.
 */
#include <errno.h>
#include <time.h>

#include "test.h"

static struct tst_bus tb;
static struct np_emu *emu;

static void setup(void)
{
	tst_bus_init(&tb, 1u << 20);
	emu = tst_card(&tb, 0, 0, 0);
}

static void teardown(void)
{
	np_emu_destroy(emu);
	tst_bus_fini(&tb);
}

START_TEST(identity)
{
	uint32_t id = tst_rd(emu, NP_REG_ID);
	uint32_t cfg = tst_rd(emu, NP_REG_CONFIG);
	uint32_t cores = tst_rd(emu, NP_REG_CORES);
	uint32_t link = tst_rd(emu, NP_REG_LINK);

	ck_assert_uint_eq(id, NP_ID_VALUE);
	ck_assert_uint_eq(NP_ID_GET_MAGIC(id), NP_ID_MAGIC);
	ck_assert_uint_eq(NP_ID_GET_MAJOR(id), NP_ABI_MAJOR);
	ck_assert_uint_eq(NP_ID_GET_MINOR(id), NP_ABI_MINOR);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_CAPS),
			  NP_CAPS_P2P | NP_CAPS_COMPUTE | NP_CAPS_MAILBOX |
				  NP_CAPS_WRITEBACK);
	ck_assert_uint_eq(NP_CONFIG_DMA_ENGINES(cfg), 4);
	ck_assert_uint_eq(NP_CONFIG_COMPUTE_QUEUES(cfg), 1);
	ck_assert_uint_eq(NP_CONFIG_EVENTS(cfg), NP_NUM_EVENTS);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_SRAM_SIZE), TST_SRAM_SIZE);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_FB_SIZE), TST_FB_SIZE);
	ck_assert_uint_eq(cores & 0xff, NP_CORES_X);
	ck_assert_uint_eq((cores >> 8) & 0xff, NP_CORES_Y);
	ck_assert_uint_eq(cores >> 16, NP_CORE_SRAM_SIZE / 1024);
	ck_assert_uint_ne(tst_rd(emu, NP_REG_FW_VERSION), 0);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_SERIAL_LO), 0x55667788u);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_SERIAL_HI), 0x11223344u);
	ck_assert_uint_eq(NP_LINK_GEN(link), 3);
	ck_assert_uint_eq(NP_LINK_WIDTH(link), 8);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_STATUS), NP_STATUS_READY);
}
END_TEST

START_TEST(default_config_is_full_size)
{
	struct np_emu_bus bus = tst_bus_ops(&tb);
	struct np_emu *full;
	uint64_t fb_size;

	ck_assert_int_eq(np_emu_create(NULL, &bus, &full), 0);
	ck_assert_uint_eq(tst_rd(full, NP_REG_SRAM_SIZE), NP_SRAM_SIZE);
	ck_assert_uint_eq(tst_rd(full, NP_REG_FB_SIZE), NP_FB_SIZE);
	ck_assert_ptr_nonnull(np_emu_fb(full, &fb_size));
	ck_assert_uint_eq(fb_size, NP_FB_SIZE);
	ck_assert_uint_eq(NP_CONFIG_DMA_ENGINES(tst_rd(full, NP_REG_CONFIG)),
			  4);
	np_emu_destroy(full);
	np_emu_destroy(NULL);
}
END_TEST

START_TEST(bad_configs_rejected)
{
	static const struct np_emu_config bad[] = {
		{.sram_size = NP_SRAM_SIZE + 4096},
		{.sram_size = 4096 + 1},
		{.fb_size = 32 * 1024},
		{.fb_size = 3 * 1024 * 1024},
		{.fb_size = 2ull * NP_FB_SIZE},
		{.dma_engines = NP_MAX_DMA_ENGINES + 1},
	};
	struct np_emu_bus bus = tst_bus_ops(&tb);
	struct np_emu *e = (struct np_emu *)&bus;

	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(np_emu_create(&bad[i], &bus, &e), -EINVAL);
		ck_assert_ptr_null(e);
	}
	bus.dma_read = NULL;
	ck_assert_int_eq(np_emu_create(NULL, &bus, &e), -EINVAL);
	ck_assert_int_eq(np_emu_create(NULL, NULL, &e), -EINVAL);
}
END_TEST

START_TEST(read_only_registers_ignore_writes)
{
	static const uint32_t ro[] = {
		NP_REG_ID,
		NP_REG_CAPS,
		NP_REG_CONFIG,
		NP_REG_SRAM_SIZE,
		NP_REG_FB_SIZE,
		NP_REG_CORES,
		NP_REG_FW_VERSION,
		NP_REG_SERIAL_LO,
		NP_REG_SERIAL_HI,
		NP_REG_LINK,
		NP_REG_STATUS,
		NP_REG_DMA_ERRORS,
		NP_REG_DMA_DESCS,
		NP_REG_JOBS,
		NP_REG_TEMP_CRIT,
		NP_REG_TEMP_MAX,
		NP_REG_SRAM_CE,
		NP_REG_SRAM_UE,
		NP_REG_THROTTLE_COUNT,
	};

	for (unsigned int i = 0; i < sizeof(ro) / sizeof(ro[0]); i++) {
		uint32_t before = tst_rd(emu, ro[i]);
		unsigned int warnings = tst_warnings(&tb);

		tst_wr(emu, ro[i], ~before);
		ck_assert_uint_eq(tst_rd(emu, ro[i]), before);
		ck_assert_uint_eq(tst_warnings(&tb), warnings + 1);
		ck_assert(tst_log_contains(&tb, "read-only"));
	}
	/* CONTROL is write-only and reads as 0. */
	ck_assert_uint_eq(tst_rd(emu, NP_REG_CONTROL), 0);
}
END_TEST

START_TEST(scratch)
{
	ck_assert_uint_eq(tst_rd(emu, NP_REG_SCRATCH), 0);
	tst_wr(emu, NP_REG_SCRATCH, 0xa5a55a5a);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_SCRATCH), 0xa5a55a5a);
	tst_wr(emu, NP_REG_SCRATCH, 0);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_SCRATCH), 0);
	ck_assert_uint_eq(tst_warnings(&tb), 0);
}
END_TEST

/* The use registers keep what the loader writes and forget it at reset. */
START_TEST(use_registers)
{
	for (uint32_t r = NP_REG_USE_WEIGHTS; r <= NP_REG_USE_FB; r += 4) {
		ck_assert_uint_eq(tst_rd(emu, r), 0);
		tst_wr(emu, r, 0x01000000 + r);
	}
	for (uint32_t r = NP_REG_USE_WEIGHTS; r <= NP_REG_USE_FB; r += 4)
		ck_assert_uint_eq(tst_rd(emu, r), 0x01000000 + r);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_SCRATCH), 0);
	np_emu_reset(emu);
	for (uint32_t r = NP_REG_USE_WEIGHTS; r <= NP_REG_USE_FB; r += 4)
		ck_assert_uint_eq(tst_rd(emu, r), 0);
	ck_assert_uint_eq(tst_warnings(&tb), 0);
}
END_TEST

START_TEST(int_status_rw1c)
{
	/* Two completion interrupts on different engines set two bits. */
	struct tst_queue q0, q2;
	struct np_dma_desc d = tst_dma(NP_DMA_OP_NOP, 0, 0, 0);
	uint32_t both = 1u << NP_IRQ_DMA(0) | 1u << NP_IRQ_DMA(2);

	d.flags = NP_DESC_F_IRQ;
	tst_queue_init(&q0, &tb, emu, NP_DMA_BASE(0), TST_RING_ENTRIES);
	tst_queue_init(&q2, &tb, emu, NP_DMA_BASE(2), TST_RING_ENTRIES);
	tst_submit(&q0, &d);
	tst_submit(&q2, &d);
	tst_wait_completed(&q0, 1);
	tst_wait_completed(&q2, 1);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_INT_STATUS), both);
	/* Writing 0 changes nothing; writing a 1 clears only that bit. */
	tst_wr(emu, NP_REG_INT_STATUS, 0);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_INT_STATUS), both);
	tst_wr(emu, NP_REG_INT_STATUS, 1u << NP_IRQ_DMA(0));
	ck_assert_uint_eq(tst_rd(emu, NP_REG_INT_STATUS), 1u << NP_IRQ_DMA(2));
	tst_wr(emu, NP_REG_INT_STATUS, 0xffffffff);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_INT_STATUS), 0);
	/* Nothing was enabled, so nothing was delivered. */
	ck_assert_uint_eq(tst_irqs(&tb, NP_IRQ_DMA(0)), 0);
	ck_assert_uint_eq(tst_irqs(&tb, NP_IRQ_DMA(2)), 0);
}
END_TEST

START_TEST(int_enable_mask)
{
	tst_wr(emu, NP_REG_INT_ENABLE, 0xffffffff);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_INT_ENABLE),
			  (1u << NP_NUM_IRQS) - 1);
	ck_assert(tst_log_contains(&tb, "INT_ENABLE"));
	tst_wr(emu, NP_REG_INT_ENABLE, 1u << NP_IRQ_MAILBOX);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_INT_ENABLE), 1u << NP_IRQ_MAILBOX);
}
END_TEST

START_TEST(mailbox_counters)
{
	for (unsigned int n = 0; n < NP_NUM_EVENTS; n++)
		ck_assert_uint_eq(tst_rd(emu, NP_MBOX_EVENT(n)), 0);
	tst_wr(emu, NP_MBOX_EVENT(7), 5);
	tst_wr(emu, NP_MBOX_EVENT(7), 6);
	ck_assert_uint_eq(tst_rd(emu, NP_MBOX_EVENT(7)), 11);
	/* Counters wrap modulo 2^32. */
	tst_wr(emu, NP_MBOX_EVENT(63), 0xfffffffe);
	tst_wr(emu, NP_MBOX_EVENT(63), 3);
	ck_assert_uint_eq(tst_rd(emu, NP_MBOX_EVENT(63)), 1);
	ck_assert_uint_eq(tst_rd(emu, NP_MBOX_EVENT(0)), 0);
	/* Without EVENT_IRQ bits, nothing pends. */
	ck_assert_uint_eq(tst_rd(emu, NP_REG_EVENT_PEND_LO), 0);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_EVENT_PEND_HI), 0);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_INT_STATUS), 0);
	/* The rest of the mailbox page holds nothing. */
	tst_wr(emu, NP_MBOX_EVENT(NP_NUM_EVENTS), 1);
	ck_assert(tst_log_contains(&tb, "no register"));
	ck_assert_uint_eq(tst_rd(emu, NP_MBOX_EVENT(NP_NUM_EVENTS)), 0);
}
END_TEST

START_TEST(mailbox_irq_and_pend)
{
	tst_wr(emu, NP_REG_EVENT_IRQ_LO, 1u << 3);
	tst_wr(emu, NP_REG_EVENT_IRQ_HI, 1u << (40 - 32));
	ck_assert_uint_eq(tst_rd(emu, NP_REG_EVENT_IRQ_LO), 1u << 3);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_EVENT_IRQ_HI), 1u << 8);

	/* Vector disabled: pend and status bits set, no interrupt. */
	tst_wr(emu, NP_MBOX_EVENT(3), 1);
	tst_wr(emu, NP_MBOX_EVENT(4), 1);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_EVENT_PEND_LO), 1u << 3);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_INT_STATUS), 1u << NP_IRQ_MAILBOX);
	ck_assert_uint_eq(tst_irqs(&tb, NP_IRQ_MAILBOX), 0);

	tst_wr(emu, NP_REG_INT_STATUS, 1u << NP_IRQ_MAILBOX);
	tst_wr(emu, NP_REG_EVENT_PEND_LO, 1u << 3);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_EVENT_PEND_LO), 0);
	tst_wr(emu, NP_REG_INT_ENABLE, 1u << NP_IRQ_MAILBOX);
	tst_wr(emu, NP_MBOX_EVENT(40), 2);
	ck_assert(tst_wait_irqs(&tb, NP_IRQ_MAILBOX, 1));
	ck_assert_uint_eq(tst_rd(emu, NP_REG_EVENT_PEND_HI), 1u << 8);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_EVENT_PEND_LO), 0);
	tst_wr(emu, NP_REG_EVENT_PEND_HI, 1u << 8);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_EVENT_PEND_HI), 0);
	ck_assert_uint_eq(tst_rd(emu, NP_MBOX_EVENT(40)), 2);
}
END_TEST

START_TEST(queue_reset_values)
{
	static const uint32_t bases[] = {NP_DMA_BASE(0), NP_DMA_BASE(3),
					 NP_COMPUTE_BASE};

	for (unsigned int i = 0; i < 3; i++)
		for (uint32_t r = 0; r <= NP_Q_BYTES_HI; r += 4)
			ck_assert_uint_eq(tst_rd(emu, bases[i] + r), 0);
	ck_assert_uint_eq(tst_warnings(&tb), 0);
}
END_TEST

START_TEST(queue_registers_rw)
{
	uint32_t b = NP_DMA_BASE(1);

	tst_wr(emu, b + NP_Q_RING_LO, 0x12345640);
	tst_wr(emu, b + NP_Q_RING_HI, 0x9);
	tst_wr(emu, b + NP_Q_RING_SIZE, 256);
	tst_wr(emu, b + NP_Q_WB_LO, 0xabcdef20);
	tst_wr(emu, b + NP_Q_WB_HI, 0x7);
	tst_wr(emu, b + NP_Q_WAIT_TIMEOUT, 1000);
	tst_wr(emu, b + NP_Q_TAIL, 255);
	ck_assert_uint_eq(tst_rd(emu, b + NP_Q_RING_LO), 0x12345640);
	ck_assert_uint_eq(tst_rd(emu, b + NP_Q_RING_HI), 0x9);
	ck_assert_uint_eq(tst_rd(emu, b + NP_Q_RING_SIZE), 256);
	ck_assert_uint_eq(tst_rd(emu, b + NP_Q_WB_LO), 0xabcdef20);
	ck_assert_uint_eq(tst_rd(emu, b + NP_Q_WB_HI), 0x7);
	ck_assert_uint_eq(tst_rd(emu, b + NP_Q_WAIT_TIMEOUT), 1000);
	ck_assert_uint_eq(tst_rd(emu, b + NP_Q_TAIL), 255);
	ck_assert_uint_eq(tst_warnings(&tb), 0);

	/* Read-only queue registers. */
	tst_wr(emu, b + NP_Q_HEAD, 5);
	ck_assert_uint_eq(tst_rd(emu, b + NP_Q_HEAD), 0);
	ck_assert(tst_log_contains(&tb, "read-only register HEAD"));
	tst_wr(emu, b + NP_Q_COMPLETED, 5);
	ck_assert_uint_eq(tst_rd(emu, b + NP_Q_COMPLETED), 0);
	tst_wr(emu, b + NP_Q_STATUS, 0xf);
	ck_assert_uint_eq(tst_rd(emu, b + NP_Q_STATUS), 0);
	tst_wr(emu, b + NP_Q_ERROR, 3);
	ck_assert_uint_eq(tst_rd(emu, b + NP_Q_ERROR), 0);
	ck_assert_uint_eq(tst_warnings(&tb), 4);
}
END_TEST

START_TEST(bad_accesses_are_harmless)
{
	unsigned int w = tst_warnings(&tb);

	/* Beyond BAR0, unaligned, holes, absent engine, beyond a block. */
	ck_assert_uint_eq(tst_rd(emu, NP_REGS_SIZE), 0);
	ck_assert_uint_eq(np_emu_mmio_read(emu, ~0ull), 0);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_SCRATCH + 1), 0);
	ck_assert(tst_log_contains(&tb, "unaligned"));
	ck_assert_uint_eq(tst_rd(emu, 0x03c), 0);
	ck_assert_uint_eq(tst_rd(emu, 0x800), 0);
	ck_assert_uint_eq(tst_rd(emu, NP_DMA_BASE(5) + NP_Q_RING_SIZE), 0);
	ck_assert(tst_log_contains(&tb, "not present"));
	ck_assert_uint_eq(tst_rd(emu, NP_DMA_BASE(0) + 0x80), 0);
	ck_assert_uint_eq(tst_rd(emu, 0x4000), 0);
	ck_assert_uint_eq(tst_warnings(&tb), w + 8);

	tst_wr(emu, NP_REGS_SIZE + 4, 1);
	tst_wr(emu, NP_REG_SCRATCH + 2, 0xffffffff);
	tst_wr(emu, 0x03c, 1);
	tst_wr(emu, NP_DMA_BASE(7) + NP_Q_CTRL, NP_Q_CTRL_ENABLE);
	tst_wr(emu, NP_COMPUTE_BASE + 0xfc, 1);
	tst_wr(emu, 0xfffc, 1);
	ck_assert_uint_eq(tst_warnings(&tb), w + 14);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_SCRATCH), 0);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_STATUS), NP_STATUS_READY);
}
END_TEST

START_TEST(telemetry_idle)
{
	uint32_t temp = tst_rd(emu, NP_REG_TEMP);
	uint32_t power = tst_rd(emu, NP_REG_POWER);
	uint32_t up0, up1;
	struct timespec nap = {0, 20 * 1000 * 1000};

	ck_assert_uint_ge(temp, 35000);
	ck_assert_uint_le(temp, 50000);
	ck_assert_uint_lt(temp, tst_rd(emu, NP_REG_TEMP_MAX));
	ck_assert_uint_lt(tst_rd(emu, NP_REG_TEMP_MAX),
			  tst_rd(emu, NP_REG_TEMP_CRIT));
	ck_assert_uint_ge(power, 10000);
	ck_assert_uint_le(power, 20000);
	ck_assert_uint_ge(tst_rd(emu, NP_REG_VOLTAGE), 500);
	ck_assert_uint_le(tst_rd(emu, NP_REG_VOLTAGE), 1000);
	ck_assert_uint_gt(tst_rd(emu, NP_REG_CORE_CLK), 0);
	ck_assert_uint_le(tst_rd(emu, NP_REG_BUSY), 100);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_DMA_ERRORS), 0);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_DMA_DESCS), 0);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_JOBS), 0);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_DMA_BYTES_LO), 0);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_DMA_BYTES_HI), 0);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_STATUS) & NP_STATUS_THROTTLED, 0);

	up0 = tst_rd(emu, NP_REG_UPTIME_LO);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_UPTIME_HI), 0);
	nanosleep(&nap, NULL);
	up1 = tst_rd(emu, NP_REG_UPTIME_LO);
	ck_assert_uint_ge(up1, up0 + 20);
}
END_TEST

START_TEST(telemetry_under_load)
{
	/* Keep two engines copying for a while: power, temperature and
	 * BUSY rise above their idle values. */
	struct tst_queue q[2];
	uint32_t p0 = tst_rd(emu, NP_REG_POWER);
	uint32_t t0 = tst_rd(emu, NP_REG_TEMP);
	const uint32_t len = 1u << 20;

	for (unsigned int e = 0; e < 2; e++)
		tst_queue_init(&q[e], &tb, emu, NP_DMA_BASE(e), 8);
	for (uint32_t round = 1; round <= 40; round++) {
		for (unsigned int e = 0; e < 2; e++) {
			struct np_dma_desc d = tst_dma(
				NP_DMA_OP_COPY, NP_CA_SRAM_BASE + e * len,
				NP_CA_SRAM_BASE + (e + 2) * len, len);

			for (unsigned int i = 0; i < 7; i++)
				tst_queue_put(&q[e], &d);
			tst_kick(&q[e]);
		}
		for (unsigned int e = 0; e < 2; e++)
			ck_assert_uint_eq(tst_wait_completed(&q[e], round * 7),
					  round * 7);
	}
	ck_assert_uint_gt(tst_rd(emu, NP_REG_BUSY), 0);
	ck_assert_uint_gt(tst_rd(emu, NP_REG_POWER), p0);
	ck_assert_uint_gt(tst_rd(emu, NP_REG_TEMP), t0);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_DMA_DESCS), 2 * 40 * 7);
}
END_TEST

START_TEST(injected_faults)
{
	uint32_t clk = tst_rd(emu, NP_REG_CORE_CLK);

	tst_wr(emu, NP_REG_INT_ENABLE, 1u << NP_IRQ_ERROR);
	ck_assert_int_eq(np_emu_inject(emu, NP_EMU_FAULT_SRAM_CE), 0);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_SRAM_CE), 1);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_STATUS), NP_STATUS_READY);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_INT_STATUS), 0);

	ck_assert_int_eq(np_emu_inject(emu, NP_EMU_FAULT_SRAM_UE), 0);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_SRAM_UE), 1);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_STATUS),
			  NP_STATUS_READY | NP_STATUS_FATAL);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_INT_STATUS), 1u << NP_IRQ_ERROR);
	ck_assert(tst_wait_irqs(&tb, NP_IRQ_ERROR, 1));
	tst_wr(emu, NP_REG_CONTROL, NP_CONTROL_CLEAR_FATAL);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_STATUS), NP_STATUS_READY);
	tst_wr(emu, NP_REG_INT_STATUS, 1u << NP_IRQ_ERROR);

	ck_assert_int_eq(np_emu_inject(emu, NP_EMU_FAULT_OVERHEAT), 0);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_STATUS) & NP_STATUS_THROTTLED,
			  NP_STATUS_THROTTLED);
	ck_assert_uint_gt(tst_rd(emu, NP_REG_TEMP),
			  tst_rd(emu, NP_REG_TEMP_MAX));
	ck_assert_uint_lt(tst_rd(emu, NP_REG_CORE_CLK), clk);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_THROTTLE_COUNT), 1);
	ck_assert(tst_wait_irqs(&tb, NP_IRQ_ERROR, 2));

	ck_assert_int_eq(np_emu_inject(emu, (enum np_emu_fault)99), -EINVAL);
	np_emu_reset(emu);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_SRAM_CE), 0);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_SRAM_UE), 0);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_THROTTLE_COUNT), 0);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_STATUS), NP_STATUS_READY);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_CORE_CLK), clk);
}
END_TEST

Suite *np_suite_regs(void)
{
	Suite *s = suite_create("emu_regs");
	TCase *tc = tcase_create("regs");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, identity);
	tcase_add_test(tc, default_config_is_full_size);
	tcase_add_test(tc, bad_configs_rejected);
	tcase_add_test(tc, read_only_registers_ignore_writes);
	tcase_add_test(tc, scratch);
	tcase_add_test(tc, use_registers);
	tcase_add_test(tc, int_status_rw1c);
	tcase_add_test(tc, int_enable_mask);
	tcase_add_test(tc, mailbox_counters);
	tcase_add_test(tc, mailbox_irq_and_pend);
	tcase_add_test(tc, queue_reset_values);
	tcase_add_test(tc, queue_registers_rw);
	tcase_add_test(tc, bad_accesses_are_harmless);
	tcase_add_test(tc, telemetry_idle);
	tcase_add_test(tc, telemetry_under_load);
	tcase_add_test(tc, injected_faults);
	suite_add_tcase(s, tc);
	return s;
}
