// SPDX-License-Identifier: MIT
/*
 * What bad clients get from npd: each test is one kind of bad client, and
 * each checks that the server goes on serving the others.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

static struct tst_npd npd;

static void up(void)
{
	static const char *const args[] = {"--api-key",
					   TST_KEY,
					   "--slots",
					   "4",
					   "--micro-batches",
					   "2",
					   "--max-queue",
					   "2",
					   "--max-body",
					   "4096",
					   "--timeout",
					   "2",
					   NULL};

	tst_npd_start(&npd, args);
}

static void down(void)
{
	ck_assert_int_eq(tst_npd_stop(&npd), 0);
}

static const char *const ok_body =
	"{\"prompt\": \"Once upon a time\", \"max_tokens\": 4, "
	"\"temperature\": 0}";

/* The server still answers a good request. */
static void still_serving(void)
{
	struct tst_resp r;

	tst_http(&npd, "POST", "/v1/completions", ok_body, TST_KEY, &r);
	ck_assert_msg(r.status == 200, "status %ld: %s", r.status, r.body);
	tst_resp_free(&r);
}

/* An OpenAI error document with this status, type and param. */
static void check_error(const char *method, const char *path, const char *body,
			const char *key, long status, const char *type,
			const char *param)
{
	struct tst_resp r;
	json_t *e;

	tst_http(&npd, method, path, body, key, &r);
	ck_assert_msg(r.status == status, "%s %s: status %ld, not %ld: %s",
		      method, path, r.status, status, r.body);
	e = json_object_get(r.json, "error");
	ck_assert_msg(json_is_object(e), "no error document: %s", r.body);
	ck_assert_str_eq(json_string_value(json_object_get(e, "type")), type);
	ck_assert_uint_gt(
		strlen(json_string_value(json_object_get(e, "message"))), 10);
	if (param)
		ck_assert_str_eq(json_string_value(json_object_get(e, "param")),
				 param);
	else
		ck_assert(json_is_null(json_object_get(e, "param")));
	tst_resp_free(&r);
}

START_TEST(keys)
{
	check_error("POST", "/v1/completions", ok_body, NULL, 401,
		    "authentication_error", NULL);
	check_error("POST", "/v1/completions", ok_body, "tst-wrong-key-000",
		    401, "authentication_error", NULL);
	still_serving();
}
END_TEST

START_TEST(malformed)
{
	check_error("POST", "/v1/completions", "{\"prompt\": \"x\",", TST_KEY,
		    400, "invalid_request_error", NULL);
	check_error("POST", "/v1/completions", "[1, 2]", TST_KEY, 400,
		    "invalid_request_error", NULL);
	check_error("POST", "/v1/completions",
		    "{\"prompt\": \"x\", \"max_tokens\": \"ten\"}", TST_KEY,
		    400, "invalid_request_error", "max_tokens");
	check_error("POST", "/v1/completions",
		    "{\"prompt\": \"x\", \"temperature\": 7}", TST_KEY, 400,
		    "invalid_request_error", "temperature");
	check_error("POST", "/v1/completions", "{\"prompt\": 5}", TST_KEY, 400,
		    "invalid_request_error", "prompt");
	check_error("POST", "/v1/completions",
		    "{\"prompt\": \"x\", \"stop\": [1]}", TST_KEY, 400,
		    "invalid_request_error", "stop");
	check_error("POST", "/v1/chat/completions", "{\"model\": \"m\"}",
		    TST_KEY, 400, "invalid_request_error", "messages");
	check_error("POST", "/v1/chat/completions",
		    "{\"messages\": [{\"role\": \"pirate\", \"content\": "
		    "\"arr\"}]}",
		    TST_KEY, 400, "invalid_request_error", "messages");
	/* the demo model has no chat template and none was chosen */
	check_error("POST", "/v1/chat/completions",
		    "{\"messages\": [{\"role\": \"user\", \"content\": "
		    "\"hi\"}]}",
		    TST_KEY, 400, "invalid_request_error", "messages");
	check_error("POST", "/v1/completions", "{\"prompt\": \"\\xff\"}",
		    TST_KEY, 400, "invalid_request_error", NULL);
	still_serving();
}
END_TEST

START_TEST(routes)
{
	check_error("GET", "/v1/nothing", NULL, TST_KEY, 404, "not_found_error",
		    NULL);
	check_error("GET", "/v1/completions", NULL, TST_KEY, 405,
		    "invalid_request_error", NULL);
	check_error("DELETE", "/metrics", NULL, NULL, 405,
		    "invalid_request_error", NULL);
	still_serving();
}
END_TEST

START_TEST(too_big)
{
	char *body = malloc(8192);

	ck_assert_ptr_nonnull(body);
	memset(body, ' ', 8191);
	body[8191] = 0;
	memcpy(body, "{\"prompt\": \"", 12);
	body[8189] = '"';
	body[8190] = '}';
	check_error("POST", "/v1/completions", body, TST_KEY, 413,
		    "invalid_request_error", NULL);
	free(body);
	still_serving();
}
END_TEST

