// SPDX-License-Identifier: MIT
/*
 * Model compiler harness: the input is a model shape and compile options.
 *
 * Any shape goes through np_model_shape_check(); a shape it accepts is
 * planned by np_compile() on a synthetic model (weights cost nothing until
 * read, so the 3B shape plans as fast as a tiny one). A plan for a tiny
 * model is then rendered: one card image, an embedding row and the
 * summary. Invariants: every refusal is logged, and every plan fits the
 * card (each card's per-core high-water mark within a core's SRAM, layers
 * covered exactly once, vocabulary split without gaps).
 */
#include <errno.h>
#include <math.h>
#include <syslog.h>

#include "np/model.h"
#include "np_abi.h"
#include "np_fuzz.h"

/* Render images only for models this small: it stays fast. */
#define TINY_DIM 256u
#define TINY_FFN 1024u
#define TINY_VOCAB 1024u
#define TINY_LAYERS 4u

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

/* Either a raw 32-bit value or a small one, so both the limits and the
 * plausible shapes get explored. */
static uint32_t dimension(struct np_fuzz_in *in, uint32_t unit)
{
	uint8_t sel = np_fuzz_u8(in);

	if (sel & 0x80)
		return np_fuzz_u32(in);
	return (uint32_t)(sel & 0x7f) * unit;
}

static float real(struct np_fuzz_in *in)
{
	uint32_t bits = np_fuzz_u32(in);
	float f;

	memcpy(&f, &bits, sizeof(f));
	return f;
}

static void check_plan(const struct np_compiled *c,
		       const struct np_model_shape *s)
{
	uint32_t n = np_compiled_n_cards(c), layer = 0, vocab = 0;

	NP_FUZZ_ASSERT(n >= 2 && n <= 256, "plan uses %u cards", n);
	for (uint32_t i = 0; i < n; i++) {
		const struct np_card_plan *p = np_compiled_card(c, i);

		NP_FUZZ_ASSERT(p, "card %u of %u has no plan", i, n);
		NP_FUZZ_ASSERT(p->core_bytes <= NP_CORE_SRAM_SIZE,
			       "card %u needs %llu bytes per core", i,
			       (unsigned long long)p->core_bytes);
		if (p->kind == NP_CARD_LAYERS) {
			NP_FUZZ_ASSERT(
				p->first_layer == layer && p->n_layers,
				"card %u starts at layer %u, expected %u", i,
				p->first_layer, layer);
			layer += p->n_layers;
		} else {
			NP_FUZZ_ASSERT(
				p->kind == NP_CARD_OUTPUT &&
					p->vocab_begin == vocab &&
					p->vocab_end > vocab,
				"card %u: output rows %u..%u, expected from %u",
				i, p->vocab_begin, p->vocab_end, vocab);
			vocab = p->vocab_end;
		}
	}
	NP_FUZZ_ASSERT(layer == s->n_layers && vocab == s->vocab,
		       "plan covers %u of %u layers, %u of %u tokens", layer,
		       s->n_layers, vocab, s->vocab);
}

