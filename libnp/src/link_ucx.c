// SPDX-License-Identifier: MIT
/*
 * Host-to-host links on UCX (link.h): one context and worker with active
 * messages and wakeup, a listener for the hosts upstream, endpoints with
 * peer error handling (a dead or cut-off host is reported, never waited
 * for). Payloads go eager when small and rendezvous when large, straight
 * into the receiver's buffer (registered with ucp_mem_map when the owner
 * asked: npi_link_map). Which transport carries them is UCX's choice
 * (UCX_TLS, UCX_NET_DEVICES: TCP and shared memory on these machines,
 * RDMA verbs on a cluster with RDMA NICs).
 *
 * libucp is loaded when a link is first opened (dlopen), not when libnp
 * is: a program that never spans hosts needs no UCX installed, and does
 * not get the error signal handlers libucs installs when it loads.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucp/api/ucp.h>

#include "link.h"

/* The UCX functions used here, resolved from libucp.so.0 (and the libucs
 * it loads) at the first npi_link_open. */
#define UCX_FUNCS(X)                      \
	X(ucp_am_data_release)            \
	X(ucp_am_recv_data_nbx)           \
	X(ucp_am_send_nbx)                \
	X(ucp_cleanup)                    \
	X(ucp_config_read)                \
	X(ucp_config_release)             \
	X(ucp_conn_request_query)         \
	X(ucp_ep_close_nbx)               \
	X(ucp_ep_create)                  \
	X(ucp_init_version)               \
	X(ucp_listener_create)            \
	X(ucp_listener_destroy)           \
	X(ucp_listener_reject)            \
	X(ucp_mem_map)                    \
	X(ucp_mem_unmap)                  \
	X(ucp_request_cancel)             \
	X(ucp_request_check_status)       \
	X(ucp_request_free)               \
	X(ucp_worker_arm)                 \
	X(ucp_worker_create)              \
	X(ucp_worker_destroy)             \
	X(ucp_worker_get_efd)             \
	X(ucp_worker_progress)            \
	X(ucp_worker_set_am_recv_handler) \
	X(ucs_status_string)

static struct {
#define UCX_PTR(f) __typeof__(f) *f;
	UCX_FUNCS(UCX_PTR)
#undef UCX_PTR
} U;
static pthread_once_t ucx_once = PTHREAD_ONCE_INIT;
static char ucx_error[160];

