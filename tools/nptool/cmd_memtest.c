// SPDX-License-Identifier: MIT
/*
 * memtest: pattern tests of each card's SRAM and frame buffer, through
 * the card's own DMA engines (the path every tensor takes).
 *
 *   walking-ones        each of the 64 data bits alone, alternating with
 *                       its complement, over a 64 KiB window: stuck and
 *                       coupled data lines
 *   address-in-address  every 64-bit word holds its own card address:
 *                       address line faults, aliasing
 *   moving-inversions   memtest86's test: fill P; ascending, check P and
 *                       write ~P; descending, check ~P and write P
 *
 * Levels: quick = walking ones + address-in-address over at most 16 MiB
 * of each memory; medium = all three over everything; long = medium with
 * four inversion patterns and the complemented address pass.
 * Failing words are reported with their card address, the value written
 * and the value read.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "dev.h"
#include "np_abi.h"

#define CHUNK (4u << 20)
#define WALK_WINDOW (64u << 10)
#define QUICK_MAX (16ull << 20)
#define MAX_REPORTED 16

_Static_assert(NPT_MEMTEST_BUF >= 2 * CHUNK, "room for both halves");

enum level { QUICK, MEDIUM, LONG };

enum pat_kind { PAT_CONST, PAT_ADDR, PAT_WALK };

struct pattern {
	enum pat_kind kind;
	uint64_t val; /* the constant, the address xor mask, the walking bit */
};

struct failure {
	uint64_t addr, expected, actual;
};

struct mt {
	struct np_card *card;
	struct np_buf *buf;
	uint64_t *w, *r; /* write and read halves of buf */
	uint64_t base, size;
	struct npt_progress *pg;
	uint64_t done, total; /* bytes moved, for the progress bar */
	/* result of the current test */
	uint64_t nbad;
	struct failure bad[MAX_REPORTED];
	int err; /* -errno of a failed transfer */
	char err_what[96];
};

static void fill(uint64_t *w, uint64_t addr, size_t nwords,
		 const struct pattern *p)
{
	for (size_t i = 0; i < nwords; i++) {
		switch (p->kind) {
		case PAT_CONST:
			w[i] = p->val;
			break;
		case PAT_ADDR:
			w[i] = (addr + i * 8) ^ p->val;
			break;
		case PAT_WALK:
			w[i] = i & 1 ? ~(1ull << p->val) : 1ull << p->val;
			break;
		}
	}
}

static int xfer(struct mt *m, bool write, uint64_t off, size_t len)
{
	int rc;

	if (m->err)
		return m->err;
	rc = write ? npt_h2c(m->card, m->buf, 0, m->base + off, len) :
		     npt_c2h(m->card, m->buf, CHUNK, m->base + off, len);
	if (rc) {
		m->err = rc;
		snprintf(m->err_what, sizeof(m->err_what),
			 "%s of %zu bytes at card address %#llx",
			 write ? "write" : "read", len,
			 (unsigned long long)(m->base + off));
	}
	m->done += len;
	npt_progress_update(m->pg, m->done);
	return rc;
}

static int write_pat(struct mt *m, uint64_t off, size_t len,
		     const struct pattern *p)
{
	fill(m->w, m->base + off, len / 8, p);
	return xfer(m, true, off, len);
}

static int check_pat(struct mt *m, uint64_t off, size_t len,
		     const struct pattern *p)
{
	size_t n = len / 8;
	int rc = xfer(m, false, off, len);

	if (rc)
		return rc;
	fill(m->w, m->base + off, n, p);
	if (!memcmp(m->w, m->r, len))
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (m->w[i] == m->r[i])
			continue;
		if (m->nbad < MAX_REPORTED)
			m->bad[m->nbad] = (struct failure){
				.addr = m->base + off + i * 8,
				.expected = m->w[i],
				.actual = m->r[i],
			};
		m->nbad++;
	}
	return 0;
}

static size_t chunk_len(const struct mt *m, uint64_t off)
{
	return m->size - off < CHUNK ? (size_t)(m->size - off) : CHUNK;
}

static void walking_ones(struct mt *m)
{
	size_t len = m->size < WALK_WINDOW ? (size_t)m->size : WALK_WINDOW;

	for (unsigned int b = 0; b < 64 && !m->err; b++) {
		struct pattern p = {PAT_WALK, b};

		write_pat(m, 0, len, &p);
		check_pat(m, 0, len, &p);
	}
}

