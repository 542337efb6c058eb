// SPDX-License-Identifier: MIT
/*
 * The OpenAI API documents: request bodies of /v1/completions and
 * /v1/chat/completions parsed with jansson into a request, and the
 * responses, SSE chunks, errors and the model list written back, in the
 * shapes OpenAI documents and llama.cpp's server and vLLM return.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "openai.h"

#define MAX_MESSAGES 1024

void npd_err_set(struct npd_err *e, unsigned int status, const char *param,
		 const char *fmt, ...)
{
	va_list ap;

	e->status = status;
	e->type = status == 401 ? "authentication_error" :
		  status == 404 ? "not_found_error" :
		  status == 429 ? "rate_limit_error" :
		  status >= 500 ? "server_error" :
				  "invalid_request_error";
	snprintf(e->param, sizeof(e->param), "%s", param ? param : "");
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	/* the message quotes what the client sent (a path, a field) and may
	 * be cut mid-character: JSON carries only valid UTF-8, and a byte
	 * that starts no valid sequence becomes '?' */
	for (size_t i = 0, n = strlen(e->msg); i < n;) {
		size_t k = npd_utf8_seq((unsigned char *)e->msg + i, n - i);

		if (k) {
			i += k;
		} else {
			e->msg[i++] = '?';
		}
	}
}

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

/* A number field in [lo, hi]; absent or null keeps *out. */
static int get_num(json_t *o, const char *k, double lo, double hi, double *out,
		   struct npd_err *e)
{
	json_t *v = json_object_get(o, k);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_number(v)) {
		npd_err_set(e, 400, k, "'%s' must be a number, not %s", k,
			    type_name(v));
		return -1;
	}
	*out = json_number_value(v);
	if (!(*out >= lo && *out <= hi)) {
		npd_err_set(e, 400, k, "'%s' is %g; it must be in [%g, %g]", k,
			    *out, lo, hi);
		return -1;
	}
	return 0;
}

static int get_int(json_t *o, const char *k, long long lo, long long hi,
		   long long *out, struct npd_err *e)
{
	json_t *v = json_object_get(o, k);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v)) {
		npd_err_set(e, 400, k, "'%s' must be an integer, not %s", k,
			    type_name(v));
		return -1;
	}
	*out = json_integer_value(v);
	if (*out < lo || *out > hi) {
		npd_err_set(e, 400, k,
			    "'%s' is %lld; it must be in [%lld, %lld]", k, *out,
			    lo, hi);
		return -1;
	}
	return 0;
}

static int get_bool(json_t *o, const char *k, bool *out, struct npd_err *e)
{
	json_t *v = json_object_get(o, k);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v)) {
		npd_err_set(e, 400, k, "'%s' must be a boolean, not %s", k,
			    type_name(v));
		return -1;
	}
	*out = json_is_true(v);
	return 0;
}

static int get_stop(json_t *o, struct npd_params *p, struct npd_err *e)
{
	json_t *v = json_object_get(o, "stop"), *s;
	size_t i;

	if (!v || json_is_null(v))
		return 0;
	if (json_is_string(v)) {
		if (!json_string_length(v))
			return 0;
		p->stop[p->n_stop] = strdup(json_string_value(v));
		return p->stop[p->n_stop++] ? 0 : -1;
	}
	if (!json_is_array(v) || json_array_size(v) > NPD_MAX_STOP) {
		npd_err_set(e, 400, "stop",
			    "'stop' must be a string or an array of up to %d "
			    "strings",
			    NPD_MAX_STOP);
		return -1;
	}
	json_array_foreach(v, i, s)
	{
		if (!json_is_string(s)) {
			npd_err_set(e, 400, "stop",
				    "'stop[%zu]' must be a string, not %s", i,
				    type_name(s));
			return -1;
		}
		if (!json_string_length(s))
			continue;
		p->stop[p->n_stop] = strdup(json_string_value(s));
		if (!p->stop[p->n_stop++])
			return -1;
	}
	return 0;
}

/* The text of a chat message's content: a string, or an array of
 * {"type": "text", "text": ...} parts joined. malloc()ed. */
