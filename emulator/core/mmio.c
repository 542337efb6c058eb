// SPDX-License-Identifier: MIT
/*
 * np emulator core: BAR0 register decode.
 *
 * Every access is checked here: offsets outside a register, unaligned
 * offsets and writes to read-only registers are logged at LOG_WARNING and
 * ignored (reads return 0). Nothing in this file calls a bus callback.
 */
#include <syslog.h>

#include "emu_priv.h"

#define NP_EMU_IRQ_MASK ((1u << NP_NUM_IRQS) - 1u)

/* Names of the global and telemetry registers, by offset / 4. */
static const char *const global_names[] = {
	[NP_REG_ID / 4] = "ID",
	[NP_REG_CAPS / 4] = "CAPS",
	[NP_REG_CONFIG / 4] = "CONFIG",
	[NP_REG_SRAM_SIZE / 4] = "SRAM_SIZE",
	[NP_REG_FB_SIZE / 4] = "FB_SIZE",
	[NP_REG_CORES / 4] = "CORES",
	[NP_REG_FW_VERSION / 4] = "FW_VERSION",
	[NP_REG_SERIAL_LO / 4] = "SERIAL_LO",
	[NP_REG_SERIAL_HI / 4] = "SERIAL_HI",
	[NP_REG_LINK / 4] = "LINK",
	[NP_REG_STATUS / 4] = "STATUS",
	[NP_REG_CONTROL / 4] = "CONTROL",
	[NP_REG_INT_STATUS / 4] = "INT_STATUS",
	[NP_REG_INT_ENABLE / 4] = "INT_ENABLE",
	[NP_REG_SCRATCH / 4] = "SCRATCH",
	[NP_REG_EVENT_IRQ_LO / 4] = "EVENT_IRQ_LO",
	[NP_REG_EVENT_IRQ_HI / 4] = "EVENT_IRQ_HI",
	[NP_REG_EVENT_PEND_LO / 4] = "EVENT_PEND_LO",
	[NP_REG_EVENT_PEND_HI / 4] = "EVENT_PEND_HI",
	[NP_REG_USE_WEIGHTS / 4] = "USE_WEIGHTS",
	[NP_REG_USE_KV / 4] = "USE_KV",
	[NP_REG_USE_PROG / 4] = "USE_PROG",
	[NP_REG_USE_FB / 4] = "USE_FB",
	[NP_REG_TEMP / 4] = "TEMP",
	[NP_REG_POWER / 4] = "POWER",
	[NP_REG_VOLTAGE / 4] = "VOLTAGE",
	[NP_REG_CORE_CLK / 4] = "CORE_CLK",
	[NP_REG_UPTIME_LO / 4] = "UPTIME_LO",
	[NP_REG_UPTIME_HI / 4] = "UPTIME_HI",
	[NP_REG_DMA_ERRORS / 4] = "DMA_ERRORS",
	[NP_REG_SRAM_CE / 4] = "SRAM_CE",
	[NP_REG_SRAM_UE / 4] = "SRAM_UE",
	[NP_REG_DMA_BYTES_LO / 4] = "DMA_BYTES_LO",
	[NP_REG_DMA_BYTES_HI / 4] = "DMA_BYTES_HI",
	[NP_REG_DMA_DESCS / 4] = "DMA_DESCS",
	[NP_REG_JOBS / 4] = "JOBS",
	[NP_REG_THROTTLE_COUNT / 4] = "THROTTLE_COUNT",
	[NP_REG_BUSY / 4] = "BUSY",
	[NP_REG_TEMP_CRIT / 4] = "TEMP_CRIT",
	[NP_REG_TEMP_MAX / 4] = "TEMP_MAX",
};

static const char *global_name(uint32_t off)
{
	if (off / 4 >= sizeof(global_names) / sizeof(global_names[0]))
		return NULL;
	return global_names[off / 4];
}

/* Locate the queue block at off; NULL (and logged) if absent. */
static struct np_emu_queue *queue_at(struct np_emu *emu, uint32_t off,
				     const char *what)
{
	unsigned int e;

	if (off >= NP_COMPUTE_BASE)
		return &emu->q[NP_EMU_COMPUTE_Q];
	e = (off - NP_DMA_BASE(0)) / NP_QUEUE_BLOCK_SIZE;
	if (e >= emu->cfg.dma_engines) {
		np_emu_logf(
			emu, LOG_WARNING,
			"%s at 0x%04x: DMA engine %u is not present (the card "
			"has %u engines, see NP_REG_CONFIG); access ignored",
			what, off, e, emu->cfg.dma_engines);
		return NULL;
	}
	return &emu->q[e];
}

static bool is_queue_block(uint32_t off)
{
	return (off >= NP_DMA_BASE(0) &&
		off < NP_DMA_BASE(NP_MAX_DMA_ENGINES)) ||
	       (off >= NP_COMPUTE_BASE &&
		off < NP_COMPUTE_BASE + NP_QUEUE_BLOCK_SIZE);
}

