// SPDX-License-Identifier: MIT
/*
 * model, compile: the model front end. GGUF files are read, generated and
 * compiled through libnpmodel (np/model.h) exactly as np_model_load() does
 * it; nothing here touches a card.
 *
 *   model info FILE          what the file holds and whether np compiles it
 *   model tokenize FILE TEXT token ids of TEXT, checked by decoding back
 *   model detokenize FILE ID...
 *   model mkgguf ...         a llama GGUF of a named shape (the demo model)
 *   compile FILE ...         the mapping onto cards and the SRAM budget;
 *                            -o writes the card images
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <np/model.h>

#include "np_abi.h"
#include "nptool.h"

#define MODEL_TEXT_MAX (64u << 20) /* text to tokenize or train on */
#define MODEL_CALIB_TOKENS 64 /* as np_model_load() */

/* libnp's messages become nptool's errors */
static void log_err(void *opaque, int level, const char *msg)
{
	if (level <= LOG_WARNING)
		npt_err(opaque, "%s", msg);
}

/* ... or are kept as the reason a file is not usable (model info) */
struct problems {
	char *msg[4];
	unsigned int n;
};

static void log_keep(void *opaque, int level, const char *msg)
{
	struct problems *p = opaque;

	if (level <= LOG_WARNING && p->n < 4)
		p->msg[p->n++] = strdup(msg);
}

/* Exit code of a failure to read a model file the user named. */
static int file_exit(int err)
{
	switch (err) {
	case -ENOENT:
	case -EINVAL:
	case -ENOTSUP:
	case -EISDIR:
		return NPT_EXIT_USAGE;
	default:
		return NPT_EXIT_DEVERR;
	}
}

static int open_gguf(struct npt *t, const char *path, struct np_gguf **g)
{
	struct np_model_log lg = {log_err, t};
	size_t logged = t->nerrors;
	int ret = np_gguf_open(path, &lg, g);

	if (!ret)
		return NPT_EXIT_OK;
	if (ret == -EINVAL)
		npt_err(t,
			"%s is not a valid GGUF file (see above); give a GGUF "
			"v2/v3 model, e.g. one from 'nptool model mkgguf'",
			path);
	else if (t->nerrors == logged)
		npt_err(t, "cannot open model %s: %s", path, strerror(-ret));
	return file_exit(ret);
}

static const char *tok_kind_name(int kind)
{
	return kind == NP_TOK_SPM ? "spm" : kind == NP_TOK_BPE ? "bpe" : "?";
}

static void shape_json(struct npt_json *j, const struct np_model_shape *s)
{
	npt_json_key(j, "shape");
	npt_json_obj_open(j);
	npt_json_kuint(j, "layers", s->n_layers);
	npt_json_kuint(j, "dim", s->dim);
	npt_json_kuint(j, "heads", s->n_heads);
	npt_json_kuint(j, "kv_heads", s->n_kv_heads);
	npt_json_kuint(j, "head_dim", s->dim / s->n_heads);
	npt_json_kuint(j, "ffn", s->ffn);
	npt_json_kuint(j, "vocab", s->vocab);
	npt_json_kuint(j, "context", s->ctx);
	npt_json_kdouble(j, "rope_base", s->rope_base);
	npt_json_kdouble(j, "norm_eps", s->norm_eps);
	npt_json_obj_close(j);
}

static void shape_text(const struct np_model_shape *s)
{
	printf("shape     %u layers, dim %u, %u/%u heads (head dim %u), FFN "
	       "%u, vocab %u, context %u, RoPE base %g, RMS eps %g\n",
	       s->n_layers, s->dim, s->n_heads, s->n_kv_heads,
	       s->dim / s->n_heads, s->ffn, s->vocab, s->ctx, s->rope_base,
	       s->norm_eps);
}

/* ---------------------------------------------------------------- */
/* model info                                                         */

struct type_sum {
	uint32_t type;
	uint64_t count, bytes;
};

