// SPDX-License-Identifier: MIT
/*
 * cache: libnp's image cache of compiled models (docs/pipeline.md,
 * "Loading, and the image cache").
 *
 *   cache list  [--dir DIR]               its entries: size, cards,
 *                                         sessions, context, precision, age
 *   cache clear [--dir DIR] [--keep SIZE] remove the least recently used
 *                                         entries down to SIZE (default 0)
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <np/pipeline.h>

#include "nptool.h"

struct cache_opts {
	const char *dir;
	uint64_t keep;
};

static int parse(struct npt *t, int argc, char **argv, bool clear,
		 struct cache_opts *o)
{
	static const struct option opts[] = {
		{"dir", required_argument, NULL, 'd'},
		{"keep", required_argument, NULL, 'k'},
		{0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		if (c == 'd') {
			o->dir = optarg;
		} else if (c == 'k' && clear) {
			if (npt_parse_size(optarg, &o->keep))
				return npt_usage(t,
						 "--keep %s: a size in bytes "
						 "(K, M, G suffixes)",
						 optarg);
		} else {
			return npt_usage(t, "cache %s: unknown option",
					 clear ? "clear" : "list");
		}
	}
	if (optind < argc)
		return npt_usage(t, "cache: unexpected argument '%s'",
				 argv[optind]);
	return 0;
}

struct listing {
	struct npt *t;
	struct npt_table *tb;
	uint64_t bytes;
	uint32_t n;
};

static int list_one(void *opaque, const struct np_cache_entry *e)
{
	struct listing *l = opaque;
	struct npt_json *j = l->t->j;
	char size[32], age[32];
	double h = difftime(time(NULL), (time_t)e->mtime) / 3600.0;
	const char *base = strrchr(e->path, '/');

	l->n++;
	l->bytes += e->size;
	if (j) {
		npt_json_obj_open(j);
		npt_json_kstr(j, "path", e->path);
		npt_json_kuint(j, "bytes", e->size);
		npt_json_kint(j, "mtime", e->mtime);
		if (e->problem) {
			npt_json_kstr(j, "problem", e->problem);
		} else {
			npt_json_kuint(j, "cards", e->n_cards);
			npt_json_kuint(j, "sessions", e->batch);
			npt_json_kuint(j, "max_seq", e->max_seq);
			npt_json_kstr(j, "precision",
				      np_precision_name(e->precision));
			npt_json_kuint(j, "model_bytes", e->model_size);
		}
		npt_json_obj_close(j);
		return 0;
	}
	snprintf(size, sizeof(size), "%.1f MiB", e->size / 1048576.0);
	snprintf(age, sizeof(age), "%.1f h", h < 0 ? 0.0 : h);
	npt_table_cell(l->tb, "%s", base ? base + 1 : e->path);
	npt_table_cell(l->tb, "%s", size);
	npt_table_cell(l->tb, "%s", age);
	if (e->problem) {
		npt_table_cell(l->tb, "%s", e->problem);
		for (int i = 0; i < 3; i++)
			npt_table_cell(l->tb, "%s", "");
	} else {
		char v[3][16];

		snprintf(v[0], sizeof(v[0]), "%u", e->n_cards);
		snprintf(v[1], sizeof(v[1]), "%u", e->batch);
		snprintf(v[2], sizeof(v[2]), "%u", e->max_seq);
		npt_table_cell(l->tb, "%s",
			       np_precision_name(e->precision) ?
				       np_precision_name(e->precision) :
				       "?");
		for (int i = 0; i < 3; i++)
			npt_table_cell(l->tb, "%s", v[i]);
	}
	return 0;
}

static int cache_list(struct npt *t, const struct cache_opts *o,
		      const char *dir)
{
	struct listing l = {.t = t};
	int ret;

	if (t->j) {
		npt_json_kstr(t->j, "dir", dir);
		npt_json_key(t->j, "entries");
		npt_json_arr_open(t->j);
	} else {
		static const char *const head[] = {
			"ENTRY", "SIZE",     "AGE",    "PRECISION",
			"CARDS", "SESSIONS", "MAX-SEQ"};

		l.tb = npt_table_new(7);
		if (!l.tb)
			return NPT_EXIT_UNAVAIL;
		for (int i = 0; i < 7; i++)
			npt_table_cell(l.tb, "%s", head[i]);
	}
	ret = np_cache_list(o->dir, list_one, &l);
	if (t->j) {
		npt_json_arr_close(t->j);
		npt_json_kuint(t->j, "bytes", l.bytes);
	}
	if (ret && ret != -ENOENT) {
		npt_table_free(l.tb);
		npt_err(t, "cache list: cannot read %s: %s", dir,
			strerror(-ret));
		return NPT_EXIT_DEVERR;
	}
	if (!t->j) {
		printf("%s: %u entries, %.1f MiB\n", dir, l.n,
		       l.bytes / 1048576.0);
		if (l.n)
			npt_table_print(l.tb);
		npt_table_free(l.tb);
	}
	return NPT_EXIT_OK;
}

int npt_cmd_cache(struct npt *t, int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "";
	bool clear = !strcmp(sub, "clear");
	struct cache_opts o = {0};
	char dir[4096];
	uint32_t removed = 0;
	int rc, ret;

	if (!clear && strcmp(sub, "list"))
		return npt_usage(t,
				 "cache: unknown subcommand '%s'; use list or "
				 "clear",
				 sub);
	if (t->j)
		npt_json_kstr(t->j, "subcommand", sub);
	optind = 0;
	rc = parse(t, argc - 1, argv + 1, clear, &o);
	if (rc)
		return rc;
	ret = np_cache_dir(o.dir, dir, sizeof(dir));
	if (ret) {
		npt_err(t,
			"cache: %s (set NP_CACHE_DIR or --dir to a directory)",
			ret == -ENOENT ? "the image cache is off" :
					 strerror(-ret));
		return NPT_EXIT_USAGE;
	}
	if (!clear)
		return cache_list(t, &o, dir);
	ret = np_cache_trim(o.dir, o.keep, &removed);
	if (ret && ret != -ENOENT) {
		npt_err(t, "cache clear: %s: %s", dir, strerror(-ret));
		return NPT_EXIT_DEVERR;
	}
	if (t->j) {
		npt_json_kstr(t->j, "dir", dir);
		npt_json_kuint(t->j, "removed", removed);
	} else {
		printf("%s: %u entries removed\n", dir, removed);
	}
	return NPT_EXIT_OK;
}
