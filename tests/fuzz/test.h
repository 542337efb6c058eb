/* SPDX-License-Identifier: MIT */
/* The fuzz suites' shared header: the suites and their helpers (test.c). */
#ifndef TESTS_FUZZ_TEST_H
#define TESTS_FUZZ_TEST_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

Suite *np_suite_replay(void);
Suite *np_suite_badinput(void);

/* Whole file into a malloc()ed buffer (ck_assert on failure). */
uint8_t *tst_read_file(const char *path, size_t *len);

#endif /* TESTS_FUZZ_TEST_H */
