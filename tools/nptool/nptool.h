/* SPDX-License-Identifier: MIT */
/*
 * nptool internals: the command table, global options, output helpers,
 * exit codes. See docs/nptool.md for the user-facing contract.
 */
#ifndef NPTOOL_H
#define NPTOOL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <np/log.h>

#include "json.h"

/* Version of the --json document layout (docs/nptool.md, "JSON schema"). */
#define NPT_SCHEMA_VERSION 1

/* Exit codes, documented in nptool(1). */
enum npt_exit {
	NPT_EXIT_OK = 0, /* everything asked for was done and passed */
	NPT_EXIT_FAIL = 1, /* a check or test ran and failed */
	NPT_EXIT_USAGE = 2, /* bad command line */
	NPT_EXIT_NODEV = 3, /* no card matched the device spec */
	NPT_EXIT_DEVERR =
		4, /* a card, the driver or the OS returned an error */
	NPT_EXIT_UNAVAIL = 5, /* a needed component is not present */
};

struct npt {
	bool json;
	bool pretty;
	const char *spec; /* device spec: -d, else NP_DEVICES, else default */
	struct npt_json *j; /* set while a --json document is open */
	const char *cmd; /* name of the running command */
	char **errors; /* messages of npt_err(), repeated in the JSON */
	size_t nerrors;
};

struct npt_cmd {
	const char *name;
	int (*handler)(struct npt *t, int argc, char **argv);
	const char *args; /* synopsis of the command's own options */
	const char *help; /* one line */
	const char *options; /* NULL, or a line per option for --help */
	bool stream; /* writes its own JSON documents (one per refresh) */
};

/* The whole program: global options, then the command. Returns the exit
 * code. */
int npt_main(int argc, char **argv);

/* Open / close one JSON document (the envelope of docs/nptool.md). */
void npt_doc_begin(struct npt *t);
void npt_doc_end(struct npt *t, int rc);

