// SPDX-License-Identifier: MIT
/*
 * events: the journal libnp appends to (NP_EVENT_LOG, here a file of the
 * test's own) read back by nptool events, after runs with injected
 * faults and from hand-written journals.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

static char dir[256], journal[512];

static void events_setup(void)
{
	snprintf(dir, sizeof(dir), "%s/npt-events-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	/* a directory that does not exist yet: libnp creates it */
	snprintf(journal, sizeof(journal), "%s/np/events.jsonl", dir);
	setenv("NP_EVENT_LOG", journal, 1);
	setenv("NP_DEVICES", "emu:16", 1);
}

static void events_teardown(void)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void write_journal(const char *text)
{
	char d[512];
	FILE *f;

	snprintf(d, sizeof(d), "%s/np", dir);
	mkdir(d, 0755);
	f = fopen(journal, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* "2026-12-06T02:10:00.123Z" */
static void assert_time(const char *t)
{
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(strlen(t), 24);
	ck_assert_int_eq(t[10], 'T');
	ck_assert_int_eq(t[19], '.');
	ck_assert_int_eq(t[23], 'Z');
}

START_TEST(test_dead_card)
{
	struct tst_run r;
	struct tst_jv *ev, *e0, *e1;
	const char *a, *b;

	tst_run(&r, "run", "-q", "-m", NPT_DEMO_MODEL, "-c", "5", "-n", "2",
		"-M", "1", "-t", "4", "--inject", "1:dead", NULL);
	ck_assert_int_eq(r.status, 4);
	tst_run_free(&r);

	tst_run(&r, "events", NULL);
	ck_assert_int_eq(r.status, 0);
	a = strstr(r.out, "emu:1         fault-injected  nptool[");
	b = strstr(r.out, "emu:1         error           nptool[");
	ck_assert_msg(a && b && a < b, "%s", r.out);
	ck_assert_ptr_nonnull(strstr(a, "dead\n"));
	ck_assert_ptr_nonnull(strstr(b, "card failed: not answering\n"));
	ck_assert_uint_eq(tst_lines(r.out), 3);
	tst_run_free(&r);

	tst_run(&r, "--json", "events", NULL);
	tst_envelope(&r, "events", 0);
	ck_assert_str_eq(tst_jv_str(r.json, "journal"), journal);
	ck_assert_double_eq(tst_jv_num(r.json, "matched"), 2);
	ck_assert_double_eq(tst_jv_num(r.json, "unreadable"), 0);
	ev = tst_jv_get(r.json, "events");
	ck_assert_uint_eq(ev->n, 2);
	e0 = tst_jv_at(ev, 0);
	e1 = tst_jv_at(ev, 1);
	ck_assert_str_eq(tst_jv_str(e0, "card"), "emu:1");
	ck_assert_str_eq(tst_jv_str(e0, "kind"), "fault-injected");
	ck_assert_str_eq(tst_jv_str(e0, "message"), "dead");
	ck_assert_str_eq(tst_jv_str(e0, "process"), "nptool");
	ck_assert_ptr_nonnull(tst_jv_str(e0, "serial"));
	ck_assert_double_gt(tst_jv_num(e0, "pid"), 0);
	ck_assert_str_eq(tst_jv_str(e1, "card"), "emu:1");
	ck_assert_str_eq(tst_jv_str(e1, "kind"), "error");
	ck_assert_str_eq(tst_jv_str(e1, "message"),
			 "card failed: not answering");
	assert_time(tst_jv_str(e0, "time"));
	assert_time(tst_jv_str(e1, "time"));
	ck_assert_int_le(strcmp(tst_jv_str(e0, "time"), tst_jv_str(e1, "time")),
			 0);
	tst_run_free(&r);
}
END_TEST

START_TEST(test_recovery)
{
	struct tst_run r;
	struct tst_jv *ev;

	tst_run(&r, "run", "-q", "-m", NPT_DEMO_MODEL, "-c", "5", "-n", "4",
		"-M", "2", "-t", "8", "--no-stop", "--recover", "--inject",
		"1:dead", "--inject-after", "6", NULL);
	ck_assert_int_eq(r.status, 0);
	tst_run_free(&r);

	tst_run(&r, "--json", "events", "--kind", "recovery", NULL);
	tst_envelope(&r, "events", 0);
	ev = tst_jv_get(r.json, "events");
	ck_assert_uint_eq(ev->n, 2);
	ck_assert_str_eq(tst_jv_str(tst_jv_at(ev, 0), "card"), "emu:1");
	ck_assert_msg(!strncmp(tst_jv_str(tst_jv_at(ev, 0), "message"),
			       "recovery 1 of ", 14),
		      "%s", r.out);
	ck_assert_ptr_nonnull(
		strstr(tst_jv_str(tst_jv_at(ev, 0), "message"), "started"));
	ck_assert_ptr_nonnull(
		strstr(tst_jv_str(tst_jv_at(ev, 1), "message"), "done in"));
	tst_run_free(&r);

	/* the cards the recovery reset */
	tst_run(&r, "--json", "events", "--kind", "reset", "--card", "emu:1",
		NULL);
	tst_envelope(&r, "events", 0);
	ck_assert_uint_ge(tst_jv_get(r.json, "events")->n, 1);
	tst_run_free(&r);
}
END_TEST

#define LINE(t, card, idx, kind, msg)                               \
	"{\"time\":\"" t "\",\"card\":\"" card "\",\"index\":" #idx \
	",\"kind\":\"" kind "\",\"message\":\"" msg "\",\"pid\":7," \
	"\"process\":\"npd\"}\n"

START_TEST(test_corrupt_line)
{
	struct tst_run r;

	write_journal(
		LINE("2026-01-01T00:00:00.000Z", "emu:0", 0, "reset",
		     "one") "{\"time\":\"2026-01-01T00:00:01.000Z\",\"ca\n"
			    "\x01\xff not json\n"
			    "{\"time\":\"yesterday\",\"card\":\"emu:0\","
			    "\"kind\":\"reset\",\"message\":\"m\"}\n" LINE(
				    "2026-01-01T00:00:02.000Z", "emu:0", 0,
				    "reset", "two \\\"quoted\\\""));
	tst_run(&r, "events", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "one\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "two \"quoted\"\n"));
	ck_assert_uint_eq(tst_lines(r.out), 3);
	ck_assert_msg(strstr(r.err, "3 lines of ") &&
			      strstr(r.err, "could not be read"),
		      "%s", r.err);
	tst_run_free(&r);

	tst_run(&r, "--json", "events", NULL);
	tst_envelope(&r, "events", 0);
	ck_assert_double_eq(tst_jv_num(r.json, "unreadable"), 3);
	ck_assert_uint_eq(tst_jv_get(r.json, "events")->n, 2);
	tst_run_free(&r);
}
END_TEST

START_TEST(test_filters)
{
	struct tst_run r;
	struct tst_jv *ev;

	write_journal(
		LINE("2026-01-01T00:00:00.000Z", "emu:0", 0, "reset", "a") LINE(
			"2026-01-01T00:00:01.500Z", "emu:2", 2, "error", "b")
			LINE("2026-01-02T00:00:00.000Z", "0000:03:00.0", 2,
			     "thermal", "c") LINE("2026-01-03T00:00:00.000Z",
						  "emu:2", 2, "reset", "d"));
	tst_run(&r, "--json", "events", "--card", "emu:2", NULL);
	tst_envelope(&r, "events", 0);
	ev = tst_jv_get(r.json, "events");
	ck_assert_uint_eq(ev->n, 2);
	ck_assert_str_eq(tst_jv_str(tst_jv_at(ev, 0), "message"), "b");
	ck_assert_str_eq(tst_jv_str(tst_jv_at(ev, 1), "message"), "d");
	tst_run_free(&r);

	/* a number is the card's index in the process that saw it */
	tst_run(&r, "--json", "events", "--card", "2", NULL);
	tst_envelope(&r, "events", 0);
	ck_assert_uint_eq(tst_jv_get(r.json, "events")->n, 3);
	tst_run_free(&r);

	tst_run(&r, "--json", "events", "--kind", "reset", "-n", "1", NULL);
	tst_envelope(&r, "events", 0);
	ev = tst_jv_get(r.json, "events");
	ck_assert_uint_eq(ev->n, 1);
	ck_assert_double_eq(tst_jv_num(r.json, "matched"), 2);
	ck_assert_str_eq(tst_jv_str(tst_jv_at(ev, 0), "message"), "d");
	tst_run_free(&r);

	tst_run(&r, "--json", "events", "--since", "2026-01-01T00:00:01.5Z",
		NULL);
	tst_envelope(&r, "events", 0);
	ev = tst_jv_get(r.json, "events");
	ck_assert_uint_eq(ev->n, 3);
	ck_assert_str_eq(tst_jv_str(tst_jv_at(ev, 0), "message"), "b");
	tst_run_free(&r);

	/* seconds back from now: these are all older */
	tst_run(&r, "events", "--since", "3600", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "no events in "));
	tst_run_free(&r);
}
END_TEST

