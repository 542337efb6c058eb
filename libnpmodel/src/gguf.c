// SPDX-License-Identifier: MIT
/*
 * GGUF reader (the writer is gguf_write.c). It validates the whole header
 * before handing anything out: every count against the bytes that remain,
 * every size against overflow, every tensor against the data section.
 * Input is untrusted; nothing here asserts on it. The ggml type table and
 * the row dequantisers are in gguf_dequant.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "npim.h"

#define GGUF_MAX_KV (1u << 20)
#define GGUF_MAX_TENSORS (1u << 20)
#define GGUF_MAX_NAME 256
#define GGUF_MAX_DEPTH 3

struct gguf_kv {
	const char *key;
	size_t key_len;
	uint32_t type;
	size_t off; /* value (or first element) offset */
	uint32_t arr_type;
	uint64_t count;
	uint64_t *str_off; /* string arrays: offset of each element */
};

struct np_gguf {
	const uint8_t *p;
	size_t len;
	void *map;
	uint32_t version;
	struct gguf_kv *kv;
	size_t n_kv;
	struct np_gguf_tensor *t;
	char *names;
	size_t n_t;
	uint64_t alignment;
	size_t data_off;
	int meta; /* np_gguf_open_meta: metadata and tensor infos only */
};

struct gguf_cur {
	const struct np_gguf *g;
	const struct np_log *log;
	size_t pos;
	const char *what; /* section being read, for messages */
};

static int cur_need(struct gguf_cur *c, size_t n, const char *item)
{
	if (c->g->len - c->pos >= n)
		return 0;
	npim_log(c->log, LOG_ERR,
		 "gguf: truncated file: %s of %s needs %zu bytes at offset %zu "
		 "but the file has %zu; the file is incomplete, download or "
		 "write it again",
		 item, c->what, n, c->pos, c->g->len);
	return -EINVAL;
}

static int cur_u32(struct gguf_cur *c, const char *item, uint32_t *v)
{
	if (cur_need(c, 4, item))
		return -EINVAL;
	memcpy(v, c->g->p + c->pos, 4);
	c->pos += 4;
	return 0;
}

static int cur_u64(struct gguf_cur *c, const char *item, uint64_t *v)
{
	if (cur_need(c, 8, item))
		return -EINVAL;
	memcpy(v, c->g->p + c->pos, 8);
	c->pos += 8;
	return 0;
}

static int cur_str(struct gguf_cur *c, const char *item, const char **s,
		   size_t *n)
{
	uint64_t len;

	if (cur_u64(c, item, &len))
		return -EINVAL;
	if (len > c->g->len - c->pos) {
		npim_log(c->log, LOG_ERR,
			 "gguf: %s of %s at offset %zu claims %llu bytes but "
			 "only %zu remain; the file is truncated or corrupt",
			 item, c->what, c->pos - 8, (unsigned long long)len,
			 c->g->len - c->pos);
		return -EINVAL;
	}
	*s = (const char *)c->g->p + c->pos;
	*n = len;
	c->pos += len;
	return 0;
}

static size_t gguf_scalar_size(uint32_t t)
{
	switch (t) {
	case NP_GGUF_UINT8:
	case NP_GGUF_INT8:
	case NP_GGUF_BOOL:
		return 1;
	case NP_GGUF_UINT16:
	case NP_GGUF_INT16:
		return 2;
	case NP_GGUF_UINT32:
	case NP_GGUF_INT32:
	case NP_GGUF_FLOAT32:
		return 4;
	case NP_GGUF_UINT64:
	case NP_GGUF_INT64:
	case NP_GGUF_FLOAT64:
		return 8;
	default:
		return 0;
	}
}

