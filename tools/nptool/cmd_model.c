// SPDX-License-Identifier: MIT
/*
 * model: the model front end. GGUF files are read and generated through
 * libnpmodel (np/model.h) exactly as np_model_load() does it; nothing here
 * touches a card.
 *
 *   model info FILE          what the file holds and whether np compiles it
 *   model tokenize FILE TEXT token ids of TEXT, checked by decoding back
 *   model detokenize FILE ID...
 *   model mkgguf ...         a GGUF of a model family and a named shape
 *                            (the demo model; cmd_model_mkgguf.c)
 *   model greedy FILE TEXT   the float reference's greedy continuation
 *                            (cmd_model_greedy.c)
 *   model quality MODEL TEXT quantization quality of every arithmetic
 *                            (cmd_model_quality.c)
 */
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>

#include <np/chat.h>
#include <np/model.h>

#include "nptool.h"

/* libnpmodel's messages kept as the reason a file is not usable */
struct problems {
	char *msg[4];
	unsigned int n;
};

static void log_keep(void *opaque, enum np_log_level level, const char *msg)
{
	struct problems *p = opaque;

	if (level <= LOG_WARNING && p->n < 4)
		p->msg[p->n++] = strdup(msg);
}

/* ---------------------------------------------------------------- */
/* model info                                                         */

struct type_sum {
	uint32_t type;
	uint64_t count, bytes;
	const char *first; /* the first tensor of the type */
};

/* What model info found in one file. */
struct info {
	const char *path;
	struct problems pr;
	struct type_sum ts[32];
	unsigned int nts;
	uint64_t bytes, params, file_bytes;
	size_t nt;
	struct np_gguf *g;
	struct np_model *m; /* NULL when np does not compile it */
	struct np_tok *tok; /* NULL without a tokenizer np reads */
	bool has_name, has_arch;
	char name[128], arch[64];
	const char *chat; /* the chat family, NULL when none np renders */
	struct problems chat_pr; /* why not */
};

/* The file's metadata, tensors by type, and whether np takes it. */
static int info_read(struct npt *t, struct info *in)
{
	struct np_log keep = {.fn = log_keep, .opaque = &in->pr};
	const char *name = NULL, *arch = NULL;
	size_t name_len = 0, arch_len = 0;
	struct stat st;
	int rc = npt_open_gguf(t, in->path, &in->g);

	if (rc)
		return rc;
	in->file_bytes = stat(in->path, &st) ? 0 : (uint64_t)st.st_size;
	if (np_gguf_get_str(in->g, "general.name", &name, &name_len))
		name = NULL;
	if (np_gguf_get_str(in->g, "general.architecture", &arch, &arch_len))
		arch = NULL;
	in->has_name = name;
	in->has_arch = arch;
	snprintf(in->name, sizeof(in->name), "%.*s", (int)name_len,
		 name ? name : "");
	snprintf(in->arch, sizeof(in->arch), "%.*s", (int)arch_len,
		 arch ? arch : "");
	in->nt = np_gguf_n_tensors(in->g);
	for (size_t i = 0; i < in->nt; i++) {
		const struct np_gguf_tensor *te = np_gguf_tensor(in->g, i);
		struct type_sum *ts = in->ts;
		unsigned int k;

		in->bytes += te->size;
		in->params += te->n_elems;
		for (k = 0; k < in->nts && ts[k].type != te->type; k++)
			;
		if (k == in->nts) {
			if (in->nts == sizeof(in->ts) / sizeof(in->ts[0]))
				continue;
			ts[in->nts++] =
				(struct type_sum){te->type, 0, 0, te->name};
		}
		ts[k].count++;
		ts[k].bytes += te->size;
	}
	np_model_from_gguf(in->g, &keep, &in->m);
	np_tok_from_gguf(in->g, &keep, &in->tok);
	{
		struct np_log ck = {.fn = log_keep, .opaque = &in->chat_pr};
		enum np_chat_family f;

		const char *s;
		size_t l;

		/* a file without a template has no chat problem */
		if (!np_gguf_get_str(in->g, "tokenizer.chat_template", &s,
				     &l) &&
		    !np_chat_from_gguf(in->g, &ck, &f))
			in->chat = np_chat_family_name(f);
	}
	return NPT_EXIT_OK;
}

