// SPDX-License-Identifier: MIT
/*
 * status, top and pipeline: telemetry of every card.
 *
 * Real cards are read through the np driver's hwmon and sysfs attributes,
 * which work while another process (a model run) holds the cards through
 * VFIO. Emulated cards are read through libnp's register access. The DMA
 * rate is the difference of two dma_bytes samples an interval apart.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <np/pipeline.h>

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
		if (s->pci && smp[i].err == -ENOENT &&
		    strcmp(s->pci[i].driver, NPT_DRIVER))
			npt_err(t,
				"card %s: no telemetry: bound to '%s', not "
				"%s; 'nptool doctor' prints the command "
				"that binds it",
				s->pci[i].bdf,
				s->pci[i].driver[0] ? s->pci[i].driver :
						      "no driver",
				NPT_DRIVER);
		else if (smp[i].err == -EAGAIN)
			npt_err(t,
				"card %s: telemetry unavailable for a second: "
				"the card is resetting or being opened; run "
				"the command again",
				source_name(s, i));
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

/*
 * pipeline: how the cards share a model run. Each card's occupancy is the
 * mean of its busy register (share of the last 100 ms with work) sampled
 * every 100 ms; its bubble fraction is the rest, the time it waited for
 * input or credits; the card with the highest occupancy is the one the
 * others wait on. Real cards are watched through sysfs while another
 * process runs the model; emulated cards exist only in this process, so
 * for them a small model runs here meanwhile.
 */
#define PIPE_SAMPLE_S 0.1

struct bg_run {
	struct np_ctx *ctx;
	const char *model;
	pthread_t thread;
	atomic_int loaded; /* 1 running, -errno if the load failed */
	atomic_int quit;
	int err;
	bool joined;
	/* per card, over the runs (np_session_stats), read after join */
	uint64_t hops[NP_MAX_CARDS], hop_sum_ns[NP_MAX_CARDS];
	uint64_t hop_max_ns[NP_MAX_CARDS];
	uint64_t stalls[NP_MAX_CARDS], stall_ns[NP_MAX_CARDS];
};

/*
 * Hops and credit stalls of a card another process holds: the statistics
 * of its forwarding engine, DMA engine 1 (docs/pipeline.md), from the
 * driver's np/dma1_stat (docs/driver.md). Its work is the forwards, its
 * fence waits the credit stalls. The maximum is the model process's (libnp
 * clears it at each run), so only counts and sums are used.
 */
struct fwd {
	bool ok;
	uint32_t fence_waits, work_done;
	uint64_t fence_ns, work_ns;
};

static void fwd_read(const struct npt_pci *pci, struct fwd *f)
{
	unsigned long long fns, wwns, wns;
	unsigned int ww, wmax;
	char line[160];

	memset(f, 0, sizeof(*f));
	f->ok = !npt_card_attr(pci->bdf, "dma1_stat", line, sizeof(line)) &&
		sscanf(line, "%u %llu %u %llu %u %llu %u", &f->fence_waits,
		       &fns, &ww, &wwns, &f->work_done, &wns, &wmax) == 7;
	f->fence_ns = fns;
	f->work_ns = wns;
}

/* Forwards and credit stalls between two reads; false if there were no
 * forwards (an output card) or the counters are unknown or were reset. */
static bool fwd_delta(const struct fwd *a, const struct fwd *b, struct fwd *d)
{
	if (!a->ok || !b->ok || b->fence_ns < a->fence_ns ||
	    b->work_ns < a->work_ns)
		return false;
	d->work_done = b->work_done - a->work_done;
	d->work_ns = b->work_ns - a->work_ns;
	d->fence_waits = b->fence_waits - a->fence_waits;
	d->fence_ns = b->fence_ns - a->fence_ns;
	return d->work_done > 0;
}

/* One card's pipeline figures: from libnp's run (emulated cards) or from
 * the driver's counters over the interval (cards held elsewhere). */
