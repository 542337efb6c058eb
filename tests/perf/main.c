// SPDX-License-Identifier: MIT
/* Runner of the performance suite. */
#include <check.h>
#include <stdlib.h>

#include "test.h"

int main(void)
{
	SRunner *sr = srunner_create(np_suite_kernels());
	int failed;

	srunner_add_suite(sr, np_suite_perfmodel());
	srunner_add_suite(sr, np_suite_perfmulti());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
