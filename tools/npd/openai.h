/* SPDX-License-Identifier: MIT */
/* The OpenAI request and response documents (openai.c). */
#ifndef NPD_OPENAI_H
#define NPD_OPENAI_H

#include <stdbool.h>
#include <stddef.h>

#include "engine.h"
#include "npd.h"

/* An error as the API returns it. */
struct npd_err {
	unsigned int status; /* HTTP */
	const char *type; /* "invalid_request_error", ... */
	char param[64]; /* the offending field, or "" */
	char msg[512];
};

/*
 * Parse a /v1/completions (chat false) or /v1/chat/completions body into
 * r: its prompt tokens, parameters and stream flag. 0, or -1 with e set
 * (400 naming the field; 503 when the engine is not ready).
 */
int npd_openai_parse(const char *body, size_t len, bool chat,
		     const struct npd_config *cfg, struct npd_req *r,
		     bool *include_usage, struct npd_err *e);

/* The whole response of a finished request, JSON, into o. */
int npd_openai_response(struct npd_req *r, struct npd_buf *o);
/* SSE events for r's tokens [from, to) and, when done, its final chunk,
 * usage (include_usage) and "data: [DONE]". first: the stream's first
 * call (chat: the role delta). */
int npd_openai_chunks(struct npd_req *r, size_t from, size_t to, bool first,
		      bool done, bool include_usage, struct npd_buf *o);
/* {"error": {...}} */
int npd_openai_error(const struct npd_err *e, struct npd_buf *o);
/* GET /v1/models */
int npd_openai_models(struct npd_buf *o);

__attribute__((format(printf, 4, 5))) void npd_err_set(struct npd_err *e,
						       unsigned int status,
						       const char *param,
						       const char *fmt, ...);

#endif /* NPD_OPENAI_H */
