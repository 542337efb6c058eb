// SPDX-License-Identifier: MIT
/*
 * model and compile against libnp's model pipeline: what nptool reports
 * must be what np/model.h says about the same file (the oracle is linked
 * in), models nptool writes must be np_model_write_gguf's, card images
 * np_compile_write's, and broken files must be refused with exit 2 and a
 * reason, never a crash.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <np/model.h>

#include "np_abi.h"
#include "test.h"

static char tmp[64];

static void tmp_setup(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/npt-model-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
}

static void rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[512];

	if (!d)
		return;
	while ((e = readdir(d))) {
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (!lstat(p, &st) && S_ISDIR(st.st_mode))
			rm_tree(p);
		else
			unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

static void tmp_teardown(void)
{
	rm_tree(tmp);
}

static char *tmp_path(const char *name)
{
	char *p;

	ck_assert_int_ge(asprintf(&p, "%s/%s", tmp, name), 0);
	return p;
}

static void *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	void *buf;
	long n;

	ck_assert_msg(f, "cannot open %s", path);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	ck_assert_int_ge(n, 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void write_all(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

static void same_files(const char *a, const char *b)
{
	size_t la, lb;
	void *x = read_all(a, &la), *y = read_all(b, &lb);

	ck_assert_msg(la == lb && !memcmp(x, y, la), "%s and %s differ", a, b);
	free(x);
	free(y);
}

static void check_shape(const struct tst_jv *o, const struct np_model_shape *s)
{
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(o->type, TST_JV_OBJ);
	ck_assert_double_eq(tst_jv_num(o, "layers"), s->n_layers);
	ck_assert_double_eq(tst_jv_num(o, "dim"), s->dim);
	ck_assert_double_eq(tst_jv_num(o, "heads"), s->n_heads);
	ck_assert_double_eq(tst_jv_num(o, "kv_heads"), s->n_kv_heads);
	ck_assert_double_eq(tst_jv_num(o, "head_dim"), s->dim / s->n_heads);
	ck_assert_double_eq(tst_jv_num(o, "ffn"), s->ffn);
	ck_assert_double_eq(tst_jv_num(o, "vocab"), s->vocab);
	ck_assert_double_eq(tst_jv_num(o, "context"), s->ctx);
	ck_assert_double_eq_tol(tst_jv_num(o, "rope_base"), s->rope_base,
				s->rope_base * 1e-6);
	ck_assert_double_eq_tol(tst_jv_num(o, "norm_eps"), s->norm_eps, 1e-12);
}

/* The demo model as libnp reads it */
struct oracle {
	struct np_gguf *g;
	struct np_model *m;
	struct np_tok *tok;
};

static void oracle_open(struct oracle *o, const char *path)
{
	ck_assert_int_eq(np_gguf_open(path, NULL, &o->g), 0);
	ck_assert_int_eq(np_model_from_gguf(o->g, NULL, &o->m), 0);
	ck_assert_int_eq(np_tok_from_gguf(o->g, NULL, &o->tok), 0);
}

static void oracle_close(struct oracle *o)
{
	np_tok_destroy(o->tok);
	np_model_destroy(o->m);
	np_gguf_close(o->g);
}

START_TEST(test_mkgguf_writes_the_demo_model)
{
	char *out = tmp_path("tiny.gguf");
	struct np_model_shape s;
	struct tst_run r;
	struct tst_jv *e;
	struct stat st;

	/* the demo model is mkgguf --shape tiny on the sample text */
	tst_run(&r, "--json", "model", "mkgguf", "--shape", "tiny", "--text",
		NPT_SAMPLE_TEXT, "--out", out, NULL);
	e = tst_envelope(&r, "model", 0);
	ck_assert_str_eq(tst_jv_str(e, "subcommand"), "mkgguf");
	ck_assert_str_eq(tst_jv_str(e, "path"), out);
	ck_assert_str_eq(tst_jv_str(e, "type"),
			 np_ggml_type_name(NP_GGML_Q8_0));
	ck_assert_str_eq(tst_jv_str(e, "tokenizer"), "spm");
	ck_assert_int_eq(np_model_shape_preset("tiny", &s), 0);
	check_shape(tst_jv_get(e, "shape"), &s);
	ck_assert_int_eq(stat(out, &st), 0);
	ck_assert_double_eq(tst_jv_num(e, "file_bytes"), (double)st.st_size);
	tst_run_free(&r);
	same_files(out, NPT_DEMO_MODEL);
	free(out);
}
END_TEST

START_TEST(test_mkgguf_options)
{
	char *out = tmp_path("bpe.gguf");
	struct oracle o;
	struct tst_run r;
	const struct np_gguf_tensor *te;

	tst_run(&r, "model", "mkgguf", "--tok", "bpe", "--type", "q4_0",
		"--seed", "7", "--text", NPT_SAMPLE_TEXT, "--out", out, NULL);
	ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
	ck_assert_ptr_nonnull(strstr(r.out, out));
	tst_run_free(&r);
	oracle_open(&o, out);
	ck_assert_int_eq(np_tok_kind(o.tok), NP_TOK_BPE);
	te = np_gguf_find_tensor(o.g, "blk.0.attn_q.weight");
	ck_assert_ptr_nonnull(te);
	ck_assert_uint_eq(te->type, NP_GGML_Q4_0);
	oracle_close(&o);
	free(out);
}
END_TEST

/* --arch: the family's keys and tensors; an unknown one names the rest */
START_TEST(test_mkgguf_arch)
{
	char *out = tmp_path("qwen2.gguf");
	struct oracle o;
	struct tst_run r;
	const char *arch;
	size_t len;

	tst_run(&r, "--json", "model", "mkgguf", "--arch", "qwen2", "--layers",
		"2", "--text", NPT_SAMPLE_TEXT, "--out", out, NULL);
	ck_assert_str_eq(tst_jv_str(tst_envelope(&r, "model", 0), "arch"),
			 "qwen2");
	tst_run_free(&r);
	oracle_open(&o, out);
	ck_assert_int_eq(
		np_gguf_get_str(o.g, "general.architecture", &arch, &len), 0);
	ck_assert_int_eq(len, 5);
	ck_assert_int_eq(memcmp(arch, "qwen2", 5), 0);
	ck_assert_ptr_nonnull(np_gguf_find_tensor(o.g, "blk.1.attn_k.bias"));
	oracle_close(&o);
	tst_run(&r, "model", "mkgguf", "--arch", "falcon", "--text",
		NPT_SAMPLE_TEXT, "--out", out, NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "no model family 'falcon'; np "
					    "generates 'llama', 'llama3', "
					    "'mistral', 'granite', 'qwen2'"));
	tst_run_free(&r);
	unlink(out);
	free(out);
}
END_TEST

