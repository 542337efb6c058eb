// SPDX-License-Identifier: MIT
/*
 * np_bench_serve: a load generator for npd (or any OpenAI-compatible
 * server on this host). Streaming completions arrive as a Poisson process
 * at --rate requests/s, at most --concurrency at once, with prompts cut
 * from a text file; it stops by itself after --requests requests or
 * --duration seconds and reports requests/s, prompt tokens/s prefilled
 * (the usage event's counts), generated tokens/s, time to
 * first token and inter-token latency (p50, p99) and errors.
 *
 *   np_bench_serve --url http://127.0.0.1:8080 --concurrency 28 \
 *       --requests 112 --max-tokens 64 --text data/sample-multilingual.txt
 *
 * Loopback only: any other host is refused. HTTP through libcurl's multi
 * interface; each SSE data event of a stream is one token.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct xfer {
	CURL *e;
	char *body;
	uint64_t t_start, t_first, t_last;
	uint64_t tokens;
	uint64_t prompt_tokens; /* from the usage event */
	char *buf; /* the SSE bytes not yet split into events */
	size_t len;
	bool done, failed;
};

struct opts {
	const char *url, *text_path, *key, *model;
	double rate, duration;
	unsigned int conc, requests, max_tokens, prompt_chars;
	uint64_t seed;
	bool json;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: the arrivals and prompt choices of a seed repeat */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static double uniform(uint64_t *s)
{
	return ((double)(rnd(s) >> 11) + 0.5) / 9007199254740992.0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(uint64_t *v, size_t n, double p)
{
	size_t i;

	if (!n)
		return NAN;
	i = (size_t)ceil(p / 100 * (double)n);
	return (double)v[i ? i - 1 : 0] / 1e6;
}

/* latencies of all finished streams */
static uint64_t *ttft, *itl;
static size_t n_ttft, n_itl, cap_itl;

static void add_itl(uint64_t v)
{
	if (n_itl == cap_itl) {
		size_t cap = cap_itl ? 2 * cap_itl : 4096;
		uint64_t *p = realloc(itl, cap * sizeof(*p));

		if (!p)
			return;
		itl = p;
		cap_itl = cap;
	}
	itl[n_itl++] = v;
}

/* One SSE event: a data line with a token, [DONE] or an error. */
static void on_event(struct xfer *x, const char *ev, size_t len)
{
	uint64_t t = now_ns();

	if (len < 6 || strncmp(ev, "data: ", 6))
		return;
	if (len == 12 && !strncmp(ev + 6, "[DONE]", 6)) {
		x->done = true;
		return;
	}
	if (memmem(ev, len, "\"error\"", 7)) {
		x->failed = true;
		return;
	}
	/* token events carry a null finish_reason; the last one a string,
	 * the usage event no choice but the prompt's token count */
	{
		const char *u = memmem(ev, len, "\"prompt_tokens\"", 15);

		if (u) {
			u += 15;
			while (u < ev + len && (*u == ':' || *u == ' '))
				u++;
			x->prompt_tokens = strtoul(u, NULL, 10);
		}
	}
	if (!memmem(ev, len, "\"finish_reason\":null", 20))
		return;
	if (!x->tokens)
		x->t_first = t;
	else
		add_itl(t - x->t_last);
	x->t_last = t;
	x->tokens++;
}

static size_t on_data(char *p, size_t sz, size_t n, void *opaque)
{
	struct xfer *x = opaque;
	size_t l = sz * n, start = 0;
	char *b = realloc(x->buf, x->len + l + 1);

	if (!b)
		return 0;
	memcpy(b + x->len, p, l);
	x->len += l;
	b[x->len] = 0;
	x->buf = b;
	for (size_t i = 0; i + 1 < x->len; i++) {
		if (b[i] == '\n' && b[i + 1] == '\n') {
			on_event(x, b + start, i - start);
			start = i + 2;
			i++;
		}
	}
	memmove(b, b + start, x->len - start);
	x->len -= start;
	return l;
}

static bool loopback(const char *url)
{
	static const char *const ok[] = {"http://127.", "http://localhost:",
					 "http://localhost/", "http://[::1]"};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!strncmp(url, ok[i], strlen(ok[i])))
			return true;
	return false;
}

static char *json_str(const char *s, size_t n)
{
	char *o = malloc(n * 6 + 3), *q = o;

	if (!o)
		return NULL;
	*q++ = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			*q++ = '\\';
			*q++ = (char)c;
		} else if (c < 0x20) {
			q += sprintf(q, "\\u%04x", c);
		} else {
			*q++ = (char)c;
		}
	}
	*q++ = '"';
	*q = 0;
	return o;
}

