/* SPDX-License-Identifier: MIT */
/* Suites and shared helpers of the model test runner. */
#ifndef TST_MODEL_TEST_H
#define TST_MODEL_TEST_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "np/model.h"

Suite *np_suite_gguf(void);
Suite *np_suite_dequant(void);
Suite *np_suite_arch(void);
Suite *np_suite_tok(void);
Suite *np_suite_quant(void);
Suite *np_suite_compile(void);
Suite *np_suite_ref(void);
Suite *np_suite_family(void);
Suite *np_suite_vocab(void);
Suite *np_suite_chat(void);
Suite *np_suite_calib(void);
Suite *np_suite_demo(void);
Suite *np_suite_quality(void);

/* Find the reference vocabularies of NP_VOCAB_DIR for np_suite_vocab:
 * their count, or -errno when the directory cannot be read */
int tst_vocab_scan(void);
/* $NP_VOCAB_DIR, else the CMake cache variable NP_VOCAB_DIR */
const char *tst_vocab_dir(void);

/* Log capture: the last message logged through tst_log */
extern const struct np_log tst_log;
extern char tst_last[1024];
void tst_reset(void);

/* The shipped sample text (malloc()ed, caller frees) */
char *tst_sample(size_t *len);

/* Write a synthetic model to a temporary GGUF; returns the path
 * (static buffer). */
const char *tst_write_model(const struct np_model_shape *s, uint32_t wtype,
			    int tok_kind);

#endif /* TST_MODEL_TEST_H */