/* The small shape the --weights tests use, as mkgguf options */
static const struct np_model_shape wshape = {.n_layers = 2,
					     .dim = 64,
					     .n_heads = 4,
					     .n_kv_heads = 2,
					     .ffn = 96,
					     .vocab = 300,
					     .ctx = 2048,
					     .rope_base = 10000.0f,
					     .norm_eps = 1e-5f};
#define WSHAPE_OPTS                                                        \
	"--layers", "2", "--dim", "64", "--heads", "4", "--kv-heads", "2", \
		"--ffn", "96", "--vocab", "300"

/* A seed-derived model's floats in --weights order to path; n floats,
 * less `drop` */
static void write_weights(const struct np_model *m, const char *path,
			  size_t drop)
{
	const struct np_model_shape *s = np_model_get_shape(m);
	size_t n = np_model_n_floats(s), k = 0;
	float *w = malloc(n * sizeof(float));
	FILE *f;

	ck_assert_ptr_nonnull(w);
	for (int l = -1; l <= (int)s->n_layers; l++) {
		int first = l < 0 || l == (int)s->n_layers ? NP_T_OUT_NORM : 0;
		int last = l < 0		 ? NP_T_TOK_EMBD :
			   l == (int)s->n_layers ? NP_T_OUTPUT :
						   NP_T_DOWN;

		if (l < 0)
			first = NP_T_TOK_EMBD;
		for (int t = first; t <= last; t++) {
			uint32_t rows, cols;

			np_model_dims(m, t, &rows, &cols);
			for (uint32_t r = 0; r < rows; r++, k += cols)
				ck_assert_int_eq(np_model_row(m, t,
							      l < 0 ? 0 : l, r,
							      w + k),
						 0);
		}
	}
	ck_assert_uint_eq(k, n);
	f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(w, sizeof(float), n - drop, f), n - drop);
	fclose(f);
	free(w);
}

/* --weights: the file's floats become the GGUF's tensors, exactly (F32);
 * a file of the wrong size is a usage error naming both sizes */
