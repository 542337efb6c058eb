/* SPDX-License-Identifier: MIT */
/*
 * What the files of the pipeline share: the pipeline and its stages (one
 * per card), a session run's state, and the functions each file offers
 * the others.
 *
 *   pipe_load.c     creation: the compiled model onto the cards, reload
 *   pipe_cache.c    np_model_load's image cache; rendering on every core
 *   pipe_queue.c    the cards' compute queues: layer jobs per frame
 *   pipe_session.c  sessions: frames posted, waited for, the token loop
 *   pipe_sample.c   candidates merged over the output cards, sampling
 *   pipe_stats.c    session statistics: phases, hops, utilization
 *   pipe_sched.c    the scheduler (np/sched.h): submit, cancel, the loop
 *   pipe_req.c      a scheduler request: checks, copy, tokens, text, end
 *
 * Card roles (np_compile's order): layer cards 0..L-1, then output cards
 * L..L+O-1. Every card has S input slots and S output slots in its frame
 * buffer; frame k (counted over the pipeline's life) uses slot k % S on
 * every card. Mailbox events per card, as offsets from the values read at
 * creation (counters are wrap-around, targets are base + count):
 *
 *   EV_DATA    frames that arrived in an input slot
 *   EV_DONE    layer jobs completed (the input slot is free again)
 *   EV_SENT    output slots drained (forwarded, or read by the host)
 *   EV_CREDIT+j  input slots consumer j freed (its layer job finished)
 *
 * Frame k, slot s = k % S, w = k - S + 1 (the count that frees slot s):
 *   host    H2C embeddings -> card 0 in[s]   wait DONE >= w, signal DATA
 *   card i  job NOP                          wait SENT >= w  (out[s] free)
 *           job LAYER in[s] -> out[s]        wait DATA >= k+1, signal DONE,
 *                                            notify producer CREDIT+j
 *   layer   FENCE per consumer j             wait CREDIT+j >= w
 *           C2P out[s] -> consumer in[s]     wait DONE >= k+1, notify its
 *                                            DATA; the last signals SENT
 *   output  C2H out[s] -> host (top-k)       wait DONE >= k+1, signal SENT
 *
 * so the host posts descriptors ahead and only touches the first card's
 * input and the output cards' results. Host I/O uses DMA engine 0,
 * card-to-card forwarding engine 1, so neither blocks the other.
 */
#ifndef NP_PIPE_H
#define NP_PIPE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "internal.h"
#include "np/pipeline.h"
#include "np/sched.h"
#include "np_prog.h"
#include "recover.h"

/* frame buffer slots per direction: as many as fit, up to NPI_MAX_SLOTS.
 * More than two let frames queue at a card while it computes, so the
 * emulated card runs several of them in one pass over its weights. */
#define NPI_MAX_SLOTS 8u
#define NPI_MIN_SLOTS 2u
#define NPI_CQ_ENTRIES 256u
#define NPI_CQ_AHEAD 8u /* frames of compute jobs per doorbell */
#define NPI_MAX_OUT 5u
_Static_assert(2 * NPI_MAX_OUT <= NPI_XFER_BATCH, "a card's forwards");
#define NPI_CALIB_TOKENS 64u
#define NPI_LOAD_CORES 32u /* cores per image transfer batch */
#define NPI_POLL_MS 20 /* progress and failure checks while waiting */
/* a compute queue or DMA engine is hung after NPI_HANG_FACTOR times its
 * longest job (at least NPI_HANG_MIN_MS, which leaves room for a host too
 * busy to run the emulated cards' threads; at most the context timeout) */
#define NPI_HANG_FACTOR 16
#define NPI_HANG_MIN_MS 500

/* What npi_cq_watch knows of one queue: the completed count last seen,
 * since when it runs one job (0: idle or waiting for an event), the
 * longest job measured. */
struct npi_hang {
	uint32_t done;
	uint64_t busy_since, job_max_ns;
};
#define NPI_SAMPLE_NS 1000000ull /* utilization samples at most this often */
#define NPI_PHASE_SAMPLE_BITS 3 /* 1 in 2^3 token loop iterations timed */

enum {
	EV_DATA = 0,
	EV_DONE = 1,
	EV_SENT = 2,
	EV_CREDIT = 3, /* .. EV_CREDIT + NPI_MAX_OUT - 1 */
	EV_COUNT = EV_CREDIT + NPI_MAX_OUT,
};

