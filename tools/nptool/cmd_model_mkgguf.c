// SPDX-License-Identifier: MIT
/*
 * model mkgguf: a llama GGUF of a named shape, its vocabulary trained on a
 * text, written through libnpmodel (np_model_write_gguf). The build makes
 * the demo model with it.
 */
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <np/model.h>

#include "nptool.h"

/* "q8_0" -> NP_GGML_Q8_0: the types np_model_write_gguf writes */
static int parse_type(const char *s, uint32_t *type)
{
	static const uint32_t types[] = {NP_GGML_F32, NP_GGML_F16, NP_GGML_Q8_0,
					 NP_GGML_Q4_0};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (!strcasecmp(s, np_ggml_type_name(types[i]))) {
			*type = types[i];
			return 0;
		}
	}
	return -EINVAL;
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

int npt_model_mkgguf(struct npt *t, int argc, char **argv)
{
	static const struct option opts[] = {
		{"shape", required_argument, NULL, 's'},
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
		{0},
	};
	struct np_model_log lg = {npt_log_err, t};
	const char *shape_name = "tiny", *text_path = NULL, *out = NULL;
	uint32_t wtype = NP_GGML_Q8_0, seed = 1;
	int tok = NP_TOK_SPM, c, rc, ret;
	struct np_model_shape s;
	struct np_model *m = NULL;
	char *text = NULL, sz[32];
	size_t len = 0;
	struct stat st;
	double t0;

	np_model_shape_preset(shape_name, &s);
	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			shape_name = optarg;
			if (np_model_shape_preset(shape_name, &s))
				return npt_usage(t,
						 "--shape '%s': use tiny, "
						 "medium or granite3b",
						 shape_name);
			break;
		case MKGGUF_DIM + 0 ... MKGGUF_DIM + 5:
			rc = mkgguf_dim(t, c - MKGGUF_DIM, optarg, &s);
			if (rc)
				return rc;
			break;
		case 'T':
			if (!strcmp(optarg, "spm"))
				tok = NP_TOK_SPM;
			else if (!strcmp(optarg, "bpe"))
				tok = NP_TOK_BPE;
			else
				return npt_usage(t,
						 "--tok '%s': use spm or bpe",
						 optarg);
			break;
		case 't':
			if (parse_type(optarg, &wtype))
				return npt_usage(t,
						 "--type '%s': use f32, f16, "
						 "q8_0 or q4_0",
						 optarg);
			break;
		case 'S':
			rc = npt_parse_u32(t, "--seed", optarg, 0, &seed);
			if (rc)
				return rc;
			break;
		case 'x':
			text_path = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		default:
			return npt_usage(t, "model mkgguf: bad option '%s'",
					 argv[optind - 1]);
		}
	}
	if (optind < argc)
		return npt_usage(t, "model mkgguf: unexpected argument '%s'",
				 argv[optind]);
	if (!text_path || !out)
		return npt_usage(t, "model mkgguf needs --text FILE (the "
				    "vocabulary's training text) and --out "
				    "FILE");
	ret = npt_read_file(text_path, NPT_TEXT_MAX, &text, &len);
	if (ret) {
		npt_err(t, "cannot read training text %s: %s", text_path,
			strerror(-ret));
		return NPT_EXIT_USAGE;
	}
	if (np_model_shape_check(&s, &lg))
		return NPT_EXIT_USAGE;
	t0 = npt_now();
	ret = np_model_synthetic(&s, seed, &m);
	ret = ret ? ret : np_model_write_gguf(m, wtype, tok, text, len, out);
	np_model_destroy(m);
	free(text);
	if (ret) {
		npt_err(t, "writing %s failed: %s", out, strerror(-ret));
		return ret == -EINVAL ? NPT_EXIT_USAGE : NPT_EXIT_DEVERR;
	}
	if (stat(out, &st))
		st.st_size = 0;
	if (t->j) {
		npt_json_kstr(t->j, "path", out);
		npt_json_kstr(t->j, "shape_name", shape_name);
		npt_shape_json(t->j, &s);
		npt_json_kstr(t->j, "type", np_ggml_type_name(wtype));
		npt_json_kstr(t->j, "tokenizer", npt_tok_kind_name(tok));
		npt_json_kuint(t->j, "seed", seed);
		npt_json_kuint(t->j, "file_bytes", (uint64_t)st.st_size);
		npt_json_kdouble(t->j, "seconds", npt_now() - t0);
	} else {
		printf("wrote %s: %s shape, %s weights, %s vocabulary of %u, "
		       "seed %u (%s, %.1f s)\n",
		       out, shape_name, np_ggml_type_name(wtype),
		       npt_tok_kind_name(tok), s.vocab, seed,
		       npt_fmt_size(sz, sizeof(sz), (uint64_t)st.st_size),
		       npt_now() - t0);
	}
	return NPT_EXIT_OK;
}
