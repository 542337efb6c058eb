// SPDX-License-Identifier: MIT
/*
 * Every command against 16 emulated cards (NP_DEVICES=emu:16), text and
 * JSON. Expected values come from np_abi.h and from the cards themselves
 * (info), never from constants written here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "np_abi.h"
#include "test.h"

#define NCARDS 16

static void emu_setup(void)
{
	setenv("NP_DEVICES", "emu:16", 1);
}

static struct tst_jv *cards_of(struct tst_jv *e, size_t want)
{
	struct tst_jv *cards = tst_jv_get(e, "cards");

	ck_assert_ptr_nonnull(cards);
	ck_assert_int_eq(cards->type, TST_JV_ARR);
	ck_assert_uint_eq(cards->n, want);
	return cards;
}

START_TEST(test_list)
{
	struct tst_run r;
	struct tst_jv *cards;
	char name[16], vendor[8];

	tst_run(&r, "--json", "list", NULL);
	cards = cards_of(tst_envelope(&r, "list", 0), NCARDS);
	snprintf(vendor, sizeof(vendor), "0x%04x", NP_PCI_VENDOR_ID);
	for (size_t i = 0; i < NCARDS; i++) {
		struct tst_jv *c = tst_jv_at(cards, i);

		snprintf(name, sizeof(name), "emu:%zu", i);
		ck_assert_double_eq(tst_jv_num(c, "index"), (double)i);
		ck_assert_str_eq(tst_jv_str(c, "name"), name);
		ck_assert_str_eq(tst_jv_str(tst_jv_get(c, "ids"), "vendor"),
				 vendor);
		ck_assert_str_eq(tst_jv_str(c, "state"), "ready");
		ck_assert_ptr_nonnull(tst_jv_str(c, "fw_version"));
		ck_assert_ptr_nonnull(tst_jv_str(c, "serial"));
		ck_assert_int_eq(tst_jv_get(c, "iommu_group")->type,
				 TST_JV_NULL);
		ck_assert_double_eq(tst_jv_num(tst_jv_get(c, "link"), "gen"),
				    3);
		ck_assert_double_eq(tst_jv_num(tst_jv_get(c, "link"), "width"),
				    8);
	}
	tst_run_free(&r);

	tst_run(&r, "list", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_uint_eq(tst_lines(r.out), NCARDS + 1);
	ck_assert_ptr_nonnull(strstr(r.out, "emu:15"));
	ck_assert_ptr_nonnull(strstr(r.out, "Gen3 x8"));
	tst_run_free(&r);
}
END_TEST

START_TEST(test_info)
{
	struct tst_run r;
	struct tst_jv *cards;

	tst_run(&r, "-p", "info", NULL);
	cards = cards_of(tst_envelope(&r, "info", 0), NCARDS);
	ck_assert_str_eq(tst_jv_str(r.json, "backend"), "emu");
	for (size_t i = 0; i < NCARDS; i++) {
		struct tst_jv *c = tst_jv_at(cards, i);

		ck_assert_double_eq(tst_jv_num(c, "sram_bytes"), NP_SRAM_SIZE);
		ck_assert_double_eq(tst_jv_num(c, "fb_bytes"), NP_FB_SIZE);
		ck_assert_double_eq(tst_jv_num(c, "cores_x"), NP_CORES_X);
		ck_assert_double_eq(
			tst_jv_num(tst_jv_get(c, "p2p"), "direct_peers") +
				tst_jv_num(tst_jv_get(c, "p2p"),
					   "bounce_peers"),
			NCARDS - 1);
		ck_assert_uint_ge(tst_jv_get(c, "caps")->n, 1);
	}
	tst_run_free(&r);

	tst_run(&r, "info", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "card 15: emu:15"));
	ck_assert_ptr_nonnull(strstr(r.out, "192 MiB"));
	tst_run_free(&r);
}
END_TEST

START_TEST(test_status)
{
	struct tst_run r;
	struct tst_jv *cards;

	tst_run(&r, "--json", "status", "-i", "0.05", NULL);
	cards = cards_of(tst_envelope(&r, "status", 0), NCARDS);
	ck_assert_str_eq(tst_jv_str(r.json, "source"), "registers");
	for (size_t i = 0; i < NCARDS; i++) {
		struct tst_jv *c = tst_jv_at(cards, i);

		ck_assert_str_eq(tst_jv_str(c, "state"), "ready");
		ck_assert_double_gt(tst_jv_num(c, "temp_mc"), 0);
		ck_assert_double_lt(tst_jv_num(c, "temp_mc"),
				    tst_jv_num(c, "temp_crit_mc"));
		ck_assert_double_gt(tst_jv_num(c, "power_mw"), 0);
		ck_assert_double_gt(tst_jv_num(c, "core_clock_mhz"), 0);
		ck_assert_double_eq(tst_jv_num(c, "sram_ue"), 0);
		ck_assert_double_ge(tst_jv_num(c, "dma_bytes_per_s"), 0);
	}
	tst_run_free(&r);

	tst_run(&r, "status", "-i", "0.05", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_uint_eq(tst_lines(r.out), NCARDS + 1);
	ck_assert_ptr_nonnull(strstr(r.out, "TEMP"));
	ck_assert_ptr_nonnull(strstr(r.out, "MB/s"));
	tst_run_free(&r);
}
END_TEST

START_TEST(test_top)
{
	struct tst_run r;
	const char *p;
	unsigned int docs = 0;

	/* --json: one document per refresh (JSON lines) */
	tst_run(&r, "--json", "top", "-n", "3", "-i", "0.05", NULL);
	ck_assert_int_eq(r.status, 0);
	for (p = r.out; *p;) {
		struct tst_jv *v = tst_jv_parse(p, &p);

		ck_assert_msg(v, "bad document at: %s", p);
		ck_assert_str_eq(tst_jv_str(v, "command"), "top");
		ck_assert_uint_eq(tst_jv_get(v, "cards")->n, NCARDS);
		tst_jv_free(v);
		docs++;
	}
	ck_assert_uint_eq(docs, 3);
	tst_run_free(&r);

	tst_run(&r, "top", "-n", "2", "-i", "0.05", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_uint_eq(tst_lines(r.out), 2 * (NCARDS + 2));
	tst_run_free(&r);
}
END_TEST

