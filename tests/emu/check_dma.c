// SPDX-License-Identifier: MIT
/*
 * DMA in every direction, with data checks: H2C into SRAM and the frame
 * buffer, C2H, COPY (also overlapping), C2P into a peer card's frame buffer
 * with a notify that rings its mailbox, ring wrap-around, several engines at
 * once, writeback records, completion interrupts and byte counters.
 */
#include <string.h>

#include "test.h"

#define HOST_SIZE (64u * 1024u * 1024u)

static struct tst_bus tb;
static struct np_emu *emu;

static void setup(void)
{
	tst_bus_init(&tb, HOST_SIZE);
	emu = tst_card(&tb, 0, 0, 0);
}

static void teardown(void)
{
	np_emu_destroy(emu);
	tst_bus_fini(&tb);
}

static uint8_t *card_mem(uint64_t ca)
{
	uint64_t fb_size;
	uint8_t *fb = np_emu_fb(emu, &fb_size);

	ck_assert_uint_ge(ca, NP_CA_FB_BASE);
	return fb + (ca - NP_CA_FB_BASE);
}

/* Host -> card address -> host round trip through two descriptors. */
static void round_trip(unsigned int engine, uint64_t ca, uint32_t len,
		       uint32_t seed)
{
	struct tst_queue q;
	uint64_t src = tst_alloc(&tb, len, 4096);
	uint64_t dst = tst_alloc(&tb, len, 4096);
	struct np_dma_desc d;

	tst_queue_init(&q, &tb, emu, NP_DMA_BASE(engine), TST_RING_ENTRIES);
	tst_fill(tst_ptr(&tb, src), len, seed);
	d = tst_dma(NP_DMA_OP_H2C, src, ca, len);
	tst_submit(&q, &d);
	d = tst_dma(NP_DMA_OP_C2H, ca, dst, len);
	tst_submit(&q, &d);
	ck_assert_uint_eq(tst_wait_completed(&q, 2), 2);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_ERROR), NP_ERR_NONE);
	ck_assert(tst_check(tst_ptr(&tb, dst), len, seed));
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_HEAD), 2);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_BYTES_LO), 2 * len);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_BYTES_HI), 0);
}

START_TEST(h2c_c2h_sram)
{
	/* Core (2, 0)'s SRAM, crossing into core (3, 0): 1 MiB + 5 bytes. */
	round_trip(0, NP_CA_SRAM_BASE + NP_CORE_SRAM_OFFSET(2, 0) + 100,
		   (1u << 20) + 5, 7);
}
END_TEST

START_TEST(h2c_c2h_fb)
{
	uint32_t len = 300 * 1024 + 3;

	round_trip(1, NP_CA_FB_BASE + 4096, len, 11);
	/* The frame buffer is also what the host sees as BAR2. */
	ck_assert(tst_check(card_mem(NP_CA_FB_BASE + 4096), len, 11));
}
END_TEST

START_TEST(h2c_last_byte_of_memories)
{
	round_trip(0, NP_CA_SRAM_BASE + TST_SRAM_SIZE - 1, 1, 3);
	round_trip(1, NP_CA_FB_BASE + TST_FB_SIZE - 64, 64, 5);
}
END_TEST

START_TEST(host_writes_bar2_card_reads)
{
	struct tst_queue q;
	uint32_t len = 64 * 1024;
	uint64_t dst = tst_alloc(&tb, len, 4096);
	struct np_dma_desc d;

	tst_fill(card_mem(NP_CA_FB_BASE), len, 99);
	tst_queue_init(&q, &tb, emu, NP_DMA_BASE(1), TST_RING_ENTRIES);
	d = tst_dma(NP_DMA_OP_C2H, NP_CA_FB_BASE, dst, len);
	tst_submit(&q, &d);
	ck_assert_uint_eq(tst_wait_completed(&q, 1), 1);
	ck_assert(tst_check(tst_ptr(&tb, dst), len, 99));
}
END_TEST