static char *content_text(json_t *c, size_t idx, struct npd_err *e)
{
	struct npd_buf b = {0};
	json_t *part;
	size_t i;

	if (json_is_string(c))
		return strndup(json_string_value(c), json_string_length(c));
	if (!json_is_array(c)) {
		npd_err_set(e, 400, "messages",
			    "'messages[%zu].content' must be a string or an "
			    "array of text parts, not %s",
			    idx, c ? type_name(c) : "missing");
		return NULL;
	}
	json_array_foreach(c, i, part)
	{
		json_t *t = json_object_get(part, "type");
		json_t *x = json_object_get(part, "text");

		if (!json_is_string(t) ||
		    strcmp(json_string_value(t), "text") ||
		    !json_is_string(x)) {
			npd_err_set(e, 400, "messages",
				    "'messages[%zu].content[%zu]' must be "
				    "{\"type\": \"text\", \"text\": string}; "
				    "other content types are not supported",
				    idx, i);
			npd_buf_free(&b);
			return NULL;
		}
		npd_buf_add(&b, json_string_value(x), json_string_length(x));
	}
	if (!b.s)
		npd_buf_add(&b, "", 0);
	return b.s;
}

static char *chat_prompt(json_t *root, struct npd_err *e)
{
	json_t *msgs = json_object_get(root, "messages"), *m;
	const char **role = NULL;
	char **content = NULL, *out = NULL, err[256];
	size_t n, i;
	int ret;

	if (!json_is_array(msgs) || !json_array_size(msgs)) {
		npd_err_set(e, 400, "messages",
			    "'messages' must be a non-empty array of "
			    "{\"role\", \"content\"} objects");
		return NULL;
	}
	n = json_array_size(msgs);
	if (n > MAX_MESSAGES) {
		npd_err_set(e, 400, "messages",
			    "'messages' has %zu entries; at most %d", n,
			    MAX_MESSAGES);
		return NULL;
	}
	role = calloc(n, sizeof(*role));
	content = calloc(n, sizeof(*content));
	if (!role || !content)
		goto oom;
	json_array_foreach(msgs, i, m)
	{
		json_t *r = json_object_get(m, "role");
		const char *rs = json_string_value(r);

		if (!json_is_object(m) || !rs ||
		    (strcmp(rs, "system") && strcmp(rs, "user") &&
		     strcmp(rs, "assistant") && strcmp(rs, "developer"))) {
			npd_err_set(e, 400, "messages",
				    "'messages[%zu].role' must be \"system\", "
				    "\"developer\", \"user\" or \"assistant\"",
				    i);
			goto out;
		}
		role[i] = strcmp(rs, "developer") ? rs : "system";
		content[i] = content_text(json_object_get(m, "content"), i, e);
		if (!content[i])
			goto out;
	}
	ret = npd_engine_chat(role, (const char *const *)content, n, &out, err,
			      sizeof(err));
	if (ret) {
		npd_err_set(e, ret == -ENOMEM ? 500 : 400, "messages", "%s",
			    err);
		out = NULL;
	}
	goto out;
oom:
	npd_err_set(e, 500, NULL, "out of memory");
out:
	for (i = 0; content && i < n; i++)
		free(content[i]);
	free(content);
	free(role);
	return out;
}

static int prompt_tokens(json_t *root, bool chat, struct npd_req *r,
			 struct npd_err *e)
{
	char err[256], *text = NULL;
	json_t *p;
	int ret;

	if (chat) {
		text = chat_prompt(root, e);
		if (!text)
			return -1;
	} else {
		p = json_object_get(root, "prompt");
		if (json_is_array(p) && json_array_size(p) == 1 &&
		    json_is_string(json_array_get(p, 0)))
			p = json_array_get(p, 0);
		if (json_is_array(p) && json_array_size(p) &&
		    json_is_integer(json_array_get(p, 0))) {
			size_t i;
			json_t *t;

			r->n_prompt = json_array_size(p);
			r->prompt = calloc(r->n_prompt, sizeof(int32_t));
			if (!r->prompt) {
				npd_err_set(e, 500, NULL, "out of memory");
				return -1;
			}
			json_array_foreach(p, i, t)
			{
				if (!json_is_integer(t) ||
				    json_integer_value(t) < 0 ||
				    json_integer_value(t) > INT32_MAX) {
					npd_err_set(e, 400, "prompt",
						    "'prompt[%zu]' must be a "
						    "token id",
						    i);
					return -1;
				}
				r->prompt[i] = (int32_t)json_integer_value(t);
			}
			return 0;
		}
		if (!json_is_string(p)) {
			npd_err_set(e, 400, "prompt",
				    "'prompt' must be a string, an array of "
				    "one string or an array of token ids%s",
				    json_is_array(p) ? " (one prompt per "
						       "request: n and "
						       "batched prompts are "
						       "not supported)" :
						       "");
			return -1;
		}
		text = strndup(json_string_value(p), json_string_length(p));
		if (!text) {
			npd_err_set(e, 500, NULL, "out of memory");
			return -1;
		}
	}
	ret = npd_engine_tokenize(text, strlen(text), chat, &r->prompt,
				  &r->n_prompt, err, sizeof(err));
	free(text);
	if (ret) {
		npd_err_set(e, ret == -ENOMEM ? 500 : 400,
			    chat ? "messages" : "prompt", "%s", err);
		return -1;
	}
	return 0;
}