static int model_info(struct npt *t, const char *path)
{
	struct problems pr = {0};
	struct np_model_log keep = {log_keep, &pr};
	struct type_sum ts[32];
	unsigned int nts = 0;
	uint64_t bytes = 0, params = 0;
	struct np_gguf *g = NULL;
	struct np_model *m = NULL;
	struct np_tok *tok = NULL;
	const char *name = NULL, *arch = NULL;
	size_t name_len = 0, arch_len = 0, nt;
	char nbuf[128], abuf[64], sz[32];
	struct stat st;
	int rc;

	rc = open_gguf(t, path, &g);
	if (rc)
		return rc;
	if (stat(path, &st))
		st.st_size = 0;
	if (np_gguf_get_str(g, "general.name", &name, &name_len))
		name = NULL;
	if (np_gguf_get_str(g, "general.architecture", &arch, &arch_len))
		arch = NULL;
	snprintf(nbuf, sizeof(nbuf), "%.*s", (int)name_len, name ? name : "");
	snprintf(abuf, sizeof(abuf), "%.*s", (int)arch_len, arch ? arch : "");
	nt = np_gguf_n_tensors(g);
	for (size_t i = 0; i < nt; i++) {
		const struct np_gguf_tensor *te = np_gguf_tensor(g, i);
		unsigned int k;

		bytes += te->size;
		params += te->n_elems;
		for (k = 0; k < nts && ts[k].type != te->type; k++)
			;
		if (k == nts) {
			if (nts == sizeof(ts) / sizeof(ts[0]))
				continue;
			ts[nts++] = (struct type_sum){te->type, 0, 0};
		}
		ts[k].count++;
		ts[k].bytes += te->size;
	}
	np_model_from_gguf(g, &keep, &m);
	np_tok_from_gguf(g, &keep, &tok);

	if (t->j) {
		struct npt_json *j = t->j;

		npt_json_kstr(j, "path", path);
		npt_json_kuint(j, "file_bytes", (uint64_t)st.st_size);
		npt_json_kuint(j, "gguf_version", np_gguf_version(g));
		if (name)
			npt_json_kstr(j, "name", nbuf);
		else
			npt_json_knull(j, "name");
		if (arch)
			npt_json_kstr(j, "architecture", abuf);
		else
			npt_json_knull(j, "architecture");
		npt_json_kbool(j, "compilable", m != NULL);
		if (m)
			shape_json(j, np_model_get_shape(m));
		else
			npt_json_knull(j, "shape");
		npt_json_key(j, "tensors");
		npt_json_obj_open(j);
		npt_json_kuint(j, "count", nt);
		npt_json_kuint(j, "bytes", bytes);
		npt_json_kuint(j, "params", params);
		npt_json_key(j, "types");
		npt_json_arr_open(j);
		for (unsigned int k = 0; k < nts; k++) {
			const char *tn = np_ggml_type_name(ts[k].type);

			npt_json_obj_open(j);
			if (tn)
				npt_json_kstr(j, "type", tn);
			else
				npt_json_kuint(j, "type", ts[k].type);
			npt_json_kuint(j, "count", ts[k].count);
			npt_json_kuint(j, "bytes", ts[k].bytes);
			npt_json_obj_close(j);
		}
		npt_json_arr_close(j);
		npt_json_obj_close(j);
		if (tok) {
			npt_json_key(j, "vocab");
			npt_json_obj_open(j);
			npt_json_kstr(j, "kind",
				      tok_kind_name(np_tok_kind(tok)));
			npt_json_kuint(j, "tokens", np_tok_n_vocab(tok));
			npt_json_kint(j, "bos", np_tok_bos(tok));
			npt_json_kint(j, "eos", np_tok_eos(tok));
			npt_json_obj_close(j);
		} else {
			npt_json_knull(j, "vocab");
		}
		npt_json_key(j, "problems");
		npt_json_arr_open(j);
		for (unsigned int i = 0; i < pr.n; i++)
			if (pr.msg[i])
				npt_json_str(j, pr.msg[i]);
		npt_json_arr_close(j);
	} else {
		printf("file      %s (%s, GGUF v%u)\n", path,
		       npt_fmt_size(sz, sizeof(sz), (uint64_t)st.st_size),
		       np_gguf_version(g));
		printf("name      %s\n", name ? nbuf : "-");
		printf("arch      %s\n", arch ? abuf : "-");
		if (m)
			shape_text(np_model_get_shape(m));
		printf("tensors   %zu, %.1fM parameters, %s:", nt, params / 1e6,
		       npt_fmt_size(sz, sizeof(sz), bytes));
		for (unsigned int k = 0; k < nts; k++) {
			const char *tn = np_ggml_type_name(ts[k].type);

			printf("%s %llu %s%s (%s)", k ? "," : "",
			       (unsigned long long)ts[k].count,
			       tn ? tn : "type ", tn ? "" : "?",
			       npt_fmt_size(sz, sizeof(sz), ts[k].bytes));
		}
		printf("\n");
		if (tok)
			printf("vocab     %s, %u tokens, BOS %d, EOS %d\n",
			       tok_kind_name(np_tok_kind(tok)),
			       np_tok_n_vocab(tok), np_tok_bos(tok),
			       np_tok_eos(tok));
		else
			printf("vocab     -\n");
		printf("np        %s\n",
		       m ? "compiles it (llama, F32/F16/Q8_0/Q4_0 tensors)" :
			   "cannot compile it:");
		for (unsigned int i = 0; i < pr.n; i++)
			if (pr.msg[i])
				printf("          %s\n", pr.msg[i]);
	}
	for (unsigned int i = 0; i < pr.n; i++)
		free(pr.msg[i]);
	np_tok_destroy(tok);
	np_model_destroy(m);
	np_gguf_close(g);
	return NPT_EXIT_OK;
}

