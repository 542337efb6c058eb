// SPDX-License-Identifier: MIT
/*
 * The model families (white box): the float reference of each
 * architecture checked stage by stage against a computation derived here
 * from a one-layer model whose weights are chosen by hand; the keys and
 * tensors each family carries refused when np cannot compute them as
 * llama.cpp does; every family's generated GGUF loads, gives the float
 * reference of its generator bit for bit, and its compiled integer model
 * follows the float one.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"
#include "np_abi.h"
#include "npim.h"
#include "npk.h"

#define DIM 32
#define HD 16
#define NV 4
#define BASE 100.0

/* The hand model: 1 layer, 2 query heads over 1 KV head of 16 */
struct hand {
	const char *arch;
	int bias; /* Q/K/V biases */
	int granite; /* embedding 2, residual 0.5, attention 0.1, logit 4 */
	int factors; /* rope_freqs.weight 1, 1, 2, 2, 4, 4, 8, 8 */
	const char *scaling; /* rope.scaling.type, NULL: absent */
	float factor; /* rope.scaling.factor, 0: absent */
	/* defects */
	int no_logit_scale, extra_tensor, zero_factor, no_bias;
	uint32_t key_length; /* attention.key_length, 0: absent */
};

static const float ff_hand[HD / 2] = {1, 1, 2, 2, 4, 4, 8, 8};

/* token t's embedding: values of -1..1 in steps of 0.5 */
static double emb(int t, int i)
{
	return ((i + 3 * t) % 5 - 2) * 0.5;
}

static double bias_of(int k, int i)
{
	return k == 0 ? 0.1 * (i % 3) : k == 1 ? -0.2 + 0.05 * i : 0.3;
}

static void key_u32(struct np_gguf_writer *w, const char *a, const char *k,
		    uint32_t v)
{
	char key[96];

	snprintf(key, sizeof(key), "%s.%s", a, k);
	ck_assert_int_eq(np_gguf_writer_kv_u32(w, key, v), 0);
}

static void key_f32(struct np_gguf_writer *w, const char *a, const char *k,
		    float v)
{
	char key[96];

	snprintf(key, sizeof(key), "%s.%s", a, k);
	ck_assert_int_eq(np_gguf_writer_kv_f32(w, key, v), 0);
}

/* rows x cols with m[r][c] = diag when c == r + shift, else 0 */
static void tensor_diag(struct np_gguf_writer *w, const char *name,
			uint32_t rows, uint32_t cols, uint32_t shift,
			float diag)
{
	float *m = calloc((size_t)rows * cols, sizeof(float));

	ck_assert_ptr_nonnull(m);
	for (uint32_t r = 0; r < rows; r++)
		m[(size_t)r * cols + r + shift] = diag;
	ck_assert_int_eq(np_gguf_writer_tensor(w, name, NP_GGML_F32, rows, cols,
					       rows > 1, m),
			 0);
	free(m);
}

static void tensor_vec(struct np_gguf_writer *w, const char *name,
		       const float *v, uint32_t n)
{
	ck_assert_int_eq(
		np_gguf_writer_tensor(w, name, NP_GGML_F32, 1, n, 0, v), 0);
}

static struct np_gguf *hand_gguf(const struct hand *h, void **buf)
{
	const char *a = h->arch;
	struct np_gguf_writer *w;
	struct np_gguf *g;
	float e[NV * DIM], ones[DIM], twos[DIM], ff[HD / 2];
	size_t len;

