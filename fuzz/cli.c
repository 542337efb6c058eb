// SPDX-License-Identifier: MIT
/*
 * CLI harness: nptool's whole command line, in-process.
 *
 * The input picks an argument vector from nptool's command table and its
 * option grammar: global options (--json, --pretty, -d with good and bad
 * device specs), a command, then up to 8 items, each one of the
 * command's options with a value of its kind (numbers at and past their
 * limits, NaN, sizes with units, seconds, card names, fault specs, model
 * files good and broken, paths that are missing, directories or FIFOs), a
 * positional argument, or raw bytes from the input. npt_main() runs it
 * against emulated cards and the tiny models of fuzz/corpus/gguf.
 *
 * Bounded per input: valid values stay small (a few tokens, sizes up to
 * 1 MiB, intervals up to 50 ms, counts up to 8), each costly command
 * starts with small settings (memtest --size 64k, top -n 1, run -n 2 -t
 * 4...) that later valid values replace, validate runs only quick and
 * exporter only with addresses it refuses (it would serve until a
 * signal); invalid values of every size are drawn freely.
 *
 * Invariants: the exit code is one of the documented 0..5, and with
 * --json stdout holds exactly one document (checked by the caller's
 * sanitizers for memory errors and leaks, here for the exit code).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "np_fuzz.h"

int npt_main(int argc, char **argv);

enum kind {
	K_FLAG,
	K_COUNT, /* a small count or id */
	K_SECS,
	K_SIZE,
	K_SIZES,
	K_FLOAT,
	K_MODEL,
	K_FILE, /* a text file to read */
	K_OUT, /* a path to write */
	K_INJECT,
	K_INJECT_DATA, /* faults that never stall a transfer */
	K_CARD,
	K_WORD, /* a value from the option's own word list */
};

struct opt {
	const char *name;
	enum kind kind;
	const char *const *words; /* K_WORD */
};

static const char *const levels[] = {"quick", "medium", "long", "", "x", NULL};
/* validate medium and long run full memory tests: not per input */
static const char *const vlevels[] = {"quick", "QUICK", "", "x", NULL};
static const char *const shapes[] = {"tiny", "huge", "", NULL};
static const char *const toks[] = {"spm", "bpe", "x", NULL};
static const char *const types[] = {"f32", "f16", "q8_0", "q4_0", "q5_k", NULL};
static const char *const chats[] = {"chatml", "llama3", "mistral-v7",
				    "x",      "",	NULL};
static const char *const archs[] = {"llama", "qwen2", "granite", "gpt2", NULL};
static const char *const queries[] = {"index,name", "temp_mc,power_mw,holder",
				      "holder_pid", "state,state",
				      "bogus",	    "",
				      ",",	    "index,,name",
				      NULL};
static const char *const formats[] = {"table", "csv", "json", "CSV", "", NULL};
/* exporter: only addresses it refuses, so it never starts serving (a
 * server would wait for a signal past the bound of an input) */
static const char *const bad_listens[] = {
	"x",	 "",	   "127.0.0.1:", ":99999",	 ":-1",
	":1x",	 "[::1]",  "host:80",	 "1.2.3.4.5:80", "[::1:80",
	"[]:80", ":65536", NULL};
static const char *const kinds[] = {"a/b", "NoSlash", "x/y/z", "/", NULL};
static const char *const subcmds[] = {"info",	"tokenize", "detokenize",
				      "mkgguf", "bogus",    NULL};

static const char *const counts[] = {
	"0",
	"1",
	"2",
	"3",
	"-1",
	"+1",
	"x",
	"",
	"0x2",
	"010",
	"4294967296",
	"18446744073709551616",
	"99999999999999999999",
	"1e3",
	"2 ",
};
static const char *const secs[] = {"0.01", "0.05",  "0",     "-1",
				   "nan",  "inf",   "1e-9",  "x",
				   "",	   "0.02s", "86401", "1e400"};
static const char *const sizes[] = {"4k",  "64K", "1M",	 "4096",
				    "7",   "0",	  "1x",	 "",
				    "-4k", "16G", "1e3", "18446744073709551615",
				    "8b",  "4KiB"};
static const char *const size_lists[] = {
	"4K", "4K,64K", "0", ",", "4K,,", "32M", "x", "1M,4k,7", ""};
static const char *const floats[] = {"0",  "0.5", "1",	    "1.5",   "-0",
				     "-1", "nan", "inf",    "-inf",  "1e-45",
				     "x",  "",	  "0x1p-3", "3.4e38"};