START_TEST(test_pipeline)
{
	struct tst_run r;
	struct tst_jv *cards, *bn;
	unsigned int forwarders = 0;
	double top = 0;

	tst_run(&r, "--json", "pipeline", "-i", "1", NULL);
	cards = cards_of(tst_envelope(&r, "pipeline", 0), NCARDS);
	ck_assert_str_eq(tst_jv_str(r.json, "source"), "registers");
	ck_assert_double_ge(tst_jv_num(r.json, "samples"), 1);
	for (size_t i = 0; i < NCARDS; i++) {
		struct tst_jv *c = tst_jv_at(cards, i);
		double occ = tst_jv_num(c, "occupancy");

		ck_assert_double_ge(occ, 0);
		ck_assert_double_le(occ, 1);
		ck_assert_double_eq_tol(tst_jv_num(c, "bubble_fraction"),
					1 - occ, 1e-9);
		/* a card that forwarded frames has them all, the others
		 * null: never a made-up number */
		if (tst_jv_get(c, "hops")->type == TST_JV_NUM) {
			double stalls = tst_jv_num(c, "credit_stalls");

			forwarders++;
			ck_assert_double_ge(tst_jv_num(c, "hops"), 1);
			ck_assert_double_gt(tst_jv_num(c, "hop_latency_us"), 0);
			ck_assert_double_ge(tst_jv_num(c, "hop_latency_max_us"),
					    tst_jv_num(c, "hop_latency_us"));
			ck_assert_double_ge(stalls, 0);
			ck_assert_int_eq(stalls == 0,
					 tst_jv_num(c, "credit_stall_us") == 0);
		} else {
			ck_assert_int_eq(tst_jv_get(c, "hop_latency_us")->type,
					 TST_JV_NULL);
			ck_assert_int_eq(tst_jv_get(c, "credit_stalls")->type,
					 TST_JV_NULL);
		}
		top = occ > top ? occ : top;
	}
	/* the model ran over several cards: the layer cards forwarded */
	ck_assert_uint_ge(forwarders, 1);
	/* a model ran meanwhile: some card worked, the busiest is named */
	bn = tst_jv_get(r.json, "bottleneck");
	ck_assert_int_eq(bn->type, TST_JV_OBJ);
	ck_assert_double_gt(top, 0);
	ck_assert_double_eq(tst_jv_num(bn, "occupancy"), top);
	ck_assert_double_eq(
		tst_jv_num(tst_jv_at(cards, (size_t)tst_jv_num(bn, "index")),
			   "occupancy"),
		top);
	tst_run_free(&r);

	tst_run(&r, "pipeline", "-i", "0.3", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "OCCUPANCY"));
	ck_assert_ptr_nonnull(strstr(r.out, "bottleneck: card "));
	tst_run_free(&r);

	tst_run(&r, "pipeline", "-i", "0.3", "-m", "/nonexistent.gguf", NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "/nonexistent.gguf"));
	tst_run_free(&r);
}
END_TEST

