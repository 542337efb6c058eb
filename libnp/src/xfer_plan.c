// SPDX-License-Identifier: MIT
/*
 * Transfers into DMA descriptors: a struct np_xfer_spec checked against
 * the card (ranges, events, peers, buffers of this context), planned as
 * opcode, flags, addresses and events, and written into an engine's ring
 * in pieces of at most NP_DMA_MAX_LEN.
 */
#include <errno.h>
#include <string.h>

#include "xfer_plan.h"

static bool card_range_ok(const struct np_card *card, uint64_t addr,
			  uint64_t len)
{
	const struct np_card_info *in = &card->info;

	if (addr + len < addr)
		return false;
	if (addr + len <= NP_CA_SRAM_BASE + in->sram_size)
		return true;
	return addr >= NP_CA_FB_BASE &&
	       addr + len <= NP_CA_FB_BASE + in->fb_size;
}

int npi_xfer_bad_spec(struct np_card *card, const char *what,
		      unsigned long long v)
{
	npi_log(card->ctx, LOG_ERR, "np: card %s: transfer %s (0x%llx)",
		card->name, what, v);
	return -EINVAL;
}

static int host_side(struct np_card *card, const struct np_xfer_spec *s,
		     uint64_t *bus)
{
	if (!s->buf) {
		*bus = s->bus_addr;
		return 0;
	}
	if (s->buf->ctx != card->ctx)
		return npi_xfer_bad_spec(
			card, "buffer belongs to another context", 0);
	if (s->buf_offset > s->buf->size ||
	    s->len > s->buf->size - s->buf_offset)
		return npi_xfer_bad_spec(
			card, "host range ends past its buffer",
			(unsigned long long)(s->buf_offset + s->len));
	*bus = s->buf->iova + s->buf_offset;
	return 0;
}

int npi_plan_build(struct np_card *card, const struct np_xfer_spec *s,
		   struct npi_plan *p)
{
	const unsigned int ev = card->info.events;
	struct np_card *peer = s->peer;
	int ret = 0;

