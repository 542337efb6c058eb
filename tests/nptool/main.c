// SPDX-License-Identifier: MIT
/*
 * Runner of the nptool suite: the JSON writer against a separate parser,
 * the command line contract, every command against 16 emulated cards, and
 * the sysfs-level commands against fake sysfs trees, the model commands
 * against libnp's model pipeline, libnp's device spec parser, --query and
 * --format against the documented fields, the Prometheus exporter over
 * loopback, topo against a fake PCIe tree; and with
 * NP_DEVICES=vfio:... the guest suite on real cards over VFIO.
 */
#include <stdlib.h>
#include <string.h>

#include "test.h"

int main(void)
{
	SRunner *sr = srunner_create(np_suite_json());
	const char *spec = getenv("NP_DEVICES");
	int failed;

	srunner_add_suite(sr, np_suite_cli());
	srunner_add_suite(sr, np_suite_emu());
	srunner_add_suite(sr, np_suite_sysfs());
	srunner_add_suite(sr, np_suite_model());
	srunner_add_suite(sr, np_suite_spec());
	srunner_add_suite(sr, np_suite_robust());
	srunner_add_suite(sr, np_suite_exitcodes());
	srunner_add_suite(sr, np_suite_query());
	srunner_add_suite(sr, np_suite_exporter());
	srunner_add_suite(sr, np_suite_topo());
	srunner_add_suite(sr, np_suite_events());
	srunner_add_suite(sr, np_suite_bench());
	srunner_add_suite(sr, np_suite_cache());
	srunner_add_suite(sr, np_suite_select());
	/* real cards: only where NP_DEVICES names them (the guest run) */
	if (spec && !strncmp(spec, "vfio:", 5))
		srunner_add_suite(sr, np_suite_guest());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
