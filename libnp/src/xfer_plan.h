/* SPDX-License-Identifier: MIT */
/*
 * Transfers into DMA descriptors (xfer_plan.c): what xfer.c's submission
 * writes into an engine's ring for one struct np_xfer_spec.
 */
#ifndef NP_XFER_PLAN_H
#define NP_XFER_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "internal.h"

/* One transfer, checked, as the descriptors will carry it. */
struct npi_plan {
	uint8_t opcode;
	uint8_t flags; /* NP_DESC_F_* of the whole transfer */
	bool quiet; /* no interrupt: nobody waits for it */
	uint8_t wait_event, signal_event;
	uint32_t wait_value;
	uint64_t src, dst, len;
	uint64_t notify_addr;
};

/* Check spec against card (ranges, events, peer, buffer) and plan it:
 * 0, or -EINVAL after logging what is wrong. */
int npi_plan_build(struct np_card *card, const struct np_xfer_spec *s,
		   struct npi_plan *p);
/* Descriptors the plan takes: one per NP_DMA_MAX_LEN piece, at least 1. */
uint32_t npi_plan_descs(const struct npi_plan *p);
/* Write the plan's n (npi_plan_descs) descriptors into ring r. */
void npi_plan_write(struct npi_ring *r, const struct npi_plan *p, uint32_t n);
/* Log that a transfer on card is wrong (what, value v): -EINVAL. */
int npi_xfer_bad_spec(struct np_card *card, const char *what,
		      unsigned long long v);

#endif /* NP_XFER_PLAN_H */
