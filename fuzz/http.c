// SPDX-License-Identifier: MIT
/*
 * HTTP harness: npd's request path, in-process and end to end.
 *
 * The first input starts npd's server (tools/npd: the HTTP layer on
 * libmicrohttpd, the OpenAI documents, the engine) on a loopback port the
 * kernel picks, serving a tiny model of the gguf corpus (SentencePiece
 * vocabulary, Q8_0) from two emulated cards with a
 * small context (128 tokens), a 2 KiB body limit and one API key. Each
 * input then becomes one HTTP/1.1 request on a fresh connection:
 *
 *   byte 0  the method: GET POST PUT DELETE HEAD OPTIONS
 *   byte 1  the path: one of npd's six routes, a near miss, or raw bytes
 *           from the input (up to a NUL; space, CR, LF, '%', '?' and '#'
 *           become '_', so the path reaches npd as sent)
 *   byte 2  bits 0-1 the Authorization header: none, the right key, a
 *           wrong key, the key without "Bearer "; bit 2 a Content-Length
 *           over the limit (the body is sent anyway); bit 3 the body in
 *           chunks of 61 bytes (Transfer-Encoding: chunked)
 *   rest    the body, as sent
 *
 * Invariants, checked on the response: it arrives (a hung or dropped
 * request fails); its status is the one the routing rules give (404 for
 * an unknown path, 405 for a wrong method, 401 for a missing or wrong key
 * on POST, 413 over the body limit), and for a completion request 200 or
 * 400, never 5xx; every error body is {"error": {"message": non-empty,
 * "type", "param", "code"}}; a 200 completion holds "choices" (a stream
 * ends with "data: [DONE]"); /v1/np/cards lists the two cards.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "http.h"
#include "np_fuzz.h"
#include "npd.h"

#define KEY "fuzz-key"
#define MAX_BODY 2048
#define CHUNK 61

static struct npd_config cfg;
static uint16_t port;

/* npd's log (its main.c writes it to stderr): kept quiet here, where
 * every bad request would log */
void npd_log(const char *fmt, ...)
{
	(void)fmt;
}

static void start(void)
{
	struct timespec ts = {0, 10 * 1000 * 1000};
	enum npd_state st;

	npd_config_defaults(&cfg);
	cfg.model = strdup(NP_FUZZ_DIR "/corpus/gguf/valid-q8_0-spm.gguf");
	cfg.devices = strdup("emu:2");
	cfg.chat_template = strdup("chatml");
	cfg.api_keys[cfg.n_api_keys++] = strdup(KEY);
	NP_FUZZ_ASSERT(cfg.model && cfg.devices && cfg.chat_template &&
			       cfg.api_keys[0],
		       "out of memory");
	cfg.port = 0;
	cfg.max_seq = 128;
	cfg.slots = 2;
	cfg.max_body = MAX_BODY;
	cfg.max_tokens_default = 4;
	cfg.max_queue = 8;
	cfg.timeout_s = 30;
	npd_metrics_init();
	NP_FUZZ_ASSERT(!npd_engine_start(&cfg), "npd's engine does not start");
	NP_FUZZ_ASSERT(!npd_http_start(&cfg), "npd does not listen");
	port = npd_http_port();
	NP_FUZZ_ASSERT(port, "npd's port unknown");
	while ((st = npd_engine_state()) == NPD_LOADING)
		nanosleep(&ts, NULL);
	NP_FUZZ_ASSERT(st == NPD_READY, "npd cannot serve %s on %s (state %d)",
		       cfg.model, cfg.devices, (int)st);
}

struct resp {
	char *s;
	size_t len;
	unsigned int status;
	const char *body; /* past the header */
};

static int send_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		/* the server may answer and close before taking the body */
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One exchange on a fresh connection; the response as read to EOF. */
static void exchange(const char *head, size_t head_len, const uint8_t *body,
		     size_t body_len, bool chunked, struct resp *r)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct timeval tv = {60, 0};
	size_t cap = 4096;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	NP_FUZZ_ASSERT(fd >= 0, "socket: %s", strerror(errno));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	NP_FUZZ_ASSERT(!connect(fd, (struct sockaddr *)&a, sizeof(a)),
		       "connect to npd: %s", strerror(errno));
	if (!send_all(fd, head, head_len)) {
		if (!chunked) {
			send_all(fd, body, body_len);
		} else {
			char line[32];
			bool ok = true;

			for (size_t off = 0; ok && off < body_len;
			     off += CHUNK) {
				size_t n = body_len - off < CHUNK ?
						   body_len - off :
						   CHUNK;
				int l = snprintf(line, sizeof(line), "%zx\r\n",
						 n);

				ok = !send_all(fd, line, (size_t)l) &&
				     !send_all(fd, body + off, n) &&
				     !send_all(fd, "\r\n", 2);
			}
			if (ok)
				send_all(fd, "0\r\n\r\n", 5);
		}
	}
	r->s = malloc(cap);
	r->len = 0;
	NP_FUZZ_ASSERT(r->s, "out of memory");
	for (;;) {
		ssize_t n;

		if (r->len + 1 == cap) {
			r->s = realloc(r->s, cap *= 2);
			NP_FUZZ_ASSERT(r->s, "out of memory");
		}
		n = recv(fd, r->s + r->len, cap - r->len - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		/* a reset after the response (the body was not read) is
		 * how a server refuses the rest of an upload */
		if (n < 0 && errno == ECONNRESET && r->len)
			break;
		NP_FUZZ_ASSERT(n >= 0, "no response from npd: %s",
			       strerror(errno));
		if (!n)
			break;
		r->len += (size_t)n;
	}
	r->s[r->len] = 0;
	close(fd);
	NP_FUZZ_ASSERT(r->len > 12 && !strncmp(r->s, "HTTP/1.1 ", 9),
		       "no HTTP response (%zu bytes)", r->len);
	r->status = (unsigned int)strtoul(r->s + 9, NULL, 10);
	r->body = strstr(r->s, "\r\n\r\n");
	NP_FUZZ_ASSERT(r->body, "a response without an end of header");
	r->body += 4;
}

