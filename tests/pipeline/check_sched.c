// SPDX-License-Identifier: MIT
/*
 * The scheduler (np/sched.h) on emulated cards: requests submitted from
 * another thread while others run, prompts prefilled in chunks beside
 * decode tokens, cancelled mid-prefill, mid-decode and from a callback, a
 * full queue, stop strings across token boundaries, seeded sampling and
 * logprobs. Greedy tokens and the candidates they were chosen from must
 * equal np_ref_int's for the same sequence, whatever else shared the
 * frames.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "np/model.h"
#include "np/np.h"
#include "np/pipeline.h"
#include "np/sched.h"
#include "np_abi.h"
#include "test.h"

/* GQA: 4 query heads over 2 KV heads, 3 layers on 3 cards */
static const struct np_model_shape shape = {3,	 64, 4,	   2,	 128,
					    512, 64, 1e4f, 1e-5f};

#define SLOTS 4u
#define MAX_POS 64u
#define VOCAB 512u
#define CAND 8u
#define MAX_REQS 16u

/* What one request received. */
struct tst_req {
	int32_t prompt[MAX_POS];
	uint32_t n_prompt;
	int32_t tok[MAX_POS];
	int32_t cv[MAX_POS][CAND];
	uint32_t ci[MAX_POS][CAND];
	uint32_t n_cand[MAX_POS];
	uint64_t t_ns[MAX_POS];
	uint32_t n; /* tokens */
	char text[4096];
	size_t text_len;
	int ends;
	enum np_finish finish;
	enum np_stop_reason stop;
	struct np_sched_req_stats st;
	uint64_t id;
	/* actions from the callback */
	uint32_t cancel_self_at; /* np_sched_cancel itself at this token */
	uint32_t return_at; /* return 1 at this token */
	/* at this token, wait until another thread cancelled it */
	uint32_t hold_at;
	int cancelled; /* atomic: np_sched_cancel returned */
	struct tst_req *cancel_other; /* cancel it at the first token */
	int cancel_other_ret;
	int tokens_after_end;
};

static struct np_ctx *ctx;
static struct np_model *model;
static struct np_pipeline *pipe_;
static struct np_sched *sched;
static struct tst_req *rq; /* MAX_REQS */
static char last_log[512];

static void log_fn(void *opaque, enum np_log_level level, const char *msg)
{
	(void)opaque;
	if (level <= 3)
		snprintf(last_log, sizeof(last_log), "%s", msg);
}

static char *read_sample(size_t *len)
{
	FILE *f = fopen(NP_SAMPLE_TEXT, "rb");
	char *buf = malloc(65536);

	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(buf);
	*len = fread(buf, 1, 65535, f);
	fclose(f);
	return buf;
}

/* A GGUF-loaded pipeline (it has a tokenizer) of 5 cards. */
static void setup(void)
{
	struct np_open_opts o = {.log = {.fn = log_fn}};
	char path[] = "/tmp/np-sched-XXXXXX";
	size_t len;
	char *text = read_sample(&len);
	struct np_pipeline_opts po = {.n_cards = 5,
				      .max_sessions = SLOTS,
				      .max_seq = MAX_POS,
				      .frame_tokens = 16,
				      .calib_text = text,
				      .calib_len = len};
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(np_open("emu:5", &o, &ctx), 0);
	ck_assert_int_eq(np_model_synthetic(&shape, 99, &model), 0);
	ck_assert_int_eq(np_model_write_gguf(model, NP_GGML_F32, NP_TOK_BPE,
					     text, len, path),
			 0);
	ck_assert_int_eq(np_model_load(ctx, path, &po, &pipe_), 0);
	unlink(path);
	free(text);
	rq = calloc(MAX_REQS, sizeof(*rq));
	ck_assert_ptr_nonnull(rq);
}

