// SPDX-License-Identifier: MIT
/*
 * Quantisation and compilation to card images: layer-to-card mapping,
 * the SRAM layout of every card (docs/model-format.md) and the integer
 * parameters of every layer (docs/numerics.md), at the precision of each
 * layer (np_precision: the model's, or a per-layer override).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "np_abi.h"
#include "npim.h"
#include "npk.h"

#define ROW_ALIGN 16u
#define MiB (1024.0 * 1024.0)
#define KiB 1024.0

static struct npk_rq rq_of(double f, int *err)
{
	struct npk_rq rq = {0, 0};

	if (np_quant_multiplier(f, &rq.m, &rq.shift))
		*err = -ERANGE;
	return rq;
}

/* ---------------------------------------------------------------- */
/* Layout                                                            */

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

struct np_compiled {
	const struct np_model *m;
	const struct np_quant_calib *calib;
	struct np_model_shape s;
	struct np_compile_opts o;
	uint32_t hd, n_cards;
	uint8_t *prec; /* enum np_precision of each layer */
	int mixed; /* layers at another precision than o.precision */
	char *layer_spec; /* o.layer_precision's copy */
	struct np_card_plan card[NPIM_MAX_CARDS];
};

/* ---------------------------------------------------------------- */
/* Precision modes (docs/numerics.md)                                */

struct prec_bits {
	uint8_t w, act, kv; /* weights, activations, KV cache */
};

static struct prec_bits prec_bits(enum np_precision p)
{
	switch (p) {
	case NP_PREC_A8C8W4:
		return (struct prec_bits){4, 8, 8};
	case NP_PREC_W8A8:
		return (struct prec_bits){8, 8, 8};
	case NP_PREC_W2A8:
		return (struct prec_bits){2, 8, 8};
	default:
		return (struct prec_bits){4, 4, 4};
	}
}

/* K then V of max_seq rows of hd elements of kv bits, one unit */
static uint64_t kv_unit_bytes(uint32_t max_seq, uint32_t hd, uint32_t kv)
{
	return align_up((uint64_t)max_seq * hd * kv / 4, NPK_ALIGN);
}

/* What the layout of a card needs to know of the model */
struct lay {
	const struct np_model_shape *s;
	uint32_t hd, bias;
	const uint8_t *prec; /* per model layer */
};

static void tensor_place(struct npk_tensor *t, uint32_t rows, uint32_t cols,
			 uint32_t bits, int bias, uint64_t *off)
{
	t->rows = rows;
	t->cols = cols;
	t->bits = bits;
	t->bias_off = 0;
	t->rows_per_core = (rows + NP_NUM_CORES - 1) / NP_NUM_CORES;
	t->row_bytes =
		(uint32_t)align_up(((uint64_t)cols * bits + 7) / 8, ROW_ALIGN);
	t->off = (uint32_t)*off;
	*off = align_up(*off + (uint64_t)t->rows_per_core * t->row_bytes,
			NPK_ALIGN);
	t->rq_off = (uint32_t)*off;
	*off = align_up(*off + (uint64_t)t->rows_per_core * 8, NPK_ALIGN);
	if (bias) {
		t->bias_off = (uint32_t)*off;
		*off = align_up(*off + (uint64_t)t->rows_per_core * 4,
				NPK_ALIGN);
	}
}

static uint64_t prog_bytes_layers(uint32_t n_layers, uint32_t hd)
{
	return align_up(sizeof(struct npk_card) +
				(uint64_t)n_layers * sizeof(struct npk_layer) +
				(uint64_t)hd / 2 * 4,
			NPK_ALIGN);
}

/*
 * Layout of a card holding model layers first..first + n - 1: fills hdr
 * (offsets, kv) and L[] (tensors, widths) when given; returns the
 * per-core high-water mark (may exceed a core: the caller checks).
 * Weights and KV bytes of the whole card into *weights, *kv if given.
 * The KV unit is the widest of the card's layers.
 */
static uint64_t layout_layers(const struct lay *y, uint32_t first, uint32_t n,
			      uint32_t batch, uint32_t max_seq,
			      struct npk_card *hdr, struct npk_layer *L,
			      uint64_t *weights, uint64_t *kv)
{
	const struct np_model_shape *s = y->s;
	uint32_t hd = y->hd, bias = y->bias; /* bias: bits NP_T_Q/K/V */
	uint32_t qd = s->n_heads * hd, kvd = s->n_kv_heads * hd, kvb = 4;
	uint64_t off = prog_bytes_layers(n, hd), units, unit;
	const uint32_t dims[NPK_N_TENSORS][2] = {
		{qd, s->dim},	  {kvd, s->dim},    {kvd, s->dim},
		{s->dim, qd},	  {s->ffn, s->dim}, {s->ffn, s->dim},
		{s->dim, s->ffn},
	};
	uint64_t wstart = off;

	for (uint32_t l = 0; l < n; l++) {
		struct npk_layer tmp;
		struct npk_layer *p = L ? &L[l] : &tmp;
		struct prec_bits b = prec_bits(y->prec[first + l]);

		for (int t = 0; t < NPK_N_TENSORS; t++)
			tensor_place(&p->t[t], dims[t][0], dims[t][1], b.w,
				     t <= NPK_V && (bias >> (t + NP_T_Q) & 1),
				     &off);
		p->kv_first_unit = l * batch * s->n_kv_heads;
		p->act_bits = b.act;
		p->kv_bits = b.kv;
		p->rsvd = 0;
		kvb = b.kv > kvb ? b.kv : kvb;
	}
	if (weights)
		*weights = (off - wstart) * NP_NUM_CORES;
	unit = kv_unit_bytes(max_seq, hd, kvb);
	units = (uint64_t)n * batch * s->n_kv_heads;
	if (kv)
		*kv = units * unit;
	if (hdr) {
		hdr->kv_off = (uint32_t)off;
		hdr->kv_unit = (uint32_t)unit;
	}
	return off + (units + NP_NUM_CORES - 1) / NP_NUM_CORES * unit;
}

