/* SPDX-License-Identifier: MIT */
/*
 * np fuzz harnesses: entry points and the byte reader they share.
 *
 * Each harness is one function with the libFuzzer signature. The same
 * object code runs in two places: the libFuzzer binaries (fuzz/ci.sh,
 * libfuzzer.c adapts the entry point) and the unit suite (tests/fuzz),
 * which replays every seed in fuzz/corpus/<harness>/ and every reproducer
 * in fuzz/regress/<harness>/ through it, so a crash once fixed stays fixed.
 *
 * A harness returns 0 for every input. A broken invariant (a failure
 * without a log message, a card that no longer moves data) aborts through
 * NP_FUZZ_ASSERT, which both libFuzzer and Check report as a crash.
 */
#ifndef NP_FUZZ_H
#define NP_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int np_fuzz_gguf(const uint8_t *data, size_t size);
int np_fuzz_compile(const uint8_t *data, size_t size);
int np_fuzz_emu(const uint8_t *data, size_t size);
int np_fuzz_card(const uint8_t *data, size_t size);
int np_fuzz_quant(const uint8_t *data, size_t size);
int np_fuzz_tok(const uint8_t *data, size_t size);
int np_fuzz_chat(const uint8_t *data, size_t size);
/* nptool's command line, run in-process (fuzz/cli.c) */
int np_fuzz_cli(const uint8_t *data, size_t size);
/* npd's HTTP requests, served in-process (fuzz/http.c) */
int np_fuzz_http(const uint8_t *data, size_t size);
/* a multi-host pipeline member's host-to-host messages (fuzz/link.c) */
int np_fuzz_link(const uint8_t *data, size_t size);

#define NP_FUZZ_ASSERT(cond, ...)                                     \
	do {                                                          \
		if (!(cond)) {                                        \
			fprintf(stderr, "np_fuzz: %s:%d: ", __FILE__, \
				__LINE__);                            \
			fprintf(stderr, __VA_ARGS__);                 \
			fputc('\n', stderr);                          \
			abort();                                      \
		}                                                     \
	} while (0)

/* Consumes the input front to back; reads past the end yield zeros. */
struct np_fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline uint64_t np_fuzz_take(struct np_fuzz_in *in, size_t bytes)
{
	uint64_t v = 0;

	for (size_t i = 0; i < bytes && in->n; i++, in->p++, in->n--)
		v |= (uint64_t)*in->p << (8 * i);
	return v;
}

static inline uint8_t np_fuzz_u8(struct np_fuzz_in *in)
{
	return (uint8_t)np_fuzz_take(in, 1);
}

static inline uint16_t np_fuzz_u16(struct np_fuzz_in *in)
{
	return (uint16_t)np_fuzz_take(in, 2);
}

static inline uint32_t np_fuzz_u32(struct np_fuzz_in *in)
{
	return (uint32_t)np_fuzz_take(in, 4);
}

static inline uint64_t np_fuzz_u64(struct np_fuzz_in *in)
{
	return np_fuzz_take(in, 8);
}

#endif /* NP_FUZZ_H */
