// SPDX-License-Identifier: MIT
/*
 * The architecture table (npim_arch.h): one row per model architecture
 * np compiles, with its GGUF key prefix, tensor names, features and
 * defaults, and the lookup that refuses the others by name.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "npim.h"
#include "npim_arch.h"

/* llama.cpp's tensor names, which the architectures below share */
static const char *const llama_tensors[NP_T_COUNT] = {
	[NP_T_ATTN_NORM] = "attn_norm",
	[NP_T_Q] = "attn_q",
	[NP_T_K] = "attn_k",
	[NP_T_V] = "attn_v",
	[NP_T_O] = "attn_output",
	[NP_T_FFN_NORM] = "ffn_norm",
	[NP_T_GATE] = "ffn_gate",
	[NP_T_UP] = "ffn_up",
	[NP_T_DOWN] = "ffn_down",
	[NP_T_TOK_EMBD] = "token_embd",
	[NP_T_OUT_NORM] = "output_norm",
	[NP_T_OUTPUT] = "output",
};

/* llama.cpp's defaults where a key is absent */
static const struct npim_arch archs[] = {
	{
		.name = "llama",
		.prefix = "llama",
		.tensor = llama_tensors,
		.features = NPIM_ARCH_TIED_OUTPUT,
		.rope_base = 10000.0f,
		.norm_eps = 1e-5f,
	},
	{
		.name = "granite",
		.prefix = "granite",
		.tensor = llama_tensors,
		.features = NPIM_ARCH_MULTIPLIERS | NPIM_ARCH_TIED_OUTPUT,
		.rope_base = 10000.0f,
		.norm_eps = 1e-5f,
	},
	{
		.name = "qwen2",
		.prefix = "qwen2",
		.tensor = llama_tensors,
		.features = NPIM_ARCH_QKV_BIAS | NPIM_ARCH_ROPE_NEOX |
			    NPIM_ARCH_TIED_OUTPUT,
		.rope_base = 10000.0f,
		.norm_eps = 1e-6f,
	},
};

const struct npim_arch *const npim_arch_synthetic = &archs[0];

/*
 * The families: Llama 2, Llama 3 (3.1's RoPE frequency factors, computed
 * as convert_hf_to_gguf.py does), Mistral (a llama GGUF, RoPE base 10^6
 * from v0.2 on), Granite 3 (the multipliers of granite-3.0-2b) and Qwen2.
 */
static const struct npim_family families[] = {
	{.name = "llama", .arch = &archs[0], .rope_base = 10000.0f},
	{.name = "llama3",
	 .arch = &archs[0],
	 .parts = NPIM_FAM_ROPE_FACTORS,
	 .rope_base = 500000.0f},
	{.name = "mistral", .arch = &archs[0], .rope_base = 1000000.0f},
	{.name = "granite",
	 .arch = &archs[1],
	 .rope_base = 10000.0f,
	 .embedding_scale = 12.0f,
	 .residual_scale = 0.22f,
	 .attention_scale = 0.015625f,
	 .logit_scale = 8.0f},
	{.name = "qwen2", .arch = &archs[2], .rope_base = 1000000.0f},
};

const struct npim_family *npim_family_find(const char *name)
{
	for (size_t i = 0; i < NPIM_ARRAY_SIZE(families); i++)
		if (!strcmp(families[i].name, name))
			return &families[i];
	return NULL;
}

void npim_family_list(char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = 0;
	for (size_t i = 0; i < NPIM_ARRAY_SIZE(families) && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s'%s'", n ? ", " : "",
				      families[i].name);
}

static const struct {
	uint32_t flag;
	const char *what;
} features[] = {
	{NPIM_ARCH_QKV_BIAS, "Q/K/V biases"},
	{NPIM_ARCH_MULTIPLIERS, "Granite multipliers"},
	{NPIM_ARCH_TIED_OUTPUT, "a tied output embedding"},
	{NPIM_ARCH_ROPE_NEOX, "NeoX RoPE"},
};

/* "'llama', 'granite'": the rows whose features are all implemented */
static void supported(char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = 0;
	for (size_t i = 0; i < NPIM_ARRAY_SIZE(archs) && n < len; i++) {
		if (archs[i].features & ~NPIM_ARCH_IMPLEMENTED)
			continue;
		n += (size_t)snprintf(buf + n, len - n, "%s'%s'", n ? ", " : "",
				      archs[i].name);
	}
}

int npim_arch_usable(const struct npim_arch *a, const struct np_log *log)
{
	uint32_t missing = a->features & ~NPIM_ARCH_IMPLEMENTED;
	char list[256];
	const char *what = "a feature of a later np";

	if (!missing)
		return 0;
	for (size_t i = 0; i < NPIM_ARRAY_SIZE(features); i++) {
		if (missing & features[i].flag) {
			what = features[i].what;
			break;
		}
	}
	supported(list, sizeof(list));
	npim_log(log, LOG_ERR,
		 "model: architecture '%s' needs %s, which np does not "
		 "compile yet; np compiles %s models",
		 a->name, what, list);
	return -ENOTSUP;
}

int npim_arch_find(const char *name, size_t len, const struct np_log *log,
		   const struct npim_arch **out)
{
	char list[256];

	*out = NULL;
	for (size_t i = 0; i < NPIM_ARRAY_SIZE(archs); i++) {
		if (strlen(archs[i].name) != len ||
		    memcmp(archs[i].name, name, len))
			continue;
		if (npim_arch_usable(&archs[i], log))
			return -ENOTSUP;
		*out = &archs[i];
		return 0;
	}
	supported(list, sizeof(list));
	npim_log(log, LOG_ERR,
		 "model: architecture '%.*s' is not supported; np compiles %s "
		 "models",
		 (int)(len > 64 ? 64 : len), name, list);
	return -ENOTSUP;
}

void npim_arch_key(const struct npim_arch *a, const char *key, char *buf,
		   size_t len)
{
	snprintf(buf, len, "%s.%s", a->prefix, key);
}

void npim_arch_tensor_name(const struct npim_arch *a, int tensor,
			   uint32_t layer, char *buf, size_t len)
{
	if (tensor < NP_T_TOK_EMBD)
		snprintf(buf, len, "blk.%u.%s.weight", layer,
			 a->tensor[tensor]);
	else
		snprintf(buf, len, "%s.weight", a->tensor[tensor]);
}

void npim_arch_bias_name(const struct npim_arch *a, int tensor, uint32_t layer,
			 char *buf, size_t len)
{
	snprintf(buf, len, "blk.%u.%s.bias", layer, a->tensor[tensor]);
}
