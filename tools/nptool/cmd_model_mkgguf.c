// SPDX-License-Identifier: MIT
/*
 * model mkgguf: a GGUF of a model family (llama, llama3, mistral, granite,
 * qwen2) and a named shape, its vocabulary trained on a text, written
 * through libnpmodel (np_model_write_gguf). The build makes
 * the demo model with it.
 */
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <np/model.h>

#include "nptool.h"

/* "q4_k" -> NP_GGML_Q4_K: the types np_model_write_gguf writes */
static int parse_type(const char *s, uint32_t *type)
{
	enum np_ggml_type t;

	if (np_ggml_type_from_name(s, &t) || !np_ggml_type_writable(t))
		return -EINVAL;
	*type = t;
	return 0;
}

/* --layers .. --vocab: one dimension of the named shape, by index */
#define MKGGUF_DIM 0x100
static int mkgguf_dim(struct npt *t, int i, const char *v,
		      struct np_model_shape *s)
{
	static const struct {
		const char *opt;
		size_t off;
	} dims[] = {
		{"--layers", offsetof(struct np_model_shape, n_layers)},
		{"--dim", offsetof(struct np_model_shape, dim)},
		{"--heads", offsetof(struct np_model_shape, n_heads)},
		{"--kv-heads", offsetof(struct np_model_shape, n_kv_heads)},
		{"--ffn", offsetof(struct np_model_shape, ffn)},
		{"--vocab", offsetof(struct np_model_shape, vocab)},
	};

	return npt_parse_u32(t, dims[i].opt, v, 1,
			     (uint32_t *)((char *)s + dims[i].off));
}

/* The command line of model mkgguf. */
struct mkgguf {
	const char *shape_name, *text_path, *out, *arch, *weights;
	uint32_t wtype, seed;
	int tok;
	struct np_model_shape s;
};

static int mkgguf_parse(struct npt *t, struct mkgguf *k, int argc, char **argv)
{
	static const struct option opts[] = {
		{"shape", required_argument, NULL, 's'},
		{"arch", required_argument, NULL, 'a'},
		{"layers", required_argument, NULL, MKGGUF_DIM + 0},
		{"dim", required_argument, NULL, MKGGUF_DIM + 1},
		{"heads", required_argument, NULL, MKGGUF_DIM + 2},
		{"kv-heads", required_argument, NULL, MKGGUF_DIM + 3},
		{"ffn", required_argument, NULL, MKGGUF_DIM + 4},
		{"vocab", required_argument, NULL, MKGGUF_DIM + 5},
		{"tok", required_argument, NULL, 'T'},
		{"type", required_argument, NULL, 't'},
		{"seed", required_argument, NULL, 'S'},
		{"text", required_argument, NULL, 'x'},
		{"out", required_argument, NULL, 'o'},
		{"weights", required_argument, NULL, 'w'},
		{0},
	};
	int c, rc;

	np_model_shape_preset(k->shape_name, &k->s);
	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			k->shape_name = optarg;
			if (np_model_shape_preset(k->shape_name, &k->s))
				return npt_usage(t,
						 "--shape '%s': use tiny, "
						 "medium or granite3b",
						 k->shape_name);
			break;
		case 'a':
			k->arch = optarg;
			break;
		case MKGGUF_DIM + 0 ... MKGGUF_DIM + 5:
			rc = mkgguf_dim(t, c - MKGGUF_DIM, optarg, &k->s);
			if (rc)
				return rc;
			break;
		case 'T':
			if (!strcmp(optarg, "spm"))
				k->tok = NP_TOK_SPM;
			else if (!strcmp(optarg, "bpe"))
				k->tok = NP_TOK_BPE;
			else
				return npt_usage(t,
						 "--tok '%s': use spm or bpe",
						 optarg);
			break;
		case 't':
			if (parse_type(optarg, &k->wtype))
				return npt_usage(t,
						 "--type '%s': use f32, f16, "
						 "bf16, q8_0, q6_k, q5_k, "
						 "q5_1, q5_0, q4_k, q4_1, "
						 "q4_0, iq4_nl, q3_k or q2_k",
						 optarg);
			break;
		case 'S':
			rc = npt_parse_u32(t, "--seed", optarg, 0, &k->seed);
			if (rc)
				return rc;
			break;
		case 'x':
			k->text_path = optarg;
			break;
		case 'o':
			k->out = optarg;
			break;
		case 'w':
			k->weights = optarg;
			break;
		default:
			return npt_usage(t, "model mkgguf: bad option '%s'",
					 argv[optind - 1]);
		}
	}
	if (optind < argc)
		return npt_usage(t, "model mkgguf: unexpected argument '%s'",
				 argv[optind]);
	if (!k->text_path || !k->out)
		return npt_usage(t, "model mkgguf needs --text FILE (the "
				    "vocabulary's training text) and --out "
				    "FILE");
	return NPT_EXIT_OK;
}

