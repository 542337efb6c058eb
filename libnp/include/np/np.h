/* SPDX-License-Identifier: MIT */
/*
 * libnp: userspace runtime for np accelerator cards.
 *
 * A context (struct np_ctx) is a set of cards that share one IOVA space:
 * every DMA buffer allocated in the context is mapped once for all of its
 * cards, and every card's frame buffer (BAR2) and mailbox page are mapped
 * for its peers, so card-to-card transfers need no host copy.
 *
 * Backends, chosen by the device spec given to np_open():
 *   "emu:N"                    N in-process emulated cards (1..NP_MAX_CARDS)
 *                              behind a software IOMMU
 *   "vfio:all"                 every np card bound to vfio-pci/np_vfio_pci
 *   "vfio:0000:03:00.0,..."    the listed cards, in that order
 * A NULL or empty spec reads the environment variable NP_DEVICES.
 *
 * Lifecycle: np_open -> np_buf_alloc / np_xfer_submit ... -> np_close.
 *
 * Errors: every function that can fail returns 0 (or a count) on success
 * and a negative errno value on failure. The library never prints: pass a
 * log callback in struct np_open_opts to receive messages, which name the
 * card, the value at fault and the fix.
 *
 * Threading: all functions are thread-safe unless noted. Each DMA engine
 * has its own lock, so threads that submit to different engines never
 * contend. A struct np_xfer belongs to one thread at a time: do not wait on
 * or free the same transfer from two threads. np_card_reset() and
 * np_close() require that no other thread uses the card or context.
 *
 * Timeouts: every wait is bounded. A transfer that does not complete within
 * its timeout (default 5 s, see struct np_open_opts) fails with -ETIMEDOUT
 * and its DMA engine is reset, so a card that stops answering never hangs
 * the caller.
 */
#ifndef NP_NP_H
#define NP_NP_H

#include <stddef.h>
#include <stdint.h>

#include <np/log.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NP_MAX_CARDS 64
#define NP_TIMEOUT_DEFAULT (-1)

struct np_ctx;
struct np_card;
struct np_buf;
struct np_xfer;

/* np_open_opts.flags */
#define NP_OPEN_F_FORCE_BOUNCE \
	(1u << 0) /* never map peers: every
					   * card-to-card transfer bounces
					   * through host memory */

/* Settings of the in-process emulator backend ("emu:N"); 0 selects the
 * card's default. */
struct np_emu_opts {
	uint64_t sram_size;
	uint64_t fb_size;
	uint32_t dma_engines;
	uint32_t resv0; /* must be zero */
	uint64_t resv[4]; /* must be zero: room for new settings */
};

/*
 * Options of np_open. Zero-initialize it: every field is optional, 0 means
 * the library default, and the resv space must be zero (-EINVAL
 * otherwise), so that fields added there later keep old programs working.
 */
struct np_open_opts {
	unsigned int flags; /* NP_OPEN_F_* */
	int timeout_ms; /* default wait timeout; 0: 5000 */
	unsigned int ring_entries; /* descriptors per engine ring, power of
				     * two in [16, 65536]; 0: 1024 */
	struct np_log log; /* np/log.h; zero: messages are dropped */
	const struct np_emu_opts *emu; /* emu backend only; NULL: defaults */
	uint64_t resv[8]; /* must be zero */
};

/*
 * Open the cards named by spec (see the top of this file) as one context.
 * opts may be NULL for defaults.
 * Returns 0 and stores the context in *out, or:
 *   -EINVAL   spec or opts malformed (message names the bad part)
 *   -ENODEV   no card found, or the spec names no backend and NP_DEVICES
 *             is unset (the message suggests NP_DEVICES=emu:16)
 *   -ENOENT   a listed card does not exist, or /dev/vfio is missing
 *   -EBUSY    an IOMMU group is not viable (another driver holds a device
 *             of the group) or already open: a VFIO group opens once, so
 *             a card belongs to one context of one process at a time
 *   -EPROTO   a card's ID register is wrong (not an np card, ABI major
 *             mismatch) or the card never became ready
 *   -ENOMEM   out of memory, or RLIMIT_MEMLOCK too low to pin rings
 *   -EPERM/-EACCES  no permission on /dev/vfio/<group>
 *   -ENOTSUP  backend not built into this libnp
 *   other -errno from the VFIO ioctls or emulator creation
 */
int np_open(const char *spec, const struct np_open_opts *opts,
	    struct np_ctx **out);

