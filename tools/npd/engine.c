// SPDX-License-Identifier: MIT
/*
 * npd's engine: the cards, the loaded model and libnp's scheduler
 * (np/sched.h). One thread opens the cards, loads the model and then runs
 * the scheduler's frame loop; HTTP threads submit and cancel requests and
 * get their tokens through each request's event queue and wake callback.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <np/chat.h>
#include <np/cluster.h>
#include <np/model.h>
#include <np/np.h>
#include <np/pipeline.h>
#include <np/sched.h>

#include "engine.h"
#include "np_abi.h"

static struct {
	const struct npd_config *cfg;
	pthread_t thread;
	bool started;
	_Atomic int state; /* enum npd_state */
	char name[256];
	uint64_t created;
	struct np_ctx *ctx;
	struct np_pipeline *p;
	struct np_sched *s;
	const struct np_tok *tok;
	uint32_t max_seq, n_cards;
	_Atomic unsigned int busy; /* requests submitted, not ended */
	/* chat: the family to render, or why there is none */
	bool have_chat;
	enum np_chat_family chat;
	char chat_why[256];
	uint64_t tokens; /* generated, on the run thread: --inject-after */
	bool injected;
	_Atomic bool draining;
} E;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct npd_req *npd_req_new(void)
{
	struct npd_req *r = calloc(1, sizeof(*r));
	static _Atomic uint64_t seq;

	if (!r)
		return NULL;
	pthread_mutex_init(&r->lock, NULL);
	pthread_mutex_init(&r->wake_mu, NULL);
	r->refs = 1;
	r->p.logprobs = -1;
	snprintf(r->id, sizeof(r->id), "cmpl-%llx%08llx",
		 (unsigned long long)time(NULL),
		 (unsigned long long)atomic_fetch_add(&seq, 1));
	return r;
}

void npd_req_put(struct npd_req *r)
{
	unsigned int left;

	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	left = --r->refs;
	pthread_mutex_unlock(&r->lock);
	if (left)
		return;
	for (size_t i = 0; i < r->n_tok; i++)
		free(r->tok[i].text);
	for (unsigned int i = 0; i < r->p.n_stop; i++)
		free(r->p.stop[i]);
	free(r->tok);
	free(r->prompt);
	pthread_mutex_destroy(&r->lock);
	pthread_mutex_destroy(&r->wake_mu);
	free(r);
}

static void np_log_cb(void *opaque, enum np_log_level level, const char *msg)
{
	(void)opaque;
	if (level <= NP_LOG_NOTICE)
		npd_log("%s", msg);
}

/* Each load stage's end, logged with its time since the previous end */
static void on_progress(void *opaque, enum np_load_stage stage, uint64_t done,
			uint64_t total)
{
	static const char *const name[] = {
		[NP_LOAD_MODEL] = "model parsed and hashed",
		[NP_LOAD_CACHE_VERIFY] = "cached card images verified",
		[NP_LOAD_CALIBRATE] = "calibrated",
		[NP_LOAD_COMPILE] = "card images rendered",
		[NP_LOAD_CACHE_WRITE] = "image cache entry written",
		[NP_LOAD_CARDS] = "card images loaded onto the cards",
	};
	uint64_t *last = opaque, now = now_ns();

	if (done < total || (unsigned int)stage >= sizeof(name) / sizeof(*name))
		return;
	npd_log("load: %s in %.2f s", name[stage], (now - *last) / 1e9);
	*last = now;
}

static void on_recover(void *opaque, const struct np_recover_event *ev)
{
	(void)opaque;
	npd_metric_add(NPD_C_RECOVERIES, 1);
	npd_log("recovered from a card fault (%s) in %.1f ms: %u requests "
		"resumed, %llu tokens replayed",
		ev->fault ? ev->fault : "unknown", ev->recover_ns / 1e6,
		ev->requests, (unsigned long long)ev->replayed_tokens);
}

static void wake(struct npd_req *r)
{
	pthread_mutex_lock(&r->wake_mu);
	if (r->wake)
		r->wake(r->wake_opaque);
	pthread_mutex_unlock(&r->wake_mu);
}

