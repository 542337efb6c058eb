// SPDX-License-Identifier: MIT
/*
 * The event journal. libnp, not the driver, keeps it: emulated cards have
 * no driver, and a VFIO card's driver sees neither a pipeline's recovery
 * nor an injected fault. Each event is one line of JSON appended with one
 * O_APPEND write() of less than PIPE_BUF-sized 4096 bytes, so lines of
 * several processes never interleave.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "journal.h"
#include "np/recover.h"

#define LINE_MAX_LEN 4096

const char *np_event_log_path(void)
{
	const char *p = getenv("NP_EVENT_LOG");

	if (!p)
		return NP_EVENT_LOG_DEFAULT;
	if (!*p || !strcmp(p, "off"))
		return NULL;
	return p;
}

/* Append s to b (at *n) as a JSON string, cut so that the line stays
 * below cap bytes. */
static void put_str(char *b, size_t cap, size_t *n, const char *s)
{
	if (*n + 2 > cap)
		return;
	b[(*n)++] = '"';
	for (; *s && *n + 8 < cap; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			b[(*n)++] = '\\';
			b[(*n)++] = (char)c;
		} else if (c == '\n') {
			b[(*n)++] = '\\';
			b[(*n)++] = 'n';
		} else if (c == '\t') {
			b[(*n)++] = '\\';
			b[(*n)++] = 't';
		} else if (c < 0x20 || c == 0x7f) {
			*n += (size_t)snprintf(b + *n, cap - *n, "\\u%04x", c);
		} else {
			b[(*n)++] = (char)c;
		}
	}
	b[(*n)++] = '"';
}

static void put_raw(char *b, size_t cap, size_t *n, const char *s)
{
	size_t l = strlen(s);

	if (*n + l < cap) {
		memcpy(b + *n, s, l);
		*n += l;
	}
}

static int open_log(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	char dir[4096];
	char *slash;

	if (fd >= 0 || errno != ENOENT)
		return fd;
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return -1;
	*slash = '\0';
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -1;
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

void npi_journal(struct np_card *card, const char *kind, const char *fmt, ...)
{
	const char *path = np_event_log_path();
	char line[LINE_MAX_LEN], msg[1024], comm[64] = "", ts[64];
	struct timespec now;
	struct tm tm;
	size_t n = 0;
	va_list ap;
	ssize_t w;
	FILE *f;
	int fd;

	if (!path)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	f = fopen("/proc/self/comm", "re");
	if (f) {
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
	}

	n = (size_t)snprintf(line, sizeof(line), "{\"time\":\"%s.%03ldZ\"", ts,
			     now.tv_nsec / 1000000);
	put_raw(line, sizeof(line), &n, ",\"card\":");
	put_str(line, sizeof(line), &n, card->name);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ",\"index\":%u",
			      card->index);
	if (card->info.serial)
		n += (size_t)snprintf(line + n, sizeof(line) - n,
				      ",\"serial\":\"%016llx\"",
				      (unsigned long long)card->info.serial);
	put_raw(line, sizeof(line), &n, ",\"kind\":");
	put_str(line, sizeof(line), &n, kind);
	put_raw(line, sizeof(line), &n, ",\"message\":");
	/* room for what follows the message */
	put_str(line, sizeof(line) - 256, &n, msg);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ",\"pid\":%ld",
			      (long)getpid());
	put_raw(line, sizeof(line), &n, ",\"process\":");
	put_str(line, sizeof(line), &n, comm);
	put_raw(line, sizeof(line), &n, "}\n");

	fd = open_log(path);
	w = fd >= 0 ? write(fd, line, n) : -1;
	if (w != (ssize_t)n) {
		int err = errno;

		if (!__atomic_exchange_n(&card->ctx->journal_warned, true,
					 __ATOMIC_RELAXED))
			npi_log(card->ctx, LOG_NOTICE,
				"np: event journal %s not written (%s); set "
				"NP_EVENT_LOG to a writable path, or to off",
				path, w < 0 ? strerror(err) : "short write");
	}
	if (fd >= 0)
		close(fd);
}
