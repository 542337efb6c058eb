// SPDX-License-Identifier: MIT
/*
 * Chat templates (np/chat.h): detection by the substrings llama.cpp's
 * llm_chat_detect_template tests, in its order, so that a template of a
 * family np does not render is named rather than mistaken for one it
 * does; rendering exactly as llama.cpp's llm_chat_apply_template.
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <string.h>
#include <syslog.h>

#include <np/chat.h>

#include "npim.h"

static const char *const family_names[] = {
	[NP_CHAT_CHATML] = "chatml",
	[NP_CHAT_LLAMA2] = "llama2",
	[NP_CHAT_LLAMA2_SYS] = "llama2-sys",
	[NP_CHAT_LLAMA2_SYS_BOS] = "llama2-sys-bos",
	[NP_CHAT_LLAMA2_SYS_STRIP] = "llama2-sys-strip",
	[NP_CHAT_MISTRAL_V1] = "mistral-v1",
	[NP_CHAT_MISTRAL_V3] = "mistral-v3",
	[NP_CHAT_MISTRAL_V3_TEKKEN] = "mistral-v3-tekken",
	[NP_CHAT_MISTRAL_V7] = "mistral-v7",
	[NP_CHAT_LLAMA3] = "llama3",
	[NP_CHAT_GRANITE] = "granite",
};

const char *np_chat_family_name(enum np_chat_family f)
{
	if ((unsigned int)f == 0 || (size_t)f >= NPIM_ARRAY_SIZE(family_names))
		return NULL;
	return family_names[f];
}

int np_chat_family_from_name(const char *name, enum np_chat_family *out)
{
	for (size_t f = 1; f < NPIM_ARRAY_SIZE(family_names); f++)
		if (!strcmp(name, family_names[f])) {
			*out = (enum np_chat_family)f;
			return 0;
		}
	return -ENOENT;
}

const char *np_chat_family_list(void)
{
	return "chatml, llama2, llama2-sys, llama2-sys-bos, llama2-sys-strip, "
	       "mistral-v1, mistral-v3, mistral-v3-tekken, mistral-v7, llama3, "
	       "granite";
}

#define FW_BAR "\xef\xbd\x9c" /* U+FF5C, DeepSeek's bar */
#define SPM_SP "\xe2\x96\x81" /* U+2581 */

struct tmpl {
	const char *s;
	size_t n;
};

static int has(struct tmpl t, const char *needle)
{
	return memmem(t.s, t.n, needle, strlen(needle)) != NULL;
}

/* The family (> 0), or 0 with *other set to the llama.cpp family np does
 * not render, or 0 with *other NULL for no family */
static int detect(struct tmpl t, const char **other)
{
	*other = NULL;
	for (size_t f = 1; f < NPIM_ARRAY_SIZE(family_names); f++)
		if (strlen(family_names[f]) == t.n &&
		    !memcmp(t.s, family_names[f], t.n))
			return (int)f;
	if (has(t, "<|im_start|>")) {
		if (has(t, "<|im_sep|>"))
			*other = "phi4";
		else if (has(t, "<end_of_utterance>"))
			*other = "smolvlm";
		return *other ? 0 : NP_CHAT_CHATML;
	}
	if ((t.n >= 7 && !memcmp(t.s, "mistral", 7)) || has(t, "[INST]")) {
		if (has(t, "[SYSTEM_PROMPT]"))
			return NP_CHAT_MISTRAL_V7;
		if (has(t, "' [INST] ' + system_message") ||
		    has(t, "[AVAILABLE_TOOLS]")) {
			if (has(t, " [INST]"))
				return NP_CHAT_MISTRAL_V1;
			if (has(t, "\"[INST]\""))
				return NP_CHAT_MISTRAL_V3_TEKKEN;
			return NP_CHAT_MISTRAL_V3;
		}
		if (has(t, "content.strip()"))
			return NP_CHAT_LLAMA2_SYS_STRIP;
		if (has(t, "bos_token + '[INST]"))
			return NP_CHAT_LLAMA2_SYS_BOS;
		if (has(t, "<<SYS>>"))
			return NP_CHAT_LLAMA2_SYS;
		return NP_CHAT_LLAMA2;
	}
	if (has(t, "<|assistant|>") && has(t, "<|end|>"))
		*other = "phi3";
	else if (has(t, "[gMASK]<sop>"))
		*other = "chatglm4";
	else if (has(t, "<|assistant|>") && has(t, "<|user|>"))
		*other = has(t, "</s>") ? "falcon3" : "glmedge";
	else if (has(t, "<|{{ item['role'] }}|>") &&
		 has(t, "<|begin_of_image|>"))
		*other = "glmedge";
	else if (has(t, "<|user|>") && has(t, "<|endoftext|>"))
		*other = "zephyr";
	else if (has(t, "bos_token + message['role']"))
		*other = "monarch";
	else if (has(t, "<start_of_turn>"))
		*other = "gemma";
	else if (has(t, "'\\n\\nAssistant: ' + eos_token"))
		*other = "orion";
	else if (has(t, "GPT4 Correct "))
		*other = "openchat";
	else if (has(t, "USER: ") && has(t, "ASSISTANT: "))
		*other = has(t, "SYSTEM: ") ? "vicuna-orca" : "vicuna";
	else if (has(t, "### Instruction:") && has(t, "<|EOT|>"))
		*other = "deepseek";
	else if (has(t, "<|START_OF_TURN_TOKEN|>") && has(t, "<|USER_TOKEN|>"))
		*other = "command-r";
	else if (has(t, "<|start_header_id|>") && has(t, "<|end_header_id|>"))
		return NP_CHAT_LLAMA3;
	else if (has(t, "[gMASK]sop"))
		*other = "chatglm3";
	else if (has(t, "<\xe7\x94\xa8\xe6\x88\xb7>")) /* <用户> */
		*other = "minicpm";
	else if (has(t, "'Assistant: ' + message['content'] + eos_token"))
		*other = "deepseek2";
	else if (has(t, "<" FW_BAR "Assistant" FW_BAR ">") &&
		 has(t, "<" FW_BAR "User" FW_BAR ">") &&
		 has(t,
		     "<" FW_BAR "end" SPM_SP "of" SPM_SP "sentence" FW_BAR ">"))
		*other = "deepseek3";
	else if (has(t, "[|system|]") && has(t, "[|assistant|]") &&
		 has(t, "[|endofturn|]"))
		*other = has(t, "[|tool|]") ? "exaone4" : "exaone3";
	else if (has(t, "rwkv-world") ||
		 has(t,
		     "{{- 'User: ' + message['content']|trim + '\\n\\n' -}}"))
		*other = "rwkv-world";
	else if (has(t, "<|start_of_role|>"))
		return NP_CHAT_GRANITE;
	return 0;
}

