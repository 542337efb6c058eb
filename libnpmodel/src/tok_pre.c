// SPDX-License-Identifier: MIT
/*
 * BPE pre-tokenizers: the split rules named by tokenizer.ggml.pre, each
 * exactly as llama.cpp applies its regular expressions (unicode.cpp,
 * unicode_regex_split). The expressions of a rule run in order; each splits
 * every piece the previous ones left into its matches and the text between
 * them, so a match never crosses a piece boundary and '$' or a look-ahead
 * sees only its piece. Every expression here is a hand-written matcher
 * with ECMAScript semantics (leftmost match, greedy, backtracking), the
 * engine llama.cpp hands them to. Code points are classified by Unicode
 * category (L, N, P) and llama.cpp's white space set; non-ASCII white space
 * stands in as \v before matching, as llama.cpp does, so a character class
 * listing U+3000 never matches it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npim_tok.h"

/* match length at c[i] within a piece ending at b, 0 for none; *next is
 * where to try after a miss (i + 1 unless the matcher knows better) */
typedef size_t (*pre_match)(const uint32_t *c, size_t b, size_t i,
			    size_t *next);

enum { C_SPACE, C_LETTER, C_NUMBER, C_OTHER };

static int cls(uint32_t c)
{
	return npim_is_space(c)	 ? C_SPACE :
	       npim_is_letter(c) ? C_LETTER :
	       npim_is_number(c) ? C_NUMBER :
				   C_OTHER;
}

static int is_nl(uint32_t c)
{
	return c == '\r' || c == '\n';
}

/* a run of code points satisfying f from i; its end */
static size_t run(const uint32_t *c, size_t b, size_t i, int (*f)(uint32_t))
{
	while (i < b && f(c[i]))
		i++;
	return i;
}

/* 's|'t|'re|'ve|'m|'ll|'d, ASCII case folded when fold */
static size_t contraction(const uint32_t *c, size_t b, size_t i, int fold)
{
	uint32_t n1, n2;

	if (c[i] != '\'' || i + 1 >= b)
		return 0;
	n1 = fold && c[i + 1] >= 'A' && c[i + 1] <= 'Z' ? c[i + 1] + 32 :
							  c[i + 1];
	if (n1 == 's' || n1 == 't' || n1 == 'm' || n1 == 'd')
		return 2;
	if (i + 2 >= b)
		return 0;
	n2 = fold && c[i + 2] >= 'A' && c[i + 2] <= 'Z' ? c[i + 2] + 32 :
							  c[i + 2];
	if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') ||
	    (n1 == 'l' && n2 == 'l'))
		return 3;
	return 0;
}

