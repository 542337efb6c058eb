// SPDX-License-Identifier: MIT
/*
 * np_bench_sched: the scheduler with requests arriving continuously
 * against np_session_run's batch mode, on the same pipeline, in one run.
 *
 *   np_bench_sched [cards] [requests] [streams] [rate]
 *       defaults: 16 cards, 112 requests, 28 streams, rate 0
 *
 * A synthetic model (cards - 2 layer cards, 2 output cards; dim 256,
 * vocabulary 2048) on emulated cards, N = 28 KV slots, M = 14
 * micro-batches, greedy, prompts of 4..12 tokens, 24 tokens generated per
 * request.
 *   batch       np_session_run of 28 requests, repeated until it has
 *               generated as many tokens as the continuous run; once
 *               before the continuous run and once after (the machine's
 *               load drifts), the ratio against their mean
 *   continuous  `requests` requests submitted from another thread to a
 *               scheduler running on its own thread: at most `streams`
 *               outstanding (a finished one is replaced at once), and with
 *               rate > 0 Poisson arrivals at that many requests/s
 * For each: generated tokens/s over the wall time; for batch mode also
 * the prefill (prompt tokens/s) and the decode (generated tokens/s) as
 * nptool run reports them; for the continuous run
 * also time to first token (submit -> first token) and inter-token
 * latency (between a request's consecutive tokens), p50 and p99, and the
 * ratio of its tokens/s to the batch mode's. Wall-clock on a shared
 * machine: run it alone.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "np/model.h"
#include "np/np.h"
#include "np/pipeline.h"
#include "np/sched.h"

#define SLOTS 28u
#define MICRO 14u
#define MAX_POS 96u
#define MAX_TOKENS 24u

static const struct np_model_shape shape = {0,	  256, 8,    4,	   512,
					    2048, 128, 1e4f, 1e-5f};

struct req {
	int32_t prompt[16];
	uint32_t n_prompt;
	uint64_t last_ns;
};

struct bench {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint32_t outstanding;
	uint64_t ended;
	uint64_t *ttft, *itl; /* ns samples */
	size_t n_ttft, n_itl, cap_itl;
	uint64_t errors;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct bench B = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
};

static void make_prompt(struct req *r, uint32_t i)
{
	r->n_prompt = 4 + i % 9;
	for (uint32_t k = 0; k < r->n_prompt; k++)
		r->prompt[k] = (int32_t)((i * 97 + k * 31 + 5) % 2048);
}

static int on_event(void *opaque, const struct np_sched_event *e)
{
	struct req *r = opaque;

	pthread_mutex_lock(&B.mu);
	if (e->token >= 0) {
		if (r->last_ns && B.n_itl < B.cap_itl)
			B.itl[B.n_itl++] = e->t_ns - r->last_ns;
		r->last_ns = e->t_ns;
	}
	if (e->finish) {
		if (e->finish == NP_FINISH_ERROR)
			B.errors++;
		else if (e->stats->first_ns)
			B.ttft[B.n_ttft++] =
				e->stats->first_ns - e->stats->submit_ns;
		B.outstanding--;
		B.ended++;
		pthread_cond_signal(&B.cv);
	}
	pthread_mutex_unlock(&B.mu);
	return 0;
}

static void *run_thread(void *arg)
{
	return (void *)(intptr_t)np_sched_run(arg);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(uint64_t *v, size_t n, double p)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[(size_t)((double)(n - 1) * p)] / 1e6;
}

/* np_session_run of SLOTS requests until `tokens` were generated. */
/* Prefill and decode of batch mode, over all its session runs: prompt
 * tokens over the time until every request had its first token, and the
 * tokens after each request's first over the span from the earliest
 * first token to the latest last one (as nptool run reports them) */
struct phases {
	uint64_t prompt, prefill_ns, decode, decode_ns;
};