static const char *const injects[] = {
	"1:dead",
	"0:remove",
	"1:hang:engine=compute,n=1",
	"2:dma-error:engine=1,n=1",
	"1:sram-ue",
	"1:sram-ce",
	"0:sram-flip:addr=0x1000,bits=2",
	"1:overheat",
	"99:dead",
	"dead",
	":dead",
	"1:",
	"1:bogus",
	"-1:dead",
	"1:hang:engine=9,n=0",
	"4294967296:dead",
	"emu:1:dead",
	"4e50454d00000001:sram-ue",
	"4E50454D00000002:hang:engine=1,n=1",
	"0000:03:00.0:dead",
	"03:00.0:overheat",
	"emu::dead",
};
/* verify reads each card back: a dead or hung card costs it a context
 * timeout per read (35 s in all), past the bound of an input */
static const char *const data_injects[] = {
	"1:sram-ue",
	"1:sram-ce",
	"0:sram-flip:addr=0x1000,bits=2",
	"0:sram-flip:addr=0x1000,bits=1",
	"1:overheat",
	"99:sram-ue",
	"1:bogus",
	"x",
	"2:dma-error:engine=1,n=1",
	"emu:0:sram-ue",
	"4e50454d00000001:overheat",
	"0000:00:00.0:sram-ce",
};
static const char *const cards[] = {"0",
				    "1",
				    "2",
				    "emu:0",
				    "emu:1",
				    "99",
				    "-1",
				    "x",
				    "",
				    "0000:03:00.0",
				    "03:00.0",
				    "4e50454d00000001",
				    "4E50454D00000000",
				    "4e50454d000000ff",
				    "18446744073709551616"};
static const char *const specs[] = {"emu:1",
				    "emu:2",
				    "emu:3",
				    "emu:0",
				    "emu:65",
				    "foo",
				    "vfio:zz",
				    "emu:",
				    "",
				    "emu:2,emu:3",
				    "vfio:4e50454d00000001",
				    "vfio:03:00.0,FFFFFFFFFFFFFFFF"};

/* Command options (getopt spelling); NULL name ends a list. */
static const struct opt o_list[] = {
	{.name = "--query", .kind = K_WORD, .words = queries},
	{.name = "--format", .kind = K_WORD, .words = formats},
	{.name = NULL}};
static const struct opt o_status[] = {
	{.name = "-i", .kind = K_SECS},
	{.name = "--query", .kind = K_WORD, .words = queries},
	{.name = "--format", .kind = K_WORD, .words = formats},
	{.name = NULL}};
static const struct opt o_exporter[] = {
	{.name = "--listen", .kind = K_WORD, .words = bad_listens},
	{.name = NULL}};
static const struct opt o_top[] = {{.name = "-i", .kind = K_SECS},
				   {.name = "-n", .kind = K_COUNT},
				   {.name = NULL}};
static const struct opt o_pipeline[] = {{.name = "-i", .kind = K_SECS},
					{.name = "-m", .kind = K_MODEL},
					{.name = NULL}};
static const struct opt o_reset[] = {{.name = "--all", .kind = K_FLAG},
				     {.name = "", .kind = K_CARD},
				     {.name = NULL}};
static const struct opt o_verify[] = {
	{.name = "-m", .kind = K_MODEL},
	{.name = "-c", .kind = K_COUNT},
	{.name = "--inject", .kind = K_INJECT_DATA},
	{.name = NULL}};
static const struct opt o_memtest[] = {
	{.name = "--sram", .kind = K_FLAG},
	{.name = "--fb", .kind = K_FLAG},
	{.name = "--size", .kind = K_SIZE},
	{.name = "--level", .kind = K_WORD, .words = levels},
	{.name = "", .kind = K_CARD},
	{.name = NULL}};
static const struct opt o_dma[] = {{.name = "--sizes", .kind = K_SIZES},
				   {.name = "--iterations", .kind = K_COUNT},
				   {.name = "", .kind = K_CARD},
				   {.name = NULL}};
static const struct opt o_p2p[] = {{.name = "--size", .kind = K_SIZE},
				   {.name = "--iterations", .kind = K_COUNT},
				   {.name = "--bounce", .kind = K_FLAG},
				   {.name = "", .kind = K_CARD},
				   {.name = NULL}};
static const struct opt o_validate[] = {
	{.name = "--model", .kind = K_MODEL},
	{.name = "", .kind = K_WORD, .words = vlevels},
	{.name = NULL}};
static const struct opt o_cdi[] = {
	{.name = "-o", .kind = K_OUT},
	{.name = "--kind", .kind = K_WORD, .words = kinds},
	{.name = NULL}};
static const char *const precs[] = {"a8c8w4",	"w4a4", "w8a8", "w2a8",
				    "A8-C8-W4", "w4",	"",	NULL};
