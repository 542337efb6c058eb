// SPDX-License-Identifier: MIT
/* nptool helpers: number parsing and formatting, progress bars, tables. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <np/model.h>
#include <np/np.h>

#include "nptool.h"

int npt_parse_size(const char *s, uint64_t *out)
{
	static const struct {
		const char *suffix;
		unsigned int shift;
	} units[] = {
		{"", 0},   {"b", 0},	{"k", 10}, {"kib", 10},
		{"m", 20}, {"mib", 20}, {"g", 30}, {"gib", 30},
	};
	unsigned long long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(end, units[i].suffix))
			continue;
		if (v > (UINT64_MAX >> units[i].shift))
			return -EINVAL;
		*out = (uint64_t)v << units[i].shift;
		return 0;
	}
	return -EINVAL;
}

int npt_parse_u32(struct npt *t, const char *opt, const char *s, uint32_t min,
		  uint32_t *v)
{
	unsigned long long x;
	char *end;

	errno = 0;
	x = strtoull(s, &end, 0);
	if (errno || *end || end == s || *s == '-' || *s == '+' ||
	    x > UINT32_MAX)
		return npt_usage(t, "%s: '%s' is not a number from 0 to %u",
				 opt, s, UINT32_MAX);
	if (x < min)
		return npt_usage(t, "%s: '%s' is below its minimum %u", opt, s,
				 min);
	*v = (uint32_t)x;
	return 0;
}

int npt_parse_float(struct npt *t, const char *opt, const char *s, float min,
		    float max, float *v)
{
	char *end;
	float x;

	errno = 0;
	x = strtof(s, &end);
	/* NaN compares false: !(x >= min) refuses it with the range */
	if (errno || *end || end == s || !(x >= min) || !(x <= max))
		return npt_usage(t, "%s: '%s' is not a number from %g to %g",
				 opt, s, (double)min, (double)max);
	*v = x;
	return 0;
}

int npt_parse_seconds(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0) || v > 86400)
		return -EINVAL;
	*out = v;
	return 0;
}

const char *npt_fmt_size(char *buf, size_t len, uint64_t bytes)
{
	static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	unsigned int u = 0;
	double v = (double)bytes;

	while (v >= 1024 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
	else if (v == (double)(uint64_t)v)
		snprintf(buf, len, "%.0f %s", v, unit[u]);
	else
		snprintf(buf, len, "%.1f %s", v, unit[u]);
	return buf;
}

double npt_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int npt_text_arg(struct npt *t, const char *tfile, const char *arg, char **text,
		 size_t *len)
{
	if (tfile) {
		int ret = npt_read_file(tfile, NPT_TEXT_MAX, text, len);

		if (ret) {
			npt_err(t, "cannot read text from %s: %s", tfile,
				strerror(-ret));
			return NPT_EXIT_USAGE;
		}
		return NPT_EXIT_OK;
	}
	*text = strdup(arg);
	if (!*text)
		return NPT_EXIT_DEVERR;
	*len = strlen(*text);
	return NPT_EXIT_OK;
}

int npt_read_file(const char *path, size_t max, char **buf, size_t *len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	size_t cap = 4096, n = 0, got;
	char *b = NULL, *nb;
	int ret = 0;

	struct stat st;

	if (!f)
		return -errno;
	/* fread() of a directory fails with EISDIR, which ferror() alone
	 * would only call an I/O error */
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(f);
		return -EISDIR;
	}
	for (;;) {
		if (n + 1 >= cap)
			cap *= 2;
		nb = realloc(b, cap);
		if (!nb) {
			ret = -ENOMEM;
			break;
		}
		b = nb;
		got = fread(b + n, 1, cap - n - 1, f);
		n += got;
		if (n > max) {
			ret = -EFBIG;
			break;
		}
		if (!got) {
			if (ferror(f))
				ret = -EIO;
			break;
		}
	}
	if (f != stdin)
		fclose(f);
	if (ret) {
		free(b);
		return ret;
	}
	b[n] = 0;
	*buf = b;
	*len = n;
	return 0;
}

/* A control character a terminal would act on: C0 (but tab and, with
 * keep_nl, newline), DEL, and C1 as UTF-8 (U+0080..U+009F). Its length
 * in bytes, or 0 for a byte that prints as itself. */
static size_t ctl_len(const unsigned char *p, size_t left, bool keep_nl)
{
	if (*p == '\t' || (keep_nl && *p == '\n'))
		return 0;
	if (*p < 0x20 || *p == 0x7f)
		return 1;
	if (*p == 0xc2 && left > 1 && p[1] >= 0x80 && p[1] <= 0x9f)
		return 2;
	return 0;
}