/* The weights of --weights FILE (little-endian float32, in the order of
 * np_model_from_floats) as a model of the family and shape; *w holds
 * them. Returns an exit code. */
static int mkgguf_read_weights(struct npt *t, const struct mkgguf *k,
			       const struct np_model_shape *s,
			       const struct np_log *lg, float **w,
			       struct np_model **m)
{
	size_t need = np_model_n_floats(s), got;
	FILE *f = fopen(k->weights, "rb");
	struct stat st;
	int ret;

	if (!f || fstat(fileno(f), &st)) {
		npt_err(t, "cannot read weights %s: %s", k->weights,
			strerror(errno));
		if (f)
			fclose(f);
		return NPT_EXIT_USAGE;
	}
	if (!need || (uint64_t)st.st_size != (uint64_t)need * 4) {
		npt_err(t,
			"weights %s has %lld bytes but the shape (layers %u, "
			"dim %u, heads %u/%u, ffn %u, vocab %u) needs %zu "
			"floats, %zu bytes; give the shape the weights were "
			"trained with",
			k->weights, (long long)st.st_size, s->n_layers, s->dim,
			s->n_heads, s->n_kv_heads, s->ffn, s->vocab, need,
			need * 4);
		fclose(f);
		return NPT_EXIT_USAGE;
	}
	*w = malloc(need * sizeof(float));
	if (!*w) {
		fclose(f);
		return NPT_EXIT_DEVERR;
	}
	got = fread(*w, sizeof(float), need, f);
	fclose(f);
	if (got != need) {
		npt_err(t, "reading weights %s failed", k->weights);
		return NPT_EXIT_DEVERR;
	}
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	for (size_t i = 0; i < need; i++) {
		uint32_t v;

		memcpy(&v, &(*w)[i], 4);
		v = __builtin_bswap32(v);
		memcpy(&(*w)[i], &v, 4);
	}
#endif
	ret = np_model_from_floats(k->arch, s, *w, need, lg, m);
	if (ret)
		return ret == -ENOMEM ? NPT_EXIT_DEVERR : NPT_EXIT_USAGE;
	return NPT_EXIT_OK;
}

/* The model of the shape, its vocabulary trained on the text, to out;
 * *t0 is when the model's making started. */
static int mkgguf_write(struct npt *t, const struct mkgguf *k, double *t0)
{
	struct np_log lg = {.fn = npt_log_err, .opaque = t};
	struct np_model_shape s = k->s;
	struct np_model *m = NULL;
	char *text = NULL;
	float *w = NULL;
	size_t len = 0;
	int ret;

	ret = npt_read_file(k->text_path, NPT_TEXT_MAX, &text, &len);
	if (ret) {
		npt_err(t, "cannot read training text %s: %s", k->text_path,
			strerror(-ret));
		return NPT_EXIT_USAGE;
	}
	if (np_model_shape_check(&k->s, &lg)) {
		free(text);
		return NPT_EXIT_USAGE;
	}
	*t0 = npt_now();
	/* the family's RoPE base, unless the default llama */
	s.rope_base = strcmp(k->arch, "llama") ? 0.0f : s.rope_base;
	if (k->weights) {
		ret = mkgguf_read_weights(t, k, &s, &lg, &w, &m);
		if (ret) {
			free(text);
			return ret;
		}
	} else {
		ret = np_model_synthetic_arch(k->arch, &s, k->seed, &lg, &m);
	}
	if (ret == -EINVAL) {
		free(text);
		return NPT_EXIT_USAGE;
	}
	ret = ret ? ret :
		    np_model_write_gguf(m, k->wtype, k->tok, text, len, k->out);
	np_model_destroy(m);
	free(w);
	free(text);
	if (ret) {
		npt_err(t, "writing %s failed: %s", k->out, strerror(-ret));
		return ret == -EINVAL ? NPT_EXIT_USAGE : NPT_EXIT_DEVERR;
	}
	return NPT_EXIT_OK;
}

