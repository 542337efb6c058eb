/* SPDX-License-Identifier: MIT */
/*
 * np emulator core: execution of compute jobs (NP_JOB_OP_LAYER).
 */
#ifndef NP_EMU_COMPUTE_H
#define NP_EMU_COMPUTE_H

#include <stdint.h>

struct np_emu;
struct np_emu_desc;

/*
 * Run layer job d (prog, arg, arg_len, out) on emu's memories, on the
 * compute queue, reset generation qgen. next[0..n_next) are the layer jobs
 * that follow d in queue order, ready to run: they may run along
 * (compute.c). Returns
 * NP_ERR_NONE or the NP_ERR_* the queue stops with; *err_addr names the
 * faulting card address for NP_ERR_SRC_RANGE/NP_ERR_DST_RANGE.
 */
uint32_t np_emu_layer_job(struct np_emu *emu, const struct np_emu_desc *d,
			  const struct np_emu_desc *next, unsigned int n_next,
			  unsigned int qgen, uint64_t *err_addr);

#endif /* NP_EMU_COMPUTE_H */