	ck_assert_int_eq(np_gguf_writer_create(&w), 0);
	ck_assert_int_eq(np_gguf_writer_kv_str(w, "general.architecture", a),
			 0);
	key_u32(w, a, "block_count", 1);
	key_u32(w, a, "embedding_length", DIM);
	key_u32(w, a, "feed_forward_length", DIM);
	key_u32(w, a, "attention.head_count", DIM / HD);
	key_u32(w, a, "attention.head_count_kv", 1);
	key_f32(w, a, "rope.freq_base", (float)BASE);
	key_f32(w, a, "attention.layer_norm_rms_epsilon", 1e-6f);
	if (h->granite) {
		key_f32(w, a, "embedding_scale", 2.0f);
		key_f32(w, a, "residual_scale", 0.5f);
		key_f32(w, a, "attention.scale", 0.1f);
		if (!h->no_logit_scale)
			key_f32(w, a, "logit_scale", 4.0f);
	}
	if (h->scaling) {
		char key[96];

		snprintf(key, sizeof(key), "%s.rope.scaling.type", a);
		ck_assert_int_eq(np_gguf_writer_kv_str(w, key, h->scaling), 0);
	}
	if (h->factor != 0)
		key_f32(w, a, "rope.scaling.factor", h->factor);
	if (h->key_length)
		key_u32(w, a, "attention.key_length", h->key_length);
	for (int t = 0; t < NV; t++)
		for (int i = 0; i < DIM; i++)
			e[t * DIM + i] = (float)emb(t, i);
	for (int i = 0; i < DIM; i++) {
		ones[i] = 1.0f;
		twos[i] = 2.0f; /* attention RMSNorm gamma */
	}
	ck_assert_int_eq(np_gguf_writer_tensor(w, "token_embd.weight",
					       NP_GGML_F32, NV, DIM, 1, e),
			 0);
	tensor_vec(w, "output_norm.weight", ones, DIM);
	tensor_vec(w, "blk.0.attn_norm.weight", twos, DIM);
	tensor_diag(w, "blk.0.attn_q.weight", DIM, DIM, 0, 1.0f);
	tensor_diag(w, "blk.0.attn_k.weight", HD, DIM, 0, 1.0f);
	tensor_diag(w, "blk.0.attn_v.weight", HD, DIM, HD, 1.0f);
	tensor_diag(w, "blk.0.attn_output.weight", DIM, DIM, 0, 0.5f);
	tensor_vec(w, "blk.0.ffn_norm.weight", ones, DIM);
	tensor_diag(w, "blk.0.ffn_gate.weight", DIM, DIM, 0, 1.0f);
	tensor_diag(w, "blk.0.ffn_up.weight", DIM, DIM, 0, 1.0f);
	tensor_diag(w, "blk.0.ffn_down.weight", DIM, DIM, 0, 1.0f);
	if (h->bias && !h->no_bias) {
		static const char *const n[3] = {"blk.0.attn_q.bias",
						 "blk.0.attn_k.bias",
						 "blk.0.attn_v.bias"};

		for (int k = 0; k < 3; k++) {
			float b[DIM];
			uint32_t rows = k ? HD : DIM;

			for (uint32_t i = 0; i < rows; i++)
				b[i] = (float)bias_of(k, (int)i);
			tensor_vec(w, n[k], b, rows);
		}
	}
	if (h->factors) {
		memcpy(ff, ff_hand, sizeof(ff));
		if (h->zero_factor)
			ff[3] = 0;
		tensor_vec(w, "rope_freqs.weight", ff, HD / 2);
	}
	if (h->extra_tensor)
		tensor_vec(w, "blk.0.attn_output.bias", ones, DIM);
	ck_assert_int_eq(np_gguf_writer_buf(w, buf, &len), 0);
	np_gguf_writer_destroy(w);
	ck_assert_int_eq(np_gguf_open_mem(*buf, len, &tst_log, &g), 0);
	return g;
}

/* What the float reference must observe at one position, derived from
 * the definitions with the hand model's weights */
struct want {
	double x[DIM], n1[DIM], q[DIM], k[HD], v[HD], qr[DIM], kr[HD];
	double att[DIM], xmid[DIM], n2[DIM], a[DIM], xout[DIM], nout[DIM];
	double logit[NV];
};

static void unit_rms(const double *x, double *out)
{
	double ss = 0;

	for (int i = 0; i < DIM; i++)
		ss += x[i] * x[i];
	for (int i = 0; i < DIM; i++)
		out[i] = x[i] / sqrt(ss / DIM + 1e-6);
}

