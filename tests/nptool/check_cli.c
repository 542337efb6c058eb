// SPDX-License-Identifier: MIT
/* The command line contract: help, version, usage errors, exit codes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

/* The commands of nptool(1); the table in main.c must have them all. */
static const char *const commands[] = {
	"list",	   "info",     "status",   "top",      "reset",
	"memtest", "dma",      "p2p",	   "validate", "doctor",
	"cdi",	   "pipeline", "model",	   "compile",  "bench",
	"verify",  "run",      "exporter", "topo",     "events",
};
#define NCMDS (sizeof(commands) / sizeof(commands[0]))

START_TEST(test_no_args_is_usage)
{
	struct tst_run r;

	tst_run(&r, NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "Usage: nptool"));
	ck_assert_str_eq(r.out, "");
	tst_run_free(&r);
}
END_TEST

START_TEST(test_help_lists_commands)
{
	struct tst_run r;

	tst_run(&r, "--help", NULL);
	ck_assert_int_eq(r.status, 0);
	for (size_t i = 0; i < NCMDS; i++) {
		char line[32];

		snprintf(line, sizeof(line), "\n  %s ", commands[i]);
		ck_assert_msg(strstr(r.out, line), "help lacks %s",
			      commands[i]);
	}
	ck_assert_ptr_nonnull(strstr(r.out, "Exit codes"));
	tst_run_free(&r);
}
END_TEST

START_TEST(test_command_help)
{
	struct tst_run r;

	/* both spellings, for every command: usage on stdout, exit 0 */
	tst_run(&r, commands[_i], "--help", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, commands[_i]));
	ck_assert_ptr_nonnull(strstr(r.out, "Usage: nptool"));
	tst_run_free(&r);
	tst_run(&r, "help", commands[_i], NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, commands[_i]));
	tst_run_free(&r);
}
END_TEST

START_TEST(test_version)
{
	struct tst_run r;

	tst_run(&r, "-V", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "JSON schema 1"));
	tst_run_free(&r);
}
END_TEST

START_TEST(test_unknown_command_and_option)
{
	struct tst_run r;

	tst_run(&r, "frobnicate", NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "frobnicate"));
	tst_run_free(&r);
	tst_run(&r, "--frobnicate", "list", NULL);
	ck_assert_int_eq(r.status, 2);
	tst_run_free(&r);
	tst_run(&r, "help", "frobnicate", NULL);
	ck_assert_int_eq(r.status, 2);
	tst_run_free(&r);
}
END_TEST

/* Every integer option goes through one parser: the option and the value
 * are named, a sign or a value out of range is refused, not wrapped. */
START_TEST(test_integer_options)
{
	static const char *const bad[][4] = {
		{"run", "--requests", "x", "--requests: 'x' is not a number"},
		{"run", "-n", "-3", "--requests: '-3' is not a number"},
		{"run", "--max-seq", "4294967296",
		 "--max-seq: '4294967296' is not a number"},
		{"model", "mkgguf", "--seed=+1",
		 "--seed: '+1' is not a number"},
		{"bench", "--cards", "0",
		 "--cards: '0' is below its minimum 1"},
	};
	struct tst_run r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tst_run(&r, bad[i][0], bad[i][1], bad[i][2], NULL);
		ck_assert_int_eq(r.status, 2);
		ck_assert_msg(strstr(r.err, bad[i][3]), "%s %s %s: %s",
			      bad[i][0], bad[i][1], bad[i][2], r.err);
		tst_run_free(&r);
	}
}
END_TEST

START_TEST(test_bad_option_json_envelope)
{
	struct tst_run r;
	struct tst_jv *e;

	/* a usage error still yields one document with the error in it */
	tst_run(&r, "--json", commands[_i], "--no-such-option", NULL);
	e = tst_envelope(&r, commands[_i], 2);
	ck_assert_uint_ge(tst_jv_get(e, "errors")->n, 1);
	tst_run_free(&r);
}
END_TEST

START_TEST(test_bad_values)
{
	static const char *const bad[][4] = {
		{"memtest", "--level", "forever"},
		{"memtest", "--size", "12x"},
		{"memtest", "--size", "7"},
		{"dma", "--sizes", "0"},
		{"dma", "--sizes", "32M"},
		{"dma", "--iterations", "0"},
		{"p2p", "--size", "64M"},
		{"status", "--interval", "-1"},
		{"top", "--count", "zero"},
		/* beyond 32 bits: ran for ever (found by the CLI fuzzer) */
		{"top", "-n", "4294967296"},
		{"top", "-n", "99999999999999999999"},
		{"pipeline", "--interval", "0.01"},
		{"validate", "forever"},
		{"reset"},
		{"cdi", "--kind", "NoSlash"},
	};
	struct tst_run r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tst_run(&r, bad[i][0], bad[i][1], bad[i][2], bad[i][3], NULL);
		ck_assert_msg(r.status == 2, "%s %s %s: exit %d, not 2",
			      bad[i][0], bad[i][1] ? bad[i][1] : "",
			      bad[i][2] ? bad[i][2] : "", r.status);
		ck_assert_str_ne(r.err, "");
		tst_run_free(&r);
	}
}
END_TEST