/* Skip one value of type t (validating it); depth guards nested arrays. */
static int gguf_skip_value(struct gguf_cur *c, uint32_t t, int depth)
{
	size_t sz = gguf_scalar_size(t);
	const char *s;
	size_t n;

	if (sz)
		return cur_need(c, sz, "value") ? -EINVAL : (c->pos += sz, 0);
	if (t == NP_GGUF_STRING)
		return cur_str(c, "string value", &s, &n);
	if (t == NP_GGUF_ARRAY) {
		uint32_t et;
		uint64_t count;

		if (depth >= GGUF_MAX_DEPTH) {
			npim_log(c->log, LOG_ERR,
				 "gguf: arrays nested deeper than %d in %s at "
				 "offset %zu; the file is corrupt",
				 GGUF_MAX_DEPTH, c->what, c->pos);
			return -EINVAL;
		}
		if (cur_u32(c, "array type", &et) ||
		    cur_u64(c, "array count", &count))
			return -EINVAL;
		sz = gguf_scalar_size(et);
		if (!sz && et != NP_GGUF_STRING && et != NP_GGUF_ARRAY) {
			npim_log(c->log, LOG_ERR,
				 "gguf: array element type %u in %s at offset "
				 "%zu is not a GGUF type (0..12); the file is "
				 "corrupt",
				 et, c->what, c->pos - 12);
			return -EINVAL;
		}
		/* every element takes at least sz (scalars) or 8 bytes */
		if (count > (c->g->len - c->pos) / (sz ? sz : 8)) {
			npim_log(c->log, LOG_ERR,
				 "gguf: array in %s at offset %zu claims %llu "
				 "elements, more than the %zu bytes left can "
				 "hold; the file is truncated or corrupt",
				 c->what, c->pos - 12,
				 (unsigned long long)count, c->g->len - c->pos);
			return -EINVAL;
		}
		if (sz) {
			c->pos += count * sz;
			return 0;
		}
		for (uint64_t i = 0; i < count; i++)
			if (gguf_skip_value(c, et, depth + 1))
				return -EINVAL;
		return 0;
	}
	npim_log(c->log, LOG_ERR,
		 "gguf: value type %u in %s at offset %zu is not a GGUF type "
		 "(0..12); the file is corrupt",
		 t, c->what, c->pos);
	return -EINVAL;
}

static const struct gguf_kv *gguf_find_kv(const struct np_gguf *g,
					  const char *key)
{
	size_t n = strlen(key);

	for (size_t i = 0; i < g->n_kv; i++)
		if (g->kv[i].key_len == n && !memcmp(g->kv[i].key, key, n))
			return &g->kv[i];
	return NULL;
}

static int gguf_parse_kv(struct np_gguf *g, struct gguf_cur *c, size_t i)
{
	struct gguf_kv *kv = &g->kv[i];
	char what[96];

	snprintf(what, sizeof(what), "metadata entry %zu", i);
	c->what = what;
	if (cur_str(c, "key", &kv->key, &kv->key_len))
		return -EINVAL;
	if (kv->key_len == 0 || kv->key_len > GGUF_MAX_NAME) {
		npim_log(c->log, LOG_ERR,
			 "gguf: metadata entry %zu has a key of %zu bytes "
			 "(1..%d allowed); the file is corrupt",
			 i, kv->key_len, GGUF_MAX_NAME);
		return -EINVAL;
	}
	snprintf(what, sizeof(what), "metadata '%.*s'", (int)kv->key_len,
		 kv->key);
	for (size_t j = 0; j < i; j++) {
		if (g->kv[j].key_len == kv->key_len &&
		    !memcmp(g->kv[j].key, kv->key, kv->key_len)) {
			npim_log(c->log, LOG_ERR,
				 "gguf: %s appears twice; the file is corrupt",
				 what);
			return -EINVAL;
		}
	}
	if (cur_u32(c, "type", &kv->type))
		return -EINVAL;
	if (kv->type == NP_GGUF_ARRAY) {
		size_t start = c->pos;

		if (cur_u32(c, "array type", &kv->arr_type) ||
		    cur_u64(c, "array count", &kv->count))
			return -EINVAL;
		kv->off = c->pos;
		c->pos = start;
		if (gguf_skip_value(c, NP_GGUF_ARRAY, 0))
			return -EINVAL;
		if (kv->arr_type == NP_GGUF_STRING) {
			size_t p = kv->off;

			kv->str_off = malloc((kv->count ? kv->count : 1) *
					     sizeof(uint64_t));
			if (!kv->str_off)
				return -ENOMEM;
			for (uint64_t k = 0; k < kv->count; k++) {
				uint64_t n;

				kv->str_off[k] = p;
				memcpy(&n, g->p + p, 8);
				p += 8 + n;
			}
		}
		return 0;
	}
	kv->off = c->pos;
	return gguf_skip_value(c, kv->type, 0);
}

