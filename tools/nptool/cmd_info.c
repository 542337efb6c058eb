// SPDX-License-Identifier: MIT
/*
 * info: everything known about each card. It opens the cards in every
 * case: it reports what only the card's registers know.
 */
#include <stdio.h>
#include <stdlib.h>

#include "dev.h"
#include "np_abi.h"

static void caps_json(struct npt_json *j, uint32_t caps)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} c[] = {{NP_CAPS_P2P, "p2p"},
		 {NP_CAPS_COMPUTE, "compute"},
		 {NP_CAPS_MAILBOX, "mailbox"},
		 {NP_CAPS_WRITEBACK, "writeback"}};

	npt_json_arr_open(j);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		if (caps & c[i].bit)
			npt_json_str(j, c[i].name);
	npt_json_arr_close(j);
}

int npt_cmd_info(struct npt *t, int argc, char **argv)
{
	struct np_ctx *ctx;
	struct npt_card_row *rows;
	size_t n;
	int rc = npt_no_args(t, argc, argv);

	if (rc)
		return rc;
	rc = npt_open(t, NULL, &ctx);
	if (rc)
		return rc;
	rc = npt_card_rows(t, ctx, &rows, &n);
	if (rc) {
		np_close(ctx);
		return rc;
	}
	if (t->j) {
		npt_json_kstr(t->j, "backend", np_ctx_backend(ctx));
		npt_json_key(t->j, "cards");
		npt_json_arr_open(t->j);
	}
	for (size_t i = 0; i < n; i++) {
		struct np_card *c = np_ctx_card(ctx, (unsigned int)i);
		unsigned int direct = 0, bounce = 0;
		struct np_card_info in;
		char sram[32], fb[32], link[24];

		np_card_info(c, &in);
		for (size_t k = 0; k < n; k++) {
			if (k == i)
				continue;
			if (np_card_p2p_mode(
				    c, np_ctx_card(ctx, (unsigned int)k)) ==
			    NP_P2P_DIRECT)
				direct++;
			else
				bounce++;
		}
		if (t->j) {
			npt_json_obj_open(t->j);
			npt_card_row_json(t->j, &rows[i]);
			npt_json_key(t->j, "abi");
			npt_json_strf(t->j, "%u.%u", in.abi_major,
				      in.abi_minor);
			npt_json_key(t->j, "caps");
			caps_json(t->j, in.caps);
			npt_json_kuint(t->j, "sram_bytes", in.sram_size);
			npt_json_kuint(t->j, "fb_bytes", in.fb_size);
			npt_json_kuint(t->j, "cores_x", in.cores_x);
			npt_json_kuint(t->j, "cores_y", in.cores_y);
			npt_json_kuint(t->j, "dma_engines", in.dma_engines);
			npt_json_kuint(t->j, "compute_queues",
				       in.compute_queues);
			npt_json_kuint(t->j, "events", in.events);
			npt_json_key(t->j, "p2p");
			npt_json_obj_open(t->j);
			npt_json_kuint(t->j, "direct_peers", direct);
			npt_json_kuint(t->j, "bounce_peers", bounce);
			npt_json_obj_close(t->j);
			npt_json_obj_close(t->j);
			continue;
		}
		npt_link_str(link, sizeof(link), rows[i].link_gen,
			     rows[i].link_width);
		printf("card %zu: %s\n", i, in.name);
		printf("  ids          %04x:%04x subsystem %04x:%04x rev "
		       "%02x\n",
		       in.vendor_id, in.device_id, in.subsys_vendor_id,
		       in.subsys_id, in.revision);
		printf("  firmware     %s (ABI %u.%u)\n", rows[i].fw,
		       in.abi_major, in.abi_minor);
		printf("  serial       %s\n", rows[i].serial);
		printf("  state        %s\n", rows[i].state);
		printf("  link         %s\n", link);
		printf("  driver       %s\n", npt_or_dash(rows[i].driver));
		if (in.iommu_group >= 0)
			printf("  iommu group  %d\n", in.iommu_group);
		else
			printf("  iommu group  - (emulated)\n");
		printf("  cores        %ux%u\n", in.cores_x, in.cores_y);
		printf("  sram         %s\n",
		       npt_fmt_size(sram, sizeof(sram), in.sram_size));
		printf("  frame buffer %s\n",
		       npt_fmt_size(fb, sizeof(fb), in.fb_size));
		printf("  engines      %u DMA, %u compute, %u events\n",
		       in.dma_engines, in.compute_queues, in.events);
		printf("  p2p          direct to %u peers, host bounce to %u\n",
		       direct, bounce);
	}
	if (t->j)
		npt_json_arr_close(t->j);
	free(rows);
	np_close(ctx);
	return NPT_EXIT_OK;
}