/* rotate one head by pos * theta_i: pairs (2i, 2i+1), NeoX (i, i + 8) */
static void rotate(const struct hand *h, int neox, int pos, const double *in,
		   double *out)
{
	double factor =
		h->factor != 0 && !(h->scaling && !strcmp(h->scaling, "none")) ?
			h->factor :
			1.0;

	for (int i = 0; i < HD / 2; i++) {
		double th = pos * pow(BASE, -2.0 * i / HD) /
			    (h->factors ? ff_hand[i] : 1.0) / factor;
		int i0 = neox ? i : 2 * i, i1 = neox ? i + HD / 2 : i0 + 1;

		out[i0] = in[i0] * cos(th) - in[i1] * sin(th);
		out[i1] = in[i0] * sin(th) + in[i1] * cos(th);
	}
}

static void derive(const struct hand *h, int neox, const int *tok, int n,
		   struct want *w)
{
	double es = h->granite ? 2 : 1, rs = h->granite ? 0.5 : 1;
	double kq = h->granite ? (double)0.1f : 1 / sqrt(HD);
	double ls = h->granite ? 4 : 1;

	for (int p = 0; p < n; p++) {
		struct want *c = &w[p];

		for (int i = 0; i < DIM; i++)
			c->x[i] = es * emb(tok[p], i);
		unit_rms(c->x, c->n1);
		/* Wq = I, Wk and Wv the two halves, gamma 2 */
		for (int i = 0; i < DIM; i++)
			c->q[i] = 2 * c->n1[i] + (h->bias ? bias_of(0, i) : 0);
		for (int i = 0; i < HD; i++) {
			c->k[i] = 2 * c->n1[i] + (h->bias ? bias_of(1, i) : 0);
			c->v[i] = 2 * c->n1[HD + i] +
				  (h->bias ? bias_of(2, i) : 0);
		}
		for (int hh = 0; hh < DIM / HD; hh++)
			rotate(h, neox, p, c->q + hh * HD, c->qr + hh * HD);
		rotate(h, neox, p, c->k, c->kr);
		/* both query heads read the one KV head */
		for (int hh = 0; hh < DIM / HD; hh++) {
			double s[8], max = -1e300, sum = 0;

			for (int t = 0; t <= p; t++) {
				s[t] = 0;
				for (int i = 0; i < HD; i++)
					s[t] += c->qr[hh * HD + i] * w[t].kr[i];
				s[t] *= kq;
				max = s[t] > max ? s[t] : max;
			}
			for (int t = 0; t <= p; t++)
				sum += s[t] = exp(s[t] - max);
			for (int i = 0; i < HD; i++) {
				c->att[hh * HD + i] = 0;
				for (int t = 0; t <= p; t++)
					c->att[hh * HD + i] +=
						s[t] / sum * w[t].v[i];
			}
		}
		/* Wo = I / 2; gate = up = down = I */
		for (int i = 0; i < DIM; i++)
			c->xmid[i] = c->x[i] + rs * 0.5 * c->att[i];
		unit_rms(c->xmid, c->n2);
		for (int i = 0; i < DIM; i++) {
			c->a[i] = c->n2[i] / (1 + exp(-c->n2[i])) * c->n2[i];
			c->xout[i] = c->xmid[i] + rs * c->a[i];
		}
		unit_rms(c->xout, c->nout);
		/* tied output: the embedding rows */
		for (int t = 0; t < NV; t++) {
			c->logit[t] = 0;
			for (int i = 0; i < DIM; i++)
				c->logit[t] += c->nout[i] * emb(t, i);
			c->logit[t] /= ls;
		}
	}
}

static void expect(const struct npim_stat *st, int act, const double *want,
		   uint32_t n, const char *what, int pos)
{
	const struct npim_stat *s = &st[act];

	ck_assert_msg(s->n == n, "%s at %d: %u values", what, pos, s->n);
	for (uint32_t i = 0; i < n; i++)
		ck_assert_msg(fabs(s->s[i] - want[i]) <=
				      1e-5 * (1 + fabs(want[i])),
			      "%s[%u] at %d is %.9g, want %.9g", what, i, pos,
			      (double)s->s[i], want[i]);
}

