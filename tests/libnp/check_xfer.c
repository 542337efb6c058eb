// SPDX-License-Identifier: MIT
/* Transfers on one card: every direction, splitting, concurrency on all
 * engines, completion fds, timeouts, IOMMU faults and bad requests. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/epoll.h>

#include "np_abi.h"
#include "test.h"

static struct np_card *card0(void)
{
	return np_ctx_card(tst_ctx, 0);
}

static void roundtrip(struct np_card *c, struct np_buf *b, uint64_t addr,
		      size_t len, unsigned int seed)
{
	uint8_t *p = np_buf_ptr(b);

	tst_fill(p, len, seed);
	ck_assert_int_eq(tst_h2c(c, b, 0, addr, len), 0);
	memset(p, 0, len);
	ck_assert_int_eq(tst_c2h(c, b, 0, addr, len), 0);
	ck_assert_msg(tst_check(p, len, seed),
		      "card %s: %zu bytes at 0x%llx came back changed",
		      np_card_name(c), len, (unsigned long long)addr);
}

START_TEST(test_h2c_c2h_sram_fb)
{
	static const size_t lens[] = {1, 3, 4096, 65539, 1u << 20};
	unsigned int n = np_ctx_num_cards(tst_ctx);
	struct np_card_info in;
	struct np_buf *b;

	ck_assert_int_eq(np_buf_alloc(tst_ctx, 1u << 20, &b), 0);
	for (unsigned int i = 0; i < n; i++) {
		struct np_card *c = np_ctx_card(tst_ctx, i);

		np_card_info(c, &in);
		for (unsigned int k = 0; k < 5; k++) {
			roundtrip(c, b, NP_CA_SRAM_BASE + 12345 * k, lens[k],
				  i * 10 + k);
			roundtrip(c, b, NP_CA_FB_BASE + in.fb_size - lens[k],
				  lens[k], i * 10 + k + 5);
		}
		/* Last byte of SRAM. */
		roundtrip(c, b, NP_CA_SRAM_BASE + in.sram_size - 1, 1, i);
	}
	np_buf_free(b);
}
END_TEST

START_TEST(test_split_and_offset)
{
	/* More than NP_DMA_MAX_LEN: two descriptors, one completion. */
	size_t len = NP_DMA_MAX_LEN + 3 * 4096 + 7;
	struct np_card *c = card0();
	struct np_buf *b;
	uint8_t *p;

	ck_assert_int_eq(np_buf_alloc(tst_ctx, len + 4096, &b), 0);
	p = np_buf_ptr(b);
	tst_fill(p + 100, len, 5);
	ck_assert_int_eq(tst_h2c(c, b, 100, NP_CA_SRAM_BASE + 64, len), 0);
	memset(p, 0, len + 4096);
	ck_assert_int_eq(tst_c2h(c, b, 9, NP_CA_SRAM_BASE + 64, len), 0);
	ck_assert(tst_check(p + 9, len, 5));
	ck_assert_uint_eq(p[8], 0);
	ck_assert_uint_eq(p[9 + len], 0);
	np_buf_free(b);
}
END_TEST

START_TEST(test_copy_on_card)
{
	struct np_card *c = card0();
	struct np_xfer_spec s = {
		.op = NP_XFER_COPY,
		.engine = -1,
		.card_addr = NP_CA_SRAM_BASE + 8192,
		.dst_addr = NP_CA_FB_BASE + 4096,
		.len = 300000,
	};
	struct np_buf *b;

	ck_assert_int_eq(np_buf_alloc(tst_ctx, 300000, &b), 0);
	tst_fill(np_buf_ptr(b), 300000, 31);
	ck_assert_int_eq(tst_h2c(c, b, 0, s.card_addr, 300000), 0);
	ck_assert_int_eq(np_xfer_run(c, &s), 0);
	memset(np_buf_ptr(b), 0, 300000);
	ck_assert_int_eq(tst_c2h(c, b, 0, s.dst_addr, 300000), 0);
	ck_assert(tst_check(np_buf_ptr(b), 300000, 31));
	np_buf_free(b);
}
END_TEST

struct worker {
	struct np_card *card;
	int engine;
	uint64_t base;
	struct np_buf *buf;
	int errors;
};

