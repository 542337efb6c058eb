// SPDX-License-Identifier: MIT
/*
 * status: telemetry of every card.
 *
 * Real cards are read through the np driver's hwmon and sysfs attributes,
 * which work while another process (a model run) holds the cards through
 * VFIO. Emulated cards are read through libnp's register access. The DMA
 * rate is the difference of two dma_bytes samples an interval apart.
 * --query and --format pick the columns and print them as a table, CSV
 * or JSON (cols.h); top prints the same table.
 */
#include <stdlib.h>

#include "dev.h"

/* The columns: first the telemetry fields, in enum npt_tf order. */
enum {
	COL_TF0 = 0,
	COL_INDEX = NPT_TF_COUNT,
	COL_NAME,
	COL_STATE,
	COL_DMA_RATE,
	COL_SRAM_USED, /* weights + KV + programs */
	COL_HOLDER,
	COL_HOLDER_PID,
	COL_COUNT,
};

static const struct npt_col status_cols[COL_COUNT] = {
	[NPT_TF_TEMP] = {"temp_mc", "TEMP", true},
	[NPT_TF_TEMP_MAX] = {"temp_max_mc", "TEMP-MAX", true},
	[NPT_TF_TEMP_CRIT] = {"temp_crit_mc", "TEMP-CRIT", true},
	[NPT_TF_POWER] = {"power_mw", "POWER", true},
	[NPT_TF_VOLTAGE] = {"voltage_mv", "VCORE", true},
	[NPT_TF_CLOCK] = {"core_clock_mhz", "CLOCK", true},
	[NPT_TF_BUSY] = {"busy_percent", "BUSY", true},
	[NPT_TF_UPTIME] = {"uptime_ms", "UPTIME", true},
	[NPT_TF_DMA_BYTES] = {"dma_bytes", "DMA-BYTES", true},
	[NPT_TF_DMA_ERRORS] = {"dma_errors", "DMA-ERR", true},
	[NPT_TF_SRAM_CE] = {"sram_ce", "SRAM-CE", true},
	[NPT_TF_SRAM_UE] = {"sram_ue", "SRAM-UE", true},
	[NPT_TF_THROTTLES] = {"throttle_count", "THROTTLE", true},
	[NPT_TF_SRAM_WEIGHTS] = {"sram_weight_bytes", "SRAM-W", true},
	[NPT_TF_SRAM_KV] = {"sram_kv_bytes", "SRAM-KV", true},
	[NPT_TF_SRAM_PROG] = {"sram_prog_bytes", "SRAM-PROG", true},
	[NPT_TF_FB_USED] = {"fb_used_bytes", "FB", true},
	[COL_INDEX] = {"index", "CARD", true},
	[COL_NAME] = {"name", "NAME", false},
	[COL_STATE] = {"state", "STATE", false},
	[COL_DMA_RATE] = {"dma_bytes_per_s", "DMA", true},
	[COL_SRAM_USED] = {"sram_used_bytes", "SRAM", true},
	[COL_HOLDER] = {"holder", "HOLDER", false},
	[COL_HOLDER_PID] = {"holder_pid", "PID", true},
};

/* The default table's order (the enum's order is that of the JSON). */
static const unsigned int default_order[] = {
	COL_INDEX,	COL_NAME,	COL_STATE,	  NPT_TF_TEMP,
	NPT_TF_POWER,	NPT_TF_VOLTAGE, NPT_TF_CLOCK,	  NPT_TF_BUSY,
	COL_DMA_RATE,	COL_SRAM_USED,	NPT_TF_FB_USED,	  NPT_TF_DMA_ERRORS,
	NPT_TF_SRAM_CE, NPT_TF_SRAM_UE, NPT_TF_THROTTLES, COL_HOLDER,
};

/* How the table shows a field: raw value / div, prec decimals, unit. */
static const struct {
	double div;
	int prec;
	const char *unit;
} human[NPT_TF_COUNT] = {
	[NPT_TF_TEMP] = {1000, 1, "C"},
	[NPT_TF_TEMP_MAX] = {1000, 1, "C"},
	[NPT_TF_TEMP_CRIT] = {1000, 1, "C"},
	[NPT_TF_POWER] = {1000, 1, "W"},
	[NPT_TF_VOLTAGE] = {1000, 3, "V"},
	[NPT_TF_CLOCK] = {1, 0, "MHz"},
	[NPT_TF_BUSY] = {1, 0, "%"},
	[NPT_TF_UPTIME] = {1000, 1, "s"},
	[NPT_TF_DMA_BYTES] = {1, 0, ""},
	[NPT_TF_DMA_ERRORS] = {1, 0, ""},
	[NPT_TF_SRAM_CE] = {1, 0, ""},
	[NPT_TF_SRAM_UE] = {1, 0, ""},
	[NPT_TF_THROTTLES] = {1, 0, ""},
	[NPT_TF_SRAM_WEIGHTS] = {1 << 20, 1, "M"},
	[NPT_TF_SRAM_KV] = {1 << 20, 1, "M"},
	[NPT_TF_SRAM_PROG] = {1 << 20, 1, "M"},
	[NPT_TF_FB_USED] = {1 << 20, 1, "M"},
};