static const char *const lprecs[] = {"0:w8a8", "0-1:w2a8,3:w4a4", "9-2:w8a8",
				     "0:",     ":w8a8",		  "0-99:a8c8w4",
				     NULL};
static const struct opt o_run[] = {
	{.name = "-m", .kind = K_MODEL},
	{.name = "-p", .kind = K_WORD, .words = levels},
	{.name = "-f", .kind = K_FILE},
	{.name = "-n", .kind = K_COUNT},
	{.name = "-M", .kind = K_COUNT},
	{.name = "-c", .kind = K_COUNT},
	{.name = "-t", .kind = K_COUNT},
	{.name = "--max-seq", .kind = K_COUNT},
	{.name = "--precision", .kind = K_WORD, .words = precs},
	{.name = "--layer-precision", .kind = K_WORD, .words = lprecs},
	{.name = "--temperature", .kind = K_FLOAT},
	{.name = "--top-k", .kind = K_COUNT},
	{.name = "--top-p", .kind = K_FLOAT},
	{.name = "--seed", .kind = K_COUNT},
	{.name = "--follow", .kind = K_COUNT},
	{.name = "--no-stop", .kind = K_FLAG},
	{.name = "--no-cache", .kind = K_FLAG},
	{.name = "-q", .kind = K_FLAG},
	{.name = "--recover", .kind = K_FLAG},
	{.name = "--inject", .kind = K_INJECT},
	{.name = "--inject-after", .kind = K_COUNT},
	{.name = "--chat", .kind = K_FLAG},
	{.name = "--chat-template", .kind = K_WORD, .words = chats},
	{.name = "--special", .kind = K_FLAG},
	{.name = NULL}};
static const struct opt o_model[] = {
	{.name = "", .kind = K_WORD, .words = subcmds},
	{.name = "", .kind = K_MODEL},
	{.name = "-f", .kind = K_FILE},
	{.name = "--bos", .kind = K_FLAG},
	{.name = "", .kind = K_COUNT},
	{.name = "--shape", .kind = K_WORD, .words = shapes},
	{.name = "--text", .kind = K_FILE},
	{.name = "--out", .kind = K_OUT},
	{.name = "--layers", .kind = K_COUNT},
	{.name = "--dim", .kind = K_COUNT},
	{.name = "--vocab", .kind = K_COUNT},
	{.name = "--tok", .kind = K_WORD, .words = toks},
	{.name = "--type", .kind = K_WORD, .words = types},
	{.name = "--seed", .kind = K_COUNT},
	{.name = "--special", .kind = K_FLAG},
	{.name = "--arch", .kind = K_WORD, .words = archs},
	{.name = NULL}};
static const struct opt o_compile[] = {
	{.name = "", .kind = K_MODEL},
	{.name = "--cards", .kind = K_COUNT},
	{.name = "--batch", .kind = K_COUNT},
	{.name = "--max-seq", .kind = K_COUNT},
	{.name = "--out-cards", .kind = K_COUNT},
	{.name = "--precision", .kind = K_WORD, .words = precs},
	{.name = "--layer-precision", .kind = K_WORD, .words = lprecs},
	{.name = "-o", .kind = K_OUT},
	{.name = "--calib", .kind = K_FILE},
	{.name = NULL}};
static const struct opt o_bench[] = {
	{.name = "--model-shape", .kind = K_FILE},
	{.name = "-n", .kind = K_COUNT},
	{.name = "-M", .kind = K_COUNT},
	{.name = "-c", .kind = K_COUNT},
	{.name = "--out-cards", .kind = K_COUNT},
	{.name = "--prompt", .kind = K_COUNT},
	{.name = "--generate", .kind = K_COUNT},
	{.name = "--hosts", .kind = K_COUNT},
	{.name = "--cards-per-host", .kind = K_COUNT},
	{.name = "--cards-per-layer", .kind = K_COUNT},
	{.name = "--precision", .kind = K_WORD, .words = precs},
	{.name = "--route-host", .kind = K_FLAG},
	{.name = "--sensitivity", .kind = K_FLAG},
	{.name = "--published", .kind = K_FLAG},
	{.name = NULL}};
static const char *const ev_kinds[] = {
	"error",	  "reset", "recovery", "thermal",
	"fault-injected", "bogus", "",	       NULL};
static const char *const ev_since[] = {"0",
				       "60",
				       "2026-01-01T00:00:00Z",
				       "2026-01-01T00:00:00.5",
				       "2026-13-01T00:00:00Z",
				       "yesterday",
				       "-1",
				       NULL};
