// SPDX-License-Identifier: MIT
/* nptool's JSON writer, read back with the suite's own parser. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "test.h"

struct doc {
	char *text;
	size_t len;
	FILE *f;
	struct npt_json *j;
};

static void doc_begin(struct doc *d, bool pretty)
{
	memset(d, 0, sizeof(*d));
	d->f = open_memstream(&d->text, &d->len);
	ck_assert_ptr_nonnull(d->f);
	ck_assert_int_eq(npt_json_new(d->f, pretty, &d->j), 0);
}

/* Finish the document and parse it back. */
static struct tst_jv *doc_end(struct doc *d)
{
	struct tst_jv *v;

	npt_json_free(d->j);
	fclose(d->f);
	v = tst_jv_parse(d->text, NULL);
	ck_assert_msg(v, "writer produced invalid JSON: %s", d->text);
	return v;
}

/* A string through the writer and back. */
static char *roundtrip(const char *s)
{
	struct doc d;
	struct tst_jv *v;
	char *out;

	doc_begin(&d, false);
	npt_json_str(d.j, s);
	v = doc_end(&d);
	ck_assert_int_eq(v->type, TST_JV_STR);
	out = strdup(v->str);
	tst_jv_free(v);
	free(d.text);
	return out;
}

START_TEST(test_escape_controls)
{
	char in[40], *out;

	/* every control character, quote and backslash */
	for (int i = 0; i < 31; i++)
		in[i] = (char)(i + 1);
	strcpy(in + 31, "\"\\/\x7f");
	out = roundtrip(in);
	ck_assert_str_eq(out, in);
	free(out);
}
END_TEST

START_TEST(test_escape_utf8_valid)
{
	/* 2-, 3- and 4-byte sequences pass through unchanged */
	const char *in = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
	char *out = roundtrip(in);

	ck_assert_str_eq(out, in);
	free(out);
}
END_TEST

START_TEST(test_escape_utf8_invalid)
{
	/* stray continuation, overlong '/', a UTF-16 surrogate, > U+10FFFF,
	 * truncated sequence: each becomes U+FFFD, the rest survives */
	static const struct {
		const char *in, *want;
	} t[] = {
		{"a\x80z", "a\xef\xbf\xbdz"},
		{"a\xc0\xafz", "a\xef\xbf\xbd\xef\xbf\xbdz"},
		{"a\xed\xa0\x80z", "a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz"},
		{"a\xf4\x90\x80\x80z",
		 "a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz"},
		{"a\xe2\x82", "a\xef\xbf\xbd\xef\xbf\xbd"},
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *out = roundtrip(t[i].in);

		ck_assert_str_eq(out, t[i].want);
		free(out);
	}
}
END_TEST

static void nested(struct npt_json *j)
{
	npt_json_obj_open(j);
	npt_json_kstr(j, "name", "x");
	npt_json_key(j, "empty_obj");
	npt_json_obj_open(j);
	npt_json_obj_close(j);
	npt_json_key(j, "empty_arr");
	npt_json_arr_open(j);
	npt_json_arr_close(j);
	npt_json_key(j, "list");
	npt_json_arr_open(j);
	for (int i = 0; i < 3; i++) {
		npt_json_obj_open(j);
		npt_json_kint(j, "i", -i);
		npt_json_kbool(j, "odd", i & 1);
		npt_json_knull(j, "none");
		npt_json_obj_close(j);
	}
	npt_json_arr_close(j);
	npt_json_kuint(j, "big", UINT64_MAX);
	npt_json_kint(j, "min", INT64_MIN);
	npt_json_obj_close(j);
}

static void check_nested(const struct tst_jv *v)
{
	ck_assert_int_eq(v->type, TST_JV_OBJ);
	ck_assert_uint_eq(v->n, 6);
	ck_assert_str_eq(tst_jv_str(v, "name"), "x");
	ck_assert_uint_eq(tst_jv_get(v, "empty_obj")->n, 0);
	ck_assert_int_eq(tst_jv_get(v, "empty_arr")->type, TST_JV_ARR);
	ck_assert_uint_eq(tst_jv_get(v, "list")->n, 3);
	for (size_t i = 0; i < 3; i++) {
		struct tst_jv *e = tst_jv_at(tst_jv_get(v, "list"), i);

		ck_assert_double_eq(tst_jv_num(e, "i"), -(double)i);
		ck_assert_int_eq(tst_jv_get(e, "odd")->b, (int)(i & 1));
		ck_assert_int_eq(tst_jv_get(e, "none")->type, TST_JV_NULL);
	}
}

START_TEST(test_nesting_compact_and_pretty)
{
	for (int pretty = 0; pretty < 2; pretty++) {
		struct doc d;
		struct tst_jv *v;

		doc_begin(&d, pretty);
		nested(d.j);
		v = doc_end(&d);
		check_nested(v);
		/* integers are written exactly, not through a double */
		ck_assert_ptr_nonnull(strstr(d.text, "18446744073709551615"));
		ck_assert_ptr_nonnull(strstr(d.text, "-9223372036854775808"));
		ck_assert_int_eq(strchr(d.text, '\n') < d.text + d.len - 1,
				 pretty);
		tst_jv_free(v);
		free(d.text);
	}
}
END_TEST

START_TEST(test_doubles)
{
	const double vals[] = {0.1, 1.0 / 3, 123456789.123, 1e-300, -2.5};
	struct doc d;
	struct tst_jv *v;

	doc_begin(&d, false);
	npt_json_arr_open(d.j);
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
		npt_json_double(d.j, vals[i]);
	npt_json_double(d.j, NAN);
	npt_json_double(d.j, INFINITY);
	npt_json_arr_close(d.j);
	v = doc_end(&d);
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
		ck_assert_double_eq(tst_jv_at(v, i)->num, vals[i]);
	ck_assert_int_eq(tst_jv_at(v, 5)->type, TST_JV_NULL);
	ck_assert_int_eq(tst_jv_at(v, 6)->type, TST_JV_NULL);
	/* the short form when it reads back exactly */
	ck_assert_ptr_nonnull(strstr(d.text, "[0.1,"));
	tst_jv_free(v);
	free(d.text);
}
END_TEST

START_TEST(test_parser_rejects)
{
	static const char *const bad[] = {
		"",    "{",	"[1,]",	     "{\"a\":1,}",
		"01",  "1.",	"\"\x01\"",  "\"\\ud800\"",
		"tru", "[1] x", "{\"a\" 1}", "\"\\x\"",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!tst_jv_parse(bad[i], NULL), "accepted '%s'",
			      bad[i]);
}
END_TEST

Suite *np_suite_json(void)
{
	Suite *s = suite_create("json");
	TCase *tc = tcase_create("writer");

	tcase_add_test(tc, test_escape_controls);
	tcase_add_test(tc, test_escape_utf8_valid);
	tcase_add_test(tc, test_escape_utf8_invalid);
	tcase_add_test(tc, test_nesting_compact_and_pretty);
	tcase_add_test(tc, test_doubles);
	tcase_add_test(tc, test_parser_rejects);
	suite_add_tcase(s, tc);
	return s;
}