struct npi_stage {
	struct np_card *card;
	const struct np_card_plan *plan;
	unsigned int fwd_engine; /* 1, or 0 on a single-engine card */
	uint32_t ev[EV_COUNT]; /* counter values at creation */
	/* compute queue: descriptors (struct np_job_desc), and the frames
	 * whose jobs are in the ring */
	struct npi_ring cq;
	uint32_t cq_frames;
	/* hang detection (npi_cq_watch) of the compute queue and of the
	 * card's DMA engines; hung_engine: the DMA engine found hung, or -1
	 * (hung alone: the compute queue) */
	struct npi_hang cq_hang, dma_hang[NP_MAX_DMA_ENGINES];
	bool hung;
	int hung_engine;
	/* role */
	uint32_t producer; /* stage feeding this one (stage 0: none) */
	uint32_t consumer_idx; /* this stage's j at its producer */
	struct npi_weights_sum sum; /* of the image loaded (recover.c) */
};

struct np_pipeline {
	struct np_ctx *ctx;
	/* owned by np_model_load, NULL for np_pipeline_create */
	struct np_gguf *gguf;
	struct np_model *model;
	struct np_tok *tok;
	struct np_quant_calib *calib;
	struct np_compiled *owned;
	const struct np_compiled *c;
	struct npi_cache *cache; /* the card images, np_model_load only */

	uint32_t n_stages, n_layer, n_out;
	struct npi_stage st[NP_MAX_CARDS];
	uint32_t dim, vocab, batch, max_seq, frame_tokens;
	uint32_t max_slice; /* most vocabulary rows of one output card */
	uint64_t frame_max; /* bytes of a full frame */
	uint64_t in_off, in_size, out_off, out_size; /* FB layout */
	uint32_t slots; /* per direction; frame k uses slot k % slots */
	uint32_t frames; /* frames submitted so far (k of the next one) */
	int broken;
	bool sched; /* a scheduler (np_session_run's too) drives it */
	/* A pipeline that spans hosts (cluster.c, member.c, docs/cluster.md).
	 * A member's segment: compiled cards first..first+seg_cards-1 on its
	 * cards 0.. (seg_cards 0: the whole model). The head: cl set, no
	 * local stages (n_stages 0; st[].plan filled for the layout). */
	uint32_t first, seg_cards;
	struct npi_cluster *cl;
	const struct npi_cluster_ops *cl_ops;
};

/*
 * pipe_cache.c: np_model_load's image cache. init computes the key (the
 * model file is hashed) and the entry's path; lookup maps and verifies the
 * entry (1: hit, 0: miss, a bad entry logged and removed); calib takes the
 * calibration from a hit, matches checks the entry's cards against the
 * compiled plan (a mismatch is logged, removed and turns into a miss);
 * build renders every card of p->c on up to opts->threads threads into a
 * new entry and writes it to the cache; card gives a card's image:
 * NP_NUM_CORES segments of *stored bytes, and its weights checksum.
 */
struct npi_cache;
int npi_cache_init(struct np_pipeline *p, const char *model,
		   const struct np_pipeline_opts *o,
		   const struct np_compile_opts *co, const char *calib,
		   size_t calib_len, struct npi_cache **out);
int npi_cache_lookup(struct np_pipeline *p, struct npi_cache *k,
		     const struct np_pipeline_opts *o);
int npi_cache_calib(struct np_pipeline *p, struct npi_cache *k,
		    struct np_quant_calib **out);
bool npi_cache_matches(struct np_pipeline *p, struct npi_cache *k,
		       const struct np_compiled *c);
int npi_cache_build(struct np_pipeline *p, struct npi_cache *k,
		    const struct np_pipeline_opts *o);
const uint8_t *npi_cache_card(const struct npi_cache *k, uint32_t i,
			      uint64_t *stored, struct npi_weights_sum *sum);
bool npi_cache_hit(const struct npi_cache *k);
void npi_cache_free(struct npi_cache *k);

/* A request of the scheduler (pipe_sched.c): queued, then in a KV slot. */
struct npi_req {
	uint64_t id;
	struct npi_req *next; /* the queue */
	int32_t *seq; /* prompt, then generated tokens; max_seq */
	uint32_t len; /* tokens in seq */
	uint32_t fed; /* tokens of seq sent to the cards */
	uint32_t fed_hw; /* most tokens ever fed (a replay feeds again) */
	uint32_t n_prompt, max_tokens, logprobs;
	struct np_sampling sampling;
	uint64_t rng;
	int32_t *stop; /* stop token ids */
	uint32_t n_stop;
	char **stop_str; /* stop strings, NUL-terminated */
	uint32_t n_stop_str;
	np_sched_fn cb;
	void *opaque;
	uint32_t slot, mb; /* with a slot */
	int cancel; /* atomic: np_sched_cancel was called */
	enum np_stop_reason end; /* why it ended, once it did */
	/* text generated but not released yet (sched_text.c) */
	char *pend;
	size_t n_pend, cap_pend;
	struct np_sched_req_stats st;
};

