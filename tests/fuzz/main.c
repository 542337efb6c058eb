// SPDX-License-Identifier: MIT
/* Runner of the fuzz suite: corpus replay and bad-input errors. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "check_fuzz.h"

uint8_t *npf_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	ck_assert_int_ge(n, 0);
	ck_assert_int_eq(fseek(f, 0, SEEK_SET), 0);
	buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

int main(void)
{
	SRunner *sr = srunner_create(np_suite_replay());
	int failed;

	srunner_add_suite(sr, np_suite_badinput());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