int npd_openai_parse(const char *body, size_t len, bool chat,
		     const struct npd_config *cfg, struct npd_req *r,
		     bool *include_usage, struct npd_err *e)
{
	json_error_t jerr;
	json_t *root = json_loadb(body, len, 0, &jerr), *so;
	double temp = 1, top_p = 1;
	long long max_tokens = 0, top_k = 0, seed = -1, n = 1, lp = -1;
	bool echo = false, want_lp = false;
	int ret = -1;

	*include_usage = false;
	if (!root) {
		npd_err_set(e, 400, NULL,
			    "the body is not valid JSON: %s (line %d, column "
			    "%d)",
			    jerr.text, jerr.line, jerr.column);
		return -1;
	}
	if (!json_is_object(root)) {
		npd_err_set(e, 400, NULL, "the body must be a JSON object");
		goto out;
	}
	if (get_bool(root, "stream", &r->stream, e) ||
	    get_num(root, "temperature", 0, 2, &temp, e) ||
	    get_num(root, "top_p", 0, 1, &top_p, e) ||
	    get_int(root, "top_k", 0, 1000, &top_k, e) ||
	    get_int(root, "seed", INT64_MIN, INT64_MAX, &seed, e) ||
	    get_int(root, "n", 1, 1, &n, e) ||
	    get_bool(root, "echo", &echo, e) || get_stop(root, &r->p, e))
		goto out;
	if (get_int(root, chat ? "max_completion_tokens" : "max_tokens", 1,
		    1 << 20, &max_tokens, e) ||
	    (chat && !max_tokens &&
	     get_int(root, "max_tokens", 1, 1 << 20, &max_tokens, e)))
		goto out;
	if (echo) {
		npd_err_set(e, 400, "echo", "'echo' is not supported");
		goto out;
	}
	if (!(top_p > 0)) {
		npd_err_set(e, 400, "top_p", "'top_p' must be above 0");
		goto out;
	}
	if (chat) {
		if (get_bool(root, "logprobs", &want_lp, e) ||
		    get_int(root, "top_logprobs", 0, NPD_MAX_LOGPROBS, &lp, e))
			goto out;
		if (lp >= 0 && !want_lp) {
			npd_err_set(e, 400, "top_logprobs",
				    "'top_logprobs' needs 'logprobs': true");
			goto out;
		}
		if (want_lp && lp < 0)
			lp = 0;
	} else {
		json_t *v = json_object_get(root, "logprobs");

		if (json_is_boolean(v)) {
			npd_err_set(e, 400, "logprobs",
				    "'logprobs' of /v1/completions is an "
				    "integer, the alternatives per token");
			goto out;
		}
		if (get_int(root, "logprobs", 0, NPD_MAX_LOGPROBS, &lp, e))
			goto out;
	}
	so = json_object_get(root, "stream_options");
	if (so && !json_is_null(so) &&
	    (!json_is_object(so) ||
	     get_bool(so, "include_usage", include_usage, e))) {
		if (!json_is_object(so))
			npd_err_set(e, 400, "stream_options",
				    "'stream_options' must be an object");
		goto out;
	}
	r->chat = chat;
	r->p.temperature = (float)temp;
	r->p.top_p = (float)top_p;
	r->p.top_k = (uint32_t)top_k;
	r->p.has_seed = json_object_get(root, "seed") &&
			!json_is_null(json_object_get(root, "seed"));
	r->p.seed = (uint64_t)seed;
	r->p.logprobs = (int)lp;
	r->p.max_tokens =
		max_tokens ? (uint32_t)max_tokens : cfg->max_tokens_default;
	if (prompt_tokens(root, chat, r, e))
		goto out;
	ret = 0;
out:
	json_decref(root);
	return ret;
}