/* Two tokens through the float reference, every stage checked */
static void check_hand(const struct hand *h, int neox)
{
	static const int tok[2] = {1, 3};
	struct want w[2];
	struct np_ref_float *r;
	struct np_model *m;
	struct np_gguf *g;
	float logits[NV];
	void *buf;

	g = hand_gguf(h, &buf);
	ck_assert_int_eq(np_model_from_gguf(g, &tst_log, &m), 0);
	ck_assert_int_eq(np_ref_float_create(m, 2, 1, &r), 0);
	derive(h, neox, tok, 2, w);
	for (int p = 0; p < 2; p++) {
		struct npim_stat *st = calloc(2 * NPIM_A_COUNT, sizeof(*st));
		const struct npim_stat *fin = st + NPIM_A_COUNT;
		const struct want *c = &w[p];

		ck_assert_ptr_nonnull(st);
		ck_assert_int_eq(npim_ref_float_forward(r, 0, (uint32_t)p,
							tok[p], logits, st),
				 0);
		expect(st, NPIM_A_X, c->x, DIM, "embedding", p);
		expect(st, NPIM_A_N1, c->n1, DIM, "attention norm", p);
		expect(st, NPIM_A_Q16, c->q, DIM, "q", p);
		expect(st, NPIM_A_K16, c->k, HD, "k", p);
		expect(st, NPIM_A_V4, c->v, HD, "v", p);
		expect(st, NPIM_A_Q4, c->qr, DIM, "rotated q", p);
		expect(st, NPIM_A_K4, c->kr, HD, "rotated k", p);
		expect(st, NPIM_A_ATT, c->att, DIM, "attention", p);
		expect(st, NPIM_A_XMID, c->xmid, DIM, "residual", p);
		expect(st, NPIM_A_N2, c->n2, DIM, "FFN norm", p);
		expect(st, NPIM_A_G8, c->n2, DIM, "gate", p);
		expect(st, NPIM_A_U8, c->n2, DIM, "up", p);
		expect(st, NPIM_A_A8, c->a, DIM, "SwiGLU", p);
		expect(fin, NPIM_A_XFIN, c->xout, DIM, "layer output", p);
		expect(fin, NPIM_A_NOUT, c->nout, DIM, "output norm", p);
		expect(fin, NPIM_A_LOGIT, c->logit, NV, "logits", p);
		for (int t = 0; t < NV; t++)
			ck_assert_double_eq_tol(logits[t], c->logit[t], 1e-5);
		free(st);
	}
	np_ref_float_destroy(r);
	np_model_destroy(m);
	np_gguf_close(g);
	free(buf);
}

/* Llama 2, and Mistral: its GGUFs are this architecture (GQA here) */
START_TEST(test_hand_llama)
{
	check_hand(&(struct hand){.arch = "llama"}, 0);
}
END_TEST

/* Llama 3.1: frequency factors, and linear scaling on top as ggml
 * applies both; type "none" drops the factor, not the frequencies */
START_TEST(test_hand_llama3)
{
	check_hand(&(struct hand){.arch = "llama", .factors = 1, .factor = 2},
		   0);
	check_hand(&(struct hand){.arch = "llama",
				  .factors = 1,
				  .scaling = "linear",
				  .factor = 4},
		   0);
	check_hand(&(struct hand){.arch = "llama",
				  .factors = 1,
				  .scaling = "none",
				  .factor = 4},
		   0);
}
END_TEST

START_TEST(test_hand_granite)
{
	check_hand(&(struct hand){.arch = "granite", .granite = 1}, 0);
}
END_TEST

START_TEST(test_hand_qwen2)
{
	check_hand(&(struct hand){.arch = "qwen2", .bias = 1}, 1);
}
END_TEST