/* --card takes every form a card is named by (npt_card_arg_is): the
 * index it had, its name (a PCI address in full or without the domain,
 * in any case), its serial */
START_TEST(test_card_forms)
{
	static const char *const forms[] = {
		"0000:0a:1f.0", "0000:0A:1F.0",	    "0a:1f.0",
		"0A:1f.0",	"abcdef0123456789", "ABCDEF0123456789"};
	struct tst_run r;
	struct tst_jv *ev;

	write_journal("{\"time\":\"2026-01-01T00:00:00.000Z\",\"card\":"
		      "\"0000:0a:1f.0\",\"index\":4,\"serial\":"
		      "\"abcdef0123456789\",\"kind\":\"reset\",\"message\":"
		      "\"mine\",\"pid\":7,\"process\":\"npd\"}\n" LINE(
			      "2026-01-01T00:00:01.000Z", "0000:04:00.0", 1,
			      "reset", "other"));
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		tst_run(&r, "--json", "events", "--card", forms[i], NULL);
		tst_envelope(&r, "events", 0);
		ev = tst_jv_get(r.json, "events");
		ck_assert_msg(ev->n == 1, "--card %s: %zu events", forms[i],
			      ev->n);
		ck_assert_str_eq(tst_jv_str(tst_jv_at(ev, 0), "message"),
				 "mine");
		tst_run_free(&r);
	}
	tst_run(&r, "--json", "events", "--card", "4", NULL);
	tst_envelope(&r, "events", 0);
	ck_assert_uint_eq(tst_jv_get(r.json, "events")->n, 1);
	tst_run_free(&r);
	/* 16 decimal digits are a serial, not an index */
	tst_run(&r, "--json", "events", "--card", "0000000000000004", NULL);
	tst_envelope(&r, "events", 0);
	ck_assert_uint_eq(tst_jv_get(r.json, "events")->n, 0);
	tst_run_free(&r);
	/* neither a serial of 15 digits nor a domain alone is a card */
	tst_run(&r, "--json", "events", "--card", "abcdef012345678", NULL);
	tst_envelope(&r, "events", 0);
	ck_assert_uint_eq(tst_jv_get(r.json, "events")->n, 0);
	tst_run_free(&r);
	tst_run(&r, "--json", "events", "--card", "0000", NULL);
	tst_envelope(&r, "events", 0);
	ck_assert_uint_eq(tst_jv_get(r.json, "events")->n, 0);
	tst_run_free(&r);
}
END_TEST

