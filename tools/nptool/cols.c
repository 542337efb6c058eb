// SPDX-License-Identifier: MIT
/* Card tables through libsmartcols; see cols.h. */
#include "cols.h"

#include <getopt.h>
#include <libsmartcols.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const fmt_names[] = {"table", "csv", "json"};

static int bad_field(struct npt *t, const char *cmd, const char *f,
		     const struct npt_col *cols, size_t ncols)
{
	char list[1024];
	size_t n = 0;

	list[0] = '\0';
	for (size_t i = 0; i < ncols && n < sizeof(list); i++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s",
				      i ? "," : "", cols[i].name);
	return npt_usage(t, "%s: unknown field '%s' in --query; fields: %s",
			 cmd, f, list);
}

static int parse_query(struct npt *t, const char *cmd, const char *q,
		       const struct npt_col *cols, size_t ncols,
		       struct npt_cols_opts *o)
{
	char *s = strdup(q), *save = NULL;
	int rc = NPT_EXIT_OK;

	if (!s)
		return NPT_EXIT_DEVERR;
	o->ncols = 0;
	for (char *f = strtok_r(s, ",", &save); f && !rc;
	     f = strtok_r(NULL, ",", &save)) {
		size_t c = 0;

		while (c < ncols && strcmp(cols[c].name, f))
			c++;
		if (c == ncols)
			rc = bad_field(t, cmd, f, cols, ncols);
		else if (o->ncols == sizeof(o->col) / sizeof(o->col[0]))
			rc = npt_usage(t, "%s: more than %zu fields in --query",
				       cmd, o->ncols);
		else
			o->col[o->ncols++] = (unsigned int)c;
	}
	if (!rc && !o->ncols)
		rc = npt_usage(t, "%s: --query names no field", cmd);
	free(s);
	return rc;
}

void npt_cols_defaults(struct npt_cols_opts *o, const unsigned int *def,
		       size_t ndef)
{
	o->selected = false;
	o->fmt = NPT_FMT_TABLE;
	o->ncols = ndef;
	memcpy(o->col, def, ndef * sizeof(*def));
}

int npt_cols_parse(struct npt *t, int argc, char **argv,
		   const struct npt_col *cols, size_t ncols,
		   const unsigned int *def, size_t ndef, bool has_interval,
		   struct npt_cols_opts *o)
{
	static const struct option opts[] = {
		{"interval", required_argument, NULL, 'i'},
		{"query", required_argument, NULL, 'q'},
		{"format", required_argument, NULL, 'f'},
		{0},
	};
	const char *query = NULL;
	int c, rc;