static json_t *bytes_of(const char *s)
{
	json_t *a = json_array();

	for (; a && *s; s++)
		json_array_append_new(a, json_integer((unsigned char)*s));
	return a;
}

static const char *finish_name(enum npd_finish f)
{
	return f == NPD_FINISH_LENGTH ? "length" : "stop";
}

/* logprobs of tokens [from, to) in the completions (chat false) or chat
 * shape; NULL when the request asked for none. Called with r->lock. */
static json_t *logprobs_of(struct npd_req *r, size_t from, size_t to,
			   size_t text_off)
{
	json_t *lp;

	if (r->p.logprobs < 0)
		return json_null();
	if (r->chat) {
		json_t *content = json_array();

		for (size_t i = from; i < to; i++) {
			const struct npd_tok *t = &r->tok[i];
			json_t *top = json_array();

			for (unsigned int k = 0; k < t->n_top; k++) {
				char piece[256];

				npd_engine_piece(t->top_id[k], piece,
						 sizeof(piece));
				json_array_append_new(
					top,
					json_pack("{s:s, s:f, s:o}", "token",
						  piece, "logprob",
						  (double)t->top_lp[k], "bytes",
						  bytes_of(piece)));
			}
			json_array_append_new(
				content, json_pack("{s:s, s:f, s:o, s:o}",
						   "token", t->text, "logprob",
						   (double)t->logprob, "bytes",
						   bytes_of(t->text),
						   "top_logprobs", top));
		}
		return json_pack("{s:o}", "content", content);
	}
	lp = json_pack("{s:[], s:[], s:[], s:[]}", "tokens", "token_logprobs",
		       "top_logprobs", "text_offset");
	for (size_t i = from; lp && i < to; i++) {
		const struct npd_tok *t = &r->tok[i];
		json_t *top = json_object();

		json_array_append_new(json_object_get(lp, "tokens"),
				      json_string(t->text));
		json_array_append_new(json_object_get(lp, "token_logprobs"),
				      json_real(t->logprob));
		for (unsigned int k = 0; k < t->n_top; k++) {
			char piece[256];

			npd_engine_piece(t->top_id[k], piece, sizeof(piece));
			json_object_set_new(top, piece,
					    json_real(t->top_lp[k]));
		}
		json_array_append_new(json_object_get(lp, "top_logprobs"), top);
		json_array_append_new(json_object_get(lp, "text_offset"),
				      json_integer((json_int_t)text_off));
		text_off += strlen(t->text);
	}
	return lp;
}

static json_t *usage_of(const struct npd_req *r)
{
	return json_pack("{s:I, s:I, s:I}", "prompt_tokens",
			 (json_int_t)r->n_prompt, "completion_tokens",
			 (json_int_t)r->n_tok, "total_tokens",
			 (json_int_t)(r->n_prompt + r->n_tok));
}

static int dump(json_t *j, struct npd_buf *o)
{
	char *s;
	int ret;

	if (!j)
		return -1;
	s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(j);
	if (!s)
		return -1;
	ret = npd_buf_add(o, s, strlen(s));
	free(s);
	return ret;
}

static size_t text_len(const struct npd_req *r, size_t from, size_t to)
{
	size_t n = 0;

	for (size_t i = from; i < to; i++)
		n += strlen(r->tok[i].text);
	return n;
}

static char *text_of(const struct npd_req *r, size_t from, size_t to)
{
	char *s = malloc(text_len(r, from, to) + 1), *p = s;

	for (size_t i = from; s && i < to; i++) {
		size_t l = strlen(r->tok[i].text);

		memcpy(p, r->tok[i].text, l);
		p += l;
	}
	if (s)
		*p = 0;
	return s;
}

int npd_openai_response(struct npd_req *r, struct npd_buf *o)
{
	char *text;
	json_t *choice, *doc;

	pthread_mutex_lock(&r->lock);
	text = text_of(r, 0, r->n_tok);
	if (!text) {
		pthread_mutex_unlock(&r->lock);
		return -1;
	}
	if (r->chat)
		choice = json_pack("{s:i, s:{s:s, s:s}, s:o, s:s}", "index", 0,
				   "message", "role", "assistant", "content",
				   text, "logprobs",
				   logprobs_of(r, 0, r->n_tok, 0),
				   "finish_reason", finish_name(r->finish));
	else
		choice = json_pack("{s:i, s:s, s:o, s:s}", "index", 0, "text",
				   text, "logprobs",
				   logprobs_of(r, 0, r->n_tok, 0),
				   "finish_reason", finish_name(r->finish));
	doc = json_pack(
		"{s:s, s:s, s:I, s:s, s:[o], s:o}", "id", r->id, "object",
		r->chat ? "chat.completion" : "text_completion", "created",
		(json_int_t)time(NULL), "model", npd_engine_model_name(),
		"choices", choice, "usage", usage_of(r));
	pthread_mutex_unlock(&r->lock);
	free(text);
	return dump(doc, o);
}

