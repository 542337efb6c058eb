// SPDX-License-Identifier: MIT
/*
 * Card selection: every command that names cards (CARD arguments of
 * reset, memtest, dma and p2p; --inject CARD:FAULT of run and verify;
 * events --card, in check_events.c) takes the same three forms through
 * one parser (npt_card_find): the index, the name (emu:N here; a PCI
 * address in the guest) and the serial, in either case; a card that is
 * not there is a usage error naming it.
 */
#include <stdio.h>
#include <string.h>

#include "test.h"

/* the emulator's serials: "NPEM" then the card index */
#define SERIAL(n) "4e50454d000000" n

/* The names of the cards in r's JSON "cards" array, comma-separated. */
static void card_names(const struct tst_run *r, const char *cmd, char *buf,
		       size_t len)
{
	struct tst_jv *cards;
	size_t off = 0;

	tst_envelope(r, cmd, 0);
	cards = tst_jv_get(r->json, "cards");
	ck_assert_ptr_nonnull(cards);
	buf[0] = 0;
	for (size_t i = 0; i < cards->n; i++)
		off += (size_t)snprintf(
			buf + off, len - off, "%s%s", i ? "," : "",
			tst_jv_str(tst_jv_at(cards, i), "name"));
}

START_TEST(test_reset_forms)
{
	struct tst_run r;
	char names[256];

	tst_run(&r, "--json", "reset", "2", "emu:5", SERIAL("0b"),
		"4E50454D0000000C", NULL);
	card_names(&r, "reset", names, sizeof(names));
	ck_assert_str_eq(names, "emu:2,emu:5,emu:11,emu:12");
	tst_run_free(&r);

	tst_run(&r, "reset", SERIAL("ff"), NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_msg(strstr(r.err, "no card " SERIAL("ff")) &&
			      strstr(r.err, "serial"),
		      "%s", r.err);
	tst_run_free(&r);
}
END_TEST

START_TEST(test_memtest_forms)
{
	struct tst_run r;
	char names[256];

	tst_run(&r, "--json", "memtest", "--sram", "--level", "quick", "--size",
		"64K", "emu:3", SERIAL("07"), "9", NULL);
	card_names(&r, "memtest", names, sizeof(names));
	ck_assert_str_eq(names, "emu:3,emu:7,emu:9");
	tst_run_free(&r);
}
END_TEST

START_TEST(test_dma_forms)
{
	struct tst_run r;
	struct tst_jv *res;

	tst_run(&r, "--json", "dma", "--sizes", "4k", "-n", "2", SERIAL("0e"),
		"emu:1", NULL);
	tst_envelope(&r, "dma", 0);
	res = tst_jv_get(r.json, "results");
	ck_assert_uint_eq(res->n, 2);
	ck_assert_double_eq(tst_jv_num(tst_jv_at(res, 0), "index"), 1);
	ck_assert_double_eq(tst_jv_num(tst_jv_at(res, 1), "index"), 14);
	tst_run_free(&r);

	tst_run(&r, "dma", "emu:16", NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "no card emu:16"));
	tst_run_free(&r);
}
END_TEST

START_TEST(test_p2p_forms)
{
	struct tst_run r;

	/* two cards: one pair each way */
	tst_run(&r, "--json", "p2p", "--size", "64K", "-n", "1", "4",
		SERIAL("06"), NULL);
	tst_envelope(&r, "p2p", 0);
	ck_assert_ptr_nonnull(strstr(r.out, "\"emu:4\""));
	ck_assert_ptr_nonnull(strstr(r.out, "\"emu:6\""));
	ck_assert_ptr_null(strstr(r.out, "\"emu:5\""));
	tst_run_free(&r);
}
END_TEST

/* --inject takes the same forms; overheat is absorbed (the card
 * throttles), so the run succeeds and the fault shows on that card */
START_TEST(test_inject_forms)
{
	static const char *const forms[] = {"2", "emu:2", SERIAL("02"),
					    "4E50454D00000002"};
	struct tst_run r;

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		char arg[64];

		snprintf(arg, sizeof(arg), "%s:overheat", forms[i]);
		tst_run(&r, "run", "-q", "-m", NPT_DEMO_MODEL, "-c", "5", "-n",
			"1", "-M", "1", "-t", "2", "--inject", arg, NULL);
		ck_assert_msg(r.status == 0, "%s: exit %d: %s", arg, r.status,
			      r.err);
		tst_run_free(&r);
	}
	/* verify parses --inject with the same code: one form is enough */
	tst_run(&r, "verify", "-m", NPT_DEMO_MODEL, "-c", "5", "--inject",
		"4E50454D00000003:overheat", NULL);
	ck_assert_msg(r.status == 0, "verify: exit %d: %s", r.status, r.err);
	tst_run_free(&r);
	tst_run(&r, "run", "-q", "-m", NPT_DEMO_MODEL, "-c", "5", "--inject",
		SERIAL("63") ":overheat", NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "no card " SERIAL("63")));
	tst_run_free(&r);
	/* the card part ends where a name ends: a PCI address is one card,
	 * not card 0000 */
	tst_run(&r, "run", "-q", "-m", NPT_DEMO_MODEL, "-c", "5", "--inject",
		"0000:03:00.0:overheat", NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "no card 0000:03:00.0 "));
	tst_run_free(&r);
}
END_TEST

Suite *np_suite_select(void)
{
	Suite *s = suite_create("select");
	TCase *tc = tcase_create("forms");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_reset_forms);
	tcase_add_test(tc, test_memtest_forms);
	tcase_add_test(tc, test_dma_forms);
	tcase_add_test(tc, test_p2p_forms);
	tcase_add_test(tc, test_inject_forms);
	suite_add_tcase(s, tc);
	return s;
}
