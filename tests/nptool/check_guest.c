// SPDX-License-Identifier: MIT
/*
 * nptool on real cards over VFIO: the guest run (tests/guest) runs this
 * suite alone (CK_RUN_SUITE=guest) with NP_DEVICES=vfio:all and NPTOOL
 * naming the static nptool binary. It is registered only when NP_DEVICES
 * names VFIO cards.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

static size_t ncards;

static void guest_setup(void)
{
	struct tst_run r;

	tst_run(&r, "--json", "list", NULL);
	tst_envelope(&r, "list", 0);
	ncards = tst_jv_get(r.json, "cards")->n;
	ck_assert_uint_ge(ncards, 2);
	tst_run_free(&r);
}

START_TEST(test_list)
{
	struct tst_run r;
	struct tst_jv *cards;

	tst_run(&r, "--json", "list", NULL);
	cards = tst_jv_get(tst_envelope(&r, "list", 0), "cards");
	for (size_t i = 0; i < cards->n; i++) {
		struct tst_jv *c = tst_jv_at(cards, i);

		ck_assert_str_eq(tst_jv_str(c, "driver"), "np_vfio_pci");
		ck_assert_str_eq(tst_jv_str(c, "state"), "ready");
		ck_assert_int_eq(tst_jv_get(c, "iommu_group")->type,
				 TST_JV_NUM);
		ck_assert_ptr_nonnull(tst_jv_str(c, "fw_version"));
		ck_assert_ptr_nonnull(tst_jv_str(c, "serial"));
		/* the cards sit on the root bus: the driver's np/link */
		ck_assert_double_ge(tst_jv_num(tst_jv_get(c, "link"), "gen"),
				    1);
		ck_assert_double_ge(tst_jv_num(tst_jv_get(c, "link"), "width"),
				    1);
	}
	tst_run_free(&r);
}
END_TEST

/* status from the driver's hwmon/sysfs while another process holds every
 * card through VFIO and moves data with them */
START_TEST(test_status_during_run)
{
	const char *tool = getenv("NPTOOL");
	struct tst_run r;
	struct tst_jv *cards;
	double rate = 0;
	int status;
	pid_t pid;

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* a failed assertion ends this test: the holder goes too */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (!tool)
			tool = NPTOOL_PATH;
		execl(tool, tool, "dma", "--sizes", "1M", "--iterations",
		      "4096", (char *)NULL);
		_exit(127);
	}
	/* status never opens the cards: poll until the holder's DMA shows */
	for (int tries = 0; rate <= 0; tries++) {
		ck_assert_msg(tries < 60, "no DMA activity seen in a minute");
		if (tries)
			tst_run_free(&r);
		tst_run(&r, "--json", "status", "-i", "1", NULL);
		cards = tst_jv_get(tst_envelope(&r, "status", 0), "cards");
		ck_assert_str_eq(tst_jv_str(r.json, "source"), "sysfs");
		ck_assert_uint_eq(cards->n, ncards);
		for (size_t i = 0; i < cards->n; i++) {
			struct tst_jv *c = tst_jv_at(cards, i);

			ck_assert_double_gt(tst_jv_num(c, "temp_mc"), 0);
			ck_assert_double_gt(tst_jv_num(c, "power_mw"), 0);
			ck_assert_double_ge(tst_jv_num(c, "dma_bytes_per_s"),
					    0);
			rate += tst_jv_num(c, "dma_bytes_per_s");
		}
	}
	tst_run_free(&r);
	/* the cards are held: opening them is refused, the holder goes on */
	tst_run(&r, "info", NULL);
	ck_assert_int_eq(r.status, 4);
	ck_assert_int_eq(kill(pid, 0), 0);
	tst_run_free(&r);
	kill(pid, SIGTERM);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
}
END_TEST

/* pipeline from the driver's sysfs while another process runs a model
 * over VFIO: the layer cards' forwards and credit stalls (np/dma1_stat) */