static int gguf_parse_tensor(struct np_gguf *g, struct gguf_cur *c, size_t i,
			     char **names)
{
	struct np_gguf_tensor *t = &g->t[i];
	const char *name, *tname;
	size_t nlen;
	uint32_t blck, tbytes;
	uint64_t off, n = 1, rows;
	char what[96];

	snprintf(what, sizeof(what), "tensor info %zu", i);
	c->what = what;
	if (cur_str(c, "name", &name, &nlen))
		return -EINVAL;
	if (nlen == 0 || nlen > GGUF_MAX_NAME) {
		npim_log(c->log, LOG_ERR,
			 "gguf: tensor %zu has a name of %zu bytes (1..%d "
			 "allowed); the file is corrupt",
			 i, nlen, GGUF_MAX_NAME);
		return -EINVAL;
	}
	memcpy(*names, name, nlen);
	(*names)[nlen] = 0;
	t->name = *names;
	*names += nlen + 1;
	snprintf(what, sizeof(what), "tensor '%s'", t->name);
	for (size_t j = 0; j < i; j++) {
		if (!strcmp(g->t[j].name, t->name)) {
			npim_log(c->log, LOG_ERR,
				 "gguf: %s appears twice; the file is corrupt",
				 what);
			return -EINVAL;
		}
	}
	if (cur_u32(c, "dimension count", &t->n_dims))
		return -EINVAL;
	if (t->n_dims == 0 || t->n_dims > NP_GGUF_MAX_DIMS) {
		npim_log(c->log, LOG_ERR,
			 "gguf: %s has %u dimensions (1..%d allowed); the file "
			 "is corrupt",
			 what, t->n_dims, NP_GGUF_MAX_DIMS);
		return -EINVAL;
	}
	for (uint32_t d = 0; d < t->n_dims; d++) {
		if (cur_u64(c, "dimension", &t->ne[d]))
			return -EINVAL;
		if (t->ne[d] == 0 || t->ne[d] > ((uint64_t)1 << 40) ||
		    n > ((uint64_t)1 << 50) / t->ne[d]) {
			npim_log(c->log, LOG_ERR,
				 "gguf: %s dimension %u is %llu: zero or the "
				 "tensor would exceed 2^50 elements; the file "
				 "is corrupt",
				 what, d, (unsigned long long)t->ne[d]);
			return -EINVAL;
		}
		n *= t->ne[d];
	}
	for (uint32_t d = t->n_dims; d < NP_GGUF_MAX_DIMS; d++)
		t->ne[d] = 1;
	t->n_elems = n;
	if (cur_u32(c, "type", &t->type) || cur_u64(c, "data offset", &off))
		return -EINVAL;
	if (!npim_ggml_type_info(t->type, &blck, &tbytes, &tname)) {
		npim_log(c->log, LOG_ERR,
			 "gguf: %s has type %u, which is not a ggml tensor "
			 "type np knows (ggml.h, up to %u); the file is "
			 "corrupt or from a newer ggml",
			 what, t->type, (unsigned)NP_GGML_Q1_0);
		return -EINVAL;
	}
	if (t->ne[0] % blck) {
		npim_log(c->log, LOG_ERR,
			 "gguf: %s of type %s has shape %llux%llux%llux%llu: "
			 "its rows of %llu elements are not a multiple of the "
			 "%u-element %s block; the file is corrupt",
			 what, tname, (unsigned long long)t->ne[0],
			 (unsigned long long)t->ne[1],
			 (unsigned long long)t->ne[2],
			 (unsigned long long)t->ne[3],
			 (unsigned long long)t->ne[0], blck, tname);
		return -EINVAL;
	}
	rows = n / t->ne[0];
	t->size = rows * (t->ne[0] / blck) * tbytes;
	t->data = (const void *)(uintptr_t)off; /* fixed up after the infos */
	return 0;
}

static int by_data(const void *a, const void *b)
{
	const struct np_gguf_tensor *x =
		*(const struct np_gguf_tensor *const *)a;
	const struct np_gguf_tensor *y =
		*(const struct np_gguf_tensor *const *)b;

	return x->data < y->data ? -1 : x->data > y->data;
}

/* No two tensors share bytes: a writer never lays them out so, and a
 * file that does would make one tensor's weights another's. */
