/* SPDX-License-Identifier: MIT */
/*
 * libnp fault handling: fault injection into emulated cards, checksums of
 * a pipeline's resident weights, and sessions that survive a card failure.
 *
 *   np_card_inject()          a deterministic fault in an emulated card
 *   np_pipeline_verify()      read a card's weights back, compare checksum
 *   np_session_run_recover()  np_session_run that, when a card fails,
 *                             resets the cards, reloads and verifies their
 *                             weights, rebuilds every unfinished request's
 *                             KV cache from its tokens so far and resumes
 *
 * The library never prints; every function that can fail returns 0 or a
 * negative errno.
 */
#ifndef NP_RECOVER_H
#define NP_RECOVER_H

#include <stddef.h>
#include <stdint.h>

#include "np/np.h"
#include "np/pipeline.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Inject a fault into an emulated card (emu backend), spelled as for
 * QEMU's np-card inject-fault property: "dma-error:engine=E,n=N",
 * "hang:engine=E,n=N" (E a DMA engine or "compute"), "dead",
 * "sram-flip:addr=A,bits=1|2", "sram-ce", "sram-ue", "overheat"
 * (docs/hardware.md, "Fault injection"), or "remove": a surprise removal,
 * as QEMU's device_del (np_card_removed; the card stops answering and
 * fails what it had in flight with -ENODEV, for good). Faults strike
 * where they name, whatever the timing; a card reset disarms those that
 * have not.
 * Returns 0, or:
 *   -EOPNOTSUPP  a real card (VFIO): inject on the QEMU monitor instead
 *   -EINVAL      card or fault NULL, a misspelt fault, or one the card
 *                cannot have (engine, address)
 *   -ENOSPC      too many bit flips armed
 *   -EBUSY       the card is resetting
 */
int np_card_inject(struct np_card *card, const char *fault);

#define NP_EVENT_LOG_DEFAULT "/var/log/np/events.jsonl"

/*
 * The event journal every process of libnp appends to (one JSON line per
 * card failure, reset, recovery, thermal episode or injected fault;
 * docs/nptool.md, "events"): the environment's NP_EVENT_LOG, else
 * NP_EVENT_LOG_DEFAULT. Returns NULL if NP_EVENT_LOG is "" or "off" (no
 * journal).
 */
const char *np_event_log_path(void);

/*
 * Read card `card` (0 .. np_pipeline_cards - 1) of the pipeline back by
 * DMA and compare the CRC32C of its resident weights (every core's SRAM
 * below its KV cache) with the one taken of the host copy when the image
 * was loaded. crc may be NULL; else it receives the card's checksum.
 * Must not run concurrently with np_session_run on the same pipeline.
 * Returns 0 when they match, or:
 *   -EINVAL   card out of range
 *   -EBADMSG  the weights differ (logged: card, expected and found)
 *   -ENOMEM, or a transfer's error (-EIO for an uncorrected SRAM error)
 */
int np_pipeline_verify(struct np_pipeline *p, uint32_t card, uint32_t *crc);

/* One recovery, reported as it completes. */
struct np_recover_event {
	uint32_t attempt; /* 1 for the first recovery of the run */
	int error; /* what np_session_run failed with */
	/* The first card of the pipeline (0 .. np_pipeline_cards - 1) found
	 * failed, and how: "removed", "not answering", "uncorrected SRAM
	 * error", "DMA error", "compute error", "compute queue hang" (its
	 * queue ran one job for 16 times its longest job so far, at least
	 * 500 ms, at most the context's timeout), "DMA engine hang" (one of
	 * its DMA engines ran one transfer as long, by the same rule); card
	 * -1 and "timeout" when no card reports a fault (the run stopped
	 * making progress for the context's timeout). */
	int32_t card;
	const char *fault;
	/* The context card (np_ctx_card index) that took the image of a
	 * removed card, else -1. */
	int32_t spare;
	uint64_t detect_ns; /* last token delivered -> failure reported */
	uint64_t recover_ns; /* cards reset, reloaded and verified */
	uint32_t requests; /* unfinished requests resumed */
	uint64_t replayed_tokens; /* tokens prefilled again to rebuild KV */
};

struct np_recover_opts {
	uint32_t max_recoveries; /* per run; 0: 4 */
	void (*on_recover)(void *opaque, const struct np_recover_event *ev);
	void *opaque;
	uint64_t resv[4]; /* must be zero: room for new options */
};

/*
 * np_session_run, surviving card failures. When the run fails with
 * anything but a caller error (-EINVAL, -ERANGE, -EBUSY), the image of
 * every removed card moves to a spare card (a card of the context that the
 * pipeline does not use; a card holds one image, so without a spare the
 * run fails with -ENODEV naming the removed card), every card of the
 * pipeline is reset (a failed run leaves jobs waiting on all of them),
 * its image is reloaded from the host copy and verified against its
 * checksum, and the requests that had not finished are run again with
 * their prompt plus the tokens they produced so far as the new prompt:
 * the prefill rebuilds their KV cache, and generation resumes at the next
 * position. Tokens already delivered are not delivered again; on_token
 * sees each request's tokens once, in order, with the request's index in
 * req. With greedy sampling (temperature 0) the tokens are those of a
 * fault-free run; a seeded sampler restarts its generator on resume.
 * ropts may be NULL. stats, if not NULL, gets wall_ns, tokens,
 * prompt_tokens (the original prompts), frames and tokens_per_s of the
 * whole run, recoveries included, and req[] when stats->req is set; the
 * rest of stats, and card[], read zero.
 * Returns 0, or as np_session_run (the last failure when max_recoveries
 * recoveries did not suffice, or the recovery's own error).
 */
int np_session_run_recover(struct np_pipeline *p, const struct np_request *req,
			   size_t n, const struct np_session_opts *opts,
			   const struct np_recover_opts *ropts,
			   struct np_session_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* NP_RECOVER_H */
