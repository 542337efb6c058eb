// SPDX-License-Identifier: MIT
/*
 * --query and --format of list and status against emulated cards, checked
 * against the field tables of docs/nptool.md ("Field selection"): every
 * documented field, alone and all together, in CSV and in JSON, with the
 * documented type; the defaults; and the usage errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

#define NCARDS 4
#define MAX_FIELDS 64

struct field {
	char name[32];
	bool number;
	bool in_default;
};

static void query_setup(void)
{
	setenv("NP_DEVICES", "emu:4", 1);
	unsetenv("NP_SYSFS_ROOT");
	tst_pre_exec = NULL;
}

static char *read_doc(void)
{
	FILE *f = fopen(NPTOOL_DOC, "r");
	char *text;
	long len;

	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	text = calloc(1, (size_t)len + 1);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(fread(text, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	return text;
}

/* The rows "| `name` | number | HEAD* | ..." of the table after the
 * heading "#### Fields of `cmd`". */
static size_t doc_fields(const char *cmd, struct field *out)
{
	char *doc = read_doc(), head[64], *p, *end;
	size_t n = 0;

	snprintf(head, sizeof(head), "#### Fields of `%s`\n", cmd);
	p = strstr(doc, head);
	ck_assert_msg(p, "docs/nptool.md has no '%s'", head);
	end = strstr(p + strlen(head), "\n\n\n");
	p = strstr(p, "| --- |");
	ck_assert_ptr_nonnull(p);
	while ((p = strstr(p, "\n| `")) && (!end || p < end) &&
	       strncmp(p, "\n\n", 2)) {
		char name[32], type[16], heading[32];

		ck_assert_int_eq(sscanf(p, "\n| `%31[a-z_]` | %15s | %31s |",
					name, type, heading),
				 3);
		ck_assert_uint_lt(n, MAX_FIELDS);
		snprintf(out[n].name, sizeof(out[n].name), "%s", name);
		ck_assert_msg(!strcmp(type, "number") ||
				      !strcmp(type, "string"),
			      "%s: type '%s'", name, type);
		out[n].number = !strcmp(type, "number");
		out[n].in_default = heading[strlen(heading) - 1] == '*';
		n++;
		p = strchr(p + 1, '\n');
		if (!p || !strncmp(p, "\n\n", 2))
			break;
	}
	free(doc);
	ck_assert_uint_gt(n, 0);
	return n;
}

/* A card object of --format json has exactly these fields, in this order,
 * each of its documented type or null. */
static void check_json(const struct tst_run *r, const struct field *f,
		       const size_t *idx, size_t n)
{
	struct tst_jv *cards;

	ck_assert_msg(r->status == 0, "exit %d: %s", r->status, r->err);
	ck_assert_ptr_nonnull(r->json);
	ck_assert_uint_eq(r->json->n, 1);
	cards = tst_jv_get(r->json, "cards");
	ck_assert_ptr_nonnull(cards);
	ck_assert_uint_eq(cards->n, NCARDS);
	for (size_t c = 0; c < cards->n; c++) {
		struct tst_jv *card = tst_jv_at(cards, c);

		ck_assert_int_eq(card->type, TST_JV_OBJ);
		ck_assert_uint_eq(card->n, n);
		for (size_t i = 0; i < n; i++) {
			const struct field *d = &f[idx[i]];
			enum tst_jv_type t = card->items[i]->type;

			ck_assert_str_eq(card->keys[i], d->name);
			ck_assert_msg(t == TST_JV_NULL ||
					      t == (d->number ? TST_JV_NUM :
								TST_JV_STR),
				      "%s: JSON type %d", d->name, (int)t);
		}
		if (tst_jv_get(card, "index"))
			ck_assert_double_eq(tst_jv_num(card, "index"),
					    (double)c);
	}
}

/* CSV: a heading line of the field names, then a line per card with as
 * many fields (emulated cards' values hold no comma). */
static void check_csv(const struct tst_run *r, const struct field *f,
		      const size_t *idx, size_t n)
{
	char want[2048] = "";
	size_t k = 0;
	const char *line;

	ck_assert_msg(r->status == 0, "exit %d: %s", r->status, r->err);
	for (size_t i = 0; i < n; i++)
		k += (size_t)snprintf(want + k, sizeof(want) - k, "%s%s",
				      i ? "," : "", f[idx[i]].name);
	ck_assert_uint_eq(tst_lines(r->out), NCARDS + 1);
	ck_assert_int_eq(strncmp(r->out, want, k), 0);
	ck_assert_int_eq(r->out[k], '\n');
	for (line = strchr(r->out, '\n') + 1; *line;
	     line = strchr(line, '\n') + 1) {
		size_t commas = 0;

		for (const char *p = line; *p != '\n'; p++)
			commas += *p == ',';
		ck_assert_uint_eq(commas, n - 1);
	}
}

static void run_query(struct tst_run *r, const char *cmd, const char *q,
		      const char *fmt)
{
	if (!strcmp(cmd, "status"))
		tst_run(r, cmd, "-i", "0.02", "--query", q, "--format", fmt,
			NULL);
	else
		tst_run(r, cmd, "--query", q, "--format", fmt, NULL);
}

