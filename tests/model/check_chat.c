// SPDX-License-Identifier: MIT
/*
 * Chat templates: detection and rendering against llama.cpp's
 * tests/test-chat-template.cpp (its conversation, templates and expected
 * outputs; the families it has no case for are rendered from
 * llm_chat_apply_template by hand).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "np/chat.h"
#include "test.h"

static const struct np_chat_msg conv[] = {
	{"system", "You are a helpful assistant"},
	{"user", "Hello"},
	{"assistant", "Hi there"},
	{"user", "Who are you"},
	{"assistant", "   I am an assistant   "},
	{"user", "Another question"},
};

struct chat_case {
	const char *tmpl;
	enum np_chat_family family;
	const char *want;
};

static const struct chat_case cases[] = {
	/* teknium/OpenHermes-2.5-Mistral-7B */
	{"{% for message in messages %}{{'<|im_start|>' + message['role'] + "
	 "'\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if "
	 "add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
	 NP_CHAT_CHATML,
	 "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n"
	 "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\nHi "
	 "there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n"
	 "<|im_start|>assistant\n   I am an assistant   <|im_end|>\n"
	 "<|im_start|>user\nAnother question<|im_end|>\n"
	 "<|im_start|>assistant\n"},
	/* mistralai/Mistral-7B-Instruct-v0.2 (pre-v1, no system prompt) */
	{"{{ bos_token }}{% for message in messages %}{% if message['role'] "
	 "== 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif "
	 "message['role'] == 'assistant' %}{{ message['content'] + "
	 "eos_token}}{% endif %}{% endfor %}",
	 NP_CHAT_LLAMA2,
	 "[INST] You are a helpful assistant\nHello [/INST]Hi there</s>[INST] "
	 "Who are you [/INST]   I am an assistant   </s>[INST] Another "
	 "question [/INST]"},
	/* TheBloke/FusionNet_34Bx2_MoE-AWQ */
	{"{%- if idx > 1 -%}\n{{- bos_token + '[INST] ' + "
	 "messages[idx]['content'] + ' [/INST]' -}}\n{% elif "
	 "messages[idx]['role'] == 'system' %}\n{{- '[INST] <<SYS>>\\n' + "
	 "messages[idx]['content'] + '\\n<</SYS>>\\n\\n' -}}",
	 NP_CHAT_LLAMA2_SYS_BOS,
	 "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello "
	 "[/INST]Hi there</s><s>[INST] Who are you [/INST]   I am an "
	 "assistant   </s><s>[INST] Another question [/INST]"},
	/* bofenghuang/vigogne-2-70b-chat */
	{"{% if message['role'] == 'user' %}{{ '[INST] ' + content.strip() + "
	 "' [/INST]' }}{% elif message['role'] == 'system' %}{{ "
	 "'<<SYS>>\\\\n' + content.strip() + '\\\\n<</SYS>>\\\\n\\\\n' }}",
	 NP_CHAT_LLAMA2_SYS_STRIP,
	 "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello "
	 "[/INST]Hi there</s>[INST] Who are you [/INST]I am an "
	 "assistant</s>[INST] Another question [/INST]"},
	/* Llama 2 chat: <<SYS>> without BOS inside history */
	{"{% if message['role'] == 'system' %}{{ '<<SYS>>\\n' + "
	 "message['content'] + '\\n<</SYS>>\\n\\n' }}{% elif message['role'] "
	 "== 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}",
	 NP_CHAT_LLAMA2_SYS,
	 "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello "
	 "[/INST]Hi there</s>[INST] Who are you [/INST]   I am an assistant  "
	 " </s>[INST] Another question [/INST]"},
	/* Llama-3 */
	{"{% set loop_messages = messages %}{% for message in loop_messages "
	 "%}{% set content = '<|start_header_id|>' + message['role'] + "
	 "'<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' "
	 "%}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% "
	 "endif %}{{ content }}{% endfor %}{{ "
	 "'<|start_header_id|>assistant<|end_header_id|>\n\n' }}",
	 NP_CHAT_LLAMA3,
	 "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful "
	 "assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
	 "Hello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHi "
	 "there<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWho are "
	 "you<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI am "
	 "an assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
	 "Another question<|eot_id|><|start_header_id|>assistant"
	 "<|end_header_id|>\n\n"},
	/* ibm-granite/granite-3.0-8b-instruct */
	{"{%- for message in messages %}\n    {%- if message['role'] == "
	 "'system' %}\n    {{- '<|start_of_role|>system<|end_of_role|>' + "
	 "message['content'] + '<|end_of_text|>\n' }}",
	 NP_CHAT_GRANITE,
	 "<|start_of_role|>system<|end_of_role|>You are a helpful "
	 "assistant<|end_of_text|>\n<|start_of_role|>user<|end_of_role|>"
	 "Hello<|end_of_text|>\n<|start_of_role|>assistant<|end_of_role|>Hi "
	 "there<|end_of_text|>\n<|start_of_role|>user<|end_of_role|>Who are "
	 "you<|end_of_text|>\n<|start_of_role|>assistant<|end_of_role|>   I "
	 "am an assistant   <|end_of_text|>\n<|start_of_role|>user"
	 "<|end_of_role|>Another question<|end_of_text|>\n"
	 "<|start_of_role|>assistant<|end_of_role|>\n"},
	/* mistralai 'v1' template with a system prompt */
	{"{{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' "
	 "[/INST]' }}",
	 NP_CHAT_MISTRAL_V1,
	 " [INST] You are a helpful assistant\n\nHello [/INST] Hi there</s> "
	 "[INST] Who are you [/INST]    I am an assistant   </s> [INST] "
	 "Another question [/INST]"},
	/* Mistral-Large-Instruct-2407 ('v3') */
	{"{{- \"[AVAILABLE_TOOLS] [\" }}{{- \"[INST] \" + message[\"content\"] "
	 "+ \"[/INST]\" }}",
	 NP_CHAT_MISTRAL_V3,
	 "[INST] You are a helpful assistant\n\nHello[/INST] Hi "
	 "there</s>[INST] "
	 "Who are you[/INST] I am an assistant</s>[INST] Another "
	 "question[/INST]"},
	/* Mistral-Nemo-Instruct-2407 ('v3-tekken') */
	{"{{- \"[AVAILABLE_TOOLS][\" }}{{- \"[INST]\" + message[\"content\"] + "
	 "\"[/INST]\" }}",
	 NP_CHAT_MISTRAL_V3_TEKKEN,
	 "[INST]You are a helpful assistant\n\nHello[/INST]Hi "
	 "there</s>[INST]Who "
	 "are you[/INST]   I am an assistant   </s>[INST]Another "
	 "question[/INST]"},
	/* Mistral-Large-Instruct-2411 ('v7') */
	{"{{- '[SYSTEM_PROMPT] ' + system_message + '[/SYSTEM_PROMPT]' }}{{- "
	 "'[INST] ' + message['content'] + '[/INST]' }}",
	 NP_CHAT_MISTRAL_V7,
	 "[SYSTEM_PROMPT] You are a helpful assistant[/SYSTEM_PROMPT][INST] "
	 "Hello[/INST] Hi there</s>[INST] Who are you[/INST]    I am an "
	 "assistant   </s>[INST] Another question[/INST]"},
};

