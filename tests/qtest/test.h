/* SPDX-License-Identifier: MIT */
/*
 * The qtest directory's shared header: its suites, one per check_<module>.c,
 * and the qtest client (test.c) they drive the device with.
 *
 * A small client for QEMU's qtest protocol (docs/devel/qtest.rst): starts
 * qemu-system-x86_64 with -accel qtest on q35 and drives it over a Unix
 * socket with text commands (port I/O, MMIO, guest memory), plus a QMP
 * socket for monitor commands. It needs nothing from the QEMU tree: the
 * binary comes from $NP_QEMU.
 *
 * Every helper checks the reply with ck_assert_*: a protocol failure or a
 * dead QEMU fails the running test, naming the command.
 */
#ifndef TESTS_QTEST_TEST_H
#define TESTS_QTEST_TEST_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

Suite *np_suite_np_card(void);

struct tst_qtest;

/*
 * Start QEMU: "-machine q35 -accel qtest -nodefaults ... " followed by
 * extra_args, split at spaces. Fails the test when NP_QEMU is unset or
 * QEMU does not connect.
 */
struct tst_qtest *tst_start(const char *extra_args);

/* Terminate QEMU and free the session. NULL is fine. */
void tst_stop(struct tst_qtest *qt);

/*
 * Sessions live in $NP_QTEST_TMPDIR (default /tmp). A test that fails ends
 * its process before its teardown, so its session stays behind: the
 * runner calls this at the end to print the end of each such QEMU's stderr
 * (guest errors are logged there) and to remove base.
 */
void tst_reap(const char *base);

/*
 * Run QEMU with extra_args, expecting it to exit before it connects (a
 * realize error). Returns its exit status (as from waitpid) and copies its
 * stderr into err (NUL-terminated, truncated to errlen).
 */
int tst_run_expect_exit(const char *extra_args, char *err, size_t errlen);

/*
 * Send one QMP command (a JSON object, printf-style) and return QEMU's
 * one-line reply: {"return": ...} or {"error": ...}. Events are skipped.
 * The string lives until the next command.
 */
const char *tst_qmp(struct tst_qtest *qt, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* True while the QEMU process runs and answers a command. */
int tst_alive(struct tst_qtest *qt);

/* Port I/O */
void tst_outl(struct tst_qtest *qt, uint16_t port, uint32_t v);
uint32_t tst_inl(struct tst_qtest *qt, uint16_t port);

/* MMIO and guest memory, little-endian values */
uint8_t tst_readb(struct tst_qtest *qt, uint64_t addr);
uint16_t tst_readw(struct tst_qtest *qt, uint64_t addr);
uint32_t tst_readl(struct tst_qtest *qt, uint64_t addr);
uint64_t tst_readq(struct tst_qtest *qt, uint64_t addr);
void tst_writeb(struct tst_qtest *qt, uint64_t addr, uint8_t v);
void tst_writew(struct tst_qtest *qt, uint64_t addr, uint16_t v);
void tst_writel(struct tst_qtest *qt, uint64_t addr, uint32_t v);
void tst_writeq(struct tst_qtest *qt, uint64_t addr, uint64_t v);
void tst_memread(struct tst_qtest *qt, uint64_t addr, void *buf, size_t len);
void tst_memwrite(struct tst_qtest *qt, uint64_t addr, const void *buf,
		  size_t len);
void tst_memset(struct tst_qtest *qt, uint64_t addr, uint8_t v, size_t len);

/*
 * PCI configuration space through ports 0xcf8/0xcfc (the first 256 bytes);
 * bdf is bus << 8 | device << 3 | function.
 */
uint32_t tst_cfg_readl(struct tst_qtest *qt, unsigned int bdf,
		       unsigned int off);
uint16_t tst_cfg_readw(struct tst_qtest *qt, unsigned int bdf,
		       unsigned int off);
uint8_t tst_cfg_readb(struct tst_qtest *qt, unsigned int bdf, unsigned int off);
void tst_cfg_writel(struct tst_qtest *qt, unsigned int bdf, unsigned int off,
		    uint32_t v);
void tst_cfg_writew(struct tst_qtest *qt, unsigned int bdf, unsigned int off,
		    uint16_t v);
/* Offset of capability id in the standard list, 0 if absent. */
unsigned int tst_cfg_find_cap(struct tst_qtest *qt, unsigned int bdf,
			      uint8_t id);

#endif /* TESTS_QTEST_TEST_H */
