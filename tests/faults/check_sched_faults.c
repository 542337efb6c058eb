// SPDX-License-Identifier: MIT
/*
 * The scheduler (np/sched.h) survives a card fault that strikes while
 * requests are still joining: requests submitted from another thread
 * before and after the fault all complete, none is lost, none gets a
 * token twice; greedy ones get the integer reference's tokens and seeded
 * ones the tokens of a fault-free run (the sampler's state survives the
 * replay).
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "np/model.h"
#include "np/np.h"
#include "np/pipeline.h"
#include "np/recover.h"
#include "np/sched.h"
#include "test.h"

static const struct np_model_shape shape = {3,	 64, 4,	   2,	 128,
					    512, 64, 1e4f, 1e-5f};

#define N_CARDS 5u /* the pipeline's; the context has one spare more */
#define SLOTS 4u
#define N_REQ 10u
#define MAX_POS 64u
#define MAX_TOKENS 10u
#define INJECT_AT 12u /* tokens delivered before the fault strikes */

struct tst_run {
	int32_t prompt[N_REQ][MAX_POS];
	uint32_t n_prompt[N_REQ];
	int32_t tok[N_REQ][MAX_POS];
	uint32_t n[N_REQ];
	int ends[N_REQ];
	enum np_stop_reason stop[N_REQ];
	uint32_t replayed[N_REQ];
	uint32_t total;
	const char *fault;
	unsigned int card;
	int inject_ret;
	unsigned int recoveries;
	int injected; /* atomic: the fault was injected */
};

struct tst_ev {
	struct tst_run *run;
	uint32_t i;
};

static struct tst_rig rig;
static struct np_sched *sched;
static struct tst_run *ref, *run;

static void setup(void)
{
	tst_rig_open(&rig, &shape, 78, N_CARDS, SLOTS, MAX_POS);
	ref = calloc(1, sizeof(*ref));
	run = calloc(1, sizeof(*run));
	ck_assert_ptr_nonnull(ref);
	ck_assert_ptr_nonnull(run);
}

static void teardown(void)
{
	np_sched_destroy(sched);
	tst_rig_close(&rig);
	free(ref);
	free(run);
	sched = NULL;
}

static int on_event(void *opaque, const struct np_sched_event *e)
{
	const struct tst_ev *te = opaque;
	struct tst_run *r = te->run;
	uint32_t i = te->i;

	if (e->finish) {
		r->ends[i]++;
		r->stop[i] = e->stop;
		r->replayed[i] = e->stats->replayed;
	}
	if (e->token < 0)
		return 0;
	/* each token once, in order */
	ck_assert_uint_eq(e->pos, r->n_prompt[i] + r->n[i]);
	r->tok[i][r->n[i]++] = e->token;
	if (++r->total == INJECT_AT && r->fault) {
		r->inject_ret =
			np_card_inject(np_ctx_card(rig.ctx, r->card), r->fault);
		__atomic_store_n(&r->injected, 1, __ATOMIC_RELEASE);
	}
	return 0;
}

static void on_recover(void *opaque, const struct np_recover_event *ev)
{
	struct tst_run *r = opaque;

	ck_assert_uint_eq(ev->attempt, 1);
	ck_assert_uint_gt(ev->requests, 0);
	ck_assert_uint_gt(ev->replayed_tokens, 0);
	r->recoveries++;
}

static void *run_thread(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)np_sched_run(sched);
}

/* N_REQ requests, every other one seeded, submitted from this thread
 * while the scheduler runs: with a fault, the second half once it was
 * injected (while the run fails, recovers, or goes on after). */
static void serve(struct tst_run *r)
{
	struct np_sched_opts o = {.micro_batches = 2,
				  .prefill_budget = 4,
				  .max_recoveries = 2,
				  .on_recover = on_recover,
				  .recover_opaque = r};
	struct tst_ev te[N_REQ];
	struct np_sched_stats st = {0};
	pthread_t th;
	void *ret;

	ck_assert_int_eq(np_sched_create(rig.pipe, &o, &sched), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, run_thread, NULL), 0);
	for (uint32_t i = 0; i < N_REQ; i++) {
		struct np_sched_req sr = {0};

		r->n_prompt[i] = 3 + (i * 7) % 20;
		for (uint32_t k = 0; k < r->n_prompt[i]; k++)
			r->prompt[i][k] =
				(int32_t)((i * 97 + k * 31 + 5) % 512);
		te[i] = (struct tst_ev){r, i};
		sr.prompt = r->prompt[i];
		sr.n_prompt = r->n_prompt[i];
		sr.max_tokens = MAX_TOKENS;
		if (i % 2)
			sr.sampling = (struct np_sampling){
				.temperature = 1.1f, .top_k = 5, .seed = i};
		sr.on_event = on_event;
		sr.opaque = &te[i];
		if (i == N_REQ / 2 && r->fault)
			while (!__atomic_load_n(&r->injected, __ATOMIC_ACQUIRE))
				usleep(100);
		ck_assert_int_eq(np_sched_submit(sched, &sr, NULL), 0);
		usleep(2000);
	}
	np_sched_drain(sched);
	ck_assert_int_eq(pthread_join(th, &ret), 0);
	ck_assert_msg(ret == NULL, "fault '%s': %s",
		      r->fault ? r->fault : "none", tst_last_log);
	ck_assert_int_eq(np_sched_stats(sched, &st), 0);
	ck_assert_uint_eq(st.recoveries, r->recoveries);
	ck_assert_uint_eq(st.finished[NP_FINISH_LENGTH], N_REQ);
	ck_assert_uint_eq(st.tokens, N_REQ * MAX_TOKENS);
	np_sched_destroy(sched);
	sched = NULL;
}

