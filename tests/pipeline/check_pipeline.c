// SPDX-License-Identifier: MIT
/*
 * The pipeline on emulated cards (NP_DEVICES, default emu:16) against the
 * integer reference: every generated token, and every logit or top-k
 * candidate list the output cards returned, must equal what np_ref_int
 * computes for the same sequences. Shapes: grouped-query attention on one
 * layer per card, and more layers than layer cards; several N and M;
 * every model family's generated GGUF.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "np/model.h"
#include "np/np.h"
#include "np/pipeline.h"
#include "np_abi.h"
#include "test.h"
#include "npk.h"

/* GQA: 4 query heads over 2 KV heads, 3 layers on 3 cards */
static const struct np_model_shape gqa = {3,   64, 4,	 2,    128,
					  512, 64, 1e4f, 1e-5f};
/* 6 layers on 2 layer cards */
static const struct np_model_shape deep = {6,	64, 2,	  2,	64,
					   512, 64, 1e4f, 1e-5f};

/* full 256-column blocks of INT2 weights (dim 256, ffn 512) */
static const struct np_model_shape wide = {3,	256, 4,	   2,	 512,
					   512, 64,  1e4f, 1e-5f};

#define MAX_REQ 28
#define MAX_POS 64
#define VOCAB 512

struct rec_tok {
	int seen;
	int32_t token;
	enum np_stop_reason stop;
	uint32_t n_cand;
	int32_t cv[NP_JOB_TOPK_MAX];
	uint32_t ci[NP_JOB_TOPK_MAX];
	int32_t logits[VOCAB];
};

struct rec {
	struct rec_tok t[MAX_REQ][MAX_POS];
	uint32_t count[MAX_REQ];
	int stop_after; /* callback returns 1 at this many tokens, 0: never */
};

static struct np_ctx *ctx;
static struct np_gguf *gguf;
static struct np_model *model;
static struct np_quant_calib *calib;
static struct np_compiled *comp;
static struct np_pipeline *pipe_;
static struct rec *rc;
static char last_log[512];
/* what build() compiles for: precision and per-layer override */
static enum np_precision build_prec;
static const char *build_layers;

static void log_fn(void *opaque, enum np_log_level level, const char *msg)
{
	(void)opaque;
	if (level <= 3)
		snprintf(last_log, sizeof(last_log), "%s", msg);
}

static void setup(void)
{
	struct np_open_opts o = {.log = {.fn = log_fn}};
	const char *spec = getenv("NP_DEVICES");

	ck_assert_int_eq(np_open(spec && *spec ? spec : "emu:16", &o, &ctx), 0);
	rc = calloc(1, sizeof(*rc));
	ck_assert_ptr_nonnull(rc);
}

static void teardown(void)
{
	np_pipeline_destroy(pipe_);
	np_compiled_destroy(comp);
	np_quant_calib_destroy(calib);
	np_model_destroy(model);
	np_gguf_close(gguf);
	np_close(ctx);
	free(rc);
	build_prec = NP_PREC_DEFAULT;
	build_layers = NULL;
	pipe_ = NULL;
	comp = NULL;
	calib = NULL;
	model = NULL;
	gguf = NULL;
	ctx = NULL;
}

/* Compile a synthetic model of shape s for n_cards cards (2 output). */
static void build(const struct np_model_shape *s, uint32_t n_cards,
		  uint32_t batch, uint32_t frame_tokens)
{
	struct np_compile_opts co = {.n_cards = n_cards,
				     .batch = batch,
				     .max_seq = MAX_POS,
				     .out_cards = 2,
				     .precision = build_prec,
				     .layer_precision = build_layers};
	struct np_pipeline_opts po = {.frame_tokens = frame_tokens};

	ck_assert_uint_ge(np_ctx_num_cards(ctx), n_cards);
	ck_assert_int_eq(np_model_synthetic(s, 1234 + s->n_layers, &model), 0);
	ck_assert_int_eq(np_quant_calib_default(model, &calib), 0);
	ck_assert_int_eq(np_compile(model, calib, &co, NULL, &comp), 0);
	ck_assert_uint_eq(np_compiled_n_cards(comp), n_cards);
	ck_assert_int_eq(np_pipeline_create(ctx, comp, &po, &pipe_), 0);
	ck_assert_uint_eq(np_pipeline_cards(pipe_), n_cards);
}

static int on_token(void *opaque, const struct np_token_event *e)
{
	struct rec *r = opaque;
	struct rec_tok *t;

	ck_assert_uint_lt(e->request, MAX_REQ);
	ck_assert_uint_lt(e->pos, MAX_POS);
	t = &r->t[e->request][e->pos];
	ck_assert_int_eq(t->seen, 0);
	t->seen = 1;
	t->token = e->token;
	t->stop = e->stop;
	t->n_cand = e->n_cand;
	ck_assert_uint_le(e->n_cand, NP_JOB_TOPK_MAX);
	memcpy(t->cv, e->cand_logit, e->n_cand * sizeof(int32_t));
	memcpy(t->ci, e->cand_id, e->n_cand * sizeof(uint32_t));
	if (e->logits)
		memcpy(t->logits, e->logits, sizeof(t->logits));
	r->count[e->request]++;
	return r->stop_after && r->count[e->request] >= (uint32_t)r->stop_after;
}