	memset(p, 0, sizeof(*p));
	if (s->flags &
	    ~(NP_XFER_F_WAIT | NP_XFER_F_SIGNAL | NP_XFER_F_PEER_EVENT))
		return npi_xfer_bad_spec(card, "has unknown flags", s->flags);
	if (((s->flags & NP_XFER_F_WAIT) && s->wait_event >= ev) ||
	    ((s->flags & NP_XFER_F_SIGNAL) && s->signal_event >= ev))
		return npi_xfer_bad_spec(
			card, "names an event past the card's events", ev);
	if (s->flags & NP_XFER_F_WAIT) {
		p->flags |= NP_DESC_F_WAIT;
		p->wait_event = (uint8_t)s->wait_event;
		p->wait_value = s->wait_value;
	}
	if (s->flags & NP_XFER_F_SIGNAL) {
		p->flags |= NP_DESC_F_SIGNAL;
		p->signal_event = (uint8_t)s->signal_event;
	}
	if (s->op != NP_XFER_C2C && (s->flags & NP_XFER_F_PEER_EVENT))
		return npi_xfer_bad_spec(
			card, "asks for a peer event without C2C", s->op);
	if (s->op != NP_XFER_FENCE && !s->len)
		return npi_xfer_bad_spec(card, "has length 0", 0);
	p->len = s->len;
	switch (s->op) {
	case NP_XFER_H2C:
		p->opcode = NP_DMA_OP_H2C;
		p->dst = s->card_addr;
		ret = host_side(card, s, &p->src);
		if (!ret && !card_range_ok(card, p->dst, p->len))
			ret = npi_xfer_bad_spec(
				card, "destination outside SRAM/FB", p->dst);
		return ret;
	case NP_XFER_C2H:
		p->opcode = NP_DMA_OP_C2H;
		p->src = s->card_addr;
		ret = host_side(card, s, &p->dst);
		if (!ret && !card_range_ok(card, p->src, p->len))
			ret = npi_xfer_bad_spec(card, "source outside SRAM/FB",
						p->src);
		return ret;
	case NP_XFER_COPY:
		p->opcode = NP_DMA_OP_COPY;
		p->src = s->card_addr;
		p->dst = s->dst_addr;
		if (!card_range_ok(card, p->src, p->len) ||
		    !card_range_ok(card, p->dst, p->len))
			return npi_xfer_bad_spec(card, "copy outside SRAM/FB",
						 p->src);
		return 0;
	case NP_XFER_FENCE:
		if (!(s->flags & NP_XFER_F_WAIT))
			return npi_xfer_bad_spec(card, "fence without F_WAIT",
						 0);
		p->opcode = NP_DMA_OP_FENCE;
		p->len = 0;
		return 0;
	case NP_XFER_C2C:
		break;
	default:
		return npi_xfer_bad_spec(card, "has an unknown op", s->op);
	}
	if (!peer || peer->ctx != card->ctx)
		return npi_xfer_bad_spec(
			card, "C2C peer missing or of another context", 0);
	if (s->dst_addr < NP_CA_FB_BASE || s->len > peer->info.fb_size ||
	    s->dst_addr - NP_CA_FB_BASE > peer->info.fb_size - s->len)
		return npi_xfer_bad_spec(
			card, "C2C destination outside the peer's FB",
			s->dst_addr);
	if ((s->flags & NP_XFER_F_PEER_EVENT) &&
	    s->peer_event >= peer->info.events)
		return npi_xfer_bad_spec(card,
					 "peer event past the peer's events",
					 s->peer_event);
	p->src = s->card_addr;
	if (!card_range_ok(card, p->src, p->len))
		return npi_xfer_bad_spec(card, "source outside SRAM/FB",
					 p->src);
	if (peer == card) {
		p->opcode = NP_DMA_OP_COPY;
		p->dst = s->dst_addr;
		if (s->flags & NP_XFER_F_PEER_EVENT) {
			if (s->flags & NP_XFER_F_SIGNAL)
				return npi_xfer_bad_spec(
					card, "C2C to itself with two signals",
					0);
			p->flags |= NP_DESC_F_SIGNAL;
			p->signal_event = (uint8_t)s->peer_event;
		}
		return 0;
	}
	p->opcode = NP_DMA_OP_C2P;
	p->dst = peer->info.fb_iova + (s->dst_addr - NP_CA_FB_BASE);
	if (s->flags & NP_XFER_F_PEER_EVENT) {
		p->flags |= NP_DESC_F_NOTIFY;
		p->notify_addr = peer->info.mbox_iova +
				 NP_MBOX_EVENT(s->peer_event) - NP_MBOX_OFFSET;
	}
	return 0;
}

uint32_t npi_plan_descs(const struct npi_plan *p)
{
	if (!p->len)
		return 1;
	return (uint32_t)((p->len + NP_DMA_MAX_LEN - 1) / NP_DMA_MAX_LEN);
}

void npi_plan_write(struct npi_ring *r, const struct npi_plan *p, uint32_t n)
{
	uint64_t off = 0;
	uint32_t i;

	for (i = 0; i < n; i++) {
		struct np_dma_desc *d = npi_ring_next(r);
		uint64_t chunk = p->len - off;
		bool last = i + 1 == n;

		if (chunk > NP_DMA_MAX_LEN)
			chunk = NP_DMA_MAX_LEN;
		memset(d, 0, sizeof(*d));
		d->opcode = p->opcode;
		d->flags =
			(uint8_t)((i == 0 ? (p->flags & NP_DESC_F_WAIT) : 0) |
				  (last ? (p->flags & (NP_DESC_F_SIGNAL |
						       NP_DESC_F_NOTIFY)) |
						   (p->quiet ? 0 :
							       NP_DESC_F_IRQ) :
					  0));
		d->wait_event = p->wait_event;
		d->wait_value = p->wait_value;
		d->signal_event = p->signal_event;
		d->len = (uint32_t)chunk;
		if (p->len) {
			d->src = p->src + off;
			d->dst = p->dst + off;
		}
		if (last && (p->flags & NP_DESC_F_NOTIFY)) {
			d->notify_addr = p->notify_addr;
			d->notify_data = 1;
		}
		d->user = r->submitted;
		off += chunk;
	}
}
