/* SPDX-License-Identifier: MIT */
/*
 * Card tables of list and status through libsmartcols (the library behind
 * lsblk and findmnt): a command offers its columns, --query picks some,
 * --format prints them as an aligned table, as CSV (written here: the
 * library has no CSV mode) or as JSON. Columns and
 * formats are documented in docs/nptool.md ("Field selection").
 */
#ifndef NPTOOL_COLS_H
#define NPTOOL_COLS_H

#include <stdbool.h>
#include <stddef.h>

#include "nptool.h"

enum npt_fmt { NPT_FMT_TABLE, NPT_FMT_CSV, NPT_FMT_JSON };

struct npt_col {
	const char *name; /* --query name and JSON/CSV key: "temp_mc" */
	const char *header; /* table heading: "TEMP" */
	bool number; /* a JSON number (else a string) */
};

/* The command-line choice of a command that prints a card table. */
struct npt_cols_opts {
	double interval; /* -i SECONDS, where the command samples twice */
	bool selected; /* --query or --format was given */
	enum npt_fmt fmt;
	size_t ncols; /* the chosen columns, indices into the command's */
	unsigned int col[64];
};

/* The columns shown without --query: def[0..ndef), as a table. */
void npt_cols_defaults(struct npt_cols_opts *o, const unsigned int *def,
		       size_t ndef);

/*
 * Parse the options of list (has_interval false) or status: -i SECONDS,
 * --query FIELD[,FIELD...], --format table|csv|json. An unknown field or
 * format is a usage error that lists the valid ones. Returns an exit code.
 */
int npt_cols_parse(struct npt *t, int argc, char **argv,
		   const struct npt_col *cols, size_t ncols,
		   const unsigned int *def, size_t ndef, bool has_interval,
		   struct npt_cols_opts *o);

/*
 * Print rows: vals[r * ncols + c] is column c of row r of the command's
 * columns, NULL when unknown (a dash in the table, empty in CSV, null in
 * JSON). Returns an exit code (NPT_EXIT_DEVERR when out of memory).
 */
int npt_cols_print(const struct npt_cols_opts *o, const struct npt_col *cols,
		   size_t ncols, char *const *vals, size_t nrows);

/* vals[i] = a malloc()ed copy of printf(fmt, ...), NULL when out of memory. */
void npt_cols_set(char **val, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Free nrows * ncols values and the array. */
void npt_cols_free(char **vals, size_t n);

#endif /* NPTOOL_COLS_H */