static uint64_t layout_output(const struct np_model_shape *s, uint32_t rows,
			      struct npk_output *o)
{
	struct npk_output tmp;
	uint64_t off =
		align_up(sizeof(struct npk_card) + sizeof(*o), NPK_ALIGN);

	tensor_place(o ? &o->w : &tmp.w, rows, s->dim, 8, 0, &off);
	return off;
}

static int fits_core(uint64_t bytes)
{
	return bytes <= NP_CORE_SRAM_SIZE;
}

/* Most layers from `first` on that one card holds (0 if not one) */
static uint32_t layers_per_card(const struct lay *y, uint32_t first,
				uint32_t batch, uint32_t max_seq)
{
	uint32_t k = 0;

	while (first + k < y->s->n_layers &&
	       fits_core(layout_layers(y, first, k + 1, batch, max_seq, NULL,
				       NULL, NULL, NULL)))
		k++;
	return k;
}

/*
 * Layers per card for up to c_l layer cards, into n[] (c_l entries):
 * evenly spread over min(c_l, layers) cards when every card of that fits,
 * else each card filled in order with as many layers as fit (layers of
 * different precisions differ in size). Returns the cards used, 0 if the
 * layers do not fit c_l cards.
 */
static uint32_t map_layers(const struct lay *y, uint32_t c_l, uint32_t batch,
			   uint32_t max_seq, uint32_t *n)
{
	uint32_t L = y->s->n_layers, c = c_l < L ? c_l : L, first = 0, i;

	for (i = 0; i < c; i++) {
		n[i] = L / c + (i < L % c);
		if (!fits_core(layout_layers(y, first, n[i], batch, max_seq,
					     NULL, NULL, NULL, NULL)))
			break;
		first += n[i];
	}
	if (i == c)
		return c;
	for (i = 0, first = 0; first < L && i < c_l; i++) {
		n[i] = layers_per_card(y, first, batch, max_seq);
		if (!n[i])
			return 0;
		first += n[i];
	}
	return first == L ? i : 0;
}

static uint32_t output_cards_min(const struct np_model_shape *s)
{
	for (uint32_t k = 1; k <= s->vocab && k <= NPIM_MAX_CARDS; k++)
		if (fits_core(layout_output(s, (s->vocab + k - 1) / k, NULL)))
			return k;
	return 0;
}

/* Longest context (a multiple of 16, at most max_seq) whose KV cache
 * lets the layers fit c_l cards with `batch` sessions; 0 if none */
static uint32_t fit_max_seq(const struct lay *y, uint32_t c_l, uint32_t batch,
			    uint32_t max_seq, uint32_t *n)
{
	for (uint32_t q = max_seq / 16 * 16; q >= 16; q -= 16)
		if (map_layers(y, c_l, batch, q, n))
			return q;
	return 0;
}

/* Most sessions (at most batch) that fit with max_seq tokens; 0 if none */
static uint32_t fit_batch(const struct lay *y, uint32_t c_l, uint32_t batch,
			  uint32_t max_seq, uint32_t *n)
{
	for (uint32_t b = batch; b >= 1; b--)
		if (map_layers(y, c_l, b, max_seq, n))
			return b;
	return 0;
}

static void explain_no_fit(const struct lay *y, const struct np_compile_opts *o,
			   uint32_t k_out, uint32_t m_fit,
			   const struct np_log *log)
{
	const struct np_model_shape *s = y->s;
	uint32_t hd = y->hd;
	uint64_t w1, kv1,
		one = layout_layers(y, 0, 1, o->batch, o->max_seq, NULL, NULL,
				    &w1, &kv1);
	uint32_t c_l = o->n_cards > k_out ? o->n_cards - k_out : 0;
	uint32_t best_batch = 0, best_seq = 0, *n = calloc(c_l + 1, 4);
	char fit[256], need[96];
	int k = 0;

	/* largest session count, then longest context, that would fit */
	if (n && c_l) {
		best_batch = fit_batch(y, c_l, o->batch, o->max_seq, n);
		best_seq = fit_max_seq(y, c_l, o->batch, o->max_seq, n);
	}
	free(n);
	kv1 /= NP_NUM_CORES;
	k = snprintf(fit, sizeof(fit), "would fit: ");
	if (best_batch)
		k += snprintf(fit + k, sizeof(fit) - (size_t)k,
			      "%u sessions of %u tokens%s", best_batch,
			      o->max_seq, best_seq ? ", or " : "");
	if (best_seq)
		k += snprintf(fit + k, sizeof(fit) - (size_t)k,
			      "%u sessions of %u tokens", o->batch, best_seq);
	if (!best_batch && !best_seq)
		snprintf(fit + k, sizeof(fit) - (size_t)k,
			 "%llu layers at most (%u layer cards x %u per card)",
			 (unsigned long long)m_fit * c_l, c_l, m_fit);
	if (m_fit)
		snprintf(need, sizeof(need), "%u layers need %u cards",
			 s->n_layers,
			 (s->n_layers + m_fit - 1) / m_fit + k_out);
	else
		snprintf(need, sizeof(need), "a single layer exceeds a card");
	npim_log(log, LOG_ERR,
		 "compile: model does not fit %u cards at %s: budget per card "
		 "%u MiB = 256 cores x %u KiB; one layer needs %.1f KiB per "
		 "core (weights %.1f KiB, KV cache %.1f KiB for %u sessions x "
		 "%u tokens at INT%u, program %.1f KiB), so %u layer(s) fit a "
		 "card; the output layer (%u x %u INT8) needs %u card(s); %s; "
		 "%s",
		 o->n_cards, np_precision_name(o->precision),
		 NP_SRAM_SIZE >> 20, NP_CORE_SRAM_SIZE >> 10, one / KiB,
		 w1 / NP_NUM_CORES / KiB, kv1 / KiB, o->batch, o->max_seq,
		 prec_bits(y->prec[0]).kv, prog_bytes_layers(1, hd) / KiB,
		 m_fit, s->vocab, s->dim, k_out, need, fit);
}

