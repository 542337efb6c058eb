// SPDX-License-Identifier: MIT
/*
 * The head of a pipeline that spans hosts (np/cluster.h,
 * docs/cluster.md): the cluster file, the start-up handshake, and the
 * frame path of a pipeline whose cards are on the members: a frame built
 * in the host slot (pipe_session.c) goes to the first member under its
 * credits, the results come back from the last one into a registered
 * buffer and are unpacked where the output cards' C2H would have put
 * them, so sampling, the scheduler and recovery's replay run unchanged.
 * A member that dies (its endpoint fails) or falls silent for the
 * timeout fails the frame naming the host; recovery moves its cards to a
 * spare and resets the others into a new epoch.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "np/cluster.h"
#include "pipe.h"

struct chost {
	char addr[NPI_ADDR_LEN];
	uint32_t cards;
	bool spare; /* listed as a spare */
	bool used; /* in the chain */
	bool dead;
	bool loaded; /* its cards hold a segment (RESET, not HELLO) */
	struct npi_peer *pe;
	uint32_t first, count; /* its cards of the chain */
	struct npi_hello_reply rep, rep_in; /* rep_in: being received */
	bool got_rep;
	int fault; /* it reported a card failure: -errno */
	bool fault_link; /* ... of its link to the next host */
	uint64_t fault_at;
	int err; /* its link failed */
	unsigned int line; /* in the cluster file */
};

struct cframe {
	uint64_t k;
	bool busy, got;
	struct npi_send *send;
	uint32_t len;
	uint64_t t_send;
};

struct npi_cluster {
	struct npi_link *l;
	struct chost h[NPI_MAX_HOSTS];
	uint32_t n_hosts;
	uint32_t chain[NPI_MAX_HOSTS], n_chain;
	uint32_t timeout_ms, heartbeat_ms;
	uint32_t epoch, credits;
	struct npi_hello base; /* the model's part of every HELLO */
	uint8_t *res; /* results: one slot per frame in flight */
	uint64_t res_slot;
	uint32_t n_res;
	struct cframe *fl; /* n_res */
	uint64_t hb_sent;
	int failed; /* chain position that failed, -1 */
	bool failed_silent; /* it fell silent (its link did not fail) */
	char fault[96];
	struct np_cluster_stats st;
};

int npi_file_hash(const char *path, uint64_t *out)
{
	static uint8_t buf[1 << 16];
	uint64_t h = NPI_FNV_INIT;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		h = npi_fnv(h, buf, (size_t)n);
	close(fd);
	if (n < 0)
		return -EIO;
	*out = h;
	return 0;
}

uint64_t npi_plan_hash(const struct np_compiled *c)
{
	uint64_t h = NPI_FNV_INIT;
	uint32_t n = np_compiled_n_cards(c);
	double sc = np_compiled_logit_scale(c);

	h = npi_fnv(h, &n, sizeof(n));
	h = npi_fnv(h, &sc, sizeof(sc));
	for (uint32_t i = 0; i < n; i++) {
		const struct np_card_plan *pl = np_compiled_card(c, i);
		uint64_t v[] = {pl->kind,	 pl->first_layer,  pl->n_layers,
				pl->vocab_begin, pl->vocab_end,	   pl->prog,
				pl->core_bytes,	 pl->weight_bytes, pl->kv_bytes,
				pl->prog_bytes};

		h = npi_fnv(h, v, sizeof(v));
	}
	return h;
}

/* ---------------------------------------------------------------- */
/* the cluster file                                                   */

static int parse_file(struct np_ctx *ctx, const char *path,
		      struct npi_cluster *cl)
{
	FILE *f = fopen(path, "re");
	char line[256];
	unsigned int ln = 0;
	int ret = 0;