/* Deterministic prompts of the given lengths. */
static void prompts(struct np_request *req, int32_t (*buf)[MAX_POS],
		    const uint32_t *len, size_t n, uint32_t max_tokens)
{
	for (size_t r = 0; r < n; r++) {
		for (uint32_t i = 0; i < len[r]; i++)
			buf[r][i] = (int32_t)((r * 131 + i * 17 + 3) % VOCAB);
		memset(&req[r], 0, sizeof(req[r]));
		req[r].prompt = buf[r];
		req[r].n_prompt = len[r];
		req[r].max_tokens = max_tokens;
	}
}

/* Reference top-k: largest first, ties by lower index. */
static uint32_t ref_topk(const int32_t *l, uint32_t n, uint32_t k, int32_t *v,
			 uint32_t *id)
{
	uint32_t have = 0;

	for (uint32_t i = 0; i < n; i++) {
		uint32_t j;

		if (have == k && l[i] <= v[k - 1])
			continue;
		j = have < k ? have++ : k - 1;
		while (j > 0 && v[j - 1] < l[i]) {
			v[j] = v[j - 1];
			id[j] = id[j - 1];
			j--;
		}
		v[j] = l[i];
		id[j] = i;
	}
	return have;
}

/*
 * Replay every request through np_ref_int: the prompt, then each token
 * the pipeline generated; the reference's logits after position pos must
 * be those the cards returned for the token at pos + 1.
 */
static void check_ref(const struct np_request *req, size_t n, uint32_t cand,
		      int full, int greedy)
{
	struct np_ref_int *ref;
	int32_t logits[VOCAB], v[NP_JOB_TOPK_MAX];
	uint32_t id[NP_JOB_TOPK_MAX];

	ck_assert_int_eq(np_ref_int_create(comp, &ref), 0);
	for (size_t r = 0; r < n; r++) {
		int32_t seq[MAX_POS];
		uint32_t len = (uint32_t)req[r].n_prompt;

		memcpy(seq, req[r].prompt, len * sizeof(int32_t));
		for (uint32_t pos = len; pos < MAX_POS && rc->t[r][pos].seen;
		     pos++)
			seq[len++] = rc->t[r][pos].token;
		ck_assert_uint_gt(len, req[r].n_prompt);
		for (uint32_t pos = 0; pos + 1 < len; pos++) {
			const struct rec_tok *t = &rc->t[r][pos + 1];
			uint32_t k;

			ck_assert_int_eq(np_ref_int_step(ref, (uint32_t)r, pos,
							 seq[pos], logits),
					 0);
			if (pos + 1 < req[r].n_prompt)
				continue;
			ck_assert_int_eq(t->seen, 1);
			k = ref_topk(logits, VOCAB, cand, v, id);
			ck_assert_uint_eq(t->n_cand, k);
			ck_assert_mem_eq(t->cv, v, k * sizeof(int32_t));
			ck_assert_mem_eq(t->ci, id, k * sizeof(uint32_t));
			if (full)
				ck_assert_mem_eq(t->logits, logits,
						 sizeof(logits));
			if (greedy)
				ck_assert_int_eq(t->token, (int32_t)id[0]);
		}
	}
	np_ref_int_destroy(ref);
}

START_TEST(gqa_full_logits)
{
	static const uint32_t len[4] = {1, 5, 12, 20};
	struct np_request req[4];
	int32_t buf[4][MAX_POS];
	struct np_request_stats rs[4];
	struct np_session_stats st = {.req = rs};
	struct np_session_opts so = {.micro_batches = 2,
				     .candidates = 8,
				     .full_logits = 1,
				     .on_token = on_token,
				     .opaque = rc};

	build(&gqa, 5, 4, 8);
	prompts(req, buf, len, 4, 6);
	ck_assert_int_eq(np_session_run(pipe_, req, 4, &so, &st), 0);
	for (int r = 0; r < 4; r++) {
		ck_assert_uint_eq(rc->count[r], 6);
		ck_assert_uint_eq(rs[r].tokens, 6);
		ck_assert_uint_eq(rs[r].prompt_tokens, len[r]);
		ck_assert_int_eq(rs[r].stop, NP_STOP_MAX_TOKENS);
		ck_assert_uint_le(rs[r].first_ns, rs[r].last_ns);
	}
	ck_assert_uint_eq(st.tokens, 24);
	ck_assert_uint_eq(st.prompt_tokens, 38);
	ck_assert_double_gt(st.tokens_per_s, 0);
	/* doorbells at least, host time, and parts of it: estimates (the
	 * emulator's share, parts timed on one loop iteration in 8) */
	ck_assert_uint_gt(st.host_reg_writes, 0);
	ck_assert_uint_gt(st.host_cpu_ns + st.host_emu_ns, 0);
	ck_assert_uint_gt(
		st.host_submit_ns + st.host_wait_ns + st.host_sample_ns, 0);
	check_ref(req, 4, 8, 1, 1);
}
END_TEST

