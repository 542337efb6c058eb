/* SPDX-License-Identifier: MIT */
/*
 * Descriptor rings: one driver for every queue of a card. A DMA engine
 * (NP_DMA_BASE(e), struct np_dma_desc) and the compute queue
 * (NP_COMPUTE_BASE, struct np_job_desc) have the same register block and
 * the same ring protocol (docs/hardware.md, Queues); xfer.c and
 * pipe_queue.c put their own descriptors, waiting and error reporting on
 * top of this.
 */
#ifndef NP_RING_H
#define NP_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "np_abi.h"

struct np_buf;
struct np_card;

struct npi_ring {
	struct np_card *card;
	uint32_t base; /* the queue's register block */
	uint32_t entries; /* a power of two */
	size_t desc_size;
	struct np_buf *mem; /* the ring, then the writeback record */
	void *desc;
	struct np_queue_wb *wb;
	uint32_t submitted; /* descriptors since the ring was programmed */
};

/* How npi_ring_reset() stops a queue: the DMA engines and the compute
 * queue stop theirs differently (xfer.c, pipe_queue.c say why). */
struct npi_ring_stop {
	/* -ENODEV for a removed card before any register access; otherwise
	 * the reset is written regardless and the wait ends with -ENODEV
	 * once the card is removed */
	bool removed_first;
	bool disable; /* NP_Q_CTRL = 0 before NP_Q_CTRL_RESET */
	uint32_t idle; /* NP_Q_STATUS bits that must clear */
	unsigned int poll_us;
};

/* The ring (entries descriptors of desc_size bytes) and its writeback
 * record in one DMA buffer of card's context, for the queue at register
 * block base. Nothing is written to the card. */
int npi_ring_alloc(struct npi_ring *r, struct np_card *card, uint32_t base,
		   uint32_t entries, size_t desc_size);
/* Free what npi_ring_alloc allocated; the queue must be stopped. */
void npi_ring_free(struct npi_ring *r);

uint32_t npi_ring_rd(const struct npi_ring *r, uint32_t reg);
void npi_ring_wr(const struct npi_ring *r, uint32_t reg, uint32_t val);

/*
 * Reset the queue and wait until NP_Q_STATUS shows none of stop->idle:
 * then it no longer touches the ring or the writeback record (a
 * descriptor in flight is abandoned and still writes its record). 0,
 * -ETIMEDOUT after the context's timeout, or -ENODEV (stop->removed_first
 * says when). *status (if not NULL) gets the last NP_Q_STATUS read.
 */
int npi_ring_reset(struct npi_ring *r, const struct npi_ring_stop *stop,
		   uint32_t *status);
/*
 * Clear the writeback record, restart the descriptor count and program
 * the ring, the record and no wait timeout into the stopped queue, then
 * enable it. Returns NP_Q_STATUS read after the enable: the caller
 * checks for NP_Q_STATUS_ENABLED.
 */
uint32_t npi_ring_program(struct npi_ring *r);

/* The slot of the next descriptor, counted as submitted. */
void *npi_ring_next(struct npi_ring *r);
/* Descriptors submitted and not completed, by the count completed. */
static inline uint32_t npi_ring_used(const struct npi_ring *r,
				     uint32_t completed)
{
	return r->submitted - completed;
}
/* The writeback record's completed count (not validated). */
uint32_t npi_ring_completed(const struct npi_ring *r);
/* Hand every descriptor written so far to the card. */
void npi_ring_doorbell(struct npi_ring *r);

#endif /* NP_RING_H */