	if (!f) {
		ret = -errno;
		npi_log(ctx, LOG_ERR, "cluster: cannot open %s (%s)", path,
			strerror(-ret));
		return ret;
	}
	while (!ret && fgets(line, sizeof(line), f)) {
		char role[16], addr[NPI_ADDR_LEN + 8], extra[64];
		unsigned int cards = 0;
		char *hash = strchr(line, '#');
		int n;

		ln++;
		if (hash)
			*hash = 0;
		n = sscanf(line, "%15s %64s cards=%u %63s", role, addr, &cards,
			   extra);
		if (n <= 0)
			continue;
		if (n != 3 ||
		    (strcmp(role, "member") && strcmp(role, "spare")) ||
		    !cards || cards > NP_MAX_CARDS ||
		    strlen(addr) >= NPI_ADDR_LEN) {
			npi_log(ctx, LOG_ERR,
				"cluster: %s:%u: '%s' is not 'member|spare "
				"ADDRESS:PORT cards=N' (N 1..%u)",
				path, ln, strtok(line, "\n"), NP_MAX_CARDS);
			ret = -EINVAL;
			break;
		}
		if (cl->n_hosts == NPI_MAX_HOSTS) {
			npi_log(ctx, LOG_ERR,
				"cluster: %s:%u: more than %u hosts", path, ln,
				NPI_MAX_HOSTS);
			ret = -EINVAL;
			break;
		}
		{
			struct chost *h = &cl->h[cl->n_hosts];

			memcpy(h->addr, addr, strlen(addr) + 1);
			h->cards = cards;
			h->spare = !strcmp(role, "spare");
			h->line = ln;
			if (!h->spare) {
				h->used = true;
				cl->chain[cl->n_chain++] = cl->n_hosts;
			}
			cl->n_hosts++;
		}
	}
	fclose(f);
	if (!ret && !cl->n_chain) {
		npi_log(ctx, LOG_ERR,
			"cluster: %s names no member: add lines 'member "
			"ADDRESS:PORT cards=N' in pipeline order",
			path);
		ret = -EINVAL;
	}
	return ret;
}

/* ---------------------------------------------------------------- */
/* the link                                                           */

static struct chost *host_of(struct npi_cluster *cl, struct npi_peer *pe)
{
	for (uint32_t i = 0; i < cl->n_hosts; i++)
		if (cl->h[i].pe == pe)
			return &cl->h[i];
	return NULL;
}

static void *ops_dest(void *o, struct npi_peer *pe, const struct npi_msg *m,
		      size_t len)
{
	struct npi_cluster *cl = o;
	struct cframe *f;

	if (m->type == NPI_MSG_HELLO_REPLY) {
		struct chost *h = host_of(cl, pe);

		return h && len == sizeof(h->rep_in) ? &h->rep_in : NULL;
	}
	if (m->type != NPI_MSG_FRAME || m->epoch != cl->epoch)
		return NULL;
	f = &cl->fl[m->k % cl->n_res];
	if (!f->busy || f->k != m->k || f->got || len > cl->res_slot)
		return NULL;
	return cl->res + (m->k % cl->n_res) * cl->res_slot;
}

static void ops_arrived(void *o, struct npi_peer *pe, const struct npi_msg *m,
			void *buf, size_t len)
{
	struct npi_cluster *cl = o;
	struct chost *h = host_of(cl, pe);

	if (!h)
		return;
	switch (m->type) {
	case NPI_MSG_HELLO_REPLY:
		if (buf) {
			h->rep = h->rep_in;
			h->got_rep = true;
		}
		break;
	case NPI_MSG_FRAME:
		if (buf) {
			struct cframe *f = &cl->fl[m->k % cl->n_res];

			f->got = true;
			f->len = (uint32_t)len;
			cl->st.result_bytes += len;
		}
		break;
	case NPI_MSG_CREDIT:
		if (m->epoch == cl->epoch && cl->credits < NPI_LINK_SLOTS)
			cl->credits++;
		break;
	case NPI_MSG_FAULT:
		if (m->epoch == cl->epoch) {
			h->fault = (int)m->a ? (int)m->a : -EIO;
			h->fault_link = m->b;
			h->fault_at = npi_now_ns();
		}
		break;
	default:
		break;
	}
}

static void ops_peer_error(void *o, struct npi_peer *pe, int err)
{
	struct chost *h = host_of(o, pe);

	if (h && !h->err)
		h->err = err;
}

static void ops_accepted(void *o, struct npi_peer *pe)
{
	struct npi_cluster *cl = o;

	/* the head does not listen; nothing connects to it */
	npi_link_drop(cl->l, pe);
}

static const struct npi_link_ops head_ops = {
	.dest = ops_dest,
	.arrived = ops_arrived,
	.peer_error = ops_peer_error,
	.accepted = ops_accepted,
};

static void heartbeat(struct npi_cluster *cl, uint64_t now)
{
	struct npi_msg m = {.type = NPI_MSG_HEARTBEAT, .epoch = cl->epoch};

	if (now - cl->hb_sent < cl->heartbeat_ms * 1000000ull)
		return;
	cl->hb_sent = now;
	for (uint32_t i = 0; i < cl->n_hosts; i++)
		if (cl->h[i].pe && !cl->h[i].err && !cl->h[i].dead)
			npi_link_send(cl->l, cl->h[i].pe, &m, NULL, 0, NULL);
}

