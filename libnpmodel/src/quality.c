// SPDX-License-Identifier: MIT
/*
 * Quantization quality (docs/numerics.md "Quality"): the figures engines
 * are compared by (KL divergence of the next-token distribution against
 * the float model, same top token, logit cosine), teacher forced over a
 * text, for the cards' arithmetic and for ggml's Q4_0 / Q8_0.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "np/quality.h"
#include "npim.h"

/* log-sum-exp of n logits, in double */
static double lse(const float *x, size_t n)
{
	double max = -INFINITY, sum = 0;

	for (size_t i = 0; i < n; i++)
		max = x[i] > max ? x[i] : max;
	for (size_t i = 0; i < n; i++)
		sum += exp((double)x[i] - max);
	return max + log(sum);
}

static size_t argmax(const float *x, size_t n)
{
	size_t b = 0;

	for (size_t i = 1; i < n; i++)
		if (x[i] > x[b])
			b = i;
	return b;
}

int np_quality_compare(const float *ref, const float *test, size_t n,
		       struct np_quality_tok *out)
{
	double lp, lq, kld = 0, dot = 0, nr = 0, nt = 0;

	memset(out, 0, sizeof(*out));
	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!isfinite(ref[i]) || !isfinite(test[i]))
			return -EINVAL;
	lp = lse(ref, n);
	lq = lse(test, n);
	for (size_t i = 0; i < n; i++) {
		double a = (double)ref[i] - lp, b = (double)test[i] - lq;

		kld += exp(a) * (a - b);
		dot += (double)ref[i] * test[i];
		nr += (double)ref[i] * ref[i];
		nt += (double)test[i] * test[i];
	}
	/* rounding can leave a hair below zero for equal distributions */
	out->kld = kld > 0 ? kld : 0;
	out->cos = nr == 0 && nt == 0 ? 1.0 :
		   nr == 0 || nt == 0 ? 0.0 :
					dot / (sqrt(nr) * sqrt(nt));
	out->same_top = argmax(ref, n) == argmax(test, n);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int np_quality_summarize(const struct np_quality_tok *t, size_t n,
			 struct np_quality_sum *out)
{
	double *k, kld = 0, cos = 0;
	size_t top = 0, rank;

	memset(out, 0, sizeof(*out));
	if (n == 0)
		return -EINVAL;
	k = malloc(n * sizeof(*k));
	if (!k)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		k[i] = t[i].kld;
		kld += t[i].kld;
		cos += t[i].cos;
		top += t[i].same_top != 0;
	}
	qsort(k, n, sizeof(*k), cmp_double);
	/* nearest rank: the ceil(0.99 n)-th smallest, in integers */
	rank = (99 * n + 99) / 100;
	out->n = n;
	out->kld_mean = kld / (double)n;
	out->kld_p99 = k[rank - 1];
	out->kld_max = k[n - 1];
	out->same_top = (double)top / (double)n;
	out->cos_mean = cos / (double)n;
	free(k);
	return 0;
}

/* ---------------------------------------------------------------- */
/* Measurement                                                        */

struct np_quality {
	const struct np_model *m;
	const struct np_log *log;
	int32_t *tok;
	size_t n;
	uint32_t vocab;
	float *ref; /* [n][vocab] float reference logits */
};

void np_quality_destroy(struct np_quality *q)
{
	if (!q)
		return;
	free(q->tok);
	free(q->ref);
	free(q);
}

int np_quality_create(const struct np_model *m, const int32_t *tokens, size_t n,
		      const struct np_log *log, struct np_quality **out)
{
	struct np_quality *q;
	struct np_ref_float *r = NULL;
	int ret;

	*out = NULL;
	if (n == 0 || n > 65536) {
		npim_log(log, LOG_ERR,
			 "quality: %zu tokens of text: measure over 1..65536",
			 n);
		return -EINVAL;
	}
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->m = m;
	q->log = log;
	q->n = n;
	q->vocab = np_model_get_shape(m)->vocab;
	q->tok = malloc(n * sizeof(*q->tok));
	q->ref = malloc(n * q->vocab * sizeof(*q->ref));
	ret = q->tok && q->ref ? np_ref_float_create(m, (uint32_t)n, 1, &r) :
				 -ENOMEM;
	if (!ret)
		memcpy(q->tok, tokens, n * sizeof(*q->tok));
	for (size_t i = 0; i < n && !ret; i++)
		ret = np_ref_float_step(r, 0, (uint32_t)i, tokens[i],
					q->ref + i * q->vocab);
	np_ref_float_destroy(r);
	if (ret) {
		if (ret == -ERANGE)
			npim_log(log, LOG_ERR,
				 "quality: a token of the text is outside the "
				 "model's vocabulary of %u",
				 q->vocab);
		np_quality_destroy(q);
		return ret;
	}
	*out = q;
	return 0;
}

