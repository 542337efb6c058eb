// SPDX-License-Identifier: MIT
/* npd suite helpers: npd as a child process, HTTP through libcurl. */
#include <curl/curl.h>
#include <errno.h>
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

const char *tst_model = NPD_TEST_MODEL;

/* A port the kernel just gave out, free again for npd to take. */
unsigned int tst_free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(s, 0);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)&a, &l), 0);
	close(s);
	return ntohs(a.sin_port);
}

void tst_npd_start(struct tst_npd *d, const char *const *args)
{
	const char *argv[64];
	char port[16];
	size_t n = 0;
	int fd;

	d->port = tst_free_port();
	snprintf(port, sizeof(port), "%u", d->port);
	snprintf(d->log, sizeof(d->log), "/tmp/npd-test-XXXXXX");
	fd = mkstemp(d->log);
	ck_assert_int_ge(fd, 0);
	argv[n++] = NPD_PATH;
	argv[n++] = "--port";
	argv[n++] = port;
	argv[n++] = "--model";
	argv[n++] = tst_model;
	for (; args && *args && n < 60; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	d->pid = fork();
	ck_assert_int_ge(d->pid, 0);
	if (!d->pid) {
		dup2(fd, 2);
		dup2(fd, 1);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(fd);
	for (int i = 0; i < 1200; i++) {
		struct timespec ts = {0, 50 * 1000 * 1000};
		struct tst_resp r;
		int st;

		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			char *log = tst_npd_log(d);

			ck_abort_msg("npd exited (%d) at start: %s", st, log);
		}
		tst_http(d, "GET", "/health", NULL, NULL, &r);
		if (r.status == 200) {
			tst_resp_free(&r);
			return;
		}
		tst_resp_free(&r);
		nanosleep(&ts, NULL);
	}
	ck_abort_msg("npd not ready within 60 s");
}

int tst_npd_stop(struct tst_npd *d)
{
	int st = 0;

	if (d->pid <= 0)
		return -1;
	kill(d->pid, SIGTERM);
	for (int i = 0; i < 1200; i++) {
		struct timespec ts = {0, 50 * 1000 * 1000};

		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			d->pid = 0;
			unlink(d->log);
			return WIFEXITED(st) ? WEXITSTATUS(st) :
					       128 + WTERMSIG(st);
		}
		nanosleep(&ts, NULL);
	}
	kill(d->pid, SIGKILL);
	waitpid(d->pid, &st, 0);
	d->pid = 0;
	unlink(d->log);
	return 128 + SIGKILL;
}

char *tst_npd_log(const struct tst_npd *d)
{
	FILE *f = fopen(d->log, "r");
	char *s = calloc(1, 1 << 16);
	size_t n;

	if (!f || !s)
		return s;
	n = fread(s, 1, (1 << 16) - 1, f);
	s[n] = 0;
	fclose(f);
	return s;
}

static size_t on_body(char *p, size_t sz, size_t n, void *opaque)
{
	struct tst_resp *r = opaque;
	char *b = realloc(r->body, r->len + sz * n + 1);

	if (!b)
		return 0;
	memcpy(b + r->len, p, sz * n);
	r->len += sz * n;
	b[r->len] = 0;
	r->body = b;
	return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *opaque)
{
	struct tst_resp *r = opaque;

	if (sz * n > 13 && !strncasecmp(p, "Retry-After:", 12))
		sscanf(p + 12, " %15s", r->retry_after);
	return sz * n;
}

void tst_http(const struct tst_npd *d, const char *method, const char *path,
	      const char *body, const char *key, struct tst_resp *r)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char url[256], auth[256];
	CURLcode rc;

	memset(r, 0, sizeof(*r));
	ck_assert_ptr_nonnull(c);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", d->port, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		h = curl_slist_append(h, "Content-Type: application/json");
	}
	if (key) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
		h = curl_slist_append(h, auth);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK && rc != CURLE_COULDNT_CONNECT)
		ck_abort_msg("%s %s: %s", method, path, curl_easy_strerror(rc));
	if (r->body)
		r->json = json_loads(r->body, 0, NULL);
}

struct many {
	struct tst_resp *r;
	size_t limit; /* 0: none */
};

static size_t on_body_limited(char *p, size_t sz, size_t n, void *opaque)
{
	struct many *m = opaque;
	size_t got = on_body(p, sz, n, m->r);

	if (m->limit && m->r->len >= m->limit)
		return 0; /* the client hangs up */
	return got;
}

