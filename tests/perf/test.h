/* SPDX-License-Identifier: MIT */
/* Suites of the performance test runner: SIMD kernels, performance model. */
#ifndef TST_PERF_TEST_H
#define TST_PERF_TEST_H

#include <check.h>

Suite *np_suite_kernels(void);
Suite *np_suite_perfmodel(void);
Suite *np_suite_perfmulti(void);

#endif /* TST_PERF_TEST_H */