START_TEST(copy_fb_to_sram)
{
	struct tst_queue q;
	uint32_t len = 700 * 1024;
	uint64_t out = tst_alloc(&tb, len, 4096);
	uint64_t sram = NP_CA_SRAM_BASE + NP_CORE_SRAM_OFFSET(1, 0);
	struct np_dma_desc d;

	tst_fill(card_mem(NP_CA_FB_BASE + 8192), len, 21);
	tst_queue_init(&q, &tb, emu, NP_DMA_BASE(2), TST_RING_ENTRIES);
	d = tst_dma(NP_DMA_OP_COPY, NP_CA_FB_BASE + 8192, sram, len);
	tst_submit(&q, &d);
	d = tst_dma(NP_DMA_OP_C2H, sram, out, len);
	tst_submit(&q, &d);
	ck_assert_uint_eq(tst_wait_completed(&q, 2), 2);
	ck_assert(tst_check(tst_ptr(&tb, out), len, 21));
}
END_TEST

START_TEST(copy_overlapping)
{
	/* Forward and backward overlap, both larger than one chunk. */
	static const int64_t shifts[] = {4096 + 1, -(4096 + 1)};
	uint32_t len = 600 * 1024;
	struct tst_queue q;

	tst_queue_init(&q, &tb, emu, NP_DMA_BASE(0), TST_RING_ENTRIES);
	for (unsigned int i = 0; i < 2; i++) {
		uint64_t src = NP_CA_FB_BASE + 65536;
		uint64_t dst = src + (uint64_t)shifts[i];
		struct np_dma_desc d;

		tst_fill(card_mem(src), len, 40 + i);
		d = tst_dma(NP_DMA_OP_COPY, src, dst, len);
		tst_submit(&q, &d);
		ck_assert_uint_eq(tst_wait_completed(&q, i + 1), i + 1);
		ck_assert(tst_check(card_mem(dst), len, 40 + i));
	}
}
END_TEST

START_TEST(max_length_transfer)
{
	struct np_emu *big;
	struct tst_queue q;
	uint64_t src = tst_alloc(&tb, NP_DMA_MAX_LEN, 4096);
	uint64_t dst = tst_alloc(&tb, NP_DMA_MAX_LEN, 4096);
	struct np_dma_desc d;

	big = tst_card(&tb, 32u << 20, 0, 1);
	tst_fill(tst_ptr(&tb, src), NP_DMA_MAX_LEN, 5);
	tst_queue_init(&q, &tb, big, NP_DMA_BASE(0), TST_RING_ENTRIES);
	d = tst_dma(NP_DMA_OP_H2C, src, NP_CA_SRAM_BASE + 4096, NP_DMA_MAX_LEN);
	tst_submit(&q, &d);
	d = tst_dma(NP_DMA_OP_C2H, NP_CA_SRAM_BASE + 4096, dst, NP_DMA_MAX_LEN);
	tst_submit(&q, &d);
	ck_assert_uint_eq(tst_wait_completed(&q, 2), 2);
	ck_assert_int_eq(
		memcmp(tst_ptr(&tb, src), tst_ptr(&tb, dst), NP_DMA_MAX_LEN),
		0);
	ck_assert_uint_eq(tst_rd(big, NP_REG_DMA_BYTES_LO), 2 * NP_DMA_MAX_LEN);
	ck_assert_uint_eq(tst_rd(big, NP_REG_DMA_BYTES_HI), 0);
	np_emu_destroy(big);
}
END_TEST

