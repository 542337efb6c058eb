// SPDX-License-Identifier: MIT
/*
 * compile: the mapping of a model onto cards and the SRAM budget, through
 * libnpmodel exactly as np_model_load() does it; -o writes the card
 * images. Nothing here touches a card.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <np/model.h>

#include "np_abi.h"
#include "nptool.h"

#define MODEL_CALIB_TOKENS 64 /* as np_model_load() */

struct writer {
	const struct np_compiled *c;
	const char *dir;
	int ret;
};

static void *write_thread(void *opaque)
{
	struct writer *w = opaque;

	w->ret = np_compile_write(w->c, w->dir);
	return NULL;
}

static int card_path(char *buf, size_t len, const char *dir, uint32_t i)
{
	int n = snprintf(buf, len, "%s/card-%02u.npimg", dir, i);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/*
 * np_compile_write renders and writes card by card; the bar counts the
 * card images that exist. The ones it will write are removed first, so
 * an image from an earlier run is never counted.
 */
static int write_images(struct npt *t, const struct np_compiled *c,
			const char *dir, double *secs)
{
	struct writer w = {c, dir, 0};
	uint32_t n = np_compiled_n_cards(c);
	struct npt_progress bar;
	char path[4096];
	pthread_t th;
	double t0 = npt_now();
	int ret;

	if (mkdir(dir, 0755) && errno != EEXIST) {
		npt_err(t, "cannot create directory %s: %s", dir,
			strerror(errno));
		return NPT_EXIT_DEVERR;
	}
	for (uint32_t i = 0; i < n; i++) {
		if (card_path(path, sizeof(path), dir, i)) {
			npt_err(t, "-o %s: path too long", dir);
			return NPT_EXIT_USAGE;
		}
		if (unlink(path) && errno != ENOENT) {
			npt_err(t, "cannot replace %s: %s", path,
				strerror(errno));
			return NPT_EXIT_DEVERR;
		}
	}
	ret = pthread_create(&th, NULL, write_thread, &w);
	if (ret) {
		npt_err(t, "cannot start the image writer: %s", strerror(ret));
		return NPT_EXIT_DEVERR;
	}
	npt_progress_begin(t, &bar, "rendering card images", n);
	for (;;) {
		uint32_t done = 0;

		if (pthread_tryjoin_np(th, NULL) == 0)
			break;
		for (uint32_t i = 0; i < n; i++)
			if (!card_path(path, sizeof(path), dir, i) &&
			    !access(path, F_OK))
				done++;
		npt_progress_update(&bar, done);
		usleep(100000);
	}
	npt_progress_end(&bar);
	*secs = npt_now() - t0;
	if (w.ret) {
		npt_err(t, "writing card images to %s failed: %s", dir,
			strerror(-w.ret));
		return NPT_EXIT_DEVERR;
	}
	return NPT_EXIT_OK;
}

/* Activation scales from the first tokens of a text, as np_model_load. */
static int calibrate(struct npt *t, const struct np_gguf *g,
		     const struct np_model *m, const char *path,
		     struct np_quant_calib **calib)
{
	struct np_log lg = {.fn = npt_log_err, .opaque = t};
	struct np_tok *tok = NULL;
	int32_t *ids = NULL;
	char *text = NULL;
	size_t len = 0, n = 0;
	int ret;

	ret = npt_read_file(path, NPT_TEXT_MAX, &text, &len);
	if (ret) {
		npt_err(t, "cannot read calibration text %s: %s", path,
			strerror(-ret));
		return NPT_EXIT_USAGE;
	}
	/* a prefix is enough: a token covers at most 16 bytes here */
	if (len > 16 * MODEL_CALIB_TOKENS)
		len = 16 * MODEL_CALIB_TOKENS;
	ret = np_tok_from_gguf(g, &lg, &tok);
	ret = ret ? ret : npt_encode(tok, text, len, false, 0, &ids, &n);
	if (!ret && !n)
		ret = -EINVAL;
	if (!ret)
		ret = np_quant_calibrate(
			m, ids, n < MODEL_CALIB_TOKENS ? n : MODEL_CALIB_TOKENS,
			calib);
	free(ids);
	free(text);
	np_tok_destroy(tok);
	if (ret) {
		npt_err(t, "calibration on %s failed: %s", path,
			strerror(-ret));
		return ret == -ENOMEM ? NPT_EXIT_DEVERR : NPT_EXIT_USAGE;
	}
	return NPT_EXIT_OK;
}

static const char *kind_name(int kind)
{
	return kind == NP_CARD_LAYERS ? "layers" :
	       kind == NP_CARD_OUTPUT ? "output" :
					"unused";
}

static void compile_json(struct npt_json *j, const char *path,
			 const struct np_model_shape *s,
			 const struct np_compile_opts *o,
			 const struct np_compiled *c)
{
	uint64_t sram = 0, w = 0, kv = 0;
	uint32_t n = np_compiled_n_cards(c);

	npt_json_kstr(j, "path", path);
	npt_shape_json(j, s);
	npt_json_key(j, "options");
	npt_json_obj_open(j);
	npt_json_kuint(j, "cards", o->n_cards);
	npt_json_kuint(j, "batch", o->batch);
	npt_json_kuint(j, "max_seq", o->max_seq);
	npt_json_kstr(j, "precision", np_precision_name(o->precision));
	if (o->layer_precision && *o->layer_precision)
		npt_json_kstr(j, "layer_precision", o->layer_precision);
	if (o->out_cards)
		npt_json_kuint(j, "out_cards", o->out_cards);
	else
		npt_json_knull(j, "out_cards");
	npt_json_obj_close(j);
	npt_json_key(j, "budget");
	npt_json_obj_open(j);
	npt_json_kuint(j, "cores", NP_NUM_CORES);
	npt_json_kuint(j, "core_bytes", NP_CORE_SRAM_SIZE);
	npt_json_kuint(j, "card_bytes", NP_SRAM_SIZE);
	npt_json_obj_close(j);
	npt_json_key(j, "cards");
	npt_json_arr_open(j);
	for (uint32_t i = 0; i < n; i++) {
		const struct np_card_plan *p = np_compiled_card(c, i);
		bool layers = p->kind == NP_CARD_LAYERS;

		npt_json_obj_open(j);
		npt_json_kuint(j, "card", i);
		npt_json_kstr(j, "kind", kind_name(p->kind));
		if (layers) {
			npt_json_kuint(j, "first_layer", p->first_layer);
			npt_json_kuint(j, "layers", p->n_layers);
			npt_json_knull(j, "vocab_begin");
			npt_json_knull(j, "vocab_end");
		} else {
			npt_json_knull(j, "first_layer");
			npt_json_knull(j, "layers");
			npt_json_kuint(j, "vocab_begin", p->vocab_begin);
			npt_json_kuint(j, "vocab_end", p->vocab_end);
		}
		npt_json_kuint(j, "core_bytes", p->core_bytes);
		npt_json_kuint(j, "sram_bytes", p->core_bytes * NP_NUM_CORES);
		npt_json_kuint(j, "weight_bytes", p->weight_bytes);
		npt_json_kuint(j, "kv_bytes", p->kv_bytes);
		npt_json_kuint(j, "prog_bytes", p->prog_bytes);
		npt_json_kdouble(j, "sram_fraction",
				 (double)p->core_bytes / NP_CORE_SRAM_SIZE);
		npt_json_obj_close(j);
		sram += p->core_bytes * NP_NUM_CORES;
		w += p->weight_bytes;
		kv += p->kv_bytes;
	}
	npt_json_arr_close(j);
	npt_json_key(j, "total");
	npt_json_obj_open(j);
	npt_json_kuint(j, "cards", n);
	npt_json_kuint(j, "sram_bytes", sram);
	npt_json_kuint(j, "weight_bytes", w);
	npt_json_kuint(j, "kv_bytes", kv);
	npt_json_kdouble(j, "sram_fraction",
			 (double)sram / ((double)n * NP_SRAM_SIZE));
	npt_json_obj_close(j);
}

static void compile_text(const char *path, const struct np_model_shape *s,
			 const struct np_compiled *c)
{
	uint32_t n = np_compiled_n_cards(c);
	uint64_t sram = 0, w = 0, kv = 0;
	char buf[16384], a[32], b[32], d[32], e[32];

	printf("model     %s\n", path);
	npt_shape_text(s);
	printf("budget    %u MiB per card = %u cores x %u KiB\n\n",
	       NP_SRAM_SIZE >> 20, NP_NUM_CORES, NP_CORE_SRAM_SIZE >> 10);
	np_compiled_describe(c, buf, sizeof(buf));
	fputs(buf, stdout);
	for (uint32_t i = 0; i < n; i++) {
		const struct np_card_plan *p = np_compiled_card(c, i);

		sram += p->core_bytes * NP_NUM_CORES;
		w += p->weight_bytes;
		kv += p->kv_bytes;
	}
	printf("\ntotal     %u cards, %s of %s SRAM used (%.1f %%): weights "
	       "%s, KV cache %s\n",
	       n, npt_fmt_size(a, sizeof(a), sram),
	       npt_fmt_size(b, sizeof(b), (uint64_t)n * NP_SRAM_SIZE),
	       100.0 * (double)sram / ((double)n * NP_SRAM_SIZE),
	       npt_fmt_size(d, sizeof(d), w), npt_fmt_size(e, sizeof(e), kv));
}

/* One compile: its options, the model and what it compiled to. */
struct compile {
	struct np_compile_opts o;
	const char *path, *dir, *calib_path;
	struct np_gguf *g;
	struct np_model *m;
	struct np_quant_calib *calib;
	struct np_compiled *c;
	double secs; /* writing the images */
};

static int compile_parse(struct npt *t, struct compile *k, int argc,
			 char **argv)
{
	static const struct option opts[] = {
		{"cards", required_argument, NULL, 'c'},
		{"batch", required_argument, NULL, 'b'},
		{"max-seq", required_argument, NULL, 's'},
		{"out-cards", required_argument, NULL, 'k'},
		{"calib", required_argument, NULL, 'C'},
		{"out", required_argument, NULL, 'o'},
		{"precision", required_argument, NULL, 'P'},
		{"layer-precision", required_argument, NULL, 'L'},
		{0},
	};
	struct np_compile_opts *o = &k->o;
	int ch, rc = 0;

	while ((ch = getopt_long(argc, argv, "c:b:o:", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			rc = npt_parse_u32(t, "--cards", optarg, 0,
					   &o->n_cards);
			break;
		case 'b':
			rc = npt_parse_u32(t, "--batch", optarg, 1, &o->batch);
			break;
		case 's':
			rc = npt_parse_u32(t, "--max-seq", optarg, 1,
					   &o->max_seq);
			break;
		case 'k':
			rc = npt_parse_u32(t, "--out-cards", optarg, 0,
					   &o->out_cards);
			break;
		case 'C':
			k->calib_path = optarg;
			break;
		case 'P': {
			enum np_precision pr;

			if (np_precision_parse(optarg, &pr))
				return npt_usage(t,
						 "--precision '%s': modes are "
						 "a8c8w4, w4a4, w8a8, w2a8",
						 optarg);
			o->precision = (uint32_t)pr;
			break;
		}
		case 'L':
			o->layer_precision = optarg;
			break;
		case 'o':
			k->dir = optarg;
			break;
		default:
			return npt_usage(t, "compile: bad option '%s'",
					 argv[optind - 1]);
		}
		if (rc)
			return rc;
	}
	if (argc - optind != 1)
		return npt_usage(t, "compile takes one GGUF FILE");
	if (!o->n_cards)
		return npt_usage(t, "--cards must be at least 1");
	if (k->calib_path && !k->dir)
		return npt_usage(t, "--calib only matters with -o DIR (the "
				    "card images)");
	k->path = argv[optind];
	return NPT_EXIT_OK;
}

/* The model, its activation scales (for images) and the mapping. */
static int compile_setup(struct npt *t, struct compile *k)
{
	struct np_log lg = {.fn = npt_log_err, .opaque = t};
	int rc, ret;

	rc = npt_open_gguf(t, k->path, &k->g);
	if (rc)
		return rc;
	ret = np_model_from_gguf(k->g, &lg, &k->m);
	if (ret) {
		npt_err(t, "%s is not a model np compiles (see above)",
			k->path);
		return npt_file_exit(ret);
	}
	if (k->dir) {
		if (k->calib_path) {
			rc = calibrate(t, k->g, k->m, k->calib_path, &k->calib);
		} else {
			ret = np_quant_calib_default(k->m, &k->calib);
			rc = ret ? NPT_EXIT_DEVERR : NPT_EXIT_OK;
		}
		if (rc)
			return rc;
	}
	ret = np_compile(k->m, k->calib, &k->o, &lg, &k->c);
	if (ret == -E2BIG)
		return NPT_EXIT_FAIL;
	if (!ret)
		k->o = *np_compiled_opts(k->c); /* what it compiled for */
	if (ret)
		return ret == -EINVAL ? NPT_EXIT_USAGE : NPT_EXIT_DEVERR;
	return NPT_EXIT_OK;
}

/* The mapping, and what -o wrote unless writing failed (rc). */
static void compile_report(struct npt *t, const struct compile *k, int rc)
{
	const struct np_model_shape *s = np_model_get_shape(k->m);

	if (!t->j) {
		compile_text(k->path, s, k->c);
		if (k->dir && !rc)
			printf("wrote     %u card images (card-NN.npimg) and "
			       "host.nphost to %s in %.1f s, %s activation "
			       "scales\n",
			       np_compiled_n_cards(k->c), k->dir, k->secs,
			       k->calib_path ? "calibrated" : "default");
		return;
	}
	compile_json(t->j, k->path, s, &k->o, k->c);
	if (k->dir && !rc) {
		npt_json_key(t->j, "output");
		npt_json_obj_open(t->j);
		npt_json_kstr(t->j, "dir", k->dir);
		npt_json_kuint(t->j, "images", np_compiled_n_cards(k->c));
		npt_json_kstr(t->j, "calibration",
			      k->calib_path ? k->calib_path : "default");
		npt_json_kdouble(t->j, "seconds", k->secs);
		npt_json_obj_close(t->j);
	} else {
		npt_json_knull(t->j, "output");
	}
}

int npt_cmd_compile(struct npt *t, int argc, char **argv)
{
	/* sessions and tokens left to the compiler: the context shrinks
	 * when the KV cache does not fit (np_compile) */
	struct compile k = {.o = {.n_cards = NP_DEFAULT_CARDS}};
	int rc = compile_parse(t, &k, argc, argv);

	if (rc)
		return rc;
	rc = compile_setup(t, &k);
	if (!rc) {
		if (k.dir)
			rc = write_images(t, k.c, k.dir, &k.secs);
		compile_report(t, &k, rc);
	}
	np_compiled_destroy(k.c);
	np_quant_calib_destroy(k.calib);
	np_model_destroy(k.m);
	np_gguf_close(k.g);
	return rc;
}
