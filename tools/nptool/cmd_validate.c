// SPDX-License-Identifier: MIT
/*
 * validate: diagnostic levels in the manner of DCGM's diagnostics. Each
 * level runs the checks of the one below and more; every check prints one
 * pass/warn/fail/skip line with the reason.
 *
 *   quick   cards open, ID/ABI, state, error counters, telemetry sanity,
 *           1 MiB DMA round trip to SRAM and FB, card->card ring
 *           integrity (each card to the next)
 *   medium  + DMA bandwidth, every card pair, memtest quick (16 MiB),
 *           model run
 *   long    + memtest medium over all of SRAM and FB, reset and verify
 *
 * The model run loads the demo model (or --model) onto the cards through
 * libnp's pipeline, runs two greedy requests and compares every generated
 * token with libnp's integer reference of the same card images: the
 * cards' arithmetic, SRAM, frame buffers and card->card hops all have to
 * be right for the tokens to match.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <np/pipeline.h>

#include "dev.h"
#include "np_abi.h"

#define RT_LEN (1u << 20)
#define MT_QUICK_SIZE (16ull << 20)

enum vlevel { V_QUICK, V_MEDIUM, V_LONG };

struct val {
	struct npt *t;
	struct npt_checks ck;
	struct np_ctx *ctx;
	struct np_buf *b;
	unsigned int n;
};

/*
 * Run one per-card test over every card; one line for the whole check.
 * fn returns 0 pass, 1 fail, 2 warn, or -errno, and writes the card's
 * reason into why.
 */
typedef int (*card_fn)(struct val *v, unsigned int i, char *why, size_t len);

static void per_card(struct val *v, const char *name, card_fn fn,
		     const char *what_passed)
{
	char why[256], first[320] = "";
	unsigned int failed = 0, warned = 0;
	enum npt_result r = NPT_PASS;
	struct npt_progress pg;

	npt_progress_begin(v->t, &pg, name, v->n);
	for (unsigned int i = 0; i < v->n; i++) {
		int rc;

		npt_progress_update(&pg, i);

		why[0] = '\0';
		rc = fn(v, i, why, sizeof(why));
		if (rc < 0 && !why[0])
			snprintf(why, sizeof(why), "%s", strerror(-rc));
		if (rc == 0)
			continue;
		if (rc == 2) {
			warned++;
		} else {
			failed++;
			r = NPT_FAIL;
		}
		if (!first[0] || (rc != 2 && failed == 1))
			snprintf(first, sizeof(first), "card %u (%s): %s", i,
				 np_card_name(np_ctx_card(v->ctx, i)), why);
	}
	npt_progress_end(&pg);
	if (r == NPT_PASS && warned)
		r = NPT_WARN;
	if (r == NPT_PASS)
		npt_check(&v->ck, r, name, NULL, "%u/%u cards %s", v->n, v->n,
			  what_passed);
	else
		npt_check(&v->ck, r, name, NULL, "%u/%u cards %s; %s",
			  failed + warned, v->n,
			  failed ? "failed" : "with warnings", first);
}

static int reg(struct val *v, unsigned int i, uint32_t off, uint32_t *val)
{
	return np_card_reg_read(np_ctx_card(v->ctx, i), off, val);
}

static int chk_id(struct val *v, unsigned int i, char *why, size_t len)
{
	uint32_t id;
	int rc = reg(v, i, NP_REG_ID, &id);

	if (rc)
		return rc;
	if (NP_ID_GET_MAGIC(id) != NP_ID_MAGIC ||
	    NP_ID_GET_MAJOR(id) != NP_ABI_MAJOR) {
		snprintf(why, len,
			 "ID register %#x, expected magic %#x ABI "
			 "%u.x",
			 id, NP_ID_MAGIC, NP_ABI_MAJOR);
		return 1;
	}
	return 0;
}

