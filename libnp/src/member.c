// SPDX-License-Identifier: MIT
/*
 * A member of a pipeline that spans hosts (np/cluster.h, docs/cluster.md):
 * it owns one host's cards and runs a contiguous range of the model's
 * compiled cards (its segment) for the head. A frame arrives from
 * upstream into a registered receive slot, goes into the first card by
 * DMA, through the segment card to card as in one host, and comes back
 * from the last card (its output frame, or the output cards' results)
 * into a registered send slot, which goes downstream: to the next member
 * or back to the head. The receive slot's credit goes upstream once the
 * frame has left downstream, so a slow host back-pressures the one
 * before it and no slot is ever overwritten.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cluster.h"
#include "np/cluster.h"
#include "pipe.h"

enum fstate { F_FREE, F_ARRIVED, F_POSTED, F_DONE, F_SENDING };

struct mframe {
	enum fstate state;
	uint64_t k;
	uint32_t n, len, out_len;
	struct npi_peer *from;
	struct np_xfer *x[1 + NPI_MAX_OUT];
	uint32_t nx;
	struct npi_send *send;
};

struct np_member {
	struct np_ctx *ctx;
	char listen[NPI_ADDR_LEN];
	char *model_path;
	struct npi_link *l;
	int stop; /* atomic */
	int efd; /* wakes np_member_run for np_member_stop */
	int ctx_fd; /* np_ctx_fd: the cards' completion interrupts */
	/* the model, read once */
	struct np_gguf *g;
	struct np_model *model;
	uint64_t model_hash;
	/* the head's assignment */
	struct npi_peer *head, *down; /* down NULL: results go to head */
	struct npi_hello hello;
	struct np_quant_calib *calib;
	struct np_compiled *c;
	struct np_pipeline *p;
	uint64_t plan_hash, image_sum;
	uint32_t epoch;
	bool broken; /* a card failed: frames dropped until a RESET */
	struct np_buf *rx, *tx;
	uint64_t rx_slot, tx_slot;
	struct mframe fr[NPI_LINK_SLOTS];
	uint64_t next_post, next_send;
	uint32_t credits; /* downstream receive slots free */
	uint64_t hb_sent;
	/* frames served for this head, and the loop thread's CPU time and
	 * the wall time since the segment was loaded */
	uint64_t frames, cpu0, t0;
	/* card checks while frames are on the cards: when last, the layer
	 * jobs done over the segment then, since when that count stands */
	uint64_t checked, done_sum, done_since;
	char *inject; /* np_member_opts.inject, armed once */
};

#define LOG(m, lvl, ...) npi_log((m)->ctx, lvl, __VA_ARGS__)

static void frames_drop(struct np_member *m)
{
	for (uint32_t i = 0; i < NPI_LINK_SLOTS; i++) {
		struct mframe *f = &m->fr[i];

		for (uint32_t x = 0; x < f->nx; x++)
			np_xfer_free(f->x[x]);
		npi_link_send_free(m->l, f->send);
		memset(f, 0, sizeof(*f));
	}
	m->next_post = m->next_send = 0;
	m->credits = NPI_LINK_SLOTS;
}

/* Back to waiting for a head: the segment unloaded. */
static void unload(struct np_member *m)
{
	if (m->frames)
		LOG(m, LOG_INFO,
		    "member: %llu frames served in %.1f s; host CPU %.1f us a "
		    "frame (receive, post to the cards, send on, credit)",
		    (unsigned long long)m->frames,
		    (double)(npi_now_ns() - m->t0) / 1e9,
		    (double)(npi_thread_cpu_ns() - m->cpu0) / 1e3 /
			    (double)m->frames);
	m->frames = 0;
	if (m->p)
		for (uint32_t i = 0; i < m->p->n_stages; i++)
			np_card_reset(m->p->st[i].card);
	frames_drop(m);
	np_pipeline_destroy(m->p);
	np_compiled_destroy(m->c);
	np_quant_calib_destroy(m->calib);
	if (m->rx)
		npi_link_unmap(m->l, np_buf_ptr(m->rx));
	if (m->tx)
		npi_link_unmap(m->l, np_buf_ptr(m->tx));
	np_buf_free(m->rx);
	np_buf_free(m->tx);
	m->p = NULL;
	m->c = NULL;
	m->calib = NULL;
	m->rx = m->tx = NULL;
	if (m->down)
		npi_link_drop(m->l, m->down);
	m->down = NULL;
	m->broken = false;
	memset(&m->hello, 0, sizeof(m->hello));
}

