// SPDX-License-Identifier: MIT
/*
 * Post-training quantization methods (docs/numerics.md "Post-training
 * quantization"): weight clipping of least squared error (compile.c's
 * NP_COMPILE_MSE_CLIP hook) and the model transforms of np_model_ptq,
 * which keep the float function and change what the quantiser sees:
 * SmoothQuant-style channel scaling and a QuaRot-style Hadamard rotation
 * of the residual stream.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "np/quality.h"
#include "npim.h"

/* ---------------------------------------------------------------- */
/* Weight clipping                                                    */

/* Squared error of w quantised at scale s to [lo, hi], rounding as
 * np_quant_row (half away from zero) */
static double row_err(const float *w, size_t n, float s, int lo, int hi)
{
	float inv = 1.0f / s;
	double err = 0;

	for (size_t i = 0; i < n; i++) {
		float q = roundf(w[i] * inv);

		q = q < (float)lo ? (float)lo : q > (float)hi ? (float)hi : q;
		err += (double)(w[i] - q * s) * (w[i] - q * s);
	}
	return err;
}

float npim_ptq_row_scale(const float *w, size_t n, int bits)
{
	int hi = (1 << (bits - 1)) - 1, lo = -hi - 1;
	float s0 = np_quant_row_scale(w, n, bits), best = s0;
	double best_err;

	/* INT2 rows already get the scale of least squared error from
	 * np_quant_row_scale (docs/numerics.md, "Weights") */
	if (bits == 2)
		return s0;
	best_err = row_err(w, n, s0, lo, hi);
	/* clip ratios 1.00, 0.99, ... 0.50 of max|w| */
	for (int k = 99; k >= 50; k--) {
		float s = s0 * (float)k / 100.0f;
		double e = row_err(w, n, s, lo, hi);

		if (e < best_err) {
			best_err = e;
			best = s;
		}
	}
	return best;
}

/* ---------------------------------------------------------------- */
/* Model transforms                                                   */

static uint32_t idx(const struct np_model *m, int t, uint32_t layer)
{
	return t < NP_T_TOK_EMBD ?
		       layer * 9 + (uint32_t)t :
		       m->shape.n_layers * 9 + (uint32_t)(t - NP_T_TOK_EMBD);
}

/* A copy of m with every weight and bias materialised */
static int materialise(const struct np_model *m, struct np_model **out)
{
	uint32_t L = m->shape.n_layers, n = L * 9 + 3;
	struct np_model *c = calloc(1, sizeof(*c));
	int ret = 0;

	*out = NULL;
	if (!c)
		return -ENOMEM;
	*c = *m;
	c->t = NULL;
	c->bias = NULL;
	c->mem = calloc(n, sizeof(*c->mem));
	c->mem_bias = calloc((size_t)L * 3, sizeof(*c->mem_bias));
	if (m->t)
		c->t = malloc(n * sizeof(*c->t));
	if (m->bias)
		c->bias = malloc((size_t)L * 3 * sizeof(*c->bias));
	if (!c->mem || !c->mem_bias || (m->t && !c->t) ||
	    (m->bias && !c->bias)) {
		ret = -ENOMEM;
		goto out;
	}
	if (m->t)
		memcpy(c->t, m->t, n * sizeof(*c->t));
	if (m->bias)
		memcpy(c->bias, m->bias, (size_t)L * 3 * sizeof(*c->bias));
	for (uint32_t l = 0; l <= L && !ret; l++)
		for (int t = 0; t < NP_T_COUNT && !ret; t++) {
			uint32_t rows, cols, i;
			float *w;

			if ((l == L) != (t >= NP_T_TOK_EMBD))
				continue;
			np_model_dims(m, t, &rows, &cols);
			i = idx(m, t, l);
			w = c->mem[i] =
				malloc((size_t)rows * cols * sizeof(*w));
			if (!w) {
				ret = -ENOMEM;
				break;
			}
			for (uint32_t r = 0; r < rows && !ret; r++)
				ret = np_model_row(m, t, l, r,
						   w + (size_t)r * cols);
		}
	for (uint32_t l = 0; l < L && !ret; l++)
		for (int t = NP_T_Q; t <= NP_T_V && !ret; t++) {
			uint32_t rows, cols;
			float **b =
				&c->mem_bias[l * 3 + (uint32_t)(t - NP_T_Q)];

			np_model_dims(m, t, &rows, &cols);
			*b = malloc(rows * sizeof(**b));
			ret = *b ? npim_model_bias(m, t, l, *b) : -ENOMEM;
		}
out:
	if (ret) {
		np_model_destroy(c);
		return ret;
	}
	*out = c;
	return 0;
}

/*
 * Smoothing of layer l's two internal channel sets:
 *   attention output: V row r and, for every head of its group, O column
 *   h * hd + r % hd (scores and softmax do not read V);
 *   FFN product: up row j and down column j (silu(gate) * up is linear
 *   in up).
 * X / s_j and W * s_j, s_j = max|X_j|^a / max|W_j|^(1 - a).
 */
