// SPDX-License-Identifier: MIT
/*
 * Float reference of the llama decoder, and calibration: the float pass
 * observes every activation the integer pipeline quantises and the scales
 * are chosen from those observations (docs/numerics.md, "Calibration").
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "npim.h"

struct np_ref_float {
	struct np_model_shape s;
	struct npim_math m; /* beyond llama: npim.h */
	uint32_t hd, qd, kvd, max_seq, batch;
	float **w; /* [n_layers * 9 + 3] materialised rows */
	float **b; /* [n_layers * 3] Q/K/V biases (zeros where none) */
	double *theta; /* [hd / 2] RoPE angle per position of pair i */
	float *kc, *vc; /* [batch][layer][max_seq][kvd] */
	float *x, *xn, *q, *k, *v, *att, *g, *u, *sc;
	uint32_t fq; /* enum np_ref_float_quant */
	float *xq; /* matmul input after Q8_0 (fq) */
	struct npim_buf qb; /* fake-quantisation scratch (holds the largest
			     * matrix: activations never grow it) */
	float *chmax; /* NULL, or [n_layers][qd + ffn] per-channel max|x| */
};

void npim_ref_float_chmax(struct np_ref_float *r, float *chmax)
{
	r->chmax = chmax;
}

static void chmax_add(float *m, const float *v, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		m[i] = fmaxf(m[i], fabsf(v[i]));
}

static float *load_tensor(const struct np_model *m, int t, uint32_t layer,
			  int *ret)
{
	uint32_t rows, cols;
	float *w;

	np_model_dims(m, t, &rows, &cols);
	w = malloc((size_t)rows * cols * sizeof(*w));
	if (!w) {
		*ret = -ENOMEM;
		return NULL;
	}
	for (uint32_t r = 0; r < rows && !*ret; r++)
		*ret = np_model_row(m, t, layer, r, w + (size_t)r * cols);
	return w;
}

/* Materialising the weights, one tensor at a time per thread */
struct load_job {
	struct np_ref_float *r;
	const struct np_model *m;
	pthread_mutex_t lock;
	uint32_t next, n;
	int err;
};

static void *load_worker(void *arg)
{
	struct load_job *j = arg;
	uint32_t L = j->r->s.n_layers;

	for (;;) {
		uint32_t i;
		int ret = 0;
		float *w;

		pthread_mutex_lock(&j->lock);
		i = j->err ? j->n : j->next++;
		pthread_mutex_unlock(&j->lock);
		if (i >= j->n)
			return NULL;
		/* tensor i of r->w: layer tensors, then the three of the
		 * model (embeddings, output norm, output) */
		w = i < L * 9 ?
			    load_tensor(j->m, (int)(i % 9), i / 9, &ret) :
			    load_tensor(j->m, NP_T_TOK_EMBD + (int)(i - L * 9),
					0, &ret);
		j->r->w[i] = w;
		if (ret) {
			pthread_mutex_lock(&j->lock);
			j->err = j->err ? j->err : ret;
			pthread_mutex_unlock(&j->lock);
		}
	}
}

/* Every weight tensor as F32, on every online CPU */
static int load_all(struct np_ref_float *r, const struct np_model *m)
{
	struct load_job j = {.r = r, .m = m, .n = r->s.n_layers * 9 + 3};
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	uint32_t nt = cpus > 1 ? (uint32_t)cpus : 1, started = 0;
	pthread_t tid[NPIM_CALIB_THREADS];

	nt = nt > NPIM_CALIB_THREADS ? NPIM_CALIB_THREADS : nt;
	pthread_mutex_init(&j.lock, NULL);
	for (uint32_t t = 1; t < nt; t++)
		if (!pthread_create(&tid[started], NULL, load_worker, &j))
			started++;
	load_worker(&j);
	for (uint32_t t = 0; t < started; t++)
		pthread_join(tid[t], NULL);
	pthread_mutex_destroy(&j.lock);
	return j.err;
}

void np_ref_float_destroy(struct np_ref_float *r)
{
	if (!r)
		return;
	if (r->w)
		for (uint32_t i = 0; i < r->s.n_layers * 9 + 3; i++)
			free(r->w[i]);
	if (r->b)
		for (uint32_t i = 0; i < r->s.n_layers * 3; i++)
			free(r->b[i]);
	free(r->w);
	free(r->b);
	free(r->theta);
	free(r->kc);
	free(r->vc);
	free(r->x);
	free(r->xn);
	free(r->q);
	free(r->k);
	free(r->v);
	free(r->att);
	free(r->g);
	free(r->u);
	free(r->sc);
	free(r->xq);
	free(r->qb.p);
	free(r);
}

/* Every matrix of r through Q4_0 and back (NP_REF_FLOAT_Q4_0_Q8_0) */
static int fake_quant_weights(struct np_ref_float *r, const struct np_model *m)
{
	uint32_t L = r->s.n_layers;
	int ret = 0;

	for (uint32_t i = 0; i < L * 9 + 3 && !ret; i++) {
		int t = i < L * 9 ? (int)(i % 9) :
				    NP_T_TOK_EMBD + (int)(i - L * 9);
		uint32_t rows, cols;

		if (t == NP_T_ATTN_NORM || t == NP_T_FFN_NORM ||
		    t == NP_T_OUT_NORM)
			continue;
		np_model_dims(m, t, &rows, &cols);
		ret = npim_ggml_roundtrip(NP_GGML_Q4_0, r->w[i],
					  (uint64_t)rows * cols, r->w[i],
					  &r->qb);
	}
	return ret;
}

