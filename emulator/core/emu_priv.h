/* SPDX-License-Identifier: MIT */
/*
 * np emulator core: private state shared by the core's translation units.
 *
 * Locking (never held across a bus callback):
 *   emu->lock     global registers, interrupt state, telemetry, reset state
 *   q->lock       one queue's registers and the descriptor in flight
 *   pool lock     the worker pool's run list and queue states (pool.c)
 * Lock order: q->lock before emu->lock; the pool lock is a leaf.
 * Event counters and statistics are atomics so the data path takes no lock
 * beyond q->lock once per descriptor.
 */
#ifndef NP_EMU_PRIV_H
#define NP_EMU_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "np_abi.h"
#include "np_emu.h"

#define NP_EMU_NUM_QUEUES (NP_MAX_DMA_ENGINES + 1u)
#define NP_EMU_COMPUTE_Q NP_MAX_DMA_ENGINES /* index in emu->q[] */

/* Data is moved in chunks of this size so resets and aborts are prompt. */
#define NP_EMU_CHUNK (256u * 1024u)

/* Memory a card keeps from job to job, grown as needed (compute.c). */
struct np_emu_buf {
	void *p;
	size_t cap;
};

/* A layer job's working memory: its arguments, npk's scratch, results. */
enum {
	NP_EMU_JOB_ARGS,
	NP_EMU_JOB_SCRATCH,
	NP_EMU_JOB_RESULT,
	NP_EMU_JOB_MEMS
};

/* Most layer jobs in a row that run in one pass over the weights
 * (compute.c): decode frames queued at a card share the weight reads. */
#define NP_EMU_JOIN 8u

/* After finishing work, a pool worker polls the run list this long before
 * it sleeps, so back-to-back submissions do not pay a thread wake-up. */
#define NP_EMU_POLL_NS 20000u

/* Descriptors a worker runs from one queue before it lets the other ready
 * queues have their turn: 16 finish a compute queue's 8 joined layer jobs
 * (the NOP before each and the outputs computed ahead) in one turn. */
#define NP_EMU_TURN 16u

#define NP_EMU_FW_VERSION (1u << 16 | 0u << 8 | 0u)
#define NP_EMU_PCIE_GEN 3u
#define NP_EMU_PCIE_LANES 8u
#define NP_EMU_TEMP_MAX_MC 95000u
#define NP_EMU_TEMP_CRIT_MC 105000u

/* Descriptors and writeback records are little-endian. */
static inline uint32_t np_emu_le32(uint32_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	return __builtin_bswap32(v);
#else
	return v;
#endif
}

static inline uint64_t np_emu_le64(uint64_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	return __builtin_bswap64(v);
#else
	return v;
#endif
}

static inline void np_emu_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

struct np_emu;

/* A descriptor of either kind, decoded to host byte order. */
struct np_emu_desc {
	uint8_t opcode;
	uint8_t flags;
	uint8_t wait_event;
	uint8_t signal_event;
	uint32_t len;
	uint64_t src; /* DMA src; job prog */
	uint64_t dst; /* DMA dst; job arg */
	uint64_t notify_addr;
	uint32_t notify_data;
	uint32_t wait_value;
	uint64_t user;
	uint64_t out; /* job out */
	bool rsvd_set;
};

/* Why a descriptor in flight gave its worker back (queue.c). */
enum np_emu_park {
	NP_EMU_PARK_NONE,
	NP_EMU_PARK_HANG, /* injected hang: until an abort */
	NP_EMU_PARK_WAIT, /* event wait: until the event, timeout or abort */
	NP_EMU_PARK_DEAD, /* card stopped answering: until an abort */
};

/* The descriptor a queue is executing, kept across a park. */
struct np_emu_flight {
	enum np_emu_park park;
	unsigned int gen;
	uint32_t idx;
	uint32_t next; /* idx + 1 in the ring */
	uint32_t timeout_us;
	uint32_t err;
	uint64_t desc_addr;
	uint64_t wb_addr;
	uint64_t err_addr;
	uint64_t bytes;
	uint64_t deadline_ns; /* PARK_WAIT with a timeout; 0: none */
	uint64_t fetch_ns; /* when the worker took it */
	uint64_t wait_t0_ns; /* when its event wait began */
	uint64_t wait_ns; /* how long it waited for its event */
	struct np_emu_desc d;
};

/* Where a queue is in the worker pool (pool.c), under the pool's lock. */
enum np_emu_sched {
	NP_EMU_SCHED_IDLE, /* no work known */
	NP_EMU_SCHED_QUEUED, /* on the run list */
	NP_EMU_SCHED_RUNNING, /* a worker has it */
	NP_EMU_SCHED_PARKED, /* a descriptor waits; no worker has it */
};

struct np_emu_queue {
	struct np_emu *emu;
	unsigned int index; /* engine number; NP_EMU_COMPUTE_Q for compute */
	unsigned int vector; /* NP_IRQ_* */
	bool compute;
	bool present; /* DMA engine beyond cfg.dma_engines: absent */