static enum npd_finish finish_of(enum np_finish f)
{
	switch (f) {
	case NP_FINISH_STOP:
		return NPD_FINISH_STOP;
	case NP_FINISH_LENGTH:
		return NPD_FINISH_LENGTH;
	case NP_FINISH_CANCELLED:
		return NPD_FINISH_CANCELLED;
	case NP_FINISH_ERROR:
		return NPD_FINISH_ERROR;
	default:
		return NPD_FINISH_NONE;
	}
}

size_t npd_utf8_seq(const unsigned char *s, size_t n)
{
	size_t len = s[0] < 0x80		  ? 1 :
		     s[0] >= 0xc2 && s[0] <= 0xdf ? 2 :
		     s[0] >= 0xe0 && s[0] <= 0xef ? 3 :
		     s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 :
						    0;

	if (!len || len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	/* overlong, surrogates, beyond U+10FFFF */
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
		return 0;
	return len;
}

/*
 * The text as JSON can carry it: valid UTF-8, each byte that starts no
 * valid sequence replaced by U+FFFD (a byte token, the end of a sequence
 * cut short), as llama.cpp's server and vLLM show them. NUL-terminated,
 * malloc()ed.
 */
static char *utf8_clean(const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;
	char *out = malloc(3 * len + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len;) {
		size_t k = npd_utf8_seq(s + i, len - i);

		if (k && s[i]) {
			memcpy(o, s + i, k);
			o += k;
			i += k;
		} else {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	*o = 0;
	return out;
}

/* Append ev's text (and token) to r; 0 or -ENOMEM. With r->lock. */
static int append(struct npd_req *r, const struct np_sched_event *ev)
{
	struct npd_tok *t;

	if (ev->token < 0 && !ev->text_len)
		return 0;
	if (ev->token < 0 && r->n_tok) {
		/* text released at the end: it belongs to the last token */
		char *add = utf8_clean(ev->text, ev->text_len), *s;
		size_t l, la;

		t = &r->tok[r->n_tok - 1];
		l = strlen(t->text);
		la = add ? strlen(add) : 0;
		s = add ? realloc(t->text, l + la + 1) : NULL;
		if (!s) {
			free(add);
			return -ENOMEM;
		}
		memcpy(s + l, add, la + 1);
		t->text = s;
		free(add);
		return 0;
	}
	if (r->n_tok == r->cap_tok) {
		size_t cap = r->cap_tok ? 2 * r->cap_tok : 64;
		struct npd_tok *nt = realloc(r->tok, cap * sizeof(*nt));

		if (!nt)
			return -ENOMEM;
		r->tok = nt;
		r->cap_tok = cap;
	}
	t = &r->tok[r->n_tok];
	memset(t, 0, sizeof(*t));
	t->id = ev->token;
	t->text = utf8_clean(ev->text ? ev->text : "", ev->text_len);
	if (!t->text)
		return -ENOMEM;
	t->logprob = ev->logprob;
	t->n_top = ev->n_logprobs < NPD_MAX_LOGPROBS ? ev->n_logprobs :
						       NPD_MAX_LOGPROBS;
	for (unsigned int k = 0; k < t->n_top; k++) {
		t->top_id[k] = (int32_t)ev->logprob_id[k];
		t->top_lp[k] = ev->logprob_val[k];
	}
	r->n_tok++;
	return 0;
}

/* Arm the --inject faults (emulated cards), once. */
static void inject(void)
{
	E.injected = true;
	for (unsigned int i = 0; i < E.cfg->n_inject; i++) {
		const char *f = E.cfg->inject[i];
		unsigned int card = (unsigned int)strtoul(f, NULL, 10);
		int ret = card < np_ctx_num_cards(E.ctx) ?
				  np_card_inject(np_ctx_card(E.ctx, card),
						 strchr(f, ':') + 1) :
				  -ENODEV;

		if (ret)
			npd_log("--inject %s: %s", f,
				ret == -ENODEV ? "no such card" :
						 strerror(-ret));
		else
			npd_log("--inject %s: armed after %llu tokens", f,
				(unsigned long long)E.tokens);
	}
}

static int on_event(void *opaque, const struct np_sched_event *ev)
{
	struct npd_req *r = opaque;
	bool cancel, first;
	uint64_t prev;

	pthread_mutex_lock(&r->lock);
	prev = r->t_last_ns;
	first = ev->token >= 0 && !r->t_first_ns;
	if (ev->token >= 0) {
		if (first)
			r->t_first_ns = ev->t_ns;
		r->t_last_ns = ev->t_ns;
	}
	if (append(r, ev)) {
		r->finish = NPD_FINISH_ERROR;
		snprintf(r->error, sizeof(r->error),
			 "out of memory for the response");
	}
	if (ev->finish != NP_FINISH_NONE) {
		if (r->finish == NPD_FINISH_NONE)
			r->finish = finish_of(ev->finish);
		if (ev->finish == NP_FINISH_ERROR)
			snprintf(r->error, sizeof(r->error),
				 "the cards failed this request (%s); it was "
				 "not recovered",
				 strerror(-ev->error));
	}
	cancel = r->cancel || r->finish == NPD_FINISH_ERROR;
	pthread_mutex_unlock(&r->lock);

	if (ev->token >= 0) {
		if (E.cfg->n_inject && !E.injected &&
		    ++E.tokens >= E.cfg->inject_after)
			inject();
		npd_metric_add(NPD_C_GEN_TOKENS, 1);
		if (first)
			npd_metric_observe(NPD_H_TTFT,
					   (ev->t_ns - r->t_arrival_ns) / 1e9);
		else
			npd_metric_observe(NPD_H_ITL, (ev->t_ns - prev) / 1e9);
	}
	if (ev->finish != NP_FINISH_NONE) {
		const struct np_sched_req_stats *st = ev->stats;

		npd_metric_add(ev->finish == NP_FINISH_CANCELLED ?
				       NPD_C_REQ_CANCELLED :
			       ev->finish == NP_FINISH_ERROR ? NPD_C_REQ_ERROR :
							       NPD_C_REQ_OK,
			       1);
		if (st) {
			npd_metric_add(NPD_C_PROMPT_TOKENS, st->prompt_tokens);
			if (st->start_ns >= st->submit_ns)
				npd_metric_observe(
					NPD_H_QUEUE,
					(st->start_ns - st->submit_ns) / 1e9);
		}
		npd_metric_observe(NPD_H_E2E,
				   (ev->t_ns - r->t_arrival_ns) / 1e9);
		wake(r);
		atomic_fetch_sub(&E.busy, 1);
		npd_req_put(r); /* the engine's reference */
		return 0;
	}
	wake(r);
	return cancel;
}

static void keep_msg(void *opaque, enum np_log_level level, const char *msg)
{
	(void)level;
	snprintf(opaque, sizeof(E.chat_why), "%s", msg);
}

/* The chat family: --chat-template, else the model's template. */
static void chat_setup(const struct npd_config *c)
{
	struct np_log lg = {.fn = keep_msg, .opaque = E.chat_why};
	struct np_gguf *g = NULL;

	if (c->chat_template) {
		E.have_chat =
			!np_chat_family_from_name(c->chat_template, &E.chat);
		if (!E.have_chat)
			snprintf(
				E.chat_why, sizeof(E.chat_why),
				"--chat-template %s is not a family np renders "
				"(%s)",
				c->chat_template, np_chat_family_list());
		return;
	}
	if (!np_gguf_open(c->model, &lg, &g))
		E.have_chat = !np_chat_from_gguf(g, &lg, &E.chat);
	np_gguf_close(g);
	if (E.have_chat)
		npd_log("chat template: %s", np_chat_family_name(E.chat));
	else
		npd_log("no chat template (%s); /v1/chat/completions needs "
			"--chat-template NAME (%s)",
			E.chat_why, np_chat_family_list());
}

static void *engine_main(void *arg)
{
	const struct npd_config *c = arg;
	struct np_open_opts oo = {.log = {.fn = np_log_cb}};
	uint64_t t0 = now_ns(), stage_t = t0;
	struct np_pipeline_opts po = {
		.max_sessions = c->slots,
		.max_seq = c->max_seq,
		.layer_precision = c->layer_precision,
		.cache_dir = c->cache_dir,
		.progress = on_progress,
		.progress_opaque = &stage_t,
	};
	struct np_sched_opts so = {
		.slots = c->slots,
		.micro_batches = c->micro_batches,
		.max_queue = c->max_queue ? c->max_queue : 1,
		.max_recoveries = c->recover ? 4 : 0,
		.on_recover = on_recover,
	};
	int ret;

	enum np_precision prec = NP_PREC_DEFAULT;

	/* validated by the configuration */
	if (c->precision && !np_precision_parse(c->precision, &prec))
		po.precision = (uint32_t)prec;
	/* the head of a cluster drives no card: one emulated card's context
	 * holds its log and host buffers, unless --devices says otherwise */
	ret = np_open(c->cluster && !c->devices ? "emu:1" : c->devices, &oo,
		      &E.ctx);
	if (!ret && c->cluster)
		ret = np_cluster_load(
			E.ctx, c->model, &po,
			&(struct np_cluster_opts){.file = c->cluster}, &E.p);
	else if (!ret)
		ret = np_model_load(E.ctx, c->model, &po, &E.p);
	if (!ret)
		ret = np_sched_create(E.p, &so, &E.s);
	if (ret) {
		npd_log("cannot serve %s: %s", c->model, strerror(-ret));
		atomic_store(&E.state, NPD_FAILED);
		kill(getpid(), SIGUSR1); /* main() exits 1 */
		return NULL;
	}
	chat_setup(c);
	E.tok = np_pipeline_tok(E.p);
	E.max_seq = np_pipeline_max_seq(E.p);
	E.n_cards = np_pipeline_cards(E.p);
	E.created = (uint64_t)time(NULL);
	if (c->n_inject && !c->inject_after)
		inject();
	npd_log("model %s ready on %u cards in %.2f s (%s): %u slots, %u "
		"tokens per request",
		E.name, E.n_cards, (now_ns() - t0) / 1e9,
		np_pipeline_cached(E.p) ? "card images from the image cache" :
					  "compiled",
		np_pipeline_max_sessions(E.p), E.max_seq);
	if (!atomic_load(&E.draining))
		atomic_store(&E.state, NPD_READY);
	ret = np_sched_run(E.s);
	if (ret) {
		npd_log("the cards failed: %s; every request ended with an "
			"error",
			strerror(-ret));
		atomic_store(&E.state, NPD_FAILED);
		kill(getpid(), SIGUSR1);
	}
	return NULL;
}

int npd_engine_start(const struct npd_config *c)
{
	const char *base = strrchr(c->model, '/');
	int ret;

	E.cfg = c;
	snprintf(E.name, sizeof(E.name), "%s",
		 c->model_name ? c->model_name :
		 base	       ? base + 1 :
				 c->model);
	atomic_store(&E.state, NPD_LOADING);
	ret = pthread_create(&E.thread, NULL, engine_main, (void *)c);
	if (ret) {
		npd_log("cannot start the engine thread: %s", strerror(ret));
		return -ret;
	}
	E.started = true;
	return 0;
}

void npd_engine_drain(void)
{
	atomic_store(&E.draining, true);
	if (atomic_load(&E.state) == NPD_READY)
		atomic_store(&E.state, NPD_DRAINING);
	if (E.s)
		np_sched_drain(E.s);
}

unsigned int npd_engine_busy(void)
{
	return atomic_load(&E.busy);
}

void npd_engine_stop(void)
{
	if (!E.started)
		return;
	/* the load may still run: it ends by itself; then the loop drains */
	npd_engine_drain();
	while (atomic_load(&E.state) == NPD_LOADING) {
		struct timespec ts = {0, 10 * 1000 * 1000};

		nanosleep(&ts, NULL);
		if (E.s)
			np_sched_drain(E.s);
	}
	if (E.s)
		np_sched_drain(E.s);
	pthread_join(E.thread, NULL);
	E.started = false;
	np_sched_destroy(E.s);
	np_pipeline_destroy(E.p);
	np_close(E.ctx);
	E.s = NULL;
	E.p = NULL;
	E.ctx = NULL;
}

enum npd_state npd_engine_state(void)
{
	struct np_sched_stats st = {0};
	enum npd_state s = atomic_load(&E.state);

	if (s == NPD_READY && E.s && !np_sched_stats(E.s, &st) &&
	    st.state == NP_SCHED_RECOVERING)
		return NPD_RECOVERING;
	return s;
}

const char *npd_engine_model_name(void)
{
	return E.name;
}

uint32_t npd_engine_max_seq(void)
{
	return E.max_seq;
}

uint64_t npd_engine_created(void)
{
	return E.created;
}

static bool ready(char *err, size_t len)
{
	enum npd_state s = atomic_load(&E.state);

	if (s == NPD_READY)
		return true;
	snprintf(err, len, "%s",
		 s == NPD_LOADING ?
			 "the model is still loading; retry shortly" :
		 s == NPD_DRAINING ? "the server is shutting down" :
				     "the model could not be served (see the "
				     "server's log)");
	return false;
}

int npd_engine_tokenize(const char *text, size_t len, bool special,
			int32_t **ids, size_t *n, char *err, size_t errlen)
{
	size_t cap, got = 0, k = 0;
	int32_t *v;
	int ret;

	*ids = NULL;
	*n = 0;
	if (!ready(err, errlen))
		return -ESHUTDOWN;
	if (!E.tok) {
		snprintf(err, errlen, "the model has no tokenizer");
		return -EINVAL;
	}
	cap = E.max_seq + 1;
	v = malloc(cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (np_tok_bos(E.tok) >= 0)
		v[k++] = np_tok_bos(E.tok);
	ret = np_tok_encode_flags(E.tok, text, len,
				  special ? NP_TOK_PARSE_SPECIAL : 0, v + k,
				  cap - k, &got);
	if (ret == -ENOSPC || k + got >= E.max_seq) {
		snprintf(err, errlen,
			 "the prompt is %zu tokens; the context holds %u, "
			 "output included",
			 k + got, E.max_seq);
		free(v);
		return -E2BIG;
	}
	if (ret) {
		snprintf(err, errlen, "cannot tokenize the prompt: %s",
			 strerror(-ret));
		free(v);
		return ret;
	}
	*ids = v;
	*n = k + got;
	return 0;
}

size_t npd_engine_piece(int32_t id, char *buf, size_t len)
{
	size_t got = 0;

	if (!len)
		return 0;
	if (!E.tok || np_tok_decode(E.tok, &id, 1, buf, len - 1, &got))
		got = 0;
	buf[got] = 0;
	return got;
}

int npd_engine_chat(const char *const *role, const char *const *content,
		    size_t n, char **out, char *err, size_t errlen)
{
	struct np_chat_msg *m;
	size_t len = 0;
	int ret;

	*out = NULL;
	if (!ready(err, errlen))
		return -ESHUTDOWN;
	if (!E.have_chat) {
		snprintf(err, errlen,
			 "this model has no chat template np renders (%s); "
			 "start npd with --chat-template NAME (%s), or use "
			 "/v1/completions",
			 E.chat_why, np_chat_family_list());
		return -ENOTSUP;
	}
	m = calloc(n, sizeof(*m));
	if (!m)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		m[i].role = role[i];
		m[i].content = content[i];
	}
	ret = np_chat_apply(E.chat, m, n, 1, NULL, 0, &len);
	if (ret == -ENOSPC || !ret) {
		*out = malloc(len + 1);
		ret = *out ? np_chat_apply(E.chat, m, n, 1, *out, len + 1,
					   &len) :
			     -ENOMEM;
	}
	free(m);
	if (ret) {
		free(*out);
		*out = NULL;
		snprintf(err, errlen, "cannot render the messages: %s",
			 strerror(-ret));
		return ret;
	}
	(*out)[len] = 0;
	return 0;
}

int npd_engine_submit(struct npd_req *r, char *err, size_t errlen)
{
	const char *stop[NPD_MAX_STOP];
	struct np_sched_req q = {0};
	uint64_t id;
	int ret;

	if (!ready(err, errlen))
		return -ESHUTDOWN;
	if (r->n_prompt + r->p.max_tokens > E.max_seq) {
		snprintf(err, errlen,
			 "max_tokens %u plus the prompt's %zu tokens exceed "
			 "the context of %u tokens; ask for at most %zu",
			 r->p.max_tokens, r->n_prompt, E.max_seq,
			 r->n_prompt < E.max_seq ? E.max_seq - r->n_prompt : 0);
		return -E2BIG;
	}
	for (unsigned int i = 0; i < r->p.n_stop; i++)
		stop[i] = r->p.stop[i];
	q.prompt = r->prompt;
	q.n_prompt = r->n_prompt;
	q.max_tokens = r->p.max_tokens;
	q.sampling.temperature = r->p.temperature;
	q.sampling.top_k = r->p.top_k;
	q.sampling.top_p = r->p.top_p;
	q.sampling.seed = r->p.has_seed ? r->p.seed : now_ns();
	q.stop_str = stop;
	q.n_stop_str = r->p.n_stop;
	q.logprobs = r->p.logprobs > 0	? (uint32_t)r->p.logprobs :
		     r->p.logprobs == 0 ? 1 :
					  0;
	q.on_event = on_event;
	q.opaque = r;
	pthread_mutex_lock(&r->lock);
	r->refs++; /* the engine's, dropped at the end event */
	pthread_mutex_unlock(&r->lock);
	atomic_fetch_add(&E.busy, 1);
	ret = np_sched_submit(E.s, &q, &id);
	if (ret) {
		atomic_fetch_sub(&E.busy, 1);
		pthread_mutex_lock(&r->lock);
		r->refs--;
		pthread_mutex_unlock(&r->lock);
		snprintf(
			err, errlen, "%s",
			ret == -EAGAIN ?
				"too many requests are waiting; retry later" :
			ret == -ESHUTDOWN ? "the server is shutting down" :
			ret == -ERANGE ? "the prompt does not fit the context" :
					 "the request was refused (see the "
					 "server's log)");
		return ret == -ERANGE ? -E2BIG : ret;
	}
	r->priv = (void *)(uintptr_t)id;
	return 0;
}

void npd_engine_cancel(struct npd_req *r)
{
	pthread_mutex_lock(&r->lock);
	r->cancel = true;
	pthread_mutex_unlock(&r->lock);
	if (E.s)
		np_sched_cancel(E.s, (uint64_t)(uintptr_t)r->priv);
}

/* Telemetry registers of every card of the context, read at scrape time
 * (nptool status reads the same ones). */
static void card_metrics(struct npd_buf *o)
{
	static const struct {
		uint32_t reg;
		const char *name, *type, *help;
		double scale;
	} regs[] = {
		{NP_REG_TEMP, "npd_card_temperature_celsius", "gauge",
		 "Die temperature.", 1e-3},
		{NP_REG_POWER, "npd_card_power_watts", "gauge", "Board power.",
		 1e-3},
		{NP_REG_CORE_CLK, "npd_card_core_clock_mhz", "gauge",
		 "Core clock.", 1},
		{NP_REG_DMA_ERRORS, "npd_card_dma_errors_total", "counter",
		 "Descriptors that ended in an error since the card's reset.",
		 1},
		{NP_REG_SRAM_CE, "npd_card_sram_corrected_errors_total",
		 "counter", "Corrected SRAM errors since the card's reset.", 1},
		{NP_REG_SRAM_UE, "npd_card_sram_uncorrected_errors_total",
		 "counter", "Uncorrected SRAM errors since the card's reset.",
		 1},
		{NP_REG_THROTTLE_COUNT, "npd_card_throttle_events_total",
		 "counter", "Thermal throttle episodes since the card's reset.",
		 1},
	};
	unsigned int n = E.ctx ? np_ctx_num_cards(E.ctx) : 0;

	for (size_t k = 0; k < sizeof(regs) / sizeof(regs[0]); k++) {
		npd_buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", regs[k].name,
			       regs[k].help, regs[k].name, regs[k].type);
		for (unsigned int i = 0; i < n; i++) {
			struct np_card *card = np_ctx_card(E.ctx, i);
			uint32_t v;

			if (np_card_removed(card) ||
			    np_card_reg_read(card, regs[k].reg, &v))
				continue;
			npd_buf_printf(o, "%s{card=\"%u\",name=\"%s\"} %g\n",
				       regs[k].name, i, np_card_name(card),
				       v * regs[k].scale);
		}
	}
}

void npd_engine_metrics(struct npd_buf *o)
{
	uint64_t busy[64] = {0};
	struct np_sched_stats st = {.card_busy_ns = busy, .n_card = 64};

	npd_buf_printf(o,
		       "# HELP npd_up 1 when the model serves requests.\n"
		       "# TYPE npd_up gauge\nnpd_up %d\n",
		       npd_engine_state() == NPD_READY ||
			       npd_engine_state() == NPD_RECOVERING);
	if (!E.s || np_sched_stats(E.s, &st))
		return;
	npd_buf_printf(o,
		       "# HELP npd_requests_waiting Requests queued for a KV "
		       "slot.\n# TYPE npd_requests_waiting gauge\n"
		       "npd_requests_waiting %u\n"
		       "# HELP npd_requests_running Requests holding a KV "
		       "slot.\n# TYPE npd_requests_running gauge\n"
		       "npd_requests_running %u\n"
		       "# HELP npd_kv_slots KV slots of the pipeline.\n"
		       "# TYPE npd_kv_slots gauge\nnpd_kv_slots %u\n"
		       "# HELP npd_frames_total Frames pushed through the "
		       "cards.\n# TYPE npd_frames_total counter\n"
		       "npd_frames_total %llu\n",
		       st.queued, st.slots_used, st.slots,
		       (unsigned long long)st.frames);
	npd_buf_printf(o, "# HELP npd_card_busy_ratio Share of the time a "
			  "card had a frame to compute, since start.\n"
			  "# TYPE npd_card_busy_ratio gauge\n");
	for (uint32_t i = 0; i < E.n_cards && i < 64; i++)
		npd_buf_printf(o,
			       "npd_card_busy_ratio{card=\"%u\",name=\"%s\"} "
			       "%.4f\n",
			       i, np_card_name(np_ctx_card(E.ctx, i)),
			       st.wall_ns ? (double)busy[i] / st.wall_ns : 0);
	card_metrics(o);
}

/* The card state as the driver's card_state attribute and nptool name it
 * (most severe bit first). */
static const char *state_name(uint32_t st)
{
	if (st & NP_STATUS_FATAL)
		return "fatal";
	if (st & NP_STATUS_RESETTING)
		return "resetting";
	if (st & NP_STATUS_THROTTLED)
		return "throttled";
	return st & NP_STATUS_READY ? "ready" : "not-ready";
}

/* A 64-bit _LO/_HI pair: re-read while the high half moves. */
static int reg64(struct np_card *c, uint32_t lo, uint32_t hi, uint64_t *v)
{
	uint32_t h1, l, h2;
	int tries = 0;

	do {
		if (np_card_reg_read(c, hi, &h1) ||
		    np_card_reg_read(c, lo, &l) || np_card_reg_read(c, hi, &h2))
			return -EIO;
	} while (h1 != h2 && ++tries < 4);
	*v = (uint64_t)h2 << 32 | l;
	return 0;
}

int npd_engine_cards(struct npd_buf *o)
{
	/* the registers nptool status shows, under its field names */
	static const struct {
		const char *key;
		uint32_t reg, reg_hi;
		uint8_t minor; /* ABI minor that has the register */
	} regs[] = {
		{"temp_mc", NP_REG_TEMP, 0, 0},
		{"temp_max_mc", NP_REG_TEMP_MAX, 0, 0},
		{"temp_crit_mc", NP_REG_TEMP_CRIT, 0, 0},
		{"power_mw", NP_REG_POWER, 0, 0},
		{"voltage_mv", NP_REG_VOLTAGE, 0, 0},
		{"core_clock_mhz", NP_REG_CORE_CLK, 0, 0},
		{"busy_percent", NP_REG_BUSY, 0, 0},
		{"uptime_ms", NP_REG_UPTIME_LO, NP_REG_UPTIME_HI, 0},
		{"dma_bytes", NP_REG_DMA_BYTES_LO, NP_REG_DMA_BYTES_HI, 0},
		{"dma_errors", NP_REG_DMA_ERRORS, 0, 0},
		{"sram_ce", NP_REG_SRAM_CE, 0, 0},
		{"sram_ue", NP_REG_SRAM_UE, 0, 0},
		{"throttle_count", NP_REG_THROTTLE_COUNT, 0, 0},
		{"sram_weight_bytes", NP_REG_USE_WEIGHTS, 0, 2},
		{"sram_kv_bytes", NP_REG_USE_KV, 0, 2},
		{"sram_prog_bytes", NP_REG_USE_PROG, 0, 2},
		{"fb_used_bytes", NP_REG_USE_FB, 0, 2},
	};
	uint64_t busy[64] = {0};
	struct np_sched_stats st = {.card_busy_ns = busy, .n_card = 64};
	enum npd_state state = npd_engine_state();
	unsigned int n = 0;
	bool have_st = false;
	json_t *root, *cards;
	char *s;
	int ret;

	if (state == NPD_READY || state == NPD_RECOVERING ||
	    state == NPD_DRAINING) {
		n = E.ctx ? np_ctx_num_cards(E.ctx) : 0;
		have_st = E.s && !np_sched_stats(E.s, &st);
	}
	root = json_pack("{s:s, s:I, s:s, s:s, s:s, s:I, s:b}", "process",
			 "npd", "pid", (json_int_t)getpid(), "devices",
			 E.cfg && E.cfg->devices ? E.cfg->devices : "", "model",
			 E.name, "state",
			 state == NPD_READY	 ? "ok" :
			 state == NPD_RECOVERING ? "degraded" :
			 state == NPD_LOADING	 ? "loading" :
			 state == NPD_DRAINING	 ? "draining" :
						   "failed",
			 "pipeline_wall_ns",
			 (json_int_t)(have_st ? st.wall_ns : 0), "pipeline",
			 have_st);
	cards = json_array();
	if (!root || !cards || json_object_set_new(root, "cards", cards)) {
		json_decref(root);
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < n; i++) {
		struct np_card *c = np_ctx_card(E.ctx, i);
		struct np_card_info in;
		json_t *j = json_object();
		uint32_t sv = 0;
		char serial[17];

		if (!j || json_array_append_new(cards, j))
			break;
		np_card_info(c, &in);
		snprintf(serial, sizeof(serial), "%016llx",
			 (unsigned long long)in.serial);
		json_object_set_new(j, "index", json_integer(i));
		json_object_set_new(j, "name", json_string(np_card_name(c)));
		json_object_set_new(j, "serial", json_string(serial));
		if (np_card_removed(c) ||
		    np_card_reg_read(c, NP_REG_STATUS, &sv) ||
		    sv == UINT32_MAX) {
			json_object_set_new(
				j, "state",
				json_string(np_card_removed(c) ?
						    "removed" :
						    "not-answering"));
			continue;
		}
		json_object_set_new(j, "state", json_string(state_name(sv)));
		for (size_t k = 0; k < sizeof(regs) / sizeof(regs[0]); k++) {
			uint64_t v = 0;
			uint32_t v32;

			if (in.abi_minor < regs[k].minor)
				continue;
			if (regs[k].reg_hi) {
				if (reg64(c, regs[k].reg, regs[k].reg_hi, &v))
					continue;
			} else {
				if (np_card_reg_read(c, regs[k].reg, &v32))
					continue;
				v = v32;
			}
			json_object_set_new(j, regs[k].key,
					    json_integer((json_int_t)v));
		}
		/* pipeline occupancy: the time card i of the pipeline had a
		 * frame to compute, since the scheduler started */
		if (have_st && i < E.n_cards && i < 64)
			json_object_set_new(j, "pipeline_busy_ns",
					    json_integer((json_int_t)busy[i]));
	}
	s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (!s)
		return -ENOMEM;
	ret = npd_buf_add(o, s, strlen(s));
	free(s);
	return ret ? -ENOMEM : 0;
}
