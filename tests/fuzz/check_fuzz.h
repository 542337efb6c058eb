/* SPDX-License-Identifier: MIT */
/* Fuzz replay suite: suites and shared helpers. */
#ifndef NP_CHECK_FUZZ_H
#define NP_CHECK_FUZZ_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

Suite *np_suite_replay(void);
Suite *np_suite_badinput(void);

/* Whole file into a malloc()ed buffer (ck_assert on failure). */
uint8_t *npf_read_file(const char *path, size_t *len);

#endif /* NP_CHECK_FUZZ_H */