static const char *const prec_names[NP_PREC_COUNT] = {
	[NP_PREC_W4A4] = "w4a4",
	[NP_PREC_A8C8W4] = "a8c8w4",
	[NP_PREC_W8A8] = "w8a8",
	[NP_PREC_W2A8] = "w2a8",
};

const char *np_precision_name(enum np_precision p)
{
	if (p == NP_PREC_DEFAULT)
		p = NP_DEFAULT_PRECISION;
	return (unsigned int)p < NP_PREC_COUNT ? prec_names[p] : NULL;
}

int np_precision_parse(const char *name, enum np_precision *out)
{
	char k[16];
	size_t n = 0;

	for (; name && *name; name++) {
		if (*name == '-' || *name == '_')
			continue;
		if (n + 1 >= sizeof(k))
			return -EINVAL;
		k[n++] = (char)tolower((unsigned char)*name);
	}
	k[n] = 0;
	for (unsigned int p = 1; p < NP_PREC_COUNT; p++)
		if (!strcmp(k, prec_names[p])) {
			*out = (enum np_precision)p;
			return 0;
		}
	return -EINVAL;
}

/*
 * The layers do not fit the cards with the KV cache asked for. A context
 * (max_seq) or session count (batch) the caller left to the default is
 * lowered until they do, context first, and the log says so with the
 * sizes; one the caller chose stays, and the compile fails (-E2BIG, with
 * explain_no_fit's message). *c: the layer cards then used, or 0.
 */
static void adjust_kv(const struct lay *y, const struct np_compile_opts *asked,
		      struct np_compile_opts *o, uint32_t c_l, uint32_t *cnt,
		      uint32_t *c, const struct np_log *log)
{
	uint64_t w1, kv1,
		one = layout_layers(y, 0, 1, o->batch, o->max_seq, NULL, NULL,
				    &w1, &kv1);
	uint32_t q = 0, b = 0;

	*c = 0;
	if (!asked || !asked->max_seq)
		q = fit_max_seq(y, c_l, o->batch, o->max_seq, cnt);
	else if (!asked->batch)
		b = fit_batch(y, c_l, o->batch, o->max_seq, cnt);
	if (!q && !b)
		return;
	npim_log(log, LOG_NOTICE,
		 "compile: at %s the model does not fit %u layer cards with "
		 "%u sessions x %u tokens: one layer needs %.1f KiB per core "
		 "(weights %.1f KiB, KV cache %.1f KiB at INT%u) of %u KiB; "
		 "compiled for %u sessions x %u tokens instead (set the "
		 "sessions and tokens to choose)",
		 np_precision_name(o->precision), c_l, o->batch, o->max_seq,
		 one / KiB, w1 / NP_NUM_CORES / KiB, kv1 / NP_NUM_CORES / KiB,
		 prec_bits(y->prec[0]).kv, NP_CORE_SRAM_SIZE >> 10,
		 b ? b : o->batch, q ? q : o->max_seq);
	if (q)
		o->max_seq = q;
	else
		o->batch = b;
	*c = map_layers(y, c_l, o->batch, o->max_seq, cnt);
}

/* "N" or "N-M" of n_layers: [*a, *b]; 0 or -EINVAL */
static int parse_range(const char *p, const char *end, uint32_t n_layers,
		       uint32_t *a, uint32_t *b)
{
	char *e;
	unsigned long x, y;

	if (p == end || !isdigit((unsigned char)*p))
		return -EINVAL;
	x = strtoul(p, &e, 10);
	y = x;
	if (e < end && *e == '-') {
		if (!isdigit((unsigned char)e[1]))
			return -EINVAL;
		y = strtoul(e + 1, &e, 10);
	}
	if (e != end || x > y || y >= n_layers)
		return -EINVAL;
	*a = (uint32_t)x;
	*b = (uint32_t)y;
	return 0;
}

