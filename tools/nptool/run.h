/* SPDX-License-Identifier: MIT */
/*
 * run: the state of one `nptool run`, shared by its command line and
 * session (cmd_run.c) and its report (run_report.c).
 */
#ifndef NPT_RUN_H
#define NPT_RUN_H

#include <stdio.h>

#include <np/pipeline.h>
#include <np/recover.h>

#include "chat.h"
#include "dev.h"

#define RUN_MAX_PROMPTS 256
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
	uint32_t precision; /* enum np_precision, 0: the default */
	const char *layer_precision; /* --layer-precision, NULL: none */
	bool no_cache; /* --no-cache */
};

/* One run, from its command line to its report. */
struct run {
	struct npt *t;
	struct run_opts o;
	const struct np_tok *tok;
	uint32_t n, follow;
	bool quiet;
	double load_s; /* np_model_load: read, compile, cards loaded */
	struct npt_chat chat;
	/* the prompts of the requests, and the text they came from */
	char **prompt; /* one per request, at least RUN_MAX_PROMPTS */
	size_t n_prompts;
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
	/* the followed request's last token and tokens streamed */
	int32_t prev_token;
	uint32_t n_streamed;
	struct npt_progress bar;
	bool bar_on;
	/* the load stage being reported, since when, whether it ended */
	enum np_load_stage stage;
	double stage_t0;
	bool stage_ended;
	bool load_cached; /* np_pipeline_cached() */
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

/* The text of n token ids, to f. */
void npt_run_print_tokens(const struct np_tok *tok, const int32_t *ids,
			  size_t n, FILE *f);
/* The report of a finished run: text or JSON. */
void npt_run_report(struct run *r);

#endif /* NPT_RUN_H */
