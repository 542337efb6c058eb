// SPDX-License-Identifier: MIT
/*
 * p2p: every ordered card pair. The source card's SRAM gets a pattern
 * unique to the source; the source's DMA engines copy it into the
 * destination's frame buffer (NP_XFER_C2C) iterations times, in flight at
 * once, which gives the bandwidth; the destination's frame buffer is then
 * read back and compared, which gives the integrity. Pairs that libnp
 * cannot map directly fall back to a bounce through host memory: they
 * are marked, as their bandwidth is not the card-to-card path's.
 * --bounce forces that fallback for every pair, to compare the two paths.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "dev.h"
#include "np_abi.h"

struct pair {
	double bytes_per_s;
	enum np_p2p_mode mode;
	int err; /* -errno of a failed transfer */
	bool bad; /* data differed */
	uint64_t bad_addr;
};

int npt_p2p_pair(struct np_card *src, struct np_card *dst, struct np_buf *b,
		 size_t size, unsigned int iters, double *bytes_per_s,
		 uint64_t *bad_addr)
{
	struct np_xfer_spec s = {
		.op = NP_XFER_C2C,
		.engine = -1,
		.card_addr = NP_CA_SRAM_BASE,
		.dst_addr = NP_CA_FB_BASE,
		.peer = dst,
		.len = size,
	};
	const unsigned char *want = np_buf_ptr(b);
	unsigned char *got = (unsigned char *)np_buf_ptr(b) + size;
	double secs;
	int rc;

	memset(got, 0, size);
	rc = npt_xfer_batch(src, &s, iters, &secs);
	if (!rc)
		rc = npt_c2h(dst, b, size, NP_CA_FB_BASE, size);
	if (rc)
		return rc;
	*bytes_per_s = secs > 0 ? (double)size * iters / secs : 0;
	for (size_t i = 0; i < size; i++) {
		if (want[i] != got[i]) {
			*bad_addr = NP_CA_FB_BASE + i;
			return 1;
		}
	}
	return 0;
}

static void print_matrix(const struct pair *pr, unsigned int n, const bool *sel)
{
	printf("%-6s ", "src");
	for (unsigned int d = 0; d < n; d++)
		if (sel[d])
			printf(" %6u", d);
	printf("\n");
	for (unsigned int s = 0; s < n; s++) {
		if (!sel[s])
			continue;
		printf("%6u ", s);
		for (unsigned int d = 0; d < n; d++) {
			const struct pair *p = &pr[s * n + d];

			if (!sel[d])
				continue;
			if (s == d)
				printf(" %5s ", "-");
			else if (p->err)
				printf(" %5s ", "ERR");
			else if (p->bad)
				printf(" %5s ", "BAD");
			else
				printf(" %5.1f%c", p->bytes_per_s / 1e9,
				       p->mode == NP_P2P_BOUNCE ? '*' : ' ');
		}
		printf("\n");
	}
}

/* One p2p command: its options, the cards and every pair's result. */
struct p2p {
	struct npt *t;
	struct np_open_opts oo;
	uint64_t size;
	unsigned int iters;
	struct npt_cards cs;
	struct pair *pr; /* [src * n + dst] */
	unsigned int pairs, good, bounce;
};

static int p2p_parse(struct p2p *r, int argc, char **argv)
{
	static const struct option opts[] = {
		{"size", required_argument, NULL, 's'},
		{"iterations", required_argument, NULL, 'n'},
		{"bounce", no_argument, NULL, 'b'},
		{0},
	};
	struct npt *t = r->t;
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "s:n:b", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			r->oo.flags |= NP_OPEN_F_FORCE_BOUNCE;
			break;
		case 's':
			if (npt_parse_size(optarg, &r->size) || !r->size ||
			    r->size > NP_FB_SIZE)
				return npt_usage(t,
						 "p2p: size '%s' is not "
						 "1..32M bytes",
						 optarg);
			break;
		case 'n':
			r->iters = (unsigned int)strtoul(optarg, &end, 10);
			if (*end || !r->iters || r->iters > 1024)
				return npt_usage(t,
						 "p2p: iterations '%s' is "
						 "not 1..1024",
						 optarg);
			break;
		default:
			return npt_usage(t, "p2p: bad option");
		}
	}
	return NPT_EXIT_OK;
}

/* The selected cards (at least two) and room for the pairs. */
static int p2p_setup(struct p2p *r, int argc, char **argv)
{
	int rc = npt_cards_open(r->t, &r->oo, argc, argv, (size_t)(2 * r->size),
				&r->cs);

	if (rc)
		return rc;
	if (r->cs.nsel < 2) {
		npt_err(r->t, "p2p: needs at least two cards, '%s' selects %u",
			r->t->spec, r->cs.nsel);
		return NPT_EXIT_NODEV;
	}
	r->pr = calloc((size_t)r->cs.n * r->cs.n, sizeof(*r->pr));
	return r->pr ? NPT_EXIT_OK : NPT_EXIT_DEVERR;
}

