// SPDX-License-Identifier: MIT
/*
 * npd's configuration: one table of settings, read from the command line
 * (--name value) and from a file ("name = value" lines, '#' comments), so
 * that every setting has one name and one check in both places.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <np/model.h>

#include "npd.h"

#ifndef NPD_DEFAULT_MODEL
#define NPD_DEFAULT_MODEL "data/models/np-demo.gguf"
#endif
#ifndef NPD_VERSION
#define NPD_VERSION "0"
#endif

enum opt_kind {
	OPT_STR,
	OPT_U32,
	OPT_PORT,
	OPT_SIZE,
	OPT_KEY,
	OPT_BOOL,
	OPT_INJECT
};

struct opt {
	const char *name;
	enum opt_kind kind;
	size_t off; /* into struct npd_config */
	uint32_t min, max; /* OPT_U32 */
	const char *arg, *help;
};

#define OFF(f) offsetof(struct npd_config, f)

static const struct opt opts[] = {
	{"model", OPT_STR, OFF(model), 0, 0, "PATH",
	 "GGUF model to serve (default: the demo model)"},
	{"model-name", OPT_STR, OFF(model_name), 0, 0, "NAME",
	 "model id in the API (default: the file name)"},
	{"cluster", OPT_STR, OFF(cluster), 0, 0, "FILE",
	 "serve as the head of a pipeline over the members this cluster "
	 "file names (docs/cluster.md); the cards of --devices are not used "
	 "(default then: emu:1)"},
	{"devices", OPT_STR, OFF(devices), 0, 0, "SPEC",
	 "cards: emu:N, vfio:all, vfio:BDF,... (default: $NP_DEVICES, else "
	 "emu:16)"},
	{"listen", OPT_STR, OFF(listen), 0, 0, "ADDR",
	 "address to listen on (default 127.0.0.1)"},
	{"port", OPT_PORT, OFF(port), 1, 65535, "N", "TCP port (default 8080)"},
	{"slots", OPT_U32, OFF(slots), 1, 4096, "N",
	 "requests on the cards at once, KV slots (default 28)"},
	{"micro-batches", OPT_U32, OFF(micro_batches), 1, 4096, "M",
	 "micro-batches in flight (default 14)"},
	{"max-seq", OPT_U32, OFF(max_seq), 2, 65536, "N",
	 "tokens per request, prompt and output (default 512)"},
	{"precision", OPT_STR, OFF(precision), 0, 0, "MODE",
	 "card arithmetic: a8c8w4 (default), w4a4, w8a8, w2a8"},
	{"layer-precision", OPT_STR, OFF(layer_precision), 0, 0, "SPEC",
	 "per-layer modes, FIRST[-LAST]:MODE,... (e.g. 0-1:w8a8)"},
	{"cache-dir", OPT_STR, OFF(cache_dir), 0, 0, "DIR",
	 "compiled model image cache; off: none (default: $NP_CACHE_DIR, "
	 "else /var/cache/np/images for root, ~/.cache/np/images)"},
	{"chat-template", OPT_STR, OFF(chat_template), 0, 0, "NAME",
	 "chat template family when the model's is unknown"},
	{"api-key", OPT_KEY, 0, 0, 0, "KEY",
	 "accept this Bearer key (repeatable; none: no authentication)"},
	{"max-queue", OPT_U32, OFF(max_queue), 0, 1u << 20, "N",
	 "requests waiting for a slot before 429 (default 64)"},
	{"max-body", OPT_SIZE, OFF(max_body), 0, 0, "BYTES",
	 "largest request body before 413 (default 1048576)"},
	{"max-connections", OPT_U32, OFF(max_connections), 1, 1u << 20, "N",
	 "open connections (default 4096)"},
	{"timeout", OPT_U32, OFF(timeout_s), 1, 3600, "S",
	 "close a connection idle this long, seconds (default 30)"},
	{"threads", OPT_U32, OFF(threads), 1, 64, "N",
	 "HTTP threads (default 2)"},
	{"max-tokens", OPT_U32, OFF(max_tokens_default), 1, 65536, "N",
	 "tokens generated when a request sets no max_tokens (default 256)"},
	{"access-log", OPT_STR, OFF(access_log), 0, 0, "PATH",
	 "one line per request; - is stderr (default)"},
	{"recover", OPT_BOOL, OFF(recover), 0, 0, NULL,
	 "survive card faults: reset, reload and replay (default on)"},
	{"inject", OPT_INJECT, 0, 0, 0, "CARD:FAULT",
	 "emulated cards: arm a fault (as nptool run --inject), to test "
	 "recovery"},
	{"inject-after", OPT_U32, OFF(inject_after), 0, UINT32_MAX, "N",
	 "arm the --inject faults after N generated tokens (default 0)"},
};

#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

