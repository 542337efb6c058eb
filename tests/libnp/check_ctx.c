// SPDX-License-Identifier: MIT
/* Contexts and cards: open/close, spec errors, info, registers, events,
 * reset. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "np/recover.h"
#include "np_abi.h"
#include "test.h"

START_TEST(test_open_close)
{
	unsigned int n = np_ctx_num_cards(tst_ctx), i, j;
	struct np_card_info a, b;

	ck_assert_uint_ge(n, 1);
	ck_assert_ptr_null(np_ctx_card(tst_ctx, n));
	ck_assert_int_eq(np_ctx_timeout_ms(tst_ctx), 5000);
	for (i = 0; i < n; i++) {
		struct np_card *c = np_ctx_card(tst_ctx, i);

		ck_assert_ptr_nonnull(c);
		ck_assert_int_eq(np_card_info(c, &a), 0);
		ck_assert_uint_eq(a.index, i);
		ck_assert_str_eq(a.name, np_card_name(c));
		ck_assert_uint_eq(a.vendor_id, NP_PCI_VENDOR_ID);
		ck_assert_uint_eq(a.device_id, NP_PCI_DEVICE_ID);
		ck_assert_uint_eq(a.abi_major, NP_ABI_MAJOR);
		ck_assert_uint_gt(a.sram_size, 0);
		ck_assert_uint_gt(a.fb_size, 0);
		ck_assert_uint_ge(a.dma_engines, 1);
		ck_assert_uint_le(a.dma_engines, NP_MAX_DMA_ENGINES);
		ck_assert_uint_gt(a.events, 0);
		ck_assert_uint_gt(a.link_width, 0);
		ck_assert(a.caps & NP_CAPS_WRITEBACK);
		for (j = 0; j < i; j++) {
			np_card_info(np_ctx_card(tst_ctx, j), &b);
			ck_assert_str_ne(a.name, b.name);
		}
	}
	ck_assert_int_eq(np_card_info(NULL, &a), -EINVAL);
	np_close(NULL);
}
END_TEST

START_TEST(test_open_bad_spec)
{
	static const char *const bad[] = {"bogus:3", "emu:0", "emu:x",
					  "emu:65",  "emu:",  "emu:2x"};
	struct np_open_opts o = tst_opts();
	struct np_ctx *ctx = (struct np_ctx *)&o;

	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tst_log_clear();
		ck_assert_int_eq(np_open(bad[i], &o, &ctx), -EINVAL);
		ck_assert_ptr_null(ctx);
		/* The message names the spec it refused. */
		ck_assert_ptr_nonnull(strstr(tst_log_text(), bad[i]));
	}
	ck_assert_int_eq(np_open("emu:1", &o, NULL), -EINVAL);
}
END_TEST

START_TEST(test_open_bad_opts)
{
	struct np_open_opts o = tst_opts();
	struct np_ctx *ctx;

	o.ring_entries = 100;
	ck_assert_int_eq(np_open("emu:1", &o, &ctx), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_log_text(), "100"));
	o = tst_opts();
	o.timeout_ms = -5;
	ck_assert_int_eq(np_open("emu:1", &o, &ctx), -EINVAL);
	o = tst_opts();
	o.flags = 0x80;
	ck_assert_int_eq(np_open("emu:1", &o, &ctx), -EINVAL);
}
END_TEST

/* Reserved space of the option structs must be zero: a program built
 * against a later libnp that sets a field there is refused, not ignored. */
START_TEST(test_open_reserved)
{
	struct np_emu_opts emu = {.dma_engines = 2};
	struct np_open_opts o = tst_opts();
	struct np_ctx *ctx;

	o.resv[7] = 1;
	tst_log_clear();
	ck_assert_int_eq(np_open("emu:1", &o, &ctx), -EINVAL);
	ck_assert_ptr_nonnull(strstr(
		tst_log_text(), "np_open_opts: reserved space is not zero"));
	o = tst_opts();
	o.emu = &emu;
	emu.resv0 = 1;
	tst_log_clear();
	ck_assert_int_eq(np_open("emu:1", &o, &ctx), -EINVAL);
	ck_assert_ptr_nonnull(strstr(tst_log_text(), "np_emu_opts"));
	emu.resv0 = 0;
	ck_assert_int_eq(np_open("emu:1", &o, &ctx), 0);
	np_close(ctx);
}
END_TEST

