// SPDX-License-Identifier: MIT
/*
 * pipeline: how the cards share a model run. Each card's occupancy is the
 * mean of its busy register (share of the last 100 ms with work) sampled
 * every 100 ms; its bubble fraction is the rest, the time it waited for
 * input or credits; the card with the highest occupancy is the one the
 * others wait on. Real cards are watched through sysfs while another
 * process runs the model; emulated cards exist only in this process, so
 * for them a small model runs here meanwhile.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <np/pipeline.h>

#include "dev.h"

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
		struct np_card_stats cs[NP_MAX_CARDS];
		struct np_session_stats st = {.card = cs,
					      .n_card = NP_MAX_CARDS};

		rc = np_session_run(p, req, 8, &so, &st);
		for (unsigned int i = 0; i < NP_MAX_CARDS; i++) {
			b->hops[i] += cs[i].hop_frames;
			b->hop_sum_ns[i] +=
				cs[i].hop_mean_ns * cs[i].hop_frames;
			if (cs[i].hop_max_ns > b->hop_max_ns[i])
				b->hop_max_ns[i] = cs[i].hop_max_ns;
			b->stalls[i] += cs[i].credit_stalls;
			b->stall_ns[i] += cs[i].credit_stall_ns;
		}
	}
	b->err = rc;
	np_pipeline_destroy(p);
	return NULL;
}

/* One pipeline command: the cards, their samples and the model run. */
struct pipe {
	struct npt *t;
	double interval, secs;
	struct bg_run bg;
	struct npt_source s;
	struct npt_sample *first, *cur;
	struct fwd *fwd0, *fwd1;
	double *busy; /* occupancy per card */
	unsigned int nsamples;
	long best; /* the bottleneck card, -1 if every card was idle */
	bool sampled; /* the interval was sampled: there is a report */
};

