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

/* What info reports of one card beyond its list row. */
struct card_info {
	struct np_card_info in;
	unsigned int direct, bounce; /* peers reached directly / by bounce */
};

static void card_info(struct np_ctx *ctx, size_t i, size_t n,
		      struct card_info *ci)
{
	struct np_card *c = np_ctx_card(ctx, (unsigned int)i);

	ci->direct = ci->bounce = 0;
	np_card_info(c, &ci->in);
	for (size_t k = 0; k < n; k++) {
		if (k == i)
			continue;
		if (np_card_p2p_mode(c, np_ctx_card(ctx, (unsigned int)k)) ==
		    NP_P2P_DIRECT)
			ci->direct++;
		else
			ci->bounce++;
	}
}

static void card_json(struct npt_json *j, const struct npt_card_row *row,
		      const struct card_info *ci)
{
	const struct np_card_info *in = &ci->in;

	npt_json_obj_open(j);
	npt_card_row_json(j, row);
	npt_json_key(j, "abi");
	npt_json_strf(j, "%u.%u", in->abi_major, in->abi_minor);
	npt_json_key(j, "caps");
	caps_json(j, in->caps);
	npt_json_kuint(j, "sram_bytes", in->sram_size);
	npt_json_kuint(j, "fb_bytes", in->fb_size);
	npt_json_kuint(j, "cores_x", in->cores_x);
	npt_json_kuint(j, "cores_y", in->cores_y);
	npt_json_kuint(j, "dma_engines", in->dma_engines);
	npt_json_kuint(j, "compute_queues", in->compute_queues);
	npt_json_kuint(j, "events", in->events);
	npt_json_key(j, "p2p");
	npt_json_obj_open(j);
	npt_json_kuint(j, "direct_peers", ci->direct);
	npt_json_kuint(j, "bounce_peers", ci->bounce);
	npt_json_obj_close(j);
	npt_json_obj_close(j);
}

static void card_text(size_t i, const struct npt_card_row *row,
		      const struct card_info *ci)
{
	const struct np_card_info *in = &ci->in;
	char sram[32], fb[32], link[24];

	npt_link_str(link, sizeof(link), row->link_gen, row->link_width);
	printf("card %zu: %s\n", i, in->name);
	printf("  ids          %04x:%04x subsystem %04x:%04x rev "
	       "%02x\n",
	       in->vendor_id, in->device_id, in->subsys_vendor_id,
	       in->subsys_id, in->revision);
	printf("  firmware     %s (ABI %u.%u)\n", row->fw, in->abi_major,
	       in->abi_minor);
	printf("  serial       %s\n", row->serial);
	printf("  state        %s\n", row->state);
	printf("  link         %s\n", link);
	printf("  driver       %s\n", npt_or_dash(row->driver));
	if (in->iommu_group >= 0)
		printf("  iommu group  %d\n", in->iommu_group);
	else
		printf("  iommu group  - (emulated)\n");
	printf("  cores        %ux%u\n", in->cores_x, in->cores_y);
	printf("  sram         %s\n",
	       npt_fmt_size(sram, sizeof(sram), in->sram_size));
	printf("  frame buffer %s\n",
	       npt_fmt_size(fb, sizeof(fb), in->fb_size));
	printf("  engines      %u DMA, %u compute, %u events\n",
	       in->dma_engines, in->compute_queues, in->events);
	printf("  p2p          direct to %u peers, host bounce to %u\n",
	       ci->direct, ci->bounce);
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
		struct card_info ci;

		card_info(ctx, i, n, &ci);
		if (t->j)
			card_json(t->j, &rows[i], &ci);
		else
			card_text(i, &rows[i], &ci);
	}
	if (t->j)
		npt_json_arr_close(t->j);
	free(rows);
	np_close(ctx);
	return NPT_EXIT_OK;
}