static int chk_state(struct val *v, unsigned int i, char *why, size_t len)
{
	uint32_t st;
	int rc = reg(v, i, NP_REG_STATUS, &st);

	if (rc)
		return rc;
	snprintf(why, len, "card is %s (status %#x)%s", npt_state_name(st), st,
		 st & NP_STATUS_FATAL	  ? "; 'nptool reset' the card" :
		 st & NP_STATUS_THROTTLED ? "; check the cooling" :
					    "");
	if ((st & (NP_STATUS_READY | NP_STATUS_FATAL | NP_STATUS_RESETTING)) !=
	    NP_STATUS_READY)
		return 1;
	return st & NP_STATUS_THROTTLED ? 2 : 0;
}

static int chk_counters(struct val *v, unsigned int i, char *why, size_t len)
{
	struct npt_tele tl;
	int rc = npt_tele_regs(np_ctx_card(v->ctx, i), &tl);

	if (rc)
		return rc;
	if (tl.v[NPT_TF_SRAM_UE] || tl.v[NPT_TF_DMA_ERRORS]) {
		snprintf(why, len,
			 "%llu uncorrected SRAM errors, %llu DMA "
			 "errors since the last reset",
			 (unsigned long long)tl.v[NPT_TF_SRAM_UE],
			 (unsigned long long)tl.v[NPT_TF_DMA_ERRORS]);
		return 1;
	}
	if (tl.v[NPT_TF_SRAM_CE]) {
		snprintf(why, len,
			 "%llu corrected SRAM errors since the last "
			 "reset",
			 (unsigned long long)tl.v[NPT_TF_SRAM_CE]);
		return 2;
	}
	return 0;
}

static int chk_telemetry(struct val *v, unsigned int i, char *why, size_t len)
{
	struct npt_tele tl;
	int rc = npt_tele_regs(np_ctx_card(v->ctx, i), &tl);
	double temp, tmax, tcrit;

	if (rc)
		return rc;
	temp = (double)(int32_t)tl.v[NPT_TF_TEMP] / 1000;
	tmax = (double)(int32_t)tl.v[NPT_TF_TEMP_MAX] / 1000;
	tcrit = (double)(int32_t)tl.v[NPT_TF_TEMP_CRIT] / 1000;
	if (!tl.v[NPT_TF_CLOCK] || !tl.v[NPT_TF_POWER] ||
	    !tl.v[NPT_TF_VOLTAGE] || tmax <= 0 || tcrit < tmax) {
		snprintf(why, len,
			 "implausible telemetry: clock %llu MHz, "
			 "power %llu mW, core %llu mV, limits "
			 "%.1f/%.1f C",
			 (unsigned long long)tl.v[NPT_TF_CLOCK],
			 (unsigned long long)tl.v[NPT_TF_POWER],
			 (unsigned long long)tl.v[NPT_TF_VOLTAGE], tmax, tcrit);
		return 1;
	}
	if (temp >= tcrit) {
		snprintf(why, len, "%.1f C at or above the critical %.1f C",
			 temp, tcrit);
		return 1;
	}
	if (temp >= tmax) {
		snprintf(why, len,
			 "%.1f C at or above the throttle point "
			 "%.1f C",
			 temp, tmax);
		return 2;
	}
	return 0;
}

static int chk_dma(struct val *v, unsigned int i, char *why, size_t len)
{
	struct np_card *c = np_ctx_card(v->ctx, i);
	uint64_t bad;

	for (unsigned int m = 0; m < 2; m++) {
		uint64_t ca = m ? NP_CA_FB_BASE : NP_CA_SRAM_BASE;
		int rc = npt_roundtrip(c, v->b, ca, RT_LEN, ca + i, &bad);

		if (rc > 0)
			snprintf(why, len,
				 "data read back from %s differs at "
				 "card address %#llx",
				 m ? "FB" : "SRAM", (unsigned long long)bad);
		else if (rc < 0)
			snprintf(why, len, "%s round trip: %s",
				 m ? "FB" : "SRAM", strerror(-rc));
		if (rc)
			return rc;
	}
	return 0;
}