int np_chat_detect(const char *tmpl, size_t len, const struct np_log *log,
		   enum np_chat_family *out)
{
	const char *other;
	int f = detect((struct tmpl){tmpl, len}, &other);

	if (f > 0) {
		*out = (enum np_chat_family)f;
		return 0;
	}
	if (other) {
		npim_log(log, LOG_ERR,
			 "chat: the chat template is llama.cpp's '%s' family, "
			 "which np does not render; np renders %s: choose one "
			 "by name if it fits the model",
			 other, np_chat_family_list());
		return -ENOTSUP;
	}
	npim_log(log, LOG_ERR,
		 "chat: the chat template (%zu bytes, starting '%.*s') "
		 "matches no family np knows; choose one of %s by name",
		 len, (int)(len > 40 ? 40 : len), tmpl, np_chat_family_list());
	return -ENOENT;
}

int np_chat_from_gguf(const struct np_gguf *g, const struct np_log *log,
		      enum np_chat_family *out)
{
	const char *s;
	size_t l;
	int ret = np_gguf_get_str(g, "tokenizer.chat_template", &s, &l);

	if (ret == -ENOENT) {
		npim_log(log, LOG_ERR,
			 "chat: the file has no tokenizer.chat_template; "
			 "choose one of %s by name",
			 np_chat_family_list());
		return -ENOENT;
	}
	if (ret) {
		npim_log(log, LOG_ERR,
			 "chat: tokenizer.chat_template is not a string; the "
			 "file is corrupt");
		return -EINVAL;
	}
	return np_chat_detect(s, l, log, out);
}

/* ---------------------------------------------------------------- */
/* Rendering                                                          */

struct out {
	char *buf;
	size_t cap, n;
};

static void put_n(struct out *o, const char *s, size_t l)
{
	if (o->n < o->cap)
		memcpy(o->buf + o->n, s,
		       o->n + l <= o->cap ? l : o->cap - o->n);
	o->n += l;
}

static void put(struct out *o, const char *s)
{
	put_n(o, s, strlen(s));
}

static int c_space(char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

/* s without leading and trailing C-locale white space */
static void put_trim(struct out *o, const char *s)
{
	size_t a = 0, b = strlen(s);

	while (a < b && c_space(s[a]))
		a++;
	while (b > a && c_space(s[b - 1]))
		b--;
	put_n(o, s + a, b - a);
}

static void put_maybe_trim(struct out *o, const char *s, int trim)
{
	if (trim)
		put_trim(o, s);
	else
		put(o, s);
}

static void chatml(struct out *o, const struct np_chat_msg *m, size_t n,
		   int add_gen)
{
	for (size_t i = 0; i < n; i++) {
		put(o, "<|im_start|>");
		put(o, m[i].role);
		put(o, "\n");
		put(o, m[i].content);
		put(o, "<|im_end|>\n");
	}
	if (add_gen)
		put(o, "<|im_start|>assistant\n");
}

static void mistral_v7(struct out *o, const struct np_chat_msg *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(m[i].role, "system")) {
			put(o, "[SYSTEM_PROMPT] ");
			put(o, m[i].content);
			put(o, "[/SYSTEM_PROMPT]");
		} else if (!strcmp(m[i].role, "user")) {
			put(o, "[INST] ");
			put(o, m[i].content);
			put(o, "[/INST]");
		} else {
			put(o, " ");
			put(o, m[i].content);
			put(o, "</s>");
		}
	}
}

