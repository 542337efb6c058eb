// SPDX-License-Identifier: MIT
/*
 * The performance model of real cards (np/perfmodel.h, docs/perfmodel.md).
 *
 * Work is counted per micro-batch of b = N / M requests: the operations of
 * every matrix at its precision, the attention over the context, the
 * element-wise work of norms, RoPE, softmax, SiLU and requantisation, and
 * the bytes that cross the SRAM-compute interface and the PCIe links.
 * Rates come from struct np_perf_arch only.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "np/model.h"
#include "np/perfmodel.h"

void np_perf_arch_default(struct np_perf_arch *a)
{
	/* docs/perfmodel.md, "Parameters", gives the source of each */
	*a = (struct np_perf_arch){
		.cores = 256,
		.ops_int8 = 2048,
		.ops_int4 = 4096,
		.ops_int2 = 8192,
		.vector_lanes = 32 * 4,
		.act_lanes = 32,
		.clock_hz = 400e6,
		.sram_bw = 13e12,
		.sram_bytes = 192ull << 20,
		.fb_bytes = 32ull << 20,
		.pcie_raw_bw = 8e9 * 8 * 128.0 / 130.0 / 8.0,
		.pcie_efficiency = 256.0 / (256.0 + 24.0) * 0.98,
		.pcie_latency_s = 1e-6,
		.dma_setup_s = 2e-6,
		.host_step_s = 10e-6,
		.nic_bw = 200e9 / 8,
		.nic_efficiency = 4096.0 / (4096.0 + 82.0),
		.nic_latency_s = 2e-6,
		.host_copy_bw = 10e9,
		.net_host_s = 5e-6,
		.host_hop_s = 5e-6,
	};
}

