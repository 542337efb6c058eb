/* SPDX-License-Identifier: MIT */
/*
 * Chat templates: a list of {role, content} messages rendered into the
 * prompt text a chat model was trained on. np recognises the template a
 * GGUF carries (tokenizer.chat_template) by the substrings llama.cpp's
 * llm_chat_detect_template looks for, and renders the families below
 * exactly as llama.cpp's llm_chat_apply_template does. It does not run
 * Jinja: a template outside these families is refused, and the caller may
 * then choose a family by name.
 *
 * The rendered text holds control tokens as text ("<|im_start|>"); encode
 * it with np_tok_encode_flags(NP_TOK_PARSE_SPECIAL).
 */
#ifndef NP_CHAT_H
#define NP_CHAT_H

#include <stddef.h>

#include <np/log.h>
#include <np/model.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Families, by llama.cpp's names (np_chat_family_name) */
enum np_chat_family {
	NP_CHAT_CHATML = 1, /* "chatml": Qwen, OpenHermes, ... */
	NP_CHAT_LLAMA2, /* "llama2": [INST] without a system prompt */
	NP_CHAT_LLAMA2_SYS, /* "llama2-sys": with <<SYS>> */
	NP_CHAT_LLAMA2_SYS_BOS, /* "llama2-sys-bos": <s> inside history */
	NP_CHAT_LLAMA2_SYS_STRIP, /* "llama2-sys-strip": contents trimmed */
	NP_CHAT_MISTRAL_V1, /* "mistral-v1" */
	NP_CHAT_MISTRAL_V3, /* "mistral-v3" */
	NP_CHAT_MISTRAL_V3_TEKKEN, /* "mistral-v3-tekken" */
	NP_CHAT_MISTRAL_V7, /* "mistral-v7" */
	NP_CHAT_LLAMA3, /* "llama3" */
	NP_CHAT_GRANITE, /* "granite": IBM Granite 3 */
};

struct np_chat_msg {
	const char *role; /* "system", "user", "assistant", ... */
	const char *content;
};

/* The family's name, NULL for a value outside the enum */
const char *np_chat_family_name(enum np_chat_family f);
/* Family by name; 0 or -ENOENT (a name np does not know) */
int np_chat_family_from_name(const char *name, enum np_chat_family *out);
/* "chatml, llama2, ..." for help texts: a static string */
const char *np_chat_family_list(void);

/*
 * The family of template text `tmpl` (`len` bytes; a family name is taken
 * as that family, as llama.cpp does). Returns 0, -ENOTSUP when the text is
 * a family np does not render (the log names it as llama.cpp does and
 * lists the families np renders), -ENOENT when it matches no family.
 */
int np_chat_detect(const char *tmpl, size_t len, const struct np_log *log,
		   enum np_chat_family *out);
/* np_chat_detect on the GGUF's tokenizer.chat_template: -ENOENT (logged)
 * also when the file has none, -EINVAL when it is not a string */
int np_chat_from_gguf(const struct np_gguf *g, const struct np_log *log,
		      enum np_chat_family *out);

/*
 * Render n messages (NUL-terminated strings) in family f; with add_gen
 * the opening of the assistant's turn follows where the family has one.
 * The text goes to buf (not NUL-terminated); *len_out receives its length.
 * Returns 0, -ENOSPC when cap is too small (*len_out: the needed length),
 * -EINVAL for an unknown family or a message with a NULL string.
 */
int np_chat_apply(enum np_chat_family f, const struct np_chat_msg *msgs,
		  size_t n, int add_gen, char *buf, size_t cap,
		  size_t *len_out);

#ifdef __cplusplus
}
#endif

#endif /* NP_CHAT_H */
