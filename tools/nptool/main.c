// SPDX-License-Identifier: MIT
/*
 * nptool: see and fix np cards.
 *
 * One binary; subcommands come from one static table (as in bpftool and
 * iproute2). Global options come before the command, the command's own
 * options after it. Every command writes a human-readable report, or with
 * --json one JSON document (docs/nptool.md has the schema); the exit code
 * says whether the thing asked for really succeeded (nptool(1)).
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <np/np.h>

#include "nptool.h"
#include "sysfs.h"

#define CMD(n, a, h)                                                     \
	{                                                                \
		.name = #n, .handler = npt_cmd_##n, .args = a, .help = h \
	}

static const struct npt_cmd cmds[] = {
	CMD(list, "[--query FIELD,...] [--format table|csv|json]",
	    "one line per card: BDF, IDs, firmware, serial, link, "
	    "driver, IOMMU group, state, holder"),
	CMD(info, "", "everything known about each card"),
	CMD(status,
	    "[-i SECONDS] [--query FIELD,...] [--format table|csv|json]",
	    "temperature, power, clocks, error counters, DMA activity, "
	    "holder"),
	{.name = "top",
	 .handler = npt_cmd_top,
	 .args = "[-i SECONDS] [-n COUNT]",
	 .help = "status, refreshed every interval until interrupted",
	 .stream = true},
	CMD(topo, "",
	    "PCIe path type of every card pair (PIX, PXB, PHB, NODE, SYS), "
	    "NUMA node and local CPUs of each card"),
	CMD(exporter, "[--listen ADDRESS:PORT]",
	    "serve every card's telemetry, error and throttle counters to "
	    "Prometheus (default 127.0.0.1:9400, /metrics)"),
	CMD(pipeline, "[-i SECONDS] [-m GGUF]",
	    "during a model run: per card occupancy and bubbles, the "
	    "bottleneck card"),
	CMD(events, "[-n N] [--since SECONDS|TIME] [--card CARD] [--kind KIND]",
	    "the last events of the journal: card failures, resets, "
	    "recoveries, thermal episodes, injected faults"),
	CMD(reset, "--all | CARD...",
	    "reset cards and verify that they came back healthy"),
	CMD(verify, "[-m MODEL] [-c CARDS] [--inject CARD:FAULT]...",
	    "load a model, read every card's weights back and check their "
	    "CRC32C against the host copy"),
	CMD(memtest,
	    "[--sram | --fb] [--size BYTES] [--level quick|medium|long] "
	    "[CARD...]",
	    "SRAM and frame buffer pattern tests"),
	CMD(dma, "[--sizes LIST] [--iterations N] [CARD...]",
	    "host<->card bandwidth and latency per transfer size"),
	CMD(p2p, "[--size BYTES] [--iterations N] [--bounce] [CARD...]",
	    "card->card integrity and bandwidth for every pair, as a matrix"),
	CMD(validate, "[--model GGUF] [quick|medium|long]",
	    "diagnostic levels chaining the other tests; a line per check"),
	CMD(doctor, "",
	    "check the host setup; print the command that fixes each problem"),
	CMD(cdi, "[-o FILE] [--kind VENDOR/CLASS]",
	    "write a Container Device Interface spec for the cards"),
	{.name = "run",
	 .handler = npt_cmd_run,
	 .args = "[-m MODEL] [-p PROMPT]... [-f FILE] [-n N] [-M M] [-c CARDS] "
		 "[-t TOKENS] [--max-seq N] [--precision MODE] "
		 "[--layer-precision SPEC] [--temperature T] [--top-k K] "
		 "[--top-p P] [--seed S] [--follow R] [--no-stop] [--no-cache] "
		 "[-q] "
		 "[--recover] [--inject CARD:FAULT]... [--inject-after N] "
		 "[--chat] [--chat-template NAME] [--special]",
	 .help = "run a model on the cards: N requests in M micro-batches, "
		 "text streamed, then tokens/s, latency and utilization",
	 .options = npt_run_options},
	CMD(model,
	    "info FILE | tokenize FILE [--bos] [--special] [--ids-out FILE] "
	    "TEXT|-f FILE | detokenize "
	    "FILE ID... | mkgguf --shape tiny|medium|granite3b "
	    "[--arch llama|llama3|mistral|granite|qwen2] "
	    "[--layers|--dim|--heads|--kv-heads|--ffn|--vocab N]... [--tok "
	    "spm|bpe] [--type f32|f16|bf16|q8_0|q6_k|q5_k|q5_1|q5_0|q4_k|"
	    "q4_1|q4_0|iq4_nl|q3_k|q2_k] [--seed N | --weights FILE] "
	    "--text FILE --out FILE | greedy FILE [-n N] TEXT|-f FILE | "
	    "quality MODEL TEXT [--tokens N] [--calib FILE] "
	    "[--calib-tokens N] [--precision LIST] [--ptq "
	    "none,clip,smooth,rotate,all] [--alpha A] [--no-ggml]",
	    "GGUF models: metadata, tokenizer, generate a model, the float "
	    "reference's greedy continuation, quantization quality"),
	CMD(cache, "list | clear [--keep SIZE]  [--dir DIR]",
	    "the image cache of compiled models: its entries, or remove "
	    "the least recently used"),
	CMD(compile,
	    "FILE [--cards N] [--batch N] [--max-seq N] [--out-cards N] "
	    "[--precision MODE] [--layer-precision SPEC] "
	    "[-o DIR [--calib TEXTFILE]]",
	    "map a model onto cards: layers and SRAM per card, budget; -o "
	    "writes the card images"),
	CMD(bench,
	    "[--model-shape FILE|GGUF] [-n N] [-M M] [-c CARDS] [--out-cards "
	    "K] "
	    "[--prompt T] [--generate T] [--hosts H] [--cards-per-host C] "
	    "[--cards-per-layer 1|2] [--precision P] [--route-host] "
	    "[--sensitivity] [--published]",
	    "what real cards would do with a model shape: tokens/s, per "
	    "card, per-token latency, time per stage (performance model)"),
};

static const struct npt_cmd *cur_cmd;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: nptool [OPTIONS] COMMAND [ARGS]\n"
		"       nptool help [COMMAND]\n"
		"\n"
		"Options:\n"
		"  -j, --json           one JSON document on stdout (schema "
		"%d)\n"
		"  -p, --pretty         indented JSON (implies --json)\n"
		"  -d, --devices SPEC   cards to use (default: $NP_DEVICES, "
		"else vfio:all)\n"
		"  -h, --help           this help\n"
		"  -V, --version        version and JSON schema version\n"
		"\n"
		"Commands:\n",
		NPT_SCHEMA_VERSION);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].help);
	fprintf(f, "\nExit codes: 0 ok, 1 check failed, 2 usage, 3 no device, "
		   "4 device error, 5 component unavailable. See nptool(1).\n");
}

static void cmd_usage(FILE *f, const struct npt_cmd *c)
{
	fprintf(f, "Usage: nptool [OPTIONS] %s %s\n  %s\n", c->name, c->args,
		c->help);
	if (c->options)
		fprintf(f, "\nOptions:\n%s", c->options);
}

/* npt_err() also serves libnp's log callback, called from its threads */
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;