START_TEST(test_mkgguf_weights)
{
	char *wpath = tmp_path("w.f32"), *out = tmp_path("w.gguf");
	struct np_model *syn = NULL;
	struct oracle o;
	struct tst_run r;
	float a[96], b[96];

	ck_assert_int_eq(np_model_synthetic(&wshape, 3, &syn), 0);
	write_weights(syn, wpath, 0);
	tst_run(&r, "--json", "model", "mkgguf", WSHAPE_OPTS, "--type", "f32",
		"--weights", wpath, "--text", NPT_SAMPLE_TEXT, "--out", out,
		NULL);
	ck_assert_str_eq(tst_jv_str(tst_envelope(&r, "model", 0), "weights"),
			 wpath);
	tst_run_free(&r);
	oracle_open(&o, out);
	for (int t = 0; t < NP_T_COUNT; t++) {
		uint32_t rows, cols;

		np_model_dims(syn, t, &rows, &cols);
		for (uint32_t l = 0; l < wshape.n_layers; l++)
			for (uint32_t i = 0; i < rows; i++) {
				ck_assert_int_eq(np_model_row(syn, t, l, i, a),
						 0);
				ck_assert_int_eq(np_model_row(o.m, t, l, i, b),
						 0);
				ck_assert_int_eq(memcmp(a, b, cols * 4), 0);
			}
	}
	oracle_close(&o);
	write_weights(syn, wpath, 1);
	tst_run(&r, "model", "mkgguf", WSHAPE_OPTS, "--weights", wpath,
		"--text", NPT_SAMPLE_TEXT, "--out", out, NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_msg(strstr(r.err, "needs") && strstr(r.err, "give the shape"),
		      "%s", r.err);
	tst_run_free(&r);
	np_model_destroy(syn);
	free(out);
	free(wpath);
}
END_TEST

/* model greedy: the float reference's argmax continuation, BOS first */
START_TEST(test_greedy)
{
	char *out = tmp_path("g.gguf");
	const char *prompt = "The lighthouse";
	struct np_ref_float *rf = NULL;
	struct tst_jv *e, *pids, *ids;
	struct oracle o;
	struct tst_run r;
	float logits[300];
	int32_t tok;
	size_t np;

	tst_run(&r, "model", "mkgguf", WSHAPE_OPTS, "--text", NPT_SAMPLE_TEXT,
		"--out", out, NULL);
	ck_assert_msg(r.status == 0, "%s", r.err);
	tst_run_free(&r);
	tst_run(&r, "--json", "model", "greedy", "-n", "6", out, prompt, NULL);
	e = tst_envelope(&r, "model", 0);
	ck_assert_str_eq(tst_jv_str(e, "subcommand"), "greedy");
	pids = tst_jv_get(e, "prompt_ids");
	ids = tst_jv_get(e, "ids");
	ck_assert_ptr_nonnull(pids);
	ck_assert_ptr_nonnull(ids);
	ck_assert_uint_eq(ids->n, 6);
	oracle_open(&o, out);
	np = pids->n;
	ck_assert_int_eq(tst_jv_at(pids, 0)->num, np_tok_bos(o.tok));
	ck_assert_int_eq(np_ref_float_create(o.m, (uint32_t)(np + 6), 1, &rf),
			 0);
	for (size_t pos = 0; pos + 1 < np + 6; pos++) {
		uint32_t best = 0;

		tok = (int32_t)(pos < np ? tst_jv_at(pids, pos)->num :
					   tst_jv_at(ids, pos - np)->num);
		ck_assert_int_eq(
			np_ref_float_step(rf, 0, (uint32_t)pos, tok, logits),
			0);
		if (pos + 1 < np)
			continue;
		for (uint32_t v = 1; v < 300; v++)
			if (logits[v] > logits[best])
				best = v;
		ck_assert_int_eq(tst_jv_at(ids, pos + 1 - np)->num, best);
	}
	np_ref_float_destroy(rf);
	oracle_close(&o);
	tst_run_free(&r);
	tst_run(&r, "model", "greedy", "-n", "0", out, prompt, NULL);
	ck_assert_int_eq(r.status, 2);
	tst_run_free(&r);
	free(out);
}
END_TEST

/* tokenize --ids-out: the ids as little-endian int32, the same as printed */
START_TEST(test_tokenize_ids_out)
{
	char *ids = tmp_path("ids.bin");
	struct tst_run r, j;
	struct tst_jv *arr;
	unsigned char b[4];
	FILE *f;
	size_t n = 0;

	tst_run(&j, "--json", "model", "tokenize", NPT_DEMO_MODEL,
		"Der Zug nach Norden", NULL);
	arr = tst_jv_get(tst_envelope(&j, "model", 0), "ids");
	ck_assert_ptr_nonnull(arr);
	tst_run(&r, "model", "tokenize", "--ids-out", ids, NPT_DEMO_MODEL,
		"Der Zug nach Norden", NULL);
	ck_assert_msg(r.status == 0, "%s", r.err);
	ck_assert_ptr_nonnull(strstr(r.out, "written to"));
	f = fopen(ids, "rb");
	ck_assert_ptr_nonnull(f);
	while (fread(b, 1, 4, f) == 4) {
		uint32_t v =
			b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24;

		ck_assert_uint_lt(n, arr->n);
		ck_assert_int_eq((int32_t)v, tst_jv_at(arr, n)->num);
		n++;
	}
	fclose(f);
	ck_assert_uint_eq(n, arr->n);
	tst_run_free(&r);
	tst_run_free(&j);
	free(ids);
}
END_TEST

START_TEST(test_info)
{
	struct oracle o;
	struct tst_run r;
	struct tst_jv *e, *tensors, *types, *vocab;
	uint64_t bytes = 0, params = 0, counted = 0;
	char want[160];
	struct stat st;

	oracle_open(&o, NPT_DEMO_MODEL);
	for (size_t i = 0; i < np_gguf_n_tensors(o.g); i++) {
		bytes += np_gguf_tensor(o.g, i)->size;
		params += np_gguf_tensor(o.g, i)->n_elems;
	}
	ck_assert_int_eq(stat(NPT_DEMO_MODEL, &st), 0);

	tst_run(&r, "--json", "model", "info", NPT_DEMO_MODEL, NULL);
	e = tst_envelope(&r, "model", 0);
	ck_assert_str_eq(tst_jv_str(e, "subcommand"), "info");
	ck_assert_double_eq(tst_jv_num(e, "file_bytes"), (double)st.st_size);
	ck_assert_double_eq(tst_jv_num(e, "gguf_version"),
			    np_gguf_version(o.g));
	ck_assert_str_eq(tst_jv_str(e, "architecture"), "llama");
	ck_assert_int_eq(tst_jv_get(e, "compilable")->type, TST_JV_BOOL);
	ck_assert(tst_jv_get(e, "compilable")->b);
	check_shape(tst_jv_get(e, "shape"), np_model_get_shape(o.m));
	tensors = tst_jv_get(e, "tensors");
	ck_assert_double_eq(tst_jv_num(tensors, "count"),
			    np_gguf_n_tensors(o.g));
	ck_assert_double_eq(tst_jv_num(tensors, "bytes"), (double)bytes);
	ck_assert_double_eq(tst_jv_num(tensors, "params"), (double)params);
	types = tst_jv_get(tensors, "types");
	ck_assert_ptr_nonnull(types);
	for (size_t i = 0; i < types->n; i++) {
		const struct tst_jv *ty = tst_jv_at(types, i);
		uint64_t n = 0;

		for (size_t k = 0; k < np_gguf_n_tensors(o.g); k++)
			n += !strcmp(
				np_ggml_type_name(np_gguf_tensor(o.g, k)->type),
				tst_jv_str(ty, "type"));
		ck_assert_double_eq(tst_jv_num(ty, "count"), (double)n);
		counted += n;
	}
	ck_assert_uint_eq(counted, np_gguf_n_tensors(o.g));
	vocab = tst_jv_get(e, "vocab");
	ck_assert_str_eq(tst_jv_str(vocab, "kind"), "spm");
	ck_assert_double_eq(tst_jv_num(vocab, "tokens"), np_tok_n_vocab(o.tok));
	ck_assert_double_eq(tst_jv_num(vocab, "bos"), np_tok_bos(o.tok));
	ck_assert_double_eq(tst_jv_num(vocab, "eos"), np_tok_eos(o.tok));
	ck_assert_uint_eq(tst_jv_get(e, "problems")->n, 0);
	tst_run_free(&r);

	tst_run(&r, "model", "info", NPT_DEMO_MODEL, NULL);
	ck_assert_int_eq(r.status, 0);
	snprintf(want, sizeof(want), "GGUF v%u", np_gguf_version(o.g));
	ck_assert_ptr_nonnull(strstr(r.out, want));
	snprintf(want, sizeof(want), "vocab     spm, %u tokens",
		 np_tok_n_vocab(o.tok));
	ck_assert_ptr_nonnull(strstr(r.out, want));
	snprintf(want, sizeof(want), "%u layers, dim %u",
		 np_model_get_shape(o.m)->n_layers,
		 np_model_get_shape(o.m)->dim);
	ck_assert_ptr_nonnull(strstr(r.out, want));
	ck_assert_ptr_nonnull(strstr(r.out, "compiles it"));
	tst_run_free(&r);
	oracle_close(&o);
}
END_TEST

START_TEST(test_info_not_llama)
{
	static const float w[32] = {1.0f};
	struct np_gguf_writer *wr;
	char *path = tmp_path("gpt2.gguf");
	struct tst_run r;
	struct tst_jv *e, *pr;

	/* a valid GGUF of another architecture: described, not compilable */
	ck_assert_int_eq(np_gguf_writer_create(&wr), 0);
	ck_assert_int_eq(
		np_gguf_writer_kv_str(wr, "general.architecture", "gpt2"), 0);
	ck_assert_int_eq(
		np_gguf_writer_tensor(wr, "wte", NP_GGML_F32, 1, 32, 0, w), 0);
	ck_assert_int_eq(np_gguf_writer_save(wr, path), 0);
	np_gguf_writer_destroy(wr);

	tst_run(&r, "--json", "model", "info", path, NULL);
	e = tst_envelope(&r, "model", 0);
	ck_assert_str_eq(tst_jv_str(e, "architecture"), "gpt2");
	ck_assert(!tst_jv_get(e, "compilable")->b);
	ck_assert_int_eq(tst_jv_get(e, "shape")->type, TST_JV_NULL);
	ck_assert_int_eq(tst_jv_get(e, "vocab")->type, TST_JV_NULL);
	ck_assert_double_eq(tst_jv_num(tst_jv_get(e, "tensors"), "count"), 1);
	pr = tst_jv_get(e, "problems");
	ck_assert_uint_ge(pr->n, 1);
	ck_assert_ptr_nonnull(strstr(tst_jv_at(pr, 0)->str, "gpt2"));
	tst_run_free(&r);

	/* compile refuses it: the user's file, exit 2 with libnp's reason */
	tst_run(&r, "--json", "compile", path, NULL);
	e = tst_envelope(&r, "compile", 2);
	ck_assert_uint_ge(tst_jv_get(e, "errors")->n, 1);
	ck_assert_ptr_nonnull(
		strstr(tst_jv_at(tst_jv_get(e, "errors"), 0)->str, "gpt2"));
	tst_run_free(&r);
	free(path);
}
END_TEST

/* The pre-tokenizer and the chat family of a file with a chat template */
START_TEST(test_info_chat)
{
	static const char sample[] = "Hello world, hello cards. 123 456.";
	struct np_gguf_writer *wr;
	char *path = tmp_path("chat.gguf");
	struct tst_run r;
	struct tst_jv *e;

	ck_assert_int_eq(np_gguf_writer_create(&wr), 0);
	ck_assert_int_eq(
		np_tok_train(NP_TOK_BPE, sample, strlen(sample), 300, wr), 0);
	ck_assert_int_eq(np_gguf_writer_kv_str(
				 wr, "tokenizer.chat_template",
				 "{% for m in messages %}{{'<|im_start|>' + "
				 "m['role'] + '\\n' + m['content'] + "
				 "'<|im_end|>\\n'}}{% endfor %}"),
			 0);
	ck_assert_int_eq(np_gguf_writer_save(wr, path), 0);
	np_gguf_writer_destroy(wr);

	tst_run(&r, "--json", "model", "info", path, NULL);
	e = tst_envelope(&r, "model", 0);
	ck_assert_str_eq(tst_jv_str(e, "chat_template"), "chatml");
	ck_assert_str_eq(tst_jv_str(tst_jv_get(e, "vocab"), "pre"), "gpt-2");
	tst_run_free(&r);
	tst_run(&r, "model", "info", path, NULL);
	ck_assert_ptr_nonnull(
		strstr(r.out, "vocab     bpe pre-tokenizer gpt-2"));
	ck_assert_ptr_nonnull(strstr(r.out, "chat      chatml\n"));
	tst_run_free(&r);

	/* the demo model has no template: null, and run --chat says so */
	tst_run(&r, "--json", "model", "info", NPT_DEMO_MODEL, NULL);
	e = tst_envelope(&r, "model", 0);
	ck_assert_int_eq(tst_jv_get(e, "chat_template")->type, TST_JV_NULL);
	ck_assert_int_eq(tst_jv_get(tst_jv_get(e, "vocab"), "pre")->type,
			 TST_JV_NULL);
	tst_run_free(&r);
	tst_run(&r, "run", "--chat", "-p", "Hi", NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "--chat-template NAME"));
	tst_run_free(&r);
	tst_run(&r, "run", "--chat-template", "jinja", "-p", "Hi", NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "chatml, llama2"));
	tst_run_free(&r);
	free(path);
}
END_TEST

