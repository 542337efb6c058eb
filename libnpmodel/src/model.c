// SPDX-License-Identifier: MIT
/*
 * Models: a checked view of a GGUF file of an architecture in the table
 * (arch.c), or weights derived from a seed on demand, and the writer that
 * turns the latter into a GGUF file with a trained vocabulary.
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

void np_model_dims(const struct np_model *m, enum np_model_tensor tensor,
		   uint32_t *rows, uint32_t *cols)
{
	const struct np_model_shape *s = &m->shape;
	uint32_t hd = s->dim / s->n_heads;

	switch (tensor) {
	case NP_T_ATTN_NORM:
	case NP_T_FFN_NORM:
	case NP_T_OUT_NORM:
		*rows = 1;
		*cols = s->dim;
		break;
	case NP_T_Q:
		*rows = s->n_heads * hd;
		*cols = s->dim;
		break;
	case NP_T_K:
	case NP_T_V:
		*rows = s->n_kv_heads * hd;
		*cols = s->dim;
		break;
	case NP_T_O:
		*rows = s->dim;
		*cols = s->n_heads * hd;
		break;
	case NP_T_GATE:
	case NP_T_UP:
		*rows = s->ffn;
		*cols = s->dim;
		break;
	case NP_T_DOWN:
		*rows = s->dim;
		*cols = s->ffn;
		break;
	default: /* embeddings and output */
		*rows = s->vocab;
		*cols = s->dim;
		break;
	}
}

int np_model_shape_check(const struct np_model_shape *s,
			 const struct np_log *log)
{
	const char *why = NULL;

	if (s->n_layers == 0 || s->n_layers > 1024)
		why = "layer count must be 1..1024";
	else if (s->dim == 0 || s->dim > 65536 || s->dim % 32)
		why = "embedding length must be a multiple of 32 up to 65536";
	else if (s->n_heads == 0 || s->dim % s->n_heads)
		why = "head count must divide the embedding length";
	else if ((s->dim / s->n_heads) % 2 || s->dim / s->n_heads > 1024)
		why = "head dimension must be even and at most 1024";
	else if (s->n_kv_heads == 0 || s->n_heads % s->n_kv_heads)
		why = "KV head count must divide the head count";
	else if (s->ffn == 0 || s->ffn > (1u << 20) || s->ffn % 32)
		why = "feed-forward length must be a multiple of 32 up to 2^20";
	else if (s->vocab == 0 || s->vocab > (1u << 22))
		why = "vocabulary size must be 1..2^22";
	else if (!(s->rope_base > 1.0f) || !(s->norm_eps >= 0.0f) ||
		 !(s->norm_eps < 1.0f))
		why = "RoPE base must exceed 1 and the RMS epsilon lie in [0, "
		      "1)";
	if (!why)
		return 0;
	npim_log(log, LOG_ERR,
		 "model: shape layers %u, dim %u, heads %u, kv heads %u, ffn "
		 "%u, vocab %u is invalid: %s",
		 s->n_layers, s->dim, s->n_heads, s->n_kv_heads, s->ffn,
		 s->vocab, why);
	return -EINVAL;
}

/* Hyperparameter "<prefix>.<name>" of the model's architecture */
static int hp_u32(const struct np_model *m, const char *name, uint32_t *v,
		  int required, const struct np_log *log)
{
	char key[96];
	uint64_t u;
	int ret;

	npim_arch_key(m->arch, name, key, sizeof(key));
	ret = np_gguf_get_u64(m->g, key, &u);
	if (ret == -ENOENT && !required)
		return 0;
	if (ret || u > UINT32_MAX) {
		npim_log(log, LOG_ERR,
			 "model: %s is %s; a %s GGUF needs it as an "
			 "unsigned integer",
			 key, ret == -ENOENT ? "missing" : "not a valid count",
			 m->arch->name);
		return -EINVAL;
	}
	*v = (uint32_t)u;
	return 0;
}