static const struct opt o_events[] = {
	{.name = "-n", .kind = K_COUNT},
	{.name = "--since", .kind = K_WORD, .words = ev_since},
	{.name = "--card", .kind = K_CARD},
	{.name = "--kind", .kind = K_WORD, .words = ev_kinds},
	{.name = NULL}};
static const char *const cache_subs[] = {"list", "clear", "bogus", NULL};
static const struct opt o_cache[] = {
	{.name = "", .kind = K_WORD, .words = cache_subs},
	{.name = "--keep", .kind = K_COUNT},
	{.name = NULL}};
static const struct opt o_none[] = {{.name = NULL}};

static const struct {
	const char *name;
	const struct opt *opts;
} cmds[] = {
	{"list", o_list},	  {"info", o_none},
	{"status", o_status},	  {"top", o_top},
	{"pipeline", o_pipeline}, {"reset", o_reset},
	{"verify", o_verify},	  {"memtest", o_memtest},
	{"dma", o_dma},		  {"p2p", o_p2p},
	{"validate", o_validate}, {"doctor", o_none},
	{"cdi", o_cdi},		  {"run", o_run},
	{"model", o_model},	  {"compile", o_compile},
	{"bench", o_bench},	  {"help", o_none},
	{"bogus", o_none},	  {"topo", o_none},
	{"exporter", o_exporter}, {"events", o_events},
	{"cache", o_cache},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_ARGS 40

/* Files the values point at, made once. */
static char models[6][256], files[5][256], outs[3][256], journal[256],
	cache[256];

static void make_files(void)
{
	static bool done;
	char dir[] = "/tmp/np-fuzz-cli-XXXXXX";
	FILE *f;

	if (done)
		return;
	done = true;
	NP_FUZZ_ASSERT(mkdtemp(dir), "mkdtemp");
	snprintf(models[0], sizeof(models[0]), "%s",
		 NP_FUZZ_DIR "/corpus/gguf/valid-q8_0-spm.gguf");
	snprintf(models[1], sizeof(models[1]), "%s",
		 NP_FUZZ_DIR "/corpus/gguf/valid-f16-bpe.gguf");
	snprintf(models[2], sizeof(models[2]), "%s/missing.gguf", dir);
	snprintf(models[3], sizeof(models[3]), "%s", dir);
	snprintf(models[4], sizeof(models[4]), "%s/fifo", dir);
	NP_FUZZ_ASSERT(!mkfifo(models[4], 0600), "mkfifo");
	snprintf(models[5], sizeof(models[5]), "%s/text.gguf", dir);
	snprintf(files[0], sizeof(files[0]), "%s/prompts.txt", dir);
	f = fopen(files[0], "w");
	NP_FUZZ_ASSERT(f, "prompts file");
	fputs("Hello there.\nThe sea is calm.\n\n\x1b[2J\n", f);
	fclose(f);
	snprintf(files[1], sizeof(files[1]), "%s/empty.txt", dir);
	fclose(fopen(files[1], "w"));
	/* not a model: the text file under a .gguf name */
	NP_FUZZ_ASSERT(!link(files[0], models[5]), "link");
	snprintf(files[2], sizeof(files[2]), "%s", models[2]);
	snprintf(files[3], sizeof(files[3]), "%s", dir);
	snprintf(files[4], sizeof(files[4]), "%s",
		 NP_FUZZ_DIR "/../data/shapes/tiny.shape");
	snprintf(outs[0], sizeof(outs[0]), "%s/out", dir);
	snprintf(outs[1], sizeof(outs[1]), "%s/missing-dir/out", dir);
	snprintf(outs[2], sizeof(outs[2]), "%s", dir);
	/* the files of valid models must be there; run and verify without
	 * -m load the first (the build's demo model may not exist) */
	NP_FUZZ_ASSERT(!access(models[0], R_OK), "%s", models[0]);
	setenv("NP_MODEL", models[0], 1);
	/* the runs' events, which events reads back */
	snprintf(journal, sizeof(journal), "%s/events.jsonl", dir);
	setenv("NP_EVENT_LOG", journal, 1);
	/* runs cache their images, and cache clear empties, in the
	 * harness's own directory, never the user's */
	snprintf(cache, sizeof(cache), "%s/cache", dir);
	setenv("NP_CACHE_DIR", cache, 1);
	/* status, top and exporter on emu: specs look for a running npd
	 * (npd's default port): never one of this host's here */
	setenv("NP_NPD", "off", 1);
}

/* A value of kind k: an entry of a table picked by the next byte. */
static const char *value(struct np_fuzz_in *in, const struct opt *o)
{
	uint8_t b = np_fuzz_u8(in);

	switch (o->kind) {
	case K_COUNT:
		return counts[b % N(counts)];
	case K_SECS:
		return secs[b % N(secs)];
	case K_SIZE:
		return sizes[b % N(sizes)];
	case K_SIZES:
		return size_lists[b % N(size_lists)];
	case K_FLOAT:
		return floats[b % N(floats)];
	case K_MODEL:
		return models[b % N(models)];
	case K_FILE:
		return files[b % N(files)];
	case K_OUT:
		return outs[b % N(outs)];
	case K_INJECT:
		return injects[b % N(injects)];
	case K_INJECT_DATA:
		return data_injects[b % N(data_injects)];
	case K_CARD:
		return cards[b % N(cards)];
	case K_WORD: {
		size_t n = 0;

		while (o->words[n])
			n++;
		return o->words[b % n];
	}
	case K_FLAG:
		break;
	}
	return NULL;
}

/* Bounds put before the fuzzed items (so valid values drawn later, all
 * small, override them; see the header). */
static const char *const *bounds(const char *cmd)
{
	static const struct {
		const char *cmd;
		const char *const args[8];
	} b[] = {
		{"status", {"-i", "0.01"}},
		{"top", {"-n", "1", "-i", "0.01"}},
		{"pipeline", {"-i", "0.2"}},
		{"memtest", {"--size", "64k", "--level", "quick"}},
		{"dma", {"--sizes", "4K", "--iterations", "2"}},
		{"p2p", {"--size", "64k", "--iterations", "2"}},
		{"run", {"-n", "2", "-M", "1", "-t", "4"}},
		{"verify", {"-c", "2"}},
		/* never the default address: every --listen drawn is bad */
		{"exporter", {"--listen", "x"}},
	};

	for (size_t i = 0; i < N(b); i++)
		if (!strcmp(b[i].cmd, cmd))
			return b[i].args;
	return NULL;
}

int np_fuzz_cli(const uint8_t *data, size_t size)
{
	struct np_fuzz_in in = {data, size};
	char *argv[MAX_ARGS + 1];
	char raw[4][17];
	int argc = 0, rc;
	uint8_t g = np_fuzz_u8(&in), items;
	const char *cmd, *const *pre;
	const struct opt *opts;
	uint8_t c;
	size_t nopts = 0, nraw = 0;

	make_files();
	argv[argc++] = "nptool";
	if (g & 1)
		argv[argc++] = "--json";
	if (g & 2)
		argv[argc++] = "-p";
	if (g & 4) {
		argv[argc++] = "-d";
		argv[argc++] = (char *)specs[(g >> 4) % N(specs)];
	} else {
		argv[argc++] = "-d";
		argv[argc++] = "emu:3";
	}
	if (g & 8)
		argv[argc++] = "--bogus";
	c = np_fuzz_u8(&in) % N(cmds);
	cmd = cmds[c].name;
	opts = cmds[c].opts;
	while (opts[nopts].name)
		nopts++;
	argv[argc++] = (char *)cmd;
	pre = bounds(cmd);
	for (size_t i = 0; pre && pre[i]; i++)
		argv[argc++] = (char *)pre[i];
	items = np_fuzz_u8(&in) % 9;
	for (uint8_t k = 0; k < items && argc + 2 < MAX_ARGS - 4; k++) {
		uint8_t b = np_fuzz_u8(&in);
		const struct opt *o;

		/* one item in 16 is raw bytes of the input */
		if (b % 16 == 15 || !nopts) {
			size_t len = np_fuzz_u8(&in) % 17;
			char *r = raw[nraw++ % N(raw)];

			for (size_t i = 0; i < len; i++)
				r[i] = (char)(np_fuzz_u8(&in) | 1);
			r[len] = 0;
			argv[argc++] = r;
			continue;
		}
		o = &opts[b % nopts];
		if (*o->name)
			argv[argc++] = (char *)o->name;
		if (o->kind != K_FLAG)
			argv[argc++] = (char *)value(&in, o);
	}
	argv[argc] = NULL;
	/* top -n N runs N intervals: a large valid N (4294967295) would run
	 * for days; the harness keeps valid counts of top to 8 */
	for (int i = 1; i + 1 < argc && !strcmp(cmd, "top"); i++)
		if (!strcmp(argv[i], "-n") &&
		    strtoull(argv[i + 1], NULL, 0) > 8 &&
		    !strchr(argv[i + 1], '-'))
			argv[i + 1] = "8";
	rc = npt_main(argc, argv);
	NP_FUZZ_ASSERT(rc >= 0 && rc <= 5, "exit code %d", rc);
	return 0;
}