/*
 * Every precision mode, and layers of several modes on one card: the
 * emulated cards' logits equal the integer reference's bit for bit.
 */
START_TEST(precision_modes)
{
	static const uint32_t len[3] = {2, 9, 17};
	struct np_request req[3];
	int32_t buf[3][MAX_POS];
	struct np_session_opts so = {.micro_batches = 3,
				     .candidates = 8,
				     .full_logits = 1,
				     .on_token = on_token,
				     .opaque = rc};
	char desc[2048];

	if (_i < NP_PREC_COUNT - 1) {
		build_prec = (enum np_precision)(_i + 1);
		build(&wide, 5, 3, 8);
	} else {
		/* 6 layers on 2 layer cards, each card mixing modes */
		build_prec = NP_PREC_A8C8W4;
		build_layers = "0:w4a4,1:w2a8,4-5:w8a8";
		build(&deep, 4, 3, 8);
	}
	np_compiled_describe(comp, desc, sizeof(desc));
	ck_assert_ptr_nonnull(strstr(desc, np_precision_name(build_prec)));
	prompts(req, buf, len, 3, 6);
	ck_assert_int_eq(np_session_run(pipe_, req, 3, &so, NULL), 0);
	check_ref(req, 3, 8, 1, 1);
}
END_TEST

START_TEST(deep_topk)
{
	static const uint32_t len[6] = {3, 9, 2, 7, 4, 11};
	struct np_request req[6];
	int32_t buf[6][MAX_POS];
	struct np_session_opts so = {.micro_batches = 3,
				     .candidates = 16,
				     .on_token = on_token,
				     .opaque = rc};

	build(&deep, 4, 6, 16);
	prompts(req, buf, len, 6, 5);
	ck_assert_int_eq(np_session_run(pipe_, req, 6, &so, NULL), 0);
	check_ref(req, 6, 16, 0, 1);
}
END_TEST

/* The main job's topology: 14 layer cards and 2 output cards, 28
 * requests in 14 micro-batches of 2 (small dimensions). */
START_TEST(main_topology)
{
	static const struct np_model_shape s14 = {14,  64, 4,	 2,    64,
						  512, 64, 1e4f, 1e-5f};
	uint32_t len[MAX_REQ];
	struct np_request req[MAX_REQ];
	int32_t buf[MAX_REQ][MAX_POS];
	struct np_session_stats st = {0};
	struct np_session_opts so = {.micro_batches = 14,
				     .candidates = 8,
				     .on_token = on_token,
				     .opaque = rc};

	ck_assert_uint_ge(np_ctx_num_cards(ctx), 16);
	for (int r = 0; r < MAX_REQ; r++)
		len[r] = 1 + (uint32_t)(r * 5) % 9;
	build(&s14, 16, MAX_REQ, 64);
	ck_assert_uint_eq(np_compiled_card(comp, 13)->kind, NP_CARD_LAYERS);
	ck_assert_uint_eq(np_compiled_card(comp, 14)->kind, NP_CARD_OUTPUT);
	prompts(req, buf, len, MAX_REQ, 3);
	ck_assert_int_eq(np_session_run(pipe_, req, MAX_REQ, &so, &st), 0);
	ck_assert_uint_eq(st.tokens, 3 * MAX_REQ);
	ck_assert_double_gt(st.avg_in_flight, 1);
	check_ref(req, MAX_REQ, 8, 0, 1);
}
END_TEST

static uint32_t reg(unsigned int card, uint32_t off)
{
	uint32_t v = 0;

	ck_assert_int_eq(np_card_reg_read(np_ctx_card(ctx, card), off, &v), 0);
	return v;
}

/* Every card of a pipeline publishes what the model takes of it (the use
 * registers, np_abi.h) for other processes to read; the pipeline's end
 * clears them, and so does a card reset. */