/* ---------------------------------------------------------------- */
/* model tokenize, model detokenize                                   */

static int open_tok(struct npt *t, const char *path, struct np_gguf **g,
		    struct np_tok **tok)
{
	struct np_model_log lg = {log_err, t};
	int rc = open_gguf(t, path, g), ret;

	if (rc)
		return rc;
	ret = np_tok_from_gguf(*g, &lg, tok);
	if (ret) {
		npt_err(t,
			"%s holds no tokenizer np reads (tokenizer.ggml.model "
			"llama or gpt2): %s",
			path, strerror(-ret));
		return file_exit(ret);
	}
	return NPT_EXIT_OK;
}

/* Encode len bytes into a malloc()ed array. 0 or -errno. */
static int encode(const struct np_tok *tok, const char *text, size_t len,
		  bool bos, int32_t **ids, size_t *n)
{
	size_t cap = len + 2, got = 0, k = 0;
	int32_t *v = NULL;
	int ret;

	for (;;) {
		int32_t *nv = realloc(v, cap * sizeof(*v));

		if (!nv) {
			free(v);
			return -ENOMEM;
		}
		v = nv;
		k = 0;
		if (bos && np_tok_bos(tok) >= 0)
			v[k++] = np_tok_bos(tok);
		ret = np_tok_encode(tok, text, len, v + k, cap - k, &got);
		if (ret != -ENOSPC)
			break;
		cap = got + k + 1;
	}
	if (ret) {
		free(v);
		return ret;
	}
	*ids = v;
	*n = k + got;
	return 0;
}

/* Decode into a malloc()ed NUL-terminated buffer. 0 or -errno. */
static int decode(const struct np_tok *tok, const int32_t *ids, size_t n,
		  char **text, size_t *len)
{
	size_t cap = 16 * n + 16;
	char *s = NULL;
	int ret;

	for (;;) {
		char *ns = realloc(s, cap + 1);

		if (!ns) {
			free(s);
			return -ENOMEM;
		}
		s = ns;
		ret = np_tok_decode(tok, ids, n, s, cap, len);
		if (ret != -ENOSPC)
			break;
		cap = *len;
	}
	if (ret) {
		free(s);
		return ret;
	}
	s[*len] = 0;
	*text = s;
	return 0;
}

