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
 * Threading: each queue (DMA engine, compute queue) runs on its own worker
 * thread that sleeps when idle. The core never holds an internal lock while
 * it calls a bus callback, so a host may hold its own big lock (QEMU's BQL)
 * around np_emu_mmio_* while bus callbacks take the same lock.
 *
 * dma_read, dma_write and irq are called only from the card's own threads
 * (queue workers and one service thread), never from inside np_emu_mmio_*,
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
	uint64_t sram_size; /* 0: NP_SRAM_SIZE; else <= NP_SRAM_SIZE, 4 KiB multiple */
	uint64_t fb_size; /* 0: NP_FB_SIZE; else power of two >= 64 KiB, <= NP_FB_SIZE */
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
};

/* Inject a fault. Safe under any host lock (interrupts are delivered from
 * the service thread). Returns 0, or -EINVAL for an unknown fault, or
 * -EBUSY while the card resets. */
int np_emu_inject(struct np_emu *emu, enum np_emu_fault fault);

#ifdef __cplusplus
}
#endif

#endif /* NP_EMU_H */