START_TEST(test_pipeline_during_run)
{
	const char *tool = getenv("NPTOOL"), *model = getenv("NP_GUEST_MODEL");
	struct tst_run r;
	unsigned int forwarders = 0;
	int status = 0;
	pid_t pid;

	ck_assert_msg(model, "NP_GUEST_MODEL names no model");
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (!tool)
			tool = NPTOOL_PATH;
		/* 960 frames of 64 tokens: long enough to be watched */
		execl(tool, tool, "run", "-m", model, "-p", "The cards", "-c",
		      "5", "-n", "512", "-M", "8", "-t", "120", "--max-seq",
		      "128", "--no-stop", "-q", (char *)NULL);
		_exit(127);
	}
	for (int tries = 0; !forwarders; tries++) {
		struct tst_jv *cards;

		ck_assert_msg(tries < 120,
			      "no card forwarded in 120 intervals");
		ck_assert_msg(waitpid(pid, &status, WNOHANG) == 0,
			      "the model run ended (status 0x%x) before a "
			      "forward was seen",
			      status);
		if (tries)
			tst_run_free(&r);
		tst_run(&r, "--json", "pipeline", "-i", "0.5", NULL);
		cards = tst_jv_get(tst_envelope(&r, "pipeline", 0), "cards");
		ck_assert_str_eq(tst_jv_str(r.json, "source"), "sysfs");
		for (size_t i = 0; i < cards->n; i++) {
			struct tst_jv *c = tst_jv_at(cards, i);

			if (tst_jv_get(c, "hops")->type != TST_JV_NUM)
				continue;
			forwarders++;
			ck_assert_double_gt(tst_jv_num(c, "hop_latency_us"), 0);
			ck_assert_int_eq(tst_jv_num(c, "credit_stalls") == 0,
					 tst_jv_num(c, "credit_stall_us") == 0);
		}
	}
	tst_run_free(&r);
	kill(pid, SIGTERM);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
}
END_TEST

START_TEST(test_reset)
{
	struct tst_run r;
	struct tst_jv *cards;

	tst_run(&r, "--json", "reset", "--all", NULL);
	cards = tst_jv_get(tst_envelope(&r, "reset", 0), "cards");
	ck_assert_uint_eq(cards->n, ncards);
	for (size_t i = 0; i < cards->n; i++)
		ck_assert(tst_jv_get(tst_jv_at(cards, i), "healthy")->b);
	tst_run_free(&r);
}
END_TEST

START_TEST(test_p2p)
{
	struct tst_run r;
	struct tst_jv *pairs;

	tst_run(&r, "--json", "p2p", "--size", "64K", "-n", "1", NULL);
	pairs = tst_jv_get(tst_envelope(&r, "p2p", 0), "pairs");
	ck_assert_uint_eq(pairs->n, ncards * (ncards - 1));
	for (size_t i = 0; i < pairs->n; i++)
		ck_assert_str_eq(tst_jv_str(tst_jv_at(pairs, i), "integrity"),
				 "pass");
	tst_run_free(&r);
}
END_TEST

START_TEST(test_validate_quick)
{
	struct tst_run r;

	tst_run(&r, "--json", "validate", "quick", NULL);
	tst_envelope(&r, "validate", 0);
	ck_assert_double_eq(tst_jv_num(tst_jv_get(r.json, "summary"), "fail"),
			    0);
	tst_run_free(&r);
}
END_TEST

Suite *np_suite_guest(void)
{
	Suite *s = suite_create("guest");
	TCase *tc = tcase_create("vfio");

	tcase_add_checked_fixture(tc, guest_setup, NULL);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_list);
	tcase_add_test(tc, test_status_during_run);
	tcase_add_test(tc, test_pipeline_during_run);
	tcase_add_test(tc, test_reset);
	tcase_add_test(tc, test_p2p);
	tcase_add_test(tc, test_validate_quick);
	suite_add_tcase(s, tc);
	return s;
}