int np_ref_float_create(const struct np_model *m, uint32_t max_seq,
			uint32_t batch, struct np_ref_float **out)
{
	return np_ref_float_create_opts(m, max_seq, batch, NULL, out);
}

int np_ref_float_create_opts(const struct np_model *m, uint32_t max_seq,
			     uint32_t batch, const struct np_ref_float_opts *o,
			     struct np_ref_float **out)
{
	struct np_ref_float_opts opt = o ? *o : (struct np_ref_float_opts){0};
	const struct np_model_shape *ms = np_model_get_shape(m);
	struct np_ref_float *r;
	size_t kv;
	int ret = 0;

	*out = NULL;
	if (max_seq == 0 || batch == 0 || max_seq > 65536 || batch > 4096)
		return -EINVAL;
	if (opt.fake_quant > NP_REF_FLOAT_Q4_0_Q8_0 || opt.resv0 ||
	    memcmp(opt.resv, (uint64_t[3]){0}, sizeof(opt.resv)))
		return -EINVAL;
	/* Q4_0 / Q8_0 blocks: every matmul reads dim, heads x hd or ffn */
	if (opt.fake_quant && (ms->dim % 32 || ms->ffn % 32))
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->s = *np_model_get_shape(m);
	r->hd = r->s.dim / r->s.n_heads;
	r->qd = r->s.n_heads * r->hd;
	r->kvd = r->s.n_kv_heads * r->hd;
	r->max_seq = max_seq;
	r->batch = batch;
	kv = (size_t)batch * r->s.n_layers * max_seq * r->kvd;
	r->m = m->x;
	r->w = calloc(r->s.n_layers * 9 + 3, sizeof(*r->w));
	r->b = calloc(r->s.n_layers * 3, sizeof(*r->b));
	r->theta = calloc(r->hd / 2, sizeof(*r->theta));
	r->kc = calloc(kv, sizeof(float));
	r->vc = calloc(kv, sizeof(float));
	r->x = calloc(r->s.dim, sizeof(float));
	r->xn = calloc(r->s.dim > r->s.ffn ? r->s.dim : r->s.ffn,
		       sizeof(float));
	r->q = calloc(r->qd, sizeof(float));
	r->k = calloc(r->kvd, sizeof(float));
	r->v = calloc(r->kvd, sizeof(float));
	r->att = calloc(r->qd, sizeof(float));
	r->g = calloc(r->s.ffn, sizeof(float));
	r->u = calloc(r->s.ffn, sizeof(float));
	r->sc = calloc(max_seq, sizeof(float));
	r->fq = opt.fake_quant;
	r->xq = calloc(r->s.dim > r->s.ffn ? r->s.dim : r->s.ffn,
		       sizeof(float));
	if (!r->xq || !r->w || !r->b || !r->theta || !r->kc || !r->vc ||
	    !r->x || !r->xn || !r->q || !r->k || !r->v || !r->att || !r->g ||
	    !r->u || !r->sc) {
		np_ref_float_destroy(r);
		return -ENOMEM;
	}
	ret = load_all(r, m);
	for (uint32_t l = 0; l < r->s.n_layers && !ret; l++)
		for (int t = 0; t < 3 && !ret; t++) {
			float **b = &r->b[l * 3 + (uint32_t)t];

			*b = malloc((t ? r->kvd : r->qd) * sizeof(float));
			ret = *b ? npim_model_bias(m, NP_T_Q + t, l, *b) :
				   -ENOMEM;
		}
	if (!ret && r->fq)
		ret = fake_quant_weights(r, m);
	/* ggml's rope: theta_i = pos * base^(-2i/hd) * freq_scale / ff_i */
	if (!ret) {
		float *ff = r->xn; /* free until the first step */

		ret = npim_model_rope_factors(m, ff);
		for (uint32_t i = 0; i < r->hd / 2 && !ret; i++)
			r->theta[i] = pow(r->s.rope_base, -2.0 * i / r->hd) /
				      ff[i] / r->m.rope_factor;
	}
	if (ret) {
		np_ref_float_destroy(r);
		return ret;
	}
	*out = r;
	return 0;
}

static void matvec(struct np_ref_float *rf, const float *w, uint32_t rows,
		   uint32_t cols, const float *x, float *y)
{
	/* ggml quantises the input of a Q4_0 matmul to Q8_0 (vec_dot_type) */
	if (rf->fq == NP_REF_FLOAT_Q4_0_Q8_0 &&
	    !npim_ggml_roundtrip(NP_GGML_Q8_0, x, cols, rf->xq, &rf->qb))
		x = rf->xq;
	for (uint32_t r = 0; r < rows; r++) {
		const float *row = w + (size_t)r * cols;
		double acc = 0;

		for (uint32_t c = 0; c < cols; c++)
			acc += (double)row[c] * x[c];
		y[r] = (float)acc;
	}
}

/* out = x / rms(x) (without gamma); returns 1/rms */
static void rms_unit(const float *x, uint32_t n, float eps, float *out)
{
	double ss = 0;
	float inv;

	for (uint32_t i = 0; i < n; i++)
		ss += (double)x[i] * x[i];
	inv = (float)(1.0 / sqrt(ss / n + eps));
	for (uint32_t i = 0; i < n; i++)
		out[i] = x[i] * inv;
}