void npt_err(struct npt *t, const char *fmt, ...)
{
	char *msg = NULL, *safe;
	char **grown;
	size_t len;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (!msg) {
		fprintf(stderr, "nptool: out of memory\n");
		return;
	}
	/* messages quote file contents (an architecture, a name): no
	 * control character reaches the terminal */
	len = strlen(msg);
	safe = malloc(len * 4 + 1);
	if (safe) {
		npt_escape(safe, len * 4 + 1, msg, len, false);
		free(msg);
		msg = safe;
	}
	pthread_mutex_lock(&err_lock);
	npt_progress_clear();
	fprintf(stderr, "nptool: %s\n", msg);
	grown = realloc(t->errors, (t->nerrors + 1) * sizeof(*grown));
	if (grown) {
		t->errors = grown;
		t->errors[t->nerrors++] = msg;
	} else {
		free(msg);
	}
	pthread_mutex_unlock(&err_lock);
}

int npt_usage(struct npt *t, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	npt_err(t, "%s", msg);
	if (cur_cmd)
		cmd_usage(stderr, cur_cmd);
	return NPT_EXIT_USAGE;
}

void npt_doc_begin(struct npt *t)
{
	if (!t->json)
		return;
	if (npt_json_new(stdout, t->pretty, &t->j)) {
		fprintf(stderr, "nptool: out of memory\n");
		exit(NPT_EXIT_DEVERR);
	}
	npt_json_obj_open(t->j);
	npt_json_kint(t->j, "schema_version", NPT_SCHEMA_VERSION);
	npt_json_kstr(t->j, "nptool_version", NPT_VERSION);
	npt_json_kstr(t->j, "command", t->cmd);
}

void npt_doc_end(struct npt *t, int rc)
{
	if (!t->j)
		return;
	npt_json_key(t->j, "errors");
	npt_json_arr_open(t->j);
	for (size_t i = 0; i < t->nerrors; i++)
		npt_json_str(t->j, t->errors[i]);
	npt_json_arr_close(t->j);
	npt_json_kint(t->j, "exit_code", rc);
	npt_json_obj_close(t->j);
	npt_json_free(t->j);
	t->j = NULL;
	for (size_t i = 0; i < t->nerrors; i++)
		free(t->errors[i]);
	t->nerrors = 0;
}

static const struct npt_cmd *find_cmd(const char *name)
{
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(cmds[i].name, name))
			return &cmds[i];
	return NULL;
}

/* "nptool CMD ... --help" anywhere before a "--" */
static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			return false;
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return true;
	}
	return false;
}

/* A mistake on the global command line or in the command name: the
 * message, the usage, and with --json an envelope for command name (as
 * typed; "" when there is none). */