/* What np cannot compute as llama.cpp does is refused, by name */
START_TEST(test_refused)
{
	static const struct {
		struct hand h;
		int err;
		const char *msg;
	} cases[] = {
		{{.arch = "granite", .granite = 1, .no_logit_scale = 1},
		 -EINVAL,
		 "model: granite.logit_scale is missing or 0; a granite model "
		 "needs its logit scale"},
		{{.arch = "llama", .scaling = "yarn"},
		 -ENOTSUP,
		 "model: llama.rope.scaling.type is 'yarn'; np applies RoPE "
		 "scaling 'none' and 'linear' only, not YaRN or LongRoPE"},
		{{.arch = "qwen2", .bias = 1, .no_bias = 1},
		 -EINVAL,
		 "model: tensor 'blk.0.attn_q.bias' is missing; a qwen2 model "
		 "has Q/K/V biases"},
		{{.arch = "llama", .factors = 1, .zero_factor = 1},
		 -EINVAL,
		 "model: rope_freqs.weight[3] is 0; RoPE frequency factors "
		 "must be positive"},
		{{.arch = "granite", .granite = 1, .extra_tensor = 1},
		 -ENOTSUP,
		 "model: tensor 'blk.0.attn_output.bias' is not part of a "
		 "granite model as np computes it (np reads RMSNorm, Q/K/V/O "
		 "with Q/K/V biases, a SwiGLU FFN and rope_freqs.weight); np "
		 "will not run the model without it"},
		{{.arch = "llama", .key_length = 8},
		 -ENOTSUP,
		 "model: llama.attention.key_length is 8 but "
		 "embedding_length / head_count is 16; np computes heads of "
		 "embedding_length / head_count only"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct np_model *m = (struct np_model *)1;
		struct np_gguf *g;
		void *buf;

		g = hand_gguf(&cases[i].h, &buf);
		tst_reset();
		ck_assert_int_eq(np_model_from_gguf(g, &tst_log, &m),
				 cases[i].err);
		ck_assert_ptr_null(m);
		ck_assert_str_eq(tst_last, cases[i].msg);
		np_gguf_close(g);
		free(buf);
	}
	/* a llama file with biases is one llama.cpp runs: so does np; a
	 * key_length of dim / heads is the default spelt out */
	check_hand(&(struct hand){.arch = "llama", .bias = 1, .key_length = HD},
		   0);
}
END_TEST

static const char *const families[] = {"llama", "llama3", "mistral", "granite",
				       "qwen2"};

/* GQA 4:2, the family's RoPE base */
static const struct np_model_shape fam_shape = {2,   64, 4,    2,    128,
						512, 64, 0.0f, 1e-5f};

/* What the generated file of family i carries */
static void check_file(int i, const struct np_gguf *g)
{
	const char *arch;
	size_t len;
	float v;

	ck_assert_int_eq(
		np_gguf_get_str(g, "general.architecture", &arch, &len), 0);
	ck_assert_int_eq(np_gguf_get_f32(g,
					 i == 3 ? "granite.rope.freq_base" :
					 i == 4 ? "qwen2.rope.freq_base" :
						  "llama.rope.freq_base",
					 &v),
			 0);
	ck_assert_float_eq(v, i == 1	       ? 500000.0f :
			      i == 0 || i == 3 ? 10000.0f :
						 1000000.0f);
	ck_assert_int_eq(np_gguf_find_tensor(g, "rope_freqs.weight") != NULL,
			 i == 1);
	ck_assert_int_eq(np_gguf_find_tensor(g, "blk.1.attn_v.bias") != NULL,
			 i == 4);
	ck_assert_int_eq(np_gguf_get_f32(g, "granite.logit_scale", &v),
			 i == 3 ? 0 : -ENOENT);
	if (i == 3) {
		ck_assert_float_eq(v, 8.0f);
		ck_assert_int_eq(
			np_gguf_get_f32(g, "granite.residual_scale", &v), 0);
		ck_assert_float_eq(v, 0.22f);
	}
	ck_assert_int_eq(len, strlen(i < 3 ? "llama" : families[i]));
	ck_assert_int_eq(memcmp(arch, i < 3 ? "llama" : families[i], len), 0);
}

/* Llama 3.1's RoPE frequency factor of pair i (llama3 family) */
static double llama31_factor(double base, int i, int hd)
{
	double wavelen = 2 * M_PI / pow(base, -2.0 * i / hd);

	if (wavelen < 8192.0 / 4)
		return 1;
	if (wavelen > 8192.0)
		return 8;
	return 1 / ((1 - (8192.0 / wavelen - 1) / 3) / 8 +
		    (8192.0 / wavelen - 1) / 3);
}

/* The folds of card 0's program that a few positions of a random model
 * barely show: the RoPE table (frequency factors) and the softmax
 * multiplier (Granite's attention scale) */
static void check_program(int fam, const struct np_compiled *c,
			  const struct np_ref_int *ri,
			  const struct np_quant_calib *cal)
{
	const uint8_t *sram = np_ref_int_sram(ri, 0);
	const struct np_card_plan *p = np_compiled_card(c, 0);
	double base = fam == 1 ? 500000 : fam == 0 || fam == 3 ? 1e4 : 1e6;
	double kq = fam == 3 ? 1.0 / 64 : 1.0 / 4;
	const float *S = cal->l[0].s;
	struct npk_card h;
	struct npk_layer L;
	uint32_t freq[8];
	double want;

	memcpy(&h, sram + p->prog, sizeof(h));
	ck_assert_uint_eq(h.head_dim, 16);
	memcpy(freq, sram + p->prog + h.rope_off, sizeof(freq));
	for (int i = 0; i < 8; i++) {
		want = pow(base, -2.0 * i / 16) /
		       (fam == 1 ? llama31_factor(base, i, 16) : 1) /
		       (2 * M_PI) * 4294967296.0;
		ck_assert_double_eq_tol(freq[i], want, 1.0 + want * 1e-6);
	}
	memcpy(&L, sram + p->prog + h.layers_off, sizeof(L));
	/* q at the layer's activation width, k at its KV width */
	want = (double)(L.act_bits == 8 ? cal->l[0].s8 : S)[NPIM_A_Q4] *
	       (L.kv_bits == 8 ? cal->l[0].s8 : S)[NPIM_A_K4] * kq * M_LOG2E *
	       256;
	ck_assert_double_eq_tol(ldexp(L.softmax.m, -L.softmax.shift), want,
				want * 1e-6);
}

/*
 * np_model_synthetic_arch -> GGUF (F32) -> np_model_from_gguf: the float
 * reference of the file is its generator's bit for bit; then the
 * compiled integer model against the float one, as check_ref does for
 * llama.
 */
START_TEST(test_generated)
{
	int32_t ids[40];
	struct np_model *syn, *m;
	struct np_ref_float *a, *b;
	struct np_gguf *g;
	struct np_quant_calib *cal;
	struct np_compiled *c;
	struct np_ref_int *ri;
	struct np_compile_opts o = {.batch = 1, .max_seq = 40};
	char path[64];
	uint32_t V = fam_shape.vocab;
	float *la = malloc(V * 4), *lb = malloc(V * 4);
	int32_t *il = malloc(V * 4);
	double cs = 0, s, ni = 0, nf = 0;
	int agree = 0;
	size_t len;
	char *text = tst_sample(&len);
	int fd;

	snprintf(path, sizeof(path), "/tmp/np-family-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(np_model_synthetic_arch(families[_i], &fam_shape, 7,
						 &tst_log, &syn),
			 0);
	ck_assert_int_eq(np_model_write_gguf(syn, NP_GGML_F32, NP_TOK_BPE, text,
					     len, path),
			 0);
	ck_assert_int_eq(np_gguf_open(path, &tst_log, &g), 0);
	unlink(path);
	check_file(_i, g);
	ck_assert_int_eq(np_model_from_gguf(g, &tst_log, &m), 0);
	ck_assert_int_eq(np_ref_float_create(m, 40, 1, &a), 0);
	ck_assert_int_eq(np_ref_float_create(syn, 40, 1, &b), 0);
	for (int i = 0; i < 40; i++)
		ids[i] = (int32_t)((i * 53 + 11) % V);
	for (uint32_t i = 0; i < 8; i++) {
		ck_assert_int_eq(np_ref_float_step(a, 0, i, ids[i], la), 0);
		ck_assert_int_eq(np_ref_float_step(b, 0, i, ids[i], lb), 0);
		ck_assert_int_eq(memcmp(la, lb, V * 4), 0);
	}
	np_ref_float_destroy(a);
	np_ref_float_destroy(b);
	/* integer against float, teacher forced */
	ck_assert_int_eq(np_quant_calibrate(m, ids, 40, &cal), 0);
	ck_assert_int_eq(np_compile(m, cal, &o, &tst_log, &c), 0);
	ck_assert_int_eq(np_ref_int_create(c, &ri), 0);
	ck_assert_int_eq(np_ref_float_create(m, 40, 1, &a), 0);
	check_program(_i, c, ri, cal);
	s = np_compiled_logit_scale(c);
	for (uint32_t i = 0; i < 40; i++) {
		double dot = 0, a2 = 0, b2 = 0;
		uint32_t ai = 0, af = 0;

		ck_assert_int_eq(np_ref_int_step(ri, 0, i, ids[i], il), 0);
		ck_assert_int_eq(np_ref_float_step(a, 0, i, ids[i], la), 0);
		for (uint32_t v = 0; v < V; v++) {
			dot += il[v] * s * la[v];
			a2 += il[v] * s * il[v] * s;
			b2 += (double)la[v] * la[v];
			ai = il[v] > il[ai] ? v : ai;
			af = la[v] > la[af] ? v : af;
		}
		agree += ai == af;
		cs += dot / sqrt(a2 * b2 + 1e-30);
		ni += a2;
		nf += b2;
	}
	/* a wrong fold (residual, embedding, biases, row order) drops these;
	 * a wrong logit scale moves the norms apart */
	ck_assert_msg(cs / 40 >= 0.96, "%s: cosine %.4f", families[_i],
		      cs / 40);
	ck_assert_msg(agree >= 22, "%s: top-1 %d of 40", families[_i], agree);
	ck_assert_msg(sqrt(ni / nf) > 0.85 && sqrt(ni / nf) < 1.15,
		      "%s: integer logits %.3f times the float ones",
		      families[_i], sqrt(ni / nf));
	np_ref_float_destroy(a);
	np_ref_int_destroy(ri);
	np_compiled_destroy(c);
	np_quant_calib_destroy(cal);
	np_model_destroy(m);
	np_model_destroy(syn);
	np_gguf_close(g);
	free(text);
	free(la);
	free(lb);
	free(il);
}
END_TEST

START_TEST(test_unknown_family)
{
	struct np_model *m = (struct np_model *)1;

	tst_reset();
	ck_assert_int_eq(
		np_model_synthetic_arch("falcon", &fam_shape, 1, &tst_log, &m),
		-EINVAL);
	ck_assert_ptr_null(m);
	ck_assert_str_eq(tst_last, "model: no model family 'falcon'; np "
				   "generates 'llama', 'llama3', 'mistral', "
				   "'granite', 'qwen2' models");
}
END_TEST

Suite *np_suite_family(void)
{
	Suite *s = suite_create("family");
	TCase *tc = tcase_create("family");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_hand_llama);
	tcase_add_test(tc, test_hand_llama3);
	tcase_add_test(tc, test_hand_granite);
	tcase_add_test(tc, test_hand_qwen2);
	tcase_add_test(tc, test_refused);
	tcase_add_loop_test(tc, test_generated, 0, 5);
	tcase_add_test(tc, test_unknown_family);
	suite_add_tcase(s, tc);
	return s;
}