/* The type rows of `cols` were written in instead of wtype, or -1 */
static int row_fallback(const struct mkgguf *k, uint32_t *cols)
{
	const uint32_t c[2] = {k->s.dim, k->s.ffn};

	for (int i = 0; i < 2; i++) {
		enum np_ggml_type ft = np_ggml_type_for_row(k->wtype, c[i]);

		if (ft != (enum np_ggml_type)k->wtype) {
			*cols = c[i];
			return (int)ft;
		}
	}
	return -1;
}

/* What was written, and how long it took since t0. */
static void mkgguf_report(struct npt *t, const struct mkgguf *k, double t0)
{
	struct stat st;
	char sz[32], fb[96] = "";
	uint32_t cols = 0;
	int ft = row_fallback(k, &cols);

	if (stat(k->out, &st))
		st.st_size = 0;
	if (ft >= 0)
		snprintf(fb, sizeof(fb), " (%s for rows of %u)",
			 np_ggml_type_name((enum np_ggml_type)ft), cols);
	if (t->j) {
		npt_json_kstr(t->j, "path", k->out);
		npt_json_kstr(t->j, "shape_name", k->shape_name);
		npt_json_kstr(t->j, "arch", k->arch);
		npt_shape_json(t->j, &k->s);
		npt_json_kstr(t->j, "type", np_ggml_type_name(k->wtype));
		if (ft >= 0)
			npt_json_kstr(t->j, "fallback_type",
				      np_ggml_type_name((enum np_ggml_type)ft));
		else
			npt_json_knull(t->j, "fallback_type");
		npt_json_kstr(t->j, "tokenizer", npt_tok_kind_name(k->tok));
		npt_json_kuint(t->j, "seed", k->seed);
		if (k->weights)
			npt_json_kstr(t->j, "weights", k->weights);
		else
			npt_json_knull(t->j, "weights");
		npt_json_kuint(t->j, "file_bytes", (uint64_t)st.st_size);
		npt_json_kdouble(t->j, "seconds", npt_now() - t0);
	} else {
		char src[64];

		if (k->weights)
			snprintf(src, sizeof(src), "weights from a file");
		else
			snprintf(src, sizeof(src), "seed %u", k->seed);
		printf("wrote %s: %s %u layers x %u, %s weights%s, %s "
		       "vocabulary of %u, %s (%s, %.1f s)\n",
		       k->out, k->arch, k->s.n_layers, k->s.dim,
		       np_ggml_type_name(k->wtype), fb,
		       npt_tok_kind_name(k->tok), k->s.vocab, src,
		       npt_fmt_size(sz, sizeof(sz), (uint64_t)st.st_size),
		       npt_now() - t0);
	}
}

int npt_model_mkgguf(struct npt *t, int argc, char **argv)
{
	struct mkgguf k = {
		.shape_name = "tiny",
		.arch = "llama",
		.wtype = NP_GGML_Q8_0,
		.seed = 1,
		.tok = NP_TOK_SPM,
	};
	double t0 = 0;
	int rc = mkgguf_parse(t, &k, argc, argv);

	if (rc)
		return rc;
	rc = mkgguf_write(t, &k, &t0);
	if (!rc)
		mkgguf_report(t, &k, t0);
	return rc;
}