/* A member of the chain failed: its link, a card, or silence past the
 * timeout. Logged once naming the host and its cards; -EHOSTDOWN (a
 * card fault: -EIO). */
/* Why chain member h has failed, or NULL; faults only when asked (a dead
 * or silent host is named first: the host before it reports a fault, its
 * link to it failed, at about the same time). */
static const char *failed_why(const struct npi_cluster *cl,
			      const struct chost *h, uint64_t now,
			      uint64_t silent, bool faults)
{
	if (h->err)
		return "its link failed";
	if (silent > cl->timeout_ms * 1000000ull)
		return "silent past the timeout (cut off?)";
	if (!h->fault || !faults)
		return NULL;
	if (!h->fault_link)
		return "a card failed there";
	/* a lost link to the next host: most likely that host died, which
	 * its own link to the head shows within a quarter of the timeout;
	 * if it does not, only the link broke */
	if (now - h->fault_at > cl->timeout_ms * 250000ull)
		return "its link to the next host failed";
	return NULL;
}

/* A member of the chain failed: its link, a card, or silence past the
 * timeout. Logged once naming the host and its cards; -EHOSTDOWN (a
 * fault it reported: -EIO). */
static int check_chain(struct np_pipeline *p, uint64_t now)
{
	struct npi_cluster *cl = p->cl;

	if (cl->failed >= 0)
		return -EHOSTDOWN;
	for (uint32_t pass = 0; pass < 2; pass++) {
		for (uint32_t i = 0; i < cl->n_chain; i++) {
			struct chost *h = &cl->h[cl->chain[i]];
			uint64_t heard = npi_link_peer_heard(h->pe);
			uint64_t silent = now > heard ? now - heard : 0;
			const char *why = failed_why(cl, h, now, silent, pass);

			if (!why)
				continue;
			cl->failed = (int)i;
			cl->failed_silent = !h->err && !pass;
			cl->st.failures++;
			cl->st.last_detect_ns = silent;
			snprintf(cl->fault, sizeof(cl->fault), "member %s %s",
				 h->addr,
				 h->fault && !h->err ? "fault" : "down");
			npi_log(p->ctx, LOG_ERR,
				"cluster: member %u of %u at %s (cluster file "
				"line %u; the model's cards %u..%u) %s (%s); "
				"detected %.0f ms after its last message",
				i + 1, cl->n_chain, h->addr, h->line, h->first,
				h->first + h->count - 1, why,
				strerror(h->err ? -h->err :
					 !pass	? ETIMEDOUT :
						  -h->fault),
				(double)silent / 1e6);
			return h->err || !pass ? -EHOSTDOWN : -EIO;
		}
	}
	return 0;
}

/* Progress and check until done(arg) or a failure (0 / -errno). */
static int wait_until(struct np_pipeline *p, bool (*done)(void *), void *arg)
{
	struct npi_cluster *cl = p->cl;

	for (;;) {
		uint64_t now;
		int ret;

		npi_link_wait(cl->l, 0, -1);
		if (done(arg))
			return 0;
		npi_link_wait(cl->l, 5, -1);
		if (done(arg))
			return 0;
		now = npi_now_ns();
		heartbeat(cl, now);
		ret = check_chain(p, now);
		if (ret)
			return ret;
	}
}

/* ---------------------------------------------------------------- */
/* frames                                                             */

static bool have_credit(void *arg)
{
	return ((struct npi_cluster *)arg)->credits > 0;
}

static int npi_cluster_post(struct npi_run *R, struct npi_frame *f,
			    uint32_t len)
{
	struct np_pipeline *p = R->p;
	struct npi_cluster *cl = p->cl;
	struct cframe *c = &cl->fl[f->k % cl->n_res];
	struct npi_msg m = {
		.type = NPI_MSG_FRAME,
		.epoch = cl->epoch,
		.k = f->k,
	};
	int ret;

	if (c->busy)
		return -EBUSY;
	if (!cl->credits) {
		cl->st.credit_waits++;
		ret = wait_until(p, have_credit, cl);
		if (ret)
			return ret;
	}
	ret = check_chain(p, npi_now_ns());
	if (ret)
		return ret;
	m.t_ns = npi_now_ns();
	ret = npi_link_send(cl->l, cl->h[cl->chain[0]].pe, &m,
			    (uint8_t *)np_buf_ptr(R->host) +
				    f->m * R->host_slot,
			    len, &c->send);
	if (ret)
		return ret;
	cl->credits--;
	c->k = f->k;
	c->busy = true;
	c->got = false;
	c->t_send = m.t_ns;
	cl->st.frames++;
	cl->st.frame_bytes += len;
	return 0;
}

