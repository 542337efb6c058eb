// SPDX-License-Identifier: MIT
/*
 * Bad input and faults that once got through (issue 22): out-of-range
 * options, FIFOs and directories and unreadable files as input, usage
 * errors under --json, control characters from a model file, faults that
 * never struck, the byte-identical text of a recovered run, and a model
 * file rewritten under a running model.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <np/model.h>
#include <np/np.h>
#include <np/pipeline.h>

#include "test.h"

static char dir[64];

static void robust_setup(void)
{
	setenv("NP_DEVICES", "emu:6", 1);
	snprintf(dir, sizeof(dir), "/tmp/np-robust-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void robust_teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
	tst_pre_exec = NULL;
}

static char *path_in(const char *name)
{
	static char p[4][128];
	static unsigned int k;
	char *s = p[k++ % 4];

	snprintf(s, sizeof(p[0]), "%s/%s", dir, name);
	return s;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b;
	long n;

	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	b = malloc((size_t)n);
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return b;
}

static void spill(const char *path, const void *b, size_t len)
{
	FILE *f = fopen(path, "wb");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(b, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

/* The demo model with the string value of key replaced (same length). */
static const char *patched_model(const char *name, const char *key,
				 const char *value)
{
	size_t len, klen = strlen(key);
	uint8_t *b = slurp(NPT_DEMO_MODEL, &len), *p;
	uint64_t vlen;

	p = memmem(b, len, key, klen);
	ck_assert_ptr_nonnull(p);
	memcpy(&vlen, p + klen + 4, 8);
	ck_assert_uint_eq(vlen, strlen(value));
	memcpy(p + klen + 12, value, vlen);
	spill(path_in(name), b, len);
	free(b);
	return path_in(name);
}

/* item 1: --max-seq 0 and 1 overflowed the prompt buffers */
START_TEST(test_max_seq)
{
	static const char *const seq[] = {"0", "1", "2"};
	struct tst_run r;

	for (size_t i = 0; i < 3; i++) {
		tst_run(&r, "run", "-q", "-m", NPT_DEMO_MODEL, "-n", "2", "-M",
			"2", "--max-seq", seq[i], NULL);
		ck_assert_msg(r.status == 2, "--max-seq %s: exit %d: %s",
			      seq[i], r.status, r.err);
		ck_assert_msg(strstr(r.err, "--max-seq"), "%s", r.err);
		tst_run_free(&r);
	}
}
END_TEST

static void alarm_10s(void)
{
	alarm(10);
}

/* item 3: a FIFO as the model is refused at once */
START_TEST(test_fifo_model)
{
	const char *fifo = path_in("model.fifo");
	struct tst_run r;

	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	tst_pre_exec = alarm_10s;
	tst_run(&r, "model", "info", fifo, NULL);
	ck_assert_msg(r.status == 2, "exit %d", r.status);
	ck_assert_ptr_nonnull(strstr(r.err, "not a regular file (a FIFO)"));
	tst_run_free(&r);
	tst_run(&r, "compile", fifo, NULL);
	ck_assert_msg(r.status == 2, "exit %d", r.status);
	tst_run_free(&r);
	tst_run(&r, "run", "-q", "-m", fifo, NULL);
	ck_assert_msg(r.status == 2, "exit %d", r.status);
	tst_run_free(&r);
}
END_TEST

/* item 4: usage errors before the command have their envelope too */
START_TEST(test_json_usage)
{
	struct tst_run r;

	tst_run(&r, "--json", "bogus", NULL);
	tst_envelope(&r, "bogus", 2);
	tst_run_free(&r);
	tst_run(&r, "--json", NULL);
	tst_envelope(&r, "", 2);
	tst_run_free(&r);
	tst_run(&r, "--json", "--bogus", "list", NULL);
	ck_assert_uint_eq(tst_jv_get(tst_envelope(&r, "list", 2), "errors")->n,
			  1);
	ck_assert_ptr_nonnull(strstr(r.out, "--bogus"));
	tst_run_free(&r);
	tst_run(&r, "--bogus", "--json", "list", NULL);
	tst_envelope(&r, "list", 2);
	tst_run_free(&r);
	tst_run(&r, "--json", "help", "bogus", NULL);
	tst_envelope(&r, "help", 2);
	tst_run_free(&r);
}
END_TEST

