// SPDX-License-Identifier: MIT
/*
 * np_bench_model: the figures of the model pipeline.
 *
 *   np_bench_model accuracy MODEL.gguf TEXT [N [PRECISION]]
 *       int reference vs float reference, teacher forced over the first N
 *       tokens of TEXT (calibrated on the same text): top-1 agreement,
 *       logit cosine and KL divergence (np/quality.h), at PRECISION
 *       (np_precision_parse; default the library's).
 *   np_bench_model compile [granite3b|medium|tiny] [--images [CARD]]
 *       plan (and with --images render every card image, or only CARD)
 *       for a seed-derived model of that shape; wall-clock times.
 *   np_bench_model outliers OUT.gguf FACTOR TEXT
 *       the tiny model with four residual outlier channels (FACTOR times
 *       larger), for the PTQ figures of docs/numerics.md.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "np_abi.h"
#include "np/model.h"
#include "np/quality.h"
#include "npim.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void log_stderr(void *opaque, enum np_log_level level, const char *msg)
{
	fprintf(stderr, "%s\n", msg);
}

static const struct np_log lg = {.fn = log_stderr, .opaque = NULL};

static int accuracy(const char *path, const char *text_path, size_t n_max,
		    enum np_precision prec)
{
	struct np_gguf *g = NULL;
	struct np_model *m = NULL;
	struct np_tok *tok = NULL;
	struct np_quant_calib *cal = NULL;
	struct np_compiled *c = NULL;
	struct np_ref_int *ri = NULL;
	struct np_ref_float *rf = NULL;
	size_t len, n = 0;
	char *text = NULL;
	int32_t *ids = NULL, *il = NULL;
	float *fl = NULL;
	double t0, t_cal, t_comp, t_int = 0, t_f = 0;
	size_t top5 = 0;
	struct np_quality_tok *tq = NULL;
	struct np_quality_sum qs;
	float *il2 = NULL;
	uint32_t V;
	int ret;
	struct np_compile_opts o = {.batch = 1, .precision = prec};

	ret = npim_read_file(text_path, &text, &len);
	if (ret)
		return ret;
	ret = np_gguf_open(path, &lg, &g);
	ret = ret ? ret : np_model_from_gguf(g, &lg, &m);
	ret = ret ? ret : np_tok_from_gguf(g, &lg, &tok);
	if (ret)
		goto out;
	ids = malloc((len + 1) * 4 * sizeof(*ids));
	ret = np_tok_encode(tok, text, len, ids, (len + 1) * 4, &n);
	if (ret)
		goto out;
	if (n > n_max)
		n = n_max;
	o.max_seq = (uint32_t)n;
	V = np_model_get_shape(m)->vocab;
	t0 = now();
	ret = np_quant_calibrate(m, ids, n, &cal);
	t_cal = now() - t0;
	t0 = now();
	ret = ret ? ret : np_compile(m, cal, &o, &lg, &c);
	ret = ret ? ret : np_ref_int_create(c, &ri);
	t_comp = now() - t0;
	ret = ret ? ret : np_ref_float_create(m, (uint32_t)n, 1, &rf);
	il = malloc(V * sizeof(*il));
	fl = malloc(V * sizeof(*fl));
	if (ret || !il || !fl)
		goto out;
	tq = calloc(n, sizeof(*tq));
	il2 = malloc(V * sizeof(*il2));
	if (!tq || !il2)
		goto out;
	for (size_t i = 0; i < n; i++) {
		double s = np_compiled_logit_scale(c);
		uint32_t af = 0;

		t0 = now();
		ret = np_ref_int_step(ri, 0, (uint32_t)i, ids[i], il);
		t_int += now() - t0;
		t0 = now();
		ret = ret ? ret :
			    np_ref_float_step(rf, 0, (uint32_t)i, ids[i], fl);
		t_f += now() - t0;
		if (ret)
			goto out;
		for (uint32_t v = 0; v < V; v++) {
			il2[v] = (float)(il[v] * s);
			if (fl[v] > fl[af])
				af = v;
		}
		/* np/quality.h: KLD, same top token, cosine */
		ret = np_quality_compare(fl, il2, V, &tq[i]);
		if (ret)
			goto out;
		{
			/* rank of the float top-1 among the int logits */
			uint32_t above = 0;

			for (uint32_t v = 0; v < V; v++)
				above += il[v] > il[af];
			top5 += above < 5;
		}
	}
	ret = np_quality_summarize(tq, n, &qs);
	if (ret)
		goto out;
	printf("model %s: %u layers dim %u heads %u/%u ffn %u vocab %u, "
	       "tokenizer %s\n",
	       path, np_model_get_shape(m)->n_layers,
	       np_model_get_shape(m)->dim, np_model_get_shape(m)->n_heads,
	       np_model_get_shape(m)->n_kv_heads, np_model_get_shape(m)->ffn, V,
	       np_tok_kind(tok) == NP_TOK_SPM ? "llama (SPM)" : "gpt2 (BPE)");
	printf("tokens %zu (text %zu bytes), calibration %.2f s, "
	       "compile+render %.2f s\n",
	       n, len, t_cal, t_comp);
	printf("top-1 agreement int vs float: %.1f%%\n", 100.0 * qs.same_top);
	printf("float top-1 within int top-5: %.1f%%\n", 100.0 * top5 / n);
	printf("mean logit cosine int vs float: %.4f\n", qs.cos_mean);
	printf("KL divergence int vs float: mean %.6f, p99 %.6f\n", qs.kld_mean,
	       qs.kld_p99);
	printf("per token: int reference %.2f ms, float reference %.2f ms\n",
	       1e3 * t_int / n, 1e3 * t_f / n);