/* run --json: per card, the forwards and credit stalls of the run, from
 * the cards' statistics registers */
START_TEST(test_run_hops)
{
	struct tst_run r;
	struct tst_jv *hops, *mean, *max, *stalls, *stall_us;

	tst_run(&r, "--json", "run", "-c", "5", "-n", "2", "-M", "2", "-t", "4",
		"-q", NULL);
	tst_envelope(&r, "run", 0);
	hops = tst_jv_get(r.json, "hops");
	mean = tst_jv_get(r.json, "hop_latency_us");
	max = tst_jv_get(r.json, "hop_latency_max_us");
	stalls = tst_jv_get(r.json, "credit_stalls");
	stall_us = tst_jv_get(r.json, "credit_stall_us");
	ck_assert_uint_eq(hops->n, 5);
	ck_assert_uint_eq(stall_us->n, 5);
	for (size_t i = 0; i < 5; i++) {
		double h = tst_jv_at(hops, i)->num;

		if (tst_jv_at(mean, i)->type == TST_JV_NUM) {
			ck_assert_double_ge(h, 1);
			ck_assert_double_gt(tst_jv_at(mean, i)->num, 0);
			ck_assert_double_ge(tst_jv_at(max, i)->num,
					    tst_jv_at(mean, i)->num);
		} else {
			ck_assert_double_eq(h, 0);
			ck_assert_int_eq(tst_jv_at(max, i)->type, TST_JV_NULL);
		}
		ck_assert_int_eq(tst_jv_at(stalls, i)->num == 0,
				 tst_jv_at(stall_us, i)->num == 0);
	}
	/* the first card forwards, the last (an output card) does not */
	ck_assert_int_eq(tst_jv_at(mean, 0)->type, TST_JV_NUM);
	ck_assert_int_eq(tst_jv_at(mean, 4)->type, TST_JV_NULL);
	tst_run_free(&r);
}
END_TEST

/* More requests than the prompt table holds (256): each request takes a
 * prompt in turn, and the report names each one. */
START_TEST(test_run_many_requests)
{
	struct tst_run r;
	struct tst_jv *res;

	tst_run(&r, "--json", "run", "-p", "The cards", "-c", "5", "-n", "300",
		"-M", "8", "-t", "1", "--max-seq", "32", "--no-stop", "-q",
		NULL);
	tst_envelope(&r, "run", 0);
	res = tst_jv_get(r.json, "results");
	ck_assert_uint_eq(res->n, 300);
	ck_assert_str_eq(tst_jv_str(tst_jv_at(res, 299), "prompt"),
			 "The cards");
	tst_run_free(&r);
}
END_TEST

/* The streamed text of the followed request is the text the report
 * gives, byte for byte: SentencePiece leading spaces included (a token
 * decoded alone loses its own) */
START_TEST(test_run_stream_text)
{
	struct tst_run r, j;
	const char *text, *line;
	size_t len;

	tst_run(&j, "--json", "run", "-p", "In the beginning", "-n", "1", "-M",
		"1", "-t", "16", NULL);
	text = tst_jv_str(
		tst_jv_at(tst_jv_get(tst_envelope(&j, "run", 0), "results"), 0),
		"text");
	ck_assert_ptr_nonnull(text);
	ck_assert_ptr_nonnull(strchr(text, ' ')); /* words, spaced */
	tst_run(&r, "run", "-p", "In the beginning", "-n", "1", "-M", "1", "-t",
		"16", NULL);
	ck_assert_int_eq(r.status, 0);
	line = strstr(r.out, "[0] output: ");
	ck_assert_ptr_nonnull(line);
	line += strlen("[0] output: ");
	len = strlen(text);
	ck_assert_msg(!strncmp(line, text, len) && line[len] == '\n',
		      "streamed '%.*s', report '%s'", (int)len, line, text);
	tst_run_free(&r);
	tst_run_free(&j);
}
END_TEST

