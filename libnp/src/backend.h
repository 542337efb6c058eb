/* SPDX-License-Identifier: MIT */
/*
 * libnp backend operations: the only place where the in-process emulator
 * and VFIO differ. Everything else (rings, transfers, buffers, IOVA space,
 * card bring-up) is written once on top of this table.
 */
#ifndef NP_BACKEND_H
#define NP_BACKEND_H

#include <stddef.h>
#include <stdint.h>

struct np_ctx;
struct np_card;
struct np_spec;

struct npi_backend {
	const char *name; /* spec prefix: "emu", "vfio" */
	/*
	 * Create the cards named by spec (parsed by np_spec_parse(), of this
	 * backend's kind) with npi_card_add(); the generic layer then checks
	 * IDs, programs the engines and maps the IOVA space. Returns 0 or
	 * -errno after logging what is wrong and how to fix it.
	 */
	int (*open)(struct np_ctx *ctx, const struct np_spec *spec);
	/* Release everything open() created. Called once, after every
	 * buffer has been unmapped; also after a failed open(). */
	void (*close)(struct np_ctx *ctx);
	uint32_t (*reg_read)(struct np_card *card, uint32_t off);
	void (*reg_write)(struct np_card *card, uint32_t off, uint32_t value);
	/* Map [vaddr, vaddr + len) at iova for every card of the context. */
	int (*dma_map)(struct np_ctx *ctx, void *vaddr, uint64_t iova,
		       size_t len);
	void (*dma_unmap)(struct np_ctx *ctx, uint64_t iova, size_t len);
	/* Map card's frame buffer at fb_iova and its mailbox page at
	 * mbox_iova for every card of the context. A failure makes the card
	 * reachable only through host bounce buffers. */
	int (*peer_map)(struct np_card *card, uint64_t fb_iova,
			uint64_t mbox_iova);
	void (*peer_unmap)(struct np_card *card, uint64_t fb_iova,
			   uint64_t mbox_iova);
	/* Deliver MSI-X vector v of card to card->irq_fd[v] (>= 0 for the
	 * vectors in use). */
	int (*irq_enable)(struct np_card *card);
	/* Function-level reset. The generic layer then waits for
	 * NP_STATUS_READY and checks the ID register. */
	int (*reset)(struct np_card *card);
	/* Whether the platform asked for the card back (VFIO's device
	 * request: hot-unplug, unbind); consumes the request. NULL where a
	 * card cannot go away (emu: the "remove" fault). */
	int (*remove_requested)(struct np_card *card);
	/* Let the device go, once it is marked removed: its registers read
	 * all-ones from then on, also for a thread reading one meanwhile. */
	void (*release)(struct np_card *card);
	/* Inject a fault (np_emu_fault_parse() spelling) into the card's
	 * model; NULL where the card is real (VFIO). */
	int (*inject)(struct np_card *card, const char *fault);
	/* Whether dma_map pins memory itself (VFIO type1 does; counting an
	 * mlock as well would halve the RLIMIT_MEMLOCK budget). */
	int pins_memory;
};

extern const struct npi_backend npi_backend_emu;
extern const struct npi_backend npi_backend_vfio;

#endif /* NP_BACKEND_H */
