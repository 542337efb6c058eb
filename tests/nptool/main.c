// SPDX-License-Identifier: MIT
/*
 * Runner of the nptool suite: the JSON writer against a separate parser,
 * the command line contract, every command against 16 emulated cards, and
 * the sysfs-level commands against fake sysfs trees, the model commands
 * against libnp's model pipeline; and with
 * NP_DEVICES=vfio:... the guest suite on real cards over VFIO.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "npt_test.h"

void (*npt_pre_exec)(void);

static char *slurp(FILE *f)
{
	long len;
	char *s;

	fflush(f);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	s = calloc(1, (size_t)(len > 0 ? len : 0) + 1);
	ck_assert_ptr_nonnull(s);
	if (len > 0)
		ck_assert_uint_eq(fread(s, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	return s;
}

void npt_run(struct npt_run *r, ...)
{
	const char *tool = getenv("NPTOOL");
	const char *argv[64] = {tool ? tool : NPTOOL_PATH};
	FILE *out = tmpfile(), *err = tmpfile();
	unsigned int argc = 1;
	int status;
	pid_t pid;
	va_list ap;

	ck_assert_ptr_nonnull(out);
	ck_assert_ptr_nonnull(err);
	va_start(ap, r);
	while ((argv[argc] = va_arg(ap, const char *)))
		ck_assert_uint_lt(++argc, 63);
	va_end(ap);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(fileno(out), STDOUT_FILENO);
		dup2(fileno(err), STDERR_FILENO);
		if (npt_pre_exec)
			npt_pre_exec();
		execv(argv[0], (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) :
					128 + WTERMSIG(status);
	r->out = slurp(out);
	r->err = slurp(err);
	r->json = jv_parse(r->out, NULL);
}

void npt_run_free(struct npt_run *r)
{
	free(r->out);
	free(r->err);
	jv_free(r->json);
}

struct jv *npt_envelope(const struct npt_run *r, const char *cmd, int rc)
{
	ck_assert_msg(r->json,
		      "stdout is not one JSON document (exit %d, stderr '%s'): "
		      "'%s'",
		      r->status, r->err, r->out);
	ck_assert_int_eq(r->json->type, JV_OBJ);
	ck_assert_double_eq(jv_num(r->json, "schema_version"), 1);
	ck_assert_str_eq(jv_str(r->json, "command"), cmd);
	ck_assert_ptr_nonnull(jv_str(r->json, "nptool_version"));
	ck_assert_int_eq(jv_get(r->json, "errors")->type, JV_ARR);
	ck_assert_msg(jv_num(r->json, "exit_code") == rc,
		      "exit_code %g, expected %d; stderr: %s",
		      jv_num(r->json, "exit_code"), rc, r->err);
	ck_assert_int_eq(r->status, rc);
	return r->json;
}

unsigned int npt_lines(const char *s)
{
	unsigned int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

int main(void)
{
	SRunner *sr = srunner_create(np_suite_json());
	const char *spec = getenv("NP_DEVICES");
	int failed;

	srunner_add_suite(sr, np_suite_cli());
	srunner_add_suite(sr, np_suite_emu());
	srunner_add_suite(sr, np_suite_sysfs());
	srunner_add_suite(sr, np_suite_model());
	/* real cards: only where NP_DEVICES names them (the guest run) */
	if (spec && !strncmp(spec, "vfio:", 5))
		srunner_add_suite(sr, np_suite_guest());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
