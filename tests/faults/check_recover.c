// SPDX-License-Identifier: MIT
/*
 * Recovery from every injected fault kind during a running pipeline
 * (np_session_run_recover on emulated cards): a fault strikes while tokens
 * are being generated, the run is recovered (or, for faults the card
 * absorbs, simply continues), and every request's greedy tokens equal
 * those of a fault-free run of the same pipeline. Also: the weights
 * checksum of every card verifies after load, and catches SRAM that was
 * overwritten behind the pipeline's back. A removed card's image moves to
 * the spare card (the context opens one card more than the model needs);
 * without a spare the run fails naming the removed card.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "np/model.h"
#include "np/np.h"
#include "np/pipeline.h"
#include "np/recover.h"
#include "np_abi.h"
#include "test.h"

/* 3 layers on 3 cards, 2 output cards */
static const struct np_model_shape shape = {3,	 64, 4,	   2,	 128,
					    512, 64, 1e4f, 1e-5f};

#define N_CARDS 5u /* the pipeline's; the context has one spare more */
#define N_REQ 6u
#define MAX_POS 64u
#define MAX_TOKENS 12u
#define INJECT_AT 20u /* tokens delivered before the fault strikes */

struct record {
	int32_t tok[N_REQ][MAX_POS];
	unsigned int seen[N_REQ][MAX_POS];
	uint32_t count[N_REQ];
	uint32_t total;
	/* the fault: injected into card `card` at the INJECT_AT-th token */
	const char *fault;
	unsigned int card;
	int inject_ret;
	unsigned int recoveries;
	struct np_recover_event last; /* the last recovery */
};

static struct tst_rig rig;
static struct record *ref, *run;

static void setup(void)
{
	tst_rig_open(&rig, &shape, 77, N_CARDS, N_REQ, MAX_POS);
	ref = calloc(1, sizeof(*ref));
	run = calloc(1, sizeof(*run));
	ck_assert_ptr_nonnull(ref);
	ck_assert_ptr_nonnull(run);
}

static void teardown(void)
{
	tst_rig_close(&rig);
	free(ref);
	free(run);
}

static int on_token(void *opaque, const struct np_token_event *e)
{
	struct record *r = opaque;

	ck_assert_uint_lt(e->request, N_REQ);
	ck_assert_uint_lt(e->pos, MAX_POS);
	/* each token once, in order: none lost, none repeated */
	ck_assert_uint_eq(r->seen[e->request][e->pos], 0);
	if (r->count[e->request])
		ck_assert_uint_eq(r->seen[e->request][e->pos - 1], 1);
	r->seen[e->request][e->pos] = 1;
	r->tok[e->request][e->pos] = e->token;
	r->count[e->request]++;
	if (++r->total == INJECT_AT && r->fault)
		r->inject_ret =
			np_card_inject(np_ctx_card(rig.ctx, r->card), r->fault);
	return 0;
}

static void on_recover(void *opaque, const struct np_recover_event *ev)
{
	struct record *r = opaque;

	ck_assert_uint_eq(ev->attempt, r->recoveries + 1);
	ck_assert_int_lt(ev->error, 0);
	ck_assert_uint_gt(ev->requests, 0);
	ck_assert_uint_gt(ev->replayed_tokens, 0);
	ck_assert_ptr_nonnull(ev->fault);
	ck_assert_int_lt(ev->card, (int)N_CARDS);
	r->last = *ev;
	r->recoveries++;
}

static void prompts(struct np_request *req, int32_t (*buf)[MAX_POS])
{
	for (uint32_t r = 0; r < N_REQ; r++) {
		uint32_t len = 2 + 5 * r;

		for (uint32_t i = 0; i < len; i++)
			buf[r][i] = (int32_t)((r * 97 + i * 31 + 5) % 512);
		memset(&req[r], 0, sizeof(req[r]));
		req[r].prompt = buf[r];
		req[r].n_prompt = len;
		req[r].max_tokens = MAX_TOKENS;
	}
}

static void session(struct record *r, struct np_session_stats *st)
{
	struct np_request req[N_REQ];
	int32_t buf[N_REQ][MAX_POS];
	struct np_session_opts so = {
		.micro_batches = 3, .on_token = on_token, .opaque = r};
	struct np_recover_opts ro = {.on_recover = on_recover, .opaque = r};

	prompts(req, buf);
	ck_assert_msg(
		np_session_run_recover(rig.pipe, req, N_REQ, &so, &ro, st) == 0,
		"run with fault '%s' failed: %s", r->fault ? r->fault : "none",
		tst_last_log);
}

static uint32_t reg(unsigned int card, uint32_t off)
{
	uint32_t v = 0;

	ck_assert_int_eq(np_card_reg_read(np_ctx_card(rig.ctx, card), off, &v),
			 0);
	return v;
}