static void add_phases(struct phases *ph, const struct np_session_stats *st,
		       const struct np_request_stats *rs, uint32_t n)
{
	uint64_t first_max = 0, first_min = UINT64_MAX, last_max = 0;

	for (uint32_t i = 0; i < n; i++) {
		first_max =
			rs[i].first_ns > first_max ? rs[i].first_ns : first_max;
		first_min =
			rs[i].first_ns < first_min ? rs[i].first_ns : first_min;
		last_max = rs[i].last_ns > last_max ? rs[i].last_ns : last_max;
		ph->decode += rs[i].tokens ? rs[i].tokens - 1 : 0;
	}
	ph->prompt += st->prompt_tokens;
	ph->prefill_ns += first_max;
	ph->decode_ns += last_max > first_min ? last_max - first_min : 0;
}

static int batch(struct np_pipeline *p, uint64_t tokens, double *tps,
		 struct phases *ph)
{
	static struct req rq[SLOTS];
	struct np_request req[SLOTS];
	struct np_request_stats rs[SLOTS];
	struct np_session_opts so = {.micro_batches = MICRO};
	uint64_t done = 0, t0 = now_ns();

	for (uint32_t i = 0; i < SLOTS; i++) {
		make_prompt(&rq[i], i);
		memset(&req[i], 0, sizeof(req[i]));
		req[i].prompt = rq[i].prompt;
		req[i].n_prompt = rq[i].n_prompt;
		req[i].max_tokens = MAX_TOKENS;
	}
	while (done < tokens) {
		struct np_session_stats st = {.req = rs};
		int ret = np_session_run(p, req, SLOTS, &so, &st);

		if (ret)
			return ret;
		done += st.tokens;
		add_phases(ph, &st, rs, SLOTS);
	}
	*tps = (double)done * 1e9 / (double)(now_ns() - t0);
	return 0;
}

/* Poisson: exponential gaps of mean 1/rate s. */
static uint64_t gap_ns(double rate, unsigned int *seed)
{
	double u = (rand_r(seed) + 1.0) / ((double)RAND_MAX + 2.0);

	return (uint64_t)(-log(u) / rate * 1e9);
}

static int continuous(struct np_pipeline *p, uint32_t n, uint32_t streams,
		      double rate, double *tps, struct np_sched_stats *st)
{
	struct np_sched_opts o = {.micro_batches = MICRO, .max_queue = n};
	struct req *rq = calloc(n, sizeof(*rq));
	struct np_sched *s = NULL;
	unsigned int seed = 1;
	uint64_t t0, next;
	pthread_t th;
	void *tret;
	int ret;

	B.ttft = calloc(n, sizeof(*B.ttft));
	B.cap_itl = (size_t)n * MAX_TOKENS;
	B.itl = calloc(B.cap_itl, sizeof(*B.itl));
	if (!rq || !B.ttft || !B.itl)
		return -1;
	ret = np_sched_create(p, &o, &s);
	if (ret)
		return ret;
	if (pthread_create(&th, NULL, run_thread, s))
		return -1;
	t0 = now_ns();
	next = t0;
	for (uint32_t i = 0; i < n && !ret; i++) {
		struct np_sched_req sr = {0};

		make_prompt(&rq[i], i);
		sr.prompt = rq[i].prompt;
		sr.n_prompt = rq[i].n_prompt;
		sr.max_tokens = MAX_TOKENS;
		sr.on_event = on_event;
		sr.opaque = &rq[i];
		if (rate > 0) {
			uint64_t t = now_ns();

			next += gap_ns(rate, &seed);
			if (next > t) {
				struct timespec ts = {
					(time_t)((next - t) / 1000000000u),
					(long)((next - t) % 1000000000u)};

				nanosleep(&ts, NULL);
			}
		}
		pthread_mutex_lock(&B.mu);
		while (B.outstanding >= streams)
			pthread_cond_wait(&B.cv, &B.mu);
		B.outstanding++;
		pthread_mutex_unlock(&B.mu);
		ret = np_sched_submit(s, &sr, NULL);
	}
	np_sched_drain(s);
	pthread_join(th, &tret);
	*tps = 0;
	if (!ret)
		ret = (int)(intptr_t)tret;
	if (!ret)
		ret = np_sched_stats(s, st);
	if (!ret)
		*tps = (double)st->tokens * 1e9 / (double)(now_ns() - t0);
	np_sched_destroy(s);
	free(rq);
	return ret;
}