	pthread_mutex_t lock;

	/* Registers, under lock. */
	uint64_t ring;
	uint32_t ring_size;
	uint32_t ctrl; /* NP_Q_CTRL_ENABLE */
	uint32_t tail;
	uint32_t head;
	uint32_t error;
	uint32_t err_index;
	uint64_t err_addr;
	uint64_t wb;
	uint32_t completed;
	uint32_t wait_timeout;
	uint64_t bytes;
	uint64_t last_user; /* user of the last completed descriptor */
	uint32_t bytes_hi_latch;
	uint32_t err_addr_hi_latch;
	/* Statistics registers (NP_Q_FENCE_WAITS..), under lock. */
	uint32_t fence_waits, work_waits, work_done, work_max_ns;
	uint64_t fence_ns, work_wait_ns, work_ns;
	/* _HI halves latched by the _LO reads, one per pair, so readers of
	 * different pairs (libnp, the driver's sysfs) do not mix them */
	uint32_t fence_ns_hi_latch, work_wait_ns_hi_latch, work_ns_hi_latch;

	/* Worker state, under lock. */
	bool busy; /* executing a descriptor (STATUS.BUSY) */
	bool waiting; /* blocked on an event (STATUS.WAITING) */
	bool active; /* executing or reporting: a card reset waits */
	bool stop_pending; /* a stop detected by mmio awaits wb + irq */
	bool hold; /* card reset in progress: start nothing */
	uint64_t hold_seq; /* the reset request that set hold */
	bool exit;

	/* Injected fault armed on this queue, under lock: it strikes the
	 * descriptor that brings fault_countdown to 0. */
	enum np_emu_fault fault;
	uint32_t fault_countdown;

	/* The descriptor in flight, owned by the worker that has the queue
	 * (or by none while it is parked); read and written under lock. */
	struct np_emu_flight fl;

	/* Bumped under lock by queue and card resets; the worker compares it
	 * between chunks to abort promptly. */
	atomic_uint gen;

	/* Pool state (pool.c), under the pool's lock. */
	enum np_emu_sched sched;
	bool again; /* woken while RUNNING: look again before idling */
	struct np_emu_queue *run_next; /* run list */
	struct np_emu_queue *park_next, **park_pprev; /* parked list */
	uint64_t park_deadline_ns; /* 0: none */
};

struct np_emu {
	struct np_emu_config cfg;
	struct np_emu_bus bus;

	uint8_t *sram;
	uint64_t sram_size;
	uint8_t *fb;
	uint64_t fb_size;

	pthread_mutex_t lock;
	pthread_cond_t service_cond; /* service thread sleeps here */
	pthread_cond_t reset_cond; /* np_emu_reset() waits here */
	pthread_t service;
	bool service_started;

	/* Global registers, under lock. */
	uint32_t status; /* NP_STATUS_* */
	uint32_t int_status;
	uint32_t int_enable;
	uint32_t scratch;
	uint32_t use[4]; /* NP_REG_USE_WEIGHTS .. NP_REG_USE_FB */
	uint64_t event_irq;
	uint64_t event_pend;
	uint32_t uptime_hi_latch; /* _HI halves latched by _LO reads */
	uint32_t dma_bytes_hi_latch;

	/* Service thread work, under lock. */
	uint32_t irq_deferred; /* vectors to deliver from the service thread */
	uint64_t reset_requested; /* reset sequence numbers */
	uint64_t reset_done;
	/* reset_begin() calls still holding queues: the service thread
	 * finishes no reset before they are done, or it would release
	 * only the queues held so far. */
	unsigned int resets_arming;
	uint64_t quiesce_seq; /* bumped when a worker goes idle in a reset */
	bool exit;

	/* Telemetry model, under lock. */
	uint64_t reset_ns; /* CLOCK_MONOTONIC of the last reset */
	uint64_t tele_ns; /* last model update */
	uint64_t tele_busy_ns; /* busy_ns seen at the last update */
	double util; /* EWMA of utilisation, 100 ms time constant */
	double temp_mc; /* die temperature, 2 s time constant */
	uint32_t throttle_count;

	/* Bumped after every write into the SRAM but a layer job's own KV
	 * writes (DMA, job output, fault flip, reset), so the compute queue
	 * validates a program again only after its SRAM may have changed. */
	atomic_uint_fast64_t sram_gen;
	/* The program last validated, for the compute queue only (one job
	 * at a time per card): valid while sram_gen stays at gen. */
	struct np_emu_prog_ok {
		bool valid;
		uint64_t prog;
		uint64_t gen;
	} prog_ok;
	/* Layer jobs' outputs computed along with the job before them
	 * (compute.c), compute queue only, in queue order from head: each
	 * buf holds the job's arguments as they were (in_len bytes), then its
	 * output (out_len bytes). */
	struct np_emu_stash {
		uint64_t prog, arg, out;
		uint32_t arg_len;
		unsigned int qgen;
		uint64_t sram_gen;
		size_t in_len, out_len;
		struct np_emu_buf buf;
	} stash[NP_EMU_JOIN - 1];
	unsigned int stash_head, stash_n;
	/* Layer jobs' working memory (compute.c), compute queue only. */
	struct np_emu_buf job_mem[NP_EMU_JOB_MEMS];

