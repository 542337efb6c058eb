// SPDX-License-Identifier: MIT
/*
 * Hostile card harness for libnp: the input scripts a card that lies.
 *
 * libnp runs on one in-process emulated card, but between it and the card
 * sits this harness: it can overwrite any engine's writeback record with
 * arbitrary bytes (what a buggy card's DMA would do) and answer libnp's
 * register reads with arbitrary values, also across a card reset.
 * Meanwhile the input submits, polls, waits for, completes and frees
 * transfers, and resets the card. libnp must treat all of
 * it as untrusted: no write out of bounds, no use after free (ASan), no
 * wait without a bound (the context timeout is short), and once the card
 * is honest again the engine carries data correctly.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <syslog.h>
#include <unistd.h>

#include "internal.h"
#include "np_fuzz.h"

#define ENGINES 2u
#define MAX_XFERS 8u
#define MAX_LIES 16u
#define MAX_OPS 128u
#define TIMEOUT_MS 1000 /* loaded CI machines: no false hangs */
#define BUF_SIZE 8192u

/* Register lies, consumed by libnp's reads of queue registers. */
static struct {
	pthread_mutex_t lock;
	uint32_t v[MAX_LIES];
	unsigned int n;
	bool any_reg; /* lie about every register, not only the queues' */
	uint32_t (*honest)(struct np_card *card, uint32_t off);
} lies = {.lock = PTHREAD_MUTEX_INITIALIZER};

static uint32_t lying_reg_read(struct np_card *card, uint32_t off)
{
	uint32_t v;

	pthread_mutex_lock(&lies.lock);
	if (lies.n && (lies.any_reg ||
		       (off >= NP_DMA_BASE(0) && off < NP_COMPUTE_BASE))) {
		v = lies.v[--lies.n];
		pthread_mutex_unlock(&lies.lock);
		return v;
	}
	pthread_mutex_unlock(&lies.lock);
	return lies.honest(card, off);
}

static void log_fn(void *opaque, enum np_log_level level, const char *msg)
{
	NP_FUZZ_ASSERT(msg && *msg, "empty log message at level %d", level);
	if (getenv("NP_FUZZ_VERBOSE"))
		fprintf(stderr, "libnp: %d: %s\n", level, msg);
}

static struct np_xfer_spec spec_of(struct np_fuzz_in *in, struct np_buf *buf)
{
	uint8_t op = np_fuzz_u8(in);
	struct np_xfer_spec s = {
		.engine = (int)(np_fuzz_u8(in) % (ENGINES + 1)) - 1,
	};

	switch (op % 4) {
	case 0:
		s.op = NP_XFER_FENCE;
		s.flags = NP_XFER_F_WAIT;
		s.wait_event = np_fuzz_u8(in) % NP_NUM_EVENTS;
		s.wait_value = np_fuzz_u8(in);
		break;
	case 1:
		s.op = NP_XFER_H2C;
		break;
	case 2:
		s.op = NP_XFER_C2H;
		break;
	default:
		s.op = NP_XFER_COPY;
		s.dst_addr = np_fuzz_u16(in) % 0x8000u;
		break;
	}
	if (s.op != NP_XFER_FENCE) {
		s.buf = buf;
		s.buf_offset = np_fuzz_u16(in) % (BUF_SIZE / 2);
		s.len = 1 + np_fuzz_u16(in) % (BUF_SIZE / 2);
		s.card_addr = np_fuzz_u16(in) % 0x8000u;
	}
	if (op & 0x10) {
		s.flags |= NP_XFER_F_SIGNAL;
		s.signal_event = np_fuzz_u8(in) % NP_NUM_EVENTS;
	}
	return s;
}

static void run_op(struct np_card *card, struct np_buf *buf, struct np_xfer **x,
		   struct np_fuzz_in *in)
{
	uint8_t op = np_fuzz_u8(in), i = np_fuzz_u8(in) % MAX_XFERS;
	struct npi_engine *eng = &card->eng[np_fuzz_u8(in) % ENGINES];

	switch (op % 9) {
	case 0:
		if (!x[i]) {
			struct np_xfer_spec s = spec_of(in, buf);
			bool ready = card->ready;
			int ret = np_xfer_submit(card, &s, &x[i]);

			/* after a failed reset nothing reaches the rings */
			NP_FUZZ_ASSERT(ready || ret == -EIO || ret == -EINVAL,
				       "submit to a card not ready returned %d",
				       ret);
		}
		break;
	case 1: { /* the card writes a record of its own invention */
		uint8_t rec[sizeof(struct np_queue_wb)];
		uint8_t mask = np_fuzz_u8(in);

		memcpy(rec, eng->wb, sizeof(rec));
		for (unsigned int k = 0; k < sizeof(rec) / 4; k++)
			if (mask & (1u << k)) {
				uint32_t v = np_fuzz_u32(in);

				memcpy(rec + 4 * k, &v, 4);
			}
		memcpy(eng->wb, rec, sizeof(rec));
		break;
	}
	case 2: {
		unsigned int n = np_fuzz_u8(in) % MAX_LIES;

		pthread_mutex_lock(&lies.lock);
		lies.any_reg = op & 0x80;
		for (lies.n = 0; lies.n < n;)
			lies.v[lies.n++] = np_fuzz_u32(in);
		pthread_mutex_unlock(&lies.lock);
		break;
	}
	case 3:
		if (x[i])
			np_xfer_poll(x[i]);
		break;
	case 4:
		if (x[i])
			np_xfer_wait(x[i], 1 + np_fuzz_u8(in) % 20);
		break;
	case 5:
		np_card_event_add(card, np_fuzz_u8(in) % (NP_NUM_EVENTS + 2),
				  np_fuzz_u8(in));
		break;
	case 6: /* freed in flight: released when it retires */
		np_xfer_free(x[i]);
		x[i] = NULL;
		break;
	case 7:
		np_ctx_process(card->ctx);
		break;
	default: /* with lies queued: a card that resets into garbage */
		np_card_reset(card);
		break;
	}
}

