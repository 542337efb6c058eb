// SPDX-License-Identifier: MIT
/*
 * topo: the static PCIe and NUMA view of the cards, as `nvidia-smi topo -m`
 * shows it: a matrix with the path type of every pair, each card's NUMA
 * node and local CPUs.
 *
 * Real cards are read from sysfs only (no card is opened): a card's PCIe
 * path is the chain of bridges in its /sys/devices path, from the host
 * bridge (pciDDDD:BB) down. Emulated cards have no PCIe path; their pair
 * type is how libnp moves data between them (np_card_p2p_mode): direct
 * card DMA or a host bounce buffer.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "dev.h"

#define TOPO_MAX_DEPTH 16

/* Path types, nearest first; docs/nptool.md has the legend. */
static const char *const legend[][2] = {
	{"X", "self"},
	{"PIX", "at most one PCIe bridge between the cards (one switch)"},
	{"PXB", "several PCIe bridges, not the host bridge"},
	{"PHB", "through a PCIe host bridge (the CPU's root complex)"},
	{"NODE", "across host bridges within one NUMA node"},
	{"SYS", "across NUMA nodes (the interconnect between CPU sockets)"},
	{"DIR", "emulated cards: direct card-to-card DMA"},
	{"BNC", "emulated cards: through a host bounce buffer"},
};

struct topo_card {
	char name[32];
	char bdf[NPT_BDF_LEN];
	int numa_node;
	char cpus[128]; /* local_cpulist, "" if unknown */
	/* the host bridge "pci0000:00", then the bridges above the card */
	char path[TOPO_MAX_DEPTH][NPT_BDF_LEN];
	int depth; /* entries of path; 0: unknown */
};

/* The /sys/devices path of a PCI function, split into its components
 * above the function itself. */
static void pcie_path(const char *bdf, struct topo_card *c)
{
	char p[PATH_MAX], real[PATH_MAX], *s, *save = NULL;
	const char *root = getenv("NP_SYSFS_ROOT");

	c->depth = 0;
	if (!realpath(npt_path(p, sizeof(p), "/sys/bus/pci/devices/%s", bdf),
		      real))
		return;
	s = real + (root ? strlen(root) : 0);
	if (strncmp(s, "/sys/devices/", 13))
		return;
	for (char *t = strtok_r(s + 13, "/", &save); t && strcmp(t, bdf);
	     t = strtok_r(NULL, "/", &save)) {
		if (c->depth == TOPO_MAX_DEPTH || strlen(t) >= NPT_BDF_LEN) {
			c->depth = 0;
			return;
		}
		memcpy(c->path[c->depth++], t, strlen(t) + 1);
	}
	if (c->depth && strncmp(c->path[0], "pci", 3))
		c->depth = 0;
}

/* The path type of two real cards (legend above), "?" if unknown. */
static const char *pair_type(const struct topo_card *a,
			     const struct topo_card *b)
{
	int k = 0, below;

	if (a == b)
		return "X";
	if (!a->depth || !b->depth)
		return "?";
	if (strcmp(a->path[0], b->path[0]))
		return a->numa_node == b->numa_node ? "NODE" : "SYS";
	while (k < a->depth && k < b->depth && !strcmp(a->path[k], b->path[k]))
		k++;
	if (k == 1)
		return "PHB";
	below = (a->depth > b->depth ? a->depth : b->depth) - k;
	return below <= 1 ? "PIX" : "PXB";
}

struct topo {
	struct np_ctx *ctx; /* emulated cards */
	struct topo_card *cards;
	size_t n;
};

static int topo_open(struct npt *t, struct topo *tp)
{
	struct npt_pci *pci = NULL;
	char p[PATH_MAX];
	int rc;

	memset(tp, 0, sizeof(*tp));
	if (npt_spec_is_emu(t->spec)) {
		rc = npt_open(t, NULL, &tp->ctx);
		if (rc)
			return rc;
		tp->n = np_ctx_num_cards(tp->ctx);
	} else {
		rc = npt_sysfs_cards(t, &pci, &tp->n);
		if (rc)
			return rc;
	}
	tp->cards = calloc(tp->n ? tp->n : 1, sizeof(*tp->cards));
	if (!tp->cards) {
		free(pci);
		return NPT_EXIT_DEVERR;
	}
	for (size_t i = 0; i < tp->n; i++) {
		struct topo_card *c = &tp->cards[i];

		c->numa_node = -1;
		if (tp->ctx) {
			snprintf(c->name, sizeof(c->name), "%s",
				 np_card_name(np_ctx_card(tp->ctx,
							  (unsigned int)i)));
			continue;
		}
		snprintf(c->name, sizeof(c->name), "%s", pci[i].bdf);
		snprintf(c->bdf, sizeof(c->bdf), "%s", pci[i].bdf);
		c->numa_node = pci[i].numa_node;
		if (npt_read_line(npt_path(p, sizeof(p),
					   "/sys/bus/pci/devices/%s/"
					   "local_cpulist",
					   pci[i].bdf),
				  c->cpus, sizeof(c->cpus)))
			c->cpus[0] = '\0';
		pcie_path(pci[i].bdf, c);
	}
	free(pci);
	return NPT_EXIT_OK;
}

