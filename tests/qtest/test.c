// SPDX-License-Identifier: MIT
/*
 * qtest protocol client; see test.h.
 *
 * QEMU connects to a Unix socket the test listens on (-qtest unix:PATH),
 * then answers one line per command: "OK [value]", "FAIL ..." or "ERR ...".
 * Lines starting with "IRQ" are asynchronous notifications; nothing here
 * intercepts interrupts (MSI-X is observed in guest memory), so they are
 * skipped.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

/* Generous: QEMU under ASan or on a loaded 2-core machine is slow. */
#define NP_QTEST_TIMEOUT_MS 30000
#define NP_QTEST_MAX_ARGS 64

/* One socket QEMU connected to, read line by line. */
struct tst_chan {
	int fd;
	const char *name;
	char rx[1 << 16];
	size_t rx_len;
};

struct tst_qtest {
	pid_t pid;
	char dir[80];
	struct tst_chan qtest; /* -qtest: the test protocol */
	struct tst_chan qmp; /* -qmp: QEMU's machine protocol */
	char *line; /* last reply, grown as needed */
	size_t line_cap;
};

static const char *tst_binary(void)
{
	const char *qemu = getenv("NP_QEMU");

	ck_assert_msg(qemu && *qemu,
		      "NP_QEMU is not set: point it at the qemu-system-x86_64 "
		      "printed by emulator/qemu/build-qemu.sh");
	return qemu;
}

/* argv for QEMU: fixed options, then extra_args split at spaces. */
static void tst_argv(const char *qemu, const char *qtest_arg,
		     const char *qmp_arg, const char *extra_args, char *buf,
		     size_t buflen, char **argv)
{
	static const char *const fixed[] = {
		"-machine",
		"q35",
		"-accel",
		"qtest",
		"-display",
		"none",
		"-nodefaults",
		"-m",
		"256M",
		"-L",
		"/usr/share/seabios",
		"-L",
		"/usr/share/qemu",
		"-d",
		"guest_errors",
		"-qtest-log",
		"/dev/null",
	};
	size_t argc = 0, i;
	char *tok, *save;

	argv[argc++] = (char *)qemu;
	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		argv[argc++] = (char *)fixed[i];
	if (qtest_arg) {
		argv[argc++] = "-qtest";
		argv[argc++] = (char *)qtest_arg;
	}
	if (qmp_arg) {
		argv[argc++] = "-qmp";
		argv[argc++] = (char *)qmp_arg;
	}
	ck_assert_uint_lt(strlen(extra_args), buflen);
	strcpy(buf, extra_args);
	for (tok = strtok_r(buf, " ", &save); tok;
	     tok = strtok_r(NULL, " ", &save)) {
		ck_assert_uint_lt(argc, NP_QTEST_MAX_ARGS - 1);
		argv[argc++] = tok;
	}
	argv[argc] = NULL;
}

static pid_t tst_spawn(char **argv, const char *errpath)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		/* QEMU must not outlive a test that crashed. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, STDERR_FILENO);
			dup2(fd, STDOUT_FILENO);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* The end of QEMU's stderr (guest errors are logged there), if any. */
static void tst_print_stderr(const char *dir)
{
	char path[128], buf[4096];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/stderr", dir);
	f = fopen(path, "r");
	if (!f)
		return;
	if (fseek(f, -(long)(sizeof(buf) - 1), SEEK_END))
		rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	if (n)
		fprintf(stderr, "np_qtest: end of QEMU's stderr:\n%s", buf);
}

static void tst_recv_line(struct tst_qtest *qt, struct tst_chan *ch,
			  const char *cmd);
static void tst_send(struct tst_chan *ch, const char *cmd, size_t len);

static int tst_listen(const char *dir, const char *name, char *arg,
		      size_t arglen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir, name);
	snprintf(arg, arglen, "unix:%s", sa.sun_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	return fd;
}

/* Accept QEMU's connection on lfd, noticing an early exit of QEMU. */
static void tst_accept(struct tst_qtest *qt, int lfd, struct tst_chan *ch,
		       const char *name, const char *extra_args)
{
	struct pollfd pfd = {.fd = lfd, .events = POLLIN};
	int ret = 0, waited, status;
	char path[128];

	for (waited = 0; waited < NP_QTEST_TIMEOUT_MS; waited += 100) {
		ret = poll(&pfd, 1, 100);
		if (ret > 0)
			break;
		if (waitpid(qt->pid, &status, WNOHANG) == qt->pid) {
			tst_print_stderr(qt->dir);
			ck_abort_msg(
				"QEMU exited (status 0x%x) before connecting "
				"its %s socket; arguments: %s",
				status, name, extra_args);
		}
	}
	ck_assert_msg(ret > 0,
		      "QEMU did not connect its %s socket within %d ms", name,
		      NP_QTEST_TIMEOUT_MS);
	ch->fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(ch->fd, 0);
	ch->name = name;
	close(lfd);
	snprintf(path, sizeof(path), "%s/%s", qt->dir, name);
	unlink(path);
}

