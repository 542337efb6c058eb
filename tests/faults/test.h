/* SPDX-License-Identifier: MIT */
/* Suites of the fault test runner. */
#ifndef TST_FAULTS_TEST_H
#define TST_FAULTS_TEST_H

#include <check.h>
#include <stdint.h>

struct np_model_shape;

/* A compiled synthetic model on emulated cards (n_cards for the pipeline,
 * one spare more in the context), for both suites. */
struct tst_rig {
	struct np_ctx *ctx;
	struct np_model *model;
	struct np_quant_calib *calib;
	struct np_compiled *comp;
	struct np_pipeline *pipe;
};

/* The last error message libnp logged */
extern char tst_last_log[512];

void tst_rig_open(struct tst_rig *g, const struct np_model_shape *shape,
		  uint64_t seed, uint32_t n_cards, uint32_t batch,
		  uint32_t max_seq);
void tst_rig_close(struct tst_rig *g);

Suite *np_suite_recover(void);
Suite *np_suite_sched_faults(void);

#endif /* TST_FAULTS_TEST_H */
