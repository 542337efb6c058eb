// SPDX-License-Identifier: MIT
/*
 * np emulator core: the layer job (NP_JOB_OP_LAYER).
 *
 * The arithmetic is npk (npk/npk.c), the very source libnp's
 * integer reference runs, so a card and the oracle cannot disagree. This
 * file adds what the card does around it: range checks on the job's
 * addresses, the options word of the argument header (top-k selection on
 * output programs, passed on unchanged by layer programs) and the chaining
 * of a layer card's output into the next card's argument frame (np_abi.h,
 * docs/pipeline.md).
 *
 * Jobs run one at a time per card (the pool runs a queue's descriptors one
 * at a time), so the card's working memory, the validated-program cache
 * and the stash need no lock.
 *
 * Layer jobs in a row with the same program (frames queued in a card's
 * input slots, docs/pipeline.md) run in one npk_run when they are ready as
 * the first starts: one pass over the weights serves the tokens of all,
 * up to NP_EMU_JOIN jobs and NPK_GROUP tokens. The outputs of all but the
 * first wait in emu->stash until their own turn, which writes them if
 * nothing they depend on changed (their arguments, the SRAM, a reset);
 * otherwise that job and every one stashed behind it run on their own.
 * Either way the results are the same: a job's tokens follow the earlier
 * jobs', as npk_run would take them one job after the other.
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

/* At least n bytes of the card's memory b, kept from job to job (jobs run
 * one at a time per card), so a job does not map, fault in and zero
 * megabytes of scratch and results every time. NULL if it cannot grow. */
static void *buf_reserve(struct np_emu_buf *b, size_t n)
{
	if (n > b->cap) {
		void *p = realloc(b->p, n);

		if (!p)
			return NULL;
		b->p = p;
		b->cap = n;
	}
	return b->p;
}

/* Whether job j2 may run in one npk_run with j and the jobs joined
 * before it, n tokens so far (before j's output is written): same program,
 * one whose runs leave it as validated, few enough tokens to share every
 * pass over the weights, outputs outside the SRAM, j's output clear of
 * j2's arguments. */
static bool joinable(struct np_emu *emu, const struct job *j, uint32_t n,
		     const struct job *j2)
{
	return j2->prog == j->prog && emu->prog_ok.valid &&
	       emu->prog_ok.prog == j->prog && j2->n <= NPK_GROUP - n &&
	       !overlap(j->o, j->out_len, emu->sram, emu->sram_size) &&
	       !overlap(j2->o, j2->out_len, emu->sram, emu->sram_size) &&
	       !overlap(j->o, j->out_len, j2->a, j2->in_len);
}

static void stash_drop(struct np_emu *emu)
{
	emu->stash_n = 0;
	emu->stash_head = 0;
}

/* The output computed ahead for job d, if it is the first one stashed and
 * nothing it depends on changed since: written, and true returned. A miss
 * drops every stashed output (those behind may depend on d's KV entries). */
static bool stash_take(struct np_emu *emu, const struct np_emu_desc *d,
		       unsigned int qgen)
{
	struct np_emu_stash *st = &emu->stash[emu->stash_head];
	bool hit = emu->stash_n && st->qgen == qgen && st->prog == d->src &&
		   st->arg == d->dst && st->arg_len == d->len &&
		   st->out == d->out &&
		   st->sram_gen == atomic_load_explicit(&emu->sram_gen,
							memory_order_acquire);
	const uint8_t *a = hit ? job_ptr(emu, d->dst, st->in_len) : NULL;
	uint8_t *o = hit ? job_ptr(emu, d->out, st->out_len) : NULL;
	const uint8_t *kept = st->buf.p;

	if (!a || !o || memcmp(a, kept, st->in_len)) {
		stash_drop(emu);
		return false;
	}
	memcpy(o, kept + st->in_len, st->out_len);
	emu->stash_head++;
	if (!--emu->stash_n)
		emu->stash_head = 0;
	return true;
}

/* Keep job j2's output res for its own turn, behind those kept before.
 * False if there is no memory for it: it and the jobs after it run again
 * on their turn. */
