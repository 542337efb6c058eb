/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * np card programming interface: the one ABI header.
 *
 * Shared verbatim by the kernel driver, the emulator core, the QEMU device,
 * libnp, nptool and the tests. It holds only integer constants and
 * fixed-layout little-endian structures; docs/hardware.md is the prose
 * version of this file and the two must agree.
 *
 * All registers are 32 bits wide, little-endian, and must be accessed with
 * naturally aligned 32-bit loads and stores. 64-bit quantities are split in
 * _LO/_HI register pairs; write _LO first, then _HI. For counters that move
 * (UPTIME, DMA_BYTES, NP_Q_BYTES and the NP_Q_*_NS statistics) read _LO
 * first: it latches _HI.
 */
#ifndef NP_ABI_H
#define NP_ABI_H

/*
 * Laid out by hand: clang-format 14 writes macro arithmetic as "(v)&0xff"
 * and "(y)*NP_CORES_X" and breaks every #define with a trailing comment.
 */
/* clang-format off */

#ifdef __KERNEL__
#include <linux/types.h>
#else
#include <stdint.h>
#endif

/* ABI version carried in NP_REG_ID. A change of major breaks compatibility. */
#define NP_ABI_MAJOR 1
#define NP_ABI_MINOR 2 /* 1: queue statistics NP_Q_FENCE_WAITS..;
			 * 2: use registers NP_REG_USE_* */

/*
 * PCI identity. 0x1234 is the vendor ID QEMU's own example devices use
 * (edu 0x11e8, bochs-display 0x1111); 0x4e50 ("NP") is not used by any
 * product under it.
 */
#define NP_PCI_VENDOR_ID 0x1234
#define NP_PCI_DEVICE_ID 0x4e50
#define NP_PCI_SUBSYS_VENDOR_ID 0x1af4
#define NP_PCI_SUBSYS_ID 0x1100
#define NP_PCI_REVISION 0x01
#define NP_PCI_CLASS 0x120000 /* processing accelerator, prog-if 0 */

/* BARs */
#define NP_BAR_REGS 0 /* 64-bit, non-prefetchable, NP_REGS_SIZE */
#define NP_BAR_FB 2 /* 64-bit, prefetchable, frame buffer */
#define NP_BAR_MSIX 4 /* MSI-X table and PBA */
#define NP_REGS_SIZE 0x10000u

/* Architecture */
#define NP_CORES_X 16u
#define NP_CORES_Y 16u
#define NP_NUM_CORES (NP_CORES_X * NP_CORES_Y)
#define NP_CORE_SRAM_SIZE (768u * 1024u)
#define NP_SRAM_SIZE (NP_NUM_CORES * NP_CORE_SRAM_SIZE) /* 192 MiB */
#define NP_FB_SIZE (32u * 1024u * 1024u)
#define NP_OPS_PER_CYCLE_INT8 2048u /* per core */
#define NP_OPS_PER_CYCLE_INT4 4096u
#define NP_OPS_PER_CYCLE_INT2 8192u
#define NP_VECTOR_SLICES 32u /* FP16 vector unit: 4-way, 32 slices */
#define NP_VECTOR_WAYS 4u
#define NP_ACT_SLICES 32u /* activation unit */

/*
 * Card address space, as seen by the card's DMA engines and compute queue.
 * SRAM of core (x, y) starts at NP_CA_SRAM_BASE + NP_CORE_SRAM_OFFSET(x, y).
 */
#define NP_CA_SRAM_BASE 0x000000000ull
#define NP_CA_FB_BASE 0x100000000ull
#define NP_CORE_INDEX(x, y) ((y) * NP_CORES_X + (x))
#define NP_CORE_SRAM_OFFSET(x, y) \
	((uint64_t)NP_CORE_INDEX(x, y) * NP_CORE_SRAM_SIZE)

/* ---------------------------------------------------------------- */
/* BAR0: global registers                                             */

#define NP_REG_ID 0x000 /* RO: NP_ID_MAGIC << 16 | major << 8 | minor */
#define NP_ID_MAGIC 0x4e50
#define NP_ID_VALUE \
	((uint32_t)NP_ID_MAGIC << 16 | NP_ABI_MAJOR << 8 | NP_ABI_MINOR)
#define NP_ID_GET_MAGIC(v) (((v) >> 16) & 0xffff)
#define NP_ID_GET_MAJOR(v) (((v) >> 8) & 0xff)
#define NP_ID_GET_MINOR(v) ((v) & 0xff)