START_TEST(use_registers)
{
	uint32_t fb;

	build(&gqa, 5, 4, 64);
	fb = reg(0, NP_REG_USE_FB);
	ck_assert_uint_gt(fb, 0);
	ck_assert_uint_le(fb, reg(0, NP_REG_FB_SIZE));
	for (unsigned int i = 0; i < 5; i++) {
		const struct np_card_plan *pl = np_compiled_card(comp, i);

		ck_assert_uint_eq(reg(i, NP_REG_USE_WEIGHTS), pl->weight_bytes);
		ck_assert_uint_eq(reg(i, NP_REG_USE_KV), pl->kv_bytes);
		ck_assert_uint_eq(reg(i, NP_REG_USE_PROG), pl->prog_bytes);
		ck_assert_uint_gt(pl->weight_bytes + pl->prog_bytes, 0);
		ck_assert_uint_le(pl->weight_bytes + pl->kv_bytes +
					  pl->prog_bytes,
				  reg(i, NP_REG_SRAM_SIZE));
		ck_assert_uint_eq(reg(i, NP_REG_USE_FB), fb);
	}
	/* a card the pipeline does not use holds nothing */
	ck_assert_uint_eq(reg(5, NP_REG_USE_WEIGHTS), 0);
	ck_assert_uint_eq(reg(5, NP_REG_USE_FB), 0);
	/* a reset empties the SRAM, and the card forgets the use */
	ck_assert_int_eq(np_card_reset(np_ctx_card(ctx, 4)), 0);
	for (uint32_t r = NP_REG_USE_WEIGHTS; r <= NP_REG_USE_FB; r += 4)
		ck_assert_uint_eq(reg(4, r), 0);
	ck_assert_uint_gt(reg(3, NP_REG_USE_WEIGHTS), 0);
	np_pipeline_destroy(pipe_);
	pipe_ = NULL;
	for (unsigned int i = 0; i < 5; i++)
		for (uint32_t r = NP_REG_USE_WEIGHTS; r <= NP_REG_USE_FB;
		     r += 4)
			ck_assert_uint_eq(reg(i, r), 0);
}
END_TEST

/* Cards with a single DMA engine: host I/O and forwarding share it. */
START_TEST(single_engine_cards)
{
	static const uint32_t len[3] = {4, 1, 7};
	struct np_emu_opts emu = {.dma_engines = 1};
	struct np_open_opts o = {.log = {.fn = log_fn}, .emu = &emu};
	struct np_request req[3];
	int32_t buf[3][MAX_POS];
	struct np_session_opts so = {.micro_batches = 3,
				     .candidates = 4,
				     .on_token = on_token,
				     .opaque = rc};
	struct np_card_info info;

	np_close(ctx);
	ck_assert_int_eq(np_open("emu:5", &o, &ctx), 0);
	ck_assert_int_eq(np_card_info(np_ctx_card(ctx, 0), &info), 0);
	ck_assert_uint_eq(info.dma_engines, 1);
	build(&deep, 5, 3, 4);
	prompts(req, buf, len, 3, 5);
	ck_assert_int_eq(np_session_run(pipe_, req, 3, &so, NULL), 0);
	check_ref(req, 3, 4, 0, 1);
}
END_TEST

/* One pipeline, several request counts and micro-batch counts in a row:
 * every run starts its sequences over in the KV cache. */
START_TEST(shapes_n_m)
{
	static const uint32_t cfg[][2] = {{1, 1}, {5, 5}, {7, 3}};
	static const uint32_t len[7] = {2, 6, 1, 9, 4, 3, 5};
	struct np_request req[7];
	int32_t buf[7][MAX_POS];

	build(&gqa, 5, 7, 16);
	for (size_t c = 0; c < sizeof(cfg) / sizeof(cfg[0]); c++) {
		struct np_session_opts so = {.micro_batches = cfg[c][1],
					     .candidates = 4,
					     .on_token = on_token,
					     .opaque = rc};
		struct np_card_stats cs[6];
		struct np_session_stats st = {.card = cs, .n_card = 5};
		double busy = 0;

		/* the library fills exactly n_card entries */
		memset(cs, 0xa5, sizeof(cs));
		memset(rc, 0, sizeof(*rc));
		prompts(req, buf, len, cfg[c][0], 4);
		ck_assert_int_eq(
			np_session_run(pipe_, req, cfg[c][0], &so, &st), 0);
		ck_assert_uint_eq(st.tokens, 4 * cfg[c][0]);
		ck_assert_uint_ge(st.frames, 4);
		ck_assert_double_ge(st.utilization, 0);
		ck_assert_double_le(st.utilization, 1);
		/* 3 layer cards forward every frame, the last one to both
		 * output cards; the output cards forward nothing */
		for (uint32_t i = 0; i < 5; i++) {
			uint64_t fwd = i < 2 ? 1 : i == 2 ? 2 : 0;

			ck_assert_double_ge(cs[i].busy, 0);
			ck_assert_double_le(cs[i].busy, 1);
			busy += cs[i].busy / 5;

			ck_assert_uint_eq(cs[i].hop_frames, fwd * st.frames);
			if (fwd) {
				ck_assert_uint_gt(cs[i].hop_mean_ns, 0);
				ck_assert_uint_ge(cs[i].hop_max_ns,
						  cs[i].hop_mean_ns);
			}
			ck_assert_int_eq(cs[i].credit_stalls == 0,
					 cs[i].credit_stall_ns == 0);
			/* frames 0 and 1 need no credit */
			ck_assert_uint_le(cs[i].credit_stalls,
					  fwd * (st.frames - 2));
			/* one frame in flight: its credit was given back
			 * before the host posted it */
			if (cfg[c][1] == 1)
				ck_assert_uint_eq(cs[i].credit_stalls, 0);
		}
		ck_assert_double_eq_tol(busy, st.utilization, 1e-9);
		ck_assert_ptr_eq(st.card, cs);
		ck_assert_uint_eq(st.n_card, 5);
		ck_assert_uint_eq(((const unsigned char *)&cs[5])[0], 0xa5);
		check_ref(req, cfg[c][0], 4, 0, 1);
	}
}
END_TEST

