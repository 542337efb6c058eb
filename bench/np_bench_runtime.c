// SPDX-License-Identifier: MIT
/*
 * np_bench_runtime: the runtime's own cost per card hop and per token,
 * and pipeline utilization against the GPipe ideal (issue #9).
 *
 *   np_bench_runtime [tokens]      tokens per request, default 64
 *
 * 16 emulated cards, two topologies: 14 layer cards + 2 output cards
 * (the main job's: S = 15 stages, N = 28, M = 14) and 15 + 1 (S = 16,
 * N = 32, M = 16 = S). Each runs twice through np_session_run: with
 * pass-through layer programs (NP_COMPILE_PASS_THROUGH: every hop,
 * transfer, event and top-k, no arithmetic on the layer cards), then with
 * real layers (a synthetic model of the demo's shape, one layer per layer
 * card). Requests: a 4-token prompt, then `tokens` greedy tokens, 40
 * candidates per output card. Each configuration runs ROUNDS sessions
 * on its loaded pipeline; the table shows the session of median host time
 * per hop, and the range over the rounds (the machine is shared).
 *
 * Host time is np_session_stats.host_cpu_ns: CPU time of the thread that
 * runs the token loop (the emulated cards' threads are not counted, time
 * asleep is not CPU time), without the in-process emulator's side of the
 * register accesses (host_emu_ns, the emu column: a doorbell wakes the
 * emulator's workers, a real card's is a posted PCIe write); submit,
 * wait and sample split it. A hop is one frame through one card: frames x
 * 16. Budget: a real card answers a token through 16 hops in under 1 ms,
 * 62.5 us a hop; np may spend 2 % of that, 1.25 us of host time a hop.
 * wr/hop and rd/hop count register writes and reads: what a real card's
 * link sees (a read is a round trip).
 *
 * Utilization U is np_session_stats.utilization (the mean share of the
 * run a card had a frame to compute). The ideal for S stages of equal
 * time, M micro-batches of K frames each and no host time (a micro-batch
 * sends its next frame when its last one leaves the last stage) is
 *   U* = K M / (K max(M, S) + min(M, S) - 1)
 * (K = 1 gives GPipe's M / (M + S - 1)); bubble = 1 - U, the idle share.
 * The emulated cards share the host's cores: their utilization measures
 * the emulation, not the protocol alone (docs/pipeline.md).
 *
 * What the runtime adds to the bubble is measured apart: F is
 * np_session_stats.avg_in_flight, the time average of frames submitted
 * and not yet taken back by the host. A micro-batch outside the cards is
 * waiting on the host (its frame noticed, sampled, the next one posted)
 * or done; host bubble = 1 - F / M is that share. With stages of equal
 * time and M >= S, F = M keeps every stage fed, so the host bubble is
 * the bubble np itself causes (plus the drain of requests that finish
 * at different times).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "np/model.h"
#include "np/np.h"
#include "np/pipeline.h"

#define CARDS 16u
#define PROMPT 4u
#define MAX_REQ 32u
#define ROUNDS 5u
#define BUDGET_NS 1250.0 /* host time per hop */

struct cfg {
	int pass;
	uint32_t out_cards, n, m;
};

static const struct cfg cfgs[] = {
	{1, 2, 28, 14},
	{1, 1, 32, 16},
	{0, 2, 28, 14},
	{0, 1, 32, 16},
};

#define N_CFG (sizeof(cfgs) / sizeof(cfgs[0]))

struct result {
	struct np_session_stats st; /* the median round */
	double lo, hi; /* host us per hop over the rounds */
};

static double us_per_hop(const struct np_session_stats *st)
{
	return (double)st->host_cpu_ns / ((double)st->frames * CARDS) / 1e3;
}

static int cmp_hop(const void *a, const void *b)
{
	double x = us_per_hop(a), y = us_per_hop(b);

	return x < y ? -1 : x > y;
}

static int run_cfg(struct np_ctx *ctx, const struct cfg *c, uint32_t tokens,
		   struct result *res)
{
	struct np_model_shape s = {0, 256, 8, 2, 704, 4096, 256, 1e4f, 1e-5f};
	struct np_compile_opts co = {
		.n_cards = CARDS,
		.batch = c->n,
		.max_seq = PROMPT + tokens,
		.out_cards = c->out_cards,
		.flags = c->pass ? NP_COMPILE_PASS_THROUGH : 0,
	};
	struct np_session_opts so = {.micro_batches = c->m};
	static int32_t prompt[MAX_REQ][PROMPT];
	struct np_request req[MAX_REQ];
	struct np_session_stats st[ROUNDS];
	struct np_quant_calib *calib = NULL;
	struct np_compiled *comp = NULL;
	struct np_pipeline *p = NULL;
	struct np_model *m = NULL;
	int ret;