/* Rotate pairs (2i, 2i + 1), or (i, i + hd/2) for NeoX, by pos * theta_i */
static void rope(float *v, uint32_t hd, uint32_t pos, const double *theta,
		 int neox)
{
	for (uint32_t i = 0; i < hd / 2; i++) {
		double th = pos * theta[i];
		float c = (float)cos(th), s = (float)sin(th);
		uint32_t i0 = neox ? i : 2 * i, i1 = neox ? i + hd / 2 : i0 + 1;
		float x0 = v[i0], x1 = v[i1];

		v[i0] = x0 * c - x1 * s;
		v[i1] = x0 * s + x1 * c;
	}
}

static void observe(struct npim_stat *st, uint32_t layer, int act,
		    const float *v, size_t n)
{
	if (st)
		npim_stat_add(&st[layer * NPIM_A_COUNT + act], v, n);
}

int npim_ref_float_forward(struct np_ref_float *r, uint32_t slot, uint32_t pos,
			   int32_t token, float *logits, struct npim_stat *st)
{
	const struct np_model_shape *s = &r->s;
	uint32_t hd = r->hd, group = s->n_heads / s->n_kv_heads,
		 L = s->n_layers;
	float **W = r->w, *x = r->x, *xn = r->xn;

	if (slot >= r->batch || pos >= r->max_seq || token < 0 ||
	    (uint32_t)token >= s->vocab)
		return -ERANGE;
	memcpy(x, W[L * 9] + (size_t)token * s->dim, s->dim * sizeof(float));
	for (uint32_t i = 0; i < s->dim; i++)
		x[i] *= r->m.emb_scale;
	for (uint32_t l = 0; l < L; l++) {
		float *const *w = W + l * 9;
		size_t cbase = ((size_t)slot * L + l) * r->max_seq * r->kvd;
		float *kc = r->kc + cbase, *vc = r->vc + cbase;

		observe(st, l, NPIM_A_X, x, s->dim);
		rms_unit(x, s->dim, s->norm_eps, xn);
		observe(st, l, NPIM_A_N1, xn, s->dim);
		for (uint32_t i = 0; i < s->dim; i++)
			xn[i] *= w[NP_T_ATTN_NORM][i];
		matvec(r, w[NP_T_Q], r->qd, s->dim, xn, r->q);
		matvec(r, w[NP_T_K], r->kvd, s->dim, xn, r->k);
		matvec(r, w[NP_T_V], r->kvd, s->dim, xn, r->v);
		for (uint32_t i = 0; i < r->qd; i++)
			r->q[i] += r->b[l * 3][i];
		for (uint32_t i = 0; i < r->kvd; i++) {
			r->k[i] += r->b[l * 3 + 1][i];
			r->v[i] += r->b[l * 3 + 2][i];
		}
		observe(st, l, NPIM_A_Q16, r->q, r->qd);
		observe(st, l, NPIM_A_K16, r->k, r->kvd);
		observe(st, l, NPIM_A_V4, r->v, r->kvd);
		for (uint32_t h = 0; h < s->n_heads; h++)
			rope(r->q + h * hd, hd, pos, r->theta, r->m.neox);
		for (uint32_t h = 0; h < s->n_kv_heads; h++)
			rope(r->k + h * hd, hd, pos, r->theta, r->m.neox);
		observe(st, l, NPIM_A_Q4, r->q, r->qd);
		observe(st, l, NPIM_A_K4, r->k, r->kvd);
		memcpy(kc + (size_t)pos * r->kvd, r->k, r->kvd * sizeof(float));
		memcpy(vc + (size_t)pos * r->kvd, r->v, r->kvd * sizeof(float));
		for (uint32_t h = 0; h < s->n_heads; h++) {
			const float *q = r->q + h * hd;
			uint32_t g = h / group;
			float max = -INFINITY;
			double sum = 0;

			for (uint32_t t = 0; t <= pos; t++) {
				const float *k =
					kc + (size_t)t * r->kvd + g * hd;
				double d = 0;

				for (uint32_t i = 0; i < hd; i++)
					d += (double)q[i] * k[i];
				r->sc[t] =
					r->m.kq_scale != 0.0f ?
						(float)(d * r->m.kq_scale) :
						(float)(d / sqrt((double)hd));
				max = fmaxf(max, r->sc[t]);
			}
			for (uint32_t t = 0; t <= pos; t++) {
				r->sc[t] = expf(r->sc[t] - max);
				sum += r->sc[t];
			}
			for (uint32_t i = 0; i < hd; i++) {
				double a = 0;

				for (uint32_t t = 0; t <= pos; t++)
					a += (double)r->sc[t] *
					     vc[(size_t)t * r->kvd + g * hd +
						i];
				r->att[h * hd + i] = (float)(a / sum);
			}
		}
		observe(st, l, NPIM_A_ATT, r->att, r->qd);
		if (r->chmax)
			chmax_add(r->chmax + (size_t)l * (r->qd + s->ffn),
				  r->att, r->qd);
		matvec(r, w[NP_T_O], s->dim, r->qd, r->att, xn);
		for (uint32_t i = 0; i < s->dim; i++)
			x[i] += xn[i] * r->m.res_scale;
		observe(st, l, NPIM_A_XMID, x, s->dim);
		rms_unit(x, s->dim, s->norm_eps, xn);
		observe(st, l, NPIM_A_N2, xn, s->dim);
		for (uint32_t i = 0; i < s->dim; i++)
			xn[i] *= w[NP_T_FFN_NORM][i];
		matvec(r, w[NP_T_GATE], s->ffn, s->dim, xn, r->g);
		matvec(r, w[NP_T_UP], s->ffn, s->dim, xn, r->u);
		observe(st, l, NPIM_A_G8, r->g, s->ffn);
		observe(st, l, NPIM_A_U8, r->u, s->ffn);
		for (uint32_t i = 0; i < s->ffn; i++)
			r->g[i] = r->g[i] / (1.0f + expf(-r->g[i])) * r->u[i];
		observe(st, l, NPIM_A_A8, r->g, s->ffn);
		if (r->chmax)
			chmax_add(r->chmax + (size_t)l * (r->qd + s->ffn) +
					  r->qd,
				  r->g, s->ffn);
		matvec(r, w[NP_T_DOWN], s->dim, s->ffn, r->g, xn);
		for (uint32_t i = 0; i < s->dim; i++)
			x[i] += xn[i] * r->m.res_scale;
	}
	observe(st, L, NPIM_A_XFIN, x, s->dim);
	rms_unit(x, s->dim, s->norm_eps, xn);
	observe(st, L, NPIM_A_NOUT, xn, s->dim);
	for (uint32_t i = 0; i < s->dim; i++)
		xn[i] *= W[L * 9 + 1][i];
	matvec(r, W[L * 9 + 2], s->vocab, s->dim, xn, logits);
	for (uint32_t i = 0; i < s->vocab; i++)
		logits[i] *= 1.0f / r->m.logit_scale;
	observe(st, L, NPIM_A_LOGIT, logits, s->vocab);
	return 0;
}

