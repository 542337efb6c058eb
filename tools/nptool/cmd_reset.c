// SPDX-License-Identifier: MIT
/*
 * reset: reset cards and prove that each came back healthy: the ID
 * register reads the np magic and our ABI major, the card is ready and not
 * fatal, the error counters were cleared, and data written by DMA to SRAM
 * and to the frame buffer reads back intact. Exit 0 only if all of that
 * holds for every card.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "dev.h"
#include "np_abi.h"

#define VERIFY_LEN (64u * 1024u)

/* Checks after the reset; fills why on failure. */
static bool healthy(struct np_card *c, struct np_buf *b, char *why, size_t len)
{
	uint32_t id, st, dma_err, ue;
	uint64_t bad;
	int rc;

	rc = np_card_reg_read(c, NP_REG_ID, &id);
	if (!rc)
		rc = np_card_reg_read(c, NP_REG_STATUS, &st);
	if (!rc)
		rc = np_card_reg_read(c, NP_REG_DMA_ERRORS, &dma_err);
	if (!rc)
		rc = np_card_reg_read(c, NP_REG_SRAM_UE, &ue);
	if (rc) {
		snprintf(why, len, "register read failed: %s", strerror(-rc));
		return false;
	}
	if (NP_ID_GET_MAGIC(id) != NP_ID_MAGIC ||
	    NP_ID_GET_MAJOR(id) != NP_ABI_MAJOR) {
		snprintf(why, len, "ID register reads %#x, expected %#x", id,
			 NP_ID_VALUE);
		return false;
	}
	if ((st & (NP_STATUS_READY | NP_STATUS_FATAL | NP_STATUS_RESETTING)) !=
	    NP_STATUS_READY) {
		snprintf(why, len, "card is %s (status %#x) after the reset",
			 npt_state_name(st), st);
		return false;
	}
	if (dma_err || ue) {
		snprintf(why, len,
			 "error counters not cleared: %u DMA "
			 "errors, %u uncorrected SRAM errors",
			 dma_err, ue);
		return false;
	}
	for (unsigned int m = 0; m < 2; m++) {
		uint64_t ca = m ? NP_CA_FB_BASE : NP_CA_SRAM_BASE;

		rc = npt_roundtrip(c, b, ca, VERIFY_LEN, ca ^ id, &bad);
		if (rc) {
			if (rc > 0)
				snprintf(why, len,
					 "%s data wrong at card "
					 "address %#llx",
					 m ? "frame buffer" : "SRAM",
					 (unsigned long long)bad);
			else
				snprintf(why, len, "%s DMA failed: %s",
					 m ? "frame buffer" : "SRAM",
					 strerror(-rc));
			return false;
		}
	}
	return true;
}

int npt_reset_verify(struct np_card *c, struct np_buf *b, double *ms, char *why,
		     size_t len)
{
	double t0 = npt_now();
	int rc = np_card_reset(c);

	*ms = (npt_now() - t0) * 1e3;
	if (rc) {
		snprintf(why, len, "reset failed: %s", strerror(-rc));
		return rc;
	}
	return healthy(c, b, why, len) ? 0 : 1;
}

int npt_cmd_reset(struct npt *t, int argc, char **argv)
{
	static const struct option opts[] = {
		{"all", no_argument, NULL, 'a'},
		{0},
	};
	struct npt_progress pg;
	struct npt_cards cs;
	unsigned int done = 0;
	bool all = false;
	int c, rc;

	while ((c = getopt_long(argc, argv, "a", opts, NULL)) != -1) {
		if (c != 'a')
			return npt_usage(t, "reset: bad option");
		all = true;
	}
	if (all == (optind < argc))
		return npt_usage(t, "reset: name the cards to reset, or "
				    "--all");
	rc = npt_cards_open(t, NULL, argc - optind, argv + optind,
			    2 * VERIFY_LEN, &cs);
	if (rc)
		goto out;
	if (t->j) {
		npt_json_key(t->j, "cards");
		npt_json_arr_open(t->j);
	}
	npt_progress_begin(t, &pg, "reset", cs.nsel);
	for (unsigned int i = 0; i < cs.n; i++) {
		struct np_card *card = np_ctx_card(cs.ctx, i);
		char why[256] = "";
		bool ok;
		double ms;
		int err;

		if (!cs.sel[i])
			continue;
		err = npt_reset_verify(card, cs.buf, &ms, why, sizeof(why));
		ok = !err;
		if (err < 0)
			rc = NPT_EXIT_DEVERR;
		else if (err && !rc)
			rc = NPT_EXIT_FAIL;
		if (!ok)
			npt_err(t, "card %u (%s): %s", i, np_card_name(card),
				why);
		npt_progress_update(&pg, ++done);
		if (t->j) {
			npt_json_obj_open(t->j);
			npt_json_kuint(t->j, "index", i);
			npt_json_kstr(t->j, "name", np_card_name(card));
			npt_json_kbool(t->j, "healthy", ok);
			npt_json_kdouble(t->j, "reset_ms", ms);
			if (ok)
				npt_json_knull(t->j, "reason");
			else
				npt_json_kstr(t->j, "reason", why);
			npt_json_obj_close(t->j);
		} else if (ok) {
			npt_progress_clear();
			printf("card %u (%s): reset in %.1f ms, healthy: ID, "
			       "ready, counters clear, SRAM and FB DMA "
			       "intact\n",
			       i, np_card_name(card), ms);
		}
	}
	npt_progress_end(&pg);
	if (t->j)
		npt_json_arr_close(t->j);
out:
	npt_cards_close(&cs);
	return rc;
}
