/* SPDX-License-Identifier: MIT */
/*
 * libnp scheduler: continuous batching over a loaded pipeline. Requests
 * join and leave at any frame: a request submitted from any thread gets a
 * free KV slot and a micro-batch, its prompt is prefilled in chunks inside
 * the frames that carry the other requests' decode tokens (under a
 * per-frame prefill budget), its tokens stream through its own callback,
 * and it can be cancelled at any time, its slot going to the next request.
 *
 *   np_sched_create()   a scheduler over a pipeline (np/pipeline.h)
 *   np_sched_submit()   a request, from any thread; -EAGAIN when the
 *                       queue is full
 *   np_sched_cancel()   a request, from any thread or its callback
 *   np_sched_run()      the frame loop, on the caller's thread, until
 *                       np_sched_stop() or, after np_sched_drain(), until
 *                       no request is left
 *   np_sched_stats()    queue depth, slots, tokens, per-card busy time
 *
 * libnp runs no threads of its own: the caller gives np_sched_run a
 * thread. Submissions wake it (an eventfd; np_sched_fd). Callbacks run on
 * the np_sched_run thread, with no lock held. docs/pipeline.md, "The
 * scheduler", has the policy.
 *
 * The library never prints; every function that can fail returns 0 or a
 * negative errno.
 */
#ifndef NP_SCHED_H
#define NP_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "np/pipeline.h"
#include "np/recover.h"

