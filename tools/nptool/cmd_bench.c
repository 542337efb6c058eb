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

#include "np/model.h"
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

static const char *part_name(uint32_t part)
{
	return part == NP_PERF_PART_ATTN  ? "attn" :
	       part == NP_PERF_PART_FFN	  ? "ffn" :
	       part == NP_PERF_PART_LAYER ? "layers" :
					    "output";
}

static void stages_json(struct npt_json *j, const struct np_perf_shape *s,
			const struct np_perf_result *r)
{
	npt_json_key(j, "stages");
	npt_json_arr_open(j);
	for (uint32_t i = 0; i < r->n_stages; i++) {
		const struct np_perf_stage *st = &r->stage[i];

		npt_json_obj_open(j);
		npt_json_kstr(j, "kind", part_name(st->part));
		npt_json_kuint(j, "cards", st->n_layers ? 1 : s->out_cards);
		npt_json_kuint(j, "card", st->card);
		npt_json_kuint(j, "host", st->host);
		npt_json_kbool(j, "hop_crosses_hosts", st->net);
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
	npt_json_kuint(j, "n_layers", s->model.n_layers);
	npt_json_kuint(j, "dim", s->model.dim);
	npt_json_kuint(j, "n_heads", s->model.n_heads);
	npt_json_kuint(j, "n_kv_heads", s->model.n_kv_heads);
	npt_json_kuint(j, "ffn", s->model.ffn);
	npt_json_kuint(j, "vocab", s->model.vocab);
	npt_json_kuint(j, "requests", s->requests);
	npt_json_kuint(j, "micro_batches", s->micro_batches);
	npt_json_kuint(j, "cards", s->cards);
	npt_json_kuint(j, "out_cards", s->out_cards);
	npt_json_kuint(j, "prompt", s->prompt);
	npt_json_kuint(j, "generate", s->generate);
	npt_json_kuint(j, "weight_bits", s->weight_bits);
	npt_json_kuint(j, "act_bits", s->act_bits);
	npt_json_kuint(j, "kv_bits", s->kv_bits);
	npt_json_kuint(j, "hosts", s->hosts ? s->hosts : 1);
	npt_json_kuint(j, "cards_per_layer",
		       s->cards_per_layer ? s->cards_per_layer : 1);
	npt_json_kbool(j, "route_host", s->route_host);
	npt_json_kuint(j, "cards_used", r->cards_used);
	npt_json_kuint(j, "net_hops", r->net_hops);
	npt_json_kdouble(j, "net_hop_us", r->net_hop_s * 1e6);
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
	uint32_t hosts = s->hosts ? s->hosts : 1;
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
	       "tokens each, %u cards (%u used: %u layer, %u output), "
	       "%u card%s per layer\n",
	       s->requests, s->micro_batches, s->requests / s->micro_batches,
	       s->prompt, s->generate, s->cards, r->cards_used, r->n_stages - 1,
	       s->out_cards, s->cards_per_layer ? s->cards_per_layer : 1,
	       s->cards_per_layer > 1 ? "s" : "");
	printf("link: PCIe Gen3 x8, %.2f GB/s effective, %s\n",
	       r->link_bw / 1e9,
	       s->route_host ? "card to card through host memory" :
			       "card to card by peer DMA");
	if (hosts > 1 || r->net_hops)
		printf("hosts: %u; %u crossings per round, %.2f us each "
		       "(decode frame)\n",
		       hosts, r->net_hops, r->net_hop_s * 1e6);
	printf("\ndecode, per micro-batch, at the mean context (%.0f "
	       "tokens):\n",
	       s->prompt + (s->generate - 1) / 2.0);
	printf("%-7s %-6s %4s %-5s %7s %8s %8s %8s %8s %8s %7s %9s\n", "stage",
	       "cards", "host", "part", "layers", "matrix", "attn", "vector",
	       "sram", "stage", "hop", "SRAM");
	printf("%-7s %-6s %4s %-5s %7s %8s %8s %8s %8s %8s %7s %9s\n", "", "",
	       "", "", "", "us", "us", "us", "us", "us", "us", "MiB");
	for (uint32_t i = 0; i < r->n_stages; i++) {
		const struct np_perf_stage *st = &r->stage[i];
		char cards[16], layers[16];

		if (st->n_layers) {
			snprintf(cards, sizeof(cards), "%u", st->card);
			snprintf(layers, sizeof(layers), "%u-%u",
				 st->first_layer,
				 st->first_layer + st->n_layers - 1);
		} else {
			snprintf(cards, sizeof(cards), "%u-%u", st->card,
				 st->card + s->out_cards - 1);
			snprintf(layers, sizeof(layers), "out");
		}
		printf("%-7u %-6s %4u %-5.5s %7s %8.2f %8.2f %8.2f %8.2f %8.2f "
		       "%6.2f%s %9.1f\n",
		       i, cards, st->host, part_name(st->part), layers,
		       st->matrix_s * 1e6, st->attn_s * 1e6, st->vector_s * 1e6,
		       st->sram_s * 1e6, st->time_s * 1e6, st->hop_s * 1e6,
		       st->net ? "*" : " ", st->sram_used / 1048576.0);
	}
	if (r->net_hops)
		printf("(* the hop crosses to another server)\n");
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

/* ---------------------------------------------------------------- */
/* Sensitivity: each assumed or derived parameter at x0.5 and x1.5    */

static const struct {
	const char *name;
	size_t off; /* a double in struct np_perf_arch */
	const char *what;
} sens_params[] = {
#define P(f, w)                                         \
	{                                               \
#f, offsetof(struct np_perf_arch, f), w \
	}
	P(pcie_latency_s, "assumed"), P(dma_setup_s, "assumed"),
	P(host_step_s, "assumed"),    P(pcie_efficiency, "derived"),
	P(host_hop_s, "assumed"),     P(nic_latency_s, "assumed"),
	P(nic_bw, "200 GbE"),	      P(net_host_s, "assumed"),
	P(host_copy_bw, "assumed"),   P(sram_bw, "published"),
	P(clock_hz, "documented"),
#undef P
};

#define SENS_N (sizeof(sens_params) / sizeof(sens_params[0]))

/* tokens/s and latency with one parameter scaled; 0 or -errno */
struct sens_row {
	double lat[2], tps[2]; /* x0.5, x1.5 */
};

static int sens_run(const struct np_perf_arch *a0,
		    const struct np_perf_shape *s, struct np_perf_result *r,
		    struct sens_row *rows)
{
	static const double f[2] = {0.5, 1.5};

	for (size_t i = 0; i < SENS_N; i++) {
		for (int k = 0; k < 2; k++) {
			struct np_perf_arch a = *a0;
			double *v = (double *)((char *)&a + sens_params[i].off);
			int rc;

			*v *= f[k];
			if (sens_params[i].off == offsetof(struct np_perf_arch,
							   pcie_efficiency) &&
			    *v > 1)
				*v = 1; /* at most every byte is payload */
			rc = np_perf_estimate(&a, s, r, NULL, 0);
			if (rc)
				return rc;
			rows[i].lat[k] = r->token_latency_s;
			rows[i].tps[k] = r->tokens_per_s;
		}
	}
	return 0;
}

static double pct(double v, double base)
{
	return base > 0 ? (v / base - 1) * 100 : 0;
}

static void sens_text(const struct np_perf_shape *s,
		      const struct np_perf_result *base,
		      const struct sens_row *rows)
{
	printf("sensitivity of %s, %s route (per-token latency %.3f ms, %.0f "
	       "tokens/s): each parameter at x0.5 and x1.5 (pcie_efficiency "
	       "capped at 1)\n",
	       s->name, s->route_host ? "host" : "peer",
	       base->token_latency_s * 1e3, base->tokens_per_s);
	printf("%-16s %-10s %12s %12s %12s %12s\n", "parameter", "source",
	       "latency x0.5", "latency x1.5", "tok/s x0.5", "tok/s x1.5");
	for (size_t i = 0; i < SENS_N; i++)
		printf("%-16s %-10s %+11.1f%% %+11.1f%% %+11.1f%% %+11.1f%%\n",
		       sens_params[i].name, sens_params[i].what,
		       pct(rows[i].lat[0], base->token_latency_s),
		       pct(rows[i].lat[1], base->token_latency_s),
		       pct(rows[i].tps[0], base->tokens_per_s),
		       pct(rows[i].tps[1], base->tokens_per_s));
}

static void sens_json(struct npt_json *j, const struct np_perf_result *base,
		      const struct sens_row *rows)
{
	npt_json_key(j, "sensitivity");
	npt_json_arr_open(j);
	for (size_t i = 0; i < SENS_N; i++) {
		npt_json_obj_open(j);
		npt_json_kstr(j, "parameter", sens_params[i].name);
		npt_json_kstr(j, "source", sens_params[i].what);
		npt_json_kdouble(j, "latency_ms_half", rows[i].lat[0] * 1e3);
		npt_json_kdouble(j, "latency_ms_1_5", rows[i].lat[1] * 1e3);
		npt_json_kdouble(j, "latency_pct_half",
				 pct(rows[i].lat[0], base->token_latency_s));
		npt_json_kdouble(j, "latency_pct_1_5",
				 pct(rows[i].lat[1], base->token_latency_s));
		npt_json_kdouble(j, "tokens_per_s_half", rows[i].tps[0]);
		npt_json_kdouble(j, "tokens_per_s_1_5", rows[i].tps[1]);
		npt_json_obj_close(j);
	}
	npt_json_arr_close(j);
}

/* ---------------------------------------------------------------- */
/* The published systems (docs/perfmodel.md, "Against the published  */
/* systems"): their figures, and the model configured as each paper   */
/* describes the system                                               */

static const struct {
	const char *preset; /* np_perf_shape_preset */
	const char *system;
	double tokens_per_s; /* published, decode, the whole system run */
	double latency_ms; /* published per-user per-token latency */
	const char *latency_note;
	const char *source;
} published[] = {
	{"northpole-2024", "NorthPole 2024: 16 cards, 3B, w4a4", 28356, 1.0,
	 "under 1 ms",
	 "Appuswamy et al., IEEE HPEC 2024, abstract: 28,356 tokens/s, "
	 "sub-1 ms/token per user"},
	{"northpole-2025", "NorthPole 2025: 8B instance, A8-C8-W4", 0, 2.8,
	 "2.8 ms",
	 "DeBole et al., arXiv:2511.15950, abstract: 28 users, 2,048 "
	 "context, 2.8 ms per-user inter-token latency"},
};

#define PUB_N (sizeof(published) / sizeof(published[0]))

/* the model of published[i] with peer DMA (route 0) or host routing */
static int pub_estimate(struct npt *t, const struct np_perf_arch *a, size_t i,
			uint32_t route, struct np_perf_shape *s,
			struct np_perf_result *r)
{
	char err[512] = "";
	int rc = np_perf_shape_preset(published[i].preset, s);

	s->route_host = route;
	if (!rc)
		rc = np_perf_estimate(a, s, r, err, sizeof(err));
	if (rc)
		npt_err(t, "bench: %s: %s", published[i].preset,
			err[0] ? err : strerror(-rc));
	return rc;
}

static int published_report(struct npt *t, const struct np_perf_arch *a,
			    struct np_perf_result *r)
{
	struct np_perf_shape s;
	struct sens_row rows[SENS_N];

	if (t->j) {
		npt_json_key(t->j, "published");
		npt_json_arr_open(t->j);
	} else {
		printf("model against the published NorthPole systems (no "
		       "parameter fitted; docs/perfmodel.md)\n");
		printf("%-38s %-5s %9s %11s %6s %10s %12s %6s %7s %9s\n",
		       "system", "route", "pub tok/s", "model tok/s", "ratio",
		       "pub ms/tok", "model ms/tok", "ratio", "gap ms",
		       "e2e tok/s");
	}
	for (size_t i = 0; i < PUB_N; i++) {
		for (uint32_t route = 0; route < 2; route++) {
			/* tokens/s = users / per-token latency when only
			 * the latency is published */
			double ptps, plat = published[i].latency_ms;
			int rc = pub_estimate(t, a, i, route, &s, r);

			if (rc)
				return NPT_EXIT_FAIL;
			ptps = published[i].tokens_per_s ?
				       published[i].tokens_per_s :
				       s.requests / (plat * 1e-3);
			if (t->j) {
				npt_json_obj_open(t->j);
				npt_json_kstr(t->j, "preset",
					      published[i].preset);
				npt_json_kstr(t->j, "system",
					      published[i].system);
				npt_json_kstr(t->j, "route",
					      route ? "host" : "peer");
				npt_json_kdouble(t->j, "published_tokens_per_s",
						 ptps);
				npt_json_kdouble(t->j, "published_latency_ms",
						 plat);
				npt_json_kstr(t->j, "source",
					      published[i].source);
				report_json(t->j, &s, r);
				npt_json_obj_close(t->j);
				continue;
			}
			/* the gap: users / published tokens/s (the per-token
			 * latency the throughput implies) - the model's */
			printf("%-38s %-5s %9.0f %11.0f %5.2fx %10s %12.3f "
			       "%5.2fx %7.3f %9.0f\n",
			       published[i].system, route ? "host" : "peer",
			       ptps, r->tokens_per_s, r->tokens_per_s / ptps,
			       published[i].latency_note,
			       r->token_latency_s * 1e3,
			       r->token_latency_s * 1e3 / plat,
			       s.requests / ptps * 1e3 -
				       r->token_latency_s * 1e3,
			       r->e2e_tokens_per_s);
		}
	}
	if (t->j) {
		npt_json_arr_close(t->j);
		return NPT_EXIT_OK;
	}
	printf("(ratio: model / published; the 2025 tokens/s is 28 users / "
	       "2.8 ms, one instance; gap: users / published tokens/s - the "
	       "model's\n per-token latency; e2e: generated tokens / "
	       "(prefill + decode); peer: np's card-to-card DMA; host: every\n"
	       " frame through host memory)\n");
	for (size_t i = 0; i < PUB_N * 2; i++) {
		struct np_perf_result base;

		if (pub_estimate(t, a, i / 2, i % 2, &s, r))
			return NPT_EXIT_FAIL;
		base = *r;
		printf("\n");
		if (sens_run(a, &s, r, rows))
			return NPT_EXIT_FAIL;
		sens_text(&s, &base, rows);
	}
	return NPT_EXIT_OK;
}

/* The command line of bench: the shape file and the overrides. */
#define BENCH_OVER 9
struct bench_opts {
	const char *path;
	const char *precision;
	bool sensitivity, published, route_host;
	uint32_t over[BENCH_OVER]; /* by index of names[], 0: unset */
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
		{"hosts", required_argument, NULL, 'H'},
		{"cards-per-host", required_argument, NULL, 'C'},
		{"cards-per-layer", required_argument, NULL, 'L'},
		{"precision", required_argument, NULL, 'p'},
		{"route-host", no_argument, NULL, 'R'},
		{"sensitivity", no_argument, NULL, 'S'},
		{"published", no_argument, NULL, 'B'},
		{0},
	};
	/* the options over[] collects, by index */
	static const char *const names[BENCH_OVER] = {
		"--requests",  "--micro-batches",  "--cards",
		"--out-cards", "--prompt",	   "--generate",
		"--hosts",     "--cards-per-host", "--cards-per-layer"};
	static const char keys[] = "nMcoPgHCL";
	int c, rc;

	while ((c = getopt_long(argc, argv, "s:n:M:c:", opts, NULL)) != -1) {
		const char *k;

		switch (c) {
		case 's':
			b->path = optarg;
			continue;
		case 'p':
			b->precision = optarg;
			continue;
		case 'R':
			b->route_host = true;
			continue;
		case 'S':
			b->sensitivity = true;
			continue;
		case 'B':
			b->published = true;
			continue;
		default:
			k = c ? strchr(keys, c) : NULL;
			if (!k)
				return npt_usage(t, "bench: bad option");
		}
		rc = npt_parse_u32(t, names[k - keys], optarg, 1,
				   &b->over[k - keys]);
		if (rc)
			return rc;
	}
	if (optind < argc)
		return npt_usage(t, "bench: unexpected argument '%s'",
				 argv[optind]);
	return NPT_EXIT_OK;
}

