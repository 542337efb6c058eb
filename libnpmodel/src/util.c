// SPDX-License-Identifier: MIT
/* Logging, half floats, buffers, hashing and UTF-8 for np_model. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npim.h"
#include "npim_unicode_tab.h"

void npim_log(const struct np_log *log, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!log || !log->fn ||
	    level > (int)(log->level ? log->level : NP_LOG_INFO))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log->fn(log->opaque, (enum np_log_level)level, msg);
}

int npim_read_file(const char *path, char **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *b = NULL;
	long n;
	int ret = -EIO;

	if (!f)
		return -errno;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0) {
		b = malloc((size_t)n + 1);
		if (!b)
			ret = -ENOMEM;
		else if (fread(b, 1, (size_t)n, f) == (size_t)n)
			ret = 0;
	}
	fclose(f);
	if (ret) {
		free(b);
		return ret;
	}
	b[n] = 0;
	*buf = b;
	*len = (size_t)n;
	return 0;
}

float npim_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 31;
	uint32_t m = h & 0x3ff, bits;
	float f;

	if (e == 0) {
		/* zero or subnormal: m * 2^-24 */
		f = (float)m * (1.0f / 16777216.0f);
		return sign ? -f : f;
	}
	if (e == 31)
		bits = sign | 0x7f800000u | m << 13;
	else
		bits = sign | (e + 112) << 23 | m << 13;
	memcpy(&f, &bits, 4);
	return f;
}

uint16_t npim_f32_to_f16(float f)
{
	uint32_t x, sign, mant;
	int32_t e;

	memcpy(&x, &f, 4);
	sign = (x >> 16) & 0x8000;
	e = (int32_t)((x >> 23) & 0xff) - 127 + 15;
	mant = x & 0x7fffff;
	if (((x >> 23) & 0xff) == 0xff)
		return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 : 0));
	if (e >= 31)
		return (uint16_t)(sign | 0x7c00);
	if (e <= 0) {
		uint32_t m, shift, r, half;

		if (e < -10)
			return (uint16_t)sign;
		m = mant | 0x800000;
		shift = (uint32_t)(14 - e);
		r = m >> shift;
		half = 1u << (shift - 1);
		if ((m & ((half << 1) - 1)) > half ||
		    ((m & ((half << 1) - 1)) == half && (r & 1)))
			r++;
		return (uint16_t)(sign | r);
	}
	{
		uint32_t r = (uint32_t)e << 10 | mant >> 13;
		uint32_t rem = mant & 0x1fff;

		if (rem > 0x1000 || (rem == 0x1000 && (r & 1)))
			r++; /* may carry into the exponent: still correct */
		return (uint16_t)(sign | r);
	}
}

void npim_buf_put(struct npim_buf *b, const void *d, size_t n)
{
	if (b->err)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *p;

		while (cap < b->len + n)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->err = -ENOMEM;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->len, d, n);
	b->len += n;
}

void npim_buf_u32(struct npim_buf *b, uint32_t v)
{
	npim_buf_put(b, &v, 4);
}

void npim_buf_u64(struct npim_buf *b, uint64_t v)
{
	npim_buf_put(b, &v, 8);
}

void npim_buf_str(struct npim_buf *b, const char *s, size_t n)
{
	npim_buf_u64(b, n);
	npim_buf_put(b, s, n);
}

void npim_buf_pad(struct npim_buf *b, size_t align)
{
	static const uint8_t zero[64];

	while (b->len % align && !b->err)
		npim_buf_put(b, zero,
			     align - b->len % align > sizeof(zero) ?
				     sizeof(zero) :
				     align - b->len % align);
}

static uint64_t npim_mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void npim_rand_row(uint64_t seed, uint64_t a, uint64_t b, float amp, float base,
		   float *out, size_t n)
{
	uint64_t h = npim_mix(seed + 0x9e3779b97f4a7c15ull * (a + 1));

	h = npim_mix(h ^ (b * 0xd1b54a32d192ed03ull));
	for (size_t i = 0; i < n; i++) {
		uint64_t z = npim_mix(h + (i + 1) * 0x9e3779b97f4a7c15ull);

		out[i] = base + amp * ((float)((int64_t)(z >> 40) - (1 << 23)) *
				       (1.0f / (1 << 23)));
	}
}