/* item 5: a name or architecture with terminal controls is escaped */
START_TEST(test_escape)
{
	const char *m = patched_model("name.gguf", "general.name",
				      "\033]0;pwned\007!!");
	struct tst_run r;

	tst_run(&r, "model", "info", m, NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_null(strchr(r.out, '\033'));
	ck_assert_ptr_nonnull(strstr(r.out, "\\x1b]0;pwned\\x07!!"));
	tst_run_free(&r);
	/* JSON keeps the exact string (escaped the JSON way) */
	tst_run(&r, "--json", "model", "info", m, NULL);
	ck_assert_str_eq(tst_jv_str(tst_envelope(&r, "model", 0), "name"),
			 "\033]0;pwned\007!!");
	tst_run_free(&r);

	m = patched_model("arch.gguf", "general.architecture", "\033[2J\033");
	tst_run(&r, "run", "-q", "-p", "hello", "-m", m, NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_null(strchr(r.err, '\033'));
	ck_assert_ptr_nonnull(strstr(r.err, "\\x1b[2J"));
	tst_run_free(&r);
}
END_TEST

/* item 6: NaN and out-of-range sampling options */
START_TEST(test_sampling_options)
{
	static const char *const bad[][2] = {
		{"--temperature", "nan"}, {"--temperature", "inf"},
		{"--temperature", "-1"},  {"--top-p", "nan"},
		{"--top-p", "1.5"},	  {"--top-p", "-0.5"},
	};
	struct tst_run r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tst_run(&r, "run", "-q", bad[i][0], bad[i][1], NULL);
		ck_assert_msg(r.status == 2, "%s %s: exit %d", bad[i][0],
			      bad[i][1], r.status);
		ck_assert_ptr_nonnull(strstr(r.err, bad[i][0]));
		tst_run_free(&r);
	}
}
END_TEST

/* item 6: a fault that never strikes is reported */
START_TEST(test_fault_never_struck)
{
	struct tst_run r;

	tst_run(&r, "run", "-q", "-m", NPT_DEMO_MODEL, "-c", "5", "-n", "4",
		"-M", "2", "-t", "4", "--no-stop", "--inject", "1:dead",
		"--inject-after", "1000", NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "--inject-after 1000: the run "
					    "delivered 16 tokens"));
	tst_run_free(&r);
	/* sram-ue only marks the card FATAL: not passed over. Whether the
	 * run sees it while it runs or only afterwards depends on how fast
	 * it is; either way the card and the error are named. */
	tst_run(&r, "run", "-q", "-m", NPT_DEMO_MODEL, "-c", "5", "-n", "4",
		"-M", "2", "-t", "4", "--no-stop", "--inject", "1:sram-ue",
		NULL);
	ck_assert_int_eq(r.status, 4);
	ck_assert_msg(strstr(r.err, "card emu:1 is fatal after the run (1 "
				    "uncorrected SRAM") ||
			      strstr(r.err, "card emu:1: uncorrected SRAM "
					    "error (NP_STATUS_FATAL"),
		      "%s", r.err);
	tst_run_free(&r);
}
END_TEST

static void as_nobody(void)
{
	ck_assert_int_eq(setgid(65534), 0);
	ck_assert_int_eq(setuid(65534), 0);
}

/* item 7: unreadable, looping and directory inputs are usage errors
 * that say what they are */
START_TEST(test_input_files)
{
	const char *loop_a = path_in("a.gguf"), *loop_b = path_in("b.gguf");
	struct tst_run r;

	tst_run(&r, "run", "-q", "-f", dir, NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "Is a directory"));
	tst_run_free(&r);
	tst_run(&r, "run", "-q", "-p", "hello", "-m", dir, NULL);
	ck_assert_int_eq(r.status, 2);
	tst_run_free(&r);

	ck_assert_int_eq(symlink(loop_b, loop_a), 0);
	ck_assert_int_eq(symlink(loop_a, loop_b), 0);
	tst_run(&r, "run", "-q", "-p", "hello", "-m", loop_a, NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "symbolic links"));
	tst_run_free(&r);
	tst_run(&r, "model", "info", loop_a, NULL);
	ck_assert_int_eq(r.status, 2);
	tst_run_free(&r);

	/* another user cannot read a file in our private directory */
	if (geteuid() == 0) {
		tst_pre_exec = as_nobody;
		tst_run(&r, "run", "-q", "-p", "hello", "-m",
			patched_model("x.gguf", "general.name", "np synthetic"),
			NULL);
		ck_assert_msg(r.status == 2, "exit %d: %s", r.status, r.err);
		ck_assert_ptr_nonnull(strstr(r.err, "Permission denied"));
		tst_run_free(&r);
		tst_pre_exec = NULL;
	}

	tst_run(&r, "run", "-q", "--inject", "99:dead", NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "no card 99"));
	tst_run_free(&r);
}
END_TEST