static const char *type_of(const struct topo *tp, size_t i, size_t j)
{
	if (!tp->ctx)
		return pair_type(&tp->cards[i], &tp->cards[j]);
	if (i == j)
		return "X";
	return np_card_p2p_mode(np_ctx_card(tp->ctx, (unsigned int)i),
				np_ctx_card(tp->ctx, (unsigned int)j)) ==
			       NP_P2P_DIRECT ?
		       "DIR" :
		       "BNC";
}

static void topo_json(struct npt *t, const struct topo *tp)
{
	struct npt_json *j = t->j;

	npt_json_kstr(j, "source", tp->ctx ? "libnp" : "sysfs");
	npt_json_key(j, "cards");
	npt_json_arr_open(j);
	for (size_t i = 0; i < tp->n; i++) {
		const struct topo_card *c = &tp->cards[i];

		npt_json_obj_open(j);
		npt_json_kuint(j, "index", i);
		npt_json_kstr(j, "name", c->name);
		if (c->bdf[0])
			npt_json_kstr(j, "bdf", c->bdf);
		else
			npt_json_knull(j, "bdf");
		if (c->numa_node >= 0)
			npt_json_kint(j, "numa_node", c->numa_node);
		else
			npt_json_knull(j, "numa_node");
		if (c->cpus[0])
			npt_json_kstr(j, "cpu_affinity", c->cpus);
		else
			npt_json_knull(j, "cpu_affinity");
		npt_json_key(j, "pcie_path");
		if (c->depth) {
			npt_json_arr_open(j);
			for (int k = 0; k < c->depth; k++)
				npt_json_str(j, c->path[k]);
			npt_json_arr_close(j);
		} else {
			npt_json_null(j);
		}
		npt_json_obj_close(j);
	}
	npt_json_arr_close(j);
	npt_json_key(j, "pairs");
	npt_json_arr_open(j);
	for (size_t a = 0; a < tp->n; a++)
		for (size_t b = 0; b < tp->n; b++) {
			if (a == b)
				continue;
			npt_json_obj_open(j);
			npt_json_kuint(j, "src", a);
			npt_json_kuint(j, "dst", b);
			npt_json_kstr(j, "path", type_of(tp, a, b));
			npt_json_obj_close(j);
		}
	npt_json_arr_close(j);
}

static int topo_table(const struct topo *tp)
{
	size_t ncols = tp->n + 4, cols_used = 0;
	struct npt_col *cols = calloc(ncols, sizeof(*cols));
	char(*heads)[32] = calloc(ncols, sizeof(*heads));
	char **v = calloc(ncols * (tp->n ? tp->n : 1), sizeof(*v));
	struct npt_cols_opts o = {0};
	int rc = NPT_EXIT_DEVERR;

	if (!cols || !heads || !v || ncols > sizeof(o.col) / sizeof(o.col[0]))
		goto out;
	snprintf(heads[0], sizeof(heads[0]), " ");
	for (size_t i = 0; i < tp->n; i++)
		snprintf(heads[i + 1], sizeof(heads[0]), "CARD%zu", i);
	cols[0] = (struct npt_col){heads[0], heads[0], false};
	for (size_t i = 0; i < tp->n; i++)
		cols[i + 1] =
			(struct npt_col){heads[i + 1], heads[i + 1], false};
	cols[tp->n + 1] = (struct npt_col){"numa_node", "NUMA", true};
	cols[tp->n + 2] =
		(struct npt_col){"cpu_affinity", "CPU AFFINITY", false};
	cols[tp->n + 3] = (struct npt_col){"name", "NAME", false};
	for (size_t i = 0; i < ncols; i++)
		o.col[cols_used++] = (unsigned int)i;
	o.ncols = cols_used;
	o.fmt = NPT_FMT_TABLE;
	for (size_t i = 0; i < tp->n; i++) {
		char **row = v + i * ncols;

		npt_cols_set(&row[0], "CARD%zu", i);
		for (size_t j = 0; j < tp->n; j++)
			npt_cols_set(&row[j + 1], "%s", type_of(tp, i, j));
		if (tp->cards[i].numa_node >= 0)
			npt_cols_set(&row[tp->n + 1], "%d",
				     tp->cards[i].numa_node);
		if (tp->cards[i].cpus[0])
			npt_cols_set(&row[tp->n + 2], "%s", tp->cards[i].cpus);
		npt_cols_set(&row[tp->n + 3], "%s", tp->cards[i].name);
	}
	rc = npt_cols_print(&o, cols, ncols, v, tp->n);
	if (rc)
		goto out;
	printf("\nLegend:\n");
	for (size_t i = 0; i < sizeof(legend) / sizeof(legend[0]); i++)
		if (tp->ctx ? (i == 0 || i >= 6) : i < 6)
			printf("  %-4s = %s\n", legend[i][0], legend[i][1]);
out:
	npt_cols_free(v, ncols * tp->n);
	free(heads);
	free(cols);
	return rc;
}

int npt_cmd_topo(struct npt *t, int argc, char **argv)
{
	struct topo tp;
	int rc = npt_no_args(t, argc, argv);

	if (rc)
		return rc;
	rc = topo_open(t, &tp);
	if (!rc) {
		if (t->j)
			topo_json(t, &tp);
		else if (tp.n)
			rc = topo_table(&tp);
	}
	free(tp.cards);
	np_close(tp.ctx);
	return rc;
}