static void address_in_address(struct mt *m, uint64_t mask)
{
	struct pattern p = {PAT_ADDR, mask};

	for (uint64_t off = 0; off < m->size && !m->err; off += CHUNK)
		write_pat(m, off, chunk_len(m, off), &p);
	for (uint64_t off = 0; off < m->size && !m->err; off += CHUNK)
		check_pat(m, off, chunk_len(m, off), &p);
}

static void moving_inversions(struct mt *m, uint64_t val)
{
	struct pattern p = {PAT_CONST, val}, np = {PAT_CONST, ~val};
	uint64_t last = (m->size - 1) / CHUNK * CHUNK;

	for (uint64_t off = 0; off < m->size && !m->err; off += CHUNK)
		write_pat(m, off, chunk_len(m, off), &p);
	for (uint64_t off = 0; off < m->size && !m->err; off += CHUNK) {
		check_pat(m, off, chunk_len(m, off), &p);
		write_pat(m, off, chunk_len(m, off), &np);
	}
	for (uint64_t off = last + CHUNK; off > 0 && !m->err;) {
		off -= CHUNK;
		check_pat(m, off, chunk_len(m, off), &np);
		write_pat(m, off, chunk_len(m, off), &p);
	}
}

static const uint64_t inv_patterns[] = {
	0,
	0x5555555555555555ull,
	0x3333333333333333ull,
	0x0f0f0f0f0f0f0f0full,
};

struct test {
	const char *name;
	void (*run)(struct mt *m, uint64_t arg);
	uint64_t arg;
};

static void run_walk(struct mt *m, uint64_t arg)
{
	walking_ones(m);
}

/* The tests of a level, in order; returns how many. */
static unsigned int level_tests(enum level lv, struct test *out)
{
	unsigned int n = 0;

	out[n++] = (struct test){"walking-ones", run_walk, 0};
	out[n++] = (struct test){"address-in-address", address_in_address, 0};
	if (lv == LONG)
		out[n++] = (struct test){"address-in-address-inverted",
					 address_in_address, ~0ull};
	if (lv == QUICK)
		return n;
	for (unsigned int i = 0; i < (lv == LONG ? 4u : 1u); i++)
		out[n++] = (struct test){"moving-inversions", moving_inversions,
					 inv_patterns[i]};
	return n;
}

/* Bytes a test moves over a region of size bytes, for the progress bar. */
static uint64_t test_bytes(const struct test *ts, uint64_t size)
{
	if (ts->run == run_walk)
		return 64 * 2 * (size < WALK_WINDOW ? size : WALK_WINDOW);
	if (ts->run == address_in_address)
		return 2 * size;
	return 5 * size;
}

/* JSON, or for text the failure lines into out */
static void report(struct npt *t, const struct mt *m, const struct test *ts,
		   unsigned int card, const char *mem, FILE *out)
{
	bool pass = !m->nbad && !m->err;

	if (t->j) {
		npt_json_obj_open(t->j);
		npt_json_kstr(t->j, "test", ts->name);
		if (ts->run == moving_inversions) {
			npt_json_key(t->j, "pattern");
			npt_json_strf(t->j, "0x%016llx",
				      (unsigned long long)ts->arg);
		}
		npt_json_kstr(t->j, "result", pass ? "pass" : "fail");
		npt_json_kuint(t->j, "bad_words", m->nbad);
		if (m->err)
			npt_json_kstr(t->j, "error", m->err_what);
		npt_json_key(t->j, "failures");
		npt_json_arr_open(t->j);
		for (uint64_t i = 0; i < m->nbad && i < MAX_REPORTED; i++) {
			npt_json_obj_open(t->j);
			npt_json_key(t->j, "address");
			npt_json_strf(t->j, "0x%llx",
				      (unsigned long long)m->bad[i].addr);
			npt_json_key(t->j, "expected");
			npt_json_strf(t->j, "0x%016llx",
				      (unsigned long long)m->bad[i].expected);
			npt_json_key(t->j, "actual");
			npt_json_strf(t->j, "0x%016llx",
				      (unsigned long long)m->bad[i].actual);
			npt_json_obj_close(t->j);
		}
		npt_json_arr_close(t->j);
		npt_json_obj_close(t->j);
		return;
	}
	if (pass)
		return;
	if (m->err) {
		npt_err(t, "card %u %s %s: %s failed: %s", card, mem, ts->name,
			m->err_what, strerror(-m->err));
		return;
	}
	if (!out)
		out = stdout;
	fprintf(out, "  FAIL %s: %llu bad words\n", ts->name,
		(unsigned long long)m->nbad);
	for (uint64_t i = 0; i < m->nbad && i < MAX_REPORTED; i++)
		fprintf(out,
			"    card address 0x%09llx wrote 0x%016llx read "
			"0x%016llx (bits 0x%016llx)\n",
			(unsigned long long)m->bad[i].addr,
			(unsigned long long)m->bad[i].expected,
			(unsigned long long)m->bad[i].actual,
			(unsigned long long)(m->bad[i].expected ^
					     m->bad[i].actual));
}