static void check_greedy(const struct tst_run *r, uint32_t i)
{
	struct np_ref_int *ri;
	int32_t logits[512];

	ck_assert_int_eq(np_ref_int_create(rig.comp, &ri), 0);
	for (uint32_t pos = 0; pos + 1 < r->n_prompt[i] + r->n[i]; pos++) {
		int32_t t = pos < r->n_prompt[i] ?
				    r->prompt[i][pos] :
				    r->tok[i][pos - r->n_prompt[i]];
		int32_t best = 0;

		ck_assert_int_eq(np_ref_int_step(ri, 0, pos, t, logits), 0);
		if (pos + 1 < r->n_prompt[i])
			continue;
		for (int32_t v = 1; v < 512; v++)
			if (logits[v] > logits[best])
				best = v;
		ck_assert_int_eq(r->tok[i][pos + 1 - r->n_prompt[i]], best);
	}
	np_ref_int_destroy(ri);
}

static void check_fault(const char *fault, unsigned int card)
{
	uint32_t replayed = 0;

	serve(ref);
	ck_assert_uint_eq(ref->recoveries, 0);
	run->fault = fault;
	run->card = card;
	serve(run);
	ck_assert_int_eq(run->inject_ret, 0);
	ck_assert_uint_ge(run->recoveries, 1);
	for (uint32_t i = 0; i < N_REQ; i++) {
		ck_assert_int_eq(run->ends[i], 1);
		ck_assert_int_eq(run->stop[i], NP_STOP_MAX_TOKENS);
		ck_assert_uint_eq(run->n[i], MAX_TOKENS);
		ck_assert_mem_eq(run->tok[i], ref->tok[i], sizeof(ref->tok[i]));
		replayed += run->replayed[i];
		if (i % 2 == 0)
			check_greedy(run, i);
	}
	ck_assert_uint_gt(replayed, 0);
	for (uint32_t c = 0; c < N_CARDS; c++)
		ck_assert_int_eq(np_pipeline_verify(rig.pipe, c, NULL), 0);
}

START_TEST(dma_error_while_joining)
{
	check_fault("dma-error:engine=1,n=1", 0);
}
END_TEST

START_TEST(card_removed_while_joining)
{
	check_fault("remove", 2);
}
END_TEST

/* Without recovery a fault ends every request with NP_FINISH_ERROR and
 * np_sched_run with the failure. */
START_TEST(failure_without_recovery)
{
	struct tst_run *r = run;
	struct tst_ev te[SLOTS];
	struct np_sched_stats st = {0};

	r->fault = "dma-error:engine=0,n=1";
	r->card = 4;
	ck_assert_int_eq(np_sched_create(rig.pipe, NULL, &sched), 0);
	for (uint32_t i = 0; i < SLOTS; i++) {
		struct np_sched_req sr = {0};

		r->n_prompt[i] = 4;
		te[i] = (struct tst_ev){r, i};
		sr.prompt = r->prompt[i];
		sr.n_prompt = 4;
		sr.max_tokens = MAX_TOKENS;
		sr.on_event = on_event;
		sr.opaque = &te[i];
		ck_assert_int_eq(np_sched_submit(sched, &sr, NULL), 0);
	}
	np_sched_drain(sched);
	ck_assert_int_lt(np_sched_run(sched), 0);
	ck_assert_int_eq(np_sched_stats(sched, &st), 0);
	ck_assert_int_eq(st.state, NP_SCHED_FAILED);
	ck_assert_uint_eq(st.finished[NP_FINISH_ERROR], SLOTS);
	for (uint32_t i = 0; i < SLOTS; i++) {
		ck_assert_int_eq(r->ends[i], 1);
		ck_assert_int_eq(r->stop[i], NP_STOP_ERROR);
	}
	ck_assert_int_lt(np_sched_run(sched), 0);
}
END_TEST

Suite *np_suite_sched_faults(void)
{
	Suite *s = suite_create("sched_faults");
	TCase *tc = tcase_create("sched_faults");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, dma_error_while_joining);
	tcase_add_test(tc, card_removed_while_joining);
	tcase_add_test(tc, failure_without_recovery);
	suite_add_tcase(s, tc);
	return s;
}
