// SPDX-License-Identifier: MIT
/*
 * The head of the multi-host test (tests/cluster/cluster.sh) and of the
 * cluster benchmark: loads a model onto the members a cluster file names
 * (np_cluster_load; --local: onto this process's cards, np_model_load),
 * runs requests through np/sched.h with recovery, and with --check
 * replays every request through the integer reference (np_ref_int) and
 * compares every logit (--full-logits) or the greedy token and its
 * logit. --kill-at N CMD runs CMD once N tokens were delivered (the test
 * kills a member mid-run that way). Prints one line of figures; --out
 * writes every request's tokens, one request a line.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "np/cluster.h"
#include "np/pipeline.h"
#include "np/sched.h"

struct req {
	int32_t *seq;
	uint32_t n_prompt, len, max;
	int32_t *logits; /* full: per generated token, vocab each */
	int32_t *top; /* per generated token: the first candidate's logit */
	int error;
	bool done;
};

static struct {
	uint32_t vocab;
	bool full;
	uint64_t tokens, kill_at;
	const char *kill_cmd;
	bool killed;
	uint32_t recoveries;
	uint64_t detect_ns, recover_ns;
	int32_t spare;
	pthread_mutex_t mu;
} G = {.mu = PTHREAD_MUTEX_INITIALIZER};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void log_line(void *opaque, enum np_log_level level, const char *msg)
{
	(void)opaque;
	if (level <= NP_LOG_WARNING || getenv("NP_CLUSTER_VERBOSE"))
		fprintf(stderr, "head: %s\n", msg);
}

static int on_event(void *opaque, const struct np_sched_event *ev)
{
	struct req *q = opaque;

	if (ev->token >= 0 && q->len < q->max) {
		uint32_t g = q->len - q->n_prompt;

		if (G.full && ev->logits)
			memcpy(q->logits + (size_t)g * G.vocab, ev->logits,
			       G.vocab * sizeof(int32_t));
		q->top[g] = ev->n_cand ? ev->cand_logit[0] : 0;
		q->seq[q->len++] = ev->token;
		G.tokens++;
		if (G.kill_cmd && !G.killed && G.tokens >= G.kill_at) {
			G.killed = true;
			fprintf(stderr, "head: %llu tokens: running '%s'\n",
				(unsigned long long)G.tokens, G.kill_cmd);
			if (system(G.kill_cmd) != 0)
				fprintf(stderr, "head: '%s' failed\n",
					G.kill_cmd);
		}
	}
	if (ev->finish != NP_FINISH_NONE) {
		q->error = ev->finish == NP_FINISH_ERROR ? ev->error : 0;
		q->done = true;
	}
	return 0;
}

static void on_recover(void *opaque, const struct np_recover_event *ev)
{
	(void)opaque;
	G.recoveries++;
	G.detect_ns = ev->detect_ns;
	G.recover_ns = ev->recover_ns;
	G.spare = ev->spare;
	fprintf(stderr,
		"head: recovered: %s (card %d), spare %d, detected after "
		"%.0f ms, recovered in %.0f ms, %u requests, %llu tokens "
		"replayed\n",
		ev->fault, ev->card, ev->spare, (double)ev->detect_ns / 1e6,
		(double)ev->recover_ns / 1e6, ev->requests,
		(unsigned long long)ev->replayed_tokens);
}

static void *run_thread(void *arg)
{
	return (void *)(intptr_t)np_sched_run(arg);
}