static int gguf_check_overlap(struct np_gguf *g, const struct np_log *log)
{
	const struct np_gguf_tensor **s;
	int ret = 0;

	if (g->n_t < 2)
		return 0;
	s = malloc(g->n_t * sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < g->n_t; i++)
		s[i] = &g->t[i];
	qsort(s, g->n_t, sizeof(*s), by_data);
	for (size_t i = 1; i < g->n_t && !ret; i++) {
		const struct np_gguf_tensor *a = s[i - 1], *b = s[i];
		const uint8_t *a_end = (const uint8_t *)a->data + a->size;

		if (a->size && b->size && (const uint8_t *)b->data < a_end) {
			npim_log(log, LOG_ERR,
				 "gguf: tensors '%s' (data bytes %llu..%llu) "
				 "and '%s' (from %llu) overlap; the file is "
				 "corrupt",
				 a->name,
				 (unsigned long long)((const uint8_t *)a->data -
						      g->p - g->data_off),
				 (unsigned long long)(a_end - g->p -
						      g->data_off),
				 b->name,
				 (unsigned long long)((const uint8_t *)b->data -
						      g->p - g->data_off));
			ret = -EINVAL;
		}
	}
	free(s);
	return ret;
}

static int gguf_parse(struct np_gguf *g, const struct np_log *log)
{
	struct gguf_cur c = {.g = g, .log = log, .what = "the header"};
	uint32_t magic;
	uint64_t n_t, n_kv, al = 32;
	char *names;
	const struct gguf_kv *akv;
	size_t name_bytes;

	if (cur_u32(&c, "magic", &magic))
		return -EINVAL;
	if (magic != NPIM_GGUF_MAGIC) {
		npim_log(log, LOG_ERR,
			 "gguf: bad magic %02x %02x %02x %02x (expected "
			 "'GGUF'); this is not a GGUF file",
			 g->p[0], g->p[1], g->p[2], g->p[3]);
		return -EINVAL;
	}
	if (cur_u32(&c, "version", &g->version))
		return -EINVAL;
	if (g->version != 2 && g->version != 3) {
		npim_log(log, LOG_ERR,
			 "gguf: version %u is not supported (np reads GGUF "
			 "versions 2 and 3); convert the file with a current "
			 "llama.cpp",
			 g->version);
		return -EINVAL;
	}
	if (cur_u64(&c, "tensor count", &n_t) ||
	    cur_u64(&c, "metadata count", &n_kv))
		return -EINVAL;
	/* a metadata entry takes >= 13 bytes, a tensor info >= 32 */
	if (n_kv > GGUF_MAX_KV || n_kv > (g->len - c.pos) / 13) {
		npim_log(log, LOG_ERR,
			 "gguf: header claims %llu metadata entries but %zu "
			 "bytes cannot hold that many (limit %u); the file is "
			 "corrupt",
			 (unsigned long long)n_kv, g->len - c.pos, GGUF_MAX_KV);
		return -EINVAL;
	}
	if (n_t > GGUF_MAX_TENSORS || n_t > (g->len - c.pos) / 32) {
		npim_log(
			log, LOG_ERR,
			"gguf: header claims %llu tensors but %zu bytes cannot "
			"hold that many (limit %u); the file is corrupt",
			(unsigned long long)n_t, g->len - c.pos,
			GGUF_MAX_TENSORS);
		return -EINVAL;
	}
	g->kv = calloc(n_kv ? n_kv : 1, sizeof(*g->kv));
	g->t = calloc(n_t ? n_t : 1, sizeof(*g->t));
	if (!g->kv || !g->t)
		return -ENOMEM;
	for (size_t i = 0; i < n_kv; i++) {
		int ret = gguf_parse_kv(g, &c, i);

		g->n_kv = i + 1;
		if (ret)
			return ret;
	}
	akv = gguf_find_kv(g, "general.alignment");
	if (akv) {
		uint32_t a32;

		if (akv->type != NP_GGUF_UINT32) {
			npim_log(log, LOG_ERR,
				 "gguf: general.alignment has type %u, "
				 "expected uint32 (4); the file is corrupt",
				 akv->type);
			return -EINVAL;
		}
		memcpy(&a32, g->p + akv->off, 4);
		al = a32;
		if (al == 0 || (al & (al - 1)) || al > 65536) {
			npim_log(log, LOG_ERR,
				 "gguf: general.alignment is %llu, not a power "
				 "of two up to 65536; the file is corrupt",
				 (unsigned long long)al);
			return -EINVAL;
		}
	}
	g->alignment = al;
	/* names: at most GGUF_MAX_NAME + 1 each, bounded by the file size */
	name_bytes = g->len - c.pos + n_t;
	g->names = malloc(name_bytes + 1);
	if (!g->names)
		return -ENOMEM;
	names = g->names;
	for (size_t i = 0; i < n_t; i++) {
		int ret = gguf_parse_tensor(g, &c, i, &names);

		g->n_t = i + 1;
		if (ret)
			return ret;
	}
	g->data_off = (c.pos + al - 1) / al * al;
	if (g->meta) { /* no tensor data was read: nothing to point at */
		for (size_t i = 0; i < n_t; i++)
			g->t[i].data = NULL;
		return 0;
	}
	if (n_t && g->data_off > g->len) {
		npim_log(log, LOG_ERR,
			 "gguf: truncated file: tensor data would start at "
			 "offset %zu but the file has %zu bytes; the file is "
			 "incomplete",
			 g->data_off, g->len);
		return -EINVAL;
	}
	for (size_t i = 0; i < n_t; i++) {
		struct np_gguf_tensor *t = &g->t[i];
		uint64_t off = (uint64_t)(uintptr_t)t->data;
		uint64_t avail = g->len - g->data_off;

		if (off % al) {
			npim_log(log, LOG_ERR,
				 "gguf: tensor '%s' data offset %llu is not a "
				 "multiple of the alignment %llu; the file is "
				 "corrupt",
				 t->name, (unsigned long long)off,
				 (unsigned long long)al);
			return -EINVAL;
		}
		if (off > avail || t->size > avail - off) {
			npim_log(log, LOG_ERR,
				 "gguf: truncated file: tensor '%s' needs "
				 "bytes %llu..%llu of the data section but it "
				 "has %llu; the file is incomplete",
				 t->name, (unsigned long long)off,
				 (unsigned long long)(off + t->size),
				 (unsigned long long)avail);
			return -EINVAL;
		}
		t->data = g->p + g->data_off + off;
	}
	return gguf_check_overlap(g, log);
}

