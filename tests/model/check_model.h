/* SPDX-License-Identifier: MIT */
/* Shared helpers of the model suite. */
#ifndef CHECK_MODEL_H
#define CHECK_MODEL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "np/model.h"

Suite *np_suite_gguf(void);
Suite *np_suite_arch(void);
Suite *np_suite_tok(void);
Suite *np_suite_quant(void);
Suite *np_suite_compile(void);
Suite *np_suite_ref(void);

/* Log capture: the last message logged through cm_log */
extern const struct np_model_log cm_log;
extern char cm_last[1024];
void cm_reset(void);

/* The shipped sample text (malloc()ed, caller frees) */
char *cm_sample(size_t *len);

/* Write a synthetic model to a temporary GGUF; returns the path
 * (static buffer). */
const char *cm_write_model(const struct np_model_shape *s, uint32_t wtype,
			   int tok_kind);

#endif
