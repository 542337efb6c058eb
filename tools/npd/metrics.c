// SPDX-License-Identifier: MIT
/*
 * npd's own metrics: counters and latency histograms, and their rendering
 * in the Prometheus text exposition format (version 0.0.4). Names follow
 * Prometheus' conventions (base units, _total for counters) and, where one
 * exists, the name vLLM uses for the same quantity, prefixed npd_.
 * Updated from any thread with atomics; rendered on scrape.
 */
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "npd.h"

/* Bucket upper bounds, seconds: 1 ms .. 60 s. */
static const double bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025,
				0.05,  0.1,    0.25,  0.5,  1,
				2.5,   5,      10,    30,   60};
#define N_BOUNDS (sizeof(bounds) / sizeof(bounds[0]))

struct hist {
	const char *name, *help;
	_Atomic uint64_t bucket[N_BOUNDS + 1]; /* the last: +Inf */
	_Atomic uint64_t sum_ns;
};

static struct hist hists[NPD_H_COUNT] = {
	[NPD_H_TTFT] = {"npd_time_to_first_token_seconds",
			"Time from a request's arrival to its first token."},
	[NPD_H_ITL] = {"npd_inter_token_latency_seconds",
		       "Time between two tokens of one request."},
	[NPD_H_E2E] = {"npd_e2e_request_latency_seconds",
		       "Time from a request's arrival to its last token."},
	[NPD_H_QUEUE] = {"npd_request_queue_time_seconds",
			 "Time a request waited for a KV slot."},
};

static const struct {
	const char *name, *label, *help;
} counters[NPD_C_COUNT] = {
	[NPD_C_PROMPT_TOKENS] = {"npd_prompt_tokens_total", NULL,
				 "Prompt tokens prefilled."},
	[NPD_C_GEN_TOKENS] = {"npd_generation_tokens_total", NULL,
			      "Tokens generated."},
	[NPD_C_REQ_OK] = {"npd_requests_total", "finished",
			  "Requests by outcome."},
	[NPD_C_REQ_CANCELLED] = {"npd_requests_total", "cancelled", NULL},
	[NPD_C_REQ_ERROR] = {"npd_requests_total", "error", NULL},
	[NPD_C_REQ_REJECTED] = {"npd_requests_total", "rejected", NULL},
	[NPD_C_RECOVERIES] = {"npd_recoveries_total", NULL,
			      "Card faults recovered while serving."},
};
static _Atomic uint64_t counter[NPD_C_COUNT];

/* HTTP responses by status class and code */
#define N_STATUS 600
static _Atomic uint64_t http_status[N_STATUS];

void npd_metrics_init(void)
{
	for (int i = 0; i < NPD_H_COUNT; i++) {
		for (size_t b = 0; b <= N_BOUNDS; b++)
			atomic_store(&hists[i].bucket[b], 0);
		atomic_store(&hists[i].sum_ns, 0);
	}
	for (int i = 0; i < NPD_C_COUNT; i++)
		atomic_store(&counter[i], 0);
	for (int i = 0; i < N_STATUS; i++)
		atomic_store(&http_status[i], 0);
}

void npd_metric_add(enum npd_counter c, uint64_t n)
{
	atomic_fetch_add_explicit(&counter[c], n, memory_order_relaxed);
}

void npd_metric_observe(enum npd_hist h, double s)
{
	size_t b = 0;

	if (!(s >= 0))
		s = 0;
	while (b < N_BOUNDS && s > bounds[b])
		b++;
	atomic_fetch_add_explicit(&hists[h].bucket[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&hists[h].sum_ns, (uint64_t)(s * 1e9),
				  memory_order_relaxed);
}

void npd_metric_http(unsigned int status)
{
	if (status < N_STATUS)
		atomic_fetch_add_explicit(&http_status[status], 1,
					  memory_order_relaxed);
}

int npd_buf_add(struct npd_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->s, cap);
		if (!p)
			return -1;
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = 0;
	return 0;
}

int npd_buf_printf(struct npd_buf *b, const char *fmt, ...)
{
	char tmp[512], *big = NULL;
	va_list ap;
	int n, ret;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof(tmp))
		return npd_buf_add(b, tmp, (size_t)n);
	big = malloc((size_t)n + 1);
	if (!big)
		return -1;
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	ret = npd_buf_add(b, big, (size_t)n);
	free(big);
	return ret;
}

void npd_buf_free(struct npd_buf *b)
{
	free(b->s);
	memset(b, 0, sizeof(*b));
}

static void render_hist(struct npd_buf *o, const struct hist *h)
{
	uint64_t cum = 0;

	npd_buf_printf(o, "# HELP %s %s\n# TYPE %s histogram\n", h->name,
		       h->help, h->name);
	for (size_t b = 0; b <= N_BOUNDS; b++) {
		cum += atomic_load_explicit(&h->bucket[b],
					    memory_order_relaxed);
		if (b < N_BOUNDS)
			npd_buf_printf(o, "%s_bucket{le=\"%g\"} %llu\n",
				       h->name, bounds[b],
				       (unsigned long long)cum);
		else
			npd_buf_printf(o, "%s_bucket{le=\"+Inf\"} %llu\n",
				       h->name, (unsigned long long)cum);
	}
	npd_buf_printf(o, "%s_sum %.9f\n%s_count %llu\n", h->name,
		       (double)atomic_load(&h->sum_ns) / 1e9, h->name,
		       (unsigned long long)cum);
}

char *npd_metrics_render(void)
{
	struct npd_buf o = {0};

	for (int i = 0; i < NPD_C_COUNT; i++) {
		uint64_t v =
			atomic_load_explicit(&counter[i], memory_order_relaxed);

		if (counters[i].help)
			npd_buf_printf(&o, "# HELP %s %s\n# TYPE %s counter\n",
				       counters[i].name, counters[i].help,
				       counters[i].name);
		if (counters[i].label)
			npd_buf_printf(&o, "%s{outcome=\"%s\"} %llu\n",
				       counters[i].name, counters[i].label,
				       (unsigned long long)v);
		else
			npd_buf_printf(&o, "%s %llu\n", counters[i].name,
				       (unsigned long long)v);
	}
	npd_buf_printf(&o, "# HELP npd_http_responses_total HTTP responses "
			   "by status code.\n"
			   "# TYPE npd_http_responses_total counter\n");
	for (int s = 100; s < N_STATUS; s++) {
		uint64_t v = atomic_load_explicit(&http_status[s],
						  memory_order_relaxed);

		if (v)
			npd_buf_printf(&o,
				       "npd_http_responses_total{code=\"%d\"} "
				       "%llu\n",
				       s, (unsigned long long)v);
	}
	for (int i = 0; i < NPD_H_COUNT; i++)
		render_hist(&o, &hists[i]);
	npd_engine_metrics(&o);
	if (!o.s)
		npd_buf_add(&o, "", 0);
	return o.s;
}
