/* SPDX-License-Identifier: MIT */
/*
 * Host-to-host links of a pipeline that spans hosts (docs/cluster.md):
 * one UCX worker per process (link_ucx.c), endpoints to the other hosts,
 * messages of one fixed header and an optional payload (UCX active
 * messages: eager for small ones, rendezvous straight into the
 * receiver's registered buffer for frames). The cluster code (cluster.c,
 * the head; member.c, a member) says where a payload lands and what a
 * message means; this file only moves them.
 *
 * No thread: the owner progresses the worker (npi_link_wait) from its own
 * loop; every callback runs inside npi_link_wait.
 */
#ifndef NP_LINK_H
#define NP_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* protocol version: a head and a member must agree */
#define NPI_LINK_PROTO 1u
/* receive slots of a link: frames in flight over one host boundary */
#define NPI_LINK_SLOTS 8u

enum npi_msg_type {
	NPI_MSG_HELLO = 1, /* head -> member: segment, hashes (npi_hello) */
	NPI_MSG_HELLO_REPLY = 2, /* member -> head: npi_hello_reply */
	NPI_MSG_FRAME = 3, /* downstream: a frame (k = frame index) */
	NPI_MSG_CREDIT = 4, /* upstream: receive slot of frame k free */
	NPI_MSG_HEARTBEAT = 5, /* either way, on an idle link */
	NPI_MSG_RESET = 6, /* head -> member: new epoch, npi_hello */
	NPI_MSG_FAULT = 7, /* member -> head: a card failed (a = -errno), or
			   * its link to the next host (b = 1) */
	NPI_MSG_BYE = 8, /* head -> member: unload, wait for a head */
};

/* The header of every message. */
struct npi_msg {
	uint32_t type; /* enum npi_msg_type */
	uint32_t epoch; /* frames and credits of an older epoch are dropped */
	uint64_t k; /* frame index within the epoch */
	uint32_t a, b; /* per type */
	uint64_t t_ns; /* sender's CLOCK_MONOTONIC at send (frames) */
};

struct npi_link;
struct npi_peer;
struct npi_send;

struct npi_link_ops {
	/* Where the payload of m (len bytes) from pe goes: a buffer of at
	 * least len bytes, or NULL to drop the message. */
	void *(*dest)(void *o, struct npi_peer *pe, const struct npi_msg *m,
		      size_t len);
	/* m arrived; its payload (len bytes) is in buf (dest's answer, or
	 * NULL for none) */
	void (*arrived)(void *o, struct npi_peer *pe, const struct npi_msg *m,
			void *buf, size_t len);
	/* pe failed (its host died, the connection was cut): -errno */
	void (*peer_error)(void *o, struct npi_peer *pe, int err);
	/* a host connected to our listener */
	void (*accepted)(void *o, struct npi_peer *pe);
};

int npi_link_open(struct np_ctx *ctx, const struct npi_link_ops *ops,
		  void *opaque, struct npi_link **out);
void npi_link_close(struct npi_link *l);
/* Listen on "address:port" (IPv4). */
int npi_link_listen(struct npi_link *l, const char *addr);
/* An endpoint to the listener at "address:port"; connects in the
 * background, messages queue meanwhile. */
int npi_link_connect(struct npi_link *l, const char *addr,
		     struct npi_peer **out);
/* Close pe's endpoint (forcibly when it failed); pe is freed. */
void npi_link_drop(struct npi_link *l, struct npi_peer *pe);
const char *npi_link_peer_name(const struct npi_peer *pe);
int npi_link_peer_error(const struct npi_peer *pe);
/* ns of the last message from pe (any type) */
uint64_t npi_link_peer_heard(const struct npi_peer *pe);

/* Register [p, p + len) with the transport for zero-copy receives and
 * sends (ucp_mem_map); npi_link_send and dest buffers inside it use it. */
int npi_link_map(struct npi_link *l, void *p, size_t len);
/* Undo npi_link_map(l, p, ...) before p is freed. */
void npi_link_unmap(struct npi_link *l, void *p);

/* Send m with payload [data, data + len) to pe. With req, the payload
 * must stay untouched until the send completes and *req gets a handle for
 * npi_link_send_done; without (fire and forget), it is copied first. */
int npi_link_send(struct npi_link *l, struct npi_peer *pe,
		  const struct npi_msg *m, const void *data, size_t len,
		  struct npi_send **req);
/* 1 when the send completed, 0 while it runs, -errno if it failed;
 * free it with npi_link_send_free (a running send is cancelled). */
int npi_link_send_done(struct npi_send *s);
void npi_link_send_free(struct npi_link *l, struct npi_send *s);

/* Progress the transport; sleep up to timeout_ms (0: do not, -1: no
 * limit) for something to happen, or for fd (when >= 0) to be readable.
 * Callbacks run in here. */
void npi_link_wait(struct npi_link *l, int timeout_ms, int fd);

/* The host at the other end played in-process (fuzz/link.c): a peer
 * without an endpoint, whose sends go to sent() and complete at once;
 * npi_link_inject receives m and its payload from it through the path of
 * a real eager message (dest, copy, queued for the next npi_link_wait). */
struct npi_peer *npi_link_local_peer(struct npi_link *l, const char *name,
				     void (*sent)(void *o,
						  const struct npi_msg *m,
						  const void *data, size_t len),
				     void *o);
void npi_link_inject(struct npi_link *l, struct npi_peer *pe,
		     const struct npi_msg *m, const void *data, size_t len);

#endif /* NP_LINK_H */
