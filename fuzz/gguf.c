// SPDX-License-Identifier: MIT
/*
 * GGUF reader harness: the input is a GGUF file. It is opened from memory,
 * every tensor and every metadata key np reads is walked through each
 * getter, and when the file gets that far the tokenizer and the llama
 * model view are built from it and exercised.
 *
 * Invariants beyond "no crash": a file refused with -EINVAL (or -ENOTSUP)
 * has logged why at LOG_ERR, and whatever the reader accepted is
 * self-consistent (tensor sizes, lookups by name, row reads in bounds).
 */
#include <errno.h>
#include <syslog.h>

#include "np/model.h"
#include "np_fuzz.h"

/* Every key the reader's users look up, plus one that never exists. */
static const char *const keys[] = {
	"general.alignment",
	"general.architecture",
	"general.name",
	"llama.attention.head_count",
	"llama.attention.head_count_kv",
	"llama.attention.layer_norm_rms_epsilon",
	"llama.block_count",
	"llama.context_length",
	"llama.embedding_length",
	"llama.feed_forward_length",
	"llama.rope.dimension_count",
	"llama.rope.freq_base",
	"llama.vocab_size",
	"tokenizer.ggml.add_space_prefix",
	"tokenizer.ggml.bos_token_id",
	"tokenizer.ggml.eos_token_id",
	"tokenizer.ggml.merges",
	"tokenizer.ggml.model",
	"tokenizer.ggml.pre",
	"tokenizer.ggml.scores",
	"tokenizer.ggml.token_type",
	"tokenizer.ggml.tokens",
	"tokenizer.ggml.unknown_token_id",
	"tokenizer.chat_template",
	"np.fuzz.absent",
};

/* Text run through a tokenizer the file yields: ASCII, multi-byte UTF-8,
 * an invalid sequence and a NUL. */
static const char sample[] = "Hello, world!  The card's 256 cores: "
			     "\xc3\xa9t\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac "
			     "\xf0\x9f\x98\x80 \xff\xfe\x80 end\0tail";

#define ROW_MAX 65536u /* largest row the harness dequantises */

static volatile unsigned int sink;

struct fuzz_log {
	unsigned int errors;
};

static void log_fn(void *opaque, enum np_log_level level, const char *msg)
{
	struct fuzz_log *l = opaque;

	NP_FUZZ_ASSERT(msg && *msg, "empty log message");
	if (level <= LOG_ERR)
		l->errors++;
}

static void walk_tensors(const struct np_gguf *g, float *row)
{
	size_t n = np_gguf_n_tensors(g);

	NP_FUZZ_ASSERT(np_gguf_tensor(g, n) == NULL, "tensor %zu of %zu", n, n);
	for (size_t i = 0; i < n; i++) {
		const struct np_gguf_tensor *t = np_gguf_tensor(g, i);
		uint64_t rows;

		NP_FUZZ_ASSERT(t && t->name && t->ne[0], "tensor %zu", i);
		NP_FUZZ_ASSERT(np_gguf_find_tensor(g, t->name) == t,
			       "lookup of tensor '%s'", t->name);
		rows = t->n_elems / t->ne[0];
		if (t->ne[0] > ROW_MAX)
			continue;
		/* first and last row, and one past the end */
		np_gguf_tensor_row(t, 0, row);
		np_gguf_tensor_row(t, rows - 1, row);
		NP_FUZZ_ASSERT(np_gguf_tensor_row(t, rows, row) != 0,
			       "row %llu of '%s' with %llu rows was read",
			       (unsigned long long)rows, t->name,
			       (unsigned long long)rows);
	}
}

static void walk_keys(const struct np_gguf *g)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *k = keys[i], *s;
		uint64_t u, count;
		uint32_t type;
		size_t len;
		double d;
		float f;
		int b;

		np_gguf_get_u64(g, k, &u);
		np_gguf_get_f32(g, k, &f);
		np_gguf_get_bool(g, k, &b);
		if (np_gguf_get_str(g, k, &s, &len) == 0 && len)
			NP_FUZZ_ASSERT(s, "string '%s'", k);
		if (np_gguf_get_arr(g, k, &type, &count))
			continue;
		/* first, last and one past the end, as strings and numbers */
		for (uint64_t j = 0; j < 3; j++) {
			uint64_t idx = j == 0 ? 0 : j == 1 ? count - 1 : count;

			if (np_gguf_arr_str(g, k, idx, &s, &len) == 0) {
				NP_FUZZ_ASSERT(idx < count, "'%s'[%llu]", k,
					       (unsigned long long)idx);
				/* touch the whole string: ASan checks it */
				for (size_t c = 0; c < len; c++)
					sink += (unsigned char)s[c];
			}
			if (np_gguf_arr_num(g, k, idx, &d) == 0)
				NP_FUZZ_ASSERT(idx < count, "'%s'[%llu]", k,
					       (unsigned long long)idx);
		}
	}
}

