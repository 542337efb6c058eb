// SPDX-License-Identifier: MIT
/*
 * Link harness: a member of a pipeline that spans hosts (libnp's
 * member.c, docs/cluster.md) fed host-to-host messages from a hostile
 * head.
 *
 * The first input creates a real member (np_member_create: the tiny Q8_0
 * model of the gguf corpus, two emulated cards, its UCX link listening on
 * a loopback port the kernel picks). The head is played in-process: a
 * local peer of the member's link (npi_link_local_peer) whose messages go
 * through the receive path of a real eager message (npi_link_inject: the
 * member's dest callback, the copy into its answer, arrived) and whose
 * replies land here. The member's loop turns with npi_member_step. The
 * first input also learns the compiled mapping's hash from a HELLO, so a
 * template HELLO loads the segment on the cards.
 *
 * Each input is a run of messages from one head, each:
 *
 *   byte 0   bits 0-3 the type (1-8 link.h's, others unknown); bit 4 the
 *            payload from a template (HELLO/RESET: the valid npi_hello,
 *            the payload bytes overlaid at offset byte 1 * 4; FRAME: a
 *            well-formed frame of n = a % 5 tokens, option word b)
 *   byte 1   the epoch (or the overlay offset for a template hello: then
 *            the epoch is 1)
 *   2-3      k; 4-7 a; 8-11 b
 *   12-13    the payload length (taken from the input, up to its end)
 *
 * then the member's loop turns until its frames are back. In the end the
 * head says BYE and goes. A hello's "next" member address is cleared
 * when it is a string (the member would connect to it for real); one
 * without its NUL is left, for the member to refuse.
 *
 * Invariants: no crash, leak or UB; every HELLO_REPLY the member sends is
 * well formed (a NUL-terminated message, non-empty when the status is an
 * error, status 0 or -errno); a FAULT it reports is a malformed frame
 * (-EPROTO), never a card failure: nothing a peer sends may break a card.
 */
#include <errno.h>
#include <stddef.h>

#include "cluster.h"
#include "np/cluster.h"
#include "np/model.h"
#include "np/np.h"
#include "np_fuzz.h"
#include "np_abi.h"
#include "np_prog.h"

#define MODEL NP_FUZZ_DIR "/corpus/gguf/valid-q8_0-spm.gguf"
#define MAX_MSGS 24
#define FRAME_TOKENS 4u

static struct np_ctx *ctx;
static struct np_member *mem;
static struct npi_hello tmpl;
static unsigned int frames_back; /* frames the member sent back */
static uint32_t dim;

static void quiet(void *o, enum np_log_level level, const char *msg)
{
	(void)o;
	(void)level;
	(void)msg;
}

static void sent(void *o, const struct npi_msg *m, const void *data, size_t len)
{
	(void)o;
	if (m->type == NPI_MSG_HELLO_REPLY) {
		struct npi_hello_reply r;

		NP_FUZZ_ASSERT(len == sizeof(r), "HELLO_REPLY of %zu bytes",
			       len);
		memcpy(&r, data, sizeof(r));
		NP_FUZZ_ASSERT(memchr(r.msg, 0, sizeof(r.msg)),
			       "HELLO_REPLY message not terminated");
		NP_FUZZ_ASSERT(r.status <= 0 && r.status > -4096,
			       "HELLO_REPLY status %d", r.status);
		NP_FUZZ_ASSERT(!r.status || r.msg[0],
			       "HELLO_REPLY status %d without a message",
			       r.status);
		if (!tmpl.plan_hash && r.plan_hash)
			tmpl.plan_hash = r.plan_hash;
	} else if (m->type == NPI_MSG_FRAME) {
		frames_back++;
	} else if (m->type == NPI_MSG_FAULT) {
		/* a malformed frame is refused before the cards (-EPROTO):
		 * nothing a peer sends may fail a card */
		NP_FUZZ_ASSERT((int32_t)m->a == -EPROTO,
			       "the member reports its cards failed (%d, %s) "
			       "on a peer's message",
			       (int32_t)m->a, strerror(-(int32_t)m->a));
	}
}

static void turn(unsigned int n, int timeout_ms)
{
	while (n--)
		npi_member_step(mem, timeout_ms);
}

/* UCX's own allocations (its registration cache, transports' pools) live
 * as long as libucs: not np's to free */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libucs.so\nleak:libucp.so\nleak:libuct.so\n";
}

/* At exit: the member, its UCX worker and the cards go before the leak
 * check (LeakSanitizer's tracer dies on UCX's threads otherwise) */
static void stop(void)
{
	np_member_destroy(mem);
	np_close(ctx);
	mem = NULL;
	ctx = NULL;
}