/* Tensor `tensor` of layer `layer` (of the model for the others) */
static int check_tensor(const struct np_model *m, int tensor, uint32_t layer,
			int optional, const struct np_gguf_tensor **out,
			const struct np_log *log)
{
	const struct np_gguf_tensor *t;
	uint32_t blck, bytes, rows, cols;
	const char *tname = "?";
	char name[96];

	npim_arch_tensor_name(m->arch, tensor, layer, name, sizeof(name));
	np_model_dims(m, tensor, &rows, &cols);
	t = np_gguf_find_tensor(m->g, name);
	*out = t;
	if (!t) {
		if (optional)
			return 0;
		npim_log(log, LOG_ERR,
			 "model: tensor '%s' is missing; the file is not a "
			 "complete %s model",
			 name, m->arch->name);
		return -EINVAL;
	}
	npim_ggml_type_info(t->type, &blck, &bytes, &tname);
	if (!np_ggml_type_readable(t->type)) {
		char list[256];

		npim_ggml_readable_list(list, sizeof(list));
		npim_log(log, LOG_ERR,
			 "model: tensor '%s' has type %s, which np does not "
			 "read (it reads %s): requantise the file "
			 "(llama-quantize "
			 "... Q4_K_M)",
			 name, tname, list);
		return -ENOTSUP;
	}
	if (t->ne[0] != cols || t->n_elems != (uint64_t)rows * cols ||
	    (rows > 1 && t->n_dims != 2)) {
		npim_log(log, LOG_ERR,
			 "model: tensor '%s' has shape %llux%llux%llux%llu, "
			 "expected %llux%llu from the metadata; the file is "
			 "inconsistent",
			 name, (unsigned long long)t->ne[0],
			 (unsigned long long)t->ne[1],
			 (unsigned long long)t->ne[2],
			 (unsigned long long)t->ne[3], (unsigned long long)cols,
			 (unsigned long long)rows);
		return -EINVAL;
	}
	return 0;
}

/* The hyperparameters of m->g into m->shape (m->arch set) */
static int model_hparams(struct np_model *m, const struct np_log *log)
{
	const struct npim_arch *a = m->arch;
	const struct np_gguf *g = m->g;
	uint32_t rope_dim = 0;
	uint64_t nvocab;
	uint32_t atype;
	char key[96], embd[96];
	int ret;

	m->shape.rope_base = a->rope_base;
	m->shape.norm_eps = a->norm_eps;
	if ((ret = hp_u32(m, "block_count", &m->shape.n_layers, 1, log)) ||
	    (ret = hp_u32(m, "embedding_length", &m->shape.dim, 1, log)) ||
	    (ret = hp_u32(m, "feed_forward_length", &m->shape.ffn, 1, log)) ||
	    (ret = hp_u32(m, "attention.head_count", &m->shape.n_heads, 1,
			  log)) ||
	    (ret = hp_u32(m, "context_length", &m->shape.ctx, 0, log)) ||
	    (ret = hp_u32(m, "rope.dimension_count", &rope_dim, 0, log)))
		return ret;
	m->shape.n_kv_heads = m->shape.n_heads;
	if ((ret = hp_u32(m, "attention.head_count_kv", &m->shape.n_kv_heads, 0,
			  log)))
		return ret;
	npim_arch_key(a, "rope.freq_base", key, sizeof(key));
	if (np_gguf_get_f32(g, key, &m->shape.rope_base) == -EINVAL) {
		npim_log(log, LOG_ERR,
			 "model: %s is not a float; the file is corrupt", key);
		return -EINVAL;
	}
	npim_arch_key(a, "attention.layer_norm_rms_epsilon", key, sizeof(key));
	if (np_gguf_get_f32(g, key, &m->shape.norm_eps) == -EINVAL) {
		npim_log(log, LOG_ERR,
			 "model: %s is not a float; the file is corrupt", key);
		return -EINVAL;
	}
	npim_arch_key(a, "vocab_size", key, sizeof(key));
	npim_arch_tensor_name(a, NP_T_TOK_EMBD, 0, embd, sizeof(embd));
	if ((np_gguf_get_arr(g, "tokenizer.ggml.tokens", &atype, &nvocab) ||
	     nvocab > UINT32_MAX) &&
	    (np_gguf_get_u64(g, key, &nvocab) || nvocab > UINT32_MAX)) {
		const struct np_gguf_tensor *e = np_gguf_find_tensor(g, embd);

		nvocab = e && e->n_dims == 2 ? e->ne[1] : 0;
	}
	m->shape.vocab = (uint32_t)nvocab;
	if ((ret = np_model_shape_check(&m->shape, log)))
		return ret;
	for (int k = 0; k < 2; k++) {
		/* heads wider or narrower than dim / heads (Mistral Nemo's) */
		const char *name =
			k ? "attention.value_length" : "attention.key_length";
		uint32_t hd = m->shape.dim / m->shape.n_heads, len = hd;

		if ((ret = hp_u32(m, name, &len, 0, log)))
			return ret;
		if (len == hd)
			continue;
		npim_arch_key(a, name, key, sizeof(key));
		npim_log(log, LOG_ERR,
			 "model: %s is %u but embedding_length / head_count "
			 "is %u; np computes heads of embedding_length / "
			 "head_count only",
			 key, len, hd);
		return -ENOTSUP;
	}
	if (rope_dim && rope_dim != m->shape.dim / m->shape.n_heads) {
		npim_arch_key(a, "rope.dimension_count", key, sizeof(key));
		npim_log(log, LOG_ERR,
			 "model: %s is %u but the head dimension is %u; "
			 "partial RoPE is not supported",
			 key, rope_dim, m->shape.dim / m->shape.n_heads);
		return -ENOTSUP;
	}
	return 0;
}