static int model_tokenize(struct npt *t, int argc, char **argv)
{
	static const struct option opts[] = {
		{"file", required_argument, NULL, 'f'},
		{"bos", no_argument, NULL, 'b'},
		{0},
	};
	const char *path, *tfile = NULL;
	struct np_gguf *g = NULL;
	struct np_tok *tok = NULL;
	char *text = NULL, *back = NULL;
	int32_t *ids = NULL;
	size_t len = 0, n = 0, blen = 0, diff;
	bool bos = false;
	int c, rc, ret;

	while ((c = getopt_long(argc, argv, "f:", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			tfile = optarg;
			break;
		case 'b':
			bos = true;
			break;
		default:
			return npt_usage(t, "model tokenize: bad option '%s'",
					 argv[optind - 1]);
		}
	}
	if (optind >= argc || argc - optind != (tfile ? 1 : 2))
		return npt_usage(t, "model tokenize takes FILE and TEXT (or "
				    "FILE and -f TEXTFILE)");
	path = argv[optind];
	if (tfile) {
		ret = npt_read_file(tfile, MODEL_TEXT_MAX, &text, &len);
		if (ret) {
			npt_err(t, "cannot read text from %s: %s", tfile,
				strerror(-ret));
			return NPT_EXIT_USAGE;
		}
	} else {
		text = strdup(argv[optind + 1]);
		if (!text)
			return NPT_EXIT_DEVERR;
		len = strlen(text);
	}
	rc = open_tok(t, path, &g, &tok);
	if (rc)
		goto out;
	ret = encode(tok, text, len, bos, &ids, &n);
	ret = ret ? ret : decode(tok, ids, n, &back, &blen);
	if (ret) {
		npt_err(t, "tokenizing %zu bytes with %s failed: %s", len, path,
			strerror(-ret));
		rc = NPT_EXIT_DEVERR;
		goto out;
	}
	for (diff = 0; diff < len && diff < blen && text[diff] == back[diff];
	     diff++)
		;
	if (diff < len || blen != len) {
		npt_err(t,
			"round trip of %s's tokenizer differs: the text has "
			"%zu "
			"bytes, decoding its %zu tokens gives %zu, first "
			"difference at byte %zu",
			path, len, n, blen, diff);
		rc = NPT_EXIT_FAIL;
	}
	if (t->j) {
		npt_json_key(t->j, "ids");
		npt_json_arr_open(t->j);
		for (size_t i = 0; i < n; i++)
			npt_json_int(t->j, ids[i]);
		npt_json_arr_close(t->j);
		npt_json_key(t->j, "pieces");
		npt_json_arr_open(t->j);
		for (size_t i = 0; i < n; i++) {
			char *p = NULL;
			size_t pl;

			if (decode(tok, &ids[i], 1, &p, &pl))
				npt_json_null(t->j);
			else
				npt_json_str(t->j, p);
			free(p);
		}
		npt_json_arr_close(t->j);
		npt_json_kuint(t->j, "tokens", n);
		npt_json_kuint(t->j, "bytes", len);
		npt_json_kbool(t->j, "round_trip", rc == NPT_EXIT_OK);
	} else {
		for (size_t i = 0; i < n; i++)
			printf("%s%d", i ? " " : "", ids[i]);
		printf("\n%zu tokens for %zu bytes; %s\n", n, len,
		       rc ? "decoding them does NOT give the text back" :
			    "decoding them gives the text back");
	}
out:
	free(back);
	free(ids);
	free(text);
	np_tok_destroy(tok);
	np_gguf_close(g);
	return rc;
}

static int model_detokenize(struct npt *t, int argc, char **argv)
{
	const char *path;
	struct np_gguf *g = NULL;
	struct np_tok *tok = NULL;
	int32_t *ids = NULL;
	char *text = NULL;
	size_t n = 0, cap = 0, len = 0;
	int rc, ret;

	/* "+": an id like -5 is refused as an id, not as an option */
	if (getopt_long(argc, argv, "+", NULL, NULL) != -1)
		return npt_usage(t, "model detokenize: bad option '%s'",
				 argv[optind - 1]);
	if (argc - optind < 2)
		return npt_usage(t, "model detokenize takes FILE and token "
				    "ids");
	path = argv[optind];
	/* ids as separate arguments, or one list split by spaces/commas */
	for (int a = optind + 1; a < argc; a++) {
		const char *s = argv[a];

		while (*s) {
			char *end;
			long v;

			if (*s == ' ' || *s == ',' || *s == '\t' ||
			    *s == '\n') {
				s++;
				continue;
			}
			errno = 0;
			v = strtol(s, &end, 10);
			if (end == s || errno || v < 0 || v > INT32_MAX ||
			    (*end && !strchr(" ,\t\n", *end))) {
				free(ids);
				return npt_usage(t,
						 "token id '%s' is not a "
						 "non-negative integer",
						 argv[a]);
			}
			if (n == cap) {
				int32_t *ni;

				cap = cap ? 2 * cap : 64;
				ni = realloc(ids, cap * sizeof(*ids));
				if (!ni) {
					free(ids);
					return NPT_EXIT_DEVERR;
				}
				ids = ni;
			}
			ids[n++] = (int32_t)v;
			s = end;
		}
	}
	if (!n) {
		free(ids);
		return npt_usage(t, "model detokenize: no token ids given");
	}
	rc = open_tok(t, path, &g, &tok);
	if (rc)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if ((uint32_t)ids[i] >= np_tok_n_vocab(tok)) {
			rc = npt_usage(t,
				       "token id %d is outside %s's vocabulary "
				       "(0..%u)",
				       ids[i], path, np_tok_n_vocab(tok) - 1);
			goto out;
		}
	}
	ret = decode(tok, ids, n, &text, &len);
	if (ret) {
		npt_err(t, "decoding %zu tokens with %s failed: %s", n, path,
			strerror(-ret));
		rc = NPT_EXIT_DEVERR;
		goto out;
	}
	if (t->j) {
		npt_json_key(t->j, "ids");
		npt_json_arr_open(t->j);
		for (size_t i = 0; i < n; i++)
			npt_json_int(t->j, ids[i]);
		npt_json_arr_close(t->j);
		npt_json_kstr(t->j, "text", text);
		npt_json_kuint(t->j, "bytes", len);
	} else {
		fwrite(text, 1, len, stdout);
		printf("\n");
	}
out:
	free(text);
	free(ids);
	np_tok_destroy(tok);
	np_gguf_close(g);
	return rc;
}

