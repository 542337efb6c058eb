// SPDX-License-Identifier: MIT
/*
 * np_bench_recovery: what each injected fault costs a running pipeline.
 *
 *   np_bench_recovery [cards] [timeout_ms]    defaults: 16 and 1000
 *
 * A synthetic model (cards - 2 layer cards, 2 output cards) on emulated
 * cards runs N = 28 requests in M = 14 micro-batches, greedy, first
 * without a fault, then once per fault kind with the fault injected into
 * a middle layer card after a third of the tokens. Per fault kind:
 *   detect   injection -> the run failed (for a hung or dead card this is
 *            the context's wait timeout, the second argument)
 *   recover  all cards reset, images reloaded and weights verified
 *   replay   tokens prefilled again to rebuild the KV caches
 *   extra    wall time of the run minus that of the fault-free run
 *   same     whether every token equals the fault-free run's
 * Faults the card absorbs (a single bit flip, throttling) show no
 * recovery. Times are wall-clock on a shared machine: run it alone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "np/model.h"
#include "np/np.h"
#include "np/pipeline.h"
#include "np/recover.h"
#include "np_abi.h"

#define N_REQ 28u
#define MICRO 14u
#define MAX_POS 96u
#define MAX_TOKENS 24u

static const struct np_model_shape shape = {0,	  256, 8,    4,	   512,
					    2048, 128, 1e4f, 1e-5f};

struct run {
	int32_t tok[N_REQ][MAX_POS];
	uint32_t total, inject_at;
	const char *fault;
	struct np_card *card;
	uint64_t t_inject, detect_ns, recover_ns, replayed;
	unsigned int recoveries;
	int inject_ret;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int on_token(void *opaque, const struct np_token_event *e)
{
	struct run *r = opaque;

	if (e->request < N_REQ && e->pos < MAX_POS)
		r->tok[e->request][e->pos] = e->token;
	if (++r->total == r->inject_at && r->fault) {
		r->t_inject = now_ns();
		r->inject_ret = np_card_inject(r->card, r->fault);
	}
	return 0;
}

static void on_recover(void *opaque, const struct np_recover_event *ev)
{
	struct run *r = opaque;

	if (!r->recoveries++)
		r->detect_ns = now_ns() - ev->recover_ns - r->t_inject;
	r->recover_ns += ev->recover_ns;
	r->replayed += ev->replayed_tokens;
}

static int session(struct np_pipeline *p, struct run *r, uint64_t *wall)
{
	static int32_t buf[N_REQ][MAX_POS];
	struct np_request req[N_REQ];
	struct np_session_opts so = {
		.micro_batches = MICRO, .on_token = on_token, .opaque = r};
	struct np_recover_opts ro = {.on_recover = on_recover, .opaque = r};
	struct np_session_stats st = {0};
	int ret;

	for (uint32_t q = 0; q < N_REQ; q++) {
		uint32_t len = 4 + q % 9;

		for (uint32_t i = 0; i < len; i++)
			buf[q][i] = (int32_t)((q * 97 + i * 31 + 5) % 2048);
		memset(&req[q], 0, sizeof(req[q]));
		req[q].prompt = buf[q];
		req[q].n_prompt = len;
		req[q].max_tokens = MAX_TOKENS;
	}
	ret = np_session_run_recover(p, req, N_REQ, &so, &ro, &st);
	*wall = st.wall_ns;
	return ret;
}

int main(int argc, char **argv)
{
	unsigned int cards = argc > 1 ? (unsigned int)atoi(argv[1]) : 16;
	int timeout = argc > 2 ? atoi(argv[2]) : 1000;
	struct np_model_shape s = shape;
	struct np_open_opts o = {.timeout_ms = timeout};
	struct np_compile_opts co = {
		.batch = N_REQ, .max_seq = MAX_POS, .out_cards = 2};
	struct np_quant_calib *calib = NULL;
	struct np_compiled *comp = NULL;
	struct np_pipeline *p = NULL;
	struct np_model *m = NULL;
	struct np_ctx *ctx = NULL;
	static struct run ref, run;
	char spec[32], flip1[64], flip2[64];
	const char *faults[] = {"dma-error:engine=1,n=1",
				"hang:engine=compute,n=1",
				"hang:engine=1,n=1",
				"dead",
				flip2,
				flip1,
				"overheat"};
	uint64_t ref_wall;
	int ret;

	if (cards < 3 || cards > NP_MAX_CARDS || timeout <= 0) {
		fprintf(stderr,
			"usage: np_bench_recovery [cards 3..%u] "
			"[timeout_ms > 0]\n",
			NP_MAX_CARDS);
		return 2;
	}
	s.n_layers = cards - 2;
	co.n_cards = cards;
	snprintf(spec, sizeof(spec), "emu:%u", cards);
	snprintf(flip1, sizeof(flip1), "sram-flip:addr=0x%llx,bits=1",
		 (unsigned long long)NP_CORE_SRAM_OFFSET(5, 0) + 16);
	snprintf(flip2, sizeof(flip2), "sram-flip:addr=0x%llx,bits=2",
		 (unsigned long long)NP_CORE_SRAM_OFFSET(5, 0) + 16);
	ret = np_open(spec, &o, &ctx);
	if (!ret)
		ret = np_model_synthetic(&s, 7, &m);
	if (!ret)
		ret = np_quant_calib_default(m, &calib);
	if (!ret)
		ret = np_compile(m, calib, &co, NULL, &comp);
	if (!ret)
		ret = np_pipeline_create(ctx, comp, NULL, &p);
	if (!ret)
		ret = session(p, &ref, &ref_wall);
	if (ret) {
		fprintf(stderr, "np_bench_recovery: setup failed: %s\n",
			strerror(-ret));
		goto out;
	}
	printf("%u cards, %u requests x %u tokens, M=%u, wait timeout %d "
	       "ms; fault-free run %.1f ms\n",
	       cards, N_REQ, MAX_TOKENS, MICRO, timeout, ref_wall / 1e6);
	printf("%-28s %10s %10s %8s %10s %5s\n", "fault (layer card 1)",
	       "detect ms", "recover ms", "replay", "extra ms", "same");
	for (size_t f = 0; f < sizeof(faults) / sizeof(faults[0]); f++) {
		uint64_t wall;

		memset(&run, 0, sizeof(run));
		run.fault = faults[f];
		run.card = np_ctx_card(ctx, 1);
		run.inject_at = N_REQ * MAX_TOKENS / 3;
		ret = session(p, &run, &wall);
		if (ret || run.inject_ret) {
			printf("%-28s failed: %s\n", faults[f],
			       strerror(-(ret ? ret : run.inject_ret)));
			continue;
		}
		if (run.recoveries)
			printf("%-28s %10.1f %10.1f %8llu %10.1f %5s\n",
			       faults[f], run.detect_ns / 1e6,
			       run.recover_ns / 1e6,
			       (unsigned long long)run.replayed,
			       ((double)wall - (double)ref_wall) / 1e6,
			       memcmp(run.tok, ref.tok, sizeof(ref.tok)) ?
				       "NO" :
				       "yes");
		else
			printf("%-28s %10s %10s %8s %10.1f %5s\n", faults[f],
			       "-", "-", "-",
			       ((double)wall - (double)ref_wall) / 1e6,
			       memcmp(run.tok, ref.tok, sizeof(ref.tok)) ?
				       "NO" :
				       "yes");
	}
	ret = 0;
out:
	np_pipeline_destroy(p);
	np_compiled_destroy(comp);
	np_quant_calib_destroy(calib);
	np_model_destroy(m);
	np_close(ctx);
	return ret ? 1 : 0;
}