struct hop_fig {
	bool have, have_max;
	uint64_t hops, stalls;
	double mean_us, max_us, stall_us;
};

static struct hop_fig hop_fig(const struct bg_run *bg, const struct fwd *a,
			      const struct fwd *b, size_t i)
{
	struct hop_fig h = {0};
	struct fwd d;

	if (bg->ctx && i < NP_MAX_CARDS && bg->hops[i]) {
		h.have = h.have_max = true;
		h.hops = bg->hops[i];
		h.mean_us = bg->hop_sum_ns[i] / 1e3 / bg->hops[i];
		h.max_us = bg->hop_max_ns[i] / 1e3;
		h.stalls = bg->stalls[i];
		h.stall_us = bg->stall_ns[i] / 1e3;
	} else if (!bg->ctx && fwd_delta(a, b, &d)) {
		h.have = true;
		h.hops = d.work_done;
		h.mean_us = d.work_ns / 1e3 / d.work_done;
		h.stalls = d.fence_waits;
		h.stall_us = d.fence_ns / 1e3;
	}
	return h;
}

static int bg_token(void *opaque, const struct np_token_event *e)
{
	struct bg_run *b = opaque;

	return b->quit;
}

static void *bg_main(void *arg)
{
	struct bg_run *b = arg;
	struct np_pipeline_opts po = {.max_sessions = 8, .max_seq = 64};
	struct np_session_opts so = {.on_token = bg_token, .opaque = b};
	struct np_request req[8];
	struct np_pipeline *p;
	int32_t prompt[8][4];
	int rc = np_model_load(b->ctx, b->model, &po, &p);

	if (rc) {
		b->loaded = rc;
		return NULL;
	}
	for (unsigned int r = 0; r < 8; r++) {
		for (unsigned int k = 0; k < 4; k++)
			prompt[r][k] = (int32_t)(1 + r * 4 + k);
		req[r] = (struct np_request){
			.prompt = prompt[r],
			.n_prompt = 4,
			.max_tokens = 48,
		};
	}
	b->loaded = 1;
	while (!b->quit && !rc) {
		struct np_session_stats st = {0};

		rc = np_session_run(p, req, 8, &so, &st);
		for (unsigned int i = 0; i < NP_MAX_CARDS; i++) {
			b->hops[i] += st.hop_frames[i];
			b->hop_sum_ns[i] +=
				st.hop_mean_ns[i] * st.hop_frames[i];
			if (st.hop_max_ns[i] > b->hop_max_ns[i])
				b->hop_max_ns[i] = st.hop_max_ns[i];
			b->stalls[i] += st.credit_stalls[i];
			b->stall_ns[i] += st.credit_stall_ns[i];
		}
	}
	b->err = rc;
	np_pipeline_destroy(p);
	return NULL;
}

