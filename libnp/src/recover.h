/* SPDX-License-Identifier: MIT */
/*
 * Hooks between the pipeline (pipe_load.c) and fault recovery (recover.c).
 */
#ifndef NP_RECOVER_PRIV_H
#define NP_RECOVER_PRIV_H

#include <stdint.h>

#include "np/model.h"
#include "np/pipeline.h"

/* Checksum of the weights a card holds: CRC32C of every core's SRAM in
 * [0, reach), core after core. */
struct npi_weights_sum {
	uint64_t reach; /* per-core bytes below the KV cache */
	uint32_t crc;
};

/* recover.c: the checksum of a rendered card image. */
void npi_weights_sum(const uint8_t *image, const struct np_card_plan *pl,
		     struct npi_weights_sum *out);

/* recover.c: whether card reports a failure that no waiting will cure:
 * registers that read all-ones (the card stopped answering), an
 * uncorrected SRAM error (NP_STATUS_FATAL), or a DMA engine stopped with
 * an error. Logs which and returns -EIO (-ENODEV for a removed card); 0
 * if none. */
int npi_card_failed(struct np_card *card);

/* pipe_load.c: card i of the pipeline and its checksum (NULL if out of
 * range). */
struct np_card *npi_pipeline_card(struct np_pipeline *p, uint32_t i,
				  struct npi_weights_sum *sum);
/* pipe_load.c: reset every card, reload the images, restart the compute
 * queues; the pipeline is as after np_pipeline_create. */
int npi_pipeline_reload(struct np_pipeline *p);
/* pipe_load.c: whether card i's compute queue stopped with an error. */
int npi_pipeline_cq_failed(struct np_pipeline *p, uint32_t i);
/* Card i's compute queue was found hung (npi_cq_watch). */
bool npi_pipeline_cq_hung(const struct np_pipeline *p, uint32_t i);
/* pipe_queue.c: the DMA engine of card i found hung, or -1. */
int npi_pipeline_dma_hung(const struct np_pipeline *p, uint32_t i);
/* pipe_load.c: card i of the pipeline becomes card (the next reload loads
 * its image there); the old card's compute queue is released. */
void npi_pipeline_replace(struct np_pipeline *p, uint32_t i,
			  struct np_card *card);

#endif /* NP_RECOVER_PRIV_H */