static int reply(struct np_member *m, struct npi_peer *to, int status,
		 uint64_t load_ns, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int reply(struct np_member *m, struct npi_peer *to, int status,
		 uint64_t load_ns, const char *fmt, ...)
{
	struct npi_hello_reply r = {
		.status = status,
		.proto = NPI_LINK_PROTO,
		.abi = NPK_VERSION,
		.precision = m->hello.precision,
		.cards = np_ctx_num_cards(m->ctx),
		.model_hash = m->model_hash,
		.plan_hash = m->plan_hash,
		.image_sum = m->image_sum,
		.load_ns = load_ns,
	};
	struct npi_msg h = {.type = NPI_MSG_HELLO_REPLY, .epoch = m->epoch};
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r.msg, sizeof(r.msg), fmt, ap);
	va_end(ap);
	if (status)
		LOG(m, LOG_ERR, "member: %s", r.msg);
	return npi_link_send(m->l, to, &h, &r, sizeof(r), NULL);
}

/* Bytes of one token's result on output card o (opt: the frame's
 * option word: top-k, 0 for every logit). */
static size_t out_row(const struct np_pipeline *p, uint32_t o, uint32_t opt)
{
	const struct np_card_plan *pl = p->st[p->n_layer + o].plan;
	uint32_t k = opt & 0xff;

	return k ? (size_t)k * sizeof(struct np_job_topk) :
		   (size_t)(pl->vocab_end - pl->vocab_begin) * 4;
}

static int compile(struct np_member *m, const struct npi_hello *h)
{
	struct np_compile_opts co = {
		.n_cards = h->n_cards,
		.out_cards = h->out_cards,
		.batch = h->batch,
		.max_seq = h->max_seq,
		.precision = h->precision,
	};
	const struct np_log *lg = &m->ctx->log;
	int ret;

	if (h->calib_len) {
		struct np_tok *tok = NULL;
		int32_t *ids = malloc((h->calib_len + 1) * sizeof(*ids));
		size_t n = 0;

		ret = ids ? np_tok_from_gguf(m->g, lg, &tok) : -ENOMEM;
		if (!ret)
			ret = np_tok_encode(tok, h->calib, h->calib_len, ids,
					    h->calib_len + 1, &n);
		if (!ret && n > NPI_CALIB_TOKENS)
			n = NPI_CALIB_TOKENS;
		if (!ret)
			ret = n ? np_quant_calibrate(m->model, ids, n,
						     &m->calib) :
				  np_quant_calib_default(m->model, &m->calib);
		np_tok_destroy(tok);
		free(ids);
	} else {
		ret = np_quant_calib_default(m->model, &m->calib);
	}
	if (!ret)
		ret = np_compile(m->model, m->calib, &co, lg, &m->c);
	if (!ret)
		m->plan_hash = npi_plan_hash(m->c);
	return ret;
}

static int buffers(struct np_member *m)
{
	struct np_pipeline *p = m->p;
	uint64_t res = 0;
	int ret;

	for (uint32_t o = 0; o < p->n_out; o++) {
		const struct np_card_plan *pl = p->st[p->n_layer + o].plan;
		uint64_t lo = (uint64_t)(pl->vocab_end - pl->vocab_begin) * 4;
		uint64_t tk = NP_JOB_TOPK_MAX * sizeof(struct np_job_topk);

		res += (lo > tk ? lo : tk) * p->frame_tokens;
	}
	m->rx_slot = npi_align_up(p->frame_max, 4096);
	m->tx_slot =
		npi_align_up(res > p->frame_max ? res : p->frame_max, 4096);
	ret = np_buf_alloc(m->ctx, m->rx_slot * NPI_LINK_SLOTS, &m->rx);
	if (!ret)
		ret = np_buf_alloc(m->ctx, m->tx_slot * NPI_LINK_SLOTS, &m->tx);
	/* registered with the transport: frames are received into and sent
	 * from these without a copy of np's */
	if (!ret)
		ret = npi_link_map(m->l, np_buf_ptr(m->rx),
				   m->rx_slot * NPI_LINK_SLOTS);
	if (!ret)
		ret = npi_link_map(m->l, np_buf_ptr(m->tx),
				   m->tx_slot * NPI_LINK_SLOTS);
	return ret;
}

