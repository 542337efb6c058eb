// SPDX-License-Identifier: MIT
/*
 * np_model_load's image cache: a hit gives the tokens and logits of a
 * compile; an entry that is corrupt, truncated or written for another key
 * is logged and rebuilt; other options miss; images rendered on several
 * threads are the single-threaded ones, byte for byte.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "np/np.h"
#include "np/pipeline.h"
#include "test.h"

#define N_REQ 2
#define N_GEN 6
#define VOCAB 512u

static const struct np_model_shape shape = {2,	   64, 4,    2,	   128,
					    VOCAB, 64, 1e4f, 1e-5f};
static struct np_ctx *ctx;
static char gguf[] = "/tmp/np-cache-gguf-XXXXXX";
static char dir[] = "/tmp/np-cache-dir-XXXXXX";
static char *text;
static size_t text_len;
static char logbuf[16384];

static void log_fn(void *opaque, enum np_log_level level, const char *msg)
{
	size_t n = strlen(logbuf);

	(void)opaque;
	(void)level;
	snprintf(logbuf + n, sizeof(logbuf) - n, "%s\n", msg);
}

static void setup(void)
{
	struct np_open_opts o = {.log = {.fn = log_fn}};
	struct np_model *m;
	FILE *f = fopen(NP_SAMPLE_TEXT, "rb");
	int fd;

	ck_assert_ptr_nonnull(f);
	text = malloc(65536);
	ck_assert_ptr_nonnull(text);
	text_len = fread(text, 1, 65535, f);
	fclose(f);
	strcpy(gguf, "/tmp/np-cache-gguf-XXXXXX");
	strcpy(dir, "/tmp/np-cache-dir-XXXXXX");
	fd = mkstemp(gguf);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(np_model_synthetic(&shape, 5, &m), 0);
	ck_assert_int_eq(np_model_write_gguf(m, NP_GGML_Q8_0, NP_TOK_SPM, text,
					     text_len, gguf),
			 0);
	np_model_destroy(m);
	ck_assert_int_eq(np_open("emu:4", &o, &ctx), 0);
	logbuf[0] = 0;
}

static void teardown(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[512];

	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.') {
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			unlink(p);
		}
	if (d)
		closedir(d);
	rmdir(dir);
	unlink(gguf);
	np_close(ctx);
	free(text);
}

/* Tokens and the winning logits of N_REQ greedy requests */
struct out {
	int32_t tok[N_REQ][N_GEN];
	int32_t logit[N_REQ][N_GEN];
};

static int on_token(void *opaque, const struct np_token_event *ev)
{
	struct out *o = opaque;
	uint32_t k = ev->pos - (ev->request ? 4 : 3);

	ck_assert_uint_lt(k, N_GEN);
	o->tok[ev->request][k] = ev->token;
	o->logit[ev->request][k] = ev->cand_logit[0];
	return 0;
}

/* Load with the options, run the requests; whether the images came from
 * the cache */
static int load_run(const struct np_pipeline_opts *po, struct out *o)
{
	static const int32_t prompt[N_REQ][4] = {{1, 17, 99, 0},
						 {1, 300, 4, 42}};
	struct np_session_opts so = {.on_token = on_token, .opaque = o};
	struct np_request req[N_REQ] = {{0}};
	struct np_pipeline *p;
	int cached;

	memset(o, 0, sizeof(*o));
	ck_assert_int_eq(np_model_load(ctx, gguf, po, &p), 0);
	for (int r = 0; r < N_REQ; r++) {
		req[r].prompt = prompt[r];
		req[r].n_prompt = r ? 4 : 3;
		req[r].max_tokens = N_GEN;
	}
	ck_assert_int_eq(np_session_run(p, req, N_REQ, &so, NULL), 0);
	cached = np_pipeline_cached(p);
	np_pipeline_destroy(p);
	return cached;
}

static struct np_pipeline_opts opts(uint32_t threads)
{
	struct np_pipeline_opts po = {.max_sessions = N_REQ,
				      .max_seq = 32,
				      .calib_text = text,
				      .calib_len = text_len,
				      .cache_dir = dir,
				      .threads = threads};

	return po;
}

/* The one entry of the cache directory into path; how many there are */
static int entry(char *path, size_t len)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".npc")) {
			snprintf(path, len, "%s/%s", dir, e->d_name);
			n++;
		}
	closedir(d);
	return n;
}

static void *slurp(const char *path, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	void *b;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	b = malloc((size_t)st.st_size);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(read(fd, b, (size_t)st.st_size), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return b;
}

static void spit(const char *path, const void *b, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, b, len), (ssize_t)len);
	close(fd);
}

/* A cold load writes an entry; the next load maps it and gives the same
 * tokens and logits, as does a load without the cache. */
START_TEST(hit_equals_compile)
{
	struct np_pipeline_opts po = opts(0), off = opts(0);
	struct out cold, warm, none;
	char path[512];

	off.flags = NP_LOAD_NO_CACHE;
	ck_assert_int_eq(load_run(&po, &cold), 0);
	ck_assert_int_eq(entry(path, sizeof(path)), 1);
	ck_assert_int_eq(load_run(&po, &warm), 1);
	ck_assert_int_eq(load_run(&off, &none), 0);
	ck_assert_mem_eq(&cold, &warm, sizeof(cold));
	ck_assert_mem_eq(&cold, &none, sizeof(cold));
	ck_assert_ptr_nonnull(strstr(logbuf, "image cache hit"));
	ck_assert_int_eq(entry(path, sizeof(path)), 1);
}
END_TEST