	npt_cols_defaults(o, def, ndef);
	while ((c = getopt_long(argc, argv, has_interval ? "i:q:f:" : "q:f:",
				opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			if (!has_interval)
				return npt_usage(t, "%s: bad option", argv[0]);
			if (npt_parse_seconds(optarg, &o->interval) ||
			    o->interval < 0.01)
				return npt_usage(t,
						 "%s: interval '%s' is not "
						 "a number of seconds >= 0.01",
						 argv[0], optarg);
			break;
		case 'q':
			query = optarg;
			o->selected = true;
			break;
		case 'f': {
			size_t f = 0;

			while (f < 3 && strcmp(optarg, fmt_names[f]))
				f++;
			if (f == 3)
				return npt_usage(t,
						 "%s: unknown --format '%s'; "
						 "use table, csv or json",
						 argv[0], optarg);
			o->fmt = (enum npt_fmt)f;
			o->selected = true;
			break;
		}
		default:
			return npt_usage(t, "%s: bad option", argv[0]);
		}
	}
	if (optind < argc)
		return npt_usage(t, "%s: unexpected argument '%s'", argv[0],
				 argv[optind]);
	if (o->selected && t->json)
		return npt_usage(t,
				 "%s: --query and --format print their own "
				 "output; use --format json instead of --json",
				 argv[0]);
	if (query) {
		rc = parse_query(t, argv[0], query, cols, ncols, o);
		if (rc)
			return rc;
	}
	return NPT_EXIT_OK;
}

static int add_columns(struct libscols_table *tb, const struct npt_cols_opts *o,
		       const struct npt_col *cols)
{
	for (size_t i = 0; i < o->ncols; i++) {
		const struct npt_col *c = &cols[o->col[i]];
		struct libscols_column *cl = scols_table_new_column(
			tb, o->fmt == NPT_FMT_TABLE ? c->header : c->name, 0,
			c->number && o->fmt == NPT_FMT_TABLE ? SCOLS_FL_RIGHT :
							       0);

		if (!cl)
			return -1;
		if (o->fmt == NPT_FMT_JSON &&
		    scols_column_set_json_type(cl, c->number ?
							   SCOLS_JSON_NUMBER :
							   SCOLS_JSON_STRING))
			return -1;
	}
	return 0;
}

static int add_row(struct libscols_table *tb, const struct npt_cols_opts *o,
		   char *const *row)
{
	struct libscols_line *ln = scols_table_new_line(tb, NULL);

	if (!ln)
		return -1;
	for (size_t i = 0; i < o->ncols; i++) {
		const char *v = row[o->col[i]];

		if (!v && o->fmt == NPT_FMT_JSON)
			continue; /* no data: null */
		if (scols_line_set_data(ln, i, v ? v : "-"))
			return -1;
	}
	return 0;
}

/* CSV field (RFC 4180): quoted when it holds a comma, quote or newline. */
static void csv_field(const char *v)
{
	if (!strpbrk(v, ",\"\n")) {
		fputs(v, stdout);
		return;
	}
	putchar('"');
	for (; *v; v++) {
		if (*v == '"')
			putchar('"');
		putchar(*v);
	}
	putchar('"');
}

/*
 * libsmartcols has no CSV mode (its raw mode escapes blanks as \x20), so
 * CSV is written here: a heading line of field names, a line per row.
 */
static void print_csv(const struct npt_cols_opts *o, const struct npt_col *cols,
		      size_t ncols, char *const *vals, size_t nrows)
{
	for (size_t i = 0; i < o->ncols; i++)
		printf("%s%s", i ? "," : "", cols[o->col[i]].name);
	putchar('\n');
	for (size_t r = 0; r < nrows; r++) {
		for (size_t i = 0; i < o->ncols; i++) {
			const char *v = vals[r * ncols + o->col[i]];

			if (i)
				putchar(',');
			if (v)
				csv_field(v);
		}
		putchar('\n');
	}
}

int npt_cols_print(const struct npt_cols_opts *o, const struct npt_col *cols,
		   size_t ncols, char *const *vals, size_t nrows)
{
	struct libscols_table *tb;
	int rc;

	if (o->fmt == NPT_FMT_CSV) {
		print_csv(o, cols, ncols, vals, nrows);
		fflush(stdout);
		return NPT_EXIT_OK;
	}
	tb = scols_new_table();
	if (!tb)
		return NPT_EXIT_DEVERR;
	if (o->fmt == NPT_FMT_TABLE) {
		rc = scols_table_set_column_separator(tb, "  ");
	} else {
		rc = scols_table_enable_json(tb, 1);
		if (!rc)
			rc = scols_table_set_name(tb, "cards");
	}
	/* Never shorten a column to a terminal's width. */
	if (!rc)
		rc = scols_table_enable_nowrap(tb, 1);
	if (!rc)
		rc = add_columns(tb, o, cols);
	for (size_t r = 0; r < nrows && !rc; r++)
		rc = add_row(tb, o, vals + r * ncols);
	if (!rc)
		rc = scols_print_table(tb);
	scols_unref_table(tb);
	fflush(stdout);
	return rc ? NPT_EXIT_DEVERR : NPT_EXIT_OK;
}

void npt_cols_set(char **val, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(val, fmt, ap) < 0)
		*val = NULL;
	va_end(ap);
}

void npt_cols_free(char **vals, size_t n)
{
	if (!vals)
		return;
	for (size_t i = 0; i < n; i++)
		free(vals[i]);
	free(vals);
}
