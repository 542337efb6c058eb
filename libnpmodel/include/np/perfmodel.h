/* SPDX-License-Identifier: MIT */
/*
 * libnp performance model: the time real np cards would take to run a
 * transformer, from first principles (docs/perfmodel.md).
 *
 *   np_perf_arch_default()   the architecture parameters, each with its
 *                            source in docs/perfmodel.md
 *   np_perf_shape_default()  the Granite-3B-like shape and run
 *   np_perf_shape_preset()   the published NorthPole systems as runs
 *   np_perf_shape_parse()    a model shape file (data/shapes/ *.shape)
 *   np_perf_estimate()       per-stage compute, vector, SRAM, PCIe and
 *                            network times, the GPipe schedule, tokens/s,
 *                            on one server or a chain of servers
 *
 * Nothing here is fitted to a measured or published throughput: the
 * figures follow from the operation counts of the shape and the
 * architecture's rates. The functions are pure (no cards, no I/O).
 * Every function that can fail returns 0 or a negative errno.
 */
#ifndef NP_PERFMODEL_H
#define NP_PERFMODEL_H

#include <stddef.h>
#include <stdint.h>

#include "np/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Architecture parameters of one card, its link and the host. */
struct np_perf_arch {
	uint32_t cores; /* compute cores per card */
	uint32_t ops_int8; /* vector-matrix ops per cycle per core, INT8 */
	uint32_t ops_int4; /* ... INT4 */
	uint32_t ops_int2; /* ... INT2 */
	uint32_t vector_lanes; /* FP16 vector unit elements/cycle/core */
	uint32_t act_lanes; /* activation unit elements/cycle/core */
	double clock_hz; /* core clock */
	double sram_bw; /* SRAM <-> compute bytes/s, whole card */
	uint64_t sram_bytes; /* SRAM per card */
	uint64_t fb_bytes; /* frame buffer per card */
	double pcie_raw_bw; /* link bytes/s after line coding */
	double pcie_efficiency; /* payload share after TLP/DLLP overhead */
	double pcie_latency_s; /* one posted write, port to port */
	double dma_setup_s; /* descriptor fetch and doorbell per transfer */
	double host_step_s; /* host: merge top-k, sample, embed, per frame */
	/* between hosts (docs/perfmodel.md, "Between servers") */
	double nic_bw; /* NIC line rate, bytes/s */
	double nic_efficiency; /* payload share after Ethernet/RoCE framing */
	double nic_latency_s; /* one message, NIC to NIC through a switch */
	double host_copy_bw; /* host memcpy into a registered buffer, B/s */
	double net_host_s; /* host software per message and side (UCX) */
	/* host-routed hops (struct np_perf_shape route_host): the host
	 * sees each frame land in its memory and posts the next DMA */
	double host_hop_s;
	uint64_t resv[4]; /* must be zero */
};

/* Model shape and run: a llama-style decoder plus N, M, cards. */
struct np_perf_shape {
	char name[64];
	/* n_layers, dim, n_heads, n_kv_heads, ffn, vocab; the estimate
	 * does not depend on ctx, rope_base and norm_eps */
	struct np_model_shape model;
	uint32_t prompt; /* tokens of each request's prompt */
	uint32_t generate; /* tokens generated per request */
	uint32_t weight_bits; /* layer weights: 2, 4 or 8 */
	uint32_t act_bits; /* layer activations into Q/K/V/O/gate/up */
	uint32_t kv_bits; /* KV cache */
	uint32_t out_bits; /* output layer weights and activations */
	uint32_t requests; /* N: concurrent requests */
	uint32_t micro_batches; /* M: GPipe micro-batches, divides N */
	uint32_t cards; /* cards in the pipeline */
	uint32_t out_cards; /* of which run the output layer */
	uint32_t top_k; /* (logit, token) pairs an output card returns */
	/* multi-host mapping; 0 takes the default in brackets */
	uint32_t hosts; /* servers the cards are spread over [1] */
	uint32_t cards_per_host; /* [cards / hosts, rounded up] */
	uint32_t cards_per_layer; /* 1, or 2: attention and FFN on two
				   * cards (a layer too big for one) [1] */
	uint32_t route_host; /* 1: every card-to-card frame goes through
			      * host memory; 0: peer DMA (np's protocol) */
	uint32_t resv[4]; /* must be zero */
};

/* Time of one stage (a card, or the output cards side by side) for one
 * micro-batch, seconds. */