void npd_config_defaults(struct npd_config *c)
{
	memset(c, 0, sizeof(*c));
	c->port = 8080;
	c->max_queue = 64;
	c->max_body = 1u << 20;
	c->max_connections = 4096;
	c->timeout_s = 30;
	c->threads = 2;
	c->max_tokens_default = 256;
	c->recover = true;
}

void npd_config_free(struct npd_config *c)
{
	for (size_t i = 0; i < N_OPTS; i++)
		if (opts[i].kind == OPT_STR)
			free(*(char **)((char *)c + opts[i].off));
	for (unsigned int i = 0; i < c->n_api_keys; i++)
		free(c->api_keys[i]);
	for (unsigned int i = 0; i < c->n_inject; i++)
		free(c->inject[i]);
	memset(c, 0, sizeof(*c));
}

void npd_usage(void)
{
	printf("usage: npd [OPTION]...\n"
	       "Serve a GGUF model on np cards over an OpenAI-compatible "
	       "HTTP API.\n\n");
	printf("  %-28s %s\n", "--config FILE",
	       "read settings from FILE (name = value, as below)");
	for (size_t i = 0; i < N_OPTS; i++) {
		char left[64];

		if (opts[i].kind == OPT_BOOL)
			snprintf(left, sizeof(left), "--%s, --no-%s",
				 opts[i].name, opts[i].name);
		else
			snprintf(left, sizeof(left), "--%s %s", opts[i].name,
				 opts[i].arg);
		printf("  %-28s %s\n", left, opts[i].help);
	}
	printf("  %-28s %s\n", "-h, --help", "this text");
	printf("  %-28s %s\n", "-V, --version", "the version");
	printf("\nEndpoints: POST /v1/completions, POST /v1/chat/completions, "
	       "GET /v1/models,\nGET /health, GET /metrics. SIGTERM drains "
	       "and exits; SIGHUP reopens the access log.\n");
}

static int parse_num(const char *s, unsigned long long max,
		     unsigned long long *out)
{
	char *end;

	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	*out = strtoull(s, &end, 10);
	if (errno || *end || *out > max)
		return -ERANGE;
	return 0;
}

/* Append a copy of v to a repeatable option's list of at most max. */
static int push(char **list, unsigned int *n, unsigned int max, const char *v,
		const char *what, const char *where, const char *name,
		char *err, size_t len)
{
	if (*n == max) {
		snprintf(err, len, "%s%s: at most %u %s", where, name, max,
			 what);
		return -EINVAL;
	}
	list[*n] = strdup(v);
	if (!list[*n])
		return -ENOMEM;
	(*n)++;
	return 0;
}

static int set_opt(struct npd_config *c, const struct opt *o, const char *v,
		   const char *where, char *err, size_t len)
{
	void *p = (char *)c + o->off;
	unsigned long long n;

	switch (o->kind) {
	case OPT_STR:
		if (!*v) {
			snprintf(err, len, "%s%s: give a value", where,
				 o->name);
			return -EINVAL;
		}
		free(*(char **)p);
		*(char **)p = strdup(v);
		return *(char **)p ? 0 : -ENOMEM;
	case OPT_KEY:
		if (strlen(v) < 8 || strpbrk(v, " \t\r\n")) {
			snprintf(err, len,
				 "%s%s: a key is 8 or more characters without "
				 "spaces",
				 where, o->name);
			return -EINVAL;
		}
		return push(c->api_keys, &c->n_api_keys, NPD_MAX_KEYS, v,
			    "keys", where, o->name, err, len);
	case OPT_INJECT: {
		const char *colon = strchr(v, ':');

		if (!colon || colon == v || !colon[1] ||
		    strspn(v, "0123456789") != (size_t)(colon - v)) {
			snprintf(err, len,
				 "%s%s: '%s' is not CARD:FAULT, e.g. 3:dead or "
				 "5:hang:engine=compute,n=1",
				 where, o->name, v);
			return -EINVAL;
		}
		return push(c->inject, &c->n_inject, NPD_MAX_INJECT, v,
			    "faults", where, o->name, err, len);
	}
	case OPT_BOOL:
		if (!strcmp(v, "1") || !strcmp(v, "true") ||
		    !strcmp(v, "yes") || !strcmp(v, "on"))
			*(bool *)p = true;
		else if (!strcmp(v, "0") || !strcmp(v, "false") ||
			 !strcmp(v, "no") || !strcmp(v, "off"))
			*(bool *)p = false;
		else {
			snprintf(err, len,
				 "%s%s: '%s' is not a boolean (true/false)",
				 where, o->name, v);
			return -EINVAL;
		}
		return 0;
	case OPT_SIZE:
		if (parse_num(v, 1ull << 30, &n) || n < 64) {
			snprintf(err, len,
				 "%s%s: '%s' is not a size in 64..%llu bytes",
				 where, o->name, v, 1ull << 30);
			return -EINVAL;
		}
		*(size_t *)p = (size_t)n;
		return 0;
	case OPT_PORT:
	case OPT_U32:
		if (parse_num(v, o->max, &n) || n < o->min) {
			snprintf(err, len,
				 "%s%s: '%s' is not a number in %u..%u", where,
				 o->name, v, o->min, o->max);
			return -EINVAL;
		}
		if (o->kind == OPT_PORT)
			*(uint16_t *)p = (uint16_t)n;
		else
			*(uint32_t *)p = (uint32_t)n;
		return 0;
	}
	return -EINVAL;
}