/* A fault-free run, then one with the fault; the same tokens. */
static void check_fault(const char *fault, unsigned int card,
			int needs_recovery)
{
	struct np_request_stats rs[N_REQ];
	struct np_session_stats st = {.req = rs};

	session(ref, NULL);
	ck_assert_uint_eq(ref->recoveries, 0);
	run->fault = fault;
	run->card = card;
	session(run, &st);
	ck_assert_msg(run->inject_ret == 0, "inject '%s' into card %u: %d",
		      fault, card, run->inject_ret);
	if (needs_recovery)
		ck_assert_uint_ge(run->recoveries, 1);
	for (uint32_t r = 0; r < N_REQ; r++) {
		ck_assert_uint_eq(run->count[r], MAX_TOKENS);
		ck_assert_uint_eq(run->count[r], ref->count[r]);
		ck_assert_uint_eq(rs[r].tokens, MAX_TOKENS);
		ck_assert_int_eq(rs[r].stop, NP_STOP_MAX_TOKENS);
		ck_assert_mem_eq(run->seen[r], ref->seen[r],
				 sizeof(ref->seen[r]));
		ck_assert_mem_eq(run->tok[r], ref->tok[r], sizeof(ref->tok[r]));
	}
	ck_assert_uint_eq(st.tokens, N_REQ * MAX_TOKENS);
	for (uint32_t c = 0; c < N_CARDS; c++)
		ck_assert_int_eq(np_pipeline_verify(rig.pipe, c, NULL), 0);
}

/*
 * A card dead before the run starts: found by the run's checks at once,
 * not after the context timeout (the forwarding engines' drain at the
 * start of a run waited that long on a card reading all ones).
 */
START_TEST(dead_before_run)
{
	struct np_request_stats rs[N_REQ];
	/* with statistics, as nptool run asks for them: the forwarding
	 * engines' counters are read at the start */
	struct np_session_stats st = {.req = rs};

	session(ref, NULL);
	ck_assert_int_eq(np_card_inject(np_ctx_card(rig.ctx, 1), "dead"), 0);
	session(run, &st);
	ck_assert_uint_ge(run->recoveries, 1);
	ck_assert_str_eq(run->last.fault, "not answering");
	/* the rig's context timeout is 1.5 s: the old wait took all of it */
	ck_assert_uint_lt(run->last.detect_ns, 1500ull * 1000000ull);
	for (uint32_t r = 0; r < N_REQ; r++)
		ck_assert_mem_eq(run->tok[r], ref->tok[r], sizeof(ref->tok[r]));
}
END_TEST

START_TEST(dma_error_on_forward)
{
	/* card 0 forwards each frame to card 1 on DMA engine 1 */
	check_fault("dma-error:engine=1,n=1", 0, 1);
}
END_TEST

START_TEST(dma_error_on_output_card)
{
	check_fault("dma-error:engine=0,n=2", 4, 1);
}
END_TEST

START_TEST(compute_queue_hangs)
{
	check_fault("hang:engine=compute,n=1", 1, 1);
	/* found by its own queue's watch, not the run's progress timeout */
	ck_assert_str_eq(run->last.fault, "compute queue hang");
	ck_assert_int_eq(run->last.card, 1);
}
END_TEST

START_TEST(dma_engine_hangs)
{
	check_fault("hang:engine=1,n=1", 2, 1);
	/* the hung engine's card named, in proportion to its transfers,
	 * not after the context's timeout as "timeout" of no card */
	ck_assert_str_eq(run->last.fault, "DMA engine hang");
	ck_assert_int_eq(run->last.card, 2);
}
END_TEST

START_TEST(card_stops_answering)
{
	check_fault("dead", 2, 1);
}
END_TEST

START_TEST(double_bit_flip_in_weights)
{
	char f[64];

	snprintf(f, sizeof(f), "sram-flip:addr=0x%llx,bits=2",
		 (unsigned long long)(NP_CA_SRAM_BASE +
				      NP_CORE_SRAM_OFFSET(5, 0) + 16));
	check_fault(f, 1, 1);
	/* the reset that recovered the card cleared its counters */
	ck_assert_uint_eq(reg(1, NP_REG_STATUS) & NP_STATUS_FATAL, 0);
}
END_TEST

START_TEST(single_bit_flip_is_corrected)
{
	char f[64];

	snprintf(f, sizeof(f), "sram-flip:addr=0x%llx,bits=1",
		 (unsigned long long)(NP_CA_SRAM_BASE +
				      NP_CORE_SRAM_OFFSET(7, 0) + 8));
	check_fault(f, 3, 0);
	if (!run->recoveries)
		ck_assert_uint_eq(reg(3, NP_REG_SRAM_CE), 1);
}
END_TEST

