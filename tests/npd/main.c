// SPDX-License-Identifier: MIT
/* Runner of the npd suite. */
#include <curl/curl.h>
#include <stdlib.h>

#include "test.h"

int main(void)
{
	SRunner *sr;
	int failed;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	sr = srunner_create(np_suite_npd_api());
	srunner_add_suite(sr, np_suite_npd_bad());
	srunner_add_suite(sr, np_suite_npd_life());
	srunner_add_suite(sr, np_suite_npd_nptool());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