static bool frame_back(void *arg)
{
	const struct cframe *c = arg;

	return c->got && npi_link_send_done(c->send);
}

struct fwait {
	struct npi_cluster *cl;
	struct cframe *c;
};

static int npi_cluster_finish(struct npi_run *R, struct npi_frame *f)
{
	struct np_pipeline *p = R->p;
	struct npi_cluster *cl = p->cl;
	struct cframe *c = &cl->fl[f->k % cl->n_res];
	uint8_t *h = (uint8_t *)np_buf_ptr(R->host) + f->m * R->host_slot;
	const uint8_t *res = cl->res + (f->k % cl->n_res) * cl->res_slot;
	uint64_t at = 0;
	int ret;

	if (!c->busy || c->k != f->k)
		return -EPROTO;
	ret = wait_until(p, frame_back, c);
	if (ret)
		return ret;
	ret = npi_link_send_done(c->send);
	npi_link_send_free(cl->l, c->send);
	c->send = NULL;
	c->busy = false;
	if (ret < 0)
		return ret;
	cl->st.frame_ns += npi_now_ns() - c->t_send;
	/* the output cards' results, packed by the last member, where their
	 * C2H would have put them */
	for (uint32_t o = 0; o < p->n_out; o++) {
		const struct np_card_plan *pl = p->st[p->n_layer + o].plan;
		size_t row =
			R->full_logits ?
				(size_t)(pl->vocab_end - pl->vocab_begin) * 4 :
				(size_t)R->cand * sizeof(struct np_job_topk);

		if (at + f->n * row > c->len)
			return -EPROTO;
		memcpy(h + R->out_at[o], res + at, f->n * row);
		at += f->n * row;
	}
	return 0;
}

static void npi_cluster_abort(struct npi_run *R)
{
	struct npi_cluster *cl = R->p->cl;

	for (uint32_t i = 0; i < cl->n_res; i++) {
		npi_link_send_free(cl->l, cl->fl[i].send);
		memset(&cl->fl[i], 0, sizeof(cl->fl[i]));
	}
}

/* ---------------------------------------------------------------- */
/* start-up and recovery                                              */

struct rwait {
	struct npi_cluster *cl;
	uint64_t deadline;
};

static bool replies_in(void *arg)
{
	struct rwait *w = arg;
	struct npi_cluster *cl = w->cl;

	for (uint32_t i = 0; i < cl->n_hosts; i++) {
		struct chost *h = &cl->h[i];

		if (h->pe && !h->got_rep && !h->err && !h->dead &&
		    npi_now_ns() < w->deadline)
			return false;
	}
	return true;
}

/* Send HELLO (or RESET) to every host in mask, wait for the replies;
 * check what each says. */
