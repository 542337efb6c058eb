// SPDX-License-Identifier: MIT
/*
 * Tensor type harness: the row dequantisers over arbitrary blocks, and
 * the writer's quantisers over arbitrary floats.
 *
 * Input: byte 0 picks a type np reads (index into the readable types, in
 * id order), byte 1 the blocks per row (1..4), byte 2 bit 0 the mode;
 * the rest are the bytes of 2 rows of blocks (mode 0) or the floats of
 * one row (mode 1; zeros past the end of the input).
 *
 * Invariants beyond "no crash" (the buffers are exactly the tensor's
 * size, so ASan catches any read past a block):
 *  - mode 0: every row of a readable type decodes; a row decodes to the
 *    same bits wherever its blocks sit (row 1 holds row 0's blocks in
 *    reverse order); the row past the end is refused;
 *  - mode 1: every writable type takes any floats, NaN and infinity
 *    included, and its file reads back; finite inputs of magnitude up
 *    to 1000 decode to finite values; F32 keeps every bit, BF16 is
 *    within half its step, and F16 stores its own output unchanged.
 */
#include <errno.h>
#include <math.h>

#include "np/model.h"
#include "np_fuzz.h"

#define MAX_TYPES 64

static int types_where(int (*pred)(enum np_ggml_type), enum np_ggml_type *t)
{
	int n = 0;

	for (int i = 0; i < MAX_TYPES; i++)
		if (pred((enum np_ggml_type)i))
			t[n++] = (enum np_ggml_type)i;
	return n;
}

static void decode_blocks(enum np_ggml_type type, uint32_t nb,
			  struct np_fuzz_in *in)
{
	uint32_t elems, bytes;
	struct np_gguf_tensor t = {.name = "fuzz", .type = type, .n_dims = 2};
	uint8_t *data;
	float *r0, *r1;
	size_t row_bytes;

	NP_FUZZ_ASSERT(np_ggml_type_block(type, &elems, &bytes) == 0,
		       "no block size for readable type %d", type);
	row_bytes = (size_t)nb * bytes;
	data = malloc(2 * row_bytes);
	r0 = malloc((size_t)nb * elems * sizeof(float));
	r1 = malloc((size_t)nb * elems * sizeof(float));
	NP_FUZZ_ASSERT(data && r0 && r1, "out of memory");
	for (size_t i = 0; i < row_bytes; i++)
		data[i] = np_fuzz_u8(in);
	/* row 1: row 0's blocks, last first */
	for (uint32_t b = 0; b < nb; b++)
		memcpy(data + row_bytes + (size_t)(nb - 1 - b) * bytes,
		       data + (size_t)b * bytes, bytes);
	t.ne[0] = (uint64_t)nb * elems;
	t.ne[1] = 2;
	t.ne[2] = t.ne[3] = 1;
	t.n_elems = 2 * t.ne[0];
	t.size = 2 * row_bytes;
	t.data = data;
	NP_FUZZ_ASSERT(np_gguf_tensor_row(&t, 0, r0) == 0, "%s row 0",
		       np_ggml_type_name(type));
	NP_FUZZ_ASSERT(np_gguf_tensor_row(&t, 1, r1) == 0, "%s row 1",
		       np_ggml_type_name(type));
	NP_FUZZ_ASSERT(np_gguf_tensor_row(&t, 2, r1) == -ERANGE,
		       "%s row past the end was read", np_ggml_type_name(type));
	for (uint32_t b = 0; b < nb; b++)
		NP_FUZZ_ASSERT(!memcmp(r0 + (size_t)b * elems,
				       r1 + (size_t)(nb - 1 - b) * elems,
				       elems * sizeof(float)),
			       "%s block %u decodes differently in another "
			       "place",
			       np_ggml_type_name(type), b);
	free(r1);
	free(r0);
	free(data);
}