START_TEST(test_open_nothing_set)
{
	struct np_open_opts o = tst_opts();
	char *saved = strdup(getenv("NP_DEVICES"));
	struct np_ctx *ctx;
	int ret;

	unsetenv("NP_DEVICES");
	tst_log_clear();
	ret = np_open(NULL, &o, &ctx);
	setenv("NP_DEVICES", saved, 1);
	free(saved);
	if (tst_is_emu()) {
		/* The emulator run has no VFIO cards bound. */
		ck_assert_int_eq(ret, -ENODEV);
		ck_assert_ptr_nonnull(
			strstr(tst_log_text(), "NP_DEVICES=emu:16"));
	} else {
		/* In the guest, vfio:all is found without NP_DEVICES. */
		ck_assert_int_eq(ret, 0);
		ck_assert_str_eq(np_ctx_backend(ctx), "vfio");
		np_close(ctx);
	}
}
END_TEST

START_TEST(test_reg_read)
{
	struct np_card *c = np_ctx_card(tst_ctx, 0);
	uint32_t v;

	ck_assert_int_eq(np_card_reg_read(c, NP_REG_ID, &v), 0);
	ck_assert_uint_eq(NP_ID_GET_MAGIC(v), NP_ID_MAGIC);
	ck_assert_int_eq(np_card_reg_read(c, NP_REG_STATUS, &v), 0);
	ck_assert(v & NP_STATUS_READY);
	ck_assert_int_eq(np_card_reg_read(c, NP_REG_TEMP, &v), 0);
	ck_assert_uint_gt(v, 0);
	ck_assert_int_eq(np_card_reg_read(c, 2, &v), -EINVAL);
	ck_assert_int_eq(np_card_reg_read(c, NP_REGS_SIZE, &v), -EINVAL);
	ck_assert_int_eq(np_card_reg_read(c, 0, NULL), -EINVAL);
}
END_TEST

START_TEST(test_events)
{
	struct np_card *c = np_ctx_card(tst_ctx, 0);
	struct np_card_info in;
	uint32_t before, after;

	np_card_info(c, &in);
	ck_assert_int_eq(np_card_event_read(c, 3, &before), 0);
	ck_assert_int_eq(np_card_event_add(c, 3, 5), 0);
	ck_assert_int_eq(np_card_event_read(c, 3, &after), 0);
	ck_assert_uint_eq(after, before + 5);
	ck_assert_int_eq(np_card_event_add(c, in.events, 1), -EINVAL);
	ck_assert_int_eq(np_card_event_read(c, in.events, &after), -EINVAL);
}
END_TEST

START_TEST(test_reset_and_reuse)
{
	unsigned int last = np_ctx_num_cards(tst_ctx) - 1;
	struct np_card *c = np_ctx_card(tst_ctx, last);
	struct np_xfer_spec fence = {
		.op = NP_XFER_FENCE,
		.engine = 0,
		.flags = NP_XFER_F_WAIT,
		.wait_event = 9,
		.wait_value = 1000,
	};
	struct np_xfer *x;
	struct np_buf *b;
	uint32_t ev;

	ck_assert_int_eq(np_buf_alloc(tst_ctx, 65536, &b), 0);
	tst_fill(np_buf_ptr(b), 65536, 77);
	ck_assert_int_eq(tst_h2c(c, b, 0, NP_CA_SRAM_BASE + 4096, 65536), 0);
	ck_assert_int_eq(np_card_event_add(c, 9, 1), 0);
	/* A transfer blocked on the card is cancelled by the reset. */
	ck_assert_int_eq(np_xfer_submit(c, &fence, &x), 0);
	ck_assert_int_eq(np_xfer_poll(x), -EINPROGRESS);
	ck_assert_msg(np_card_reset(c) == 0, "reset: %s", tst_log_text());
	ck_assert_int_eq(np_xfer_poll(x), -ECANCELED);
	np_xfer_free(x);
	/* The reset cleared memory and event counters. */
	ck_assert_int_eq(np_card_event_read(c, 9, &ev), 0);
	ck_assert_uint_eq(ev, 0);
	memset(np_buf_ptr(b), 0xa5, 65536);
	ck_assert_int_eq(tst_c2h(c, b, 0, NP_CA_SRAM_BASE + 4096, 65536), 0);
	for (size_t i = 0; i < 65536; i++)
		ck_assert_uint_eq(((uint8_t *)np_buf_ptr(b))[i], 0);
	/* And the card works again on every engine. */
	tst_fill(np_buf_ptr(b), 65536, 78);
	ck_assert_int_eq(tst_h2c(c, b, 0, NP_CA_FB_BASE, 65536), 0);
	memset(np_buf_ptr(b), 0, 65536);
	ck_assert_int_eq(tst_c2h(c, b, 0, NP_CA_FB_BASE, 65536), 0);
	ck_assert(tst_check(np_buf_ptr(b), 65536, 78));
	ck_assert_int_eq(np_card_reset(NULL), -EINVAL);
	np_buf_free(b);
}
END_TEST