static int handshake(struct np_pipeline *p, const bool *mask, bool reset)
{
	struct npi_cluster *cl = p->cl;
	struct rwait w = {cl, npi_now_ns() + NPI_LOAD_TIMEOUT_MS * 1000000ull};
	int ret = 0;

	for (uint32_t i = 0; i < cl->n_hosts; i++) {
		struct chost *h = &cl->h[i];
		struct npi_hello he = cl->base;
		struct npi_msg m = {
			.type = reset && h->loaded ? NPI_MSG_RESET :
						     NPI_MSG_HELLO,
			.epoch = cl->epoch,
		};
		int r;

		if (!mask[i])
			continue;
		h->got_rep = false;
		he.first = h->first;
		he.count = h->used ? h->count : 0;
		for (uint32_t c = 0; c < cl->n_chain; c++)
			if (cl->chain[c] == i) {
				he.index = c;
				if (c + 1 < cl->n_chain)
					memcpy(he.next,
					       cl->h[cl->chain[c + 1]].addr,
					       NPI_ADDR_LEN);
			}
		r = npi_link_send(cl->l, h->pe, &m, &he, sizeof(he), NULL);
		if (r && !ret)
			ret = r;
	}
	if (ret)
		return ret;
	/* the replies: members load their cards meanwhile; heartbeats are
	 * not expected before they answer */
	while (!replies_in(&w))
		npi_link_wait(cl->l, NPI_POLL_MS, -1);
	for (uint32_t i = 0; i < cl->n_hosts; i++) {
		struct chost *h = &cl->h[i];
		const struct npi_hello_reply *r = &h->rep;

		if (!mask[i])
			continue;
		if (!h->got_rep) {
			npi_log(p->ctx, LOG_ERR,
				"cluster: %s %s (line %u) did not answer "
				"(%s): is npmember running there, listening "
				"on that address?",
				h->spare ? "spare" : "member", h->addr, h->line,
				h->err ? strerror(-h->err) : "timeout");
			ret = ret ? ret : h->err ? -EHOSTUNREACH : -ETIMEDOUT;
			continue;
		}
		if (r->status) {
			npi_log(p->ctx, LOG_ERR,
				"cluster: %s %s (line %u) refused: %s "
				"(member: protocol %u, ABI %u, model %016llx, "
				"mapping %016llx; head: protocol %u, ABI %u, "
				"model %016llx, mapping %016llx, precision %s)",
				h->spare ? "spare" : "member", h->addr, h->line,
				r->msg, r->proto, r->abi,
				(unsigned long long)r->model_hash,
				(unsigned long long)r->plan_hash,
				cl->base.proto, cl->base.abi,
				(unsigned long long)cl->base.model_hash,
				(unsigned long long)cl->base.plan_hash,
				np_precision_name(cl->base.precision));
			ret = ret ? ret : -EPROTO;
			continue;
		}
		h->loaded = h->used;
		if (h->used)
			npi_log(p->ctx, LOG_INFO,
				"cluster: member %s: %s cards %u..%u (images "
				"%016llx) in %.0f ms",
				h->addr, r->msg, h->first,
				h->first + h->count - 1,
				(unsigned long long)r->image_sum,
				(double)r->load_ns / 1e6);
		else
			npi_log(p->ctx, LOG_INFO,
				"cluster: spare %s: %s (%u cards)", h->addr,
				r->msg, r->cards);
	}
	return ret;
}

/* Move chain position pos's cards to a spare: 0, or -EHOSTDOWN (logged)
 * when none is left. */
static int replace(struct np_pipeline *p, uint32_t pos, uint32_t attempt,
		   uint32_t max, uint32_t requests, struct np_recover_event *ev)
{
	struct npi_cluster *cl = p->cl;
	struct chost *d = &cl->h[cl->chain[pos]], *s = NULL;
	uint32_t si = 0;

	for (uint32_t i = 0; i < cl->n_hosts && !s; i++)
		if (!cl->h[i].used && !cl->h[i].dead && cl->h[i].pe &&
		    !cl->h[i].err && cl->h[i].cards >= d->count)
			s = &cl->h[si = i];
	d->dead = true;
	if (!s) {
		npi_log(p->ctx, LOG_ERR,
			"cluster: member %s is down and no spare is left (list "
			"one: 'spare ADDRESS:PORT cards=%u' in the cluster "
			"file); its requests fail",
			d->addr, d->count);
		return -EHOSTDOWN;
	}
	npi_log(p->ctx, LOG_WARNING,
		"cluster: recovery %u of %u: spare %s takes member %s's cards "
		"%u..%u; resuming %u requests",
		attempt, max, s->addr, d->addr, d->first,
		d->first + d->count - 1, requests);
	s->used = true;
	s->first = d->first;
	s->count = d->count;
	d->used = false;
	npi_link_drop(cl->l, d->pe);
	d->pe = NULL;
	cl->chain[pos] = si;
	ev->spare = (int32_t)si;
	cl->st.replacements++;
	return 0;
}

static int npi_cluster_recover(struct np_pipeline *p, int err, uint32_t attempt,
			       uint32_t max, uint32_t requests,
			       struct np_recover_event *ev)
{
	struct npi_cluster *cl = p->cl;
	uint64_t t = npi_now_ns();
	int ret = 0;

