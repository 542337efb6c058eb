/* SPDX-License-Identifier: MIT */
/*
 * np emulator core: execution of compute jobs (NP_JOB_OP_LAYER).
 */
#ifndef NP_EMU_COMPUTE_H
#define NP_EMU_COMPUTE_H

#include <stdint.h>

struct np_emu;

/*
 * Run the layer job (prog, arg, arg_len, out) on emu's memories, on the
 * compute queue's worker. Returns NP_ERR_NONE or the NP_ERR_* the queue
 * stops with; *err_addr names the faulting card address for
 * NP_ERR_SRC_RANGE/NP_ERR_DST_RANGE.
 */
uint32_t np_emu_layer_job(struct np_emu *emu, uint64_t prog, uint64_t arg,
			  uint32_t arg_len, uint64_t out, uint64_t *err_addr);

#endif /* NP_EMU_COMPUTE_H */
