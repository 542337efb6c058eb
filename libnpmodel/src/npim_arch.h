/* SPDX-License-Identifier: MIT */
/*
 * Model architectures (arch.c): each is described once, by its
 * general.architecture name, the prefix of its GGUF keys, its tensor
 * names, the features it needs beyond a plain llama decoder and its
 * hyperparameter defaults. The loader, the GGUF writer and the error
 * messages read the table; nothing else names an architecture.
 */
#ifndef NPIM_ARCH_H
#define NPIM_ARCH_H

#include <stddef.h>
#include <stdint.h>

#include "np/model.h"

/* Features of an architecture beyond llama's */
/* attn_q/k/v have .bias tensors */
#define NPIM_ARCH_QKV_BIAS (1u << 0)
/* Granite's embedding, residual, attention and logit scales */
#define NPIM_ARCH_MULTIPLIERS (1u << 1)
/* output.weight may be absent: the token embedding is then the output */
#define NPIM_ARCH_TIED_OUTPUT (1u << 2)
/* RoPE rotates pairs (i, i + hd/2), not adjacent pairs (2i, 2i + 1) */
#define NPIM_ARCH_ROPE_NEOX (1u << 3)

/* The features the loader, the references and the compiler implement */
#define NPIM_ARCH_IMPLEMENTED                                                 \
	(NPIM_ARCH_QKV_BIAS | NPIM_ARCH_MULTIPLIERS | NPIM_ARCH_TIED_OUTPUT | \
	 NPIM_ARCH_ROPE_NEOX)

struct npim_arch {
	const char *name; /* general.architecture */
	const char *prefix; /* of its keys: "<prefix>.block_count" */
	/* [NP_T_COUNT] tensor base names by enum np_model_tensor:
	 * "blk.<layer>.<name>.weight" for a layer's, "<name>.weight" for the
	 * others */
	const char *const *tensor;
	uint32_t features; /* NPIM_ARCH_* */
	float rope_base; /* when <prefix>.rope.freq_base is absent */
	float norm_eps; /* when <prefix>.attention.layer_norm_rms_epsilon is */
};

/* The architecture of synthetic models (np_model_synthetic) */
extern const struct npim_arch *const npim_arch_synthetic;

/* What a synthetic model of a family carries beyond its row's features */
#define NPIM_FAM_ROPE_FACTORS (1u << 0) /* Llama 3.1's rope_freqs.weight */

/*
 * A model family np_model_synthetic_arch generates: several families share
 * an architecture (Mistral's files are general.architecture "llama").
 */
struct npim_family {
	const char *name;
	const struct npim_arch *arch;
	uint32_t parts; /* NPIM_FAM_* */
	float rope_base; /* written as <prefix>.rope.freq_base */
	/* Granite's multipliers (NPIM_ARCH_MULTIPLIERS rows) */
	float embedding_scale, residual_scale, attention_scale, logit_scale;
};

/* The family of that name, or NULL */
const struct npim_family *npim_family_find(const char *name);
/* "'llama', 'llama3', ...": every family name into buf */
void npim_family_list(char *buf, size_t len);

/*
 * The architecture a general.architecture value names (len bytes, not
 * NUL-terminated), if this build compiles it. Returns 0, or -ENOTSUP
 * (logged: the name, what is missing, the architectures np compiles) for
 * a name not in the table or a row needing features not implemented.
 */
int npim_arch_find(const char *name, size_t len, const struct np_log *log,
		   const struct npim_arch **out);
/* The feature check of npim_arch_find on one row: 0 or -ENOTSUP. */
int npim_arch_usable(const struct npim_arch *a, const struct np_log *log);

/* "<prefix>.<key>" into buf */
void npim_arch_key(const struct npim_arch *a, const char *key, char *buf,
		   size_t len);
/* A tensor's GGUF name into buf (layer ignored for the model-level ones) */
void npim_arch_tensor_name(const struct npim_arch *a, int tensor,
			   uint32_t layer, char *buf, size_t len);
/* The name of the bias of layer tensor `tensor`: "blk.<l>.attn_q.bias" */
void npim_arch_bias_name(const struct npim_arch *a, int tensor, uint32_t layer,
			 char *buf, size_t len);

#endif /* NPIM_ARCH_H */
