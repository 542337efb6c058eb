/* SPDX-License-Identifier: MIT */
/* Suites of the fault test runner. */
#ifndef TST_FAULTS_TEST_H
#define TST_FAULTS_TEST_H

#include <check.h>

Suite *np_suite_recover(void);
Suite *np_suite_sched_faults(void);

#endif /* TST_FAULTS_TEST_H */
