// SPDX-License-Identifier: MIT
/*
 * The cost of a frame crossing a host boundary (libnp/src/link_ucx.c, the
 * transport of a pipeline that spans hosts, docs/cluster.md): a sender
 * and a receiver, each with its own UCX worker on its own thread, over
 * the address given (127.0.0.1 by default: TCP through the loopback
 * stack; scripts/bench.sh also runs it between two network namespaces).
 * Frames go from a registered buffer into the receiver's registered
 * slots under the pipeline's credit protocol (NPI_LINK_SLOTS receive
 * slots; a slot's credit goes back once the receiver has taken the
 * frame). Per frame size: wall time per frame with one frame in flight
 * (latency: send to credit back), frames/s and bandwidth with the credit
 * window full, and the CPU time each side's thread spent per frame.
 *
 *   np_bench_link [--addr A:P] [--frames N] [--size BYTES]...
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "link.h"

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct side {
	struct npi_link *l;
	struct npi_peer *peer; /* the other side */
	uint8_t *buf;
	size_t size;
	uint32_t credits;
	uint64_t got, cpu_ns;
	volatile int stop;
};

static void *r_dest(void *o, struct npi_peer *pe, const struct npi_msg *m,
		    size_t len)
{
	struct side *s = o;

	(void)pe;
	if (m->type != NPI_MSG_FRAME || len > s->size)
		return NULL;
	return s->buf + (m->k % NPI_LINK_SLOTS) * s->size;
}

static void r_arrived(void *o, struct npi_peer *pe, const struct npi_msg *m,
		      void *buf, size_t len)
{
	struct side *s = o;
	struct npi_msg c = {.type = NPI_MSG_CREDIT, .k = m->k};

	(void)buf;
	(void)len;
	if (m->type == NPI_MSG_FRAME) {
		s->got++;
		npi_link_send(s->l, pe, &c, NULL, 0, NULL);
	}
}

static void s_arrived(void *o, struct npi_peer *pe, const struct npi_msg *m,
		      void *buf, size_t len)
{
	struct side *s = o;

	(void)pe;
	(void)buf;
	(void)len;
	if (m->type == NPI_MSG_CREDIT)
		s->credits++;
}

static void *no_dest(void *o, struct npi_peer *pe, const struct npi_msg *m,
		     size_t len)
{
	(void)o;
	(void)pe;
	(void)m;
	(void)len;
	return NULL;
}

static void on_error(void *o, struct npi_peer *pe, int err)
{
	(void)o;
	fprintf(stderr, "np_bench_link: %s failed: %s\n",
		npi_link_peer_name(pe), strerror(-err));
	exit(1);
}

static void on_accept(void *o, struct npi_peer *pe)
{
	((struct side *)o)->peer = pe;
}

static const struct npi_link_ops recv_ops = {r_dest, r_arrived, on_error,
					     on_accept};
static const struct npi_link_ops send_ops = {no_dest, s_arrived, on_error,
					     on_accept};