struct np_perf_stage {
	uint32_t first_layer, n_layers; /* n_layers 0: output stage */
	uint32_t part; /* NP_PERF_PART_*: what of its layers it runs */
	uint32_t host; /* the server of its (first) card */
	uint32_t card; /* its (first) card, counted over all hosts */
	int net; /* its hop crosses to another server */
	double matrix_s; /* vector-matrix units at their precision */
	double attn_s; /* QK scores on the cores that hold the KV units */
	double vector_s; /* FP16 vector and activation units */
	double sram_s; /* SRAM <-> compute traffic at sram_bw */
	double time_s; /* max(matrix + attn, sram) + vector */
	double hop_s; /* PCIe transfer of the result to the next stage */
	uint64_t sram_used; /* weights + KV + frames, bytes per card */
};

/* struct np_perf_stage part */
#define NP_PERF_PART_ATTN 1u /* norm, Q/K/V, attention, O, residual */
#define NP_PERF_PART_FFN 2u /* norm, gate/up, SiLU, down, residual */
#define NP_PERF_PART_LAYER 3u /* both */
#define NP_PERF_PART_OUTPUT 4u /* the output layer */

#define NP_PERF_MAX_STAGES 256

struct np_perf_result {
	uint32_t n_stages;
	/* decode stages at the mean context of the generation phase */
	struct np_perf_stage stage[NP_PERF_MAX_STAGES];
	double link_bw; /* effective PCIe bytes/s */
	double host_in_s; /* host -> first card per frame (decode) */
	double net_hop_s; /* one decode frame from a card on one server to
			   * a card on the next (0 with one host) */
	uint32_t net_hops; /* server crossings around the ring */
	uint32_t cards_used; /* cards that hold a stage */
	double prefill_s; /* every prompt through the pipeline (GPipe) */
	double decode_s; /* every generated token, all requests */
	double round_s; /* mean time for every request to get one token */
	double total_s;
	double tokens_per_s; /* generated tokens / decode_s, all cards */
	double tokens_per_s_card;
	double e2e_tokens_per_s; /* N * generate / (prefill + decode) */
	double token_latency_s; /* per generated token, per request */
	double first_token_s; /* prompt in to first token out */
	double bound_stage_s; /* slowest stage, decode */
	double loop_s; /* one micro-batch around the ring, decode */
	double matrix_util; /* matrix units' busy share, decode */
	int fits; /* weights, KV cache and frames fit every card */
};

/* The documented defaults (docs/perfmodel.md). */
void np_perf_arch_default(struct np_perf_arch *a);

/*
 * A run configured as a published system (docs/perfmodel.md, "Against
 * the published systems"): "northpole-2024" (the 16-card appliance, the
 * Granite-3B-like shape, w4a4) or "northpole-2025" (one
 * Granite-3.3-8B-instruct instance of the 288-card rack, A8-C8-W4, over
 * 6 servers). data/shapes/granite-3b.shape and granite-3.3-8b.shape hold
 * the same. Returns 0 or -ENOENT for another name.
 */
int np_perf_shape_preset(const char *name, struct np_perf_shape *out);

/*
 * Parse a shape file's text (len bytes): lines "key = value", '#'
 * comments; "name", the struct np_model_shape field names (n_heads,
 * n_kv_heads, rope_base...; layers, heads and kv_heads are accepted for
 * n_layers, n_heads and n_kv_heads), the run fields of struct
 * np_perf_shape (prompt, requests, hosts...) and "precision" (a name
 * np_precision_parse knows: sets weight_bits, act_bits and kv_bits). Keys left out keep the values
 * *out holds on entry, so callers set defaults first
 * (np_perf_shape_default). On error, err (errlen bytes) names the line,
 * the key or value and what is allowed. np_model_shape_parse
 * (np/model.h) reads the model keys of the same files.
 * Returns 0, -EINVAL (unknown key, bad number, missing '='), -ENOMEM.
 */
int np_perf_shape_parse(const char *text, size_t len, struct np_perf_shape *out,
			char *err, size_t errlen);
/* The "granite-3b" preset shape (np_model_shape_preset) run as N 28
 * requests in M 14 micro-batches on 16 cards, 2 of them output cards,
 * 1024 + 1024 tokens, w4a4, INT4 KV cache, INT8 output layer. */
void np_perf_shape_default(struct np_perf_shape *s);

/*
 * Estimate shape s on architecture a. On error, err names the field, the
 * value and what would work.
 * Returns 0, or -EINVAL (a zero dimension, n_heads not dividing dim or
 * not a multiple of n_kv_heads, M not dividing N, fewer cards than output
 * cards + 1, more stages than NP_PERF_MAX_STAGES, a bit width not 2, 4
 * or 8, a non-positive rate).
 */
int np_perf_estimate(const struct np_perf_arch *a,
		     const struct np_perf_shape *s, struct np_perf_result *out,
		     char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* NP_PERFMODEL_H */