	/* Statistics, updated by workers without locks. */
	atomic_uint_fast64_t busy_ns;
	atomic_uint_fast64_t dma_bytes;
	atomic_uint dma_descs;
	atomic_uint dma_errors;
	atomic_uint jobs;
	atomic_uint sram_ce;
	atomic_uint sram_ue;

	/* Injected faults (fault.c). dead is read without the lock on the
	 * MMIO and interrupt paths; flips is under lock, n_flips mirrors
	 * its length so reads of SRAM skip the lock when nothing is armed. */
	atomic_bool dead;
	struct np_emu_flip {
		uint64_t word; /* SRAM offset, 8-byte aligned */
		unsigned int bits;
	} flips[NP_EMU_MAX_FLIPS];
	atomic_uint n_flips;

	/* Event counters (mailbox). ev_waiters counts queues parked on an
	 * event wait, so a signal with none skips the pool. */
	atomic_uint events[NP_NUM_EVENTS];
	atomic_uint ev_waiters;
	bool pool_ref; /* holds a reference on the worker pool */

	struct np_emu_queue q[NP_EMU_NUM_QUEUES];
};

/*
 * A log message composed while a core lock is held and emitted after it is
 * dropped, since the log callback is a bus callback like any other.
 */
struct np_emu_msg {
	int level; /* -1: empty */
	char text[320];
};
#define NP_EMU_MSG_INIT     \
	{                   \
		.level = -1 \
	}

/* emu.c */
void np_emu_logf(struct np_emu *emu, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void np_emu_msgf(struct np_emu_msg *msg, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void np_emu_msg_flush(struct np_emu *emu, struct np_emu_msg *msg);
uint64_t np_emu_now_ns(void);
void np_emu_raise_irq(struct np_emu *emu, unsigned int vector);
void np_emu_defer_irq_locked(struct np_emu *emu, uint32_t mask);
void np_emu_error_irq_locked(struct np_emu *emu);
void np_emu_signal_event(struct np_emu *emu, unsigned int n, uint32_t value,
			 bool from_worker);
void np_emu_worker_idle(struct np_emu *emu);
void np_emu_sram_written(struct np_emu *emu, uint64_t addr, uint64_t len);

/* queue.c */
enum np_emu_turn {
	NP_EMU_TURN_IDLE, /* nothing to do */
	NP_EMU_TURN_AGAIN, /* more to do: back on the run list */
	NP_EMU_TURN_PARK, /* a descriptor waits until *deadline_ns (0: an
			     event or register write ends the wait) */
};
enum np_emu_turn np_emu_queue_turn(struct np_emu_queue *q,
				   uint64_t *deadline_ns);
void np_emu_queue_kick(struct np_emu_queue *q);

/* queue_regs.c */
uint32_t np_emu_queue_read(struct np_emu_queue *q, uint32_t reg);
void np_emu_queue_write(struct np_emu_queue *q, uint32_t reg, uint32_t value);
void np_emu_queue_clear(struct np_emu_queue *q);
/* "compute queue" or "DMA engine <n>", in buf (len bytes) if need be */
const char *np_emu_queue_name(const struct np_emu_queue *q, char *buf,
			      size_t len);
/* The NP_Q_STATUS bits of q, q->lock held. */
uint32_t np_emu_queue_status(const struct np_emu_queue *q);

/* pool.c */
int np_emu_pool_get(void);
void np_emu_pool_put(void);
int np_emu_start_thread(pthread_t *t, void *(*fn)(void *), void *arg,
			const char *name);
void np_emu_pool_kick(struct np_emu_queue *q, bool work);
void np_emu_pool_wake_parked(struct np_emu *emu);
void np_emu_pool_drain(struct np_emu *emu);

/* fault.c */
int np_emu_fault_arm_locked(struct np_emu *emu, enum np_emu_fault fault,
			    const struct np_emu_fault_args *args);
void np_emu_fault_clear(struct np_emu *emu);
uint32_t np_emu_fault_sram_read(struct np_emu *emu, uint64_t addr, uint64_t len,
				uint64_t *err_addr);
void np_emu_fault_sram_write(struct np_emu *emu, uint64_t addr, uint64_t len);
uint32_t np_emu_fault_job_read(struct np_emu *emu, uint64_t prog,
			       uint64_t *err_addr);

/* telemetry.c */
void np_emu_telemetry_reset(struct np_emu *emu, uint64_t now);
uint32_t np_emu_telemetry_read(struct np_emu *emu, uint32_t reg);
void np_emu_telemetry_overheat(struct np_emu *emu, uint64_t now);

#endif /* NP_EMU_PRIV_H */
