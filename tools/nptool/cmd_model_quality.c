// SPDX-License-Identifier: MIT
/*
 * model quality: how well each arithmetic keeps a model, as engines are
 * compared. Teacher forced over a held-out text, against the float
 * reference: mean and 99th-percentile KL divergence of the next-token
 * distribution, same top token, logit cosine; for every precision mode of
 * the cards (with and without each PTQ method) and for ggml's Q4_0 / Q8_0
 * (np/quality.h does the work).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <np/model.h>
#include <np/quality.h>

#include "cols.h"
#include "nptool.h"
#include "json.h"

#define QUAL_TOKENS 128u /* measured tokens by default */
#define QUAL_CALIB_TOKENS 64u /* as np_model_load() calibrates */

/* A PTQ variant: model transforms and compile flags */
struct variant {
	const char *name;
	uint32_t ptq, cflags;
};

static const struct variant variants[] = {
	{"none", 0, 0},
	{"clip", 0, NP_COMPILE_MSE_CLIP},
	{"smooth", NP_PTQ_SMOOTH, 0},
	{"rotate", NP_PTQ_ROTATE, 0},
	{"all", NP_PTQ_ALL, NP_COMPILE_MSE_CLIP},
};
#define N_VARIANTS (sizeof(variants) / sizeof(variants[0]))

struct quality {
	const char *model, *text, *calib_path;
	uint32_t n_tokens, n_calib;
	unsigned int var_mask, prec_mask;
	bool no_ggml;
	float alpha;
	struct np_gguf *g;
	struct np_model *m;
	struct np_tok *tok;
	char *txt, *cal;
	size_t txt_len, cal_len;
	int32_t *ids, *cids;
	size_t n, nc;
	struct np_quality *q;
};

/* "a,b,c" of names[] -> bit mask; -1 for an unknown one */
static int parse_list(const char *s, const char *const *names, size_t n,
		      unsigned int *mask)
{
	char *d = strdup(s), *save = NULL;
	int ret = 0;

	if (!d)
		return -1;
	*mask = 0;
	for (char *w = strtok_r(d, ",", &save); w && !ret;
	     w = strtok_r(NULL, ",", &save)) {
		size_t i;

		for (i = 0; i < n && strcmp(w, names[i]); i++)
			;
		if (i == n)
			ret = -1;
		else
			*mask |= 1u << i;
	}
	free(d);
	return ret || !*mask ? -1 : 0;
}

static int quality_parse(struct npt *t, struct quality *k, int argc,
			 char **argv)
{
	static const struct option opts[] = {
		{"tokens", required_argument, NULL, 'n'},
		{"calib", required_argument, NULL, 'C'},
		{"calib-tokens", required_argument, NULL, 'c'},
		{"precision", required_argument, NULL, 'p'},
		{"ptq", required_argument, NULL, 'P'},
		{"alpha", required_argument, NULL, 'a'},
		{"no-ggml", no_argument, NULL, 'G'},
		{0},
	};
	const char *vnames[N_VARIANTS];
	const char *pnames[NP_PREC_COUNT - 1];
	unsigned int pm;
	char *end;
	int c, rc;

	for (size_t i = 0; i < N_VARIANTS; i++)
		vnames[i] = variants[i].name;
	for (int p = 1; p < NP_PREC_COUNT; p++)
		pnames[p - 1] = np_precision_name((enum np_precision)p);
	while ((c = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			rc = npt_parse_u32(t, "--tokens", optarg, 2,
					   &k->n_tokens);
			if (rc)
				return rc;
			break;
		case 'c':
			rc = npt_parse_u32(t, "--calib-tokens", optarg, 1,
					   &k->n_calib);
			if (rc)
				return rc;
			break;
		case 'C':
			k->calib_path = optarg;
			break;
		case 'p':
			if (parse_list(optarg, pnames, NP_PREC_COUNT - 1, &pm))
				return npt_usage(t,
						 "--precision '%s': a comma "
						 "list of w4a4, a8c8w4, w8a8, "
						 "w2a8",
						 optarg);
			k->prec_mask = pm << 1;
			break;
		case 'P':
			if (parse_list(optarg, vnames, N_VARIANTS,
				       &k->var_mask))
				return npt_usage(t,
						 "--ptq '%s': a comma list of "
						 "none, clip, smooth, rotate, "
						 "all",
						 optarg);
			break;
		case 'a':
			k->alpha = strtof(optarg, &end);
			if (*end || !(k->alpha > 0.0f && k->alpha < 1.0f))
				return npt_usage(t,
						 "--alpha '%s': the smoothing "
						 "strength is in (0, 1)",
						 optarg);
			break;
		case 'G':
			k->no_ggml = true;
			break;
		default:
			return npt_usage(t, "model quality: bad option '%s'",
					 argv[optind - 1]);
		}
	}
	if (argc - optind != 2)
		return npt_usage(t, "model quality takes MODEL.gguf and TEXT "
				    "(held-out text, not the calibration "
				    "text)");
	k->model = argv[optind];
	k->text = argv[optind + 1];
	return NPT_EXIT_OK;
}