	s.n_layers = CARDS - c->out_cards;
	for (uint32_t r = 0; r < c->n; r++) {
		for (uint32_t i = 0; i < PROMPT; i++)
			prompt[r][i] =
				(int32_t)((r * 131 + i * 17 + 3) % s.vocab);
		memset(&req[r], 0, sizeof(req[r]));
		req[r].prompt = prompt[r];
		req[r].n_prompt = PROMPT;
		req[r].max_tokens = tokens;
	}
	ret = np_model_synthetic(&s, 9, &m);
	if (!ret)
		ret = np_quant_calib_default(m, &calib);
	if (!ret)
		ret = np_compile(m, calib, &co, NULL, &comp);
	if (!ret)
		ret = np_pipeline_create(ctx, comp, NULL, &p);
	for (uint32_t i = 0; i < ROUNDS && !ret; i++) {
		memset(&st[i], 0, sizeof(st[i]));
		ret = np_session_run(p, req, c->n, &so, &st[i]);
	}
	if (!ret) {
		qsort(st, ROUNDS, sizeof(st[0]), cmp_hop);
		res->st = st[ROUNDS / 2];
		res->lo = us_per_hop(&st[0]);
		res->hi = us_per_hop(&st[ROUNDS - 1]);
	}
	np_pipeline_destroy(p);
	np_compiled_destroy(comp);
	np_quant_calib_destroy(calib);
	np_model_destroy(m);
	return ret;
}

static const char *name(const struct cfg *c)
{
	return c->pass ? "pass-through" : "layers";
}

int main(int argc, char **argv)
{
	long tokens = argc > 1 ? strtol(argv[1], NULL, 10) : 64;
	static struct result res[N_CFG];
	struct np_ctx *ctx = NULL;
	int ret;

	if (argc > 2 || tokens < 1 || tokens > 1024) {
		fprintf(stderr, "usage: np_bench_runtime [tokens 1..1024]\n");
		return 2;
	}
	ret = np_open("emu:16", NULL, &ctx);
	for (size_t i = 0; i < N_CFG && !ret; i++)
		ret = run_cfg(ctx, &cfgs[i], (uint32_t)tokens, &res[i]);
	np_close(ctx);
	if (ret) {
		fprintf(stderr, "np_bench_runtime: %s\n", strerror(-ret));
		return 1;
	}
	printf("%u emulated cards, %u-token prompts, %ld tokens per request, "
	       "greedy, median of %u sessions; host budget %.2f us per hop\n\n",
	       CARDS, PROMPT, tokens, ROUNDS, BUDGET_NS / 1e3);
	printf("%-12s %5s %3s %3s %6s %6s %6s %11s %6s %7s %6s %6s %6s %6s "
	       "%6s %6s\n",
	       "program", "cards", "N", "M", "frames", "tokens", "us/hop",
	       "(range)", "budget", "us/tok", "submit", "wait", "sample", "emu",
	       "wr/hop", "rd/hop");
	for (size_t i = 0; i < N_CFG; i++) {
		const struct cfg *c = &cfgs[i];
		const struct np_session_stats *st = &res[i].st;
		double hops = (double)st->frames * CARDS;

		printf("%-12s %2u+%-2u %3u %3u %6llu %6llu %6.3f %5.2f-%-5.2f "
		       "%5.2fx %7.2f %6.3f %6.3f %6.3f %6.3f %6.2f %6.2f\n",
		       name(c), CARDS - c->out_cards, c->out_cards, c->n, c->m,
		       (unsigned long long)st->frames,
		       (unsigned long long)st->tokens, us_per_hop(st),
		       res[i].lo, res[i].hi, us_per_hop(st) * 1e3 / BUDGET_NS,
		       (double)st->host_cpu_ns / (double)st->tokens / 1e3,
		       st->host_submit_ns / hops / 1e3,
		       st->host_wait_ns / hops / 1e3,
		       st->host_sample_ns / hops / 1e3,
		       st->host_emu_ns / hops / 1e3, st->host_reg_writes / hops,
		       st->host_reg_reads / hops);
	}
	printf("\n%-12s %5s %3s %3s %5s %7s %7s %7s %7s %9s %6s %8s\n",
	       "program", "cards", "S", "M", "K", "tok/s", "util", "ideal",
	       "bubble", "ideal bub", "F", "host bub");
	for (size_t i = 0; i < N_CFG; i++) {
		const struct cfg *c = &cfgs[i];
		const struct np_session_stats *st = &res[i].st;
		double S = CARDS - c->out_cards + 1, M = c->m;
		double K = (double)st->frames / M;
		double ideal =
			K * M / (K * (M > S ? M : S) + (M < S ? M : S) - 1);

		printf("%-12s %2u+%-2u %3.0f %3.0f %5.1f %7.0f %6.1f%% %6.1f%% "
		       "%6.1f%% %8.1f%% %6.2f %7.1f%%\n",
		       name(c), CARDS - c->out_cards, c->out_cards, S, M, K,
		       st->tokens_per_s, 100 * st->utilization, 100 * ideal,
		       100 * (1 - st->utilization), 100 * (1 - ideal),
		       st->avg_in_flight, 100 * (1 - st->avg_in_flight / M));
	}
	return 0;
}
