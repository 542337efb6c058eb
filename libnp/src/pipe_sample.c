// SPDX-License-Identifier: MIT
/*
 * Sampling of the pipeline's sessions: the candidates of a row merged
 * over the output cards (top-k, in the cards' order), and the next token
 * drawn from them (temperature, top-k, top-p).
 */
#include <math.h>
#include <string.h>

#include "pipe.h"

static bool better(int32_t a, uint32_t ia, int32_t b, uint32_t ib)
{
	return a > b || (a == b && ia < ib);
}

/* Insert (val, idx) into the k best so far (largest first, ties by lower
 * index): the order the output cards use. */
static void topk_push(int32_t *v, uint32_t *id, uint32_t *have, uint32_t k,
		      int32_t val, uint32_t idx)
{
	uint32_t j;

	if (*have == k && !better(val, idx, v[k - 1], id[k - 1]))
		return;
	j = *have < k ? (*have)++ : k - 1;
	while (j > 0 && better(val, idx, v[j - 1], id[j - 1])) {
		v[j] = v[j - 1];
		id[j] = id[j - 1];
		j--;
	}
	v[j] = val;
	id[j] = idx;
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

int32_t npi_sample(const struct np_sampling *sp, uint64_t *rng,
		   const int32_t *v, const uint32_t *id, uint32_t n,
		   double scale)
{
	double w[NP_JOB_TOPK_MAX], sum = 0, cut, u;
	uint32_t k = sp->top_k && sp->top_k < n ? sp->top_k : n;

	if (sp->temperature <= 0)
		return (int32_t)id[0];
	for (uint32_t i = 0; i < k; i++) {
		w[i] = exp(((double)v[i] - v[0]) * scale / sp->temperature);
		sum += w[i];
	}
	if (sp->top_p > 0 && sp->top_p < 1) {
		double acc = 0;

		for (uint32_t i = 0; i < k; i++) {
			acc += w[i];
			if (acc >= sp->top_p * sum) {
				k = i + 1;
				break;
			}
		}
		sum = acc;
	}
	cut = (double)(splitmix64(rng) >> 11) * 0x1.0p-53 * sum;
	u = 0;
	for (uint32_t i = 0; i < k; i++) {
		u += w[i];
		if (cut < u)
			return (int32_t)id[i];
	}
	return (int32_t)id[k - 1];
}

/* The candidates of row i of frame f, merged over the output cards. */
uint32_t npi_candidates(struct npi_run *R, const struct npi_frame *f,
			uint32_t i)
{
	struct np_pipeline *p = R->p;
	const uint8_t *h =
		(const uint8_t *)np_buf_ptr(R->host) + f->m * R->host_slot;
	uint32_t have = 0, k = R->cand;

	for (uint32_t o = 0; o < p->n_out; o++) {
		const struct np_card_plan *pl = p->st[p->n_layer + o].plan;
		uint32_t slice = pl->vocab_end - pl->vocab_begin;

		if (R->full_logits) {
			const int32_t *l = (const int32_t *)(h + R->out_at[o]) +
					   (size_t)i * slice;

			memcpy(R->logits + pl->vocab_begin, l,
			       (size_t)slice * 4);
			for (uint32_t v = 0; v < slice; v++)
				topk_push(R->cv, R->ci, &have, k, l[v],
					  pl->vocab_begin + v);
		} else {
			const struct np_job_topk *t =
				(const struct np_job_topk *)(h + R->out_at[o]) +
				(size_t)i * k;

			for (uint32_t v = 0; v < k; v++)
				topk_push(R->cv, R->ci, &have, k, t[v].value,
					  t[v].index);
		}
	}
	return have;
}
