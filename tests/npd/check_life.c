// SPDX-License-Identifier: MIT
/*
 * npd's life: a drain on SIGTERM finishes what runs, and a card fault
 * while 28 streams run loses none of them.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

struct drain {
	struct tst_npd *d;
	struct tst_resp *r;
	bool sent;
};

/* SIGTERM once the stream is under way. */
static void term_when_streaming(void *opaque)
{
	struct drain *dr = opaque;

	if (!dr->sent && dr->r->len > 0) {
		kill(dr->d->pid, SIGTERM);
		dr->sent = true;
	}
}

START_TEST(drain_on_sigterm)
{
	static const char *const args[] = {"--api-key", TST_KEY, NULL};
	const char *body = "{\"prompt\": \"Once upon a time\", \"max_tokens\": "
			   "40, \"temperature\": 0, \"stream\": true}";
	struct tst_npd d;
	struct tst_resp r, after;
	struct drain dr = {&d, &r, false};
	struct tst_sse s;
	int st = 0;

	tst_npd_start(&d, args);
	tst_many(&d, "/v1/completions", &body, 1, &r, 0, NULL,
		 term_when_streaming, &dr);
	ck_assert(dr.sent);
	ck_assert_int_eq(r.status, 200);
	tst_sse_parse(r.body, &s);
	ck_assert_msg(s.done, "the stream was cut by the drain: %.400s",
		      r.body);
	ck_assert_ptr_nonnull(s.finish);
	tst_sse_free(&s);
	tst_resp_free(&r);
	/* it exits by itself, 0, and takes nothing new */
	for (int i = 0; i < 600 && !waitpid(d.pid, &st, WNOHANG); i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};

		nanosleep(&ts, NULL);
	}
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 0);
	d.pid = 0;
	unlink(d.log);
	tst_http(&d, "GET", "/health", NULL, NULL, &after);
	ck_assert_int_eq(after.status, 0); /* connection refused */
	tst_resp_free(&after);
}
END_TEST

/* 28 greedy streams; a card dies after 60 tokens; every stream completes
 * with the text of a fault-free run of the same prompts. */
START_TEST(fault_during_28_streams)
{
	enum { N = 28 };
	static const char *const args[] = {
		"--api-key",	   TST_KEY, "--slots",	"28",
		"--micro-batches", "14",    "--inject", "6:dead",
		"--inject-after",  "60",    NULL};
	static const char *const words[] = {"Once", "The", "In", "A"};
	char *bodies[N], *first[N];
	struct tst_resp r[N];
	struct tst_npd d;

	tst_npd_start(&d, args);
	for (int i = 0; i < N; i++) {
		bodies[i] = malloc(256);
		snprintf(bodies[i], 256,
			 "{\"prompt\": \"%s %d\", \"max_tokens\": 16, "
			 "\"temperature\": 0, \"stream\": true}",
			 words[i % 4], i);
	}
	for (int pass = 0; pass < 2; pass++) {
		tst_many(&d, "/v1/completions", (const char *const *)bodies, N,
			 r, 0, NULL, NULL, NULL);
		for (int i = 0; i < N; i++) {
			struct tst_sse s;

			ck_assert_msg(r[i].status == 200, "stream %d: %ld", i,
				      r[i].status);
			tst_sse_parse(r[i].body, &s);
			ck_assert_msg(s.done && s.finish,
				      "stream %d lost, its last bytes: %s", i,
				      r[i].body +
					      (strlen(r[i].body) > 400 ?
						       strlen(r[i].body) - 400 :
						       0));
			if (!pass)
				first[i] = strdup(s.text);
			else
				ck_assert_str_eq(s.text, first[i]);
			tst_sse_free(&s);
			tst_resp_free(&r[i]);
		}
		if (!pass)
			ck_assert_double_eq(
				tst_scrape(&d, "npd_recoveries_total"), 1);
	}
	ck_assert_double_eq(tst_scrape(&d, "npd_requests_total{outcome="
					   "\"error\"}"),
			    0);
	for (int i = 0; i < N; i++) {
		free(bodies[i]);
		free(first[i]);
	}
	ck_assert_int_eq(tst_npd_stop(&d), 0);
}
END_TEST

/* A model that cannot be served: npd says why and exits 1, so that a
 * supervisor restarts it, instead of answering 503 for ever. */
START_TEST(unservable_model_exits)
{
	char cmd[512], out[8192];
	size_t n;
	FILE *f;
	int st;

	snprintf(cmd, sizeof(cmd),
		 "exec %s --port %u --model /nonexistent/np.gguf 2>&1",
		 NPD_PATH, tst_free_port());
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = 0;
	st = pclose(f);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %d: %s",
		      st, out);
	ck_assert_msg(strstr(out, "cannot serve /nonexistent/np.gguf: No such "
				  "file or directory"),
		      "%s", out);
	ck_assert_ptr_nonnull(
		strstr(out, "exiting: the model cannot be served"));
}
END_TEST

/* --precision: a mode the cards do not compute is a usage error naming
 * the modes; a bad --layer-precision fails the load with the compiler's
 * reason */
START_TEST(bad_precision)
{
	static const char *const cases[][3] = {
		{"--precision w3a3", "2", "modes are a8c8w4, w4a4, w8a8, w2a8"},
		{"--layer-precision 0-99:w8a8", "1", "'0-99:w8a8'"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char cmd[512], out[8192];
		size_t n;
		FILE *f;
		int st;

		snprintf(cmd, sizeof(cmd), "exec %s --port %u %s 2>&1",
			 NPD_PATH, tst_free_port(), cases[i][0]);
		f = popen(cmd, "r");
		ck_assert_ptr_nonnull(f);
		n = fread(out, 1, sizeof(out) - 1, f);
		out[n] = 0;
		st = pclose(f);
		ck_assert_msg(WIFEXITED(st) &&
				      WEXITSTATUS(st) == atoi(cases[i][1]),
			      "%s: status %d: %s", cases[i][0], st, out);
		ck_assert_msg(strstr(out, cases[i][2]), "%s: %s", cases[i][0],
			      out);
	}
}
END_TEST

Suite *np_suite_npd_life(void)
{
	Suite *s = suite_create("npd_life");
	TCase *tc = tcase_create("life");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, drain_on_sigterm);
	tcase_add_test(tc, fault_during_28_streams);
	tcase_add_test(tc, unservable_model_exits);
	tcase_add_test(tc, bad_precision);
	suite_add_tcase(s, tc);
	return s;
}