int np_precision_layers(const char *spec, uint32_t n_layers,
			enum np_precision base, uint8_t *out, char *err,
			size_t errlen)
{
	const char *p = spec ? spec : "";

	if (err && errlen)
		err[0] = 0;
	if (base == NP_PREC_DEFAULT)
		base = NP_DEFAULT_PRECISION;
	if ((unsigned int)base >= NP_PREC_COUNT) {
		if (err)
			snprintf(err, errlen, "precision %u is not a mode",
				 (unsigned int)base);
		return -EINVAL;
	}
	for (uint32_t l = 0; l < n_layers; l++)
		out[l] = (uint8_t)base;
	while (*p) {
		const char *end = strchr(p, ','), *colon;
		char mode[16];
		enum np_precision q;
		uint32_t a, b;
		size_t ml;

		end = end ? end : p + strlen(p);
		colon = memchr(p, ':', (size_t)(end - p));
		ml = colon ? (size_t)(end - colon - 1) : 0;
		if (!colon || ml == 0 || ml >= sizeof(mode) ||
		    parse_range(p, colon, n_layers, &a, &b)) {
			if (err)
				snprintf(err, errlen,
					 "layer precision '%.*s': expected "
					 "FIRST[-LAST]:MODE with layers "
					 "0..%u, e.g. '0-3:w8a8'",
					 (int)(end - p), p,
					 n_layers ? n_layers - 1 : 0);
			return -EINVAL;
		}
		memcpy(mode, colon + 1, ml);
		mode[ml] = 0;
		if (np_precision_parse(mode, &q)) {
			if (err)
				snprintf(err, errlen,
					 "layer precision '%.*s': unknown "
					 "mode '%s'; modes are w4a4, a8c8w4, "
					 "w8a8, w2a8",
					 (int)(end - p), p, mode);
			return -EINVAL;
		}
		for (uint32_t l = a; l <= b; l++)
			out[l] = (uint8_t)q;
		p = *end ? end + 1 : end;
	}
	return 0;
}

int np_compile(const struct np_model *m, const struct np_quant_calib *calib,
	       const struct np_compile_opts *opts, const struct np_log *log,
	       struct np_compiled **out)
{
	struct np_compile_opts o = opts ? *opts : (struct np_compile_opts){0};
	const struct np_model_shape *s = np_model_get_shape(m);
	uint32_t hd = s->dim / s->n_heads, m_fit, k_out, c_l, c, card = 0;
	uint32_t bias = m->x.bias_mask, *cnt = NULL;
	uint8_t *prec = NULL;
	char perr[160];
	bool pass;
	struct np_compiled *cp = NULL;
	struct lay y = {.s = s, .hd = hd, .bias = bias};
	int ret;

	*out = NULL;
	o.n_cards = o.n_cards ? o.n_cards : NP_DEFAULT_CARDS;
	o.batch = o.batch ? o.batch : NP_DEFAULT_SESSIONS;
	o.max_seq = o.max_seq ? o.max_seq : NP_DEFAULT_PLAN_MAX_SEQ;
	o.precision = o.precision ? o.precision : NP_DEFAULT_PRECISION;
	if (memcmp(o.resv, (uint64_t[3]){0}, sizeof(o.resv))) {
		npim_log(log, LOG_ERR,
			 "compile: np_compile_opts: reserved space is not "
			 "zero; zero-initialize the struct");
		return -EINVAL;
	}
	if (o.n_cards > NPIM_MAX_CARDS || o.n_cards < 2 || o.batch > 4096 ||
	    o.max_seq > 65536 ||
	    (o.flags & ~(NP_COMPILE_PASS_THROUGH | NP_COMPILE_MSE_CLIP))) {
		npim_log(log, LOG_ERR,
			 "compile: %u cards, %u sessions, %u tokens, flags "
			 "0x%x: cards must be 2..%u, sessions 1..4096, tokens "
			 "1..65536, flags NP_COMPILE_*",
			 o.n_cards, o.batch, o.max_seq, o.flags,
			 NPIM_MAX_CARDS);
		return -EINVAL;
	}
	if (o.precision >= NP_PREC_COUNT) {
		npim_log(log, LOG_ERR,
			 "compile: precision %u is not an enum np_precision",
			 o.precision);
		return -EINVAL;
	}
	pass = o.flags & NP_COMPILE_PASS_THROUGH;
	if (calib && calib->n_layers != s->n_layers) {
		npim_log(log, LOG_ERR,
			 "compile: calibration is for %u layers, the model has "
			 "%u",
			 calib->n_layers, s->n_layers);
		return -EINVAL;
	}
	if (o.out_cards > s->vocab) {
		npim_log(log, LOG_ERR,
			 "compile: %u output cards for a %u-token vocabulary "
			 "would leave output cards without rows; ask for at "
			 "most %u, or 0 for as few as fit",
			 o.out_cards, s->vocab, s->vocab);
		return -EINVAL;
	}
	prec = calloc(s->n_layers + 1, 1);
	cnt = calloc(o.n_cards + 1, sizeof(*cnt));
	cp = calloc(1, sizeof(*cp));
	if (!prec || !cnt || !cp) {
		ret = -ENOMEM;
		goto fail;
	}
	ret = np_precision_layers(o.layer_precision, s->n_layers, o.precision,
				  prec, perr, sizeof(perr));
	if (ret) {
		npim_log(log, LOG_ERR, "compile: %s", perr);
		goto fail;
	}
	y.prec = prec;
	for (uint32_t l = 0; l < s->n_layers; l++)
		cp->mixed |= prec[l] != o.precision;
	k_out = output_cards_min(s);
	if (o.out_cards > k_out)
		k_out = o.out_cards;
	c_l = o.n_cards > k_out ? o.n_cards - k_out : 0;
	c = pass ? c_l : 0;
	if (k_out && c_l && !pass) {
		c = map_layers(&y, c_l, o.batch, o.max_seq, cnt);
		if (!c)
			adjust_kv(&y, opts, &o, c_l, cnt, &c, log);
	}
	if (!k_out || c_l == 0 || c == 0) {
		m_fit = layers_per_card(&y, 0, o.batch, o.max_seq);
		explain_no_fit(&y, &o, k_out, m_fit, log);
		ret = -E2BIG;
		goto fail;
	}
	cp->m = m;
	cp->calib = calib;
	cp->s = *s;
	cp->o = o;
	cp->hd = hd;
	cp->prec = prec;
	if (o.layer_precision) {
		cp->layer_spec = strdup(o.layer_precision);
		if (!cp->layer_spec) {
			ret = -ENOMEM;
			goto fail;
		}
		cp->o.layer_precision = cp->layer_spec;
	}
	/* pass-through: every layer card, none of the layers */
	for (uint32_t i = 0, first = 0; i < c; i++, card++) {
		struct np_card_plan *p = &cp->card[card];
		uint32_t n = pass ? 0 : cnt[i];
		uint64_t w, kv;

		p->kind = NP_CARD_LAYERS;
		p->first_layer = first;
		p->n_layers = n;
		p->prog = NP_CA_SRAM_BASE;
		p->core_bytes = layout_layers(&y, first, n, o.batch, o.max_seq,
					      NULL, NULL, &w, &kv);
		p->prog_bytes = prog_bytes_layers(n, hd);
		p->weight_bytes = w;
		p->kv_bytes = kv;
		first += n;
	}
	for (uint32_t i = 0, vb = 0; i < k_out; i++, card++) {
		struct np_card_plan *p = &cp->card[card];
		uint32_t rows = s->vocab / k_out + (i < s->vocab % k_out);

		p->kind = NP_CARD_OUTPUT;
		p->vocab_begin = vb;
		p->vocab_end = vb + rows;
		p->prog = NP_CA_SRAM_BASE;
		p->core_bytes = layout_output(s, rows, NULL);
		p->prog_bytes = align_up(sizeof(struct npk_card) +
						 sizeof(struct npk_output),
					 NPK_ALIGN);
		p->weight_bytes =
			(p->core_bytes - p->prog_bytes) * NP_NUM_CORES;
		vb += rows;
	}
	cp->n_cards = card;
	free(cnt);
	*out = cp;
	return 0;
fail:
	free(prec);
	if (cp)
		free(cp->layer_spec);
	free(cnt);
	free(cp);
	return ret;
}

