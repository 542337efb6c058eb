// SPDX-License-Identifier: MIT
/*
 * status and top: telemetry of every card.
 *
 * Real cards are read through the np driver's hwmon and sysfs attributes,
 * which work while another process (a model run) holds the cards through
 * VFIO. Emulated cards are read through libnp's register access. The DMA
 * rate is the difference of two dma_bytes samples an interval apart.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dev.h"
#include "np_abi.h"
#include "sysfs.h"

struct source {
	struct np_ctx *ctx; /* emulated cards: registers */
	struct npt_pci *pci; /* real cards: sysfs */
	size_t n;
};

struct sample {
	struct npt_tele tl;
	int err; /* 0 or -errno of the read */
};

static int source_open(struct npt *t, struct source *s)
{
	int rc;

	memset(s, 0, sizeof(*s));
	if (npt_spec_is_emu(t->spec)) {
		rc = npt_open(t, NULL, &s->ctx);
		if (!rc)
			s->n = np_ctx_num_cards(s->ctx);
		return rc;
	}
	return npt_sysfs_cards(t, &s->pci, &s->n);
}

static void source_close(struct source *s)
{
	np_close(s->ctx);
	free(s->pci);
}

static const char *source_name(const struct source *s, size_t i)
{
	return s->ctx ? np_card_name(np_ctx_card(s->ctx, (unsigned int)i)) :
			s->pci[i].bdf;
}

static void sample_all(const struct source *s, struct sample *out)
{
	for (size_t i = 0; i < s->n; i++) {
		if (s->ctx)
			out[i].err = npt_tele_regs(
				np_ctx_card(s->ctx, (unsigned int)i),
				&out[i].tl);
		else
			out[i].err = npt_tele_sysfs(s->pci[i].bdf, &out[i].tl);
	}
}

static bool has(const struct sample *s, enum npt_tf f)
{
	return !s->err && (s->tl.valid & (1u << f));
}

/* Bytes per second between two samples, or -1 if unknown. */
static double dma_rate(const struct sample *a, const struct sample *b,
		       double secs)
{
	if (!has(a, NPT_TF_DMA_BYTES) || !has(b, NPT_TF_DMA_BYTES) ||
	    secs <= 0 || b->tl.v[NPT_TF_DMA_BYTES] < a->tl.v[NPT_TF_DMA_BYTES])
		return -1;
	return (double)(b->tl.v[NPT_TF_DMA_BYTES] - a->tl.v[NPT_TF_DMA_BYTES]) /
	       secs;
}

/* Report unreadable cards once; returns the exit code of the sample. */
static int report_errors(struct npt *t, const struct source *s,
			 const struct sample *smp)
{
	int rc = NPT_EXIT_OK;

	for (size_t i = 0; i < s->n; i++) {
		if (!smp[i].err)
			continue;
		if (s->pci && smp[i].err == -ENOENT)
			npt_err(t,
				"card %s: no telemetry: bound to '%s', not "
				"%s; 'nptool doctor' prints the command "
				"that binds it",
				s->pci[i].bdf,
				s->pci[i].driver[0] ? s->pci[i].driver :
						      "no driver",
				NPT_DRIVER);
		else
			npt_err(t, "card %s: cannot read telemetry: %s",
				source_name(s, i), strerror(-smp[i].err));
		rc = NPT_EXIT_DEVERR;
	}
	return rc;
}

static void emit_json(struct npt *t, const struct source *s,
		      const struct sample *a, const struct sample *b,
		      double secs)
{
	struct npt_json *j = t->j;

	npt_json_kstr(j, "source", s->ctx ? "registers" : "sysfs");
	npt_json_kdouble(j, "interval_s", secs);
	npt_json_key(j, "cards");
	npt_json_arr_open(j);
	for (size_t i = 0; i < s->n; i++) {
		double rate = dma_rate(&a[i], &b[i], secs);

		npt_json_obj_open(j);
		npt_json_kuint(j, "index", i);
		npt_json_kstr(j, "name", source_name(s, i));
		if (b[i].err)
			npt_json_knull(j, "state");
		else
			npt_json_kstr(j, "state", b[i].tl.state);
		for (unsigned int f = 0; f < NPT_TF_COUNT; f++) {
			if (has(&b[i], f))
				npt_json_kuint(j, npt_tf_key(f), b[i].tl.v[f]);
			else
				npt_json_knull(j, npt_tf_key(f));
		}
		if (rate >= 0)
			npt_json_kdouble(j, "dma_bytes_per_s", rate);
		else
			npt_json_knull(j, "dma_bytes_per_s");
		npt_json_obj_close(j);
	}
	npt_json_arr_close(j);
}

/* Cell with a scaled value, "-" when the field is missing. */
static void cell(struct npt_table *tb, const struct sample *s, enum npt_tf f,
		 double div, int prec, const char *unit)
{
	if (has(s, f))
		npt_table_cell(tb, "%.*f%s", prec, (double)s->tl.v[f] / div,
			       unit);
	else
		npt_table_cell(tb, "-");
}