/* Options of another key miss and make a second entry */
START_TEST(other_options_miss)
{
	struct np_pipeline_opts po = opts(0);
	struct out a, b;
	char path[512];

	ck_assert_int_eq(load_run(&po, &a), 0);
	po.max_seq = 48;
	ck_assert_int_eq(load_run(&po, &b), 0);
	ck_assert_int_eq(entry(path, sizeof(path)), 2);
	po.calib_text = text + 1; /* other calibration text */
	po.calib_len = text_len - 1;
	ck_assert_int_eq(load_run(&po, &b), 0);
	ck_assert_int_eq(entry(path, sizeof(path)), 3);
	ck_assert_int_eq(load_run(&po, &b), 1);
}
END_TEST

/* The entries rendered on 1 and on 3 threads are the same bytes. */
START_TEST(threads_equal_one)
{
	struct np_pipeline_opts po = opts(1);
	struct out a, b;
	char path[512], moved[600];
	size_t la, lb;
	void *fa, *fb;

	ck_assert_int_eq(load_run(&po, &a), 0);
	ck_assert_int_eq(entry(path, sizeof(path)), 1);
	snprintf(moved, sizeof(moved), "%s/one-thread", dir);
	ck_assert_int_eq(rename(path, moved), 0);
	po.threads = 3;
	ck_assert_int_eq(load_run(&po, &b), 0);
	ck_assert_int_eq(entry(path, sizeof(path)), 1);
	fa = slurp(moved, &la);
	fb = slurp(path, &lb);
	ck_assert_uint_eq(la, lb);
	ck_assert_int_eq(memcmp(fa, fb, la), 0);
	ck_assert_mem_eq(&a, &b, sizeof(a));
	free(fa);
	free(fb);
}
END_TEST

/*
 * A damaged entry: a byte flipped in the card data and in the header, the
 * file cut short, and a whole entry of another key under this key's name.
 * Each is logged naming the file and the fault, rebuilt (the next load
 * hits) and never loaded (the tokens are the compile's).
 */
static const struct {
	const char *what, *log;
} damage[] = {
	{"card data byte", "card data checksum mismatch"},
	{"header byte", "header checksum mismatch"},
	{"truncated", "truncated"},
	{"other key", "stale"},
};

START_TEST(damaged_rebuilt)
{
	struct np_pipeline_opts po = opts(0);
	struct out good, got;
	char path[512];
	size_t len;
	uint8_t *b;

	ck_assert_int_eq(load_run(&po, &good), 0);
	ck_assert_int_eq(entry(path, sizeof(path)), 1);
	b = slurp(path, &len);
	switch (_i) {
	case 0:
		b[len - 4096 - 100] ^= 0x10; /* in the last card's data */
		spit(path, b, len);
		break;
	case 1:
		b[100] ^= 0x01; /* in the key the header records */
		spit(path, b, len);
		break;
	case 2:
		spit(path, b, len / 2);
		break;
	default: {
		/* the entry of other options, renamed to this one's */
		struct np_pipeline_opts other = po;
		char opath[512];

		unlink(path);
		other.max_seq = 48;
		ck_assert_int_eq(load_run(&other, &got), 0);
		ck_assert_int_eq(entry(opath, sizeof(opath)), 1);
		ck_assert_int_eq(rename(opath, path), 0);
	}
	}
	free(b);
	logbuf[0] = 0;
	ck_assert_int_eq(load_run(&po, &got), 0);
	ck_assert_mem_eq(&good, &got, sizeof(good));
	ck_assert_msg(strstr(logbuf, damage[_i].log) && strstr(logbuf, path) &&
			      strstr(logbuf, "rebuilding"),
		      "%s: log: %s", damage[_i].what, logbuf);
	ck_assert_int_eq(load_run(&po, &got), 1);
	ck_assert_mem_eq(&good, &got, sizeof(good));
}
END_TEST

/* A cache directory that cannot be made: logged, the load goes on. */
START_TEST(unwritable_dir)
{
	struct np_pipeline_opts po = opts(0);
	char file[600];
	struct out o;

	snprintf(file, sizeof(file), "%s/file", dir);
	spit(file, "x", 1);
	po.cache_dir = file; /* a file, not a directory */
	ck_assert_int_eq(load_run(&po, &o), 0);
	ck_assert_ptr_nonnull(strstr(logbuf, "without the cache"));
}
END_TEST

/* Unknown load flags are refused, naming the field */
START_TEST(bad_flags)
{
	struct np_pipeline_opts po = opts(0);
	struct np_pipeline *p;

	po.flags = 0x80;
	ck_assert_int_eq(np_model_load(ctx, gguf, &po, &p), -EINVAL);
	ck_assert_ptr_null(p);
	ck_assert_ptr_nonnull(strstr(logbuf, "np_pipeline_opts.flags"));
}
END_TEST

Suite *np_suite_cache(void)
{
	Suite *s = suite_create("cache");
	TCase *tc = tcase_create("cache");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, hit_equals_compile);
	tcase_add_test(tc, other_options_miss);
	tcase_add_test(tc, threads_equal_one);
	tcase_add_loop_test(tc, damaged_rebuilt, 0,
			    (int)(sizeof(damage) / sizeof(damage[0])));
	tcase_add_test(tc, unwritable_dir);
	tcase_add_test(tc, bad_flags);
	suite_add_tcase(s, tc);
	return s;
}