/* Bandwidth of 16 transfers of 1 MiB in flight each way, per card; the
 * line names the slowest card. No threshold: the figures are reported. */
static void bandwidth(struct val *v)
{
	struct np_xfer_spec s = {
		.engine = -1,
		.buf = v->b,
		.card_addr = NP_CA_SRAM_BASE,
		.len = RT_LEN,
	};
	double min[2] = {-1, -1};
	unsigned int slow[2] = {0, 0};

	for (unsigned int i = 0; i < v->n; i++) {
		for (unsigned int d = 0; d < 2; d++) {
			double secs, bps;
			int rc;

			s.op = d ? NP_XFER_C2H : NP_XFER_H2C;
			rc = npt_xfer_batch(np_ctx_card(v->ctx, i), &s, 16,
					    &secs);
			if (rc) {
				npt_check(&v->ck, NPT_FAIL, "dma-bandwidth",
					  NULL, "card %u %s: %s", i,
					  d ? "C2H" : "H2C", strerror(-rc));
				return;
			}
			bps = 16.0 * RT_LEN / secs;
			if (min[d] < 0 || bps < min[d]) {
				min[d] = bps;
				slow[d] = i;
			}
		}
	}
	npt_check(&v->ck, NPT_PASS, "dma-bandwidth", NULL,
		  "%u cards; slowest H2C %.2f GB/s (card %u), slowest C2H "
		  "%.2f GB/s (card %u)",
		  v->n, min[0] / 1e9, slow[0], min[1] / 1e9, slow[1]);
}

static int chk_memtest(struct val *v, unsigned int i, char *why, size_t len,
		       unsigned int level, uint64_t size)
{
	struct np_card *c = np_ctx_card(v->ctx, i);
	struct np_card_info in;
	uint64_t nbad, first;

	np_card_info(c, &in);
	for (unsigned int m = 0; m < 2; m++) {
		uint64_t full = m ? in.fb_size : in.sram_size;
		uint64_t base = m ? NP_CA_FB_BASE : NP_CA_SRAM_BASE;
		int rc = npt_memtest_region(c, v->b, base,
					    size && size < full ? size : full,
					    level, &nbad, &first);

		if (rc > 0)
			snprintf(why, len,
				 "%s: %llu bad words, first at card "
				 "address %#llx; 'nptool memtest' "
				 "lists them",
				 m ? "FB" : "SRAM", (unsigned long long)nbad,
				 (unsigned long long)first);
		else if (rc < 0)
			snprintf(why, len, "%s: %s", m ? "FB" : "SRAM",
				 strerror(-rc));
		if (rc)
			return rc;
	}
	return 0;
}

static int chk_memtest_quick(struct val *v, unsigned int i, char *why,
			     size_t len)
{
	return chk_memtest(v, i, why, len, 0, MT_QUICK_SIZE);
}

static int chk_memtest_full(struct val *v, unsigned int i, char *why,
			    size_t len)
{
	return chk_memtest(v, i, why, len, 1, 0);
}

static int chk_reset(struct val *v, unsigned int i, char *why, size_t len)
{
	double ms;

	return npt_reset_verify(np_ctx_card(v->ctx, i), v->b, &ms, why, len);
}

