// SPDX-License-Identifier: MIT
/*
 * list and info: what cards there are.
 *
 * On real cards list reads only sysfs, so it works while another process
 * holds the cards through VFIO. Emulated cards exist only inside a libnp
 * context, so for emu: specs both commands open them. info opens the
 * cards in every case: it reports what only the card's registers know.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dev.h"
#include "np_abi.h"
#include "sysfs.h"

/* One card as list and info show it; unknown fields are empty / -1. */
struct card_row {
	unsigned int index;
	char name[32];
	char bdf[NPT_BDF_LEN];
	unsigned int vendor, device, subsys_vendor, subsys_device, revision;
	char fw[24];
	char serial[40];
	int link_gen, link_width, max_link_gen, max_link_width;
	char driver[64];
	int iommu_group;
	int numa_node;
	char state[24];
};

/* "8.0 GT/s PCIe" -> 3 */
static int speed_to_gen(const char *s)
{
	static const struct {
		double gts;
		int gen;
	} g[] = {{2.5, 1}, {5, 2}, {8, 3}, {16, 4}, {32, 5}, {64, 6}};
	double v = strtod(s, NULL);

	for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++)
		if (v == g[i].gts)
			return g[i].gen;
	return -1;
}

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

static void row_from_pci(struct card_row *r, unsigned int idx,
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
	r->link_gen = speed_to_gen(p->link_speed);
	r->link_width = p->link_width;
	driver_link(p->bdf, &r->link_gen, &r->link_width);
	r->max_link_gen = speed_to_gen(p->max_link_speed);
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

static int row_from_card(struct card_row *r, struct np_card *c)
{
	struct np_card_info in;
	struct npt_pci p;
	uint32_t st;
	int rc;

	memset(r, 0, sizeof(*r));
	rc = np_card_info(c, &in);
	if (!rc)
		rc = np_card_reg_read(c, NP_REG_STATUS, &st);
	if (rc)
		return rc;
	r->index = in.index;
	snprintf(r->name, sizeof(r->name), "%s", in.name);
	r->vendor = in.vendor_id;
	r->device = in.device_id;
	r->subsys_vendor = in.subsys_vendor_id;
	r->subsys_device = in.subsys_id;
	r->revision = in.revision;
	npt_fw_str(r->fw, sizeof(r->fw), in.fw_version);
	snprintf(r->serial, sizeof(r->serial), "%016llx",
		 (unsigned long long)in.serial);
	r->link_gen = (int)in.link_gen;
	r->link_width = (int)in.link_width;
	r->max_link_gen = -1;
	r->max_link_width = -1;
	r->iommu_group = in.iommu_group;
	r->numa_node = -1;
	snprintf(r->state, sizeof(r->state), "%s", npt_state_name(st));
	if (!npt_pci_read(in.name, &p)) {
		snprintf(r->bdf, sizeof(r->bdf), "%s", p.bdf);
		snprintf(r->driver, sizeof(r->driver), "%s", p.driver);
		r->numa_node = p.numa_node;
		r->max_link_gen = speed_to_gen(p.max_link_speed);
		r->max_link_width = p.max_link_width;
	}
	return 0;
}

static void json_int_or_null(struct npt_json *j, const char *k, int v)
{
	if (v < 0)
		npt_json_knull(j, k);
	else
		npt_json_kint(j, k, v);
}

static void json_str_or_null(struct npt_json *j, const char *k, const char *v)
{
	if (v[0])
		npt_json_kstr(j, k, v);
	else
		npt_json_knull(j, k);
}

/* The members of a card object shared by list and info. */
static void row_json(struct npt_json *j, const struct card_row *r)
{
	npt_json_kuint(j, "index", r->index);
	npt_json_kstr(j, "name", r->name);
	json_str_or_null(j, "bdf", r->bdf);
	npt_json_key(j, "ids");
	npt_json_obj_open(j);
	npt_json_key(j, "vendor");
	npt_json_strf(j, "0x%04x", r->vendor);
	npt_json_key(j, "device");
	npt_json_strf(j, "0x%04x", r->device);
	npt_json_key(j, "subsystem_vendor");
	npt_json_strf(j, "0x%04x", r->subsys_vendor);
	npt_json_key(j, "subsystem_device");
	npt_json_strf(j, "0x%04x", r->subsys_device);
	npt_json_key(j, "revision");
	npt_json_strf(j, "0x%02x", r->revision);
	npt_json_obj_close(j);
	json_str_or_null(j, "fw_version", r->fw);
	json_str_or_null(j, "serial", r->serial);
	npt_json_key(j, "link");
	npt_json_obj_open(j);
	json_int_or_null(j, "gen", r->link_gen);
	json_int_or_null(j, "width", r->link_width);
	json_int_or_null(j, "max_gen", r->max_link_gen);
	json_int_or_null(j, "max_width", r->max_link_width);
	npt_json_obj_close(j);
	json_str_or_null(j, "driver", r->driver);
	json_int_or_null(j, "iommu_group", r->iommu_group);
	json_int_or_null(j, "numa_node", r->numa_node);
	npt_json_kstr(j, "state", r->state);
}

static const char *or_dash(const char *s)
{
	return s[0] ? s : "-";
}

static void link_str(char *buf, size_t len, int gen, int width)
{
	if (gen < 0 || width < 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "Gen%d x%d", gen, width);
}

static void print_table(const struct card_row *rows, size_t n)
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
		const struct card_row *r = &rows[i];

		link_str(link, sizeof(link), r->link_gen, r->link_width);
		npt_table_cell(tb, "%u", r->index);
		npt_table_cell(tb, "%s", r->name);
		npt_table_cell(tb, "%04x:%04x", r->vendor, r->device);
		npt_table_cell(tb, "%s", or_dash(r->fw));
		npt_table_cell(tb, "%s", or_dash(r->serial));
		npt_table_cell(tb, "%s", link);
		npt_table_cell(tb, "%s", or_dash(r->driver));
		if (r->iommu_group < 0)
			npt_table_cell(tb, "-");
		else
			npt_table_cell(tb, "%d", r->iommu_group);
		npt_table_cell(tb, "%s", r->state);
	}
	npt_table_print(tb);
	npt_table_free(tb);
}