#ifdef __cplusplus
extern "C" {
#endif

struct np_sched;

/* How a request ended, coarsely (the OpenAI finish_reason); the event's
 * np_stop_reason says exactly why. */
enum np_finish {
	NP_FINISH_NONE = 0, /* more events follow */
	NP_FINISH_STOP = 1, /* a stop token or stop string */
	NP_FINISH_LENGTH = 2, /* max_tokens, or the context (max_seq) */
	NP_FINISH_CANCELLED = 3, /* np_sched_cancel, the callback, or the
				   * scheduler destroyed with it unfinished */
	NP_FINISH_ERROR = 4, /* a card failure that was not recovered */
};

/* Timing and counts of one request. Times are CLOCK_MONOTONIC ns (as
 * clock_gettime), 0 until they happen. */
struct np_sched_req_stats {
	uint64_t submit_ns; /* np_sched_submit accepted it */
	uint64_t start_ns; /* it got a KV slot (left the queue) */
	uint64_t first_ns; /* its first generated token: TTFT = first_ns -
			     * submit_ns */
	uint64_t last_ns; /* its last generated token */
	uint32_t prompt_tokens;
	uint32_t tokens; /* generated */
	uint32_t replayed; /* tokens prefilled again by recoveries */
	uint32_t resv32;
	uint64_t resv[4]; /* zeroed: room for new statistics */
};

/* One event of a request: a generated token, or the request's end. */
struct np_sched_event {
	uint64_t id; /* as np_sched_submit returned it */
	void *opaque; /* np_sched_req.opaque */
	/* The token generated, -1 in an end event without one (cancelled,
	 * failed). pos: its position in the sequence (prompt included). */
	int32_t token;
	uint32_t pos;
	/* Text released by this event: the token's text, plus text held
	 * back before, minus text held back now. Text is held while it may
	 * be the start of a stop string or ends in an incomplete UTF-8
	 * sequence; the end event releases what is left, except a matched
	 * stop string and the text of a stop token, which are never
	 * released. NULL with text_len 0 for a pipeline without tokenizer.
	 * Valid during the callback. */
	const char *text;
	size_t text_len;
	enum np_finish finish; /* != NONE: the request's last event */
	enum np_stop_reason stop; /* why, with finish != NONE */
	int error; /* with NP_FINISH_ERROR: the failure's -errno */
	/* The candidates the token was drawn from, as np_token_event. */
	uint32_t n_cand;
	const int32_t *cand_logit;
	const uint32_t *cand_id;
	/* With np_sched_opts.full_logits: all vocab logits, else NULL. */
	const int32_t *logits;
	/*
	 * With np_sched_req.logprobs > 0: the natural log-probability of
	 * the token, and of the n_logprobs most likely candidates (id,
	 * logprob, most likely first), under the model's distribution at
	 * temperature 1 normalised over the n_cand candidates the output
	 * cards returned (the mass outside them is not known). Else 0/NULL.
	 */
	float logprob;
	uint32_t n_logprobs;
	const uint32_t *logprob_id;
	const float *logprob_val;
	uint64_t t_ns; /* CLOCK_MONOTONIC ns of the event */
	/* With finish != NONE: the request's statistics, else NULL. */
	const struct np_sched_req_stats *stats;
};

/*
 * A request's callback, on the np_sched_run thread (np_sched_destroy's
 * for requests it ends). Every accepted request gets exactly one event
 * with finish != NP_FINISH_NONE, its last. Returning non-zero from a
 * token event ends the request (NP_STOP_CALLER, NP_FINISH_CANCELLED):
 * its end event follows at once. The callback may call np_sched_submit,
 * np_sched_cancel and np_sched_stats.
 */
typedef int (*np_sched_fn)(void *opaque, const struct np_sched_event *ev);

struct np_sched_req {
	const int32_t *prompt; /* 1 .. max_seq - 1 tokens, copied */
	size_t n_prompt;
	/* tokens to generate, 0: until a stop or the context (max_seq);
	 * more than the context holds ends with NP_STOP_LENGTH */
	uint32_t max_tokens;
	struct np_sampling sampling;
	const int32_t *stop; /* stop token ids, copied */
	size_t n_stop;
	/* Stop strings, matched on the detokenized output across token
	 * boundaries (pipelines with a tokenizer); copied. Each 1 ..
	 * NP_SCHED_STOP_MAX bytes, at most NP_SCHED_STOPS of them. */
	const char *const *stop_str;
	size_t n_stop_str;
	uint32_t logprobs; /* top candidates' logprobs per token, 0: none,
			     * at most the candidates */
	np_sched_fn on_event; /* NULL: none (np_sched_stats only) */
	void *opaque;
	uint64_t resv[4]; /* must be zero: room for new parameters */
};
#define NP_SCHED_STOPS 16u
#define NP_SCHED_STOP_MAX 256u
#define NP_SCHED_DEFAULT_QUEUE 256u

struct np_sched_opts {
	/* KV slots requests may hold at once, 1 .. np_pipeline_max_sessions;
	 * 0: all */
	uint32_t slots;
	/* micro-batches (frames in flight), 1 .. slots; 0: min(slots,
	 * NP_DEFAULT_MICRO_BATCHES). A request joins the micro-batch with
	 * the fewest requests. */
	uint32_t micro_batches;
	/* requests that may wait for a slot; one more gets -EAGAIN. 0:
	 * NP_SCHED_DEFAULT_QUEUE */
	uint32_t max_queue;
	/* prompt tokens a frame carries beyond one per request (that one
	 * keeps every request moving; a decoding request's token is it),
	 * over the frame's requests in the order they arrived; 0: the frame
	 * size, no limit */
	uint32_t prefill_budget;
	uint32_t candidates; /* as np_session_opts */
	int full_logits; /* as np_session_opts (tests) */
	/* Card failures recovered in a row (no token delivered between) as
	 * np_session_run_recover does; 0: none, a failure ends every request
	 * with NP_FINISH_ERROR and np_sched_run with the error. */
	uint32_t max_recoveries;
	void (*on_recover)(void *opaque, const struct np_recover_event *ev);
	void *recover_opaque;
	uint64_t resv[4]; /* must be zero: room for new options */
};

/* What the scheduler is doing (np_sched_stats.state). */
enum np_sched_state {
	NP_SCHED_IDLE = 0, /* np_sched_run not running */
	NP_SCHED_RUNNING = 1,
	NP_SCHED_RECOVERING = 2, /* resetting and reloading the cards */
	NP_SCHED_DRAINING = 3, /* np_sched_drain: submissions refused */
	NP_SCHED_FAILED = 4, /* a failure ended the run; destroy it */
};

/*
 * A snapshot for a /metrics endpoint. Counters count from np_sched_create
 * and never go down; gauges are the current value.
 */
struct np_sched_stats {
	enum np_sched_state state;
	uint32_t slots; /* KV slots the scheduler uses */
	uint32_t slots_used; /* gauge: requests holding a slot */
	uint32_t queued; /* gauge: requests waiting for a slot */
	uint64_t submitted; /* accepted by np_sched_submit */
	uint64_t rejected; /* np_sched_submit's -EAGAIN (queue full) */
	uint64_t finished[5]; /* ended, by enum np_finish (0 unused) */
	uint64_t prompt_tokens; /* prompt tokens prefilled (replays not) */
	uint64_t tokens; /* generated */
	uint64_t frames; /* frames pushed through the pipeline */
	uint64_t recoveries; /* card failures recovered */
	uint64_t wall_ns; /* since np_sched_create */
	/* Caller's array of n_card entries, or NULL: per pipeline card,
	 * the time it had a frame to compute (np_card_stats.busy), in ns
	 * since np_sched_create; busy % = busy_ns / wall_ns. */
	uint64_t *card_busy_ns;
	uint32_t n_card;
	uint32_t resv32;
	uint64_t resv[8]; /* zeroed: room for new statistics */
};

/*
 * A scheduler over p; opts may be NULL. One scheduler per pipeline at a
 * time: np_session_run on p fails with -EBUSY while it exists.
 * Returns 0, or -EINVAL (p or out NULL, options out of range, resv not
 * zero: logged), -EBUSY (p has a scheduler), -EIO (p failed earlier),
 * -ENOMEM, -EMFILE (eventfd).
 */
int np_sched_create(struct np_pipeline *p, const struct np_sched_opts *opts,
		    struct np_sched **out);

/*
 * Free s, after np_sched_run returned (or was never called): requests
 * still queued or running get their end event (NP_FINISH_CANCELLED) on
 * this thread first. NULL is fine.
 */
void np_sched_destroy(struct np_sched *s);

/*
 * Submit a request; thread-safe. *id (may be NULL) names it for
 * np_sched_cancel and its events; ids are never reused.
 * Returns 0, or:
 *   -EINVAL     a prompt empty or with an id outside the vocabulary, a
 *               stop string empty or too long, logprobs above the
 *               candidates, resv not zero (logged)
 *   -ERANGE     the prompt does not fit the context (max_seq - 1)
 *   -EAGAIN     every slot is taken and max_queue requests wait: retry
 *               later (HTTP 429)
 *   -ESHUTDOWN  np_sched_drain or np_sched_stop was called, or the
 *               scheduler failed
 *   -ENOMEM
 */
int np_sched_submit(struct np_sched *s, const struct np_sched_req *req,
		    uint64_t *id);

/*
 * Cancel request id; thread-safe, also from its own callback. No token
 * event of it starts after this returns (one whose callback is running
 * already finishes); its end event (NP_STOP_CANCELLED) comes on the
 * np_sched_run thread within one frame, and its slot is free for the next
 * request then.
 * Returns 0, or -ENOENT (no such request, or it already ended).
 */
int np_sched_cancel(struct np_sched *s, uint64_t id);

/*
 * The frame loop: admits queued requests to free slots, builds and posts
 * frames, waits for the cards and delivers tokens, on the calling thread,
 * until np_sched_stop (requests in flight stay: a later np_sched_run goes
 * on) or, after np_sched_drain, until every request ended. One thread at
 * a time.
 * Returns 0, or the card failure that ended it (-EIO, -ETIMEDOUT,
 * -ENODEV...; every request got NP_FINISH_ERROR and the scheduler is
 * failed: destroy it, then the pipeline), -EBUSY (already running).
 */
int np_sched_run(struct np_sched *s);

/* Make np_sched_run return after the frame it is on. Thread- and
 * async-signal-safe. */
void np_sched_stop(struct np_sched *s);

/* Refuse new submissions (-ESHUTDOWN) and make np_sched_run return once
 * every request accepted so far ended. Thread- and async-signal-safe. */
void np_sched_drain(struct np_sched *s);

/* A file descriptor that becomes readable when a submission, cancel, stop
 * or drain wants np_sched_run's attention (an eventfd; do not read it). */
int np_sched_fd(const struct np_sched *s);

/* A snapshot of the statistics; thread-safe, also from a callback.
 * st->card_busy_ns and n_card are the caller's and kept; the library
 * fills the rest, resv zeroed. Returns 0, or -EINVAL (s or st NULL). */
int np_sched_stats(struct np_sched *s, struct np_sched_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* NP_SCHED_H */