static int sse(json_t *j, struct npd_buf *o)
{
	return npd_buf_add(o, "data: ", 6) || dump(j, o) ||
	       npd_buf_add(o, "\n\n", 2);
}

static json_t *chunk(const struct npd_req *r, json_t *choice)
{
	return json_pack("{s:s, s:s, s:I, s:s, s:[o]}", "id", r->id, "object",
			 r->chat ? "chat.completion.chunk" : "text_completion",
			 "created", (json_int_t)time(NULL), "model",
			 npd_engine_model_name(), "choices", choice);
}

int npd_openai_chunks(struct npd_req *r, size_t from, size_t to, bool first,
		      bool done, bool include_usage, struct npd_buf *o)
{
	int ret = 0;

	pthread_mutex_lock(&r->lock);
	if (first && r->chat)
		ret |= sse(chunk(r, json_pack("{s:i, s:{s:s, s:s}, s:n, s:n}",
					      "index", 0, "delta", "role",
					      "assistant", "content", "",
					      "logprobs", "finish_reason")),
			   o);
	for (size_t i = from; !ret && i < to; i++) {
		/* one event per token, as llama.cpp and vLLM stream */
		json_t *lp = logprobs_of(r, i, i + 1, text_len(r, 0, i));

		if (r->chat)
			ret |= sse(
				chunk(r,
				      json_pack("{s:i, s:{s:s}, s:o, s:n}",
						"index", 0, "delta", "content",
						r->tok[i].text, "logprobs", lp,
						"finish_reason")),
				o);
		else
			ret |= sse(
				chunk(r, json_pack("{s:i, s:s, s:o, s:n}",
						   "index", 0, "text",
						   r->tok[i].text, "logprobs",
						   lp, "finish_reason")),
				o);
	}
	if (!ret && done && r->finish == NPD_FINISH_ERROR) {
		struct npd_err e;

		npd_err_set(&e, 500, NULL, "%s", r->error);
		ret |= npd_buf_add(o, "data: ", 6) || npd_openai_error(&e, o) ||
		       npd_buf_add(o, "\n\n", 2);
	} else if (!ret && done) {
		if (r->chat)
			ret |= sse(
				chunk(r, json_pack("{s:i, s:{}, s:n, s:s}",
						   "index", 0, "delta",
						   "logprobs", "finish_reason",
						   finish_name(r->finish))),
				o);
		else
			ret |= sse(
				chunk(r, json_pack("{s:i, s:s, s:n, s:s}",
						   "index", 0, "text", "",
						   "logprobs", "finish_reason",
						   finish_name(r->finish))),
				o);
		if (!ret && include_usage) {
			ret |= sse(json_pack("{s:s, s:s, s:I, s:s, s:[], s:o}",
					     "id", r->id, "object",
					     r->chat ? "chat.completion.chunk" :
						       "text_completion",
					     "created", (json_int_t)time(NULL),
					     "model", npd_engine_model_name(),
					     "choices", "usage", usage_of(r)),
				   o);
		}
	}
	if (!ret && done)
		ret |= npd_buf_add(o, "data: [DONE]\n\n", 14);
	pthread_mutex_unlock(&r->lock);
	return ret ? -1 : 0;
}

int npd_openai_error(const struct npd_err *e, struct npd_buf *o)
{
	json_t *j = json_pack("{s:{s:s, s:s, s:o, s:o}}", "error", "message",
			      e->msg, "type", e->type, "param",
			      *e->param ? json_string(e->param) : json_null(),
			      "code", json_null());

	return dump(j, o);
}

int npd_openai_models(struct npd_buf *o)
{
	return dump(json_pack("{s:s, s:[{s:s, s:s, s:I, s:s, s:I}]}", "object",
			      "list", "data", "id", npd_engine_model_name(),
			      "object", "model", "created",
			      (json_int_t)npd_engine_created(), "owned_by",
			      "np", "max_model_len",
			      (json_int_t)npd_engine_max_seq()),
		    o);
}
