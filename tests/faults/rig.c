// SPDX-License-Identifier: MIT
/* The fault suites' rig: a compiled synthetic model on emulated cards. */
#include <stdio.h>

#include "np/model.h"
#include "np/np.h"
#include "np/pipeline.h"
#include "test.h"

char tst_last_log[512];

static void log_fn(void *opaque, enum np_log_level level, const char *msg)
{
	(void)opaque;
	if (level <= NP_LOG_ERR)
		snprintf(tst_last_log, sizeof(tst_last_log), "%s", msg);
}

void tst_rig_open(struct tst_rig *g, const struct np_model_shape *shape,
		  uint64_t seed, uint32_t n_cards, uint32_t batch,
		  uint32_t max_seq)
{
	/* A short wait timeout makes a hung or dead card quick to detect;
	 * a spurious timeout on a loaded machine is recovered like any
	 * other failure and changes no token. */
	struct np_open_opts o = {.log = {.fn = log_fn}, .timeout_ms = 1500};
	struct np_compile_opts co = {.n_cards = n_cards,
				     .batch = batch,
				     .max_seq = max_seq,
				     .out_cards = 2};
	struct np_pipeline_opts po = {.frame_tokens = 8};
	char spec[16];

	snprintf(spec, sizeof(spec), "emu:%u", n_cards + 1);
	ck_assert_int_eq(np_open(spec, &o, &g->ctx), 0);
	ck_assert_int_eq(np_model_synthetic(shape, seed, &g->model), 0);
	ck_assert_int_eq(np_quant_calib_default(g->model, &g->calib), 0);
	ck_assert_int_eq(np_compile(g->model, g->calib, &co, NULL, &g->comp),
			 0);
	ck_assert_int_eq(np_pipeline_create(g->ctx, g->comp, &po, &g->pipe), 0);
}

void tst_rig_close(struct tst_rig *g)
{
	np_pipeline_destroy(g->pipe);
	np_compiled_destroy(g->comp);
	np_quant_calib_destroy(g->calib);
	np_model_destroy(g->model);
	np_close(g->ctx);
	*g = (struct tst_rig){0};
}