size_t npt_escape(char *dst, size_t cap, const char *src, size_t len,
		  bool keep_nl)
{
	const unsigned char *p = (const unsigned char *)src;
	size_t o = 0;

	for (size_t i = 0; i < len && cap; i++) {
		size_t n = ctl_len(p + i, len - i, keep_nl);

		if (!n) {
			if (o + 1 >= cap)
				break;
			dst[o++] = (char)p[i];
			continue;
		}
		for (size_t k = 0; k < n; k++) {
			if (o + 5 > cap)
				goto out;
			o += (size_t)snprintf(dst + o, cap - o, "\\x%02x",
					      p[i + k]);
		}
		i += n - 1;
	}
out:
	if (cap)
		dst[o < cap ? o : cap - 1] = 0;
	return o;
}

void npt_print_text(FILE *f, const char *s, size_t len)
{
	char buf[1024];

	/* a pipe or a file gets the bytes (as cat gives them); as with ls,
	 * only a terminal sees control characters escaped */
	if (!isatty(fileno(f))) {
		fwrite(s, 1, len, f);
		return;
	}
	/* each control byte grows to 4: escape a quarter buffer at a time */
	for (size_t i = 0; i < len;) {
		size_t n = len - i < sizeof(buf) / 4 - 1 ? len - i :
							   sizeof(buf) / 4 - 1;

		/* do not split a two-byte C1 sequence */
		if (i + n < len && (unsigned char)s[i + n - 1] == 0xc2)
			n--;
		fwrite(buf, 1, npt_escape(buf, sizeof(buf), s + i, n, true), f);
		i += n;
	}
}

/* Length of the card part of "CARD:FAULT": emu:N and PCI addresses hold
 * colons themselves. */
static size_t inject_card_len(const char *s)
{
	unsigned int d, b, dev, f;
	int n = 0;

	if (!strncmp(s, "emu:", 4))
		return 4 + strspn(s + 4, "0123456789");
	if ((sscanf(s, "%4x:%2x:%2x.%1u%n", &d, &b, &dev, &f, &n) == 4 &&
	     n == 12) ||
	    (sscanf(s, "%2x:%2x.%1u%n", &b, &dev, &f, &n) == 3 && n == 7))
		return (size_t)n;
	return strcspn(s, ":");
}

int npt_parse_inject(struct npt *t, char *s, const char *example,
		     struct npt_inject *in)
{
	size_t n = inject_card_len(s);

	if (!n || s[n] != ':' || !s[n + 1])
		return npt_usage(t,
				 "--inject '%s': expected CARD:FAULT (CARD an "
				 "index, a name or a serial), e.g. %s",
				 s, example);
	if (n >= sizeof(in->card))
		return npt_usage(t, "--inject '%.64s...': no such card", s);
	memcpy(in->card, s, n);
	in->card[n] = 0;
	in->fault = s + n + 1;
	in->idx = 0;
	return 0;
}

/* the bar on screen, for npt_progress_clear() */
static struct npt_progress *shown;

void npt_progress_clear(void)
{
	if (!shown || !shown->drawn)
		return;
	fprintf(stderr, "\r\033[K");
	fflush(stderr);
	shown->drawn = false;
	shown->last_draw = 0;
}

void npt_progress_begin(struct npt *t, struct npt_progress *p,
			const char *label, uint64_t total)
{
	memset(p, 0, sizeof(*p));
	p->label = label;
	p->total = total ? total : 1;
	p->start = npt_now();
	p->enabled = !t->json && isatty(STDERR_FILENO);
}

void npt_progress_update(struct npt_progress *p, uint64_t done)
{
	enum { WIDTH = 30 };
	double now, frac;
	char bar[WIDTH + 1];
	unsigned int fill;

	if (!p->enabled)
		return;
	now = npt_now();
	/* appear after a second; redraw at most ten times a second */
	if (now - p->start < 1.0 || now - p->last_draw < 0.1)
		return;
	p->last_draw = now;
	frac = done >= p->total ? 1.0 : (double)done / (double)p->total;
	fill = (unsigned int)(frac * WIDTH);
	memset(bar, '#', fill);
	memset(bar + fill, '.', WIDTH - fill);
	bar[WIDTH] = '\0';
	fflush(stdout);
	fprintf(stderr, "\r%-24.24s [%s] %3u%% %5.1fs", p->label, bar,
		(unsigned int)(frac * 100), now - p->start);
	fflush(stderr);
	p->drawn = true;
	shown = p;
}

void npt_progress_end(struct npt_progress *p)
{
	if (shown == p) {
		npt_progress_clear();
		shown = NULL;
	}
}

struct npt_table {
	unsigned int cols;
	size_t ncells;
	char **cells;
};

