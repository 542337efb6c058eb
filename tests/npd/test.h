/* SPDX-License-Identifier: MIT */
/*
 * npd suite: starts the npd binary on emulated cards, on a loopback port,
 * and talks to it with libcurl (requests, streams, clients that go away)
 * and raw sockets (slow and idle clients); responses are read with jansson.
 */
#ifndef TST_TEST_H
#define TST_TEST_H

#include <check.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define TST_KEY "tst-key-0123456789"

Suite *np_suite_npd_api(void);
Suite *np_suite_npd_bad(void);
Suite *np_suite_npd_life(void);
Suite *np_suite_npd_nptool(void);

struct tst_npd {
	pid_t pid;
	unsigned int port;
	char log[64]; /* its stderr, a temporary file */
};

/* A TCP port on 127.0.0.1 that nothing listens on now */
unsigned int tst_free_port(void);

/* Start npd with these extra arguments (NULL-terminated) on a free
 * loopback port, and wait until /health says ok (or fail the test). */
void tst_npd_start(struct tst_npd *d, const char *const *args);
/* SIGTERM and wait; the exit status (128 + signal if killed). */
int tst_npd_stop(struct tst_npd *d);
/* Everything npd wrote to stderr, malloc()ed. */
char *tst_npd_log(const struct tst_npd *d);

struct tst_resp {
	long status;
	char *body; /* NUL-terminated */
	size_t len;
	char retry_after[16];
	json_t *json; /* body parsed, when it is JSON */
};

/* One request to d: method, path, body (NULL: none), key (NULL: none).
 * Fails the test when the connection fails. */
void tst_http(const struct tst_npd *d, const char *method, const char *path,
	      const char *body, const char *key, struct tst_resp *r);
void tst_resp_free(struct tst_resp *r);

/* n requests at once (POST path, bodies[i], the test key), run to
 * completion with libcurl's multi interface; r[i] as tst_http fills it.
 * hangup_after (if not 0): request i is dropped by the client once that
 * many bytes of its response arrived, where drop[i] (NULL: none) is set.
 * on_progress (NULL: none) is called about every 10 ms while they run. */
void tst_many(const struct tst_npd *d, const char *path,
	      const char *const *bodies, size_t n, struct tst_resp *r,
	      size_t hangup_after, const bool *drop,
	      void (*on_progress)(void *opaque), void *opaque);

/* A streamed completion's events: data lines, [DONE] seen. */
struct tst_sse {
	json_t *events; /* array of the JSON data events */
	bool done;
	char *text; /* the text of all chunks, joined */
	const char *finish; /* the last finish_reason */
};
void tst_sse_parse(const char *body, struct tst_sse *s);
void tst_sse_free(struct tst_sse *s);

/* The value of a sample in a Prometheus text, e.g.
 * "npd_requests_total{outcome=\"cancelled\"}"; -1 when absent. */
double tst_metric(const char *text, const char *sample);
/* Scrape d's /metrics and read one sample. */
double tst_scrape(const struct tst_npd *d, const char *sample);

/* The path of the demo model and the sample text. */
extern const char *tst_model;

#endif /* TST_TEST_H */