static void use_tokenizer(const struct np_tok *t)
{
	int32_t ids[4 * sizeof(sample)];
	char text[64 * sizeof(sample)];
	uint32_t n_vocab = np_tok_n_vocab(t);
	size_t n = 0, len = 0;
	int32_t bad[2] = {0, -1};

	NP_FUZZ_ASSERT(np_tok_bos(t) < (int32_t)n_vocab &&
			       np_tok_eos(t) < (int32_t)n_vocab,
		       "BOS %d / EOS %d outside a vocabulary of %u",
		       np_tok_bos(t), np_tok_eos(t), n_vocab);
	if (np_tok_encode(t, sample, sizeof(sample) - 1, ids,
			  sizeof(ids) / sizeof(ids[0]), &n) == 0) {
		for (size_t i = 0; i < n; i++)
			NP_FUZZ_ASSERT(
				ids[i] >= 0 && (uint32_t)ids[i] < n_vocab,
				"encode produced id %d of %u", ids[i], n_vocab);
		np_tok_decode(t, ids, n, text, sizeof(text), &len);
		/* too small an output buffer */
		np_tok_decode(t, ids, n, text, 1, &len);
	}
	np_tok_encode(t, sample, sizeof(sample) - 1, ids, 1, &n);
	bad[0] = (int32_t)n_vocab;
	NP_FUZZ_ASSERT(np_tok_decode(t, bad, 1, text, sizeof(text), &len) ==
			       -EINVAL,
		       "id %u decoded", n_vocab);
	NP_FUZZ_ASSERT(np_tok_decode(t, bad + 1, 1, text, sizeof(text), &len) ==
			       -EINVAL,
		       "id -1 decoded");
}

static void use_model(const struct np_model *m, float *row)
{
	const struct np_model_shape *s = np_model_get_shape(m);

	NP_FUZZ_ASSERT(np_model_shape_check(s, NULL) == 0,
		       "accepted model has an invalid shape");
	for (int k = 0; k < NP_T_COUNT; k++) {
		uint32_t rows, cols;

		np_model_dims(m, k, &rows, &cols);
		if (cols > ROW_MAX)
			continue;
		NP_FUZZ_ASSERT(np_model_row(m, k, 0, 0, row) == 0,
			       "row 0 of tensor kind %d", k);
		NP_FUZZ_ASSERT(
			np_model_row(m, k, s->n_layers - 1, rows - 1, row) == 0,
			"last row of tensor kind %d", k);
	}
}

int np_fuzz_gguf(const uint8_t *data, size_t size)
{
	struct fuzz_log l = {0};
	struct np_log log = {.fn = log_fn, .opaque = &l};
	struct np_gguf *g;
	struct np_model *m;
	struct np_tok *t;
	float *row;
	int ret;

	ret = np_gguf_open_mem(data, size, &log, &g);
	if (ret) {
		NP_FUZZ_ASSERT(
			ret == -ENOMEM || l.errors,
			"np_gguf_open_mem failed with %d and logged no reason",
			ret);
		NP_FUZZ_ASSERT(g == NULL, "failed open left a handle");
		return 0;
	}
	NP_FUZZ_ASSERT(l.errors == 0, "open succeeded but logged an error");
	NP_FUZZ_ASSERT(np_gguf_version(g) == 2 || np_gguf_version(g) == 3,
		       "version %u accepted", np_gguf_version(g));
	row = malloc(ROW_MAX * sizeof(float));
	if (!row) {
		np_gguf_close(g);
		return 0;
	}
	walk_tensors(g, row);
	walk_keys(g);

	l.errors = 0;
	ret = np_tok_from_gguf(g, &log, &t);
	NP_FUZZ_ASSERT(ret == 0 || ret == -ENOMEM || l.errors,
		       "np_tok_from_gguf failed with %d and logged no reason",
		       ret);
	if (!ret)
		use_tokenizer(t);
	np_tok_destroy(t);

	l.errors = 0;
	ret = np_model_from_gguf(g, &log, &m);
	NP_FUZZ_ASSERT(ret == 0 || ret == -ENOMEM || l.errors,
		       "np_model_from_gguf failed with %d and logged no reason",
		       ret);
	if (!ret)
		use_model(m, row);
	np_model_destroy(m);

	free(row);
	np_gguf_close(g);
	return 0;
}
