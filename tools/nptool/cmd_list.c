// SPDX-License-Identifier: MIT
/*
 * list: what cards there are, one line each, with the processes holding
 * them; --query and --format pick the columns and print them as a table,
 * CSV or JSON (cols.h).
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
	r->nholders = npt_card_holders(p->bdf, p->iommu_group, r->holders,
				       NPT_MAX_HOLDERS);
	if (r->nholders < 0)
		r->nholders = 0;
	rc = npt_tele_sysfs(p->bdf, &tl);
	npt_row_use(r, rc ? NULL : &tl);
	snprintf(r->state, sizeof(r->state), "%s",
		 !rc	       ? tl.state :
		 rc == -EAGAIN ? "unavailable" :
		 p->driver[0]  ? "no-telemetry" :
				 "unbound");
}

enum {
	COL_INDEX,
	COL_NAME,
	COL_BDF,
	COL_ID,
	COL_VENDOR,
	COL_DEVICE,
	COL_FW,
	COL_SERIAL,
	COL_LINK,
	COL_LINK_GEN,
	COL_LINK_WIDTH,
	COL_MAX_LINK_GEN,
	COL_MAX_LINK_WIDTH,
	COL_DRIVER,
	COL_GROUP,
	COL_NUMA,
	COL_STATE,
	COL_HOLDER,
	COL_HOLDER_PID,
	COL_SRAM_USED,
	COL_FB_USED,
	COL_COUNT,
};

static const struct npt_col list_cols[COL_COUNT] = {
	[COL_INDEX] = {"index", "CARD", true},
	[COL_NAME] = {"name", "NAME", false},
	[COL_BDF] = {"bdf", "BDF", false},
	[COL_ID] = {"id", "ID", false},
	[COL_VENDOR] = {"vendor", "VENDOR", false},
	[COL_DEVICE] = {"device", "DEVICE", false},
	[COL_FW] = {"fw_version", "FW", false},
	[COL_SERIAL] = {"serial", "SERIAL", false},
	[COL_LINK] = {"link", "LINK", false},
	[COL_LINK_GEN] = {"link_gen", "GEN", true},
	[COL_LINK_WIDTH] = {"link_width", "WIDTH", true},
	[COL_MAX_LINK_GEN] = {"max_link_gen", "MAX-GEN", true},
	[COL_MAX_LINK_WIDTH] = {"max_link_width", "MAX-WIDTH", true},
	[COL_DRIVER] = {"driver", "DRIVER", false},
	[COL_GROUP] = {"iommu_group", "GROUP", true},
	[COL_NUMA] = {"numa_node", "NUMA", true},
	[COL_STATE] = {"state", "STATE", false},
	[COL_HOLDER] = {"holder", "HOLDER", false},
	[COL_HOLDER_PID] = {"holder_pid", "PID", true},
	[COL_SRAM_USED] = {"sram_used_bytes", "SRAM-USED", true},
	[COL_FB_USED] = {"fb_used_bytes", "FB-USED", true},
};

static const unsigned int default_cols[] = {
	COL_INDEX, COL_NAME,   COL_ID,	  COL_FW,    COL_SERIAL,
	COL_LINK,  COL_DRIVER, COL_GROUP, COL_STATE, COL_HOLDER,
};

static void set_int(char **v, int x)
{
	if (x >= 0)
		npt_cols_set(v, "%d", x);
}

static void set_str(char **v, const char *s)
{
	if (s[0])
		npt_cols_set(v, "%s", s);
}

static void row_vals(char **v, const struct npt_card_row *r)
{
	char buf[256];

	npt_cols_set(&v[COL_INDEX], "%u", r->index);
	npt_cols_set(&v[COL_NAME], "%s", r->name);
	set_str(&v[COL_BDF], r->bdf);
	npt_cols_set(&v[COL_ID], "%04x:%04x", r->vendor, r->device);
	npt_cols_set(&v[COL_VENDOR], "0x%04x", r->vendor);
	npt_cols_set(&v[COL_DEVICE], "0x%04x", r->device);
	set_str(&v[COL_FW], r->fw);
	set_str(&v[COL_SERIAL], r->serial);
	if (r->link_gen >= 0 && r->link_width >= 0) {
		npt_link_str(buf, sizeof(buf), r->link_gen, r->link_width);
		npt_cols_set(&v[COL_LINK], "%s", buf);
	}
	set_int(&v[COL_LINK_GEN], r->link_gen);
	set_int(&v[COL_LINK_WIDTH], r->link_width);
	set_int(&v[COL_MAX_LINK_GEN], r->max_link_gen);
	set_int(&v[COL_MAX_LINK_WIDTH], r->max_link_width);
	set_str(&v[COL_DRIVER], r->driver);
	set_int(&v[COL_GROUP], r->iommu_group);
	set_int(&v[COL_NUMA], r->numa_node);
	npt_cols_set(&v[COL_STATE], "%s", r->state);
	if (r->nholders > 0) {
		npt_cols_set(&v[COL_HOLDER], "%s",
			     npt_holders_str(buf, sizeof(buf), r->holders,
					     r->nholders));
		npt_cols_set(&v[COL_HOLDER_PID], "%d", r->holders[0].pid);
	}
	if (r->sram_used >= 0)
		npt_cols_set(&v[COL_SRAM_USED], "%lld",
			     (long long)r->sram_used);
	if (r->fb_used >= 0)
		npt_cols_set(&v[COL_FB_USED], "%lld", (long long)r->fb_used);
}

static int print_rows(const struct npt_cols_opts *o,
		      const struct npt_card_row *rows, size_t n)
{
	char **v = calloc(n * COL_COUNT + 1, sizeof(*v));
	int rc;

	if (!v)
		return NPT_EXIT_DEVERR;
	for (size_t i = 0; i < n; i++)
		row_vals(v + i * COL_COUNT, &rows[i]);
	rc = npt_cols_print(o, list_cols, COL_COUNT, v, n);
	npt_cols_free(v, n * COL_COUNT);
	return rc;
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
	struct npt_cols_opts o;
	size_t n = 0;
	int rc, prc;

	rc = npt_cols_parse(t, argc, argv, list_cols, COL_COUNT, default_cols,
			    sizeof(default_cols) / sizeof(default_cols[0]),
			    false, &o);
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
	} else if (n || o.fmt != NPT_FMT_TABLE) {
		prc = print_rows(&o, rows, n);
		if (prc)
			rc = prc;
	}
	free(rows);
	np_close(ctx);
	return rc;
}