/* Rows of the cards of a libnp context. */
static int rows_from_ctx(struct npt *t, struct np_ctx *ctx,
			 struct card_row **out, size_t *n)
{
	unsigned int cnt = np_ctx_num_cards(ctx);
	struct card_row *rows = calloc(cnt, sizeof(*rows));

	if (!rows)
		return NPT_EXIT_DEVERR;
	for (unsigned int i = 0; i < cnt; i++) {
		int rc = row_from_card(&rows[i], np_ctx_card(ctx, i));

		if (rc) {
			npt_err(t, "card %u: cannot read its registers: %s", i,
				strerror(-rc));
			free(rows);
			return NPT_EXIT_DEVERR;
		}
	}
	*out = rows;
	*n = cnt;
	return NPT_EXIT_OK;
}

/* Rows of the cards sysfs shows that the spec selects. */
static int rows_from_sysfs(struct npt *t, struct card_row **out, size_t *n)
{
	struct npt_pci *pci;
	struct card_row *rows;
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

static int no_args(struct npt *t, int argc, char **argv)
{
	if (argc > 1)
		return npt_usage(t, "%s: unexpected argument '%s'", argv[0],
				 argv[1]);
	return NPT_EXIT_OK;
}

int npt_cmd_list(struct npt *t, int argc, char **argv)
{
	struct np_ctx *ctx = NULL;
	struct card_row *rows = NULL;
	size_t n = 0;
	int rc = no_args(t, argc, argv);

	if (rc)
		return rc;
	if (npt_spec_is_emu(t->spec)) {
		rc = npt_open(t, NULL, &ctx);
		if (!rc)
			rc = rows_from_ctx(t, ctx, &rows, &n);
	} else {
		rc = rows_from_sysfs(t, &rows, &n);
	}
	if (t->j) {
		npt_json_key(t->j, "cards");
		npt_json_arr_open(t->j);
		for (size_t i = 0; i < n; i++) {
			npt_json_obj_open(t->j);
			row_json(t->j, &rows[i]);
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
	struct card_row *rows;
	size_t n;
	int rc = no_args(t, argc, argv);

	if (rc)
		return rc;
	rc = npt_open(t, NULL, &ctx);
	if (rc)
		return rc;
	rc = rows_from_ctx(t, ctx, &rows, &n);
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
			row_json(t->j, &rows[i]);
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
		link_str(link, sizeof(link), rows[i].link_gen,
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
		printf("  driver       %s\n", or_dash(rows[i].driver));
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
