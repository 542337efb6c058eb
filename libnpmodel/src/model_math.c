// SPDX-License-Identifier: MIT
/*
 * The arithmetic of a model beyond a plain llama decoder (struct
 * npim_math): Granite's multipliers, Q/K/V biases, RoPE scaling and
 * frequency factors and NeoX RoPE. Read from a GGUF as llama.cpp reads
 * them, generated for a synthetic model of a family, written back by
 * np_model_write_gguf.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "npim.h"
#include "npim_arch.h"

#define NPIM_PER_LAYER 9

/* <prefix>.<name> as a float: 0 (absent leaves *v), -EINVAL (logged) */
static int hp_f32(const struct np_model *m, const char *name, float *v,
		  const struct np_log *log)
{
	char key[96];
	float f;
	int ret;

	npim_arch_key(m->arch, name, key, sizeof(key));
	ret = np_gguf_get_f32(m->g, key, &f);
	if (ret == -ENOENT)
		return 0;
	if (ret || !isfinite(f) || f < 0) {
		npim_log(log, LOG_ERR,
			 "model: %s is %s; it must be a finite float of at "
			 "least 0",
			 key, ret ? "not a float" : "out of range");
		return -EINVAL;
	}
	*v = f;
	return 0;
}

/* RoPE scaling as llama.cpp applies it: type absent means linear */
static int load_rope_scaling(struct np_model *m, const struct np_log *log)
{
	char key[96];
	const char *type = "linear";
	size_t len = 6;
	float factor = 0;
	int ret;

	npim_arch_key(m->arch, "rope.scaling.type", key, sizeof(key));
	ret = np_gguf_get_str(m->g, key, &type, &len);
	if (ret && ret != -ENOENT) {
		npim_log(log, LOG_ERR, "model: %s is not a string", key);
		return -EINVAL;
	}
	if (len == 4 && !memcmp(type, "none", 4))
		return 0;
	if (len != 6 || memcmp(type, "linear", 6)) {
		npim_log(log, LOG_ERR,
			 "model: %s is '%.*s'; np applies RoPE scaling 'none' "
			 "and 'linear' only, not YaRN or LongRoPE",
			 key, (int)(len > 32 ? 32 : len), type);
		return -ENOTSUP;
	}
	npim_arch_key(m->arch, "rope.scaling.factor", key, sizeof(key));
	if (np_gguf_get_f32(m->g, key, &factor) == -ENOENT) {
		if ((ret = hp_f32(m, "rope.scale_linear", &factor, log)))
			return ret;
	} else if ((ret = hp_f32(m, "rope.scaling.factor", &factor, log))) {
		return ret;
	}
	m->x.rope_factor = factor == 0 ? 1.0f : factor;
	return 0;
}

/* granite.*: logit_scale required, the others 0 or absent for none */
static int load_multipliers(struct np_model *m, const struct np_log *log)
{
	float emb = 0, res = 0, logit = 0;
	char key[96];
	int ret, tuned;

	if ((ret = hp_f32(m, "embedding_scale", &emb, log)) ||
	    (ret = hp_f32(m, "residual_scale", &res, log)) ||
	    (ret = hp_f32(m, "attention.scale", &m->x.kq_scale, log)) ||
	    (ret = hp_f32(m, "logit_scale", &logit, log)))
		return ret;
	npim_arch_key(m->arch, "logit_scale", key, sizeof(key));
	if (logit == 0) {
		npim_log(log, LOG_ERR,
			 "model: %s is missing or 0; a %s model needs its "
			 "logit scale",
			 key, m->arch->name);
		return -EINVAL;
	}
	m->x.logit_scale = logit;
	m->x.emb_scale = emb == 0 ? 1.0f : emb;
	m->x.res_scale = res == 0 ? 1.0f : res;
	npim_arch_key(m->arch, "rope.scaling.finetuned", key, sizeof(key));
	if (np_gguf_get_bool(m->g, key, &tuned) == 0 && !tuned) {
		npim_log(log, LOG_ERR,
			 "model: %s is false: a %s model without RoPE; np "
			 "compiles models with RoPE only",
			 key, m->arch->name);
		return -ENOTSUP;
	}
	return 0;
}

/* A 1-D F32/F16 tensor of n elements, or absent when optional */
static int load_vector(const struct np_model *m, const char *name, uint64_t n,
		       int optional, const struct np_gguf_tensor **out,
		       const struct np_log *log)
{
	const struct np_gguf_tensor *t = np_gguf_find_tensor(m->g, name);

	*out = t;
	if (!t && optional)
		return 0;
	if (!t) {
		npim_log(log, LOG_ERR,
			 "model: tensor '%s' is missing; a %s model has Q/K/V "
			 "biases",
			 name, m->arch->name);
		return -EINVAL;
	}
	if ((t->type != NP_GGML_F32 && t->type != NP_GGML_F16) ||
	    t->n_elems != n || t->ne[0] != n) {
		npim_log(log, LOG_ERR,
			 "model: tensor '%s' is %s of %llu elements; np reads "
			 "it as an F32 or F16 vector of %llu",
			 name, np_ggml_type_name(t->type) ?: "?",
			 (unsigned long long)t->n_elems, (unsigned long long)n);
		return -EINVAL;
	}
	return 0;
}