START_TEST(sampling_seeded)
{
	static const uint32_t len[3] = {4, 4, 6};
	struct np_request req[3];
	int32_t buf[3][MAX_POS], first[3][MAX_POS];
	struct np_session_opts so = {.micro_batches = 3,
				     .candidates = 16,
				     .on_token = on_token,
				     .opaque = rc};

	build(&gqa, 5, 3, 16);
	prompts(req, buf, len, 3, 8);
	for (int r = 0; r < 3; r++)
		req[r].sampling = (struct np_sampling){.temperature = 1.5f,
						       .top_k = 6,
						       .top_p = 0.95f,
						       .seed = 42};
	ck_assert_int_eq(np_session_run(pipe_, req, 3, &so, NULL), 0);
	for (int r = 0; r < 3; r++)
		for (uint32_t p = len[r]; p < len[r] + 8; p++) {
			const struct rec_tok *t = &rc->t[r][p];
			int found = 0;

			first[r][p] = t->token;
			for (int i = 0; i < 6; i++)
				found |= (int32_t)t->ci[i] == t->token;
			ck_assert_int_eq(found, 1);
		}
	/* the logits stay exact whatever was sampled */
	check_ref(req, 3, 16, 0, 0);
	memset(rc, 0, sizeof(*rc));
	ck_assert_int_eq(np_session_run(pipe_, req, 3, &so, NULL), 0);
	for (int r = 0; r < 3; r++)
		for (uint32_t p = len[r]; p < len[r] + 8; p++)
			ck_assert_int_eq(rc->t[r][p].token, first[r][p]);
}
END_TEST

START_TEST(stop_conditions)
{
	static const uint32_t len[3] = {3, 3, 3};
	struct np_request req[3];
	int32_t buf[3][MAX_POS], stop;
	struct np_request_stats rs[3];
	struct np_session_stats st = {.req = rs};
	struct np_session_opts so = {
		.micro_batches = 2, .on_token = on_token, .opaque = rc};

	build(&gqa, 5, 3, 16);
	prompts(req, buf, len, 3, 6);
	ck_assert_int_eq(np_session_run(pipe_, req, 3, &so, NULL), 0);
	/* request 0 stops at its third token, request 1 at the caller's
	 * word after two tokens, request 2 runs into the context length */
	stop = rc->t[0][5].token;
	req[0].stop = &stop;
	req[0].n_stop = 1;
	req[2].max_tokens = 0;
	memset(rc, 0, sizeof(*rc));
	rc->stop_after = 0;
	ck_assert_int_eq(np_session_run(pipe_, req, 3, &so, &st), 0);
	ck_assert_int_eq(rs[0].stop, NP_STOP_TOKEN);
	ck_assert_uint_le(rs[0].tokens, 3);
	ck_assert_int_eq(rc->t[0][3 + rs[0].tokens - 1].token, stop);
	ck_assert_int_eq(rs[1].stop, NP_STOP_MAX_TOKENS);
	ck_assert_int_eq(rs[2].stop, NP_STOP_LENGTH);
	ck_assert_uint_eq(rs[2].tokens, MAX_POS - 3);
	memset(rc, 0, sizeof(*rc));
	rc->stop_after = 2;
	ck_assert_int_eq(np_session_run(pipe_, req, 3, &so, &st), 0);
	ck_assert_int_eq(rs[1].stop, NP_STOP_CALLER);
	ck_assert_uint_eq(rs[1].tokens, 2);
}
END_TEST

START_TEST(bad_requests)
{
	static const uint32_t len[3] = {3, 3, 3};
	struct np_request req[3];
	int32_t buf[3][MAX_POS];
	struct np_session_opts so = {.micro_batches = 4};

	build(&gqa, 5, 2, 16);
	prompts(req, buf, len, 3, 2);
	/* more requests than compiled sessions */
	ck_assert_int_eq(np_session_run(pipe_, req, 3, NULL, NULL), -EINVAL);
	ck_assert_ptr_nonnull(strstr(last_log, "requests must be 1..2"));
	/* more micro-batches than requests */
	ck_assert_int_eq(np_session_run(pipe_, req, 2, &so, NULL), -EINVAL);
	/* an option this libnp does not know (reserved space) */
	so.micro_batches = 0;
	so.resv[3] = 1;
	ck_assert_int_eq(np_session_run(pipe_, req, 2, &so, NULL), -EINVAL);
	ck_assert_ptr_nonnull(strstr(last_log, "np_session_opts: reserved"));
	req[0].n_prompt = 0;
	ck_assert_int_eq(np_session_run(pipe_, req, 2, NULL, NULL), -EINVAL);
	req[0].n_prompt = MAX_POS;
	ck_assert_int_eq(np_session_run(pipe_, req, 2, NULL, NULL), -ERANGE);
	req[0].n_prompt = 3;
	buf[1][2] = VOCAB;
	ck_assert_int_eq(np_session_run(pipe_, req, 2, NULL, NULL), -EINVAL);
	ck_assert_ptr_nonnull(strstr(last_log, "outside the vocabulary"));
	/* nothing was sent to the cards: a valid run still works */
	buf[1][2] = 7;
	ck_assert_int_eq(np_session_run(pipe_, req, 2, NULL, NULL), 0);
}
END_TEST