#define NP_REG_CAPS 0x004 /* RO */
#define NP_CAPS_P2P (1u << 0) /* DMA to peer bus addresses */
#define NP_CAPS_COMPUTE (1u << 1) /* compute queue present */
#define NP_CAPS_MAILBOX (1u << 2) /* event counters at NP_MBOX_OFFSET */
#define NP_CAPS_WRITEBACK (1u << 3) /* completion writeback records */

#define NP_REG_CONFIG 0x008 /* RO */
#define NP_CONFIG_DMA_ENGINES(v) ((v) & 0xff)
#define NP_CONFIG_COMPUTE_QUEUES(v) (((v) >> 8) & 0xff)
#define NP_CONFIG_EVENTS(v) (((v) >> 16) & 0xff)

#define NP_REG_SRAM_SIZE 0x00c /* RO: bytes of SRAM present */
#define NP_REG_FB_SIZE 0x010 /* RO: bytes of frame buffer (BAR2 size) */
#define NP_REG_CORES 0x014 /* RO: [7:0] x, [15:8] y, [31:16] KiB/core */
#define NP_REG_FW_VERSION 0x018 /* RO: major << 16 | minor << 8 | patch */
#define NP_REG_SERIAL_LO 0x01c /* RO */
#define NP_REG_SERIAL_HI 0x020 /* RO */
#define NP_REG_LINK 0x024 /* RO: [3:0] PCIe gen, [9:4] lanes */
#define NP_LINK_GEN(v) ((v) & 0xf)
#define NP_LINK_WIDTH(v) (((v) >> 4) & 0x3f)

#define NP_REG_STATUS 0x028 /* RO */
#define NP_STATUS_READY (1u << 0) /* accepts work */
#define NP_STATUS_RESETTING (1u << 1) /* card reset in progress */
#define NP_STATUS_THROTTLED (1u << 2) /* thermal throttling active */
#define NP_STATUS_FATAL (1u << 3) /* uncorrected SRAM error seen */

#define NP_REG_CONTROL 0x02c /* WO */
#define NP_CONTROL_RESET (1u << 0) /* reset the whole card */
#define NP_CONTROL_CLEAR_FATAL (1u << 1)

#define NP_REG_INT_STATUS 0x030 /* RW1C: one bit per NP_IRQ_* vector */
#define NP_REG_INT_ENABLE 0x034 /* RW: 1 = vector delivered */
#define NP_REG_SCRATCH 0x038 /* RW, no side effects */
#define NP_REG_EVENT_IRQ_LO 0x040 /* RW: event n signalled -> NP_IRQ_MAILBOX */
#define NP_REG_EVENT_IRQ_HI 0x044
#define NP_REG_EVENT_PEND_LO 0x048 /* RW1C: events signalled since cleared */
#define NP_REG_EVENT_PEND_HI 0x04c
/*
 * What a loaded model takes of the card, bytes of the whole card: SRAM
 * for weights, KV cache and programs, and frame buffer. RW, no side
 * effects: the host's loader writes them once the model's image is on the
 * card and zeroes them when it releases the card (libnp: a pipeline's
 * start and end); the card keeps them as written and clears them at
 * reset, when its SRAM no longer holds a model. So any process (nptool,
 * the driver's sysfs) can read what a card holds for the process that
 * loaded it.
 */
#define NP_REG_USE_WEIGHTS 0x050
#define NP_REG_USE_KV 0x054
#define NP_REG_USE_PROG 0x058
#define NP_REG_USE_FB 0x05c

/* Telemetry, all RO */
#define NP_REG_TEMP 0x100 /* die temperature, millidegrees Celsius */
#define NP_REG_POWER 0x104 /* board power, milliwatts */
#define NP_REG_VOLTAGE 0x108 /* core voltage, millivolts */
#define NP_REG_CORE_CLK 0x10c /* current core clock, MHz */
#define NP_REG_UPTIME_LO 0x110 /* milliseconds since the last card reset */
#define NP_REG_UPTIME_HI 0x114
#define NP_REG_DMA_ERRORS 0x118 /* descriptors that ended in an error */
#define NP_REG_SRAM_CE 0x11c /* corrected SRAM errors */
#define NP_REG_SRAM_UE 0x120 /* uncorrected SRAM errors */
#define NP_REG_DMA_BYTES_LO 0x124 /* bytes moved by all DMA engines */
#define NP_REG_DMA_BYTES_HI 0x128
#define NP_REG_DMA_DESCS 0x12c /* descriptors completed, all engines */
#define NP_REG_JOBS 0x130 /* compute jobs completed */
#define NP_REG_THROTTLE_COUNT 0x134 /* throttle episodes since reset */
#define NP_REG_BUSY 0x138 /* % of the last 100 ms with work, 0..100 */
#define NP_REG_TEMP_CRIT 0x13c /* shutdown threshold, millidegrees */
#define NP_REG_TEMP_MAX 0x140 /* throttle threshold, millidegrees */

