// SPDX-License-Identifier: MIT
/*
 * list: what cards there are, one line each.
 *
 * On real cards list reads only sysfs, so it works while another process
 * holds the cards through VFIO. Emulated cards exist only inside a libnp
 * context, so for emu: specs list opens them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dev.h"
#include "sysfs.h"

/* The driver's np/link ("Gen3 x8"), which also knows the link of a card
 * on a root bus, where the PCI core shows none; kept as is otherwise. */
static void driver_link(const char *bdf, int *gen, int *width)
{
	char s[32];
	int g, w;

	if (!npt_card_attr(bdf, "link", s, sizeof(s)) &&
	    sscanf(s, "Gen%d x%d", &g, &w) == 2 && g > 0 && w > 0) {
		*gen = g;
		*width = w;
	}
}

static void row_from_pci(struct npt_card_row *r, unsigned int idx,
			 const struct npt_pci *p)
{
	struct npt_tele tl;
	int rc;

	memset(r, 0, sizeof(*r));
	r->index = idx;
	snprintf(r->name, sizeof(r->name), "%s", p->bdf);
	snprintf(r->bdf, sizeof(r->bdf), "%s", p->bdf);
	r->vendor = p->vendor;
	r->device = p->device;
	r->subsys_vendor = p->subsys_vendor;
	r->subsys_device = p->subsys_device;
	r->revision = p->revision;
	npt_card_attr(p->bdf, "fw_version", r->fw, sizeof(r->fw));
	npt_card_attr(p->bdf, "serial", r->serial, sizeof(r->serial));
	r->link_gen = npt_speed_to_gen(p->link_speed);
	r->link_width = p->link_width;
	driver_link(p->bdf, &r->link_gen, &r->link_width);
	r->max_link_gen = npt_speed_to_gen(p->max_link_speed);
	r->max_link_width = p->max_link_width;
	snprintf(r->driver, sizeof(r->driver), "%s", p->driver);
	r->iommu_group = p->iommu_group;
	r->numa_node = p->numa_node;
	rc = npt_tele_sysfs(p->bdf, &tl);
	snprintf(r->state, sizeof(r->state), "%s",
		 !rc	       ? tl.state :
		 rc == -EAGAIN ? "unavailable" :
		 p->driver[0]  ? "no-telemetry" :
				 "unbound");
}

static void print_table(const struct npt_card_row *rows, size_t n)
{
	struct npt_table *tb = npt_table_new(9);
	char link[24];

	npt_table_cell(tb, "CARD");
	npt_table_cell(tb, "NAME");
	npt_table_cell(tb, "ID");
	npt_table_cell(tb, "FW");
	npt_table_cell(tb, "SERIAL");
	npt_table_cell(tb, "LINK");
	npt_table_cell(tb, "DRIVER");
	npt_table_cell(tb, "GROUP");
	npt_table_cell(tb, "STATE");
	for (size_t i = 0; i < n; i++) {
		const struct npt_card_row *r = &rows[i];

		npt_link_str(link, sizeof(link), r->link_gen, r->link_width);
		npt_table_cell(tb, "%u", r->index);
		npt_table_cell(tb, "%s", r->name);
		npt_table_cell(tb, "%04x:%04x", r->vendor, r->device);
		npt_table_cell(tb, "%s", npt_or_dash(r->fw));
		npt_table_cell(tb, "%s", npt_or_dash(r->serial));
		npt_table_cell(tb, "%s", link);
		npt_table_cell(tb, "%s", npt_or_dash(r->driver));
		if (r->iommu_group < 0)
			npt_table_cell(tb, "-");
		else
			npt_table_cell(tb, "%d", r->iommu_group);
		npt_table_cell(tb, "%s", r->state);
	}
	npt_table_print(tb);
	npt_table_free(tb);
}

/* Rows of the cards sysfs shows that the spec selects. */
static int rows_from_sysfs(struct npt *t, struct npt_card_row **out, size_t *n)
{
	struct npt_pci *pci;
	struct npt_card_row *rows;
	size_t cnt;
	int rc = npt_sysfs_cards(t, &pci, &cnt);

	if (rc)
		return rc;
	rows = calloc(cnt, sizeof(*rows));
	if (!rows) {
		free(pci);
		return NPT_EXIT_DEVERR;
	}
	for (size_t i = 0; i < cnt; i++)
		row_from_pci(&rows[i], (unsigned int)i, &pci[i]);
	free(pci);
	*out = rows;
	*n = cnt;
	return NPT_EXIT_OK;
}

int npt_cmd_list(struct npt *t, int argc, char **argv)
{
	struct np_ctx *ctx = NULL;
	struct npt_card_row *rows = NULL;
	size_t n = 0;
	int rc = npt_no_args(t, argc, argv);

	if (rc)
		return rc;
	if (npt_spec_is_emu(t->spec)) {
		rc = npt_open(t, NULL, &ctx);
		if (!rc)
			rc = npt_card_rows(t, ctx, &rows, &n);
	} else {
		rc = rows_from_sysfs(t, &rows, &n);
	}
	if (t->j) {
		npt_json_key(t->j, "cards");
		npt_json_arr_open(t->j);
		for (size_t i = 0; i < n; i++) {
			npt_json_obj_open(t->j);
			npt_card_row_json(t->j, &rows[i]);
			npt_json_obj_close(t->j);
		}
		npt_json_arr_close(t->j);
	} else if (n) {
		print_table(rows, n);
	}
	free(rows);
	np_close(ctx);
	return rc;
}