	ev->attempt = attempt;
	ev->error = err;
	ev->card = -1;
	ev->spare = -1;
	ev->requests = requests;
	ev->fault = "timeout";
	if (cl->failed < 0)
		check_chain(p, npi_now_ns());
	/* a host that lost its link to the next one reports a fault at
	 * about the time the next one's own link fails: let both arrive */
	npi_link_wait(cl->l, NPI_POLL_MS, -1);
	if (cl->failed >= 0) {
		struct chost *d = &cl->h[cl->chain[cl->failed]];

		ev->card = (int32_t)d->first;
		ev->fault = cl->fault;
	}
	/* Rounds: replace every member whose link failed (or, the one
	 * found silent) by a spare, then reset all into a new epoch; a
	 * member that dies meanwhile makes another round. */
	for (uint32_t round = 0; round <= cl->n_hosts; round++) {
		bool mask[NPI_MAX_HOSTS] = {0}, died = false;

		for (uint32_t i = 0; i < cl->n_chain; i++) {
			struct chost *h = &cl->h[cl->chain[i]];
			bool silent =
				(int)i == cl->failed && !h->err && !h->fault;

			if (!h->err && !silent)
				continue;
			ret = replace(p, i, attempt, max, requests, ev);
			if (ret)
				return ret;
		}
		cl->failed = -1;
		cl->epoch++;
		for (uint32_t i = 0; i < cl->n_chain; i++)
			mask[cl->chain[i]] = true;
		for (uint32_t i = 0; i < cl->n_hosts; i++)
			cl->h[i].fault = 0;
		/* the spare gets a HELLO (its cards), the others a RESET */
		ret = handshake(p, mask, true);
		if (!ret)
			break;
		for (uint32_t i = 0; i < cl->n_chain; i++)
			died |= cl->h[cl->chain[i]].err != 0;
		if (!died)
			return ret;
	}
	if (ret)
		return ret;
	cl->credits = NPI_LINK_SLOTS;
	p->frames = 0;
	p->broken = 0;
	ev->recover_ns = npi_now_ns() - t;
	cl->st.last_recover_ns = ev->recover_ns;
	npi_log(p->ctx, LOG_WARNING,
		"cluster: recovered in %.0f ms (epoch %u); replaying %u "
		"requests",
		(double)ev->recover_ns / 1e6, cl->epoch, requests);
	return 0;
}

static void npi_cluster_destroy(struct np_pipeline *p)
{
	struct npi_cluster *cl = p->cl;

	if (!cl)
		return;
	if (cl->l) {
		struct npi_msg m = {.type = NPI_MSG_BYE, .epoch = cl->epoch};

		for (uint32_t i = 0; i < cl->n_res && cl->fl; i++)
			npi_link_send_free(cl->l, cl->fl[i].send);
		for (uint32_t i = 0; i < cl->n_hosts; i++)
			if (cl->h[i].pe && !cl->h[i].err)
				npi_link_send(cl->l, cl->h[i].pe, &m, NULL, 0,
					      NULL);
		npi_link_wait(cl->l, 10, -1);
		npi_link_close(cl->l);
	}
	free(cl->fl);
	free(cl->res);
	free(cl);
	p->cl = NULL;
}

/* The scheduler has nothing to do: heartbeats go out, the members' come
 * in, and a member that dies or falls silent now is reported now (the
 * next frame then fails and recovers). */
static int npi_cluster_idle(struct np_pipeline *p)
{
	struct npi_cluster *cl = p->cl;
	uint64_t now;

	npi_link_wait(cl->l, 0, -1);
	now = npi_now_ns();
	heartbeat(cl, now);
	check_chain(p, now);
	return (int)cl->heartbeat_ms;
}

static const struct npi_cluster_ops cluster_ops = {
	.post = npi_cluster_post,
	.finish = npi_cluster_finish,
	.abort = npi_cluster_abort,
	.recover = npi_cluster_recover,
	.destroy = npi_cluster_destroy,
	.idle = npi_cluster_idle,
};

int np_cluster_stats(const struct np_pipeline *p, struct np_cluster_stats *st)
{
	const struct npi_cluster *cl;

	if (!p || !st || !p->cl)
		return -EINVAL;
	cl = p->cl;
	*st = cl->st;
	st->members = cl->n_chain;
	st->spares_left = 0;
	for (uint32_t i = 0; i < cl->n_hosts; i++)
		st->spares_left +=
			!cl->h[i].used && !cl->h[i].dead && cl->h[i].pe;
	return 0;
}

/* The head's copy of the model: read, calibrated, compiled for the
 * members' cards; the pipeline's layout from the plans. */