struct npi_frame {
	uint32_t k, m, n;
	struct npi_req **req; /* per row: request */
	uint8_t *sample; /* per row: its output picks the next token */
	struct np_xfer **x;
	uint32_t nx;
};

/* Statistics registers of a stage's forwarding engine (np_abi.h) */
struct npi_fwd_stats {
	uint32_t fence_waits, work_done;
	uint64_t fence_ns, work_ns;
};

enum npi_phase {
	NPI_SUBMIT,
	NPI_WAIT,
	NPI_SAMPLE,
	NPI_PHASES,
};

struct npi_run {
	struct np_pipeline *p;
	uint64_t removed_at; /* last look for removed cards */
	bool full_logits;
	uint32_t prefill_budget; /* prompt tokens per frame */
	/* requests in KV slots in the order they got them; n of them */
	struct npi_req **live;
	uint32_t n_live;
	uint32_t slots, m, cand;
	uint32_t *mb_load; /* requests per micro-batch */
	bool *in_flight_mb; /* the micro-batch has a frame in flight */
	bool *slot_used; /* slots entries */
	struct np_buf *host;
	uint64_t host_slot, out_at[NPI_MAX_OUT]; /* offsets in a host slot */
	struct npi_frame *fr; /* one per micro-batch */
	uint32_t *fifo, head, count; /* micro-batches in flight, in order */
	int32_t *logits; /* full_logits: vocab */
	int32_t *cv; /* candidates */
	uint32_t *ci;
	uint64_t t0;
	/* statistics */
	uint64_t busy_t, in_flight_t, in_flight_acc;
	uint32_t in_flight;
	uint64_t busy_ns[NP_MAX_CARDS];
	struct npi_fwd_stats fwd0[NP_MAX_CARDS]; /* at the start of the run */
	uint64_t frames, prompt_tokens, tokens;
	/* host CPU time of the token loop's parts (enum npi_phase) and their
	 * register access counts over the timed iterations (timing: this one
	 * is), the token callback's CPU time (all, in timed iterations) */
	uint64_t cpu[NPI_PHASES];
	struct npi_reg_acct reg[NPI_PHASES];
	uint64_t loops, timed_loops;
	bool timing;
	uint64_t cpu_callback, cpu_callback_timed;
	/* the last npi_phase_end() */
	uint64_t cpu_t;
	struct npi_reg_acct reg_t;
};

/* The scheduler (np/sched.h). mu guards the queue, the slot table's
 * membership (live, slot_used), the ids and pub; the rest is the
 * np_sched_run thread's. */
struct np_sched {
	struct npi_run R;
	pthread_mutex_t mu;
	int efd; /* eventfd: wakes np_sched_run */
	struct npi_req *q_head, *q_tail; /* waiting for a slot */
	uint32_t n_queued, max_queue;
	uint64_t next_id;
	int stop, drain, running; /* atomics */
	uint32_t max_rec, rec_row; /* recoveries allowed, done in a row */
	void (*on_recover)(void *opaque, const struct np_recover_event *ev);
	void *recover_opaque;
	uint64_t last_token_ns;
	int failed; /* the failure that ended the scheduler, or 0 */
	bool text; /* events carry text (a tokenizer, not np_session_run) */
	struct np_sched_stats pub; /* counters and gauges (no card array) */
	uint64_t busy_pub[NP_MAX_CARDS];
	/* scratch of the event being delivered (pipe_req.c) */
	char *txt;
	size_t cap_txt;
	float *lp_val;
	uint32_t *lp_id;
};

static inline uint64_t npi_align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

/* Count c as an event target of stage st. */
static inline uint32_t npi_ev(const struct npi_stage *st, unsigned int e,
			      uint32_t c)
{
	return st->ev[e] + c;
}

/* Where a frame comes from and its results go (npi_post_frame). */
struct npi_post {
	struct np_buf *in, *out;
	uint64_t in_off, out_at[NPI_MAX_OUT];
	bool full_logits;
	uint32_t cand;
};

/* pipe_session.c: frames */
int npi_post_frame(struct np_pipeline *p, uint32_t k, uint32_t n, uint32_t len,
		   const struct npi_post *io, struct np_xfer **x, uint32_t *nx);
int npi_run_alloc(struct npi_run *R);
void npi_run_free(struct npi_run *R);
/* Build and post the next frame of micro-batch m; 0 if it has nothing to
 * send, 1 if posted (in the FIFO), or -errno. */