static void start(void)
{
	const struct np_open_opts o = {
		.log = {.fn = quiet, .level = NP_LOG_ERR},
	};
	const struct np_member_opts mo = {
		.listen = "127.0.0.1:0",
		.model = MODEL,
	};
	struct np_model_shape sh;
	struct np_gguf *g;
	struct npi_peer *pe;
	struct npi_msg h = {.type = NPI_MSG_HELLO, .epoch = 1};

	/* UCX's memory hooks (UCM patches malloc and mmap) and error signal
	 * handlers fight the sanitizers' own: LeakSanitizer's tracer dies */
	setenv("UCX_MEM_MMAP_HOOK_MODE", "none", 0);
	setenv("UCX_MEM_MALLOC_HOOKS", "n", 0);
	setenv("UCX_MEMTYPE_CACHE", "n", 0);
	setenv("UCX_ERROR_SIGNALS", "", 0);
	setenv("UCX_WARN_UNUSED_ENV_VARS", "n", 0);
	NP_FUZZ_ASSERT(np_open("emu:2", &o, &ctx) == 0, "np_open emu:2");
	NP_FUZZ_ASSERT(np_member_create(ctx, &mo, &mem) == 0,
		       "np_member_create %s", MODEL);
	NP_FUZZ_ASSERT(np_gguf_open(MODEL, NULL, &g) == 0 &&
			       np_model_shape_from_gguf(g, NULL, &sh) == 0,
		       "the shape of %s", MODEL);
	np_gguf_close(g);
	dim = sh.dim;
	tmpl.proto = NPI_LINK_PROTO;
	tmpl.abi = NPK_VERSION;
	NP_FUZZ_ASSERT(npi_file_hash(MODEL, &tmpl.model_hash) == 0,
		       "hashing %s", MODEL);
	tmpl.precision = NP_DEFAULT_PRECISION;
	tmpl.n_cards = 2;
	tmpl.batch = 1;
	tmpl.max_seq = 128;
	tmpl.frame_tokens = FRAME_TOKENS;
	tmpl.count = 2;
	tmpl.heartbeat_ms = 100;
	tmpl.timeout_ms = 1000;
	/* the member's answer names its mapping's hash */
	pe = npi_link_local_peer(npi_member_link(mem), "fuzz-head", sent, NULL);
	NP_FUZZ_ASSERT(pe, "out of memory");
	npi_link_inject(npi_member_link(mem), pe, &h, &tmpl, sizeof(tmpl));
	turn(2, 0);
	NP_FUZZ_ASSERT(tmpl.plan_hash, "no plan hash from the member");
	h.type = NPI_MSG_BYE;
	npi_link_inject(npi_member_link(mem), pe, &h, NULL, 0);
	turn(2, 0);
	npi_link_drop(npi_member_link(mem), pe);
	atexit(stop);
}

int np_fuzz_link(const uint8_t *data, size_t size)
{
	struct np_fuzz_in in = {data, size};
	struct npi_link *l;
	struct npi_peer *pe;
	static uint8_t pay[65536];
	unsigned int frames = 0;

	if (!mem)
		start();
	l = npi_member_link(mem);
	pe = npi_link_local_peer(l, "fuzz-head", sent, NULL);
	NP_FUZZ_ASSERT(pe, "out of memory");
	frames_back = 0;
	for (unsigned int i = 0; i < MAX_MSGS && in.n; i++) {
		uint8_t t = np_fuzz_u8(&in);
		uint8_t e = np_fuzz_u8(&in);
		struct npi_msg m = {
			.type = t & 15,
			.epoch = e,
			.k = np_fuzz_u16(&in),
			.a = np_fuzz_u32(&in),
			.b = np_fuzz_u32(&in),
		};
		size_t len = np_fuzz_u16(&in);

		len = len < in.n ? len : in.n;
		if (len > sizeof(pay))
			len = sizeof(pay);
		memcpy(pay, in.p, len);
		in.p += len;
		in.n -= len;
		if ((t & 16) &&
		    (m.type == NPI_MSG_HELLO || m.type == NPI_MSG_RESET)) {
			size_t at = (size_t)e * 4;

			memcpy(pay, &tmpl, sizeof(tmpl));
			if (at < sizeof(tmpl)) {
				if (len > sizeof(tmpl) - at)
					len = sizeof(tmpl) - at;
				memmove(pay + at, in.p - len, len);
			}
			len = sizeof(tmpl);
			m.epoch = 1;
		} else if ((t & 16) && m.type == NPI_MSG_FRAME) {
			uint32_t n = m.a % 5;
			uint32_t opt = m.b;

			len = NP_JOB_ARG_HDR +
			      n * (NP_JOB_ARG_TOK + (size_t)dim * 2);
			if (len > sizeof(pay))
				len = sizeof(pay);
			memset(pay, 0, len);
			memcpy(pay, &n, 4);
			memcpy(pay + 4, &opt, 4);
			for (uint32_t k = 0; k < n; k++) {
				uint32_t pos = k;

				memcpy(pay + NP_JOB_ARG_HDR +
					       k * NP_JOB_ARG_TOK + 4,
				       &pos, 4);
			}
		}
		/* the member would connect to the next host for real: an
		 * address it could use (a string) is cleared; one without
		 * its NUL stays, to be refused */
		if ((m.type == NPI_MSG_HELLO || m.type == NPI_MSG_RESET) &&
		    len >= offsetof(struct npi_hello, calib) &&
		    memchr(pay + offsetof(struct npi_hello, next), 0,
			   NPI_ADDR_LEN))
			pay[offsetof(struct npi_hello, next)] = 0;
		frames += m.type == NPI_MSG_FRAME;
		npi_link_inject(l, pe, &m, pay, len);
		turn(3, 0);
	}
	/* the frames on the cards come back (the cards run in their own
	 * threads), up to 100 ms; dropped ones never do */
	for (unsigned int i = 0; i < 100 && frames_back < frames; i++)
		turn(1, 1);
	{
		struct npi_msg bye = {.type = NPI_MSG_BYE};

		npi_link_inject(l, pe, &bye, NULL, 0);
		turn(1, 0);
	}
	npi_link_drop(l, pe);
	return 0;
}