/* general.architecture of g, among those np compiles */
static int model_arch(const struct np_gguf *g, const struct np_log *log,
		      const struct npim_arch **a)
{
	const char *arch;
	size_t alen;
	int ret = np_gguf_get_str(g, "general.architecture", &arch, &alen);

	if (ret) {
		npim_log(log, LOG_ERR,
			 "model: general.architecture is %s; not a model file",
			 ret == -ENOENT ? "missing" : "not a string");
		return -EINVAL;
	}
	return npim_arch_find(arch, alen, log, a);
}

int np_model_shape_from_gguf(const struct np_gguf *g, const struct np_log *log,
			     struct np_model_shape *out)
{
	struct np_model m = {.g = g};
	int ret = model_arch(g, log, &m.arch);

	if (ret)
		return ret;
	ret = model_hparams(&m, log);
	if (!ret)
		*out = m.shape;
	return ret;
}

int np_model_from_gguf(const struct np_gguf *g, const struct np_log *log,
		       struct np_model **out)
{
	const struct npim_arch *a;
	struct np_model *m;
	uint32_t ntot;
	int ret;

	*out = NULL;
	if (np_gguf_n_tensors(g) && !np_gguf_tensor(g, 0)->data) {
		npim_log(log, LOG_ERR,
			 "model: the GGUF handle holds no tensor data "
			 "(np_gguf_open_meta); open the file with "
			 "np_gguf_open to load the model");
		return -EINVAL;
	}
	ret = model_arch(g, log, &a);
	if (ret)
		return ret;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->g = g;
	m->arch = a;
	if ((ret = model_hparams(m, log)))
		goto fail;
	ntot = m->shape.n_layers * NPIM_PER_LAYER + 3;
	m->t = calloc(ntot, sizeof(*m->t));
	if (!m->t) {
		ret = -ENOMEM;
		goto fail;
	}
	for (uint32_t l = 0; l < m->shape.n_layers; l++) {
		for (int k = 0; k < NPIM_PER_LAYER; k++) {
			ret = check_tensor(m, k, l, 0,
					   &m->t[l * NPIM_PER_LAYER + k], log);
			if (ret)
				goto fail;
		}
	}
	{
		const struct np_gguf_tensor **tail =
			&m->t[m->shape.n_layers * NPIM_PER_LAYER];
		int tied = !!(a->features & NPIM_ARCH_TIED_OUTPUT);

		if ((ret = check_tensor(m, NP_T_TOK_EMBD, 0, 0, &tail[0],
					log)) ||
		    (ret = check_tensor(m, NP_T_OUT_NORM, 0, 0, &tail[1],
					log)) ||
		    (ret = check_tensor(m, NP_T_OUTPUT, 0, tied, &tail[2],
					log)))
			goto fail;
		if (!tail[2])
			tail[2] = tail[0]; /* tied embeddings */
	}
	if ((ret = npim_math_load(m, log)))
		goto fail;
	*out = m;
	return 0;
fail:
	np_model_destroy(m);
	return ret;
}

