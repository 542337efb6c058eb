// SPDX-License-Identifier: MIT
/*
 * Reference vocabularies: every ggml-vocab-*.gguf in NP_VOCAB_DIR (the
 * environment variable, else the CMake cache variable) with its
 * .inp texts and the ids llama.cpp produces for them (.out) must encode
 * identically (no BOS, no special-token parsing). The directory's README
 * gives the format. Run as `np_model_tests
 * vocab`; it exits 77 (a CTest skip) when the directory is absent.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

#define VOCAB_SEP "\n__ggml_vocab_test__\n"
#define VOCAB_MAX 64

static char vocab_names[VOCAB_MAX][256];
static int n_vocabs;

static int name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

const char *tst_vocab_dir(void)
{
	const char *e = getenv("NP_VOCAB_DIR");

	return e && *e ? e : NP_VOCAB_DIR;
}

int tst_vocab_scan(void)
{
	DIR *d = opendir(tst_vocab_dir());
	struct dirent *e;

	if (!d)
		return -errno;
	n_vocabs = 0;
	while ((e = readdir(d)) && n_vocabs < VOCAB_MAX) {
		size_t l = strlen(e->d_name);

		if (!strncmp(e->d_name, "ggml-vocab-", 11) && l > 5 &&
		    l < sizeof(vocab_names[0]) &&
		    !strcmp(e->d_name + l - 5, ".gguf"))
			snprintf(vocab_names[n_vocabs++],
				 sizeof(vocab_names[0]), "%s", e->d_name);
	}
	closedir(d);
	qsort(vocab_names, (size_t)n_vocabs, sizeof(vocab_names[0]), name_cmp);
	return n_vocabs;
}

static char *slurp(const char *name, const char *ext, size_t *len)
{
	char path[1024];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/%s%s", tst_vocab_dir(), name, ext);
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	ck_assert_int_ge(n, 0);
	ck_assert_int_eq(fseek(f, 0, SEEK_SET), 0);
	buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = 0;
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* the expected ids of one .out line into ids; their count */
static size_t parse_ids(const char *line, size_t len, int32_t *ids, size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < len;) {
		char *end;
		long v;

		if (line[i] == ' ' || line[i] == '\t' || line[i] == '\r') {
			i++;
			continue;
		}
		v = strtol(line + i, &end, 10);
		ck_assert_msg(end > line + i, "bad id in .out line '%.*s'",
			      (int)len, line);
		ck_assert_uint_lt(n, cap);
		ids[n++] = (int32_t)v;
		i = (size_t)(end - line);
	}
	return n;
}

/* one text: 1 when it encodes to the expected ids */
static int check_text(const struct np_tok *t, const char *name, size_t k,
		      const char *text, size_t tlen, const char *line,
		      size_t llen)
{
	size_t cap = 4 * tlen + 16, n_want, n;
	int32_t *want = malloc(cap * sizeof(*want));
	int32_t *got = malloc(cap * sizeof(*got));
	int ok;

	ck_assert_ptr_nonnull(want);
	ck_assert_ptr_nonnull(got);
	n_want = parse_ids(line, llen, want, cap);
	ck_assert_int_eq(np_tok_encode(t, text, tlen, got, cap, &n), 0);
	ok = n == n_want && !memcmp(got, want, n * sizeof(*got));
	if (!ok) {
		fprintf(stderr, "vocab: %s: text %zu '%.*s': want", name, k,
			(int)tlen, text);
		for (size_t i = 0; i < n_want; i++)
			fprintf(stderr, " %d", want[i]);
		fprintf(stderr, ", got");
		for (size_t i = 0; i < n; i++)
			fprintf(stderr, " %d", got[i]);
		fprintf(stderr, "\n");
	}
	free(want);
	free(got);
	return ok;
}

START_TEST(test_vocab_file)
{
	const char *name = vocab_names[_i];
	char path[1024];
	struct np_gguf *g;
	struct np_tok *t;
	size_t ilen, olen, n_text = 0, pass = 0;
	char *inp = slurp(name, ".inp", &ilen),
	     *out = slurp(name, ".out", &olen);
	const char *ip = inp, *op = out;

	snprintf(path, sizeof(path), "%s/%s", tst_vocab_dir(), name);
	tst_reset();
	ck_assert_int_eq(np_gguf_open(path, &tst_log, &g), 0);
	ck_assert_msg(np_tok_from_gguf(g, &tst_log, &t) == 0, "%s: %s", name,
		      tst_last);
	for (;;) {
		const char *sep = strstr(ip, VOCAB_SEP);
		const char *end = sep ? sep : inp + ilen;
		const char *nl = memchr(op, '\n', (size_t)(out + olen - op));
		const char *oend = nl ? nl : out + olen;

		/* the text after a final separator is not a test */
		if (!sep && end == ip)
			break;
		ck_assert_msg(op < out + olen,
			      "%s: .out has fewer lines than .inp has texts",
			      name);
		pass += (size_t)check_text(t, name, n_text, ip,
					   (size_t)(end - ip), op,
					   (size_t)(oend - op));
		n_text++;
		op = nl ? nl + 1 : oend;
		if (!sep)
			break;
		ip = sep + strlen(VOCAB_SEP);
	}
	ck_assert_msg(op >= out + olen,
		      "%s: .out has more lines than .inp has texts", name);
	printf("vocab: %s (%s): %zu/%zu pass\n", name,
	       np_tok_pre(t) ? np_tok_pre(t) : "spm", pass, n_text);
	fflush(stdout);
	ck_assert_uint_gt(n_text, 0);
	ck_assert_uint_eq(pass, n_text);
	np_tok_destroy(t);
	np_gguf_close(g);
	free(inp);
	free(out);
}
END_TEST

Suite *np_suite_vocab(void)
{
	Suite *s = suite_create("vocab");
	TCase *tc = tcase_create("reference");

	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_vocab_file, 0, n_vocabs);
	suite_add_tcase(s, tc);
	return s;
}