/* A card whose program was overwritten stops its compute queue: the run
 * fails with -EIO and names the card and the error instead of hanging. */
START_TEST(card_failure_reported)
{
	static const uint32_t len[2] = {3, 3};
	struct np_request req[2];
	int32_t buf[2][MAX_POS];
	struct np_buf *zero;
	struct np_xfer_spec x = {.op = NP_XFER_H2C,
				 .engine = 0,
				 .card_addr = NP_CA_SRAM_BASE,
				 .len = 4096};

	build(&gqa, 5, 2, 16);
	prompts(req, buf, len, 2, 4);
	ck_assert_int_eq(np_session_run(pipe_, req, 2, NULL, NULL), 0);
	ck_assert_int_eq(np_buf_alloc(ctx, 4096, &zero), 0);
	x.buf = zero;
	ck_assert_int_eq(np_xfer_run(np_ctx_card(ctx, 2), &x), 0);
	np_buf_free(zero);
	ck_assert_int_eq(np_session_run(pipe_, req, 2, NULL, NULL), -EIO);
	ck_assert_ptr_nonnull(strstr(last_log, "card emu:2"));
	ck_assert_ptr_nonnull(strstr(last_log, "NP_ERR 16"));
	/* a failed pipeline refuses further runs */
	ck_assert_int_eq(np_session_run(pipe_, req, 2, NULL, NULL), -EIO);
}
END_TEST

/*
 * Pass-through layer cards (NP_COMPILE_PASS_THROUGH): 14 cards without
 * layers in front of the 2 output cards. Every token's logits must be
 * the output program run on the embedding of the token before it, at any
 * position and in any request: computed here from the output cards'
 * images alone.
 */
START_TEST(pass_through)
{
	static const uint32_t len[4] = {1, 3, 6, 2};
	struct np_compile_opts co = {.n_cards = 16,
				     .batch = 4,
				     .max_seq = MAX_POS,
				     .out_cards = 2,
				     .flags = NP_COMPILE_PASS_THROUGH};
	struct np_session_opts so = {.micro_batches = 2,
				     .candidates = 8,
				     .full_logits = 1,
				     .on_token = on_token,
				     .opaque = rc};
	struct np_request req[4];
	int32_t buf[4][MAX_POS];
	uint8_t *sram[2];
	uint8_t arg[NPK_ARG_HDR + sizeof(struct npk_tok) + 64 * 2] = {0};
	int32_t *want = malloc(VOCAB * sizeof(int32_t));
	void *scratch;
	uint32_t one = 1;

	ck_assert_uint_ge(np_ctx_num_cards(ctx), 16);
	ck_assert_int_eq(np_model_synthetic(&gqa, 55, &model), 0);
	ck_assert_int_eq(np_quant_calib_default(model, &calib), 0);
	ck_assert_int_eq(np_compile(model, calib, &co, NULL, &comp), 0);
	ck_assert_uint_eq(np_compiled_n_cards(comp), 16);
	for (uint32_t i = 0; i < 14; i++) {
		const struct np_card_plan *pl = np_compiled_card(comp, i);

		ck_assert_int_eq(pl->kind, NP_CARD_LAYERS);
		ck_assert_uint_eq(pl->n_layers, 0);
		ck_assert_uint_eq(pl->weight_bytes + pl->kv_bytes, 0);
	}
	ck_assert_int_eq(np_pipeline_create(ctx, comp, NULL, &pipe_), 0);
	prompts(req, buf, len, 4, 5);
	ck_assert_int_eq(np_session_run(pipe_, req, 4, &so, NULL), 0);

	memcpy(arg, &one, 4);
	for (int o = 0; o < 2; o++) {
		sram[o] = calloc(1, NP_SRAM_SIZE);
		ck_assert_ptr_nonnull(sram[o]);
		ck_assert_int_eq(np_compile_card_image(comp, 14 + o, sram[o]),
				 0);
	}
	scratch = malloc(npk_scratch_size(sram[0], 0));
	ck_assert_ptr_nonnull(want);
	ck_assert_ptr_nonnull(scratch);
	for (int r = 0; r < 4; r++) {
		for (uint32_t pos = len[r]; pos < len[r] + 5; pos++) {
			const struct rec_tok *t = &rc->t[r][pos];
			int32_t prev = pos == len[r] ? req[r].prompt[pos - 1] :
						       rc->t[r][pos - 1].token;
			struct npk_tok tk = {(uint32_t)r, pos - 1};

			ck_assert_int_eq(t->seen, 1);
			memcpy(arg + NPK_ARG_HDR, &tk, sizeof(tk));
			ck_assert_int_eq(np_compiled_embed(
						 comp, prev,
						 (int16_t *)(arg + NPK_ARG_HDR +
							     sizeof(tk))),
					 0);
			for (int o = 0; o < 2; o++) {
				const struct np_card_plan *pl =
					np_compiled_card(comp, 14 + o);

				ck_assert_int_eq(
					npk_run(sram[o], pl->prog, arg,
						sizeof(arg),
						want + pl->vocab_begin,
						(pl->vocab_end -
						 pl->vocab_begin) *
							sizeof(int32_t),
						scratch),
					0);
			}
			ck_assert_mem_eq(t->logits, want,
					 VOCAB * sizeof(int32_t));
		}
	}
	free(sram[0]);
	free(sram[1]);
	free(scratch);
	free(want);
}
END_TEST