/* A device spec as np_open() understands it (np_spec_parse()). */
enum np_spec_kind {
	NP_SPEC_EMU, /* "emu:N": N in-process emulated cards */
	NP_SPEC_VFIO_ALL, /* "vfio:all": every np card bound to VFIO */
	NP_SPEC_VFIO_LIST, /* "vfio:A[,B...]": the listed cards, in order */
};

#define NP_SPEC_BDF_LEN 13 /* "0000:03:00.0" and its NUL */

struct np_spec {
	enum np_spec_kind kind;
	unsigned int count; /* emu: cards; vfio list: addresses; all: 0 */
	/* vfio list: the addresses in full and lower case, "0000:03:00.0" */
	char bdf[NP_MAX_CARDS][NP_SPEC_BDF_LEN];
};

/*
 * Parse spec exactly as np_open() does, without opening anything: "emu:N"
 * with N in 1..NP_MAX_CARDS, "vfio:all", or "vfio:" and up to NP_MAX_CARDS
 * comma-separated PCI addresses, each DDDD:BB:DD.F or BB:DD.F in hex (the
 * domain defaults to 0000). NP_DEVICES is not read: pass its value.
 * Returns 0 and fills *out, or -EINVAL and writes into why (len bytes,
 * NUL-terminated; why may be NULL) a sentence naming the spec, its bad
 * part and the fix, one of:
 *   device spec "S" is not understood: use emu:N (N in 1..64), vfio:all
 *     or vfio:<pci address>[,<pci address>...]
 *   device spec "emu:X": the card count must be a number in 1..64, e.g.
 *     emu:16
 *   device spec "vfio:L": "X" is not a PCI address like 0000:03:00.0 (at
 *     most 64)
 *   device spec "vfio:L" names no card: use vfio:all or
 *     vfio:0000:03:00.0[,...]
 */
int np_spec_parse(const char *spec, struct np_spec *out, char *why, size_t len);

/* Stop every engine, free the buffers still allocated and the transfers
 * released with np_xfer_free() while in flight, and release the cards.
 * Free your transfers before: a transfer outlives neither its context nor
 * its buffers. NULL is fine. */
void np_close(struct np_ctx *ctx);

/* Number of cards in the context (>= 1). */
unsigned int np_ctx_num_cards(const struct np_ctx *ctx);

/* Card idx of the context, or NULL when idx >= np_ctx_num_cards(). */
struct np_card *np_ctx_card(const struct np_ctx *ctx, unsigned int idx);

/* Backend name: "emu" or "vfio". */
const char *np_ctx_backend(const struct np_ctx *ctx);

/* Default wait timeout of the context, in ms. */
int np_ctx_timeout_ms(const struct np_ctx *ctx);

/* IOMMU faults seen so far: DMA by any card of the context to a bus
 * address that is not mapped. The emu backend counts them in its software
 * IOMMU; the vfio backend cannot see them (the kernel logs DMAR faults) and
 * returns 0. */
uint64_t np_ctx_iommu_faults(const struct np_ctx *ctx);

/* ---------------------------------------------------------------- */
/* Cards                                                              */

enum np_p2p_mode {
	NP_P2P_DIRECT = 0, /* peer's FB and mailbox mapped: card DMA */
	NP_P2P_BOUNCE = 1, /* through a host buffer, two DMAs */
};

struct np_card_info {
	unsigned int index; /* position in the context */
	char name[32]; /* PCI address "0000:03:00.0" or "emu:N" */
	uint16_t vendor_id, device_id;
	uint16_t subsys_vendor_id, subsys_id;
	uint8_t revision;
	uint8_t abi_major, abi_minor; /* from NP_REG_ID */
	uint32_t fw_version; /* major << 16 | minor << 8 | patch */
	uint64_t serial;
	uint32_t caps; /* NP_CAPS_* */
	uint64_t sram_size; /* bytes */
	uint64_t fb_size; /* bytes, BAR2 size */
	unsigned int cores_x, cores_y;
	unsigned int dma_engines; /* usable DMA engines */
	unsigned int compute_queues;
	unsigned int events; /* mailbox event counters */
	unsigned int link_gen, link_width; /* PCIe generation and lanes */
	int iommu_group; /* -1 for emulated cards */
	uint64_t fb_iova; /* where peers reach this card's FB, 0 if not */
	uint64_t mbox_iova; /* where peers reach its mailbox page, 0 if not */
};

/* Fill *info. Returns 0, or -EINVAL if card or info is NULL. */
int np_card_info(const struct np_card *card, struct np_card_info *info);

