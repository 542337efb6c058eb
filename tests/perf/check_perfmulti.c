// SPDX-License-Identifier: MIT
/*
 * The performance model across servers (np/perfmodel.h, docs/perfmodel.md
 * "Between servers"): a small configuration whose times are computed by
 * hand below, the attention / FFN split of a layer, host-routed hops,
 * precision, the published systems' presets and their shape files, and
 * that a slower network or host never makes the estimate faster.
 */
#include <check.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "np/model.h"
#include "np/perfmodel.h"

static char err[512];

static struct np_perf_result *estimate(const struct np_perf_arch *a,
				       const struct np_perf_shape *s)
{
	struct np_perf_result *r = malloc(sizeof(*r));

	ck_assert_ptr_nonnull(r);
	err[0] = 0;
	ck_assert_msg(np_perf_estimate(a, s, r, err, sizeof(err)) == 0, "%s",
		      err);
	return r;
}

/*
 * Round numbers: one core of 1000 ops per cycle at 1 MHz (1e9 ops/s at
 * every precision), links of 1e9 bytes/s with no framing overhead,
 * 1 us PCIe latency, 2 us DMA set-up, 3 us NIC latency, 4 us of host
 * software per message and side, copies at 1e9 bytes/s, 5 us per
 * host-routed hop, 10 us host step.
 */
static void small_arch(struct np_perf_arch *a)
{
	np_perf_arch_default(a);
	a->cores = 1;
	a->ops_int8 = a->ops_int4 = a->ops_int2 = 1000;
	a->vector_lanes = a->act_lanes = 1000;
	a->clock_hz = 1e6;
	a->sram_bw = 1e12;
	a->pcie_raw_bw = 1e9;
	a->pcie_efficiency = 1;
	a->pcie_latency_s = 1e-6;
	a->dma_setup_s = 2e-6;
	a->host_step_s = 10e-6;
	a->nic_bw = 1e9;
	a->nic_efficiency = 1;
	a->nic_latency_s = 3e-6;
	a->host_copy_bw = 1e9;
	a->net_host_s = 4e-6;
	a->host_hop_s = 5e-6;
}

/* 2 layers of dim 8 (2 heads of 4, 1 KV head), FFN 16, vocabulary 100,
 * 8-bit everything, one request, prompt 1, 2 generated tokens, 3 cards
 * (2 layer, 1 output), each on its own server */
static void small_shape(struct np_perf_shape *s)
{
	np_perf_shape_default(s);
	snprintf(s->name, sizeof(s->name), "small");
	s->model.n_layers = 2;
	s->model.dim = 8;
	s->model.n_heads = 2;
	s->model.n_kv_heads = 1;
	s->model.ffn = 16;
	s->model.vocab = 100;
	s->prompt = 1;
	s->generate = 2;
	s->weight_bits = s->act_bits = s->kv_bits = s->out_bits = 8;
	s->requests = 1;
	s->micro_batches = 1;
	s->cards = 3;
	s->out_cards = 1;
	s->top_k = 1;
	s->hosts = 3;
	s->cards_per_host = 1;
}