struct progress {
	int last_stage;
	uint64_t done, total;
	unsigned int calls;
};

static void on_progress(void *opaque, enum np_load_stage stage, uint64_t done,
			uint64_t total)
{
	struct progress *pr = opaque;

	ck_assert_int_ge(stage, pr->last_stage);
	if ((int)stage == pr->last_stage)
		ck_assert_uint_ge(done, pr->done);
	ck_assert_uint_le(done, total);
	pr->last_stage = stage;
	pr->done = done;
	pr->total = total;
	pr->calls++;
}

static char *read_sample(size_t *len)
{
	FILE *f = fopen(NP_SAMPLE_TEXT, "rb");
	char *buf = malloc(65536);

	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(buf);
	*len = fread(buf, 1, 65535, f);
	fclose(f);
	ck_assert_uint_gt(*len, 1024);
	return buf;
}

/*
 * Write a synthetic model of shape sh with weights of wtype, load it
 * onto n_cards cards with np_model_load (dequantised at load, quantised
 * for the cards), run two prompts through its tokenizer: every token's
 * top candidate equals the integer reference's.
 */
static void load_and_check(const struct np_model_shape *sh,
			   enum np_ggml_type wtype, uint32_t n_cards)
{
	char path[] = "/tmp/np-pipeline-XXXXXX";
	struct progress pr = {0};
	size_t text_len, n;
	char *text = read_sample(&text_len);
	int fd = mkstemp(path);
	struct np_pipeline_opts po = {.n_cards = n_cards,
				      .max_sessions = 2,
				      .max_seq = MAX_POS,
				      .calib_text = text,
				      .calib_len = text_len,
				      .progress = on_progress,
				      .progress_opaque = &pr};
	struct np_session_opts so = {.on_token = on_token, .opaque = rc};
	struct np_request req[2] = {{0}};
	int32_t ids[2][16];

	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(np_model_synthetic(sh, 7, &model), 0);
	ck_assert_int_eq(np_model_write_gguf(model, wtype, NP_TOK_SPM, text,
					     text_len, path),
			 0);
	ck_assert_int_eq(np_model_load(ctx, path, &po, &pipe_), 0);
	unlink(path);
	ck_assert_int_eq(pr.last_stage, NP_LOAD_CARDS);
	ck_assert_uint_eq(pr.done, pr.total);
	ck_assert_uint_gt(pr.total, 0);
	ck_assert_ptr_nonnull(np_pipeline_tok(pipe_));
	ck_assert_uint_eq(np_pipeline_max_sessions(pipe_), 2);
	ck_assert_uint_eq(np_pipeline_max_seq(pipe_), MAX_POS);
	for (int r = 0; r < 2; r++) {
		const char *p = r ? "The cards" : "Hello";

		ck_assert_int_eq(np_tok_encode(np_pipeline_tok(pipe_), p,
					       strlen(p), ids[r], 16, &n),
				 0);
		ck_assert_uint_gt(n, 0);
		req[r].prompt = ids[r];
		req[r].n_prompt = n;
		req[r].max_tokens = 5;
	}
	ck_assert_int_eq(np_session_run(pipe_, req, 2, &so, NULL), 0);
	comp = NULL;
	{
		/* the reference needs the pipeline's own compiled model */
		struct np_ref_int *ref;
		int32_t logits[VOCAB];
		const struct rec_tok *t;

		ck_assert_int_eq(
			np_ref_int_create(np_pipeline_compiled(pipe_), &ref),
			0);
		for (int r = 0; r < 2; r++) {
			for (uint32_t pos = 0; pos < req[r].n_prompt; pos++)
				ck_assert_int_eq(
					np_ref_int_step(ref, (uint32_t)r, pos,
							ids[r][pos], logits),
					0);
			t = &rc->t[r][req[r].n_prompt];
			ck_assert_int_eq(t->seen, 1);
			for (uint32_t v = 0; v < VOCAB; v++)
				ck_assert_int_le(logits[v], t->cv[0]);
			ck_assert_int_eq(logits[t->token], t->cv[0]);
		}
		np_ref_int_destroy(ref);
	}
	free(text);
}