/* Interrupt vectors (MSI-X entries) and their NP_REG_INT_* bits */
#define NP_MAX_DMA_ENGINES 8u
#define NP_IRQ_DMA(e) (e) /* 0..7: DMA engine e */
#define NP_IRQ_COMPUTE 8u /* compute queue */
#define NP_IRQ_MAILBOX 9u /* an enabled event counter was signalled */
#define NP_IRQ_ERROR 10u /* uncorrected error, thermal, fatal */
#define NP_NUM_IRQS 11u
#define NP_MSIX_VECTORS 16u

/* ---------------------------------------------------------------- */
/* BAR0: queues. DMA engine e at NP_DMA_BASE(e), the compute queue   */
/* at NP_COMPUTE_BASE; both use the same register block layout.      */

#define NP_DMA_BASE(e) (0x1000u + (e) * 0x100u)
#define NP_COMPUTE_BASE 0x2000u
#define NP_QUEUE_BLOCK_SIZE 0x100u

#define NP_Q_RING_LO 0x00 /* RW while disabled: ring base bus address */
#define NP_Q_RING_HI 0x04
#define NP_Q_RING_SIZE 0x08 /* RW while disabled: entries, power of two */
#define NP_Q_CTRL 0x0c /* RW */
#define NP_Q_CTRL_ENABLE (1u << 0) /* fetch descriptors from the ring */
#define NP_Q_CTRL_RESET (1u << 1) /* WO, self-clearing: abort, clear error,
				    * head = tail = 0, completed = 0, bytes = 0,
				    * ENABLE cleared; ring, writeback and wait
				    * timeout stay programmed. With ENABLE in the
				    * same write, the queue restarts at once. */
#define NP_Q_TAIL 0x10 /* RW: index of the next slot software fills */
#define NP_Q_HEAD 0x14 /* RO: index of the next slot the queue executes */
#define NP_Q_STATUS 0x18 /* RO */
#define NP_Q_STATUS_ENABLED (1u << 0)
#define NP_Q_STATUS_BUSY (1u << 1) /* executing a descriptor */
#define NP_Q_STATUS_WAITING (1u << 2) /* blocked on an event */
#define NP_Q_STATUS_ERROR (1u << 3) /* stopped (ENABLE cleared); NP_Q_ERROR */
#define NP_Q_ERROR 0x1c /* RO: NP_ERR_* of the stop, 0 if none */
#define NP_Q_ERR_INDEX 0x20 /* RO: ring index of the failed descriptor */
#define NP_Q_ERR_ADDR_LO 0x24 /* RO: address that faulted, if any */
#define NP_Q_ERR_ADDR_HI 0x28
#define NP_Q_WB_LO 0x2c /* RW while disabled: writeback record address */
#define NP_Q_WB_HI 0x30 /* (0 = no writeback; 32-byte aligned) */
#define NP_Q_COMPLETED 0x34 /* RO: descriptors completed, free-running */
#define NP_Q_WAIT_TIMEOUT 0x38 /* RW: max event wait in us, 0 = forever */
#define NP_Q_BYTES_LO 0x3c /* RO: bytes moved since reset */
#define NP_Q_BYTES_HI 0x40

/*
 * Queue statistics (minor >= 1), cleared by NP_Q_CTRL_RESET and card reset,
 * times in ns of the card clock. A descriptor "works" if it moves data or
 * runs a job; DMA NOP/FENCE and compute NOP do not. Only a wait (F_WAIT)
 * that found its event short counts, from the moment it blocked until the
 * event arrived (or the wait failed); fence waits are those of descriptors
 * that do not work, work waits those of descriptors that do. Service time
 * is a working descriptor's fetch to its completion (NP_Q_COMPLETED moves),
 * its own wait excluded. Counts are free-running mod 2^32.
 */
