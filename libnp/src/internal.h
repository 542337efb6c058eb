/* SPDX-License-Identifier: MIT */
/*
 * libnp private structures. Public handles are opaque; their definitions
 * live here only.
 */
#ifndef NP_INTERNAL_H
#define NP_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

#include "np/np.h"
#include "np_abi.h"
#include "backend.h"
#include "ring.h"

#define NPI_IOVA_BASE 0x100000000ull /* above the 32-bit MSI window */
#define NPI_IOVA_LIMIT (1ull << 39) /* VT-d 39-bit address width */
#define NPI_DEFAULT_TIMEOUT_MS 5000
#define NPI_DEFAULT_RING 1024u
#define NPI_HUGE_PAGE (2u * 1024u * 1024u)

struct np_buf {
	struct np_ctx *ctx;
	void *ptr;
	size_t size; /* as requested, page rounded */
	size_t map_size; /* mmap length */
	uint64_t iova;
	struct np_buf *prev, *next; /* ctx->bufs */
};

struct npi_engine {
	struct np_card *card;
	unsigned int idx;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* followers of the thread polling irq_fd */
	bool poller; /* a thread is blocked in poll() on irq_fd */
	/* descriptors (struct np_dma_desc); q.submitted counts them since
	 * the last engine reset */
	struct npi_ring q;
	/* q.wb, for the readers of the record outside the engine code
	 * (recover.c, the fuzz harness) */
	struct np_queue_wb *wb;
	uint32_t completed; /* validated from the writeback record */
	struct np_xfer *head, *tail; /* in flight, submission order */
	int irq_fd;
};

struct np_xfer {
	struct np_ctx *ctx;
	struct npi_engine *eng; /* engine of the current stage */
	struct np_xfer *next;
	uint32_t end; /* engine->submitted after the last descriptor */
	int status; /* -EINPROGRESS, 0 or -errno */
	unsigned int np_err;
	uint64_t err_addr;
	bool orphan; /* freed by the user while in flight */
	/* host-bounce C2C: stage 2 is an H2C on the peer */
	struct np_buf *bounce;
	bool stage2_pending;
	struct np_xfer_spec stage2;
};

struct np_card {
	struct np_ctx *ctx;
	unsigned int index;
	char name[32];
	void *priv; /* backend */
	struct np_card_info info;
	unsigned int num_engines;
	struct npi_engine eng[NP_MAX_DMA_ENGINES];
	int irq_fd[NP_NUM_IRQS];
	/* An interrupt was signalled on irq_fd[v] and not drained yet: the
	 * fd is readable, so the emu backend skips further writes. */
	int irq_pending[NP_NUM_IRQS];
	unsigned int rr; /* next engine, round-robin */
	bool p2p_mapped;
	bool ready; /* engines programmed */
	/* Surprise-removed: gone for good, refuses resets and transfers
	 * (np_card_removed). Set once, never cleared. */
	bool removed;
	/* Engines (bit e for engine e) that stopped with an error since
	 * the card's last reset: the engine itself is restarted at once, so
	 * recovery learns of the error here. Atomic. */
	uint32_t dma_failed;
	/* The failure npi_card_failed found went to the journal; cleared by
	 * a reset, so a failure found again and again is written once. */
	bool failure_journaled;
};

struct np_ctx {
	const struct npi_backend *ops;
	void *priv; /* backend */
	unsigned int flags;
	int timeout_ms;
	unsigned int ring_entries;
	struct np_log log; /* level resolved: never 0 */
	struct np_emu_opts emu; /* zero: the card's defaults */

	unsigned int num_cards;
	struct np_card *cards[NP_MAX_CARDS];
	int epoll_fd;

	pthread_mutex_t lock; /* buffers and the IOVA allocator */
	struct np_buf *bufs;
	struct npi_iova_range *iova_used; /* sorted by start */
	bool mlock_warned;
	bool journal_warned; /* atomic; journal.c */
	uint64_t iommu_faults; /* atomic; emu software IOMMU */
};