void tst_many(const struct tst_npd *d, const char *path,
	      const char *const *bodies, size_t n, struct tst_resp *r,
	      size_t hangup_after, const bool *drop,
	      void (*on_progress)(void *opaque), void *opaque)
{
	CURLM *mh = curl_multi_init();
	CURL **e = calloc(n, sizeof(*e));
	struct many *m = calloc(n, sizeof(*m));
	struct curl_slist *h = NULL;
	char url[256];
	int running = 1;

	ck_assert_ptr_nonnull(mh);
	ck_assert_ptr_nonnull(e);
	ck_assert_ptr_nonnull(m);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", d->port, path);
	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, "Authorization: Bearer " TST_KEY);
	for (size_t i = 0; i < n; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		m[i].r = &r[i];
		m[i].limit = drop && drop[i] ? hangup_after : 0;
		e[i] = curl_easy_init();
		ck_assert_ptr_nonnull(e[i]);
		curl_easy_setopt(e[i], CURLOPT_URL, url);
		curl_easy_setopt(e[i], CURLOPT_POSTFIELDS, bodies[i]);
		curl_easy_setopt(e[i], CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(e[i], CURLOPT_WRITEFUNCTION, on_body_limited);
		curl_easy_setopt(e[i], CURLOPT_WRITEDATA, &m[i]);
		curl_easy_setopt(e[i], CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(e[i], CURLOPT_HEADERDATA, &r[i]);
		curl_easy_setopt(e[i], CURLOPT_TIMEOUT, 300L);
		curl_multi_add_handle(mh, e[i]);
	}
	while (running) {
		ck_assert_int_eq(curl_multi_perform(mh, &running), CURLM_OK);
		if (running)
			curl_multi_poll(mh, NULL, 0, 10, NULL);
		if (on_progress)
			on_progress(opaque);
	}
	for (size_t i = 0; i < n; i++) {
		curl_easy_getinfo(e[i], CURLINFO_RESPONSE_CODE, &r[i].status);
		if (r[i].body)
			r[i].json = json_loads(r[i].body, 0, NULL);
		curl_multi_remove_handle(mh, e[i]);
		curl_easy_cleanup(e[i]);
	}
	curl_slist_free_all(h);
	curl_multi_cleanup(mh);
	free(e);
	free(m);
}

void tst_resp_free(struct tst_resp *r)
{
	free(r->body);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

void tst_sse_parse(const char *body, struct tst_sse *s)
{
	const char *p = body;
	size_t tl = 0;

	memset(s, 0, sizeof(*s));
	s->events = json_array();
	s->text = calloc(1, 1);
	while (p && *p) {
		const char *e = strstr(p, "\n\n");
		size_t l = e ? (size_t)(e - p) : strlen(p);

		ck_assert_msg(!strncmp(p, "data: ", 6),
			      "an SSE event that is not 'data: ': %.40s", p);
		if (l == 12 && !strncmp(p + 6, "[DONE]", 6)) {
			s->done = true;
		} else {
			json_t *j = json_loadb(p + 6, l - 6, 0, NULL);
			json_t *ch, *t, *fr;

			ck_assert_msg(j != NULL, "bad SSE JSON: %.*s", (int)l,
				      p);
			ck_assert_msg(!s->done, "an event after [DONE]");
			json_array_append_new(s->events, j);
			ch = json_array_get(json_object_get(j, "choices"), 0);
			t = json_object_get(ch, "text");
			if (!t)
				t = json_object_get(
					json_object_get(ch, "delta"),
					"content");
			if (json_is_string(t)) {
				size_t n = json_string_length(t);

				s->text = realloc(s->text, tl + n + 1);
				memcpy(s->text + tl, json_string_value(t), n);
				tl += n;
				s->text[tl] = 0;
			}
			fr = json_object_get(ch, "finish_reason");
			if (json_is_string(fr))
				s->finish = json_string_value(fr);
		}
		p = e ? e + 2 : NULL;
	}
}

void tst_sse_free(struct tst_sse *s)
{
	json_decref(s->events);
	free(s->text);
	memset(s, 0, sizeof(*s));
}

double tst_metric(const char *text, const char *sample)
{
	size_t l = strlen(sample);
	const char *p = text;

	while (p && *p) {
		if (!strncmp(p, sample, l) && p[l] == ' ')
			return strtod(p + l + 1, NULL);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}

double tst_scrape(const struct tst_npd *d, const char *sample)
{
	struct tst_resp r;
	double v;

	tst_http(d, "GET", "/metrics", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	v = tst_metric(r.body, sample);
	tst_resp_free(&r);
	return v;
}
