/* SPDX-License-Identifier: MIT */
/*
 * Quantization quality, measured as engines are compared, and the
 * post-training quantization (PTQ) methods it measures.
 *
 *   np_quality_compare()    one token: KL divergence of the next-token
 *                           distribution, same top token, logit cosine
 *   np_quality_summarize()  many tokens: mean and 99th-percentile KLD,
 *                           same-top %, mean cosine
 *   np_quality_create()     the float reference's logits over a text
 *                           (teacher forced), kept to compare against
 *   np_quality_measure()    one arithmetic over the same text: the cards'
 *                           (a precision mode, through the integer
 *                           reference, bit-identical with the cards) or
 *                           the ggml Q4_0 / Q8_0 comparator
 *   np_model_ptq()          a model transformed for quantization
 *                           (smoothing, rotation), the float function kept
 *
 * docs/numerics.md ("Quality" and "Post-training quantization") defines
 * every figure and method.
 */
#ifndef NP_QUALITY_H
#define NP_QUALITY_H

#include <stddef.h>
#include <stdint.h>

#include <np/log.h>
#include <np/model.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One token: the test distribution against the reference */
struct np_quality_tok {
	double kld; /* KL(P_ref || P_test), nats, >= 0 */
	double cos; /* cosine of the two logit vectors */
	int same_top; /* 1 when both argmax (first index on ties) agree */
};

/*
 * P = softmax(ref), Q = softmax(test) over n logits, in double:
 * kld = sum_i P_i (log P_i - log Q_i); cos = ref.test / (|ref| |test|)
 * (1 when both are zero vectors, 0 when one is). Returns 0, -EINVAL for
 * n of 0 or a logit that is not finite.
 */
int np_quality_compare(const float *ref, const float *test, size_t n,
		       struct np_quality_tok *out);

struct np_quality_sum {
	uint64_t n; /* tokens */
	double kld_mean;
	double kld_p99; /* nearest rank: the ceil(0.99 n)-th smallest */
	double kld_max;
	double same_top; /* fraction, 0..1 */
	double cos_mean;
	uint64_t resv[4];
};

/* Summary of n tokens; -EINVAL for n of 0, -ENOMEM. */
int np_quality_summarize(const struct np_quality_tok *t, size_t n,
			 struct np_quality_sum *out);

/* ---------------------------------------------------------------- */
/* PTQ: model transforms                                              */

/*
 * SmoothQuant-style outlier migration where the float function is kept
 * exactly and the card has the arithmetic for it: per channel j of the
 * attention output (V rows / O columns) and of the FFN product (up rows /
 * down columns), s_j = max|X_j|^a / max|W_j|^(1-a) over the calibration
 * tokens.
 */
#define NP_PTQ_SMOOTH (1u << 0)
/*
 * QuaRot-style rotation of the residual stream by a randomised Hadamard
 * matrix (dim must be a power of two): norm gains folded into the
 * consuming weights, rows reading the stream times Q^T, rows writing it
 * Q times, embeddings and the output layer rotated alike.
 */
#define NP_PTQ_ROTATE (1u << 1)
#define NP_PTQ_ALL (NP_PTQ_SMOOTH | NP_PTQ_ROTATE)

struct np_ptq_opts {
	uint32_t flags; /* NP_PTQ_* */
	float smooth_alpha; /* migration strength a; 0: 0.5 */
	uint64_t seed; /* rotation signs; 0: a fixed default */
	uint64_t resv[4]; /* must be zero */
};

/*
 * A new model computing the same float function as m (to float rounding)
 * with its weights transformed by the methods of o->flags (none: a plain
 * copy). Its weights are materialised as F32 (4 bytes per parameter);
 * m (and its gguf) must outlive it. tokens (n of them) are the
 * calibration text, needed by NP_PTQ_SMOOTH. Returns 0, -EINVAL (logged: unknown flag, resv not zero,
 * a dimension rotation cannot use, smoothing without tokens), -ENOMEM, or
 * the model's row read error.
 */
int np_model_ptq(const struct np_model *m, const int32_t *tokens, size_t n,
		 const struct np_ptq_opts *o, const struct np_log *log,
		 struct np_model **out);

/* ---------------------------------------------------------------- */
/* Measurement                                                        */

struct np_quality;

/*
 * Run the float reference of m teacher forced over tokens[0..n) and keep
 * the n next-token logit vectors (n x vocab floats). m must outlive the
 * handle. Returns 0, -EINVAL for n outside 1..65536, -ERANGE for a token
 * outside the vocabulary, -ENOMEM.
 */
int np_quality_create(const struct np_model *m, const int32_t *tokens, size_t n,
		      const struct np_log *log, struct np_quality **out);
void np_quality_destroy(struct np_quality *q);

/* What np_quality_measure runs */
enum np_quality_arith {
	/* the cards in opts.precision: np_model_ptq, np_quant_calibrate,
	 * np_compile and the integer reference */
	NP_QUALITY_CARDS = 0,
	/* the float reference with weights fake-quantised to ggml Q4_0
	 * and every matmul input to Q8_0 (NP_REF_FLOAT_Q4_0_Q8_0) */
	NP_QUALITY_GGML_Q4_0 = 1,
};

struct np_quality_opts {
	uint32_t arith; /* enum np_quality_arith */
	uint32_t precision; /* enum np_precision; 0: the default */
	uint32_t ptq; /* NP_PTQ_* model transforms (CARDS only) */
	uint32_t compile_flags; /* NP_COMPILE_* added (CARDS only) */
	const struct np_ptq_opts *ptq_opts; /* NULL: defaults */
	uint64_t resv[4]; /* must be zero */
};

/*
 * Measure one arithmetic against the kept float logits over the same
 * tokens. calib (n_calib tokens; not the measured text) calibrates the
 * activation scales and the PTQ transforms of CARDS. Returns 0, -EINVAL
 * (logged: bad option, no calibration tokens for CARDS), -EOPNOTSUPP
 * when this build's compiler does not compute opts->precision, or the
 * error of the step that failed (logged by it).
 */
int np_quality_measure(struct np_quality *q, const int32_t *calib,
		       size_t n_calib, const struct np_quality_opts *opts,
		       struct np_quality_sum *out);

#ifdef __cplusplus
}
#endif

#endif /* NP_QUALITY_H */