/*
 * The card turns honest: once the engine is idle, its record is replaced by
 * the one the card's registers describe. A forged record left in memory
 * would otherwise keep claiming completions the card never made, which no
 * host can tell from real ones.
 */
static void honest_record(struct np_card *card, unsigned int e)
{
	const uint32_t q = NP_DMA_BASE(e);
	struct npi_engine *eng = &card->eng[e];
	struct np_queue_wb rec = {0};
	uint32_t st, tail;

	for (int i = 0; i < 10000; i++) {
		np_card_reg_read(card, q + NP_Q_STATUS, &st);
		np_card_reg_read(card, q + NP_Q_HEAD, &rec.head);
		np_card_reg_read(card, q + NP_Q_TAIL, &tail);
		if (!(st & NP_Q_STATUS_ENABLED) ||
		    (!(st & NP_Q_STATUS_BUSY) && rec.head == tail))
			break;
		usleep(100);
	}
	np_card_reg_read(card, q + NP_Q_COMPLETED, &rec.completed);
	np_card_reg_read(card, q + NP_Q_ERROR, &rec.error);
	rec.status = st;
	rec.user = eng->wb->user;
	memcpy(eng->wb, &rec, sizeof(rec));
}

/* The card is honest again: one H2C and C2H must carry the data. */
static void check_recovered(struct np_card *card, struct np_buf *buf)
{
	uint8_t *p = np_buf_ptr(buf);
	struct np_xfer_spec h2c = {
		.op = NP_XFER_H2C,
		.engine = 0,
		.buf = buf,
		.len = 512,
		.card_addr = 0x9000,
	};
	struct np_xfer_spec c2h = h2c;
	int ret = 0;

	c2h.op = NP_XFER_C2H;
	c2h.buf_offset = 4096;
	for (unsigned int e = 0; e < ENGINES; e++) {
		h2c.engine = c2h.engine = (int)e;
		for (unsigned int k = 0; k < 512; k++)
			p[k] = (uint8_t)(k * 13 + e);
		memset(p + 4096, 0, 512);
		/* a first transfer may still meet what the liar left behind
		 * (and reset the engine); the second must succeed */
		for (int attempt = 0; attempt < 2; attempt++) {
			ret = np_xfer_run(card, &h2c);
			if (!ret)
				ret = np_xfer_run(card, &c2h);
			if (!ret)
				break;
		}
		NP_FUZZ_ASSERT(ret == 0, "engine %u does not recover: %d", e,
			       ret);
		NP_FUZZ_ASSERT(!memcmp(p, p + 4096, 512),
			       "engine %u round trip data differs", e);
	}
}

int np_fuzz_card(const uint8_t *data, size_t size)
{
	struct np_fuzz_in in = {data, size};
	const struct np_emu_opts emu = {
		.sram_size = 0x10000,
		.fb_size = 0x10000,
		.dma_engines = ENGINES,
	};
	const struct np_open_opts o = {
		.timeout_ms = TIMEOUT_MS,
		.ring_entries = 16,
		.log = {.fn = log_fn, .level = NP_LOG_DEBUG},
		.emu = &emu,
	};
	struct np_xfer *x[MAX_XFERS] = {0};
	struct npi_backend liar;
	const struct npi_backend *honest;
	struct np_ctx *ctx;
	struct np_card *card;
	struct np_buf *buf;

	NP_FUZZ_ASSERT(np_open("emu:1", &o, &ctx) == 0, "np_open emu:1");
	card = np_ctx_card(ctx, 0);
	NP_FUZZ_ASSERT(np_buf_alloc(ctx, BUF_SIZE, &buf) == 0, "np_buf_alloc");
	honest = ctx->ops;
	liar = *honest;
	liar.reg_read = lying_reg_read;
	lies.honest = honest->reg_read;
	lies.n = 0;
	ctx->ops = &liar;

	for (unsigned int k = 0; k < MAX_OPS && in.n; k++)
		run_op(card, buf, x, &in);

	pthread_mutex_lock(&lies.lock);
	lies.n = 0;
	pthread_mutex_unlock(&lies.lock);
	ctx->ops = honest;
	for (unsigned int k = 0; k < MAX_XFERS; k++)
		np_xfer_free(x[k]);
	/* fences still waiting would hold the engine: complete them all */
	for (unsigned int e = 0; e < NP_NUM_EVENTS; e++)
		np_card_event_add(card, e, 0x100);
	/* a reset the liar spoiled is redone now */
	if (!card->ready)
		NP_FUZZ_ASSERT(np_card_reset(card) == 0,
			       "honest card reset failed");
	for (unsigned int e = 0; e < ENGINES; e++)
		honest_record(card, e);
	check_recovered(card, buf);
	np_buf_free(buf);
	np_close(ctx);
	return 0;
}