static void *receiver(void *arg)
{
	struct side *s = arg;
	uint64_t c0 = thread_cpu_ns();

	while (!s->stop)
		npi_link_wait(s->l, 5, -1);
	s->cpu_ns = thread_cpu_ns() - c0;
	return NULL;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* n frames of size bytes with at most window in flight (credits), the
 * sends tracked as the member tracks them; wall ns. */
static uint64_t run(struct side *tx, size_t size, uint32_t n, uint32_t window,
		    uint64_t *k)
{
	struct npi_send *sr[NPI_LINK_SLOTS] = {0};
	uint64_t t0 = now_ns();
	uint32_t sent = 0;

	tx->credits = window;
	while (sent < n || tx->credits < window) {
		while (sent < n && tx->credits) {
			struct npi_msg m = {.type = NPI_MSG_FRAME, .k = *k};
			struct npi_send **s = &sr[*k % NPI_LINK_SLOTS];

			/* the slot's previous send is done: its credit came
			 * back after the receiver took it */
			while (*s && !npi_link_send_done(*s))
				npi_link_wait(tx->l, 0, -1);
			npi_link_send_free(tx->l, *s);
			if (npi_link_send(tx->l, tx->peer, &m, tx->buf, size,
					  s))
				exit(1);
			(*k)++;
			tx->credits--;
			sent++;
		}
		npi_link_wait(tx->l, 1, -1);
	}
	for (uint32_t i = 0; i < NPI_LINK_SLOTS; i++) {
		while (sr[i] && !npi_link_send_done(sr[i]))
			npi_link_wait(tx->l, 0, -1);
		npi_link_send_free(tx->l, sr[i]);
	}
	return now_ns() - t0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"addr", required_argument, NULL, 'a'},
		{"frames", required_argument, NULL, 'n'},
		{"size", required_argument, NULL, 's'},
		{0},
	};
	const char *addr = "127.0.0.1:7390";
	size_t sizes[16] = {0};
	uint32_t n_sizes = 0, frames = 2000;
	size_t max = 0;
	struct side rx = {0}, tx = {0};
	pthread_t th;
	uint64_t k = 0;
	int c;

	while ((c = getopt_long(argc, argv, "a:n:s:", lo, NULL)) != -1) {
		if (c == 'a')
			addr = optarg;
		else if (c == 'n')
			frames = (uint32_t)strtoul(optarg, NULL, 10);
		else if (c == 's' && n_sizes < 16)
			sizes[n_sizes++] = strtoull(optarg, NULL, 0);
		else
			return 2;
	}
	if (!n_sizes) {
		/* a decode frame of the demo model (28 tokens x 256), of
		 * Granite-3.3-8B (28 x 4096), a 64-token prefill of it, and
		 * large frames */
		static const size_t d[] = {8 + 28 * (8 + 512),
					   8 + 28 * (8 + 8192),
					   8 + 64 * (8 + 8192), 4u << 20};

		memcpy(sizes, d, sizeof(d));
		n_sizes = 4;
	}
	for (uint32_t i = 0; i < n_sizes; i++)
		max = sizes[i] > max ? sizes[i] : max;
	rx.size = max;
	rx.buf = aligned_alloc(4096, NPI_LINK_SLOTS * max);
	tx.buf = aligned_alloc(4096, max);
	if (!rx.buf || !tx.buf)
		return 1;
	memset(tx.buf, 0x5a, max);
	if (npi_link_open(NULL, &recv_ops, &rx, &rx.l) ||
	    npi_link_listen(rx.l, addr) ||
	    npi_link_map(rx.l, rx.buf, NPI_LINK_SLOTS * max) ||
	    npi_link_open(NULL, &send_ops, &tx, &tx.l) ||
	    npi_link_map(tx.l, tx.buf, max) ||
	    npi_link_connect(tx.l, addr, &tx.peer)) {
		fprintf(stderr, "np_bench_link: cannot set up the link on %s\n",
			addr);
		return 1;
	}
	pthread_create(&th, NULL, receiver, &rx);
	run(&tx, 64, 100, 1, &k); /* connect, warm up */
	printf("# np_bench_link over %s (UCX_TLS=%s): %u frames per size\n",
	       addr, getenv("UCX_TLS") ? getenv("UCX_TLS") : "default", frames);
	printf("%10s %12s %14s %12s %12s %14s %14s\n", "bytes", "wall_us_1",
	       "wall_us_win", "frames/s", "MB/s", "tx_cpu_us/fr",
	       "rx_cpu_us/fr");
	for (uint32_t i = 0; i < n_sizes; i++) {
		uint32_t n = sizes[i] >= (1u << 20) ? frames / 10 : frames;
		uint64_t lat, win, tc0, tc1, rc0, rc1;

		if (!n)
			n = 1;
		lat = run(&tx, sizes[i], n, 1, &k);
		/* the receiver's CPU: its whole thread time, read by
		 * stopping and restarting it around the windowed run */
		rx.stop = 1;
		pthread_join(th, NULL);
		rc0 = rx.cpu_ns;
		rx.stop = 0;
		rx.cpu_ns = 0;
		pthread_create(&th, NULL, receiver, &rx);
		tc0 = thread_cpu_ns();
		win = run(&tx, sizes[i], n, NPI_LINK_SLOTS, &k);
		tc1 = thread_cpu_ns();
		rx.stop = 1;
		pthread_join(th, NULL);
		rc1 = rx.cpu_ns;
		(void)rc0;
		rx.stop = 0;
		rx.cpu_ns = 0;
		pthread_create(&th, NULL, receiver, &rx);
		printf("%10zu %12.1f %14.1f %12.0f %12.1f %14.2f %14.2f\n",
		       sizes[i], (double)lat / n / 1e3, (double)win / n / 1e3,
		       (double)n * 1e9 / (double)win,
		       (double)sizes[i] * n * 1e3 / (double)win,
		       (double)(tc1 - tc0) / n / 1e3, (double)rc1 / n / 1e3);
	}
	rx.stop = 1;
	pthread_join(th, NULL);
	npi_link_close(tx.l);
	npi_link_close(rx.l);
	free(rx.buf);
	free(tx.buf);
	return 0;
}