START_TEST(small_by_hand)
{
	struct np_perf_arch a;
	struct np_perf_shape s;
	struct np_perf_result *r;

	small_arch(&a);
	small_shape(&s);
	r = estimate(&a, &s);
	ck_assert_uint_eq(r->n_stages, 3);
	ck_assert_uint_eq(r->cards_used, 3);
	ck_assert_uint_eq(r->stage[0].host, 0);
	ck_assert_uint_eq(r->stage[1].host, 1);
	ck_assert_uint_eq(r->stage[2].host, 2);
	/*
	 * Matrix: head_dim 4, q 8, KV 4 wide: Q, K, V 8 x (8 + 2 x 4) = 128,
	 * O 64, gate and up 2 x 8 x 16 = 256, down 16 x 8 = 128 MACs: 576,
	 * x 2 ops / 1e9 ops/s = 1.152 us for the one token of the frame.
	 */
	ck_assert_double_eq_tol(r->stage[0].matrix_s, 1.152e-6, 1e-15);
	/* Output: 100 rows x 8 MACs x 2 / 1e9 = 1.6 us */
	ck_assert_double_eq_tol(r->stage[2].matrix_s, 1.6e-6, 1e-15);
	/*
	 * Decode frame: 1 token x 8 x 2 bytes + 8 header + 8 per token = 32
	 * bytes. A DMA of it: 2 + 1 + 0.032 = 3.032 us. A message between
	 * servers: copy 0.032 + send 4 + wire 3 + 0.032 + receive 4 = 11.064
	 * us. A server crossing: C2H 3.032 + 11.064 + H2C 3.032 = 17.128 us.
	 */
	ck_assert_int_eq(r->stage[0].net, 1);
	ck_assert_double_eq_tol(r->stage[0].hop_s, 17.128e-6, 1e-15);
	ck_assert_double_eq_tol(r->stage[1].hop_s, 17.128e-6, 1e-15);
	ck_assert_double_eq_tol(r->net_hop_s, 17.128e-6, 1e-15);
	/*
	 * The top-k back to the head on server 0: 1 pair of 8 bytes: DMA
	 * 3.008 us + copy 0.008 + 4 + 3 + 0.008 + 4 = 11.016: 14.024 us.
	 */
	ck_assert_int_eq(r->stage[2].net, 1);
	ck_assert_double_eq_tol(r->stage[2].hop_s, 14.024e-6, 1e-15);
	ck_assert_uint_eq(r->net_hops, 3);
	/* host -> card 0: one DMA of the frame, 3.032 us */
	ck_assert_double_eq_tol(r->host_in_s, 3.032e-6, 1e-15);
	/* the ring: host step + host in + every stage and hop */
	ck_assert_double_eq_tol(r->loop_s,
				(10e-6 + 3.032e-6 + r->stage[0].time_s +
				 r->stage[1].time_s + r->stage[2].time_s +
				 2 * 17.128e-6 + 14.024e-6),
				1e-15);
	free(r);

	/* the same cards on one server: three DMAs of 3.032, 3.032 and
	 * 3.008 us */
	s.hosts = 1;
	s.cards_per_host = 0;
	r = estimate(&a, &s);
	ck_assert_uint_eq(r->net_hops, 0);
	ck_assert_double_eq(r->net_hop_s, 0);
	ck_assert_double_eq_tol(r->stage[0].hop_s, 3.032e-6, 1e-15);
	ck_assert_double_eq_tol(r->stage[2].hop_s, 3.008e-6, 1e-15);
	free(r);

	/* through host memory: C2H + 5 us + H2C = 11.064 us */
	s.route_host = 1;
	r = estimate(&a, &s);
	ck_assert_double_eq_tol(r->stage[0].hop_s, 11.064e-6, 1e-15);
	free(r);
}
END_TEST

/* two cards per layer: the attention card and the FFN card do the
 * layer's work between them */
START_TEST(split_layer_conserves_work)
{
	struct np_perf_arch a;
	struct np_perf_shape s;
	struct np_perf_result *one, *two;
	const struct np_perf_stage *l, *at, *ff;

	np_perf_arch_default(&a);
	np_perf_shape_default(&s);
	one = estimate(&a, &s);
	s.cards = 30; /* 14 layers x 2 + 2 output cards */
	s.cards_per_layer = 2;
	two = estimate(&a, &s);
	ck_assert_uint_eq(two->n_stages, 29);
	ck_assert_uint_eq(two->cards_used, 30);
	l = &one->stage[0];
	at = &two->stage[0];
	ff = &two->stage[1];
	ck_assert_uint_eq(at->part, NP_PERF_PART_ATTN);
	ck_assert_uint_eq(ff->part, NP_PERF_PART_FFN);
	ck_assert_uint_eq(at->first_layer, ff->first_layer);
	ck_assert_double_eq_tol((at->matrix_s + ff->matrix_s), l->matrix_s,
				l->matrix_s * 1e-9);
	ck_assert_double_eq_tol((at->vector_s + ff->vector_s), l->vector_s,
				l->vector_s * 1e-9);
	ck_assert_double_eq(ff->attn_s, 0);
	ck_assert_double_eq_tol(at->attn_s, l->attn_s, 1e-18);
	/* each card reads the frame in and writes it out: one more pair of
	 * b x dim INT16 activations than the whole layer */
	ck_assert_double_eq_tol(
		(at->sram_s + ff->sram_s),
		(l->sram_s + 2.0 * s.model.dim * 2 * 2 / a.sram_bw), 1e-15);
	ck_assert_uint_eq(at->sram_used + ff->sram_used, l->sram_used);
	free(one);
	free(two);
}
END_TEST

