// SPDX-License-Identifier: MIT
/*
 * nptool exporter against 4 emulated cards, over loopback only: started on
 * an ephemeral port (--listen 127.0.0.1:0), scraped with a plain socket,
 * the exposition checked line by line against the text format 0.0.4 and
 * for every documented metric per card, then stopped with SIGTERM. Every
 * wait is bounded; a stuck exporter is killed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

#define NCARDS 4

static pid_t exporter = -1;
static int exporter_err = -1;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Start the exporter; returns its port, read from its stderr line (on
 * emulated cards after the note that they are the exporter's own). */
static unsigned int start(const char *listen)
{
	const char *tool = getenv("NPTOOL") ? getenv("NPTOOL") : NPTOOL_PATH;
	char buf[512] = "", *p;
	size_t n = 0;
	double end = now() + 20;
	int fds[2];

	ck_assert_int_eq(pipe(fds), 0);
	exporter = fork();
	ck_assert_int_ge(exporter, 0);
	if (exporter == 0) {
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		close(fds[1]);
		execl(tool, tool, "exporter", "--listen", listen, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	exporter_err = fds[0];
	while (((p = strstr(buf, "serving http://")) == NULL ||
		!strchr(p, '\n')) &&
	       n < sizeof(buf) - 1) {
		struct pollfd pf = {.fd = exporter_err, .events = POLLIN};
		ssize_t got;

		ck_assert_msg(now() < end, "no 'serving' line in 20 s");
		if (poll(&pf, 1, 1000) <= 0)
			continue;
		got = read(exporter_err, buf + n, sizeof(buf) - 1 - n);
		ck_assert_msg(got > 0, "the exporter exited: %s", buf);
		n += (size_t)got;
		buf[n] = '\0';
	}
	p = strstr(buf, "http://127.0.0.1:");
	ck_assert_msg(p, "no 'serving' line: %s", buf);
	return (unsigned int)strtoul(p + strlen("http://127.0.0.1:"), NULL, 10);
}

/* SIGTERM, then wait at most 10 s; returns the exit status. */
static int stop(void)
{
	double end = now() + 10;
	int status = 0;
	pid_t w;

	kill(exporter, SIGTERM);
	while ((w = waitpid(exporter, &status, WNOHANG)) == 0 && now() < end)
		usleep(10000);
	if (w == 0) {
		kill(exporter, SIGKILL);
		waitpid(exporter, &status, 0);
	}
	close(exporter_err);
	exporter = -1;
	ck_assert_msg(w > 0, "the exporter ignored SIGTERM");
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void teardown(void)
{
	if (exporter > 0) {
		kill(exporter, SIGKILL);
		waitpid(exporter, NULL, 0);
	}
}

/* One HTTP/1.0 request over loopback, 10 s at most; the whole response. */
static char *http(unsigned int port, const char *method, const char *path)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port)};
	struct timeval tv = {.tv_sec = 10};
	char req[256], *resp = NULL;
	size_t n = 0;
	int s = socket(AF_INET, SOCK_STREAM, 0);
	ssize_t got;

	ck_assert_int_ge(s, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	ck_assert_int_eq(connect(s, (struct sockaddr *)&a, sizeof(a)), 0);
	snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: localhost\r\n\r\n",
		 method, path);
	ck_assert_int_eq(write(s, req, strlen(req)), (ssize_t)strlen(req));
	do {
		resp = realloc(resp, n + 65536 + 1);
		ck_assert_ptr_nonnull(resp);
		got = read(s, resp + n, 65536);
		ck_assert_msg(got >= 0, "read: %s", strerror(errno));
		n += (size_t)got;
	} while (got > 0);
	resp[n] = '\0';
	close(s);
	return resp;
}

/* The value of the sample "name{card="i",...} v", or -1 if absent. */
static double sample(const char *body, const char *name, unsigned int card)
{
	char want[128];
	const char *p;

	snprintf(want, sizeof(want), "\n%s{card=\"%u\",", name, card);
	p = strstr(body, want);
	if (!p)
		return -1;
	p = strchr(p + 1, '}');
	return p ? strtod(p + 1, NULL) : -1;
}

/* Every line is a HELP, a TYPE (before the family's samples) or a sample
 * "name{labels} value" of a declared family. */