START_TEST(c2p_to_peer_with_notify)
{
	struct tst_bus tb_peer;
	struct np_emu *peer;
	struct tst_queue q;
	uint32_t len = 512 * 1024 + 17;
	uint64_t src = tst_alloc(&tb, len, 4096);
	uint64_t peer_fb_size;
	uint8_t *peer_fb;
	struct np_dma_desc d;

	tst_bus_init(&tb_peer, 1u << 20);
	peer = tst_card(&tb_peer, 0, 0, 1);
	tb.peer = peer;
	peer_fb = np_emu_fb(peer, &peer_fb_size);

	/* Host -> this card's SRAM, then C2P into the peer's frame buffer;
	 * the notify adds 3 to the peer's event 5, and again for a second
	 * descriptor (credits accumulate). */
	tst_fill(tst_ptr(&tb, src), len, 77);
	tst_queue_init(&q, &tb, emu, NP_DMA_BASE(3), TST_RING_ENTRIES);
	d = tst_dma(NP_DMA_OP_H2C, src, NP_CA_SRAM_BASE, len);
	tst_submit(&q, &d);
	d = tst_dma(NP_DMA_OP_C2P, NP_CA_SRAM_BASE, TST_PEER_FB_BASE + 1024,
		    len);
	d.flags = NP_DESC_F_NOTIFY;
	d.notify_addr = TST_PEER_MBOX_BASE + 5 * 4;
	d.notify_data = 3;
	tst_submit(&q, &d);
	d = tst_dma(NP_DMA_OP_NOP, 0, 0, 0);
	d.flags = NP_DESC_F_NOTIFY;
	d.notify_addr = TST_PEER_MBOX_BASE + 5 * 4;
	d.notify_data = 2;
	tst_submit(&q, &d);
	ck_assert_uint_eq(tst_wait_completed(&q, 3), 3);

	ck_assert(tst_check(peer_fb + 1024, len, 77));
	ck_assert_uint_eq(tst_rd(peer, NP_MBOX_EVENT(5)), 5);
	ck_assert_uint_eq(tst_rd(peer, NP_MBOX_EVENT(4)), 0);
	/* C2P bytes count like any other DMA. */
	ck_assert_uint_eq(tst_rd(emu, NP_REG_DMA_BYTES_LO), 2 * len);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_DMA_DESCS), 3);

	tb.peer = NULL;
	np_emu_destroy(peer);
	tst_bus_fini(&tb_peer);
}
END_TEST

START_TEST(ring_wraps)
{
	const uint32_t entries = 4, rounds = 11;
	struct tst_queue q;
	uint64_t src = tst_alloc(&tb, rounds * 4096, 4096);
	uint64_t dst = tst_alloc(&tb, rounds * 4096, 4096);

	tst_fill(tst_ptr(&tb, src), rounds * 4096, 123);
	tst_queue_init(&q, &tb, emu, NP_DMA_BASE(0), entries);
	/* Submit in bursts of up to entries - 1 so the ring never overflows,
	 * waiting for each burst; the ring wraps several times. */
	for (uint32_t i = 0; i < rounds; i++) {
		struct np_dma_desc d =
			tst_dma(NP_DMA_OP_H2C, src + i * 4096,
				NP_CA_SRAM_BASE + i * 4096, 4096);

		d.user = 1000 + i;
		tst_queue_put(&q, &d);
		if (i % (entries - 1) == entries - 2 || i == rounds - 1) {
			tst_kick(&q);
			ck_assert_uint_eq(tst_wait_completed(&q, i + 1), i + 1);
		}
	}
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_HEAD), rounds % entries);
	ck_assert_uint_eq(tst_wb(&q)->head, rounds % entries);
	ck_assert_uint_eq(tst_wb(&q)->completed, rounds);
	ck_assert_uint_eq(tst_wb(&q)->user, 1000 + rounds - 1);
	{
		struct np_dma_desc d = tst_dma(NP_DMA_OP_C2H, NP_CA_SRAM_BASE,
					       dst, rounds * 4096);

		tst_submit(&q, &d);
		ck_assert_uint_eq(tst_wait_completed(&q, rounds + 1),
				  rounds + 1);
	}
	ck_assert(tst_check(tst_ptr(&tb, dst), rounds * 4096, 123));
}
END_TEST