/* The ggml comparator's logits over the text */
static int run_ggml(struct np_quality *q, struct np_quality_tok *res, float *lg)
{
	struct np_ref_float_opts fo = {.fake_quant = NP_REF_FLOAT_Q4_0_Q8_0};
	struct np_ref_float *r;
	int ret = np_ref_float_create_opts(q->m, (uint32_t)q->n, 1, &fo, &r);

	if (ret == -EINVAL)
		npim_log(q->log, LOG_ERR,
			 "quality: Q4_0 / Q8_0 blocks are 32 wide; the model's "
			 "dimension %u or FFN width %u is not a multiple of 32",
			 np_model_get_shape(q->m)->dim,
			 np_model_get_shape(q->m)->ffn);
	for (size_t i = 0; i < q->n && !ret; i++) {
		ret = np_ref_float_step(r, 0, (uint32_t)i, q->tok[i], lg);
		ret = ret ? ret :
			    np_quality_compare(q->ref + i * q->vocab, lg,
					       q->vocab, &res[i]);
	}
	np_ref_float_destroy(r);
	return ret;
}

/* The cards' logits: PTQ transforms, calibration, compile, integer
 * reference */
static int run_cards(struct np_quality *q, const int32_t *calib, size_t n_calib,
		     const struct np_quality_opts *o,
		     struct np_quality_tok *res, float *lg)
{
	struct np_ptq_opts po =
		o->ptq_opts ? *o->ptq_opts : (struct np_ptq_opts){0};
	struct np_compile_opts co = {.batch = 1,
				     .max_seq = (uint32_t)q->n,
				     .flags = o->compile_flags,
				     .precision = o->precision};
	struct np_model *pm = NULL;
	const struct np_model *m = q->m;
	struct np_quant_calib *cal = NULL;
	struct np_compiled *c = NULL;
	struct np_ref_int *ri = NULL;
	int32_t *il = malloc(q->vocab * sizeof(*il));
	double unit;
	int ret = il ? 0 : -ENOMEM;

	po.flags |= o->ptq;
	if (!ret && po.flags) {
		ret = np_model_ptq(q->m, calib, n_calib, &po, q->log, &pm);
		m = pm;
	}
	if (!ret) {
		ret = np_quant_calibrate(m, calib, n_calib, &cal);
		if (ret == -ERANGE)
			npim_log(q->log, LOG_ERR,
				 "quality: a calibration token is outside the "
				 "model's vocabulary of %u",
				 q->vocab);
	}
	ret = ret ? ret : np_compile(m, cal, &co, q->log, &c);
	ret = ret ? ret : np_ref_int_create(c, &ri);
	unit = ret ? 0 : np_compiled_logit_scale(c);
	for (size_t i = 0; i < q->n && !ret; i++) {
		ret = np_ref_int_step(ri, 0, (uint32_t)i, q->tok[i], il);
		for (uint32_t v = 0; v < q->vocab && !ret; v++)
			lg[v] = (float)(il[v] * unit);
		ret = ret ? ret :
			    np_quality_compare(q->ref + i * q->vocab, lg,
					       q->vocab, &res[i]);
	}
	np_ref_int_destroy(ri);
	np_compiled_destroy(c);
	np_quant_calib_destroy(cal);
	np_model_destroy(pm);
	free(il);
	return ret;
}

int np_quality_measure(struct np_quality *q, const int32_t *calib,
		       size_t n_calib, const struct np_quality_opts *opts,
		       struct np_quality_sum *out)
{
	struct np_quality_opts o = opts ? *opts : (struct np_quality_opts){0};
	struct np_quality_tok *res;
	float *lg;
	int ret;

	memset(out, 0, sizeof(*out));
	if (o.arith > NP_QUALITY_GGML_Q4_0 || o.precision >= NP_PREC_COUNT ||
	    memcmp(o.resv, (uint64_t[4]){0}, sizeof(o.resv))) {
		npim_log(q->log, LOG_ERR,
			 "quality: arithmetic %u, precision %u or reserved "
			 "space not zero: use enum np_quality_arith, enum "
			 "np_precision, a zero-initialized struct",
			 o.arith, o.precision);
		return -EINVAL;
	}
	if (o.arith == NP_QUALITY_CARDS && (!calib || n_calib == 0)) {
		npim_log(q->log, LOG_ERR,
			 "quality: the cards need calibration text for their "
			 "activation scales: give some tokens (held out from "
			 "the measured text)");
		return -EINVAL;
	}
	res = calloc(q->n, sizeof(*res));
	lg = malloc(q->vocab * sizeof(*lg));
	if (!res || !lg) {
		ret = -ENOMEM;
		goto out;
	}
	ret = o.arith == NP_QUALITY_GGML_Q4_0 ?
		      run_ggml(q, res, lg) :
		      run_cards(q, calib, n_calib, &o, res, lg);
	ret = ret ? ret : np_quality_summarize(res, q->n, out);
out:
	free(res);
	free(lg);
	return ret;
}