static int main_usage(struct npt *t, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * -d vfio:SERIAL[,...]: a card named by its serial (16 hex digits, as
 * list shows it) becomes its PCI address, so -d takes the card names the
 * commands take (index and name need a context; the spec is what makes
 * one). 0, or why not into why.
 */
static int resolve_serials(struct npt *t, char *why, size_t len)
{
	static char spec[NP_MAX_CARDS * 20 + 8];
	const char *s = t->spec, *item;
	struct npt_pci *pci = NULL;
	size_t n = 0, off;
	bool any = false;

	if (strncmp(s, "vfio:", 5) || !strcmp(s, "vfio:all") ||
	    strlen(s) >= sizeof(spec))
		return 0;
	for (item = s + 5; *item;) {
		size_t l = strcspn(item, ",");

		any |= l == 16 && strspn(item, "0123456789abcdefABCDEF") >= 16;
		item += l + !!item[l];
	}
	if (!any)
		return 0;
	npt_pci_cards(&pci, &n);
	off = (size_t)snprintf(spec, sizeof(spec), "vfio:");
	for (item = s + 5; *item;) {
		size_t l = strcspn(item, ",");
		char serial[40];
		bool found = false;

		if (l == 16 && strspn(item, "0123456789abcdefABCDEF") >= 16) {
			for (size_t i = 0; i < n && !found; i++) {
				if (npt_card_attr(pci[i].bdf, "serial", serial,
						  sizeof(serial)) ||
				    strncasecmp(serial, item, 16))
					continue;
				off += (size_t)snprintf(
					spec + off, sizeof(spec) - off, "%s%s",
					off > 5 ? "," : "", pci[i].bdf);
				found = true;
			}
			if (!found) {
				snprintf(
					why, len,
					"-d %s: no card with serial %.16s (the "
					"np_vfio_pci driver shows serials; "
					"'nptool list' lists them)",
					s, item);
				free(pci);
				return -ENOENT;
			}
		} else {
			off += (size_t)snprintf(spec + off, sizeof(spec) - off,
						"%s%.*s", off > 5 ? "," : "",
						(int)l, item);
		}
		item += l + !!item[l];
	}
	free(pci);
	t->spec = spec;
	return 0;
}

static int main_usage(struct npt *t, const char *name, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	t->cmd = name;
	npt_doc_begin(t);
	npt_err(t, "%s", msg);
	if (!t->json)
		usage(stderr);
	npt_doc_end(t, NPT_EXIT_USAGE);
	return NPT_EXIT_USAGE;
}

static int help(struct npt *t, int argc, char **argv)
{
	const struct npt_cmd *c;

	if (argc < 2) {
		usage(stdout);
		return NPT_EXIT_OK;
	}
	c = find_cmd(argv[1]);
	if (!c)
		return main_usage(t, "help",
				  "unknown command '%s'; 'nptool help' lists "
				  "them",
				  argv[1]);
	cmd_usage(stdout, c);
	return NPT_EXIT_OK;
}

/* The global options, then the command. Returns an exit code. */
static int dispatch(struct npt *t, int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"pretty", no_argument, NULL, 'p'},
		{"devices", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	const char *bad = NULL;
	int c, rc;

	/* all of them first: --json after a bad option still counts */
	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, "+jpd:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			t->json = true;
			break;
		case 'p':
			t->json = true;
			t->pretty = true;
			break;
		case 'd':
			t->spec = optarg;
			break;
		case 'h':
			usage(stdout);
			return NPT_EXIT_OK;
		case 'V':
			printf("nptool %s (JSON schema %d)\n", NPT_VERSION,
			       NPT_SCHEMA_VERSION);
			return NPT_EXIT_OK;
		default:
			if (!bad)
				bad = argv[optind - 1];
			break;
		}
	}
	argc -= optind;
	argv += optind;
	if (bad)
		return main_usage(t, argc ? argv[0] : "",
				  "bad option '%s' (or its value missing)",
				  bad);
	if (argc < 1)
		return main_usage(t, "", "no command given");
	if (!strcmp(argv[0], "help"))
		return help(t, argc, argv);
	cur_cmd = find_cmd(argv[0]);
	if (!cur_cmd)
		return main_usage(t, argv[0],
				  "unknown command '%s'; 'nptool help' lists "
				  "them",
				  argv[0]);
	if (wants_help(argc, argv)) {
		cmd_usage(stdout, cur_cmd);
		return NPT_EXIT_OK;
	}
	{
		char why[256];

		if (resolve_serials(t, why, sizeof(why)))
			return main_usage(t, argv[0], "%s", why);
	}
	t->cmd = cur_cmd->name;
	opterr = 1;
	optind = 0; /* the command parses its own options from argv[0] on */
	if (cur_cmd->stream)
		return cur_cmd->handler(t, argc, argv);
	npt_doc_begin(t);
	rc = cur_cmd->handler(t, argc, argv);
	npt_doc_end(t, rc);
	return rc;
}

int npt_main(int argc, char **argv)
{
	struct npt t = {0};
	int rc;

	cur_cmd = NULL;
	t.spec = getenv("NP_DEVICES");
	if (!t.spec || !*t.spec)
		t.spec = "vfio:all";
	rc = dispatch(&t, argc, argv);
	for (size_t i = 0; i < t.nerrors; i++)
		free(t.errors[i]);
	free(t.errors);
	fflush(stdout);
	return rc;
}
