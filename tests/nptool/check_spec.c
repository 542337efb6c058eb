// SPDX-License-Identifier: MIT
/*
 * Device specs: libnp's np_spec_parse(), which np_open() and every nptool
 * command read a spec with. The valid forms and what they name, each
 * refusal with its sentence, and how np_open() logs it. (How nptool
 * reports a refused spec is in check_cli.c and check_sysfs.c.)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <np/np.h>

#include "test.h"

#define NOT_UNDERSTOOD                                                         \
	"\" is not understood: use emu:N (N in 1..64), vfio:all or vfio:<pci " \
	"address>[,<pci address>...]"

START_TEST(test_emu)
{
	struct np_spec s;
	char why[256];

	ck_assert_int_eq(np_spec_parse("emu:1", &s, why, sizeof(why)), 0);
	ck_assert_int_eq(s.kind, NP_SPEC_EMU);
	ck_assert_uint_eq(s.count, 1);
	ck_assert_int_eq(np_spec_parse("emu:64", &s, why, sizeof(why)), 0);
	ck_assert_uint_eq(s.count, NP_MAX_CARDS);
	ck_assert_int_eq(np_spec_parse("emu:16", &s, NULL, 0), 0);
	ck_assert_uint_eq(s.count, 16);
}
END_TEST

START_TEST(test_vfio_all)
{
	struct np_spec s;

	ck_assert_int_eq(np_spec_parse("vfio:all", &s, NULL, 0), 0);
	ck_assert_int_eq(s.kind, NP_SPEC_VFIO_ALL);
	ck_assert_uint_eq(s.count, 0);
}
END_TEST

/* Addresses are numbers: every spelling comes back in the full form. */
START_TEST(test_vfio_list)
{
	struct np_spec s;

	ck_assert_int_eq(np_spec_parse("vfio:0000:03:00.0", &s, NULL, 0), 0);
	ck_assert_int_eq(s.kind, NP_SPEC_VFIO_LIST);
	ck_assert_uint_eq(s.count, 1);
	ck_assert_str_eq(s.bdf[0], "0000:03:00.0");

	/* lspci's short form, no leading zeros, upper case; in that order */
	ck_assert_int_eq(
		np_spec_parse("vfio:04:00.0,3:0.0,0001:0A:1F.7", &s, NULL, 0),
		0);
	ck_assert_uint_eq(s.count, 3);
	ck_assert_str_eq(s.bdf[0], "0000:04:00.0");
	ck_assert_str_eq(s.bdf[1], "0000:03:00.0");
	ck_assert_str_eq(s.bdf[2], "0001:0a:1f.7");

	/* empty entries are skipped */
	ck_assert_int_eq(np_spec_parse("vfio:03:00.0,,04:00.0,", &s, NULL, 0),
			 0);
	ck_assert_uint_eq(s.count, 2);
	ck_assert_str_eq(s.bdf[1], "0000:04:00.0");

	ck_assert_int_eq(np_spec_parse("vfio:ffff:ff:1f.7", &s, NULL, 0), 0);
	ck_assert_str_eq(s.bdf[0], "ffff:ff:1f.7");
}
END_TEST