static void encode_row(enum np_ggml_type type, uint32_t cols, const float *x,
		       float *y)
{
	struct np_gguf_writer *w;
	struct np_gguf *g;
	void *buf;
	size_t len;
	int finite = 1;

	for (uint32_t c = 0; c < cols; c++)
		finite &= isfinite(x[c]) && fabsf(x[c]) <= 1000.0f;
	NP_FUZZ_ASSERT(np_gguf_writer_create(&w) == 0, "writer");
	NP_FUZZ_ASSERT(np_gguf_writer_tensor(w, "x", type, 1, cols, 1, x) == 0,
		       "%s refused %u columns", np_ggml_type_name(type), cols);
	NP_FUZZ_ASSERT(np_gguf_writer_buf(w, &buf, &len) == 0, "buffer");
	np_gguf_writer_destroy(w);
	NP_FUZZ_ASSERT(np_gguf_open_mem(buf, len, NULL, &g) == 0,
		       "%s: the writer's file does not open",
		       np_ggml_type_name(type));
	NP_FUZZ_ASSERT(np_gguf_tensor_row(np_gguf_tensor(g, 0), 0, y) == 0,
		       "%s: row not read", np_ggml_type_name(type));
	for (uint32_t c = 0; c < cols && finite; c++)
		NP_FUZZ_ASSERT(isfinite(y[c]), "%s: %g decoded as %g",
			       np_ggml_type_name(type), (double)x[c],
			       (double)y[c]);
	for (uint32_t c = 0; c < cols; c++) {
		if (type == NP_GGML_F32)
			NP_FUZZ_ASSERT(!memcmp(&x[c], &y[c], 4),
				       "F32: %g decoded as %g", (double)x[c],
				       (double)y[c]);
		/* BF16: a float with 8 mantissa bits, within half a step
		 * (2^-134 among the subnormals) */
		if (type == NP_GGML_BF16 && isfinite(x[c]) && isfinite(y[c]))
			NP_FUZZ_ASSERT(fabsf(y[c] - x[c]) <=
					       fmaxf(ldexpf(fabsf(x[c]), -8),
						     0x1p-134f),
				       "BF16: %g decoded as %g", (double)x[c],
				       (double)y[c]);
	}
	np_gguf_close(g);
	free(buf);
}

static void encode_floats(uint32_t nb, struct np_fuzz_in *in)
{
	enum np_ggml_type wt[MAX_TYPES];
	int n = types_where(np_ggml_type_writable, wt);
	uint32_t cols = 256 * nb;
	float *x = malloc(cols * sizeof(float)), *y, *z;

	y = malloc(cols * sizeof(float));
	z = malloc(cols * sizeof(float));
	NP_FUZZ_ASSERT(x && y && z, "out of memory");
	for (uint32_t c = 0; c < cols; c++) {
		uint32_t u = np_fuzz_u32(in);

		memcpy(&x[c], &u, 4);
	}
	for (int i = 0; i < n; i++) {
		encode_row(wt[i], cols, x, y);
		/* F16: what was stored is stored again unchanged */
		if (wt[i] == NP_GGML_F16) {
			encode_row(wt[i], cols, y, z);
			for (uint32_t c = 0; c < cols; c++)
				NP_FUZZ_ASSERT(isnan(y[c]) ? isnan(z[c]) :
							     y[c] == z[c],
					       "F16: %g stored again as %g",
					       (double)y[c], (double)z[c]);
		}
	}
	free(z);
	free(y);
	free(x);
}

int np_fuzz_quant(const uint8_t *data, size_t size)
{
	struct np_fuzz_in in = {data, size};
	enum np_ggml_type rt[MAX_TYPES];
	int n = types_where(np_ggml_type_readable, rt);
	uint8_t pick = np_fuzz_u8(&in);
	uint32_t nb = 1 + np_fuzz_u8(&in) % 4;

	NP_FUZZ_ASSERT(n > 0, "no readable type");
	if (np_fuzz_u8(&in) & 1)
		encode_floats(nb, &in);
	else
		decode_blocks(rt[pick % n], nb, &in);
	return 0;
}