static void *engine_worker(void *arg)
{
	struct worker *w = arg;
	uint8_t *p = np_buf_ptr(w->buf);
	size_t len = np_buf_size(w->buf);

	for (unsigned int it = 0; it < 20; it++) {
		struct np_xfer_spec s = {
			.op = NP_XFER_H2C,
			.engine = w->engine,
			.buf = w->buf,
			.card_addr = w->base,
			.len = len,
		};
		unsigned int seed = (unsigned int)w->engine * 1000 + it;

		tst_fill(p, len, seed);
		if (np_xfer_run(w->card, &s))
			w->errors++;
		memset(p, 0, len);
		s.op = NP_XFER_C2H;
		if (np_xfer_run(w->card, &s) || !tst_check(p, len, seed))
			w->errors++;
	}
	return NULL;
}

START_TEST(test_concurrent_engines)
{
	unsigned int n = np_ctx_num_cards(tst_ctx), cards = n < 4 ? n : 4;
	struct worker w[4 * NP_MAX_DMA_ENGINES];
	pthread_t t[4 * NP_MAX_DMA_ENGINES];
	unsigned int nw = 0, i;

	/* One thread per engine on several cards at once. */
	for (unsigned int c = 0; c < cards; c++) {
		struct np_card *card = np_ctx_card(tst_ctx, c);
		struct np_card_info in;

		np_card_info(card, &in);
		for (unsigned int e = 0; e < in.dma_engines; e++) {
			w[nw] = (struct worker){
				.card = card,
				.engine = (int)e,
				.base = (e & 1 ? NP_CA_FB_BASE :
						 NP_CA_SRAM_BASE) +
					(uint64_t)e * (1u << 20),
			};
			ck_assert_int_eq(
				np_buf_alloc(tst_ctx, 200000 + e, &w[nw].buf),
				0);
			nw++;
		}
	}
	for (i = 0; i < nw; i++)
		ck_assert_int_eq(
			pthread_create(&t[i], NULL, engine_worker, &w[i]), 0);
	for (i = 0; i < nw; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(w[i].errors, 0);
		np_buf_free(w[i].buf);
	}
}
END_TEST

START_TEST(test_async_ring_wrap)
{
	/* 200 transfers through 16-entry rings: submission waits for ring
	 * space, completions arrive in order, nothing is lost. */
	struct np_open_opts o = tst_opts();
	struct np_xfer *x[200];
	struct np_ctx *ctx;
	struct np_card *c;
	struct np_buf *b;
	uint8_t *p;

	o.ring_entries = 16;
	/* A VFIO group opens once per process: free the cards first. */
	tst_teardown();
	ck_assert_int_eq(tst_open(&o, &ctx), 0);
	c = np_ctx_card(ctx, 0);
	ck_assert_int_eq(np_buf_alloc(ctx, 200 * 512, &b), 0);
	p = np_buf_ptr(b);
	tst_fill(p, 200 * 512, 9);
	for (unsigned int i = 0; i < 200; i++) {
		struct np_xfer_spec s = {
			.op = NP_XFER_H2C,
			.engine = -1,
			.buf = b,
			.buf_offset = i * 512,
			.card_addr = NP_CA_SRAM_BASE + i * 512,
			.len = 512,
		};

		ck_assert_int_eq(np_xfer_submit(c, &s, &x[i]), 0);
	}
	for (unsigned int i = 0; i < 200; i++) {
		ck_assert_int_eq(np_xfer_wait(x[i], NP_TIMEOUT_DEFAULT), 0);
		np_xfer_free(x[i]);
	}
	memset(p, 0, 200 * 512);
	ck_assert_int_eq(tst_c2h(c, b, 0, NP_CA_SRAM_BASE, 200 * 512), 0);
	ck_assert(tst_check(p, 200 * 512, 9));
	np_close(ctx);
}
END_TEST

static uint32_t event_now(struct np_card *c, unsigned int ev)
{
	uint32_t v;

	ck_assert_int_eq(np_card_event_read(c, ev, &v), 0);
	return v;
}