static int pipe_parse(struct pipe *pp, int argc, char **argv)
{
	static const struct option opts[] = {
		{"interval", required_argument, NULL, 'i'},
		{"model", required_argument, NULL, 'm'},
		{0},
	};
	struct npt *t = pp->t;
	int c;

	while ((c = getopt_long(argc, argv, "i:m:", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			if (npt_parse_seconds(optarg, &pp->interval) ||
			    pp->interval < PIPE_SAMPLE_S)
				return npt_usage(t,
						 "pipeline: interval '%s' is "
						 "not a number of seconds >= "
						 "0.1",
						 optarg);
			break;
		case 'm':
			pp->bg.model = optarg;
			break;
		default:
			return npt_usage(t, "pipeline: bad option");
		}
	}
	if (optind < argc)
		return npt_usage(t, "pipeline: unexpected argument '%s'",
				 argv[optind]);
	return NPT_EXIT_OK;
}

/* The cards, and on emulated cards the model running in the background. */
static int pipe_setup(struct pipe *pp)
{
	struct npt_source *s = &pp->s;
	struct bg_run *bg = &pp->bg;
	int rc = npt_source_open_own(pp->t, s);

	if (rc)
		return rc;
	pp->first = calloc(s->n, sizeof(*pp->first));
	pp->cur = calloc(s->n, sizeof(*pp->cur));
	pp->busy = calloc(s->n, sizeof(*pp->busy));
	pp->fwd0 = calloc(s->n, sizeof(*pp->fwd0));
	pp->fwd1 = calloc(s->n, sizeof(*pp->fwd1));
	if (!pp->first || !pp->cur || !pp->busy || !pp->fwd0 || !pp->fwd1)
		return NPT_EXIT_DEVERR;
	if (!s->ctx)
		return NPT_EXIT_OK;
	bg->ctx = s->ctx;
	if (pthread_create(&bg->thread, NULL, bg_main, bg))
		return NPT_EXIT_DEVERR;
	while (!bg->loaded)
		npt_sleep(0.01);
	if (bg->loaded < 0) {
		pthread_join(bg->thread, NULL);
		bg->ctx = NULL;
		npt_err(pp->t, "pipeline: cannot load %s onto the cards: %s",
			bg->model, strerror(-bg->loaded));
		/* a model path that is not there is the caller's */
		return bg->loaded == -ENOENT || bg->loaded == -EACCES ?
			       NPT_EXIT_USAGE :
			       npt_errno_exit(bg->loaded);
	}
	return NPT_EXIT_OK;
}

/* Sample every card for the interval; then the occupancies and the
 * bottleneck. */
static int pipe_loop(struct pipe *pp)
{
	struct npt_source *s = &pp->s;
	double t0;
	int rc;

	npt_sample_all(s, pp->first);
	rc = npt_tele_errors(pp->t, s, pp->first);
	if (rc)
		return rc;
	for (size_t i = 0; s->pci && i < s->n; i++)
		fwd_read(&s->pci[i], &pp->fwd0[i]);
	t0 = npt_now();
	do {
		npt_sleep(PIPE_SAMPLE_S);
		npt_sample_all(s, pp->cur);
		for (size_t i = 0; i < s->n; i++)
			pp->busy[i] +=
				npt_sample_has(&pp->cur[i], NPT_TF_BUSY) ?
					(double)pp->cur[i].tl.v[NPT_TF_BUSY] :
					0;
		pp->nsamples++;
		pp->secs = npt_now() - t0;
	} while (pp->secs < pp->interval && !npt_stop);
	rc = npt_tele_errors(pp->t, s, pp->cur);
	for (size_t i = 0; s->pci && i < s->n; i++)
		fwd_read(&s->pci[i], &pp->fwd1[i]);
	if (pp->bg.ctx) {
		/* the hop statistics come with the end of a run */
		pp->bg.quit = 1;
		pthread_join(pp->bg.thread, NULL);
		pp->bg.joined = true;
	}
	for (size_t i = 0; i < s->n; i++) {
		pp->busy[i] /= pp->nsamples * 100.0;
		if (pp->busy[i] > 0 &&
		    (pp->best < 0 || pp->busy[i] > pp->busy[pp->best]))
			pp->best = (long)i;
	}
	pp->sampled = true;
	return rc;
}

static void pipe_json(const struct pipe *pp)
{
	const struct npt_source *s = &pp->s;
	struct npt_json *j = pp->t->j;
	long best = pp->best;

	npt_json_kstr(j, "source", s->ctx ? "registers" : "sysfs");
	npt_json_kdouble(j, "interval_s", pp->secs);
	npt_json_kuint(j, "samples", pp->nsamples);
	npt_json_key(j, "cards");
	npt_json_arr_open(j);
	for (size_t i = 0; i < s->n; i++) {
		double rate =
			npt_dma_rate(&pp->first[i], &pp->cur[i], pp->secs);
		struct hop_fig h =
			hop_fig(&pp->bg, &pp->fwd0[i], &pp->fwd1[i], i);

		npt_json_obj_open(j);
		npt_json_kuint(j, "index", i);
		npt_json_kstr(j, "name", npt_source_name(s, i));
		npt_json_kdouble(j, "occupancy", pp->busy[i]);
		npt_json_kdouble(j, "bubble_fraction", 1 - pp->busy[i]);
		if (rate >= 0)
			npt_json_kdouble(j, "dma_bytes_per_s", rate);
		else
			npt_json_knull(j, "dma_bytes_per_s");
		if (h.have) {
			npt_json_kdouble(j, "hop_latency_us", h.mean_us);
			if (h.have_max)
				npt_json_kdouble(j, "hop_latency_max_us",
						 h.max_us);
			else
				npt_json_knull(j, "hop_latency_max_us");
			npt_json_kuint(j, "hops", h.hops);
			npt_json_kuint(j, "credit_stalls", h.stalls);
			npt_json_kdouble(j, "credit_stall_us", h.stall_us);
		} else {
			npt_json_knull(j, "hop_latency_us");
			npt_json_knull(j, "hop_latency_max_us");
			npt_json_knull(j, "hops");
			npt_json_knull(j, "credit_stalls");
			npt_json_knull(j, "credit_stall_us");
		}
		npt_json_obj_close(j);
	}
	npt_json_arr_close(j);
	npt_json_key(j, "bottleneck");
	if (best < 0) {
		npt_json_null(j);
	} else {
		npt_json_obj_open(j);
		npt_json_kuint(j, "index", (uint64_t)best);
		npt_json_kstr(j, "name", npt_source_name(s, best));
		npt_json_kdouble(j, "occupancy", pp->busy[best]);
		npt_json_obj_close(j);
	}
}

static void pipe_text(const struct pipe *pp)
{
	const struct npt_source *s = &pp->s;
	struct npt_table *tb = npt_table_new(7);
	long best = pp->best;

	npt_table_cell(tb, "CARD");
	npt_table_cell(tb, "NAME");
	npt_table_cell(tb, "OCCUPANCY");
	npt_table_cell(tb, "BUBBLE");
	npt_table_cell(tb, "DMA");
	npt_table_cell(tb, "HOP-LAT");
	npt_table_cell(tb, "CREDIT-STALLS");
	for (size_t i = 0; i < s->n; i++) {
		double rate =
			npt_dma_rate(&pp->first[i], &pp->cur[i], pp->secs);
		struct hop_fig h =
			hop_fig(&pp->bg, &pp->fwd0[i], &pp->fwd1[i], i);

		npt_table_cell(tb, "%zu", i);
		npt_table_cell(tb, "%s", npt_source_name(s, i));
		npt_table_cell(tb, "%.0f%%", pp->busy[i] * 100);
		npt_table_cell(tb, "%.0f%%", (1 - pp->busy[i]) * 100);
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
			npt_table_cell(tb, "%.1f/%.1fus", h.mean_us, h.max_us);
		else
			npt_table_cell(tb, "%.1f/-us", h.mean_us);
		npt_table_cell(tb, "%llu (%.1fms)",
			       (unsigned long long)h.stalls, h.stall_us / 1e3);
	}
	npt_table_print(tb);
	npt_table_free(tb);
	if (best < 0)
		printf("bottleneck: none, every card was idle for "
		       "%.1f s: is a model running?\n",
		       pp->secs);
	else
		printf("bottleneck: card %ld (%s), busy %.0f%% of "
		       "%.1f s; the other cards wait on it\n",
		       best, npt_source_name(s, best), pp->busy[best] * 100,
		       pp->secs);
	printf("HOP-LAT: mean/max time a card took to forward a frame "
	       "into the next card's frame buffer; CREDIT-STALLS: "
	       "times it waited for a free slot there (total wait); "
	       "both exact, from the card's statistics registers "
	       "(%s; -: the card forwarded nothing)\n",
	       pp->bg.ctx ? "over the model runs" :
			    "over the interval; the maximum only the "
			    "process running the model sees");
}

/* Stop the model run, say whether it failed; free everything. */
static int pipe_end(struct pipe *pp, int rc)
{
	struct bg_run *bg = &pp->bg;

	if (bg->ctx) {
		bg->quit = 1;
		if (!bg->joined)
			pthread_join(bg->thread, NULL);
		if (bg->err && bg->err != -ECANCELED) {
			npt_err(pp->t, "pipeline: the model run failed: %s",
				strerror(-bg->err));
			if (!rc)
				rc = NPT_EXIT_DEVERR;
		}
	}
	free(pp->first);
	free(pp->cur);
	free(pp->busy);
	free(pp->fwd0);
	free(pp->fwd1);
	npt_source_close(&pp->s);
	return rc;
}

int npt_cmd_pipeline(struct npt *t, int argc, char **argv)
{
	struct pipe pp = {
		.t = t,
		.interval = 2.0,
		.bg = {.model = NPT_DEFAULT_MODEL},
		.best = -1,
	};
	int rc = pipe_parse(&pp, argc, argv);

	if (rc)
		return rc;
	rc = pipe_setup(&pp);
	if (!rc)
		rc = pipe_loop(&pp);
	if (pp.sampled && t->j)
		pipe_json(&pp);
	else if (pp.sampled)
		pipe_text(&pp);
	return pipe_end(&pp, rc);
}