int np_model_synthetic_arch(const char *family,
			    const struct np_model_shape *shape, uint64_t seed,
			    const struct np_log *log, struct np_model **out)
{
	const struct npim_family *f = npim_family_find(family);
	struct np_model_shape s = *shape;
	struct np_model *m;
	int ret;

	*out = NULL;
	if (!f) {
		char list[256];

		npim_family_list(list, sizeof(list));
		npim_log(log, LOG_ERR,
			 "model: no model family '%s'; np generates %s models",
			 family, list);
		return -EINVAL;
	}
	if (s.rope_base == 0.0f)
		s.rope_base = f->rope_base;
	ret = np_model_shape_check(&s, log);
	if (ret)
		return ret;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->shape = s;
	m->arch = f->arch;
	m->fam = f;
	m->seed = seed;
	npim_math_synthetic(m);
	*out = m;
	return 0;
}

/* Floats of one tensor of the shape (rows x cols of np_model_dims) */
static size_t tensor_floats(const struct np_model_shape *s, int tensor)
{
	struct np_model m = {.shape = *s};
	uint32_t rows, cols;

	np_model_dims(&m, tensor, &rows, &cols);
	return (size_t)rows * cols;
}

size_t np_model_n_floats(const struct np_model_shape *shape)
{
	struct np_model_shape s0 = *shape, *s = &s0;
	size_t layer = 0;

	/* the counts do not depend on RoPE base or epsilon */
	s0.rope_base = 10000.0f;
	s0.norm_eps = 1e-5f;
	if (np_model_shape_check(s, NULL))
		return 0;
	for (int t = 0; t < NPIM_PER_LAYER; t++)
		layer += tensor_floats(s, t);
	return tensor_floats(s, NP_T_TOK_EMBD) + s->n_layers * layer +
	       tensor_floats(s, NP_T_OUT_NORM) + tensor_floats(s, NP_T_OUTPUT);
}

/* Where a tensor starts in np_model_from_floats' array */
static size_t floats_offset(const struct np_model_shape *s, int tensor,
			    uint32_t layer)
{
	size_t off = tensor_floats(s, NP_T_TOK_EMBD), per = 0;

	for (int t = 0; t < NPIM_PER_LAYER; t++)
		per += tensor_floats(s, t);
	if (tensor == NP_T_TOK_EMBD)
		return 0;
	if (tensor >= NP_T_OUT_NORM)
		return off + s->n_layers * per +
		       (tensor == NP_T_OUTPUT ?
				tensor_floats(s, NP_T_OUT_NORM) :
				0);
	off += layer * per;
	for (int t = 0; t < tensor; t++)
		off += tensor_floats(s, t);
	return off;
}

int np_model_from_floats(const char *family, const struct np_model_shape *shape,
			 const float *w, size_t n, const struct np_log *log,
			 struct np_model **out)
{
	struct np_model *m;
	size_t need;
	int ret;

