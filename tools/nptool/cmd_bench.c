// SPDX-License-Identifier: MIT
/*
 * bench: what real cards would do with a model of a given shape, from
 * libnp's first-principles performance model (np/perfmodel.h,
 * docs/perfmodel.md). Timing only: no weights, no cards needed.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "np/perfmodel.h"
#include "nptool.h"

static int read_text(struct npt *t, const char *path, char **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 4096, n = 0, got;
	char *b = NULL;

	if (!f) {
		int e = errno;

		npt_err(t, "bench: cannot open shape file %s: %s", path,
			strerror(e));
		return -e;
	}
	do {
		char *nb = realloc(b, cap);

		if (!nb || n > (1u << 20)) {
			npt_err(t,
				"bench: shape file %s is over 1 MiB; a shape "
				"is a few key = value lines",
				path);
			free(nb ? nb : b);
			fclose(f);
			return -EFBIG;
		}
		b = nb;
		got = fread(b + n, 1, cap - n, f);
		n += got;
		cap *= 2;
	} while (got);
	fclose(f);
	*buf = b;
	*len = n;
	return 0;
}

static void stages_json(struct npt_json *j, const struct np_perf_shape *s,
			const struct np_perf_result *r)
{
	npt_json_key(j, "stages");
	npt_json_arr_open(j);
	for (uint32_t i = 0; i < r->n_stages; i++) {
		const struct np_perf_stage *st = &r->stage[i];

		npt_json_obj_open(j);
		npt_json_kstr(j, "kind", st->n_layers ? "layers" : "output");
		npt_json_kuint(j, "cards", st->n_layers ? 1 : s->out_cards);
		npt_json_kuint(j, "first_layer", st->first_layer);
		npt_json_kuint(j, "layers", st->n_layers);
		npt_json_kdouble(j, "matrix_us", st->matrix_s * 1e6);
		npt_json_kdouble(j, "attention_us", st->attn_s * 1e6);
		npt_json_kdouble(j, "vector_us", st->vector_s * 1e6);
		npt_json_kdouble(j, "sram_us", st->sram_s * 1e6);
		npt_json_kdouble(j, "stage_us", st->time_s * 1e6);
		npt_json_kdouble(j, "hop_us", st->hop_s * 1e6);
		npt_json_kuint(j, "sram_bytes", st->sram_used);
		npt_json_obj_close(j);
	}
	npt_json_arr_close(j);
}

static void report_json(struct npt_json *j, const struct np_perf_shape *s,
			const struct np_perf_result *r)
{
	npt_json_kstr(j, "shape", s->name);
	npt_json_kuint(j, "requests", s->requests);
	npt_json_kuint(j, "micro_batches", s->micro_batches);
	npt_json_kuint(j, "cards", s->cards);
	npt_json_kuint(j, "out_cards", s->out_cards);
	npt_json_kuint(j, "prompt", s->prompt);
	npt_json_kuint(j, "generate", s->generate);
	npt_json_kdouble(j, "tokens_per_s", r->tokens_per_s);
	npt_json_kdouble(j, "tokens_per_s_card", r->tokens_per_s_card);
	npt_json_kdouble(j, "token_latency_ms", r->token_latency_s * 1e3);
	npt_json_kdouble(j, "first_token_ms", r->first_token_s * 1e3);
	npt_json_kdouble(j, "prefill_s", r->prefill_s);
	npt_json_kdouble(j, "decode_s", r->decode_s);
	npt_json_kdouble(j, "e2e_tokens_per_s", r->e2e_tokens_per_s);
	npt_json_kdouble(j, "matrix_utilization", r->matrix_util);
	npt_json_kdouble(j, "link_bytes_per_s", r->link_bw);
	npt_json_kbool(j, "fits", r->fits);
	stages_json(j, s, r);
}

static void report_text(const struct np_perf_arch *a,
			const struct np_perf_shape *s,
			const struct np_perf_result *r)
{
	uint32_t hd = s->model.dim / s->model.n_heads;
	double stage = r->bound_stage_s * s->micro_batches;
	double host = a->host_step_s * s->micro_batches;
	const char *bound = host >= stage && host >= r->loop_s ? "host" :
			    stage >= r->loop_s		       ? "stage" :
								 "latency";

	printf("shape %s: %u layers, dim %u, FFN %u, %u/%u heads of %u, "
	       "vocab %u, w%ua%u, KV int%u, output int%u\n",
	       s->name, s->model.n_layers, s->model.dim, s->model.ffn,
	       s->model.n_heads, s->model.n_kv_heads, hd, s->model.vocab,
	       s->weight_bits, s->act_bits, s->kv_bits, s->out_bits);
	printf("run: N %u requests in M %u micro-batches of %u, %u + %u "
	       "tokens each, %u cards (%u layer, %u output)\n",
	       s->requests, s->micro_batches, s->requests / s->micro_batches,
	       s->prompt, s->generate, s->cards, r->n_stages - 1, s->out_cards);
	printf("link: PCIe Gen3 x8, %.2f GB/s effective\n\n", r->link_bw / 1e9);
	printf("decode, per micro-batch, at the mean context (%.0f tokens):\n",
	       s->prompt + (s->generate - 1) / 2.0);
	printf("%-7s %-6s %7s %8s %8s %8s %8s %8s %7s %9s\n", "stage", "cards",
	       "layers", "matrix", "attn", "vector", "sram", "stage", "hop",
	       "SRAM");
	printf("%-7s %-6s %7s %8s %8s %8s %8s %8s %7s %9s\n", "", "", "", "us",
	       "us", "us", "us", "us", "us", "MiB");
	for (uint32_t i = 0; i < r->n_stages; i++) {
		const struct np_perf_stage *st = &r->stage[i];
		char cards[16], layers[16];

		if (st->n_layers) {
			snprintf(cards, sizeof(cards), "%u", i);
			snprintf(layers, sizeof(layers), "%u-%u",
				 st->first_layer,
				 st->first_layer + st->n_layers - 1);
		} else {
			snprintf(cards, sizeof(cards), "%u-%u", i,
				 i + s->out_cards - 1);
			snprintf(layers, sizeof(layers), "out");
		}
		printf("%-7u %-6s %7s %8.2f %8.2f %8.2f %8.2f %8.2f %7.2f "
		       "%9.1f\n",
		       i, cards, layers, st->matrix_s * 1e6, st->attn_s * 1e6,
		       st->vector_s * 1e6, st->sram_s * 1e6, st->time_s * 1e6,
		       st->hop_s * 1e6, st->sram_used / 1048576.0);
	}
	printf("\nsystem tokens/s (decode)     %10.0f\n", r->tokens_per_s);
	printf("tokens/s per card            %10.0f\n", r->tokens_per_s_card);
	printf("per-token latency per user   %10.3f ms\n",
	       r->token_latency_s * 1e3);
	printf("first token (prefill, GPipe) %10.3f ms\n",
	       r->first_token_s * 1e3);
	printf("end to end tokens/s          %10.0f (%.3f s)\n",
	       r->e2e_tokens_per_s, r->total_s);
	printf("round: slowest stage %.2f us x M %u = %.2f us, ring %.2f "
	       "us, host %.2f us x M: %s bound\n",
	       r->bound_stage_s * 1e6, s->micro_batches,
	       r->bound_stage_s * 1e6 * s->micro_batches, r->loop_s * 1e6,
	       a->host_step_s * 1e6, bound);
	printf("matrix units busy            %10.1f %%\n",
	       r->matrix_util * 100);
	if (!r->fits)
		printf("warning: the model does not fit (SRAM or frame "
		       "buffer); the figures assume it did\n");
}

/* The command line of bench: the shape file and the overrides. */
struct bench_opts {
	const char *path;
	uint32_t over[6]; /* by index of names[] in bench_parse(), 0: unset */
};

