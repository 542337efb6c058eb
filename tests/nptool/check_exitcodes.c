// SPDX-License-Identifier: MIT
/*
 * Exit codes against their documentation: the table under "## Exit
 * codes" in docs/nptool.md is parsed, and every error path below is named
 * by words of one row; the command must exit with that row's code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

#define MAX_CODES 16

struct row {
	int code;
	char meaning[1024];
};

/* The rows of the exit code table; their number. */
static unsigned int doc_table(struct row *rows)
{
	FILE *f = fopen(NPTOOL_DOC, "r");
	char line[2048];
	bool in = false;
	unsigned int n = 0;

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		int code, off = 0;

		if (!strncmp(line, "## ", 3)) {
			in = !strcmp(line, "## Exit codes\n");
			continue;
		}
		if (!in || sscanf(line, "| %d |%n", &code, &off) != 1 || !off)
			continue;
		ck_assert_uint_lt(n, MAX_CODES);
		rows[n].code = code;
		snprintf(rows[n].meaning, sizeof(rows[n].meaning), "%s",
			 line + off);
		n++;
	}
	fclose(f);
	return n;
}

/* The code of the one row whose meaning holds phrase. */
static int code_of(const struct row *rows, unsigned int n, const char *phrase)
{
	int code = -1;

	for (unsigned int i = 0; i < n; i++) {
		if (!strstr(rows[i].meaning, phrase))
			continue;
		ck_assert_msg(code < 0, "'%s' is in two rows of the table",
			      phrase);
		code = rows[i].code;
	}
	ck_assert_msg(code >= 0,
		      "no row of docs/nptool.md's exit code table "
		      "says '%s'",
		      phrase);
	return code;
}

START_TEST(test_table)
{
	struct row rows[MAX_CODES];
	unsigned int n = doc_table(rows);

	/* 0..5, in order, each with its meaning */
	ck_assert_uint_eq(n, 6);
	for (unsigned int i = 0; i < n; i++) {
		ck_assert_int_eq(rows[i].code, (int)i);
		ck_assert_uint_gt(strlen(rows[i].meaning), 10);
	}
}
END_TEST

/* One error path: the arguments (NULL-terminated, at most 14) and the
 * words of the table row it belongs to. */
struct path {
	const char *spec;
	const char *phrase;
	const char *argv[16];
};

START_TEST(test_error_paths)
{
	char tmp[] = "/tmp/np-exit-XXXXXX", loop[64], text[64], model[64];
	struct row rows[MAX_CODES];
	unsigned int n = doc_table(rows);
	char bad[8192] = "";
	size_t used = 0;
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(tmp));
	snprintf(loop, sizeof(loop), "%s/loop", tmp);
	ck_assert_int_eq(symlink(loop, loop), 0);
	snprintf(text, sizeof(text), "%s/text", tmp);
	f = fopen(text, "w");
	ck_assert_ptr_nonnull(f);
	fputs("not a model\n", f);
	fclose(f);
	/* the demo model with another architecture */
	snprintf(model, sizeof(model), "%s/gpt.gguf", tmp);
	{
		char cmd[512];

		snprintf(cmd, sizeof(cmd),
			 "sed 's/general.architecture\\x08\\x00\\x00\\x00"
			 "\\x05\\x00\\x00\\x00\\x00\\x00\\x00\\x00llama/"
			 "general.architecture\\x08\\x00\\x00\\x00\\x05\\x00"
			 "\\x00\\x00\\x00\\x00\\x00\\x00gpt2x/' %s > %s",
			 NPT_DEMO_MODEL, model);
		ck_assert_int_eq(system(cmd), 0);
	}
	const struct path paths[] = {
		{"emu:6", "everything asked for was done", {"list"}},
		{"emu:6", "bad option", {"run", "--bogus"}},
		{"emu:6", "bad option", {"list", "--bogus"}},
		{"emu:6", "value", {"run", "--max-seq", "0"}},
		{"emu:6", "value", {"run", "--top-p", "nan"}},
		{"emu:6", "value", {"memtest", "--size", "7"}},
		{"emu:6", "value", {"list", "--format", "xml"}},
		{"emu:6", "value", {"status", "--query", "bogus"}},
		{"emu:6", "bad option", {"topo", "--bogus"}},
		{"emu:6", "bad option", {"events", "--bogus"}},
		{"emu:6", "value", {"events", "--kind", "bogus"}},
		{"emu:6", "value", {"events", "--since", "yesterday"}},
		{"emu:6", "bad option", {"exporter", "--bogus"}},
		{"emu:6", "value", {"exporter", "--listen", "nowhere"}},
		{"emu:6", "card name", {"reset", "nocard"}},
		{"emu:6", "card name", {"memtest", "99"}},
		{"foo", "or device spec", {"list"}},
		{"foo", "or device spec", {"info"}},
		{"foo", "or device spec", {"run", "-q"}},
		{"emu:6", "missing", {"run", "-q", "-m", "/nonexistent.gguf"}},
		{"emu:6", "missing", {"model", "info", "/nonexistent.gguf"}},
		{"emu:6", "missing", {"compile", "/nonexistent.gguf"}},
		{"emu:6", "missing", {"run", "-q", "-f", "/nonexistent.txt"}},
		{"emu:6", "symlink loop", {"run", "-q", "-m", loop}},
		{"emu:6", "symlink loop", {"model", "info", loop}},
		{"emu:6", "a directory", {"run", "-q", "-m", tmp}},
		{"emu:6", "a directory", {"run", "-q", "-f", tmp}},
		{"emu:6", "a directory", {"compile", tmp}},
		{"emu:6", "not GGUF", {"model", "info", text}},
		{"emu:6", "not GGUF", {"run", "-q", "-m", text}},
		{"emu:6",
		 "not a model np compiles",
		 {"run", "-q", "-m", model}},
		{"emu:6", "not a model np compiles", {"compile", model}},
		{"emu:1", "no card matched", {"p2p"}},
		{"emu:6",
		 "removed during a run",
		 {"run", "-q", "-c", "5", "-n", "4", "-M", "2", "-t", "8",
		  "--no-stop", "--inject", "2:remove", "--inject-after", "5"}},
		{"emu:6",
		 "does not fit the cards",
		 {"compile", "--cards", "2", "--batch", "4096", "--max-seq",
		  "65536", NPT_DEMO_MODEL}},
	};

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		const struct path *p = &paths[i];
		int want = code_of(rows, n, p->phrase);
		const char *const *a = p->argv;
		struct tst_run r;

		setenv("NP_DEVICES", p->spec, 1);
		tst_run(&r, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7],
			a[8], a[9], a[10], a[11], a[12], a[13], a[14], NULL);
		/* all paths run; the mismatches are listed together */
		if (r.status != want)
			used += (size_t)snprintf(
				bad + used, sizeof(bad) - used,
				"\n%s %s %s %s (%s): exit %d, the docs say %d "
				"('%s')",
				a[0], a[1] ? a[1] : "", a[2] ? a[2] : "",
				a[3] ? a[3] : "", p->spec, r.status, want,
				p->phrase);
		ck_assert_uint_lt(used, sizeof(bad));
		tst_run_free(&r);
	}
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
		ck_assert_int_eq(system(cmd), 0);
	}
	ck_assert_msg(!used, "exit codes against docs/nptool.md:%s", bad);
}
END_TEST

Suite *np_suite_exitcodes(void)
{
	Suite *s = suite_create("exitcodes");
	TCase *tc = tcase_create("documented");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_table);
	tcase_add_test(tc, test_error_paths);
	suite_add_tcase(s, tc);
	return s;
}
