// SPDX-License-Identifier: MIT
/*
 * npd's API as clients use it: every endpoint, streaming and not, stop
 * strings, logprobs, seeds and the metrics, on 16 emulated cards.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test.h"

static struct tst_npd npd;

static void up(void)
{
	static const char *const args[] = {"--api-key",
					   TST_KEY,
					   "--slots",
					   "8",
					   "--micro-batches",
					   "4",
					   "--chat-template",
					   "chatml",
					   NULL};

	tst_npd_start(&npd, args);
}

static void down(void)
{
	ck_assert_int_eq(tst_npd_stop(&npd), 0);
}

/* A greedy completion's text (malloc()ed) and its response. */
static char *complete(const char *extra, struct tst_resp *r)
{
	char body[1024];
	json_t *ch;

	snprintf(body, sizeof(body),
		 "{\"prompt\": \"The lighthouse at the end of the harbour\", "
		 "\"max_tokens\": 12, \"temperature\": 0%s}",
		 extra ? extra : "");
	tst_http(&npd, "POST", "/v1/completions", body, TST_KEY, r);
	ck_assert_msg(r->status == 200, "status %ld: %s", r->status, r->body);
	ck_assert_ptr_nonnull(r->json);
	ch = json_array_get(json_object_get(r->json, "choices"), 0);
	ck_assert_ptr_nonnull(json_string_value(json_object_get(ch, "text")));
	return strdup(json_string_value(json_object_get(ch, "text")));
}