int npt_memtest_region(struct np_card *c, struct np_buf *b, uint64_t base,
		       uint64_t size, unsigned int level, uint64_t *nbad,
		       uint64_t *first_bad)
{
	struct npt_progress pg = {0};
	struct test tests[8];
	unsigned int ntests = level_tests((enum level)level, tests);
	struct mt m = {
		.card = c,
		.buf = b,
		.w = np_buf_ptr(b),
		.r = (uint64_t *)np_buf_ptr(b) + CHUNK / 8,
		.base = base,
		.size = size,
		.pg = &pg,
	};

	*nbad = 0;
	for (unsigned int k = 0; k < ntests && !m.err; k++) {
		m.nbad = 0;
		tests[k].run(&m, tests[k].arg);
		if (m.nbad && !*nbad)
			*first_bad = m.bad[0].addr;
		*nbad += m.nbad;
	}
	if (m.err)
		return m.err;
	return *nbad ? 1 : 0;
}

static const char *const level_name[] = {"quick", "medium", "long"};

/* One memtest command: its options, the cards and the running result. */
struct memtest {
	struct npt *t;
	bool want_sram, want_fb;
	uint64_t size; /* --size, 0: all of each memory */
	enum level lv;
	struct test tests[8];
	unsigned int ntests;
	struct npt_cards cs;
	struct npt_progress pg;
	struct mt m;
	int rc;
};

static int memtest_parse(struct memtest *r, int argc, char **argv)
{
	static const struct option opts[] = {
		{"sram", no_argument, NULL, 's'},
		{"fb", no_argument, NULL, 'f'},
		{"size", required_argument, NULL, 'z'},
		{"level", required_argument, NULL, 'l'},
		{0},
	};
	struct npt *t = r->t;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			r->want_sram = true;
			break;
		case 'f':
			r->want_fb = true;
			break;
		case 'z':
			if (npt_parse_size(optarg, &r->size) || !r->size ||
			    r->size % 8)
				return npt_usage(t,
						 "memtest: size '%s' is not "
						 "a positive multiple of 8 "
						 "bytes",
						 optarg);
			break;
		case 'l':
			for (r->lv = QUICK; r->lv <= LONG; r->lv++)
				if (!strcmp(optarg, level_name[r->lv]))
					break;
			if (r->lv > LONG)
				return npt_usage(t,
						 "memtest: level '%s' is "
						 "not quick, medium or long",
						 optarg);
			break;
		default:
			return npt_usage(t, "memtest: bad option");
		}
	}
	if (!r->want_sram && !r->want_fb)
		r->want_sram = r->want_fb = true;
	if (!r->size && r->lv == QUICK)
		r->size = QUICK_MAX;
	r->ntests = level_tests(r->lv, r->tests);
	return NPT_EXIT_OK;
}

/* Total bytes the tests move, for the progress bar. */
static uint64_t memtest_total(const struct memtest *r)
{
	uint64_t size = r->size, total = 0;

	for (unsigned int i = 0; i < r->cs.n; i++) {
		struct np_card_info in;

		if (!r->cs.sel[i])
			continue;
		np_card_info(np_ctx_card(r->cs.ctx, i), &in);
		for (unsigned int k = 0; k < r->ntests; k++) {
			uint64_t s = size && size < in.sram_size ? size :
								   in.sram_size;
			uint64_t f =
				size && size < in.fb_size ? size : in.fb_size;

			total += r->want_sram ? test_bytes(&r->tests[k], s) : 0;
			total += r->want_fb ? test_bytes(&r->tests[k], f) : 0;
		}
	}
	return total;
}

