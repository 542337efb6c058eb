// SPDX-License-Identifier: MIT
/*
 * A request of the scheduler (np/sched.h): its parameters checked and
 * copied, each token it is given (sampling, stop tokens and limits, text
 * and stop strings, logprobs) and the events its callback gets.
 *
 * Text: each token's piece is the decode of (previous token, token) less
 * the decode of the previous token, so a tokenizer's rules for the first
 * token of a text (SentencePiece's dummy space) do not apply mid-sequence.
 * Pieces go to a pending buffer; what may still become a stop string (a
 * suffix that is a prefix of one) or ends in an incomplete UTF-8
 * sequence stays there, the rest is released. A stop string can thus
 * only start in the pending text, and is found there whatever the token
 * boundaries.
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pipe.h"

enum np_finish npi_finish_of(enum np_stop_reason why)
{
	switch (why) {
	case NP_STOP_NONE:
		return NP_FINISH_NONE;
	case NP_STOP_TOKEN:
	case NP_STOP_STRING:
		return NP_FINISH_STOP;
	case NP_STOP_MAX_TOKENS:
	case NP_STOP_LENGTH:
		return NP_FINISH_LENGTH;
	case NP_STOP_CALLER:
	case NP_STOP_CANCELLED:
		return NP_FINISH_CANCELLED;
	case NP_STOP_ERROR:
		break;
	}
	return NP_FINISH_ERROR;
}

void npi_req_free(struct npi_req *q)
{
	if (!q)
		return;
	for (uint32_t i = 0; q->stop_str && i < q->n_stop_str; i++)
		free(q->stop_str[i]);
	free(q->stop_str);
	free(q->stop);
	free(q->seq);
	free(q->pend);
	free(q);
}

static int req_check(struct np_sched *s, const struct np_sched_req *r)
{
	struct np_pipeline *p = s->R.p;
	const struct np_sampling *sp = &r->sampling;

	if (!npi_resv_zero(p->ctx, "np_sched_req", r->resv, sizeof(r->resv)))
		return -EINVAL;
	if (!r->prompt || !r->n_prompt) {
		npi_log(p->ctx, LOG_ERR,
			"scheduler: a request has an empty prompt; give at "
			"least one token (BOS)");
		return -EINVAL;
	}
	if (r->n_prompt >= p->max_seq) {
		npi_log(p->ctx, LOG_ERR,
			"scheduler: a prompt of %zu tokens does not fit the "
			"context of %u; shorten it or load with a larger "
			"max_seq",
			r->n_prompt, p->max_seq);
		return -ERANGE;
	}
	for (size_t t = 0; t < r->n_prompt; t++)
		if (r->prompt[t] < 0 || (uint32_t)r->prompt[t] >= p->vocab) {
			npi_log(p->ctx, LOG_ERR,
				"scheduler: prompt token %d at %zu is outside "
				"the vocabulary of %u",
				r->prompt[t], t, p->vocab);
			return -EINVAL;
		}
	if (!(sp->temperature >= 0) || isinf(sp->temperature) ||
	    !(sp->top_p >= 0 && sp->top_p <= 1)) {
		npi_log(p->ctx, LOG_ERR,
			"scheduler: temperature %g must be finite and >= 0, "
			"top_p %g in 0..1",
			(double)sp->temperature, (double)sp->top_p);
		return -EINVAL;
	}
	if ((r->n_stop && !r->stop) ||
	    (r->n_stop_str && (!r->stop_str || !s->text)) ||
	    r->n_stop_str > NP_SCHED_STOPS || r->logprobs > s->R.cand) {
		npi_log(p->ctx, LOG_ERR,
			"scheduler: %zu stop tokens, %zu stop strings, %u "
			"logprobs: stop strings need a pipeline with a "
			"tokenizer and are at most %u, logprobs at most the "
			"%u candidates",
			r->n_stop, r->n_stop_str, r->logprobs, NP_SCHED_STOPS,
			s->R.cand);
		return -EINVAL;
	}
	for (size_t i = 0; i < r->n_stop_str; i++) {
		size_t l = r->stop_str[i] ? strnlen(r->stop_str[i],
						    NP_SCHED_STOP_MAX + 1) :
					    0;

		if (!l || l > NP_SCHED_STOP_MAX) {
			npi_log(p->ctx, LOG_ERR,
				"scheduler: stop string %zu is %s; give 1..%u "
				"bytes",
				i, l ? "too long" : "empty", NP_SCHED_STOP_MAX);
			return -EINVAL;
		}
	}
	return 0;
}

int npi_req_new(struct np_sched *s, const struct np_sched_req *r,
		struct npi_req **out)
{
	struct np_pipeline *p = s->R.p;
	struct npi_req *q;
	int ret = req_check(s, r);

	if (ret)
		return ret;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->seq = malloc((size_t)p->max_seq * sizeof(*q->seq));
	q->stop = malloc((r->n_stop + 1) * sizeof(*q->stop));
	q->stop_str = calloc(r->n_stop_str + 1, sizeof(*q->stop_str));
	if (!q->seq || !q->stop || !q->stop_str) {
		npi_req_free(q);
		return -ENOMEM;
	}
	memcpy(q->seq, r->prompt, r->n_prompt * sizeof(int32_t));
	if (r->n_stop)
		memcpy(q->stop, r->stop, r->n_stop * sizeof(int32_t));
	q->n_stop = (uint32_t)r->n_stop;
	for (size_t i = 0; i < r->n_stop_str; i++) {
		q->stop_str[i] = strdup(r->stop_str[i]);
		if (!q->stop_str[i]) {
			npi_req_free(q);
			return -ENOMEM;
		}
		q->n_stop_str++;
	}
	q->len = (uint32_t)r->n_prompt;
	q->n_prompt = q->len;
	q->max_tokens = r->max_tokens;
	q->logprobs = r->logprobs;
	q->sampling = r->sampling;
	q->rng = r->sampling.seed;
	q->cb = r->on_event;
	q->opaque = r->opaque;
	q->st.prompt_tokens = q->len;
	*out = q;
	return 0;
}

/* Room for n bytes in the scratch text buffer. */
static int txt_room(struct np_sched *s, size_t n)
{
	char *t;

	if (n <= s->cap_txt)
		return 0;
	t = realloc(s->txt, n);
	if (!t)
		return -ENOMEM;
	s->txt = t;
	s->cap_txt = n;
	return 0;
}