	*out = NULL;
	ret = np_model_synthetic_arch(family, shape, 0, log, &m);
	if (ret)
		return ret;
	if (m->arch->features & NPIM_ARCH_QKV_BIAS) {
		npim_log(log, LOG_ERR,
			 "model: family '%s' has Q/K/V biases, which a model "
			 "from floats does not carry; use llama, llama3, "
			 "mistral or granite",
			 family);
		np_model_destroy(m);
		return -ENOTSUP;
	}
	need = np_model_n_floats(&m->shape);
	if (n != need) {
		npim_log(log, LOG_ERR,
			 "model: %zu weights given but a %u-layer model of "
			 "dim %u, %u/%u heads, FFN %u and vocabulary %u has "
			 "%zu; check the shape and the weight file",
			 n, m->shape.n_layers, m->shape.dim, m->shape.n_heads,
			 m->shape.n_kv_heads, m->shape.ffn, m->shape.vocab,
			 need);
		np_model_destroy(m);
		return -EINVAL;
	}
	m->w = w;
	*out = m;
	return 0;
}

int np_model_synthetic(const struct np_model_shape *shape, uint64_t seed,
		       struct np_model **out)
{
	return np_model_synthetic_arch(npim_arch_synthetic->name, shape, seed,
				       NULL, out);
}

void np_model_destroy(struct np_model *m)
{
	if (!m)
		return;
	if (m->mem)
		for (uint32_t i = 0; i < m->shape.n_layers * 9 + 3; i++)
			free(m->mem[i]);
	if (m->mem_bias)
		for (uint32_t i = 0; i < m->shape.n_layers * 3; i++)
			free(m->mem_bias[i]);
	free(m->mem);
	free(m->mem_bias);
	free(m->t);
	free(m->bias);
	free(m);
}

const struct np_model_shape *np_model_get_shape(const struct np_model *m)
{
	return &m->shape;
}

int np_model_row(const struct np_model *m, enum np_model_tensor tensor,
		 uint32_t layer, uint32_t row, float *out)
{
	uint32_t rows, cols;

	if (tensor < 0 || tensor >= NP_T_COUNT ||
	    (tensor < NP_T_TOK_EMBD && layer >= m->shape.n_layers))
		return -EINVAL;
	np_model_dims(m, tensor, &rows, &cols);
	if (row >= rows)
		return -ERANGE;
	if (m->mem) {
		uint32_t i = tensor < NP_T_TOK_EMBD ?
				     layer * 9 + (uint32_t)tensor :
				     m->shape.n_layers * 9 +
					     (uint32_t)(tensor - NP_T_TOK_EMBD);

		memcpy(out, m->mem[i] + (size_t)row * cols,
		       cols * sizeof(*out));
		return 0;
	}
	if (m->g) {
		const struct np_gguf_tensor *t =
			tensor < NP_T_TOK_EMBD ?
				m->t[layer * NPIM_PER_LAYER + tensor] :
				m->t[m->shape.n_layers * NPIM_PER_LAYER +
				     (tensor - NP_T_TOK_EMBD)];

		return np_gguf_tensor_row(t, row, out);
	}
	if (m->w) {
		memcpy(out,
		       m->w + floats_offset(&m->shape, tensor, layer) +
			       (size_t)row * cols,
		       cols * sizeof(float));
		return 0;
	}
	/*
	 * Uniform weights with the variance of the usual 1/fan_in init:
	 * norms near 1, embeddings of unit RMS.
	 */
	{
		uint64_t id = tensor < NP_T_TOK_EMBD ?
				      (uint64_t)layer * 16 + (uint64_t)tensor :
				      (uint64_t)1 << 40 | (uint64_t)tensor;
		float amp, base = 0.0f;

		switch (tensor) {
		case NP_T_ATTN_NORM:
		case NP_T_FFN_NORM:
		case NP_T_OUT_NORM:
			amp = 0.2f;
			base = 1.0f;
			break;
		case NP_T_TOK_EMBD:
			/* unit RMS after Granite's embedding multiplier */
			amp = sqrtf(3.0f) / m->x.emb_scale;
			break;
		default:
			amp = sqrtf(3.0f / (float)cols);
			break;
		}
		npim_rand_row(m->seed, id, row, amp, base, out, cols);
	}
	return 0;
}

/* "<prefix>.<name>" = v of the model's architecture */
static int wr_u32(struct np_gguf_writer *w, const struct np_model *m,
		  const char *name, uint32_t v)
{
	char key[96];

	npim_arch_key(m->arch, name, key, sizeof(key));
	return np_gguf_writer_kv_u32(w, key, v);
}

