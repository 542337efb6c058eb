// SPDX-License-Identifier: MIT
/*
 * Chat template harness (np/chat.h): detection over arbitrary template
 * text and rendering of arbitrary messages in every family.
 *
 * Input: byte 0 picks the family (1 + byte % the number of families),
 * byte 1 bit 0 asks for the generation prompt; the rest is split at NUL
 * bytes: the template text, then role and content strings in turn.
 *
 * Invariants: detection answers 0, -ENOTSUP or -ENOENT, logging why when
 * it refuses, and a family it finds renders; a family's name maps back to
 * it; rendering needs the same length whatever the buffer, a short buffer
 * gets -ENOSPC and nothing past its end.
 */
#include <errno.h>
#include <syslog.h>

#include "np/chat.h"
#include "np_fuzz.h"

#define N_FAMILIES 11
#define MSG_MAX 8

static void count_log(void *opaque, enum np_log_level level, const char *msg)
{
	unsigned int *n = opaque;

	(void)msg;
	*n += level <= LOG_ERR;
}

static void render(enum np_chat_family f, const struct np_chat_msg *m, size_t n,
		   int add_gen)
{
	size_t len, len2, short_len;
	char *buf;

	NP_FUZZ_ASSERT(np_chat_apply(f, m, n, add_gen, NULL, 0, &len) ==
			       (len ? -ENOSPC : 0),
		       "measuring");
	buf = malloc(len + 1);
	NP_FUZZ_ASSERT(buf, "out of memory");
	NP_FUZZ_ASSERT(!np_chat_apply(f, m, n, add_gen, buf, len, &len2) &&
			       len2 == len,
		       "%s: rendering", np_chat_family_name(f));
	if (len) {
		memset(buf, 0, len + 1);
		NP_FUZZ_ASSERT(np_chat_apply(f, m, n, add_gen, buf, len - 1,
					     &short_len) == -ENOSPC &&
				       short_len == len && buf[len - 1] == 0,
			       "%s: short buffer", np_chat_family_name(f));
	}
	free(buf);
}

int np_fuzz_chat(const uint8_t *data, size_t size)
{
	struct np_fuzz_in in = {data, size};
	enum np_chat_family f = 1 + np_fuzz_u8(&in) % N_FAMILIES, d, back;
	int add_gen = np_fuzz_u8(&in) & 1, ret;
	const char *p = (const char *)in.p;
	size_t tlen = strnlen(p, in.n);
	struct np_chat_msg m[MSG_MAX];
	char *copy = malloc(in.n + 1);
	unsigned int errors = 0;
	struct np_log lg = {.fn = count_log, .opaque = &errors};
	size_t n = 0;

	NP_FUZZ_ASSERT(copy, "out of memory");
	ret = np_chat_detect(p, tlen, &lg, &d);
	NP_FUZZ_ASSERT(ret == 0 || ret == -ENOTSUP || ret == -ENOENT,
		       "detect: %d", ret);
	NP_FUZZ_ASSERT(!ret == !errors, "detect %d with %u errors logged", ret,
		       errors);
	NP_FUZZ_ASSERT(np_chat_family_name(f), "family %d", f);
	NP_FUZZ_ASSERT(
		!np_chat_family_from_name(np_chat_family_name(f), &back) &&
			back == f,
		"name of %d", f);
	/* NUL-terminated role, content pairs from a copy of the input */
	memcpy(copy, p, in.n);
	copy[in.n] = 0;
	for (char *q = copy + (tlen < in.n ? tlen + 1 : in.n);
	     q < copy + in.n && n < MSG_MAX; n++) {
		m[n].role = q;
		q += strlen(q) + 1;
		m[n].content = q < copy + in.n ? q : "";
		q += q < copy + in.n ? strlen(q) + 1 : 0;
	}
	render(f, m, n, add_gen);
	if (!ret)
		render(d, m, n, add_gen);
	free(copy);
	return 0;
}
