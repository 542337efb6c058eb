// SPDX-License-Identifier: MIT
/*
 * events: the last events of the journal libnp appends to (card failures,
 * resets, recoveries, thermal episodes, injected faults), which outlives
 * the processes that saw them. One JSON object a line; a line that does
 * not parse is skipped and counted.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <np/recover.h>

#include "dev.h"
#include "nptool.h"

struct ev_opts {
	uint32_t last; /* 0: all */
	bool since_set;
	int64_t since_ms; /* UTC, ms since the epoch */
	const char *card;
	const char *kind;
};

struct ev_list {
	json_t **e;
	size_t n, cap;
	uint64_t matched;
	uint64_t unreadable;
};

/* "2026-12-06T02:10:00[.123][Z]" as ms since the epoch (UTC); -1 if it
 * is not one. */
static int64_t parse_time(const char *s)
{
	struct tm tm = {0};
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	long ms = 0;

	if (!p)
		return -1;
	if (*p == '.') {
		int digits = 0;

		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 3)
				ms = ms * 10 + (*p - '0');
		if (!digits)
			return -1;
		for (; digits < 3; digits++)
			ms *= 10;
	}
	if (*p == 'Z')
		p++;
	if (*p)
		return -1;
	return (int64_t)timegm(&tm) * 1000 + ms;
}

static int parse_opts(struct npt *t, int argc, char **argv, struct ev_opts *o)
{
	static const struct option opts[] = {
		{"since", required_argument, NULL, 's'},
		{"card", required_argument, NULL, 'c'},
		{"kind", required_argument, NULL, 'k'},
		{0},
	};
	static const char *const kinds[] = {
		"error", "reset", "recovery", "thermal", "fault-injected",
	};
	struct timespec now;
	double secs;
	bool ok;
	int c, rc;

	o->last = 20;
	while ((c = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			rc = npt_parse_u32(t, "-n", optarg, 0, &o->last);
			if (rc)
				return rc;
			break;
		case 's':
			o->since_set = true;
			if (!npt_parse_seconds(optarg, &secs)) {
				clock_gettime(CLOCK_REALTIME, &now);
				o->since_ms = (int64_t)now.tv_sec * 1000 +
					      now.tv_nsec / 1000000 -
					      (int64_t)(secs * 1000);
				break;
			}
			o->since_ms = parse_time(optarg);
			if (o->since_ms < 0)
				return npt_usage(
					t,
					"events: --since '%s' is neither "
					"seconds (up to 86400) nor a UTC "
					"time like 2026-12-06T02:10:00Z",
					optarg);
			break;
		case 'c':
			o->card = optarg;
			break;
		case 'k':
			ok = false;
			for (size_t i = 0; i < sizeof(kinds) / sizeof(*kinds);
			     i++)
				ok |= !strcmp(optarg, kinds[i]);
			if (!ok)
				return npt_usage(t,
						 "events: --kind '%s' is not "
						 "one of error, reset, "
						 "recovery, thermal, "
						 "fault-injected",
						 optarg);
			o->kind = optarg;
			break;
		default:
			return npt_usage(t, "events: bad option");
		}
	}
	if (optind < argc)
		return npt_usage(t, "events: unexpected argument '%s'",
				 argv[optind]);
	return 0;
}

static const char *get_str(const json_t *ev, const char *key)
{
	return json_string_value(json_object_get(ev, key));
}

static bool matches(const struct ev_opts *o, const json_t *ev)
{
	if (o->kind && strcmp(get_str(ev, "kind"), o->kind))
		return false;
	if (o->since_set && parse_time(get_str(ev, "time")) < o->since_ms)
		return false;
	if (o->card) {
		json_t *idx = json_object_get(ev, "index");

		/* the index the card had in the writer's context */
		if (!npt_card_arg_is(
			    o->card,
			    json_is_integer(idx) &&
					    json_integer_value(idx) >= 0 ?
				    (unsigned int)json_integer_value(idx) :
				    UINT_MAX,
			    get_str(ev, "card"), get_str(ev, "serial")))
			return false;
	}
	return true;
}

