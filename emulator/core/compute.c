// SPDX-License-Identifier: MIT
/*
 * np emulator core: the layer job (NP_JOB_OP_LAYER).
 *
 * The arithmetic is npk (libnp/model/npk.c), the very source libnp's
 * integer reference runs, so a card and the oracle cannot disagree. This
 * file adds what the card does around it: range checks on the job's
 * addresses, the options word of the argument header (top-k selection on
 * output programs, passed on unchanged by layer programs) and the chaining
 * of a layer card's output into the next card's argument frame (np_abi.h,
 * docs/pipeline.md).
 *
 * Jobs run one at a time per card (the pool runs a queue's descriptors one
 * at a time), so the scratch memory is per job and the validated-program
 * cache needs no lock.
 */
#include <stdlib.h>
#include <string.h>

#include "compute.h"
#include "emu_priv.h"
#include "npk.h"

_Static_assert(NP_JOB_ARG_HDR == NPK_ARG_HDR, "argument header");
_Static_assert(NP_JOB_ARG_TOK == sizeof(struct npk_tok), "token entry");

/* Host pointer of card range [addr, addr + len) inside one memory. */
static uint8_t *job_ptr(struct np_emu *emu, uint64_t addr, uint64_t len)
{
	const uint64_t base[2] = {NP_CA_SRAM_BASE, NP_CA_FB_BASE};
	const uint64_t size[2] = {emu->sram_size, emu->fb_size};
	uint8_t *mem[2] = {emu->sram, emu->fb};

	for (unsigned int i = 0; i < 2; i++) {
		uint64_t off = addr - base[i];

		if (addr >= base[i] && off < size[i] && len <= size[i] - off)
			return mem[i] + off;
	}
	return NULL;
}

/* k largest of v[0..n), largest first, ties by lower index. */
static void topk_row(const int32_t *v, uint32_t n, uint32_t base, uint32_t k,
		     struct np_job_topk *out)
{
	uint32_t have = 0;

	for (uint32_t i = 0; i < n; i++) {
		uint32_t j;

		if (have == k && v[i] <= out[k - 1].value)
			continue;
		j = have < k ? have++ : k - 1;
		while (j > 0 && out[j - 1].value < v[i]) {
			out[j] = out[j - 1];
			j--;
		}
		out[j].value = v[i];
		out[j].index = base + i;
	}
}

/*
 * npk_validate, skipped for the program validated last if nothing wrote
 * into the SRAM since and its own runs cannot change what it checks.
 */
static uint32_t validate(struct np_emu *emu, uint64_t prog)
{
	struct np_emu_prog_ok *ok = &emu->prog_ok;
	uint64_t gen =
		atomic_load_explicit(&emu->sram_gen, memory_order_acquire);
	uint32_t err;

	if (ok->valid && ok->prog == prog && ok->gen == gen)
		return NP_ERR_NONE;
	ok->valid = false;
	err = (uint32_t)npk_validate(emu->sram, emu->sram_size, prog);
	if (!err && npk_validate_stable(emu->sram, emu->sram_size, prog)) {
		ok->valid = true;
		ok->prog = prog;
		ok->gen = gen;
	}
	return err;
}

uint32_t np_emu_layer_job(struct np_emu *emu, uint64_t prog, uint64_t arg,
			  uint32_t arg_len, uint64_t out, uint64_t *err_addr)
{
	uint64_t sram_prog = prog - NP_CA_SRAM_BASE; /* SRAM starts at 0 */
	const uint8_t *a = job_ptr(emu, arg, arg_len);
	uint32_t n, opt, k, err, slice = 0;
	size_t row_in, in_len, out_len, res_len;
	struct npk_card c;
	uint8_t *o, *copy = NULL, *scratch = NULL, *res = NULL;

	if (!a || arg_len < NP_JOB_ARG_HDR) {
		*err_addr = arg;
		return NP_ERR_SRC_RANGE;
	}
	if (sram_prog >= emu->sram_size)
		return NP_ERR_BAD_PROGRAM;
	err = validate(emu, sram_prog);
	if (err)
		return err;
	memcpy(&c, emu->sram + sram_prog, sizeof(c));
	memcpy(&n, a, 4);
	memcpy(&opt, a + 4, 4);
	k = NP_JOB_ARG_TOPK(opt);
	row_in = (size_t)c.dim * 2;
	if (n == 0 || opt != k ||
	    (arg_len - NP_JOB_ARG_HDR) / (NP_JOB_ARG_TOK + row_in) < n)
		return NP_ERR_BAD_PROGRAM;
	in_len = NP_JOB_ARG_HDR + (size_t)n * (NP_JOB_ARG_TOK + row_in);
	res_len = npk_out_size(emu->sram, sram_prog, n);
	if (c.kind == NPK_KIND_LAYERS) {
		out_len = in_len;
	} else {
		slice = c.vocab_end - c.vocab_begin;
		if (k > NP_JOB_TOPK_MAX || k > slice)
			return NP_ERR_BAD_PROGRAM;
		out_len = k ? (size_t)n * k * sizeof(struct np_job_topk) :
			      res_len;
	}
	o = job_ptr(emu, out, out_len);
	if (!o) {
		*err_addr = out;
		return NP_ERR_DST_RANGE;
	}

	/* The arguments are copied first: out may overlap them, and npk
	 * reads the options word as zero. */
	copy = malloc(in_len);
	scratch = malloc(npk_scratch_size(emu->sram, sram_prog));
	res = malloc(res_len);
	if (!copy || !scratch || !res) {
		/* the card has its own memory for this; only the host that
		 * emulates it can run out: the job fails, the card lives */
		err = NP_ERR_BAD_PROGRAM;
		goto out;
	}
	memcpy(copy, a, in_len);
	memset(copy + 4, 0, 4);
	err = (uint32_t)npk_run(emu->sram, sram_prog, copy, in_len, res,
				res_len, scratch);
	if (err)
		goto out;
	if (c.kind == NPK_KIND_LAYERS) {
		size_t hdr = NP_JOB_ARG_HDR + (size_t)n * NP_JOB_ARG_TOK;

		/* options travel on to the output cards */
		memcpy(o, copy, hdr);
		memcpy(o + 4, &opt, 4);
		memcpy(o + hdr, res, res_len);
	} else if (!k) {
		memcpy(o, res, res_len);
	} else {
		struct np_job_topk row[NP_JOB_TOPK_MAX];

		for (uint32_t i = 0; i < n; i++) {
			topk_row((const int32_t *)res + (size_t)i * slice,
				 slice, c.vocab_begin, k, row);
			memcpy(o + (size_t)i * k * sizeof(row[0]), row,
			       k * sizeof(row[0]));
		}
	}
	np_emu_sram_written(emu, out, out_len);
out:
	free(copy);
	free(scratch);
	free(res);
	return err;
}