static int wr_f32(struct np_gguf_writer *w, const struct np_model *m,
		  const char *name, float v)
{
	char key[96];

	npim_arch_key(m->arch, name, key, sizeof(key));
	return np_gguf_writer_kv_f32(w, key, v);
}

int np_model_write_gguf(const struct np_model *m, enum np_ggml_type wtype,
			enum np_tok_kind tok_kind, const char *text,
			size_t text_len, const char *path)
{
	const struct np_model_shape *s = &m->shape;
	struct np_gguf_writer *w;
	float *buf = NULL;
	int ret;

	if (!np_ggml_type_writable(wtype))
		return -EINVAL;
	ret = np_gguf_writer_create(&w);
	if (ret)
		return ret;
	ret = np_gguf_writer_kv_str(w, "general.architecture", m->arch->name);
	ret = ret ? ret :
		    np_gguf_writer_kv_str(w, "general.name",
					  m->w ? "np trained" : "np synthetic");
	ret = ret ? ret : np_gguf_writer_kv_u32(w, "general.alignment", 32);
	ret = ret ? ret : wr_u32(w, m, "block_count", s->n_layers);
	ret = ret ? ret : wr_u32(w, m, "context_length", s->ctx);
	ret = ret ? ret : wr_u32(w, m, "embedding_length", s->dim);
	ret = ret ? ret : wr_u32(w, m, "feed_forward_length", s->ffn);
	ret = ret ? ret : wr_u32(w, m, "attention.head_count", s->n_heads);
	ret = ret ? ret :
		    wr_u32(w, m, "attention.head_count_kv", s->n_kv_heads);
	ret = ret ? ret :
		    wr_u32(w, m, "rope.dimension_count", s->dim / s->n_heads);
	ret = ret ? ret : wr_f32(w, m, "rope.freq_base", s->rope_base);
	ret = ret ? ret :
		    wr_f32(w, m, "attention.layer_norm_rms_epsilon",
			   s->norm_eps);
	ret = ret ? ret : npim_math_write_keys(w, m);
	ret = ret ? ret : np_tok_train(tok_kind, text, text_len, s->vocab, w);
	if (ret)
		goto out;
	for (int k = -1; k < (int)s->n_layers + 1 && !ret; k++) {
		int first = k < 0 || k == (int)s->n_layers ? NP_T_TOK_EMBD : 0;
		int last = k < 0		 ? NP_T_TOK_EMBD :
			   k == (int)s->n_layers ? NP_T_OUTPUT :
						   NP_T_DOWN;

		for (int t = first; t <= last && !ret; t++) {
			uint32_t rows, cols;
			char name[96];
			int norm = t == NP_T_ATTN_NORM || t == NP_T_FFN_NORM ||
				   t == NP_T_OUT_NORM;

			if (k < 0 && t != NP_T_TOK_EMBD)
				continue;
			if (k == (int)s->n_layers && t == NP_T_TOK_EMBD)
				continue;
			np_model_dims(m, t, &rows, &cols);
			free(buf);
			buf = malloc((size_t)rows * cols * sizeof(float));
			if (!buf) {
				ret = -ENOMEM;
				break;
			}
			for (uint32_t r = 0; r < rows && !ret; r++)
				ret = np_model_row(m, t,
						   k < 0 ? 0 : (uint32_t)k, r,
						   buf + (size_t)r * cols);
			npim_arch_tensor_name(m->arch, t,
					      k < 0 ? 0 : (uint32_t)k, name,
					      sizeof(name));
			if (!ret)
				ret = np_gguf_writer_tensor(
					w, name,
					norm ? NP_GGML_F32 :
					       np_ggml_type_for_row(wtype,
								    cols),
					rows, cols, !norm, buf);
		}
	}
	if (!ret)
		ret = npim_math_write_tensors(w, m);
	if (!ret)
		ret = np_gguf_writer_save(w, path);
out:
	free(buf);
	np_gguf_writer_destroy(w);
	return ret;
}