START_TEST(beyond_context)
{
	check_error("POST", "/v1/completions",
		    "{\"prompt\": \"x\", \"max_tokens\": 100000}", TST_KEY, 400,
		    "invalid_request_error", "max_tokens");
	still_serving();
}
END_TEST

/* More streams than slots plus queue: the rest get 429 and Retry-After. */
START_TEST(queue_full)
{
	enum { N = 10 };
	const char *bodies[N];
	struct tst_resp r[N];
	unsigned int ok = 0, busy = 0;

	for (int i = 0; i < N; i++)
		bodies[i] =
			"{\"prompt\": \"Once upon a time\", \"max_tokens\": "
			"48, \"stream\": true}";
	tst_many(&npd, "/v1/completions", bodies, N, r, 0, NULL, NULL, NULL);
	for (int i = 0; i < N; i++) {
		if (r[i].status == 200) {
			ok++;
		} else {
			ck_assert_msg(r[i].status == 429, "status %ld: %s",
				      r[i].status, r[i].body);
			ck_assert_str_eq(r[i].retry_after, "1");
			busy++;
		}
		tst_resp_free(&r[i]);
	}
	/* 4 slots + 2 queued; the rest depends on timing only in that
	 * early requests may finish before late ones arrive */
	ck_assert_uint_ge(ok, 6);
	ck_assert_uint_ge(busy, 1);
	still_serving();
}
END_TEST

/* A client that hangs up mid-stream: its request is cancelled and its slot
 * freed at once. */
START_TEST(hangup_mid_stream)
{
	const char *body = "{\"prompt\": \"Once upon a time\", \"max_tokens\": "
			   "200, \"stream\": true}";
	double before = tst_scrape(&npd, "npd_requests_total{outcome="
					 "\"cancelled\"}");
	bool drop = true;
	struct tst_resp r;
	int i;

	tst_many(&npd, "/v1/completions", &body, 1, &r, 1, &drop, NULL, NULL);
	tst_resp_free(&r);
	for (i = 0; i < 200; i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};

		if (tst_scrape(&npd, "npd_requests_total{outcome="
				     "\"cancelled\"}") == before + 1 &&
		    tst_scrape(&npd, "npd_requests_running") == 0)
			break;
		nanosleep(&ts, NULL);
	}
	ck_assert_msg(i < 200, "the request was not cancelled within 2 s");
	still_serving();
}
END_TEST

static int connect_lo(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)npd.port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int s = socket(AF_INET, SOCK_STREAM, 0);

	if (s < 0)
		return -errno;
	if (connect(s, (struct sockaddr *)&a, sizeof(a))) {
		int e = errno;

		close(s);
		return -e;
	}
	return s;
}

/* Headers that never end: the connection is closed after --timeout,
 * and nobody else waits meanwhile. */
START_TEST(slowloris)
{
	static const char part[] = "POST /v1/completions HTTP/1.1\r\n"
				   "Host: 127.0.0.1\r\nX-Slow: ";
	struct pollfd p;
	char buf[256];
	int s = connect_lo();

	ck_assert_int_ge(s, 0);
	ck_assert_int_eq(send(s, part, sizeof(part) - 1, 0),
			 (ssize_t)sizeof(part) - 1);
	still_serving();
	p.fd = s;
	p.events = POLLIN;
	/* --timeout 2: closed within 2 s of the last byte; allow 8 */
	ck_assert_int_eq(poll(&p, 1, 8000), 1);
	ck_assert_int_le(recv(s, buf, sizeof(buf), 0), 0);
	close(s);
}
END_TEST

START_TEST(idle_connections)
{
	enum { N = 1000 };
	struct rlimit rl;
	int *s = calloc(N, sizeof(int));

	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < N + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	for (int i = 0; i < N; i++) {
		s[i] = connect_lo();
		ck_assert_msg(s[i] >= 0, "connection %d: %s", i,
			      strerror(-s[i]));
	}
	still_serving();
	for (int i = 0; i < N; i++)
		close(s[i]);
	free(s);
	still_serving();
}
END_TEST

Suite *np_suite_npd_bad(void)
{
	Suite *s = suite_create("npd_bad");
	TCase *tc = tcase_create("bad");

	tcase_add_unchecked_fixture(tc, up, down);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, keys);
	tcase_add_test(tc, malformed);
	tcase_add_test(tc, routes);
	tcase_add_test(tc, too_big);
	tcase_add_test(tc, beyond_context);
	tcase_add_test(tc, queue_full);
	tcase_add_test(tc, hangup_mid_stream);
	tcase_add_test(tc, slowloris);
	tcase_add_test(tc, idle_connections);
	suite_add_tcase(s, tc);
	return s;
}
