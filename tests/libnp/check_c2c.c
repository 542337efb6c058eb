// SPDX-License-Identifier: MIT
/* Card-to-card: a tensor walks card 0 -> 1 -> ... -> N-1 -> host, with
 * peer mapping (direct C2P + mailbox notify) and through host bounce. */
#include <errno.h>
#include <string.h>

#include "np_abi.h"
#include "test.h"

#define TENSOR_LEN (3u * 1024u * 1024u + 333u)
#define PEER_EVENT 20u

static uint32_t event_now(struct np_card *c, unsigned int ev)
{
	uint32_t v;

	ck_assert_int_eq(np_card_event_read(c, ev, &v), 0);
	return v;
}

/* Host -> card 0 FB, then each card's engine pushes the tensor into the
 * next card's FB and rings its mailbox event, then the last card -> host.
 * Each hop also lands at a different FB offset. */
static void chain(struct np_ctx *ctx, enum np_p2p_mode expect)
{
	unsigned int n = np_ctx_num_cards(ctx);
	uint32_t ev[NP_MAX_CARDS];
	struct np_buf *b;
	uint64_t at = NP_CA_FB_BASE;
	uint8_t *p;

	ck_assert_int_eq(np_buf_alloc(ctx, TENSOR_LEN, &b), 0);
	p = np_buf_ptr(b);
	tst_fill(p, TENSOR_LEN, 2024);
	for (unsigned int i = 0; i < n; i++)
		ev[i] = event_now(np_ctx_card(ctx, i), PEER_EVENT);
	ck_assert_int_eq(tst_h2c(np_ctx_card(ctx, 0), b, 0, at, TENSOR_LEN), 0);
	for (unsigned int i = 0; i + 1 < n; i++) {
		struct np_card *src = np_ctx_card(ctx, i);
		struct np_card *dst = np_ctx_card(ctx, i + 1);
		struct np_xfer_spec s = {
			.op = NP_XFER_C2C,
			.flags = NP_XFER_F_PEER_EVENT,
			.engine = -1,
			.card_addr = at,
			.dst_addr = NP_CA_FB_BASE + ((i + 1) % 4) * 4096,
			.peer = dst,
			.len = TENSOR_LEN,
			.peer_event = PEER_EVENT,
		};

		/* Emulated peers always map; a VFIO platform may refuse a
		 * BAR mapping and bounce instead, which must work as well. */
		if (tst_is_emu() || expect == NP_P2P_BOUNCE)
			ck_assert_int_eq(np_card_p2p_mode(src, dst), expect);
		ck_assert_int_eq(np_xfer_run(src, &s), 0);
		ck_assert_uint_eq(event_now(dst, PEER_EVENT), ev[i + 1] + 1);
		at = s.dst_addr;
	}
	memset(p, 0, TENSOR_LEN);
	ck_assert_int_eq(tst_c2h(np_ctx_card(ctx, n - 1), b, 0, at, TENSOR_LEN),
			 0);
	ck_assert_msg(tst_check(p, TENSOR_LEN, 2024),
		      "the tensor changed on its way through %u cards", n);
	if (tst_is_emu())
		ck_assert_uint_eq(np_ctx_iommu_faults(ctx), 0);
	np_buf_free(b);
}

START_TEST(test_chain_direct)
{
	struct np_card_info in;

	np_card_info(np_ctx_card(tst_ctx, 0), &in);
	if (tst_is_emu()) {
		ck_assert_uint_ne(in.fb_iova, 0);
		ck_assert_uint_ne(in.mbox_iova, 0);
	}
	chain(tst_ctx, NP_P2P_DIRECT);
}
END_TEST

START_TEST(test_chain_bounce)
{
	struct np_open_opts o = tst_opts();
	struct np_card_info in;
	struct np_ctx *ctx;

	o.flags = NP_OPEN_F_FORCE_BOUNCE;
	/* A VFIO group opens once per process: free the cards first. */
	tst_teardown();
	ck_assert_int_eq(tst_open(&o, &ctx), 0);
	np_card_info(np_ctx_card(ctx, 0), &in);
	ck_assert_uint_eq(in.fb_iova, 0);
	chain(ctx, np_ctx_num_cards(ctx) > 1 ? NP_P2P_BOUNCE : NP_P2P_DIRECT);
	np_close(ctx);
}
END_TEST

START_TEST(test_c2c_pipelined)
{
	/* The receiving card waits on the event the sender's notify rings,
	 * then copies the tensor from its FB into SRAM: no host in between
	 * once both are queued (receiver queued first). */
	struct np_card *a = np_ctx_card(tst_ctx, 0);
	struct np_card *bc =
		np_ctx_card(tst_ctx, np_ctx_num_cards(tst_ctx) - 1);
	const size_t len = 1u << 20;
	struct np_xfer_spec recv = {
		.op = NP_XFER_COPY,
		.flags = NP_XFER_F_WAIT,
		.engine = 0,
		.card_addr = NP_CA_FB_BASE + (1u << 20),
		.dst_addr = NP_CA_SRAM_BASE + (5u << 20),
		.len = len,
		.wait_event = PEER_EVENT + 1,
		.wait_value = event_now(bc, PEER_EVENT + 1) + 1,
	};
	struct np_xfer_spec send = {
		.op = NP_XFER_C2C,
		.flags = NP_XFER_F_PEER_EVENT,
		.engine = -1,
		.card_addr = NP_CA_SRAM_BASE,
		.dst_addr = NP_CA_FB_BASE + (1u << 20),
		.peer = bc,
		.len = len,
		.peer_event = PEER_EVENT + 1,
	};
	struct np_xfer *xr, *xs;
	struct np_buf *b;

	ck_assert_int_eq(np_buf_alloc(tst_ctx, len, &b), 0);
	tst_fill(np_buf_ptr(b), len, 99);
	ck_assert_int_eq(tst_h2c(a, b, 0, NP_CA_SRAM_BASE, len), 0);
	ck_assert_int_eq(np_xfer_submit(bc, &recv, &xr), 0);
	ck_assert_int_eq(np_xfer_poll(xr), -EINPROGRESS);
	ck_assert_int_eq(np_xfer_submit(a, &send, &xs), 0);
	ck_assert_int_eq(np_xfer_wait(xs, NP_TIMEOUT_DEFAULT), 0);
	ck_assert_int_eq(np_xfer_wait(xr, NP_TIMEOUT_DEFAULT), 0);
	np_xfer_free(xs);
	np_xfer_free(xr);
	memset(np_buf_ptr(b), 0, len);
	ck_assert_int_eq(tst_c2h(bc, b, 0, recv.dst_addr, len), 0);
	ck_assert(tst_check(np_buf_ptr(b), len, 99));
	np_buf_free(b);
}
END_TEST

Suite *np_suite_c2c(void)
{
	Suite *s = suite_create("c2c");
	TCase *tc = tcase_create("c2c");

	tcase_add_checked_fixture(tc, tst_setup, tst_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_chain_direct);
	tcase_add_test(tc, test_chain_bounce);
	tcase_add_test(tc, test_c2c_pipelined);
	suite_add_tcase(s, tc);
	return s;
}
