// SPDX-License-Identifier: MIT
/*
 * npd's HTTP server on libmicrohttpd: epoll threads that never block. A
 * request that waits for the cards suspends its connection; the engine's
 * wake callback resumes it when tokens or the end arrive. Streams are
 * Server-Sent Events written by a content-reader callback that suspends
 * itself when it has nothing to send.
 *
 * What bad clients get: a body over --max-body is refused with 413 before
 * it is read (Content-Length) or as soon as it passes the limit; malformed
 * JSON or fields 400 naming the field; a wrong key 401; a full queue 429
 * with Retry-After; idle and slow connections are closed after --timeout
 * seconds; a client that goes away mid-request has it cancelled.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "http.h"
#include "openai.h"

enum route {
	R_NONE,
	R_COMPLETIONS,
	R_CHAT,
	R_MODELS,
	R_HEALTH,
	R_METRICS,
	R_CARDS, /* /v1/np/cards, for nptool */
};

struct conn {
	struct MHD_Connection *mc;
	enum route route;
	uint64_t t0_ns;
	struct npd_buf body;
	bool too_big, submitted;
	unsigned int status;
	/* the request on the cards */
	struct npd_req *req;
	bool include_usage;
	pthread_mutex_t mu; /* suspended */
	bool suspended;
	/* streaming: tokens sent, bytes pending */
	size_t sent;
	bool first, done;
	struct npd_buf out;
	size_t out_off;
	char peer[64];
};

static struct MHD_Daemon *daemon_;
static const struct npd_config *cfg;
static FILE *access_log;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic unsigned int n_conns;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int npd_http_access_log(const char *path)
{
	FILE *f = stderr;

	if (path && strcmp(path, "-")) {
		f = fopen(path, "ae");
		if (!f) {
			int err = errno;

			npd_log("access log %s: %s", path, strerror(err));
			return -err;
		}
		setvbuf(f, NULL, _IOLBF, 0);
	}
	pthread_mutex_lock(&log_mu);
	if (access_log && access_log != stderr)
		fclose(access_log);
	access_log = f;
	pthread_mutex_unlock(&log_mu);
	return 0;
}

static void log_access(struct conn *c, const char *method, const char *url)
{
	char ts[32];
	time_t t = time(NULL);
	struct tm tm;
	size_t ntok = 0, nprompt = 0;
	const char *fin = "-", *id = "-";

	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (c->req) {
		pthread_mutex_lock(&c->req->lock);
		ntok = c->req->n_tok;
		nprompt = c->req->n_prompt;
		fin = c->req->finish == NPD_FINISH_STOP	     ? "stop" :
		      c->req->finish == NPD_FINISH_LENGTH    ? "length" :
		      c->req->finish == NPD_FINISH_CANCELLED ? "cancelled" :
		      c->req->finish == NPD_FINISH_ERROR     ? "error" :
							       "-";
		pthread_mutex_unlock(&c->req->lock);
		id = c->req->id;
	}
	pthread_mutex_lock(&log_mu);
	if (access_log)
		fprintf(access_log,
			"%s %s \"%s %s\" %u %.3f id=%s prompt=%zu "
			"completion=%zu finish=%s\n",
			ts, c->peer, method, url, c->status,
			(double)(now_ns() - c->t0_ns) / 1e9, id, nprompt, ntok,
			fin);
	pthread_mutex_unlock(&log_mu);
}

static enum MHD_Result send_buf(struct conn *c, unsigned int status,
				const char *type, struct npd_buf *b)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(b->len, b->s ? b->s : (char *)"",
					       MHD_RESPMEM_MUST_COPY);
	npd_buf_free(b);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == 429)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	if (status == 401)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					"Bearer");
	if (status == 405)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
					c->route == R_COMPLETIONS ||
							c->route == R_CHAT ?
						"POST" :
						"GET");
	c->status = status;
	npd_metric_http(status);
	ret = MHD_queue_response(c->mc, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result send_err(struct conn *c, const struct npd_err *e)
{
	struct npd_buf b = {0};

	if (npd_openai_error(e, &b)) {
		npd_buf_free(&b);
		return MHD_NO;
	}
	npd_buf_add(&b, "\n", 1);
	if (e->status < 500 && c->route != R_HEALTH)
		npd_metric_add(NPD_C_REQ_REJECTED, 1);
	return send_buf(c, e->status, "application/json", &b);
}

/* Constant time in the length of the given key. */
static bool key_ok(const char *given)
{
	bool ok = false;

	for (unsigned int i = 0; i < cfg->n_api_keys; i++) {
		const char *k = cfg->api_keys[i];
		size_t kl = strlen(k), gl = strlen(given);
		unsigned char d = kl != gl;

		for (size_t j = 0; j < gl; j++)
			d |= (unsigned char)(given[j] ^ k[j < kl ? j : 0]);
		ok |= !d;
	}
	return ok;
}

static bool authorized(struct MHD_Connection *mc)
{
	const char *h;

	if (!cfg->n_api_keys)
		return true;
	h = MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
					MHD_HTTP_HEADER_AUTHORIZATION);
	if (!h || strncasecmp(h, "Bearer ", 7))
		return false;
	return key_ok(h + 7);
}