static int connect_down(struct np_member *m)
{
	if (m->down && (npi_link_peer_error(m->down) ||
			strcmp(npi_link_peer_name(m->down), m->hello.next))) {
		npi_link_drop(m->l, m->down);
		m->down = NULL;
	}
	if (!m->down && m->hello.next[0])
		return npi_link_connect(m->l, m->hello.next, &m->down);
	return 0;
}

/* A HELLO: check, compile, load the segment, connect downstream. */
static void on_hello(struct np_member *m, struct npi_peer *pe,
		     const struct npi_msg *msg, const struct npi_hello *h)
{
	uint64_t t = npi_now_ns();
	int ret;

	if (m->head && m->head != pe) {
		/* a new head: the old one is gone or being replaced */
		unload(m);
	}
	m->head = pe;
	if (h->proto != NPI_LINK_PROTO || h->abi != NPK_VERSION) {
		reply(m, pe, -EPROTO, 0,
		      "protocol %u, layer program ABI %u here; the head has "
		      "protocol %u, ABI %u: run the same np on both",
		      NPI_LINK_PROTO, NPK_VERSION, h->proto, h->abi);
		return;
	}
	if (!memchr(h->next, 0, sizeof(h->next))) {
		reply(m, pe, -EINVAL, 0,
		      "the next member's address is not a string of at most "
		      "%u bytes: fix the head",
		      NPI_ADDR_LEN - 1);
		return;
	}
	if (h->model_hash != m->model_hash) {
		reply(m, pe, -EINVAL, 0,
		      "model %s here has hash %016llx, the head's has "
		      "%016llx: give both the same GGUF",
		      m->model_path, (unsigned long long)m->model_hash,
		      (unsigned long long)h->model_hash);
		return;
	}
	if (h->count > np_ctx_num_cards(m->ctx)) {
		reply(m, pe, -ENODEV, 0,
		      "the head maps %u cards here, this host has %u: fix "
		      "the cluster file's cards= for %s",
		      h->count, np_ctx_num_cards(m->ctx), m->listen);
		return;
	}
	unload(m);
	m->head = pe;
	m->hello = *h;
	m->hello.calib_len = h->calib_len < NPI_CALIB_MAX ? h->calib_len : 0;
	m->epoch = msg->epoch; /* a spare joins in the head's epoch */
	ret = compile(m, &m->hello);
	if (ret) {
		reply(m, pe, ret, 0,
		      "compiling the model for %u cards failed "
		      "(%s); see this member's log",
		      h->n_cards, strerror(-ret));
		unload(m);
		m->head = pe;
		return;
	}
	if (m->plan_hash != h->plan_hash) {
		reply(m, pe, -EINVAL, 0,
		      "compiled mapping %016llx here (precision %s), the "
		      "head's is %016llx (precision %s): run the same np "
		      "and options on both",
		      (unsigned long long)m->plan_hash,
		      np_precision_name(h->precision),
		      (unsigned long long)h->plan_hash,
		      np_precision_name(h->precision));
		unload(m);
		m->head = pe;
		return;
	}
	if (!h->count) { /* a spare: checked, nothing loaded */
		reply(m, pe, 0, 0, "spare ready");
		return;
	}
	ret = npi_segment_create(m->ctx, m->c, h->first, h->count,
				 h->frame_tokens, &m->p);
	if (!ret)
		ret = buffers(m);
	if (!ret)
		ret = connect_down(m);
	if (ret) {
		reply(m, pe, ret, 0,
		      "loading cards %u..%u of the model failed (%s); see "
		      "this member's log",
		      h->first, h->first + h->count - 1, strerror(-ret));
		unload(m);
		m->head = pe;
		return;
	}
	m->image_sum = NPI_FNV_INIT;
	for (uint32_t i = 0; i < m->p->n_stages; i++)
		m->image_sum = npi_fnv(m->image_sum, &m->p->st[i].sum.crc,
				       sizeof(m->p->st[i].sum.crc));
	frames_drop(m);
	if (m->inject) {
		unsigned int card = (unsigned int)strtoul(m->inject, NULL, 10);
		const char *f = strchr(m->inject, ':');
		int r = f && card < m->p->n_stages ?
				np_card_inject(m->p->st[card].card, f + 1) :
				-EINVAL;

		LOG(m, r ? LOG_ERR : LOG_WARNING, "member: inject %s: %s",
		    m->inject, r ? strerror(-r) : "armed");
		free(m->inject);
		m->inject = NULL;
	}
	m->cpu0 = npi_thread_cpu_ns();
	m->t0 = npi_now_ns();
	LOG(m, LOG_INFO,
	    "member: cards %u..%u of %u loaded (%u layer, %u output cards), "
	    "frames go to %s",
	    h->first, h->first + h->count - 1, h->n_cards, m->p->n_layer,
	    m->p->n_out, h->next[0] ? h->next : "the head");
	reply(m, pe, 0, npi_now_ns() - t, "loaded");
}