/* The measured text must not be what calibrated the scales: refuse when
 * either holds a 64-byte stretch of what the other contributes. */
static bool overlaps(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t w = 64;

	if (alen < w || blen < w)
		return alen && blen &&
		       memmem(b, blen, a, alen < blen ? alen : blen);
	for (size_t i = 0; i + w <= alen; i += w)
		if (memmem(b, blen, a + i, w))
			return true;
	return false;
}

static int quality_load(struct npt *t, struct quality *k)
{
	struct np_log lg = {.fn = npt_log_err, .opaque = t};
	const char *cp = k->calib_path ? k->calib_path : NPT_SAMPLE_TEXT;
	size_t clen;
	int rc, ret;

	rc = npt_open_gguf(t, k->model, &k->g);
	if (rc)
		return rc;
	ret = np_model_from_gguf(k->g, &lg, &k->m);
	ret = ret ? ret : np_tok_from_gguf(k->g, &lg, &k->tok);
	if (ret)
		return ret == -ENOMEM ? NPT_EXIT_DEVERR : NPT_EXIT_USAGE;
	ret = npt_read_file(k->text, NPT_TEXT_MAX, &k->txt, &k->txt_len);
	if (ret) {
		npt_err(t, "cannot read TEXT %s: %s", k->text, strerror(-ret));
		return npt_file_exit(ret);
	}
	ret = npt_read_file(cp, NPT_TEXT_MAX, &k->cal, &k->cal_len);
	if (ret) {
		npt_err(t, "cannot read calibration text %s: %s%s", cp,
			strerror(-ret),
			k->calib_path ? "" : " (give one with --calib FILE)");
		return npt_file_exit(ret);
	}
	/* a token covers at most 16 bytes here, as np_model_load() cuts */
	clen = k->cal_len < 16 * (size_t)k->n_calib ? k->cal_len :
						      16 * (size_t)k->n_calib;
	ret = npt_encode(k->tok, k->cal, clen, false, 0, &k->cids, &k->nc);
	ret = ret ? ret :
		    npt_encode(k->tok, k->txt, k->txt_len, false, 0, &k->ids,
			       &k->n);
	if (ret) {
		npt_err(t, "tokenizing failed: %s", strerror(-ret));
		return ret == -ENOMEM ? NPT_EXIT_DEVERR : NPT_EXIT_USAGE;
	}
	k->nc = k->nc < k->n_calib ? k->nc : k->n_calib;
	k->n = k->n < k->n_tokens ? k->n : k->n_tokens;
	if (k->n < 2 || k->nc < 1) {
		npt_err(t,
			"%s gives %zu tokens and %s %zu: measure over at "
			"least 2, calibrate on at least 1",
			k->text, k->n, cp, k->nc);
		return NPT_EXIT_USAGE;
	}
	if (overlaps(k->txt, k->txt_len < 16 * k->n ? k->txt_len : 16 * k->n,
		     k->cal, clen)) {
		npt_err(t,
			"%s overlaps the calibration text %s: quality on "
			"the text the scales were fitted to flatters the "
			"cards; measure on held-out text, or calibrate on "
			"another with --calib FILE",
			k->text, cp);
		return NPT_EXIT_USAGE;
	}
	return NPT_EXIT_OK;
}

