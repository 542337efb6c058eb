/* SPDX-License-Identifier: MIT */
/*
 * A small strict JSON parser (RFC 8259) for the nptool tests: they read
 * nptool's --json output back with it, independently of the writer.
 */
#ifndef NPT_TEST_JSONP_H
#define NPT_TEST_JSONP_H

#include <stdbool.h>
#include <stddef.h>

enum jv_type { JV_NULL, JV_BOOL, JV_NUM, JV_STR, JV_ARR, JV_OBJ };

struct jv {
	enum jv_type type;
	bool b;
	double num;
	char *str; /* JV_STR: decoded UTF-8 */
	size_t n; /* JV_ARR / JV_OBJ: number of members */
	char **keys; /* JV_OBJ */
	struct jv **items;
};

/* Parse one value from s; whitespace around it is skipped. *end (if not
 * NULL) points after it. NULL on a syntax error or trailing garbage when
 * end is NULL. */
struct jv *jv_parse(const char *s, const char **end);
void jv_free(struct jv *v);

/* Member key of an object, element i of an array; NULL when absent or the
 * value is not of that type. */
struct jv *jv_get(const struct jv *obj, const char *key);
struct jv *jv_at(const struct jv *arr, size_t i);
/* Shortcuts: the string or number at key (NULL / -1e300 when absent). */
const char *jv_str(const struct jv *obj, const char *key);
double jv_num(const struct jv *obj, const char *key);

#endif /* NPT_TEST_JSONP_H */