START_TEST(engines_in_parallel)
{
	const unsigned int engines = NP_MAX_DMA_ENGINES, per = 8;
	const uint32_t len = 64 * 1024;
	struct np_emu *card;
	struct tst_queue q[NP_MAX_DMA_ENGINES];
	uint64_t src = tst_alloc(&tb, engines * per * len, 4096);
	uint64_t dst = tst_alloc(&tb, engines * per * len, 4096);

	card = tst_card(&tb, 0, 0, engines);
	ck_assert_uint_eq(NP_CONFIG_DMA_ENGINES(tst_rd(card, NP_REG_CONFIG)),
			  engines);
	tst_fill(tst_ptr(&tb, src), engines * per * len, 31);
	for (unsigned int e = 0; e < engines; e++) {
		tst_queue_init(&q[e], &tb, card, NP_DMA_BASE(e),
			       TST_RING_ENTRIES);
		for (unsigned int i = 0; i < per; i++) {
			uint64_t off = (uint64_t)(e * per + i) * len;
			struct np_dma_desc d =
				tst_dma(NP_DMA_OP_H2C, src + off,
					NP_CA_SRAM_BASE + off, len);

			tst_queue_put(&q[e], &d);
			d = tst_dma(NP_DMA_OP_C2H, NP_CA_SRAM_BASE + off,
				    dst + off, len);
			tst_queue_put(&q[e], &d);
		}
	}
	for (unsigned int e = 0; e < engines; e++)
		tst_kick(&q[e]);
	for (unsigned int e = 0; e < engines; e++)
		ck_assert_uint_eq(tst_wait_completed(&q[e], 2 * per), 2 * per);
	ck_assert(tst_check(tst_ptr(&tb, dst), engines * per * len, 31));
	ck_assert_uint_eq(tst_rd(card, NP_REG_DMA_DESCS), engines * per * 2);
	np_emu_destroy(card);
}
END_TEST

START_TEST(writeback_and_irq)
{
	struct tst_queue q;
	struct np_dma_desc d = tst_dma(NP_DMA_OP_NOP, 0, 0, 0);

	tst_wr(emu, NP_REG_INT_ENABLE, 1u << NP_IRQ_DMA(1));
	tst_queue_init(&q, &tb, emu, NP_DMA_BASE(1), TST_RING_ENTRIES);
	d.user = 0xfeedfacecafebeefull;
	tst_submit(&q, &d);
	ck_assert_uint_eq(tst_wait_completed(&q, 1), 1);
	ck_assert_uint_eq(tst_wb(&q)->head, 1);
	ck_assert_uint_eq(tst_wb(&q)->completed, 1);
	ck_assert_uint_eq(tst_wb(&q)->status, NP_Q_STATUS_ENABLED);
	ck_assert_uint_eq(tst_wb(&q)->error, NP_ERR_NONE);
	ck_assert_uint_eq(tst_wb(&q)->user, 0xfeedfacecafebeefull);
	ck_assert_uint_eq(tst_wb(&q)->rsvd, 0);
	/* No F_IRQ: no interrupt. */
	ck_assert_uint_eq(tst_irqs(&tb, NP_IRQ_DMA(1)), 0);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_INT_STATUS), 0);

	d.flags = NP_DESC_F_IRQ;
	d.user = 2;
	tst_submit(&q, &d);
	ck_assert(tst_wait_irqs(&tb, NP_IRQ_DMA(1), 1));
	ck_assert_uint_eq(tst_rd(emu, NP_REG_INT_STATUS), 1u << NP_IRQ_DMA(1));
	ck_assert_uint_eq(tst_wb(&q)->completed, 2);
	ck_assert_uint_eq(tst_wb(&q)->user, 2);

	/* Disabled vector: status bit set, nothing delivered. */
	tst_wr(emu, NP_REG_INT_STATUS, 1u << NP_IRQ_DMA(1));
	tst_wr(emu, NP_REG_INT_ENABLE, 0);
	tst_submit(&q, &d);
	ck_assert_uint_eq(tst_wait_completed(&q, 3), 3);
	ck_assert_uint_eq(tst_rd(emu, NP_REG_INT_STATUS), 1u << NP_IRQ_DMA(1));
	ck_assert_uint_eq(tst_irqs(&tb, NP_IRQ_DMA(1)), 1);
	/* Enabling a vector whose status bit is set delivers it. */
	tst_wr(emu, NP_REG_INT_ENABLE, 1u << NP_IRQ_DMA(1));
	ck_assert(tst_wait_irqs(&tb, NP_IRQ_DMA(1), 2));
}
END_TEST