START_TEST(test_no_journal)
{
	struct tst_run r;

	tst_run(&r, "events", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, journal));
	tst_run_free(&r);

	tst_run(&r, "--json", "events", NULL);
	tst_envelope(&r, "events", 0);
	ck_assert_uint_eq(tst_jv_get(r.json, "events")->n, 0);
	tst_run_free(&r);

	setenv("NP_EVENT_LOG", "off", 1);
	tst_run(&r, "events", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "the journal is off"));
	tst_run_free(&r);
	tst_run(&r, "run", "-q", "-m", NPT_DEMO_MODEL, "-c", "5", "-n", "1",
		"-M", "1", "-t", "2", "--inject", "1:sram-ce", NULL);
	ck_assert_int_eq(r.status, 0);
	tst_run_free(&r);
	ck_assert_int_ne(access(journal, F_OK), 0);
}
END_TEST

Suite *np_suite_events(void)
{
	Suite *s = suite_create("events");
	TCase *tc = tcase_create("journal");

	tcase_add_checked_fixture(tc, events_setup, events_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_dead_card);
	tcase_add_test(tc, test_recovery);
	tcase_add_test(tc, test_corrupt_line);
	tcase_add_test(tc, test_filters);
	tcase_add_test(tc, test_no_journal);
	tcase_add_test(tc, test_card_forms);
	suite_add_tcase(s, tc);
	return s;
}