static void emit_text(const struct source *s, const struct sample *a,
		      const struct sample *b, double secs)
{
	static const char *const head[] = {
		"CARD",	   "NAME",    "STATE",	 "TEMP", "POWER",
		"VCORE",   "CLOCK",   "BUSY",	 "DMA",	 "DMA-ERR",
		"SRAM-CE", "SRAM-UE", "THROTTLE"};
	const unsigned int cols = sizeof(head) / sizeof(head[0]);
	struct npt_table *tb = npt_table_new(cols);

	for (unsigned int c = 0; c < cols; c++)
		npt_table_cell(tb, "%s", head[c]);
	for (size_t i = 0; i < s->n; i++) {
		const struct sample *x = &b[i];
		double rate = dma_rate(&a[i], x, secs);

		npt_table_cell(tb, "%zu", i);
		npt_table_cell(tb, "%s", source_name(s, i));
		npt_table_cell(tb, "%s", x->err ? "?" : x->tl.state);
		cell(tb, x, NPT_TF_TEMP, 1000, 1, "C");
		cell(tb, x, NPT_TF_POWER, 1000, 1, "W");
		cell(tb, x, NPT_TF_VOLTAGE, 1000, 3, "V");
		cell(tb, x, NPT_TF_CLOCK, 1, 0, "MHz");
		cell(tb, x, NPT_TF_BUSY, 1, 0, "%");
		if (rate >= 0)
			npt_table_cell(tb, "%.1fMB/s", rate / 1e6);
		else
			npt_table_cell(tb, "-");
		cell(tb, x, NPT_TF_DMA_ERRORS, 1, 0, "");
		cell(tb, x, NPT_TF_SRAM_CE, 1, 0, "");
		cell(tb, x, NPT_TF_SRAM_UE, 1, 0, "");
		cell(tb, x, NPT_TF_THROTTLES, 1, 0, "");
	}
	npt_table_print(tb);
	npt_table_free(tb);
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static void sleep_s(double secs)
{
	struct timespec ts = {
		.tv_sec = (time_t)secs,
		.tv_nsec = (long)((secs - (double)(time_t)secs) * 1e9),
	};

	while (!stop && nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int parse_opts(struct npt *t, int argc, char **argv, double *interval,
		      long *count, bool allow_count)
{
	static const struct option opts[] = {
		{"interval", required_argument, NULL, 'i'},
		{"count", required_argument, NULL, 'n'},
		{0},
	};
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, allow_count ? "i:n:" : "i:", opts,
				NULL)) != -1) {
		switch (c) {
		case 'i':
			if (npt_parse_seconds(optarg, interval) ||
			    *interval < 0.01)
				return npt_usage(t,
						 "%s: interval '%s' is not "
						 "a number of seconds >= "
						 "0.01",
						 argv[0], optarg);
			break;
		case 'n':
			if (!allow_count)
				return npt_usage(t, "%s: bad option", argv[0]);
			*count = strtol(optarg, &end, 10);
			if (*end || *count < 1)
				return npt_usage(t,
						 "%s: count '%s' is not a "
						 "positive integer",
						 argv[0], optarg);
			break;
		default:
			return npt_usage(t, "%s: bad option", argv[0]);
		}
	}
	if (optind < argc)
		return npt_usage(t, "%s: unexpected argument '%s'", argv[0],
				 argv[optind]);
	return NPT_EXIT_OK;
}

int npt_cmd_status(struct npt *t, int argc, char **argv)
{
	double interval = 0.25, t0;
	struct sample *a, *b;
	struct source s;
	long count = 0;
	int rc;

	rc = parse_opts(t, argc, argv, &interval, &count, false);
	if (rc)
		return rc;
	rc = source_open(t, &s);
	if (rc) {
		source_close(&s);
		return rc;
	}
	a = calloc(s.n, sizeof(*a));
	b = calloc(s.n, sizeof(*b));
	if (!a || !b) {
		rc = NPT_EXIT_DEVERR;
		goto out;
	}
	sample_all(&s, a);
	t0 = npt_now();
	sleep_s(interval);
	sample_all(&s, b);
	interval = npt_now() - t0;
	rc = report_errors(t, &s, b);
	if (t->j)
		emit_json(t, &s, a, b, interval);
	else
		emit_text(&s, a, b, interval);
out:
	free(a);
	free(b);
	source_close(&s);
	return rc;
}

int npt_cmd_top(struct npt *t, int argc, char **argv)
{
	double interval = 1.0, t0;
	struct sample *a = NULL, *b = NULL, *tmp;
	struct source s;
	bool tty = isatty(STDOUT_FILENO);
	long count = 0;
	int rc;

	rc = parse_opts(t, argc, argv, &interval, &count, true);
	if (!rc) {
		rc = source_open(t, &s);
		if (rc)
			source_close(&s);
	}
	if (rc) {
		/* one document carrying the errors */
		npt_doc_begin(t);
		npt_doc_end(t, rc);
		return rc;
	}
	a = calloc(s.n, sizeof(*a));
	b = calloc(s.n, sizeof(*b));
	if (!a || !b) {
		rc = NPT_EXIT_DEVERR;
		goto out;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	sample_all(&s, a);
	t0 = npt_now();
	for (long k = 0; !stop && (!count || k < count); k++) {
		double now;

		sleep_s(interval);
		if (stop)
			break;
		sample_all(&s, b);
		now = npt_now();
		npt_doc_begin(t);
		rc = report_errors(t, &s, b);
		if (t->j) {
			emit_json(t, &s, a, b, now - t0);
		} else {
			if (tty)
				fputs("\033[H\033[J", stdout);
			printf("nptool top: %zu cards, every %.1fs "
			       "(Ctrl-C quits)\n",
			       s.n, interval);
			emit_text(&s, a, b, now - t0);
		}
		npt_doc_end(t, rc);
		fflush(stdout);
		tmp = a;
		a = b;
		b = tmp;
		t0 = now;
	}
out:
	free(a);
	free(b);
	source_close(&s);
	return rc;
}