static int gguf_new(const void *buf, size_t len, void *map, int meta,
		    const struct np_log *log, struct np_gguf **out)
{
	struct np_gguf *g = calloc(1, sizeof(*g));
	int ret;

	*out = NULL;
	if (!g)
		return -ENOMEM;
	g->meta = meta;
	g->p = buf;
	g->len = len;
	g->map = map;
	if (len < 4) {
		npim_log(log, LOG_ERR,
			 "gguf: file of %zu bytes is too short for the magic; "
			 "this is not a GGUF file",
			 len);
		np_gguf_close(g);
		return -EINVAL;
	}
	ret = gguf_parse(g, log);
	if (ret) {
		np_gguf_close(g);
		return ret;
	}
	*out = g;
	return 0;
}

int np_gguf_open_mem(const void *buf, size_t len, const struct np_log *log,
		     struct np_gguf **out)
{
	if (!buf && len)
		return -EINVAL;
	return gguf_new(buf ? buf : "", len, NULL, 0, log, out);
}

/* The whole file into private anonymous memory: the reader then never
 * touches the file again, so a file truncated or rewritten under a
 * running model cannot fault the process (a mapping of the file would
 * raise SIGBUS on the next read of a page past the new end). */
static int gguf_slurp(int fd, size_t len, const char *path,
		      const struct np_log *log, void **out)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	size_t done = 0;

	if (p == MAP_FAILED) {
		int ret = -errno;

		npim_log(log, LOG_ERR, "gguf: no memory for %s (%zu bytes): %s",
			 path, len, strerror(-ret));
		return ret;
	}
	while (done < len) {
		ssize_t n =
			pread(fd, (char *)p + done, len - done, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int ret = n < 0 ? -errno : -EINVAL;

			if (n < 0)
				npim_log(log, LOG_ERR,
					 "gguf: cannot read %s at offset %zu: "
					 "%s",
					 path, done, strerror(-ret));
			else
				npim_log(log, LOG_ERR,
					 "gguf: %s shrank to %zu bytes while "
					 "being read",
					 path, done);
			munmap(p, len);
			return ret;
		}
		done += (size_t)n;
	}
	mprotect(p, len, PROT_READ);
	*out = p;
	return 0;
}

