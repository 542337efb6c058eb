// SPDX-License-Identifier: MIT
/*
 * Chat prompts for nptool run: --chat renders each prompt as one user
 * message in the model's chat template (np/chat.h), --chat-template NAME
 * chooses the family, --special parses control tokens written in a prompt.
 * A rendered prompt is encoded with special-token parsing, so its
 * "<|im_start|>" is the control token, not text.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <np/chat.h>
#include <np/model.h>

#include "chat.h"

int npt_chat_opt(struct npt *t, struct npt_chat *c, int which, const char *arg)
{
	enum np_chat_family f;

	switch (which) {
	case NPT_CHAT_OPT_CHAT:
		c->on = true;
		return NPT_EXIT_OK;
	case NPT_CHAT_OPT_TEMPLATE:
		if (np_chat_family_from_name(arg, &f))
			return npt_usage(t,
					 "--chat-template %s: not a family np "
					 "renders; one of %s",
					 arg, np_chat_family_list());
		c->on = true;
		c->family = f;
		return NPT_EXIT_OK;
	default:
		c->special = true;
		return NPT_EXIT_OK;
	}
}

/* the family: --chat-template, else the model's template */
static int chat_family(struct npt *t, struct npt_chat *c, const char *model)
{
	struct np_log lg = {.fn = npt_log_err, .opaque = t};
	struct np_gguf *g;
	int rc, ret;

	if (c->family)
		return NPT_EXIT_OK;
	rc = npt_open_gguf(t, model, &g);
	if (rc)
		return rc;
	ret = np_chat_from_gguf(g, &lg, &c->family);
	np_gguf_close(g);
	if (ret) {
		npt_err(t,
			"--chat: %s has no chat template np renders; choose "
			"the family with --chat-template NAME",
			model);
		return NPT_EXIT_USAGE;
	}
	return NPT_EXIT_OK;
}

int npt_chat_render(struct npt *t, struct npt_chat *c, const char *model,
		    char **prompt, size_t n)
{
	int rc;

	if (!c->on)
		return NPT_EXIT_OK;
	rc = chat_family(t, c, model);
	if (rc)
		return rc;
	c->text = calloc(n, sizeof(*c->text));
	if (!c->text)
		return NPT_EXIT_DEVERR;
	c->n = n;
	for (size_t i = 0; i < n; i++) {
		struct np_chat_msg m = {"user", prompt[i]};
		size_t len;

		np_chat_apply(c->family, &m, 1, 1, NULL, 0, &len);
		c->text[i] = malloc(len + 1);
		if (!c->text[i] ||
		    np_chat_apply(c->family, &m, 1, 1, c->text[i], len, &len))
			return NPT_EXIT_DEVERR;
		c->text[i][len] = 0;
		prompt[i] = c->text[i];
	}
	return NPT_EXIT_OK;
}

unsigned int npt_chat_flags(const struct npt_chat *c)
{
	return c->on || c->special ? NP_TOK_PARSE_SPECIAL : 0;
}

void npt_chat_free(struct npt_chat *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->text[i]);
	free(c->text);
}
