/* SPDX-License-Identifier: MIT */
/* Shared helpers of the libnp suite. */
#ifndef TST_LIBNP_TEST_H
#define TST_LIBNP_TEST_H

#include <check.h>

#include "np/np.h"

Suite *np_suite_buf(void);
Suite *np_suite_ctx(void);
Suite *np_suite_xfer(void);
Suite *np_suite_c2c(void);

/* The context of the running test, opened from NP_DEVICES by
 * tst_setup(), closed by tst_teardown(). */
extern struct np_ctx *tst_ctx;

void tst_setup(void);
void tst_teardown(void);
/* Open from NP_DEVICES with opts; log messages go to tst_log_text(). */
int tst_open(const struct np_open_opts *opts, struct np_ctx **out);
struct np_open_opts tst_opts(void);
/* Everything logged since the last tst_log_clear(). */
const char *tst_log_text(void);
void tst_log_clear(void);
int tst_is_emu(void);

/* Deterministic byte pattern seeded by seed. */
void tst_fill(void *p, size_t len, unsigned int seed);
/* 1 if p holds tst_fill(seed)'s pattern. */
int tst_check(const void *p, size_t len, unsigned int seed);

/* Synchronous transfers between buf and card address addr. */
int tst_h2c(struct np_card *c, struct np_buf *b, size_t off, uint64_t addr,
	    size_t len);
int tst_c2h(struct np_card *c, struct np_buf *b, size_t off, uint64_t addr,
	    size_t len);

#endif /* TST_LIBNP_TEST_H */