size_t npim_utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t v, min;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if ((c & 0xe0) == 0xc0) {
		n = 2;
		v = c & 0x1f;
		min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3;
		v = c & 0x0f;
		min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4;
		v = c & 0x07;
		min = 0x10000;
	} else {
		*cp = 0xfffd;
		return 1;
	}
	if (n > len)
		goto bad;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			goto bad;
		v = v << 6 | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		goto bad;
	*cp = v;
	return n;
bad:
	*cp = 0xfffd;
	return 1;
}

static int npim_in_ranges(const uint32_t (*r)[2], size_t n, uint32_t cp)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (cp < r[mid][0])
			hi = mid;
		else if (cp > r[mid][1])
			lo = mid + 1;
		else
			return 1;
	}
	return 0;
}

int npim_is_letter(uint32_t cp)
{
	return npim_in_ranges(npim_letter_ranges,
			      NPIM_ARRAY_SIZE(npim_letter_ranges), cp);
}

int npim_is_number(uint32_t cp)
{
	return npim_in_ranges(npim_number_ranges,
			      NPIM_ARRAY_SIZE(npim_number_ranges), cp);
}

int npim_is_punct(uint32_t cp)
{
	return npim_in_ranges(npim_punct_ranges,
			      NPIM_ARRAY_SIZE(npim_punct_ranges), cp);
}

int npim_is_space(uint32_t cp)
{
	return (cp >= 9 && cp <= 13) || cp == 32 || cp == 0x85 || cp == 0xa0 ||
	       cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 ||
	       cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

struct npim_map {
	char **keys;
	size_t *lens;
	int32_t *vals;
	size_t cap, n;
};

static uint64_t npim_hash(const char *k, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)k[i]) * 1099511628211ull;
	return h;
}

struct npim_map *npim_map_new(size_t hint)
{
	struct npim_map *m = calloc(1, sizeof(*m));
	size_t cap = 64;

	if (!m)
		return NULL;
	while (cap < hint * 2)
		cap *= 2;
	m->cap = cap;
	m->keys = calloc(cap, sizeof(*m->keys));
	m->lens = calloc(cap, sizeof(*m->lens));
	m->vals = calloc(cap, sizeof(*m->vals));
	if (!m->keys || !m->lens || !m->vals) {
		npim_map_free(m);
		return NULL;
	}
	return m;
}

void npim_map_free(struct npim_map *m)
{
	if (!m)
		return;
	if (m->keys)
		for (size_t i = 0; i < m->cap; i++)
			free(m->keys[i]);
	free(m->keys);
	free(m->lens);
	free(m->vals);
	free(m);
}

static size_t npim_map_slot(const struct npim_map *m, const char *k, size_t n)
{
	size_t i = npim_hash(k, n) & (m->cap - 1);

	while (m->keys[i] && (m->lens[i] != n || memcmp(m->keys[i], k, n) != 0))
		i = (i + 1) & (m->cap - 1);
	return i;
}

int npim_map_put(struct npim_map *m, const char *k, size_t n, int32_t v)
{
	size_t i;

	if ((m->n + 1) * 2 > m->cap) {
		struct npim_map big = {0};
		size_t cap = m->cap * 2;

		big.cap = cap;
		big.keys = calloc(cap, sizeof(*big.keys));
		big.lens = calloc(cap, sizeof(*big.lens));
		big.vals = calloc(cap, sizeof(*big.vals));
		if (!big.keys || !big.lens || !big.vals) {
			free(big.keys);
			free(big.lens);
			free(big.vals);
			return -ENOMEM;
		}
		for (size_t j = 0; j < m->cap; j++) {
			if (!m->keys[j])
				continue;
			i = npim_map_slot(&big, m->keys[j], m->lens[j]);
			big.keys[i] = m->keys[j];
			big.lens[i] = m->lens[j];
			big.vals[i] = m->vals[j];
		}
		free(m->keys);
		free(m->lens);
		free(m->vals);
		m->keys = big.keys;
		m->lens = big.lens;
		m->vals = big.vals;
		m->cap = cap;
	}
	i = npim_map_slot(m, k, n);
	if (!m->keys[i]) {
		m->keys[i] = malloc(n + 1);
		if (!m->keys[i])
			return -ENOMEM;
		memcpy(m->keys[i], k, n);
		m->keys[i][n] = 0;
		m->lens[i] = n;
		m->n++;
	}
	m->vals[i] = v;
	return 0;
}

int32_t npim_map_get(const struct npim_map *m, const char *k, size_t n)
{
	size_t i = npim_map_slot(m, k, n);

	return m->keys[i] ? m->vals[i] : -1;
}