/* A RESET: a new epoch after a failure; cards reset and reloaded, frames
 * dropped, maybe a new host downstream. */
static void on_reset(struct np_member *m, struct npi_peer *pe,
		     const struct npi_msg *msg, const struct npi_hello *h)
{
	uint64_t t = npi_now_ns();
	int ret;

	if (!m->p || pe != m->head) {
		reply(m, pe, -ENOENT, 0, "reset without a loaded segment");
		return;
	}
	if (!memchr(h->next, 0, sizeof(h->next))) {
		reply(m, pe, -EINVAL, 0,
		      "reset: the next member's address is not a string of at "
		      "most %u bytes: fix the head",
		      NPI_ADDR_LEN - 1);
		return;
	}
	frames_drop(m);
	ret = npi_pipeline_reload(m->p);
	memcpy(m->hello.next, h->next, sizeof(m->hello.next));
	if (!ret)
		ret = connect_down(m);
	m->epoch = msg->epoch;
	m->broken = ret != 0;
	if (ret) {
		reply(m, pe, ret, 0, "reset failed (%s)", strerror(-ret));
		return;
	}
	reply(m, pe, 0, npi_now_ns() - t, "reset");
}

static void fault(struct np_member *m, int err, bool link, const char *what);

static void *ops_dest(void *o, struct npi_peer *pe, const struct npi_msg *msg,
		      size_t len)
{
	struct np_member *m = o;
	static struct npi_hello scratch; /* one loop thread */
	struct mframe *f;

	(void)pe;
	if (msg->type == NPI_MSG_HELLO || msg->type == NPI_MSG_RESET)
		return len == sizeof(scratch) ? &scratch : NULL;
	if (msg->type != NPI_MSG_FRAME || !m->p || m->broken ||
	    msg->epoch != m->epoch)
		return NULL;
	f = &m->fr[msg->k % NPI_LINK_SLOTS];
	if (f->state != F_FREE || len > m->rx_slot) {
		LOG(m, LOG_ERR,
		    "member: frame %llu from %s has no free slot (%s): the "
		    "sender ignored its credits; dropped",
		    (unsigned long long)msg->k, npi_link_peer_name(pe),
		    len > m->rx_slot ? "too long" : "slot busy");
		return NULL;
	}
	return (uint8_t *)np_buf_ptr(m->rx) +
	       (msg->k % NPI_LINK_SLOTS) * m->rx_slot;
}

static void ops_arrived(void *o, struct npi_peer *pe, const struct npi_msg *msg,
			void *buf, size_t len)
{
	struct np_member *m = o;

	switch (msg->type) {
	case NPI_MSG_HELLO:
		if (buf)
			on_hello(m, pe, msg, buf);
		break;
	case NPI_MSG_RESET:
		if (buf)
			on_reset(m, pe, msg, buf);
		break;
	case NPI_MSG_FRAME: {
		struct mframe *f = &m->fr[msg->k % NPI_LINK_SLOTS];

		if (!buf)
			break;
		f->state = F_ARRIVED;
		f->k = msg->k;
		f->len = (uint32_t)len;
		memcpy(&f->n, buf, 4);
		f->from = pe;
		break;
	}
	case NPI_MSG_CREDIT:
		if (msg->epoch == m->epoch && m->credits < NPI_LINK_SLOTS)
			m->credits++;
		break;
	case NPI_MSG_BYE:
		if (pe == m->head) {
			LOG(m, LOG_INFO, "member: the head said goodbye");
			unload(m);
			m->head = NULL;
		}
		break;
	default:
		break;
	}
}

