// SPDX-License-Identifier: MIT
/*
 * GGUF writer: metadata and tensors built in memory (tensors quantised
 * by gguf_quant.c), then serialised in one piece.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "npim.h"

struct np_gguf_writer {
	struct npim_buf kv, info, data;
	uint64_t n_kv, n_t;
};

int np_gguf_writer_create(struct np_gguf_writer **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void np_gguf_writer_destroy(struct np_gguf_writer *w)
{
	if (!w)
		return;
	free(w->kv.p);
	free(w->info.p);
	free(w->data.p);
	free(w);
}

static int wr_key(struct np_gguf_writer *w, const char *key, uint32_t type)
{
	npim_buf_str(&w->kv, key, strlen(key));
	npim_buf_u32(&w->kv, type);
	w->n_kv++;
	return w->kv.err;
}

int np_gguf_writer_kv_u32(struct np_gguf_writer *w, const char *key, uint32_t v)
{
	wr_key(w, key, NP_GGUF_UINT32);
	npim_buf_u32(&w->kv, v);
	return w->kv.err;
}

int np_gguf_writer_kv_i32(struct np_gguf_writer *w, const char *key, int32_t v)
{
	wr_key(w, key, NP_GGUF_INT32);
	npim_buf_put(&w->kv, &v, 4);
	return w->kv.err;
}

int np_gguf_writer_kv_f32(struct np_gguf_writer *w, const char *key, float v)
{
	wr_key(w, key, NP_GGUF_FLOAT32);
	npim_buf_put(&w->kv, &v, 4);
	return w->kv.err;
}

int np_gguf_writer_kv_bool(struct np_gguf_writer *w, const char *key, int v)
{
	uint8_t b = v != 0;

	wr_key(w, key, NP_GGUF_BOOL);
	npim_buf_put(&w->kv, &b, 1);
	return w->kv.err;
}

int np_gguf_writer_kv_str(struct np_gguf_writer *w, const char *key,
			  const char *v)
{
	wr_key(w, key, NP_GGUF_STRING);
	npim_buf_str(&w->kv, v, strlen(v));
	return w->kv.err;
}

int np_gguf_writer_kv_arr_str(struct np_gguf_writer *w, const char *key,
			      const char *const *v, size_t n)
{
	wr_key(w, key, NP_GGUF_ARRAY);
	npim_buf_u32(&w->kv, NP_GGUF_STRING);
	npim_buf_u64(&w->kv, n);
	for (size_t i = 0; i < n; i++)
		npim_buf_str(&w->kv, v[i], strlen(v[i]));
	return w->kv.err;
}

int np_gguf_writer_kv_arr_f32(struct np_gguf_writer *w, const char *key,
			      const float *v, size_t n)
{
	wr_key(w, key, NP_GGUF_ARRAY);
	npim_buf_u32(&w->kv, NP_GGUF_FLOAT32);
	npim_buf_u64(&w->kv, n);
	npim_buf_put(&w->kv, v, n * 4);
	return w->kv.err;
}

int np_gguf_writer_kv_arr_i32(struct np_gguf_writer *w, const char *key,
			      const int32_t *v, size_t n)
{
	wr_key(w, key, NP_GGUF_ARRAY);
	npim_buf_u32(&w->kv, NP_GGUF_INT32);
	npim_buf_u64(&w->kv, n);
	npim_buf_put(&w->kv, v, n * 4);
	return w->kv.err;
}

int np_gguf_writer_tensor(struct np_gguf_writer *w, const char *name,
			  enum np_ggml_type type, uint64_t rows, uint64_t cols,
			  int two_d, const float *data)
{
	uint32_t blck, bytes;
	int ret;

	if (!np_ggml_type_writable(type) ||
	    !npim_ggml_type_info(type, &blck, &bytes, NULL) || cols % blck)
		return -EINVAL;
	npim_buf_pad(&w->data, 32);
	npim_buf_str(&w->info, name, strlen(name));
	npim_buf_u32(&w->info, two_d ? 2 : 1);
	npim_buf_u64(&w->info, cols);
	if (two_d)
		npim_buf_u64(&w->info, rows);
	npim_buf_u32(&w->info, type);
	npim_buf_u64(&w->info, w->data.len);
	w->n_t++;
	ret = npim_ggml_quantize(type, data, rows * cols, &w->data);
	return w->info.err ? w->info.err : ret;
}

int np_gguf_writer_buf(struct np_gguf_writer *w, void **buf, size_t *len)
{
	struct npim_buf b = {0};

	npim_buf_u32(&b, NPIM_GGUF_MAGIC);
	npim_buf_u32(&b, 3);
	npim_buf_u64(&b, w->n_t);
	npim_buf_u64(&b, w->n_kv);
	npim_buf_put(&b, w->kv.p, w->kv.len);
	npim_buf_put(&b, w->info.p, w->info.len);
	npim_buf_pad(&b, 32);
	npim_buf_put(&b, w->data.p, w->data.len);
	if (b.err || w->kv.err || w->info.err || w->data.err) {
		free(b.p);
		return -ENOMEM;
	}
	*buf = b.p;
	*len = b.len;
	return 0;
}

/* Create path.tmp.PID.N exclusively, mode 0666 less the umask as fopen()
 * would; the fd, or -errno. */
static int tmp_create(const char *path, char **tmp)
{
	static atomic_uint seq;
	size_t len = strlen(path) + 48;

	for (int tries = 0; tries < 100; tries++) {
		char *name = malloc(len);
		int fd;

		if (!name)
			return -ENOMEM;
		snprintf(name, len, "%s.tmp.%ld.%u", path, (long)getpid(),
			 atomic_fetch_add(&seq, 1));
		fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (fd >= 0) {
			*tmp = name;
			return fd;
		}
		fd = -errno;
		free(name);
		if (fd != -EEXIST)
			return fd;
	}
	return -EEXIST;
}

/* Write len bytes to fd; 0 or -errno. */
static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int np_gguf_writer_save(struct np_gguf_writer *w, const char *path)
{
	char *tmp = NULL;
	void *buf;
	size_t len;
	int fd, ret = np_gguf_writer_buf(w, &buf, &len);

	if (ret)
		return ret;
	/* a temporary name in the same directory, then rename(): a process
	 * reading the old file keeps its data, and a reader never sees half
	 * a file */
	fd = tmp_create(path, &tmp);
	if (fd < 0) {
		ret = fd;
		goto out;
	}
	ret = write_all(fd, buf, len);
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	if (close(fd) < 0 && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path) < 0)
		ret = -errno;
	if (ret)
		unlink(tmp);
out:
	free(tmp);
	free(buf);
	return ret;
}