static void perr(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void perr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

/* ---------------------------------------------------------------- */

struct perf_ctx {
	const struct np_perf_arch *a;
	const struct np_perf_shape *s;
	double hd, qd, kvd, group, b;
};

/* vector-matrix ops per second of one core at a precision in bits */
static double perf_core_rate(const struct np_perf_arch *a, uint32_t bits)
{
	uint32_t ops = bits <= 2 ? a->ops_int2 :
		       bits <= 4 ? a->ops_int4 :
				   a->ops_int8;

	return (double)ops * a->clock_hz;
}

/* ... of the whole card */
static double perf_rate(const struct np_perf_arch *a, uint32_t bits)
{
	return a->cores * perf_core_rate(a, bits);
}

static uint32_t perf_max(uint32_t x, uint32_t y)
{
	return x > y ? x : y;
}

/*
 * One layer for a micro-batch of `tokens` tokens from `reqs` requests,
 * whose tokens see `ctx_sum` KV entries in total (sum over tokens of the
 * context length). Adds into st.
 */
static void perf_layer(const struct perf_ctx *c, double tokens, double reqs,
		       double ctx_sum, uint32_t part, struct np_perf_stage *st)
{
	const struct np_perf_arch *a = c->a;
	const struct np_perf_shape *s = c->s;
	double dim = s->model.dim, ffn = s->model.ffn;
	uint32_t pa = perf_max(s->weight_bits, s->act_bits);
	/* docs/numerics.md: the FFN's down projection takes int8 SiLU*up */
	uint32_t pd = perf_max(s->weight_bits, 8);
	int at = !!(part & NP_PERF_PART_ATTN), ff = !!(part & NP_PERF_PART_FFN);
	double macs_at = dim * (c->qd + 2 * c->kvd) + c->qd * dim;
	double macs_up = 2 * dim * ffn, macs_d = ffn * dim;
	double macs_a = at * macs_at + ff * macs_up;
	double wbytes = (macs_a + ff * macs_d) * s->weight_bits / 8;
	double units = reqs * s->model.n_kv_heads, rounds, per_unit_ctx;
	double vec, act, lane_rate, kv_bytes;

	st->matrix_s += tokens * (2 * macs_a / perf_rate(a, pa) +
				  ff * 2 * macs_d / perf_rate(a, pd));
	lane_rate = (double)a->vector_lanes * a->clock_hz;
	if (at) {
		/*
		 * Attention runs where the KV units are: one unit (request,
		 * KV head) per core (docs/model-format.md), so reqs *
		 * kv_heads cores work and the rest wait. Per unit: group
		 * heads x context x head_dim MACs for the scores (q x K on
		 * the matrix unit at the wider of act_bits and kv_bits) and
		 * as many for the Q15 softmax weights times V on the FP16
		 * vector unit.
		 */
		rounds = (double)(((uint64_t)units + a->cores - 1) / a->cores);
		per_unit_ctx = ctx_sum / reqs;
		st->attn_s +=
			rounds * 2 * c->group * per_unit_ctx * c->hd /
			perf_core_rate(a, perf_max(s->act_bits, s->kv_bits));
		st->vector_s += rounds * c->group * per_unit_ctx * (c->hd + 3) /
				lane_rate; /* PV, max/sub/sum */
		st->vector_s += rounds * c->group * per_unit_ctx /
				((double)a->act_lanes * a->clock_hz); /* exp */
	}
	/*
	 * Element-wise work spread over every core: RMSNorm (square-
	 * accumulate, scale, quantise), RoPE on q and k (4 products, 2 sums
	 * per pair), the requantisation of every matrix output, the
	 * attention normalisation, SiLU * up, the residual sum.
	 */
	vec = at * (3 * dim + 3 * (c->qd + c->kvd) +
		    (c->qd + 2 * c->kvd + dim) + c->qd + dim) +
	      ff * (3 * dim + 2 * ffn + dim + ffn + dim);
	act = ff * ffn + at + ff; /* SiLU, a reciprocal square root per norm */
	st->vector_s += tokens *
			(vec / ((double)a->cores * lane_rate) +
			 act / ((double)a->cores * a->act_lanes * a->clock_hz));
	/*
	 * SRAM traffic: each weight read once per micro-batch (the matrix
	 * unit applies a loaded weight block to every token of the frame),
	 * the KV entries each token attends to, and the KV entries it writes.
	 */
	kv_bytes = at * (ctx_sum + tokens) * c->kvd * 2 * s->kv_bits / 8;
	st->sram_s += (wbytes + kv_bytes + tokens * dim * 2 * 2) / a->sram_bw;
}

static void perf_output(const struct perf_ctx *c, double tokens,
			struct np_perf_stage *st)
{
	const struct np_perf_arch *a = c->a;
	const struct np_perf_shape *s = c->s;
	double rows =
		((double)s->model.vocab + s->out_cards - 1) / s->out_cards;
	double lane_rate = (double)a->cores * a->vector_lanes * a->clock_hz;

	rows = (double)(uint64_t)rows;
	st->matrix_s =
		tokens * 2 * rows * s->model.dim / perf_rate(a, s->out_bits);
	/* RMSNorm, then a compare per logit for the top-k */
	st->vector_s = tokens * (3.0 * s->model.dim + rows) / lane_rate;
	st->sram_s =
		(rows * s->model.dim * s->out_bits / 8 + tokens * rows * 4) /
		a->sram_bw;
}

/* one DMA over a PCIe link: descriptor fetch, the posted writes' latency,
 * the bytes at the effective rate */
static double perf_dma(const struct np_perf_arch *a, double link_bw,
		       double bytes)
{
	return a->dma_setup_s + a->pcie_latency_s + bytes / link_bw;
}

/* one message between servers once it is in host memory: a copy into
 * the registered buffer, the sender's UCX post, the wire, the receiver's
 * completion */
static double perf_net(const struct np_perf_arch *a, double bytes)
{
	return bytes / a->host_copy_bw + a->net_host_s + a->nic_latency_s +
	       bytes / (a->nic_bw * a->nic_efficiency) + a->net_host_s;
}

/* a frame from one card to the next: peer DMA, through host memory
 * (route_host), or to another server */
static double perf_hop(const struct perf_ctx *c, double link_bw, double bytes,
		       int net)
{
	const struct np_perf_arch *a = c->a;

	if (net) /* C2H, the host's send, the wire, H2C on the far side */
		return perf_dma(a, link_bw, bytes) + perf_net(a, bytes) +
		       perf_dma(a, link_bw, bytes);
	if (c->s->route_host) /* C2H, the host notices, H2C */
		return 2 * perf_dma(a, link_bw, bytes) + a->host_hop_s;
	return perf_dma(a, link_bw, bytes);
}

static void perf_finish(struct np_perf_stage *st)
{
	double m = st->matrix_s + st->attn_s;

	st->time_s = (m > st->sram_s ? m : st->sram_s) + st->vector_s;
}

/* the stages' layout: layer groups, cards per group, hosts */
struct perf_map {
	uint32_t groups; /* layer groups, each on cpl cards */
	uint32_t cpl; /* cards per layer group: 1, or 2 (attention, FFN) */
	uint32_t cph; /* cards per host */
	uint32_t stages; /* groups * cpl + 1 */
	uint32_t cards_used; /* groups * cpl + out_cards */
};

static void perf_mapping(const struct np_perf_shape *s, struct perf_map *m)
{
	uint32_t hosts = s->hosts ? s->hosts : 1;
	uint32_t lcards = s->cards - s->out_cards;

	m->cpl = s->cards_per_layer ? s->cards_per_layer : 1;
	m->groups = lcards / m->cpl;
	if (m->groups > s->model.n_layers)
		m->groups = s->model.n_layers;
	m->stages = m->groups * m->cpl + 1;
	m->cards_used = m->groups * m->cpl + s->out_cards;
	m->cph = s->cards_per_host ?
			 s->cards_per_host :
			 (uint32_t)(((uint64_t)s->cards + hosts - 1) / hosts);
}

/*
 * Every stage for one micro-batch of b requests with `per_req` tokens
 * each, the first at context ctx0 + 1 (a decode token sees ctx0 earlier
 * entries and itself). Fills r->stage[]; the last stage's hop is its
 * top-k back to the head's host (host 0).
 */
static void perf_stages(const struct perf_ctx *c, double per_req, double ctx0,
			double link_bw, struct np_perf_result *r)
{
	const struct np_perf_shape *s = c->s;
	struct perf_map m;
	uint32_t layer = 0, card = 0, nst;
	double tokens = c->b * per_req;
	/* sum over a request's tokens of (ctx0 + i + 1), i < per_req */
	double ctx_sum = c->b * (per_req * ctx0 + per_req * (per_req + 1) / 2);
	double frame = tokens * s->model.dim * 2 + 8 + tokens * 8;
	double topk = tokens * s->top_k * 8.0;

	perf_mapping(s, &m);
	nst = m.stages - 1;
	r->n_stages = m.stages;
	r->cards_used = m.cards_used;
	for (uint32_t g = 0; g < m.groups; g++) {
		uint32_t n = s->model.n_layers / m.groups +
			     (g < s->model.n_layers % m.groups);

		for (uint32_t k = 0; k < m.cpl; k++) {
			struct np_perf_stage *st = &r->stage[g * m.cpl + k];

			memset(st, 0, sizeof(*st));
			st->first_layer = layer;
			st->n_layers = n;
			st->part = m.cpl == 1 ? NP_PERF_PART_LAYER :
				   k == 0     ? NP_PERF_PART_ATTN :
						NP_PERF_PART_FFN;
			st->card = card++;
			st->host = st->card / m.cph;
			perf_layer(c, tokens, c->b, ctx_sum, st->part, st);
			st->matrix_s *= n;
			st->attn_s *= n;
			st->vector_s *= n;
			st->sram_s *= n;
			perf_finish(st);
		}
		layer += n;
	}
	memset(&r->stage[nst], 0, sizeof(r->stage[nst]));
	r->stage[nst].first_layer = s->model.n_layers;
	r->stage[nst].part = NP_PERF_PART_OUTPUT;
	r->stage[nst].card = card;
	r->stage[nst].host = card / m.cph;
	perf_output(c, tokens, &r->stage[nst]);
	perf_finish(&r->stage[nst]);
	r->net_hops = 0;
	for (uint32_t i = 0; i < nst; i++) {
		struct np_perf_stage *st = &r->stage[i];
		int last = i + 1 == nst;

		st->net = st->host != r->stage[i + 1].host;
		r->net_hops += st->net;
		/* the last layer card sends its frame to every output card
		 * over its one link (to one host buffer when it crosses) */
		st->hop_s = perf_hop(
			c, link_bw,
			frame * (last && !st->net ? s->out_cards : 1), st->net);
	}
	/* the output cards' top-k lists back to the head on host 0 */
	r->stage[nst].net = r->stage[nst].host != 0;
	r->net_hops += r->stage[nst].net;
	r->stage[nst].hop_s = perf_dma(c->a, link_bw, topk) +
			      (r->stage[nst].net ? perf_net(c->a, topk) : 0);
	r->net_hop_s = r->net_hops ? perf_dma(c->a, link_bw, frame) * 2 +
					     perf_net(c->a, frame) :
				     0;
}

static int perf_check(const struct np_perf_arch *a,
		      const struct np_perf_shape *s, char *err, size_t errlen)
{
	const uint32_t *dims[] = {&s->model.n_layers,
				  &s->model.dim,
				  &s->model.ffn,
				  &s->model.n_heads,
				  &s->model.n_kv_heads,
				  &s->model.vocab,
				  &s->prompt,
				  &s->generate,
				  &s->requests,
				  &s->micro_batches,
				  &s->cards,
				  &s->out_cards};
	static const char *const names[] = {
		"n_layers",   "dim",	       "ffn",	 "n_heads",
		"n_kv_heads", "vocab",	       "prompt", "generate",
		"requests",   "micro_batches", "cards",	 "out_cards"};
	const uint32_t *bits[] = {&s->weight_bits, &s->act_bits, &s->kv_bits,
				  &s->out_bits};
	static const char *const bnames[] = {"weight_bits", "act_bits",
					     "kv_bits", "out_bits"};
	uint32_t cpl, hosts;

	for (size_t i = 0; i < sizeof(dims) / sizeof(dims[0]); i++)
		if (*dims[i] == 0) {
			perr(err, errlen, "%s = 0: give a positive value",
			     names[i]);
			return -EINVAL;
		}
	for (size_t i = 0; i < 4; i++)
		if (*bits[i] != 2 && *bits[i] != 4 && *bits[i] != 8) {
			perr(err, errlen, "%s = %u: use 2, 4 or 8", bnames[i],
			     *bits[i]);
			return -EINVAL;
		}
	if (s->model.dim % s->model.n_heads ||
	    s->model.n_heads % s->model.n_kv_heads) {
		perr(err, errlen,
		     "n_heads = %u, n_kv_heads = %u, dim = %u: n_heads must "
		     "divide dim and be a multiple of n_kv_heads",
		     s->model.n_heads, s->model.n_kv_heads, s->model.dim);
		return -EINVAL;
	}
	if (s->requests % s->micro_batches) {
		perr(err, errlen,
		     "micro_batches = %u does not divide requests = %u: "
		     "use a divisor of %u",
		     s->micro_batches, s->requests, s->requests);
		return -EINVAL;
	}
	if (s->cards_per_layer > 2) {
		perr(err, errlen,
		     "cards_per_layer = %u: use 1 (a whole layer per card) or "
		     "2 (attention and FFN on two cards)",
		     s->cards_per_layer);
		return -EINVAL;
	}
	if (s->route_host > 1) {
		perr(err, errlen,
		     "route_host = %u: use 0 (peer DMA) or 1 (through host "
		     "memory)",
		     s->route_host);
		return -EINVAL;
	}
	for (size_t i = 0; i < 4; i++)
		if (s->resv[i] || a->resv[i]) {
			perr(err, errlen,
			     "resv[%zu] is not zero: clear the reserved "
			     "fields (start from np_perf_shape_default and "
			     "np_perf_arch_default)",
			     i);
			return -EINVAL;
		}
	cpl = s->cards_per_layer ? s->cards_per_layer : 1;
	if (s->cards < s->out_cards + cpl ||
	    (s->cards - s->out_cards) / cpl * cpl + 1 > NP_PERF_MAX_STAGES) {
		perr(err, errlen,
		     "cards = %u with out_cards = %u and cards_per_layer = %u: "
		     "need at least %u cards and at most %u stages",
		     s->cards, s->out_cards, cpl, s->out_cards + cpl,
		     NP_PERF_MAX_STAGES);
		return -EINVAL;
	}
	hosts = s->hosts ? s->hosts : 1;
	if (s->cards_per_host &&
	    (uint64_t)s->cards_per_host * hosts < s->cards) {
		perr(err, errlen,
		     "hosts = %u x cards_per_host = %u holds fewer than cards "
		     "= %u: raise hosts to %u",
		     hosts, s->cards_per_host, s->cards,
		     (s->cards + s->cards_per_host - 1) / s->cards_per_host);
		return -EINVAL;
	}
	if (!a->cores || !a->ops_int2 || !a->ops_int4 || !a->ops_int8 ||
	    !a->vector_lanes || !a->act_lanes || !(a->clock_hz > 0) ||
	    !(a->sram_bw > 0) || !(a->pcie_raw_bw > 0) ||
	    !(a->pcie_efficiency > 0) || a->pcie_efficiency > 1 ||
	    !(a->pcie_latency_s >= 0) || !(a->dma_setup_s >= 0) ||
	    !(a->host_step_s >= 0) || !(a->nic_bw > 0) ||
	    !(a->nic_efficiency > 0) || a->nic_efficiency > 1 ||
	    !(a->nic_latency_s >= 0) || !(a->host_copy_bw > 0) ||
	    !(a->net_host_s >= 0) || !(a->host_hop_s >= 0)) {
		perr(err, errlen,
		     "architecture: every rate must be positive, the PCIe "
		     "efficiency at most 1, times not negative; start from "
		     "np_perf_arch_default()");
		return -EINVAL;
	}
	return 0;
}

/* the round every request gets a token in, and the ring's parts */
static double perf_round(const struct np_perf_arch *a,
			 const struct np_perf_shape *s,
			 const struct np_perf_result *r, double host_in,
			 double *bound, double *loop)
{
	double m = s->micro_batches, round;

	*bound = 0;
	*loop = a->host_step_s + host_in;
	for (uint32_t i = 0; i < r->n_stages; i++) {
		const struct np_perf_stage *st = &r->stage[i];
		double busy = st->time_s > st->hop_s ? st->time_s : st->hop_s;

		if (busy > *bound)
			*bound = busy;
		*loop += st->time_s + st->hop_s;
	}
	/* M frames circulate: the slowest stage serves each once, or one
	 * frame's trip around the ring, or the host's M steps */
	round = m * *bound;
	if (*loop > round)
		round = *loop;
	if (m * a->host_step_s > round)
		round = m * a->host_step_s;
	return round;
}

int np_perf_estimate(const struct np_perf_arch *a,
		     const struct np_perf_shape *s, struct np_perf_result *out,
		     char *err, size_t errlen)
{
	struct perf_ctx c = {.a = a, .s = s};
	struct np_perf_result *r = out;
	double link_bw, host_in, bound, loop, m, busy = 0, pre_bound = 0;
	double total_ctx, pre_loop;
	uint64_t kv_layer, w_attn, w_ffn, frame_max;
	int ret = perf_check(a, s, err, errlen);

	if (ret)
		return ret;
	memset(r, 0, sizeof(*r));
	c.hd = (double)s->model.dim / s->model.n_heads;
	c.qd = s->model.dim;
	c.kvd = c.hd * s->model.n_kv_heads;
	c.group = (double)s->model.n_heads / s->model.n_kv_heads;
	c.b = (double)s->requests / s->micro_batches;
	m = s->micro_batches;
	link_bw = a->pcie_raw_bw * a->pcie_efficiency;
	r->link_bw = link_bw;

	/* prefill: each micro-batch's prompts in one frame, GPipe flush */
	perf_stages(&c, s->prompt, 0, link_bw, r);
	host_in = perf_dma(a, link_bw, c.b * s->prompt * s->model.dim * 2.0);
	pre_loop = a->host_step_s + host_in;
	for (uint32_t i = 0; i < r->n_stages; i++) {
		double t = r->stage[i].time_s > r->stage[i].hop_s ?
				   r->stage[i].time_s :
				   r->stage[i].hop_s;

		pre_loop += r->stage[i].time_s + r->stage[i].hop_s;
		if (t > pre_bound)
			pre_bound = t;
	}
	r->prefill_s = pre_loop + (m - 1) * pre_bound;
	r->first_token_s = r->prefill_s;

	/* decode: the prefill yields the first token; each further token
	 * is one round at its context */
	host_in = perf_dma(a, link_bw, c.b * s->model.dim * 2.0 + 8 + c.b * 8);
	r->host_in_s = host_in;
	for (uint32_t g = 1; g < s->generate; g++) {
		perf_stages(&c, 1, (double)s->prompt + g - 1, link_bw, r);
		r->decode_s += perf_round(a, s, r, host_in, &bound, &loop);
	}
	/* the reported stages: decode at the generation's mean context */
	perf_stages(&c, 1, s->prompt + (s->generate - 1) / 2.0, link_bw, r);
	r->round_s =
		perf_round(a, s, r, host_in, &r->bound_stage_s, &r->loop_s);
	if (s->generate > 1) {
		r->round_s = r->decode_s / (s->generate - 1);
		r->tokens_per_s =
			(double)s->requests * (s->generate - 1) / r->decode_s;
	}
	r->total_s = r->prefill_s + r->decode_s;
	r->e2e_tokens_per_s = (double)s->requests * s->generate / r->total_s;
	r->tokens_per_s_card = r->tokens_per_s / r->cards_used;
	r->token_latency_s = r->round_s;
	for (uint32_t i = 0; i < r->n_stages; i++) {
		double n = i + 1 == r->n_stages ? s->out_cards : 1;

		busy += n * m * (r->stage[i].matrix_s + r->stage[i].attn_s);
	}
	if (r->round_s > 0)
		r->matrix_util = busy / (r->cards_used * r->round_s);

	/* capacity: weights, KV cache, two frame slots */
	w_attn = ((uint64_t)s->model.dim * (uint64_t)(c.qd + 2 * c.kvd) +
		  (uint64_t)c.qd * s->model.dim) *
		 s->weight_bits / 8;
	w_ffn = 3ull * s->model.dim * s->model.ffn * s->weight_bits / 8;
	total_ctx = (double)s->prompt + s->generate;
	kv_layer = (uint64_t)((double)s->requests * total_ctx * c.kvd * 2 *
			      s->kv_bits / 8);
	frame_max = (uint64_t)(c.b * s->prompt * s->model.dim * 2);
	r->fits = 2 * frame_max <= a->fb_bytes;
	for (uint32_t i = 0; i < r->n_stages; i++) {
		struct np_perf_stage *st = &r->stage[i];
		uint64_t per_layer = 0;

		if (st->part & NP_PERF_PART_ATTN)
			per_layer += w_attn + kv_layer;
		if (st->part & NP_PERF_PART_FFN)
			per_layer += w_ffn;
		if (st->n_layers)
			st->sram_used = st->n_layers * per_layer;
		else
			st->sram_used =
				(uint64_t)((s->model.vocab + s->out_cards - 1) /
					   s->out_cards) *
				s->model.dim * s->out_bits / 8;
		if (st->sram_used > a->sram_bytes)
			r->fits = 0;
	}
	return 0;
}
