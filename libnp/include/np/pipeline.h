/* SPDX-License-Identifier: MIT */
/*
 * libnp pipeline: a language model resident on a set of cards, and
 * sessions of concurrent requests pipelined through them (GPipe).
 *
 *   np_model_load()        GGUF -> compiled card images -> every card's
 *                          SRAM (weights and KV cache), once
 *   np_pipeline_create()   the same from an already compiled model
 *   np_session_run()       N requests in M micro-batches: prefill, then
 *                          one token per request and step, streamed
 *
 * One card per group of layers and one or more output cards, in the order
 * the compiler mapped them (np_compile). Per frame of tokens, the host
 * writes the embeddings into the first card's frame buffer; every card runs
 * an NP_JOB_OP_LAYER job when its input slot fills, its DMA engine forwards
 * the result into the next card's frame buffer and rings its mailbox, and
 * slot credits flow back the same way; the output cards return the top-k
 * (logit, token) pairs of their vocabulary slice, which the host merges and
 * samples from. No host CPU touches a frame between the first card and the
 * output cards. docs/pipeline.md has the protocol.
 *
 * The library never prints: messages go to the context's log callback.
 * Every function that can fail returns 0 or a negative errno.
 *
 * Threading: a pipeline is used by one thread at a time; the token
 * callback runs on the thread that called np_session_run. For requests
 * that join and leave while others run, submitted from any thread, see
 * np/sched.h (np_session_run is a batch over it).
 */
#ifndef NP_PIPELINE_H
#define NP_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "np/model.h"
#include "np/np.h"