/* \s+(?!\S)|\s+ at a white space run starting at i (gpt-2's tail) */
static size_t space_tail(const uint32_t *c, size_t b, size_t i)
{
	size_t j = run(c, b, i, npim_is_space);

	if (j - i > 1 && j < b)
		return j - i - 1;
	return j > i ? j - i : 1;
}

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
 * (llama.cpp's unicode_regex_split_custom_gpt2) */
static size_t m_gpt2(const uint32_t *c, size_t b, size_t i, size_t *next)
{
	size_t l = contraction(c, b, i, 0), j;
	int k;

	(void)next;
	if (l)
		return l;
	k = c[i] == ' ' && i + 1 < b ? cls(c[i + 1]) : cls(c[i]);
	if (k == C_SPACE)
		return space_tail(c, b, i);
	j = i + (c[i] == ' ');
	while (j < b && cls(c[j]) == k)
		j++;
	return j - i;
}

/*
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,nd}|
 *  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * Llama 3 (nd 3, llama.cpp's unicode_regex_split_custom_llama3) and
 * Qwen2 (nd 1).
 */
static size_t m_llama3_nd(const uint32_t *c, size_t b, size_t i, size_t nd)
{
	size_t l = contraction(c, b, i, 1), j, last = 0;
	int k = cls(c[i]);

	if (l)
		return l;
	if (!is_nl(c[i]) && k != C_NUMBER &&
	    (k == C_LETTER || (i + 1 < b && cls(c[i + 1]) == C_LETTER)))
		return run(c, b, i + 1, npim_is_letter) - i;
	if (k == C_NUMBER) {
		j = run(c, b, i, npim_is_number);
		return j - i > nd ? nd : j - i;
	}
	j = i + (c[i] == ' ' && i + 1 < b && cls(c[i + 1]) == C_OTHER);
	if (cls(c[j]) == C_OTHER) {
		while (j < b && cls(c[j]) == C_OTHER)
			j++;
		return run(c, b, j, is_nl) - i;
	}
	for (j = i; j < b && npim_is_space(c[j]); j++)
		if (is_nl(c[j]))
			last = j + 1;
	if (last)
		return last - i;
	return space_tail(c, b, i);
}

static size_t m_llama3(const uint32_t *c, size_t b, size_t i, size_t *next)
{
	(void)next;
	return m_llama3_nd(c, b, i, 3);
}

static size_t m_qwen2(const uint32_t *c, size_t b, size_t i, size_t *next)
{
	(void)next;
	return m_llama3_nd(c, b, i, 1);
}

/* [\r\n] */
static size_t m_nl(const uint32_t *c, size_t b, size_t i, size_t *next)
{
	(void)b;
	(void)next;
	return is_nl(c[i]);
}

/* \p{N} */
static size_t m_number(const uint32_t *c, size_t b, size_t i, size_t *next)
{
	(void)b;
	(void)next;
	return npim_is_number(c[i]);
}

/* \p{N}+ */
static size_t m_numbers(const uint32_t *c, size_t b, size_t i, size_t *next)
{
	(void)next;
	return run(c, b, i, npim_is_number) - i;
}

static int is_digit(uint32_t c)
{
	return c >= '0' && c <= '9';
}

/* [0-9][0-9][0-9] */
static size_t m_digits3(const uint32_t *c, size_t b, size_t i, size_t *next)
{
	(void)next;
	return i + 3 <= b && is_digit(c[i]) && is_digit(c[i + 1]) &&
			       is_digit(c[i + 2]) ?
		       3 :
		       0;
}

static int is_falcon_punct(uint32_t c)
{
	return npim_is_punct(c) ||
	       (c && c < 128 && strchr("$+<=>^~|`", (int)c));
}

static int is_default_punct(uint32_t c)
{
	return c != '`' && is_falcon_punct(c);
}

/* [\p{P}\$\+<=>\^~\|`]+ (falcon) */
static size_t m_falcon_p(const uint32_t *c, size_t b, size_t i, size_t *next)
{
	(void)next;
	return run(c, b, i, is_falcon_punct) - i;
}

/* [\p{P}\$\+<=>\^~\|]+ (llama.cpp's "default") */
static size_t m_default_p(const uint32_t *c, size_t b, size_t i, size_t *next)
{
	(void)next;
	return run(c, b, i, is_default_punct) - i;
}

/* \s?[f]+ */
static size_t space_opt_run(const uint32_t *c, size_t b, size_t i,
			    int (*f)(uint32_t))
{
	size_t j = i + (npim_is_space(c[i]) && i + 1 < b && f(c[i + 1]));

	return f(c[j]) ? run(c, b, j, f) - i : 0;
}

/* \s?\p{L}+ and \s?\p{P}+ (deepseek-coder) */
static size_t m_sp_letters(const uint32_t *c, size_t b, size_t i, size_t *next)
{
	(void)next;
	return space_opt_run(c, b, i, npim_is_letter);
}

static size_t m_sp_punct(const uint32_t *c, size_t b, size_t i, size_t *next)
{
	(void)next;
	return space_opt_run(c, b, i, npim_is_punct);
}

static int in_list(const uint32_t (*r)[2], size_t n, uint32_t c)
{
	for (size_t k = 0; k < n; k++)
		if (c >= r[k][0] && c <= r[k][1])
			return 1;
	return 0;
}

/* deepseek-llm's explicit letter class (cased letters of several scripts) */
static int is_ds_letter(uint32_t c)
{
	static const uint32_t r[][2] = {
		{0x41, 0x5a},	    {0x61, 0x7a},	{0xb5, 0xb5},
		{0xc0, 0xd6},	    {0xd8, 0xf6},	{0xf8, 0x1ba},
		{0x1bc, 0x1bf},	    {0x1c4, 0x293},	{0x295, 0x2af},
		{0x370, 0x373},	    {0x376, 0x377},	{0x37b, 0x37d},
		{0x37f, 0x37f},	    {0x386, 0x386},	{0x388, 0x38a},
		{0x38c, 0x38c},	    {0x38e, 0x3a1},	{0x3a3, 0x3f5},
		{0x3f7, 0x481},	    {0x48a, 0x52f},	{0x531, 0x556},
		{0x10a0, 0x10c5},   {0x13a0, 0x13f5},	{0x13f8, 0x13fd},
		{0x1c90, 0x1cba},   {0x1cbd, 0x1cbf},	{0x1d00, 0x1d2b},
		{0x1d6b, 0x1d77},   {0x1d79, 0x1d9a},	{0x1e00, 0x1f15},
		{0x1f18, 0x1f1d},   {0x1f20, 0x1f45},	{0x1f48, 0x1f4d},
		{0x1f50, 0x1f57},   {0x1f59, 0x1f59},	{0x1f5b, 0x1f5b},
		{0x1f5d, 0x1f5d},   {0x1f5f, 0x1f7d},	{0x1f80, 0x1fb4},
		{0x1fb6, 0x1fbc},   {0x1fbe, 0x1fbe},	{0x1fc2, 0x1fc4},
		{0x1fc6, 0x1fcc},   {0x1fd0, 0x1fd3},	{0x1fd6, 0x1fdb},
		{0x1fe0, 0x1fec},   {0x1ff2, 0x1ff4},	{0x1ff6, 0x1ffc},
		{0x2102, 0x2102},   {0x2107, 0x2107},	{0x210a, 0x2113},
		{0x2115, 0x2115},   {0x2119, 0x211d},	{0x2124, 0x2124},
		{0x2126, 0x2126},   {0x2128, 0x2128},	{0x212a, 0x212d},
		{0x212f, 0x2134},   {0x2139, 0x2139},	{0x213c, 0x213f},
		{0x2145, 0x2149},   {0x214e, 0x214e},	{0x2183, 0x2184},
		{0x2c00, 0x2c7b},   {0x2c7e, 0x2ce4},	{0x2ceb, 0x2cee},
		{0x2cf2, 0x2cf3},   {0xa640, 0xa66d},	{0xa680, 0xa69b},
		{0xa722, 0xa76f},   {0xa771, 0xa787},	{0xa78b, 0xa78e},
		{0xab70, 0xabbf},   {0xfb00, 0xfb06},	{0xfb13, 0xfb17},
		{0xff21, 0xff3a},   {0xff41, 0xff5a},	{0x10400, 0x1044f},
		{0x104b0, 0x104d3}, {0x104d8, 0x104fb}, {0x10c80, 0x10cb2},
		{0x10cc0, 0x10cf2}, {0x118a0, 0x118df}, {0x1e900, 0x1e943},
	};

	return in_list(r, NPIM_ARRAY_SIZE(r), c);
}

/* [!-/:-~！-／：-～‘-‟　-。] */
static int is_ds_punct(uint32_t c)
{
	static const uint32_t r[][2] = {
		{0x21, 0x2f},	  {0x3a, 0x7e},	    {0xff01, 0xff0f},
		{0xff1a, 0xff5e}, {0x2018, 0x201f}, {0x3000, 0x3002},
	};

	return in_list(r, NPIM_ARRAY_SIZE(r), c);
}

/* [一-龥ࠀ-一가-퟿] */
static int is_cjk(uint32_t c)
{
	return (c >= 0x4e00 && c <= 0x9fa5) || (c >= 0x800 && c <= 0x4e00) ||
	       (c >= 0xac00 && c <= 0xd7ff);
}

static size_t m_ds_letters(const uint32_t *c, size_t b, size_t i, size_t *next)
{
	(void)next;
	return space_opt_run(c, b, i, is_ds_letter);
}

static size_t m_ds_punct(const uint32_t *c, size_t b, size_t i, size_t *next)
{
	(void)next;
	return space_opt_run(c, b, i, is_ds_punct);
}

static size_t m_cjk(const uint32_t *c, size_t b, size_t i, size_t *next)
{
	(void)next;
	return run(c, b, i, is_cjk) - i;
}

/* \s+$: a white space run matches only where it ends its piece; a run
 * that does not fails from every start inside it */
static size_t m_space_end(const uint32_t *c, size_t b, size_t i, size_t *next)
{
	size_t j = run(c, b, i, npim_is_space);

	if (j == i)
		return 0;
	if (j == b)
		return j - i;
	*next = j;
	return 0;
}

struct pre_rule {
	const char *name;
	pre_match m[7]; /* NULL-terminated */
	int ignore_merges; /* a piece that is a token is not merged */
};

#define R_GPT2         \
	{              \
		m_gpt2 \
	}
#define R_LLAMA3         \
	{                \
		m_llama3 \
	}
#define R_QWEN2         \
	{               \
		m_qwen2 \
	}
#define R_STARCODER              \
	{                        \
		m_number, m_gpt2 \
	}

/* llama.cpp's names, src/llama-vocab.cpp; aliases share a rule */
static const struct pre_rule rules[] = {
	{"gpt-2", R_GPT2, 0},
	{"mpt", R_GPT2, 0},
	{"olmo", R_GPT2, 0},
	{"phi-2", R_GPT2, 0},
	{"llama-bpe", R_LLAMA3, 1},
	{"llama3", R_LLAMA3, 1},
	{"llama-v3", R_LLAMA3, 1},
	{"dbrx", R_LLAMA3, 0},
	{"smaug-bpe", R_LLAMA3, 0},
	{"qwen2", R_QWEN2, 0},
	{"deepseek-r1-qwen", R_QWEN2, 0},
	{"stablelm2", R_QWEN2, 0},
	{"starcoder", R_STARCODER, 0},
	{"refact", R_STARCODER, 0},
	{"command-r", R_STARCODER, 0},
	{"smollm", R_STARCODER, 0},
	{"codeshell", R_STARCODER, 0},
	{"deepseek-llm",
	 {m_nl, m_ds_letters, m_ds_punct, m_space_end, m_cjk, m_numbers},
	 0},
	{"deepseek-coder",
	 {m_nl, m_sp_letters, m_sp_punct, m_cjk, m_number},
	 0},
	{"falcon", {m_falcon_p, m_gpt2, m_digits3}, 0},
	{"default", {m_default_p, m_gpt2, m_numbers, m_digits3}, 0},
};

int npim_pre_find(const char *name, size_t n)
{
	for (size_t k = 0; k < NPIM_ARRAY_SIZE(rules); k++)
		if (strlen(rules[k].name) == n &&
		    !memcmp(rules[k].name, name, n))
			return (int)k;
	return -1;
}

const char *npim_pre_name(int pre)
{
	return rules[pre].name;
}

int npim_pre_ignore_merges(int pre)
{
	return rules[pre].ignore_merges;
}

void npim_pre_list(char *buf, size_t cap)
{
	size_t o = 0;

	buf[0] = 0;
	for (size_t k = 0; k < NPIM_ARRAY_SIZE(rules) && o < cap; k++) {
		int w = snprintf(buf + o, cap - o, "%s%s", k ? ", " : "",
				 rules[k].name);

		if (w < 0)
			break;
		o += (size_t)w;
	}
}

/* one expression over the piece [a, b): the ends of its new pieces */
static size_t split_piece(pre_match m, const uint32_t *c, size_t a, size_t b,
			  uint32_t *out, size_t k)
{
	size_t cur = a;

	for (size_t i = a; i < b;) {
		size_t next = i + 1, l = m(c, b, i, &next);

		if (!l) {
			i = next;
			continue;
		}
		if (i > cur)
			out[k++] = (uint32_t)i;
		out[k++] = (uint32_t)(i + l);
		cur = i = i + l;
	}
	if (cur < b)
		out[k++] = (uint32_t)b;
	return k;
}

int npim_pre_split(int pre, const char *text, size_t len, size_t **ends,
		   size_t *n_out)
{
	const unsigned char *p = (const unsigned char *)text;
	uint32_t *c, *off, *e, *e2;
	size_t n = 0, ne = 0;
	int ret = -ENOMEM;

	*ends = NULL;
	*n_out = 0;
	/* code point indices and byte offsets are 32-bit */
	if (len >= UINT32_MAX)
		return -E2BIG;
	c = malloc((len + 1) * sizeof(*c));
	off = malloc((len + 1) * sizeof(*off));
	e = malloc((len + 1) * sizeof(*e));
	e2 = malloc((len + 1) * sizeof(*e2));
	if (!c || !off || !e || !e2)
		goto out;
	for (size_t i = 0; i < len; n++) {
		uint32_t cp;
		size_t l = npim_utf8_next(p + i, len - i, &cp);

		c[n] = cp > 0x7f && npim_is_space(cp) ? 0x0b : cp;
		off[n] = (uint32_t)i;
		i += l;
	}
	off[n] = (uint32_t)len;
	if (n)
		e[ne++] = (uint32_t)n;
	for (const pre_match *m = rules[pre].m; *m && m < rules[pre].m + 7;
	     m++) {
		size_t k = 0, a = 0;
		uint32_t *t;

		for (size_t s = 0; s < ne; s++) {
			k = split_piece(*m, c, a, e[s], e2, k);
			a = e[s];
		}
		t = e;
		e = e2;
		e2 = t;
		ne = k;
	}
	if (ne) {
		*ends = malloc(ne * sizeof(**ends));
		if (!*ends)
			goto out;
		for (size_t s = 0; s < ne; s++)
			(*ends)[s] = off[e[s]];
	}
	*n_out = ne;
	ret = 0;
out:
	free(c);
	free(off);
	free(e);
	free(e2);
	return ret;
}