/* GGUF -> cards with np_model_load, text through its tokenizer. */
START_TEST(model_load_gguf)
{
	load_and_check(&gqa, NP_GGML_F32, 5);
}
END_TEST

/*
 * A model written in each K-quant type (and the fallbacks its 384-wide
 * FFN rows take: IQ4_NL, Q5_0, Q5_1, Q8_0) loads, compiles and runs bit
 * for bit like the integer reference.
 */
static const struct np_model_shape kq = {2,   256, 4,	 2,    384,
					 512, 64,  1e4f, 1e-5f};
static const enum np_ggml_type kq_types[] = {
	NP_GGML_Q2_K, NP_GGML_Q3_K, NP_GGML_Q4_K, NP_GGML_Q5_K, NP_GGML_Q6_K,
};

START_TEST(model_load_gguf_kquant)
{
	load_and_check(&kq, kq_types[_i], 4);
}
END_TEST

/*
 * Every model family nptool model mkgguf --arch writes (llama, llama3,
 * mistral, granite, qwen2), in F32, Q8_0 and Q4_0: the GGUF loaded,
 * calibrated, 3 layers on 3 cards and 2 output cards, every logit bit
 * for bit the integer reference's.
 */
START_TEST(families_gguf)
{
	static const char *const fam[] = {"llama", "llama3", "mistral",
					  "granite", "qwen2"};
	static const enum np_ggml_type types[] = {NP_GGML_F32, NP_GGML_Q8_0,
						  NP_GGML_Q4_0};
	static const struct np_model_shape s = {3,     64, 4,	 2,    128,
						VOCAB, 64, 0.0f, 1e-5f};
	static const uint32_t len[3] = {2, 7, 4};
	struct np_compile_opts co = {
		.n_cards = 5, .batch = 3, .max_seq = MAX_POS, .out_cards = 2};
	struct np_pipeline_opts po = {.frame_tokens = 8};
	struct np_session_opts so = {.micro_batches = 3,
				     .candidates = 8,
				     .full_logits = 1,
				     .on_token = on_token,
				     .opaque = rc};
	char path[] = "/tmp/np-pipeline-XXXXXX";
	size_t text_len;
	char *text = read_sample(&text_len);
	int fd = mkstemp(path);
	struct np_request req[3];
	int32_t buf[3][MAX_POS], ids[48];
	struct np_model *syn;

	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(
		np_model_synthetic_arch(fam[_i % 5], &s, 99, NULL, &syn), 0);
	ck_assert_int_eq(np_model_write_gguf(syn, types[_i / 5], NP_TOK_BPE,
					     text, text_len, path),
			 0);
	np_model_destroy(syn);
	free(text);
	ck_assert_int_eq(np_gguf_open(path, NULL, &gguf), 0);
	unlink(path);
	ck_assert_int_eq(np_model_from_gguf(gguf, NULL, &model), 0);
	for (int i = 0; i < 48; i++)
		ids[i] = (i * 53 + 11) % VOCAB;
	ck_assert_int_eq(np_quant_calibrate(model, ids, 48, &calib), 0);
	ck_assert_int_eq(np_compile(model, calib, &co, NULL, &comp), 0);
	ck_assert_int_eq(np_pipeline_create(ctx, comp, &po, &pipe_), 0);
	prompts(req, buf, len, 3, 6);
	ck_assert_int_eq(np_session_run(pipe_, req, 3, &so, NULL), 0);
	check_ref(req, 3, 8, 1, 1);
}
END_TEST

START_TEST(load_errors)
{
	ck_assert_int_eq(
		np_model_load(ctx, "/nonexistent/np.gguf", NULL, &pipe_),
		-ENOENT);
	ck_assert_ptr_null(pipe_);
	ck_assert_ptr_nonnull(strstr(last_log, "/nonexistent/np.gguf"));
	ck_assert_int_eq(np_pipeline_create(ctx, NULL, NULL, &pipe_), -EINVAL);
}
END_TEST

Suite *np_suite_pipeline(void)
{
	Suite *s = suite_create("pipeline");
	TCase *tc = tcase_create("pipeline");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, gqa_full_logits);
	tcase_add_test(tc, deep_topk);
	tcase_add_loop_test(tc, precision_modes, 0, NP_PREC_COUNT);
	tcase_add_test(tc, shapes_n_m);
	tcase_add_test(tc, main_topology);
	tcase_add_test(tc, use_registers);
	tcase_add_test(tc, pass_through);
	tcase_add_test(tc, single_engine_cards);
	tcase_add_test(tc, sampling_seeded);
	tcase_add_test(tc, stop_conditions);
	tcase_add_test(tc, bad_requests);
	tcase_add_test(tc, card_failure_reported);
	tcase_add_test(tc, model_load_gguf);
	tcase_add_loop_test(tc, model_load_gguf_kquant, 0,
			    (int)(sizeof(kq_types) / sizeof(kq_types[0])));
	tcase_add_test(tc, load_errors);
	tcase_add_loop_test(tc, families_gguf, 0, 15);
	suite_add_tcase(s, tc);
	return s;
}