#ifdef __cplusplus
extern "C" {
#endif

struct np_pipeline;

/*
 * Progress of np_model_load: stage, then done of total units, reported on
 * the calling thread, stages in increasing order (a cache hit skips
 * CALIBRATE, COMPILE and CACHE_WRITE; a miss skips or cuts short
 * CACHE_VERIFY).
 */
enum np_load_stage {
	NP_LOAD_MODEL = 1, /* GGUF parsed, tokenizer read, file hashed (0/1,
			    * 1/1) */
	NP_LOAD_CACHE_VERIFY = 2, /* cached images checksummed: bytes */
	NP_LOAD_CALIBRATE = 3, /* activation scales chosen (0/1, 1/1) */
	NP_LOAD_COMPILE = 4, /* card images rendered: cards done of total */
	NP_LOAD_CACHE_WRITE = 5, /* new cache entry written: bytes */
	NP_LOAD_CARDS = 6, /* card images written to the cards: bytes */
};
typedef void (*np_progress_fn)(void *opaque, enum np_load_stage stage,
			       uint64_t done, uint64_t total);

struct np_pipeline_opts {
	uint32_t n_cards; /* cards of the context to use, 0: all */
	uint32_t out_cards; /* output cards, 0: 2 when 3 or more cards, else
			      * as few as fit */
	uint32_t max_sessions; /* requests per session run (N), 0:
				 * NP_DEFAULT_SESSIONS */
	uint32_t max_seq; /* tokens per request (prompt + output), 0:
			    * NP_DEFAULT_LOAD_MAX_SEQ */
	uint32_t frame_tokens; /* most tokens in one frame (prefill chunks),
				 * 0: NP_DEFAULT_FRAME_TOKENS */
	/* Calibration text for the activation scales; NULL: unit-RMS
	 * defaults (np_quant_calib_default). np_model_load only. */
	const char *calib_text;
	size_t calib_len;
	np_progress_fn progress; /* NULL: none */
	void *progress_opaque;
	/* the cards' arithmetic (np_model_load only): enum np_precision
	 * (np/model.h), 0: NP_DEFAULT_PRECISION; layer_precision overrides
	 * it per layer, np_precision_layers' syntax ("0-1:w8a8"), NULL:
	 * none */
	const char *layer_precision;
	/*
	 * Compiled image cache of np_model_load (docs/pipeline.md, "Image
	 * cache"): the directory; NULL: $NP_CACHE_DIR, else
	 * /var/cache/np/images for root, $XDG_CACHE_HOME/np/images or
	 * ~/.cache/np/images for others (made if missing). The directory
	 * "off" or "" (or NP_LOAD_NO_CACHE) compiles every time.
	 */
	const char *cache_dir;
	uint32_t precision;
	uint32_t flags; /* NP_LOAD_* */
	/* threads rendering card images on a cache miss, 0: online CPUs */
	uint32_t threads;
	uint32_t resv0; /* must be zero */
	uint64_t resv[2]; /* must be zero: room for new options */
};
#define NP_LOAD_NO_CACHE (1u << 0) /* neither read nor write the cache */

/*
 * Load the llama GGUF at path onto the cards of ctx: parse, calibrate,
 * compile, render each card's image and DMA it into the card's SRAM; then
 * program the compute queues. The rendered images and the calibration are
 * kept in the image cache, keyed by the file's contents, the compile
 * options, the card count and the program, ABI and library versions; a
 * later load of the same key maps them, verifies their checksums and
 * skips calibration and rendering. An entry that fails its checks is
 * logged (file and what is wrong) and rebuilt; a cache that cannot be
 * written is logged and the load goes on without it. opts may be NULL. The context must outlive
 * the pipeline and no other user may drive its cards' compute queues,
 * DMA engines 0 and 1 or mailbox events 0..7 while it exists.
 * Returns 0, or:
 *   -ENOENT/-EACCES ...  opening path
 *   -EINVAL   a malformed file or options (logged: which and why)
 *   -ENOTSUP  not a llama model, or an unsupported tensor type
 *   -E2BIG    the model does not fit the cards (logged: budget and need)
 *   -ENODEV   fewer than 2 cards
 *   -ENOMEM, or a transfer's error while loading (-EFAULT, -ETIMEDOUT...)
 */
int np_model_load(struct np_ctx *ctx, const char *path,
		  const struct np_pipeline_opts *opts,
		  struct np_pipeline **out);

/*
 * The same for a model compiled by the caller (np_compile; its card count
 * and session count apply, opts->n_cards, out_cards, max_sessions, max_seq
 * and calib_* are ignored). c must outlive the pipeline. There is no
 * tokenizer: np_pipeline_tok() returns NULL.
 */
int np_pipeline_create(struct np_ctx *ctx, const struct np_compiled *c,
		       const struct np_pipeline_opts *opts,
		       struct np_pipeline **out);

/*
 * The image cache (docs/pipeline.md, "Loading, and the image cache"). dir
 * follows np_pipeline_opts.cache_dir's rules (NULL: $NP_CACHE_DIR, else the
 * default). np_model_load keeps the cache at most $NP_CACHE_MAX bytes
 * (K, M and G suffixes; default 16 GiB), removing the least recently used
 * entries after writing one.
 *
 * np_cache_dir: the directory into buf; -ENOENT when the cache is off,
 * -ENAMETOOLONG.
 * np_cache_list: fn for each entry, in no order (the header read, the
 * data not checked); fn's nonzero return ends the walk and is returned.
 * Returns 0, -ENOENT (no cache, no directory) or -errno of opendir().
 * np_cache_trim: removes the least recently used entries until at most
 * keep_bytes remain (0: all), *removed (may be NULL) of them; 0, -ENOENT,
 * or the first -errno of unlink().
 */
struct np_cache_entry {
	const char *path;
	uint64_t size; /* bytes */
	int64_t mtime; /* last written or used, seconds since the epoch */
	/* from its header, when problem is NULL */
	uint32_t n_cards, batch, max_seq, precision; /* compile options */
	uint64_t model_size; /* bytes of the GGUF it was compiled from */
	const char *problem; /* NULL, or why np_model_load would rebuild it */
	uint64_t resv[4];
};
typedef int (*np_cache_fn)(void *opaque, const struct np_cache_entry *e);
int np_cache_dir(const char *dir, char *buf, size_t len);
int np_cache_list(const char *dir, np_cache_fn fn, void *opaque);
int np_cache_trim(const char *dir, uint64_t keep_bytes, uint32_t *removed);

/* 1 if np_model_load took the card images from the image cache, 0 if it
 * rendered them (or for np_pipeline_create). */
int np_pipeline_cached(const struct np_pipeline *p);

/* Stop the compute queues and free the pipeline. NULL is fine. */
void np_pipeline_destroy(struct np_pipeline *p);

/* Tokenizer of a GGUF-loaded pipeline, NULL for np_pipeline_create. */
const struct np_tok *np_pipeline_tok(const struct np_pipeline *p);
const struct np_compiled *np_pipeline_compiled(const struct np_pipeline *p);
/* Cards the model occupies (layer cards, then output cards). */
uint32_t np_pipeline_cards(const struct np_pipeline *p);
/* Most requests one np_session_run takes (the compiled session count). */
uint32_t np_pipeline_max_sessions(const struct np_pipeline *p);
uint32_t np_pipeline_max_seq(const struct np_pipeline *p);

/* ---------------------------------------------------------------- */
/* Sessions                                                           */

/* Sampling of one request. temperature 0 is greedy (the largest logit,
 * ties to the lower token id); otherwise softmax(logit / temperature)
 * over the top_k candidates (0: all the output cards returned) cut to the
 * smallest set of mass >= top_p (0 or 1: no cut), drawn with a generator
 * seeded with seed: the same seed gives the same tokens. */
struct np_sampling {
	float temperature;
	uint32_t top_k;
	float top_p;
	uint64_t seed;
};

struct np_request {
	const int32_t *prompt; /* >= 1 token, copied during the call */
	size_t n_prompt;
	uint32_t max_tokens; /* tokens to generate, 0: until stop/max_seq */
	const int32_t *stop; /* generation ends after one of these */
	size_t n_stop;
	struct np_sampling sampling;
};

enum np_stop_reason {
	NP_STOP_NONE = 0, /* more tokens follow */
	NP_STOP_TOKEN = 1, /* this token is one of the request's stop tokens */
	NP_STOP_MAX_TOKENS = 2, /* max_tokens reached */
	NP_STOP_LENGTH = 3, /* the request reached max_seq tokens */
	NP_STOP_CALLER = 4, /* the token callback returned non-zero */
	/* np/sched.h only */
	NP_STOP_STRING = 5, /* the text matched a stop string */
	NP_STOP_CANCELLED = 6, /* np_sched_cancel, or np_sched_destroy */
	NP_STOP_ERROR = 7, /* a card failure that was not recovered */
};

/* One generated token, as soon as the output cards produced it. */
struct np_token_event {
	uint32_t request; /* index into the np_session_run array */
	uint32_t pos; /* position of the token in its sequence */
	int32_t token;
	enum np_stop_reason stop;
	/* The candidates the token was chosen from: n_cand (logit, id) pairs,
	 * largest logit first, ties by lower id. Integer logits: multiply by
	 * np_compiled_logit_scale() for real ones. */
	uint32_t n_cand;
	const int32_t *cand_logit;
	const uint32_t *cand_id;
	/* With np_session_opts.full_logits: all vocab logits, else NULL. */
	const int32_t *logits;
	uint64_t t_ns; /* since the start of the run */
};
/* Return 0 to continue the request, non-zero to end it (NP_STOP_CALLER). */
typedef int (*np_token_fn)(void *opaque, const struct np_token_event *ev);

struct np_session_opts {
	uint32_t micro_batches; /* M, 1..n requests; 0: min(n,
				  * NP_DEFAULT_MICRO_BATCHES) */
	uint32_t candidates; /* top-k pairs per token and output card,
			       * 1..NP_JOB_TOPK_MAX; 0: NP_DEFAULT_CANDIDATES */
	int full_logits; /* output cards return every logit (tests) */
	np_token_fn on_token; /* NULL: none */
	void *opaque;
	uint64_t resv[4]; /* must be zero: room for new options */
};

struct np_request_stats {
	uint32_t prompt_tokens;
	uint32_t tokens; /* generated */
	uint64_t first_ns; /* time to the first generated token */
	uint64_t last_ns; /* time of the last one */
	enum np_stop_reason stop;
};

/* One card of the pipeline over a session run (np_session_stats.card). */
struct np_card_stats {
	/* Share of the run the card had a frame to compute (its input
	 * arrived, its layer job not finished), sampled by the host every 1
	 * to 20 ms. */
	double busy;
	/*
	 * For a card that forwards frames to a next card (the layer cards;
	 * zero for the output cards), exact, from the statistics registers
	 * the card keeps for its forwarding DMA engine (docs/hardware.md,
	 * queue statistics), as differences over the run:
	 * hop: one forward of a frame to one consumer (the last layer card
	 * forwards each frame to every output card): the card's time from
	 * fetching the C2P descriptor to its completion, the frame in the
	 * consumer's frame buffer and its data event signalled, not counting
	 * the wait for the layer job; hop_max_ns is the longest of the run.
	 * credit stall: the forwarding engine blocked waiting for a credit
	 * (a free frame buffer slot on the consumer); credit_stall_ns is the
	 * total time it was blocked, 0 iff credit_stalls is 0.
	 * All zero where not measured: a single-engine first card (its one
	 * engine also carries the host's frames) or a card without the
	 * statistics registers (ABI minor 0).
	 */
	uint64_t hop_frames; /* forwards measured */
	uint64_t hop_mean_ns;
	uint64_t hop_max_ns;
	uint64_t credit_stalls;
	uint64_t credit_stall_ns;
	uint64_t resv[4]; /* zeroed: room for new statistics */
};

/*
 * Statistics of one session run. The library fills every field but the
 * two caller arrays (req, card), whose pointers and sizes it keeps; the
 * resv space is zeroed, so fields added there later read 0 for old
 * programs.
 */
struct np_session_stats {
	uint64_t wall_ns;
	uint64_t tokens; /* generated, all requests */
	uint64_t prompt_tokens; /* prefilled, all requests */
	uint64_t frames; /* frames pushed through the pipeline */
	double tokens_per_s; /* generated tokens / wall time */
	double avg_in_flight; /* frames in the pipeline, time average */
	/* Card utilization (np_card_stats.busy), mean of the used cards. */
	double utilization;
	struct np_request_stats *req; /* caller's array of n, or NULL */
	/* Caller's array of n_card entries, or NULL: pipeline card i (0 ..
	 * np_pipeline_cards - 1) goes to card[i] for i < n_card. */
	struct np_card_stats *card;
	uint32_t n_card;
	/*
	 * Host software time: CPU time of the thread that called
	 * np_session_run (CLOCK_THREAD_CPUTIME_ID; libnp runs no threads of
	 * its own, and emulated cards' threads are not counted), without
	 * the token callback and without host_emu_ns. Time asleep waiting
	 * for the cards is not CPU time. host_cpu_ns is the whole call; the
	 * token loop splits into building and posting frames (submit),
	 * waiting for results with the card checks and statistics done
	 * meanwhile (wait), merging the output cards' candidates and
	 * sampling (sample); the parts are timed on one iteration of the
	 * loop in 8 and scaled (the CPU clock is a system call), the whole
	 * on every one.
	 */
	uint64_t host_cpu_ns;
	uint64_t host_submit_ns;
	uint64_t host_wait_ns;
	uint64_t host_sample_ns;
	/*
	 * Card register accesses the call made, and the CPU time the thread
	 * spent in the in-process emulator's side of them (a doorbell wakes
	 * the emulator's workers; a real card does that in hardware),
	 * estimated from one access in 32 timed; 0 over VFIO.
	 */
	uint64_t host_reg_reads;
	uint64_t host_reg_writes;
	uint64_t host_emu_ns;
	uint64_t resv[8]; /* zeroed: room for new statistics */
};

/*
 * Run n requests (1..np_pipeline_max_sessions) to completion: request r
 * uses KV slot r and micro-batch r % M. Each micro-batch has one frame in
 * flight at a time (its next tokens depend on its last output); M
 * micro-batches keep the cards busy (GPipe). Prompts are prefilled in
 * frames of up to frame_tokens tokens. Tokens stream through on_token.
 * stats may be NULL.
 * Returns 0, or:
 *   -EINVAL   n, a prompt, a token id or the options out of range
 *   -ERANGE   a prompt does not fit max_seq
 *   -EBUSY    a scheduler (np/sched.h) drives the pipeline
 *   -EIO      a card stopped a job (logged: card, job, NP_ERR_* and fix)
 *   -ETIMEDOUT  a frame did not come back within the context timeout
 *   other -errno from transfers
 * After an error the pipeline is unusable: destroy it, and reset its cards
 * (np_card_reset) before loading a model onto them again, since jobs and
 * transfers of the failed run may still wait for events on them.
 */
int np_session_run(struct np_pipeline *p, const struct np_request *req,
		   size_t n, const struct np_session_opts *opts,
		   struct np_session_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* NP_PIPELINE_H */
