// SPDX-License-Identifier: MIT
/* nptool suite: running the nptool binary and reading its output back. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

void (*tst_pre_exec)(void);

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

void tst_run(struct tst_run *r, ...)
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
		if (tst_pre_exec)
			tst_pre_exec();
		execv(argv[0], (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) :
					128 + WTERMSIG(status);
	r->out = slurp(out);
	r->err = slurp(err);
	r->json = tst_jv_parse(r->out, NULL);
}

void tst_run_free(struct tst_run *r)
{
	free(r->out);
	free(r->err);
	tst_jv_free(r->json);
}

struct tst_jv *tst_envelope(const struct tst_run *r, const char *cmd, int rc)
{
	ck_assert_msg(r->json,
		      "stdout is not one JSON document (exit %d, stderr '%s'): "
		      "'%s'",
		      r->status, r->err, r->out);
	ck_assert_int_eq(r->json->type, TST_JV_OBJ);
	ck_assert_double_eq(tst_jv_num(r->json, "schema_version"), 1);
	ck_assert_str_eq(tst_jv_str(r->json, "command"), cmd);
	ck_assert_ptr_nonnull(tst_jv_str(r->json, "nptool_version"));
	ck_assert_int_eq(tst_jv_get(r->json, "errors")->type, TST_JV_ARR);
	ck_assert_msg(tst_jv_num(r->json, "exit_code") == rc,
		      "exit_code %g, expected %d; stderr: %s",
		      tst_jv_num(r->json, "exit_code"), rc, r->err);
	ck_assert_int_eq(r->status, rc);
	return r->json;
}

unsigned int tst_lines(const char *s)
{
	unsigned int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}