/* Card src to card d, after src's SRAM got its pattern (h2c: its -errno). */
static void p2p_one(struct p2p *r, unsigned int s, unsigned int d, int h2c)
{
	struct np_ctx *ctx = r->cs.ctx;
	struct np_card *src = np_ctx_card(ctx, s);
	struct pair *p = &r->pr[s * r->cs.n + d];

	p->mode = np_card_p2p_mode(src, np_ctx_card(ctx, d));
	p->err = h2c;
	if (!h2c)
		p->err = npt_p2p_pair(src, np_ctx_card(ctx, d), r->cs.buf,
				      r->size, r->iters, &p->bytes_per_s,
				      &p->bad_addr);
	p->bad = p->err == 1;
	if (p->bad)
		p->err = 0;
	r->pairs++;
	r->good += !p->err && !p->bad;
	r->bounce += p->mode == NP_P2P_BOUNCE;
	if (p->err)
		npt_err(r->t, "p2p: card %u -> card %u: %s", s, d,
			strerror(-p->err));
	else if (p->bad)
		npt_err(r->t,
			"p2p: card %u -> card %u: data in "
			"the destination frame buffer "
			"differs at card address %#llx",
			s, d, (unsigned long long)p->bad_addr);
}

/* Every ordered pair of selected cards; the exit code of the results. */
static int p2p_loop(struct p2p *r)
{
	unsigned int n = r->cs.n;
	struct npt_progress pg;
	int rc = NPT_EXIT_OK;

	npt_progress_begin(r->t, &pg, "p2p",
			   (uint64_t)r->cs.nsel * (r->cs.nsel - 1));
	for (unsigned int s = 0; s < n; s++) {
		struct np_card *src = np_ctx_card(r->cs.ctx, s);
		int h2c;

		if (!r->cs.sel[s])
			continue;
		npt_fill(np_buf_ptr(r->cs.buf), r->size, 0x5eed0000u + s);
		h2c = npt_h2c(src, r->cs.buf, 0, NP_CA_SRAM_BASE, r->size);
		for (unsigned int d = 0; d < n; d++) {
			if (!r->cs.sel[d] || d == s)
				continue;
			p2p_one(r, s, d, h2c);
			npt_progress_update(&pg, r->pairs);
		}
	}
	npt_progress_end(&pg);
	for (unsigned int i = 0; i < (size_t)n * n; i++) {
		if (r->pr[i].err)
			rc = NPT_EXIT_DEVERR;
		else if (r->pr[i].bad && !rc)
			rc = NPT_EXIT_FAIL;
	}
	return rc;
}

static void p2p_json(const struct p2p *r)
{
	struct npt_json *j = r->t->j;
	unsigned int n = r->cs.n;
	const bool *sel = r->cs.sel;

	npt_json_kuint(j, "size", r->size);
	npt_json_kuint(j, "iterations", r->iters);
	npt_json_key(j, "cards");
	npt_json_arr_open(j);
	for (unsigned int i = 0; i < n; i++) {
		if (!sel[i])
			continue;
		npt_json_obj_open(j);
		npt_json_kuint(j, "index", i);
		npt_json_kstr(j, "name",
			      np_card_name(np_ctx_card(r->cs.ctx, i)));
		npt_json_obj_close(j);
	}
	npt_json_arr_close(j);
	npt_json_key(j, "pairs");
	npt_json_arr_open(j);
	for (unsigned int s = 0; s < n; s++) {
		for (unsigned int d = 0; d < n; d++) {
			const struct pair *p = &r->pr[s * n + d];

			if (!sel[s] || !sel[d] || s == d)
				continue;
			npt_json_obj_open(j);
			npt_json_kuint(j, "src", s);
			npt_json_kuint(j, "dst", d);
			npt_json_kstr(j, "mode",
				      p->mode == NP_P2P_BOUNCE ? "bounce" :
								 "direct");
			if (p->err)
				npt_json_knull(j, "bytes_per_s");
			else
				npt_json_kdouble(j, "bytes_per_s",
						 p->bytes_per_s);
			npt_json_kstr(j, "integrity",
				      p->err ? "error" :
				      p->bad ? "fail" :
					       "pass");
			npt_json_obj_close(j);
		}
	}
	npt_json_arr_close(j);
	npt_json_key(j, "summary");
	npt_json_obj_open(j);
	npt_json_kuint(j, "pairs", r->pairs);
	npt_json_kuint(j, "intact", r->good);
	npt_json_kuint(j, "bounce", r->bounce);
	npt_json_obj_close(j);
}

static void p2p_text(const struct p2p *r)
{
	char sz[32];

	npt_fmt_size(sz, sizeof(sz), r->size);
	printf("card->card bandwidth, GB/s (%s x %u per pair; rows "
	       "source, columns destination; * = host bounce)\n",
	       sz, r->iters);
	print_matrix(r->pr, r->cs.n, r->cs.sel);
	printf("data integrity: %u of %u pairs intact; %u pairs "
	       "through host bounce\n",
	       r->good, r->pairs, r->bounce);
}

int npt_cmd_p2p(struct npt *t, int argc, char **argv)
{
	struct p2p r = {.t = t, .size = 4 << 20, .iters = 8};
	int rc = p2p_parse(&r, argc, argv);

	if (rc)
		return rc;
	rc = p2p_setup(&r, argc - optind, argv + optind);
	if (!rc) {
		rc = p2p_loop(&r);
		if (t->j)
			p2p_json(&r);
		else
			p2p_text(&r);
	}
	free(r.pr);
	npt_cards_close(&r.cs);
	return rc;
}