static void teardown(void)
{
	np_sched_destroy(sched);
	np_pipeline_destroy(pipe_);
	np_model_destroy(model);
	np_close(ctx);
	free(rq);
	sched = NULL;
	pipe_ = NULL;
	model = NULL;
	ctx = NULL;
}

static int on_event(void *opaque, const struct np_sched_event *e)
{
	struct tst_req *r = opaque;

	ck_assert_ptr_eq(e->opaque, opaque);
	if (r->ends)
		r->tokens_after_end++;
	if (e->text_len) {
		ck_assert_uint_lt(r->text_len + e->text_len, sizeof(r->text));
		memcpy(r->text + r->text_len, e->text, e->text_len);
		r->text_len += e->text_len;
	}
	if (e->token >= 0) {
		ck_assert_uint_eq(e->pos, r->n_prompt + r->n);
		ck_assert_uint_le(e->n_cand, CAND);
		memcpy(r->cv[r->n], e->cand_logit, e->n_cand * 4);
		memcpy(r->ci[r->n], e->cand_id, e->n_cand * 4);
		r->n_cand[r->n] = e->n_cand;
		r->t_ns[r->n] = e->t_ns;
		r->tok[r->n] = e->token;
		/* read by the submitting thread */
		__atomic_store_n(&r->n, r->n + 1, __ATOMIC_RELEASE);
	}
	if (e->finish) {
		r->ends++;
		r->finish = e->finish;
		r->stop = e->stop;
		ck_assert_ptr_nonnull(e->stats);
		r->st = *e->stats;
		return 0;
	}
	ck_assert_ptr_null(e->stats);
	if (r->cancel_other && r->n == 1)
		r->cancel_other_ret =
			np_sched_cancel(sched, r->cancel_other->id);
	if (r->hold_at && r->n == r->hold_at)
		while (!__atomic_load_n(&r->cancelled, __ATOMIC_ACQUIRE))
			usleep(100);
	if (r->cancel_self_at && r->n == r->cancel_self_at)
		ck_assert_int_eq(np_sched_cancel(sched, r->id), 0);
	return r->return_at && r->n == r->return_at;
}

/* Request i: a prompt of len tokens, greedy. */
static void tst_req(struct np_sched_req *sr, uint32_t i, uint32_t len,
		    uint32_t max_tokens)
{
	struct tst_req *r = &rq[i];

	r->n_prompt = len;
	for (uint32_t k = 0; k < len; k++)
		r->prompt[k] = (int32_t)((i * 131 + k * 17 + 3) % VOCAB);
	memset(sr, 0, sizeof(*sr));
	sr->prompt = r->prompt;
	sr->n_prompt = len;
	sr->max_tokens = max_tokens;
	sr->on_event = on_event;
	sr->opaque = r;
}

static void tst_submit(struct np_sched_req *sr, uint32_t i)
{
	ck_assert_int_eq(np_sched_submit(sched, sr, &rq[i].id), 0);
}

static void *run_thread(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)np_sched_run(sched);
}

static void tst_sched(const struct np_sched_opts *o)
{
	ck_assert_int_eq(np_sched_create(pipe_, o, &sched), 0);
}

