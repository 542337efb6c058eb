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

int npt_cmd_p2p(struct npt *t, int argc, char **argv)
{
	static const struct option opts[] = {
		{"size", required_argument, NULL, 's'},
		{"iterations", required_argument, NULL, 'n'},
		{"bounce", no_argument, NULL, 'b'},
		{0},
	};
	struct np_open_opts oo = {0};
	uint64_t size = 4 << 20;
	unsigned int iters = 8, n, pairs = 0, good = 0, bounce = 0;
	struct npt_progress pg;
	struct npt_cards cs;
	struct np_ctx *ctx;
	struct np_buf *b;
	struct pair *pr = NULL;
	bool *sel;
	char *end, sz[32];
	int c, rc;

	while ((c = getopt_long(argc, argv, "s:n:b", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			oo.flags |= NP_OPEN_F_FORCE_BOUNCE;
			break;
		case 's':
			if (npt_parse_size(optarg, &size) || !size ||
			    size > NP_FB_SIZE)
				return npt_usage(t,
						 "p2p: size '%s' is not "
						 "1..32M bytes",
						 optarg);
			break;
		case 'n':
			iters = (unsigned int)strtoul(optarg, &end, 10);
			if (*end || !iters || iters > 1024)
				return npt_usage(t,
						 "p2p: iterations '%s' is "
						 "not 1..1024",
						 optarg);
			break;
		default:
			return npt_usage(t, "p2p: bad option");
		}
	}
	rc = npt_cards_open(t, &oo, argc - optind, argv + optind,
			    (size_t)(2 * size), &cs);
	if (rc)
		goto out;
	n = cs.n;
	sel = cs.sel;
	ctx = cs.ctx;
	b = cs.buf;
	if (cs.nsel < 2) {
		npt_err(t, "p2p: needs at least two cards, '%s' selects %u",
			t->spec, cs.nsel);
		rc = NPT_EXIT_NODEV;
		goto out;
	}
	pr = calloc((size_t)n * n, sizeof(*pr));
	if (!pr) {
		rc = NPT_EXIT_DEVERR;
		goto out;
	}
	npt_progress_begin(t, &pg, "p2p", (uint64_t)cs.nsel * (cs.nsel - 1));
	for (unsigned int s = 0; s < n; s++) {
		struct np_card *src = np_ctx_card(ctx, s);

		if (!sel[s])
			continue;
		npt_fill(np_buf_ptr(b), size, 0x5eed0000u + s);
		rc = npt_h2c(src, b, 0, NP_CA_SRAM_BASE, size);
		for (unsigned int d = 0; d < n; d++) {
			struct pair *p = &pr[s * n + d];

			if (!sel[d] || d == s)
				continue;
			p->mode = np_card_p2p_mode(src, np_ctx_card(ctx, d));
			p->err = rc;
			if (!rc)
				p->err = npt_p2p_pair(
					src, np_ctx_card(ctx, d), b, size,
					iters, &p->bytes_per_s, &p->bad_addr);
			p->bad = p->err == 1;
			if (p->bad)
				p->err = 0;
			pairs++;
			good += !p->err && !p->bad;
			bounce += p->mode == NP_P2P_BOUNCE;
			if (p->err)
				npt_err(t, "p2p: card %u -> card %u: %s", s, d,
					strerror(-p->err));
			else if (p->bad)
				npt_err(t,
					"p2p: card %u -> card %u: data in "
					"the destination frame buffer "
					"differs at card address %#llx",
					s, d, (unsigned long long)p->bad_addr);
			npt_progress_update(&pg, pairs);
		}
		rc = 0;
	}
	npt_progress_end(&pg);
	for (unsigned int i = 0; i < (size_t)n * n; i++) {
		if (pr[i].err)
			rc = NPT_EXIT_DEVERR;
		else if (pr[i].bad && !rc)
			rc = NPT_EXIT_FAIL;
	}
	npt_fmt_size(sz, sizeof(sz), size);
	if (t->j) {
		npt_json_kuint(t->j, "size", size);
		npt_json_kuint(t->j, "iterations", iters);
		npt_json_key(t->j, "cards");
		npt_json_arr_open(t->j);
		for (unsigned int i = 0; i < n; i++) {
			if (!sel[i])
				continue;
			npt_json_obj_open(t->j);
			npt_json_kuint(t->j, "index", i);
			npt_json_kstr(t->j, "name",
				      np_card_name(np_ctx_card(ctx, i)));
			npt_json_obj_close(t->j);
		}
		npt_json_arr_close(t->j);
		npt_json_key(t->j, "pairs");
		npt_json_arr_open(t->j);
		for (unsigned int s = 0; s < n; s++) {
			for (unsigned int d = 0; d < n; d++) {
				const struct pair *p = &pr[s * n + d];

				if (!sel[s] || !sel[d] || s == d)
					continue;
				npt_json_obj_open(t->j);
				npt_json_kuint(t->j, "src", s);
				npt_json_kuint(t->j, "dst", d);
				npt_json_kstr(t->j, "mode",
					      p->mode == NP_P2P_BOUNCE ?
						      "bounce" :
						      "direct");
				if (p->err)
					npt_json_knull(t->j, "bytes_per_s");
				else
					npt_json_kdouble(t->j, "bytes_per_s",
							 p->bytes_per_s);
				npt_json_kstr(t->j, "integrity",
					      p->err ? "error" :
					      p->bad ? "fail" :
						       "pass");
				npt_json_obj_close(t->j);
			}
		}
		npt_json_arr_close(t->j);
		npt_json_key(t->j, "summary");
		npt_json_obj_open(t->j);
		npt_json_kuint(t->j, "pairs", pairs);
		npt_json_kuint(t->j, "intact", good);
		npt_json_kuint(t->j, "bounce", bounce);
		npt_json_obj_close(t->j);
	} else {
		printf("card->card bandwidth, GB/s (%s x %u per pair; rows "
		       "source, columns destination; * = host bounce)\n",
		       sz, iters);
		print_matrix(pr, n, sel);
		printf("data integrity: %u of %u pairs intact; %u pairs "
		       "through host bounce\n",
		       good, pairs, bounce);
	}
out:
	free(pr);
	npt_cards_close(&cs);
	return rc;
}