struct npt_table *npt_table_new(unsigned int cols)
{
	struct npt_table *tb = calloc(1, sizeof(*tb));

	if (tb)
		tb->cols = cols;
	return tb;
}

void npt_table_cell(struct npt_table *tb, const char *fmt, ...)
{
	char **grown;
	char *s;
	va_list ap;

	if (!tb)
		return;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (!s)
		return;
	grown = realloc(tb->cells, (tb->ncells + 1) * sizeof(*grown));
	if (!grown) {
		free(s);
		return;
	}
	tb->cells = grown;
	tb->cells[tb->ncells++] = s;
}

void npt_table_print(struct npt_table *tb)
{
	size_t w[32] = {0};

	if (!tb || tb->cols > 32)
		return;
	for (size_t i = 0; i < tb->ncells; i++) {
		size_t l = strlen(tb->cells[i]);

		if (l > w[i % tb->cols])
			w[i % tb->cols] = l;
	}
	for (size_t i = 0; i < tb->ncells; i++) {
		unsigned int c = i % tb->cols;
		bool last = c == tb->cols - 1 || i == tb->ncells - 1;

		if (last)
			printf("%s\n", tb->cells[i]);
		else
			printf("%-*s  ", (int)w[c], tb->cells[i]);
	}
}

void npt_table_free(struct npt_table *tb)
{
	if (!tb)
		return;
	for (size_t i = 0; i < tb->ncells; i++)
		free(tb->cells[i]);
	free(tb->cells);
	free(tb);
}

static const char *const result_name[] = {"pass", "warn", "fail", "skip"};

void npt_checks_begin(struct npt *t, struct npt_checks *ck)
{
	memset(ck, 0, sizeof(*ck));
	ck->t = t;
	if (t->j) {
		npt_json_key(t->j, "checks");
		npt_json_arr_open(t->j);
	}
}

void npt_check(struct npt_checks *ck, enum npt_result r, const char *name,
	       const char *fix, const char *fmt, ...)
{
	static const char *const tag[] = {"[ OK ]", "[WARN]", "[FAIL]",
					  "[SKIP]"};
	char *msg;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	ck->count[r]++;
	if (ck->t->j) {
		npt_json_obj_open(ck->t->j);
		npt_json_kstr(ck->t->j, "name", name);
		npt_json_kstr(ck->t->j, "result", result_name[r]);
		npt_json_kstr(ck->t->j, "detail", msg ? msg : "");
		if (fix)
			npt_json_kstr(ck->t->j, "fix", fix);
		else
			npt_json_knull(ck->t->j, "fix");
		npt_json_obj_close(ck->t->j);
	} else {
		npt_progress_clear();
		printf("%s %-16s %s\n", tag[r], name, msg ? msg : "");
		if (fix)
			printf("       fix: %s\n", fix);
		fflush(stdout);
	}
	free(msg);
}

int npt_checks_end(struct npt_checks *ck)
{
	struct npt *t = ck->t;

	if (t->j) {
		npt_json_arr_close(t->j);
		npt_json_key(t->j, "summary");
		npt_json_obj_open(t->j);
		for (unsigned int r = 0; r < 4; r++)
			npt_json_kuint(t->j, result_name[r], ck->count[r]);
		npt_json_obj_close(t->j);
	} else {
		printf("checks: %u pass, %u fail, %u warn, %u skip\n",
		       ck->count[NPT_PASS], ck->count[NPT_FAIL],
		       ck->count[NPT_WARN], ck->count[NPT_SKIP]);
	}
	return ck->count[NPT_FAIL] ? NPT_EXIT_FAIL : NPT_EXIT_OK;
}

const char *npt_or_dash(const char *s)
{
	return s[0] ? s : "-";
}

int npt_no_args(struct npt *t, int argc, char **argv)
{
	if (argc > 1)
		return npt_usage(t, "%s: unexpected argument '%s'", argv[0],
				 argv[1]);
	return NPT_EXIT_OK;
}

volatile sig_atomic_t npt_stop;