static void render(const struct np_compiled *c, const struct np_model *m,
		   const struct np_model_shape *s, struct np_fuzz_in *in)
{
	uint32_t card = np_fuzz_u8(in) % np_compiled_n_cards(c);
	int32_t token = (int32_t)np_fuzz_u32(in);
	size_t desc_len = np_fuzz_u16(in) % 4096;
	char *desc = malloc(desc_len ? desc_len : 1);
	int16_t *x = malloc(s->dim * sizeof(*x));
	struct np_quant_calib *calib = NULL;
	struct np_compiled *full = NULL;
	static uint8_t *sram;
	int ret;

	if (!desc || !x)
		goto out;
	np_compiled_describe(c, desc, desc_len);
	if (desc_len)
		NP_FUZZ_ASSERT(memchr(desc, 0, desc_len),
			       "summary not terminated");
	if (np_quant_calib_default(m, &calib))
		goto out;
	if (np_compile(m, calib,
		       &(struct np_compile_opts){
			       .n_cards = np_compiled_n_cards(c),
			       .batch = 1,
			       .max_seq = 16,
		       },
		       NULL, &full))
		goto out;
	np_compiled_embed(full, token, x);
	np_compiled_embed(full, token % (int32_t)s->vocab, x);
	NP_FUZZ_ASSERT(np_compiled_embed(full, (int32_t)s->vocab, x) != 0,
		       "token %u of a %u-token vocabulary embedded", s->vocab,
		       s->vocab);
	/*
	 * One card's SRAM, allocated once: 192 MiB per input would cost more
	 * than the rest of the harness. Stale bytes from earlier inputs do not
	 * matter here; ASan still guards both ends.
	 */
	if (!sram)
		sram = malloc(NP_SRAM_SIZE);
	if (!sram)
		goto out;
	card %= np_compiled_n_cards(full);
	ret = np_compile_card_image(full, card, sram);
	NP_FUZZ_ASSERT(ret == 0 || ret == -ERANGE,
		       "card %u image of a planned model failed: %d", card,
		       ret);
	NP_FUZZ_ASSERT(np_compile_card_image(full, np_compiled_n_cards(full),
					     sram) != 0,
		       "image of a card past the plan rendered");
out:
	np_compiled_destroy(full);
	np_quant_calib_destroy(calib);
	free(x);
	free(desc);
}

int np_fuzz_compile(const uint8_t *data, size_t size)
{
	struct np_fuzz_in in = {data, size};
	struct fuzz_log l = {0};
	struct np_log log = {.fn = log_fn, .opaque = &l};
	struct np_model_shape s;
	struct np_compile_opts o = {0};
	struct np_compiled *c;
	struct np_model *m;
	int ret;

	s.n_layers = dimension(&in, 1);
	s.dim = dimension(&in, 32);
	s.n_heads = dimension(&in, 1);
	s.n_kv_heads = dimension(&in, 1);
	s.ffn = dimension(&in, 32);
	s.vocab = dimension(&in, 16);
	s.ctx = np_fuzz_u32(&in);
	s.rope_base = np_fuzz_u8(&in) & 1 ? real(&in) : 10000.0f;
	s.norm_eps = np_fuzz_u8(&in) & 1 ? real(&in) : 1e-5f;
	o.n_cards = dimension(&in, 1);
	o.batch = dimension(&in, 1);
	o.max_seq = dimension(&in, 16);
	o.out_cards = dimension(&in, 1);

	ret = np_model_shape_check(&s, &log);
	NP_FUZZ_ASSERT(ret == 0 || (ret == -EINVAL && l.errors),
		       "shape check returned %d, %u messages", ret, l.errors);
	if (ret)
		return 0;
	NP_FUZZ_ASSERT(np_model_synthetic(&s, np_fuzz_u64(&in), &m) == 0,
		       "checked shape refused by np_model_synthetic");

	l.errors = 0;
	ret = np_compile(m, NULL, &o, &log, &c);
	NP_FUZZ_ASSERT(ret == 0 ||
			       ((ret == -EINVAL || ret == -E2BIG) && l.errors),
		       "np_compile returned %d, %u messages", ret, l.errors);
	NP_FUZZ_ASSERT(o.out_cards <= s.vocab || ret == -EINVAL,
		       "np_compile returned %d for %u output cards, %u tokens",
		       ret, o.out_cards, s.vocab);
	if (!ret) {
		check_plan(c, &s);
		if (s.dim <= TINY_DIM && s.ffn <= TINY_FFN &&
		    s.vocab <= TINY_VOCAB && s.n_layers <= TINY_LAYERS)
			render(c, m, &s, &in);
	}
	np_compiled_destroy(c);
	np_model_destroy(m);
	return 0;
}