/* open path for reading: a non-empty regular file; its size in *size */
static int gguf_open_fd(const char *path, const struct np_log *log,
			size_t *size)
{
	struct stat st;
	int fd, ret;

	/* O_NONBLOCK: opening a FIFO must not wait for a writer; the
	 * regular-file check below refuses it */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		ret = -errno;
		npim_log(log, LOG_ERR, "gguf: cannot open %s: %s", path,
			 strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	if (!S_ISREG(st.st_mode)) {
		npim_log(log, LOG_ERR,
			 "gguf: %s is not a regular file (a %s); give a "
			 "GGUF file",
			 path,
			 S_ISDIR(st.st_mode)  ? "directory" :
			 S_ISFIFO(st.st_mode) ? "FIFO" :
			 S_ISCHR(st.st_mode)  ? "character device" :
			 S_ISBLK(st.st_mode)  ? "block device" :
			 S_ISSOCK(st.st_mode) ? "socket" :
						"special file");
		close(fd);
		return -EINVAL;
	}
	if (st.st_size == 0) {
		close(fd);
		npim_log(log, LOG_ERR, "gguf: %s is empty; not a GGUF file",
			 path);
		return -EINVAL;
	}
	*size = (size_t)st.st_size;
	return fd;
}

int np_gguf_open(const char *path, const struct np_log *log,
		 struct np_gguf **out)
{
	void *map = NULL;
	size_t size;
	int fd, ret;

	*out = NULL;
	fd = gguf_open_fd(path, log, &size);
	if (fd < 0)
		return fd;
	ret = gguf_slurp(fd, size, path, log, &map);
	close(fd);
	if (ret)
		return ret;
	ret = gguf_new(map, size, map, 0, log, out);
	if (ret)
		munmap(map, size);
	return ret;
}

int np_gguf_open_meta(const char *path, const struct np_log *log,
		      struct np_gguf **out)
{
	size_t size, n;
	int fd, ret;

	*out = NULL;
	fd = gguf_open_fd(path, log, &size);
	if (fd < 0)
		return fd;
	/*
	 * The header, metadata and tensor infos are at the front; their
	 * length is only known once parsed. Read 1 MiB, and 4 times more
	 * while the parse runs past the end of what was read (quietly:
	 * only the last attempt, on the whole file if need be, logs).
	 */
	for (n = size < (1u << 20) ? size : (1u << 20);; n *= 4) {
		void *map = NULL;
		int last;

		if (n > size)
			n = size;
		last = n == size;
		ret = gguf_slurp(fd, n, path, log, &map);
		if (ret)
			break;
		ret = gguf_new(map, n, map, 1, last ? log : NULL, out);
		if (ret)
			munmap(map, n);
		if (!ret || ret == -ENOMEM || last)
			break;
	}
	close(fd);
	return ret;
}

void np_gguf_close(struct np_gguf *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->n_kv; i++)
		free(g->kv[i].str_off);
	free(g->kv);
	free(g->t);
	free(g->names);
	if (g->map)
		munmap(g->map, g->len);
	free(g);
}

uint32_t np_gguf_version(const struct np_gguf *g)
{
	return g->version;
}

size_t np_gguf_n_tensors(const struct np_gguf *g)
{
	return g->n_t;
}

const struct np_gguf_tensor *np_gguf_tensor(const struct np_gguf *g, size_t i)
{
	return i < g->n_t ? &g->t[i] : NULL;
}

const struct np_gguf_tensor *np_gguf_find_tensor(const struct np_gguf *g,
						 const char *name)
{
	for (size_t i = 0; i < g->n_t; i++)
		if (!strcmp(g->t[i].name, name))
			return &g->t[i];
	return NULL;
}