static int bench_parse(struct npt *t, struct bench_opts *b, int argc,
		       char **argv)
{
	static const struct option opts[] = {
		{"model-shape", required_argument, NULL, 's'},
		{"requests", required_argument, NULL, 'n'},
		{"micro-batches", required_argument, NULL, 'M'},
		{"cards", required_argument, NULL, 'c'},
		{"out-cards", required_argument, NULL, 'o'},
		{"prompt", required_argument, NULL, 'P'},
		{"generate", required_argument, NULL, 'g'},
		{0},
	};
	/* the options over[] collects, by index */
	static const char *const names[] = {"--requests", "--micro-batches",
					    "--cards",	  "--out-cards",
					    "--prompt",	  "--generate"};
	int c, rc;

	while ((c = getopt_long(argc, argv, "s:n:M:c:", opts, NULL)) != -1) {
		int k;

		switch (c) {
		case 's':
			b->path = optarg;
			continue;
		case 'n':
			k = 0;
			break;
		case 'M':
			k = 1;
			break;
		case 'c':
			k = 2;
			break;
		case 'o':
			k = 3;
			break;
		case 'P':
			k = 4;
			break;
		case 'g':
			k = 5;
			break;
		default:
			return npt_usage(t, "bench: bad option");
		}
		rc = npt_parse_u32(t, names[k], optarg, 1, &b->over[k]);
		if (rc)
			return rc;
	}
	if (optind < argc)
		return npt_usage(t, "bench: unexpected argument '%s'",
				 argv[optind]);
	return NPT_EXIT_OK;
}

/* The default shape, or the file's, with the overrides applied. */
static int bench_shape(struct npt *t, const struct bench_opts *b,
		       struct np_perf_shape *s)
{
	const uint32_t *over = b->over;
	char err[512] = "";
	int rc;

	np_perf_shape_default(s);
	if (b->path) {
		char *text = NULL;
		size_t len = 0;

		rc = read_text(t, b->path, &text, &len);
		if (rc)
			return NPT_EXIT_USAGE;
		rc = np_perf_shape_parse(text, len, s, err, sizeof(err));
		free(text);
		if (rc) {
			npt_err(t, "bench: %s: %s", b->path, err);
			return NPT_EXIT_USAGE;
		}
	}
	s->requests = over[0] ? over[0] : s->requests;
	s->micro_batches = over[1] ? over[1] : s->micro_batches;
	s->cards = over[2] ? over[2] : s->cards;
	s->out_cards = over[3] ? over[3] : s->out_cards;
	s->prompt = over[4] ? over[4] : s->prompt;
	s->generate = over[5] ? over[5] : s->generate;
	return NPT_EXIT_OK;
}

int npt_cmd_bench(struct npt *t, int argc, char **argv)
{
	struct bench_opts b = {0};
	struct np_perf_shape s;
	struct np_perf_arch a;
	struct np_perf_result *r;
	char err[512] = "";
	int rc = bench_parse(t, &b, argc, argv);

	if (rc)
		return rc;
	np_perf_arch_default(&a);
	rc = bench_shape(t, &b, &s);
	if (rc)
		return rc;
	r = malloc(sizeof(*r));
	if (!r) {
		npt_err(t, "bench: out of memory");
		return NPT_EXIT_FAIL;
	}
	rc = np_perf_estimate(&a, &s, r, err, sizeof(err));
	if (rc) {
		npt_err(t, "bench: %s: %s", b.path ? b.path : s.name, err);
		free(r);
		return NPT_EXIT_USAGE;
	}
	if (t->j)
		report_json(t->j, &s, r);
	else
		report_text(&a, &s, r);
	free(r);
	return NPT_EXIT_OK;
}
