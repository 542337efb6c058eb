// SPDX-License-Identifier: MIT
/* Streaming JSON writer; see json.h. */
#include "json.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>

#define NPT_JSON_MAX_DEPTH 32

struct npt_json {
	FILE *f;
	bool pretty;
	bool after_key; /* a key was written; its value comes next */
	unsigned int depth;
	bool first[NPT_JSON_MAX_DEPTH]; /* no element yet at this depth */
};

int npt_json_new(FILE *f, bool pretty, struct npt_json **out)
{
	struct npt_json *j = calloc(1, sizeof(*j));

	if (!j)
		return -ENOMEM;
	j->f = f;
	j->pretty = pretty;
	*out = j;
	return 0;
}

void npt_json_free(struct npt_json *j)
{
	if (!j)
		return;
	fputc('\n', j->f);
	fflush(j->f);
	free(j);
}

static void indent(struct npt_json *j)
{
	if (!j->pretty)
		return;
	fputc('\n', j->f);
	for (unsigned int i = 0; i < j->depth; i++)
		fputs("  ", j->f);
}

/* Separator and indentation before a value or a key. */
static void begin_item(struct npt_json *j)
{
	if (j->after_key) {
		j->after_key = false;
		return;
	}
	if (j->depth == 0)
		return;
	if (!j->first[j->depth - 1])
		fputc(',', j->f);
	j->first[j->depth - 1] = false;
	indent(j);
}

static void container_open(struct npt_json *j, char c)
{
	begin_item(j);
	assert(j->depth < NPT_JSON_MAX_DEPTH);
	fputc(c, j->f);
	j->first[j->depth++] = true;
}

static void container_close(struct npt_json *j, char c)
{
	assert(j->depth > 0);
	j->depth--;
	if (!j->first[j->depth])
		indent(j);
	fputc(c, j->f);
}

void npt_json_obj_open(struct npt_json *j)
{
	container_open(j, '{');
}

void npt_json_obj_close(struct npt_json *j)
{
	container_close(j, '}');
}

void npt_json_arr_open(struct npt_json *j)
{
	container_open(j, '[');
}

void npt_json_arr_close(struct npt_json *j)
{
	container_close(j, ']');
}

/*
 * Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0 if it is not one.
 */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void npt_json_escape(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	fputc('"', f);
	while (*s) {
		size_t n = utf8_len(s);

		switch (*s) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\b':
			fputs("\\b", f);
			break;
		case '\f':
			fputs("\\f", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (*s < 0x20 || *s == 0x7f) {
				fprintf(f, "\\u%04x", *s);
			} else if (n == 0) {
				fputs("\\ufffd", f);
				n = 1;
			} else {
				fwrite(s, 1, n, f);
			}
			break;
		}
		s += n ? n : 1;
	}
	fputc('"', f);
}

void npt_json_key(struct npt_json *j, const char *key)
{
	begin_item(j);
	npt_json_escape(j->f, key);
	fputs(j->pretty ? ": " : ":", j->f);
	j->after_key = true;
}

void npt_json_str(struct npt_json *j, const char *s)
{
	begin_item(j);
	npt_json_escape(j->f, s);
}

void npt_json_strf(struct npt_json *j, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	npt_json_str(j, buf);
}

void npt_json_int(struct npt_json *j, int64_t v)
{
	begin_item(j);
	fprintf(j->f, "%" PRId64, v);
}

void npt_json_uint(struct npt_json *j, uint64_t v)
{
	begin_item(j);
	fprintf(j->f, "%" PRIu64, v);
}

void npt_json_double(struct npt_json *j, double v)
{
	char buf[32];

	begin_item(j);
	if (!isfinite(v)) {
		fputs("null", j->f);
		return;
	}
	/* shortest of the two precisions that reads back as the same value */
	snprintf(buf, sizeof(buf), "%.15g", v);
	if (strtod(buf, NULL) != v)
		snprintf(buf, sizeof(buf), "%.17g", v);
	fputs(buf, j->f);
}

void npt_json_bool(struct npt_json *j, bool v)
{
	begin_item(j);
	fputs(v ? "true" : "false", j->f);
}

void npt_json_null(struct npt_json *j)
{
	begin_item(j);
	fputs("null", j->f);
}

void npt_json_kstr(struct npt_json *j, const char *key, const char *s)
{
	npt_json_key(j, key);
	npt_json_str(j, s);
}

void npt_json_kint(struct npt_json *j, const char *key, int64_t v)
{
	npt_json_key(j, key);
	npt_json_int(j, v);
}

void npt_json_kuint(struct npt_json *j, const char *key, uint64_t v)
{
	npt_json_key(j, key);
	npt_json_uint(j, v);
}

void npt_json_kdouble(struct npt_json *j, const char *key, double v)
{
	npt_json_key(j, key);
	npt_json_double(j, v);
}

void npt_json_kbool(struct npt_json *j, const char *key, bool v)
{
	npt_json_key(j, key);
	npt_json_bool(j, v);
}

void npt_json_knull(struct npt_json *j, const char *key)
{
	npt_json_key(j, key);
	npt_json_null(j);
}
