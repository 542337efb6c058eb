/* SPDX-License-Identifier: MIT */
/*
 * A small client for QEMU's qtest protocol (docs/devel/qtest.rst): starts
 * qemu-system-x86_64 with -accel qtest on q35 and drives it over a Unix
 * socket with text commands (port I/O, MMIO, guest memory), plus a QMP
 * socket for monitor commands. It needs nothing from the QEMU tree: the
 * binary comes from $NP_QEMU.
 *
 * Every helper checks the reply with ck_assert_*: a protocol failure or a
 * dead QEMU fails the running test, naming the command.
 */
#ifndef NP_QTEST_H
#define NP_QTEST_H

#include <stddef.h>
#include <stdint.h>

struct np_qtest;

/*
 * Start QEMU: "-machine q35 -accel qtest -nodefaults ... " followed by
 * extra_args, split at spaces. Fails the test when NP_QEMU is unset or
 * QEMU does not connect.
 */
struct np_qtest *np_qtest_start(const char *extra_args);

/* Terminate QEMU and free the session. NULL is fine. */
void np_qtest_stop(struct np_qtest *qt);

/*
 * Sessions live in $NP_QTEST_TMPDIR (default /tmp). A test that fails ends
 * its process before its teardown, so its session stays behind: the
 * runner calls this at the end to print the end of each such QEMU's stderr
 * (guest errors are logged there) and to remove base.
 */
void np_qtest_reap(const char *base);

/*
 * Run QEMU with extra_args, expecting it to exit before it connects (a
 * realize error). Returns its exit status (as from waitpid) and copies its
 * stderr into err (NUL-terminated, truncated to errlen).
 */
int np_qtest_run_expect_exit(const char *extra_args, char *err, size_t errlen);

/*
 * Send one QMP command (a JSON object, printf-style) and return QEMU's
 * one-line reply: {"return": ...} or {"error": ...}. Events are skipped.
 * The string lives until the next command.
 */
const char *np_qtest_qmp(struct np_qtest *qt, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* True while the QEMU process runs and answers a command. */
int np_qtest_alive(struct np_qtest *qt);

/* Port I/O */
void np_qtest_outl(struct np_qtest *qt, uint16_t port, uint32_t v);
uint32_t np_qtest_inl(struct np_qtest *qt, uint16_t port);

/* MMIO and guest memory, little-endian values */
uint8_t np_qtest_readb(struct np_qtest *qt, uint64_t addr);
uint16_t np_qtest_readw(struct np_qtest *qt, uint64_t addr);
uint32_t np_qtest_readl(struct np_qtest *qt, uint64_t addr);
uint64_t np_qtest_readq(struct np_qtest *qt, uint64_t addr);
void np_qtest_writeb(struct np_qtest *qt, uint64_t addr, uint8_t v);
void np_qtest_writew(struct np_qtest *qt, uint64_t addr, uint16_t v);
void np_qtest_writel(struct np_qtest *qt, uint64_t addr, uint32_t v);
void np_qtest_writeq(struct np_qtest *qt, uint64_t addr, uint64_t v);
void np_qtest_memread(struct np_qtest *qt, uint64_t addr, void *buf,
		      size_t len);
void np_qtest_memwrite(struct np_qtest *qt, uint64_t addr, const void *buf,
		       size_t len);
void np_qtest_memset(struct np_qtest *qt, uint64_t addr, uint8_t v, size_t len);

/*
 * PCI configuration space through ports 0xcf8/0xcfc (the first 256 bytes);
 * bdf is bus << 8 | device << 3 | function.
 */
uint32_t np_qtest_cfg_readl(struct np_qtest *qt, unsigned int bdf,
			    unsigned int off);
uint16_t np_qtest_cfg_readw(struct np_qtest *qt, unsigned int bdf,
			    unsigned int off);
uint8_t np_qtest_cfg_readb(struct np_qtest *qt, unsigned int bdf,
			   unsigned int off);
void np_qtest_cfg_writel(struct np_qtest *qt, unsigned int bdf,
			 unsigned int off, uint32_t v);
void np_qtest_cfg_writew(struct np_qtest *qt, unsigned int bdf,
			 unsigned int off, uint16_t v);
/* Offset of capability id in the standard list, 0 if absent. */
unsigned int np_qtest_cfg_find_cap(struct np_qtest *qt, unsigned int bdf,
				   uint8_t id);

#endif /* NP_QTEST_H */
