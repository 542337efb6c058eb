/* SPDX-License-Identifier: MIT */
/*
 * npd's engine: the model on the cards. Requests come in from the HTTP
 * threads; tokens go back through each request's event queue, which the
 * HTTP side drains (streaming) or collects (a whole response).
 */
#ifndef NPD_ENGINE_H
#define NPD_ENGINE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "npd.h"

struct npd_buf;

enum npd_state {
	NPD_LOADING, /* cards opening, model loading: /health 503 */
	NPD_READY,
	NPD_RECOVERING, /* a card fault is being recovered: degraded */
	NPD_FAILED, /* the model could not be served */
	NPD_DRAINING, /* SIGTERM: finishing what runs, taking nothing new */
};

enum npd_finish {
	NPD_FINISH_NONE = 0, /* still running */
	NPD_FINISH_STOP, /* end of sequence or a stop string/token */
	NPD_FINISH_LENGTH, /* max_tokens or the context */
	NPD_FINISH_CANCELLED, /* the client went away */
	NPD_FINISH_ERROR, /* the cards failed it: see error */
};

#define NPD_MAX_LOGPROBS 20

struct npd_params {
	uint32_t max_tokens;
	float temperature; /* 0: greedy */
	float top_p; /* 1: off */
	uint32_t top_k; /* 0: off */
	uint64_t seed;
	bool has_seed;
	char *stop[NPD_MAX_STOP];
	unsigned int n_stop;
	int logprobs; /* -1: none; else top alternatives, 0..20 */
};

/* One generated token as the client sees it. */
struct npd_tok {
	int32_t id;
	char *text; /* its bytes, NUL-terminated (stop strings cut) */
	float logprob;
	unsigned int n_top;
	int32_t top_id[NPD_MAX_LOGPROBS];
	float top_lp[NPD_MAX_LOGPROBS];
};

/*
 * A request in flight, shared by its HTTP connection and the engine, freed
 * when both have let go (npd_req_put). Fields above the lock are set before
 * submission and read-only after.
 */
struct npd_req {
	char id[40]; /* "cmpl-..." / "chatcmpl-..." */
	bool chat, stream;
	int32_t *prompt;
	size_t n_prompt;
	struct npd_params p;
	uint64_t t_arrival_ns;
	/* called by the engine with wake_mu held and lock not held, when
	 * events are added; the HTTP side clears it under wake_mu before it
	 * lets go of the request */
	pthread_mutex_t wake_mu;
	void (*wake)(void *opaque);
	void *wake_opaque;

	pthread_mutex_t lock;
	unsigned int refs;
	struct npd_tok *tok; /* generated, in order */
	size_t n_tok, cap_tok, n_read; /* n_read: consumed by HTTP */
	enum npd_finish finish;
	char error[256]; /* NPD_FINISH_ERROR */
	uint64_t t_first_ns, t_last_ns;
	bool cancel; /* asked by HTTP */
	void *priv; /* engine's */
};

/* The first reference is the caller's; submission takes a second. */
struct npd_req *npd_req_new(void);
void npd_req_put(struct npd_req *r);

int npd_engine_start(const struct npd_config *c);
/* Drain (wait for every request to finish), then release the cards. */
void npd_engine_stop(void);
enum npd_state npd_engine_state(void);
const char *npd_engine_model_name(void);
uint32_t npd_engine_max_seq(void);
uint64_t npd_engine_created(void); /* model load time, Unix seconds */
/* Stop accepting; npd_engine_busy() tells when the last one finished. */
void npd_engine_drain(void);
unsigned int npd_engine_busy(void);

/* Text to token ids (the model's tokenizer, BOS first as the model asks;
 * special: control tokens written in the text, as a chat template writes
 * them, become their ids); *ids malloc()ed. -errno with err. */
int npd_engine_tokenize(const char *text, size_t len, bool special,
			int32_t **ids, size_t *n, char *err, size_t errlen);
/* The text of one token id, NUL-terminated, into buf; the length. */
size_t npd_engine_piece(int32_t id, char *buf, size_t len);
/* Apply the chat template to n messages (role, content pairs). *out
 * malloc()ed. -errno with err naming the problem. */
int npd_engine_chat(const char *const *role, const char *const *content,
		    size_t n, char **out, char *err, size_t errlen);

/*
 * Queue a request. 0, or: -EAGAIN the queue is full (429), -E2BIG the
 * prompt plus max_tokens does not fit the context (400), -ESHUTDOWN
 * draining or not ready (503). err names the problem.
 */
int npd_engine_submit(struct npd_req *r, char *err, size_t errlen);
/* The client went away: end the request within one frame. */
void npd_engine_cancel(struct npd_req *r);
/* Gauges: queue depth, slots, cards. */
void npd_engine_metrics(struct npd_buf *o);
/* GET /v1/np/cards: every card of the context as nptool status shows it
 * (state, telemetry and use registers under nptool's field names, the
 * pipeline's busy time per card), with npd's pid, devices and model, so
 * nptool in another process can show the cards npd holds (emulated ones
 * exist only inside npd). 0 or -ENOMEM. */
int npd_engine_cards(struct npd_buf *o);

#endif /* NPD_ENGINE_H */
