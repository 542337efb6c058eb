// SPDX-License-Identifier: MIT
/*
 * Replay of the fuzz corpora: every seed in fuzz/corpus/<harness>/ and
 * every crash reproducer in fuzz/regress/<harness>/ goes through the same
 * harness entry point the libFuzzer binaries use (fuzz/np_fuzz.h). A
 * harness aborts on a broken invariant, and the sanitizer build catches
 * memory errors, so a fixed crash that comes back fails this suite.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "test.h"
#include "np_fuzz.h"

static const struct {
	const char *name;
	int (*fn)(const uint8_t *data, size_t size);
} harnesses[] = {
	{"gguf", np_fuzz_gguf},	  {"compile", np_fuzz_compile},
	{"emu", np_fuzz_emu},	  {"card", np_fuzz_card},
	{"quant", np_fuzz_quant}, {"tok", np_fuzz_tok},
	{"chat", np_fuzz_chat},	  {"cli", np_fuzz_cli},
	{"http", np_fuzz_http},	  {"link", np_fuzz_link},
};

#define N_HARNESSES (int)(sizeof(harnesses) / sizeof(harnesses[0]))

/* Run every file of dir through fn; returns the number of files. */
static unsigned int replay_dir(const char *dir,
			       int (*fn)(const uint8_t *, size_t))
{
	struct dirent **ents;
	unsigned int files = 0;
	int n = scandir(dir, &ents, NULL, alphasort);

	if (n < 0) {
		ck_assert_int_eq(errno, ENOENT);
		return 0;
	}
	for (int i = 0; i < n; i++) {
		char path[4096];
		struct stat st;
		uint8_t *data;
		size_t len;

		snprintf(path, sizeof(path), "%s/%s", dir, ents[i]->d_name);
		/* subdirectories (regress/<harness>/unfixed/) are not replayed */
		if (ents[i]->d_name[0] == '.' || stat(path, &st) ||
		    !S_ISREG(st.st_mode)) {
			free(ents[i]);
			continue;
		}
		free(ents[i]);
		data = tst_read_file(path, &len);
		/* names the input in the log should the harness crash */
		fprintf(stderr, "replay %s (%zu bytes)\n", path, len);
		ck_assert_int_eq(fn(data, len), 0);
		free(data);
		files++;
	}
	free(ents);
	return files;
}

START_TEST(test_corpus)
{
	char dir[4096];

	snprintf(dir, sizeof(dir), "%s/corpus/%s", NP_FUZZ_DIR,
		 harnesses[_i].name);
	ck_assert_uint_gt(replay_dir(dir, harnesses[_i].fn), 0);
}
END_TEST

START_TEST(test_regress)
{
	char dir[4096];

	snprintf(dir, sizeof(dir), "%s/regress/%s", NP_FUZZ_DIR,
		 harnesses[_i].name);
	replay_dir(dir, harnesses[_i].fn);
	/* the harness returns 0 for every input, reproducers included */
	ck_assert_int_eq(harnesses[_i].fn((const uint8_t *)"", 0), 0);
}
END_TEST

Suite *np_suite_replay(void)
{
	Suite *s = suite_create("replay");
	TCase *tc = tcase_create("corpus");

	/* the emulator seeds each reset a card and wait on it */
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, test_corpus, 0, N_HARNESSES);
	suite_add_tcase(s, tc);
	tc = tcase_create("regress");
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, test_regress, 0, N_HARNESSES);
	suite_add_tcase(s, tc);
	return s;
}