enum { C_ARITH, C_PTQ, C_KLD, C_P99, C_TOP, C_COS, C_STATUS, C_COUNT };
static const struct npt_col qcols[C_COUNT] = {
	{"arith", "ARITHMETIC", false},	      {"ptq", "PTQ", false},
	{"kld_mean", "KLD MEAN", true},	      {"kld_p99", "KLD P99", true},
	{"same_top_pct", "SAME TOP %", true}, {"cos", "COSINE", true},
	{"status", "STATUS", false},
};

struct row {
	const char *arith, *ptq;
	int ret;
	struct np_quality_sum s;
};

/* Why a row has no figures */
static const char *row_status(int ret)
{
	if (ret == -EOPNOTSUPP)
		return "not computed by this build";
	if (ret == -EDOM)
		return "rotation needs a power-of-two dim";
	return strerror(-ret);
}

static void row_json(struct npt *t, const struct row *r)
{
	npt_json_obj_open(t->j);
	npt_json_kstr(t->j, "arith", r->arith);
	npt_json_kstr(t->j, "ptq", r->ptq);
	if (r->ret) {
		npt_json_kstr(t->j, "status", row_status(r->ret));
	} else {
		npt_json_kstr(t->j, "status", "ok");
		npt_json_kdouble(t->j, "kld_mean", r->s.kld_mean);
		npt_json_kdouble(t->j, "kld_p99", r->s.kld_p99);
		npt_json_kdouble(t->j, "kld_max", r->s.kld_max);
		npt_json_kdouble(t->j, "same_top_pct", 100.0 * r->s.same_top);
		npt_json_kdouble(t->j, "cos", r->s.cos_mean);
	}
	npt_json_obj_close(t->j);
}

static void row_cols(char **v, const struct row *r)
{
	npt_cols_set(&v[C_ARITH], "%s", r->arith);
	npt_cols_set(&v[C_PTQ], "%s", r->ptq);
	if (r->ret) {
		npt_cols_set(&v[C_STATUS], "%s", row_status(r->ret));
		return;
	}
	npt_cols_set(&v[C_KLD], "%.6f", r->s.kld_mean);
	npt_cols_set(&v[C_P99], "%.6f", r->s.kld_p99);
	npt_cols_set(&v[C_TOP], "%.2f", 100.0 * r->s.same_top);
	npt_cols_set(&v[C_COS], "%.6f", r->s.cos_mean);
	npt_cols_set(&v[C_STATUS], "ok");
}

/* A row being measured, on a terminal: the medium shape takes minutes */
static void progress(const struct npt *t, const char *arith, const char *ptq)
{
	if (t->j || !isatty(STDERR_FILENO))
		return;
	if (!arith[0])
		fprintf(stderr, "\r\033[K");
	else
		fprintf(stderr, "\r\033[Kmeasuring %s%s%s...", arith,
			ptq[0] ? " " : "", ptq);
}

/* Every row: precision modes x PTQ variants, then the ggml comparator */
static int quality_rows(struct npt *t, struct quality *k, struct row *rows,
			size_t *nrows)
{
	struct np_ptq_opts po = {.smooth_alpha = k->alpha};
	uint32_t dim = np_model_get_shape(k->m)->dim;
	size_t n = 0;
	int hard = 0;

	for (int p = 1; p < NP_PREC_COUNT; p++) {
		if (!(k->prec_mask & 1u << p))
			continue;
		for (size_t v = 0; v < N_VARIANTS; v++) {
			struct np_quality_opts o = {
				.arith = NP_QUALITY_CARDS,
				.precision = (uint32_t)p,
				.ptq = variants[v].ptq,
				.compile_flags = variants[v].cflags,
				.ptq_opts = &po,
			};
			struct row *r = &rows[n];

			if (!(k->var_mask & 1u << v))
				continue;
			n++;
			r->arith = np_precision_name((enum np_precision)p);
			r->ptq = variants[v].name;
			progress(t, r->arith, r->ptq);
			/* the Hadamard rotation needs a power-of-two dim */
			if (variants[v].ptq & NP_PTQ_ROTATE && dim & (dim - 1))
				r->ret = -EDOM;
			else
				r->ret = np_quality_measure(k->q, k->cids,
							    k->nc, &o, &r->s);
			/* a mode this build's compiler refuses is a row */
			if (r->ret && r->ret != -EOPNOTSUPP &&
			    r->ret != -EDOM && !hard)
				hard = r->ret;
		}
	}
	if (!k->no_ggml) {
		struct np_quality_opts o = {.arith = NP_QUALITY_GGML_Q4_0};
		struct row *r = &rows[n++];

		r->arith = "ggml q4_0+q8_0";
		r->ptq = "-";
		progress(t, r->arith, "");
		r->ret = np_quality_measure(k->q, NULL, 0, &o, &r->s);
		if (r->ret && !hard)
			hard = r->ret;
	}
	progress(t, "", "");
	*nrows = n;
	return hard;
}

