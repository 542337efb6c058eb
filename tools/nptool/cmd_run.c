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
#include <float.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "np_abi.h"
#include "run.h"

#define RUN_PROMPT_BYTES 160 /* of a default prompt: its first sentence */
#define RUN_TEXT_MAX (64u << 20) /* a prompts file */

/* Arm every --inject fault; 0 or the first error (reported). */
static int inject(struct run *r)
{
	for (uint32_t i = 0; i < r->n_inj; i++) {
		int ret = np_card_inject(np_ctx_card(r->ctx, r->inj[i].idx),
					 r->inj[i].fault);

		if (ret) {
			npt_err(r->t, "inject '%s' into card %s: %s",
				r->inj[i].fault, r->inj[i].card,
				strerror(-ret));
			return ret;
		}
	}
	return 0;
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
		/* a token decoded alone loses its SentencePiece leading
		 * space (the first token's, which llama.cpp strips too):
		 * decode it after the one before and print the difference */
		int32_t pair[2] = {r->prev_token, e->token};
		char a[512], b[1024];
		size_t la = 0, lb = 0;
		bool first = !r->n_streamed++;

		if ((first ||
		     !np_tok_decode(r->tok, pair, 1, a, sizeof(a), &la)) &&
		    !np_tok_decode(r->tok, pair + first, 2 - first, b,
				   sizeof(b), &lb) &&
		    lb <= sizeof(b) && lb >= la)
			npt_print_text(stdout, b + la, lb - la);
		r->prev_token = e->token;
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
	/* the streamed text goes on unchanged on stdout (byte for byte
	 * that of a fault-free run); on a terminal the line starts on its
	 * own */
	fprintf(stderr, "%snptool: recovery %u: ", r->quiet ? "" : "\n",
		ev->attempt);
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

/* What np_model_load's stages are called on stderr; bytes: done counts
 * bytes. */
static const struct {
	const char *label;
	bool bytes;
} load_stages[] = {
	[NP_LOAD_MODEL] = {"model parsed and hashed", false},
	[NP_LOAD_CALIBRATE] = {"calibrated", false},
	[NP_LOAD_COMPILE] = {"card images rendered", false},
	[NP_LOAD_CACHE_VERIFY] = {"cached images verified", true},
	[NP_LOAD_CACHE_WRITE] = {"image cache written", true},
	[NP_LOAD_CARDS] = {"cards loaded", true},
};

/* Each load stage: a bar while it runs (on a terminal), a line with its
 * time when it ends (without -q and --json). */
static void on_progress(void *opaque, enum np_load_stage stage, uint64_t done,
			uint64_t total)
{
	struct run *r = opaque;
	const char *label =
		(unsigned int)stage <
				sizeof(load_stages) / sizeof(load_stages[0]) ?
			load_stages[stage].label :
			NULL;

	if (!label)
		return;
	if (stage != r->stage) {
		if (r->bar_on)
			npt_progress_end(&r->bar);
		npt_progress_begin(r->t, &r->bar, label, total);
		r->bar_on = true;
		r->stage = stage;
		r->stage_t0 = npt_now();
		r->stage_ended = false;
	}
	npt_progress_update(&r->bar, done);
	if (done < total || r->stage_ended)
		return;
	r->stage_ended = true;
	npt_progress_end(&r->bar);
	r->bar_on = false;
	if (r->t->json || r->quiet)
		return;
	if (load_stages[stage].bytes)
		fprintf(stderr, "nptool: %-24s %7.1f MiB %7.2f s\n", label,
			total / 1048576.0, npt_now() - r->stage_t0);
	else
		fprintf(stderr, "nptool: %-24s %11s %7.2f s\n", label, "",
			npt_now() - r->stage_t0);
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

const char npt_run_options[] =
	"  -m, --model GGUF       llama GGUF to run (default $NP_MODEL, else "
	"the demo model)\n"
	"  -p, --prompt TEXT      a prompt (repeatable; requests cycle through "
	"them)\n"
	"  -f, --prompt-file FILE one prompt per line ('-': standard input)\n"
	"  -n, --requests N       requests run at once (default 28)\n"
	"  -M, --micro-batches M  micro-batches in the pipeline, 1..N "
	"(default 14)\n"
	"  -c, --cards CARDS      cards the model is spread over (default: "
	"all opened)\n"
	"  -t, --max-tokens T     tokens to generate per request (default 32; "
	"0: until stop or --max-seq)\n"
	"      --max-seq N        context per request, prompt + generated, at "
	"least 2 (default 256)\n"
	"      --precision MODE   the cards' arithmetic: a8c8w4 (default), "
	"w4a4, w8a8, w2a8\n"
	"      --layer-precision SPEC  per-layer modes, e.g. "
	"'0-1:w8a8,31:w8a8' "
	"(FIRST[-LAST]:MODE,...)\n"
	"      --temperature T    0 (default): greedy; else softmax(logit / "
	"T)\n"
	"      --top-k K          sample among the K most likely (0: all the "
	"cards return)\n"
	"      --top-p P          smallest set of probability mass >= P, 0..1 "
	"(0 or 1: no cut)\n"
	"      --seed S           sampling seed of request 0 (request i: S + "
	"i)\n"
	"      --follow R         the request whose text streams (default 0)\n"
	"      --no-stop          do not stop at the end-of-sequence token\n"
	"      --no-cache         compile the model, neither reading nor "
	"writing the image cache ($NP_CACHE_DIR)\n"
	"  -q, --quiet            no text, only the statistics\n"
	"      --recover          survive card failures: reset, reload, "
	"resume\n"
	"      --inject CARD:FAULT  a fault into emulated card CARD (index, "
	"name or serial; repeatable; docs/hardware.md)\n"
	"      --inject-after N   inject once N tokens were delivered "
	"(default 0: before the run)\n"
	"      --chat             each prompt a user message in the model's "
	"chat template\n"
	"      --chat-template NAME  the chat family (implies --chat): "
	"chatml, llama2, llama3...\n"
	"      --special          control tokens written in a prompt are "
	"those tokens\n";

/* The options that take a number, and where it goes in struct run; the
 * first four also have a short form (RUN_NUM_SHORT). */
#define RUN_NUM 0x100
#define RUN_NUM_SHORT "nMct"
static const struct {
	const char *opt;
	size_t off;
	uint32_t min;
} run_nums[] = {
	{"--requests", offsetof(struct run, o.n), 1},
	{"--micro-batches", offsetof(struct run, o.m), 1},
	{"--cards", offsetof(struct run, o.cards), 0},
	{"--max-tokens", offsetof(struct run, o.max_tokens), 0},
	/* a prompt token (the BOS at least) and one to generate */
	{"--max-seq", offsetof(struct run, o.max_seq), 2},
	{"--top-k", offsetof(struct run, o.sp.top_k), 0},
	{"--seed", offsetof(struct run, o.seed), 0},
	{"--follow", offsetof(struct run, follow), 0},
	{"--inject-after", offsetof(struct run, after), 0},
};

/* The options into r->o and the fields of r they set. */
static int run_parse(struct run *r, int argc, char **argv)
{
	enum {
		O_TEMP = 0x200,
		O_TOPP,
		O_NOSTOP,
		O_NOCACHE,
		O_RECOVER,
		O_INJECT,
		O_PREC,
		O_LPREC,
		O_CHAT
	};
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
		{"precision", required_argument, NULL, O_PREC},
		{"layer-precision", required_argument, NULL, O_LPREC},
		{"no-cache", no_argument, NULL, O_NOCACHE},
		{"recover", no_argument, NULL, O_RECOVER},
		{"inject", required_argument, NULL, O_INJECT},
		{"inject-after", required_argument, NULL, RUN_NUM + 8},
		{"chat", no_argument, NULL, O_CHAT + NPT_CHAT_OPT_CHAT},
		{"chat-template", required_argument, NULL,
		 O_CHAT + NPT_CHAT_OPT_TEMPLATE},
		{"special", no_argument, NULL, O_CHAT + NPT_CHAT_OPT_SPECIAL},
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
				t, run_nums[c - RUN_NUM].opt, optarg,
				run_nums[c - RUN_NUM].min,
				(uint32_t *)((char *)r +
					     run_nums[c - RUN_NUM].off));
			break;
		case O_TEMP:
			rc = npt_parse_float(t, "--temperature", optarg, 0,
					     FLT_MAX, &o->sp.temperature);
			break;
		case O_TOPP:
			rc = npt_parse_float(t, "--top-p", optarg, 0, 1,
					     &o->sp.top_p);
			break;
		case O_NOSTOP:
			o->stop_eos = false;
			break;
		case O_PREC: {
			enum np_precision pr;

			if (np_precision_parse(optarg, &pr))
				return npt_usage(t,
						 "--precision '%s': modes are "
						 "a8c8w4, w4a4, w8a8, w2a8",
						 optarg);
			o->precision = (uint32_t)pr;
			break;
		}
		case O_LPREC:
			o->layer_precision = optarg;
			break;
		case O_NOCACHE:
			o->no_cache = true;
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
		case O_CHAT ... O_CHAT + NPT_CHAT_OPT_SPECIAL:
			rc = npt_chat_opt(t, &r->chat, c - O_CHAT, optarg);
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

	r->prompt = calloc(r->o.n > RUN_MAX_PROMPTS ? r->o.n : RUN_MAX_PROMPTS,
			   sizeof(*r->prompt));
	if (!r->prompt) {
		npt_err(r->t, "out of memory for %u requests", r->o.n);
		return NPT_EXIT_DEVERR;
	}
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
		return pfile ? npt_file_exit(ret) : NPT_EXIT_UNAVAIL;
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

		int rc = npt_card_find(r->t, r->ctx, "--inject", r->inj[i].card,
				       &r->inj[i].idx);

		if (rc)
			return rc;
		np_card_info(np_ctx_card(r->ctx, r->inj[i].idx), &in);
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
		.precision = r->o.precision,
		.layer_precision = r->o.layer_precision,
		.calib_text = r->calib,
		.calib_len = r->calib_len,
		.progress = on_progress,
		.progress_opaque = r,
		.flags = r->o.no_cache ? NP_LOAD_NO_CACHE : 0,
	};
	struct npt *t = r->t;
	int ret;

	if (!t->json && !r->quiet)
		fprintf(stderr, "nptool: loading %s onto %s\n", r->o.model,
			t->spec);
	r->load_s = npt_now();
	ret = np_model_load(r->ctx, r->o.model, &po, &r->p);
	r->load_s = npt_now() - r->load_s;
	r->load_cached = !ret && np_pipeline_cached(r->p);
	if (r->bar_on)
		npt_progress_end(&r->bar);
	if (ret) {
		npt_err(t, "cannot load %s onto %s: %s%s", r->o.model, t->spec,
			strerror(-ret),
			ret == -ENOENT ?
				" (build the demo model with "
				"'cmake --build build', or "
				"pass --model FILE.gguf)" :
			ret == -ENOTSUP ?
				" (np runs the architectures and "
				"tensor types of docs/model-format.md; "
				"'nptool model info' says why not "
				"this one)" :
			ret == -ERANGE ? " (a number in the model is beyond "
					 "what the cards compute with: a "
					 "weight or norm near the float limit, "
					 "infinite or NaN)" :
					 "");
		/* a model np does not run, or does not fit, is the user's
		 * to change; what remains is the cards' (ENODEV: fewer
		 * cards than -c asks for) */
		return ret == -E2BIG  ? NPT_EXIT_USAGE :
		       ret == -ENODEV ? NPT_EXIT_NODEV :
		       npt_file_exit(ret) == NPT_EXIT_USAGE ?
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
	if (!r->req || !r->rs || !r->out || !r->n_out || !r->ids) {
		npt_err(r->t, "out of memory for %u requests", n);
		return NPT_EXIT_DEVERR;
	}
	for (uint32_t i = 0; i < n; i++) {
		const char *s = r->prompt[i % r->n_prompts];
		int32_t *id = r->ids + (size_t)i * max_seq;
		struct np_request *q = &r->req[i];
		size_t k = 0, got = 0;

		r->prompt[i] = r->prompt[i % r->n_prompts];
		if (np_tok_bos(r->tok) >= 0)
			id[k++] = np_tok_bos(r->tok);
		/* the prompt leaves room for one generated token */
		if (k + 1 >= max_seq ||
		    np_tok_encode_flags(r->tok, s, strlen(s),
					npt_chat_flags(&r->chat), id + k,
					max_seq - 1 - k, &got)) {
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
		rc = npt_chat_render(r->t, &r->chat, r->o.model, r->prompt,
				     r->n_prompts);
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
		printf("[%u] prompt: %s\n[%u] output: ", r->follow,
		       r->prompt[r->follow], r->follow);
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
		/* the cards were there at the start: whatever failed now
		 * (a card removed included) is a card error */
		return ret == -ENOTSUP ? NPT_EXIT_UNAVAIL : NPT_EXIT_DEVERR;
	}
	return NPT_EXIT_OK;
}

/* After a run that succeeded: a fault asked for that never struck, or a
 * card left FATAL that the run did not notice (an uncorrected SRAM error
 * counted with no data touched), is reported, not passed over. */
static int run_after(struct run *r)
{
	int rc = NPT_EXIT_OK;

	if (r->n_inj && r->after && r->delivered < r->after) {
		npt_err(r->t,
			"--inject-after %u: the run delivered %llu tokens, so "
			"the faults were never injected; give fewer tokens",
			r->after, (unsigned long long)r->delivered);
		rc = NPT_EXIT_USAGE;
	}
	for (unsigned int i = 0; i < np_ctx_num_cards(r->ctx); i++) {
		struct np_card *c = np_ctx_card(r->ctx, i);
		uint32_t st, ue = 0;

		/* all ones: a card removed (and replaced) under --recover */
		if (np_card_reg_read(c, NP_REG_STATUS, &st) ||
		    !(st & NP_STATUS_FATAL) || st == UINT32_MAX)
			continue;
		np_card_reg_read(c, NP_REG_SRAM_UE, &ue);
		npt_err(r->t,
			"card %s is fatal after the run (%u uncorrected SRAM "
			"errors) and the run did not notice: its results are "
			"suspect; 'nptool reset' clears the card",
			np_card_name(c), ue);
		rc = NPT_EXIT_DEVERR;
	}
	return rc;
}

static void run_free(struct run *r)
{
	if (r->out)
		for (uint32_t i = 0; i < r->o.n; i++)
			free(r->out[i]);
	free(r->out);
	free(r->n_out);
	free(r->ids);
	free(r->req);
	free(r->rs);
	np_pipeline_destroy(r->p);
	np_close(r->ctx);
	free(r->text);
	free(r->calib);
	free(r->prompt);
	npt_chat_free(&r->chat);
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
	if (!rc) {
		npt_run_report(&r);
		rc = run_after(&r);
	}
	run_free(&r);
	return rc;
}
