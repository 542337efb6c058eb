/* SPDX-License-Identifier: MIT */
/* Shared helpers of the libnp suite. */
#ifndef NP_TEST_H
#define NP_TEST_H

#include <check.h>

#include "np/np.h"

Suite *np_suite_buf(void);
Suite *np_suite_ctx(void);
Suite *np_suite_xfer(void);
Suite *np_suite_c2c(void);

/* The context of the running test, opened from NP_DEVICES by
 * npt_setup(), closed by npt_teardown(). */
extern struct np_ctx *npt_ctx;

void npt_setup(void);
void npt_teardown(void);
/* Open from NP_DEVICES with opts; log messages go to npt_log_text(). */
int npt_open(const struct np_open_opts *opts, struct np_ctx **out);
struct np_open_opts npt_opts(void);
/* Everything logged since the last npt_log_clear(). */
const char *npt_log_text(void);
void npt_log_clear(void);
int npt_is_emu(void);

/* Deterministic byte pattern seeded by seed. */
void npt_fill(void *p, size_t len, unsigned int seed);
/* 1 if p holds npt_fill(seed)'s pattern. */
int npt_check(const void *p, size_t len, unsigned int seed);

/* Synchronous transfers between buf and card address addr. */
int npt_h2c(struct np_card *c, struct np_buf *b, size_t off, uint64_t addr,
	    size_t len);
int npt_c2h(struct np_card *c, struct np_buf *b, size_t off, uint64_t addr,
	    size_t len);

#endif /* NP_TEST_H */