static int load_tensors(struct np_model *m, const struct np_log *log)
{
	uint32_t hd = m->shape.dim / m->shape.n_heads;
	int need = !!(m->arch->features & NPIM_ARCH_QKV_BIAS);
	char name[96];
	int ret;

	for (uint32_t l = 0; l < m->shape.n_layers; l++) {
		for (int k = 0; k < 3; k++) {
			uint32_t rows, cols;

			np_model_dims(m, NP_T_Q + k, &rows, &cols);
			npim_arch_bias_name(m->arch, NP_T_Q + k, l, name,
					    sizeof(name));
			ret = load_vector(m, name, rows, !need,
					  &m->bias[l * 3 + k], log);
			if (ret)
				return ret;
			if (m->bias[l * 3 + k])
				m->x.bias_mask |= 1u << (NP_T_Q + k);
		}
	}
	ret = load_vector(m, "rope_freqs.weight", hd / 2, 1, &m->rope_freqs,
			  log);
	if (ret || !m->rope_freqs)
		return ret;
	{
		float ff[512];

		ret = np_gguf_tensor_row(m->rope_freqs, 0, ff);
		for (uint32_t i = 0; i < hd / 2 && !ret; i++) {
			if (!(ff[i] > 0) || !isfinite(ff[i])) {
				npim_log(log, LOG_ERR,
					 "model: rope_freqs.weight[%u] is %g; "
					 "RoPE frequency factors must be "
					 "positive",
					 i, (double)ff[i]);
				return -EINVAL;
			}
		}
	}
	return ret;
}

static int is_used(const struct np_model *m, const struct np_gguf_tensor *t)
{
	uint32_t L = m->shape.n_layers;

	if (t == m->rope_freqs)
		return 1;
	for (uint32_t i = 0; i < L * NPIM_PER_LAYER + 3; i++)
		if (m->t[i] == t)
			return 1;
	for (uint32_t i = 0; i < L * 3; i++)
		if (m->bias[i] == t)
			return 1;
	return 0;
}

/* Every tensor of the file is one np computes with, as llama.cpp
 * insists ("wrong number of tensors"): none is silently left out */
static int check_unused(const struct np_model *m, const struct np_log *log)
{
	size_t n = np_gguf_n_tensors(m->g);

	for (size_t i = 0; i < n; i++) {
		const struct np_gguf_tensor *t = np_gguf_tensor(m->g, i);

		if (is_used(m, t))
			continue;
		npim_log(log, LOG_ERR,
			 "model: tensor '%s' is not part of a %s model as np "
			 "computes it (np reads RMSNorm, Q/K/V/O with Q/K/V "
			 "biases, a SwiGLU FFN and rope_freqs.weight); np "
			 "will not run the model without it",
			 t->name, m->arch->name);
		return -ENOTSUP;
	}
	return 0;
}

/* A plain llama decoder's */
static void defaults(struct np_model *m)
{
	m->x = (struct npim_math){
		.emb_scale = 1.0f,
		.res_scale = 1.0f,
		.logit_scale = 1.0f,
		.rope_factor = 1.0f,
		.neox = !!(m->arch->features & NPIM_ARCH_ROPE_NEOX),
	};
}

int npim_math_load(struct np_model *m, const struct np_log *log)
{
	int ret;

	defaults(m);
	m->bias = calloc((size_t)m->shape.n_layers * 3, sizeof(*m->bias));
	if (!m->bias)
		return -ENOMEM;
	ret = load_rope_scaling(m, log);
	if (!ret && (m->arch->features & NPIM_ARCH_MULTIPLIERS))
		ret = load_multipliers(m, log);
	ret = ret ? ret : load_tensors(m, log);
	return ret ? ret : check_unused(m, log);
}

void npim_math_synthetic(struct np_model *m)
{
	const struct npim_family *f = m->fam;

	defaults(m);
	if (m->arch->features & NPIM_ARCH_QKV_BIAS)
		m->x.bias_mask = 1u << NP_T_Q | 1u << NP_T_K | 1u << NP_T_V;
	if (m->arch->features & NPIM_ARCH_MULTIPLIERS) {
		m->x.emb_scale = f->embedding_scale;
		m->x.res_scale = f->residual_scale;
		m->x.kq_scale = f->attention_scale;
		m->x.logit_scale = f->logit_scale;
	}
}