static void ops_peer_error(void *o, struct npi_peer *pe, int err)
{
	struct np_member *m = o;

	if (pe == m->head) {
		LOG(m, LOG_WARNING,
		    "member: lost the head %s (%s); unloading, waiting for a "
		    "head",
		    npi_link_peer_name(pe), strerror(-err));
		unload(m);
		m->head = NULL;
		npi_link_drop(m->l, pe);
	} else if (pe == m->down) {
		/* the head learns it from the next host's own link if that
		 * host died; if only this link broke, from here: its RESET
		 * reconnects */
		fault(m, err, true, "lost the link to the next host");
	} else {
		for (uint32_t i = 0; i < NPI_LINK_SLOTS; i++)
			if (m->fr[i].from == pe)
				m->fr[i].from = NULL;
		npi_link_drop(m->l, pe);
	}
}

static void ops_accepted(void *o, struct npi_peer *pe)
{
	(void)o;
	(void)pe;
}

static const struct npi_link_ops member_ops = {
	.dest = ops_dest,
	.arrived = ops_arrived,
	.peer_error = ops_peer_error,
	.accepted = ops_accepted,
};

static void fault(struct np_member *m, int err, bool link, const char *what)
{
	struct npi_msg h = {
		.type = NPI_MSG_FAULT,
		.epoch = m->epoch,
		.a = (uint32_t)err,
		.b = link, /* the link to the next host, not a card */
	};

	LOG(m, LOG_ERR, "member: %s (%s); told the head", what, strerror(-err));
	m->broken = true;
	if (m->head)
		npi_link_send(m->l, m->head, &h, NULL, 0, NULL);
}

/* A DMA engine of the segment failed a transfer since the last reset (the
 * transfer layer restarts it at once, so a frame it did not forward may be
 * followed by later ones: nothing goes downstream after this). */
static bool dma_failed(const struct np_member *m)
{
	for (uint32_t i = 0; i < m->p->n_stages; i++)
		if (__atomic_load_n(&m->p->st[i].card->dma_failed,
				    __ATOMIC_ACQUIRE)) {
			LOG(m, LOG_ERR,
			    "member: card %s: a DMA engine failed a transfer",
			    m->p->st[i].card->name);
			return true;
		}
	return false;
}

/* A card of the segment failed in a way no waiting cures, hung, or no
 * card finished a layer job for the context's timeout while frames are on
 * them: 0 or -errno (the checks log which card). */
static int cards_check(struct np_member *m, uint64_t now)
{
	struct np_pipeline *p = m->p;
	uint64_t sum = 0;
	int ret = dma_failed(m) ? -EIO : npi_cq_watch(p, now);

	for (uint32_t i = 0; i < p->n_stages && !ret; i++) {
		uint32_t v = 0;

		ret = npi_cq_check(p, &p->st[i]);
		if (!ret)
			ret = npi_card_failed(p->st[i].card);
		np_card_event_read(p->st[i].card, EV_DONE, &v);
		sum += v;
	}
	if (ret)
		return ret;
	if (sum != m->done_sum || !m->done_since) {
		m->done_sum = sum;
		m->done_since = now;
	} else if (now - m->done_since >
		   (uint64_t)np_ctx_timeout_ms(m->ctx) * 1000000ull) {
		LOG(m, LOG_ERR,
		    "member: no card finished a layer job for %d ms with "
		    "frames on them",
		    np_ctx_timeout_ms(m->ctx));
		return -ETIMEDOUT;
	}
	return 0;
}

/* A frame from upstream, checked as the cards would check it (a card
 * that refuses a job fails); false with why. */
static bool frame_ok(const struct np_member *m, const struct mframe *f,
		     uint32_t opt, char *why, size_t len)
{
	const struct np_pipeline *p = m->p;
	unsigned long long k = (unsigned long long)f->k;
	uint32_t cand = NP_JOB_ARG_TOPK(opt);

	if (!f->n || f->n > p->frame_tokens) {
		snprintf(why, len,
			 "a malformed frame arrived: frame %llu has %u tokens, "
			 "1..%u fit",
			 k, f->n, p->frame_tokens);
		return false;
	}
	if (f->len != NP_JOB_ARG_HDR + f->n * (NP_JOB_ARG_TOK + p->dim * 2)) {
		snprintf(why, len,
			 "a malformed frame arrived: frame %llu is %u bytes, "
			 "its %u tokens take %u",
			 k, f->len, f->n,
			 NP_JOB_ARG_HDR + f->n * (NP_JOB_ARG_TOK + p->dim * 2));
		return false;
	}
	if (opt != cand) {
		snprintf(why, len,
			 "a malformed frame arrived: frame %llu has options "
			 "%#x, bits 31:8 are reserved (zero)",
			 k, opt);
		return false;
	}
	if (cand > NP_JOB_TOPK_MAX) {
		snprintf(why, len,
			 "a malformed frame arrived: frame %llu asks for %u "
			 "candidates a token, at most %u",
			 k, cand, NP_JOB_TOPK_MAX);
		return false;
	}
	for (uint32_t o = 0; o < p->n_out; o++) {
		const struct np_card_plan *pl = p->st[p->n_layer + o].plan;

		if (cand > pl->vocab_end - pl->vocab_begin) {
			snprintf(why, len,
				 "a malformed frame arrived: frame %llu asks "
				 "for %u candidates a token, output card %u "
				 "holds %u",
				 k, cand, o, pl->vocab_end - pl->vocab_begin);
			return false;
		}
	}
	return true;
}