static void info_json(struct npt_json *j, const struct info *in)
{
	npt_json_kstr(j, "path", in->path);
	npt_json_kuint(j, "file_bytes", in->file_bytes);
	npt_json_kuint(j, "gguf_version", np_gguf_version(in->g));
	if (in->has_name)
		npt_json_kstr(j, "name", in->name);
	else
		npt_json_knull(j, "name");
	if (in->has_arch)
		npt_json_kstr(j, "architecture", in->arch);
	else
		npt_json_knull(j, "architecture");
	npt_json_kbool(j, "compilable", in->m != NULL);
	if (in->m)
		npt_shape_json(j, np_model_get_shape(in->m));
	else
		npt_json_knull(j, "shape");
	npt_json_key(j, "tensors");
	npt_json_obj_open(j);
	npt_json_kuint(j, "count", in->nt);
	npt_json_kuint(j, "bytes", in->bytes);
	npt_json_kuint(j, "params", in->params);
	npt_json_key(j, "types");
	npt_json_arr_open(j);
	for (unsigned int k = 0; k < in->nts; k++) {
		const char *tn = np_ggml_type_name(in->ts[k].type);

		npt_json_obj_open(j);
		if (tn)
			npt_json_kstr(j, "type", tn);
		else
			npt_json_kuint(j, "type", in->ts[k].type);
		npt_json_kuint(j, "count", in->ts[k].count);
		npt_json_kuint(j, "bytes", in->ts[k].bytes);
		npt_json_kbool(j, "readable",
			       np_ggml_type_readable(in->ts[k].type));
		npt_json_kstr(j, "first_tensor", in->ts[k].first);
		npt_json_obj_close(j);
	}
	npt_json_arr_close(j);
	npt_json_obj_close(j);
	if (in->tok) {
		npt_json_key(j, "vocab");
		npt_json_obj_open(j);
		npt_json_kstr(j, "kind",
			      npt_tok_kind_name(np_tok_kind(in->tok)));
		npt_json_kuint(j, "tokens", np_tok_n_vocab(in->tok));
		npt_json_kint(j, "bos", np_tok_bos(in->tok));
		npt_json_kint(j, "eos", np_tok_eos(in->tok));
		if (np_tok_pre(in->tok))
			npt_json_kstr(j, "pre", np_tok_pre(in->tok));
		else
			npt_json_knull(j, "pre");
		npt_json_obj_close(j);
	} else {
		npt_json_knull(j, "vocab");
	}
	if (in->chat)
		npt_json_kstr(j, "chat_template", in->chat);
	else
		npt_json_knull(j, "chat_template");
	npt_json_key(j, "problems");
	npt_json_arr_open(j);
	for (unsigned int i = 0; i < in->pr.n; i++)
		if (in->pr.msg[i])
			npt_json_str(j, in->pr.msg[i]);
	npt_json_arr_close(j);
}

static void info_text(const struct info *in)
{
	char sz[32], safe[2048];

	printf("file      %s (%s, GGUF v%u)\n", in->path,
	       npt_fmt_size(sz, sizeof(sz), in->file_bytes),
	       np_gguf_version(in->g));
	npt_escape(safe, sizeof(safe), in->name, strlen(in->name), false);
	printf("name      %s\n", in->has_name ? safe : "-");
	npt_escape(safe, sizeof(safe), in->arch, strlen(in->arch), false);
	printf("arch      %s\n", in->has_arch ? safe : "-");
	if (in->m)
		npt_shape_text(np_model_get_shape(in->m));
	printf("tensors   %zu, %.1fM parameters, %s:", in->nt, in->params / 1e6,
	       npt_fmt_size(sz, sizeof(sz), in->bytes));
	for (unsigned int k = 0; k < in->nts; k++) {
		const char *tn = np_ggml_type_name(in->ts[k].type);

		printf("%s %llu %s%s (%s)", k ? "," : "",
		       (unsigned long long)in->ts[k].count, tn ? tn : "type ",
		       tn ? "" : "?",
		       npt_fmt_size(sz, sizeof(sz), in->ts[k].bytes));
	}
	printf("\n");
	for (unsigned int k = 0; k < in->nts; k++) {
		const char *tn = np_ggml_type_name(in->ts[k].type);

		if (np_ggml_type_readable(in->ts[k].type))
			continue;
		printf("          np does not read %s tensors (%llu, the first "
		       "'%s')\n",
		       tn ? tn : "?", (unsigned long long)in->ts[k].count,
		       in->ts[k].first);
	}
	if (in->tok)
		printf("vocab     %s%s%s, %u tokens, BOS %d, EOS %d\n",
		       npt_tok_kind_name(np_tok_kind(in->tok)),
		       np_tok_pre(in->tok) ? " pre-tokenizer " : "",
		       np_tok_pre(in->tok) ? np_tok_pre(in->tok) : "",
		       np_tok_n_vocab(in->tok), np_tok_bos(in->tok),
		       np_tok_eos(in->tok));
	else
		printf("vocab     -\n");
	if (in->chat)
		printf("chat      %s\n", in->chat);
	else if (in->chat_pr.n && in->chat_pr.msg[0])
		printf("chat      - (%s)\n",
		       in->chat_pr.msg[0] +
			       (strncmp(in->chat_pr.msg[0], "chat: ", 6) ? 0 :
									   6));
	else
		printf("chat      -\n");
	printf("np        %s\n", in->m ? "compiles it" : "cannot compile it:");
	for (unsigned int i = 0; i < in->pr.n; i++)
		if (in->pr.msg[i]) {
			npt_escape(safe, sizeof(safe), in->pr.msg[i],
				   strlen(in->pr.msg[i]), false);
			printf("          %s\n", safe);
		}
}

