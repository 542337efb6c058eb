// SPDX-License-Identifier: MIT
/*
 * Runner for the emulator core suites.
 */
#include <stdlib.h>

#include "test.h"

int main(void)
{
	SRunner *sr = srunner_create(np_suite_regs());
	int failed;

	srunner_add_suite(sr, np_suite_dma());
	srunner_add_suite(sr, np_suite_errors());
	srunner_add_suite(sr, np_suite_events());
	srunner_add_suite(sr, np_suite_reset());
	srunner_add_suite(sr, np_suite_faults());

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
