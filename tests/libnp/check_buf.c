// SPDX-License-Identifier: MIT
/* DMA buffers and the IOVA allocator. */
#include <errno.h>
#include <stdint.h>

#include "test.h"

START_TEST(test_buf_alloc)
{
	static const size_t sizes[] = {1, 4096, 5000, 2u << 20, 3u << 20};
	struct np_buf *b[5];
	unsigned int i, j;

	for (i = 0; i < 5; i++) {
		const uint8_t *p;

		ck_assert_int_eq(np_buf_alloc(tst_ctx, sizes[i], &b[i]), 0);
		ck_assert_uint_ge(np_buf_size(b[i]), sizes[i]);
		ck_assert_uint_eq(np_buf_size(b[i]) % 4096, 0);
		ck_assert_uint_eq(np_buf_iova(b[i]) % 4096, 0);
		ck_assert_uint_ne(np_buf_iova(b[i]), 0);
		p = np_buf_ptr(b[i]);
		for (size_t k = 0; k < np_buf_size(b[i]); k += 997)
			ck_assert_uint_eq(p[k], 0);
	}
	/* IOVA ranges never overlap. */
	for (i = 0; i < 5; i++)
		for (j = 0; j < i; j++)
			ck_assert(np_buf_iova(b[i]) + np_buf_size(b[i]) <=
					  np_buf_iova(b[j]) ||
				  np_buf_iova(b[j]) + np_buf_size(b[j]) <=
					  np_buf_iova(b[i]));
	/* A freed range is reused. */
	uint64_t iova = np_buf_iova(b[1]);

	np_buf_free(b[1]);
	ck_assert_int_eq(np_buf_alloc(tst_ctx, 4096, &b[1]), 0);
	ck_assert_uint_eq(np_buf_iova(b[1]), iova);
	for (i = 0; i < 5; i++)
		np_buf_free(b[i]);
	np_buf_free(NULL);
}
END_TEST

START_TEST(test_buf_invalid)
{
	struct np_buf *b = (struct np_buf *)&b;

	ck_assert_int_eq(np_buf_alloc(tst_ctx, 0, &b), -EINVAL);
	ck_assert_ptr_null(b);
	ck_assert_int_eq(np_buf_alloc(NULL, 4096, &b), -EINVAL);
	ck_assert_int_eq(np_buf_alloc(tst_ctx, 4096, NULL), -EINVAL);
}
END_TEST

START_TEST(test_buf_left_open)
{
	struct np_buf *b;

	/* np_close frees buffers the caller forgot (checked under ASan). */
	ck_assert_int_eq(np_buf_alloc(tst_ctx, 8192, &b), 0);
	ck_assert_ptr_nonnull(np_buf_ptr(b));
}
END_TEST

Suite *np_suite_buf(void)
{
	Suite *s = suite_create("buf");
	TCase *tc = tcase_create("buf");

	tcase_add_checked_fixture(tc, tst_setup, tst_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_buf_alloc);
	tcase_add_test(tc, test_buf_invalid);
	tcase_add_test(tc, test_buf_left_open);
	suite_add_tcase(s, tc);
	return s;
}
