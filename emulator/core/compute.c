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
 * cache and the stash need no lock.
 *
 * Two layer jobs in a row with the same program (a card's two input slots,
 * docs/pipeline.md) run in one npk_run when the second is ready as the
 * first starts: one pass over the weights serves the tokens of both. The
 * second's output waits in emu->stash until its own turn, which writes it
 * if nothing it depends on changed (its arguments, the SRAM, a reset);
 * otherwise it runs on its own. Either way its results are the same: its
 * tokens follow the first job's, as npk_run would take them one job after
 * the other.
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

/* A layer job's arguments, checked against the card. */
struct job {
	uint64_t prog; /* SRAM offset */
	const uint8_t *a; /* arguments, in_len bytes */
	uint8_t *o; /* output, out_len bytes */
	struct npk_card c;
	uint32_t n, opt, k, slice;
	size_t in_len, out_len, res_len;
};

static uint32_t job_get(struct np_emu *emu, const struct np_emu_desc *d,
			struct job *j, uint64_t *err_addr)
{
	size_t row_in;
	uint32_t err;

	memset(j, 0, sizeof(*j));
	j->prog = d->src - NP_CA_SRAM_BASE; /* SRAM starts at 0 */
	j->a = job_ptr(emu, d->dst, d->len);
	if (!j->a || d->len < NP_JOB_ARG_HDR) {
		*err_addr = d->dst;
		return NP_ERR_SRC_RANGE;
	}
	if (j->prog >= emu->sram_size)
		return NP_ERR_BAD_PROGRAM;
	err = validate(emu, j->prog);
	if (err)
		return err;
	memcpy(&j->c, emu->sram + j->prog, sizeof(j->c));
	memcpy(&j->n, j->a, 4);
	memcpy(&j->opt, j->a + 4, 4);
	j->k = NP_JOB_ARG_TOPK(j->opt);
	row_in = (size_t)j->c.dim * 2;
	if (j->n == 0 || j->opt != j->k ||
	    (d->len - NP_JOB_ARG_HDR) / (NP_JOB_ARG_TOK + row_in) < j->n)
		return NP_ERR_BAD_PROGRAM;
	j->in_len = NP_JOB_ARG_HDR + (size_t)j->n * (NP_JOB_ARG_TOK + row_in);
	j->res_len = npk_out_size(emu->sram, j->prog, j->n);
	if (j->c.kind == NPK_KIND_LAYERS) {
		j->out_len = j->in_len;
	} else {
		j->slice = j->c.vocab_end - j->c.vocab_begin;
		if (j->k > NP_JOB_TOPK_MAX || j->k > j->slice)
			return NP_ERR_BAD_PROGRAM;
		j->out_len = j->k ? (size_t)j->n * j->k *
					     sizeof(struct np_job_topk) :
				    j->res_len;
	}
	j->o = job_ptr(emu, d->out, j->out_len);
	if (!j->o) {
		*err_addr = d->out;
		return NP_ERR_DST_RANGE;
	}
	return NP_ERR_NONE;
}

/* Write job j's output to o from its argument header hdr (the token
 * entries) and npk's results res. */
static void job_put(const struct job *j, const uint8_t *hdr, const uint8_t *res,
		    uint8_t *o)
{
	if (j->c.kind == NPK_KIND_LAYERS) {
		size_t h = NP_JOB_ARG_HDR + (size_t)j->n * NP_JOB_ARG_TOK;

		/* options travel on to the output cards */
		memcpy(o, &j->n, 4);
		memcpy(o + 4, &j->opt, 4);
		memcpy(o + NP_JOB_ARG_HDR, hdr + NP_JOB_ARG_HDR,
		       h - NP_JOB_ARG_HDR);
		memcpy(o + h, res, j->res_len);
	} else if (!j->k) {
		memcpy(o, res, j->res_len);
	} else {
		struct np_job_topk row[NP_JOB_TOPK_MAX];

		for (uint32_t i = 0; i < j->n; i++) {
			topk_row((const int32_t *)res + (size_t)i * j->slice,
				 j->slice, j->c.vocab_begin, j->k, row);
			memcpy(o + (size_t)i * j->k * sizeof(row[0]), row,
			       j->k * sizeof(row[0]));
		}
	}
}