static bool ended(struct npd_req *r)
{
	bool done;

	pthread_mutex_lock(&r->lock);
	done = r->finish != NPD_FINISH_NONE;
	pthread_mutex_unlock(&r->lock);
	return done;
}

static void wake(void *opaque)
{
	struct conn *c = opaque;

	pthread_mutex_lock(&c->mu);
	if (c->suspended && (c->req->stream || ended(c->req))) {
		c->suspended = false;
		MHD_resume_connection(c->mc);
	}
	pthread_mutex_unlock(&c->mu);
}

/* Suspend c unless r has news (a stream: tokens or the end; a whole
 * response: the end); true if suspended. */
static bool park(struct conn *c)
{
	struct npd_req *r = c->req;
	bool news;

	pthread_mutex_lock(&c->mu);
	pthread_mutex_lock(&r->lock);
	news = (r->stream && r->n_tok > c->sent) ||
	       r->finish != NPD_FINISH_NONE;
	pthread_mutex_unlock(&r->lock);
	if (!news) {
		c->suspended = true;
		MHD_suspend_connection(c->mc);
	}
	pthread_mutex_unlock(&c->mu);
	return !news;
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct conn *c = cls;
	struct npd_req *r = c->req;
	size_t n, to;
	bool done;

	(void)pos;
	while (c->out_off == c->out.len) {
		npd_buf_free(&c->out);
		c->out_off = 0;
		if (c->done)
			return MHD_CONTENT_READER_END_OF_STREAM;
		pthread_mutex_lock(&r->lock);
		to = r->n_tok;
		done = r->finish != NPD_FINISH_NONE;
		pthread_mutex_unlock(&r->lock);
		if (to == c->sent && !done && !c->first) {
			if (park(c))
				return 0;
			continue;
		}
		if (npd_openai_chunks(r, c->sent, to, c->first, done,
				      c->include_usage, &c->out))
			return MHD_CONTENT_READER_END_WITH_ERROR;
		c->first = false;
		c->sent = to;
		c->done = done;
	}
	n = c->out.len - c->out_off;
	if (n > max)
		n = max;
	memcpy(buf, c->out.s + c->out_off, n);
	c->out_off += n;
	return (ssize_t)n;
}