/* ---------------------------------------------------------------- */
/* model mkgguf                                                       */

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

static int model_mkgguf(struct npt *t, int argc, char **argv)
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
	struct np_model_log lg = {log_err, t};
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
	ret = npt_read_file(text_path, MODEL_TEXT_MAX, &text, &len);
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
		shape_json(t->j, &s);
		npt_json_kstr(t->j, "type", np_ggml_type_name(wtype));
		npt_json_kstr(t->j, "tokenizer", tok_kind_name(tok));
		npt_json_kuint(t->j, "seed", seed);
		npt_json_kuint(t->j, "file_bytes", (uint64_t)st.st_size);
		npt_json_kdouble(t->j, "seconds", npt_now() - t0);
	} else {
		printf("wrote %s: %s shape, %s weights, %s vocabulary of %u, "
		       "seed %u (%s, %.1f s)\n",
		       out, shape_name, np_ggml_type_name(wtype),
		       tok_kind_name(tok), s.vocab, seed,
		       npt_fmt_size(sz, sizeof(sz), (uint64_t)st.st_size),
		       npt_now() - t0);
	}
	return NPT_EXIT_OK;
}

int npt_cmd_model(struct npt *t, int argc, char **argv)
{
	static const char *const subs[] = {"info", "tokenize", "detokenize",
					   "mkgguf"};
	const char *sub = argc > 1 ? argv[1] : "";

	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (t->j && !strcmp(sub, subs[i]))
			npt_json_kstr(t->j, "subcommand", sub);
	/* the subcommand parses its options from argv[1] on */
	optind = 0;
	if (!strcmp(sub, "info")) {
		if (argc != 3)
			return npt_usage(t, "model info takes one FILE");
		return model_info(t, argv[2]);
	}
	if (!strcmp(sub, "tokenize"))
		return model_tokenize(t, argc - 1, argv + 1);
	if (!strcmp(sub, "detokenize"))
		return model_detokenize(t, argc - 1, argv + 1);
	if (!strcmp(sub, "mkgguf"))
		return model_mkgguf(t, argc - 1, argv + 1);
	return npt_usage(t,
			 "model: unknown subcommand '%s'; use info, tokenize, "
			 "detokenize or mkgguf",
			 sub);
}

/* ---------------------------------------------------------------- */
/* compile                                                            */

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
	struct np_model_log lg = {log_err, t};
	struct np_tok *tok = NULL;
	int32_t *ids = NULL;
	char *text = NULL;
	size_t len = 0, n = 0;
	int ret;

	ret = npt_read_file(path, MODEL_TEXT_MAX, &text, &len);
	if (ret) {
		npt_err(t, "cannot read calibration text %s: %s", path,
			strerror(-ret));
		return NPT_EXIT_USAGE;
	}
	/* a prefix is enough: a token covers at most 16 bytes here */
	if (len > 16 * MODEL_CALIB_TOKENS)
		len = 16 * MODEL_CALIB_TOKENS;
	ret = np_tok_from_gguf(g, &lg, &tok);
	ret = ret ? ret : encode(tok, text, len, false, &ids, &n);
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
	shape_json(j, s);
	npt_json_key(j, "options");
	npt_json_obj_open(j);
	npt_json_kuint(j, "cards", o->n_cards);
	npt_json_kuint(j, "batch", o->batch);
	npt_json_kuint(j, "max_seq", o->max_seq);
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
	shape_text(s);
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