void npt_status_default(struct npt_cols_opts *o)
{
	npt_cols_defaults(o, default_order,
			  sizeof(default_order) / sizeof(default_order[0]));
}

static void row(char **v, enum npt_fmt fmt, const struct npt_source *s,
		size_t i, const struct npt_sample *a,
		const struct npt_sample *b, double secs)
{
	struct npt_holder h[NPT_MAX_HOLDERS];
	double rate = npt_dma_rate(a, b, secs);
	bool tb = fmt == NPT_FMT_TABLE;
	int nh = npt_source_holders(s, i, h);
	char hs[256];

	for (unsigned int f = 0; f < NPT_TF_COUNT; f++) {
		if (!npt_sample_has(b, f))
			continue;
		if (tb)
			npt_cols_set(&v[f], "%.*f%s", human[f].prec,
				     (double)b->tl.v[f] / human[f].div,
				     human[f].unit);
		else
			npt_cols_set(&v[f], "%llu",
				     (unsigned long long)b->tl.v[f]);
	}
	npt_cols_set(&v[COL_INDEX], "%zu", i);
	npt_cols_set(&v[COL_NAME], "%s", npt_source_name(s, i));
	if (!b->err)
		npt_cols_set(&v[COL_STATE], "%s", b->tl.state);
	else if (tb)
		npt_cols_set(&v[COL_STATE], "?");
	if (rate >= 0 && tb)
		npt_cols_set(&v[COL_DMA_RATE], "%.1fMB/s", rate / 1e6);
	else if (rate >= 0)
		npt_cols_set(&v[COL_DMA_RATE], "%.0f", rate);
	if (npt_sample_has(b, NPT_TF_SRAM_WEIGHTS) &&
	    npt_sample_has(b, NPT_TF_SRAM_KV) &&
	    npt_sample_has(b, NPT_TF_SRAM_PROG)) {
		uint64_t used = b->tl.v[NPT_TF_SRAM_WEIGHTS] +
				b->tl.v[NPT_TF_SRAM_KV] +
				b->tl.v[NPT_TF_SRAM_PROG];

		if (tb)
			npt_cols_set(&v[COL_SRAM_USED], "%.1fM",
				     (double)used / (1 << 20));
		else
			npt_cols_set(&v[COL_SRAM_USED], "%llu",
				     (unsigned long long)used);
	}
	if (nh > 0) {
		npt_cols_set(&v[COL_HOLDER], "%s",
			     npt_holders_str(hs, sizeof(hs), h, nh));
		npt_cols_set(&v[COL_HOLDER_PID], "%d", h[0].pid);
	}
}

int npt_status_print(const struct npt_cols_opts *o, const struct npt_source *s,
		     const struct npt_sample *a, const struct npt_sample *b,
		     double secs)
{
	char **v = calloc(s->n * COL_COUNT + 1, sizeof(*v));
	int rc;

	if (!v)
		return NPT_EXIT_DEVERR;
	for (size_t i = 0; i < s->n; i++)
		row(v + i * COL_COUNT, o->fmt, s, i, &a[i], &b[i], secs);
	rc = npt_cols_print(o, status_cols, COL_COUNT, v, s->n);
	npt_cols_free(v, s->n * COL_COUNT);
	return rc;
}

int npt_cmd_status(struct npt *t, int argc, char **argv)
{
	struct npt_cols_opts o = {.interval = 0.25};
	struct npt_sample *a, *b;
	struct npt_source s;
	double t0;
	int rc, prc;

	rc = npt_cols_parse(
		t, argc, argv, status_cols, COL_COUNT, default_order,
		sizeof(default_order) / sizeof(default_order[0]), true, &o);
	if (rc)
		return rc;
	rc = npt_source_open(t, &s);
	if (rc) {
		npt_source_close(&s);
		return rc;
	}
	a = calloc(s.n, sizeof(*a));
	b = calloc(s.n, sizeof(*b));
	if (!a || !b) {
		rc = NPT_EXIT_DEVERR;
		goto out;
	}
	npt_sample_all(&s, a);
	t0 = npt_now();
	npt_sleep(o.interval);
	npt_sample_all(&s, b);
	o.interval = npt_now() - t0;
	rc = npt_tele_errors(t, &s, b);
	if (t->j) {
		npt_tele_json(t, &s, a, b, o.interval);
	} else {
		prc = npt_status_print(&o, &s, a, b, o.interval);
		if (prc)
			rc = prc;
	}
out:
	free(a);
	free(b);
	npt_source_close(&s);
	return rc;
}
