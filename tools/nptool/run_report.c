// SPDX-License-Identifier: MIT
/*
 * run's report: the other requests' text, tokens/s, per-request latency
 * and per-card utilization, hops and credit stalls; or the same as the
 * members of the JSON document (docs/nptool.md, "run").
 */
#include <stdio.h>
#include <string.h>

#include "run.h"

void npt_run_print_tokens(const struct np_tok *tok, const int32_t *ids,
			  size_t n, FILE *f)
{
	char buf[4096];
	size_t len;

	if (np_tok_decode(tok, ids, n, buf, sizeof(buf), &len) == 0)
		npt_print_text(f, buf, len);
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

/* Prompt tokens per second of the prefill: all prompts, over the time
 * until the last request had its first token (every prompt prefilled). */
static double prefill_rate(const struct np_session_stats *st,
			   const struct np_request_stats *rs, uint32_t n)
{
	uint64_t end = 0;

	for (uint32_t i = 0; i < n; i++)
		if (rs[i].tokens && rs[i].first_ns > end)
			end = rs[i].first_ns;
	return end ? (double)st->prompt_tokens / (end / 1e9) : 0;
}

/* Generated tokens per second of the decode: the tokens after each
 * request's first, over the span from the earliest first token to the
 * latest last one. */
static double decode_rate(const struct np_request_stats *rs, uint32_t n)
{
	uint64_t begin = UINT64_MAX, end = 0, tokens = 0;

	for (uint32_t i = 0; i < n; i++) {
		if (!rs[i].tokens)
			continue;
		tokens += rs[i].tokens - 1;
		if (rs[i].first_ns < begin)
			begin = rs[i].first_ns;
		if (rs[i].last_ns > end)
			end = rs[i].last_ns;
	}
	return tokens && end > begin ? (double)tokens / ((end - begin) / 1e9) :
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
			printf("\n[%u] prompt: %s\n[%u] output: ", i, prompt[i],
			       i);
			npt_run_print_tokens(r->tok, r->out[i], r->n_out[i],
					     stdout);
			printf("\n");
		}
	}
	printf("\n%u requests, %u micro-batches, %u cards: %llu prompt + %llu "
	       "generated tokens in %.2f s\n",
	       r->n, m, np_pipeline_cards(p),
	       (unsigned long long)st->prompt_tokens,
	       (unsigned long long)st->tokens, st->wall_ns / 1e9);
	printf("throughput   %.1f tokens/s\n", st->tokens_per_s);
	printf("load         %.2f s (%s, cards loaded)\n", r->load_s,
	       r->load_cached ? "model read, images from the cache" :
				"model read and compiled");
	printf("prefill      %.1f prompt tokens/s\n",
	       prefill_rate(st, rs, r->n));
	printf("decode       %.1f generated tokens/s\n", decode_rate(rs, r->n));
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
	npt_json_kdouble(j, "load_s", r->load_s);
	npt_json_kbool(j, "load_cached", r->load_cached);
	npt_json_kdouble(j, "prefill_tokens_per_s", prefill_rate(st, rs, r->n));
	npt_json_kdouble(j, "decode_tokens_per_s", decode_rate(rs, r->n));
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

void npt_run_report(struct run *r)
{
	if (r->t->json) {
		report_json(r, r->p, &r->st, r->rs, r->prompt, r->o.m);
		if (r->recover)
			report_recoveries(r);
	} else {
		report_text(r, r->p, &r->st, r->rs, r->prompt, r->o.m);
	}
}