static void smooth_layer(struct np_model *c, uint32_t l, const float *chmax,
			 float a)
{
	const struct np_model_shape *s = &c->shape;
	uint32_t hd = s->dim / s->n_heads, qd = s->n_heads * hd,
		 kvd = s->n_kv_heads * hd, group = s->n_heads / s->n_kv_heads;
	float *V = c->mem[idx(c, NP_T_V, l)], *O = c->mem[idx(c, NP_T_O, l)];
	float *U = c->mem[idx(c, NP_T_UP, l)],
	      *D = c->mem[idx(c, NP_T_DOWN, l)];
	float *vb = c->mem_bias[l * 3 + 2];

	for (uint32_t r = 0; r < kvd; r++) {
		uint32_t kvh = r / hd, i = r % hd;
		float xm = 0, wm = 0, f;

		for (uint32_t h = kvh * group; h < (kvh + 1) * group; h++) {
			uint32_t col = h * hd + i;

			xm = fmaxf(xm, chmax[col]);
			for (uint32_t o = 0; o < s->dim; o++)
				wm = fmaxf(wm, fabsf(O[(size_t)o * qd + col]));
		}
		if (xm <= 0 || wm <= 0)
			continue;
		f = powf(xm, a) / powf(wm, 1 - a);
		if (!isfinite(f) || f <= 0)
			continue;
		for (uint32_t k = 0; k < s->dim; k++)
			V[(size_t)r * s->dim + k] /= f;
		vb[r] /= f;
		for (uint32_t h = kvh * group; h < (kvh + 1) * group; h++)
			for (uint32_t o = 0; o < s->dim; o++)
				O[(size_t)o * qd + h * hd + i] *= f;
	}
	for (uint32_t j = 0; j < s->ffn; j++) {
		float xm = chmax[qd + j], wm = 0, f;

		for (uint32_t o = 0; o < s->dim; o++)
			wm = fmaxf(wm, fabsf(D[(size_t)o * s->ffn + j]));
		if (xm <= 0 || wm <= 0)
			continue;
		f = powf(xm, a) / powf(wm, 1 - a);
		if (!isfinite(f) || f <= 0)
			continue;
		for (uint32_t k = 0; k < s->dim; k++)
			U[(size_t)j * s->dim + k] /= f;
		for (uint32_t o = 0; o < s->dim; o++)
			D[(size_t)o * s->ffn + j] *= f;
	}
}

static int smooth(struct np_model *c, const struct np_model *m,
		  const int32_t *tokens, size_t n, float a)
{
	const struct np_model_shape *s = &m->shape;
	uint32_t qd = s->n_heads * (s->dim / s->n_heads);
	size_t per = (size_t)qd + s->ffn;
	float *chmax = calloc(per * s->n_layers, sizeof(*chmax));
	float *logits = malloc((size_t)s->vocab * sizeof(*logits));
	struct np_ref_float *r = NULL;
	int ret = chmax && logits ? np_ref_float_create(m, (uint32_t)n, 1, &r) :
				    -ENOMEM;

	if (!ret)
		npim_ref_float_chmax(r, chmax);
	for (size_t i = 0; i < n && !ret; i++)
		ret = np_ref_float_step(r, 0, (uint32_t)i, tokens[i], logits);
	for (uint32_t l = 0; l < s->n_layers && !ret; l++)
		smooth_layer(c, l, chmax + per * l, a);
	np_ref_float_destroy(r);
	free(chmax);
	free(logits);
	return ret;
}

/* v <- Q v, Q = H diag(sign) / sqrt(n): H the Sylvester Hadamard matrix
 * of n, a power of two; tmp holds n doubles */
static void rotate(float *v, size_t stride, uint32_t n, const float *sign,
		   double *tmp)
{
	for (uint32_t i = 0; i < n; i++)
		tmp[i] = (double)v[i * stride] * sign[i];
	for (uint32_t len = 1; len < n; len <<= 1)
		for (uint32_t i = 0; i < n; i += 2 * len)
			for (uint32_t j = i; j < i + len; j++) {
				double x = tmp[j], y = tmp[j + len];

				tmp[j] = x + y;
				tmp[j + len] = x - y;
			}
	for (uint32_t i = 0; i < n; i++)
		v[i * stride] = (float)(tmp[i] / sqrt((double)n));
}

/*
 * Residual stream x -> Q x. A reader W diag(g) of the normalised stream
 * becomes W diag(g) Q^T (row w -> Q (g . w), the gain then 1: RMSNorm
 * commutes with an orthogonal Q); a writer W becomes Q W (every column);
 * embedding rows e -> Q e.
 */