/* A fresh directory for a session's sockets and QEMU's stderr. */
static void tst_mkdir(char *dir, size_t len)
{
	const char *base = getenv("NP_QTEST_TMPDIR");

	snprintf(dir, len, "%s/np-qtest.XXXXXX", base && *base ? base : "/tmp");
	ck_assert_msg(mkdtemp(dir), "cannot create %s: %s", dir,
		      strerror(errno));
}

struct tst_qtest *tst_start(const char *extra_args)
{
	static const char caps[] = "{\"execute\": \"qmp_capabilities\"}\n";
	const char *qemu = tst_binary();
	char qtest_arg[128], qmp_arg[128], errpath[128], argbuf[1024];
	char *argv[NP_QTEST_MAX_ARGS];
	struct tst_qtest *qt;
	int qtest_lfd, qmp_lfd;

	qt = calloc(1, sizeof(*qt));
	ck_assert_ptr_nonnull(qt);
	tst_mkdir(qt->dir, sizeof(qt->dir));
	snprintf(errpath, sizeof(errpath), "%s/stderr", qt->dir);
	qtest_lfd = tst_listen(qt->dir, "qtest", qtest_arg, sizeof(qtest_arg));
	qmp_lfd = tst_listen(qt->dir, "qmp", qmp_arg, sizeof(qmp_arg));

	tst_argv(qemu, qtest_arg, qmp_arg, extra_args, argbuf, sizeof(argbuf),
		 argv);
	qt->pid = tst_spawn(argv, errpath);
	tst_accept(qt, qtest_lfd, &qt->qtest, "qtest", extra_args);
	tst_accept(qt, qmp_lfd, &qt->qmp, "qmp", extra_args);

	/* QMP greets, then takes commands once capabilities are negotiated. */
	tst_recv_line(qt, &qt->qmp, "(greeting)");
	ck_assert_ptr_nonnull(strstr(qt->line, "\"QMP\""));
	tst_send(&qt->qmp, caps, sizeof(caps) - 1);
	tst_recv_line(qt, &qt->qmp, caps);
	ck_assert_ptr_nonnull(strstr(qt->line, "\"return\""));
	return qt;
}

void tst_stop(struct tst_qtest *qt)
{
	char path[128];
	int status;

	if (!qt)
		return;
	close(qt->qtest.fd);
	close(qt->qmp.fd);
	kill(qt->pid, SIGTERM);
	waitpid(qt->pid, &status, 0);
	snprintf(path, sizeof(path), "%s/stderr", qt->dir);
	unlink(path);
	rmdir(qt->dir);
	free(qt->line);
	free(qt);
}

int tst_run_expect_exit(const char *extra_args, char *err, size_t errlen)
{
	const char *qemu = tst_binary();
	char dir[80], errpath[128], argbuf[1024];
	char *argv[NP_QTEST_MAX_ARGS];
	int status, waited;
	pid_t pid;
	FILE *f;
	size_t n = 0;

	tst_mkdir(dir, sizeof(dir));
	snprintf(errpath, sizeof(errpath), "%s/stderr", dir);
	/* No -qtest socket: a QEMU that realizes every device keeps running. */
	tst_argv(qemu, NULL, NULL, extra_args, argbuf, sizeof(argbuf), argv);
	pid = tst_spawn(argv, errpath);
	for (waited = 0; waited < NP_QTEST_TIMEOUT_MS; waited += 10) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		usleep(10000);
	}
	if (waited >= NP_QTEST_TIMEOUT_MS) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		ck_abort_msg("%s %s kept running; expected a startup error",
			     qemu, extra_args);
	}
	f = fopen(errpath, "r");
	if (f) {
		n = fread(err, 1, errlen - 1, f);
		fclose(f);
	}
	err[n] = 0;
	unlink(errpath);
	rmdir(dir);
	return status;
}

void tst_reap(const char *base)
{
	struct dirent *e;
	char path[512];
	DIR *d = opendir(base);

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "np-qtest.", 9))
			continue;
		snprintf(path, sizeof(path), "%s/%s", base, e->d_name);
		fprintf(stderr,
			"np_qtest: a test ended without stopping QEMU (%s)\n",
			path);
		tst_print_stderr(path);
		snprintf(path, sizeof(path), "%s/%s/stderr", base, e->d_name);
		unlink(path);
		snprintf(path, sizeof(path), "%s/%s", base, e->d_name);
		rmdir(path);
	}
	closedir(d);
	rmdir(base);
}