void np_compiled_destroy(struct np_compiled *c)
{
	if (c) {
		free(c->prec);
		free(c->layer_spec);
	}
	free(c);
}

const struct np_compile_opts *np_compiled_opts(const struct np_compiled *c)
{
	return &c->o;
}

uint32_t np_compiled_n_cards(const struct np_compiled *c)
{
	return c->n_cards;
}

const struct np_card_plan *np_compiled_card(const struct np_compiled *c,
					    uint32_t card)
{
	return card < c->n_cards ? &c->card[card] : NULL;
}

void np_compiled_describe(const struct np_compiled *c, char *buf, size_t len)
{
	size_t o = 0;

	if (!len)
		return;
	buf[0] = 0;
	o += (size_t)snprintf(buf + o, len - o,
			      "%u layers, dim %u, %u/%u heads, ffn %u, vocab "
			      "%u; %u sessions x %u tokens; %u of %u cards\n",
			      c->s.n_layers, c->s.dim, c->s.n_heads,
			      c->s.n_kv_heads, c->s.ffn, c->s.vocab, c->o.batch,
			      c->o.max_seq, c->n_cards, c->o.n_cards);
	if (o < len)
		o += (size_t)snprintf(buf + o, len - o, "precision %s%s%s%s\n",
				      np_precision_name(c->o.precision),
				      c->mixed ? " (layers " : "",
				      c->mixed && c->o.layer_precision ?
					      c->o.layer_precision :
					      "",
				      c->mixed ? ")" : "");
	for (uint32_t i = 0; i < c->n_cards && o < len; i++) {
		const struct np_card_plan *p = &c->card[i];

		if (p->kind == NP_CARD_LAYERS && !p->n_layers)
			o += (size_t)snprintf(buf + o, len - o,
					      "card %2u: pass-through", i);
		else if (p->kind == NP_CARD_LAYERS)
			o += (size_t)snprintf(buf + o, len - o,
					      "card %2u: layers %u..%u", i,
					      p->first_layer,
					      p->first_layer + p->n_layers - 1);
		else
			o += (size_t)snprintf(buf + o, len - o,
					      "card %2u: output rows %u..%u", i,
					      p->vocab_begin, p->vocab_end - 1);
		if (o < len)
			o += (size_t)snprintf(
				buf + o, len - o,
				"  %.1f/%.0f KiB per core, weights %.1f MiB, "
				"KV %.1f MiB, %.1f%% of SRAM\n",
				p->core_bytes / KiB, NP_CORE_SRAM_SIZE / KiB,
				p->weight_bytes / MiB, p->kv_bytes / MiB,
				100.0 * (double)p->core_bytes /
					NP_CORE_SRAM_SIZE);
	}
}

/* ---------------------------------------------------------------- */
/* Card images                                                       */

static const struct npim_layer_scales *sc(const struct np_compiled *c,
					  uint32_t l)
{
	return &c->calib->l[l];
}