static void quality_free(struct quality *k)
{
	np_quality_destroy(k->q);
	free(k->ids);
	free(k->cids);
	free(k->txt);
	free(k->cal);
	np_tok_destroy(k->tok);
	np_model_destroy(k->m);
	np_gguf_close(k->g);
}

/* A log that keeps "precision X: these cards compute ..." out of the
 * errors: the table says it */
static void log_quiet(void *opaque, enum np_log_level level, const char *msg)
{
	if (!strncmp(msg, "compile: precision ", 19))
		return;
	npt_log_err(opaque, level, msg);
}

int npt_model_quality(struct npt *t, int argc, char **argv)
{
	struct quality k = {.n_tokens = QUAL_TOKENS,
			    .n_calib = QUAL_CALIB_TOKENS,
			    .var_mask = (1u << N_VARIANTS) - 1,
			    .prec_mask = ((1u << NP_PREC_COUNT) - 1) & ~1u};
	struct np_log lg = {.fn = log_quiet, .opaque = t};
	struct row rows[NP_PREC_COUNT * N_VARIANTS + 1];
	size_t nrows = 0;
	char **v = NULL;
	int rc, ret;

	memset(rows, 0, sizeof(rows));
	rc = quality_parse(t, &k, argc, argv);
	rc = rc ? rc : quality_load(t, &k);
	if (rc)
		goto out;
	ret = np_quality_create(k.m, k.ids, k.n, &lg, &k.q);
	ret = ret ? ret : quality_rows(t, &k, rows, &nrows);
	if (t->j) {
		npt_json_kstr(t->j, "model", k.model);
		npt_json_kstr(t->j, "text", k.text);
		npt_json_kstr(t->j, "calibration",
			      k.calib_path ? k.calib_path : NPT_SAMPLE_TEXT);
		npt_json_kuint(t->j, "tokens", k.n);
		npt_json_kuint(t->j, "calib_tokens", k.nc);
		npt_json_key(t->j, "rows");
		npt_json_arr_open(t->j);
		for (size_t i = 0; i < nrows; i++)
			row_json(t, &rows[i]);
		npt_json_arr_close(t->j);
	} else if (nrows) {
		struct npt_cols_opts o = {.fmt = NPT_FMT_TABLE};

		printf("%s: %zu tokens of %s against the float reference; "
		       "calibrated on %zu tokens of %s\n",
		       k.model, k.n, k.text, k.nc,
		       k.calib_path ? k.calib_path : NPT_SAMPLE_TEXT);
		for (unsigned int i = 0; i < C_COUNT; i++)
			o.col[o.ncols++] = i;
		v = calloc(nrows * C_COUNT, sizeof(*v));
		if (!v) {
			rc = NPT_EXIT_DEVERR;
			goto out;
		}
		for (size_t i = 0; i < nrows; i++)
			row_cols(v + i * C_COUNT, &rows[i]);
		rc = npt_cols_print(&o, qcols, C_COUNT, v, nrows);
		npt_cols_free(v, nrows * C_COUNT);
	}
	if (ret && !rc) {
		npt_err(t, "model quality: %s", strerror(-ret));
		rc = ret == -ENOMEM ? NPT_EXIT_DEVERR : NPT_EXIT_FAIL;
	}
out:
	quality_free(&k);
	return rc;
}