/* Card pairs: with all, every ordered pair; else each card to the next. */
static void p2p(struct val *v, bool all)
{
	unsigned int pairs = 0, bad = 0, bounce = 0;
	char first[256] = "";
	uint64_t addr = 0;
	struct npt_progress pg;

	if (v->n < 2) {
		npt_check(&v->ck, NPT_SKIP, all ? "p2p-all" : "p2p-ring", NULL,
			  "one card: no pair to test");
		return;
	}
	npt_progress_begin(v->t, &pg, all ? "p2p-all" : "p2p-ring", v->n);
	for (unsigned int s = 0; s < v->n; s++) {
		struct np_card *src = np_ctx_card(v->ctx, s);
		int rc;

		npt_progress_update(&pg, s);
		npt_fill(np_buf_ptr(v->b), RT_LEN, 0xb0b0u + s);
		rc = npt_h2c(src, v->b, 0, NP_CA_SRAM_BASE, RT_LEN);
		for (unsigned int d = 0; d < v->n; d++) {
			struct np_card *dst = np_ctx_card(v->ctx, d);
			double bps;
			int err = rc;

			if (d == s || (!all && d != (s + 1) % v->n))
				continue;
			if (!err)
				err = npt_p2p_pair(src, dst, v->b, RT_LEN, 1,
						   &bps, &addr);
			pairs++;
			bounce += np_card_p2p_mode(src, dst) == NP_P2P_BOUNCE;
			if (!err)
				continue;
			bad++;
			if (first[0])
				continue;
			if (err > 0)
				snprintf(first, sizeof(first),
					 "card %u -> card %u: data differs at "
					 "card address %#llx",
					 s, d, (unsigned long long)addr);
			else
				snprintf(first, sizeof(first),
					 "card %u -> card %u: %s", s, d,
					 strerror(-err));
		}
	}
	npt_progress_end(&pg);
	if (bad)
		npt_check(&v->ck, NPT_FAIL, all ? "p2p-all" : "p2p-ring", NULL,
			  "%u/%u pairs failed; %s", bad, pairs, first);
	else
		npt_check(&v->ck, bounce ? NPT_WARN : NPT_PASS,
			  all ? "p2p-all" : "p2p-ring", NULL,
			  "%u/%u pairs intact, %u through host bounce%s", pairs,
			  pairs, bounce,
			  bounce ? " (no direct card->card path)" : "");
}

#define MR_REQUESTS 2
#define MR_TOKENS 4
#define MR_MAX_SEQ 64

struct mr {
	int32_t out[MR_REQUESTS][MR_TOKENS];
	uint32_t n_out[MR_REQUESTS];
};

static int mr_token(void *opaque, const struct np_token_event *e)
{
	struct mr *m = opaque;

	if (e->request < MR_REQUESTS && m->n_out[e->request] < MR_TOKENS)
		m->out[e->request][m->n_out[e->request]++] = e->token;
	return 0;
}

/* Greedy continuation of prompt by the integer reference; 0 when it
 * matches the cards' tokens, 1 with *at set to the first that differs. */
static int mr_reference(struct np_ref_int *ri, uint32_t slot,
			const int32_t *prompt, size_t n_prompt,
			const int32_t *cards, uint32_t n, uint32_t vocab,
			int32_t *logits, uint32_t *at, int32_t *want)
{
	uint32_t pos = 0;
	int rc;

	for (size_t i = 0; i < n_prompt; i++) {
		rc = np_ref_int_step(ri, slot, pos++, prompt[i], logits);
		if (rc)
			return rc;
	}
	for (uint32_t k = 0; k < n; k++) {
		uint32_t best = 0;

		for (uint32_t v = 1; v < vocab; v++)
			best = logits[v] > logits[best] ? v : best;
		if ((int32_t)best != cards[k]) {
			*at = k;
			*want = (int32_t)best;
			return 1;
		}
		rc = np_ref_int_step(ri, slot, pos++, cards[k], logits);
		if (rc)
			return rc;
	}
	return 0;
}

/* One model-run check: the loaded model, its requests and their tokens. */
struct mrun {
	struct np_pipeline *p;
	int32_t ids[MR_REQUESTS][MR_MAX_SEQ];
	struct np_request req[MR_REQUESTS];
	struct np_session_stats st;
	struct mr m;
};