/* Decode ids into the scratch buffer; its length, or -errno. */
static int decode(struct np_sched *s, const int32_t *ids, size_t n, size_t *len)
{
	const struct np_tok *tok = np_pipeline_tok(s->R.p);
	int ret = np_tok_decode(tok, ids, n, s->txt, s->cap_txt, len);

	if (ret == -ENOSPC) {
		ret = txt_room(s, *len);
		if (!ret)
			ret = np_tok_decode(tok, ids, n, s->txt, s->cap_txt,
					    len);
	}
	return ret;
}

/* Append token q->seq[pos]'s text to q's pending text. */
static int append_piece(struct np_sched *s, struct npi_req *q, uint32_t pos)
{
	size_t before = 0, all;
	int ret = 0;

	if (pos)
		ret = decode(s, &q->seq[pos - 1], 1, &before);
	ret = ret ? ret :
		    decode(s, &q->seq[pos ? pos - 1 : 0], pos ? 2 : 1, &all);
	if (ret)
		return ret;
	if (q->n_pend + all - before > q->cap_pend) {
		size_t cap = 2 * (q->n_pend + all - before) + 64;
		char *t = realloc(q->pend, cap);

		if (!t)
			return -ENOMEM;
		q->pend = t;
		q->cap_pend = cap;
	}
	if (all > before) /* s->txt may still be NULL */
		memcpy(q->pend + q->n_pend, s->txt + before, all - before);
	q->n_pend += all - before;
	return 0;
}

/* Bytes at the end of t[0..n) that may start a character not complete
 * yet. */
static size_t utf8_hold(const char *t, size_t n)
{
	for (size_t k = 1; k <= 3 && k <= n; k++) {
		unsigned char c = (unsigned char)t[n - k];
		size_t need;

		if ((c & 0xc0) == 0x80)
			continue;
		need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
		return need > k ? k : 0;
	}
	return 0;
}

/* Bytes at the end of q's pending text that are the start of one of its
 * stop strings. */
static size_t stop_hold(const struct npi_req *q)
{
	size_t hold = 0;

	for (uint32_t i = 0; i < q->n_stop_str; i++) {
		size_t l = strlen(q->stop_str[i]);
		size_t h = l - 1 < q->n_pend ? l - 1 : q->n_pend;

		for (; h > hold; h--)
			if (!memcmp(q->pend + q->n_pend - h, q->stop_str[i], h))
				break;
		hold = h > hold ? h : hold;
	}
	return hold;
}

/*
 * The text q releases now, into the scratch buffer (*len bytes): all of
 * it when q ends (*why != NONE), else up to a stop string it contains
 * (*why becomes NP_STOP_STRING), else all but what must be held.
 */
static int release(struct np_sched *s, struct npi_req *q,
		   enum np_stop_reason *why, size_t *len)
{
	size_t rel = q->n_pend, at = SIZE_MAX;
	int ret;

	for (uint32_t i = 0; i < q->n_stop_str && q->n_pend; i++) {
		const char *m = memmem(q->pend, q->n_pend, q->stop_str[i],
				       strlen(q->stop_str[i]));

		if (m && (size_t)(m - q->pend) < at)
			at = (size_t)(m - q->pend);
	}
	if (at != SIZE_MAX) {
		*why = NP_STOP_STRING;
		rel = at;
	} else if (!*why) {
		size_t hu = utf8_hold(q->pend, q->n_pend), hs = stop_hold(q);

		rel -= hu > hs ? hu : hs;
	}
	ret = txt_room(s, rel + 1);
	if (ret)
		return ret;
	if (rel) /* q->pend is NULL until the first text */
		memcpy(s->txt, q->pend, rel);
	*len = rel;
	if (*why) {
		q->n_pend = 0;
	} else if (rel) {
		memmove(q->pend, q->pend + rel, q->n_pend - rel);
		q->n_pend -= rel;
	}
	return 0;
}