/* Reference top-k: largest first, ties by lower index. */
static uint32_t ref_topk(const int32_t *l, uint32_t k, int32_t *v, uint32_t *id)
{
	uint32_t have = 0;

	for (uint32_t i = 0; i < VOCAB; i++) {
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

/* Request i's tokens and candidates against np_ref_int; greedy: each
 * token is the best candidate. */
static void tst_check_ref(uint32_t i, int greedy)
{
	const struct tst_req *r = &rq[i];
	struct np_ref_int *ref;
	int32_t seq[MAX_POS], logits[VOCAB], v[CAND];
	uint32_t len = r->n_prompt + r->n, id[CAND];

	ck_assert_int_eq(np_ref_int_create(np_pipeline_compiled(pipe_), &ref),
			 0);
	memcpy(seq, r->prompt, r->n_prompt * 4);
	memcpy(seq + r->n_prompt, r->tok, r->n * 4);
	for (uint32_t pos = 0; pos + 1 < len; pos++) {
		uint32_t g = pos + 1 - r->n_prompt, k;

		ck_assert_int_eq(np_ref_int_step(ref, 0, pos, seq[pos], logits),
				 0);
		if (pos + 1 < r->n_prompt)
			continue;
		k = ref_topk(logits, CAND, v, id);
		ck_assert_uint_eq(r->n_cand[g], k);
		ck_assert_mem_eq(r->cv[g], v, k * 4);
		ck_assert_mem_eq(r->ci[g], id, k * 4);
		if (greedy)
			ck_assert_int_eq(r->tok[g], (int32_t)id[0]);
	}
	np_ref_int_destroy(ref);
}

/* Requests arrive from this thread while the loop runs on another, more
 * than there are slots, long prompts beside short ones under a small
 * prefill budget: every token as the reference computes it. */
START_TEST(staggered_arrivals)
{
	struct np_sched_opts o = {
		.micro_batches = 2, .candidates = CAND, .prefill_budget = 3};
	uint64_t busy[5];
	struct np_sched_stats st = {.card_busy_ns = busy, .n_card = 5};
	uint64_t tokens = 0, prompt = 0;
	pthread_t th;
	void *ret;

	tst_sched(&o);
	ck_assert_int_eq(pthread_create(&th, NULL, run_thread, NULL), 0);
	for (uint32_t i = 0; i < 10; i++) {
		struct np_sched_req sr;
		uint32_t len = i % 3 == 0 ? 30 + i : 2 + i;

		tst_req(&sr, i, len, 4 + i % 5);
		tst_submit(&sr, i);
		prompt += len;
		usleep(1000 + 700 * (i % 4));
	}
	np_sched_drain(sched);
	ck_assert_int_eq(pthread_join(th, &ret), 0);
	ck_assert_ptr_null(ret);
	for (uint32_t i = 0; i < 10; i++) {
		const struct tst_req *r = &rq[i];

		ck_assert_int_eq(r->ends, 1);
		ck_assert_int_eq(r->tokens_after_end, 0);
		ck_assert_int_eq(r->finish, NP_FINISH_LENGTH);
		ck_assert_int_eq(r->stop, NP_STOP_MAX_TOKENS);
		ck_assert_uint_eq(r->n, 4 + i % 5);
		ck_assert_uint_eq(r->st.tokens, r->n);
		ck_assert_uint_eq(r->st.prompt_tokens, r->n_prompt);
		ck_assert_uint_ge(r->st.start_ns, r->st.submit_ns);
		ck_assert_uint_gt(r->st.first_ns, r->st.start_ns);
		ck_assert_uint_eq(r->st.first_ns, r->t_ns[0]);
		ck_assert_uint_eq(r->st.last_ns, r->t_ns[r->n - 1]);
		for (uint32_t k = 1; k < r->n; k++)
			ck_assert_uint_ge(r->t_ns[k], r->t_ns[k - 1]);
		tokens += r->n;
		tst_check_ref(i, 1);
	}
	ck_assert_int_eq(np_sched_stats(sched, &st), 0);
	ck_assert_int_eq(st.state, NP_SCHED_IDLE);
	ck_assert_uint_eq(st.slots, SLOTS);
	ck_assert_uint_eq(st.slots_used, 0);
	ck_assert_uint_eq(st.queued, 0);
	ck_assert_uint_eq(st.submitted, 10);
	ck_assert_uint_eq(st.finished[NP_FINISH_LENGTH], 10);
	ck_assert_uint_eq(st.tokens, tokens);
	ck_assert_uint_eq(st.prompt_tokens, prompt);
	ck_assert_uint_gt(st.frames, 0);
	ck_assert_uint_ge(st.wall_ns, busy[0]);
	ck_assert_ptr_eq(st.card_busy_ns, busy);
	ck_assert_int_eq(
		np_sched_submit(sched, &(struct np_sched_req){0}, NULL),
		-EINVAL);
}
END_TEST

/* Cancelled mid-prefill (by another request's callback), mid-decode
 * (from its own callback, and by returning non-zero), and from another
 * thread; each slot goes to a queued request, which completes. */
START_TEST(cancellation)
{
	struct np_sched_opts o = {.slots = 4,
				  .micro_batches = 2,
				  .candidates = CAND,
				  .prefill_budget = 1};
	struct np_sched_req sr;
	struct np_sched_stats st = {0};
	pthread_t th;
	void *ret;

	tst_sched(&o);
	/* 1: a long prompt, prefilled a token or two a frame */
	tst_req(&sr, 1, 50, 0);
	tst_submit(&sr, 1);
	/* 0: cancels 1 at its first token */
	tst_req(&sr, 0, 2, 6);
	rq[0].cancel_other = &rq[1];
	tst_submit(&sr, 0);
	/* 2: cancels itself at its third token; 3: returns 1 at its second */
	tst_req(&sr, 2, 3, 20);
	rq[2].cancel_self_at = 3;
	tst_submit(&sr, 2);
	tst_req(&sr, 3, 4, 20);
	rq[3].return_at = 2;
	tst_submit(&sr, 3);
	/* queued until a slot frees; 5: cancelled from this thread */
	tst_req(&sr, 4, 5, 5);
	tst_submit(&sr, 4);
	tst_req(&sr, 5, 3, 0);
	rq[5].hold_at = 2;
	tst_submit(&sr, 5);
	ck_assert_int_eq(pthread_create(&th, NULL, run_thread, NULL), 0);
	/* its callback holds the second token */
	while (__atomic_load_n(&rq[5].n, __ATOMIC_ACQUIRE) < 2)
		usleep(200);
	ck_assert_int_eq(np_sched_cancel(sched, rq[5].id), 0);
	__atomic_store_n(&rq[5].cancelled, 1, __ATOMIC_RELEASE);
	np_sched_drain(sched);
	ck_assert_int_eq(pthread_join(th, &ret), 0);
	ck_assert_ptr_null(ret);

	ck_assert_int_eq(rq[0].cancel_other_ret, 0);
	ck_assert_int_eq(rq[1].finish, NP_FINISH_CANCELLED);
	ck_assert_int_eq(rq[1].stop, NP_STOP_CANCELLED);
	ck_assert_uint_eq(rq[1].n, 0);
	ck_assert_int_eq(rq[0].finish, NP_FINISH_LENGTH);
	ck_assert_uint_eq(rq[2].n, 3);
	ck_assert_int_eq(rq[2].stop, NP_STOP_CANCELLED);
	ck_assert_uint_eq(rq[3].n, 2);
	ck_assert_int_eq(rq[3].stop, NP_STOP_CALLER);
	ck_assert_int_eq(rq[3].finish, NP_FINISH_CANCELLED);
	ck_assert_int_eq(rq[4].finish, NP_FINISH_LENGTH);
	ck_assert_uint_eq(rq[4].n, 5);
	/* no token after the cancel returned: the second was being
	 * delivered, held until then */
	ck_assert_int_eq(rq[5].stop, NP_STOP_CANCELLED);
	ck_assert_uint_eq(rq[5].n, 2);
	for (uint32_t i = 0; i < 6; i++) {
		ck_assert_int_eq(rq[i].ends, 1);
		ck_assert_int_eq(rq[i].tokens_after_end, 0);
		if (rq[i].n)
			tst_check_ref(i, 1);
	}
	/* ended: nothing to cancel */
	ck_assert_int_eq(np_sched_cancel(sched, rq[2].id), -ENOENT);
	ck_assert_int_eq(np_sched_stats(sched, &st), 0);
	ck_assert_uint_eq(st.finished[NP_FINISH_CANCELLED], 4);
	ck_assert_uint_eq(st.finished[NP_FINISH_LENGTH], 2);
	ck_assert_uint_eq(st.slots_used, 0);
}
END_TEST

/* A full queue refuses with -EAGAIN; a drained scheduler with
 * -ESHUTDOWN; the queued requests all complete. */
START_TEST(queue_full)
{
	struct np_sched_opts o = {
		.slots = 2, .max_queue = 1, .candidates = CAND};
	struct np_sched_stats st = {0};
	struct np_sched_req sr;

	tst_sched(&o);
	for (uint32_t i = 0; i < 3; i++) {
		tst_req(&sr, i, 3 + i, 3);
		tst_submit(&sr, i);
	}
	tst_req(&sr, 3, 3, 3);
	ck_assert_int_eq(np_sched_submit(sched, &sr, NULL), -EAGAIN);
	ck_assert_int_eq(np_sched_stats(sched, &st), 0);
	ck_assert_uint_eq(st.queued, 3);
	ck_assert_uint_eq(st.rejected, 1);
	ck_assert_uint_eq(st.submitted, 3);
	np_sched_drain(sched);
	ck_assert_int_eq(np_sched_submit(sched, &sr, NULL), -ESHUTDOWN);
	ck_assert_int_eq(np_sched_run(sched), 0);
	for (uint32_t i = 0; i < 3; i++) {
		ck_assert_int_eq(rq[i].finish, NP_FINISH_LENGTH);
		ck_assert_uint_eq(rq[i].n, 3);
	}
	ck_assert_int_eq(np_sched_stats(sched, &st), 0);
	ck_assert_uint_eq(st.queued, 0);
	ck_assert_uint_eq(st.finished[NP_FINISH_LENGTH], 3);
}
END_TEST

/* Stop strings that span token boundaries end generation where the text
 * first contains them; the text before them is released, the string not. */
START_TEST(stop_strings)
{
	const struct np_tok *tok = np_pipeline_tok(pipe_);
	struct np_sched_req sr;
	char full[4096], *dec;
	size_t full_len, n_dec;
	size_t piece_end[MAX_POS];
	int32_t seq[2 * MAX_POS];
	uint32_t tries = 0;

	ck_assert_ptr_nonnull(tok);
	tst_sched(&(struct np_sched_opts){.candidates = CAND});
	tst_req(&sr, 0, 4, 40);
	tst_submit(&sr, 0);
	np_sched_drain(sched);
	ck_assert_int_eq(np_sched_run(sched), 0);
	np_sched_destroy(sched);
	sched = NULL;
	/* the text released is the decode of the tokens generated */
	memcpy(seq, rq[0].prompt, 4 * 4);
	memcpy(seq + 4, rq[0].tok, rq[0].n * 4);
	dec = malloc(8192);
	ck_assert_int_eq(np_tok_decode(tok, seq, 4, dec, 8192, &n_dec), 0);
	ck_assert_int_eq(np_tok_decode(tok, seq, 4 + rq[0].n, full,
				       sizeof(full), &full_len),
			 0);
	ck_assert_uint_eq(rq[0].text_len, full_len - n_dec);
	ck_assert_mem_eq(rq[0].text, full + n_dec, rq[0].text_len);
	memcpy(full, rq[0].text, rq[0].text_len);
	full_len = rq[0].text_len;
	full[full_len] = 0;
	for (uint32_t k = 1; k <= rq[0].n; k++) {
		ck_assert_int_eq(np_tok_decode(tok, seq, 4 + k, dec, 8192,
					       &piece_end[k - 1]),
				 0);
		piece_end[k - 1] -= n_dec;
	}
	/* each boundary between two non-empty pieces: a stop string of the
	 * last 2 bytes before it and 2 after */
	for (uint32_t k = 1; k + 1 < rq[0].n; k++) {
		size_t b = piece_end[k - 1];
		char stop[5];
		const char *stops[2] = {"\x01never", stop};
		const char *first;
		struct tst_req *r = &rq[1 + tries % (MAX_REQS - 1)];

		if (b < 2 || b + 2 > piece_end[k])
			continue;
		memcpy(stop, full + b - 2, 4);
		stop[4] = 0;
		if (strlen(stop) != 4)
			continue;
		first = strstr(full, stop);
		memset(r, 0, sizeof(*r));
		tst_sched(&(struct np_sched_opts){.candidates = CAND});
		tst_req(&sr, (uint32_t)(r - rq), 4, 40);
		memcpy(r->prompt, rq[0].prompt, 4 * 4);
		sr.stop_str = stops;
		sr.n_stop_str = 2;
		tst_submit(&sr, (uint32_t)(r - rq));
		np_sched_drain(sched);
		ck_assert_int_eq(np_sched_run(sched), 0);
		np_sched_destroy(sched);
		sched = NULL;
		ck_assert_int_eq(r->finish, NP_FINISH_STOP);
		ck_assert_int_eq(r->stop, NP_STOP_STRING);
		ck_assert_uint_eq(r->text_len, (size_t)(first - full));
		ck_assert_mem_eq(r->text, full, r->text_len);
		ck_assert_mem_eq(r->tok, rq[0].tok, r->n * 4);
		/* it ended at the token that completed the string */
		ck_assert_uint_ge(piece_end[r->n - 1], r->text_len + 4);
		ck_assert(r->n == 1 || piece_end[r->n - 2] < r->text_len + 4);
		if (++tries == 3)
			break;
	}
	ck_assert_uint_gt(tries, 0);
	free(dec);
}
END_TEST

/* A seed gives the same tokens whatever slot, micro-batch and
 * neighbours the request has; logprobs are consistent with the
 * candidates. */
static int lp_event(void *opaque, const struct np_sched_event *e)
{
	if (e->token >= 0) {
		double mass = 0;
		int found = 0;

		ck_assert_uint_eq(e->n_logprobs, 3);
		for (uint32_t i = 0; i < e->n_logprobs; i++) {
			ck_assert_float_le(e->logprob_val[i], 0);
			if (i)
				ck_assert_float_le(e->logprob_val[i],
						   e->logprob_val[i - 1]);
			ck_assert_uint_eq(e->logprob_id[i], e->cand_id[i]);
			mass += exp(e->logprob_val[i]);
			if ((int32_t)e->logprob_id[i] == e->token) {
				found = 1;
				ck_assert_float_eq(e->logprob,
						   e->logprob_val[i]);
			}
		}
		ck_assert_double_le(mass, 1 + 1e-5);
		ck_assert(found || e->logprob <= e->logprob_val[2]);
	}
	return on_event(opaque, e);
}

START_TEST(seeds_and_logprobs)
{
	struct np_sched_opts o = {.micro_batches = 3, .candidates = CAND};
	struct np_sched_req sr;
	pthread_t th;
	void *ret;

	tst_sched(&o);
	ck_assert_int_eq(pthread_create(&th, NULL, run_thread, NULL), 0);
	for (uint32_t i = 0; i < 6; i++) {
		tst_req(&sr, i, 5 + (i % 2) * 9, 12);
		/* 0, 2, 4: one prompt and seed; 1, 3, 5: neighbours */
		if (i % 2 == 0)
			memcpy(rq[i].prompt, rq[0].prompt, 5 * 4);
		sr.sampling = (struct np_sampling){.temperature = 1.3f,
						   .top_k = 6,
						   .top_p = 0.9f,
						   .seed = i % 2 ? i : 7};
		sr.logprobs = 3;
		sr.on_event = lp_event;
		tst_submit(&sr, i);
		usleep(3000 * i);
	}
	np_sched_drain(sched);
	ck_assert_int_eq(pthread_join(th, &ret), 0);
	ck_assert_ptr_null(ret);
	for (uint32_t i = 0; i < 6; i++) {
		ck_assert_uint_eq(rq[i].n, 12);
		tst_check_ref(i, 0);
	}
	ck_assert_mem_eq(rq[2].tok, rq[0].tok, 12 * 4);
	ck_assert_mem_eq(rq[4].tok, rq[0].tok, 12 * 4);
}
END_TEST

START_TEST(bad_input)
{
	int32_t long_prompt[MAX_POS] = {0}, bad = VOCAB;
	char long_stop[NP_SCHED_STOP_MAX + 2];
	const char *stops[1] = {long_stop};
	struct np_sched_req sr;

	ck_assert_int_eq(
		np_sched_create(pipe_,
				&(struct np_sched_opts){.slots = SLOTS + 1},
				&sched),
		-EINVAL);
	ck_assert_ptr_nonnull(strstr(last_log, "slots must be 1..4"));
	ck_assert_int_eq(np_sched_create(pipe_,
					 &(struct np_sched_opts){.resv[0] = 1},
					 &sched),
			 -EINVAL);
	tst_sched(&(struct np_sched_opts){.candidates = CAND});
	{
		/* one scheduler per pipeline; np_session_run uses one */
		struct np_sched *second = NULL;
		struct np_request one = {.prompt = &bad, .n_prompt = 1};

		bad = 1;
		ck_assert_int_eq(np_sched_create(pipe_, NULL, &second), -EBUSY);
		ck_assert_ptr_null(second);
		ck_assert_int_eq(np_session_run(pipe_, &one, 1, NULL, NULL),
				 -EBUSY);
		bad = VOCAB;
	}
	tst_req(&sr, 0, 3, 3);
	sr.prompt = long_prompt;
	sr.n_prompt = MAX_POS;
	ck_assert_int_eq(np_sched_submit(sched, &sr, NULL), -ERANGE);
	sr.n_prompt = 0;
	ck_assert_int_eq(np_sched_submit(sched, &sr, NULL), -EINVAL);
	sr.prompt = &bad;
	sr.n_prompt = 1;
	ck_assert_int_eq(np_sched_submit(sched, &sr, NULL), -EINVAL);
	ck_assert_ptr_nonnull(strstr(last_log, "outside the vocabulary"));
	tst_req(&sr, 0, 3, 3);
	memset(long_stop, 'a', sizeof(long_stop) - 1);
	long_stop[sizeof(long_stop) - 1] = 0;
	sr.stop_str = stops;
	sr.n_stop_str = 1;
	ck_assert_int_eq(np_sched_submit(sched, &sr, NULL), -EINVAL);
	ck_assert_ptr_nonnull(strstr(last_log, "too long"));
	tst_req(&sr, 0, 3, 3);
	sr.logprobs = CAND + 1;
	ck_assert_int_eq(np_sched_submit(sched, &sr, NULL), -EINVAL);
	tst_req(&sr, 0, 3, 3);
	sr.sampling.temperature = -1;
	ck_assert_int_eq(np_sched_submit(sched, &sr, NULL), -EINVAL);
	ck_assert_int_eq(np_sched_cancel(sched, 12345), -ENOENT);
	/* a scheduler destroyed with a request queued ends it */
	tst_req(&sr, 0, 3, 3);
	tst_submit(&sr, 0);
	np_sched_destroy(sched);
	sched = NULL;
	ck_assert_int_eq(rq[0].ends, 1);
	ck_assert_int_eq(rq[0].finish, NP_FINISH_CANCELLED);
}
END_TEST

Suite *np_suite_sched(void)
{
	Suite *s = suite_create("sched");
	TCase *tc = tcase_create("sched");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, staggered_arrivals);
	tcase_add_test(tc, cancellation);
	tcase_add_test(tc, queue_full);
	tcase_add_test(tc, stop_strings);
	tcase_add_test(tc, seeds_and_logprobs);
	tcase_add_test(tc, bad_input);
	suite_add_tcase(s, tc);
	return s;
}