/*
 * The model row that becomes card row r of tensor `tensor`: with NeoX RoPE
 * the card's adjacent pairs (2i, 2i + 1) of a Q or K head are the model's
 * (i, i + hd/2), so the card's RoPE is NeoX's on permuted rows (scores
 * are dot products of Q and K permuted alike).
 */
static uint32_t src_row(const struct np_compiled *c, int tensor, uint32_t r)
{
	uint32_t hd = c->hd, j = r % hd;

	if (!c->m->x.neox || (tensor != NP_T_Q && tensor != NP_T_K))
		return r;
	return r - j + (j & 1) * (hd / 2) + j / 2;
}

/* Quantise rows of tensor t (gamma folded into columns) into the card,
 * with their biases when t has them */
static int emit_tensor(const struct np_compiled *c, uint8_t *sram,
		       const struct npk_tensor *t, int tensor, uint32_t layer,
		       uint32_t row_base, const float *gamma, double in_scale,
		       double out_scale)
{
	float *w = malloc((size_t)t->cols * sizeof(*w));
	float *b = t->bias_off ? malloc((size_t)t->rows * sizeof(*b)) : NULL;
	int8_t *q = malloc(t->cols);
	int ret = 0;

	if (!w || !q || (t->bias_off && !b)) {
		ret = -ENOMEM;
		goto out;
	}
	if (b)
		ret = npim_model_bias(c->m, tensor, layer, b);
	for (uint32_t r = 0; r < t->rows && !ret; r++) {
		uint64_t core = r / t->rows_per_core,
			 local = r % t->rows_per_core;
		uint8_t *base = sram + core * NP_CORE_SRAM_SIZE;
		uint32_t src = src_row(c, tensor, r);
		struct npk_rq rq;
		float sw;

		ret = np_model_row(c->m, tensor, layer, row_base + src, w);
		if (ret)
			break;
		if (gamma)
			for (uint32_t i = 0; i < t->cols; i++)
				w[i] *= gamma[i];
		sw = c->o.flags & NP_COMPILE_MSE_CLIP ?
			     npim_ptq_row_scale(w, t->cols, (int)t->bits) :
			     np_quant_row_scale(w, t->cols, (int)t->bits);
		np_quant_row(w, t->cols, sw, (int)t->bits, q);
		if (t->bits == 4)
			npk_pack4(q, t->cols,
				  base + t->off + local * t->row_bytes);
		else if (t->bits == 2)
			npk_pack2(q, t->cols,
				  base + t->off + local * t->row_bytes);
		else
			memcpy(base + t->off + local * t->row_bytes, q,
			       t->cols);
		rq = rq_of((double)sw * in_scale / out_scale, &ret);
		memcpy(base + t->rq_off + local * 8, &rq, sizeof(rq));
		if (b) {
			/* in accumulator units, sw * in_scale */
			double v = round(b[src] / ((double)sw * in_scale));
			int32_t bi = (int32_t)(v < INT32_MIN ? INT32_MIN :
					       v > INT32_MAX ? INT32_MAX :
							       v);

			memcpy(base + t->bias_off + local * 4, &bi, 4);
		}
	}
out:
	free(b);
	free(w);
	free(q);
	return ret;
}

/*
 * The activation scales of a layer at its widths: the INT4 calibration
 * of h1, h2, q and the attention output, or the INT8 one (act 8), and of
 * k and v likewise by the KV width; the other points have one width.
 */
static void layer_scales(const struct npim_layer_scales *ls, uint32_t act,
			 uint32_t kv, float *S)
{
	static const int act_pts[] = {NPIM_A_N1, NPIM_A_N2, NPIM_A_Q4,
				      NPIM_A_ATT};
	static const int kv_pts[] = {NPIM_A_K4, NPIM_A_V4};

	memcpy(S, ls->s, sizeof(ls->s));
	for (size_t i = 0; act == 8 && i < 4; i++)
		S[act_pts[i]] = ls->s8[act_pts[i]];
	for (size_t i = 0; kv == 8 && i < 2; i++)
		S[kv_pts[i]] = ls->s8[kv_pts[i]];
}

static uint64_t eps_q16(float eps, double s_x)
{
	double v = (double)eps / (s_x * s_x) * 65536.0;

	return v >= 9.2e18 ? (uint64_t)9.2e18 : (uint64_t)llround(v);
}

static int emit_layer(const struct np_compiled *c, uint8_t *sram,
		      struct npk_layer *L, uint32_t layer)
{
	const struct npim_layer_scales *ls = sc(c, layer);
	float S[NPIM_A_COUNT];
	double s_x = ls->s[NPIM_A_X], s_next = sc(c, layer + 1)->s[NPIM_A_X];
	float *g1 = malloc(c->s.dim * sizeof(float));
	float *g2 = malloc(c->s.dim * sizeof(float));
	int ret = 0;