static void post(struct np_member *m)
{
	struct np_pipeline *p = m->p;

	for (;;) {
		struct mframe *f = &m->fr[m->next_post % NPI_LINK_SLOTS];
		uint8_t *rx = (uint8_t *)np_buf_ptr(m->rx) +
			      (m->next_post % NPI_LINK_SLOTS) * m->rx_slot;
		struct npi_post io = {
			.in = m->rx,
			.in_off = (m->next_post % NPI_LINK_SLOTS) * m->rx_slot,
			.out = m->tx,
		};
		uint64_t at = (m->next_post % NPI_LINK_SLOTS) * m->tx_slot;
		uint32_t opt;
		char why[160];
		int ret;

		if (f->state != F_ARRIVED || f->k != m->next_post)
			return;
		memcpy(&opt, rx + 4, 4);
		io.cand = opt & 0xff;
		io.full_logits = !io.cand;
		for (uint32_t o = 0; o < p->n_out; o++) {
			io.out_at[o] = at;
			at += f->n * out_row(p, o, opt);
		}
		f->out_len = p->n_out ? (uint32_t)(at - io.out_at[0]) : f->len;
		if (!p->n_out)
			io.out_at[0] = at;
		if (!frame_ok(m, f, opt, why, sizeof(why))) {
			fault(m, -EPROTO, false, why);
			return;
		}
		ret = npi_post_frame(p, (uint32_t)f->k, f->n, f->len, &io, f->x,
				     &f->nx);
		if (ret) {
			fault(m, ret, false,
			      "posting a frame to the cards failed");
			return;
		}
		f->state = F_POSTED;
		m->next_post++;
	}
}

/* Frames back from the cards go downstream in order, one credit each;
 * sent ones free their slots and credit upstream. */
static void complete(struct np_member *m)
{
	for (;;) {
		struct mframe *f = &m->fr[m->next_send % NPI_LINK_SLOTS];
		uint64_t k = m->next_send;

		if (f->k != k)
			return;
		if (f->state == F_POSTED) {
			for (uint32_t i = 0; i < f->nx; i++) {
				int r = npi_xfer_reap(f->x[i]);

				/* np_xfer_poll also drains the engine's
				 * interrupt eventfd the loop sleeps on */
				if (r == -EINPROGRESS)
					r = np_xfer_poll(f->x[i]);
				if (r == -EINPROGRESS)
					return;
				if (r) {
					fault(m, r, false,
					      "a frame's transfer failed");
					return;
				}
			}
			if (dma_failed(m)) {
				fault(m, -EIO, false,
				      "a card of this host failed; the frame "
				      "is not sent on");
				return;
			}
			for (uint32_t i = 0; i < f->nx; i++)
				np_xfer_free(f->x[i]);
			f->nx = 0;
			f->state = F_DONE;
		}
		if (f->state == F_DONE) {
			struct npi_peer *to = m->down ? m->down : m->head;
			struct npi_msg h = {
				.type = NPI_MSG_FRAME,
				.epoch = m->epoch,
				.k = k,
				.t_ns = npi_now_ns(),
			};
			int ret;

			if (m->down && !m->credits)
				return; /* back-pressure */
			ret = npi_link_send(m->l, to, &h,
					    (uint8_t *)np_buf_ptr(m->tx) +
						    (k % NPI_LINK_SLOTS) *
							    m->tx_slot,
					    f->out_len, &f->send);
			if (ret) {
				m->broken = true;
				return;
			}
			m->credits -= m->down ? 1 : 0;
			f->state = F_SENDING;
		}
		if (f->state == F_SENDING) {
			int r = npi_link_send_done(f->send);
			struct npi_msg c = {
				.type = NPI_MSG_CREDIT,
				.epoch = m->epoch,
				.k = k,
			};

			if (!r)
				return;
			npi_link_send_free(m->l, f->send);
			f->send = NULL;
			if (r < 0) {
				m->broken = true;
				return;
			}
			if (f->from)
				npi_link_send(m->l, f->from, &c, NULL, 0, NULL);
			f->state = F_FREE;
			m->next_send++;
			m->frames++;
			continue;
		}
		return;
	}
}