out:
	if (ret)
		fprintf(stderr, "accuracy: %s\n", strerror(-ret));
	free(il);
	free(il2);
	free(tq);
	free(fl);
	free(ids);
	free(text);
	np_ref_int_destroy(ri);
	np_ref_float_destroy(rf);
	np_compiled_destroy(c);
	np_quant_calib_destroy(cal);
	np_tok_destroy(tok);
	np_model_destroy(m);
	np_gguf_close(g);
	return ret;
}

static int compile_bench(const char *shape, int images, int only)
{
	struct np_model_shape s = {14,	  4096, 32,	     8,	   14336,
				   49152, 4096, 10000000.0f, 1e-5f};
	struct np_model *m = NULL;
	struct np_quant_calib *cal = NULL;
	struct np_compiled *c = NULL;
	uint8_t *sram = NULL;
	double t0, t_plan, t_img = 0;
	char desc[8192];
	int ret;

	if (!strcmp(shape, "medium"))
		s = (struct np_model_shape){14,	   1024, 16,	   4,	 2816,
					    32000, 2048, 10000.0f, 1e-5f};
	else if (!strcmp(shape, "tiny"))
		s = (struct np_model_shape){14,	  256,	8,	  2,	704,
					    4096, 2048, 10000.0f, 1e-5f};
	ret = np_model_synthetic(&s, 1, &m);
	ret = ret ? ret : np_quant_calib_default(m, &cal);
	if (ret)
		goto out;
	t0 = now();
	ret = np_compile(m, cal, NULL, &lg, &c);
	t_plan = now() - t0;
	if (ret)
		goto out;
	np_compiled_describe(c, desc, sizeof(desc));
	printf("%s", desc);
	printf("plan: %.3f ms\n", t_plan * 1e3);
	if (images) {
		sram = malloc(NP_SRAM_SIZE);
		if (!sram) {
			ret = -ENOMEM;
			goto out;
		}
		for (uint32_t i = 0; i < np_compiled_n_cards(c); i++) {
			double t;

			if (only >= 0 && i != (uint32_t)only)
				continue;
			memset(sram, 0, NP_SRAM_SIZE);
			t0 = now();
			ret = np_compile_card_image(c, i, sram);
			t = now() - t0;
			t_img += t;
			if (ret)
				goto out;
			printf("card %2u image: %.2f s\n", i, t);
		}
		printf("all card images (quantise + layout): %.2f s\n", t_img);
	}
out:
	if (ret)
		fprintf(stderr, "compile: %s\n", strerror(-ret));
	free(sram);
	np_compiled_destroy(c);
	np_quant_calib_destroy(cal);
	np_model_destroy(m);
	return ret;
}

/*
 * The tiny demo model (seed 1) with four residual channels (3, 77, 150,
 * 201: embedding columns times `factor`), the massive activations of
 * trained models, written in F16 with a vocabulary trained on TEXT: what
 * the PTQ figures of docs/numerics.md call "outlier".
 */
static int outliers(const char *out, double factor, const char *text_path)
{
	static const uint32_t ch[] = {3, 77, 150, 201};
	struct np_model_shape s;
	struct np_ptq_opts o = {0};
	struct np_model *m = NULL, *c = NULL;
	char *text = NULL;
	size_t len;
	int ret;

	np_model_shape_preset("tiny", &s);
	ret = npim_read_file(text_path, &text, &len);
	ret = ret ? ret : np_model_synthetic(&s, 1, &m);
	/* no flag: a materialised copy whose weights can be edited */
	ret = ret ? ret : np_model_ptq(m, NULL, 0, &o, &lg, &c);
	if (!ret) {
		float *e = c->mem[s.n_layers * 9]; /* token embeddings */

		for (uint32_t r = 0; r < s.vocab; r++)
			for (size_t j = 0; j < sizeof(ch) / sizeof(ch[0]); j++)
				e[(size_t)r * s.dim + ch[j]] *= (float)factor;
		ret = np_model_write_gguf(c, NP_GGML_F16, NP_TOK_SPM, text, len,
					  out);
	}
	if (ret)
		fprintf(stderr, "outliers: %s\n", strerror(-ret));
	np_model_destroy(c);
	np_model_destroy(m);
	free(text);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "outliers"))
		return outliers(argv[2], atof(argv[3]), argv[4]) ? 1 : 0;
	if (argc >= 4 && !strcmp(argv[1], "accuracy")) {
		enum np_precision p = NP_PREC_DEFAULT;

		if (argc > 5 && np_precision_parse(argv[5], &p)) {
			fprintf(stderr,
				"np_bench_model: precision %s: modes "
				"are a8c8w4, w4a4, w8a8, w2a8\n",
				argv[5]);
			return 2;
		}
		return accuracy(argv[2], argv[3],
				argc > 4 ? strtoul(argv[4], NULL, 0) : 256, p) ?
			       1 :
			       0;
	}
	if (argc >= 2 && !strcmp(argv[1], "compile"))
		return compile_bench(argc > 2 ? argv[2] : "granite3b",
				     argc > 3 && !strcmp(argv[3], "--images"),
				     argc > 4 ? atoi(argv[4]) : -1) ?
			       1 :
			       0;
	fprintf(stderr,
		"usage: np_bench_model accuracy MODEL.gguf TEXT [N "
		"[PRECISION]]\n"
		"       np_bench_model compile [granite3b|medium|tiny] "
		"[--images [CARD]]\n"
		"       np_bench_model outliers OUT.gguf FACTOR TEXT\n");
	return 2;
}