/* A8-C8-W4 against w4a4: the KV cache doubles, the matrix products
 * that take activations run at the INT8 rate, half the INT4 one */
START_TEST(precision_a8c8w4)
{
	static const char a8[] = "precision = a8c8w4\n";
	static const char w4[] = "precision = W4A4\n";
	struct np_perf_arch a;
	struct np_perf_shape s4, s8;
	struct np_perf_result *r4, *r8;

	np_perf_arch_default(&a);
	np_perf_shape_default(&s4);
	s8 = s4;
	ck_assert_int_eq(
		np_perf_shape_parse(a8, strlen(a8), &s8, err, sizeof(err)), 0);
	ck_assert_uint_eq(s8.weight_bits, 4);
	ck_assert_uint_eq(s8.act_bits, 8);
	ck_assert_uint_eq(s8.kv_bits, 8);
	ck_assert_int_eq(
		np_perf_shape_parse(w4, strlen(w4), &s4, err, sizeof(err)), 0);
	ck_assert_uint_eq(s4.act_bits, 4);
	s4.cards = s8.cards = 30; /* a layer no longer fits one card */
	s4.cards_per_layer = s8.cards_per_layer = 2;
	r4 = estimate(&a, &s4);
	r8 = estimate(&a, &s8);
	/* the attention card: weights the same, KV cache twice */
	{
		uint64_t w =
			((uint64_t)4096 * (4096 + 2 * 1024) + 4096ull * 4096) /
			2;
		uint64_t kv4 = 28ull * 2048 * 1024 * 2 / 2;

		ck_assert_uint_eq(r4->stage[0].sram_used, w + kv4);
		ck_assert_uint_eq(r8->stage[0].sram_used, w + 2 * kv4);
	}
	/* the FFN card: gate and up at half the rate, down already INT8 */
	{
		double up = 2.0 * 4096 * 14336, down = 14336.0 * 4096;
		double r4s = 256.0 * 4096 * 400e6, r8s = r4s / 2;

		ck_assert_double_eq_tol(r4->stage[1].matrix_s,
					(2 * (2 * up / r4s + 2 * down / r8s)),
					1e-15);
		ck_assert_double_eq_tol(r8->stage[1].matrix_s,
					(2 * (2 * up / r8s + 2 * down / r8s)),
					1e-15);
	}
	free(r4);
	free(r8);
	ck_assert_int_eq(np_perf_shape_parse("precision = a4\n", 15, &s4, err,
					     sizeof(err)),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "a8c8w4"));
}
END_TEST

/* a longer wire, a slower NIC or host never makes a token sooner */
START_TEST(slower_is_not_faster)
{
	static const size_t offs[] = {
		offsetof(struct np_perf_arch, nic_latency_s),
		offsetof(struct np_perf_arch, net_host_s),
		offsetof(struct np_perf_arch, host_hop_s),
		offsetof(struct np_perf_arch, pcie_latency_s),
		offsetof(struct np_perf_arch, dma_setup_s),
		offsetof(struct np_perf_arch, host_step_s),
	};
	struct np_perf_arch a;
	struct np_perf_shape s;
	struct np_perf_result *base, *r;

	np_perf_arch_default(&a);
	ck_assert_int_eq(np_perf_shape_preset("northpole-2025", &s), 0);
	s.route_host = 1;
	base = estimate(&a, &s);
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		struct np_perf_arch b = a;
		double *v = (double *)((char *)&b + offs[i]);

		for (int k = 1; k <= 4; k++) {
			*v = *((double *)((char *)&a + offs[i])) * (1 + k);
			r = estimate(&b, &s);
			ck_assert_msg(r->token_latency_s >=
					      base->token_latency_s,
				      "parameter %zu x%d", i, 1 + k);
			ck_assert(r->tokens_per_s <= base->tokens_per_s);
			ck_assert(r->first_token_s >= base->first_token_s);
			free(r);
		}
	}
	/* the NIC's bandwidth and the host's copy: less is not faster */
	a.nic_bw /= 4;
	a.host_copy_bw /= 4;
	r = estimate(&a, &s);
	ck_assert(r->token_latency_s > base->token_latency_s);
	ck_assert(r->first_token_s > base->first_token_s);
	free(r);
	free(base);
}
END_TEST

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = malloc(65536);

	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(buf);
	*len = fread(buf, 1, 65536, f);
	ck_assert_uint_gt(*len, 0);
	fclose(f);
	return buf;
}