void npt_sleep(double secs)
{
	struct timespec ts = {
		.tv_sec = (time_t)secs,
		.tv_nsec = (long)((secs - (double)(time_t)secs) * 1e9),
	};

	while (!npt_stop && nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int npt_parse_interval(struct npt *t, int argc, char **argv, double *interval,
		       long *count, bool allow_count)
{
	static const struct option opts[] = {
		{"interval", required_argument, NULL, 'i'},
		{"count", required_argument, NULL, 'n'},
		{0},
	};
	int c;

	while ((c = getopt_long(argc, argv, allow_count ? "i:n:" : "i:", opts,
				NULL)) != -1) {
		switch (c) {
		case 'i':
			if (npt_parse_seconds(optarg, interval) ||
			    *interval < 0.01)
				return npt_usage(t,
						 "%s: interval '%s' is not "
						 "a number of seconds >= "
						 "0.01",
						 argv[0], optarg);
			break;
		case 'n':
			if (!allow_count)
				return npt_usage(t, "%s: bad option", argv[0]);
			{
				uint32_t n;
				int rc = npt_parse_u32(t, "-n", optarg, 1, &n);

				if (rc)
					return rc;
				*count = n;
				break;
			}
		default:
			return npt_usage(t, "%s: bad option", argv[0]);
		}
	}
	if (optind < argc)
		return npt_usage(t, "%s: unexpected argument '%s'", argv[0],
				 argv[optind]);
	return NPT_EXIT_OK;
}

/* libnp's messages become nptool's errors */
void npt_log_err(void *opaque, enum np_log_level level, const char *msg)
{
	if (level <= LOG_WARNING)
		npt_err(opaque, "%s", msg);
}

/* Exit code of a failure to read a model file the user named. */
int npt_file_exit(int err)
{
	/* the file named is missing, unreadable, not a file, or its
	 * content (malformed, unsupported, numbers out of range) is wrong:
	 * the user's to fix (docs/nptool.md, "Exit codes") */
	switch (err) {
	case -ENOENT:
	case -EACCES:
	case -EPERM:
	case -ELOOP:
	case -ENOTDIR:
	case -ENAMETOOLONG:
	case -EISDIR:
	case -EFBIG:
	case -EINVAL:
	case -ENOTSUP:
	case -ERANGE:
		return NPT_EXIT_USAGE;
	default:
		return NPT_EXIT_DEVERR;
	}
}

int npt_open_gguf(struct npt *t, const char *path, struct np_gguf **g)
{
	struct np_log lg = {.fn = npt_log_err, .opaque = t};
	size_t logged = t->nerrors;
	int ret = np_gguf_open(path, &lg, g);

	if (!ret)
		return NPT_EXIT_OK;
	if (ret == -EINVAL)
		npt_err(t,
			"%s is not a valid GGUF file (see above); give a GGUF "
			"v2/v3 model, e.g. one from 'nptool model mkgguf'",
			path);
	else if (t->nerrors == logged)
		npt_err(t, "cannot open model %s: %s", path, strerror(-ret));
	return npt_file_exit(ret);
}

const char *npt_tok_kind_name(int kind)
{
	return kind == NP_TOK_SPM ? "spm" : kind == NP_TOK_BPE ? "bpe" : "?";
}

void npt_shape_json(struct npt_json *j, const struct np_model_shape *s)
{
	npt_json_key(j, "shape");
	npt_json_obj_open(j);
	npt_json_kuint(j, "layers", s->n_layers);
	npt_json_kuint(j, "dim", s->dim);
	npt_json_kuint(j, "heads", s->n_heads);
	npt_json_kuint(j, "kv_heads", s->n_kv_heads);
	npt_json_kuint(j, "head_dim", s->dim / s->n_heads);
	npt_json_kuint(j, "ffn", s->ffn);
	npt_json_kuint(j, "vocab", s->vocab);
	npt_json_kuint(j, "context", s->ctx);
	npt_json_kdouble(j, "rope_base", s->rope_base);
	npt_json_kdouble(j, "norm_eps", s->norm_eps);
	npt_json_obj_close(j);
}

void npt_shape_text(const struct np_model_shape *s)
{
	printf("shape     %u layers, dim %u, %u/%u heads (head dim %u), FFN "
	       "%u, vocab %u, context %u, RoPE base %g, RMS eps %g\n",
	       s->n_layers, s->dim, s->n_heads, s->n_kv_heads,
	       s->dim / s->n_heads, s->ffn, s->vocab, s->ctx, s->rope_base,
	       s->norm_eps);
}

/* Encode len bytes into a malloc()ed array. 0 or -errno. */
int npt_encode(const struct np_tok *tok, const char *text, size_t len, bool bos,
	       unsigned int flags, int32_t **ids, size_t *n)
{
	size_t cap = len + 2, got = 0, k = 0;
	int32_t *v = NULL;
	int ret;

	for (;;) {
		int32_t *nv = realloc(v, cap * sizeof(*v));

		if (!nv) {
			free(v);
			return -ENOMEM;
		}
		v = nv;
		k = 0;
		if (bos && np_tok_bos(tok) >= 0)
			v[k++] = np_tok_bos(tok);
		ret = np_tok_encode_flags(tok, text, len, flags, v + k, cap - k,
					  &got);
		if (ret != -ENOSPC)
			break;
		cap = got + k + 1;
	}
	if (ret) {
		free(v);
		return ret;
	}
	*ids = v;
	*n = k + got;
	return 0;
}
