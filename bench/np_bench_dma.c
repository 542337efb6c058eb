// SPDX-License-Identifier: MIT
/*
 * np_bench_dma: DMA bandwidth and latency through libnp, next to the
 * memcpy bandwidth of the same machine measured in the same run.
 *
 *   np_bench_dma [spec]        spec defaults to NP_DEVICES, else emu:2
 *
 * For each size from 4 KiB to 16 MiB and each direction (host->card,
 * card->host, card->card into the next card's frame buffer):
 *   GB/s   pipelined: up to DEPTH transfers in flight over all engines
 *   lat    one synchronous transfer at a time (submit + wait + free),
 *          median, us
 *   %      GB/s as a share of memcpy of the same size
 * Then the per-transfer cost of tiny (64-byte) transfers: synchronous
 * round trip, and pipelined submit + complete, in wall time and in CPU
 * time of all threads (the host thread and the emulator's workers): on a
 * shared machine the CPU time is the steadier figure.
 *
 * Bytes counted once (a copy of N bytes moves N bytes), for memcpy too.
 * The machine is shared: bandwidths are the best of ROUNDS interleaved
 * rounds (memcpy, then each direction, per round), so that memcpy and DMA
 * see the same interference; latencies are medians.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "np/np.h"
#include "np_abi.h"

#define MIN_SIZE (4u * 1024u)
#define MAX_SIZE (16u * 1024u * 1024u)
/* Transfers in flight use distinct regions of SPAN bytes (the frame
 * buffer size), as real work would; memcpy cycles through the same. */
#define SPAN (32u * 1024u * 1024u)
#define DEPTH 32u
#define BYTES_PER_POINT (64ull << 20) /* data moved per measurement */
#define ROUNDS 5u
#define TINY 64u
#define TINY_COUNT 20000u

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU seconds used by every thread of the process (host and emulator). */
static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static unsigned int iterations(size_t size, unsigned int lo, unsigned int hi)
{
	unsigned long long n = BYTES_PER_POINT / size;

	return n < lo ? lo : n > hi ? hi : (unsigned int)n;
}

static unsigned int regions(size_t size)
{
	return SPAN / size < DEPTH ? (unsigned int)(SPAN / size) : DEPTH;
}

static double bench_memcpy(char *dst, const char *src, size_t size)
{
	unsigned int n = iterations(size, 8, 20000), i, nr = regions(size);
	double t;

	t = now_s();
	for (i = 0; i < n; i++) {
		size_t off = (i % nr) * size;

		memcpy(dst + off, src + off, size);
		/* Keep the compiler from merging the copies. */
		__asm__ volatile("" : : "r"(dst) : "memory");
	}
	return (double)size * n / (now_s() - t) / 1e9;
}

struct dir {
	const char *name;
	struct np_card *card;
	struct np_xfer_spec spec; /* region 0 */
};

/* The spec of the i-th transfer of size bytes. */
static struct np_xfer_spec spec_at(const struct dir *d, size_t size,
				   unsigned int i)
{
	struct np_xfer_spec s = d->spec;
	size_t off = (i % regions(size)) * size;

	s.len = size;
	if (s.buf)
		s.buf_offset += off;
	s.card_addr += off;
	if (s.op == NP_XFER_C2C)
		s.dst_addr += off;
	return s;
}

static int run_one(struct dir *d, size_t size)
{
	d->spec.len = size;
	return np_xfer_run(d->card, &d->spec);
}