/* Every request through the integer reference; 0 if all agree. */
static int check(const struct np_compiled *c, struct req *rq, uint32_t n)
{
	struct np_ref_int *ref;
	int32_t *lg = malloc(G.vocab * sizeof(*lg));
	uint64_t compared = 0;
	int bad = 0, ret;

	ret = lg ? np_ref_int_create(c, &ref) : -ENOMEM;
	if (ret) {
		fprintf(stderr, "check: reference: %s\n", strerror(-ret));
		free(lg);
		return 1;
	}
	for (uint32_t r = 0; r < n && !bad; r++) {
		struct req *q = &rq[r];

		for (uint32_t pos = 0; pos + 1 < q->len && !bad; pos++) {
			uint32_t g, best = 0;

			ret = np_ref_int_step(ref, r, pos, q->seq[pos], lg);
			if (ret) {
				fprintf(stderr, "check: step: %s\n",
					strerror(-ret));
				bad = 1;
				break;
			}
			if (pos + 1 < q->n_prompt)
				continue;
			g = pos + 1 - q->n_prompt;
			for (uint32_t v = 1; v < G.vocab; v++)
				if (lg[v] > lg[best])
					best = v;
			if (G.full &&
			    memcmp(lg, q->logits + (size_t)g * G.vocab,
				   G.vocab * sizeof(*lg))) {
				fprintf(stderr,
					"check: request %u token %u: logits "
					"differ from the integer reference\n",
					r, g);
				bad = 1;
			}
			if ((int32_t)best != q->seq[pos + 1] ||
			    lg[best] != q->top[g]) {
				fprintf(stderr,
					"check: request %u token %u: %d "
					"(logit %d), the reference's %u "
					"(logit %d)\n",
					r, g, q->seq[pos + 1], q->top[g], best,
					lg[best]);
				bad = 1;
			}
			compared++;
		}
	}
	np_ref_int_destroy(ref);
	free(lg);
	fprintf(stderr,
		"check: %llu tokens%s against the integer reference: "
		"%s\n",
		(unsigned long long)compared, G.full ? " and their logits" : "",
		bad ? "MISMATCH" : "bit-exact");
	return bad;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"cluster", required_argument, NULL, 'c'},
		{"model", required_argument, NULL, 'm'},
		{"local", required_argument, NULL, 'L'},
		{"requests", required_argument, NULL, 'n'},
		{"micro-batches", required_argument, NULL, 'M'},
		{"max-tokens", required_argument, NULL, 't'},
		{"full-logits", no_argument, NULL, 'f'},
		{"check", no_argument, NULL, 'k'},
		{"kill-at", required_argument, NULL, 'K'},
		{"kill-cmd", required_argument, NULL, 'C'},
		{"out", required_argument, NULL, 'o'},
		{"timeout-ms", required_argument, NULL, 'T'},
		{0},
	};
	const char *cluster = NULL, *model = NULL, *local = NULL, *out = NULL;
	uint32_t n = 8, m = 4, max_tokens = 8, timeout_ms = 0;
	bool do_check = false;
	struct np_open_opts oo = {.log = {.fn = log_line}};
	struct np_ctx *ctx = NULL;
	struct np_pipeline *p = NULL;
	struct np_sched *s = NULL;
	struct req *rq;
	uint64_t t0, t1;
	pthread_t th;
	void *tret;
	int c, ret, fails = 0;

	while ((c = getopt_long(argc, argv, "c:m:n:M:t:fko:", lo, NULL)) !=
	       -1) {
		switch (c) {
		case 'c':
			cluster = optarg;
			break;
		case 'm':
			model = optarg;
			break;
		case 'L':
			local = optarg;
			break;
		case 'n':
			n = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'M':
			m = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 't':
			max_tokens = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'f':
			G.full = true;
			break;
		case 'k':
			do_check = true;
			break;
		case 'K':
			G.kill_at = strtoull(optarg, NULL, 10);
			break;
		case 'C':
			G.kill_cmd = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'T':
			timeout_ms = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		default:
			fprintf(stderr,
				"usage: np_cluster_run (--cluster FILE | "
				"--local SPEC) -m MODEL [-n N] [-M M] [-t T] "
				"[--full-logits] [--check] [--kill-at N "
				"--kill-cmd CMD] [--out FILE]\n");
			return 2;
		}
	}
	if ((!cluster == !local) || !model || !n || !m || m > n) {
		fprintf(stderr, "np_cluster_run: give --cluster or --local, "
				"-m, and 1 <= M <= N\n");
		return 2;
	}
	ret = np_open(local ? local : "emu:1", &oo, &ctx);
	t0 = now_ns();
	if (!ret && cluster)
		ret = np_cluster_load(
			ctx, model,
			&(struct np_pipeline_opts){.max_sessions = n},
			&(struct np_cluster_opts){.file = cluster,
						  .timeout_ms = timeout_ms},
			&p);
	else if (!ret)
		ret = np_model_load(
			ctx, model,
			&(struct np_pipeline_opts){.max_sessions = n}, &p);
	t1 = now_ns();
	if (ret) {
		fprintf(stderr, "np_cluster_run: loading failed: %s\n",
			strerror(-ret));
		np_close(ctx);
		return 1;
	}
	G.vocab = np_compiled_card(
			  np_pipeline_compiled(p),
			  np_compiled_n_cards(np_pipeline_compiled(p)) - 1)
			  ->vocab_end;
	fprintf(stderr, "head: loaded in %.0f ms: %u cards\n",
		(double)(t1 - t0) / 1e6,
		np_compiled_n_cards(np_pipeline_compiled(p)));
	rq = calloc(n, sizeof(*rq));
	ret = np_sched_create(p,
			      &(struct np_sched_opts){
				      .slots = n,
				      .micro_batches = m,
				      .max_queue = n,
				      .full_logits = G.full,
				      .max_recoveries = 4,
				      .on_recover = on_recover,
			      },
			      &s);
	for (uint32_t r = 0; r < n && !ret; r++) {
		struct req *q = &rq[r];
		int32_t prompt[8];
		uint32_t np_ = 2 + r % 5;

		for (uint32_t i = 0; i < np_; i++)
			prompt[i] = (int32_t)((r * 131 + i * 17 + 1) % G.vocab);
		q->n_prompt = np_;
		q->max = np_ + max_tokens;
		q->seq = calloc(q->max, sizeof(*q->seq));
		q->top = calloc(max_tokens, sizeof(*q->top));
		if (G.full)
			q->logits = calloc((size_t)max_tokens * G.vocab,
					   sizeof(*q->logits));
		memcpy(q->seq, prompt, np_ * sizeof(*prompt));
		q->len = np_;
		ret = np_sched_submit(s,
				      &(struct np_sched_req){
					      .prompt = prompt,
					      .n_prompt = np_,
					      .max_tokens = max_tokens,
					      .on_event = on_event,
					      .opaque = q,
				      },
				      NULL);
	}
	if (ret) {
		fprintf(stderr, "np_cluster_run: %s\n", strerror(-ret));
		return 1;
	}
	np_sched_drain(s);
	t0 = now_ns();
	pthread_create(&th, NULL, run_thread, s);
	pthread_join(th, &tret);
	t1 = now_ns();
	ret = (int)(intptr_t)tret;
	for (uint32_t r = 0; r < n; r++)
		if (!rq[r].done || rq[r].error) {
			fprintf(stderr, "np_cluster_run: request %u %s (%s)\n",
				r, rq[r].done ? "failed" : "did not finish",
				strerror(-rq[r].error));
			fails++;
		}
	printf("requests %u tokens %llu wall_ms %.1f tokens_per_s %.1f "
	       "recoveries %u detect_ms %.1f recover_ms %.1f failed %d\n",
	       n, (unsigned long long)G.tokens, (double)(t1 - t0) / 1e6,
	       (double)G.tokens * 1e9 / (double)(t1 - t0), G.recoveries,
	       (double)G.detect_ns / 1e6, (double)G.recover_ns / 1e6, fails);
	if (cluster) {
		struct np_cluster_stats cs;

		if (!np_cluster_stats(p, &cs))
			printf("cluster members %u spares_left %u frames %llu "
			       "frame_bytes %llu result_bytes %llu "
			       "credit_waits %llu failures %llu "
			       "replacements %llu frame_us %.1f\n",
			       cs.members, cs.spares_left,
			       (unsigned long long)cs.frames,
			       (unsigned long long)cs.frame_bytes,
			       (unsigned long long)cs.result_bytes,
			       (unsigned long long)cs.credit_waits,
			       (unsigned long long)cs.failures,
			       (unsigned long long)cs.replacements,
			       cs.frames ? (double)cs.frame_ns / 1e3 /
						   (double)cs.frames :
					   0.0);
	}
	if (out) {
		FILE *f = fopen(out, "w");

		for (uint32_t r = 0; f && r < n; r++) {
			for (uint32_t i = 0; i < rq[r].len; i++)
				fprintf(f, "%s%d", i ? " " : "", rq[r].seq[i]);
			fputc('\n', f);
		}
		if (f)
			fclose(f);
	}
	if (do_check && !fails && check(np_pipeline_compiled(p), rq, n))
		fails++;
	np_sched_destroy(s);
	np_pipeline_destroy(p);
	np_close(ctx);
	for (uint32_t r = 0; r < n; r++) {
		free(rq[r].seq);
		free(rq[r].top);
		free(rq[r].logits);
	}
	free(rq);
	return ret || fails ? 1 : 0;
}