/* Errors a person sees: printed to stderr and kept for the JSON. */
void npt_err(struct npt *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Command-line mistakes: message and the command's usage, returns 2. */
int npt_usage(struct npt *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Refuse arguments after the command name. Returns an exit code. */
int npt_no_args(struct npt *t, int argc, char **argv);
/* s, or "-" when s is empty */
const char *npt_or_dash(const char *s);

/* Parse "4k", "1M", "64MiB"... Returns 0 or -EINVAL. */
int npt_parse_size(const char *s, uint64_t *out);
/* Parse the value s of option opt ("--seed") as an integer in
 * [min, UINT32_MAX] (decimal, 0x hex or 0 octal). Returns 0, or reports
 * the bad value through npt_usage() and returns its exit code. */
int npt_parse_u32(struct npt *t, const char *opt, const char *s, uint32_t min,
		  uint32_t *v);
/* Parse the value s of option opt ("--top-p") as a finite float in
 * [min, max] (NaN and infinities refused). Returns 0, or reports the bad
 * value through npt_usage() and returns its exit code. */
int npt_parse_float(struct npt *t, const char *opt, const char *s, float min,
		    float max, float *v);
/* Parse a non-negative decimal number of seconds. 0 or -EINVAL. */
int npt_parse_seconds(const char *s, double *out);
/* -i SECONDS and, with allow_count, -n COUNT of status and top; nothing
 * else. Returns an exit code. */
int npt_parse_interval(struct npt *t, int argc, char **argv, double *interval,
		       long *count, bool allow_count);
/* "1.5 GiB", "512 KiB"... into buf */
const char *npt_fmt_size(char *buf, size_t len, uint64_t bytes);
double npt_now(void); /* monotonic seconds */
/* Set by a signal handler: stop sampling. */
extern volatile sig_atomic_t npt_stop;
/* Sleep secs seconds, or until npt_stop is set. */
void npt_sleep(double secs);
/* Read a whole file ("-": standard input) of at most max bytes into a
 * NUL-terminated malloc()ed buffer. 0, -EFBIG over max, or -errno. */
int npt_read_file(const char *path, size_t max, char **buf, size_t *len);
/* The text of a command: the file tfile when given (-f), else arg; into a
 * malloc'd *text. Returns an exit code, the error reported. */
int npt_text_arg(struct npt *t, const char *tfile, const char *arg, char **text,
		 size_t *len);

/* --inject CARD:FAULT: a context card and a fault as np_card_inject()
 * spells it; example is shown in the usage error. */
/* --inject CARD:FAULT: the card as given (npt_card_find() resolves it
 * into idx once the cards are open), the fault as np_card_inject()
 * spells it */
struct npt_inject {
	char card[40];
	const char *fault;
	unsigned int idx;
};
int npt_parse_inject(struct npt *t, char *s, const char *example,
		     struct npt_inject *in);

/* Text from a file (model metadata, vocabulary pieces, messages that
 * quote them) made safe for a terminal: control characters (C0 but tab,
 * and newline when keep_nl; DEL; C1) become "\xNN". Writes at most cap
 * bytes with the NUL into dst, returns the length written. */
size_t npt_escape(char *dst, size_t cap, const char *src, size_t len,
		  bool keep_nl);
/* len bytes of such text to f: escaped (newlines kept) when f is a
 * terminal, else as they are. */
void npt_print_text(FILE *f, const char *s, size_t len);

/* Progress bar on stderr: only on a terminal, not in --json mode, and
 * only once the operation has run for a second. */
struct npt_progress {
	const char *label;
	uint64_t total;
	double start;
	double last_draw;
	bool drawn;
	bool enabled;
};
void npt_progress_begin(struct npt *t, struct npt_progress *p,
			const char *label, uint64_t total);
void npt_progress_update(struct npt_progress *p, uint64_t done);
void npt_progress_end(struct npt_progress *p);
/* Erase the bar being drawn, if any, before printing a line; the next
 * update draws it again below that line. */
void npt_progress_clear(void);

/* Plain-text table: add cells row by row, then print with aligned columns. */
struct npt_table;
struct npt_table *npt_table_new(unsigned int cols);
void npt_table_cell(struct npt_table *tb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void npt_table_print(struct npt_table *tb);
void npt_table_free(struct npt_table *tb);

/* Pass/fail lines of doctor and validate, with a JSON "checks" array. */
enum npt_result { NPT_PASS, NPT_WARN, NPT_FAIL, NPT_SKIP };
struct npt_checks {
	struct npt *t;
	unsigned int count[4]; /* per enum npt_result */
};
void npt_checks_begin(struct npt *t, struct npt_checks *ck);
/* One line: result, check name, what was found (and why), and for a
 * problem the exact shell command that fixes it (or NULL). */
void npt_check(struct npt_checks *ck, enum npt_result r, const char *name,
	       const char *fix, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Closes the array, writes the summary; NPT_EXIT_FAIL if a check failed. */
int npt_checks_end(struct npt_checks *ck);

/* The model front end (model, compile). */
struct np_gguf;
struct np_model_shape;
struct np_tok;
#define NPT_TEXT_MAX (64u << 20) /* text to tokenize or train on */
/* A log callback of libnp and libnpmodel: messages become nptool's
 * errors; opaque is the struct npt. */
void npt_log_err(void *opaque, enum np_log_level level, const char *msg);
/* Exit code of a failure to read a model file the user named. */
int npt_file_exit(int err);
/* Open a GGUF file, saying what is wrong. Returns an exit code. */
int npt_open_gguf(struct npt *t, const char *path, struct np_gguf **g);
/* "spm", "bpe" */
const char *npt_tok_kind_name(int kind);
/* The "shape" member, or the "shape" line of the text report. */
void npt_shape_json(struct npt_json *j, const struct np_model_shape *s);
void npt_shape_text(const struct np_model_shape *s);
/* Encode len bytes into a malloc()ed array, with the BOS token first when
 * bos and the vocabulary has one; flags: np_tok_encode_flags'. 0 or
 * -errno. */
int npt_encode(const struct np_tok *tok, const char *text, size_t len, bool bos,
	       unsigned int flags, int32_t **ids, size_t *n);

/* Commands */
int npt_cmd_list(struct npt *t, int argc, char **argv);
int npt_cmd_info(struct npt *t, int argc, char **argv);
int npt_cmd_status(struct npt *t, int argc, char **argv);
int npt_cmd_top(struct npt *t, int argc, char **argv);
int npt_cmd_reset(struct npt *t, int argc, char **argv);
int npt_cmd_verify(struct npt *t, int argc, char **argv);
int npt_cmd_memtest(struct npt *t, int argc, char **argv);
int npt_cmd_dma(struct npt *t, int argc, char **argv);
int npt_cmd_p2p(struct npt *t, int argc, char **argv);
int npt_cmd_validate(struct npt *t, int argc, char **argv);
int npt_cmd_doctor(struct npt *t, int argc, char **argv);
int npt_cmd_cdi(struct npt *t, int argc, char **argv);
int npt_cmd_pipeline(struct npt *t, int argc, char **argv);
int npt_cmd_run(struct npt *t, int argc, char **argv);
extern const char npt_run_options[]; /* run --help, a line per option */
int npt_cmd_bench(struct npt *t, int argc, char **argv);
int npt_cmd_model(struct npt *t, int argc, char **argv);
/* model mkgguf, argv[0] the subcommand */
int npt_model_mkgguf(struct npt *t, int argc, char **argv);
/* model greedy, argv[0] the subcommand */
int npt_model_greedy(struct npt *t, int argc, char **argv);
/* model quality (cmd_model_quality.c) */
int npt_model_quality(struct npt *t, int argc, char **argv);
int npt_cmd_compile(struct npt *t, int argc, char **argv);
int npt_cmd_exporter(struct npt *t, int argc, char **argv);
int npt_cmd_topo(struct npt *t, int argc, char **argv);
int npt_cmd_events(struct npt *t, int argc, char **argv);
int npt_cmd_cache(struct npt *t, int argc, char **argv);

#endif /* NPTOOL_H */