START_TEST(test_chat_vectors)
{
	const struct chat_case *c = &cases[_i];
	enum np_chat_family f = 0;
	char buf[1024];
	size_t len;

	tst_reset();
	ck_assert_int_eq(np_chat_detect(c->tmpl, strlen(c->tmpl), &tst_log, &f),
			 0);
	ck_assert_str_eq(np_chat_family_name(f),
			 np_chat_family_name(c->family));
	ck_assert_int_eq(np_chat_apply(f, conv, 6, 1, buf, sizeof(buf), &len),
			 0);
	ck_assert_uint_eq(len, strlen(c->want));
	ck_assert_int_eq(memcmp(buf, c->want, len), 0);
	/* by name, as llama.cpp takes a family name for a template */
	ck_assert_int_eq(np_chat_detect(np_chat_family_name(c->family),
					strlen(np_chat_family_name(c->family)),
					&tst_log, &f),
			 0);
	ck_assert_int_eq(f, c->family);
}
END_TEST

START_TEST(test_chat_no_generation_prompt)
{
	static const struct np_chat_msg one[] = {{"user", "Hi"}};
	char buf[128];
	size_t len;

	ck_assert_int_eq(np_chat_apply(NP_CHAT_CHATML, one, 1, 0, buf,
				       sizeof(buf), &len),
			 0);
	ck_assert_uint_eq(len, strlen("<|im_start|>user\nHi<|im_end|>\n"));
	ck_assert_int_eq(memcmp(buf, "<|im_start|>user\nHi<|im_end|>\n", len),
			 0);
	/* ENOSPC reports the needed length and writes no more than cap */
	memset(buf, 'x', sizeof(buf));
	ck_assert_int_eq(
		np_chat_apply(NP_CHAT_LLAMA3, one, 1, 1, buf, 10, &len),
		-ENOSPC);
	ck_assert_uint_eq(len, strlen("<|start_header_id|>user<|end_header_"
				      "id|>\n\nHi<|eot_id|><|start_header_id|>"
				      "assistant<|end_header_id|>\n\n"));
	ck_assert_int_eq(buf[10], 'x');
}
END_TEST

START_TEST(test_chat_errors)
{
	static const char phi3[] = "{{'<|user|>' + message['content'] + "
				   "'<|end|>' + '<|assistant|>'}}";
	static const char none[] = "{{ message['content'] }}";
	static const struct np_chat_msg bad[] = {{"user", NULL}};
	enum np_chat_family f;
	char buf[16];
	size_t len;

	tst_reset();
	ck_assert_int_eq(np_chat_detect(phi3, strlen(phi3), &tst_log, &f),
			 -ENOTSUP);
	ck_assert_ptr_nonnull(strstr(tst_last, "'phi3'"));
	ck_assert_ptr_nonnull(strstr(tst_last, "granite"));
	tst_reset();
	ck_assert_int_eq(np_chat_detect(none, strlen(none), &tst_log, &f),
			 -ENOENT);
	ck_assert_ptr_nonnull(strstr(tst_last, "matches no family"));
	ck_assert_int_eq(np_chat_family_from_name("chatml", &f), 0);
	ck_assert_int_eq(f, NP_CHAT_CHATML);
	ck_assert_int_eq(np_chat_family_from_name("jinja", &f), -ENOENT);
	ck_assert_ptr_null(np_chat_family_name(0));
	ck_assert_int_eq(np_chat_apply(0, bad, 0, 1, buf, sizeof(buf), &len),
			 -EINVAL);
	ck_assert_int_eq(np_chat_apply(NP_CHAT_CHATML, bad, 1, 1, buf,
				       sizeof(buf), &len),
			 -EINVAL);
}
END_TEST

Suite *np_suite_chat(void)
{
	Suite *s = suite_create("chat");
	TCase *tc = tcase_create("templates");

	tcase_add_loop_test(tc, test_chat_vectors, 0,
			    (int)(sizeof(cases) / sizeof(cases[0])));
	tcase_add_test(tc, test_chat_no_generation_prompt);
	tcase_add_test(tc, test_chat_errors);
	suite_add_tcase(s, tc);
	return s;
}
