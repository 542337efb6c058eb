// SPDX-License-Identifier: MIT
/* Runner of the model suites, and the helpers they share (test.h). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

char tst_last[1024];

static void log_fn(void *opaque, enum np_log_level level, const char *msg)
{
	snprintf(tst_last, sizeof(tst_last), "%s", msg);
}

const struct np_log tst_log = {.fn = log_fn, .opaque = NULL};

void tst_reset(void)
{
	tst_last[0] = 0;
}

char *tst_sample(size_t *len)
{
	FILE *f = fopen(NP_SAMPLE_TEXT, "rb");
	char *buf;
	long n;

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	ck_assert_int_gt(n, 4096);
	ck_assert_int_eq(fseek(f, 0, SEEK_SET), 0);
	buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = 0;
	fclose(f);
	*len = (size_t)n;
	return buf;
}

const char *tst_write_model(const struct np_model_shape *s, uint32_t wtype,
			    int tok_kind)
{
	static char path[64];
	struct np_model *m;
	size_t len;
	char *text = tst_sample(&len);
	int fd;

	snprintf(path, sizeof(path), "/tmp/np-model-test-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(np_model_synthetic(s, 7, &m), 0);
	ck_assert_int_eq(
		np_model_write_gguf(m, wtype, tok_kind, text, len, path), 0);
	np_model_destroy(m);
	free(text);
	return path;
}

/*
 * No argument: every suite but the reference vocabularies and the demo
 * model. "vocab": only those, exiting 77 (CTest's skip) when NP_VOCAB_DIR
 * is absent. "demo": the committed demo model (check_demo.c).
 */
int main(int argc, char **argv)
{
	SRunner *sr;
	int failed;

	if (argc > 1 && !strcmp(argv[1], "vocab")) {
		int n = tst_vocab_scan();

		if (n <= 0) {
			printf("vocab: no reference vocabularies in %s (%s); "
			       "skipped. Point NP_VOCAB_DIR (environment or "
			       "CMake cache) at a copy of "
			       "shared/testdata/vocab to run them\n",
			       tst_vocab_dir(),
			       n ? strerror(-n) : "no ggml-vocab-*.gguf");
			return 77;
		}
		sr = srunner_create(np_suite_vocab());
	} else if (argc > 1 && !strcmp(argv[1], "demo")) {
		sr = srunner_create(np_suite_demo());
	} else {
		sr = srunner_create(np_suite_gguf());
		srunner_add_suite(sr, np_suite_dequant());
		srunner_add_suite(sr, np_suite_arch());
		srunner_add_suite(sr, np_suite_tok());
		srunner_add_suite(sr, np_suite_chat());
		srunner_add_suite(sr, np_suite_quant());
		srunner_add_suite(sr, np_suite_compile());
		srunner_add_suite(sr, np_suite_ref());
		srunner_add_suite(sr, np_suite_family());
		srunner_add_suite(sr, np_suite_calib());
		srunner_add_suite(sr, np_suite_quality());
	}
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