START_TEST(test_fence_and_fds)
{
	struct np_card *c = card0();
	struct np_xfer_spec fence = {
		.op = NP_XFER_FENCE,
		.engine = 0,
		.flags = NP_XFER_F_WAIT | NP_XFER_F_SIGNAL,
		.wait_event = 11,
		.wait_value = event_now(c, 11) + 2,
		.signal_event = 12,
	};
	struct np_xfer_spec h2c = {
		.op = NP_XFER_H2C,
		.engine = 0,
		.card_addr = NP_CA_SRAM_BASE,
		.len = 4096,
	};
	uint32_t sig = event_now(c, 12);
	struct epoll_event ev;
	struct np_xfer *f, *x;
	struct pollfd pfd;
	struct np_buf *b;

	ck_assert_int_eq(np_buf_alloc(tst_ctx, 4096, &b), 0);
	h2c.buf = b;
	np_ctx_process(tst_ctx);
	ck_assert_int_eq(np_xfer_submit(c, &fence, &f), 0);
	ck_assert_int_eq(np_xfer_submit(c, &h2c, &x), 0);
	/* Both wait behind the fence: no completion, no interrupt. */
	ck_assert_int_eq(np_xfer_poll(f), -EINPROGRESS);
	ck_assert_int_eq(np_xfer_poll(x), -EINPROGRESS);
	pfd = (struct pollfd){.fd = np_xfer_fd(x), .events = POLLIN};
	ck_assert_int_eq(poll(&pfd, 1, 0), 0);
	/* The host signals half of what the fence waits for... */
	ck_assert_int_eq(np_card_event_add(c, 11, 1), 0);
	ck_assert_int_eq(np_xfer_poll(f), -EINPROGRESS);
	/* ...then the rest: the interrupt fires on both fds. */
	ck_assert_int_eq(np_card_event_add(c, 11, 1), 0);
	ck_assert_int_eq(poll(&pfd, 1, 5000), 1);
	ck_assert_int_eq(epoll_wait(np_ctx_fd(tst_ctx), &ev, 1, 5000), 1);
	ck_assert_int_ge(np_ctx_process(tst_ctx), 0);
	ck_assert_int_eq(np_xfer_wait(x, NP_TIMEOUT_DEFAULT), 0);
	ck_assert_int_eq(np_xfer_poll(f), 0);
	ck_assert_uint_eq(np_xfer_error(f, NULL), 0);
	ck_assert_uint_eq(event_now(c, 12), sig + 1);
	np_xfer_free(f);
	np_xfer_free(x);
	np_buf_free(b);
}
END_TEST

START_TEST(test_timeout_resets_engine)
{
	/* A fence on an event nobody signals: the wait gives up, the engine
	 * is reset and works again. */
	struct np_card *c = card0();
	struct np_xfer_spec fence = {
		.op = NP_XFER_FENCE,
		.engine = 0,
		.flags = NP_XFER_F_WAIT,
		.wait_event = 13,
		.wait_value = event_now(c, 13) + 1,
	};
	struct np_xfer_spec h2c = {
		.op = NP_XFER_H2C,
		.engine = 0,
		.card_addr = NP_CA_SRAM_BASE,
		.len = 8192,
	};
	struct np_xfer *f, *x;
	struct np_buf *b;

	ck_assert_int_eq(np_buf_alloc(tst_ctx, 8192, &b), 0);
	h2c.buf = b;
	ck_assert_int_eq(np_xfer_submit(c, &fence, &f), 0);
	ck_assert_int_eq(np_xfer_submit(c, &h2c, &x), 0);
	tst_log_clear();
	ck_assert_int_eq(np_xfer_wait(f, 50), -ETIMEDOUT);
	ck_assert_int_eq(np_xfer_poll(x), -ECANCELED);
	ck_assert_ptr_nonnull(strstr(tst_log_text(), "no progress"));
	ck_assert_int_eq(np_xfer_wait(f, 0), -EINVAL);
	np_xfer_free(f);
	np_xfer_free(x);
	tst_fill(np_buf_ptr(b), 8192, 3);
	ck_assert_int_eq(np_xfer_run(c, &h2c), 0);
	memset(np_buf_ptr(b), 0, 8192);
	h2c.op = NP_XFER_C2H;
	ck_assert_int_eq(np_xfer_run(c, &h2c), 0);
	ck_assert(tst_check(np_buf_ptr(b), 8192, 3));
	/* Aborting the engine left no DMA to unmapped memory behind. */
	if (tst_is_emu())
		ck_assert_uint_eq(np_ctx_iommu_faults(tst_ctx), 0);
	np_buf_free(b);
}
END_TEST