/* A prompt: up to prompt_chars bytes of text from a random place, cut at
 * spaces where the script has them, always between UTF-8 characters. */
static char *make_body(const struct opts *o, const char *text, size_t tl,
		       uint64_t *seed)
{
	size_t at = tl > o->prompt_chars ?
			    (size_t)(uniform(seed) *
				     (double)(tl - o->prompt_chars)) :
			    0,
	       n;
	char *p, *body;
	size_t space;

	/* start after a space if one is near, else on a character */
	for (space = at; space && at - space < 64 && text[space - 1] != ' ';)
		space--;
	at = space && text[space - 1] == ' ' ? space : at;
	while (at && ((unsigned char)text[at] & 0xc0) == 0x80)
		at--;
	n = tl - at < o->prompt_chars ? tl - at : o->prompt_chars;
	/* end before a space if one is near (not every script has them),
	 * else before a character */
	for (space = n;
	     space > n / 2 && at + space < tl && text[at + space] != ' ';)
		space--;
	if (at + space >= tl || text[at + space] == ' ')
		n = space;
	while (n && at + n < tl && ((unsigned char)text[at + n] & 0xc0) == 0x80)
		n--;
	p = json_str(text + at, n);
	if (!p)
		return NULL;
	body = malloc(strlen(p) + 256);
	if (body)
		sprintf(body,
			"{\"model\": \"%s\", \"prompt\": %s, \"max_tokens\": "
			"%u, \"temperature\": 0, \"stream\": true, "
			"\"stream_options\": {\"include_usage\": true}}",
			o->model, p, o->max_tokens);
	free(p);
	return body;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: np_bench_serve [--url URL] [--rate R] [--concurrency "
		"C]\n"
		"       [--requests N] [--duration S] [--max-tokens T]\n"
		"       [--prompt-chars B] [--text FILE] [--key KEY] "
		"[--seed S] [--json]\n"
		"  --url           server, loopback only "
		"(default http://127.0.0.1:8080)\n"
		"  --rate          Poisson arrivals per second, 0: as fast as "
		"the concurrency allows (default 0)\n"
		"  --concurrency   streams at once at most (default 8)\n"
		"  --requests      stop after this many (default 64)\n"
		"  --duration      or after this many seconds (default 300)\n"
		"  --max-tokens    per request (default 64)\n"
		"  --prompt-chars  prompt length in bytes (default 300)\n"
		"  --text          prompts come from this file (default the "
		"project's sample text)\n"
		"  --key           Bearer key for a server started with "
		"--api-key\n"
		"  --model         the model field of each request (default "
		"none: the server's)\n"
		"  --seed          the arrivals' and prompts' random seed\n"
		"  --json          the figures as one JSON object\n");
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{"url", required_argument, NULL, 'u'},
		{"rate", required_argument, NULL, 'r'},
		{"concurrency", required_argument, NULL, 'c'},
		{"requests", required_argument, NULL, 'n'},
		{"duration", required_argument, NULL, 'd'},
		{"max-tokens", required_argument, NULL, 't'},
		{"prompt-chars", required_argument, NULL, 'p'},
		{"text", required_argument, NULL, 'f'},
		{"key", required_argument, NULL, 'k'},
		{"model", required_argument, NULL, 'm'},
		{"seed", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int ch, li = 0;

	while ((ch = getopt_long(argc, argv, "h", lo, &li)) != -1) {
		/* the options that take text, the rest numbers */
		bool text = ch == 'u' || ch == 'f' || ch == 'k' || ch == 'm';
		char *end = NULL;
		double v = optarg && !text ? strtod(optarg, &end) : 0;

		if (optarg && !text && (*end || !(v >= 0) || v > 1e9)) {
			fprintf(stderr,
				"np_bench_serve: --%s %s: not a number "
				"in 0..1e9\n",
				lo[li].name, optarg);
			return -EINVAL;
		}
		switch (ch) {
		case 'u':
			o->url = optarg;
			break;
		case 'r':
			o->rate = v;
			break;
		case 'c':
			o->conc = (unsigned int)v;
			break;
		case 'n':
			o->requests = (unsigned int)v;
			break;
		case 'd':
			o->duration = v;
			break;
		case 't':
			o->max_tokens = (unsigned int)v;
			break;
		case 'p':
			o->prompt_chars = (unsigned int)v;
			break;
		case 'f':
			o->text_path = optarg;
			break;
		case 'k':
			o->key = optarg;
			break;
		case 'm':
			o->model = optarg;
			break;
		case 's':
			o->seed = (uint64_t)v;
			break;
		case 'j':
			o->json = true;
			break;
		default:
			usage();
			return -EINVAL;
		}
	}
	if (!loopback(o->url)) {
		fprintf(stderr,
			"np_bench_serve: %s is not on this host; the load "
			"generator talks to loopback servers only\n",
			o->url);
		return -EINVAL;
	}
	if (!o->conc || !o->requests || !o->max_tokens || !o->prompt_chars ||
	    !(o->duration > 0)) {
		fprintf(stderr, "np_bench_serve: --concurrency, --requests, "
				"--max-tokens, --prompt-chars and --duration "
				"must be above 0\n");
		return -EINVAL;
	}
	return 0;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *s = NULL;
	long n;

	if (!f)
		return NULL;
	if (!fseek(f, 0, SEEK_END) && (n = ftell(f)) > 0 &&
	    !fseek(f, 0, SEEK_SET)) {
		s = malloc((size_t)n + 1);
		if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
			free(s);
			s = NULL;
		}
		if (s) {
			s[n] = 0;
			*len = (size_t)n;
		}
	}
	fclose(f);
	return s;
}

