// SPDX-License-Identifier: MIT
/* Runner of the pipeline suite. */
#include <stdlib.h>

#include "test.h"

int main(void)
{
	SRunner *sr = srunner_create(np_suite_layer_job());
	int failed;

	srunner_add_suite(sr, np_suite_pipeline());
	srunner_add_suite(sr, np_suite_sched());
	srunner_add_suite(sr, np_suite_cache());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