/* NP_MAX_CARDS addresses, not one more. */
START_TEST(test_vfio_list_max)
{
	char spec[16 * (NP_MAX_CARDS + 1) + 8] = "vfio:", why[2048];
	struct np_spec s;

	for (unsigned int i = 0; i < NP_MAX_CARDS; i++)
		sprintf(spec + strlen(spec), "%s%02x:00.0", i ? "," : "", i);
	ck_assert_int_eq(np_spec_parse(spec, &s, why, sizeof(why)), 0);
	ck_assert_uint_eq(s.count, NP_MAX_CARDS);
	ck_assert_str_eq(s.bdf[NP_MAX_CARDS - 1], "0000:3f:00.0");
	strcat(spec, ",40:00.0");
	ck_assert_int_eq(np_spec_parse(spec, &s, why, sizeof(why)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(why, "\"40:00.0\" is not a PCI address "
					  "like 0000:03:00.0 (at most 64)"));
}
END_TEST

static const struct {
	const char *spec, *why;
} refused[] = {
	{"bogus:3", "device spec \"bogus:3" NOT_UNDERSTOOD},
	{"", "device spec \"" NOT_UNDERSTOOD},
	{"EMU:4", "device spec \"EMU:4" NOT_UNDERSTOOD},
	{"emu", "device spec \"emu" NOT_UNDERSTOOD},
	{"emu:0", "device spec \"emu:0\": the card count must be a number in "
		  "1..64, e.g. emu:16"},
	{"emu:65", "device spec \"emu:65\": the card count must be a number "
		   "in 1..64, e.g. emu:16"},
	{"emu:x", "device spec \"emu:x\": the card count must be a number in "
		  "1..64, e.g. emu:16"},
	{"emu:", "device spec \"emu:\": the card count must be a number in "
		 "1..64, e.g. emu:16"},
	{"emu:2x", "device spec \"emu:2x\": the card count must be a number "
		   "in 1..64, e.g. emu:16"},
	{"vfio:", "device spec \"vfio:\" names no card: use vfio:all or "
		  "vfio:0000:03:00.0[,...]"},
	{"vfio:,", "device spec \"vfio:,\" names no card: use vfio:all or "
		   "vfio:0000:03:00.0[,...]"},
	{"vfio:All", "device spec \"vfio:All\": \"All\" is not a PCI address "
		     "like 0000:03:00.0 (at most 64)"},
	{"vfio:03:00.8", "device spec \"vfio:03:00.8\": \"03:00.8\" is not a "
			 "PCI address like 0000:03:00.0 (at most 64)"},
	{"vfio:03:20.0", "device spec \"vfio:03:20.0\": \"03:20.0\" is not a "
			 "PCI address like 0000:03:00.0 (at most 64)"},
	{"vfio:100:00.0", "device spec \"vfio:100:00.0\": \"100:00.0\" is not "
			  "a PCI address like 0000:03:00.0 (at most 64)"},
	{"vfio:10000:03:00.0",
	 "device spec \"vfio:10000:03:00.0\": \"10000:03:00.0\" is not a PCI "
	 "address like 0000:03:00.0 (at most 64)"},
	{"vfio:03:00.0,04:00", "device spec \"vfio:03:00.0,04:00\": \"04:00\" "
			       "is not a PCI address like 0000:03:00.0 (at "
			       "most 64)"},
	{"vfio:03:00.0x", "device spec \"vfio:03:00.0x\": \"03:00.0x\" is not "
			  "a PCI address like 0000:03:00.0 (at most 64)"},
};

START_TEST(test_refused)
{
	struct np_spec s;
	char why[512];

	memset(why, 'x', sizeof(why));
	ck_assert_int_eq(np_spec_parse(refused[_i].spec, &s, why, sizeof(why)),
			 -EINVAL);
	ck_assert_str_eq(why, refused[_i].why);
}
END_TEST

START_TEST(test_arguments)
{
	struct np_spec s;
	char why[16];

	/* NULL reads as the empty spec; NP_DEVICES is np_open()'s */
	ck_assert_int_eq(np_spec_parse(NULL, &s, why, sizeof(why)), -EINVAL);
	ck_assert_int_eq(np_spec_parse("emu:4", NULL, why, sizeof(why)),
			 -EINVAL);
	/* no room for the sentence: refused all the same, cut short */
	ck_assert_int_eq(np_spec_parse("emu:0", &s, NULL, 0), -EINVAL);
	ck_assert_int_eq(np_spec_parse("emu:0", &s, why, sizeof(why)), -EINVAL);
	ck_assert_str_eq(why, "device spec \"em");
}
END_TEST

static char logged[512];

static void log_keep(void *opaque, enum np_log_level level, const char *msg)
{
	snprintf(logged, sizeof(logged), "%s", msg);
}

/* np_open() logs the parser's sentence, naming NP_DEVICES when the spec
 * came from there. */
START_TEST(test_open_logs)
{
	struct np_open_opts o = {.log = {.fn = log_keep}};
	const char *env = getenv("NP_DEVICES");
	char *saved = env ? strdup(env) : NULL;
	struct np_ctx *ctx;

	ck_assert_int_eq(np_open("emu:0", &o, &ctx), -EINVAL);
	ck_assert_str_eq(logged, "np: device spec \"emu:0\": the card count "
				 "must be a number in 1..64, e.g. emu:16");
	setenv("NP_DEVICES", "bogus", 1);
	ck_assert_int_eq(np_open(NULL, &o, &ctx), -EINVAL);
	ck_assert_str_eq(logged,
			 "np: NP_DEVICES: device spec \"bogus" NOT_UNDERSTOOD);
	if (saved)
		setenv("NP_DEVICES", saved, 1);
	else
		unsetenv("NP_DEVICES");
	free(saved);
}
END_TEST

Suite *np_suite_spec(void)
{
	Suite *s = suite_create("spec");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, test_emu);
	tcase_add_test(tc, test_vfio_all);
	tcase_add_test(tc, test_vfio_list);
	tcase_add_test(tc, test_vfio_list_max);
	tcase_add_loop_test(tc, test_refused, 0,
			    sizeof(refused) / sizeof(refused[0]));
	tcase_add_test(tc, test_arguments);
	tcase_add_test(tc, test_open_logs);
	suite_add_tcase(s, tc);
	return s;
}
