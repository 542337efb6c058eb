// SPDX-License-Identifier: MIT
/*
 * np emulator core: telemetry registers.
 *
 * A small thermal/power model driven by how busy the queues were. Workers
 * add the time they spend moving data or running jobs to emu->busy_ns; the
 * model folds it in lazily whenever a telemetry register is read, so an idle
 * card costs no timer wake-ups:
 *   util   EWMA of the busy fraction, 100 ms time constant (NP_REG_BUSY)
 *   power  15 W idle + 60 W at full load, plus a small per-card offset
 *   temp   first-order lag (2 s) towards 40 C idle .. 85 C at full load
 *   clock  400 MHz, halved while throttled (temp above NP_REG_TEMP_MAX)
 * Entering throttling raises NP_IRQ_ERROR. All of it is under emu->lock.
 */
#include "emu_priv.h"

#define UTIL_TAU_NS 100000000.0
#define TEMP_TAU_NS 2000000000.0
#define IDLE_TEMP_MC 40000.0
#define LOAD_TEMP_MC 45000.0
#define IDLE_POWER_MW 15000.0
#define LOAD_POWER_MW 60000.0
#define CORE_CLK_MHZ 400u
#define IDLE_VOLTAGE_MV 720.0
#define LOAD_VOLTAGE_MV 60.0
#define THROTTLE_HYST_MC 5000.0

/* Per-card offset so sixteen cards do not all read exactly the same. */
static double card_offset(const struct np_emu *emu, unsigned int scale)
{
	return (double)((emu->cfg.card_index * 7u + 3u) % 11u) * scale;
}

void np_emu_telemetry_reset(struct np_emu *emu, uint64_t now)
{
	emu->reset_ns = now;
	emu->tele_ns = now;
	emu->tele_busy_ns = 0;
	emu->util = 0.0;
	emu->temp_mc = IDLE_TEMP_MC + card_offset(emu, 100);
	emu->throttle_count = 0;
}

static void model_update(struct np_emu *emu, uint64_t now)
{
	uint64_t busy = atomic_load(&emu->busy_ns);
	double dt, u, a, target;

	if (now <= emu->tele_ns)
		return;
	dt = (double)(now - emu->tele_ns);
	/* busy_ns restarts at 0 on reset, after tele_busy_ns did. */
	u = busy >= emu->tele_busy_ns ?
		    (double)(busy - emu->tele_busy_ns) / dt :
		    0.0;
	if (u > 1.0)
		u = 1.0;
	emu->tele_ns = now;
	emu->tele_busy_ns = busy;

	a = dt / (dt + UTIL_TAU_NS);
	emu->util += (u - emu->util) * a;
	target =
		IDLE_TEMP_MC + card_offset(emu, 100) + LOAD_TEMP_MC * emu->util;
	a = dt / (dt + TEMP_TAU_NS);
	emu->temp_mc += (target - emu->temp_mc) * a;

	if (!(emu->status & NP_STATUS_THROTTLED) &&
	    emu->temp_mc > NP_EMU_TEMP_MAX_MC) {
		emu->status |= NP_STATUS_THROTTLED;
		emu->throttle_count++;
		np_emu_error_irq_locked(emu);
	} else if ((emu->status & NP_STATUS_THROTTLED) &&
		   emu->temp_mc < NP_EMU_TEMP_MAX_MC - THROTTLE_HYST_MC) {
		emu->status &= ~NP_STATUS_THROTTLED;
	}
}

/* A heat spike above the throttle threshold (np_emu_inject). */
void np_emu_telemetry_overheat(struct np_emu *emu, uint64_t now)
{
	model_update(emu, now);
	emu->temp_mc = NP_EMU_TEMP_MAX_MC + THROTTLE_HYST_MC;
	model_update(emu, now + 1);
}

uint32_t np_emu_telemetry_read(struct np_emu *emu, uint32_t reg)
{
	uint64_t now = np_emu_now_ns();
	uint64_t v64;
	uint32_t v = 0;

	pthread_mutex_lock(&emu->lock);
	model_update(emu, now);
	switch (reg) {
	case NP_REG_TEMP:
		v = (uint32_t)emu->temp_mc;
		break;
	case NP_REG_POWER:
		v = (uint32_t)(IDLE_POWER_MW + card_offset(emu, 50) +
			       LOAD_POWER_MW * emu->util);
		break;
	case NP_REG_VOLTAGE:
		v = (uint32_t)(IDLE_VOLTAGE_MV + LOAD_VOLTAGE_MV * emu->util);
		break;
	case NP_REG_CORE_CLK:
		v = emu->status & NP_STATUS_THROTTLED ? CORE_CLK_MHZ / 2u :
							CORE_CLK_MHZ;
		break;
	case NP_REG_UPTIME_LO:
		v64 = (now - emu->reset_ns) / 1000000u;
		emu->uptime_hi_latch = (uint32_t)(v64 >> 32);
		v = (uint32_t)v64;
		break;
	case NP_REG_UPTIME_HI:
		v = emu->uptime_hi_latch;
		break;
	case NP_REG_DMA_BYTES_HI:
		v = emu->dma_bytes_hi_latch;
		break;
	case NP_REG_DMA_ERRORS:
		v = atomic_load(&emu->dma_errors);
		break;
	case NP_REG_SRAM_CE:
		v = atomic_load(&emu->sram_ce);
		break;
	case NP_REG_SRAM_UE:
		v = atomic_load(&emu->sram_ue);
		break;
	case NP_REG_DMA_BYTES_LO:
		v64 = atomic_load(&emu->dma_bytes);
		emu->dma_bytes_hi_latch = (uint32_t)(v64 >> 32);
		v = (uint32_t)v64;
		break;
	case NP_REG_DMA_DESCS:
		v = atomic_load(&emu->dma_descs);
		break;
	case NP_REG_JOBS:
		v = atomic_load(&emu->jobs);
		break;
	case NP_REG_THROTTLE_COUNT:
		v = emu->throttle_count;
		break;
	case NP_REG_BUSY:
		v = (uint32_t)(emu->util * 100.0 + 0.5);
		break;
	case NP_REG_TEMP_CRIT:
		v = NP_EMU_TEMP_CRIT_MC;
		break;
	case NP_REG_TEMP_MAX:
		v = NP_EMU_TEMP_MAX_MC;
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&emu->lock);
	return v;
}