/* Lines of path holding what. */
static unsigned int lines_with(const char *path, const char *what)
{
	char line[4096];
	unsigned int n = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		ck_assert_int_eq(line[strlen(line) - 1], '\n');
		n += !!strstr(line, what);
	}
	fclose(f);
	return n;
}

/* The event journal: where, what a reset writes, and that a journal
 * that cannot be written fails nothing and is said once. */
START_TEST(test_journal)
{
	struct np_card *c = np_ctx_card(tst_ctx, 0);
	char path[] = "/tmp/np-journal-XXXXXX";
	const char *p;
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	close(fd);
	unsetenv("NP_EVENT_LOG");
	ck_assert_str_eq(np_event_log_path(), NP_EVENT_LOG_DEFAULT);
	setenv("NP_EVENT_LOG", "off", 1);
	ck_assert_ptr_null(np_event_log_path());
	setenv("NP_EVENT_LOG", "", 1);
	ck_assert_ptr_null(np_event_log_path());
	setenv("NP_EVENT_LOG", path, 1);
	p = np_event_log_path();
	ck_assert_str_eq(p, path);

	ck_assert_int_eq(np_card_reset(c), 0);
	ck_assert_uint_eq(lines_with(path, "\"kind\":\"reset\",\"message\":"
					   "\"reset, ID verified\""),
			  1);
	if (tst_is_emu()) {
		ck_assert_int_eq(np_card_inject(c, "sram-ce"), 0);
		ck_assert_int_ne(np_card_inject(c, "bogus"), 0);
		ck_assert_uint_eq(
			lines_with(path, "\"kind\":\"fault-injected\""), 1);
	}
	ck_assert_uint_eq(lines_with(path, "\"process\":\""),
			  tst_is_emu() ? 2 : 1);

	setenv("NP_EVENT_LOG", "/nonexistent-np/dir/events.jsonl", 1);
	tst_log_clear();
	ck_assert_int_eq(np_card_reset(c), 0);
	ck_assert_int_eq(np_card_reset(c), 0);
	p = strstr(tst_log_text(), "event journal /nonexistent-np");
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_null(strstr(p + 1, "event journal"));
	setenv("NP_EVENT_LOG", "off", 1);
	unlink(path);
}
END_TEST

Suite *np_suite_ctx(void)
{
	Suite *s = suite_create("ctx");
	TCase *tc = tcase_create("open");
	TCase *tcc = tcase_create("card");

	/* Opening 16 cards over VFIO under TCG takes seconds. */
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_open_bad_spec);
	tcase_add_test(tc, test_open_bad_opts);
	tcase_add_test(tc, test_open_reserved);
	tcase_add_test(tc, test_open_nothing_set);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(tcc, tst_setup, tst_teardown);
	tcase_set_timeout(tcc, 60);
	tcase_add_test(tcc, test_open_close);
	tcase_add_test(tcc, test_reg_read);
	tcase_add_test(tcc, test_events);
	tcase_add_test(tcc, test_reset_and_reuse);
	tcase_add_test(tcc, test_journal);
	suite_add_tcase(s, tcc);
	return s;
}