static bool is_mailbox_event(uint32_t off)
{
	return off >= NP_MBOX_EVENT(0) && off < NP_MBOX_EVENT(NP_NUM_EVENTS);
}

static bool check_access(struct np_emu *emu, uint64_t offset, const char *what)
{
	if (offset >= NP_REGS_SIZE) {
		np_emu_logf(emu, LOG_WARNING,
			    "%s at 0x%llx: outside BAR0 (0x%x bytes); ignored",
			    what, (unsigned long long)offset, NP_REGS_SIZE);
		return false;
	}
	if (offset & 3u) {
		np_emu_logf(emu, LOG_WARNING,
			    "%s at 0x%04llx: unaligned; registers take "
			    "naturally aligned 32-bit accesses; ignored",
			    what, (unsigned long long)offset);
		return false;
	}
	return true;
}

static uint32_t global_read(struct np_emu *emu, uint32_t off)
{
	uint32_t v;

	if (off >= NP_REG_TEMP && off <= NP_REG_TEMP_MAX)
		return np_emu_telemetry_read(emu, off);

	switch (off) {
	case NP_REG_ID:
		return NP_ID_VALUE;
	case NP_REG_CAPS:
		return NP_CAPS_P2P | NP_CAPS_COMPUTE | NP_CAPS_MAILBOX |
		       NP_CAPS_WRITEBACK;
	case NP_REG_CONFIG:
		return emu->cfg.dma_engines | 1u << 8 | NP_NUM_EVENTS << 16;
	case NP_REG_SRAM_SIZE:
		return (uint32_t)emu->sram_size;
	case NP_REG_FB_SIZE:
		return (uint32_t)emu->fb_size;
	case NP_REG_CORES:
		return NP_CORES_X | NP_CORES_Y << 8 |
		       (NP_CORE_SRAM_SIZE / 1024u) << 16;
	case NP_REG_FW_VERSION:
		return NP_EMU_FW_VERSION;
	case NP_REG_SERIAL_LO:
		return (uint32_t)emu->cfg.serial;
	case NP_REG_SERIAL_HI:
		return (uint32_t)(emu->cfg.serial >> 32);
	case NP_REG_LINK:
		return NP_EMU_PCIE_GEN | NP_EMU_PCIE_LANES << 4;
	case NP_REG_CONTROL:
		return 0; /* write-only */
	default:
		break;
	}

	pthread_mutex_lock(&emu->lock);
	switch (off) {
	case NP_REG_STATUS:
		v = emu->status;
		break;
	case NP_REG_INT_STATUS:
		v = emu->int_status;
		break;
	case NP_REG_INT_ENABLE:
		v = emu->int_enable;
		break;
	case NP_REG_SCRATCH:
		v = emu->scratch;
		break;
	case NP_REG_USE_WEIGHTS:
	case NP_REG_USE_KV:
	case NP_REG_USE_PROG:
	case NP_REG_USE_FB:
		v = emu->use[(off - NP_REG_USE_WEIGHTS) / 4];
		break;
	case NP_REG_EVENT_IRQ_LO:
		v = (uint32_t)emu->event_irq;
		break;
	case NP_REG_EVENT_IRQ_HI:
		v = (uint32_t)(emu->event_irq >> 32);
		break;
	case NP_REG_EVENT_PEND_LO:
		v = (uint32_t)emu->event_pend;
		break;
	case NP_REG_EVENT_PEND_HI:
		v = (uint32_t)(emu->event_pend >> 32);
		break;
	default:
		v = 0;
		np_emu_logf(emu, LOG_WARNING,
			    "read at 0x%04x: no register there; reads as 0",
			    off);
		break;
	}
	pthread_mutex_unlock(&emu->lock);
	return v;
}

static void control_write(struct np_emu *emu, uint32_t value)
{
	if (value & ~(NP_CONTROL_RESET | NP_CONTROL_CLEAR_FATAL))
		np_emu_logf(
			emu, LOG_WARNING,
			"CONTROL write 0x%08x: undefined bits 0x%08x ignored",
			value,
			value & ~(NP_CONTROL_RESET | NP_CONTROL_CLEAR_FATAL));
	if (value & NP_CONTROL_RESET) {
		np_emu_reset_async(emu);
		return;
	}
	if (value & NP_CONTROL_CLEAR_FATAL) {
		pthread_mutex_lock(&emu->lock);
		emu->status &= ~NP_STATUS_FATAL;
		pthread_mutex_unlock(&emu->lock);
	}
}