START_TEST(health_and_models)
{
	struct tst_resp r;
	json_t *m;

	tst_http(&npd, "GET", "/health", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(json_string_value(json_object_get(r.json, "status")),
			 "ok");
	tst_resp_free(&r);
	tst_http(&npd, "GET", "/v1/models", NULL, TST_KEY, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(json_string_value(json_object_get(r.json, "object")),
			 "list");
	m = json_array_get(json_object_get(r.json, "data"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(m, "id")),
			 "np-tiny.gguf");
	ck_assert_int_gt(
		json_integer_value(json_object_get(m, "max_model_len")), 12);
	tst_resp_free(&r);
}
END_TEST

START_TEST(completion_greedy)
{
	struct tst_resp a, b;
	char *ta = complete(NULL, &a), *tb = complete(NULL, &b);
	json_t *u = json_object_get(a.json, "usage");
	json_t *ch = json_array_get(json_object_get(a.json, "choices"), 0);
	const char *fin =
		json_string_value(json_object_get(ch, "finish_reason"));

	ck_assert_str_eq(json_string_value(json_object_get(a.json, "object")),
			 "text_completion");
	ck_assert_str_eq(ta, tb); /* greedy: the same text every time */
	ck_assert_int_gt(
		json_integer_value(json_object_get(u, "prompt_tokens")), 1);
	ck_assert_int_le(
		json_integer_value(json_object_get(u, "completion_tokens")),
		12);
	ck_assert_int_eq(
		json_integer_value(json_object_get(u, "total_tokens")),
		json_integer_value(json_object_get(u, "prompt_tokens")) +
			json_integer_value(
				json_object_get(u, "completion_tokens")));
	ck_assert_ptr_nonnull(fin);
	ck_assert_msg(!strcmp(fin, "length") ||
			      (!strcmp(fin, "stop") &&
			       json_integer_value(json_object_get(
				       u, "completion_tokens")) < 12),
		      "finish_reason %s", fin);
	free(ta);
	free(tb);
	tst_resp_free(&a);
	tst_resp_free(&b);
}
END_TEST

/* The stream carries the same text as the whole response, then usage and
 * [DONE]. */
START_TEST(stream_matches)
{
	struct tst_resp whole, r;
	struct tst_sse s;
	char *text = complete(NULL, &whole);
	json_t *last;

	tst_http(&npd, "POST", "/v1/completions",
		 "{\"prompt\": \"The lighthouse at the end of the harbour\", "
		 "\"max_tokens\": 12, \"temperature\": 0, \"stream\": true, "
		 "\"stream_options\": {\"include_usage\": true}}",
		 TST_KEY, &r);
	ck_assert_int_eq(r.status, 200);
	tst_sse_parse(r.body, &s);
	ck_assert(s.done);
	ck_assert_str_eq(s.text, text);
	ck_assert_ptr_nonnull(s.finish);
	last = json_array_get(s.events, json_array_size(s.events) - 1);
	ck_assert_int_eq(json_array_size(json_object_get(last, "choices")), 0);
	ck_assert_int_eq(
		json_integer_value(json_object_get(
			json_object_get(last, "usage"), "completion_tokens")),
		json_integer_value(
			json_object_get(json_object_get(whole.json, "usage"),
					"completion_tokens")));
	tst_sse_free(&s);
	tst_resp_free(&r);
	tst_resp_free(&whole);
	free(text);
}
END_TEST

/* A stop string taken from the middle of the greedy text ends the text
 * just before it. */
START_TEST(stop_string)
{
	struct tst_resp a, b;
	char *text = complete(NULL, &a), *cut, extra[128], stop[8] = {0};
	size_t at = strlen(text) / 2;
	json_t *ch;

	ck_assert_uint_gt(strlen(text), 6);
	/* a stop string of plain ASCII letters from the middle */
	while (text[at] && !(text[at] >= 'a' && text[at] <= 'z'))
		at++;
	if (!text[at])
		for (at = 0; text[at] && !(text[at] >= 'a' && text[at] <= 'z');)
			at++;
	ck_assert_msg(text[at], "no letter in \"%s\"", text);
	stop[0] = text[at];
	stop[1] = text[at + 1] >= 'a' && text[at + 1] <= 'z' ? text[at + 1] : 0;
	snprintf(extra, sizeof(extra), ", \"stop\": [\"%s\"]", stop);
	cut = complete(extra, &b);
	ch = json_array_get(json_object_get(b.json, "choices"), 0);
	ck_assert_str_eq(
		json_string_value(json_object_get(ch, "finish_reason")),
		"stop");
	ck_assert_ptr_eq(strstr(cut, stop), NULL);
	ck_assert_int_eq(strncmp(text, cut, strlen(cut)), 0);
	ck_assert_ptr_eq(strstr(text, stop), text + strlen(cut));
	free(text);
	free(cut);
	tst_resp_free(&a);
	tst_resp_free(&b);
}
END_TEST

START_TEST(logprobs)
{
	struct tst_resp r;
	char *text = complete(", \"logprobs\": 2", &r);
	json_t *ch = json_array_get(json_object_get(r.json, "choices"), 0);
	json_t *lp = json_object_get(ch, "logprobs"), *v;
	size_t n = json_integer_value(json_object_get(
		json_object_get(r.json, "usage"), "completion_tokens"));
	size_t i;

	ck_assert(json_is_object(lp));
	ck_assert_uint_eq(json_array_size(json_object_get(lp, "tokens")), n);
	ck_assert_uint_eq(json_array_size(json_object_get(lp, "top_logprobs")),
			  n);
	json_array_foreach(json_object_get(lp, "token_logprobs"), i, v)
	{
		ck_assert(json_is_number(v));
		ck_assert_double_le(json_number_value(v), 1e-6);
		ck_assert_uint_le(
			json_object_size(json_array_get(
				json_object_get(lp, "top_logprobs"), i)),
			2);
	}
	free(text);
	tst_resp_free(&r);
}
END_TEST

/* Sampling with a seed is reproducible; greedy and sampled differ in
 * what they may do, not checked here. */
START_TEST(seeded_sampling)
{
	struct tst_resp a, b;
	char *ta = complete(", \"temperature\": 1.0, \"seed\": 42, "
			    "\"top_p\": 0.95",
			    &a);
	char *tb = complete(", \"temperature\": 1.0, \"seed\": 42, "
			    "\"top_p\": 0.95",
			    &b);

	ck_assert_str_eq(ta, tb);
	free(ta);
	free(tb);
	tst_resp_free(&a);
	tst_resp_free(&b);
}
END_TEST

START_TEST(metrics_count)
{
	struct tst_resp r;
	char *t;
	double before = tst_scrape(&npd, "npd_generation_tokens_total");
	double ttft = tst_scrape(&npd, "npd_time_to_first_token_seconds_count");
	size_t n;

	t = complete(NULL, &r);
	n = json_integer_value(json_object_get(json_object_get(r.json, "usage"),
					       "completion_tokens"));
	ck_assert_double_eq(tst_scrape(&npd, "npd_generation_tokens_total"),
			    before + n);
	ck_assert_double_eq(
		tst_scrape(&npd, "npd_time_to_first_token_seconds_count"),
		ttft + 1);
	ck_assert_double_eq(tst_scrape(&npd, "npd_kv_slots"), 8);
	/* the scheduler retires a request's slot just after delivering its
	 * last token, which the response may overtake: settle, bounded */
	for (int i = 0; i < 200 && tst_scrape(&npd, "npd_requests_running");
	     i++)
		nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
	ck_assert_double_eq(tst_scrape(&npd, "npd_requests_running"), 0);
	ck_assert_double_ge(tst_scrape(&npd, "npd_card_temperature_celsius{"
					     "card=\"0\",name=\"emu:0\"}"),
			    0);
	free(t);
	tst_resp_free(&r);
}
END_TEST

/* Chat: the messages rendered in the template's family; the same text
 * streamed and whole; the stream opens with the assistant's role. */
START_TEST(chat)
{
	static const char body[] =
		"{\"messages\": [{\"role\": \"system\", \"content\": "
		"\"You are terse.\"}, {\"role\": \"user\", \"content\": "
		"[{\"type\": \"text\", \"text\": \"Name a harbour.\"}]}], "
		"\"max_completion_tokens\": 10, \"temperature\": 0%s}";
	char b[512];
	struct tst_resp r, rs;
	struct tst_sse s;
	json_t *ch, *first;

	snprintf(b, sizeof(b), body, "");
	tst_http(&npd, "POST", "/v1/chat/completions", b, TST_KEY, &r);
	ck_assert_msg(r.status == 200, "status %ld: %s", r.status, r.body);
	ck_assert_str_eq(json_string_value(json_object_get(r.json, "object")),
			 "chat.completion");
	ch = json_array_get(json_object_get(r.json, "choices"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(
				 json_object_get(ch, "message"), "role")),
			 "assistant");
	/* the rendered prompt: system and user turns, then the opening of
	 * the assistant's, many more tokens than the two contents alone */
	ck_assert_int_gt(
		json_integer_value(json_object_get(
			json_object_get(r.json, "usage"), "prompt_tokens")),
		10);
	snprintf(b, sizeof(b), body, ", \"stream\": true");
	tst_http(&npd, "POST", "/v1/chat/completions", b, TST_KEY, &rs);
	ck_assert_int_eq(rs.status, 200);
	tst_sse_parse(rs.body, &s);
	ck_assert(s.done);
	first = json_array_get(s.events, 0);
	ck_assert_str_eq(json_string_value(json_object_get(first, "object")),
			 "chat.completion.chunk");
	ck_assert_str_eq(
		json_string_value(json_object_get(
			json_object_get(
				json_array_get(
					json_object_get(first, "choices"), 0),
				"delta"),
			"role")),
		"assistant");
	ck_assert_str_eq(s.text,
			 json_string_value(json_object_get(
				 json_object_get(ch, "message"), "content")));
	tst_sse_free(&s);
	tst_resp_free(&rs);
	tst_resp_free(&r);
}
END_TEST

Suite *np_suite_npd_api(void)
{
	Suite *s = suite_create("npd_api");
	TCase *tc = tcase_create("api");

	tcase_add_unchecked_fixture(tc, up, down);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, health_and_models);
	tcase_add_test(tc, completion_greedy);
	tcase_add_test(tc, stream_matches);
	tcase_add_test(tc, stop_string);
	tcase_add_test(tc, logprobs);
	tcase_add_test(tc, seeded_sampling);
	tcase_add_test(tc, metrics_count);
	tcase_add_test(tc, chat);
	suite_add_tcase(s, tc);
	return s;
}
