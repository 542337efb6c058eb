// SPDX-License-Identifier: MIT
/*
 * Runner of the np-card qtest suites. QEMU comes from $NP_QEMU (CTest sets
 * it from the NP_QEMU cache variable); NP_QTEST_SEED fixes the fuzz seed.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "test.h"

int main(void)
{
	char base[] = "/tmp/np-qtest-run.XXXXXX";
	SRunner *sr;
	int failed;

	if (!mkdtemp(base) || setenv("NP_QTEST_TMPDIR", base, 1)) {
		perror("np_qtest_tests: cannot create a directory in /tmp");
		return EXIT_FAILURE;
	}
	sr = srunner_create(np_suite_np_card());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	tst_reap(base);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