int npt_cmd_pipeline(struct npt *t, int argc, char **argv)
{
	static const struct option opts[] = {
		{"interval", required_argument, NULL, 'i'},
		{"model", required_argument, NULL, 'm'},
		{0},
	};
	struct bg_run bg = {.model = NPT_DEFAULT_MODEL};
	double interval = 2.0, t0, secs;
	struct sample *first = NULL, *cur = NULL;
	struct fwd *fwd0 = NULL, *fwd1 = NULL;
	double *busy = NULL;
	unsigned int nsamples = 0;
	struct source s;
	long best = -1;
	int c, rc;

	while ((c = getopt_long(argc, argv, "i:m:", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			if (npt_parse_seconds(optarg, &interval) ||
			    interval < PIPE_SAMPLE_S)
				return npt_usage(t,
						 "pipeline: interval '%s' is "
						 "not a number of seconds >= "
						 "0.1",
						 optarg);
			break;
		case 'm':
			bg.model = optarg;
			break;
		default:
			return npt_usage(t, "pipeline: bad option");
		}
	}
	if (optind < argc)
		return npt_usage(t, "pipeline: unexpected argument '%s'",
				 argv[optind]);
	rc = source_open(t, &s);
	if (rc)
		goto out;
	first = calloc(s.n, sizeof(*first));
	cur = calloc(s.n, sizeof(*cur));
	busy = calloc(s.n, sizeof(*busy));
	fwd0 = calloc(s.n, sizeof(*fwd0));
	fwd1 = calloc(s.n, sizeof(*fwd1));
	if (!first || !cur || !busy || !fwd0 || !fwd1) {
		rc = NPT_EXIT_DEVERR;
		goto out;
	}
	if (s.ctx) {
		bg.ctx = s.ctx;
		if (pthread_create(&bg.thread, NULL, bg_main, &bg)) {
			rc = NPT_EXIT_DEVERR;
			goto out;
		}
		while (!bg.loaded)
			sleep_s(0.01);
		if (bg.loaded < 0) {
			pthread_join(bg.thread, NULL);
			bg.ctx = NULL;
			npt_err(t,
				"pipeline: cannot load %s onto the cards: %s",
				bg.model, strerror(-bg.loaded));
			/* a model path that is not there is the caller's */
			rc = bg.loaded == -ENOENT || bg.loaded == -EACCES ?
				     NPT_EXIT_USAGE :
				     npt_errno_exit(bg.loaded);
			goto out;
		}
	}
	sample_all(&s, first);
	rc = report_errors(t, &s, first);
	if (rc)
		goto out;
	for (size_t i = 0; s.pci && i < s.n; i++)
		fwd_read(&s.pci[i], &fwd0[i]);
	t0 = npt_now();
	do {
		sleep_s(PIPE_SAMPLE_S);
		sample_all(&s, cur);
		for (size_t i = 0; i < s.n; i++)
			busy[i] += has(&cur[i], NPT_TF_BUSY) ?
					   (double)cur[i].tl.v[NPT_TF_BUSY] :
					   0;
		nsamples++;
		secs = npt_now() - t0;
	} while (secs < interval && !stop);
	rc = report_errors(t, &s, cur);
	for (size_t i = 0; s.pci && i < s.n; i++)
		fwd_read(&s.pci[i], &fwd1[i]);
	if (bg.ctx) {
		/* the hop statistics come with the end of a run */
		bg.quit = 1;
		pthread_join(bg.thread, NULL);
		bg.joined = true;
	}
	for (size_t i = 0; i < s.n; i++) {
		busy[i] /= nsamples * 100.0;
		if (busy[i] > 0 && (best < 0 || busy[i] > busy[best]))
			best = (long)i;
	}
	if (t->j) {
		npt_json_kstr(t->j, "source", s.ctx ? "registers" : "sysfs");
		npt_json_kdouble(t->j, "interval_s", secs);
		npt_json_kuint(t->j, "samples", nsamples);
		npt_json_key(t->j, "cards");
		npt_json_arr_open(t->j);
		for (size_t i = 0; i < s.n; i++) {
			double rate = dma_rate(&first[i], &cur[i], secs);
			struct hop_fig h = hop_fig(&bg, &fwd0[i], &fwd1[i], i);

			npt_json_obj_open(t->j);
			npt_json_kuint(t->j, "index", i);
			npt_json_kstr(t->j, "name", source_name(&s, i));
			npt_json_kdouble(t->j, "occupancy", busy[i]);
			npt_json_kdouble(t->j, "bubble_fraction", 1 - busy[i]);
			if (rate >= 0)
				npt_json_kdouble(t->j, "dma_bytes_per_s", rate);
			else
				npt_json_knull(t->j, "dma_bytes_per_s");
			if (h.have) {
				npt_json_kdouble(t->j, "hop_latency_us",
						 h.mean_us);
				if (h.have_max)
					npt_json_kdouble(t->j,
							 "hop_latency_max_us",
							 h.max_us);
				else
					npt_json_knull(t->j,
						       "hop_latency_max_us");
				npt_json_kuint(t->j, "hops", h.hops);
				npt_json_kuint(t->j, "credit_stalls", h.stalls);
				npt_json_kdouble(t->j, "credit_stall_us",
						 h.stall_us);
			} else {
				npt_json_knull(t->j, "hop_latency_us");
				npt_json_knull(t->j, "hop_latency_max_us");
				npt_json_knull(t->j, "hops");
				npt_json_knull(t->j, "credit_stalls");
				npt_json_knull(t->j, "credit_stall_us");
			}
			npt_json_obj_close(t->j);
		}
		npt_json_arr_close(t->j);
		npt_json_key(t->j, "bottleneck");
		if (best < 0) {
			npt_json_null(t->j);
		} else {
			npt_json_obj_open(t->j);
			npt_json_kuint(t->j, "index", (uint64_t)best);
			npt_json_kstr(t->j, "name", source_name(&s, best));
			npt_json_kdouble(t->j, "occupancy", busy[best]);
			npt_json_obj_close(t->j);
		}
	} else {
		struct npt_table *tb = npt_table_new(7);

		npt_table_cell(tb, "CARD");
		npt_table_cell(tb, "NAME");
		npt_table_cell(tb, "OCCUPANCY");
		npt_table_cell(tb, "BUBBLE");
		npt_table_cell(tb, "DMA");
		npt_table_cell(tb, "HOP-LAT");
		npt_table_cell(tb, "CREDIT-STALLS");
		for (size_t i = 0; i < s.n; i++) {
			double rate = dma_rate(&first[i], &cur[i], secs);
			struct hop_fig h = hop_fig(&bg, &fwd0[i], &fwd1[i], i);

			npt_table_cell(tb, "%zu", i);
			npt_table_cell(tb, "%s", source_name(&s, i));
			npt_table_cell(tb, "%.0f%%", busy[i] * 100);
			npt_table_cell(tb, "%.0f%%", (1 - busy[i]) * 100);
			if (rate >= 0)
				npt_table_cell(tb, "%.1fMB/s", rate / 1e6);
			else
				npt_table_cell(tb, "-");
			if (!h.have) {
				npt_table_cell(tb, "-");
				npt_table_cell(tb, "-");
				continue;
			}
			if (h.have_max)
				npt_table_cell(tb, "%.1f/%.1fus", h.mean_us,
					       h.max_us);
			else
				npt_table_cell(tb, "%.1f/-us", h.mean_us);
			npt_table_cell(tb, "%llu (%.1fms)",
				       (unsigned long long)h.stalls,
				       h.stall_us / 1e3);
		}
		npt_table_print(tb);
		npt_table_free(tb);
		if (best < 0)
			printf("bottleneck: none, every card was idle for "
			       "%.1f s: is a model running?\n",
			       secs);
		else
			printf("bottleneck: card %ld (%s), busy %.0f%% of "
			       "%.1f s; the other cards wait on it\n",
			       best, source_name(&s, best), busy[best] * 100,
			       secs);
		printf("HOP-LAT: mean/max time a card took to forward a frame "
		       "into the next card's frame buffer; CREDIT-STALLS: "
		       "times it waited for a free slot there (total wait); "
		       "both exact, from the card's statistics registers "
		       "(%s; -: the card forwarded nothing)\n",
		       bg.ctx ? "over the model runs" :
				"over the interval; the maximum only the "
				"process running the model sees");
	}
out:
	if (bg.ctx) {
		bg.quit = 1;
		if (!bg.joined)
			pthread_join(bg.thread, NULL);
		if (bg.err && bg.err != -ECANCELED) {
			npt_err(t, "pipeline: the model run failed: %s",
				strerror(-bg.err));
			if (!rc)
				rc = NPT_EXIT_DEVERR;
		}
	}
	free(first);
	free(cur);
	free(busy);
	free(fwd0);
	free(fwd1);
	source_close(&s);
	return rc;
}