static enum MHD_Result start_stream(struct conn *c)
{
	struct MHD_Response *resp = MHD_create_response_from_callback(
		MHD_SIZE_UNKNOWN, 4096, stream_reader, c, NULL);
	enum MHD_Result ret;

	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				"text/event-stream");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
				"no-cache");
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	c->status = 200;
	npd_metric_http(200);
	ret = MHD_queue_response(c->mc, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result generate(struct conn *c)
{
	struct npd_err e = {0};
	char err[256];
	int ret;

	if (c->submitted) {
		/* resumed: the request has finished */
		struct npd_buf b = {0};
		struct npd_req *r = c->req;

		if (park(c))
			return MHD_YES;
		if (r->finish == NPD_FINISH_ERROR) {
			npd_err_set(&e, 500, NULL, "%s", r->error);
			return send_err(c, &e);
		}
		if (npd_openai_response(r, &b)) {
			npd_buf_free(&b);
			npd_err_set(&e, 500, NULL,
				    "cannot encode the response (out of "
				    "memory)");
			return send_err(c, &e);
		}
		npd_buf_add(&b, "\n", 1);
		return send_buf(c, 200, "application/json", &b);
	}
	c->req = npd_req_new();
	if (!c->req)
		return MHD_NO;
	if (npd_openai_parse(c->body.s, c->body.len, c->route == R_CHAT, cfg,
			     c->req, &c->include_usage, &e))
		return send_err(c, &e);
	c->req->wake = wake;
	c->req->wake_opaque = c;
	c->req->t_arrival_ns = c->t0_ns;
	ret = npd_engine_submit(c->req, err, sizeof(err));
	if (ret) {
		npd_err_set(&e,
			    ret == -EAGAIN    ? 429 :
			    ret == -ESHUTDOWN ? 503 :
			    ret == -ENOMEM    ? 500 :
						400,
			    ret == -E2BIG ? "max_tokens" : NULL, "%s", err);
		return send_err(c, &e);
	}
	c->submitted = true;
	if (c->req->stream) {
		c->first = true;
		return start_stream(c);
	}
	/* wait for the whole answer without holding a thread */
	park(c);
	return MHD_YES;
}

static enum route route_of(const char *url)
{
	static const struct {
		const char *path;
		enum route r;
	} routes[] = {
		{"/v1/completions", R_COMPLETIONS},
		{"/v1/chat/completions", R_CHAT},
		{"/v1/models", R_MODELS},
		{"/health", R_HEALTH},
		{"/metrics", R_METRICS},
		{"/v1/np/cards", R_CARDS},
	};

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (!strcmp(url, routes[i].path))
			return routes[i].r;
	return R_NONE;
}

static enum MHD_Result handle_get(struct conn *c)
{
	struct npd_buf b = {0};
	struct npd_err e = {0};
	enum npd_state st = npd_engine_state();

	switch (c->route) {
	case R_HEALTH: {
		static const char *const names[] = {
			[NPD_LOADING] = "loading",     [NPD_READY] = "ok",
			[NPD_RECOVERING] = "degraded", [NPD_FAILED] = "failed",
			[NPD_DRAINING] = "draining",
		};

		npd_buf_printf(&b, "{\"status\":\"%s\"}\n", names[st]);
		return send_buf(
			c, st == NPD_READY || st == NPD_RECOVERING ? 200 : 503,
			"application/json", &b);
	}
	case R_CARDS:
		if (npd_engine_cards(&b)) {
			npd_buf_free(&b);
			return MHD_NO;
		}
		npd_buf_add(&b, "\n", 1);
		return send_buf(c, 200, "application/json", &b);
	case R_METRICS:
		b.s = npd_metrics_render();
		if (!b.s)
			return MHD_NO;
		b.len = strlen(b.s);
		return send_buf(c, 200, "text/plain; version=0.0.4", &b);
	case R_MODELS:
		if (npd_openai_models(&b)) {
			npd_buf_free(&b);
			return MHD_NO;
		}
		npd_buf_add(&b, "\n", 1);
		return send_buf(c, 200, "application/json", &b);
	default:
		npd_err_set(&e, 405, NULL, "use POST");
		return send_err(c, &e);
	}
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *mc,
			       const char *url, const char *method,
			       const char *version, const char *upload,
			       size_t *upload_size, void **con_cls)
{
	struct conn *c = *con_cls;
	struct npd_err e = {0};
	bool post = !strcmp(method, MHD_HTTP_METHOD_POST);

	(void)cls;
	(void)version;
	if (!c) {
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
			mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		const char *cl;

		c = calloc(1, sizeof(*c));
		if (!c)
			return MHD_NO;
		c->mc = mc;
		c->t0_ns = now_ns();
		pthread_mutex_init(&c->mu, NULL);
		c->route = route_of(url);
		snprintf(c->peer, sizeof(c->peer), "-");
		if (ci && ci->client_addr &&
		    ci->client_addr->sa_family == AF_INET)
			inet_ntop(AF_INET,
				  &((const struct sockaddr_in *)ci->client_addr)
					   ->sin_addr,
				  c->peer, sizeof(c->peer));
		else if (ci && ci->client_addr &&
			 ci->client_addr->sa_family == AF_INET6)
			inet_ntop(
				AF_INET6,
				&((const struct sockaddr_in6 *)ci->client_addr)
					 ->sin6_addr,
				c->peer, sizeof(c->peer));
		*con_cls = c;
		if (c->route == R_NONE) {
			npd_err_set(&e, 404, NULL, "no endpoint %s %.200s",
				    method, url);
			return send_err(c, &e);
		}
		if ((c->route == R_COMPLETIONS || c->route == R_CHAT) != post ||
		    (!post && strcmp(method, MHD_HTTP_METHOD_GET))) {
			npd_err_set(&e, 405, NULL, "%s %s: use %s", method, url,
				    c->route == R_COMPLETIONS ||
						    c->route == R_CHAT ?
					    "POST" :
					    "GET");
			return send_err(c, &e);
		}
		if (post && !authorized(mc)) {
			npd_err_set(&e, 401, NULL,
				    "missing or wrong API key: send "
				    "'Authorization: Bearer <key>'");
			return send_err(c, &e);
		}
		cl = MHD_lookup_connection_value(
			mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > cfg->max_body) {
			npd_err_set(&e, 413, NULL,
				    "the body is %s bytes; at most %zu", cl,
				    cfg->max_body);
			return send_err(c, &e);
		}
		return MHD_YES;
	}
	if (c->status)
		return MHD_YES; /* answered already; the rest is discarded */
	if (*upload_size) {
		if (!c->too_big && c->body.len + *upload_size > cfg->max_body)
			c->too_big = true;
		if (!c->too_big && npd_buf_add(&c->body, upload, *upload_size))
			return MHD_NO;
		*upload_size = 0;
		return MHD_YES;
	}
	if (c->too_big) {
		npd_err_set(&e, 413, NULL, "the body is over %zu bytes",
			    cfg->max_body);
		return send_err(c, &e);
	}
	if (!post)
		return handle_get(c);
	return generate(c);
}

static void completed(void *cls, struct MHD_Connection *mc, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct conn *c = *con_cls;
	const char *url = "-", *method = "-";

	(void)cls;
	(void)mc;
	if (!c)
		return;
	if (c->req && c->submitted) {
		bool running;

		pthread_mutex_lock(&c->req->lock);
		running = c->req->finish == NPD_FINISH_NONE;
		pthread_mutex_unlock(&c->req->lock);
		if (running || toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
			npd_engine_cancel(c->req);
		/* the engine may still call wake: detach first */
		pthread_mutex_lock(&c->req->wake_mu);
		c->req->wake = NULL;
		pthread_mutex_unlock(&c->req->wake_mu);
	}
	switch (c->route) {
	case R_COMPLETIONS:
		url = "/v1/completions";
		method = "POST";
		break;
	case R_CHAT:
		url = "/v1/chat/completions";
		method = "POST";
		break;
	case R_MODELS:
		url = "/v1/models";
		method = "GET";
		break;
	case R_HEALTH:
		url = "/health";
		method = "GET";
		break;
	case R_CARDS:
		url = "/v1/np/cards";
		method = "GET";
		break;
	case R_METRICS:
		url = "/metrics";
		method = "GET";
		break;
	case R_NONE:
		break;
	}
	if (c->route != R_METRICS && c->route != R_HEALTH &&
	    c->route != R_CARDS)
		log_access(c, method, url);
	if (c->req)
		npd_req_put(c->req);
	npd_buf_free(&c->body);
	npd_buf_free(&c->out);
	pthread_mutex_destroy(&c->mu);
	free(c);
	*con_cls = NULL;
}

static void conn_notify(void *cls, struct MHD_Connection *mc, void **socket,
			enum MHD_ConnectionNotificationCode code)
{
	(void)cls;
	(void)mc;
	(void)socket;
	if (code == MHD_CONNECTION_NOTIFY_STARTED)
		atomic_fetch_add(&n_conns, 1);
	else
		atomic_fetch_sub(&n_conns, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = 0;
	npd_log("http: %s", msg);
}

int npd_http_start(const struct npd_config *c)
{
	struct sockaddr_in6 a6 = {0};
	struct sockaddr_in a4 = {0};
	const struct sockaddr *sa;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
			     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;

	cfg = c;
	if (inet_pton(AF_INET, c->listen ? c->listen : "127.0.0.1",
		      &a4.sin_addr) == 1) {
		a4.sin_family = AF_INET;
		a4.sin_port = htons(c->port);
		sa = (const struct sockaddr *)&a4;
	} else if (inet_pton(AF_INET6, c->listen, &a6.sin6_addr) == 1) {
		a6.sin6_family = AF_INET6;
		a6.sin6_port = htons(c->port);
		sa = (const struct sockaddr *)&a6;
		flags |= MHD_USE_IPv6;
	} else {
		npd_log("--listen %s: not an IPv4 or IPv6 address", c->listen);
		return -EINVAL;
	}
	daemon_ = MHD_start_daemon(
		flags, c->port, NULL, NULL, handler, NULL,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
		sa, MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)c->threads,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)c->max_connections,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)c->timeout_s,
		MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
		MHD_OPTION_NOTIFY_CONNECTION, conn_notify, NULL,
		MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_END);
	if (!daemon_) {
		npd_log("cannot listen on %s port %u (in use, or the address "
			"is not this host's)",
			c->listen ? c->listen : "127.0.0.1", c->port);
		return -EADDRINUSE;
	}
	return 0;
}

uint16_t npd_http_port(void)
{
	const union MHD_DaemonInfo *di;

	if (!daemon_)
		return 0;
	di = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
	return di ? di->port : cfg->port;
}

void npd_http_quiesce(void)
{
	MHD_socket s;

	if (!daemon_)
		return;
	s = MHD_quiesce_daemon(daemon_);
	if (s != MHD_INVALID_SOCKET)
		close(s);
}

unsigned int npd_http_connections(void)
{
	return atomic_load(&n_conns);
}

void npd_http_stop(void)
{
	if (daemon_)
		MHD_stop_daemon(daemon_);
	daemon_ = NULL;
	pthread_mutex_lock(&log_mu);
	if (access_log && access_log != stderr)
		fclose(access_log);
	access_log = NULL;
	pthread_mutex_unlock(&log_mu);
}
