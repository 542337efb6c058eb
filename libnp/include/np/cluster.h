/* SPDX-License-Identifier: MIT */
/*
 * libnp cluster: a pipeline that spans hosts (docs/cluster.md).
 *
 * A model is mapped onto an ordered chain of hosts, each with its cards.
 * Inside a host frames move card to card as in one (np/pipeline.h); at a
 * host boundary the last card's frame goes by DMA into a registered host
 * buffer and over UCX to the next host, into its first card, under the
 * same credit protocol (a host sends a frame only into a receive slot the
 * next one has freed).
 *
 *   the head     np_cluster_load(): a struct np_pipeline like
 *                np_model_load's, whose cards are the members' (npd
 *                --cluster FILE); it tokenizes, embeds, samples, and runs
 *                np_session_run and np/sched.h as on local cards
 *   a member     np_member_*(): one host's cards, serving its segment of
 *                the chain for a head (the npmember daemon)
 *
 * The cluster file names the members in chain order and the spares:
 *
 *   # host address:port, cards
 *   member 10.77.1.2:7000 cards=16
 *   member 10.77.2.2:7000 cards=16
 *   spare  10.77.4.2:7000 cards=16
 *
 * The model is compiled for the members' cards together and each member
 * gets the contiguous range of cards at its place in the chain.
 */
#ifndef NP_CLUSTER_H
#define NP_CLUSTER_H

#include <stdint.h>

#include "np/np.h"
#include "np/pipeline.h"

#ifdef __cplusplus
extern "C" {
#endif

struct np_cluster_opts {
	const char *file; /* the cluster file */
	/* a member silent this long is dead (its link cut); 0: 1000 ms */
	uint32_t timeout_ms;
	/* heartbeats on idle links every this many ms; 0: timeout / 4 */
	uint32_t heartbeat_ms;
	uint64_t resv[4]; /* must be zero: room for new options */
};

/*
 * Load the GGUF at path onto the members the cluster file names: the
 * head reads and compiles the model, tells every member its cards, the
 * model's hash and the mapping's, and waits until each has checked them,
 * compiled the same mapping from its own copy of the file and loaded its
 * cards (a mismatch is refused with an error naming both sides). popts
 * as for np_model_load (n_cards and out_cards: ignored, the members' cards
 * are used). ctx is for the head's log and host buffers; its cards are
 * not used. The pipeline works with np_session_run and np/sched.h; with
 * max_recoveries set, a member that dies or is cut off is replaced by a
 * spare and the requests replayed. Returns 0, -EINVAL (the file, the
 * options), -EHOSTUNREACH / -ETIMEDOUT (a member did not answer),
 * -EPROTO (a member refused: logged), or np_model_load's errors.
 */
int np_cluster_load(struct np_ctx *ctx, const char *path,
		    const struct np_pipeline_opts *popts,
		    const struct np_cluster_opts *copts,
		    struct np_pipeline **out);

/* Figures of the pipeline's host boundaries (np_cluster_load only). */
struct np_cluster_stats {
	uint32_t members, spares_left;
	uint64_t frames; /* sent to the first member */
	uint64_t frame_bytes, result_bytes; /* sent, received */
	uint64_t credit_waits; /* a frame waited for the first member's
				* credit (back-pressure) */
	uint64_t failures, replacements; /* members lost, spares taken */
	uint64_t last_detect_ns; /* last failure: from the member's last
				  * message to its detection */
	uint64_t last_recover_ns; /* last recovery: reset and reload */
	/* wall time of the frames: sent to the first member -> its results
	 * back from the last, summed (divide by frames) */
	uint64_t frame_ns;
	uint64_t resv[4];
};
int np_cluster_stats(const struct np_pipeline *p, struct np_cluster_stats *st);

struct np_member;
struct np_member_opts {
	const char *listen; /* "address:port" to listen on */
	const char *model; /* this host's copy of the GGUF */
	/* emulated cards (tests): "CARD:FAULT" as np_card_inject spells it,
	 * CARD counted in the segment, armed once the first segment is
	 * loaded; NULL: none */
	const char *inject;
	uint64_t resv[4]; /* must be zero */
};
/* Listen and read the model; -EINVAL, -EADDRINUSE, open errors. */
int np_member_create(struct np_ctx *ctx, const struct np_member_opts *o,
		     struct np_member **out);
/* Serve heads until np_member_stop; 0. */
int np_member_run(struct np_member *m);
/* Async-signal-safe: np_member_run returns within 20 ms. */
void np_member_stop(struct np_member *m);
void np_member_destroy(struct np_member *m);

#ifdef __cplusplus
}
#endif

#endif /* NP_CLUSTER_H */