	if (!g1 || !g2) {
		ret = -ENOMEM;
		goto out;
	}
	layer_scales(ls, L->act_bits, L->kv_bits, S);
	if ((ret = np_model_row(c->m, NP_T_ATTN_NORM, layer, 0, g1)) ||
	    (ret = np_model_row(c->m, NP_T_FFN_NORM, layer, 0, g2)))
		goto out;
	L->eps1 = eps_q16(c->s.norm_eps, s_x);
	L->eps2 = L->eps1;
	L->norm1 = rq_of(1.0 / (65536.0 * S[NPIM_A_N1]), &ret);
	L->norm2 = rq_of(1.0 / (65536.0 * S[NPIM_A_N2]), &ret);
	L->rope_q = rq_of(S[NPIM_A_Q16] / (16384.0 * S[NPIM_A_Q4]), &ret);
	L->rope_k = rq_of(S[NPIM_A_K16] / (16384.0 * S[NPIM_A_K4]), &ret);
	L->softmax =
		rq_of(c->m->x.kq_scale != 0.0f ?
			      (double)S[NPIM_A_Q4] * S[NPIM_A_K4] *
				      c->m->x.kq_scale * M_LOG2E * 256.0 :
			      (double)S[NPIM_A_Q4] * S[NPIM_A_K4] /
				      sqrt((double)c->hd) * M_LOG2E * 256.0,
		      &ret);
	L->attn = rq_of(S[NPIM_A_V4] / (65536.0 * S[NPIM_A_ATT]), &ret);
	L->silu_mul =
		rq_of((double)ls->sl8 * S[NPIM_A_U8] / S[NPIM_A_A8], &ret);
	L->res = rq_of(s_x / s_next, &ret);
	for (int i = 0; i < 256; i++) {
		double g = (double)(int8_t)i * S[NPIM_A_G8];
		double v = round(g / (1.0 + exp(-g)) / ls->sl8);

		L->silu_lut[i] = (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
	}
	if (ret) {
		ret = -ERANGE;
		goto out;
	}
	ret = emit_tensor(c, sram, &L->t[NPK_Q], NP_T_Q, layer, 0, g1,
			  S[NPIM_A_N1], S[NPIM_A_Q16]);
	ret = ret ? ret :
		    emit_tensor(c, sram, &L->t[NPK_K], NP_T_K, layer, 0, g1,
				S[NPIM_A_N1], S[NPIM_A_K16]);
	ret = ret ? ret :
		    emit_tensor(c, sram, &L->t[NPK_V], NP_T_V, layer, 0, g1,
				S[NPIM_A_N1], S[NPIM_A_V4]);
	/* Granite: the residual multiplier scales what the O and down rows
	 * add to x */
	ret = ret ? ret :
		    emit_tensor(c, sram, &L->t[NPK_O], NP_T_O, layer, 0, NULL,
				S[NPIM_A_ATT], s_x / c->m->x.res_scale);
	ret = ret ? ret :
		    emit_tensor(c, sram, &L->t[NPK_GATE], NP_T_GATE, layer, 0,
				g2, S[NPIM_A_N2], S[NPIM_A_G8]);
	ret = ret ? ret :
		    emit_tensor(c, sram, &L->t[NPK_UP], NP_T_UP, layer, 0, g2,
				S[NPIM_A_N2], S[NPIM_A_U8]);
	ret = ret ? ret :
		    emit_tensor(c, sram, &L->t[NPK_DOWN], NP_T_DOWN, layer, 0,
				NULL, S[NPIM_A_A8], s_next / c->m->x.res_scale);
out:
	free(g1);
	free(g2);
	return ret;
}

static void card_header(const struct np_compiled *c,
			const struct np_card_plan *p, struct npk_card *h)
{
	memset(h, 0, sizeof(*h));
	h->magic = NPK_MAGIC;
	h->version = NPK_VERSION;
	h->hdr_size = sizeof(*h);
	h->kind = p->kind == NP_CARD_LAYERS ? NPK_KIND_LAYERS : NPK_KIND_OUTPUT;
	h->block_size = (uint32_t)p->prog_bytes;
	h->first_layer = p->first_layer;
	h->n_layers = p->n_layers;
	h->dim = c->s.dim;
	h->n_heads = c->s.n_heads;
	h->n_kv_heads = c->s.n_kv_heads;
	h->head_dim = c->hd;
	h->ffn = c->s.ffn;
	h->vocab_begin = p->vocab_begin;
	h->vocab_end = p->vocab_end;
	h->max_seq = c->o.max_seq;
	h->batch = c->o.batch;
	h->core_bytes = (uint32_t)p->core_bytes;
}

int np_compile_card_image(const struct np_compiled *c, uint32_t card,
			  uint8_t *sram)
{
	const struct np_card_plan *p = np_compiled_card(c, card);
	uint8_t *prog;
	struct npk_card h;
	int ret = 0;

	if (!p || !c->calib)
		return -EINVAL;
	prog = sram + p->prog;
	card_header(c, p, &h);
	if (p->kind == NP_CARD_OUTPUT) {
		const float *S = sc(c, c->s.n_layers)->s;
		struct npk_output o = {0};
		float *g = malloc(c->s.dim * sizeof(float));

		if (!g)
			return -ENOMEM;
		h.output_off = sizeof(h);
		layout_output(&c->s, p->vocab_end - p->vocab_begin, &o);
		/* pass-through: its input is the embedding, at layer 0's
		 * scale */
		o.eps = eps_q16(c->s.norm_eps,
				c->o.flags & NP_COMPILE_PASS_THROUGH ?
					sc(c, 0)->s[NPIM_A_X] :
					S[NPIM_A_XFIN]);
		o.norm = rq_of(1.0 / (65536.0 * S[NPIM_A_NOUT]), &ret);
		ret = ret ? -ERANGE :
			    np_model_row(c->m, NP_T_OUT_NORM, 0, 0, g);
		if (!ret)
			ret = emit_tensor(c, sram, &o.w, NP_T_OUTPUT, 0,
					  p->vocab_begin, g, S[NPIM_A_NOUT],
					  S[NPIM_A_LOGIT] *
						  (double)c->m->x.logit_scale);
		free(g);
		memcpy(prog + sizeof(h), &o, sizeof(o));
		memcpy(prog, &h, sizeof(h));
		return ret;
	}
	{
		/* one at least: a pass-through card has none */
		struct npk_layer *L = calloc(p->n_layers + 1, sizeof(*L));
		uint32_t *freq = calloc(c->hd / 2, sizeof(*freq));
		float *ff = calloc(c->hd / 2, sizeof(*ff));

		ret = L && freq && ff ? npim_model_rope_factors(c->m, ff) :
					-ENOMEM;
		if (ret) {
			free(L);
			free(freq);
			free(ff);
			return ret;
		}
		const struct lay y = {.s = &c->s,
				      .hd = c->hd,
				      .bias = c->m->x.bias_mask,
				      .prec = c->prec};

		layout_layers(&y, p->first_layer, p->n_layers, c->o.batch,
			      c->o.max_seq, &h, L, NULL, NULL);
		h.layers_off = sizeof(h);
		h.rope_off = (uint32_t)(sizeof(h) + p->n_layers * sizeof(*L));
		for (uint32_t i = 0; i < c->hd / 2; i++) {
			/* turns per position, modulo one turn */
			double f = pow(c->s.rope_base, -2.0 * i / c->hd) /
				   ff[i] / c->m->x.rope_factor / (2 * M_PI) *
				   4294967296.0;

			freq[i] = (uint32_t)llround(fmod(f, 4294967296.0));
		}
		for (uint32_t l = 0; l < p->n_layers && !ret; l++)
			ret = emit_layer(c, sram, &L[l], p->first_layer + l);
		memcpy(prog, &h, sizeof(h));
		memcpy(prog + h.layers_off, L, p->n_layers * sizeof(*L));
		memcpy(prog + h.rope_off, freq, c->hd / 2 * sizeof(*freq));
		free(L);
		free(freq);
		free(ff);
	}
	return ret;
}

int np_compiled_embed(const struct np_compiled *c, int32_t token, int16_t *x)
{
	float *e;
	double s_x;
	int ret;

	if (!c->calib)
		return -EINVAL;
	if (token < 0 || (uint32_t)token >= c->s.vocab)
		return -ERANGE;
	e = malloc(c->s.dim * sizeof(*e));
	if (!e)
		return -ENOMEM;
	ret = np_model_row(c->m, NP_T_TOK_EMBD, 0, (uint32_t)token, e);
	s_x = sc(c, 0)->s[NPIM_A_X];
	for (uint32_t i = 0; !ret && i < c->s.dim; i++) {
		double v = round(e[i] * (double)c->m->x.emb_scale / s_x);

		x[i] = (int16_t)(v < -32768 ? -32768 : v > 32767 ? 32767 : v);
	}
	free(e);
	return ret;
}

double np_compiled_logit_scale(const struct np_compiled *c)
{
	return c->calib ? sc(c, c->s.n_layers)->s[NPIM_A_LOGIT] : 0.0;
}

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n) {
		ssize_t w = write(fd, b, n);

		if (w < 0)
			return -errno;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

int np_compile_write(const struct np_compiled *c, const char *dir)
{
	char path[4096];
	uint8_t *sram;
	int ret = 0, fd;

	if (!c->calib)
		return -EINVAL;
	sram = calloc(1, NP_SRAM_SIZE);
	if (!sram)
		return -ENOMEM;
	for (uint32_t i = 0; i < c->n_cards && !ret; i++) {
		const struct np_card_plan *p = &c->card[i];
		struct npim_img_hdr h = {0};

		memset(sram, 0, NP_SRAM_SIZE);
		ret = np_compile_card_image(c, i, sram);
		if (ret)
			break;
		snprintf(path, sizeof(path), "%s/card-%02u.npimg", dir, i);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0) {
			ret = -errno;
			break;
		}
		h.magic = NPIM_IMG_MAGIC;
		h.version = 1;
		h.card = i;
		h.kind = (uint32_t)p->kind;
		h.prog = p->prog;
		h.n_segments = NP_NUM_CORES;
		h.segment_len = p->core_bytes;
		ret = write_all(fd, &h, sizeof(h));
		for (uint32_t k = 0; k < NP_NUM_CORES && !ret; k++)
			ret = write_all(fd,
					sram + (uint64_t)k * NP_CORE_SRAM_SIZE,
					p->core_bytes);
		if (close(fd) && !ret)
			ret = -EIO;
	}
	free(sram);
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "%s/host.nphost", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	{
		struct npim_host_hdr h = {0};
		int16_t *x = malloc(c->s.dim * sizeof(*x));

		h.magic = NPIM_HOST_MAGIC;
		h.version = 1;
		h.n_cards = c->n_cards;
		h.dim = c->s.dim;
		h.vocab = c->s.vocab;
		h.batch = c->o.batch;
		h.max_seq = c->o.max_seq;
		h.logit_scale = np_compiled_logit_scale(c);
		ret = x ? write_all(fd, &h, sizeof(h)) : -ENOMEM;
		for (uint32_t t = 0; t < c->s.vocab && !ret; t++) {
			ret = np_compiled_embed(c, (int32_t)t, x);
			if (!ret)
				ret = write_all(fd, x, c->s.dim * sizeof(*x));
		}
		free(x);
	}
	if (close(fd) && !ret)
		ret = -EIO;
	return ret;
}