int np_ref_float_step(struct np_ref_float *r, uint32_t slot, uint32_t pos,
		      int32_t token, float *logits)
{
	return npim_ref_float_forward(r, slot, pos, token, logits, NULL);
}

/* ---------------------------------------------------------------- */
/* Calibration                                                       */

void npim_stat_add(struct npim_stat *st, const float *v, size_t n)
{
	if (st->stride == 0)
		st->stride = 1;
	for (size_t i = 0; i < n; i++) {
		float a = fabsf(v[i]);

		if (a > st->amax)
			st->amax = a;
		if (st->seen++ % st->stride)
			continue;
		if (st->n == NPIM_SAMPLES) {
			/* keep every other sample, halve the rate */
			for (uint32_t j = 0; j < NPIM_SAMPLES / 2; j++)
				st->s[j] = st->s[2 * j];
			st->n = NPIM_SAMPLES / 2;
			st->stride *= 2;
			if ((st->seen - 1) % st->stride)
				continue;
		}
		st->s[st->n++] = v[i];
	}
}

/* Clipping scale of least squared error over a grid of clip ratios */
static float mse_scale(const struct npim_stat *st, int qmin, int qmax)
{
	float best = st->amax / (float)qmax;
	double best_err = INFINITY;

	if (st->amax == 0.0f)
		return 1.0f;
	for (int k = 20; k >= 4; k--) {
		float s = st->amax * (float)k / 20.0f / (float)qmax;
		double err = 0;

		for (uint32_t i = 0; i < st->n; i++) {
			float q = rintf(st->s[i] / s);

			q = q < qmin ? (float)qmin : q > qmax ? (float)qmax : q;
			err += (double)(st->s[i] - q * s) * (st->s[i] - q * s);
		}
		if (err < best_err) {
			best_err = err;
			best = s;
		}
	}
	return best;
}

static float amax_scale(float amax, float headroom, float qmax)
{
	return amax > 0.0f ? amax * headroom / qmax : 1.0f;
}

static float silu_scale(float s_g)
{
	float m = 0;

	for (int q = -128; q < 128; q++) {
		float g = (float)q * s_g;

		m = fmaxf(m, fabsf(g / (1.0f + expf(-g))));
	}
	return m > 0 ? m / 127.0f : 1.0f;
}