int npt_cmd_compile(struct npt *t, int argc, char **argv)
{
	static const struct option opts[] = {
		{"cards", required_argument, NULL, 'c'},
		{"batch", required_argument, NULL, 'b'},
		{"max-seq", required_argument, NULL, 's'},
		{"out-cards", required_argument, NULL, 'k'},
		{"calib", required_argument, NULL, 'C'},
		{"out", required_argument, NULL, 'o'},
		{0},
	};
	struct np_compile_opts o = {.n_cards = NP_DEFAULT_CARDS,
				    .batch = NP_DEFAULT_SESSIONS,
				    .max_seq = NP_DEFAULT_PLAN_MAX_SEQ};
	const char *path, *dir = NULL, *calib_path = NULL;
	struct np_model_log lg = {log_err, t};
	struct np_quant_calib *calib = NULL;
	struct np_compiled *c = NULL;
	struct np_model *m = NULL;
	struct np_gguf *g = NULL;
	double secs = 0;
	int ch, rc = 0, ret;

	while ((ch = getopt_long(argc, argv, "c:b:o:", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			rc = npt_parse_u32(t, "--cards", optarg, 0, &o.n_cards);
			break;
		case 'b':
			rc = npt_parse_u32(t, "--batch", optarg, 0, &o.batch);
			break;
		case 's':
			rc = npt_parse_u32(t, "--max-seq", optarg, 0,
					   &o.max_seq);
			break;
		case 'k':
			rc = npt_parse_u32(t, "--out-cards", optarg, 0,
					   &o.out_cards);
			break;
		case 'C':
			calib_path = optarg;
			break;
		case 'o':
			dir = optarg;
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
	if (!o.n_cards || !o.batch || !o.max_seq)
		return npt_usage(t, "--cards, --batch and --max-seq must be "
				    "at least 1");
	if (calib_path && !dir)
		return npt_usage(t, "--calib only matters with -o DIR (the "
				    "card images)");
	path = argv[optind];
	rc = open_gguf(t, path, &g);
	if (rc)
		return rc;
	ret = np_model_from_gguf(g, &lg, &m);
	if (ret) {
		npt_err(t, "%s is not a model np compiles (see above)", path);
		rc = file_exit(ret);
		goto out;
	}
	if (dir) {
		if (calib_path) {
			rc = calibrate(t, g, m, calib_path, &calib);
		} else {
			ret = np_quant_calib_default(m, &calib);
			rc = ret ? NPT_EXIT_DEVERR : NPT_EXIT_OK;
		}
		if (rc)
			goto out;
	}
	ret = np_compile(m, calib, &o, &lg, &c);
	if (ret == -E2BIG) {
		rc = NPT_EXIT_FAIL;
		goto out;
	}
	if (ret) {
		rc = ret == -EINVAL ? NPT_EXIT_USAGE : NPT_EXIT_DEVERR;
		goto out;
	}
	if (dir)
		rc = write_images(t, c, dir, &secs);
	if (t->j) {
		compile_json(t->j, path, np_model_get_shape(m), &o, c);
		if (dir && !rc) {
			npt_json_key(t->j, "output");
			npt_json_obj_open(t->j);
			npt_json_kstr(t->j, "dir", dir);
			npt_json_kuint(t->j, "images", np_compiled_n_cards(c));
			npt_json_kstr(t->j, "calibration",
				      calib_path ? calib_path : "default");
			npt_json_kdouble(t->j, "seconds", secs);
			npt_json_obj_close(t->j);
		} else {
			npt_json_knull(t->j, "output");
		}
	} else {
		compile_text(path, np_model_get_shape(m), c);
		if (dir && !rc)
			printf("wrote     %u card images (card-NN.npimg) and "
			       "host.nphost to %s in %.1f s, %s activation "
			       "scales\n",
			       np_compiled_n_cards(c), dir, secs,
			       calib_path ? "calibrated" : "default");
	}
out:
	np_compiled_destroy(c);
	np_quant_calib_destroy(calib);
	np_model_destroy(m);
	np_gguf_close(g);
	return rc;
}
