// SPDX-License-Identifier: MIT
/*
 * np_mkgguf: write a llama GGUF with seed-derived weights and a vocabulary
 * trained on sample text. No downloads: every model the tests and the demo
 * use comes from here.
 *
 *   np_mkgguf --shape tiny|medium|granite3b [--layers N --dim N --heads N
 *             --kv-heads N --ffn N --vocab N] [--seed N] [--type f32|f16|
 *             q8_0|q4_0] [--tok spm|bpe] --text FILE --out FILE
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "np/model.h"
#include "npim.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: np_mkgguf --text FILE --out FILE [--shape "
		   "tiny|medium|granite3b]\n"
		   "       [--layers N] [--dim N] [--heads N] [--kv-heads N] "
		   "[--ffn N]\n"
		   "       [--vocab N] [--seed N] [--type f32|f16|q8_0|q4_0] "
		   "[--tok spm|bpe]\n");
}

static int parse_u32(const char *opt, const char *v, uint32_t *out)
{
	char *end;
	unsigned long x;

	errno = 0;
	x = strtoul(v, &end, 0);
	if (errno || *end || x > UINT32_MAX) {
		fprintf(stderr, "np_mkgguf: --%s '%s' is not a number\n", opt,
			v);
		return -1;
	}
	*out = (uint32_t)x;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"shape", required_argument, NULL, 's'},
		{"layers", required_argument, NULL, 'l'},
		{"dim", required_argument, NULL, 'd'},
		{"heads", required_argument, NULL, 'h'},
		{"kv-heads", required_argument, NULL, 'k'},
		{"ffn", required_argument, NULL, 'f'},
		{"vocab", required_argument, NULL, 'v'},
		{"seed", required_argument, NULL, 'S'},
		{"type", required_argument, NULL, 't'},
		{"tok", required_argument, NULL, 'T'},
		{"text", required_argument, NULL, 'x'},
		{"out", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'H'},
		{0},
	};
	struct np_model_shape s;
	const char *text_path = NULL, *out = NULL;
	uint32_t wtype = NP_GGML_Q8_0, seed = 1;
	int tok = NP_TOK_SPM, c, ret;
	struct np_model *m;
	size_t len;
	char *text;

	np_model_shape_preset("tiny", &s);
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		int bad = 0;

		switch (c) {
		case 's':
			if (np_model_shape_preset(optarg, &s)) {
				fprintf(stderr,
					"np_mkgguf: unknown shape '%s'; use "
					"tiny, medium or granite3b\n",
					optarg);
				return 2;
			}
			break;
		case 'l':
			bad = parse_u32("layers", optarg, &s.n_layers);
			break;
		case 'd':
			bad = parse_u32("dim", optarg, &s.dim);
			break;
		case 'h':
			bad = parse_u32("heads", optarg, &s.n_heads);
			break;
		case 'k':
			bad = parse_u32("kv-heads", optarg, &s.n_kv_heads);
			break;
		case 'f':
			bad = parse_u32("ffn", optarg, &s.ffn);
			break;
		case 'v':
			bad = parse_u32("vocab", optarg, &s.vocab);
			break;
		case 'S':
			bad = parse_u32("seed", optarg, &seed);
			break;
		case 't':
			if (!strcmp(optarg, "f32"))
				wtype = NP_GGML_F32;
			else if (!strcmp(optarg, "f16"))
				wtype = NP_GGML_F16;
			else if (!strcmp(optarg, "q8_0"))
				wtype = NP_GGML_Q8_0;
			else if (!strcmp(optarg, "q4_0"))
				wtype = NP_GGML_Q4_0;
			else
				bad = 1;
			break;
		case 'T':
			if (!strcmp(optarg, "spm"))
				tok = NP_TOK_SPM;
			else if (!strcmp(optarg, "bpe"))
				tok = NP_TOK_BPE;
			else
				bad = 1;
			break;
		case 'x':
			text_path = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'H':
			usage(stdout);
			return 0;
		default:
			bad = 1;
		}
		if (bad) {
			usage(stderr);
			return 2;
		}
	}
	if (!text_path || !out || optind != argc) {
		usage(stderr);
		return 2;
	}
	ret = npim_read_file(text_path, &text, &len);
	if (ret) {
		fprintf(stderr, "np_mkgguf: cannot read %s: %s\n", text_path,
			strerror(-ret));
		return 1;
	}
	ret = np_model_synthetic(&s, seed, &m);
	if (ret) {
		fprintf(stderr,
			"np_mkgguf: invalid shape (layers %u dim %u heads %u "
			"kv-heads %u ffn %u vocab %u): dim and ffn must be "
			"multiples of 32, heads divide dim, kv-heads divide "
			"heads\n",
			s.n_layers, s.dim, s.n_heads, s.n_kv_heads, s.ffn,
			s.vocab);
		free(text);
		return 2;
	}
	ret = np_model_write_gguf(m, wtype, tok, text, len, out);
	np_model_destroy(m);
	free(text);
	if (ret) {
		fprintf(stderr, "np_mkgguf: writing %s failed: %s\n", out,
			strerror(-ret));
		return 1;
	}
	return 0;
}