/*
 * Whether the card was surprise-removed (unplugged, or the kernel asked
 * for it back through VFIO's device request; emulated: the "remove"
 * fault). A removed card is gone for good: its registers read all-ones
 * and np_card_reset and np_xfer_submit fail with -ENODEV. Returns 1 or 0
 * (0 for NULL).
 */
int np_card_removed(const struct np_card *card);

/* Card name as in np_card_info.name; never NULL for a valid card. */
const char *np_card_name(const struct np_card *card);

/* How card src reaches card dst's frame buffer (NP_P2P_*); a card reaches
 * itself directly. Returns NP_P2P_BOUNCE for cards of different
 * contexts. */
enum np_p2p_mode np_card_p2p_mode(const struct np_card *src,
				  const struct np_card *dst);

/*
 * Read the 32-bit BAR0 register at offset off (diagnostics, telemetry).
 * Returns 0 and stores the value, or -EINVAL if off is not 4-byte aligned
 * or >= NP_REGS_SIZE, or value is NULL.
 */
int np_card_reg_read(struct np_card *card, uint32_t off, uint32_t *value);

/*
 * Reset the card (VFIO_DEVICE_RESET / emulator reset), wait for
 * NP_STATUS_READY, verify the ID register, and re-program all engines; if
 * an engine refuses its ring, the card is reset once more.
 * Transfers in flight on the card fail with -ECANCELED; SRAM, frame buffer
 * and event counters are cleared. No other thread may use the card during
 * the call.
 * Returns 0, or:
 *   -ETIMEDOUT  the card did not become ready within the context timeout
 *   -EPROTO     the ID register is wrong after the reset
 *   -EIO        an engine still refuses its ring after the second reset
 *   -errno      from VFIO_DEVICE_RESET
 */
int np_card_reset(struct np_card *card);

/* Mailbox event counters (NP_MBOX_EVENT). The host adds value to counter
 * event (as a peer card's F_NOTIFY would) or reads it.
 * Return 0, or -EINVAL if event >= np_card_info.events or out is NULL. */
int np_card_event_add(struct np_card *card, unsigned int event, uint32_t value);
int np_card_event_read(struct np_card *card, unsigned int event, uint32_t *out);

/* ---------------------------------------------------------------- */
/* DMA buffers: pinned host memory mapped for every card of a context */

/*
 * Allocate size bytes (rounded up to the page size) of zeroed, locked
 * memory and map it at a fresh IOVA for all cards of ctx. 2 MiB huge pages
 * are used when the size is a multiple of 2 MiB and the system has free
 * huge pages, else 4 KiB pages. VFIO pins the pages when it maps them; the
 * emu backend mlock()s them and only logs a notice if RLIMIT_MEMLOCK
 * refuses (the emulator needs no pinning to be correct).
 * Returns 0 and stores the buffer in *out (NULL on failure), or:
 *   -EINVAL   ctx or out is NULL, or size is 0
 *   -ENOMEM   out of memory or IOVA space, or VFIO could not pin the pages
 *             (RLIMIT_MEMLOCK too low; the log names the limit and the fix)
 *   -errno    other errors of VFIO_IOMMU_MAP_DMA
 */
int np_buf_alloc(struct np_ctx *ctx, size_t size, struct np_buf **out);

/* Unmap and free. NULL is fine. No transfer may use the buffer. */
void np_buf_free(struct np_buf *buf);

void *np_buf_ptr(const struct np_buf *buf);
size_t np_buf_size(const struct np_buf *buf);
uint64_t np_buf_iova(const struct np_buf *buf);

/* ---------------------------------------------------------------- */
/* Transfers                                                          */

enum np_xfer_op {
	NP_XFER_H2C = 1, /* host buffer -> card address on card */
	NP_XFER_C2H = 2, /* card address on card -> host buffer */
	NP_XFER_C2C = 3, /* card address on card -> peer's frame buffer */
	NP_XFER_COPY = 4, /* card address -> card address, same card */
	NP_XFER_FENCE = 5, /* no data: wait for an event (needs F_WAIT) */
};

/* np_xfer_spec.flags */
#define NP_XFER_F_WAIT \
	(1u << 0) /* first wait until the card's counter
				   * wait_event reaches wait_value */
#define NP_XFER_F_SIGNAL \
	(1u << 1) /* then add 1 to the executing card's
				     * counter signal_event */
#define NP_XFER_F_PEER_EVENT \
	(1u << 2) /* C2C: add 1 to the peer's counter
					 * peer_event once the data landed */