/* --special: a control token written in the text is that token */
START_TEST(test_tokenize_special)
{
	struct oracle o;
	struct tst_run r;
	char want[32];

	oracle_open(&o, NPT_DEMO_MODEL);
	tst_run(&r, "model", "tokenize", "--special", NPT_DEMO_MODEL, "</s>",
		NULL);
	snprintf(want, sizeof(want), "%d\n", np_tok_eos(o.tok));
	ck_assert_int_eq(strncmp(r.out, want, strlen(want)), 0);
	tst_run_free(&r);
	tst_run(&r, "model", "tokenize", NPT_DEMO_MODEL, "</s>", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_ne(strncmp(r.out, want, strlen(want)), 0);
	tst_run_free(&r);
	oracle_close(&o);
}
END_TEST

/* Broken files: every command that reads a model refuses them with exit
 * 2 and a message naming the file, and never crashes. */
/* A tensor type np does not read is named, with its first tensor */
START_TEST(test_info_unread_type)
{
	static const char qname[] = "blk.0.attn_q.weight";
	float w[512] = {0.5f};
	struct np_gguf_writer *wr;
	char *path = tmp_path("iq3s.gguf");
	uint32_t iq3_s = NP_GGML_IQ3_S;
	struct tst_run r;
	struct tst_jv *e, *types;
	uint8_t *buf;
	size_t len, at;
	int seen = 0;

	/* Q3_K and IQ3_S blocks are both 110 bytes per 256: write Q3_K,
	 * retype it */
	ck_assert_int_eq(np_gguf_writer_create(&wr), 0);
	ck_assert_int_eq(
		np_gguf_writer_kv_str(wr, "general.architecture", "llama"), 0);
	ck_assert_int_eq(np_gguf_writer_tensor(wr, "token_embd.weight",
					       NP_GGML_Q4_K, 2, 256, 1, w),
			 0);
	ck_assert_int_eq(
		np_gguf_writer_tensor(wr, qname, NP_GGML_Q3_K, 2, 256, 1, w),
		0);
	ck_assert_int_eq(np_gguf_writer_buf(wr, (void **)&buf, &len), 0);
	np_gguf_writer_destroy(wr);
	for (at = 0; at + sizeof(qname) < len; at++)
		if (!memcmp(buf + at, qname, sizeof(qname) - 1))
			break;
	/* name, n_dims, ne[0], ne[1], type */
	at += sizeof(qname) - 1 + 4 + 16;
	ck_assert_uint_lt(at + 4, len);
	memcpy(buf + at, &iq3_s, 4);
	write_all(path, buf, len);
	free(buf);

	tst_run(&r, "--json", "model", "info", path, NULL);
	e = tst_envelope(&r, "model", 0);
	ck_assert(!tst_jv_get(e, "compilable")->b);
	types = tst_jv_get(tst_jv_get(e, "tensors"), "types");
	for (size_t i = 0; i < types->n; i++) {
		const struct tst_jv *ty = tst_jv_at(types, i);
		int iq = !strcmp(tst_jv_str(ty, "type"), "IQ3_S");

		ck_assert_int_eq(tst_jv_get(ty, "readable")->b, !iq);
		if (iq) {
			ck_assert_str_eq(tst_jv_str(ty, "first_tensor"), qname);
			seen++;
		} else {
			ck_assert_str_eq(tst_jv_str(ty, "first_tensor"),
					 "token_embd.weight");
		}
	}
	ck_assert_int_eq(seen, 1);
	tst_run_free(&r);

	tst_run(&r, "model", "info", path, NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(strstr(r.out, "np does not read IQ3_S tensors (1, the "
				    "first 'blk.0.attn_q.weight')"),
		      "%s", r.out);
	tst_run_free(&r);
	free(path);
}
END_TEST

START_TEST(test_corrupt)
{
	static const char *const cmds[][3] = {
		{"model", "info", NULL},
		{"model", "tokenize", "hello"},
		{"compile", NULL, NULL},
	};
	size_t len, cuts[] = {0, 3, 24, 1000, 0};
	char *model = read_all(NPT_DEMO_MODEL, &len);
	char *path = tmp_path("broken.gguf");

	cuts[4] = len / 2;
	for (size_t c = 0; c < sizeof(cuts) / sizeof(cuts[0]) + 2; c++) {
		if (c < sizeof(cuts) / sizeof(cuts[0])) {
			write_all(path, model, cuts[c]);
		} else if (c == sizeof(cuts) / sizeof(cuts[0])) {
			/* tensor count in the header made absurd */
			char *bad = malloc(len);

			ck_assert_ptr_nonnull(bad);
			memcpy(bad, model, len);
			memset(bad + 8, 0xff, 8);
			write_all(path, bad, len);
			free(bad);
		} else {
			write_all(path, "not a model\n", 12);
		}
		for (size_t k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++) {
			struct tst_run r;
			const char *a = cmds[k][1] ? cmds[k][1] : path;
			const char *b = cmds[k][1] ? path : NULL;
			struct tst_jv *e;

			tst_run(&r, "--json", cmds[k][0], a, b, cmds[k][2],
				NULL);
			e = tst_envelope(&r, cmds[k][0], 2);
			ck_assert_uint_ge(tst_jv_get(e, "errors")->n, 1);
			ck_assert_ptr_nonnull(strstr(r.err, path));
			tst_run_free(&r);
		}
	}
	free(path);
	free(model);
}
END_TEST

START_TEST(test_missing_file)
{
	struct tst_run r;
	char *path = tmp_path("no-such.gguf");

	tst_run(&r, "model", "info", path, NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, path));
	tst_run_free(&r);
	free(path);
}
END_TEST

static const char text[] = "Hello, world! Grüße, 世界. ¿Qué tal?\n\tdone";

START_TEST(test_tokenize)
{
	struct oracle o;
	struct tst_run r;
	struct tst_jv *e, *ids;
	int32_t want[256];
	size_t n;
	char line[2048] = "";

	oracle_open(&o, NPT_DEMO_MODEL);
	ck_assert_int_eq(
		np_tok_encode(o.tok, text, strlen(text), want, 256, &n), 0);

	tst_run(&r, "--json", "model", "tokenize", NPT_DEMO_MODEL, text, NULL);
	e = tst_envelope(&r, "model", 0);
	ck_assert_str_eq(tst_jv_str(e, "subcommand"), "tokenize");
	ids = tst_jv_get(e, "ids");
	ck_assert_uint_eq(ids->n, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_double_eq(tst_jv_at(ids, i)->num, want[i]);
	ck_assert_uint_eq(tst_jv_get(e, "pieces")->n, n);
	ck_assert_double_eq(tst_jv_num(e, "tokens"), n);
	ck_assert_double_eq(tst_jv_num(e, "bytes"), strlen(text));
	ck_assert(tst_jv_get(e, "round_trip")->b);
	tst_run_free(&r);

	/* text: the ids on the first line; --bos puts BOS first */
	tst_run(&r, "model", "tokenize", "--bos", NPT_DEMO_MODEL, text, NULL);
	ck_assert_int_eq(r.status, 0);
	snprintf(line, sizeof(line), "%d", np_tok_bos(o.tok));
	for (size_t i = 0; i < n; i++)
		snprintf(line + strlen(line), sizeof(line) - strlen(line),
			 " %d", want[i]);
	strcat(line, "\n");
	ck_assert_int_eq(strncmp(r.out, line, strlen(line)), 0);
	ck_assert_ptr_nonnull(strstr(r.out, "gives the text back"));
	tst_run_free(&r);
	oracle_close(&o);
}
END_TEST

START_TEST(test_tokenize_file)
{
	size_t len;
	char *sample = read_all(NPT_SAMPLE_TEXT, &len);
	struct tst_run r;
	struct tst_jv *e;

	/* the whole multilingual sample round-trips */
	tst_run(&r, "--json", "model", "tokenize", "-f", NPT_SAMPLE_TEXT,
		NPT_DEMO_MODEL, NULL);
	e = tst_envelope(&r, "model", 0);
	ck_assert_double_eq(tst_jv_num(e, "bytes"), len);
	ck_assert(tst_jv_get(e, "round_trip")->b);
	ck_assert_uint_ge(tst_jv_get(e, "ids")->n, 1);
	tst_run_free(&r);
	free(sample);
}
END_TEST

START_TEST(test_detokenize)
{
	struct oracle o;
	struct tst_run r;
	struct tst_jv *e;
	int32_t ids[256];
	size_t n;
	char *args[8], list[2048] = "";

	oracle_open(&o, NPT_DEMO_MODEL);
	ck_assert_int_eq(np_tok_encode(o.tok, text, strlen(text), ids, 256, &n),
			 0);
	ck_assert_uint_ge(n, 4);
	for (size_t i = 0; i < n; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list),
			 "%s%d", i ? "," : "", ids[i]);

	tst_run(&r, "--json", "model", "detokenize", NPT_DEMO_MODEL, list,
		NULL);
	e = tst_envelope(&r, "model", 0);
	ck_assert_str_eq(tst_jv_str(e, "text"), text);
	ck_assert_double_eq(tst_jv_num(e, "bytes"), strlen(text));
	ck_assert_uint_eq(tst_jv_get(e, "ids")->n, n);
	tst_run_free(&r);

	/* separate arguments, text mode: the text and a newline */
	for (size_t i = 0; i < 4; i++)
		ck_assert_int_ge(asprintf(&args[i], "%d", ids[i]), 0);
	tst_run(&r, "model", "detokenize", NPT_DEMO_MODEL, args[0], args[1],
		args[2], args[3], NULL);
	ck_assert_int_eq(r.status, 0);
	{
		char want[256];
		size_t len;

		ck_assert_int_eq(
			np_tok_decode(o.tok, ids, 4, want, sizeof(want), &len),
			0);
		want[len] = 0;
		ck_assert_uint_eq(strlen(r.out), len + 1);
		ck_assert_int_eq(strncmp(r.out, want, len), 0);
		ck_assert_int_eq(r.out[len], '\n');
	}
	tst_run_free(&r);
	for (size_t i = 0; i < 4; i++)
		free(args[i]);

	/* an id outside the vocabulary is named */
	snprintf(list, sizeof(list), "%u", np_tok_n_vocab(o.tok));
	tst_run(&r, "--json", "model", "detokenize", NPT_DEMO_MODEL, list,
		NULL);
	e = tst_envelope(&r, "model", 2);
	ck_assert_ptr_nonnull(
		strstr(tst_jv_at(tst_jv_get(e, "errors"), 0)->str, list));
	tst_run_free(&r);
	oracle_close(&o);
}
END_TEST

/* The plan nptool shows is np_compile's for the same options. */
static void check_plan(const struct tst_jv *e, const struct np_compiled *c)
{
	const struct tst_jv *cards = tst_jv_get(e, "cards"), *total;
	uint64_t sram = 0;

	ck_assert_ptr_nonnull(cards);
	ck_assert_uint_eq(cards->n, np_compiled_n_cards(c));
	for (uint32_t i = 0; i < np_compiled_n_cards(c); i++) {
		const struct np_card_plan *p = np_compiled_card(c, i);
		const struct tst_jv *j = tst_jv_at(cards, i);

		ck_assert_double_eq(tst_jv_num(j, "card"), i);
		ck_assert_str_eq(tst_jv_str(j, "kind"),
				 p->kind == NP_CARD_LAYERS ? "layers" :
							     "output");
		if (p->kind == NP_CARD_LAYERS) {
			ck_assert_double_eq(tst_jv_num(j, "first_layer"),
					    p->first_layer);
			ck_assert_double_eq(tst_jv_num(j, "layers"),
					    p->n_layers);
			ck_assert_int_eq(tst_jv_get(j, "vocab_begin")->type,
					 TST_JV_NULL);
		} else {
			ck_assert_double_eq(tst_jv_num(j, "vocab_begin"),
					    p->vocab_begin);
			ck_assert_double_eq(tst_jv_num(j, "vocab_end"),
					    p->vocab_end);
			ck_assert_int_eq(tst_jv_get(j, "layers")->type,
					 TST_JV_NULL);
		}
		ck_assert_double_eq(tst_jv_num(j, "core_bytes"), p->core_bytes);
		ck_assert_double_eq(tst_jv_num(j, "sram_bytes"),
				    (double)p->core_bytes * NP_NUM_CORES);
		ck_assert_double_eq(tst_jv_num(j, "weight_bytes"),
				    p->weight_bytes);
		ck_assert_double_eq(tst_jv_num(j, "kv_bytes"), p->kv_bytes);
		ck_assert_double_eq(tst_jv_num(j, "prog_bytes"), p->prog_bytes);
		sram += p->core_bytes * NP_NUM_CORES;
	}
	total = tst_jv_get(e, "total");
	ck_assert_double_eq(tst_jv_num(total, "cards"), np_compiled_n_cards(c));
	ck_assert_double_eq(tst_jv_num(total, "sram_bytes"), (double)sram);
	ck_assert_double_eq(tst_jv_num(tst_jv_get(e, "budget"), "card_bytes"),
			    NP_SRAM_SIZE);
}

START_TEST(test_compile)
{
	struct np_compile_opts co = {.n_cards = 6, .batch = 8, .max_seq = 512};
	struct np_compiled *c;
	struct oracle o;
	struct tst_run r;
	struct tst_jv *e;
	char desc[16384];

	oracle_open(&o, NPT_DEMO_MODEL);
	ck_assert_int_eq(np_compile(o.m, NULL, &co, NULL, &c), 0);

	tst_run(&r, "--json", "compile", "--cards", "6", "--batch", "8",
		"--max-seq", "512", NPT_DEMO_MODEL, NULL);
	e = tst_envelope(&r, "compile", 0);
	check_shape(tst_jv_get(e, "shape"), np_model_get_shape(o.m));
	ck_assert_double_eq(tst_jv_num(tst_jv_get(e, "options"), "cards"), 6);
	ck_assert_int_eq(
		tst_jv_get(tst_jv_get(e, "options"), "out_cards")->type,
		TST_JV_NULL);
	check_plan(e, c);
	ck_assert_int_eq(tst_jv_get(e, "output")->type, TST_JV_NULL);
	tst_run_free(&r);

	/* text: libnp's own description, then the totals */
	tst_run(&r, "compile", "--cards", "6", "--batch", "8", "--max-seq",
		"512", NPT_DEMO_MODEL, NULL);
	ck_assert_int_eq(r.status, 0);
	np_compiled_describe(c, desc, sizeof(desc));
	ck_assert_msg(strstr(r.out, desc), "'%s' lacks '%s'", r.out, desc);
	ck_assert_ptr_nonnull(strstr(r.out, "budget    192 MiB per card"));
	ck_assert_ptr_nonnull(strstr(r.out, "total "));
	tst_run_free(&r);
	np_compiled_destroy(c);

	/* --out-cards: more output cards than the fewest */
	co.out_cards = 2;
	ck_assert_int_eq(np_compile(o.m, NULL, &co, NULL, &c), 0);
	tst_run(&r, "--json", "compile", "--cards", "6", "--batch", "8",
		"--max-seq", "512", "--out-cards", "2", NPT_DEMO_MODEL, NULL);
	e = tst_envelope(&r, "compile", 0);
	check_plan(e, c);
	tst_run_free(&r);
	np_compiled_destroy(c);
	oracle_close(&o);
}
END_TEST

START_TEST(test_compile_not_fits)
{
	struct tst_run r;
	struct tst_jv *e;
	const char *msg;

	/* 4096 sessions of 65536 tokens: the KV cache of one layer alone
	 * exceeds a card */
	tst_run(&r, "--json", "compile", "--batch", "4096", "--max-seq",
		"65536", NPT_DEMO_MODEL, NULL);
	e = tst_envelope(&r, "compile", 1);
	ck_assert_uint_ge(tst_jv_get(e, "errors")->n, 1);
	msg = tst_jv_at(tst_jv_get(e, "errors"), 0)->str;
	ck_assert_ptr_nonnull(strstr(msg, "does not fit"));
	ck_assert_ptr_nonnull(strstr(msg, "budget per card"));
	ck_assert_ptr_nonnull(strstr(msg, "would fit"));
	ck_assert_ptr_null(tst_jv_get(e, "cards"));
	tst_run_free(&r);

	tst_run(&r, "compile", "--cards", "2", "--batch", "4096", "--max-seq",
		"65536", NPT_DEMO_MODEL, NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_ptr_nonnull(strstr(r.err, "does not fit 2 cards"));
	ck_assert_str_eq(r.out, "");
	tst_run_free(&r);
}
END_TEST

START_TEST(test_compile_images)
{
	struct np_compile_opts co = {.n_cards = 3, .batch = 2, .max_seq = 64};
	struct np_quant_calib *calib;
	struct np_compiled *c;
	struct oracle o;
	struct tst_run r;
	struct tst_jv *e, *out;
	char *dir = tmp_path("images"), *ref = tmp_path("ref"), a[512], b[512];

	/* the same images as np_compile_write with default scales */
	oracle_open(&o, NPT_DEMO_MODEL);
	ck_assert_int_eq(np_quant_calib_default(o.m, &calib), 0);
	ck_assert_int_eq(np_compile(o.m, calib, &co, NULL, &c), 0);
	ck_assert_int_eq(mkdir(ref, 0755), 0);
	ck_assert_int_eq(np_compile_write(c, ref), 0);

	tst_run(&r, "--json", "compile", "--cards", "3", "--batch", "2",
		"--max-seq", "64", "-o", dir, NPT_DEMO_MODEL, NULL);
	e = tst_envelope(&r, "compile", 0);
	check_plan(e, c);
	out = tst_jv_get(e, "output");
	ck_assert_str_eq(tst_jv_str(out, "dir"), dir);
	ck_assert_double_eq(tst_jv_num(out, "images"), np_compiled_n_cards(c));
	ck_assert_str_eq(tst_jv_str(out, "calibration"), "default");
	tst_run_free(&r);
	for (uint32_t i = 0; i < np_compiled_n_cards(c); i++) {
		snprintf(a, sizeof(a), "%s/card-%02u.npimg", dir, i);
		snprintf(b, sizeof(b), "%s/card-%02u.npimg", ref, i);
		same_files(a, b);
	}
	snprintf(a, sizeof(a), "%s/host.nphost", dir);
	snprintf(b, sizeof(b), "%s/host.nphost", ref);
	same_files(a, b);

	/* calibrated on text: written, and named in the report */
	tst_run(&r, "compile", "--cards", "3", "--batch", "2", "--max-seq",
		"64", "-o", dir, "--calib", NPT_SAMPLE_TEXT, NPT_DEMO_MODEL,
		NULL);
	ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
	ck_assert_ptr_nonnull(strstr(r.out, "calibrated"));
	tst_run_free(&r);

	/* an output directory that cannot be created is the OS's error */
	snprintf(a, sizeof(a), "%s/card-00.npimg/sub", dir);
	tst_run(&r, "compile", "--cards", "3", "--batch", "2", "--max-seq",
		"64", "-o", a, NPT_DEMO_MODEL, NULL);
	ck_assert_int_eq(r.status, 4);
	ck_assert_ptr_nonnull(strstr(r.err, a));
	tst_run_free(&r);

	np_compiled_destroy(c);
	np_quant_calib_destroy(calib);
	oracle_close(&o);
	free(dir);
	free(ref);
}
END_TEST

START_TEST(test_bad_usage)
{
	static const char *const bad[][6] = {
		{"model"},
		{"model", "frobnicate"},
		{"model", "info"},
		{"model", "tokenize", NPT_DEMO_MODEL},
		{"model", "detokenize", NPT_DEMO_MODEL},
		{"model", "detokenize", NPT_DEMO_MODEL, "12x"},
		{"model", "detokenize", NPT_DEMO_MODEL, "-5"},
		{"model", "mkgguf", "--shape", "huge"},
		{"model", "mkgguf", "--type", "q5_k"},
		{"model", "mkgguf", "--tok", "wordpiece"},
		{"model", "mkgguf", "--shape", "tiny"},
		{"compile"},
		{"compile", "--cards", "many", NPT_DEMO_MODEL},
		{"compile", "--cards", "1", NPT_DEMO_MODEL},
		{"compile", "--batch", "0", NPT_DEMO_MODEL},
		{"compile", "--calib", NPT_SAMPLE_TEXT, NPT_DEMO_MODEL},
	};
	struct tst_run r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tst_run(&r, "--json", bad[i][0], bad[i][1], bad[i][2],
			bad[i][3], bad[i][4], bad[i][5], NULL);
		ck_assert_msg(r.status == 2, "%s %s %s %s: exit %d, not 2",
			      bad[i][0], bad[i][1] ? bad[i][1] : "",
			      bad[i][2] ? bad[i][2] : "",
			      bad[i][3] ? bad[i][3] : "", r.status);
		tst_envelope(&r, bad[i][0], 2);
		ck_assert_uint_ge(tst_jv_get(r.json, "errors")->n, 1);
		tst_run_free(&r);
	}
}
END_TEST

/* model quality on a small generated model: every mode is a row (measured,
 * or not computed by this build), the comparator too; the calibration
 * text is refused as TEXT */
START_TEST(test_quality)
{
	static const char held[] =
		"The lighthouse keeper counted forty ships before dawn, wrote "
		"each name into the ledger and walked down to the harbour "
		"where the fishermen were mending their nets in the cold.";
	char *model = tmp_path("q.gguf"), *held_path = tmp_path("held.txt");
	const struct tst_jv *e, *rows;
	struct tst_run r;
	size_t ok = 0;

	tst_run(&r, "model", "mkgguf", "--layers", "2", "--dim", "64",
		"--heads", "4", "--kv-heads", "2", "--ffn", "96", "--vocab",
		"512", "--text", NPT_SAMPLE_TEXT, "--out", model, NULL);
	ck_assert_int_eq(r.status, 0);
	tst_run_free(&r);
	write_all(held_path, held, sizeof(held) - 1);
	tst_run(&r, "--json", "model", "quality", model, held_path, "--tokens",
		"16", "--calib-tokens", "32", NULL);
	e = tst_envelope(&r, "model", 0);
	ck_assert_str_eq(tst_jv_str(e, "subcommand"), "quality");
	ck_assert(tst_jv_num(e, "tokens") == 16);
	ck_assert(tst_jv_num(e, "calib_tokens") == 32);
	rows = tst_jv_get(e, "rows");
	ck_assert_ptr_nonnull(rows);
	/* 4 modes x 5 PTQ variants, then ggml */
	ck_assert_uint_eq(rows->n, 21);
	for (size_t i = 0; i < rows->n; i++) {
		const struct tst_jv *row = tst_jv_at(rows, i);
		const char *st = tst_jv_str(row, "status");

		ck_assert_ptr_nonnull(st);
		if (strcmp(st, "ok")) {
			ck_assert_str_eq(st, "not computed by this build");
			ck_assert_ptr_null(tst_jv_get(row, "kld_mean"));
			continue;
		}
		ok++;
		ck_assert(tst_jv_num(row, "kld_mean") > 0);
		ck_assert(tst_jv_num(row, "kld_p99") >=
			  tst_jv_num(row, "kld_mean"));
		ck_assert(tst_jv_num(row, "cos") > 0 &&
			  tst_jv_num(row, "cos") < 1);
		ck_assert(tst_jv_num(row, "same_top_pct") >= 0 &&
			  tst_jv_num(row, "same_top_pct") <= 100);
	}
	ck_assert_str_eq(tst_jv_str(tst_jv_at(rows, 0), "arith"), "w4a4");
	ck_assert_str_eq(tst_jv_str(tst_jv_at(rows, 0), "status"), "ok");
	ck_assert_str_eq(tst_jv_str(tst_jv_at(rows, 20), "arith"),
			 "ggml q4_0+q8_0");
	ck_assert_str_eq(tst_jv_str(tst_jv_at(rows, 20), "status"), "ok");
	ck_assert_uint_ge(ok, 6);
	tst_run_free(&r);
	/* the table */
	tst_run(&r, "model", "quality", model, held_path, "--tokens", "8",
		"--precision", "w4a4", "--ptq", "none,all", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "KLD MEAN"));
	ck_assert_ptr_nonnull(strstr(r.out, "ggml q4_0+q8_0"));
	ck_assert_uint_eq(tst_lines(r.out), 5); /* title, head, 3 rows */
	tst_run_free(&r);
	/* quality on the calibration text flatters: refused */
	tst_run(&r, "model", "quality", model, NPT_SAMPLE_TEXT, NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "overlaps the calibration text"));
	tst_run_free(&r);
	tst_run(&r, "model", "quality", model, held_path, "--ptq", "fast",
		NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "--ptq 'fast'"));
	tst_run_free(&r);
	free(model);
	free(held_path);
}
END_TEST

Suite *np_suite_model(void)
{
	Suite *s = suite_create("model");
	TCase *tc = tcase_create("model");

	tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_mkgguf_writes_the_demo_model);
	tcase_add_test(tc, test_mkgguf_options);
	tcase_add_test(tc, test_mkgguf_arch);
	tcase_add_test(tc, test_mkgguf_weights);
	tcase_add_test(tc, test_greedy);
	tcase_add_test(tc, test_tokenize_ids_out);
	tcase_add_test(tc, test_info);
	tcase_add_test(tc, test_info_not_llama);
	tcase_add_test(tc, test_info_unread_type);
	tcase_add_test(tc, test_info_chat);
	tcase_add_test(tc, test_tokenize_special);
	tcase_add_test(tc, test_corrupt);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_tokenize);
	tcase_add_test(tc, test_tokenize_file);
	tcase_add_test(tc, test_detokenize);
	tcase_add_test(tc, test_compile);
	tcase_add_test(tc, test_compile_not_fits);
	tcase_add_test(tc, test_compile_images);
	tcase_add_test(tc, test_bad_usage);
	tcase_add_test(tc, test_quality);
	suite_add_tcase(s, tc);
	return s;
}
