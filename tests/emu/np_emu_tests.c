// SPDX-License-Identifier: MIT
/*
 * Runner for the emulator core suites.
 */
#include <stdlib.h>

#include "np_emu_test.h"

int main(void)
{
	SRunner *sr = srunner_create(np_suite_dma());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