int npi_submit(struct npi_run *R, uint32_t m);
/* Wait for the oldest frame in flight, take it off the FIFO; NULL
 * if none. *ret: 0 or the failure. */
struct npi_frame *npi_finish_next(struct npi_run *R, int *ret);
/* Drop every frame in flight after a failure: host I/O cancelled. */
void npi_abort_frames(struct npi_run *R);

/* pipe_req.c: a request's life in the scheduler */
int npi_req_new(struct np_sched *s, const struct np_sched_req *r,
		struct npi_req **out);
void npi_req_free(struct npi_req *q);
/* Deliver the token sampled for q in row i of frame f: stop tokens,
 * limits, text and stop strings, logprobs, the callback. True if it
 * ended q (its end event delivered). */
bool npi_req_token(struct np_sched *s, struct npi_req *q,
		   const struct npi_frame *f, uint32_t i);
enum np_finish npi_finish_of(enum np_stop_reason why);
/* End q without a token (cancelled, failed): its end event. */
void npi_req_end(struct np_sched *s, struct npi_req *q, enum np_stop_reason why,
		 int error);

/* recover.c: after a failed frame (err), find the failed card, log, move
 * removed cards' images to spares, reset, reload and verify every card;
 * ev gets attempt..spare and recover_ns. 0, or why it could not. */
int npi_recover(struct np_pipeline *p, int err, uint32_t attempt, uint32_t max,
		uint32_t requests, struct np_recover_event *ev);

/* cluster.c: the head's side of post_frame, finish, abort, recover and
 * destroy for a pipeline whose cards are on other hosts (p->cl). Through
 * a table, so that what does not load a cluster links no transport. */
struct npi_cluster_ops {
	int (*post)(struct npi_run *R, struct npi_frame *f, uint32_t len);
	int (*finish)(struct npi_run *R, struct npi_frame *f);
	void (*abort)(struct npi_run *R);
	int (*recover)(struct np_pipeline *p, int err, uint32_t attempt,
		       uint32_t max, uint32_t requests,
		       struct np_recover_event *ev);
	void (*destroy)(struct np_pipeline *p);
	/* the scheduler is idle: heartbeats, failures noticed; the ms until
	 * the next call */
	int (*idle)(struct np_pipeline *p);
};

/* pipe_load.c: dim, batch, max_seq from card first's program */
int npi_read_shape(struct np_pipeline *p);
/* pipe_load.c: a member's segment of c on the context's first cards */
int npi_segment_create(struct np_ctx *ctx, const struct np_compiled *c,
		       uint32_t first, uint32_t count, uint32_t frame_tokens,
		       struct np_pipeline **out);

/* pipe_queue.c */
int npi_cq_start(struct np_pipeline *p, struct npi_stage *st);
void npi_cq_stop(struct np_pipeline *p, struct npi_stage *st);
/* The queue stopped: say where and why (-EIO); 0 if it did not. */
int npi_cq_check(struct np_pipeline *p, struct npi_stage *st);
/* Per compute queue: one that runs a job (busy, not waiting for input)
 * far longer than its jobs take is hung: logged naming the card and
 * queue, marked (recover.c names it), -ETIMEDOUT. 0 otherwise. Called
 * every NPI_POLL_MS while waiting. */
int npi_cq_watch(struct np_pipeline *p, uint64_t now);
int npi_cq_post_frames(struct np_pipeline *p, uint32_t i, uint32_t k);

/* pipe_sample.c */
int32_t npi_sample(const struct np_sampling *sp, uint64_t *rng,
		   const int32_t *v, const uint32_t *id, uint32_t n,
		   double scale);
uint32_t npi_candidates(struct npi_run *R, const struct npi_frame *f,
			uint32_t i);

/* pipe_stats.c */
void npi_phase_begin(struct npi_run *R);
void npi_phase_end(struct npi_run *R, enum npi_phase ph);
void npi_fwd_start(struct npi_run *R);
void npi_busy_sample(struct npi_run *R);
void npi_in_flight(struct npi_run *R, int delta);
/* The run's statistics but req[], before its buffers are freed (ret: its
 * result). */
void npi_stats_run(struct npi_run *R, struct np_session_stats *stats, int ret);
/* The host's share, after they are: CPU time and register accesses since
 * cpu0 and reg0 (the start of np_session_run). */
void npi_stats_host(const struct npi_run *R, struct np_session_stats *stats,
		    uint64_t cpu0, const struct npi_reg_acct *reg0);

#endif /* NP_PIPE_H */