static void check_format(char *body)
{
	char families[64][64];
	size_t nf = 0;

	for (char *save = NULL, *l = strtok_r(body, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		char name[64], type[16];
		size_t k, i;

		if (!strncmp(l, "# HELP ", 7))
			continue;
		if (sscanf(l, "# TYPE %63s %15s", name, type) == 2) {
			ck_assert_msg(!strcmp(type, "gauge") ||
					      !strcmp(type, "counter"),
				      "%s", l);
			ck_assert_uint_lt(nf, 64);
			snprintf(families[nf++], sizeof(families[0]), "%s",
				 name);
			continue;
		}
		k = strcspn(l, "{ ");
		ck_assert_msg(k > 0 && k < 64 && l[k], "bad line: %s", l);
		for (i = 0; i < nf; i++)
			if (strlen(families[i]) == k &&
			    !strncmp(families[i], l, k))
				break;
		ck_assert_msg(i < nf, "sample before its TYPE: %s", l);
		if (l[k] == '{') {
			char *close = strstr(l, "} ");

			ck_assert_msg(close, "unterminated labels: %s", l);
			l = close + 1;
		} else {
			l += k;
		}
		{
			char *end;

			strtod(l + 1, &end);
			ck_assert_msg(end != l + 1 && *end == '\0',
				      "bad value: %s", l);
		}
	}
}

START_TEST(test_scrape)
{
	static const char *const per_card[] = {
		"np_card_info",
		"np_card_up",
		"np_card_holders",
		"np_temperature_celsius",
		"np_temperature_throttle_celsius",
		"np_temperature_critical_celsius",
		"np_power_watts",
		"np_core_voltage_volts",
		"np_core_clock_hertz",
		"np_busy_ratio",
		"np_uptime_seconds",
		"np_dma_bytes_total",
		"np_dma_errors_total",
		"np_sram_corrected_errors_total",
		"np_sram_uncorrected_errors_total",
		"np_throttle_events_total",
	};
	unsigned int port = start("127.0.0.1:0");
	char *r = http(port, "GET", "/metrics"), *body;

	ck_assert_int_eq(strncmp(r, "HTTP/1.1 200", 12), 0);
	ck_assert_ptr_nonnull(
		strstr(r, "text/plain; version=0.0.4; charset=utf-8"));
	body = strstr(r, "\r\n\r\n");
	ck_assert_ptr_nonnull(body);
	body += 3; /* keep a '\n' before the first line for sample() */
	for (unsigned int c = 0; c < NCARDS; c++) {
		for (size_t m = 0; m < sizeof(per_card) / sizeof(per_card[0]);
		     m++)
			ck_assert_msg(sample(body, per_card[m], c) >= 0,
				      "card %u has no %s", c, per_card[m]);
		ck_assert_double_eq(sample(body, "np_card_up", c), 1);
		ck_assert_double_gt(sample(body, "np_temperature_celsius", c),
				    10);
		ck_assert_double_lt(
			sample(body, "np_temperature_celsius", c),
			sample(body, "np_temperature_critical_celsius", c));
		ck_assert_double_gt(sample(body, "np_core_clock_hertz", c),
				    1e6);
	}
	ck_assert_ptr_nonnull(strstr(body,
				     "np_card_state{card=\"0\",name=\"emu:0\","
				     "state=\"ready\"} 1\n"));
	ck_assert_ptr_null(strstr(body, "card=\"4\""));
	check_format(body + 1);
	free(r);

	/* a second scrape counts */
	r = http(port, "GET", "/metrics");
	ck_assert_ptr_nonnull(strstr(r, "\nnp_exporter_scrapes_total 2\n"));
	free(r);
	r = http(port, "GET", "/nope");
	ck_assert_int_eq(strncmp(r, "HTTP/1.1 404", 12), 0);
	free(r);
	r = http(port, "POST", "/metrics");
	ck_assert_int_eq(strncmp(r, "HTTP/1.1 405", 12), 0);
	free(r);
	ck_assert_int_eq(stop(), 0);
}
END_TEST

/* A port in use is a device error naming it; a bad address is usage. */
START_TEST(test_listen_errors)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	char addr[64];
	struct tst_run r;
	int s = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(s, 1), 0);
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)&a, &len), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(a.sin_port));
	tst_run(&r, "exporter", "--listen", addr, NULL);
	ck_assert_int_eq(r.status, 4);
	ck_assert_ptr_nonnull(strstr(r.err, addr));
	tst_run_free(&r);
	close(s);

	tst_run(&r, "exporter", "--listen", "localhost", NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "'localhost'"));
	tst_run_free(&r);
	tst_run(&r, "exporter", "--listen", "127.0.0.1:70000", NULL);
	ck_assert_int_eq(r.status, 2);
	tst_run_free(&r);
}
END_TEST

static void setup(void)
{
	setenv("NP_DEVICES", "emu:4", 1);
	unsetenv("NP_SYSFS_ROOT");
	tst_pre_exec = NULL;
}

Suite *np_suite_exporter(void)
{
	Suite *s = suite_create("exporter");
	TCase *tc = tcase_create("loopback");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_scrape);
	tcase_add_test(tc, test_listen_errors);
	suite_add_tcase(s, tc);
	return s;
}