/* Pipelined bandwidth, GB/s; < 0 on error. */
static double bench_bw(struct dir *d, size_t size)
{
	unsigned int n = iterations(size, 16, 20000), i;
	struct np_xfer *x[DEPTH] = {0};
	double t;
	int ret;

	d->spec.len = size;
	t = now_s();
	for (i = 0; i < n + DEPTH; i++) {
		struct np_xfer **slot = &x[i % DEPTH];

		if (*slot) {
			ret = np_xfer_wait(*slot, NP_TIMEOUT_DEFAULT);
			np_xfer_free(*slot);
			*slot = NULL;
			if (ret)
				return ret;
		}
		if (i < n) {
			struct np_xfer_spec sp = spec_at(d, size, i);

			ret = np_xfer_submit(d->card, &sp, slot);
			if (ret)
				return ret;
		}
	}
	return (double)size * n / (now_s() - t) / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Synchronous latency, microseconds: the median, because the machine is
 * shared and a descheduled thread shows up as a huge outlier; < 0 on
 * error. */
static double bench_lat(struct dir *d, size_t size)
{
	unsigned int n = iterations(size, 4, 2000) / 4 + 4, i;
	double t, *lat = calloc(n, sizeof(*lat)), med;
	int ret = 0;

	if (!lat)
		return -ENOMEM;
	for (i = 0; i < n && !ret; i++) {
		t = now_s();
		ret = run_one(d, size);
		lat[i] = (now_s() - t) * 1e6;
	}
	qsort(lat, n, sizeof(*lat), cmp_double);
	med = lat[n / 2];
	free(lat);
	return ret ? ret : med;
}

static void tiny(struct dir *d)
{
	struct np_xfer **x = calloc(TINY_COUNT, sizeof(*x));
	double t, c, sync_us, pipe_us, cpu_us;
	unsigned int i;
	int ret = 0;

	if (!x)
		return;
	d->spec.len = TINY;
	for (i = 0; i < 1000; i++)
		run_one(d, TINY);
	sync_us = bench_lat(d, TINY);
	ret = sync_us < 0 ? (int)sync_us : 0;
	t = now_s();
	c = cpu_s();
	for (i = 0; i < TINY_COUNT && !ret; i++)
		ret = np_xfer_submit(d->card, &d->spec, &x[i]);
	for (i = 0; i < TINY_COUNT && !ret; i++)
		ret = np_xfer_wait(x[i], NP_TIMEOUT_DEFAULT);
	pipe_us = (now_s() - t) / TINY_COUNT * 1e6;
	cpu_us = (cpu_s() - c) / TINY_COUNT * 1e6;
	for (i = 0; i < TINY_COUNT; i++)
		np_xfer_free(x[i]);
	free(x);
	if (ret) {
		printf("%-4s %u B: error %s\n", d->name, TINY, strerror(-ret));
		return;
	}
	printf("%-4s %u B: sync round trip (median) %6.2f us; pipelined "
	       "submit+complete %5.3f us/transfer wall, %5.3f us CPU (all "
	       "threads)\n",
	       d->name, TINY, sync_us, pipe_us, cpu_us);
}

int main(int argc, char **argv)
{
	const char *spec = argc > 1 ? argv[1] : getenv("NP_DEVICES");
	struct np_card *c0, *c1;
	struct np_card_info in;
	struct np_buf *buf;
	struct np_ctx *ctx;
	struct dir dirs[3];
	char *src, *dst;
	int ret;

	if (!spec || !*spec)
		spec = "emu:2";
	ret = np_open(spec, NULL, &ctx);
	if (ret) {
		fprintf(stderr, "np_bench_dma: np_open(\"%s\"): %s\n", spec,
			strerror(-ret));
		return 1;
	}
	c0 = np_ctx_card(ctx, 0);
	c1 = np_ctx_card(ctx, np_ctx_num_cards(ctx) > 1 ? 1 : 0);
	np_card_info(c0, &in);
	src = aligned_alloc(4096, SPAN);
	dst = aligned_alloc(4096, SPAN);
	ret = np_buf_alloc(ctx, SPAN, &buf);
	if (!src || !dst || ret) {
		fprintf(stderr, "np_bench_dma: out of memory\n");
		return 1;
	}
	memset(src, 0x5a, SPAN);
	memset(dst, 0, SPAN);
	memset(np_buf_ptr(buf), 0x3c, np_buf_size(buf));
	dirs[0] = (struct dir){"h2c",
			       c0,
			       {.op = NP_XFER_H2C,
				.engine = -1,
				.buf = buf,
				.card_addr = NP_CA_SRAM_BASE}};
	dirs[1] = (struct dir){"c2h",
			       c0,
			       {.op = NP_XFER_C2H,
				.engine = -1,
				.buf = buf,
				.card_addr = NP_CA_SRAM_BASE}};
	dirs[2] = (struct dir){"c2c",
			       c0,
			       {.op = NP_XFER_C2C,
				.engine = -1,
				.peer = c1,
				.card_addr = NP_CA_SRAM_BASE,
				.dst_addr = NP_CA_FB_BASE}};
	printf("np_bench_dma: backend %s, %u cards, %u DMA engines/card, "
	       "depth %u, c2c %s -> %s (%s)\n",
	       np_ctx_backend(ctx), np_ctx_num_cards(ctx), in.dma_engines,
	       DEPTH, np_card_name(c0), np_card_name(c1),
	       np_card_p2p_mode(c0, c1) == NP_P2P_DIRECT ? "direct" :
							   "host bounce");
	printf("%8s %8s | %7s %5s %8s | %7s %5s %8s | %7s %5s %8s\n", "size",
	       "memcpy", "h2c", "%", "lat", "c2h", "%", "lat", "c2c", "%",
	       "lat");
	printf("%8s %8s | %7s %5s %8s | %7s %5s %8s | %7s %5s %8s\n", "",
	       "GB/s", "GB/s", "", "us", "GB/s", "", "us", "GB/s", "", "us");
	/* Fault in the card memories the benchmark touches. */
	for (unsigned int k = 0; k < 3; k++)
		for (unsigned int r = 0; r < SPAN / MAX_SIZE; r++) {
			struct np_xfer_spec sp = spec_at(&dirs[k], MAX_SIZE, r);

			np_xfer_run(dirs[k].card, &sp);
		}
	for (size_t size = MIN_SIZE; size <= MAX_SIZE; size *= 2) {
		double mc = 0, bw[3] = {0}, v;

		for (unsigned int r = 0; r < ROUNDS; r++) {
			v = bench_memcpy(dst, src, size);
			mc = v > mc ? v : mc;
			for (unsigned int k = 0; k < 3; k++) {
				v = bench_bw(&dirs[k], size);
				if (v < 0) {
					printf("%s: error %s\n", dirs[k].name,
					       strerror((int)-v));
					return 1;
				}
				bw[k] = v > bw[k] ? v : bw[k];
			}
		}
		printf("%7zuK %8.2f", size / 1024, mc);
		for (unsigned int k = 0; k < 3; k++) {
			double lat = bench_lat(&dirs[k], size);

			if (lat < 0) {
				printf(" | %s: error %s\n", dirs[k].name,
				       strerror((int)-lat));
				return 1;
			}
			printf(" | %7.2f %4.0f%% %8.1f", bw[k],
			       100 * bw[k] / mc, lat);
		}
		printf("\n");
		fflush(stdout);
	}
	for (unsigned int k = 0; k < 3; k++)
		tiny(&dirs[k]);
	np_buf_free(buf);
	np_close(ctx);
	free(src);
	free(dst);
	return 0;
}
