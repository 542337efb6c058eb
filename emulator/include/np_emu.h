/* SPDX-License-Identifier: MIT */
/*
 * np emulator core: one np card as a plain C library.
 *
 * The core knows nothing of QEMU, VFIO or libnp. A host (the QEMU PCI
 * device, libnp's in-process backend, a test) creates a card, forwards BAR0
 * accesses to np_emu_mmio_read/write, exposes np_emu_fb() as BAR2, and
 * supplies a bus through which the card's DMA engines reach host memory,
 * peer cards and interrupts.
 *
 * Threading: the queues (DMA engines, compute queue) of every card in the
 * process are run by one pool of as many worker threads as online CPUs,
 * created with the first card and joined when the last is destroyed; a
 * queue runs one descriptor at a time, in order, and one that waits for an
 * event holds no worker. Each card also has a service thread that sleeps
 * when idle. The core never holds an internal lock while
 * it calls a bus callback, so a host may hold its own big lock (QEMU's BQL)
 * around np_emu_mmio_* while bus callbacks take the same lock.
 *
 * dma_read, dma_write and irq are called only from the pool's workers and
 * the card's service thread, never from inside np_emu_mmio_*,
 * np_emu_reset*, np_emu_inject or np_emu_create; an interrupt raised by an
 * MMIO write (a mailbox event, enabling a pending vector) is delivered from
 * the service thread. log may be called from any of the card's entry points
 * too, but never with a core lock held. All entry points are thread-safe;
 * np_emu_mmio_* may be called from another card's bus callback (a peer
 * ringing this card's mailbox).
 *
 * Lifecycle: np_emu_create -> (mmio, DMA, resets) -> np_emu_destroy.
 */
#ifndef NP_EMU_H
#define NP_EMU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct np_emu;

/* Bus services the host provides to the card. All callbacks may be called
 * concurrently from several worker threads. */
struct np_emu_bus {
	void *opaque;
	/* Read/write len bytes at a bus address (an IOVA when an IOMMU is in
	 * front of the card). Return 0, or -EFAULT (or another -errno) when
	 * the access is refused; the card then stops the queue with
	 * NP_ERR_BUS_READ/NP_ERR_BUS_WRITE. */
	int (*dma_read)(void *opaque, uint64_t addr, void *buf, size_t len);
	int (*dma_write)(void *opaque, uint64_t addr, const void *buf,
			 size_t len);
	/* Deliver MSI-X vector (NP_IRQ_*). Called only for enabled vectors. */
	void (*irq)(void *opaque, unsigned int vector);
	/* Optional: diagnostics. level is a syslog level; LOG_WARNING is
	 * used for guest/driver programming errors. */
	void (*log)(void *opaque, int level, const char *msg);
};

struct np_emu_config {
	/* 0: NP_SRAM_SIZE; else <= NP_SRAM_SIZE, 4 KiB multiple */
	uint64_t sram_size;
	/* 0: NP_FB_SIZE; else power of two >= 64 KiB, <= NP_FB_SIZE */
	uint64_t fb_size;
	unsigned int dma_engines; /* 0: 4; else 1..NP_MAX_DMA_ENGINES */
	uint64_t serial; /* reported in NP_REG_SERIAL_* */
	unsigned int card_index; /* used in log messages and telemetry seeds */
};

/*
 * Create a card. Memories are reserved, not committed: an untouched card
 * costs no RAM. The bus struct is copied.
 * Returns 0, -EINVAL for a bad config, -ENOMEM, or -errno from thread
 * creation.
 */
int np_emu_create(const struct np_emu_config *cfg, const struct np_emu_bus *bus,
		  struct np_emu **out);

/* Stop all workers (aborting transfers) and free the card. NULL is fine.
 * Must not be called with a lock held that bus callbacks take. */
void np_emu_destroy(struct np_emu *emu);

/* BAR0 access. Offsets outside NP_REGS_SIZE, unaligned or non-32-bit
 * accesses are logged and read as 0 / ignored: never fatal. */
uint32_t np_emu_mmio_read(struct np_emu *emu, uint64_t offset);
void np_emu_mmio_write(struct np_emu *emu, uint64_t offset, uint32_t value);

/* The frame buffer (BAR2): host and peers access it as plain memory. */
void *np_emu_fb(struct np_emu *emu, uint64_t *size);

/*
 * Card reset (FLR, NP_CONTROL_RESET): aborts every queue, clears registers,
 * event counters and both memories (which become uncommitted again).
 * np_emu_reset() returns when the card is READY again; it must not be called
 * with a lock held that bus callbacks take. np_emu_reset_async() returns at
 * once with NP_STATUS_RESETTING set; it is what an NP_CONTROL_RESET write
 * does and is safe under any host lock.
 */
void np_emu_reset(struct np_emu *emu);
void np_emu_reset_async(struct np_emu *emu);

/* Bytes of SRAM and frame buffer actually backed by RAM right now
 * (mincore(); pages only read so far map the shared zero page and count). */
uint64_t np_emu_resident_bytes(struct np_emu *emu);

