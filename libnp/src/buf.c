// SPDX-License-Identifier: MIT
/*
 * DMA buffers and the context's IOVA allocator. One IOVA space serves every
 * card of a context, so a buffer is mapped once and any card can reach it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "internal.h"

/* First fit in [NPI_IOVA_BASE, NPI_IOVA_LIMIT); ctx->lock held. */
static int iova_alloc_locked(struct np_ctx *ctx, uint64_t len, uint64_t align,
			     uint64_t *iova)
{
	struct npi_iova_range **pp = &ctx->iova_used, *r;
	uint64_t start = NPI_IOVA_BASE;

	for (;;) {
		start = (start + align - 1) & ~(align - 1);
		if (start + len > NPI_IOVA_LIMIT || start + len < start)
			return -ENOMEM;
		if (!*pp || start + len <= (*pp)->start)
			break;
		start = (*pp)->start + (*pp)->len;
		pp = &(*pp)->next;
	}
	r = malloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->start = start;
	r->len = len;
	r->next = *pp;
	*pp = r;
	*iova = start;
	return 0;
}

int npi_iova_alloc(struct np_ctx *ctx, uint64_t len, uint64_t align,
		   uint64_t *iova)
{
	int ret;

	if (align < 4096)
		align = 4096;
	pthread_mutex_lock(&ctx->lock);
	ret = iova_alloc_locked(ctx, len, align, iova);
	pthread_mutex_unlock(&ctx->lock);
	if (ret)
		npi_log(ctx, LOG_ERR,
			"np: IOVA space [0x%llx, 0x%llx) exhausted for %llu "
			"bytes: free DMA buffers first",
			NPI_IOVA_BASE, NPI_IOVA_LIMIT, (unsigned long long)len);
	return ret;
}

void npi_iova_free(struct np_ctx *ctx, uint64_t iova)
{
	struct npi_iova_range **pp, *r;

	pthread_mutex_lock(&ctx->lock);
	for (pp = &ctx->iova_used; (r = *pp); pp = &r->next) {
		if (r->start == iova) {
			*pp = r->next;
			free(r);
			break;
		}
	}
	pthread_mutex_unlock(&ctx->lock);
}

static void *map_memory(size_t size, size_t *map_size)
{
	const int prot = PROT_READ | PROT_WRITE;
	const int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE;
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	void *p;

	if (size % NPI_HUGE_PAGE == 0) {
		p = mmap(NULL, size, prot, flags | MAP_HUGETLB, -1, 0);
		if (p != MAP_FAILED) {
			*map_size = size;
			return p;
		}
	}
	*map_size = (size + pg - 1) & ~(pg - 1);
	p = mmap(NULL, *map_size, prot, flags, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void memlock_hint(struct np_ctx *ctx, size_t size, int err)
{
	struct rlimit rl;

	getrlimit(RLIMIT_MEMLOCK, &rl);
	npi_log(ctx, LOG_ERR,
		"np: cannot pin %zu bytes of DMA memory (%s); RLIMIT_MEMLOCK "
		"is %llu KiB: raise it with `ulimit -l unlimited` (or a "
		"memlock line in /etc/security/limits.conf)",
		size, strerror(err),
		rl.rlim_cur == RLIM_INFINITY ?
			0ull :
			(unsigned long long)rl.rlim_cur / 1024);
}

int np_buf_alloc(struct np_ctx *ctx, size_t size, struct np_buf **out)
{
	struct np_buf *buf;
	uint64_t align;
	int ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!ctx || !size)
		return -EINVAL;
	buf = calloc(1, sizeof(*buf));
	if (!buf)
		return -ENOMEM;
	buf->ctx = ctx;
	buf->ptr = map_memory(size, &buf->map_size);
	if (!buf->ptr) {
		free(buf);
		return -ENOMEM;
	}
	buf->size = buf->map_size;
	if (!ctx->ops->pins_memory) {
		/* The emulator reads host memory directly: pinning only
		 * keeps its latency honest, so a low limit is not fatal. */
		if (mlock(buf->ptr, buf->map_size) && !ctx->mlock_warned) {
			ctx->mlock_warned = true;
			npi_log(ctx, LOG_NOTICE,
				"np: DMA buffers are not locked (%s); raise "
				"RLIMIT_MEMLOCK with `ulimit -l unlimited`",
				strerror(errno));
		}
	}
	align = buf->map_size >= NPI_HUGE_PAGE ? NPI_HUGE_PAGE : 4096;
	ret = npi_iova_alloc(ctx, buf->map_size, align, &buf->iova);
	if (ret)
		goto err_unmap;
	ret = ctx->ops->dma_map(ctx, buf->ptr, buf->iova, buf->map_size);
	if (ret) {
		if (ret == -ENOMEM)
			memlock_hint(ctx, buf->map_size, -ret);
		npi_iova_free(ctx, buf->iova);
		goto err_unmap;
	}
	pthread_mutex_lock(&ctx->lock);
	buf->next = ctx->bufs;
	if (ctx->bufs)
		ctx->bufs->prev = buf;
	ctx->bufs = buf;
	pthread_mutex_unlock(&ctx->lock);
	*out = buf;
	return 0;

err_unmap:
	munmap(buf->ptr, buf->map_size);
	free(buf);
	return ret;
}

void np_buf_free(struct np_buf *buf)
{
	struct np_ctx *ctx;

	if (!buf)
		return;
	ctx = buf->ctx;
	pthread_mutex_lock(&ctx->lock);
	if (buf->prev)
		buf->prev->next = buf->next;
	else
		ctx->bufs = buf->next;
	if (buf->next)
		buf->next->prev = buf->prev;
	pthread_mutex_unlock(&ctx->lock);
	ctx->ops->dma_unmap(ctx, buf->iova, buf->map_size);
	npi_iova_free(ctx, buf->iova);
	munmap(buf->ptr, buf->map_size);
	free(buf);
}

void *np_buf_ptr(const struct np_buf *buf)
{
	return buf->ptr;
}

size_t np_buf_size(const struct np_buf *buf)
{
	return buf->size;
}

uint64_t np_buf_iova(const struct np_buf *buf)
{
	return buf->iova;
}