/* The prompts, tokenized into requests. 0 or -errno. */
static int mr_requests(struct mrun *r)
{
	static const char *const prompts[MR_REQUESTS] = {
		"The cards pass tensors along the pipeline.",
		"Once upon a time",
	};
	const struct np_tok *tok = np_pipeline_tok(r->p);

	for (uint32_t q = 0; q < MR_REQUESTS; q++) {
		size_t k = 0, got = 0;
		int rc;

		if (np_tok_bos(tok) >= 0)
			r->ids[q][k++] = np_tok_bos(tok);
		rc = np_tok_encode(tok, prompts[q], strlen(prompts[q]),
				   r->ids[q] + k, MR_MAX_SEQ - MR_TOKENS - k,
				   &got);
		if (rc)
			return rc;
		r->req[q] = (struct np_request){
			.prompt = r->ids[q],
			.n_prompt = k + got,
			.max_tokens = MR_TOKENS,
		};
	}
	return 0;
}

/* Every request's tokens against the integer reference: 0 when they
 * match, 1 after writing the failed check, or -errno. */
static int mr_compare(struct val *v, struct mrun *r)
{
	uint32_t vocab = np_tok_n_vocab(np_pipeline_tok(r->p));
	int32_t *logits = malloc(vocab * sizeof(*logits));
	struct np_ref_int *ri = NULL;
	int rc = logits ? np_ref_int_create(np_pipeline_compiled(r->p), &ri) :
			  -ENOMEM;

	for (uint32_t q = 0; !rc && q < MR_REQUESTS; q++) {
		uint32_t at = 0;
		int32_t want = 0;

		if (r->m.n_out[q] != MR_TOKENS) {
			npt_check(&v->ck, NPT_FAIL, "model-run", NULL,
				  "request %u produced %u of %u tokens", q,
				  r->m.n_out[q], MR_TOKENS);
			rc = 1;
			break;
		}
		rc = mr_reference(ri, q, r->req[q].prompt, r->req[q].n_prompt,
				  r->m.out[q], MR_TOKENS, vocab, logits, &at,
				  &want);
		if (rc == 1)
			npt_check(&v->ck, NPT_FAIL, "model-run", NULL,
				  "request %u token %u: the cards produced %d, "
				  "the integer reference %d",
				  q, at, r->m.out[q][at], want);
	}
	np_ref_int_destroy(ri);
	free(logits);
	return rc;
}

static void model_run(struct val *v, const char *path)
{
	struct np_pipeline_opts po = {
		.max_sessions = MR_REQUESTS,
		.max_seq = MR_MAX_SEQ,
	};
	struct np_session_opts so = {.micro_batches = MR_REQUESTS};
	struct mrun r = {0};
	int rc;

	if (v->n < 2) {
		npt_check(&v->ck, NPT_SKIP, "model-run", NULL,
			  "the pipeline needs at least 2 cards, '%s' has 1",
			  v->t->spec);
		return;
	}
	rc = np_model_load(v->ctx, path, &po, &r.p);
	if (rc) {
		npt_check(&v->ck, NPT_FAIL, "model-run",
			  rc == -ENOENT ? "give a llama GGUF with --model" :
					  NULL,
			  "cannot load %s onto the cards: %s", path,
			  strerror(-rc));
		return;
	}
	rc = mr_requests(&r);
	so.on_token = mr_token;
	so.opaque = &r.m;
	if (!rc)
		rc = np_session_run(r.p, r.req, MR_REQUESTS, &so, &r.st);
	if (!rc)
		rc = mr_compare(v, &r);
	if (rc < 0)
		npt_check(&v->ck, NPT_FAIL, "model-run", NULL,
			  "model run on %u cards failed: %s",
			  np_pipeline_cards(r.p), strerror(-rc));
	else if (!rc)
		npt_check(&v->ck, NPT_PASS, "model-run", NULL,
			  "%u requests x %u greedy tokens on %u cards match "
			  "the integer reference (%.1f tokens/s, cards %.0f%% "
			  "busy)",
			  MR_REQUESTS, MR_TOKENS, np_pipeline_cards(r.p),
			  r.st.tokens_per_s, r.st.utilization * 100);
	np_pipeline_destroy(r.p);
}

static const char *const level_name[] = {"quick", "medium", "long"};