START_TEST(test_iommu_fault)
{
	/* A bus address outside every mapping: the IOMMU refuses it and the
	 * transfer fails with the card's bus error; the engine recovers. */
	const uint64_t bad = 0x7f0000000ull;
	struct np_card *c = card0();
	struct np_xfer_spec s = {
		.op = NP_XFER_H2C,
		.engine = 0,
		.bus_addr = bad,
		.card_addr = NP_CA_SRAM_BASE,
		.len = 4096,
	};
	uint64_t faults = np_ctx_iommu_faults(tst_ctx), addr;
	struct np_xfer *x;
	struct np_buf *b;

	ck_assert_int_eq(np_xfer_submit(c, &s, &x), 0);
	ck_assert_int_eq(np_xfer_wait(x, NP_TIMEOUT_DEFAULT), -EFAULT);
	ck_assert_uint_eq(np_xfer_error(x, &addr), NP_ERR_BUS_READ);
	ck_assert_uint_eq(addr, bad);
	np_xfer_free(x);
	s.op = NP_XFER_C2H;
	s.bus_addr = bad + 0x1000;
	ck_assert_int_eq(np_xfer_submit(c, &s, &x), 0);
	ck_assert_int_eq(np_xfer_wait(x, NP_TIMEOUT_DEFAULT), -EFAULT);
	ck_assert_uint_eq(np_xfer_error(x, &addr), NP_ERR_BUS_WRITE);
	ck_assert_uint_eq(addr, bad + 0x1000);
	np_xfer_free(x);
	if (tst_is_emu()) {
		ck_assert_uint_eq(np_ctx_iommu_faults(tst_ctx), faults + 2);
		ck_assert_ptr_nonnull(strstr(tst_log_text(), "IOMMU fault"));
	}
	ck_assert_int_eq(np_buf_alloc(tst_ctx, 4096, &b), 0);
	roundtrip(c, b, NP_CA_SRAM_BASE, 4096, 4);
	np_buf_free(b);
}
END_TEST

START_TEST(test_bad_requests)
{
	struct np_card *c = card0();
	struct np_card_info in;
	struct np_xfer_spec s;
	struct np_xfer *x = (struct np_xfer *)&s;
	struct np_buf *b;

	np_card_info(c, &in);
	ck_assert_int_eq(np_buf_alloc(tst_ctx, 4096, &b), 0);
#define BAD(change)                                                            \
	do {                                                                   \
		s = (struct np_xfer_spec){                                     \
			.op = NP_XFER_H2C, .engine = -1, .buf = b, .len = 16}; \
		change;                                                        \
		ck_assert_int_eq(np_xfer_submit(c, &s, &x), -EINVAL);          \
		ck_assert_ptr_null(x);                                         \
	} while (0)
	BAD(s.len = 0);
	BAD(s.len = 4097);
	BAD(s.buf_offset = 4090);
	BAD(s.card_addr = in.sram_size - 8);
	BAD(s.card_addr = NP_CA_FB_BASE + in.fb_size);
	BAD(s.card_addr = 0x80000000ull);
	BAD(s.engine = (int)in.dma_engines);
	BAD(s.engine = -2);
	BAD(s.op = 99);
	BAD(s.flags = 0x100);
	BAD((s.flags = NP_XFER_F_WAIT, s.wait_event = in.events));
	BAD(s.flags = NP_XFER_F_PEER_EVENT);
	BAD(s.op = NP_XFER_FENCE);
	BAD((s.op = NP_XFER_C2C, s.dst_addr = NP_CA_FB_BASE));
	BAD((s.op = NP_XFER_C2C, s.dst_addr = NP_CA_SRAM_BASE, s.peer = c));
#undef BAD
	ck_assert_int_eq(np_xfer_submit(NULL, &s, &x), -EINVAL);
	ck_assert_int_eq(np_xfer_submit(c, NULL, &x), -EINVAL);
	np_buf_free(b);
}
END_TEST

