// SPDX-License-Identifier: MIT
/*
 * nptool against a running npd: the emulated cards npd serves from live
 * inside npd, and nptool status, top and exporter show them through npd's
 * GET /v1/np/cards (NP_NPD names npd): their state and telemetry, what
 * the model takes of each (the use registers), npd as the holder, and the
 * pipeline occupancy in the exporter.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *s = calloc(1, 1 << 20);
	size_t n;

	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(s);
	n = fread(s, 1, (1 << 20) - 1, f);
	s[n] = 0;
	fclose(f);
	return s;
}

struct out {
	int status;
	char *out, *err;
};

/* nptool ARGS with NP_NPD=url (NULL: unset), stdout and stderr kept. */
static void nptool(struct out *o, const char *url, const char *const *args)
{
	char fo[] = "/tmp/npd-nptool-out-XXXXXX",
	     fe[] = "/tmp/npd-nptool-err-XXXXXX";
	const char *argv[32];
	int a = mkstemp(fo), b = mkstemp(fe), st;
	size_t n = 0;
	pid_t pid;

	ck_assert_int_ge(a, 0);
	ck_assert_int_ge(b, 0);
	argv[n++] = NPTOOL_PATH;
	for (; *args && n < 30; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (!pid) {
		if (url)
			setenv("NP_NPD", url, 1);
		else
			unsetenv("NP_NPD");
		dup2(a, 1);
		dup2(b, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	close(a);
	close(b);
	o->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	o->out = slurp(fo);
	o->err = slurp(fe);
	unlink(fo);
	unlink(fe);
}

static void out_free(struct out *o)
{
	free(o->out);
	free(o->err);
}

START_TEST(test_status_of_npd)
{
	static const char *const args[] = {"--devices", "emu:6", NULL};
	struct tst_npd d;
	struct out o;
	char url[64], want[128];
	json_t *j, *cards, *c, *h;
	size_t loaded = 0;

	tst_npd_start(&d, args);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", d.port);

	nptool(&o, url,
	       (const char *const[]){"--json", "-d", "emu:6", "status", "-i",
				     "0.05", NULL});
	ck_assert_msg(o.status == 0, "exit %d: %s", o.status, o.err);
	j = json_loads(o.out, 0, NULL);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(json_string_value(json_object_get(j, "source")),
			 "npd");
	cards = json_object_get(j, "cards");
	ck_assert_uint_eq(json_array_size(cards), 6);
	for (size_t i = 0; i < 6; i++) {
		c = json_array_get(cards, i);
		snprintf(want, sizeof(want), "emu:%zu", i);
		ck_assert_str_eq(json_string_value(json_object_get(c, "name")),
				 want);
		ck_assert_str_eq(json_string_value(json_object_get(c, "state")),
				 "ready");
		ck_assert(json_is_integer(json_object_get(c, "temp_mc")));
		/* npd holds every card */
		h = json_array_get(json_object_get(c, "holders"), 0);
		ck_assert_int_eq(json_integer_value(json_object_get(h, "pid")),
				 d.pid);
		ck_assert_str_eq(json_string_value(json_object_get(h, "name")),
				 "npd");
		/* the model's share, as npd's libnp published it */
		if (json_integer_value(
			    json_object_get(c, "sram_weight_bytes")) > 0) {
			loaded++;
			ck_assert_int_gt(json_integer_value(json_object_get(
						 c, "fb_used_bytes")),
					 0);
			ck_assert_int_eq(
				json_integer_value(
					json_object_get(c, "sram_used_bytes")),
				json_integer_value(json_object_get(
					c, "sram_weight_bytes")) +
					json_integer_value(json_object_get(
						c, "sram_kv_bytes")) +
					json_integer_value(json_object_get(
						c, "sram_prog_bytes")));
		}
	}
	ck_assert_uint_gt(loaded, 0);
	json_decref(j);
	out_free(&o);

	/* the table names npd and says whose cards these are */
	nptool(&o, url,
	       (const char *const[]){"-d", "emu:6", "top", "-n", "1", "-i",
				     "0.05", NULL});
	ck_assert_msg(o.status == 0, "exit %d: %s", o.status, o.err);
	snprintf(want, sizeof(want), "npd[%d]", (int)d.pid);
	ck_assert_msg(strstr(o.out, want), "%s", o.out);
	snprintf(want, sizeof(want), "cards of npd[%d] at %s", (int)d.pid, url);
	ck_assert_msg(strstr(o.err, want), "%s", o.err);
	out_free(&o);

	ck_assert_int_eq(tst_npd_stop(&d), 0);

	/* npd gone: nptool's own idle cards, and it says so */
	nptool(&o, url,
	       (const char *const[]){"-d", "emu:2", "status", "-i", "0.01",
				     NULL});
	ck_assert_int_eq(o.status, 0);
	ck_assert_msg(strstr(o.err, "cards this nptool created, idle") &&
			      strstr(o.err, "no npd answered at"),
		      "%s", o.err);
	out_free(&o);
}
END_TEST

/* Scrape an exporter serving npd's cards: pipeline occupancy counters of
 * the cards that run the model. */
START_TEST(test_exporter_of_npd)
{
	static const char *const args[] = {"--devices", "emu:6", NULL};
	struct tst_npd d, e = {0};
	struct tst_resp r;
	char url[64], listen[64], sample[128];
	const char *argv[8];
	double busy = 0;
	pid_t pid;

	tst_npd_start(&d, args);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", d.port);
	/* some work, so the pipeline was busy: tens of milliseconds, well
	 * above libnp's 1 ms busy sampling even on an idle machine (4
	 * tokens once finished between two samples and counted nothing) */
	tst_http(&d, "POST", "/v1/completions",
		 "{\"prompt\":\"Hello, this is a longer prompt for the cards "
		 "to chew on before they answer\",\"max_tokens\":64}",
		 NULL, &r);
	ck_assert_int_eq(r.status, 200);
	tst_resp_free(&r);

	e.port = tst_free_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", e.port);
	argv[0] = NPTOOL_PATH;
	argv[1] = "-d";
	argv[2] = "emu:6";
	argv[3] = "exporter";
	argv[4] = "--listen";
	argv[5] = listen;
	argv[6] = NULL;
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (!pid) {
		int nul = open("/dev/null", O_WRONLY);

		setenv("NP_NPD", url, 1);
		dup2(nul, 1);
		dup2(nul, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	/* until the exporter listens */
	for (int i = 0; i < 400; i++) {
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_port = htons((uint16_t)e.port),
					.sin_addr.s_addr =
						htonl(INADDR_LOOPBACK)};
		struct timespec ts = {0, 50 * 1000 * 1000};
		int s = socket(AF_INET, SOCK_STREAM, 0);
		int ok = !connect(s, (struct sockaddr *)&a, sizeof(a));

		close(s);
		if (ok)
			break;
		nanosleep(&ts, NULL);
	}
	ck_assert_double_eq(
		tst_scrape(&e, "np_card_up{card=\"0\",name=\"emu:0\"}"), 1);
	/* a request can end between two busy samples (the model may stop
	 * early at its end token): more work until a sample saw a card busy,
	 * a bounded number of times */
	for (int round = 0; round < 20 && !busy; round++) {
		if (round) {
			tst_http(&d, "POST", "/v1/completions",
				 "{\"prompt\":\"Once upon a time\","
				 "\"max_tokens\":64}",
				 NULL, &r);
			ck_assert_int_eq(r.status, 200);
			tst_resp_free(&r);
		}
		for (int i = 0; i < 6; i++) {
			snprintf(sample, sizeof(sample),
				 "np_pipeline_busy_seconds_total{card=\"%d\","
				 "name=\"emu:%d\"}",
				 i, i);
			busy += tst_scrape(&e, sample) > 0;
		}
	}
	for (int i = 0; i < 6; i++) {
		snprintf(sample, sizeof(sample),
			 "np_card_holders{card=\"%d\",name=\"emu:%d\"}", i, i);
		ck_assert_double_eq(tst_scrape(&e, sample), 1);
	}
	ck_assert_double_gt(busy, 0);
	ck_assert_double_gt(
		tst_scrape(&e,
			   "np_sram_weight_bytes{card=\"0\",name=\"emu:0\"}"),
		0);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	ck_assert_int_eq(tst_npd_stop(&d), 0);
}
END_TEST

Suite *np_suite_npd_nptool(void)
{
	Suite *s = suite_create("npd_nptool");
	TCase *tc = tcase_create("nptool");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_status_of_npd);
	tcase_add_test(tc, test_exporter_of_npd);
	suite_add_tcase(s, tc);
	return s;
}