int main(int argc, char **argv)
{
	struct opts o = {.url = "http://127.0.0.1:8080",
			 .conc = 8,
			 .requests = 64,
			 .duration = 300,
			 .max_tokens = 64,
			 .prompt_chars = 300,
			 .model = "np",
			 .seed = 1,
			 .text_path = NP_SAMPLE_TEXT};
	struct xfer *x;
	struct curl_slist *h = NULL;
	char url[512], auth[300];
	uint64_t seed, t0, deadline, next, tokens = 0, prompt = 0;
	unsigned int started = 0, finished = 0, errors = 0, active = 0;
	size_t tl = 0;
	char *text;
	CURLM *mh;

	if (parse(argc, argv, &o))
		return 2;
	text = slurp(o.text_path, &tl);
	if (!text || !tl) {
		fprintf(stderr, "np_bench_serve: cannot read %s: %s\n",
			o.text_path, strerror(errno));
		return 2;
	}
	for (size_t i = 0; i < tl; i++)
		if (text[i] == '\n' || text[i] == '\r' || text[i] == '\t')
			text[i] = ' ';
	seed = o.seed * 0x9e3779b97f4a7c15ull + 1;
	x = calloc(o.requests, sizeof(*x));
	ttft = calloc(o.requests, sizeof(*ttft));
	if (!x || !ttft)
		return 1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	mh = curl_multi_init();
	snprintf(url, sizeof(url), "%s/v1/completions", o.url);
	h = curl_slist_append(h, "Content-Type: application/json");
	if (o.key) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o.key);
		h = curl_slist_append(h, auth);
	}
	t0 = now_ns();
	deadline = t0 + (uint64_t)(o.duration * 1e9);
	next = t0;
	while (finished < started ||
	       (started < o.requests && now_ns() < deadline)) {
		int running;
		CURLMsg *m;
		int left;
		uint64_t t = now_ns();

		/* arrivals due, as far as the concurrency lets them in */
		while (started < o.requests && t >= next && active < o.conc &&
		       t < deadline) {
			struct xfer *r = &x[started];

			r->body = make_body(&o, text, tl, &seed);
			r->e = curl_easy_init();
			if (!r->body || !r->e)
				return 1;
			curl_easy_setopt(r->e, CURLOPT_URL, url);
			curl_easy_setopt(r->e, CURLOPT_POSTFIELDS, r->body);
			curl_easy_setopt(r->e, CURLOPT_HTTPHEADER, h);
			curl_easy_setopt(r->e, CURLOPT_WRITEFUNCTION, on_data);
			curl_easy_setopt(r->e, CURLOPT_WRITEDATA, r);
			curl_easy_setopt(r->e, CURLOPT_PRIVATE, r);
			curl_easy_setopt(r->e, CURLOPT_TIMEOUT, 600L);
			r->t_start = now_ns();
			curl_multi_add_handle(mh, r->e);
			started++;
			active++;
			next = o.rate > 0 ?
				       next + (uint64_t)(-log(uniform(&seed)) /
							 o.rate * 1e9) :
				       t;
		}
		curl_multi_perform(mh, &running);
		while ((m = curl_multi_info_read(mh, &left))) {
			struct xfer *r;
			long code = 0;

			if (m->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE,
					  (char **)&r);
			curl_easy_getinfo(m->easy_handle,
					  CURLINFO_RESPONSE_CODE, &code);
			if (m->data.result != CURLE_OK || code != 200 ||
			    !r->done || r->failed) {
				errors++;
			} else {
				tokens += r->tokens;
				prompt += r->prompt_tokens;
				if (r->tokens)
					ttft[n_ttft++] =
						r->t_first - r->t_start;
			}
			curl_multi_remove_handle(mh, r->e);
			curl_easy_cleanup(r->e);
			free(r->body);
			free(r->buf);
			finished++;
			active--;
		}
		curl_multi_poll(mh, NULL, 0, 1, NULL);
	}
	{
		double wall = (now_ns() - t0) / 1e9;

		qsort(ttft, n_ttft, sizeof(*ttft), cmp_u64);
		qsort(itl, n_itl, sizeof(*itl), cmp_u64);
		if (o.json)
			printf("{\"requests\": %u, \"errors\": %u, "
			       "\"concurrency\": %u, \"rate\": %g, "
			       "\"wall_s\": %.3f, \"requests_per_s\": %.3f, "
			       "\"tokens_per_s\": %.1f, "
			       "\"prompt_tokens_per_s\": %.1f, "
			       "\"ttft_p50_ms\": "
			       "%.2f, \"ttft_p99_ms\": %.2f, \"itl_p50_ms\": "
			       "%.3f, \"itl_p99_ms\": %.3f}\n",
			       finished, errors, o.conc, o.rate, wall,
			       (finished - errors) / wall, tokens / wall,
			       prompt / wall, pct(ttft, n_ttft, 50),
			       pct(ttft, n_ttft, 99), pct(itl, n_itl, 50),
			       pct(itl, n_itl, 99));
		else
			printf("%u requests (%u errors) at concurrency %u in "
			       "%.2f s: %.2f requests/s, %.1f prompt "
			       "tokens/s prefilled, %.1f generated tokens/s "
			       "decoded\nTTFT p50 %.1f ms, p99 %.1f ms; ITL "
			       "p50 %.2f ms, p99 %.2f ms\n",
			       finished, errors, o.conc, wall,
			       (finished - errors) / wall, prompt / wall,
			       tokens / wall, pct(ttft, n_ttft, 50),
			       pct(ttft, n_ttft, 99), pct(itl, n_itl, 50),
			       pct(itl, n_itl, 99));
	}
	curl_slist_free_all(h);
	curl_multi_cleanup(mh);
	curl_global_cleanup();
	free(x);
	free(ttft);
	free(itl);
	free(text);
	return errors ? 1 : 0;
}
