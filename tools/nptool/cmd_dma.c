// SPDX-License-Identifier: MIT
/*
 * dma: host<->card bandwidth and latency per transfer size, per card.
 *
 * Latency is the median time of one transfer with nothing else in flight
 * (submit to completion as the caller sees it). Bandwidth is the bytes
 * of a batch of transfers in flight at once, spread over the card's DMA
 * engines, divided by the time from the first submit to the last
 * completion. Each size is also written and read back once and compared.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "dev.h"
#include "np_abi.h"

#define MAX_SIZES 16
#define AUTO_BYTES (64ull << 20) /* per measurement when -n is not given */

struct dir_result {
	double bytes_per_s, latency_us;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int measure(struct np_card *c, struct np_buf *b, enum np_xfer_op op,
		   size_t size, unsigned int iters, struct dir_result *r)
{
	struct np_xfer_spec s = {
		.op = op,
		.engine = -1,
		.buf = b,
		.card_addr = NP_CA_SRAM_BASE,
		.len = size,
	};
	double lat[32], secs;
	unsigned int nlat = iters < 32 ? iters : 32;
	int rc;

	for (unsigned int i = 0; i < nlat; i++) {
		double t0 = npt_now();

		rc = np_xfer_run(c, &s);
		if (rc)
			return rc;
		lat[i] = (npt_now() - t0) * 1e6;
	}
	qsort(lat, nlat, sizeof(lat[0]), cmp_double);
	r->latency_us = lat[nlat / 2];
	rc = npt_xfer_batch(c, &s, iters, &secs);
	if (rc)
		return rc;
	r->bytes_per_s = secs > 0 ? (double)size * iters / secs : 0;
	return 0;
}

static int parse_sizes(const char *arg, uint64_t *sizes, unsigned int *n,
		       uint64_t max)
{
	char *copy = strdup(arg), *save = NULL;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	*n = 0;
	for (char *tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (*n == MAX_SIZES || npt_parse_size(tok, &sizes[*n]) ||
		    !sizes[*n] || sizes[*n] > max) {
			rc = -EINVAL;
			break;
		}
		(*n)++;
	}
	free(copy);
	return rc || !*n ? -EINVAL : 0;
}

static void dir_json(struct npt_json *j, const char *key,
		     const struct dir_result *r)
{
	npt_json_key(j, key);
	npt_json_obj_open(j);
	npt_json_kdouble(j, "bytes_per_s", r->bytes_per_s);
	npt_json_kdouble(j, "latency_us", r->latency_us);
	npt_json_obj_close(j);
}

/* One dma command: its options, the cards, the report being built. */
struct dma {
	struct npt *t;
	uint64_t sizes[MAX_SIZES];
	unsigned int nsizes, iters, done;
	struct npt_cards cs;
	struct npt_progress pg;
	struct npt_table *tb; /* text report */
	int rc;
};

static int dma_parse(struct dma *r, int argc, char **argv)
{
	static const struct option opts[] = {
		{"sizes", required_argument, NULL, 's'},
		{"iterations", required_argument, NULL, 'n'},
		{0},
	};
	struct npt *t = r->t;
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "s:n:", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (parse_sizes(optarg, r->sizes, &r->nsizes,
					NP_DMA_MAX_LEN))
				return npt_usage(t,
						 "dma: sizes '%s' are not a "
						 "list of up to %d sizes "
						 "of 1..16M bytes",
						 optarg, MAX_SIZES);
			break;
		case 'n':
			r->iters = (unsigned int)strtoul(optarg, &end, 10);
			if (*end || !r->iters || r->iters > 4096)
				return npt_usage(t,
						 "dma: iterations '%s' is "
						 "not 1..4096",
						 optarg);
			break;
		default:
			return npt_usage(t, "dma: bad option");
		}
	}
	return NPT_EXIT_OK;
}

/* The JSON array or the table the results go to. */
static void dma_report_begin(struct dma *r)
{
	struct npt_table *tb;

	if (r->t->j) {
		npt_json_key(r->t->j, "results");
		npt_json_arr_open(r->t->j);
		return;
	}
	tb = r->tb = npt_table_new(8);
	npt_table_cell(tb, "CARD");
	npt_table_cell(tb, "NAME");
	npt_table_cell(tb, "SIZE");
	npt_table_cell(tb, "H2C GB/s");
	npt_table_cell(tb, "H2C us");
	npt_table_cell(tb, "C2H GB/s");
	npt_table_cell(tb, "C2H us");
	npt_table_cell(tb, "DATA");
}