/* item 7: norm weights near the float limit are the model's fault */
START_TEST(test_huge_norms)
{
	size_t len;
	uint8_t *b = slurp(NPT_DEMO_MODEL, &len);
	struct np_gguf *g;
	const struct np_gguf_tensor *t;
	struct tst_run r;

	ck_assert_int_eq(np_gguf_open_mem(b, len, NULL, &g), 0);
	t = np_gguf_find_tensor(g, "blk.0.attn_norm.weight");
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(t->type, NP_GGML_F32);
	for (uint64_t i = 0; i < t->n_elems; i++) {
		float v = 3e38f;

		memcpy(b + ((const uint8_t *)t->data - b) + 4 * i, &v, 4);
	}
	np_gguf_close(g);
	spill(path_in("huge.gguf"), b, len);
	free(b);
	tst_run(&r, "run", "-q", "-p", "hello", "-m", path_in("huge.gguf"),
		NULL);
	ck_assert_msg(r.status == 2, "exit %d: %s", r.status, r.err);
	ck_assert_ptr_nonnull(strstr(r.err, "near the float limit"));
	tst_run_free(&r);
}
END_TEST

/* The text before the summary line of a run's stdout. */
static char *text_part(const char *out)
{
	const char *end = strstr(out, " requests, ");

	ck_assert_ptr_nonnull(end);
	while (end > out && end[-1] != '\n')
		end--;
	return strndup(out, (size_t)(end - out));
}

/* item 8: plain stdout under --recover equals a fault-free run's */
START_TEST(test_recover_stdout)
{
	struct tst_run ref, r;
	char *a, *b;

	tst_run(&ref, "run", "-m", NPT_DEMO_MODEL, "-c", "5", "-n", "4", "-M",
		"2", "-t", "8", "--no-stop", NULL);
	ck_assert_int_eq(ref.status, 0);
	tst_run(&r, "run", "-m", NPT_DEMO_MODEL, "-c", "5", "-n", "4", "-M",
		"2", "-t", "8", "--no-stop", "--recover", "--inject", "1:dead",
		"--inject-after", "6", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.err, "recovery 1: card 1"));
	a = text_part(ref.out);
	b = text_part(r.out);
	ck_assert_str_eq(b, a);
	free(a);
	free(b);
	tst_run_free(&ref);
	tst_run_free(&r);
}
END_TEST

/* a card that stopped answering is named as such, and left after one
 * context timeout, not one per DMA engine (found by the CLI fuzzer: the
 * run took 25 s) */
START_TEST(test_dead_card_quick)
{
	struct tst_run r;

	/* found by its registers, not by a request timing out (how soon
	 * is a benchmark's matter, not a test's) */
	tst_run(&r, "run", "-q", "-m", NPT_DEMO_MODEL, "-c", "5", "-n", "2",
		"-M", "1", "-t", "4", "--inject", "1:dead", NULL);
	ck_assert_int_eq(r.status, 4);
	ck_assert_msg(strstr(r.err, "card emu:1 does not answer (registers "
				    "read 0xffffffff)"),
		      "%s", r.err);
	tst_run_free(&r);
}
END_TEST

/* item 9: status on emulated cards says whose cards they are */
START_TEST(test_status_own_cards)
{
	struct tst_run r;

	tst_run(&r, "status", "-i", "0.01", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.err, "emu:6: these are 6 emulated "
					    "cards this nptool created"));
	tst_run_free(&r);
	tst_run(&r, "top", "-i", "0.01", "-n", "1", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.err, "this nptool created"));
	tst_run_free(&r);
}
END_TEST

static int keep_token(void *opaque, const struct np_token_event *e)
{
	int32_t *out = opaque;

	out[e->pos - 4] = e->token;
	return 0;
}