int npim_model_bias(const struct np_model *m, int tensor, uint32_t layer,
		    float *out)
{
	uint32_t rows, cols;

	np_model_dims(m, tensor, &rows, &cols);
	if (!(m->x.bias_mask & 1u << tensor)) {
		memset(out, 0, rows * sizeof(*out));
		return 0;
	}
	if (m->mem_bias) {
		memcpy(out,
		       m->mem_bias[layer * 3 + (uint32_t)(tensor - NP_T_Q)],
		       rows * sizeof(*out));
		return 0;
	}
	if (m->g) {
		const struct np_gguf_tensor *t =
			m->bias[layer * 3 + (uint32_t)(tensor - NP_T_Q)];

		if (!t) {
			memset(out, 0, rows * sizeof(*out));
			return 0;
		}
		return np_gguf_tensor_row(t, 0, out);
	}
	/* Qwen2's biases are large next to the products: RMS 0.3 */
	npim_rand_row(m->seed, (uint64_t)layer * 16 + 10 + (uint64_t)tensor, 0,
		      0.5f, 0.0f, out, rows);
	return 0;
}

int npim_model_rope_factors(const struct np_model *m, float *out)
{
	const struct np_model_shape *s = &m->shape;
	uint32_t hd = s->dim / s->n_heads;

	if (m->rope_freqs)
		return np_gguf_tensor_row(m->rope_freqs, 0, out);
	for (uint32_t i = 0; i < hd / 2; i++)
		out[i] = 1.0f;
	if (m->g || !(m->fam->parts & NPIM_FAM_ROPE_FACTORS))
		return 0;
	/* Llama 3.1: factor 8, low 1, high 4 over an 8192-token original
	 * context, smoothed between the two wavelengths */
	for (uint32_t i = 0; i < hd / 2; i++) {
		double freq = pow(s->rope_base, -2.0 * i / hd);
		double wavelen = 2 * M_PI / freq, lo = 8192.0, hi = 8192.0 / 4;

		if (wavelen > lo) {
			out[i] = 8.0f;
		} else if (wavelen >= hi) {
			double smooth = (8192.0 / wavelen - 1) / (4 - 1);

			out[i] = (float)(1 / ((1 - smooth) / 8 + smooth));
		}
	}
	return 0;
}

static int wr_key_f32(struct np_gguf_writer *w, const struct np_model *m,
		      const char *name, float v)
{
	char key[96];

	npim_arch_key(m->arch, name, key, sizeof(key));
	return np_gguf_writer_kv_f32(w, key, v);
}

int npim_math_write_keys(struct np_gguf_writer *w, const struct np_model *m)
{
	const struct npim_math *x = &m->x;
	int ret = 0;

	if (x->rope_factor != 1.0f) {
		char key[96];

		npim_arch_key(m->arch, "rope.scaling.type", key, sizeof(key));
		ret = np_gguf_writer_kv_str(w, key, "linear");
		ret = ret ? ret :
			    wr_key_f32(w, m, "rope.scaling.factor",
				       x->rope_factor);
	}
	if (ret || !(m->arch->features & NPIM_ARCH_MULTIPLIERS))
		return ret;
	ret = wr_key_f32(w, m, "embedding_scale", x->emb_scale);
	ret = ret ? ret : wr_key_f32(w, m, "residual_scale", x->res_scale);
	ret = ret ? ret : wr_key_f32(w, m, "attention.scale", x->kq_scale);
	return ret ? ret : wr_key_f32(w, m, "logit_scale", x->logit_scale);
}

int npim_math_write_tensors(struct np_gguf_writer *w, const struct np_model *m)
{
	uint32_t hd = m->shape.dim / m->shape.n_heads;
	float *buf = malloc((m->shape.dim > hd ? m->shape.dim : hd) * 4);
	char name[96];
	int ret = buf ? npim_model_rope_factors(m, buf) : -ENOMEM;

	if (!ret &&
	    (m->rope_freqs || (!m->g && m->fam->parts & NPIM_FAM_ROPE_FACTORS)))
		ret = np_gguf_writer_tensor(w, "rope_freqs.weight", NP_GGML_F32,
					    1, hd / 2, 0, buf);
	for (uint32_t l = 0; l < m->shape.n_layers && !ret; l++) {
		for (int k = NP_T_Q; k <= NP_T_V && !ret; k++) {
			uint32_t rows, cols;

			if (!(m->x.bias_mask & 1u << k) ||
			    (m->g && !m->bias[l * 3 + (uint32_t)(k - NP_T_Q)]))
				continue;
			np_model_dims(m, k, &rows, &cols);
			npim_arch_bias_name(m->arch, k, l, name, sizeof(name));
			ret = npim_model_bias(m, k, l, buf);
			ret = ret ? ret :
				    np_gguf_writer_tensor(w, name, NP_GGML_F32,
							  1, rows, 0, buf);
		}
	}
	free(buf);
	return ret;
}
