// SPDX-License-Identifier: MIT
/*
 * run: the job the cards exist for. A llama GGUF is compiled and loaded
 * onto the cards (one group of layers per card, the output layer split
 * over the last cards), then N requests run concurrently in M
 * micro-batches through the card pipeline (libnp's np_session_run): the
 * prompts are prefilled, tokens are sampled as the output cards return
 * their top-k, and the text of one request streams to stdout as it is
 * produced. At the end: tokens/s, per-token latency of every request and
 * card utilization.
 *
 * Without -d or NP_DEVICES it uses the np cards bound to VFIO if there
 * are any, else 16 emulated cards; without --model the demo model built
 * with nptool; without prompts the first sentences of the shipped sample
 * text.
 *
 * --recover runs the session with np_session_run_recover: a card that
 * fails is reset and reloaded (a removed one replaced by a spare card)
 * and the requests resume; one line per recovery says which card, what
 * was found, and how long detection and recovery took. --inject puts
 * faults into emulated cards once --inject-after tokens were delivered.
 */
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <np/pipeline.h>
#include <np/recover.h>

#include "dev.h"
#include "np_abi.h"

#define RUN_MAX_PROMPTS 256
#define RUN_PROMPT_BYTES 160 /* of a default prompt: its first sentence */
#define RUN_TEXT_MAX (64u << 20) /* a prompts file */
#define RUN_MAX_INJECT 16
#define RUN_MAX_EVENTS 16 /* recoveries kept for the JSON report */

/* The command line of run. */
struct run_opts {
	const char *model, *pfile;
	char *cli_prompt[RUN_MAX_PROMPTS];
	size_t n_cli;
	uint32_t n, m, cards, max_tokens, max_seq, seed;
	struct np_sampling sp;
	bool stop_eos;
};

/* One run, from its command line to its report. */
struct run {
	struct npt *t;
	struct run_opts o;
	const struct np_tok *tok;
	uint32_t n, follow;
	bool quiet;
	/* the prompts of the requests, and the text they came from */
	char *prompt[RUN_MAX_PROMPTS];
	size_t n_prompts;
	char **req_prompt; /* the prompt of each request, -n of them */
	char *text, *calib;
	size_t calib_len;
	/* the loaded model, its requests and their statistics */
	struct np_pipeline *p;
	struct np_request *req;
	struct np_request_stats *rs;
	struct np_session_stats st;
	struct np_card_stats cs[NP_MAX_CARDS];
	int32_t eos, *ids;
	/* generated tokens per request */
	int32_t **out;
	uint32_t *n_out;
	uint32_t cap;
	struct npt_progress bar;
	bool bar_on;
	/* --inject: into ctx's cards when `after` tokens were delivered */
	struct np_ctx *ctx;
	struct npt_inject inj[RUN_MAX_INJECT];
	uint32_t n_inj, after;
	uint64_t delivered;
	int inj_err;
	/* --recover: the run's stats hold no utilization, hop or stalls */
	bool recover;
	struct np_recover_event ev[RUN_MAX_EVENTS];
	uint32_t n_ev;
};