/* Transfer size k of card i: integrity, then both directions' figures. */
static void dma_size(struct dma *r, unsigned int i, unsigned int k)
{
	struct npt *t = r->t;
	struct np_card *card = np_ctx_card(r->cs.ctx, i);
	size_t size = (size_t)r->sizes[k];
	unsigned int it = r->iters;
	struct dir_result h2c, c2h;
	uint64_t bad = 0;
	char sz[32];
	int err, data;

	if (!it) {
		it = (unsigned int)(AUTO_BYTES / size);
		it = it < 4 ? 4 : it > 256 ? 256 : it;
	}
	data = npt_roundtrip(card, r->cs.buf, NP_CA_SRAM_BASE, size,
			     i * 131 + k, &bad);
	err = data < 0 ? data : 0;
	if (!err)
		err = measure(card, r->cs.buf, NP_XFER_H2C, size, it, &h2c);
	if (!err)
		err = measure(card, r->cs.buf, NP_XFER_C2H, size, it, &c2h);
	npt_progress_update(&r->pg, ++r->done);
	npt_fmt_size(sz, sizeof(sz), size);
	if (err) {
		npt_err(t, "dma: card %u (%s), %s: %s", i, np_card_name(card),
			sz, strerror(-err));
		r->rc = NPT_EXIT_DEVERR;
		return;
	}
	if (data) {
		npt_err(t,
			"dma: card %u (%s), %s: data read "
			"back differs at card address "
			"%#llx",
			i, np_card_name(card), sz, (unsigned long long)bad);
		if (!r->rc)
			r->rc = NPT_EXIT_FAIL;
	}
	if (t->j) {
		npt_json_obj_open(t->j);
		npt_json_kuint(t->j, "index", i);
		npt_json_kstr(t->j, "name", np_card_name(card));
		npt_json_kuint(t->j, "size", size);
		npt_json_kuint(t->j, "iterations", it);
		dir_json(t->j, "h2c", &h2c);
		dir_json(t->j, "c2h", &c2h);
		npt_json_kstr(t->j, "integrity", data ? "fail" : "pass");
		npt_json_obj_close(t->j);
		return;
	}
	npt_table_cell(r->tb, "%u", i);
	npt_table_cell(r->tb, "%s", np_card_name(card));
	npt_table_cell(r->tb, "%s", sz);
	npt_table_cell(r->tb, "%.2f", h2c.bytes_per_s / 1e9);
	npt_table_cell(r->tb, "%.1f", h2c.latency_us);
	npt_table_cell(r->tb, "%.2f", c2h.bytes_per_s / 1e9);
	npt_table_cell(r->tb, "%.1f", c2h.latency_us);
	npt_table_cell(r->tb, "%s", data ? "FAIL" : "ok");
}

int npt_cmd_dma(struct npt *t, int argc, char **argv)
{
	struct dma r = {
		.t = t,
		.sizes = {4 << 10, 64 << 10, 1 << 20, 16 << 20},
		.nsizes = 4,
	};
	uint64_t max = 0;
	int rc = dma_parse(&r, argc, argv);

	if (rc)
		return rc;
	for (unsigned int i = 0; i < r.nsizes; i++)
		max = r.sizes[i] > max ? r.sizes[i] : max;
	rc = npt_cards_open(t, NULL, argc - optind, argv + optind,
			    (size_t)(2 * max), &r.cs);
	if (rc)
		goto out;
	dma_report_begin(&r);
	npt_progress_begin(t, &r.pg, "dma", (uint64_t)r.cs.nsel * r.nsizes);
	for (unsigned int i = 0; i < r.cs.n; i++)
		for (unsigned int k = 0; r.cs.sel[i] && k < r.nsizes; k++)
			dma_size(&r, i, k);
	npt_progress_end(&r.pg);
	if (t->j)
		npt_json_arr_close(t->j);
	npt_table_print(r.tb);
	npt_table_free(r.tb);
	rc = r.rc;
out:
	npt_cards_close(&r.cs);
	return rc;
}