static void mistral(struct out *o, const struct np_chat_msg *m, size_t n,
		    enum np_chat_family f)
{
	const char *lead = f == NP_CHAT_MISTRAL_V1 ? " " : "";
	const char *trail = f == NP_CHAT_MISTRAL_V3_TEKKEN ? "" : " ";
	int inside = 0;

	for (size_t i = 0; i < n; i++) {
		if (!inside) {
			put(o, lead);
			put(o, "[INST]");
			put(o, trail);
			inside = 1;
		}
		if (!strcmp(m[i].role, "system")) {
			put(o, m[i].content);
			put(o, "\n\n");
		} else if (!strcmp(m[i].role, "user")) {
			put(o, m[i].content);
			put(o, lead);
			put(o, "[/INST]");
		} else {
			put(o, trail);
			put_maybe_trim(o, m[i].content,
				       f == NP_CHAT_MISTRAL_V3);
			put(o, "</s>");
			inside = 0;
		}
	}
}

static void llama2(struct out *o, const struct np_chat_msg *m, size_t n,
		   enum np_chat_family f)
{
	int sys = f != NP_CHAT_LLAMA2, bos = f == NP_CHAT_LLAMA2_SYS_BOS;
	int strip = f == NP_CHAT_LLAMA2_SYS_STRIP, inside = 1;

	put(o, "[INST] ");
	for (size_t i = 0; i < n; i++) {
		if (!inside) {
			inside = 1;
			put(o, bos ? "<s>[INST] " : "[INST] ");
		}
		if (!strcmp(m[i].role, "system")) {
			put(o, sys ? "<<SYS>>\n" : "");
			put_maybe_trim(o, m[i].content, strip);
			put(o, sys ? "\n<</SYS>>\n\n" : "\n");
		} else if (!strcmp(m[i].role, "user")) {
			put_maybe_trim(o, m[i].content, strip);
			put(o, " [/INST]");
		} else {
			put_maybe_trim(o, m[i].content, strip);
			put(o, "</s>");
			inside = 0;
		}
	}
}

static void llama3(struct out *o, const struct np_chat_msg *m, size_t n,
		   int add_gen)
{
	for (size_t i = 0; i < n; i++) {
		put(o, "<|start_header_id|>");
		put(o, m[i].role);
		put(o, "<|end_header_id|>\n\n");
		put_trim(o, m[i].content);
		put(o, "<|eot_id|>");
	}
	if (add_gen)
		put(o, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static void granite(struct out *o, const struct np_chat_msg *m, size_t n,
		    int add_gen)
{
	for (size_t i = 0; i < n; i++) {
		put(o, "<|start_of_role|>");
		put(o, m[i].role);
		put(o, "<|end_of_role|>");
		if (!strcmp(m[i].role, "assistant_tool_call"))
			put(o, "<|tool_call|>");
		put(o, m[i].content);
		put(o, "<|end_of_text|>\n");
	}
	if (add_gen)
		put(o, "<|start_of_role|>assistant<|end_of_role|>\n");
}

int np_chat_apply(enum np_chat_family f, const struct np_chat_msg *msgs,
		  size_t n, int add_gen, char *buf, size_t cap, size_t *len_out)
{
	struct out o = {buf, cap, 0};

	*len_out = 0;
	if (!np_chat_family_name(f) || (n && !msgs))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!msgs[i].role || !msgs[i].content)
			return -EINVAL;
	switch (f) {
	case NP_CHAT_CHATML:
		chatml(&o, msgs, n, add_gen);
		break;
	case NP_CHAT_MISTRAL_V7:
		mistral_v7(&o, msgs, n);
		break;
	case NP_CHAT_MISTRAL_V1:
	case NP_CHAT_MISTRAL_V3:
	case NP_CHAT_MISTRAL_V3_TEKKEN:
		mistral(&o, msgs, n, f);
		break;
	case NP_CHAT_LLAMA2:
	case NP_CHAT_LLAMA2_SYS:
	case NP_CHAT_LLAMA2_SYS_BOS:
	case NP_CHAT_LLAMA2_SYS_STRIP:
		llama2(&o, msgs, n, f);
		break;
	case NP_CHAT_LLAMA3:
		llama3(&o, msgs, n, add_gen);
		break;
	case NP_CHAT_GRANITE:
		granite(&o, msgs, n, add_gen);
		break;
	}
	*len_out = o.n;
	return o.n > cap ? -ENOSPC : 0;
}