static int head_model(struct np_pipeline *p, const char *path,
		      const struct np_pipeline_opts *o, uint32_t cards)
{
	struct npi_cluster *cl = p->cl;
	const struct np_log *lg = &p->ctx->log;
	struct np_compile_opts co = {0};
	size_t clen = o->calib_len;
	int ret;

	ret = np_gguf_open(path, lg, &p->gguf);
	if (ret)
		npi_log(p->ctx, LOG_ERR, "cluster: cannot open model %s (%s)",
			path, strerror(-ret));
	ret = ret ? ret : np_model_from_gguf(p->gguf, lg, &p->model);
	ret = ret ? ret : np_tok_from_gguf(p->gguf, lg, &p->tok);
	if (ret)
		return ret;
	if (!o->calib_text)
		clen = 0;
	if (clen > 16 * NPI_CALIB_TOKENS)
		clen = 16 * NPI_CALIB_TOKENS;
	_Static_assert(16 * NPI_CALIB_TOKENS <= NPI_CALIB_MAX, "calib text");
	if (clen) {
		int32_t *ids = malloc((clen + 1) * sizeof(*ids));
		size_t n = 0;

		ret = ids ? np_tok_encode(p->tok, o->calib_text, clen, ids,
					  clen + 1, &n) :
			    -ENOMEM;
		if (!ret && n > NPI_CALIB_TOKENS)
			n = NPI_CALIB_TOKENS;
		if (!ret)
			ret = n ? np_quant_calibrate(p->model, ids, n,
						     &p->calib) :
				  np_quant_calib_default(p->model, &p->calib);
		free(ids);
		memcpy(cl->base.calib, o->calib_text, clen);
		cl->base.calib_len = (uint32_t)clen;
	} else {
		ret = np_quant_calib_default(p->model, &p->calib);
	}
	co.n_cards = cards;
	co.out_cards = cards >= 3 ? 2 : 0;
	co.batch = o->max_sessions ? o->max_sessions : NP_DEFAULT_SESSIONS;
	co.max_seq = o->max_seq ? o->max_seq : NP_DEFAULT_LOAD_MAX_SEQ;
	ret = ret ? ret : np_compile(p->model, p->calib, &co, lg, &p->owned);
	if (ret)
		return ret;
	p->c = p->owned;
	cl->base.proto = NPI_LINK_PROTO;
	cl->base.abi = NPK_VERSION;
	cl->base.plan_hash = npi_plan_hash(p->c);
	cl->base.precision = NP_DEFAULT_PRECISION;
	cl->base.n_cards = co.n_cards;
	cl->base.out_cards = co.out_cards;
	cl->base.batch = co.batch;
	cl->base.max_seq = co.max_seq;
	return npi_file_hash(path, &cl->base.model_hash);
}

/* The pipeline's layout (no local stages) and each member's cards: the
 * used cards spread over the members in proportion to their cards. */
static int head_layout(struct np_pipeline *p, const struct np_pipeline_opts *o,
		       uint32_t cards)
{
	struct npi_cluster *cl = p->cl;
	uint32_t n = np_compiled_n_cards(p->c), at = 0;
	uint64_t row, res = 0;
	int ret;

	if (n > NP_MAX_CARDS) {
		npi_log(p->ctx, LOG_ERR,
			"cluster: the model uses %u cards; the head handles "
			"at most %u",
			n, NP_MAX_CARDS);
		return -E2BIG;
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct np_card_plan *pl = np_compiled_card(p->c, i);

		p->st[i].plan = pl;
		if (pl->kind == NP_CARD_LAYERS) {
			p->n_layer++;
		} else {
			uint32_t rows = pl->vocab_end - pl->vocab_begin;

			p->n_out++;
			p->vocab = pl->vocab_end;
			p->max_slice =
				rows > p->max_slice ? rows : p->max_slice;
		}
	}
	ret = npi_read_shape(p);
	if (ret)
		return ret;
	for (uint32_t i = 0, used = 0; i < cl->n_chain; i++) {
		struct chost *h = &cl->h[cl->chain[i]];
		uint32_t share;

		used += h->cards;
		share = i + 1 == cl->n_chain ?
				n - at :
				(uint32_t)(((uint64_t)n * used + cards / 2) /
					   cards) -
					at;
		if (share > h->cards)
			share = h->cards;
		h->first = at;
		h->count = share;
		at += share;
	}
	{
		struct chost *last = &cl->h[cl->chain[cl->n_chain - 1]];

		if (at != n || last->count <= p->n_out) {
			npi_log(p->ctx, LOG_ERR,
				"cluster: %u cards of the model do not map "
				"onto the members (the last needs more than "
				"its %u output cards): give the members more "
				"cards",
				n, p->n_out);
			return -E2BIG;
		}
		for (uint32_t i = 0; i < cl->n_chain; i++)
			if (!cl->h[cl->chain[i]].count) {
				npi_log(p->ctx, LOG_ERR,
					"cluster: member %s gets no card of "
					"the model's %u; list fewer members",
					cl->h[cl->chain[i]].addr, n);
				return -EINVAL;
			}
	}
	p->frame_tokens =
		o->frame_tokens ? o->frame_tokens : NP_DEFAULT_FRAME_TOKENS;
	row = NP_JOB_ARG_TOK + (uint64_t)p->dim * 2;
	p->frame_max = NP_JOB_ARG_HDR + p->frame_tokens * row;
	p->slots = NPI_MAX_SLOTS;
	cl->base.frame_tokens = p->frame_tokens;
	for (uint32_t o2 = 0; o2 < p->n_out; o2++) {
		const struct np_card_plan *pl = p->st[p->n_layer + o2].plan;
		uint64_t lo = (uint64_t)(pl->vocab_end - pl->vocab_begin) * 4;
		uint64_t tk = NP_JOB_TOPK_MAX * sizeof(struct np_job_topk);

		res += (lo > tk ? lo : tk) * p->frame_tokens;
	}
	cl->res_slot = npi_align_up(res, 4096);
	cl->n_res = p->batch;
	cl->res = aligned_alloc(4096, cl->res_slot * cl->n_res);
	cl->fl = calloc(cl->n_res, sizeof(*cl->fl));
	if (!cl->res || !cl->fl)
		return -ENOMEM;
	return npi_link_map(cl->l, cl->res, cl->res_slot * cl->n_res);
}

