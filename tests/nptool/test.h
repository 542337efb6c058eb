/* SPDX-License-Identifier: MIT */
/*
 * nptool suite: the suites, the helpers that run the nptool binary and
 * read its output (run.c), and a small strict JSON parser (RFC 8259,
 * jsonp.c) with which the tests read nptool's --json output back,
 * independently of the writer.
 */
#ifndef TST_TEST_H
#define TST_TEST_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>

enum tst_jv_type {
	TST_JV_NULL,
	TST_JV_BOOL,
	TST_JV_NUM,
	TST_JV_STR,
	TST_JV_ARR,
	TST_JV_OBJ
};

struct tst_jv {
	enum tst_jv_type type;
	bool b;
	double num;
	char *str; /* TST_JV_STR: decoded UTF-8 */
	size_t n; /* TST_JV_ARR / TST_JV_OBJ: number of members */
	char **keys; /* TST_JV_OBJ */
	struct tst_jv **items;
};

/* Parse one value from s; whitespace around it is skipped. *end (if not
 * NULL) points after it. NULL on a syntax error or trailing garbage when
 * end is NULL. */
struct tst_jv *tst_jv_parse(const char *s, const char **end);
void tst_jv_free(struct tst_jv *v);

/* Member key of an object, element i of an array; NULL when absent or the
 * value is not of that type. */
struct tst_jv *tst_jv_get(const struct tst_jv *obj, const char *key);
struct tst_jv *tst_jv_at(const struct tst_jv *arr, size_t i);
/* Shortcuts: the string or number at key (NULL / -1e300 when absent). */
const char *tst_jv_str(const struct tst_jv *obj, const char *key);
double tst_jv_num(const struct tst_jv *obj, const char *key);

struct tst_run {
	int status; /* exit code; 128 + signal number if killed */
	char *out; /* stdout, NUL-terminated */
	char *err; /* stderr */
	struct tst_jv *json; /* stdout parsed when it is one JSON document */
};

/* Called in the child between fork and exec (may be NULL). */
extern void (*tst_pre_exec)(void);

/* Run nptool ($NPTOOL, else the one built with the suite) with the given
 * arguments (NULL-terminated), in the current environment. Always fills
 * r; free it with tst_run_free. */
void tst_run(struct tst_run *r, ...) __attribute__((sentinel));
void tst_run_free(struct tst_run *r);

/* Assert that r is a --json envelope of command cmd with exit code rc,
 * and return it. */
struct tst_jv *tst_envelope(const struct tst_run *r, const char *cmd, int rc);

/* Lines of text in s. */
unsigned int tst_lines(const char *s);

Suite *np_suite_json(void);
Suite *np_suite_cli(void);
Suite *np_suite_emu(void);
Suite *np_suite_sysfs(void);
Suite *np_suite_guest(void);
Suite *np_suite_model(void);
Suite *np_suite_spec(void);
Suite *np_suite_robust(void);
Suite *np_suite_exitcodes(void);
Suite *np_suite_query(void);
Suite *np_suite_events(void);
Suite *np_suite_bench(void);
Suite *np_suite_select(void);
Suite *np_suite_exporter(void);
Suite *np_suite_topo(void);
Suite *np_suite_cache(void);

#endif /* TST_TEST_H */