/* Faults a host (a test, a QEMU monitor command) can inject. */
enum np_emu_fault {
	/* Corrected SRAM error: NP_REG_SRAM_CE += 1. */
	NP_EMU_FAULT_SRAM_CE = 1,
	/* Uncorrected SRAM error: NP_REG_SRAM_UE += 1, NP_STATUS_FATAL set
	 * (until NP_CONTROL_CLEAR_FATAL or reset), NP_IRQ_ERROR raised. */
	NP_EMU_FAULT_SRAM_UE = 2,
	/* The die heats past NP_REG_TEMP_MAX: NP_STATUS_THROTTLED, the clock
	 * halves, NP_REG_THROTTLE_COUNT += 1, NP_IRQ_ERROR raised; it cools
	 * back below the threshold within seconds. */
	NP_EMU_FAULT_OVERHEAT = 3,
	/* The n-th descriptor queue `engine` starts from now on (1: the
	 * next) fails as if the bus refused its data: an H2C stops the queue
	 * with NP_ERR_BUS_READ at its source, a C2H or C2P with
	 * NP_ERR_BUS_WRITE at its destination, any other descriptor (NOP,
	 * FENCE, COPY, a compute job) with NP_ERR_RING_FETCH at its ring
	 * slot. Nothing of the descriptor moves. Needs engine and n. */
	NP_EMU_FAULT_DMA_ERROR = 4,
	/* Queue `engine` hangs at its n-th descriptor from now on: the
	 * descriptor takes STATUS.BUSY and keeps it, and nothing of it
	 * happens (no data, record, completion or interrupt) until
	 * NP_Q_CTRL_RESET or a card reset aborts it. Needs engine and n. */
	NP_EMU_FAULT_HANG = 5,
	/* The card stops answering: BAR0 reads return all-ones, writes
	 * (NP_CONTROL_RESET too) are dropped, no queue starts or completes a
	 * descriptor and no interrupt is raised. Only a reset from outside
	 * (np_emu_reset*, i.e. FLR or a bus reset) brings it back. */
	NP_EMU_FAULT_DEAD = 6,
	/* Flip `bits` (1 or 2) bits of the 64-bit SRAM word holding card
	 * address addr. SRAM is modelled with SECDED ECC per 64-bit word and
	 * checked when the word is read (DMA source, or any word of a core's
	 * SRAM below the running program's high-water mark for a layer
	 * job). One bit: the read returns correct data, NP_REG_SRAM_CE += 1
	 * and the word is scrubbed. Two bits: the data stays corrupted,
	 * every read of the word adds 1 to NP_REG_SRAM_UE, sets
	 * NP_STATUS_FATAL, raises NP_IRQ_ERROR and stops the reading queue
	 * with NP_ERR_SRAM_UE. Writing the word or a card reset clears it.
	 * Needs addr and bits. */
	NP_EMU_FAULT_SRAM_FLIP = 7,
};

/* The compute queue, as an engine of NP_EMU_FAULT_DMA_ERROR/HANG. */
#define NP_EMU_ENGINE_COMPUTE 8u
/* Bit flips armed at once per card; more are refused with -ENOSPC. */
#define NP_EMU_MAX_FLIPS 64u

/* Where a fault strikes; only the fields its kind names are used. */
struct np_emu_fault_args {
	unsigned int engine; /* DMA engine, or NP_EMU_ENGINE_COMPUTE */
	uint32_t n; /* >= 1: the n-th descriptor from now on */
	uint64_t addr; /* card address in SRAM */
	unsigned int bits; /* 1 or 2 */
};

/* Inject a fault. Safe under any host lock (interrupts are delivered from
 * the service thread). Returns 0, or -EINVAL for an unknown fault, or
 * -EBUSY while the card resets. Faults that need arguments are refused
 * with -EINVAL: use np_emu_inject_args(). */
int np_emu_inject(struct np_emu *emu, enum np_emu_fault fault);

/*
 * Inject a fault with its arguments (args may be NULL for kinds that take
 * none). Faults armed on a queue (DMA_ERROR, HANG: one per queue, a new
 * one replaces the old) and bit flips are deterministic: they strike
 * exactly where they name, whatever the timing. A card reset disarms all.
 * Returns 0; -EINVAL for an unknown fault, a missing argument, an absent
 * engine, n == 0, an address outside SRAM or bits not 1 or 2; -ENOSPC
 * when NP_EMU_MAX_FLIPS flips are armed; -EBUSY while the card resets.
 */
int np_emu_inject_args(struct np_emu *emu, enum np_emu_fault fault,
		       const struct np_emu_fault_args *args);

/*
 * Parse a fault as hosts spell it (QEMU's inject-fault property, libnp,
 * nptool): "sram-ce", "sram-ue", "overheat", "dead",
 * "dma-error:engine=E,n=N", "hang:engine=E,n=N" (E a number or
 * "compute"), "sram-flip:addr=A,bits=B" (numbers in C syntax). Values are
 * checked against a card by np_emu_inject_args(), not here.
 * Returns 0, or -EINVAL for anything else.
 */
int np_emu_fault_parse(const char *spec, enum np_emu_fault *fault,
		       struct np_emu_fault_args *args);

#ifdef __cplusplus
}
#endif

#endif /* NP_EMU_H */