int np_member_create(struct np_ctx *ctx, const struct np_member_opts *o,
		     struct np_member **out)
{
	struct np_member *m;
	int ret;

	*out = NULL;
	if (!ctx || !o || !o->listen || !o->model)
		return -EINVAL;
	if (!npi_resv_zero(ctx, "np_member_opts", o->resv, sizeof(o->resv)))
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->ctx = ctx;
	m->ctx_fd = np_ctx_fd(ctx);
	m->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	snprintf(m->listen, sizeof(m->listen), "%s", o->listen);
	m->model_path = strdup(o->model);
	if (o->inject)
		m->inject = strdup(o->inject);
	ret = m->efd < 0 ? -errno : !m->model_path ? -ENOMEM : 0;
	if (!ret)
		ret = npi_file_hash(o->model, &m->model_hash);
	if (!ret)
		ret = np_gguf_open(o->model, &ctx->log, &m->g);
	if (!ret)
		ret = np_model_from_gguf(m->g, &ctx->log, &m->model);
	if (!ret)
		ret = npi_link_open(ctx, &member_ops, m, &m->l);
	if (!ret)
		ret = npi_link_listen(m->l, o->listen);
	if (ret) {
		npi_log(ctx, LOG_ERR, "member: cannot serve %s on %s (%s)",
			o->model, o->listen, strerror(-ret));
		np_member_destroy(m);
		return ret;
	}
	frames_drop(m);
	*out = m;
	return 0;
}

struct npi_link *npi_member_link(struct np_member *m)
{
	return m->l;
}

void npi_member_step(struct np_member *m, int timeout_ms)
{
	{
		struct mframe *f = &m->fr[m->next_send % NPI_LINK_SLOTS];
		uint64_t now, hb;

		/* Sleep on the transport, the stop eventfd and, while the
		 * oldest frame is on the cards, the cards' completion
		 * interrupts (np_ctx_fd; np_ctx_process drains them) */
		bool cards = f->state == F_POSTED;

		npi_link_wait(m->l, timeout_ms, cards ? m->ctx_fd : m->efd);
		if (cards)
			np_ctx_process(m->ctx);
		now = npi_now_ns();
		if (!cards || !m->p || m->broken) {
			m->done_since = 0;
		} else if (now - m->checked >= NPI_POLL_MS * 1000000ull) {
			int ret = cards_check(m, now);

			m->checked = now;
			if (ret)
				fault(m, ret, false,
				      "a card of this host failed");
		}
		if (m->p && !m->broken) {
			post(m);
			complete(m);
		}
		now = npi_now_ns();
		hb = (uint64_t)(m->hello.heartbeat_ms ? m->hello.heartbeat_ms :
							100) *
		     1000000ull;
		if (m->head && now - m->hb_sent >= hb) {
			struct npi_msg h = {.type = NPI_MSG_HEARTBEAT,
					    .epoch = m->epoch};

			m->hb_sent = now;
			npi_link_send(m->l, m->head, &h, NULL, 0, NULL);
		}
	}
}

int np_member_run(struct np_member *m)
{
	while (!__atomic_load_n(&m->stop, __ATOMIC_RELAXED))
		npi_member_step(m, NPI_POLL_MS);
	return 0;
}

void np_member_stop(struct np_member *m)
{
	uint64_t one = 1;

	__atomic_store_n(&m->stop, 1, __ATOMIC_RELAXED);
	if (write(m->efd, &one, sizeof(one)) < 0) {
		/* the loop sees the flag within NPI_POLL_MS anyway */
	}
}

void np_member_destroy(struct np_member *m)
{
	if (!m)
		return;
	if (m->l)
		unload(m);
	npi_link_close(m->l);
	np_model_destroy(m->model);
	np_gguf_close(m->g);
	if (m->efd >= 0)
		close(m->efd);
	free(m->model_path);
	free(m->inject);
	free(m);
}