static int rotate_model(struct np_model *c, uint64_t seed)
{
	const struct np_model_shape *s = &c->shape;
	uint32_t D = s->dim, L = s->n_layers;
	float *sign = malloc(D * sizeof(*sign));
	double *tmp = malloc(D * sizeof(*tmp));

	if (!sign || !tmp) {
		free(sign);
		free(tmp);
		return -ENOMEM;
	}
	npim_rand_row(seed, 0x51a7, 0, 1.0f, 0.0f, sign, D);
	for (uint32_t i = 0; i < D; i++)
		sign[i] = sign[i] < 0 ? -1.0f : 1.0f;
	for (uint32_t l = 0; l <= L; l++)
		for (int t = 0; t < NP_T_COUNT; t++) {
			uint32_t rows, cols, gain;
			float *w, *g;

			if ((l == L) != (t >= NP_T_TOK_EMBD))
				continue;
			np_model_dims(c, t, &rows, &cols);
			w = c->mem[idx(c, t, l)];
			switch (t) {
			case NP_T_Q:
			case NP_T_K:
			case NP_T_V:
			case NP_T_GATE:
			case NP_T_UP:
			case NP_T_OUTPUT:
				gain = idx(c,
					   t == NP_T_OUTPUT ? NP_T_OUT_NORM :
					   t <= NP_T_V	    ? NP_T_ATTN_NORM :
							      NP_T_FFN_NORM,
					   l);
				g = c->mem[gain];
				for (uint32_t r = 0; r < rows; r++) {
					float *row = w + (size_t)r * cols;

					for (uint32_t k = 0; k < D; k++)
						row[k] *= g[k];
					rotate(row, 1, D, sign, tmp);
				}
				break;
			case NP_T_TOK_EMBD:
				for (uint32_t r = 0; r < rows; r++)
					rotate(w + (size_t)r * cols, 1, D, sign,
					       tmp);
				break;
			case NP_T_O:
			case NP_T_DOWN:
				for (uint32_t k = 0; k < cols; k++)
					rotate(w + k, cols, D, sign, tmp);
				break;
			default:
				break;
			}
		}
	/* the gains are in the readers now */
	for (uint32_t l = 0; l <= L; l++)
		for (int t = 0; t < NP_T_COUNT; t++)
			if ((l == L && t == NP_T_OUT_NORM) ||
			    (l < L &&
			     (t == NP_T_ATTN_NORM || t == NP_T_FFN_NORM)))
				for (uint32_t k = 0; k < D; k++)
					c->mem[idx(c, t, l)][k] = 1.0f;
	free(sign);
	free(tmp);
	return 0;
}

int np_model_ptq(const struct np_model *m, const int32_t *tokens, size_t n,
		 const struct np_ptq_opts *o, const struct np_log *log,
		 struct np_model **out)
{
	struct np_ptq_opts op = o ? *o : (struct np_ptq_opts){0};
	const struct np_model_shape *s = &m->shape;
	struct np_model *c;
	int ret;

	*out = NULL;
	if (op.flags & ~NP_PTQ_ALL ||
	    memcmp(op.resv, (uint64_t[4]){0}, sizeof(op.resv))) {
		npim_log(log, LOG_ERR,
			 "ptq: flags 0x%x or reserved space not zero: flags "
			 "are NP_PTQ_*, zero-initialize the struct",
			 op.flags);
		return -EINVAL;
	}
	if (op.smooth_alpha == 0.0f)
		op.smooth_alpha = 0.5f;
	if (!(op.smooth_alpha > 0.0f && op.smooth_alpha < 1.0f)) {
		npim_log(log, LOG_ERR,
			 "ptq: smoothing strength %g: use a value in (0, 1), "
			 "0.5 by default",
			 (double)op.smooth_alpha);
		return -EINVAL;
	}
	if (op.flags & NP_PTQ_ROTATE && (s->dim & (s->dim - 1))) {
		npim_log(
			log, LOG_ERR,
			"ptq: rotation needs a model dimension that is a power "
			"of two (Hadamard matrix); dim is %u: leave "
			"NP_PTQ_ROTATE off for this model",
			s->dim);
		return -EINVAL;
	}
	if (op.flags & NP_PTQ_SMOOTH && (!tokens || n == 0 || n > 65536)) {
		npim_log(log, LOG_ERR,
			 "ptq: smoothing takes channel ranges from calibration "
			 "text: give 1..65536 tokens (%zu given)",
			 n);
		return -EINVAL;
	}
	ret = materialise(m, &c);
	if (ret)
		return ret;
	if (op.flags & NP_PTQ_SMOOTH)
		ret = smooth(c, m, tokens, n, op.smooth_alpha);
	if (!ret && op.flags & NP_PTQ_ROTATE)
		ret = rotate_model(c, op.seed ? op.seed : 0x9e3779b97f4a7c15u);
	if (ret) {
		np_model_destroy(c);
		return ret;
	}
	*out = c;
	return 0;
}
