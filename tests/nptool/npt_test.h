/* SPDX-License-Identifier: MIT */
/*
 * nptool suite: helpers that run the nptool binary and read its output.
 */
#ifndef NPT_TEST_H
#define NPT_TEST_H

#include <check.h>

#include "jsonp.h"

struct npt_run {
	int status; /* exit code; 128 + signal number if killed */
	char *out; /* stdout, NUL-terminated */
	char *err; /* stderr */
	struct jv *json; /* stdout parsed when it is one JSON document */
};

/* Called in the child between fork and exec (may be NULL). */
extern void (*npt_pre_exec)(void);

/* Run nptool ($NPTOOL, else the one built with the suite) with the given
 * arguments (NULL-terminated), in the current environment. Always fills
 * r; free it with npt_run_free. */
void npt_run(struct npt_run *r, ...) __attribute__((sentinel));
void npt_run_free(struct npt_run *r);

/* Assert that r is a --json envelope of command cmd with exit code rc,
 * and return it. */
struct jv *npt_envelope(const struct npt_run *r, const char *cmd, int rc);

/* Lines of text in s. */
unsigned int npt_lines(const char *s);

Suite *np_suite_json(void);
Suite *np_suite_cli(void);
Suite *np_suite_emu(void);
Suite *np_suite_sysfs(void);
Suite *np_suite_guest(void);
Suite *np_suite_model(void);

#endif /* NPT_TEST_H */