/* Every test on one memory (mem 0 SRAM, 1 frame buffer) of card i. */
static void memtest_memory(struct memtest *r, unsigned int i,
			   const struct np_card_info *in, unsigned int mem)
{
	struct npt *t = r->t;
	struct mt *m = &r->m;
	uint64_t full = mem ? in->fb_size : in->sram_size;
	const char *mname = mem ? "fb" : "sram";
	char sz[32], line[512], *details = NULL;
	size_t dlen = 0, off = 0;
	FILE *df = NULL;
	bool pass = true;

	m->base = mem ? NP_CA_FB_BASE : NP_CA_SRAM_BASE;
	m->size = r->size && r->size < full ? r->size : full;
	npt_fmt_size(sz, sizeof(sz), m->size);
	if (t->j) {
		npt_json_obj_open(t->j);
		npt_json_kstr(t->j, "memory", mname);
		npt_json_key(t->j, "base");
		npt_json_strf(t->j, "0x%llx", (unsigned long long)m->base);
		npt_json_kuint(t->j, "bytes", m->size);
		npt_json_key(t->j, "tests");
		npt_json_arr_open(t->j);
	} else {
		df = open_memstream(&details, &dlen);
		off = (size_t)snprintf(line, sizeof(line),
				       "card %u (%s) %s %s:", i, in->name,
				       mname, sz);
	}
	for (unsigned int k = 0; k < r->ntests; k++) {
		m->nbad = 0;
		m->err = 0;
		r->tests[k].run(m, r->tests[k].arg);
		pass &= !m->nbad && !m->err;
		if (m->err)
			r->rc = NPT_EXIT_DEVERR;
		else if (m->nbad && !r->rc)
			r->rc = NPT_EXIT_FAIL;
		if (!t->j && off < sizeof(line))
			off += (size_t)snprintf(
				line + off, sizeof(line) - off, "%s %s %s",
				k ? "," : "", r->tests[k].name,
				m->nbad || m->err ? "FAIL" : "ok");
		report(t, m, &r->tests[k], i, mname, df);
	}
	if (t->j) {
		npt_json_arr_close(t->j);
		npt_json_kstr(t->j, "result", pass ? "pass" : "fail");
		npt_json_obj_close(t->j);
	} else {
		if (df)
			fclose(df);
		npt_progress_clear();
		printf("%s: %s\n%s", line, pass ? "pass" : "FAIL",
		       details ? details : "");
		fflush(stdout);
		free(details);
	}
}

static void memtest_card(struct memtest *r, unsigned int i)
{
	struct npt *t = r->t;
	struct np_card_info in;

	r->m.card = np_ctx_card(r->cs.ctx, i);
	np_card_info(r->m.card, &in);
	if (t->j) {
		npt_json_obj_open(t->j);
		npt_json_kuint(t->j, "index", i);
		npt_json_kstr(t->j, "name", in.name);
		npt_json_key(t->j, "memories");
		npt_json_arr_open(t->j);
	}
	for (unsigned int mem = 0; mem < 2; mem++)
		if (mem ? r->want_fb : r->want_sram)
			memtest_memory(r, i, &in, mem);
	if (t->j) {
		npt_json_arr_close(t->j);
		npt_json_obj_close(t->j);
	}
}

int npt_cmd_memtest(struct npt *t, int argc, char **argv)
{
	struct memtest r = {.t = t, .lv = MEDIUM};
	int rc = memtest_parse(&r, argc, argv);

	if (rc)
		return rc;
	rc = npt_cards_open(t, NULL, argc - optind, argv + optind,
			    NPT_MEMTEST_BUF, &r.cs);
	if (rc)
		goto out;
	r.m.buf = r.cs.buf;
	r.m.w = np_buf_ptr(r.m.buf);
	r.m.r = r.m.w + CHUNK / 8;
	if (t->j) {
		npt_json_kstr(t->j, "level", level_name[r.lv]);
		npt_json_key(t->j, "cards");
		npt_json_arr_open(t->j);
	}
	npt_progress_begin(t, &r.pg, "memtest", memtest_total(&r));
	r.m.pg = &r.pg;
	for (unsigned int i = 0; i < r.cs.n; i++)
		if (r.cs.sel[i])
			memtest_card(&r, i);
	npt_progress_end(&r.pg);
	if (t->j)
		npt_json_arr_close(t->j);
	rc = r.rc;
out:
	npt_cards_close(&r.cs);
	return rc;
}
