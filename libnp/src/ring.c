// SPDX-License-Identifier: MIT
/*
 * Descriptor rings (ring.h): memory, programming, stopping, submission of
 * a card's queues, DMA engines and compute queue alike.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

int npi_ring_alloc(struct npi_ring *r, struct np_card *card, uint32_t base,
		   uint32_t entries, size_t desc_size)
{
	size_t ring = (size_t)entries * desc_size;
	int ret;

	r->card = card;
	r->base = base;
	r->entries = entries;
	r->desc_size = desc_size;
	r->submitted = 0;
	ret = np_buf_alloc(card->ctx, ring + sizeof(struct np_queue_wb),
			   &r->mem);
	if (ret)
		return ret;
	r->desc = np_buf_ptr(r->mem);
	r->wb = (struct np_queue_wb *)((char *)r->desc + ring);
	return 0;
}

void npi_ring_free(struct npi_ring *r)
{
	np_buf_free(r->mem);
	r->mem = NULL;
	r->desc = NULL;
	r->wb = NULL;
}

uint32_t npi_ring_rd(const struct npi_ring *r, uint32_t reg)
{
	return r->card->ctx->ops->reg_read(r->card, r->base + reg);
}

void npi_ring_wr(const struct npi_ring *r, uint32_t reg, uint32_t val)
{
	r->card->ctx->ops->reg_write(r->card, r->base + reg, val);
}

int npi_ring_reset(struct npi_ring *r, const struct npi_ring_stop *stop,
		   uint32_t *status)
{
	uint64_t deadline =
		npi_now_ns() + (uint64_t)r->card->ctx->timeout_ms * 1000000ull;
	uint32_t st;

	if (stop->removed_first && np_card_removed(r->card))
		return -ENODEV;
	if (stop->disable)
		npi_ring_wr(r, NP_Q_CTRL, 0);
	npi_ring_wr(r, NP_Q_CTRL, NP_Q_CTRL_RESET);
	while ((st = npi_ring_rd(r, NP_Q_STATUS)) & stop->idle) {
		if (status)
			*status = st;
		if (!stop->removed_first && np_card_removed(r->card))
			return -ENODEV;
		/* all ones: the card does not answer (no status has every
		 * bit set); waiting would not change that */
		if (st == UINT32_MAX || npi_now_ns() >= deadline)
			return -ETIMEDOUT;
		usleep(stop->poll_us);
	}
	if (status)
		*status = st;
	return 0;
}

uint32_t npi_ring_program(struct npi_ring *r)
{
	uint64_t ring = np_buf_iova(r->mem);
	uint64_t wb = ring + (uint64_t)r->entries * r->desc_size;

	memset(r->wb, 0, sizeof(*r->wb));
	r->submitted = 0;
	npi_ring_wr(r, NP_Q_RING_LO, (uint32_t)ring);
	npi_ring_wr(r, NP_Q_RING_HI, (uint32_t)(ring >> 32));
	npi_ring_wr(r, NP_Q_RING_SIZE, r->entries);
	npi_ring_wr(r, NP_Q_WB_LO, (uint32_t)wb);
	npi_ring_wr(r, NP_Q_WB_HI, (uint32_t)(wb >> 32));
	npi_ring_wr(r, NP_Q_WAIT_TIMEOUT, 0);
	npi_ring_wr(r, NP_Q_CTRL, NP_Q_CTRL_ENABLE);
	return npi_ring_rd(r, NP_Q_STATUS);
}

void *npi_ring_next(struct npi_ring *r)
{
	uint32_t i = r->submitted++ & (r->entries - 1);

	return (char *)r->desc + (size_t)i * r->desc_size;
}

uint32_t npi_ring_completed(const struct npi_ring *r)
{
	return __atomic_load_n(&r->wb->completed, __ATOMIC_ACQUIRE);
}

void npi_ring_doorbell(struct npi_ring *r)
{
	/* Descriptors must be visible before the doorbell. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	npi_ring_wr(r, NP_Q_TAIL, r->submitted & (r->entries - 1));
}