#define NP_Q_FENCE_WAITS 0x44 /* RO: fence waits that blocked */
#define NP_Q_FENCE_NS_LO 0x48 /* RO: ns blocked in them */
#define NP_Q_FENCE_NS_HI 0x4c
#define NP_Q_WORK_WAITS 0x50 /* RO: work waits that blocked */
#define NP_Q_WORK_WAIT_NS_LO 0x54 /* RO: ns blocked in them */
#define NP_Q_WORK_WAIT_NS_HI 0x58
#define NP_Q_WORK_DONE 0x5c /* RO: working descriptors completed */
#define NP_Q_WORK_NS_LO 0x60 /* RO: their summed service time */
#define NP_Q_WORK_NS_HI 0x64
#define NP_Q_WORK_MAX_NS 0x68 /* RW: longest service time, saturates at
			       * 2^32 - 1; any write sets it to 0 */

#define NP_RING_ALIGN 64u
#define NP_RING_MIN_ENTRIES 2u
#define NP_RING_MAX_ENTRIES 65536u
#define NP_WB_ALIGN 32u

/* ---------------------------------------------------------------- */
/* BAR0: mailbox page. A peer card (or the host) signals event n by  */
/* writing a 32-bit value v to NP_MBOX_EVENT(n): the counter becomes  */
/* counter + v (mod 2^32). Reads return the counter. The page holds   */
/* nothing else, so it can be mapped for peers on its own.           */

#define NP_MBOX_OFFSET 0x8000u
#define NP_MBOX_SIZE 0x1000u
#define NP_NUM_EVENTS 64u
#define NP_MBOX_EVENT(n) (NP_MBOX_OFFSET + (n) * 4u)

/* ---------------------------------------------------------------- */
/* Descriptors (64 bytes, little-endian, in host memory rings)       */

enum np_dma_op {
	NP_DMA_OP_NOP = 0, /* no data; flags still apply */
	NP_DMA_OP_H2C = 1, /* src bus address -> dst card address */
	NP_DMA_OP_C2H = 2, /* src card address -> dst bus address */
	NP_DMA_OP_C2P = 3, /* src card address -> dst peer bus address */
	NP_DMA_OP_COPY = 4, /* src card address -> dst card address */
	NP_DMA_OP_FENCE = 5, /* wait for event; requires NP_DESC_F_WAIT */
	NP_DMA_OP_MAX = 5,
};

/* Descriptor flags, for DMA and compute descriptors alike */
#define NP_DESC_F_IRQ (1u << 0) /* raise the queue's vector on completion */
#define NP_DESC_F_WAIT (1u << 1) /* before executing, wait until
				   * (int32_t)(event[wait_event] - wait_value) >= 0 */
#define NP_DESC_F_SIGNAL (1u << 2) /* after completion, event[signal_event] += 1 */
#define NP_DESC_F_NOTIFY (1u << 3) /* after completion, write notify_data
				     * (32 bits) to bus address notify_addr */
#define NP_DESC_F_ALL 0x0fu

#define NP_DMA_MAX_LEN (16u * 1024u * 1024u)

/*
 * Order of a descriptor's effects: wait (F_WAIT), data transfer, signal
 * (F_SIGNAL), notify (F_NOTIFY), writeback record, interrupt (F_IRQ).
 * Each effect is visible before the next one starts.
 */
struct np_dma_desc {
	uint8_t opcode; /* enum np_dma_op */
	uint8_t flags; /* NP_DESC_F_* */
	uint8_t wait_event; /* < NP_NUM_EVENTS */
	uint8_t signal_event; /* < NP_NUM_EVENTS */
	uint32_t len; /* bytes; 1..NP_DMA_MAX_LEN for data opcodes */
	uint64_t src;
	uint64_t dst;
	uint64_t notify_addr;
	uint32_t notify_data;
	uint32_t wait_value;
	uint64_t user; /* copied to the writeback record */
	uint64_t rsvd[2]; /* must be zero */
};

enum np_job_op {
	NP_JOB_OP_NOP = 0, /* no compute; flags still apply */
	NP_JOB_OP_LAYER = 1, /* run the layer program at prog */
	NP_JOB_OP_MAX = 1,
};

/*
 * Compute job: same size and flag semantics as a DMA descriptor.
 *
 * NP_JOB_OP_LAYER runs the program block at prog (SRAM, format in
 * docs/model-format.md) on the arguments at arg (arg_len bytes, frame
 * buffer or SRAM): a header of two uint32, the token count n and a word
 * of options, then n (slot, pos) uint32 pairs, then n rows of dim int16
 * activations (docs/pipeline.md). What lands at out:
 *  - a layer program: the header and token table unchanged, then the n
 *    output rows, so out is the argument frame of the next layer card
 *    (arg_len bytes);
 *  - an output program with NP_JOB_ARG_TOPK(k) = 0: n rows of its
 *    vocabulary slice as int32 logits;
 *  - an output program with k > 0: n rows of k struct np_job_topk, the
 *    k largest logits of the slice, largest first, ties by lower index.
 */
