/* SPDX-License-Identifier: MIT */
/* Suites of the qtest runner, one per check_<module>.c. */
#ifndef NP_QTEST_SUITES_H
#define NP_QTEST_SUITES_H

#include <check.h>

Suite *np_suite_np_card(void);

#endif /* NP_QTEST_SUITES_H */