struct npi_iova_range {
	uint64_t start, len;
	struct npi_iova_range *next;
};

__attribute__((format(printf, 3, 4))) void
npi_log(const struct np_ctx *ctx, int level, const char *fmt, ...);

/* Public option structs end in reserved space that must be zero, so that
 * fields added there later leave old programs' behaviour alone: true if
 * len bytes at p are zero; else logs "<what>: reserved space is not
 * zero" and returns false. */
bool npi_resv_zero(const struct np_ctx *ctx, const char *what, const void *p,
		   size_t len);

/* Backend open(): append a card, named name; priv is the backend's. */
int npi_card_add(struct np_ctx *ctx, const char *name, void *priv,
		 struct np_card **out);

int npi_iova_alloc(struct np_ctx *ctx, uint64_t len, uint64_t align,
		   uint64_t *iova);
void npi_iova_free(struct np_ctx *ctx, uint64_t iova);

int npi_engine_init(struct np_card *card, unsigned int idx);
int npi_engine_start(struct npi_engine *eng);
void npi_engine_fini(struct npi_engine *eng);
/* Fail every transfer in flight with err (card going away or reset). */
void npi_engine_abort(struct npi_engine *eng, int err);
/* Cancel every queued transfer (-ECANCELED) and restart the engine, so
 * nothing it had queued touches host memory any more. */
void npi_engine_cancel(struct npi_engine *eng);
int npi_engine_process(struct npi_engine *eng);

#define NPI_XFER_BATCH 16u
/*
 * np_xfer_submit for n (<= NPI_XFER_BATCH) transfers on one engine of one
 * card, behind one doorbell: spec[i].engine must be engine, and no C2C
 * may need a host bounce. All are posted or none (out[] NULL). With out
 * NULL nothing tracks them and they raise no interrupt: for transfers the
 * caller learns about otherwise (a failure stops the engine, which
 * npi_card_failed sees).
 */
int npi_xfer_submit_batch(struct np_card *card, unsigned int engine,
			  const struct np_xfer_spec *spec, unsigned int n,
			  struct np_xfer **out);
/*
 * The transfer's status after retiring what its engine completed, without
 * consuming the engine's interrupt or sleeping: 0, -errno, or
 * -EINPROGRESS (a host-bounce C2C: np_xfer_poll).
 */
int npi_xfer_reap(struct np_xfer *x);

uint64_t npi_now_ns(void);
/* CPU time of the calling thread, ns */
uint64_t npi_thread_cpu_ns(void);
/* What reading it adds to an interval it ends, this thread's (min of 8) */
uint64_t npi_thread_cpu_cost(void);

/*
 * Register accesses of the calling thread, for np_session_stats. The
 * in-process emulator runs a card's side of an access (a doorbell wakes
 * the emulator's workers) on the host thread: that is the card's work,
 * so one access in NPI_REG_SAMPLE of each kind is timed with the thread's
 * CPU clock and stands for the others (npi_reg_emu_ns).
 */
#define NPI_REG_SAMPLE 32u
struct npi_reg_acct {
	uint64_t n[2]; /* reads, writes */
	uint64_t timed[2]; /* emulated ones timed */
	uint64_t ns[2]; /* their CPU time */
};
extern __thread struct npi_reg_acct npi_reg_acct
	__attribute__((tls_model("initial-exec")));
/* Emulated register time of the accesses counted in n, at the CPU time
 * per access of each kind that the timed ones of rate took (both are
 * differences of npi_reg_acct snapshots). */
uint64_t npi_reg_emu_ns(const struct npi_reg_acct *rate,
			const struct npi_reg_acct *n);

/* Whether card is gone: removed before, or the backend reports it now
 * (the first caller then marks it removed and fails what it had in
 * flight with -ENODEV). */
bool npi_card_gone(struct np_card *card);
/* Mark card removed for good; fail what it had in flight. */
void npi_card_set_removed(struct np_card *card);

#endif /* NP_INTERNAL_H */
