// SPDX-License-Identifier: MIT
/*
 * Integer reference: every card's image rendered into its own SRAM and
 * run through npk, card after card, exactly as the pipeline will submit
 * NP_JOB_OP_LAYER jobs. This is the oracle the emulated cards must match
 * bit for bit.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "np_abi.h"
#include "npim.h"
#include "npk.h"

struct np_ref_int {
	const struct np_compiled *c;
	uint32_t n_cards, dim, vocab;
	uint8_t *sram[NPIM_MAX_CARDS];
	void *scratch;
	uint8_t *arg, *out;
	size_t arg_len, out_len;
};

void np_ref_int_destroy(struct np_ref_int *r)
{
	if (!r)
		return;
	for (uint32_t i = 0; i < r->n_cards; i++)
		free(r->sram[i]);
	free(r->scratch);
	free(r->arg);
	free(r->out);
	free(r);
}

int np_ref_int_create(const struct np_compiled *c, struct np_ref_int **out)
{
	struct np_ref_int *r = calloc(1, sizeof(*r));
	size_t scratch = 0;
	int ret = 0;

	*out = NULL;
	if (!r)
		return -ENOMEM;
	r->c = c;
	r->n_cards = np_compiled_n_cards(c);
	for (uint32_t i = 0; i < r->n_cards && !ret; i++) {
		const struct np_card_plan *p = np_compiled_card(c, i);
		size_t need, o;

		/* calloc of this size maps fresh zero pages: untouched cores
		 * cost nothing */
		r->sram[i] = calloc(1, NP_SRAM_SIZE);
		if (!r->sram[i]) {
			ret = -ENOMEM;
			break;
		}
		ret = np_compile_card_image(c, i, r->sram[i]);
		if (ret)
			break;
		if (npk_validate(r->sram[i], NP_SRAM_SIZE, p->prog)) {
			ret = -EPROTO;
			break;
		}
		need = npk_scratch_size(r->sram[i], p->prog);
		scratch = need > scratch ? need : scratch;
		o = npk_out_size(r->sram[i], p->prog, 1);
		r->out_len = o > r->out_len ? o : r->out_len;
		if (p->kind == NP_CARD_LAYERS) {
			struct npk_card h;

			memcpy(&h, r->sram[i] + p->prog, sizeof(h));
			r->dim = h.dim;
		} else {
			r->vocab = p->vocab_end;
		}
	}
	if (!ret) {
		r->arg_len = NPK_ARG_HDR + sizeof(struct npk_tok) +
			     (size_t)r->dim * 2;
		r->scratch = malloc(scratch);
		r->arg = calloc(1, r->arg_len);
		r->out = malloc(r->out_len);
		if (!r->scratch || !r->arg || !r->out)
			ret = -ENOMEM;
	}
	if (ret) {
		np_ref_int_destroy(r);
		return ret;
	}
	*out = r;
	return 0;
}

int np_ref_int_step(struct np_ref_int *r, uint32_t slot, uint32_t pos,
		    int32_t token, int32_t *logits)
{
	struct npk_tok tk = {slot, pos};
	uint32_t one = 1;
	int16_t *x = (int16_t *)(r->arg + NPK_ARG_HDR + sizeof(tk));
	int ret;

	memcpy(r->arg, &one, 4);
	memcpy(r->arg + NPK_ARG_HDR, &tk, sizeof(tk));
	ret = np_compiled_embed(r->c, token, x);
	if (ret)
		return ret;
	for (uint32_t i = 0; i < r->n_cards; i++) {
		const struct np_card_plan *p = np_compiled_card(r->c, i);
		int err = npk_run(r->sram[i], p->prog, r->arg, r->arg_len,
				  r->out, r->out_len, r->scratch);

		if (err)
			return -ERANGE;
		if (p->kind == NP_CARD_LAYERS)
			memcpy(x, r->out, (size_t)r->dim * 2);
		else
			memcpy(logits + p->vocab_begin, r->out,
			       (size_t)(p->vocab_end - p->vocab_begin) * 4);
	}
	return 0;
}

const uint8_t *np_ref_int_sram(const struct np_ref_int *r, uint32_t card)
{
	return card < r->n_cards ? r->sram[card] : NULL;
}
