/* SPDX-License-Identifier: MIT */
/*
 * npk: the card's arithmetic. Runs the layer programs whose format
 * np_prog.h defines.
 *
 * The library depends on nothing but libc and the two contract headers
 * (np_abi.h, np_prog.h), so the emulator core (the hardware) and
 * libnpmodel's integer reference (the oracle) link the very same code, and
 * the QEMU device compiles it in QEMU's tree: hardware model and oracle
 * cannot drift apart. docs/numerics.md specifies every operation.
 */
#ifndef NPK_H
#define NPK_H

#include <stddef.h>
#include <stdint.h>

#include "np_prog.h"

/* npk_run takes a job's tokens in groups of this many, each group in one
 * pass over the weights */
#define NPK_GROUP 32u

/* ---- primitives (docs/numerics.md) ---- */
int64_t npk_rshift_round(int64_t v, unsigned int shift);
int32_t npk_requant(int64_t v, struct npk_rq rq, int32_t lo, int32_t hi);
uint64_t npk_isqrt64(uint64_t v);
int64_t npk_div_round(int64_t num, int64_t den);
/* sin and cos of angle (2^-32 turns), Q14 */
void npk_sincos(uint32_t angle, int32_t *s, int32_t *c);
/* 2^(-e / 256) in Q15, e >= 0 */
int32_t npk_exp2_neg_q8(int64_t e);
/* x int16[n] -> q[n] in [lo, hi]: RMS normalisation + requantisation */
void npk_rmsnorm_q(const int16_t *x, uint32_t n, uint64_t eps, struct npk_rq rq,
		   int32_t lo, int32_t hi, int8_t *q);
/* acc[r] = sum_c w[r][c] * a[c]; w packed per bits (2, 4, 8), a holds
 * int4/int8 */
void npk_matvec(const uint8_t *w, uint32_t rows, uint32_t cols,
		uint32_t row_bytes, uint32_t bits, const int8_t *a,
		int32_t *acc);
/* pack int4 values (-8..7) two per byte, low nibble first */
void npk_pack4(const int8_t *q, uint32_t n, uint8_t *out);
int8_t npk_unpack4(const uint8_t *p, uint32_t i);
/* pack int2 values (-2..1) of a row of n columns four per byte, in the
 * blocks of 256 columns np_prog.h describes: ceil(n / 4) bytes */
void npk_pack2(const int8_t *q, uint32_t n, uint8_t *out);
/* column i of such a row of cols columns */
int8_t npk_unpack2(const uint8_t *p, uint32_t cols, uint32_t i);

/* ---- layer programs ---- */

/*
 * Validate the program block at card address prog against an SRAM of
 * sram_size bytes: magic, version, shapes, every offset and extent.
 * Returns 0 or an NP_ERR_* (np_abi.h) value, NP_ERR_BAD_PROGRAM mostly.
 */
int npk_validate(const uint8_t *sram, uint64_t sram_size, uint64_t prog);
/*
 * For a program npk_validate accepted: 1 if npk_run of it leaves every byte
 * npk_validate read as it was (its block and its tensors' requantisation
 * pairs lie outside the KV units it writes), 0 if it may not. Only then may
 * a caller that sees every other write into the SRAM skip validating the
 * program again.
 */
int npk_validate_stable(const uint8_t *sram, uint64_t sram_size, uint64_t prog);
/* Scratch bytes npk_run needs for this (validated) program. */
size_t npk_scratch_size(const uint8_t *sram, uint64_t prog);
/* Output bytes for n tokens */
size_t npk_out_size(const uint8_t *sram, uint64_t prog, uint32_t n_tokens);
/*
 * Run a validated program on arg (arg_len bytes, layout above), writing
 * out (out_len bytes). KV entries are written into sram. Returns 0 or
 * NP_ERR_BAD_PROGRAM for arguments that do not match the program (token
 * count, slot, position, lengths).
 */
int npk_run(uint8_t *sram, uint64_t prog, const void *arg, size_t arg_len,
	    void *out, size_t out_len, void *scratch);

#endif /* NPK_H */
