// SPDX-License-Identifier: MIT
/*
 * The architecture table (libnpmodel/src/arch.c, white box): the llama row
 * loads the demo model as the loader always did, an architecture not in
 * the table or needing a feature np does not compile is refused by name.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "npim.h"
#include "npim_arch.h"

/* A GGUF holding only general.architecture = arch */
static struct np_gguf *arch_only(const char *arch, void **buf)
{
	struct np_gguf_writer *w;
	struct np_gguf *g;
	size_t len;

	ck_assert_int_eq(np_gguf_writer_create(&w), 0);
	ck_assert_int_eq(np_gguf_writer_kv_str(w, "general.architecture", arch),
			 0);
	ck_assert_int_eq(np_gguf_writer_buf(w, buf, &len), 0);
	np_gguf_writer_destroy(w);
	ck_assert_int_eq(np_gguf_open_mem(*buf, len, &tst_log, &g), 0);
	return g;
}

START_TEST(test_unknown_arch)
{
	struct np_model *m = (struct np_model *)1;
	struct np_gguf *g;
	void *buf;

	g = arch_only("rwkv6", &buf);
	tst_reset();
	ck_assert_int_eq(np_model_from_gguf(g, &tst_log, &m), -ENOTSUP);
	ck_assert_ptr_null(m);
	ck_assert_str_eq(tst_last,
			 "model: architecture 'rwkv6' is not supported; np "
			 "compiles 'llama', 'granite', 'qwen2' models");
	np_gguf_close(g);
	free(buf);
	/* a prefix of a supported name is another name */
	g = arch_only("llam", &buf);
	ck_assert_int_eq(np_model_from_gguf(g, &tst_log, &m), -ENOTSUP);
	ck_assert_ptr_nonnull(strstr(tst_last, "architecture 'llam'"));
	np_gguf_close(g);
	free(buf);
}
END_TEST

START_TEST(test_feature_not_compiled)
{
	static const char *const rows[] = {"llama", "granite", "qwen2"};
	const struct npim_arch *a;
	struct npim_arch later;

	for (size_t i = 0; i < 3; i++) {
		ck_assert_int_eq(
			npim_arch_find(rows[i], strlen(rows[i]), &tst_log, &a),
			0);
		ck_assert_int_eq(npim_arch_usable(a, &tst_log), 0);
	}
	ck_assert(npim_arch_find("qwen2", 5, NULL, &a) == 0 &&
		  (a->features & NPIM_ARCH_ROPE_NEOX) &&
		  (a->features & NPIM_ARCH_QKV_BIAS));
	ck_assert_int_eq(npim_arch_find("granite", 7, NULL, &a), 0);
	ck_assert(a->features & NPIM_ARCH_MULTIPLIERS);
	/* a row needing a feature this build does not implement */
	later = *a;
	later.name = "later";
	later.features |= 1u << 31;
	ck_assert_uint_eq(NPIM_ARCH_IMPLEMENTED & 1u << 31, 0);
	tst_reset();
	ck_assert_int_eq(npim_arch_usable(&later, &tst_log), -ENOTSUP);
	ck_assert_str_eq(tst_last, "model: architecture 'later' needs a "
				   "feature of a later np, which np does not "
				   "compile yet; np compiles 'llama', "
				   "'granite', 'qwen2' models");
}
END_TEST

START_TEST(test_llama_names)
{
	const struct npim_arch *a;
	char buf[96];

	ck_assert_int_eq(npim_arch_find("llama", 5, NULL, &a), 0);
	ck_assert_ptr_eq(a, npim_arch_synthetic);
	ck_assert_str_eq(a->prefix, "llama");
	npim_arch_key(a, "attention.head_count_kv", buf, sizeof(buf));
	ck_assert_str_eq(buf, "llama.attention.head_count_kv");
	npim_arch_tensor_name(a, NP_T_O, 13, buf, sizeof(buf));
	ck_assert_str_eq(buf, "blk.13.attn_output.weight");
	npim_arch_tensor_name(a, NP_T_OUTPUT, 13, buf, sizeof(buf));
	ck_assert_str_eq(buf, "output.weight");
	ck_assert(a->features & NPIM_ARCH_TIED_OUTPUT);
	ck_assert_float_eq(a->rope_base, 10000.0f);
	ck_assert_float_eq(a->norm_eps, 1e-5f);
}
END_TEST

/* The llama row reads the demo model: its preset shape, and every tensor
 * row is the one of the GGUF tensor the table names */
START_TEST(test_llama_loads_demo)
{
	struct np_model_shape tiny;
	const struct np_model_shape *s;
	struct np_gguf *g;
	struct np_model *m;
	float *a, *b;

	ck_assert_int_eq(np_gguf_open(NP_DEMO_GGUF, &tst_log, &g), 0);
	ck_assert_int_eq(np_model_from_gguf(g, &tst_log, &m), 0);
	ck_assert_int_eq(np_model_shape_preset("tiny", &tiny), 0);
	s = np_model_get_shape(m);
	ck_assert_int_eq(memcmp(s, &tiny, sizeof(tiny)), 0);
	a = malloc(s->ffn * sizeof(float));
	b = malloc(s->ffn * sizeof(float));
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	for (int t = 0; t < NP_T_COUNT; t++) {
		uint32_t layer = t < NP_T_TOK_EMBD ? s->n_layers - 1 : 0;
		uint32_t rows, cols;
		char name[96];
		const struct np_gguf_tensor *gt;

		npim_arch_tensor_name(npim_arch_synthetic, t, layer, name,
				      sizeof(name));
		if (t == NP_T_OUTPUT && !np_gguf_find_tensor(g, name))
			npim_arch_tensor_name(npim_arch_synthetic,
					      NP_T_TOK_EMBD, 0, name,
					      sizeof(name));
		gt = np_gguf_find_tensor(g, name);
		ck_assert_ptr_nonnull(gt);
		np_model_dims(m, t, &rows, &cols);
		ck_assert_uint_eq(gt->ne[0], cols);
		ck_assert_int_eq(np_model_row(m, t, layer, rows - 1, a), 0);
		ck_assert_int_eq(np_gguf_tensor_row(gt, rows - 1, b), 0);
		ck_assert_int_eq(memcmp(a, b, cols * sizeof(float)), 0);
	}
	free(a);
	free(b);
	np_model_destroy(m);
	np_gguf_close(g);
}
END_TEST

Suite *np_suite_arch(void)
{
	Suite *s = suite_create("arch");
	TCase *tc = tcase_create("table");

	tcase_add_test(tc, test_unknown_arch);
	tcase_add_test(tc, test_feature_not_compiled);
	tcase_add_test(tc, test_llama_names);
	tcase_add_test(tc, test_llama_loads_demo);
	suite_add_tcase(s, tc);
	return s;
}