/* --model and the level. Returns an exit code. */
static int validate_parse(struct npt *t, int argc, char **argv,
			  const char **model, enum vlevel *lv)
{
	static const struct option opts[] = {
		{"model", required_argument, NULL, 'm'},
		{0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "m:", opts, NULL)) != -1) {
		if (c != 'm')
			return npt_usage(t, "validate: bad option");
		*model = optarg;
	}
	if (argc - optind > 1)
		return npt_usage(t, "validate: unexpected argument '%s'",
				 argv[optind + 1]);
	if (optind < argc) {
		for (*lv = V_QUICK; *lv <= V_LONG; (*lv)++)
			if (!strcmp(argv[optind], level_name[*lv]))
				break;
		if (*lv > V_LONG)
			return npt_usage(t,
					 "validate: level '%s' is not "
					 "quick, medium or long",
					 argv[optind]);
	}
	return NPT_EXIT_OK;
}

/* The "open" check: the cards and a DMA buffer. Returns an exit code;
 * on failure the checks are closed. */
static int validate_open(struct val *v)
{
	struct npt *t = v->t;
	int rc = npt_open(t, NULL, &v->ctx);

	if (rc) {
		npt_check(&v->ck, NPT_FAIL, "open", "nptool doctor",
			  "cannot open '%s'; see the message above", t->spec);
		npt_checks_end(&v->ck);
		return rc;
	}
	v->n = np_ctx_num_cards(v->ctx);
	rc = np_buf_alloc(v->ctx, NPT_MEMTEST_BUF, &v->b);
	if (rc) {
		npt_check(&v->ck, NPT_FAIL, "open", "nptool doctor",
			  "cannot allocate an %u MiB DMA buffer: %s",
			  NPT_MEMTEST_BUF >> 20, strerror(-rc));
		npt_checks_end(&v->ck);
		np_close(v->ctx);
		return npt_errno_exit(rc);
	}
	npt_check(&v->ck, NPT_PASS, "open", NULL, "%u cards opened (%s)", v->n,
		  np_ctx_backend(v->ctx));
	return NPT_EXIT_OK;
}

int npt_cmd_validate(struct npt *t, int argc, char **argv)
{
	const char *model = NPT_DEFAULT_MODEL;
	enum vlevel lv = V_QUICK;
	struct val v = {.t = t};
	int rc = validate_parse(t, argc, argv, &model, &lv);

	if (rc)
		return rc;
	if (t->j)
		npt_json_kstr(t->j, "level", level_name[lv]);
	npt_checks_begin(t, &v.ck);
	rc = validate_open(&v);
	if (rc)
		return rc;
	per_card(&v, "id-abi", chk_id, "answer with the np ID and ABI 1.x");
	per_card(&v, "state", chk_state, "ready");
	per_card(&v, "error-counters", chk_counters,
		 "without SRAM or DMA errors");
	per_card(&v, "telemetry", chk_telemetry,
		 "with plausible clock, power, voltage and temperature");
	per_card(&v, "dma-integrity", chk_dma,
		 "move 1 MiB to SRAM and FB and back intact");
	p2p(&v, false);
	if (lv >= V_MEDIUM) {
		bandwidth(&v);
		p2p(&v, true);
		per_card(&v, "memtest-quick", chk_memtest_quick,
			 "pass walking ones and address-in-address "
			 "(16 MiB of SRAM and FB)");
	}
	if (lv >= V_LONG) {
		per_card(&v, "memtest-full", chk_memtest_full,
			 "pass all patterns over all of SRAM and FB");
		per_card(&v, "reset", chk_reset, "reset and came back healthy");
	}
	if (lv >= V_MEDIUM)
		model_run(&v, model);
	else
		npt_check(&v.ck, NPT_SKIP, "model-run", NULL,
			  "runs at the medium and long levels (loading a "
			  "model takes seconds to minutes)");
	rc = npt_checks_end(&v.ck);
	np_buf_free(v.b);
	np_close(v.ctx);
	return rc;
}