struct np_xfer_spec {
	enum np_xfer_op op;
	unsigned int flags; /* NP_XFER_F_* */
	int engine; /* DMA engine of the executing card; -1: round-robin */
	/* Host side of H2C/C2H: buf + buf_offset, or, with buf NULL, the
	 * raw bus address bus_addr (diagnostics: it may fault). */
	struct np_buf *buf;
	size_t buf_offset;
	uint64_t bus_addr;
	uint64_t card_addr; /* H2C destination; C2H, C2C, COPY source */
	uint64_t dst_addr; /* COPY: card destination; C2C: address on the
			     * peer, inside its frame buffer */
	struct np_card *peer; /* C2C destination card */
	size_t len; /* bytes, > 0 except for FENCE; any size: split into
		      * NP_DMA_MAX_LEN descriptors */
	unsigned int wait_event;
	uint32_t wait_value;
	unsigned int signal_event;
	unsigned int peer_event;
};

/*
 * Queue a transfer on card (the executing card: the destination of H2C,
 * the source of C2H and C2C). Descriptors are appended to one engine's
 * ring; transfers on one engine complete in order. When the ring is full
 * the call waits for space, at most the context timeout.
 * A C2C transfer to a peer in NP_P2P_BOUNCE mode runs as C2H into a
 * temporary host buffer followed by H2C on the peer; with
 * NP_XFER_F_PEER_EVENT the peer's own engine signals peer_event.
 * Returns 0 and stores the transfer in *out, or:
 *   -EINVAL   bad op, flags, engine, length 0, event index, a host range
 *             outside buf, a card range outside SRAM/FB, a C2C destination
 *             outside the peer's FB, or a peer from another context
 *   -ENOMEM   out of memory
 *   -ETIMEDOUT  the ring stayed full for the whole timeout (engine reset)
 *   -EIO      the card is not ready: its last np_card_reset() failed; the
 *             transfer is not queued until a reset succeeds
 */
int np_xfer_submit(struct np_card *card, const struct np_xfer_spec *spec,
		   struct np_xfer **out);

/*
 * Check a transfer without blocking.
 * Returns 0 when it completed successfully, -EINPROGRESS while it runs,
 * or its final error:
 *   -EFAULT     the card hit an IOMMU fault (NP_ERR_BUS_READ/WRITE)
 *   -ETIMEDOUT  the card's event wait timed out, or np_xfer_wait timed out
 *   -ECANCELED  aborted by an engine or card reset caused by another
 *               transfer's failure or np_card_reset()
 *   -EIO        any other queue error (see np_xfer_error), or the card
 *               wrote an invalid writeback record
 */
int np_xfer_poll(struct np_xfer *xfer);

/*
 * Wait until the transfer completes, at most timeout_ms (> 0, or
 * NP_TIMEOUT_DEFAULT for the context timeout). If it does not complete in
 * time its engine is reset: it fails with -ETIMEDOUT and the other
 * transfers queued on the same engine with -ECANCELED.
 * Returns what np_xfer_poll() would return after completion (never
 * -EINPROGRESS), or -EINVAL for a bad timeout.
 */
int np_xfer_wait(struct np_xfer *xfer, int timeout_ms);

/* The NP_ERR_* reason the queue stopped with (NP_ERR_NONE if it did not
 * fail on the card) and, if addr is not NULL, the faulting address
 * (NP_Q_ERR_ADDR). */
unsigned int np_xfer_error(const struct np_xfer *xfer, uint64_t *addr);

/*
 * File descriptor that becomes readable (poll/epoll, POLLIN) when the
 * engine running xfer raised its completion interrupt. After it fires,
 * call np_xfer_poll() or np_ctx_process(). A C2C transfer in host-bounce
 * mode moves to the peer's engine for its second half, so its fd changes
 * once np_xfer_poll() has started that half; np_ctx_fd() covers both.
 * Owned by the library.
 */
int np_xfer_fd(const struct np_xfer *xfer);

/* Free a transfer. One still in flight is released when it completes.
 * NULL is fine. */
void np_xfer_free(struct np_xfer *xfer);

/* Submit, wait with the default timeout, free. Returns as np_xfer_wait
 * or np_xfer_submit. */
int np_xfer_run(struct np_card *card, const struct np_xfer_spec *spec);

/*
 * One epoll file descriptor for the whole context: readable when any
 * engine of any card raised its completion interrupt. Owned by the
 * library.
 */
int np_ctx_fd(const struct np_ctx *ctx);

/* Drain the interrupt fds and retire completed transfers on every engine.
 * Returns the number of transfers retired (>= 0). */
int np_ctx_process(struct np_ctx *ctx);

#ifdef __cplusplus
}
#endif

#endif /* NP_NP_H */