/* data/shapes/granite-3.3-8b.shape is the 2025 preset; it needs two
 * cards per layer and 6 servers; the 2024 preset is the default */
START_TEST(published_presets)
{
	struct np_perf_shape file, p, d;
	struct np_model_shape m;
	struct np_perf_arch a;
	struct np_perf_result *r;
	size_t len;
	char *text = slurp(NP_SHAPES_DIR "/granite-3.3-8b.shape", &len);

	memset(&file, 0, sizeof(file));
	ck_assert_int_eq(
		np_perf_shape_parse(text, len, &file, err, sizeof(err)), 0);
	free(text);
	ck_assert_int_eq(np_perf_shape_preset("northpole-2025", &p), 0);
	ck_assert_mem_eq(&file, &p, sizeof(p));
	ck_assert_int_eq(np_model_shape_preset("granite-3.3-8b", &m), 0);
	ck_assert_mem_eq(&m, &p.model, sizeof(m));
	ck_assert_uint_eq(m.n_layers, 40);
	ck_assert_uint_eq(m.ffn, 12800);
	ck_assert_uint_eq(m.vocab, 49159);
	ck_assert_int_eq(np_perf_shape_preset("northpole-2024", &p), 0);
	np_perf_shape_default(&d);
	ck_assert_mem_eq(&p, &d, sizeof(p));
	ck_assert_int_eq(np_perf_shape_preset("northpole", &p), -ENOENT);

	np_perf_arch_default(&a);
	r = estimate(&a, &file);
	ck_assert_int_eq(r->fits, 1);
	ck_assert_uint_eq(r->cards_used, 82);
	ck_assert_uint_eq(r->n_stages, 81);
	/* 5 crossings forward (cards 16, 32, 48, 64, 80 start a server)
	 * and the top-k back from server 5 to the head */
	ck_assert_uint_eq(r->net_hops, 6);
	ck_assert_uint_eq(r->stage[80].host, 5);
	free(r);
	/* one card per layer: 42 cards, and a layer does not fit */
	file.cards_per_layer = 1;
	file.cards = 42;
	r = estimate(&a, &file);
	ck_assert_int_eq(r->fits, 0);
	free(r);
}
END_TEST

START_TEST(mapping_errors)
{
	struct np_perf_arch a;
	struct np_perf_shape s;
	struct np_perf_result *r = malloc(sizeof(*r));

	ck_assert_ptr_nonnull(r);
	np_perf_arch_default(&a);
	ck_assert_int_eq(np_perf_shape_preset("northpole-2025", &s), 0);
	s.hosts = 5; /* 5 x 16 < 96 */
	ck_assert_int_eq(np_perf_estimate(&a, &s, r, err, sizeof(err)),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "raise hosts to 6"));
	ck_assert_int_eq(np_perf_shape_preset("northpole-2025", &s), 0);
	s.cards_per_layer = 3;
	ck_assert_int_eq(np_perf_estimate(&a, &s, r, err, sizeof(err)),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "cards_per_layer = 3"));
	ck_assert_int_eq(np_perf_shape_preset("northpole-2025", &s), 0);
	s.resv[1] = 1;
	ck_assert_int_eq(np_perf_estimate(&a, &s, r, err, sizeof(err)),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "resv"));
	ck_assert_int_eq(np_perf_shape_preset("northpole-2025", &s), 0);
	a.nic_bw = 0;
	ck_assert_int_eq(np_perf_estimate(&a, &s, r, err, sizeof(err)),
			 -EINVAL);
	free(r);
}
END_TEST

Suite *np_suite_perfmulti(void)
{
	Suite *s = suite_create("perfmulti");
	TCase *tc = tcase_create("model");

	tcase_add_test(tc, small_by_hand);
	tcase_add_test(tc, split_layer_conserves_work);
	tcase_add_test(tc, precision_a8c8w4);
	tcase_add_test(tc, slower_is_not_faster);
	tcase_add_test(tc, published_presets);
	tcase_add_test(tc, mapping_errors);
	suite_add_tcase(s, tc);
	return s;
}