static bool overlap(const uint8_t *a, size_t alen, const uint8_t *b,
		    size_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Whether job j2 may run in one npk_run with j (before j's output is
 * written): same program, one whose runs leave it as validated, few enough
 * tokens to share every pass over the weights, outputs outside the SRAM,
 * j's output clear of j2's arguments. */
static bool joinable(struct np_emu *emu, const struct job *j,
		     const struct job *j2)
{
	return j2->prog == j->prog && emu->prog_ok.valid &&
	       emu->prog_ok.prog == j->prog && j->n + j2->n <= NPK_GROUP &&
	       !overlap(j->o, j->out_len, emu->sram, emu->sram_size) &&
	       !overlap(j2->o, j2->out_len, emu->sram, emu->sram_size) &&
	       !overlap(j->o, j->out_len, j2->a, j2->in_len);
}

/* The output computed ahead for job d, if nothing it depends on changed
 * since: written, and true returned. The stash is used up either way. */
static bool stash_take(struct np_emu *emu, const struct np_emu_desc *d,
		       unsigned int qgen)
{
	struct np_emu_stash *st = &emu->stash;
	bool hit = st->valid && st->qgen == qgen && st->prog == d->src &&
		   st->arg == d->dst && st->arg_len == d->len &&
		   st->out == d->out &&
		   st->sram_gen == atomic_load_explicit(&emu->sram_gen,
							memory_order_acquire);
	const uint8_t *a = hit ? job_ptr(emu, d->dst, st->in_len) : NULL;
	uint8_t *o = hit ? job_ptr(emu, d->out, st->out_len) : NULL;

	st->valid = false;
	if (!a || !o || memcmp(a, st->buf, st->in_len))
		return false;
	memcpy(o, st->buf + st->in_len, st->out_len);
	return true;
}

/* Keep job j2's output res for its own turn. */
static void stash_put(struct np_emu *emu, const struct np_emu_desc *d2,
		      const struct job *j2, unsigned int qgen, uint64_t gen,
		      const uint8_t *res)
{
	struct np_emu_stash *st = &emu->stash;
	size_t need = j2->in_len + j2->out_len;

	if (need > st->cap) {
		uint8_t *b = realloc(st->buf, need);

		if (!b)
			return; /* j2 runs again on its turn */
		st->buf = b;
		st->cap = need;
	}
	memcpy(st->buf, j2->a, j2->in_len);
	job_put(j2, j2->a, res, st->buf + j2->in_len);
	st->prog = d2->src;
	st->arg = d2->dst;
	st->arg_len = d2->len;
	st->out = d2->out;
	st->in_len = j2->in_len;
	st->out_len = j2->out_len;
	st->qgen = qgen;
	st->sram_gen = gen;
	st->valid = true;
}

uint32_t np_emu_layer_job(struct np_emu *emu, const struct np_emu_desc *d,
			  const struct np_emu_desc *next, unsigned int qgen,
			  uint64_t *err_addr)
{
	struct job j, j2;
	uint64_t gen, ignored;
	uint32_t err, n;
	size_t row_in, hdr2, in_len;
	uint8_t *copy = NULL, *scratch = NULL, *res = NULL;
	bool join;

	if (stash_take(emu, d, qgen))
		return NP_ERR_NONE;
	gen = atomic_load_explicit(&emu->sram_gen, memory_order_acquire);
	err = job_get(emu, d, &j, err_addr);
	if (err)
		return err;
	join = next && !job_get(emu, next, &j2, &ignored) &&
	       joinable(emu, &j, &j2);
	n = j.n + (join ? j2.n : 0);
	row_in = (size_t)j.c.dim * 2;
	in_len = NP_JOB_ARG_HDR + (size_t)n * (NP_JOB_ARG_TOK + row_in);

	/* The arguments are copied first: out may overlap them, and npk
	 * reads the options word as zero. Joined, j2's tokens follow j's:
	 * header, j's and j2's token entries, j's and j2's rows. */
	copy = malloc(in_len);
	scratch = malloc(npk_scratch_size(emu->sram, j.prog));
	res = malloc(j.res_len + (join ? j2.res_len : 0));
	if (!copy || !scratch || !res) {
		/* the card has its own memory for this; only the host that
		 * emulates it can run out: the job fails, the card lives */
		err = NP_ERR_BAD_PROGRAM;
		goto out;
	}
	memcpy(copy, &n, 4);
	memset(copy + 4, 0, 4);
	hdr2 = NP_JOB_ARG_HDR + (size_t)n * NP_JOB_ARG_TOK;
	memcpy(copy + NP_JOB_ARG_HDR, j.a + NP_JOB_ARG_HDR,
	       (size_t)j.n * NP_JOB_ARG_TOK);
	memcpy(copy + hdr2, j.a + NP_JOB_ARG_HDR + (size_t)j.n * NP_JOB_ARG_TOK,
	       (size_t)j.n * row_in);
	if (join) {
		memcpy(copy + NP_JOB_ARG_HDR + (size_t)j.n * NP_JOB_ARG_TOK,
		       j2.a + NP_JOB_ARG_HDR, (size_t)j2.n * NP_JOB_ARG_TOK);
		memcpy(copy + hdr2 + (size_t)j.n * row_in,
		       j2.a + NP_JOB_ARG_HDR + (size_t)j2.n * NP_JOB_ARG_TOK,
		       (size_t)j2.n * row_in);
	}
	err = (uint32_t)npk_run(emu->sram, j.prog, copy, in_len, res,
				j.res_len + (join ? j2.res_len : 0), scratch);
	if (err)
		goto out;
	if (join)
		stash_put(emu, next, &j2, qgen, gen, res + j.res_len);
	/* j's own header: its token entries are at the front of copy */
	memcpy(copy, &j.n, 4);
	job_put(&j, copy, res, j.o);
	np_emu_sram_written(emu, d->out, j.out_len);
out:
	free(copy);
	free(scratch);
	free(res);
	return err;
}