int np_cluster_load(struct np_ctx *ctx, const char *path,
		    const struct np_pipeline_opts *popts,
		    const struct np_cluster_opts *copts,
		    struct np_pipeline **out)
{
	const struct np_pipeline_opts none = {0};
	const struct np_pipeline_opts *o = popts ? popts : &none;
	bool mask[NPI_MAX_HOSTS] = {0};
	struct np_pipeline *p;
	struct npi_cluster *cl;
	uint32_t cards = 0;
	int ret;

	if (out)
		*out = NULL;
	if (!ctx || !path || !copts || !copts->file || !out)
		return -EINVAL;
	if (!npi_resv_zero(ctx, "np_pipeline_opts", o->resv, sizeof(o->resv)) ||
	    !npi_resv_zero(ctx, "np_cluster_opts", copts->resv,
			   sizeof(copts->resv)))
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	cl = calloc(1, sizeof(*cl));
	if (!p || !cl) {
		free(p);
		free(cl);
		return -ENOMEM;
	}
	p->ctx = ctx;
	p->cl = cl;
	p->cl_ops = &cluster_ops;
	cl->failed = -1;
	cl->credits = NPI_LINK_SLOTS;
	cl->timeout_ms = copts->timeout_ms ? copts->timeout_ms : 1000;
	cl->heartbeat_ms =
		copts->heartbeat_ms ? copts->heartbeat_ms : cl->timeout_ms / 4;
	if (!cl->heartbeat_ms)
		cl->heartbeat_ms = 1;
	cl->base.heartbeat_ms = cl->heartbeat_ms;
	cl->base.timeout_ms = cl->timeout_ms;
	ret = parse_file(ctx, copts->file, cl);
	for (uint32_t i = 0; !ret && i < cl->n_chain; i++)
		cards += cl->h[cl->chain[i]].cards;
	if (!ret && o->progress)
		o->progress(o->progress_opaque, NP_LOAD_MODEL, 0, 1);
	ret = ret ? ret : head_model(p, path, o, cards);
	ret = ret ? ret : npi_link_open(ctx, &head_ops, cl, &cl->l);
	ret = ret ? ret : head_layout(p, o, cards);
	for (uint32_t i = 0; !ret && i < cl->n_hosts; i++) {
		ret = npi_link_connect(cl->l, cl->h[i].addr, &cl->h[i].pe);
		mask[i] = true;
	}
	if (!ret && o->progress)
		o->progress(o->progress_opaque, NP_LOAD_CARDS, 0, 1);
	ret = ret ? ret : handshake(p, mask, false);
	if (!ret && o->progress)
		o->progress(o->progress_opaque, NP_LOAD_CARDS, 1, 1);
	if (ret) {
		np_pipeline_destroy(p);
		return ret;
	}
	*out = p;
	return 0;
}
