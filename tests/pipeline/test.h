/* SPDX-License-Identifier: MIT */
/* Suites of the pipeline test runner. */
#ifndef TST_PIPELINE_TEST_H
#define TST_PIPELINE_TEST_H

#include <check.h>

Suite *np_suite_pipeline(void);
Suite *np_suite_layer_job(void);
Suite *np_suite_sched(void);
Suite *np_suite_cache(void);

#endif /* TST_PIPELINE_TEST_H */
