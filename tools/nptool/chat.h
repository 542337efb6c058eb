/* SPDX-License-Identifier: MIT */
/* Chat prompts of nptool run (chat.c). */
#ifndef NPT_CHAT_H
#define NPT_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include <np/chat.h>

#include "nptool.h"

/* --chat, --chat-template NAME, --special */
enum { NPT_CHAT_OPT_CHAT, NPT_CHAT_OPT_TEMPLATE, NPT_CHAT_OPT_SPECIAL };

struct npt_chat {
	bool on, special;
	enum np_chat_family family; /* 0: the model's */
	char **text; /* the rendered prompts */
	size_t n;
};

/* One of the options above; an exit code */
int npt_chat_opt(struct npt *t, struct npt_chat *c, int which, const char *arg);
/* With --chat: prompt[i] becomes the rendered prompt (owned by c) */
int npt_chat_render(struct npt *t, struct npt_chat *c, const char *model,
		    char **prompt, size_t n);
/* np_tok_encode_flags flags for the prompts */
unsigned int npt_chat_flags(const struct npt_chat *c);
void npt_chat_free(struct npt_chat *c);

#endif /* NPT_CHAT_H */
