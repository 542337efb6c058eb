// SPDX-License-Identifier: MIT
/*
 * Runner of the np-card qtest suites. QEMU comes from $NP_QEMU (CTest sets
 * it from the NP_QEMU cache variable); NP_QTEST_SEED fixes the fuzz seed.
 */
#include <check.h>
#include <stdlib.h>

#include "np_qtest_suites.h"

int main(void)
{
	SRunner *sr = srunner_create(np_suite_np_card());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