START_TEST(no_writeback_address)
{
	struct tst_queue q;
	struct np_dma_desc d = tst_dma(NP_DMA_OP_NOP, 0, 0, 0);
	struct np_queue_wb *wb;

	tst_queue_init(&q, &tb, emu, NP_DMA_BASE(0), TST_RING_ENTRIES);
	wb = tst_ptr(&tb, q.wb);
	tst_wr(emu, q.base + NP_Q_CTRL, 0);
	tst_wr(emu, q.base + NP_Q_WB_LO, 0);
	tst_wr(emu, q.base + NP_Q_WB_HI, 0);
	tst_wr(emu, q.base + NP_Q_CTRL, NP_Q_CTRL_ENABLE);
	tst_submit(&q, &d);
	ck_assert_uint_eq(tst_wait_completed(&q, 1), 1);
	ck_assert_uint_eq(wb->completed, 0);
	ck_assert_uint_eq(wb->head, 0);
}
END_TEST

START_TEST(disable_stops_fetching)
{
	struct tst_queue q;
	struct np_dma_desc d = tst_dma(NP_DMA_OP_NOP, 0, 0, 0);

	tst_queue_init(&q, &tb, emu, NP_DMA_BASE(0), TST_RING_ENTRIES);
	tst_wr(emu, q.base + NP_Q_CTRL, 0);
	ck_assert_uint_eq(
		tst_rd(emu, q.base + NP_Q_STATUS) & NP_Q_STATUS_ENABLED, 0);
	tst_submit(&q, &d);
	tst_submit(&q, &d);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_TAIL), 2);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_HEAD), 0);
	tst_wr(emu, q.base + NP_Q_CTRL, NP_Q_CTRL_ENABLE);
	ck_assert_uint_eq(tst_wait_completed(&q, 2), 2);
	ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_HEAD), 2);
}
END_TEST

START_TEST(record_before_registers)
{
	/* Whenever NP_Q_COMPLETED shows n, the record in host memory
	 * already says at least n: software may read either. */
	const uint32_t total = 1000;
	struct tst_queue q;
	struct np_dma_desc d = tst_dma(NP_DMA_OP_NOP, 0, 0, 0);
	volatile const struct np_queue_wb *wb;
	uint32_t seen = 0;

	tst_queue_init(&q, &tb, emu, NP_DMA_BASE(0), 1024);
	wb = tst_wb(&q);
	for (uint32_t i = 0; i < total; i++)
		tst_queue_put(&q, &d);
	tst_kick(&q);
	while (seen < total) {
		uint32_t reg = tst_rd(emu, q.base + NP_Q_COMPLETED);

		ck_assert_uint_ge(wb->completed, reg);
		ck_assert_uint_ge(reg, seen);
		ck_assert_uint_eq(tst_rd(emu, q.base + NP_Q_ERROR), 0);
		seen = reg;
	}
	ck_assert_uint_eq(wb->completed, total);
	ck_assert_uint_eq(wb->head, total);
}
END_TEST

Suite *np_suite_dma(void)
{
	Suite *s = suite_create("emu_dma");
	TCase *tc = tcase_create("dma");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, h2c_c2h_sram);
	tcase_add_test(tc, h2c_c2h_fb);
	tcase_add_test(tc, h2c_last_byte_of_memories);
	tcase_add_test(tc, host_writes_bar2_card_reads);
	tcase_add_test(tc, copy_fb_to_sram);
	tcase_add_test(tc, copy_overlapping);
	tcase_add_test(tc, max_length_transfer);
	tcase_add_test(tc, c2p_to_peer_with_notify);
	tcase_add_test(tc, ring_wraps);
	tcase_add_test(tc, engines_in_parallel);
	tcase_add_test(tc, writeback_and_irq);
	tcase_add_test(tc, no_writeback_address);
	tcase_add_test(tc, disable_stops_fetching);
	tcase_add_test(tc, record_before_registers);
	suite_add_tcase(s, tc);
	return s;
}