/*
 * Read one line into qt->line, skipping asynchronous notifications: qtest's
 * "IRQ ..." lines and QMP events.
 */
static void tst_recv_line(struct tst_qtest *qt, struct tst_chan *ch,
			  const char *cmd)
{
	for (;;) {
		char *nl = memchr(ch->rx, '\n', ch->rx_len);
		struct pollfd pfd = {.fd = ch->fd, .events = POLLIN};
		ssize_t n;

		if (nl) {
			size_t len = (size_t)(nl - ch->rx);

			if (len + 1 > qt->line_cap) {
				qt->line_cap = len + 1;
				qt->line = realloc(qt->line, qt->line_cap);
				ck_assert_ptr_nonnull(qt->line);
			}
			memcpy(qt->line, ch->rx, len);
			qt->line[len] = 0;
			ch->rx_len -= len + 1;
			memmove(ch->rx, nl + 1, ch->rx_len);
			if (strncmp(qt->line, "IRQ", 3) == 0 ||
			    strncmp(qt->line, "{\"event\"", 9) == 0)
				continue;
			return;
		}
		ck_assert_msg(ch->rx_len < sizeof(ch->rx),
			      "%s reply to \"%.60s\" is over %zu bytes",
			      ch->name, cmd, sizeof(ch->rx));
		ck_assert_msg(poll(&pfd, 1, NP_QTEST_TIMEOUT_MS) == 1,
			      "no %s reply to \"%.60s\" within %d ms", ch->name,
			      cmd, NP_QTEST_TIMEOUT_MS);
		n = read(ch->fd, ch->rx + ch->rx_len,
			 sizeof(ch->rx) - ch->rx_len);
		if (n <= 0)
			tst_print_stderr(qt->dir);
		ck_assert_msg(n > 0,
			      "QEMU closed its %s socket during \"%.60s\"",
			      ch->name, cmd);
		ch->rx_len += (size_t)n;
	}
}

static void tst_send(struct tst_chan *ch, const char *cmd, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = send(ch->fd, cmd + done, len - done, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		ck_assert_msg(n > 0, "%s send of \"%.60s\" failed: %s",
			      ch->name, cmd, strerror(errno));
		done += (size_t)n;
	}
}

/* Send a command and return the text after "OK" (may be empty). */
static const char *tst_cmd(struct tst_qtest *qt, const char *fmt, ...)
{
	char cmd[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	ck_assert(n > 0 && (size_t)n < sizeof(cmd));
	tst_send(&qt->qtest, cmd, (size_t)n);
	tst_recv_line(qt, &qt->qtest, cmd);
	ck_assert_msg(strncmp(qt->line, "OK", 2) == 0,
		      "qtest command \"%.*s\" answered \"%s\"", n - 1, cmd,
		      qt->line);
	return qt->line[2] == ' ' ? qt->line + 3 : qt->line + 2;
}

static uint64_t tst_value(struct tst_qtest *qt, const char *fmt, ...)
{
	char cmd[128];
	const char *reply;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	reply = tst_cmd(qt, "%s", cmd);
	return strtoull(reply, NULL, 0);
}

const char *tst_qmp(struct tst_qtest *qt, const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd) - 1, fmt, ap);
	va_end(ap);
	ck_assert(n > 0 && (size_t)n < sizeof(cmd) - 1);
	cmd[n++] = '\n';
	tst_send(&qt->qmp, cmd, (size_t)n);
	tst_recv_line(qt, &qt->qmp, cmd);
	return qt->line;
}

int tst_alive(struct tst_qtest *qt)
{
	int status;

	if (waitpid(qt->pid, &status, WNOHANG) != 0)
		return 0;
	/* A harmless round trip proves the main loop still answers. */
	tst_value(qt, "inl 0xcf8\n");
	return 1;
}

void tst_outl(struct tst_qtest *qt, uint16_t port, uint32_t v)
{
	tst_cmd(qt, "outl 0x%x 0x%x\n", port, v);
}

uint32_t tst_inl(struct tst_qtest *qt, uint16_t port)
{
	return (uint32_t)tst_value(qt, "inl 0x%x\n", port);
}

#define NP_QTEST_RW(name, type)                                             \
	type tst_read##name(struct tst_qtest *qt, uint64_t addr)            \
	{                                                                   \
		return (type)tst_value(qt, "read" #name " 0x%" PRIx64 "\n", \
				       addr);                               \
	}                                                                   \
	void tst_write##name(struct tst_qtest *qt, uint64_t addr, type v)   \
	{                                                                   \
		tst_cmd(qt, "write" #name " 0x%" PRIx64 " 0x%" PRIx64 "\n", \
			addr, (uint64_t)v);                                 \
	}