/* Greedy tokens of one request on a loaded pipeline. */
static void run_one(struct np_pipeline *p, int32_t *out, uint32_t n)
{
	static const int32_t prompt[] = {1, 5, 9, 12};
	struct np_request q = {
		.prompt = prompt, .n_prompt = 4, .max_tokens = n};
	struct np_request_stats rs;
	struct np_session_stats st = {.req = &rs};
	struct np_session_opts so = {
		.micro_batches = 1, .on_token = keep_token, .opaque = out};

	ck_assert_int_eq(np_session_run(p, &q, 1, &so, &st), 0);
	ck_assert_uint_eq(rs.tokens, n);
}

/* item 2: truncating the model file under a loaded pipeline faults
 * nothing; np's writer replaces a file instead of truncating it */
START_TEST(test_model_rewritten)
{
	const char *copy = path_in("copy.gguf");
	struct np_pipeline_opts po = {.max_sessions = 1, .max_seq = 64};
	struct np_pipeline *p;
	struct np_ctx *ctx;
	size_t len;
	uint8_t *b = slurp(NPT_DEMO_MODEL, &len);
	int32_t before[16], after[16];

	spill(copy, b, len);
	ck_assert_int_eq(np_open("emu:4", NULL, &ctx), 0);
	ck_assert_int_eq(np_model_load(ctx, copy, &po, &p), 0);
	run_one(p, before, 16);
	ck_assert_int_eq(truncate(copy, 0), 0);
	/* every token's embedding row comes from the model's data */
	run_one(p, after, 16);
	ck_assert_mem_eq(after, before, sizeof(before));
	np_pipeline_destroy(p);
	np_close(ctx);
	free(b);
}
END_TEST

START_TEST(test_writer_replaces)
{
	const char *path = path_in("w.gguf");
	struct np_gguf_writer *w;
	struct stat a, c;
	mode_t mask = umask(022);
	char buf[4];
	int fd = -1;

	umask(mask);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(np_gguf_writer_create(&w), 0);
		ck_assert_int_eq(np_gguf_writer_kv_u32(w, "n", (uint32_t)i), 0);
		ck_assert_int_eq(np_gguf_writer_save(w, path), 0);
		np_gguf_writer_destroy(w);
		if (i == 0) {
			fd = open(path, O_RDONLY);
			ck_assert_int_ge(fd, 0);
			ck_assert_int_eq(fstat(fd, &a), 0);
		}
	}
	/* the reader of the old file still has all of it */
	ck_assert_int_eq(fstat(fd, &c), 0);
	ck_assert_int_eq(c.st_size, a.st_size);
	ck_assert_int_eq(pread(fd, buf, 4, 0), 4);
	ck_assert_int_eq(memcmp(buf, "GGUF", 4), 0);
	close(fd);
	ck_assert_int_eq(stat(path, &c), 0);
	ck_assert_uint_ne(c.st_ino, a.st_ino);
	/* the mode open() would give it */
	ck_assert_uint_eq(c.st_mode & 0777, 0666 & ~mask);
}
END_TEST

/* issue 21: the prompt and the text apart, load time, prefill and decode
 * rates; the text is the tokens JSON reports */