START_TEST(thermal_throttling)
{
	check_fault("overheat", 0, 0);
	if (!run->recoveries)
		ck_assert_uint_ge(reg(0, NP_REG_THROTTLE_COUNT), 1);
}
END_TEST

START_TEST(surprise_removal_moves_to_spare)
{
	struct np_card *gone = np_ctx_card(rig.ctx, 2);

	check_fault("remove", 2, 1);
	ck_assert_int_eq(run->last.card, 2);
	ck_assert_str_eq(run->last.fault, "removed");
	ck_assert_int_eq(run->last.spare, (int)N_CARDS);
	ck_assert_int_eq(np_card_removed(gone), 1);
	ck_assert_int_eq(np_card_removed(np_ctx_card(rig.ctx, N_CARDS)), 0);
	ck_assert_int_eq(np_card_reset(gone), -ENODEV);
}
END_TEST

START_TEST(removal_without_spare_fails_naming_the_card)
{
	struct np_request req[N_REQ];
	int32_t buf[N_REQ][MAX_POS];
	struct np_session_opts so = {
		.micro_batches = 3, .on_token = on_token, .opaque = run};
	char name[32];

	ck_assert_int_eq(
		np_card_inject(np_ctx_card(rig.ctx, N_CARDS), "remove"), 0);
	run->fault = "remove";
	run->card = 1;
	prompts(req, buf);
	ck_assert_int_eq(
		np_session_run_recover(rig.pipe, req, N_REQ, &so, NULL, NULL),
		-ENODEV);
	ck_assert_int_eq(run->inject_ret, 0);
	snprintf(name, sizeof(name), "card %s ",
		 np_card_name(np_ctx_card(rig.ctx, 1)));
	ck_assert_msg(strstr(tst_last_log, name) &&
			      strstr(tst_last_log, "spare"),
		      "log: %s", tst_last_log);
}
END_TEST

START_TEST(verify_catches_overwritten_weights)
{
	struct np_buf *buf;
	uint32_t crc0, crc1;
	struct np_xfer_spec s = {
		.op = NP_XFER_H2C,
		.engine = 0,
		.card_addr = NP_CA_SRAM_BASE + NP_CORE_SRAM_OFFSET(3, 0) + 64,
		.len = 64,
	};

	for (uint32_t c = 0; c < N_CARDS; c++)
		ck_assert_int_eq(np_pipeline_verify(rig.pipe, c, NULL), 0);
	ck_assert_int_eq(np_pipeline_verify(rig.pipe, N_CARDS, NULL), -EINVAL);
	ck_assert_int_eq(np_pipeline_verify(rig.pipe, 1, &crc0), 0);
	ck_assert_int_eq(np_buf_alloc(rig.ctx, 4096, &buf), 0);
	memset(np_buf_ptr(buf), 0x5a, 4096);
	s.buf = buf;
	ck_assert_int_eq(np_xfer_run(np_ctx_card(rig.ctx, 1), &s), 0);
	ck_assert_int_eq(np_pipeline_verify(rig.pipe, 1, &crc1), -EBADMSG);
	ck_assert_uint_ne(crc0, crc1);
	ck_assert_ptr_nonnull(strstr(tst_last_log, "checksum"));
	np_buf_free(buf);
}
END_TEST

START_TEST(inject_refuses_bad_faults)
{
	struct np_card *c = np_ctx_card(rig.ctx, 0);

	ck_assert_int_eq(np_card_inject(c, "meltdown"), -EINVAL);
	ck_assert_int_eq(np_card_inject(c, "hang:engine=7,n=1"), -EINVAL);
	ck_assert_int_eq(np_card_inject(NULL, "dead"), -EINVAL);
	ck_assert_int_eq(np_card_inject(c, NULL), -EINVAL);
}
END_TEST

Suite *np_suite_recover(void)
{
	Suite *s = suite_create("recover");
	TCase *tc = tcase_create("faults");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, dead_before_run);
	tcase_add_test(tc, dma_error_on_forward);
	tcase_add_test(tc, dma_error_on_output_card);
	tcase_add_test(tc, compute_queue_hangs);
	tcase_add_test(tc, dma_engine_hangs);
	tcase_add_test(tc, card_stops_answering);
	tcase_add_test(tc, double_bit_flip_in_weights);
	tcase_add_test(tc, single_bit_flip_is_corrected);
	tcase_add_test(tc, thermal_throttling);
	tcase_add_test(tc, surprise_removal_moves_to_spare);
	tcase_add_test(tc, removal_without_spare_fails_naming_the_card);
	tcase_add_test(tc, verify_catches_overwritten_weights);
	tcase_add_test(tc, inject_refuses_bad_faults);
	suite_add_tcase(s, tc);
	return s;
}