static const char *const cmds[] = {"list", "status"};

START_TEST(test_every_field)
{
	const char *cmd = cmds[_i];
	struct field f[MAX_FIELDS];
	size_t n = doc_fields(cmd, f), idx[MAX_FIELDS] = {0};
	char all[2048] = "";
	size_t k = 0;
	struct tst_run r;

	for (size_t i = 0; i < n; i++) {
		idx[i] = i;
		k += (size_t)snprintf(all + k, sizeof(all) - k, "%s%s",
				      i ? "," : "", f[i].name);
		run_query(&r, cmd, f[i].name, "json");
		check_json(&r, f, &idx[i], 1);
		tst_run_free(&r);
	}
	run_query(&r, cmd, all, "json");
	check_json(&r, f, idx, n);
	tst_run_free(&r);
	run_query(&r, cmd, all, "csv");
	check_csv(&r, f, idx, n);
	tst_run_free(&r);
	run_query(&r, cmd, all, "table");
	ck_assert_int_eq(r.status, 0);
	ck_assert_uint_eq(tst_lines(r.out), NCARDS + 1);
	tst_run_free(&r);
}
END_TEST

/* Without --query: the fields the doc marks with *, each once (in the
 * table's order, not necessarily the doc's). */
START_TEST(test_defaults)
{
	const char *cmd = cmds[_i];
	struct field f[MAX_FIELDS];
	size_t n = doc_fields(cmd, f), nd = 0, seen = 0;
	bool got[MAX_FIELDS] = {false};
	struct tst_run r;
	char *head, *save = NULL;

	for (size_t i = 0; i < n; i++)
		nd += f[i].in_default;
	ck_assert_uint_gt(nd, 0);
	if (!strcmp(cmd, "status"))
		tst_run(&r, cmd, "-i", "0.02", "--format", "csv", NULL);
	else
		tst_run(&r, cmd, "--format", "csv", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_uint_eq(tst_lines(r.out), NCARDS + 1);
	head = strndup(r.out, strcspn(r.out, "\n"));
	for (char *h = strtok_r(head, ",", &save); h;
	     h = strtok_r(NULL, ",", &save)) {
		size_t i = 0;

		while (i < n && strcmp(f[i].name, h))
			i++;
		ck_assert_msg(i < n, "%s: undocumented column %s", cmd, h);
		ck_assert_msg(f[i].in_default && !got[i],
			      "%s: %s is not a default or shown twice", cmd, h);
		got[i] = true;
		seen++;
	}
	ck_assert_uint_eq(seen, nd);
	free(head);
	tst_run_free(&r);
}
END_TEST

START_TEST(test_usage_errors)
{
	struct tst_run r;

	tst_run(&r, "list", "--query", "index,frequency", NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "'frequency'"));
	ck_assert_ptr_nonnull(strstr(r.err, "fw_version"));
	tst_run_free(&r);
	tst_run(&r, "status", "--format", "xml", NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "'xml'"));
	tst_run_free(&r);
	tst_run(&r, "list", "--query", ",", NULL);
	ck_assert_int_eq(r.status, 2);
	tst_run_free(&r);
	tst_run(&r, "--json", "status", "--format", "csv", NULL);
	ck_assert_int_eq(r.status, 2);
	tst_envelope(&r, "status", 2);
	tst_run_free(&r);
}
END_TEST

/* CSV and JSON give the same values; an unknown one (the IOMMU group of
 * an emulated card) is empty in CSV and null in JSON. */
START_TEST(test_formats_agree)
{
	struct tst_run c, j;
	struct tst_jv *cards;
	const char *line;

	tst_run(&c, "list", "--query", "name,serial,link,iommu_group",
		"--format", "csv", NULL);
	tst_run(&j, "list", "--query", "name,serial,link,iommu_group",
		"--format", "json", NULL);
	ck_assert_int_eq(c.status, 0);
	cards = tst_jv_get(j.json, "cards");
	line = strchr(c.out, '\n') + 1;
	for (size_t i = 0; i < cards->n; i++) {
		struct tst_jv *card = tst_jv_at(cards, i);
		char want[128];

		snprintf(want, sizeof(want), "%s,%s,%s,\n",
			 tst_jv_str(card, "name"), tst_jv_str(card, "serial"),
			 tst_jv_str(card, "link"));
		ck_assert_int_eq(tst_jv_get(card, "iommu_group")->type,
				 TST_JV_NULL);
		ck_assert_int_eq(strncmp(line, want, strlen(want)), 0);
		line += strlen(want);
	}
	tst_run_free(&c);
	tst_run_free(&j);
}
END_TEST

Suite *np_suite_query(void)
{
	Suite *s = suite_create("query");
	TCase *tc = tcase_create("emu");

	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, query_setup, NULL);
	tcase_add_loop_test(tc, test_every_field, 0, 2);
	tcase_add_loop_test(tc, test_defaults, 0, 2);
	tcase_add_test(tc, test_usage_errors);
	tcase_add_test(tc, test_formats_agree);
	suite_add_tcase(s, tc);
	return s;
}
