/* SPDX-License-Identifier: MIT */
/*
 * Streaming JSON writer for nptool's --json output.
 *
 * Values are written as they come; the writer tracks nesting so that
 * commas, colons and (with pretty printing) indentation are placed
 * correctly. Strings are escaped per RFC 8259; bytes that are not valid
 * UTF-8 are written as U+FFFD so the output is always valid JSON.
 * Non-finite doubles are written as null.
 */
#ifndef NPTOOL_JSON_H
#define NPTOOL_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct npt_json;

/* Returns 0 or -ENOMEM. */
int npt_json_new(FILE *f, bool pretty, struct npt_json **out);
/* Flushes a final newline when the top-level value is complete. NULL ok. */
void npt_json_free(struct npt_json *j);

void npt_json_obj_open(struct npt_json *j);
void npt_json_obj_close(struct npt_json *j);
void npt_json_arr_open(struct npt_json *j);
void npt_json_arr_close(struct npt_json *j);

/* Inside an object: the name of the next value. */
void npt_json_key(struct npt_json *j, const char *key);

void npt_json_str(struct npt_json *j, const char *s);
void npt_json_strf(struct npt_json *j, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void npt_json_int(struct npt_json *j, int64_t v);
void npt_json_uint(struct npt_json *j, uint64_t v);
void npt_json_double(struct npt_json *j, double v);
void npt_json_bool(struct npt_json *j, bool v);
void npt_json_null(struct npt_json *j);

/* key + value in one call */
void npt_json_kstr(struct npt_json *j, const char *key, const char *s);
void npt_json_kint(struct npt_json *j, const char *key, int64_t v);
void npt_json_kuint(struct npt_json *j, const char *key, uint64_t v);
void npt_json_kdouble(struct npt_json *j, const char *key, double v);
void npt_json_kbool(struct npt_json *j, const char *key, bool v);
void npt_json_knull(struct npt_json *j, const char *key);

/* Write s as a JSON string literal (with quotes) to f. */
void npt_json_escape(FILE *f, const char *s);

#endif /* NPTOOL_JSON_H */
