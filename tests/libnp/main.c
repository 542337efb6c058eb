// SPDX-License-Identifier: MIT
/*
 * Runner of the libnp suite. The cards come from NP_DEVICES (emu:16 when
 * unset), so the same binary runs against the emulator and, in the guest,
 * against real VFIO devices.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

struct np_ctx *tst_ctx;
static char log_text[16384];
static size_t log_len;
static const char *spec_seen;

static void log_cb(void *opaque, enum np_log_level level, const char *msg)
{
	int n = snprintf(log_text + log_len, sizeof(log_text) - log_len, "%s\n",
			 msg);

	if (n > 0 && (size_t)n < sizeof(log_text) - log_len)
		log_len += (size_t)n;
}

const char *tst_log_text(void)
{
	return log_text;
}

void tst_log_clear(void)
{
	log_len = 0;
	log_text[0] = 0;
}

struct np_open_opts tst_opts(void)
{
	struct np_open_opts o = {.log = {.fn = log_cb, .level = NP_LOG_DEBUG}};

	return o;
}

int tst_open(const struct np_open_opts *opts, struct np_ctx **out)
{
	return np_open(NULL, opts, out);
}

int tst_is_emu(void)
{
	return !strncmp(spec_seen, "emu:", 4);
}

void tst_setup(void)
{
	struct np_open_opts o = tst_opts();

	tst_log_clear();
	ck_assert_msg(tst_open(&o, &tst_ctx) == 0, "np_open(NP_DEVICES=%s): %s",
		      spec_seen, tst_log_text());
}

void tst_teardown(void)
{
	np_close(tst_ctx);
	tst_ctx = NULL;
}

void tst_fill(void *p, size_t len, unsigned int seed)
{
	uint32_t x = seed * 2654435761u + 1;
	uint8_t *b = p;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b[i] = (uint8_t)x;
	}
}

int tst_check(const void *p, size_t len, unsigned int seed)
{
	uint32_t x = seed * 2654435761u + 1;
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		if (b[i] != (uint8_t)x)
			return 0;
	}
	return 1;
}

static int xfer(struct np_card *c, enum np_xfer_op op, struct np_buf *b,
		size_t off, uint64_t addr, size_t len)
{
	struct np_xfer_spec s = {
		.op = op,
		.engine = -1,
		.buf = b,
		.buf_offset = off,
		.card_addr = addr,
		.len = len,
	};

	return np_xfer_run(c, &s);
}

int tst_h2c(struct np_card *c, struct np_buf *b, size_t off, uint64_t addr,
	    size_t len)
{
	return xfer(c, NP_XFER_H2C, b, off, addr, len);
}

int tst_c2h(struct np_card *c, struct np_buf *b, size_t off, uint64_t addr,
	    size_t len)
{
	return xfer(c, NP_XFER_C2H, b, off, addr, len);
}

int main(void)
{
	SRunner *sr;
	int failed;

	/* The default the CTest registration uses, for runs by hand. */
	setenv("NP_DEVICES", "emu:16", 0);
	spec_seen = getenv("NP_DEVICES");
	sr = srunner_create(np_suite_ctx());
	srunner_add_suite(sr, np_suite_buf());
	srunner_add_suite(sr, np_suite_xfer());
	srunner_add_suite(sr, np_suite_c2c());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