static void check_error(const struct resp *r)
{
	json_error_t jerr;
	json_t *j = json_loads(r->body, 0, &jerr), *e, *m;

	NP_FUZZ_ASSERT(j, "%u: the error is not JSON (%s): %.200s", r->status,
		       jerr.text, r->body);
	e = json_object_get(j, "error");
	m = json_object_get(e, "message");
	NP_FUZZ_ASSERT(json_is_object(e) && json_is_string(m) &&
			       json_string_length(m) &&
			       json_is_string(json_object_get(e, "type")) &&
			       json_object_get(e, "param") &&
			       json_object_get(e, "code"),
		       "%u: not an OpenAI error: %.200s", r->status, r->body);
	json_decref(j);
}

static const char *const methods[] = {"GET",	"POST", "PUT",
				      "DELETE", "HEAD", "OPTIONS"};
static const char *const paths[] = {
	"/v1/completions",  "/v1/chat/completions",
	"/v1/models",	    "/health",
	"/metrics",	    "/v1/np/cards",
	"/v1/completions/", "/",
};
#define N_ROUTES 6 /* paths[0..5] are npd's routes */
#define N_PATHS (int)(sizeof(paths) / sizeof(paths[0]))
#define PATH_MAX_LEN 256
#define HEAD_MAX (PATH_MAX_LEN + 512)

int np_fuzz_http(const uint8_t *data, size_t size)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct np_fuzz_in in = {data, size};
	const char *method = methods[np_fuzz_u8(&in) % 6];
	unsigned int pick = np_fuzz_u8(&in) % (N_PATHS + 1);
	unsigned int flags = np_fuzz_u8(&in);
	bool post = !strcmp(method, "POST"), get = !strcmp(method, "GET");
	bool head_only = !strcmp(method, "HEAD");
	bool chunked = flags & 8, lie = (flags & 4) && !chunked;
	char path[PATH_MAX_LEN + 1], *head;
	int route = -1, auth = flags & 3;
	unsigned int want = 0;
	struct resp r;
	size_t hl;

	pthread_once(&once, start);
	if (pick < N_PATHS) {
		snprintf(path, sizeof(path), "%s", paths[pick]);
	} else {
		size_t n = 0;

		path[n++] = '/';
		while (in.n && n < PATH_MAX_LEN) {
			uint8_t c = np_fuzz_u8(&in);

			if (!c)
				break;
			path[n++] = c <= ' ' || c == 0x7f || c == '%' ||
						    c == '?' || c == '#' ?
					    '_' :
					    (char)c;
		}
		path[n] = 0;
	}
	for (int i = 0; i < N_ROUTES; i++)
		if (!strcmp(path, paths[i]))
			route = i;
	head = malloc(HEAD_MAX);
	NP_FUZZ_ASSERT(head, "out of memory");
	hl = (size_t)snprintf(
		head, HEAD_MAX,
		"%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
		"%s%s"
		"Content-Type: application/json\r\n",
		method, path, auth ? "Authorization: " : "",
		auth == 1 ? "Bearer " KEY "\r\n" :
		auth == 2 ? "Bearer not-the-key\r\n" :
		auth == 3 ? KEY "\r\n" :
			    "");
	if (chunked)
		hl += (size_t)sprintf(head + hl,
				      "Transfer-Encoding: chunked\r\n\r\n");
	else
		hl += (size_t)sprintf(head + hl, "Content-Length: %zu\r\n\r\n",
				      lie ? (size_t)MAX_BODY + 1 + in.n : in.n);

	/* what npd's routing rules answer before the body counts */
	if (route < 0)
		want = 404;
	else if ((route <= 1) != post || (!post && !get))
		want = 405;
	else if (post && auth != 1)
		want = 401;
	else if (lie || in.n > MAX_BODY)
		want = 413;

	exchange(head, hl, in.p, in.n, chunked, &r);
	free(head);
	NP_FUZZ_ASSERT(!want || r.status == want,
		       "%s %s (auth %d, %zu bytes%s): %u, expected %u", method,
		       path, auth, in.n, chunked ? ", chunked" : "", r.status,
		       want);
	if (!want && route <= 1)
		NP_FUZZ_ASSERT(r.status == 200 || r.status == 400,
			       "POST %s: %u: %.300s", path, r.status, r.body);
	else if (!want)
		NP_FUZZ_ASSERT(r.status == 200, "GET %s: %u", path, r.status);
	if (r.status != 200 && !head_only)
		check_error(&r);
	else if (r.status == 200 && route <= 1)
		NP_FUZZ_ASSERT(strstr(r.body, "data: [DONE]") ||
				       strstr(r.body, "\"choices\""),
			       "POST %s: 200 without choices: %.300s", path,
			       r.body);
	if (r.status == 200 && route == 5 && !head_only) {
		json_t *j = json_loads(r.body, 0, NULL);

		NP_FUZZ_ASSERT(json_is_array(json_object_get(j, "cards")) &&
				       json_array_size(json_object_get(
					       j, "cards")) == 2,
			       "GET /v1/np/cards: %.300s", r.body);
		json_decref(j);
	}
	free(r.s);
	return 0;
}
