/* SPDX-License-Identifier: MIT */
/*
 * What the head (cluster.c) and a member (member.c) of a pipeline that
 * spans hosts say to each other at start-up and on recovery, beyond
 * link.h's frames, credits and heartbeats. docs/cluster.md has the
 * protocol.
 */
#ifndef NP_CLUSTER_INT_H
#define NP_CLUSTER_INT_H

#include <stdint.h>

#include "link.h"
#include "np/model.h"

#define NPI_ADDR_LEN 64u
#define NPI_CALIB_MAX 1024u /* calibration text the head passes on */
#define NPI_MAX_HOSTS 16u
#define NPI_LOAD_TIMEOUT_MS 300000 /* a member loading its cards */

/* HELLO and RESET (head -> member): the model and the member's part. */
struct npi_hello {
	uint32_t proto; /* NPI_LINK_PROTO */
	uint32_t abi; /* NPK_VERSION: the layer program format */
	uint64_t model_hash; /* the GGUF file's bytes (npi_file_hash) */
	uint64_t plan_hash; /* the compiled mapping (npi_plan_hash) */
	uint32_t precision; /* enum np_precision */
	uint32_t n_cards, out_cards, batch, max_seq, frame_tokens;
	uint32_t first, count; /* the member's cards; count 0: a spare's
				 * check, nothing loaded */
	uint32_t index; /* position in the chain */
	uint32_t heartbeat_ms, timeout_ms;
	uint32_t calib_len;
	char next[NPI_ADDR_LEN]; /* downstream member, "": the head */
	char calib[NPI_CALIB_MAX];
};

/* HELLO_REPLY (member -> head) */
struct npi_hello_reply {
	int32_t status; /* 0, or -errno with msg */
	uint32_t proto, abi, precision, cards;
	uint64_t model_hash, plan_hash;
	uint64_t image_sum; /* checksums of the images loaded */
	uint64_t load_ns;
	char msg[256];
};

/* FNV-1a 64 */
static inline uint64_t npi_fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}
#define NPI_FNV_INIT 0xcbf29ce484222325ull

/* The bytes of the file at path; -errno. */
int npi_file_hash(const char *path, uint64_t *out);
/* Every card's plan of c and the shape it was compiled for. */
uint64_t npi_plan_hash(const struct np_compiled *c);

struct np_member;
/* One turn of np_member_run's loop (link events, the cards, frames on,
 * heartbeat), sleeping up to timeout_ms; and the member's link. For a
 * harness that plays the head in-process (fuzz/link.c). */
void npi_member_step(struct np_member *m, int timeout_ms);
struct npi_link *npi_member_link(struct np_member *m);

#endif /* NP_CLUSTER_INT_H */