int main(int argc, char **argv)
{
	unsigned int cards = argc > 1 ? (unsigned int)atoi(argv[1]) : 16;
	uint32_t n = argc > 2 ? (uint32_t)atoi(argv[2]) : 4 * SLOTS;
	uint32_t streams = argc > 3 ? (uint32_t)atoi(argv[3]) : SLOTS;
	double rate = argc > 4 ? atof(argv[4]) : 0;
	struct np_model_shape sh = shape;
	struct np_compile_opts co = {
		.batch = SLOTS, .max_seq = MAX_POS, .out_cards = 2};
	struct np_quant_calib *calib = NULL;
	struct np_compiled *comp = NULL;
	struct np_pipeline *p = NULL;
	struct np_model *m = NULL;
	struct np_ctx *ctx = NULL;
	struct np_sched_stats st = {0};
	double batch_tps = 0, batch2_tps = 0, cont_tps = 0;
	struct phases ph = {0};
	char spec[32];
	int ret;

	if (cards < 3 || cards > NP_MAX_CARDS || !n || !streams || rate < 0) {
		fprintf(stderr,
			"usage: np_bench_sched [cards 3..%u] [requests > 0] "
			"[streams > 0] [rate >= 0 requests/s]\n",
			NP_MAX_CARDS);
		return 2;
	}
	sh.n_layers = cards - 2;
	co.n_cards = cards;
	snprintf(spec, sizeof(spec), "emu:%u", cards);
	ret = np_open(spec, NULL, &ctx);
	if (!ret)
		ret = np_model_synthetic(&sh, 7, &m);
	if (!ret)
		ret = np_quant_calib_default(m, &calib);
	if (!ret)
		ret = np_compile(m, calib, &co, NULL, &comp);
	if (!ret)
		ret = np_pipeline_create(ctx, comp, NULL, &p);
	if (!ret)
		ret = batch(p, (uint64_t)n * MAX_TOKENS, &batch_tps, &ph);
	if (!ret)
		ret = continuous(p, n, streams, rate, &cont_tps, &st);
	if (!ret)
		ret = batch(p, st.tokens, &batch2_tps, &ph);
	if (ret) {
		fprintf(stderr, "np_bench_sched: failed: %d\n", ret);
		goto out;
	}
	printf("%u cards, N=%u slots, M=%u, %u tokens per request\n", cards,
	       SLOTS, MICRO, MAX_TOKENS);
	printf("batch       np_session_run x %u requests: %8.1f tokens/s "
	       "before, %8.1f after\n",
	       SLOTS, batch_tps, batch2_tps);
	printf("            prefill %8.1f prompt tokens/s, decode %8.1f "
	       "generated tokens/s (both batch runs)\n",
	       ph.prefill_ns ? ph.prompt * 1e9 / ph.prefill_ns : 0.0,
	       ph.decode_ns ? ph.decode * 1e9 / ph.decode_ns : 0.0);
	printf("continuous  %u requests, %u streams, %s: %8.1f tokens/s "
	       "(%.2f x batch)\n",
	       n, streams, rate > 0 ? "Poisson arrivals" : "closed loop",
	       cont_tps, cont_tps * 2 / (batch_tps + batch2_tps));
	printf("            TTFT p50 %.2f ms p99 %.2f ms, ITL p50 %.2f ms "
	       "p99 %.2f ms, %llu frames, %llu errors\n",
	       pct(B.ttft, B.n_ttft, 0.5), pct(B.ttft, B.n_ttft, 0.99),
	       pct(B.itl, B.n_itl, 0.5), pct(B.itl, B.n_itl, 0.99),
	       (unsigned long long)st.frames, (unsigned long long)B.errors);
out:
	free(B.ttft);
	free(B.itl);
	np_pipeline_destroy(p);
	np_compiled_destroy(comp);
	np_quant_calib_destroy(calib);
	np_model_destroy(m);
	np_close(ctx);
	return ret ? 1 : 0;
}
