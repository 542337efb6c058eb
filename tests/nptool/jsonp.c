// SPDX-License-Identifier: MIT
/* Strict JSON parser for the nptool tests; see test.h. */
#include "test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

struct p {
	const char *s;
	unsigned int depth;
};

static void ws(struct p *p)
{
	while (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r')
		p->s++;
}

static struct tst_jv *value(struct p *p);

static struct tst_jv *new_jv(enum tst_jv_type t)
{
	struct tst_jv *v = calloc(1, sizeof(*v));

	if (v)
		v->type = t;
	return v;
}

static int hex4(const char *s, uint32_t *out)
{
	*out = 0;
	for (int i = 0; i < 4; i++) {
		char c = s[i];

		*out <<= 4;
		if (c >= '0' && c <= '9')
			*out |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*out |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*out |= (uint32_t)(c - 'A' + 10);
		else
			return -1;
	}
	return 0;
}

static size_t put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* A string literal at p->s (which points at the opening quote). */
static char *string(struct p *p)
{
	const char *s = p->s + 1;
	char *out = malloc(strlen(s) + 1), *o = out;

	if (!out)
		return NULL;
	while (*s != '"') {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20)
			goto bad; /* includes the terminating NUL */
		if (c != '\\') {
			*o++ = (char)c;
			s++;
			continue;
		}
		s++;
		switch (*s) {
		case '"':
		case '\\':
		case '/':
			*o++ = *s;
			break;
		case 'b':
			*o++ = '\b';
			break;
		case 'f':
			*o++ = '\f';
			break;
		case 'n':
			*o++ = '\n';
			break;
		case 'r':
			*o++ = '\r';
			break;
		case 't':
			*o++ = '\t';
			break;
		case 'u': {
			uint32_t cp, lo;

			if (hex4(s + 1, &cp))
				goto bad;
			s += 4;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (s[1] != '\\' || s[2] != 'u' ||
				    hex4(s + 3, &lo) || lo < 0xdc00 ||
				    lo > 0xdfff)
					goto bad;
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				     (lo - 0xdc00);
				s += 6;
			} else if (cp >= 0xdc00 && cp <= 0xdfff) {
				goto bad;
			}
			if (!cp)
				goto bad; /* no NUL inside C strings */
			o += put_utf8(o, cp);
			break;
		}
		default:
			goto bad;
		}
		s++;
	}
	*o = '\0';
	p->s = s + 1;
	return out;
bad:
	free(out);
	return NULL;
}

static struct tst_jv *number(struct p *p)
{
	const char *s = p->s;
	struct tst_jv *v;
	char *end;

	if (*s == '-')
		s++;
	if (*s == '0')
		s++;
	else if (*s >= '1' && *s <= '9')
		while (*s >= '0' && *s <= '9')
			s++;
	else
		return NULL;
	if (*s == '.') {
		s++;
		if (*s < '0' || *s > '9')
			return NULL;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (*s < '0' || *s > '9')
			return NULL;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	v = new_jv(TST_JV_NUM);
	if (!v)
		return NULL;
	v->num = strtod(p->s, &end);
	if (end != s) {
		free(v);
		return NULL;
	}
	p->s = s;
	return v;
}

static int push(struct tst_jv *v, char *key, struct tst_jv *item)
{
	struct tst_jv **items = realloc(v->items, (v->n + 1) * sizeof(*items));
	char **keys;

	if (!items)
		return -1;
	v->items = items;
	if (v->type == TST_JV_OBJ) {
		keys = realloc(v->keys, (v->n + 1) * sizeof(*keys));
		if (!keys)
			return -1;
		v->keys = keys;
		v->keys[v->n] = key;
	}
	v->items[v->n++] = item;
	return 0;
}

static struct tst_jv *container(struct p *p, bool obj)
{
	struct tst_jv *v = new_jv(obj ? TST_JV_OBJ : TST_JV_ARR);

	if (!v || ++p->depth > MAX_DEPTH)
		goto bad;
	p->s++;
	ws(p);
	if (*p->s == (obj ? '}' : ']')) {
		p->s++;
		p->depth--;
		return v;
	}
	for (;;) {
		char *key = NULL;
		struct tst_jv *item;

		ws(p);
		if (obj) {
			if (*p->s != '"' || !(key = string(p)))
				goto bad;
			ws(p);
			if (*p->s != ':') {
				free(key);
				goto bad;
			}
			p->s++;
		}
		item = value(p);
		if (!item || push(v, key, item)) {
			free(key);
			tst_jv_free(item);
			goto bad;
		}
		ws(p);
		if (*p->s == ',') {
			p->s++;
			continue;
		}
		if (*p->s != (obj ? '}' : ']'))
			goto bad;
		p->s++;
		p->depth--;
		return v;
	}
bad:
	tst_jv_free(v);
	return NULL;
}

static struct tst_jv *value(struct p *p)
{
	struct tst_jv *v = NULL;

	ws(p);
	switch (*p->s) {
	case '{':
		return container(p, true);
	case '[':
		return container(p, false);
	case '"': {
		char *s = string(p);

		if (s && (v = new_jv(TST_JV_STR)))
			v->str = s;
		else
			free(s);
		return v;
	}
	case 't':
	case 'f':
	case 'n':
		if (!strncmp(p->s, "true", 4) || !strncmp(p->s, "false", 5)) {
			v = new_jv(TST_JV_BOOL);
			if (v)
				v->b = *p->s == 't';
			p->s += *p->s == 't' ? 4 : 5;
		} else if (!strncmp(p->s, "null", 4)) {
			v = new_jv(TST_JV_NULL);
			p->s += 4;
		}
		return v;
	default:
		return number(p);
	}
}

struct tst_jv *tst_jv_parse(const char *s, const char **end)
{
	struct p p = {.s = s};
	struct tst_jv *v = value(&p);

	if (!v)
		return NULL;
	ws(&p);
	if (end) {
		*end = p.s;
	} else if (*p.s) {
		tst_jv_free(v);
		return NULL;
	}
	return v;
}

void tst_jv_free(struct tst_jv *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		tst_jv_free(v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->str);
	free(v);
}

struct tst_jv *tst_jv_get(const struct tst_jv *obj, const char *key)
{
	if (!obj || obj->type != TST_JV_OBJ)
		return NULL;
	for (size_t i = 0; i < obj->n; i++)
		if (!strcmp(obj->keys[i], key))
			return obj->items[i];
	return NULL;
}

struct tst_jv *tst_jv_at(const struct tst_jv *arr, size_t i)
{
	if (!arr || arr->type != TST_JV_ARR || i >= arr->n)
		return NULL;
	return arr->items[i];
}

const char *tst_jv_str(const struct tst_jv *obj, const char *key)
{
	struct tst_jv *v = tst_jv_get(obj, key);

	return v && v->type == TST_JV_STR ? v->str : NULL;
}

double tst_jv_num(const struct tst_jv *obj, const char *key)
{
	struct tst_jv *v = tst_jv_get(obj, key);

	return v && v->type == TST_JV_NUM ? v->num : -1e300;
}