static int model_info(struct npt *t, const char *path)
{
	struct info in = {.path = path};
	int rc = info_read(t, &in);

	if (rc)
		return rc;
	if (t->j)
		info_json(t->j, &in);
	else
		info_text(&in);
	for (unsigned int i = 0; i < in.pr.n; i++)
		free(in.pr.msg[i]);
	for (unsigned int i = 0; i < in.chat_pr.n; i++)
		free(in.chat_pr.msg[i]);
	np_tok_destroy(in.tok);
	np_model_destroy(in.m);
	np_gguf_close(in.g);
	return NPT_EXIT_OK;
}

/* ---------------------------------------------------------------- */
/* model tokenize, model detokenize                                   */

static int open_tok(struct npt *t, const char *path, struct np_gguf **g,
		    struct np_tok **tok)
{
	struct np_log lg = {.fn = npt_log_err, .opaque = t};
	int rc = npt_open_gguf(t, path, g), ret;

	if (rc)
		return rc;
	ret = np_tok_from_gguf(*g, &lg, tok);
	if (ret) {
		npt_err(t,
			"%s holds no tokenizer np reads (tokenizer.ggml.model "
			"llama or gpt2): %s",
			path, strerror(-ret));
		return npt_file_exit(ret);
	}
	return NPT_EXIT_OK;
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

/* One model tokenize: the text, its ids and the text they decode to. */
struct tokenize {
	const char *path, *tfile, *ids_out;
	bool bos, special;
	char *text, *back;
	size_t len, blen;
	struct np_gguf *g;
	struct np_tok *tok;
	int32_t *ids;
	size_t n;
	bool checked; /* encoded and decoded: there is a report */
};

/* The options, the model FILE and the text (TEXT or -f TEXTFILE). */
static int tokenize_parse(struct npt *t, struct tokenize *z, int argc,
			  char **argv)
{
	static const struct option opts[] = {
		{"file", required_argument, NULL, 'f'},
		{"bos", no_argument, NULL, 'b'},
		{"special", no_argument, NULL, 's'},
		{"ids-out", required_argument, NULL, 'o'},
		{0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "f:", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			z->tfile = optarg;
			break;
		case 'o':
			z->ids_out = optarg;
			break;
		case 'b':
			z->bos = true;
			break;
		case 's':
			z->special = true;
			break;
		default:
			return npt_usage(t, "model tokenize: bad option '%s'",
					 argv[optind - 1]);
		}
	}
	if (optind >= argc || argc - optind != (z->tfile ? 1 : 2))
		return npt_usage(t, "model tokenize takes FILE and TEXT (or "
				    "FILE and -f TEXTFILE)");
	z->path = argv[optind];
	return npt_text_arg(t, z->tfile, argv[optind + 1], &z->text, &z->len);
}

/* Encode, decode back and compare: NPT_EXIT_FAIL if the text differs. */
static int tokenize_check(struct npt *t, struct tokenize *z)
{
	size_t diff;
	int rc = open_tok(t, z->path, &z->g, &z->tok), ret;

	if (rc)
		return rc;
	ret = npt_encode(z->tok, z->text, z->len, z->bos,
			 z->special ? NP_TOK_PARSE_SPECIAL : 0, &z->ids, &z->n);
	ret = ret ? ret : decode(z->tok, z->ids, z->n, &z->back, &z->blen);
	if (ret) {
		npt_err(t, "tokenizing %zu bytes with %s failed: %s", z->len,
			z->path, strerror(-ret));
		return NPT_EXIT_DEVERR;
	}
	z->checked = true;
	for (diff = 0;
	     diff < z->len && diff < z->blen && z->text[diff] == z->back[diff];
	     diff++)
		;
	if (diff < z->len || z->blen != z->len) {
		npt_err(t,
			"round trip of %s's tokenizer differs: the text has "
			"%zu "
			"bytes, decoding its %zu tokens gives %zu, first "
			"difference at byte %zu",
			z->path, z->len, z->n, z->blen, diff);
		return NPT_EXIT_FAIL;
	}
	return NPT_EXIT_OK;
}

/* The ids as little-endian int32 to z->ids_out (a corpus for training) */
static int tokenize_write_ids(struct npt *t, const struct tokenize *z)
{
	FILE *f = fopen(z->ids_out, "wb");
	int err = 0;

	if (!f) {
		npt_err(t, "cannot create %s: %s", z->ids_out, strerror(errno));
		return NPT_EXIT_USAGE;
	}
	for (size_t i = 0; i < z->n && !err; i++) {
		uint32_t v = (uint32_t)z->ids[i];
		unsigned char b[4] = {v & 0xff, v >> 8 & 0xff, v >> 16 & 0xff,
				      v >> 24};

		err = fwrite(b, 1, 4, f) != 4;
	}
	if (fclose(f) || err) {
		npt_err(t, "writing %s failed: %s", z->ids_out,
			strerror(errno));
		return NPT_EXIT_DEVERR;
	}
	return NPT_EXIT_OK;
}

static void tokenize_report(struct npt *t, const struct tokenize *z, int rc)
{
	if (!t->j && z->ids_out) {
		printf("%zu tokens for %zu bytes written to %s; %s\n", z->n,
		       z->len, z->ids_out,
		       rc ? "decoding them does NOT give the text back" :
			    "decoding them gives the text back");
		return;
	}
	if (!t->j) {
		for (size_t i = 0; i < z->n; i++)
			printf("%s%d", i ? " " : "", z->ids[i]);
		printf("\n%zu tokens for %zu bytes; %s\n", z->n, z->len,
		       rc ? "decoding them does NOT give the text back" :
			    "decoding them gives the text back");
		return;
	}
	npt_json_key(t->j, "ids");
	npt_json_arr_open(t->j);
	for (size_t i = 0; i < z->n; i++)
		npt_json_int(t->j, z->ids[i]);
	npt_json_arr_close(t->j);
	npt_json_key(t->j, "pieces");
	npt_json_arr_open(t->j);
	for (size_t i = 0; i < z->n; i++) {
		char *p = NULL;
		size_t pl;

		if (decode(z->tok, &z->ids[i], 1, &p, &pl))
			npt_json_null(t->j);
		else
			npt_json_str(t->j, p);
		free(p);
	}
	npt_json_arr_close(t->j);
	npt_json_kuint(t->j, "tokens", z->n);
	npt_json_kuint(t->j, "bytes", z->len);
	npt_json_kbool(t->j, "round_trip", rc == NPT_EXIT_OK);
}

static int model_tokenize(struct npt *t, int argc, char **argv)
{
	struct tokenize z = {0};
	int rc = tokenize_parse(t, &z, argc, argv);

	if (!rc)
		rc = tokenize_check(t, &z);
	if (z.checked && z.ids_out) {
		int wrc = tokenize_write_ids(t, &z);

		rc = rc ? rc : wrc;
	}
	if (z.checked)
		tokenize_report(t, &z, rc);
	free(z.back);
	free(z.ids);
	free(z.text);
	np_tok_destroy(z.tok);
	np_gguf_close(z.g);
	return rc;
}

/* Token ids as separate arguments, or one list split by spaces/commas,
 * into a malloc()ed array. Returns an exit code. */
static int detokenize_ids(struct npt *t, int argc, char **argv, int32_t **out,
			  size_t *nout)
{
	int32_t *ids = NULL;
	size_t n = 0, cap = 0;

	for (int a = 0; a < argc; a++) {
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
	*out = ids;
	*nout = n;
	return NPT_EXIT_OK;
}

static int model_detokenize(struct npt *t, int argc, char **argv)
{
	const char *path;
	struct np_gguf *g = NULL;
	struct np_tok *tok = NULL;
	int32_t *ids = NULL;
	char *text = NULL;
	size_t n = 0, len = 0;
	int rc, ret;

	/* "+": an id like -5 is refused as an id, not as an option */
	if (getopt_long(argc, argv, "+", NULL, NULL) != -1)
		return npt_usage(t, "model detokenize: bad option '%s'",
				 argv[optind - 1]);
	if (argc - optind < 2)
		return npt_usage(t, "model detokenize takes FILE and token "
				    "ids");
	path = argv[optind];
	rc = detokenize_ids(t, argc - optind - 1, argv + optind + 1, &ids, &n);
	if (rc)
		return rc;
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
		npt_print_text(stdout, text, len);
		printf("\n");
	}
out:
	free(text);
	free(ids);
	np_tok_destroy(tok);
	np_gguf_close(g);
	return rc;
}

int npt_cmd_model(struct npt *t, int argc, char **argv)
{
	static const char *const subs[] = {"info",   "tokenize", "detokenize",
					   "mkgguf", "greedy",	 "quality"};
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
		return npt_model_mkgguf(t, argc - 1, argv + 1);
	if (!strcmp(sub, "greedy"))
		return npt_model_greedy(t, argc - 1, argv + 1);
	if (!strcmp(sub, "quality"))
		return npt_model_quality(t, argc - 1, argv + 1);
	return npt_usage(t,
			 "model: unknown subcommand '%s'; use info, tokenize, "
			 "detokenize, mkgguf, greedy or quality",
			 sub);
}