/* Keep the last o->last matching events of the journal f. */
static int read_journal(FILE *f, const struct ev_opts *o, struct ev_list *l)
{
	char *line = NULL;
	size_t len = 0;

	while (getline(&line, &len, f) > 0) {
		json_t *ev = json_loads(line, JSON_REJECT_DUPLICATES, NULL);

		if (!json_is_object(ev) || !get_str(ev, "time") ||
		    parse_time(get_str(ev, "time")) < 0 ||
		    !get_str(ev, "card") || !get_str(ev, "kind") ||
		    !get_str(ev, "message")) {
			json_decref(ev);
			l->unreadable++;
			continue;
		}
		if (!matches(o, ev)) {
			json_decref(ev);
			continue;
		}
		l->matched++;
		if (o->last && l->n == 2 * (size_t)o->last) {
			for (size_t i = 0; i < o->last; i++)
				json_decref(l->e[i]);
			memmove(l->e, l->e + o->last, o->last * sizeof(*l->e));
			l->n = o->last;
		}
		if (l->n == l->cap) {
			size_t cap = l->cap ? 2 * l->cap : 64;
			json_t **e = realloc(l->e, cap * sizeof(*e));

			if (!e) {
				json_decref(ev);
				free(line);
				return -ENOMEM;
			}
			l->e = e;
			l->cap = cap;
		}
		l->e[l->n++] = ev;
	}
	free(line);
	return ferror(f) ? -EIO : 0;
}

static void report(struct npt *t, const char *path, const struct ev_list *l,
		   size_t first)
{
	struct npt_json *j = t->j;

	if (j) {
		if (path)
			npt_json_kstr(j, "journal", path);
		else
			npt_json_knull(j, "journal");
		npt_json_key(j, "events");
		npt_json_arr_open(j);
	} else if (l->n == first) {
		printf("no events in %s\n", path ? path : "(journal off)");
	} else {
		printf("%-24s  %-12s  %-14s  %-18s  %s\n", "TIME", "CARD",
		       "KIND", "PROCESS", "MESSAGE");
	}
	for (size_t i = first; i < l->n; i++) {
		const json_t *ev = l->e[i];
		const char *serial = get_str(ev, "serial");
		const char *proc = get_str(ev, "process");
		json_int_t pid = json_integer_value(json_object_get(ev, "pid"));
		char who[64];

		if (j) {
			npt_json_obj_open(j);
			npt_json_kstr(j, "time", get_str(ev, "time"));
			npt_json_kstr(j, "card", get_str(ev, "card"));
			if (serial)
				npt_json_kstr(j, "serial", serial);
			else
				npt_json_knull(j, "serial");
			npt_json_kstr(j, "kind", get_str(ev, "kind"));
			npt_json_kstr(j, "message", get_str(ev, "message"));
			npt_json_kint(j, "pid", pid);
			npt_json_kstr(j, "process", proc ? proc : "");
			npt_json_obj_close(j);
			continue;
		}
		snprintf(who, sizeof(who), "%s[%lld]", proc ? proc : "?",
			 (long long)pid);
		printf("%-24s  %-12s  %-14s  %-18s  %s\n", get_str(ev, "time"),
		       get_str(ev, "card"), get_str(ev, "kind"), who,
		       get_str(ev, "message"));
	}
	if (j) {
		npt_json_arr_close(j);
		npt_json_kuint(j, "matched", l->matched);
		npt_json_kuint(j, "unreadable", l->unreadable);
	} else if (l->unreadable) {
		fprintf(stderr,
			"nptool: events: %llu line%s of %s could not be read "
			"(skipped)\n",
			(unsigned long long)l->unreadable,
			l->unreadable == 1 ? "" : "s", path);
	}
}

int npt_cmd_events(struct npt *t, int argc, char **argv)
{
	const char *path = np_event_log_path();
	struct ev_opts o = {0};
	struct ev_list l = {0};
	size_t first = 0;
	FILE *f = NULL;
	int rc;

	rc = parse_opts(t, argc, argv, &o);
	if (rc)
		return rc;
	if (path) {
		f = fopen(path, "re");
		if (!f && errno != ENOENT) {
			rc = -errno;
			npt_err(t, "events: cannot read the journal %s: %s",
				path, strerror(-rc));
			return NPT_EXIT_DEVERR;
		}
	}
	if (f) {
		rc = read_journal(f, &o, &l);
		fclose(f);
		if (rc) {
			npt_err(t, "events: reading %s: %s", path,
				strerror(-rc));
			rc = NPT_EXIT_DEVERR;
			goto out;
		}
	} else if (!t->j) {
		if (path)
			printf("no events: no journal at %s yet\n", path);
		else
			printf("no events: the journal is off "
			       "(NP_EVENT_LOG=%s)\n",
			       getenv("NP_EVENT_LOG"));
	}
	if (o.last && l.n > o.last)
		first = l.n - o.last;
	if (f || t->j)
		report(t, path, &l, first);
out:
	for (size_t i = 0; i < l.n; i++)
		json_decref(l.e[i]);
	free(l.e);
	return rc;
}