static void ucx_load(void)
{
	void *h = dlopen("libucp.so.0", RTLD_NOW | RTLD_GLOBAL);

	if (!h) {
		snprintf(ucx_error, sizeof(ucx_error), "%s", dlerror());
		return;
	}
#define UCX_SYM(f)                                             \
	if (!ucx_error[0] && !(*(void **)&U.f = dlsym(h, #f))) \
		snprintf(ucx_error, sizeof(ucx_error),         \
			 "libucp.so.0 has no %s", #f);
	UCX_FUNCS(UCX_SYM)
#undef UCX_SYM
}

#define AM_ID 0x4e50 /* "NP" */
/* a link without a context (bench/np_bench_link) logs nothing */
#define LLOG(ctx, ...)                               \
	do {                                         \
		if (ctx)                             \
			npi_log((ctx), __VA_ARGS__); \
	} while (0)
#define MAX_MAPS 8u
#define CLOSE_WAIT_MS 1000

struct npi_peer {
	struct npi_peer *next;
	struct npi_link *l;
	ucp_ep_h ep;
	char name[64];
	int err;
	uint64_t heard;
	/* a local peer (npi_link_local_peer): no endpoint, sends go here */
	void (*sent)(void *o, const struct npi_msg *m, const void *data,
		     size_t len);
	void *sent_o;
};

struct npi_send {
	struct npi_msg hdr; /* valid until completion */
	void *req;
	int status; /* 1 done, 0 running, -errno */
	bool detached; /* the completion frees it */
	uint8_t copy[]; /* fire and forget: the payload */
};

/* a message delivered after the progress call that received it */
struct event {
	struct event *next;
	struct npi_peer *pe;
	struct npi_msg m;
	void *buf;
	size_t len;
	int err; /* a peer error event when != 0 */
	bool accepted;
	bool ready; /* rendezvous payloads: once received */
};

struct npi_link {
	struct np_ctx *ctx;
	const struct npi_link_ops *ops;
	void *opaque;
	ucp_context_h uc;
	ucp_worker_h w;
	ucp_listener_h lis;
	int efd;
	struct npi_peer *peers;
	struct event *ev_head, **ev_tail;
	struct {
		void *p;
		size_t len;
		ucp_mem_h memh;
	} map[MAX_MAPS];
	uint32_t n_map;
};

static int err_of(ucs_status_t st)
{
	switch (st) {
	case UCS_OK:
		return 0;
	case UCS_ERR_NO_MEMORY:
		return -ENOMEM;
	case UCS_ERR_INVALID_PARAM:
		return -EINVAL;
	case UCS_ERR_TIMED_OUT:
	case UCS_ERR_ENDPOINT_TIMEOUT:
		return -ETIMEDOUT;
	case UCS_ERR_UNREACHABLE:
		return -EHOSTUNREACH;
	case UCS_ERR_CANCELED:
		return -ECANCELED;
	case UCS_ERR_BUSY:
	case UCS_ERR_ALREADY_EXISTS:
		return -EADDRINUSE;
	default:
		return -ECONNRESET;
	}
}

static void queue_event(struct npi_link *l, struct event *e)
{
	e->next = NULL;
	*l->ev_tail = e;
	l->ev_tail = &e->next;
}

static ucp_mem_h memh_of(struct npi_link *l, const void *p, size_t len)
{
	for (uint32_t i = 0; i < l->n_map; i++) {
		const uint8_t *b = l->map[i].p;

		if ((const uint8_t *)p >= b &&
		    (const uint8_t *)p + len <= b + l->map[i].len)
			return l->map[i].memh;
	}
	return NULL;
}

static void ep_error(void *arg, ucp_ep_h ep, ucs_status_t st)
{
	struct npi_peer *pe = arg;
	struct event *e;

	(void)ep;
	if (pe->err)
		return;
	pe->err = err_of(st);
	if (!pe->err)
		pe->err = -ECONNRESET;
	LLOG(pe->l->ctx, LOG_WARNING, "link: %s failed: %s", pe->name,
	     U.ucs_status_string(st));
	e = calloc(1, sizeof(*e));
	if (!e)
		return;
	e->pe = pe;
	e->err = pe->err;
	e->ready = true;
	queue_event(pe->l, e);
}

static struct npi_peer *peer_new(struct npi_link *l, const char *name)
{
	struct npi_peer *pe = calloc(1, sizeof(*pe));

	if (!pe)
		return NULL;
	pe->l = l;
	pe->heard = npi_now_ns();
	snprintf(pe->name, sizeof(pe->name), "%s", name);
	pe->next = l->peers;
	l->peers = pe;
	return pe;
}

static void peer_unlink(struct npi_link *l, struct npi_peer *pe)
{
	for (struct npi_peer **pp = &l->peers; *pp; pp = &(*pp)->next)
		if (*pp == pe) {
			*pp = pe->next;
			return;
		}
}

static struct npi_peer *peer_of(struct npi_link *l, ucp_ep_h ep)
{
	for (struct npi_peer *pe = l->peers; pe; pe = pe->next)
		if (pe->ep == ep)
			return pe;
	return NULL;
}

static void recv_done(void *req, ucs_status_t st, size_t len, void *user)
{
	struct event *e = user;

	(void)len;
	if (st != UCS_OK) {
		e->buf = NULL; /* dropped: the peer error follows */
		e->len = 0;
		e->m.type = 0;
	}
	e->ready = true;
	U.ucp_request_free(req);
}

/* A message from pe arrives: its event, with the buffer the owner gave
 * for its payload (dest), or NULL when the owner drops it. */
static struct event *recv_begin(struct npi_link *l, struct npi_peer *pe,
				const void *header, size_t len)
{
	struct event *e;
	void *dst = NULL;

	pe->heard = npi_now_ns();
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->pe = pe;
	memcpy(&e->m, header, sizeof(e->m));
	if (len) {
		dst = l->ops->dest(l->opaque, pe, &e->m, len);
		if (!dst) {
			free(e);
			return NULL;
		}
	}
	e->buf = dst;
	e->len = len;
	return e;
}

static ucs_status_t am_cb(void *arg, const void *header, size_t hlen,
			  void *data, size_t len,
			  const ucp_am_recv_param_t *prm)
{
	struct npi_link *l = arg;
	struct npi_peer *pe = NULL;
	struct event *e;
	void *dst = NULL;

	if (prm->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP)
		pe = peer_of(l, prm->reply_ep);
	if (!pe || hlen != sizeof(struct npi_msg) || pe->err) {
		if (prm->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV)
			U.ucp_am_data_release(l->w, data);
		return UCS_OK;
	}
	e = recv_begin(l, pe, header, len);
	if (!e)
		goto drop;
	dst = e->buf;
	if (len && (prm->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV)) {
		ucp_request_param_t rp = {
			.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK |
					UCP_OP_ATTR_FIELD_USER_DATA,
			.cb.recv_am = recv_done,
			.user_data = e,
		};
		ucp_mem_h mh = memh_of(l, dst, len);
		ucs_status_ptr_t r;

		if (mh) {
			rp.op_attr_mask |= UCP_OP_ATTR_FIELD_MEMH;
			rp.memh = mh;
		}
		r = U.ucp_am_recv_data_nbx(l->w, data, dst, len, &rp);
		if (UCS_PTR_IS_ERR(r)) {
			free(e);
			return UCS_OK;
		}
		e->ready = r == NULL;
	} else {
		if (len)
			memcpy(dst, data, len);
		e->ready = true;
	}
	queue_event(l, e);
	return UCS_OK;
drop:
	if (prm->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV)
		U.ucp_am_data_release(l->w, data);
	return UCS_OK;
}

int npi_link_open(struct np_ctx *ctx, const struct npi_link_ops *ops,
		  void *opaque, struct npi_link **out)
{
	ucp_params_t up = {
		.field_mask = UCP_PARAM_FIELD_FEATURES,
		.features = UCP_FEATURE_AM | UCP_FEATURE_WAKEUP,
	};
	ucp_worker_params_t wp = {
		.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
		.thread_mode = UCS_THREAD_MODE_SINGLE,
	};
	ucp_am_handler_param_t hp = {
		.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID |
			      UCP_AM_HANDLER_PARAM_FIELD_CB |
			      UCP_AM_HANDLER_PARAM_FIELD_ARG |
			      UCP_AM_HANDLER_PARAM_FIELD_FLAGS,
		.id = AM_ID,
		.flags = UCP_AM_FLAG_WHOLE_MSG,
		.cb = am_cb,
	};
	ucp_config_t *cfg;
	struct npi_link *l;
	ucs_status_t st;

	*out = NULL;
	pthread_once(&ucx_once, ucx_load);
	if (ucx_error[0]) {
		LLOG(ctx, LOG_ERR,
		     "link: cannot load UCX (%s): install libucx0 (Debian's "
		     "UCX 1.13 or later)",
		     ucx_error);
		return -ENOTSUP;
	}
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->ctx = ctx;
	l->ops = ops;
	l->opaque = opaque;
	l->efd = -1;
	l->ev_tail = &l->ev_head;
	st = U.ucp_config_read(NULL, NULL, &cfg);
	if (st == UCS_OK) {
		st = U.ucp_init_version(UCP_API_MAJOR, UCP_API_MINOR, &up, cfg,
					&l->uc);
		U.ucp_config_release(cfg);
	}
	if (st == UCS_OK)
		st = U.ucp_worker_create(l->uc, &wp, &l->w);
	if (st == UCS_OK)
		st = U.ucp_worker_get_efd(l->w, &l->efd);
	hp.arg = l;
	if (st == UCS_OK)
		st = U.ucp_worker_set_am_recv_handler(l->w, &hp);
	if (st != UCS_OK) {
		LLOG(ctx, LOG_ERR,
		     "link: UCX initialisation failed: %s; check UCX_TLS "
		     "and UCX_NET_DEVICES",
		     U.ucs_status_string(st));
		npi_link_close(l);
		return err_of(st) ? err_of(st) : -EIO;
	}
	*out = l;
	return 0;
}

static int parse_addr(struct np_ctx *ctx, const char *addr,
		      struct sockaddr_in *sa)
{
	char host[64];
	const char *c = strrchr(addr, ':');
	char *end;
	unsigned long port;

	memset(sa, 0, sizeof(*sa));
	if (!c || (size_t)(c - addr) >= sizeof(host) || c == addr)
		goto bad;
	memcpy(host, addr, (size_t)(c - addr));
	host[c - addr] = 0;
	port = strtoul(c + 1, &end, 10);
	if (*end || !c[1] || port > 65535)
		goto bad;
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		goto bad;
	return 0;
bad:
	LLOG(ctx, LOG_ERR,
	     "link: address '%s' is not IPv4 address:port (e.g. "
	     "10.77.1.2:7000)",
	     addr);
	return -EINVAL;
}

static void conn_cb(ucp_conn_request_h req, void *arg)
{
	struct npi_link *l = arg;
	ucp_conn_request_attr_t at = {
		.field_mask = UCP_CONN_REQUEST_ATTR_FIELD_CLIENT_ADDR,
	};
	char name[64] = "a host", ip[INET_ADDRSTRLEN];
	struct npi_peer *pe;
	struct event *e;
	ucp_ep_params_t ep = {0};

	if (U.ucp_conn_request_query(req, &at) == UCS_OK &&
	    at.client_address.ss_family == AF_INET) {
		const struct sockaddr_in *sa =
			(const struct sockaddr_in *)&at.client_address;

		inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof(ip));
		snprintf(name, sizeof(name), "%s:%u", ip, ntohs(sa->sin_port));
	}
	pe = peer_new(l, name);
	e = calloc(1, sizeof(*e));
	if (!pe || !e) {
		free(e);
		if (pe) {
			peer_unlink(l, pe);
			free(pe);
		}
		U.ucp_listener_reject(l->lis, req);
		return;
	}
	ep.field_mask = UCP_EP_PARAM_FIELD_CONN_REQUEST |
			UCP_EP_PARAM_FIELD_ERR_HANDLER |
			UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE;
	ep.conn_request = req;
	ep.err_mode = UCP_ERR_HANDLING_MODE_PEER;
	ep.err_handler.cb = ep_error;
	ep.err_handler.arg = pe;
	if (U.ucp_ep_create(l->w, &ep, &pe->ep) != UCS_OK) {
		peer_unlink(l, pe);
		free(pe);
		free(e);
		return;
	}
	e->pe = pe;
	e->accepted = true;
	e->ready = true;
	queue_event(l, e);
}

int npi_link_listen(struct npi_link *l, const char *addr)
{
	struct sockaddr_in sa;
	ucp_listener_params_t lp = {
		.field_mask = UCP_LISTENER_PARAM_FIELD_SOCK_ADDR |
			      UCP_LISTENER_PARAM_FIELD_CONN_HANDLER,
		.conn_handler = {.cb = conn_cb, .arg = l},
	};
	ucs_status_t st;
	int ret = parse_addr(l->ctx, addr, &sa);

	if (ret)
		return ret;
	lp.sockaddr.addr = (const struct sockaddr *)&sa;
	lp.sockaddr.addrlen = sizeof(sa);
	st = U.ucp_listener_create(l->w, &lp, &l->lis);
	if (st != UCS_OK) {
		LLOG(l->ctx, LOG_ERR,
		     "link: cannot listen on %s: %s; is the address on "
		     "this host and the port free?",
		     addr, U.ucs_status_string(st));
		return err_of(st) ? err_of(st) : -EIO;
	}
	return 0;
}

int npi_link_connect(struct npi_link *l, const char *addr,
		     struct npi_peer **out)
{
	struct sockaddr_in sa;
	ucp_ep_params_t ep = {0};
	struct npi_peer *pe;
	ucs_status_t st;
	int ret = parse_addr(l->ctx, addr, &sa);

	*out = NULL;
	if (ret)
		return ret;
	pe = peer_new(l, addr);
	if (!pe)
		return -ENOMEM;
	ep.field_mask = UCP_EP_PARAM_FIELD_FLAGS |
			UCP_EP_PARAM_FIELD_SOCK_ADDR |
			UCP_EP_PARAM_FIELD_ERR_HANDLER |
			UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE;
	ep.flags = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER;
	ep.sockaddr.addr = (const struct sockaddr *)&sa;
	ep.sockaddr.addrlen = sizeof(sa);
	ep.err_mode = UCP_ERR_HANDLING_MODE_PEER;
	ep.err_handler.cb = ep_error;
	ep.err_handler.arg = pe;
	st = U.ucp_ep_create(l->w, &ep, &pe->ep);
	if (st != UCS_OK) {
		LLOG(l->ctx, LOG_ERR, "link: cannot connect to %s: %s", addr,
		     U.ucs_status_string(st));
		peer_unlink(l, pe);
		free(pe);
		return err_of(st) ? err_of(st) : -EIO;
	}
	*out = pe;
	return 0;
}

static void drop_events_of(struct npi_link *l, struct npi_peer *pe)
{
	struct event **pp = &l->ev_head;

	l->ev_tail = &l->ev_head;
	while (*pp) {
		struct event *e = *pp;

		if (e->pe == pe && e->ready) {
			*pp = e->next;
			free(e);
			continue;
		}
		if (e->pe == pe)
			e->pe = NULL; /* a receive still running */
		pp = &e->next;
		l->ev_tail = pp;
	}
}

void npi_link_drop(struct npi_link *l, struct npi_peer *pe)
{
	ucp_request_param_t rp = {
		.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
		.flags = UCP_EP_CLOSE_FLAG_FORCE,
	};
	ucs_status_ptr_t r;

	if (!pe)
		return;
	peer_unlink(l, pe);
	r = pe->ep ? U.ucp_ep_close_nbx(pe->ep, &rp) : NULL;
	if (UCS_PTR_IS_PTR(r)) {
		uint64_t t = npi_now_ns();

		while (U.ucp_request_check_status(r) == UCS_INPROGRESS &&
		       npi_now_ns() - t < CLOSE_WAIT_MS * 1000000ull)
			U.ucp_worker_progress(l->w);
		U.ucp_request_free(r);
	}
	drop_events_of(l, pe);
	free(pe);
}

const char *npi_link_peer_name(const struct npi_peer *pe)
{
	return pe->name;
}

int npi_link_peer_error(const struct npi_peer *pe)
{
	return pe->err;
}

uint64_t npi_link_peer_heard(const struct npi_peer *pe)
{
	return pe->heard;
}

int npi_link_map(struct npi_link *l, void *p, size_t len)
{
	ucp_mem_map_params_t mp = {
		.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS |
			      UCP_MEM_MAP_PARAM_FIELD_LENGTH,
		.address = p,
		.length = len,
	};
	ucs_status_t st;

	if (l->n_map == MAX_MAPS)
		return -ENOSPC;
	st = U.ucp_mem_map(l->uc, &mp, &l->map[l->n_map].memh);
	if (st != UCS_OK) {
		LLOG(l->ctx, LOG_ERR, "link: registering %zu bytes failed: %s",
		     len, U.ucs_status_string(st));
		return err_of(st) ? err_of(st) : -EIO;
	}
	l->map[l->n_map].p = p;
	l->map[l->n_map].len = len;
	l->n_map++;
	return 0;
}

void npi_link_unmap(struct npi_link *l, void *p)
{
	for (uint32_t i = 0; i < l->n_map; i++) {
		if (l->map[i].p != p)
			continue;
		U.ucp_mem_unmap(l->uc, l->map[i].memh);
		l->map[i] = l->map[--l->n_map];
		return;
	}
}

static void send_cb(void *req, ucs_status_t st, void *user)
{
	struct npi_send *s = user;

	U.ucp_request_free(req);
	s->req = NULL;
	if (s->detached) {
		free(s);
		return;
	}
	s->status = st == UCS_OK ? 1 : err_of(st);
}

int npi_link_send(struct npi_link *l, struct npi_peer *pe,
		  const struct npi_msg *m, const void *data, size_t len,
		  struct npi_send **req)
{
	struct npi_send *s;
	ucp_request_param_t rp = {
		.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK |
				UCP_OP_ATTR_FIELD_USER_DATA |
				UCP_OP_ATTR_FIELD_FLAGS,
		.cb.send = send_cb,
		.flags = UCP_AM_SEND_FLAG_REPLY,
	};
	ucp_mem_h mh = len ? memh_of(l, data, len) : NULL;
	ucs_status_ptr_t r;

	if (req)
		*req = NULL;
	if (pe->err)
		return pe->err;
	if (pe->sent) {
		/* a local peer takes the message now */
		pe->sent(pe->sent_o, m, data, len);
		if (req) {
			*req = calloc(1, sizeof(**req));
			if (!*req)
				return -ENOMEM;
			(*req)->status = 1;
		}
		return 0;
	}
	/* a send nobody waits for owns a copy of its payload: the caller's
	 * may be gone before it completes */
	s = calloc(1, sizeof(*s) + (req ? 0 : len));
	if (!s)
		return -ENOMEM;
	s->hdr = *m;
	if (!req && len) {
		memcpy(s->copy, data, len);
		data = s->copy;
		mh = NULL;
	}
	rp.user_data = s;
	if (mh) {
		rp.op_attr_mask |= UCP_OP_ATTR_FIELD_MEMH;
		rp.memh = mh;
	}
	r = U.ucp_am_send_nbx(pe->ep, AM_ID, &s->hdr, sizeof(s->hdr), data, len,
			      &rp);
	if (UCS_PTR_IS_ERR(r)) {
		int ret = err_of(UCS_PTR_STATUS(r));

		free(s);
		return ret ? ret : -EIO;
	}
	if (!r)
		s->status = 1;
	else
		s->req = r;
	if (req) {
		*req = s;
	} else if (s->req) {
		s->detached = true;
	} else {
		free(s);
	}
	return 0;
}

int npi_link_send_done(struct npi_send *s)
{
	return s->status;
}

void npi_link_send_free(struct npi_link *l, struct npi_send *s)
{
	if (!s)
		return;
	if (s->req) {
		s->detached = true;
		U.ucp_request_cancel(l->w, s->req);
		return;
	}
	free(s);
}

struct npi_peer *npi_link_local_peer(struct npi_link *l, const char *name,
				     void (*sent)(void *o,
						  const struct npi_msg *m,
						  const void *data, size_t len),
				     void *o)
{
	struct npi_peer *pe = peer_new(l, name);

	if (pe) {
		pe->sent = sent;
		pe->sent_o = o;
	}
	return pe;
}

void npi_link_inject(struct npi_link *l, struct npi_peer *pe,
		     const struct npi_msg *m, const void *data, size_t len)
{
	struct event *e;

	if (pe->err)
		return;
	/* what am_cb does with an eager message */
	e = recv_begin(l, pe, m, len);
	if (!e)
		return;
	if (len)
		memcpy(e->buf, data, len);
	e->ready = true;
	queue_event(l, e);
}

/* Deliver the events whose payloads are in; true if any. */
static bool deliver(struct npi_link *l)
{
	bool any = false;

	while (l->ev_head && l->ev_head->ready) {
		struct event *e = l->ev_head;

		l->ev_head = e->next;
		if (!l->ev_head)
			l->ev_tail = &l->ev_head;
		any = true;
		if (!e->pe) {
			/* its peer was dropped */
		} else if (e->accepted) {
			l->ops->accepted(l->opaque, e->pe);
		} else if (e->err) {
			l->ops->peer_error(l->opaque, e->pe, e->err);
		} else if (e->m.type) {
			l->ops->arrived(l->opaque, e->pe, &e->m, e->buf,
					e->len);
		}
		free(e);
	}
	return any;
}

void npi_link_wait(struct npi_link *l, int timeout_ms, int fd)
{
	struct pollfd pfd[2] = {{.fd = l->efd, .events = POLLIN},
				{.fd = fd, .events = POLLIN}};

	while (U.ucp_worker_progress(l->w))
		;
	if (deliver(l) || !timeout_ms)
		return;
	if (U.ucp_worker_arm(l->w) == UCS_OK)
		poll(pfd, fd >= 0 ? 2 : 1, timeout_ms);
	while (U.ucp_worker_progress(l->w))
		;
	deliver(l);
}

void npi_link_close(struct npi_link *l)
{
	if (!l)
		return;
	while (l->peers)
		npi_link_drop(l, l->peers);
	while (l->ev_head) {
		struct event *e = l->ev_head;

		l->ev_head = e->next;
		free(e);
	}
	if (l->lis)
		U.ucp_listener_destroy(l->lis);
	for (uint32_t i = 0; i < l->n_map; i++)
		U.ucp_mem_unmap(l->uc, l->map[i].memh);
	if (l->w)
		U.ucp_worker_destroy(l->w);
	if (l->uc)
		U.ucp_cleanup(l->uc);
	free(l);
}