#define NP_JOB_ARG_HDR 8u /* uint32 n_tokens, uint32 options */
#define NP_JOB_ARG_TOK 8u /* uint32 slot, uint32 pos per token */
#define NP_JOB_ARG_TOPK(opt) ((opt) & 0xffu) /* options bits 7:0 */
#define NP_JOB_TOPK_MAX 64u

struct np_job_topk {
	int32_t value; /* integer logit */
	uint32_t index; /* vocabulary index (whole vocabulary) */
};

struct np_job_desc {
	uint8_t opcode; /* enum np_job_op */
	uint8_t flags; /* NP_DESC_F_* */
	uint8_t wait_event;
	uint8_t signal_event;
	uint32_t arg_len; /* bytes at arg */
	uint64_t prog; /* card address of the program */
	uint64_t arg; /* card address of the arguments */
	uint64_t notify_addr;
	uint32_t notify_data;
	uint32_t wait_value;
	uint64_t user;
	uint64_t out; /* card address of the output */
	uint64_t rsvd; /* must be zero */
};

/* Writeback record, written after every completed descriptor and on stop */
struct np_queue_wb {
	uint32_t head; /* NP_Q_HEAD after the write */
	uint32_t completed; /* NP_Q_COMPLETED after the write */
	uint32_t status; /* NP_Q_STATUS_* */
	uint32_t error; /* NP_ERR_* */
	uint64_t user; /* user field of the last completed descriptor */
	uint64_t rsvd;
};

/* Queue stop reasons (NP_Q_ERROR, np_queue_wb.error). Each comment is the
 * reason's name in messages: scripts/gen_err_names.py makes np_err_names.h
 * from these lines. */
enum np_err {
	NP_ERR_NONE = 0, /* none */
	NP_ERR_BAD_OPCODE = 1, /* unknown opcode */
	NP_ERR_BAD_FLAGS = 2, /* unknown flag bits or reserved field set */
	NP_ERR_BAD_LENGTH = 3, /* bad length (0, or over NP_DMA_MAX_LEN) */
	NP_ERR_SRC_RANGE = 4, /* card source outside SRAM or frame buffer */
	NP_ERR_DST_RANGE = 5, /* card destination outside SRAM or frame buffer */
	NP_ERR_BUS_READ = 6, /* bus read refused (IOMMU fault, unmapped) */
	NP_ERR_BUS_WRITE = 7, /* bus write refused (IOMMU fault, unmapped) */
	NP_ERR_RING_CONFIG = 8, /* ring base, size or writeback address invalid */
	NP_ERR_RING_FETCH = 9, /* descriptor fetch failed */
	NP_ERR_BAD_TAIL = 10, /* tail written beyond the ring size */
	NP_ERR_BAD_EVENT = 11, /* event index out of range */
	NP_ERR_WAIT_TIMEOUT = 12, /* event wait timed out (NP_Q_WAIT_TIMEOUT) */
	NP_ERR_ABORTED = 13, /* aborted by a queue reset (writeback only) */
	NP_ERR_WB_WRITE = 14, /* writeback record write failed */
	NP_ERR_NOTIFY_WRITE = 15, /* notify write failed */
	NP_ERR_BAD_PROGRAM = 16, /* bad compute program */
	NP_ERR_SRAM_UE = 17, /* uncorrected SRAM error during the job */
	NP_ERR_MAX = 17,
};

#ifndef __cplusplus
_Static_assert(sizeof(struct np_dma_desc) == 64, "np_dma_desc is 64 bytes");
_Static_assert(sizeof(struct np_job_desc) == 64, "np_job_desc is 64 bytes");
_Static_assert(sizeof(struct np_queue_wb) == 32, "np_queue_wb is 32 bytes");
_Static_assert(sizeof(struct np_job_topk) == 8, "np_job_topk is 8 bytes");
_Static_assert(NP_SRAM_SIZE == 192u * 1024u * 1024u, "192 MiB SRAM");
_Static_assert(NP_DMA_BASE(NP_MAX_DMA_ENGINES) <= NP_COMPUTE_BASE,
	       "DMA blocks fit below the compute queue");
_Static_assert(NP_MBOX_EVENT(NP_NUM_EVENTS) <= NP_MBOX_OFFSET + NP_MBOX_SIZE,
	       "events fit the mailbox page");
#endif

/* clang-format on */

#endif /* NP_ABI_H */