static int calib_alloc(uint32_t n_layers, struct np_quant_calib **out)
{
	struct np_quant_calib *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->n_layers = n_layers;
	c->l = calloc(n_layers + 1, sizeof(*c->l));
	if (!c->l) {
		free(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

/* The scales from the observations st ([L + 1][NPIM_A_COUNT]) */
int npim_calib_from_stats(uint32_t L, const struct npim_stat *st,
			  struct np_quant_calib **out)
{
	struct np_quant_calib *c;
	int ret = calib_alloc(L, &c);

	*out = NULL;
	if (ret)
		return ret;
	for (uint32_t l = 0; l <= L; l++) {
		const struct npim_stat *a = &st[l * NPIM_A_COUNT];
		float *o = c->l[l].s;

		if (l == L) {
			o[NPIM_A_XFIN] =
				amax_scale(a[NPIM_A_XFIN].amax, 2, 32767);
			o[NPIM_A_NOUT] = mse_scale(&a[NPIM_A_NOUT], -127, 127);
			o[NPIM_A_LOGIT] =
				amax_scale(a[NPIM_A_LOGIT].amax, 2, 1 << 23);
			break;
		}
		o[NPIM_A_X] = amax_scale(
			fmaxf(a[NPIM_A_X].amax, a[NPIM_A_XMID].amax), 2, 32767);
		o[NPIM_A_XMID] = o[NPIM_A_X];
		o[NPIM_A_N1] = mse_scale(&a[NPIM_A_N1], -8, 7);
		o[NPIM_A_Q16] = amax_scale(a[NPIM_A_Q16].amax, 1.25f, 32767);
		o[NPIM_A_K16] = amax_scale(a[NPIM_A_K16].amax, 1.25f, 32767);
		o[NPIM_A_Q4] = mse_scale(&a[NPIM_A_Q4], -8, 7);
		o[NPIM_A_K4] = mse_scale(&a[NPIM_A_K4], -8, 7);
		o[NPIM_A_V4] = mse_scale(&a[NPIM_A_V4], -8, 7);
		o[NPIM_A_ATT] = mse_scale(&a[NPIM_A_ATT], -8, 7);
		o[NPIM_A_N2] = mse_scale(&a[NPIM_A_N2], -8, 7);
		o[NPIM_A_G8] = mse_scale(&a[NPIM_A_G8], -128, 127);
		o[NPIM_A_U8] = mse_scale(&a[NPIM_A_U8], -128, 127);
		o[NPIM_A_A8] = mse_scale(&a[NPIM_A_A8], -128, 127);
		c->l[l].sl8 = silu_scale(o[NPIM_A_G8]);
		/* INT8 activations and KV cache (A8 precisions) */
		memcpy(c->l[l].s8, o, sizeof(c->l[l].s8));
		for (int p = NPIM_A_N1; p <= NPIM_A_N2; p++)
			if (p != NPIM_A_Q16 && p != NPIM_A_K16)
				c->l[l].s8[p] = mse_scale(&a[p], -128, 127);
	}
	*out = c;
	return 0;
}

/* ---------------------------------------------------------------- */
/* Calibration on every core                                          */

/*
 * The calibration pass runs all n tokens through one layer before the
 * next (teacher forced, every input is known), so each weight matrix is
 * read once for all tokens and its rows are split over threads. Every
 * value is computed by the same expression as npim_ref_float_forward
 * computes it for one token (matvec's double sum in column order, no
 * reassociation), and each statistic observes its tokens in order, so
 * the scales are bit for bit those of the token-by-token pass
 * (tests/model check_calib.c).
 */
#define CB 16u /* tokens per group of accumulators */
#define NPIM_CALIB_MACS (16ull << 20) /* least work of a matmul thread */

typedef double npim_v4d __attribute__((vector_size(32)));
typedef float npim_v4f __attribute__((vector_size(16)));

struct mm {
	const float *w, *xt; /* w [rows][cols], xt [cols][nt] */
	float *y; /* [n][rows] */
	uint32_t rows, cols, n, nt, r0, r1;
};

/* Rows r and r + dr (dr 0 or 1) of y for tokens t0 .. t0 + CB - 1 */
static inline __attribute__((always_inline)) void
mm_block(const struct mm *a, uint32_t r, uint32_t dr, uint32_t t0)
{
	const float *w0 = a->w + (size_t)r * a->cols,
		    *w1 = a->w + (size_t)(r + dr) * a->cols;
	npim_v4d acc0[CB / 4] = {0}, acc1[CB / 4] = {0};
	double out[2][CB];

	for (uint32_t c = 0; c < a->cols; c++) {
		const float *xc = a->xt + (size_t)c * a->nt + t0;
		double d0 = w0[c], d1 = w1[c];
		npim_v4d v0 = {d0, d0, d0, d0}, v1 = {d1, d1, d1, d1};

		for (uint32_t k = 0; k < CB / 4; k++) {
			npim_v4f xf;
			npim_v4d xd;

			memcpy(&xf, xc + 4 * k, sizeof(xf));
			xd = __builtin_convertvector(xf, npim_v4d);
			acc0[k] += v0 * xd;
			acc1[k] += v1 * xd;
		}
	}
	memcpy(out[0], acc0, sizeof(out[0]));
	memcpy(out[1], acc1, sizeof(out[1]));
	for (uint32_t k = 0; k < CB && t0 + k < a->n; k++) {
		a->y[(size_t)(t0 + k) * a->rows + r] = (float)out[0][k];
		a->y[(size_t)(t0 + k) * a->rows + r + dr] = (float)out[1][k];
	}
}

/*
 * y[t][r] = sum over c of w[r][c] * x[t][c], as matvec sums it: per
 * output a double sum in column order, two rows and CB tokens at a time
 * as independent sums in vector lanes (each lane is matvec's scalar
 * arithmetic; the lanes only overlap in the CPU). No FMA: a fused
 * multiply-add would round differently from matvec.
 */
__attribute__((target_clones("avx2", "default"))) static void
mm_rows(const struct mm *a)
{
	for (uint32_t r = a->r0; r < a->r1; r += 2) {
		uint32_t dr = r + 1 < a->r1 ? 1 : 0;

		for (uint32_t t0 = 0; t0 < a->n; t0 += CB)
			mm_block(a, r, dr, t0);
	}
}

/*
 * The same on AVX-512: eight lanes a vector and four rows at a time (the
 * 32 registers hold the 8 sums of 16 tokens by 4 rows). No FMA: the file
 * is built with -ffp-contract=off, and AVX-512F would otherwise fuse.
 */
typedef double npim_v8d __attribute__((vector_size(64)));
typedef float npim_v8f __attribute__((vector_size(32)));

__attribute__((target("avx512f"))) static void mm_rows_512(const struct mm *a)
{
	for (uint32_t r = a->r0; r < a->r1; r += 4) {
		uint32_t nr = a->r1 - r < 4 ? a->r1 - r : 4;
		const float *w[4];

		for (uint32_t i = 0; i < 4; i++)
			w[i] = a->w + (size_t)(r + (i < nr ? i : 0)) * a->cols;
		for (uint32_t t0 = 0; t0 < a->n; t0 += CB) {
			npim_v8d acc[4][CB / 8];
			double out[CB];

			for (uint32_t i = 0; i < 4; i++)
				for (uint32_t k = 0; k < CB / 8; k++)
					acc[i][k] = (npim_v8d){0};

			for (uint32_t c = 0; c < a->cols; c++) {
				const float *xc =
					a->xt + (size_t)c * a->nt + t0;
				npim_v8d xd[CB / 8];

				for (uint32_t k = 0; k < CB / 8; k++) {
					npim_v8f xf;

					memcpy(&xf, xc + 8 * k, sizeof(xf));
					xd[k] = __builtin_convertvector(
						xf, npim_v8d);
				}
				for (uint32_t i = 0; i < 4; i++) {
					double d = w[i][c];
					npim_v8d v = {d, d, d, d, d, d, d, d};

					for (uint32_t k = 0; k < CB / 8; k++)
						acc[i][k] += v * xd[k];
				}
			}
			for (uint32_t i = 0; i < nr; i++) {
				memcpy(out, acc[i], sizeof(out));
				for (uint32_t k = 0; k < CB && t0 + k < a->n;
				     k++)
					a->y[(size_t)(t0 + k) * a->rows + r +
					     i] = (float)out[k];
			}
		}
	}
}

static void mm_run(const struct mm *a)
{
	if (__builtin_cpu_supports("avx512f"))
		mm_rows_512(a);
	else
		mm_rows(a);
}

static void *mm_thread(void *arg)
{
	mm_run(arg);
	return NULL;
}

struct calib_run {
	uint32_t n, nt, threads;
	float *xt; /* [cols][nt], transposed input, zero padded */
};

/* y = x w^T for the n rows of x ([n][cols]) on up to threads threads */
static void matmul(struct calib_run *cr, const float *w, uint32_t rows,
		   uint32_t cols, const float *x, float *y)
{
	struct mm a[NPIM_CALIB_THREADS];
	pthread_t tid[NPIM_CALIB_THREADS];
	uint32_t nth = cr->threads, started[NPIM_CALIB_THREADS] = {0};

	for (uint32_t t = 0; t < cr->n; t++)
		for (uint32_t c = 0; c < cols; c++)
			cr->xt[(size_t)c * cr->nt + t] =
				x[(size_t)t * cols + c];
	/* a thread per NPIM_CALIB_MACS at least: a small matrix is not
	 * worth waking a thread for (a busy machine may not run it soon) */
	if ((uint64_t)rows * cols * cr->n / NPIM_CALIB_MACS < nth)
		nth = (uint32_t)((uint64_t)rows * cols * cr->n /
				 NPIM_CALIB_MACS);
	if (nth > rows)
		nth = rows;
	if (nth < 1)
		nth = 1;
	for (uint32_t i = 0; i < nth; i++) {
		a[i] = (struct mm){w,
				   cr->xt,
				   y,
				   rows,
				   cols,
				   cr->n,
				   cr->nt,
				   (uint32_t)((uint64_t)rows * i / nth),
				   (uint32_t)((uint64_t)rows * (i + 1) / nth)};
		if (i && !pthread_create(&tid[i], NULL, mm_thread, &a[i]))
			started[i] = 1;
	}
	mm_run(&a[0]);
	for (uint32_t i = 1; i < nth; i++) {
		if (started[i])
			pthread_join(tid[i], NULL);
		else
			mm_run(&a[i]); /* no thread to be had */
	}
}

/* The calibration pass over n tokens, layer by layer, observed into st */
static int calib_forward(struct np_ref_float *r, const int32_t *tokens,
			 uint32_t n, uint32_t threads, struct npim_stat *st)
{
	const struct np_model_shape *s = &r->s;
	uint32_t hd = r->hd, group = s->n_heads / s->n_kv_heads,
		 L = s->n_layers, dim = s->dim, ffn = s->ffn;
	uint32_t wide = ffn > r->qd ? ffn : r->qd, big;
	float **W = r->w;
	struct calib_run cr = {
		.n = n, .nt = (n + CB - 1) / CB * CB, .threads = threads};
	float *x, *xn, *q, *k, *v, *att, *g, *u, *o;
	int ret = 0;

	wide = wide > dim ? wide : dim;
	big = wide > s->vocab ? wide : s->vocab;
	x = malloc((size_t)n * dim * sizeof(float));
	xn = malloc((size_t)n * wide * sizeof(float));
	q = malloc((size_t)n * r->qd * sizeof(float));
	k = malloc((size_t)n * r->kvd * sizeof(float));
	v = malloc((size_t)n * r->kvd * sizeof(float));
	att = malloc((size_t)n * r->qd * sizeof(float));
	g = malloc((size_t)n * ffn * sizeof(float));
	u = malloc((size_t)n * ffn * sizeof(float));
	o = malloc((size_t)n * big * sizeof(float));
	cr.xt = calloc((size_t)cr.nt * wide, sizeof(float));
	if (!x || !xn || !q || !k || !v || !att || !g || !u || !o || !cr.xt) {
		ret = -ENOMEM;
		goto out;
	}
	for (uint32_t t = 0; t < n; t++) {
		float *xt = x + (size_t)t * dim;

		memcpy(xt, W[L * 9] + (size_t)tokens[t] * dim,
		       dim * sizeof(float));
		for (uint32_t i = 0; i < dim; i++)
			xt[i] *= r->m.emb_scale;
	}
	for (uint32_t l = 0; l < L; l++) {
		float *const *w = W + l * 9;
		size_t cbase = (size_t)l * r->max_seq * r->kvd;
		float *kc = r->kc + cbase, *vc = r->vc + cbase;

		for (uint32_t t = 0; t < n; t++) {
			float *xt = x + (size_t)t * dim,
			      *nt = xn + (size_t)t * dim;

			observe(st, l, NPIM_A_X, xt, dim);
			rms_unit(xt, dim, s->norm_eps, nt);
			observe(st, l, NPIM_A_N1, nt, dim);
			for (uint32_t i = 0; i < dim; i++)
				nt[i] *= w[NP_T_ATTN_NORM][i];
		}
		matmul(&cr, w[NP_T_Q], r->qd, dim, xn, q);
		matmul(&cr, w[NP_T_K], r->kvd, dim, xn, k);
		matmul(&cr, w[NP_T_V], r->kvd, dim, xn, v);
		for (uint32_t t = 0; t < n; t++) {
			float *qt = q + (size_t)t * r->qd,
			      *kt = k + (size_t)t * r->kvd,
			      *vt = v + (size_t)t * r->kvd;

			for (uint32_t i = 0; i < r->qd; i++)
				qt[i] += r->b[l * 3][i];
			for (uint32_t i = 0; i < r->kvd; i++) {
				kt[i] += r->b[l * 3 + 1][i];
				vt[i] += r->b[l * 3 + 2][i];
			}
			observe(st, l, NPIM_A_Q16, qt, r->qd);
			observe(st, l, NPIM_A_K16, kt, r->kvd);
			observe(st, l, NPIM_A_V4, vt, r->kvd);
			for (uint32_t h = 0; h < s->n_heads; h++)
				rope(qt + h * hd, hd, t, r->theta, r->m.neox);
			for (uint32_t h = 0; h < s->n_kv_heads; h++)
				rope(kt + h * hd, hd, t, r->theta, r->m.neox);
			observe(st, l, NPIM_A_Q4, qt, r->qd);
			observe(st, l, NPIM_A_K4, kt, r->kvd);
			memcpy(kc + (size_t)t * r->kvd, kt,
			       r->kvd * sizeof(float));
			memcpy(vc + (size_t)t * r->kvd, vt,
			       r->kvd * sizeof(float));
		}
		for (uint32_t t = 0; t < n; t++) {
			float *at = att + (size_t)t * r->qd;

			for (uint32_t h = 0; h < s->n_heads; h++) {
				const float *qh =
					q + (size_t)t * r->qd + h * hd;
				uint32_t gi = h / group;
				float max = -INFINITY;
				double sum = 0;

				for (uint32_t p = 0; p <= t; p++) {
					const float *kp = kc +
							  (size_t)p * r->kvd +
							  gi * hd;
					double d = 0;

					for (uint32_t i = 0; i < hd; i++)
						d += (double)qh[i] * kp[i];
					r->sc[p] =
						r->m.kq_scale != 0.0f ?
							(float)(d *
								r->m.kq_scale) :
							(float)(d /
								sqrt((double)hd));
					max = fmaxf(max, r->sc[p]);
				}
				for (uint32_t p = 0; p <= t; p++) {
					r->sc[p] = expf(r->sc[p] - max);
					sum += r->sc[p];
				}
				for (uint32_t i = 0; i < hd; i++) {
					double a = 0;

					for (uint32_t p = 0; p <= t; p++)
						a += (double)r->sc[p] *
						     vc[(size_t)p * r->kvd +
							gi * hd + i];
					at[h * hd + i] = (float)(a / sum);
				}
			}
			observe(st, l, NPIM_A_ATT, at, r->qd);
		}
		matmul(&cr, w[NP_T_O], dim, r->qd, att, o);
		for (uint32_t t = 0; t < n; t++) {
			float *xt = x + (size_t)t * dim,
			      *ot = o + (size_t)t * dim,
			      *nt = xn + (size_t)t * dim;

			for (uint32_t i = 0; i < dim; i++)
				xt[i] += ot[i] * r->m.res_scale;
			observe(st, l, NPIM_A_XMID, xt, dim);
			rms_unit(xt, dim, s->norm_eps, nt);
			observe(st, l, NPIM_A_N2, nt, dim);
			for (uint32_t i = 0; i < dim; i++)
				nt[i] *= w[NP_T_FFN_NORM][i];
		}
		matmul(&cr, w[NP_T_GATE], ffn, dim, xn, g);
		matmul(&cr, w[NP_T_UP], ffn, dim, xn, u);
		for (uint32_t t = 0; t < n; t++) {
			float *gt = g + (size_t)t * ffn,
			      *ut = u + (size_t)t * ffn;

			observe(st, l, NPIM_A_G8, gt, ffn);
			observe(st, l, NPIM_A_U8, ut, ffn);
			for (uint32_t i = 0; i < ffn; i++)
				gt[i] = gt[i] / (1.0f + expf(-gt[i])) * ut[i];
			observe(st, l, NPIM_A_A8, gt, ffn);
		}
		matmul(&cr, w[NP_T_DOWN], dim, ffn, g, o);
		for (uint32_t t = 0; t < n; t++) {
			float *xt = x + (size_t)t * dim,
			      *ot = o + (size_t)t * dim;

			for (uint32_t i = 0; i < dim; i++)
				xt[i] += ot[i] * r->m.res_scale;
		}
	}
	for (uint32_t t = 0; t < n; t++) {
		float *xt = x + (size_t)t * dim, *nt = xn + (size_t)t * dim;

		observe(st, L, NPIM_A_XFIN, xt, dim);
		rms_unit(xt, dim, s->norm_eps, nt);
		observe(st, L, NPIM_A_NOUT, nt, dim);
		for (uint32_t i = 0; i < dim; i++)
			nt[i] *= W[L * 9 + 1][i];
	}
	matmul(&cr, W[L * 9 + 2], s->vocab, dim, xn, o);
	for (uint32_t t = 0; t < n; t++) {
		float *lt = o + (size_t)t * s->vocab;

		for (uint32_t i = 0; i < s->vocab; i++)
			lt[i] *= 1.0f / r->m.logit_scale;
		observe(st, L, NPIM_A_LOGIT, lt, s->vocab);
	}
out:
	free(x);
	free(xn);
	free(q);
	free(k);
	free(v);
	free(att);
	free(g);
	free(u);
	free(o);
	free(cr.xt);
	return ret;
}

int npim_quant_calibrate_threads(const struct np_model *m,
				 const int32_t *tokens, size_t n,
				 uint32_t threads, struct np_quant_calib **out)
{
	const struct np_model_shape *s = np_model_get_shape(m);
	struct np_ref_float *r = NULL;
	struct npim_stat *st;
	uint32_t L = s->n_layers;
	int ret;

	*out = NULL;
	if (n == 0 || n > 65536)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (tokens[i] < 0 || (uint32_t)tokens[i] >= s->vocab)
			return -ERANGE;
	if (threads < 1)
		threads = 1;
	if (threads > NPIM_CALIB_THREADS)
		threads = NPIM_CALIB_THREADS;
	st = calloc((size_t)(L + 1) * NPIM_A_COUNT, sizeof(*st));
	ret = st ? np_ref_float_create(m, (uint32_t)n, 1, &r) : -ENOMEM;
	if (!ret)
		ret = calib_forward(r, tokens, (uint32_t)n, threads, st);
	np_ref_float_destroy(r);
	if (!ret)
		ret = npim_calib_from_stats(L, st, out);
	free(st);
	return ret;
}

int np_quant_calibrate(const struct np_model *m, const int32_t *tokens,
		       size_t n, struct np_quant_calib **out)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	return npim_quant_calibrate_threads(m, tokens, n,
					    cpus > 0 ? (uint32_t)cpus : 1, out);
}

int np_quant_calib_default(const struct np_model *m,
			   struct np_quant_calib **out)
{
	const struct np_model_shape *s = np_model_get_shape(m);
	struct np_quant_calib *c;
	int ret = calib_alloc(s->n_layers, &c);

	*out = NULL;
	if (ret)
		return ret;
	/* unit-RMS activations, clipped at 2.5 sigma for INT4, 4 for INT8 */
	for (uint32_t l = 0; l <= s->n_layers; l++) {
		float *o = c->l[l].s;

		o[NPIM_A_X] = o[NPIM_A_XMID] = 16.0f / 32767;
		o[NPIM_A_N1] = o[NPIM_A_N2] = o[NPIM_A_Q4] = o[NPIM_A_K4] =
			2.5f / 7;
		o[NPIM_A_V4] = o[NPIM_A_ATT] = 2.5f / 7;
		o[NPIM_A_Q16] = o[NPIM_A_K16] = 16.0f / 32767;
		o[NPIM_A_G8] = o[NPIM_A_U8] = o[NPIM_A_A8] = 4.0f / 127;
		c->l[l].sl8 = silu_scale(o[NPIM_A_G8]);
		if (l == s->n_layers) {
			o[NPIM_A_NOUT] = 4.0f / 127;
			o[NPIM_A_LOGIT] = 64.0f / (1 << 23);
		}
		memcpy(c->l[l].s8, o, sizeof(c->l[l].s8));
		c->l[l].s8[NPIM_A_N1] = c->l[l].s8[NPIM_A_N2] =
			c->l[l].s8[NPIM_A_Q4] = c->l[l].s8[NPIM_A_K4] =
				c->l[l].s8[NPIM_A_V4] = c->l[l].s8[NPIM_A_ATT] =
					4.0f / 127;
	}
	*out = c;
	return 0;
}

void np_quant_calib_destroy(struct np_quant_calib *c)
{
	if (!c)
		return;
	free(c->l);
	free(c);
}

_Static_assert(sizeof(struct npim_layer_scales) ==
		       NP_QUANT_CALIB_ROW * sizeof(float),
	       "a calibration row is NP_QUANT_CALIB_ROW floats");

size_t np_quant_calib_len(const struct np_quant_calib *c)
{
	return ((size_t)c->n_layers + 1) * NP_QUANT_CALIB_ROW;
}

int np_quant_calib_export(const struct np_quant_calib *c, float *out, size_t n)
{
	if (n != np_quant_calib_len(c))
		return -EINVAL;
	memcpy(out, c->l, n * sizeof(*out));
	return 0;
}

int np_quant_calib_import(const struct np_model *m, const float *in, size_t n,
			  struct np_quant_calib **out)
{
	uint32_t L = np_model_get_shape(m)->n_layers;
	struct np_quant_calib *c;
	int ret;

	*out = NULL;
	if (n != ((size_t)L + 1) * NP_QUANT_CALIB_ROW)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!(in[i] >= 0.0f) || !isfinite(in[i]))
			return -EINVAL;
	ret = calib_alloc(L, &c);
	if (ret)
		return ret;
	memcpy(c->l, in, n * sizeof(*in));
	*out = c;
	return 0;
}