START_TEST(test_free_in_flight)
{
	/* A transfer freed while blocked is released when it retires. */
	struct np_card *c = card0();
	struct np_xfer_spec fence = {
		.op = NP_XFER_FENCE,
		.engine = 0,
		.flags = NP_XFER_F_WAIT,
		.wait_event = 14,
		.wait_value = event_now(c, 14) + 1,
	};
	struct np_xfer *x;
	struct np_buf *b;

	ck_assert_int_eq(np_xfer_submit(c, &fence, &x), 0);
	np_xfer_free(x);
	np_xfer_free(NULL);
	ck_assert_int_eq(np_card_event_add(c, 14, 1), 0);
	ck_assert_int_eq(np_buf_alloc(tst_ctx, 4096, &b), 0);
	fence.op = NP_XFER_H2C;
	fence.flags = 0;
	fence.buf = b;
	fence.len = 4096;
	ck_assert_int_eq(np_xfer_run(c, &fence), 0);
	np_buf_free(b);
}
END_TEST

START_TEST(test_bad_writeback)
{
	/*
	 * A card that writes a nonsensical writeback record must not steer
	 * libnp: engine 1 DMAs a record claiming 1000 completions over
	 * engine 0's. With 16-entry rings every ring takes one page, and
	 * the rings are the context's first buffers: card 0 engine 0's
	 * record sits right after its 16 descriptors at the IOVA base.
	 */
	const uint64_t wb_iova = 0x100000000ull + 16 * 64;
	struct np_open_opts o = tst_opts();
	struct np_queue_wb rec = {.completed = 1000};
	struct np_xfer_spec fence = {
		.op = NP_XFER_FENCE,
		.engine = 0,
		.flags = NP_XFER_F_WAIT,
		.wait_event = 15,
		.wait_value = 1,
	};
	struct np_xfer_spec h2c = {
		.op = NP_XFER_H2C,
		.engine = 1,
		.card_addr = NP_CA_SRAM_BASE,
		.len = sizeof(rec),
	};
	struct np_xfer_spec c2h = {
		.op = NP_XFER_C2H,
		.engine = 1,
		.bus_addr = wb_iova,
		.card_addr = NP_CA_SRAM_BASE,
		.len = sizeof(rec),
	};
	struct np_ctx *ctx;
	struct np_card *c;
	struct np_xfer *x;
	struct np_buf *b;

	o.ring_entries = 16;
	/* A VFIO group opens once per process: free the cards first. */
	tst_teardown();
	ck_assert_int_eq(tst_open(&o, &ctx), 0);
	c = np_ctx_card(ctx, 0);
	ck_assert_int_eq(np_buf_alloc(ctx, 4096, &b), 0);
	memcpy(np_buf_ptr(b), &rec, sizeof(rec));
	h2c.buf = b;
	ck_assert_int_eq(np_xfer_run(c, &h2c), 0);
	ck_assert_int_eq(np_xfer_submit(c, &fence, &x), 0);
	ck_assert_int_eq(np_xfer_run(c, &c2h), 0);
	tst_log_clear();
	ck_assert_int_eq(np_xfer_poll(x), -EIO);
	ck_assert_ptr_nonnull(strstr(tst_log_text(), "invalid writeback"));
	np_xfer_free(x);
	/* Engine 0 was reset and works. */
	h2c.engine = 0;
	ck_assert_int_eq(np_xfer_run(c, &h2c), 0);
	np_buf_free(b);
	np_close(ctx);
}
END_TEST

Suite *np_suite_xfer(void)
{
	Suite *s = suite_create("xfer");
	TCase *tc = tcase_create("xfer");

	tcase_add_checked_fixture(tc, tst_setup, tst_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_h2c_c2h_sram_fb);
	tcase_add_test(tc, test_split_and_offset);
	tcase_add_test(tc, test_copy_on_card);
	tcase_add_test(tc, test_concurrent_engines);
	tcase_add_test(tc, test_async_ring_wrap);
	tcase_add_test(tc, test_fence_and_fds);
	tcase_add_test(tc, test_timeout_resets_engine);
	tcase_add_test(tc, test_iommu_fault);
	tcase_add_test(tc, test_bad_requests);
	tcase_add_test(tc, test_free_in_flight);
	/* Relies on the emulator's four engines per card. */
	if (tst_is_emu())
		tcase_add_test(tc, test_bad_writeback);
	suite_add_tcase(s, tc);
	return s;
}