/* Logprobs of the candidates (natural log, temperature 1, normalised
 * over them) into the scratch arrays; the token's. */
static float logprobs(struct np_sched *s, const struct npi_req *q, uint32_t n,
		      int32_t token)
{
	const struct npi_run *R = &s->R;
	double scale = np_compiled_logit_scale(R->p->c), lse = 0;
	float lp = 0;

	for (uint32_t i = 0; i < n; i++)
		lse += exp(((double)R->cv[i] - R->cv[0]) * scale);
	lse = log(lse);
	for (uint32_t i = 0; i < n; i++) {
		float v = (float)(((double)R->cv[i] - R->cv[0]) * scale - lse);

		if (i < q->logprobs) {
			s->lp_id[i] = R->ci[i];
			s->lp_val[i] = v;
		}
		if ((int32_t)R->ci[i] == token)
			lp = v;
	}
	return lp;
}

static int call(struct np_sched *s, struct npi_req *q,
		const struct np_sched_event *ev)
{
	struct npi_run *R = &s->R;
	uint64_t c0;
	int r;

	if (!q->cb)
		return 0;
	c0 = npi_thread_cpu_ns();
	r = q->cb(q->opaque, ev);
	c0 = npi_thread_cpu_ns() - c0;
	R->cpu_callback += c0;
	R->cpu_callback_timed += R->timing ? c0 : 0;
	return r;
}

bool npi_req_token(struct np_sched *s, struct npi_req *q,
		   const struct npi_frame *f, uint32_t i)
{
	struct npi_run *R = &s->R;
	struct np_pipeline *p = R->p;
	double scale = np_compiled_logit_scale(p->c);
	struct np_sched_event e = {.id = q->id, .opaque = q->opaque};
	enum np_stop_reason why = NP_STOP_NONE;
	bool stop_tok = false;
	int ret = 0;

	e.n_cand = npi_candidates(R, f, i);
	e.cand_logit = R->cv;
	e.cand_id = R->ci;
	e.logits = R->full_logits ? R->logits : NULL;
	e.token = npi_sample(&q->sampling, &q->rng, R->cv, R->ci, e.n_cand,
			     scale);
	e.pos = q->len;
	q->seq[q->len++] = e.token;
	q->st.tokens++;
	R->tokens++;
	for (uint32_t k = 0; k < q->n_stop && !stop_tok; k++)
		stop_tok = q->stop[k] == e.token;
	if (stop_tok)
		why = NP_STOP_TOKEN;
	else if (q->max_tokens && q->st.tokens >= q->max_tokens)
		why = NP_STOP_MAX_TOKENS;
	else if (q->len >= p->max_seq)
		why = NP_STOP_LENGTH;
	e.t_ns = npi_now_ns();
	if (q->st.tokens == 1)
		q->st.first_ns = e.t_ns;
	q->st.last_ns = e.t_ns;
	if (s->text) {
		ret = stop_tok ? 0 : append_piece(s, q, e.pos);
		ret = ret ? ret : release(s, q, &why, &e.text_len);
		e.text = s->txt;
	}
	if (ret) {
		/* no memory for the text: the request cannot go on */
		why = NP_STOP_ERROR;
		e.error = ret;
		e.text_len = 0;
	}
	if (q->logprobs) {
		e.logprob = logprobs(s, q, e.n_cand, e.token);
		e.n_logprobs = q->logprobs < e.n_cand ? q->logprobs : e.n_cand;
		e.logprob_id = s->lp_id;
		e.logprob_val = s->lp_val;
	}
	e.stop = why;
	e.finish = npi_finish_of(why);
	e.stats = why ? &q->st : NULL;
	q->end = why;
	if (__atomic_load_n(&q->cancel, __ATOMIC_RELAXED)) {
		/* cancelled while the token was made: it never was */
		q->len--;
		q->st.tokens--;
		R->tokens--;
		npi_req_end(s, q, NP_STOP_CANCELLED, 0);
		return true;
	}
	if (call(s, q, &e) && !why) {
		npi_req_end(s, q, NP_STOP_CALLER, 0);
		return true;
	}
	return why != NP_STOP_NONE;
}

void npi_req_end(struct np_sched *s, struct npi_req *q, enum np_stop_reason why,
		 int error)
{
	struct np_sched_event e = {.id = q->id, .opaque = q->opaque};
	enum np_stop_reason w = why;

	q->end = why;
	e.token = -1;
	e.pos = q->len;
	e.t_ns = npi_now_ns();
	e.finish = npi_finish_of(why);
	e.stop = why;
	e.error = error;
	e.stats = &q->st;
	if (s->text && q->n_pend && !release(s, q, &w, &e.text_len))
		e.text = s->txt;
	call(s, q, &e);
}
