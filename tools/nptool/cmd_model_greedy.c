// SPDX-License-Identifier: MIT
/*
 * model greedy: the greedy continuation of a prompt computed by the float
 * reference (np_ref_float), no cards: what the model itself says, to
 * compare with the cards' output (nptool run) and with the framework a
 * model was trained in. The prompt starts with BOS when the vocabulary
 * has one, as nptool run's prompts do; generation does not stop at EOS.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <np/model.h>

#include "json.h"
#include "nptool.h"

#define GREEDY_MAX 4096u /* prompt plus generated tokens */

struct greedy {
	const char *path, *tfile;
	char *text;
	size_t len;
	uint32_t n;
	struct np_gguf *g;
	struct np_model *m;
	struct np_tok *tok;
	struct np_ref_float *r;
	int32_t *ids; /* prompt, then the continuation */
	size_t n_prompt;
	char *out;
	size_t out_len;
};

static int greedy_parse(struct npt *t, struct greedy *z, int argc, char **argv)
{
	static const struct option opts[] = {
		{"tokens", required_argument, NULL, 'n'},
		{"file", required_argument, NULL, 'f'},
		{0},
	};
	int c, rc;

	while ((c = getopt_long(argc, argv, "n:f:", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			rc = npt_parse_u32(t, "--tokens", optarg, 1, &z->n);
			if (rc)
				return rc;
			if (z->n >= GREEDY_MAX)
				return npt_usage(t,
						 "--tokens %u: at most %u "
						 "tokens are generated",
						 z->n, GREEDY_MAX - 1);
			break;
		case 'f':
			z->tfile = optarg;
			break;
		default:
			return npt_usage(t, "model greedy: bad option '%s'",
					 argv[optind - 1]);
		}
	}
	if (optind >= argc || argc - optind != (z->tfile ? 1 : 2))
		return npt_usage(t, "model greedy takes FILE and PROMPT (or "
				    "FILE and -f PROMPTFILE)");
	z->path = argv[optind];
	return npt_text_arg(t, z->tfile, argv[optind + 1], &z->text, &z->len);
}

/* The model, its tokenizer, the prompt's ids and a float reference for
 * prompt plus continuation. Returns an exit code. */
static int greedy_open(struct npt *t, struct greedy *z)
{
	struct np_log lg = {.fn = npt_log_err, .opaque = t};
	size_t n = 0;
	int32_t *p = NULL;
	int rc = npt_open_gguf(t, z->path, &z->g), ret;

	if (rc)
		return rc;
	ret = np_model_from_gguf(z->g, &lg, &z->m);
	if (ret)
		return npt_file_exit(ret);
	ret = np_tok_from_gguf(z->g, &lg, &z->tok);
	if (ret) {
		npt_err(t, "%s holds no tokenizer np reads: %s", z->path,
			strerror(-ret));
		return npt_file_exit(ret);
	}
	ret = npt_encode(z->tok, z->text, z->len, true, 0, &p, &n);
	if (ret) {
		npt_err(t, "tokenizing the prompt failed: %s", strerror(-ret));
		return NPT_EXIT_DEVERR;
	}
	if (!n || n + z->n > GREEDY_MAX) {
		free(p);
		return npt_usage(t,
				 "the prompt is %zu tokens; with %u to "
				 "generate that must be 1..%u",
				 n, z->n, GREEDY_MAX);
	}
	z->ids = realloc(p, (n + z->n) * sizeof(*p));
	if (!z->ids) {
		free(p);
		return NPT_EXIT_DEVERR;
	}
	z->n_prompt = n;
	ret = np_ref_float_create(z->m, (uint32_t)(n + z->n), 1, &z->r);
	if (ret) {
		npt_err(t, "float reference of %s: %s", z->path,
			strerror(-ret));
		return NPT_EXIT_DEVERR;
	}
	return NPT_EXIT_OK;
}

/* Teacher-force the prompt, then take the argmax (lowest id on a tie)
 * z->n times. Returns an exit code. */
static int greedy_run(struct npt *t, struct greedy *z)
{
	uint32_t V = np_model_get_shape(z->m)->vocab;
	float *logits = malloc((size_t)V * sizeof(float));
	size_t pos = 0, end = z->n_prompt + z->n;
	int ret = logits ? 0 : -ENOMEM;

	for (; !ret && pos + 1 < end; pos++) {
		uint32_t best = 0;

		ret = np_ref_float_step(z->r, 0, (uint32_t)pos, z->ids[pos],
					logits);
		if (ret || pos + 1 < z->n_prompt)
			continue;
		for (uint32_t v = 1; v < V; v++)
			if (logits[v] > logits[best])
				best = v;
		z->ids[pos + 1] = (int32_t)best;
	}
	free(logits);
	if (ret) {
		npt_err(t, "float reference step %zu failed: %s", pos,
			strerror(-ret));
		return NPT_EXIT_DEVERR;
	}
	for (size_t cap = 16 * (size_t)z->n + 16;;) {
		free(z->out);
		z->out = malloc(cap + 1);
		if (!z->out)
			return NPT_EXIT_DEVERR;
		ret = np_tok_decode(z->tok, z->ids + z->n_prompt, z->n, z->out,
				    cap, &z->out_len);
		if (ret != -ENOSPC)
			break;
		cap = z->out_len;
	}
	if (ret) {
		npt_err(t, "decoding the continuation failed: %s",
			strerror(-ret));
		return NPT_EXIT_DEVERR;
	}
	z->out[z->out_len] = 0;
	return NPT_EXIT_OK;
}

static void ids_json(struct npt_json *j, const char *key, const int32_t *v,
		     size_t n)
{
	npt_json_key(j, key);
	npt_json_arr_open(j);
	for (size_t i = 0; i < n; i++)
		npt_json_int(j, v[i]);
	npt_json_arr_close(j);
}

static void greedy_report(struct npt *t, const struct greedy *z)
{
	if (t->j) {
		ids_json(t->j, "prompt_ids", z->ids, z->n_prompt);
		ids_json(t->j, "ids", z->ids + z->n_prompt, z->n);
		npt_json_kstr(t->j, "text", z->out);
		return;
	}
	npt_print_text(stdout, z->out, z->out_len);
	printf("\nids:");
	for (size_t i = 0; i < z->n; i++)
		printf(" %d", z->ids[z->n_prompt + i]);
	printf("\n");
}

int npt_model_greedy(struct npt *t, int argc, char **argv)
{
	struct greedy z = {.n = 32};
	int rc = greedy_parse(t, &z, argc, argv);

	rc = rc ? rc : greedy_open(t, &z);
	rc = rc ? rc : greedy_run(t, &z);
	if (!rc)
		greedy_report(t, &z);
	free(z.out);
	free(z.ids);
	free(z.text);
	np_ref_float_destroy(z.r);
	np_tok_destroy(z.tok);
	np_model_destroy(z.m);
	np_gguf_close(z.g);
	return rc;
}