static void global_write(struct np_emu *emu, uint32_t off, uint32_t value)
{
	const char *name = global_name(off);
	struct np_emu_msg msg = NP_EMU_MSG_INIT;
	uint32_t newly;

	if (!name) {
		np_emu_logf(
			emu, LOG_WARNING,
			"write of 0x%08x at 0x%04x: no register there; ignored",
			value, off);
		return;
	}
	if (off == NP_REG_CONTROL) {
		control_write(emu, value);
		return;
	}

	pthread_mutex_lock(&emu->lock);
	if (emu->status & NP_STATUS_RESETTING) {
		pthread_mutex_unlock(&emu->lock);
		np_emu_logf(emu, LOG_WARNING,
			    "write of 0x%08x to %s while the card resets; "
			    "ignored (wait for NP_STATUS_READY)",
			    value, name);
		return;
	}
	switch (off) {
	case NP_REG_INT_STATUS:
		emu->int_status &= ~value;
		break;
	case NP_REG_INT_ENABLE:
		if (value & ~NP_EMU_IRQ_MASK)
			np_emu_msgf(&msg, LOG_WARNING,
				    "INT_ENABLE write 0x%08x: bits 0x%08x name "
				    "no vector; ignored",
				    value, value & ~NP_EMU_IRQ_MASK);
		value &= NP_EMU_IRQ_MASK;
		/* Like a pending bit in the MSI-X PBA: a vector enabled
		 * while its status bit is set is delivered now. */
		newly = value & ~emu->int_enable & emu->int_status;
		emu->int_enable = value;
		np_emu_defer_irq_locked(emu, newly);
		break;
	case NP_REG_SCRATCH:
		emu->scratch = value;
		break;
	case NP_REG_USE_WEIGHTS:
	case NP_REG_USE_KV:
	case NP_REG_USE_PROG:
	case NP_REG_USE_FB:
		emu->use[(off - NP_REG_USE_WEIGHTS) / 4] = value;
		break;
	case NP_REG_EVENT_IRQ_LO:
		emu->event_irq = (emu->event_irq & ~0xffffffffull) | value;
		break;
	case NP_REG_EVENT_IRQ_HI:
		emu->event_irq = (emu->event_irq & 0xffffffffull) |
				 (uint64_t)value << 32;
		break;
	case NP_REG_EVENT_PEND_LO:
		emu->event_pend &= ~(uint64_t)value;
		break;
	case NP_REG_EVENT_PEND_HI:
		emu->event_pend &= ~((uint64_t)value << 32);
		break;
	default:
		pthread_mutex_unlock(&emu->lock);
		np_emu_logf(emu, LOG_WARNING,
			    "write of 0x%08x to read-only register %s "
			    "(0x%03x); ignored",
			    value, name, off);
		return;
	}
	pthread_mutex_unlock(&emu->lock);
	np_emu_msg_flush(emu, &msg);
}

uint32_t np_emu_mmio_read(struct np_emu *emu, uint64_t offset)
{
	uint32_t off = (uint32_t)offset;

	if (atomic_load(&emu->dead))
		return 0xffffffffu; /* no completion: the bus answers ones */
	if (!check_access(emu, offset, "read"))
		return 0;
	if (off < NP_DMA_BASE(0))
		return global_read(emu, off);
	if (is_queue_block(off)) {
		struct np_emu_queue *q = queue_at(emu, off, "read");

		return q ? np_emu_queue_read(q, off % NP_QUEUE_BLOCK_SIZE) : 0;
	}
	if (is_mailbox_event(off))
		return atomic_load(&emu->events[(off - NP_MBOX_OFFSET) / 4u]);
	np_emu_logf(emu, LOG_WARNING,
		    "read at 0x%04x: no register there; reads as 0", off);
	return 0;
}

void np_emu_mmio_write(struct np_emu *emu, uint64_t offset, uint32_t value)
{
	uint32_t off = (uint32_t)offset;

	if (atomic_load(&emu->dead) || !check_access(emu, offset, "write"))
		return;
	if (off < NP_DMA_BASE(0)) {
		global_write(emu, off, value);
		return;
	}
	if (is_queue_block(off)) {
		struct np_emu_queue *q = queue_at(emu, off, "write");

		if (q)
			np_emu_queue_write(q, off % NP_QUEUE_BLOCK_SIZE, value);
		return;
	}
	if (is_mailbox_event(off)) {
		bool resetting;

		pthread_mutex_lock(&emu->lock);
		resetting = emu->status & NP_STATUS_RESETTING;
		pthread_mutex_unlock(&emu->lock);
		if (resetting) {
			np_emu_logf(emu, LOG_WARNING,
				    "mailbox write of %u to event %u while the "
				    "card resets; ignored",
				    value, (off - NP_MBOX_OFFSET) / 4u);
			return;
		}
		np_emu_signal_event(emu, (off - NP_MBOX_OFFSET) / 4u, value,
				    false);
		return;
	}
	np_emu_logf(emu, LOG_WARNING,
		    "write of 0x%08x at 0x%04x: no register there; ignored",
		    value, off);
}