/* Arm every --inject fault; 0 or the first error (reported). */
static int inject(struct run *r)
{
	for (uint32_t i = 0; i < r->n_inj; i++) {
		int ret = np_card_inject(np_ctx_card(r->ctx, r->inj[i].card),
					 r->inj[i].fault);

		if (ret) {
			npt_err(r->t, "inject '%s' into card %u: %s",
				r->inj[i].fault, r->inj[i].card,
				strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static void print_tokens(const struct np_tok *tok, const int32_t *ids, size_t n,
			 FILE *f)
{
	char buf[4096];
	size_t len;

	if (np_tok_decode(tok, ids, n, buf, sizeof(buf), &len) == 0)
		fwrite(buf, 1, len, f);
}

static int on_token(void *opaque, const struct np_token_event *e)
{
	struct run *r = opaque;

	if (r->n_out[e->request] < r->cap)
		r->out[e->request][r->n_out[e->request]++] = e->token;
	if (r->n_inj && ++r->delivered == r->after) {
		r->inj_err = inject(r);
		if (r->inj_err)
			return 1;
	}
	if (!r->t->json && !r->quiet && e->request == r->follow) {
		/* decode one token at a time: a SentencePiece piece carries
		 * its own leading space */
		print_tokens(r->tok, &e->token, 1, stdout);
		fflush(stdout);
	}
	return 0;
}

static void on_recover(void *opaque, const struct np_recover_event *ev)
{
	struct run *r = opaque;
	struct np_card_info spare;

	if (r->n_ev < RUN_MAX_EVENTS)
		r->ev[r->n_ev++] = *ev;
	if (r->t->json)
		return;
	if (!r->quiet)
		printf("\n");
	fprintf(stderr, "nptool: recovery %u: ", ev->attempt);
	if (ev->card >= 0)
		fprintf(stderr, "card %d %s", ev->card, ev->fault);
	else
		fprintf(stderr, "%s, no card reported a fault", ev->fault);
	fprintf(stderr,
		", detected in %.1f ms, recovered in %.1f ms, %llu tokens "
		"replayed for %u requests",
		ev->detect_ns / 1e6, ev->recover_ns / 1e6,
		(unsigned long long)ev->replayed_tokens, ev->requests);
	if (ev->spare >= 0 &&
	    np_card_info(np_ctx_card(r->ctx, (unsigned int)ev->spare),
			 &spare) == 0)
		fprintf(stderr, "; card %s took its image", spare.name);
	fprintf(stderr, "\n");
}

static void report_recoveries(struct run *r)
{
	struct npt_json *j = r->t->j;

	npt_json_key(j, "recoveries");
	npt_json_arr_open(j);
	for (uint32_t i = 0; i < r->n_ev; i++) {
		const struct np_recover_event *ev = &r->ev[i];

		npt_json_obj_open(j);
		if (ev->card >= 0)
			npt_json_kuint(j, "card", (uint64_t)ev->card);
		else
			npt_json_knull(j, "card");
		npt_json_kstr(j, "fault", ev->fault);
		npt_json_kstr(j, "error", strerror(-ev->error));
		npt_json_kdouble(j, "detect_ms", ev->detect_ns / 1e6);
		npt_json_kdouble(j, "recover_ms", ev->recover_ns / 1e6);
		npt_json_kuint(j, "requests", ev->requests);
		npt_json_kuint(j, "replayed_tokens", ev->replayed_tokens);
		if (ev->spare >= 0)
			npt_json_kuint(j, "spare", (uint64_t)ev->spare);
		npt_json_obj_close(j);
	}
	npt_json_arr_close(j);
}

static void on_progress(void *opaque, enum np_load_stage stage, uint64_t done,
			uint64_t total)
{
	struct run *r = opaque;

	if (stage != NP_LOAD_CARDS)
		return;
	if (!r->bar_on) {
		npt_progress_begin(r->t, &r->bar, "loading cards", total);
		r->bar_on = true;
	}
	npt_progress_update(&r->bar, done);
}

/* Split text into prompts: one per non-empty line, or with first_sentence
 * only each line's first sentence. Modifies text. */
static size_t split_prompts(char *text, bool first_sentence, char **p,
			    size_t max)
{
	size_t n = 0;

	for (char *s = strtok(text, "\n"); s && n < max;
	     s = strtok(NULL, "\n")) {
		while (*s == ' ' || *s == '\t' || *s == '\r')
			s++;
		if (!*s)
			continue;
		if (first_sentence) {
			char *end = strpbrk(s, ".!?");

			if (end && end - s < RUN_PROMPT_BYTES)
				end[1] = 0;
			else if (strlen(s) > RUN_PROMPT_BYTES)
				s[RUN_PROMPT_BYTES] = 0;
		}
		p[n++] = s;
	}
	return n;
}

static const char *stop_name(enum np_stop_reason s)
{
	switch (s) {
	case NP_STOP_TOKEN:
		return "stop token";
	case NP_STOP_MAX_TOKENS:
		return "max tokens";
	case NP_STOP_LENGTH:
		return "context full";
	case NP_STOP_CALLER:
		return "stopped";
	default:
		return "-";
	}
}

static double per_token_ms(const struct np_request_stats *s)
{
	return s->tokens > 1 ? (double)(s->last_ns - s->first_ns) /
				       (s->tokens - 1) / 1e6 :
			       0;
}

/* Utilization, hops and credit stalls per card (np_session_run's). */
static void report_cards(const struct np_pipeline *p,
			 const struct np_session_stats *st)
{
	printf("utilization  %.0f %% (cards busy, mean), %.1f frames in "
	       "flight\n",
	       st->utilization * 100, st->avg_in_flight);
	printf("per card    ");
	for (uint32_t c = 0; c < np_pipeline_cards(p); c++)
		printf(" %.0f", st->card[c].busy * 100);
	printf(" %%\n");
	printf("hop (us)    ");
	for (uint32_t c = 0; c < np_pipeline_cards(p); c++)
		if (st->card[c].hop_frames)
			printf(" %.1f", st->card[c].hop_mean_ns / 1e3);
		else
			printf(" -");
	printf(" (mean per forward, card counters)\n");
	printf("hop max (us)");
	for (uint32_t c = 0; c < np_pipeline_cards(p); c++)
		if (st->card[c].hop_frames)
			printf(" %.1f", st->card[c].hop_max_ns / 1e3);
		else
			printf(" -");
	printf("\n");
	printf("credit stalls");
	for (uint32_t c = 0; c < np_pipeline_cards(p); c++)
		printf(" %llu", (unsigned long long)st->card[c].credit_stalls);
	printf(" (waits for a free slot on the next card)\n");
	printf("stalled (ms)");
	for (uint32_t c = 0; c < np_pipeline_cards(p); c++)
		printf(" %.2f", st->card[c].credit_stall_ns / 1e6);
	printf(" (total time of those waits)\n\n");
}

static void report_text(struct run *r, const struct np_pipeline *p,
			const struct np_session_stats *st,
			const struct np_request_stats *rs, char **prompt,
			uint32_t m)
{
	struct npt_table *tb = npt_table_new(6);

	if (!r->quiet) {
		printf("\n");
		for (uint32_t i = 0; i < r->n; i++) {
			if (i == r->follow)
				continue;
			printf("\n[%u] %s", i, prompt[i]);
			print_tokens(r->tok, r->out[i], r->n_out[i], stdout);
			printf("\n");
		}
	}
	printf("\n%u requests, %u micro-batches, %u cards: %llu prompt + %llu "
	       "generated tokens in %.2f s\n",
	       r->n, m, np_pipeline_cards(p),
	       (unsigned long long)st->prompt_tokens,
	       (unsigned long long)st->tokens, st->wall_ns / 1e9);
	printf("throughput   %.1f tokens/s\n", st->tokens_per_s);
	if (r->recover)
		printf("recoveries   %u\n\n", r->n_ev);
	else
		report_cards(p, st);
	if (!tb)
		return;
	npt_table_cell(tb, "REQUEST");
	npt_table_cell(tb, "PROMPT");
	npt_table_cell(tb, "TOKENS");
	npt_table_cell(tb, "FIRST(ms)");
	npt_table_cell(tb, "PER-TOKEN(ms)");
	npt_table_cell(tb, "END");
	for (uint32_t i = 0; i < r->n; i++) {
		npt_table_cell(tb, "%u", i);
		npt_table_cell(tb, "%u", rs[i].prompt_tokens);
		npt_table_cell(tb, "%u", rs[i].tokens);
		npt_table_cell(tb, "%.1f", rs[i].first_ns / 1e6);
		npt_table_cell(tb, "%.2f", per_token_ms(&rs[i]));
		npt_table_cell(tb, "%s", stop_name(rs[i].stop));
	}
	npt_table_print(tb);
	npt_table_free(tb);
}

static void json_cards(struct npt_json *j, const struct np_pipeline *p,
		       const struct np_session_stats *st)
{
	npt_json_kdouble(j, "utilization", st->utilization);
	npt_json_kdouble(j, "frames_in_flight", st->avg_in_flight);
	npt_json_key(j, "card_busy");
	npt_json_arr_open(j);
	for (uint32_t c = 0; c < np_pipeline_cards(p); c++)
		npt_json_double(j, st->card[c].busy);
	npt_json_arr_close(j);
	npt_json_key(j, "hop_latency_us");
	npt_json_arr_open(j);
	for (uint32_t c = 0; c < np_pipeline_cards(p); c++)
		if (st->card[c].hop_frames)
			npt_json_double(j, st->card[c].hop_mean_ns / 1e3);
		else
			npt_json_null(j);
	npt_json_arr_close(j);
	npt_json_key(j, "hop_latency_max_us");
	npt_json_arr_open(j);
	for (uint32_t c = 0; c < np_pipeline_cards(p); c++)
		if (st->card[c].hop_frames)
			npt_json_double(j, st->card[c].hop_max_ns / 1e3);
		else
			npt_json_null(j);
	npt_json_arr_close(j);
	npt_json_key(j, "hops");
	npt_json_arr_open(j);
	for (uint32_t c = 0; c < np_pipeline_cards(p); c++)
		npt_json_uint(j, st->card[c].hop_frames);
	npt_json_arr_close(j);
	npt_json_key(j, "credit_stalls");
	npt_json_arr_open(j);
	for (uint32_t c = 0; c < np_pipeline_cards(p); c++)
		npt_json_uint(j, st->card[c].credit_stalls);
	npt_json_arr_close(j);
	npt_json_key(j, "credit_stall_us");
	npt_json_arr_open(j);
	for (uint32_t c = 0; c < np_pipeline_cards(p); c++)
		npt_json_double(j, st->card[c].credit_stall_ns / 1e3);
	npt_json_arr_close(j);
}

static void report_json(struct run *r, const struct np_pipeline *p,
			const struct np_session_stats *st,
			const struct np_request_stats *rs, char **prompt,
			uint32_t m)
{
	struct npt_json *j = r->t->j;
	char buf[8192];
	size_t len;

	npt_json_kuint(j, "cards", np_pipeline_cards(p));
	npt_json_kuint(j, "requests", r->n);
	npt_json_kuint(j, "micro_batches", m);
	npt_json_kuint(j, "prompt_tokens", st->prompt_tokens);
	npt_json_kuint(j, "tokens", st->tokens);
	npt_json_kdouble(j, "wall_s", st->wall_ns / 1e9);
	npt_json_kdouble(j, "tokens_per_s", st->tokens_per_s);
	if (!r->recover)
		json_cards(j, p, st);
	npt_json_key(j, "results");
	npt_json_arr_open(j);
	for (uint32_t i = 0; i < r->n; i++) {
		npt_json_obj_open(j);
		npt_json_kuint(j, "request", i);
		npt_json_kstr(j, "prompt", prompt[i]);
		if (np_tok_decode(r->tok, r->out[i], r->n_out[i], buf,
				  sizeof(buf) - 1, &len) == 0) {
			buf[len] = 0;
			npt_json_kstr(j, "text", buf);
		}
		npt_json_kuint(j, "prompt_tokens", rs[i].prompt_tokens);
		npt_json_kuint(j, "tokens", rs[i].tokens);
		npt_json_kdouble(j, "first_token_ms", rs[i].first_ns / 1e6);
		npt_json_kdouble(j, "per_token_ms", per_token_ms(&rs[i]));
		npt_json_kstr(j, "end", stop_name(rs[i].stop));
		npt_json_obj_close(j);
	}
	npt_json_arr_close(j);
}

/* The cards: -d/NP_DEVICES, else VFIO cards if any, else 16 emulated. */
static int open_cards(struct npt *t, struct np_ctx **ctx)
{
	const char *env = getenv("NP_DEVICES");

	if ((!env || !*env) && !strcmp(t->spec, "vfio:all")) {
		int ret = np_open("vfio:all", NULL, ctx);

		if (ret == 0)
			return NPT_EXIT_OK;
		/* cards that exist but fail are reported, not replaced */
		if (ret != -ENODEV && ret != -ENOENT && ret != -ENOTSUP)
			return npt_open(t, NULL, ctx);
		t->spec = "emu:16";
		if (!t->json)
			fprintf(stderr,
				"nptool: no np cards bound to VFIO; running on "
				"16 emulated cards (-d selects cards)\n");
	}
	return npt_open(t, NULL, ctx);
}

/* The options that take a number, and where it goes in struct run; the
 * first four also have a short form (RUN_NUM_SHORT). */
#define RUN_NUM 0x100
#define RUN_NUM_SHORT "nMct"
static const struct {
	const char *opt;
	size_t off;
} run_nums[] = {
	{"--requests", offsetof(struct run, o.n)},
	{"--micro-batches", offsetof(struct run, o.m)},
	{"--cards", offsetof(struct run, o.cards)},
	{"--max-tokens", offsetof(struct run, o.max_tokens)},
	{"--max-seq", offsetof(struct run, o.max_seq)},
	{"--top-k", offsetof(struct run, o.sp.top_k)},
	{"--seed", offsetof(struct run, o.seed)},
	{"--follow", offsetof(struct run, follow)},
	{"--inject-after", offsetof(struct run, after)},
};

/* The options into r->o and the fields of r they set. */
static int run_parse(struct run *r, int argc, char **argv)
{
	enum { O_TEMP = 0x200, O_TOPP, O_NOSTOP, O_RECOVER, O_INJECT };
	static const struct option opts[] = {
		{"model", required_argument, NULL, 'm'},
		{"prompt", required_argument, NULL, 'p'},
		{"prompt-file", required_argument, NULL, 'f'},
		{"requests", required_argument, NULL, RUN_NUM + 0},
		{"micro-batches", required_argument, NULL, RUN_NUM + 1},
		{"cards", required_argument, NULL, RUN_NUM + 2},
		{"max-tokens", required_argument, NULL, RUN_NUM + 3},
		{"max-seq", required_argument, NULL, RUN_NUM + 4},
		{"temperature", required_argument, NULL, O_TEMP},
		{"top-k", required_argument, NULL, RUN_NUM + 5},
		{"top-p", required_argument, NULL, O_TOPP},
		{"seed", required_argument, NULL, RUN_NUM + 6},
		{"follow", required_argument, NULL, RUN_NUM + 7},
		{"no-stop", no_argument, NULL, O_NOSTOP},
		{"recover", no_argument, NULL, O_RECOVER},
		{"inject", required_argument, NULL, O_INJECT},
		{"inject-after", required_argument, NULL, RUN_NUM + 8},
		{"quiet", no_argument, NULL, 'q'},
		{0},
	};
	struct npt *t = r->t;
	struct run_opts *o = &r->o;
	const char *sh;
	int c, rc;

	o->model = getenv("NP_MODEL");
	if (!o->model || !*o->model)
		o->model = NPT_DEFAULT_MODEL;
	o->n = NP_DEFAULT_SESSIONS;
	o->m = NP_DEFAULT_MICRO_BATCHES;
	o->max_tokens = 32;
	o->max_seq = 256;
	o->stop_eos = true;
	while ((c = getopt_long(argc, argv, "m:p:f:n:M:c:t:q", opts, NULL)) !=
	       -1) {
		sh = c < RUN_NUM ? strchr(RUN_NUM_SHORT, c) : NULL;
		if (sh)
			c = RUN_NUM + (int)(sh - RUN_NUM_SHORT);
		rc = 0;
		switch (c) {
		case 'm':
			o->model = optarg;
			break;
		case 'p':
			if (o->n_cli == RUN_MAX_PROMPTS)
				return npt_usage(t, "at most %d --prompt",
						 RUN_MAX_PROMPTS);
			o->cli_prompt[o->n_cli++] = optarg;
			break;
		case 'f':
			o->pfile = optarg;
			break;
		case RUN_NUM + 0 ... RUN_NUM + 8:
			rc = npt_parse_u32(
				t, run_nums[c - RUN_NUM].opt, optarg, 0,
				(uint32_t *)((char *)r +
					     run_nums[c - RUN_NUM].off));
			break;
		case O_TEMP:
			rc = npt_parse_float(t, "--temperature", optarg,
					     &o->sp.temperature);
			break;
		case O_TOPP:
			rc = npt_parse_float(t, "--top-p", optarg,
					     &o->sp.top_p);
			break;
		case O_NOSTOP:
			o->stop_eos = false;
			break;
		case O_RECOVER:
			r->recover = true;
			break;
		case O_INJECT:
			if (r->n_inj == RUN_MAX_INJECT)
				return npt_usage(t, "at most %d --inject",
						 RUN_MAX_INJECT);
			rc = npt_parse_inject(
				t, optarg,
				"2:dead or 1:hang:engine=compute,n=1",
				&r->inj[r->n_inj++]);
			break;
		case 'q':
			r->quiet = true;
			break;
		default:
			return npt_usage(t, "run: bad option '%s'",
					 argv[optind - 1]);
		}
		if (rc)
			return rc;
	}
	if (optind < argc)
		return npt_usage(t, "unexpected argument '%s'", argv[optind]);
	if (!o->n || !o->m || o->m > o->n)
		return npt_usage(t,
				 "--requests %u, --micro-batches %u: need 1 <= "
				 "micro-batches <= requests",
				 o->n, o->m);
	if (r->follow >= o->n)
		return npt_usage(t, "--follow %u: requests are 0..%u",
				 r->follow, o->n - 1);
	if (o->sp.top_k > NP_JOB_TOPK_MAX)
		return npt_usage(t, "--top-k %u: at most %u", o->sp.top_k,
				 NP_JOB_TOPK_MAX);
	o->sp.seed = o->seed;
	return NPT_EXIT_OK;
}

/* prompts: --prompt, else --prompt-file lines, else the sample */
static int run_prompts(struct run *r)
{
	const char *pfile = r->o.pfile;
	size_t text_len = 0;
	int ret;

	if (r->o.n_cli) {
		memcpy(r->prompt, r->o.cli_prompt,
		       r->o.n_cli * sizeof(*r->prompt));
		r->n_prompts = r->o.n_cli;
		return NPT_EXIT_OK;
	}
	ret = npt_read_file(pfile ? pfile : NPT_SAMPLE_TEXT, RUN_TEXT_MAX,
			    &r->text, &text_len);
	if (ret) {
		npt_err(r->t, "cannot read prompts from %s: %s",
			pfile ? pfile : NPT_SAMPLE_TEXT, strerror(-ret));
		return pfile ? NPT_EXIT_USAGE : NPT_EXIT_UNAVAIL;
	}
	r->calib = malloc(text_len + 1);
	if (r->calib) {
		memcpy(r->calib, r->text, text_len + 1);
		r->calib_len = text_len;
	}
	r->n_prompts =
		split_prompts(r->text, !pfile, r->prompt, RUN_MAX_PROMPTS);
	if (!r->n_prompts) {
		npt_err(r->t, "%s holds no prompt (one per line)",
			pfile ? pfile : NPT_SAMPLE_TEXT);
		return NPT_EXIT_USAGE;
	}
	return NPT_EXIT_OK;
}

/* --inject names cards of the context, and emulated ones. */
static int check_inject(struct run *r)
{
	for (uint32_t i = 0; i < r->n_inj; i++) {
		struct np_card_info in;

		if (r->inj[i].card >= np_ctx_num_cards(r->ctx))
			return npt_usage(
				r->t, "--inject: no card %u (%u cards)",
				r->inj[i].card, np_ctx_num_cards(r->ctx));
		np_card_info(np_ctx_card(r->ctx, r->inj[i].card), &in);
		if (in.iommu_group >= 0) {
			npt_err(r->t,
				"--inject: card %s is real; inject on the QEMU "
				"monitor instead (qom-set ... inject-fault)",
				in.name);
			return NPT_EXIT_UNAVAIL;
		}
	}
	return NPT_EXIT_OK;
}

static int load(struct run *r)
{
	struct np_pipeline_opts po = {
		.n_cards = r->o.cards,
		.max_sessions = r->o.n,
		.max_seq = r->o.max_seq,
		.calib_text = r->calib,
		.calib_len = r->calib_len,
		.progress = on_progress,
		.progress_opaque = r,
	};
	struct npt *t = r->t;
	int ret;

	if (!t->json && !r->quiet)
		fprintf(stderr, "nptool: loading %s onto %s\n", r->o.model,
			t->spec);
	ret = np_model_load(r->ctx, r->o.model, &po, &r->p);
	if (r->bar_on)
		npt_progress_end(&r->bar);
	if (ret) {
		npt_err(t, "cannot load %s onto %s: %s%s", r->o.model, t->spec,
			strerror(-ret),
			ret == -ENOENT ? " (build the demo model with "
					 "'cmake --build build', or "
					 "pass --model FILE.gguf)" :
					 "");
		return ret == -ENOENT || ret == -EINVAL || ret == -E2BIG ?
			       NPT_EXIT_USAGE :
			       npt_errno_exit(ret);
	}
	return NPT_EXIT_OK;
}

/* One request per prompt (the prompts repeat to fill N), tokenized. */
static int make_requests(struct run *r)
{
	uint32_t n = r->o.n, max_seq = r->o.max_seq;

	r->tok = np_pipeline_tok(r->p);
	r->n = n;
	r->cap = max_seq;
	r->eos = np_tok_eos(r->tok);
	r->req = calloc(n, sizeof(*r->req));
	r->rs = calloc(n, sizeof(*r->rs));
	r->out = calloc(n, sizeof(*r->out));
	r->n_out = calloc(n, sizeof(*r->n_out));
	r->ids = calloc((size_t)n * max_seq, sizeof(*r->ids));
	r->req_prompt = calloc(n, sizeof(*r->req_prompt));
	if (!r->req || !r->rs || !r->out || !r->n_out || !r->ids ||
	    !r->req_prompt) {
		npt_err(r->t, "out of memory for %u requests", n);
		return NPT_EXIT_DEVERR;
	}
	for (uint32_t i = 0; i < n; i++) {
		const char *s = r->prompt[i % r->n_prompts];
		int32_t *id = r->ids + (size_t)i * max_seq;
		struct np_request *q = &r->req[i];
		size_t k = 0, got = 0;

		r->req_prompt[i] = r->prompt[i % r->n_prompts];
		if (np_tok_bos(r->tok) >= 0)
			id[k++] = np_tok_bos(r->tok);
		if (np_tok_encode(r->tok, s, strlen(s), id + k, max_seq - 1 - k,
				  &got)) {
			npt_err(r->t,
				"prompt %u (%zu bytes) does not fit %u tokens; "
				"shorten it or raise --max-seq",
				i, strlen(s), max_seq);
			return NPT_EXIT_USAGE;
		}
		r->out[i] = calloc(max_seq, sizeof(int32_t));
		if (!r->out[i])
			return NPT_EXIT_DEVERR;
		q->prompt = id;
		q->n_prompt = k + got;
		q->max_tokens = r->o.max_tokens;
		q->sampling = r->o.sp;
		q->sampling.seed = r->o.sp.seed + i;
		if (r->o.stop_eos && r->eos >= 0) {
			q->stop = &r->eos;
			q->n_stop = 1;
		}
	}
	return NPT_EXIT_OK;
}

/* The prompts, the cards, the model on them and the requests. */
static int run_setup(struct run *r)
{
	int rc = run_prompts(r);

	if (!rc)
		rc = open_cards(r->t, &r->ctx);
	if (!rc)
		rc = check_inject(r);
	if (!rc)
		rc = load(r);
	if (!rc)
		rc = make_requests(r);
	return rc;
}

/* The session: text streamed, faults injected, recoveries reported. */
static int run_loop(struct run *r)
{
	struct np_session_opts so = {
		.micro_batches = r->o.m, .on_token = on_token, .opaque = r};
	struct np_recover_opts ro = {.on_recover = on_recover, .opaque = r};
	int ret;

	if (!r->t->json && !r->quiet)
		printf("[%u] %s", r->follow, r->req_prompt[r->follow]);
	fflush(stdout);
	r->st.req = r->rs;
	r->st.card = r->cs;
	r->st.n_card = NP_MAX_CARDS;
	ret = r->n_inj && !r->after ? inject(r) : 0;
	if (ret)
		return NPT_EXIT_USAGE;
	ret = r->recover ? np_session_run_recover(r->p, r->req, r->o.n, &so,
						  &ro, &r->st) :
			   np_session_run(r->p, r->req, r->o.n, &so, &r->st);
	if (r->inj_err)
		return NPT_EXIT_USAGE;
	if (ret) {
		npt_err(r->t,
			"the run failed: %s (the cards' messages above say "
			"where)",
			strerror(-ret));
		return npt_errno_exit(ret);
	}
	return NPT_EXIT_OK;
}

static void run_report(struct run *r)
{
	if (r->t->json) {
		report_json(r, r->p, &r->st, r->rs, r->req_prompt, r->o.m);
		if (r->recover)
			report_recoveries(r);
	} else {
		report_text(r, r->p, &r->st, r->rs, r->req_prompt, r->o.m);
	}
}

static void run_free(struct run *r)
{
	if (r->out)
		for (uint32_t i = 0; i < r->o.n; i++)
			free(r->out[i]);
	free(r->out);
	free(r->n_out);
	free(r->ids);
	free(r->req_prompt);
	free(r->req);
	free(r->rs);
	np_pipeline_destroy(r->p);
	np_close(r->ctx);
	free(r->text);
	free(r->calib);
}

int npt_cmd_run(struct npt *t, int argc, char **argv)
{
	struct run r = {.t = t};
	int rc = run_parse(&r, argc, argv);

	if (rc)
		return rc;
	rc = run_setup(&r);
	if (!rc)
		rc = run_loop(&r);
	if (!rc)
		run_report(&r);
	run_free(&r);
	return rc;
}