static const struct opt *find_opt(const char *name)
{
	for (size_t i = 0; i < N_OPTS; i++)
		if (!strcmp(opts[i].name, name))
			return &opts[i];
	return NULL;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
			 e[-1] == '\n'))
		*--e = 0;
	return s;
}

int npd_config_file(struct npd_config *c, const char *path, char *err,
		    size_t len)
{
	FILE *f = fopen(path, "re");
	char line[4096], where[PATH_MAX + 32];
	unsigned int ln = 0;
	int ret = 0;

	if (!f) {
		ret = -errno;
		snprintf(err, len, "config %s: %s", path, strerror(errno));
		return ret;
	}
	while (!ret && fgets(line, sizeof(line), f)) {
		char *k, *v, *eq;
		const struct opt *o;

		ln++;
		snprintf(where, sizeof(where), "%s:%u: ", path, ln);
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, len, "%sline longer than %zu bytes",
				 where, sizeof(line) - 2);
			ret = -EINVAL;
			break;
		}
		k = trim(line);
		if (!*k || *k == '#')
			continue;
		eq = strchr(k, '=');
		if (!eq) {
			snprintf(err, len, "%sexpected 'name = value'", where);
			ret = -EINVAL;
			break;
		}
		*eq = 0;
		v = trim(eq + 1);
		k = trim(k);
		o = find_opt(k);
		if (!o) {
			snprintf(err, len,
				 "%sunknown setting '%s' (see npd --help)",
				 where, k);
			ret = -EINVAL;
			break;
		}
		ret = set_opt(c, o, v, where, err, len);
	}
	fclose(f);
	return ret;
}

int npd_config_args(struct npd_config *c, int argc, char **argv, char *err,
		    size_t len)
{
	struct option lo[2 * N_OPTS + 4];
	size_t n = 0;
	int ch, idx;
	enum np_precision prec;

	for (size_t i = 0; i < N_OPTS; i++) {
		lo[n++] = (struct option){opts[i].name,
					  opts[i].kind == OPT_BOOL ?
						  no_argument :
						  required_argument,
					  NULL, (int)(256 + i)};
		if (opts[i].kind == OPT_BOOL) {
			static char names[N_OPTS][40];

			snprintf(names[i], sizeof(names[i]), "no-%s",
				 opts[i].name);
			lo[n++] = (struct option){names[i], no_argument, NULL,
						  (int)(512 + i)};
		}
	}
	lo[n++] = (struct option){"config", required_argument, NULL, 'c'};
	lo[n++] = (struct option){"help", no_argument, NULL, 'h'};
	lo[n++] = (struct option){"version", no_argument, NULL, 'V'};
	lo[n] = (struct option){0};

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "hV", lo, &idx)) != -1) {
		int ret = 0;

		if (ch == 'h') {
			npd_usage();
			return 1;
		} else if (ch == 'V') {
			printf("npd %s\n", NPD_VERSION);
			return 1;
		} else if (ch == 'c') {
			ret = npd_config_file(c, optarg, err, len);
		} else if (ch >= 512) {
			*(bool *)((char *)c + opts[ch - 512].off) = false;
		} else if (ch >= 256) {
			const struct opt *o = &opts[ch - 256];

			ret = set_opt(c, o, o->kind == OPT_BOOL ? "1" : optarg,
				      "--", err, len);
		} else {
			snprintf(err, len,
				 "%s: unknown option, or its value is missing "
				 "(see npd --help)",
				 argv[optind - 1]);
			return -EINVAL;
		}
		if (ret)
			return ret;
	}
	if (optind < argc) {
		snprintf(err, len, "unexpected argument '%s' (see npd --help)",
			 argv[optind]);
		return -EINVAL;
	}
	if (!c->model) {
		c->model = strdup(NPD_DEFAULT_MODEL);
		if (!c->model)
			return -ENOMEM;
	}
	if (c->precision && np_precision_parse(c->precision, &prec)) {
		snprintf(err, len,
			 "--precision %s: modes are a8c8w4, w4a4, w8a8, w2a8",
			 c->precision);
		return -EINVAL;
	}
	return 0;
}