static int gguf_num_at(const uint8_t *p, uint32_t type, double *d, uint64_t *u,
		       int *is_neg)
{
	union {
		uint8_t u8;
		int8_t i8;
		uint16_t u16;
		int16_t i16;
		uint32_t u32;
		int32_t i32;
		float f32;
		uint64_t u64;
		int64_t i64;
		double f64;
	} v;
	size_t sz = gguf_scalar_size(type);

	if (!sz)
		return -EINVAL;
	memcpy(&v, p, sz);
	*is_neg = 0;
	switch (type) {
	case NP_GGUF_UINT8:
	case NP_GGUF_BOOL:
		*u = v.u8;
		break;
	case NP_GGUF_INT8:
		*is_neg = v.i8 < 0;
		*u = (uint64_t)(int64_t)v.i8;
		break;
	case NP_GGUF_UINT16:
		*u = v.u16;
		break;
	case NP_GGUF_INT16:
		*is_neg = v.i16 < 0;
		*u = (uint64_t)(int64_t)v.i16;
		break;
	case NP_GGUF_UINT32:
		*u = v.u32;
		break;
	case NP_GGUF_INT32:
		*is_neg = v.i32 < 0;
		*u = (uint64_t)(int64_t)v.i32;
		break;
	case NP_GGUF_UINT64:
		*u = v.u64;
		break;
	case NP_GGUF_INT64:
		*is_neg = v.i64 < 0;
		*u = (uint64_t)v.i64;
		break;
	case NP_GGUF_FLOAT32:
		*d = v.f32;
		return 1;
	case NP_GGUF_FLOAT64:
		*d = v.f64;
		return 1;
	}
	*d = *is_neg ? (double)(int64_t)*u : (double)*u;
	return 0;
}

int np_gguf_get_u64(const struct np_gguf *g, const char *key, uint64_t *v)
{
	const struct gguf_kv *kv = gguf_find_kv(g, key);
	double d;
	int neg;

	if (!kv)
		return -ENOENT;
	if (kv->type == NP_GGUF_BOOL || gguf_scalar_size(kv->type) == 0 ||
	    gguf_num_at(g->p + kv->off, kv->type, &d, v, &neg) != 0 || neg)
		return -EINVAL;
	return 0;
}

int np_gguf_get_f32(const struct np_gguf *g, const char *key, float *v)
{
	const struct gguf_kv *kv = gguf_find_kv(g, key);
	uint64_t u;
	double d;
	int neg;

	if (!kv)
		return -ENOENT;
	if (kv->type != NP_GGUF_FLOAT32 && kv->type != NP_GGUF_FLOAT64)
		return -EINVAL;
	gguf_num_at(g->p + kv->off, kv->type, &d, &u, &neg);
	*v = (float)d;
	return 0;
}

int np_gguf_get_bool(const struct np_gguf *g, const char *key, int *v)
{
	const struct gguf_kv *kv = gguf_find_kv(g, key);

	if (!kv)
		return -ENOENT;
	if (kv->type != NP_GGUF_BOOL)
		return -EINVAL;
	*v = g->p[kv->off] != 0;
	return 0;
}

int np_gguf_get_str(const struct np_gguf *g, const char *key, const char **s,
		    size_t *len)
{
	const struct gguf_kv *kv = gguf_find_kv(g, key);
	uint64_t n;

	if (!kv)
		return -ENOENT;
	if (kv->type != NP_GGUF_STRING)
		return -EINVAL;
	memcpy(&n, g->p + kv->off, 8);
	*s = (const char *)g->p + kv->off + 8;
	*len = n;
	return 0;
}

int np_gguf_get_arr(const struct np_gguf *g, const char *key, uint32_t *type,
		    uint64_t *count)
{
	const struct gguf_kv *kv = gguf_find_kv(g, key);

	if (!kv)
		return -ENOENT;
	if (kv->type != NP_GGUF_ARRAY)
		return -EINVAL;
	*type = kv->arr_type;
	*count = kv->count;
	return 0;
}

int np_gguf_arr_str(const struct np_gguf *g, const char *key, uint64_t i,
		    const char **s, size_t *len)
{
	const struct gguf_kv *kv = gguf_find_kv(g, key);
	uint64_t n;

	if (!kv)
		return -ENOENT;
	if (kv->type != NP_GGUF_ARRAY || kv->arr_type != NP_GGUF_STRING ||
	    i >= kv->count)
		return -EINVAL;
	memcpy(&n, g->p + kv->str_off[i], 8);
	*s = (const char *)g->p + kv->str_off[i] + 8;
	*len = n;
	return 0;
}

int np_gguf_arr_num(const struct np_gguf *g, const char *key, uint64_t i,
		    double *v)
{
	const struct gguf_kv *kv = gguf_find_kv(g, key);
	size_t sz;
	uint64_t u;
	int neg;

	if (!kv)
		return -ENOENT;
	sz = kv->type == NP_GGUF_ARRAY ? gguf_scalar_size(kv->arr_type) : 0;
	if (!sz || i >= kv->count)
		return -EINVAL;
	gguf_num_at(g->p + kv->off + i * sz, kv->arr_type, v, &u, &neg);
	return 0;
}