NP_QTEST_RW(b, uint8_t)
NP_QTEST_RW(w, uint16_t)
NP_QTEST_RW(l, uint32_t)
NP_QTEST_RW(q, uint64_t)

static int tst_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	ck_abort_msg("bad hex digit '%c' in a qtest reply", c);
	return 0;
}

/* Chunked so that command lines and replies stay reasonably small. */
#define NP_QTEST_CHUNK 4096u

void tst_memread(struct tst_qtest *qt, uint64_t addr, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		size_t n = len < NP_QTEST_CHUNK ? len : NP_QTEST_CHUNK, i;
		const char *hex =
			tst_cmd(qt, "read 0x%" PRIx64 " 0x%zx\n", addr, n);

		ck_assert_msg(strncmp(hex, "0x", 2) == 0 &&
				      strlen(hex) == 2 + 2 * n,
			      "bad reply to read of %zu bytes", n);
		for (i = 0; i < n; i++)
			p[i] = (uint8_t)(tst_nibble(hex[2 + 2 * i]) << 4 |
					 tst_nibble(hex[3 + 2 * i]));
		p += n;
		addr += n;
		len -= n;
	}
}

void tst_memwrite(struct tst_qtest *qt, uint64_t addr, const void *buf,
		  size_t len)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *p = buf;
	char *cmd = malloc(64 + 2 * NP_QTEST_CHUNK);

	ck_assert_ptr_nonnull(cmd);
	while (len) {
		size_t n = len < NP_QTEST_CHUNK ? len : NP_QTEST_CHUNK, i;
		int off = snprintf(cmd, 64, "write 0x%" PRIx64 " 0x%zx 0x",
				   addr, n);

		for (i = 0; i < n; i++) {
			cmd[off++] = digits[p[i] >> 4];
			cmd[off++] = digits[p[i] & 15];
		}
		cmd[off++] = '\n';
		tst_send(&qt->qtest, cmd, (size_t)off);
		tst_recv_line(qt, &qt->qtest, "write");
		ck_assert_msg(strcmp(qt->line, "OK") == 0,
			      "write of %zu bytes at 0x%" PRIx64 " answered %s",
			      n, addr, qt->line);
		p += n;
		addr += n;
		len -= n;
	}
	free(cmd);
}

void tst_memset(struct tst_qtest *qt, uint64_t addr, uint8_t v, size_t len)
{
	tst_cmd(qt, "memset 0x%" PRIx64 " 0x%zx 0x%x\n", addr, len, v);
}

static uint32_t tst_cfg_addr(unsigned int bdf, unsigned int off)
{
	return 0x80000000u | bdf << 8 | (off & 0xfc);
}

uint32_t tst_cfg_readl(struct tst_qtest *qt, unsigned int bdf, unsigned int off)
{
	tst_outl(qt, 0xcf8, tst_cfg_addr(bdf, off));
	return tst_inl(qt, 0xcfc);
}

uint16_t tst_cfg_readw(struct tst_qtest *qt, unsigned int bdf, unsigned int off)
{
	return (uint16_t)(tst_cfg_readl(qt, bdf, off) >> (8 * (off & 2)));
}

uint8_t tst_cfg_readb(struct tst_qtest *qt, unsigned int bdf, unsigned int off)
{
	return (uint8_t)(tst_cfg_readl(qt, bdf, off) >> (8 * (off & 3)));
}

void tst_cfg_writel(struct tst_qtest *qt, unsigned int bdf, unsigned int off,
		    uint32_t v)
{
	tst_outl(qt, 0xcf8, tst_cfg_addr(bdf, off));
	tst_outl(qt, 0xcfc, v);
}

void tst_cfg_writew(struct tst_qtest *qt, unsigned int bdf, unsigned int off,
		    uint16_t v)
{
	tst_outl(qt, 0xcf8, tst_cfg_addr(bdf, off));
	tst_cmd(qt, "outw 0x%x 0x%x\n", 0xcfc + (off & 2), v);
}

unsigned int tst_cfg_find_cap(struct tst_qtest *qt, unsigned int bdf,
			      uint8_t id)
{
	unsigned int pos, guard;

	if (!(tst_cfg_readw(qt, bdf, 0x06) & 0x10)) /* capability list */
		return 0;
	pos = tst_cfg_readb(qt, bdf, 0x34) & 0xfc;
	for (guard = 0; pos && guard < 48; guard++) {
		if (tst_cfg_readb(qt, bdf, pos) == id)
			return pos;
		pos = tst_cfg_readb(qt, bdf, pos + 1) & 0xfc;
	}
	return 0;
}