/* 1 when the file starts with the GGUF magic */
static int is_gguf(const char *path)
{
	char m[4];
	FILE *f = fopen(path, "rb");
	int yes = 0;

	if (f) {
		yes = fread(m, 1, 4, f) == 4 && !memcmp(m, "GGUF", 4);
		fclose(f);
	}
	return yes;
}

/* The model shape from a GGUF file's metadata (no tensor data read) */
static int bench_gguf(struct npt *t, const char *path, struct np_perf_shape *s)
{
	struct np_log lg = {.fn = npt_log_err, .opaque = t};
	struct np_gguf *g = NULL;
	const char *base = strrchr(path, '/');
	int rc = np_gguf_open_meta(path, &lg, &g);

	if (!rc)
		rc = np_model_shape_from_gguf(g, &lg, &s->model);
	np_gguf_close(g);
	if (rc) {
		npt_err(t,
			"bench: %s: cannot read a model shape from this "
			"GGUF file (see above)",
			path);
		return NPT_EXIT_USAGE;
	}
	base = base ? base + 1 : path;
	snprintf(s->name, sizeof(s->name), "%.*s",
		 (int)(strlen(base) > 5 && !strcmp(base + strlen(base) - 5,
						   ".gguf") ?
			       strlen(base) - 5 :
			       strlen(base)),
		 base);
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
	if (b->path && is_gguf(b->path)) {
		rc = bench_gguf(t, b->path, s);
		if (rc)
			return rc;
	} else if (b->path) {
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
	if (b->precision) {
		char line[80];

		snprintf(line, sizeof(line), "precision = %s", b->precision);
		if (np_perf_shape_parse(line, strlen(line), s, err,
					sizeof(err))) {
			npt_err(t, "bench: --precision %s: %s", b->precision,
				err);
			return NPT_EXIT_USAGE;
		}
	}
	s->requests = over[0] ? over[0] : s->requests;
	s->micro_batches = over[1] ? over[1] : s->micro_batches;
	s->cards = over[2] ? over[2] : s->cards;
	s->out_cards = over[3] ? over[3] : s->out_cards;
	s->prompt = over[4] ? over[4] : s->prompt;
	s->generate = over[5] ? over[5] : s->generate;
	s->hosts = over[6] ? over[6] : s->hosts;
	s->cards_per_host = over[7] ? over[7] : s->cards_per_host;
	s->cards_per_layer = over[8] ? over[8] : s->cards_per_layer;
	s->route_host = b->route_host ? 1 : s->route_host;
	return NPT_EXIT_OK;
}

int npt_cmd_bench(struct npt *t, int argc, char **argv)
{
	struct bench_opts b = {0};
	struct np_perf_shape s;
	struct np_perf_arch a;
	struct np_perf_result *r, *base = NULL;
	struct sens_row rows[SENS_N];
	char err[512] = "";
	int rc = bench_parse(t, &b, argc, argv);

	if (rc)
		return rc;
	np_perf_arch_default(&a);
	r = malloc(sizeof(*r));
	if (!r) {
		npt_err(t, "bench: out of memory");
		return NPT_EXIT_FAIL;
	}
	if (b.published) {
		bool other =
			b.path || b.precision || b.route_host || b.sensitivity;

		for (int i = 0; i < BENCH_OVER; i++)
			other = other || b.over[i];
		if (other) {
			free(r);
			return npt_usage(t, "bench: --published configures "
					    "both systems as published; it "
					    "takes no other option");
		}
		rc = published_report(t, &a, r);
		free(r);
		return rc;
	}
	rc = bench_shape(t, &b, &s);
	if (rc) {
		free(r);
		return rc;
	}
	rc = np_perf_estimate(&a, &s, r, err, sizeof(err));
	if (rc) {
		npt_err(t, "bench: %s: %s", b.path ? b.path : s.name, err);
		free(r);
		return NPT_EXIT_USAGE;
	}
	if (b.sensitivity) {
		base = malloc(sizeof(*base));
		if (!base || (*base = *r, sens_run(&a, &s, r, rows))) {
			npt_err(t, "bench: out of memory");
			free(base);
			free(r);
			return NPT_EXIT_FAIL;
		}
		*r = *base;
	}
	if (t->j) {
		report_json(t->j, &s, r);
		if (base)
			sens_json(t->j, base, rows);
	} else {
		report_text(&a, &s, r);
		if (base) {
			printf("\n");
			sens_text(&s, base, rows);
		}
	}
	free(base);
	free(r);
	return NPT_EXIT_OK;
}