static bool stash_put(struct np_emu *emu, const struct np_emu_desc *d2,
		      const struct job *j2, unsigned int qgen, uint64_t gen,
		      const uint8_t *res)
{
	struct np_emu_stash *st = &emu->stash[emu->stash_head + emu->stash_n];
	uint8_t *b = buf_reserve(&st->buf, j2->in_len + j2->out_len);

	if (!b)
		return false;
	memcpy(b, j2->a, j2->in_len);
	job_put(j2, j2->a, res, b + j2->in_len);
	st->prog = d2->src;
	st->arg = d2->dst;
	st->arg_len = d2->len;
	st->out = d2->out;
	st->in_len = j2->in_len;
	st->out_len = j2->out_len;
	st->qgen = qgen;
	st->sram_gen = gen;
	emu->stash_n++;
	return true;
}

uint32_t np_emu_layer_job(struct np_emu *emu, const struct np_emu_desc *d,
			  const struct np_emu_desc *next, unsigned int n_next,
			  unsigned int qgen, uint64_t *err_addr)
{
	struct job j[NP_EMU_JOIN];
	uint64_t gen, ignored;
	uint32_t err, n, nj = 1;
	size_t row_in, in_len, res_len, at_tok, at_row, at_res;
	uint8_t *copy, *scratch, *res;

	if (stash_take(emu, d, qgen))
		return NP_ERR_NONE;
	gen = atomic_load_explicit(&emu->sram_gen, memory_order_acquire);
	err = job_get(emu, d, &j[0], err_addr);
	if (err)
		return err;
	n = j[0].n;
	res_len = j[0].res_len;
	for (unsigned int i = 0; i < n_next && nj < NP_EMU_JOIN; i++) {
		if (job_get(emu, &next[i], &j[nj], &ignored) ||
		    !joinable(emu, &j[0], n, &j[nj]))
			break;
		n += j[nj].n;
		res_len += j[nj].res_len;
		nj++;
	}
	row_in = (size_t)j[0].c.dim * 2;
	in_len = NP_JOB_ARG_HDR + (size_t)n * (NP_JOB_ARG_TOK + row_in);

	/* The arguments are copied first: out may overlap them, and npk
	 * reads the options word as zero. Joined, each job's tokens follow
	 * the job's before: header, every job's token entries, every job's
	 * rows. */
	copy = buf_reserve(&emu->job_mem[NP_EMU_JOB_ARGS], in_len);
	scratch = buf_reserve(&emu->job_mem[NP_EMU_JOB_SCRATCH],
			      npk_scratch_size(emu->sram, j[0].prog));
	res = buf_reserve(&emu->job_mem[NP_EMU_JOB_RESULT], res_len);
	if (!copy || !scratch || !res) {
		/* the card has its own memory for this; only the host that
		 * emulates it can run out: the job fails, the card lives */
		return NP_ERR_BAD_PROGRAM;
	}
	memcpy(copy, &n, 4);
	memset(copy + 4, 0, 4);
	at_tok = NP_JOB_ARG_HDR;
	at_row = NP_JOB_ARG_HDR + (size_t)n * NP_JOB_ARG_TOK;
	for (uint32_t i = 0; i < nj; i++) {
		const uint8_t *a = j[i].a + NP_JOB_ARG_HDR;

		memcpy(copy + at_tok, a, (size_t)j[i].n * NP_JOB_ARG_TOK);
		memcpy(copy + at_row, a + (size_t)j[i].n * NP_JOB_ARG_TOK,
		       (size_t)j[i].n * row_in);
		at_tok += (size_t)j[i].n * NP_JOB_ARG_TOK;
		at_row += (size_t)j[i].n * row_in;
	}
	err = (uint32_t)npk_run(emu->sram, j[0].prog, copy, in_len, res,
				res_len, scratch);
	if (err)
		return err;
	/* the stash is empty here: stash_take used it up or dropped it */
	at_res = j[0].res_len;
	for (uint32_t i = 1; i < nj; i++) {
		if (!stash_put(emu, &next[i - 1], &j[i], qgen, gen,
			       res + at_res))
			break;
		at_res += j[i].res_len;
	}
	/* j[0]'s own header: its token entries are at the front of copy */
	memcpy(copy, &j[0].n, 4);
	job_put(&j[0], copy, res, j[0].o);
	np_emu_sram_written(emu, d->out, j[0].out_len);
	return NP_ERR_NONE;
}
