/* SPDX-License-Identifier: MIT */
/* Suites of the performance suite: SIMD kernels, performance model. */
#ifndef CHECK_PERF_H
#define CHECK_PERF_H

#include <check.h>

Suite *np_suite_kernels(void);
Suite *np_suite_perfmodel(void);

#endif