START_TEST(test_run_output)
{
	static const char *const opts[] = {
		"--model",	"--prompt",	   "--prompt-file",
		"--requests",	"--micro-batches", "--cards",
		"--max-tokens", "--max-seq",	   "--temperature",
		"--top-k",	"--top-p",	   "--seed",
		"--follow",	"--no-stop",	   "--quiet",
		"--recover",	"--inject",	   "--inject-after",
		"--chat",	"--chat-template", "--special",
	};
	struct tst_run r, j;
	struct tst_jv *res;
	char want[512];

	tst_run(&j, "--json", "run", "-m", NPT_DEMO_MODEL, "-c", "5", "-n", "2",
		"-M", "1", "-t", "6", "--no-stop", "-p", "Hello world.", "-p",
		"The sea.", NULL);
	tst_envelope(&j, "run", 0);
	ck_assert_double_gt(tst_jv_num(j.json, "load_s"), 0);
	ck_assert_double_gt(tst_jv_num(j.json, "prefill_tokens_per_s"), 0);
	ck_assert_double_gt(tst_jv_num(j.json, "decode_tokens_per_s"), 0);
	res = tst_jv_get(j.json, "results");
	tst_run(&r, "run", "-m", NPT_DEMO_MODEL, "-c", "5", "-n", "2", "-M",
		"1", "-t", "6", "--no-stop", "-p", "Hello world.", "-p",
		"The sea.", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_eq(
		strstr(r.out, "[0] prompt: Hello world.\n[0] output: "), r.out);
	snprintf(want, sizeof(want), "\n[1] prompt: The sea.\n[1] output: %s\n",
		 tst_jv_str(tst_jv_at(res, 1), "text"));
	ck_assert_msg(strstr(r.out, want), "'%s' not in '%s'", want, r.out);
	ck_assert_ptr_nonnull(strstr(r.out, "\nload         "));
	ck_assert_ptr_nonnull(strstr(r.out, " prompt tokens/s\n"));
	ck_assert_ptr_nonnull(strstr(r.out, " generated tokens/s\n"));
	tst_run_free(&r);
	tst_run_free(&j);

	tst_run(&r, "run", "--help", NULL);
	ck_assert_int_eq(r.status, 0);
	/* each at the start of its own line ("  -m, --model" or
	 * "      --max-seq"), followed by its description */
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		char a[64], b[64];

		snprintf(a, sizeof(a), ", %s ", opts[i]);
		snprintf(b, sizeof(b), "\n      %s ", opts[i]);
		ck_assert_msg(strstr(r.out, a) || strstr(r.out, b),
			      "run --help: no line for %s", opts[i]);
	}
	tst_run_free(&r);
}
END_TEST

/* item 7: a hung compute queue is found on its own card, in proportion to
 * its jobs' time rather than after the whole context timeout (5 s) */
START_TEST(test_hang_named)
{
	struct tst_run ref, r;
	struct tst_jv *ev, *a, *b;

	tst_run(&ref, "--json", "run", "-m", NPT_DEMO_MODEL, "-c", "5", "-n",
		"4", "-M", "2", "-t", "8", "--no-stop", NULL);
	tst_envelope(&ref, "run", 0);
	tst_run(&r, "--json", "run", "-m", NPT_DEMO_MODEL, "-c", "5", "-n", "4",
		"-M", "2", "-t", "8", "--no-stop", "--recover", "--inject",
		"3:hang:engine=compute,n=3", NULL);
	tst_envelope(&r, "run", 0);
	ev = tst_jv_at(tst_jv_get(r.json, "recoveries"), 0);
	ck_assert_ptr_nonnull(ev);
	ck_assert_double_eq(tst_jv_num(ev, "card"), 3);
	ck_assert_str_eq(tst_jv_str(ev, "fault"), "compute queue hang");
	ck_assert_double_lt(tst_jv_num(ev, "detect_ms"), 2500);
	ck_assert_ptr_nonnull(strstr(r.err, "card emu:3 (card 3 of the "
					    "pipeline): compute queue hung"));
	ck_assert_ptr_null(strstr(r.err, "made no progress"));
	a = tst_jv_get(ref.json, "results");
	b = tst_jv_get(r.json, "results");
	for (size_t i = 0; i < a->n; i++)
		ck_assert_str_eq(tst_jv_str(tst_jv_at(b, i), "text"),
				 tst_jv_str(tst_jv_at(a, i), "text"));
	tst_run_free(&ref);
	tst_run_free(&r);
}
END_TEST

Suite *np_suite_robust(void)
{
	Suite *s = suite_create("robust");
	TCase *tc = tcase_create("issue22");

	tcase_add_checked_fixture(tc, robust_setup, robust_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_max_seq);
	tcase_add_test(tc, test_fifo_model);
	tcase_add_test(tc, test_json_usage);
	tcase_add_test(tc, test_escape);
	tcase_add_test(tc, test_sampling_options);
	tcase_add_test(tc, test_fault_never_struck);
	tcase_add_test(tc, test_input_files);
	tcase_add_test(tc, test_huge_norms);
	tcase_add_test(tc, test_recover_stdout);
	tcase_add_test(tc, test_status_own_cards);
	tcase_add_test(tc, test_dead_card_quick);
	tcase_add_test(tc, test_model_rewritten);
	tcase_add_test(tc, test_writer_replaces);
	tcase_add_test(tc, test_run_output);
	tcase_add_test(tc, test_hang_named);
	suite_add_tcase(s, tc);
	return s;
}