START_TEST(test_bad_spec)
{
	struct tst_run r;

	/* a spec libnp refuses is the user's mistake: usage, named */
	tst_run(&r, "-d", "emu:0", "info", NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "emu:0"));
	tst_run_free(&r);
}
END_TEST

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text;
	long len;

	ck_assert_msg(f, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	text = calloc(1, (size_t)len + 1);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(fread(text, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	return text;
}

START_TEST(test_documented)
{
	char *man = read_file(NPTOOL_MAN), *doc = read_file(NPTOOL_DOC);
	char want[64];

	/* every command has its entry in nptool(1) and docs/nptool.md */
	for (size_t i = 0; i < NCMDS; i++) {
		snprintf(want, sizeof(want), "\n.B %s", commands[i]);
		ck_assert_msg(strstr(man, want), "nptool.1 lacks %s",
			      commands[i]);
		snprintf(want, sizeof(want), "### %s", commands[i]);
		ck_assert_msg(strstr(doc, want), "nptool.md lacks %s",
			      commands[i]);
	}
	/* and every exit code */
	for (int code = 0; code <= 5; code++) {
		snprintf(want, sizeof(want), ".B %d\n", code);
		ck_assert_msg(strstr(man, want), "nptool.1 lacks exit %d",
			      code);
		snprintf(want, sizeof(want), "| %d |", code);
		ck_assert_msg(strstr(doc, want), "nptool.md lacks exit %d",
			      code);
	}
	free(man);
	free(doc);
}
END_TEST

/* The bash completion, sourced into a plain bash: what it offers comes
 * from this nptool (commands, options, --query fields). */
static char *complete(const char *line)
{
	char cmd[1024], *out = calloc(1, 4096);
	FILE *p;
	size_t n;

	ck_assert_ptr_nonnull(out);
	snprintf(cmd, sizeof(cmd),
		 "bash --norc -c 'source \"%s\"; "
		 "read -ra COMP_WORDS <<<\"%s\"; COMP_WORDS[0]=\"%s\"; "
		 "[[ \"%s\" == *\" \" ]] && COMP_WORDS+=(\"\"); "
		 "COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _nptool; "
		 "echo \"${COMPREPLY[*]}\"'",
		 NPTOOL_COMPLETION, line, NPTOOL_PATH, line);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	n = fread(out, 1, 4095, p);
	out[n] = '\0';
	ck_assert_int_eq(pclose(p), 0);
	return out;
}

START_TEST(test_bash_completion)
{
	static const char *const cases[][2] = {
		{"nptool st", "status\n"},
		{"nptool -d emu:2 exp", "exporter\n"},
		{"nptool help valid", "validate\n"},
		{"nptool --pre", "--pretty\n"},
		{"nptool status --q", "--query\n"},
		{"nptool exporter --", "--listen\n"},
		{"nptool list --format ", "table csv json\n"},
		{"nptool status --query index,temp_m",
		 "index,temp_mc index,temp_max_mc\n"},
		{"nptool list --query hol", "holder holder_pid\n"},
		{"nptool events --kind re", "reset recovery\n"},
		{"nptool events --s", "--since\n"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = complete(cases[i][0]);

		ck_assert_msg(!strcmp(got, cases[i][1]), "'%s': '%s', not '%s'",
			      cases[i][0], got, cases[i][1]);
		free(got);
	}
}
END_TEST

Suite *np_suite_cli(void)
{
	Suite *s = suite_create("cli");
	TCase *tc = tcase_create("contract");

	tcase_add_test(tc, test_no_args_is_usage);
	tcase_add_test(tc, test_help_lists_commands);
	tcase_add_loop_test(tc, test_command_help, 0, NCMDS);
	tcase_add_test(tc, test_version);
	tcase_add_test(tc, test_integer_options);
	tcase_add_test(tc, test_unknown_command_and_option);
	tcase_add_loop_test(tc, test_bad_option_json_envelope, 0, NCMDS);
	tcase_add_test(tc, test_bad_values);
	tcase_add_test(tc, test_bash_completion);
	tcase_add_test(tc, test_bad_spec);
	tcase_add_test(tc, test_documented);
	suite_add_tcase(s, tc);
	return s;
}