START_TEST(test_reset)
{
	struct tst_run r;
	struct tst_jv *cards;

	tst_run(&r, "--json", "reset", "3", "emu:7", NULL);
	cards = cards_of(tst_envelope(&r, "reset", 0), 2);
	ck_assert_str_eq(tst_jv_str(tst_jv_at(cards, 0), "name"), "emu:3");
	ck_assert_str_eq(tst_jv_str(tst_jv_at(cards, 1), "name"), "emu:7");
	for (size_t i = 0; i < 2; i++) {
		ck_assert(tst_jv_get(tst_jv_at(cards, i), "healthy")->b);
		ck_assert_int_eq(
			tst_jv_get(tst_jv_at(cards, i), "reason")->type,
			TST_JV_NULL);
	}
	tst_run_free(&r);

	tst_run(&r, "reset", "--all", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_uint_eq(tst_lines(r.out), NCARDS);
	ck_assert_ptr_nonnull(strstr(r.out, "card 15 (emu:15): reset in"));
	tst_run_free(&r);

	/* a card name that does not exist: usage (docs/nptool.md) */
	tst_run(&r, "reset", "16", NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "no card 16 "));
	tst_run_free(&r);
}
END_TEST

START_TEST(test_memtest)
{
	struct tst_run r;
	struct tst_jv *cards;

	tst_run(&r, "--json", "memtest", "--level", "quick", "--size", "64K",
		NULL);
	cards = cards_of(tst_envelope(&r, "memtest", 0), NCARDS);
	ck_assert_str_eq(tst_jv_str(r.json, "level"), "quick");
	for (size_t i = 0; i < NCARDS; i++) {
		struct tst_jv *mems =
			tst_jv_get(tst_jv_at(cards, i), "memories");

		ck_assert_uint_eq(mems->n, 2);
		ck_assert_str_eq(tst_jv_str(tst_jv_at(mems, 0), "memory"),
				 "sram");
		ck_assert_str_eq(tst_jv_str(tst_jv_at(mems, 1), "memory"),
				 "fb");
		for (size_t m = 0; m < 2; m++) {
			struct tst_jv *mem = tst_jv_at(mems, m);
			struct tst_jv *tests = tst_jv_get(mem, "tests");

			ck_assert_str_eq(tst_jv_str(mem, "result"), "pass");
			ck_assert_double_eq(tst_jv_num(mem, "bytes"),
					    64 * 1024);
			ck_assert_uint_eq(tests->n, 2);
			ck_assert_str_eq(
				tst_jv_str(tst_jv_at(tests, 0), "test"),
				"walking-ones");
			ck_assert_double_eq(
				tst_jv_num(tst_jv_at(tests, 1), "bad_words"),
				0);
		}
	}
	tst_run_free(&r);

	/* long: four inversion patterns and the inverted address pass */
	tst_run(&r, "--json", "memtest", "--level", "long", "--size", "64K",
		"--fb", "5", NULL);
	cards = cards_of(tst_envelope(&r, "memtest", 0), 1);
	ck_assert_uint_eq(tst_jv_get(tst_jv_at(cards, 0), "memories")->n, 1);
	ck_assert_uint_eq(tst_jv_get(tst_jv_at(tst_jv_get(tst_jv_at(cards, 0),
							  "memories"),
					       0),
				     "tests")
				  ->n,
			  7);
	tst_run_free(&r);

	tst_run(&r, "memtest", "--level", "medium", "--size", "64K", "0", "1",
		NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_uint_eq(tst_lines(r.out), 4);
	ck_assert_ptr_nonnull(strstr(r.out, "moving-inversions ok: pass"));
	tst_run_free(&r);
}
END_TEST

START_TEST(test_dma)
{
	struct tst_run r;
	struct tst_jv *res;

	tst_run(&r, "--json", "dma", "--sizes", "4k,64k", "-n", "4", "0", "15",
		NULL);
	tst_envelope(&r, "dma", 0);
	res = tst_jv_get(r.json, "results");
	ck_assert_uint_eq(res->n, 4);
	for (size_t i = 0; i < 4; i++) {
		struct tst_jv *x = tst_jv_at(res, i);

		ck_assert_double_eq(tst_jv_num(x, "index"), i < 2 ? 0 : 15);
		ck_assert_double_eq(tst_jv_num(x, "size"),
				    i % 2 ? 65536 : 4096);
		ck_assert_double_gt(
			tst_jv_num(tst_jv_get(x, "h2c"), "bytes_per_s"), 0);
		ck_assert_double_gt(
			tst_jv_num(tst_jv_get(x, "c2h"), "latency_us"), 0);
		ck_assert_str_eq(tst_jv_str(x, "integrity"), "pass");
	}
	tst_run_free(&r);

	tst_run(&r, "dma", "--sizes", "1M", "-n", "2", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_uint_eq(tst_lines(r.out), NCARDS + 1);
	ck_assert_ptr_nonnull(strstr(r.out, "1 MiB"));
	tst_run_free(&r);
}
END_TEST

static void check_pairs(struct tst_jv *e, const char *mode)
{
	struct tst_jv *pairs = tst_jv_get(e, "pairs");

	ck_assert_uint_eq(pairs->n, NCARDS * (NCARDS - 1));
	for (size_t i = 0; i < pairs->n; i++) {
		struct tst_jv *p = tst_jv_at(pairs, i);

		ck_assert_double_ne(tst_jv_num(p, "src"), tst_jv_num(p, "dst"));
		ck_assert_str_eq(tst_jv_str(p, "mode"), mode);
		ck_assert_str_eq(tst_jv_str(p, "integrity"), "pass");
		ck_assert_double_gt(tst_jv_num(p, "bytes_per_s"), 0);
	}
	ck_assert_double_eq(tst_jv_num(tst_jv_get(e, "summary"), "intact"),
			    NCARDS * (NCARDS - 1));
}

START_TEST(test_p2p)
{
	struct tst_run r;

	tst_run(&r, "--json", "p2p", "--size", "64K", "-n", "2", NULL);
	check_pairs(tst_envelope(&r, "p2p", 0), "direct");
	ck_assert_double_eq(tst_jv_num(tst_jv_get(r.json, "summary"), "bounce"),
			    0);
	tst_run_free(&r);

	/* forced host bounce: every pair marked */
	tst_run(&r, "--json", "p2p", "--size", "64K", "-n", "1", "--bounce",
		NULL);
	check_pairs(tst_envelope(&r, "p2p", 0), "bounce");
	tst_run_free(&r);

	tst_run(&r, "p2p", "--size", "64K", "-n", "1", "--bounce", NULL);
	ck_assert_int_eq(r.status, 0);
	/* title, header, 16 rows, summary */
	ck_assert_uint_eq(tst_lines(r.out), NCARDS + 3);
	ck_assert_ptr_nonnull(strstr(r.out, "*"));
	ck_assert_ptr_nonnull(strstr(r.out, "240 of 240 pairs intact"));
	tst_run_free(&r);

	/* a selection: indices in pairs refer to the cards array */
	tst_run(&r, "--json", "p2p", "--size", "4K", "-n", "1", "3", "emu:5",
		NULL);
	tst_envelope(&r, "p2p", 0);
	ck_assert_uint_eq(tst_jv_get(r.json, "cards")->n, 2);
	ck_assert_double_eq(
		tst_jv_num(tst_jv_at(tst_jv_get(r.json, "cards"), 1), "index"),
		5);
	ck_assert_str_eq(
		tst_jv_str(tst_jv_at(tst_jv_get(r.json, "cards"), 1), "name"),
		"emu:5");
	ck_assert_uint_eq(tst_jv_get(r.json, "pairs")->n, 2);
	ck_assert_double_eq(
		tst_jv_num(tst_jv_at(tst_jv_get(r.json, "pairs"), 0), "src"),
		3);
	ck_assert_double_eq(
		tst_jv_num(tst_jv_at(tst_jv_get(r.json, "pairs"), 0), "dst"),
		5);
	tst_run_free(&r);

	setenv("NP_DEVICES", "emu:1", 1);
	tst_run(&r, "p2p", NULL);
	ck_assert_int_eq(r.status, 3);
	tst_run_free(&r);
}
END_TEST

/* checks in order, all passing except a skipped one (NULL: none) */
static void check_validate(struct tst_jv *e, const char *const *names, size_t n,
			   const char *skipped)
{
	struct tst_jv *checks = tst_jv_get(e, "checks");

	ck_assert_uint_eq(checks->n, n);
	for (size_t i = 0; i < n; i++) {
		struct tst_jv *c = tst_jv_at(checks, i);
		bool skip = skipped && !strcmp(names[i], skipped);

		ck_assert_str_eq(tst_jv_str(c, "name"), names[i]);
		ck_assert_msg(!strcmp(tst_jv_str(c, "result"),
				      skip ? "skip" : "pass"),
			      "%s: %s: %s", names[i], tst_jv_str(c, "result"),
			      tst_jv_str(c, "detail"));
		ck_assert_str_ne(tst_jv_str(c, "detail"), "");
	}
	ck_assert_double_eq(tst_jv_num(tst_jv_get(e, "summary"), "fail"), 0);
	ck_assert_double_eq(tst_jv_num(tst_jv_get(e, "summary"), "skip"),
			    skipped ? 1 : 0);
}

START_TEST(test_validate_quick)
{
	static const char *const quick[] = {
		"open",	     "id-abi",	      "state",	  "error-counters",
		"telemetry", "dma-integrity", "p2p-ring", "model-run",
	};
	struct tst_run r;

	tst_run(&r, "--json", "validate", "quick", NULL);
	check_validate(tst_envelope(&r, "validate", 0), quick, 8, "model-run");
	ck_assert_str_eq(tst_jv_str(r.json, "level"), "quick");
	tst_run_free(&r);

	tst_run(&r, "validate", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_uint_eq(tst_lines(r.out), 9);
	ck_assert_ptr_nonnull(strstr(r.out, "[SKIP] model-run"));
	ck_assert_ptr_nonnull(strstr(r.out, "[ OK ] p2p-ring"));
	tst_run_free(&r);
}
END_TEST

START_TEST(test_validate_long)
{
	static const char *const lng[] = {
		"open",	     "id-abi",	      "state",	      "error-counters",
		"telemetry", "dma-integrity", "p2p-ring",     "dma-bandwidth",
		"p2p-all",   "memtest-quick", "memtest-full", "reset",
		"model-run",
	};
	struct tst_run r;

	/* four cards keep the full memtest short */
	setenv("NP_DEVICES", "emu:4", 1);
	tst_run(&r, "--json", "validate", "long", NULL);
	check_validate(tst_envelope(&r, "validate", 0), lng, 13, NULL);
	ck_assert_ptr_nonnull(
		strstr(tst_jv_str(tst_jv_at(tst_jv_get(r.json, "checks"), 12),
				  "detail"),
		       "match the integer reference"));
	tst_run_free(&r);

	/* a model that is not there: the model check fails, with the fix */
	tst_run(&r, "--json", "validate", "--model", "/nonexistent.gguf",
		"medium", NULL);
	tst_envelope(&r, "validate", 1);
	ck_assert_str_eq(
		tst_jv_str(tst_jv_at(tst_jv_get(r.json, "checks"), 10), "name"),
		"model-run");
	ck_assert_str_eq(tst_jv_str(tst_jv_at(tst_jv_get(r.json, "checks"), 10),
				    "result"),
			 "fail");
	ck_assert_ptr_nonnull(
		tst_jv_str(tst_jv_at(tst_jv_get(r.json, "checks"), 10), "fix"));
	tst_run_free(&r);
}
END_TEST

/* run --recover: the demo model on 5 of 6 cards, greedy; a fault struck
 * after 6 tokens is recovered and every request's text is that of the
 * fault-free run. */
static void run_recover(const char *inject, const char *fault, int spare,
			struct tst_jv *ref)
{
	struct tst_run r;
	struct tst_jv *res, *ev;

	tst_run(&r, "--json", "run", "-m", NPT_DEMO_MODEL, "-c", "5", "-n", "4",
		"-M", "2", "-t", "8", "--no-stop", "--recover", "--inject",
		inject, "--inject-after", "6", NULL);
	tst_envelope(&r, "run", 0);
	res = tst_jv_get(r.json, "results");
	ck_assert_uint_eq(res->n, ref->n);
	for (size_t i = 0; i < res->n; i++)
		ck_assert_str_eq(tst_jv_str(tst_jv_at(res, i), "text"),
				 tst_jv_str(tst_jv_at(ref, i), "text"));
	ck_assert_uint_eq(tst_jv_get(r.json, "recoveries")->n, 1);
	ev = tst_jv_at(tst_jv_get(r.json, "recoveries"), 0);
	ck_assert_str_eq(tst_jv_str(ev, "fault"), fault);
	ck_assert_double_eq(tst_jv_num(ev, "card"), inject[0] - '0');
	ck_assert_double_gt(tst_jv_num(ev, "replayed_tokens"), 0);
	ck_assert_double_ge(tst_jv_num(ev, "recover_ms"), 0);
	if (spare >= 0)
		ck_assert_double_eq(tst_jv_num(ev, "spare"), spare);
	else
		ck_assert_ptr_null(tst_jv_get(ev, "spare"));
	tst_run_free(&r);
}

START_TEST(test_run_recover)
{
	struct tst_run ref, r;

	setenv("NP_DEVICES", "emu:6", 1);
	tst_run(&ref, "--json", "run", "-m", NPT_DEMO_MODEL, "-c", "5", "-n",
		"4", "-M", "2", "-t", "8", "--no-stop", NULL);
	tst_envelope(&ref, "run", 0);
	ck_assert_uint_eq(tst_jv_get(ref.json, "results")->n, 4);
	run_recover("1:dead", "not answering", -1,
		    tst_jv_get(ref.json, "results"));
	run_recover("0:dma-error:engine=1,n=1", "DMA error", -1,
		    tst_jv_get(ref.json, "results"));
	run_recover("2:remove", "removed", 5, tst_jv_get(ref.json, "results"));
	tst_run_free(&ref);

	/* text: one line per recovery */
	tst_run(&r, "run", "-q", "-m", NPT_DEMO_MODEL, "-c", "5", "-n", "4",
		"-M", "2", "-t", "8", "--no-stop", "--recover", "--inject",
		"3:remove", "--inject-after", "6", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.err, "nptool: recovery 1: card 3 "
					    "removed, detected in "));
	ck_assert_ptr_nonnull(strstr(r.err, "card emu:5 took its image"));
	ck_assert_ptr_nonnull(strstr(r.out, "recoveries   1"));
	tst_run_free(&r);

	/* no spare: the run fails, naming the removed card */
	setenv("NP_DEVICES", "emu:5", 1);
	tst_run(&r, "run", "-q", "-m", NPT_DEMO_MODEL, "-c", "5", "-n", "4",
		"-M", "2", "-t", "8", "--recover", "--inject", "2:remove",
		"--inject-after", "6", NULL);
	ck_assert_int_ne(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.err, "card emu:2 (card 2 of the "
					    "pipeline) was removed and the "
					    "context has no spare card"));
	tst_run_free(&r);

	/* bad --inject */
	tst_run(&r, "run", "--inject", "dead", NULL);
	ck_assert_int_eq(r.status, 2);
	tst_run_free(&r);
	tst_run(&r, "run", "-m", NPT_DEMO_MODEL, "-c", "5", "--inject",
		"9:dead", NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "no card 9"));
	tst_run_free(&r);
}
END_TEST

Suite *np_suite_emu(void)
{
	Suite *s = suite_create("emu");
	TCase *tc = tcase_create("commands");

	tcase_add_checked_fixture(tc, emu_setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_list);
	tcase_add_test(tc, test_info);
	tcase_add_test(tc, test_status);
	tcase_add_test(tc, test_run_many_requests);
	tcase_add_test(tc, test_run_stream_text);
	tcase_add_test(tc, test_top);
	tcase_add_test(tc, test_pipeline);
	tcase_add_test(tc, test_run_hops);
	tcase_add_test(tc, test_reset);
	tcase_add_test(tc, test_memtest);
	tcase_add_test(tc, test_dma);
	tcase_add_test(tc, test_p2p);
	tcase_add_test(tc, test_validate_quick);
	tcase_add_test(tc, test_validate_long);
	tcase_add_test(tc, test_run_recover);
	suite_add_tcase(s, tc);
	return s;
}
