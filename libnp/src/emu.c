// SPDX-License-Identifier: MIT
/*
 * emu backend: N emulator cores in this process, behind a software IOMMU.
 *
 * The IOMMU holds the context's IOVA mappings: host DMA buffers, and each
 * card's frame buffer and mailbox page for its peers. A card's DMA that
 * does not fall entirely inside one mapping is refused with -EFAULT, which
 * the core turns into NP_ERR_BUS_READ/WRITE, and counted as a fault. The
 * read lock is held across the copy, so a buffer cannot be unmapped (and
 * freed) under a DMA in flight.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "np_emu.h"

enum siommu_kind {
	MAP_MEMORY, /* host buffer or a peer's frame buffer */
	MAP_MAILBOX, /* a peer's mailbox page: 32-bit register writes */
};

struct siommu_map {
	uint64_t iova, len;
	enum siommu_kind kind;
	uint8_t *host; /* MAP_MEMORY */
	struct np_card *card; /* MAP_MAILBOX */
};

struct emu_ctx {
	pthread_rwlock_t lock;
	struct siommu_map *maps; /* sorted by iova, disjoint */
	size_t n, cap;
};

struct emu_card {
	struct np_ctx *ctx;
	struct np_card *card;
	struct np_emu *emu;
};

static struct emu_ctx *ectx_of(struct np_ctx *ctx)
{
	return ctx->priv;
}

static struct np_emu *emu_of(struct np_card *card)
{
	return ((struct emu_card *)card->priv)->emu;
}

/* Read lock held. The mapping containing [addr, addr + len), or NULL. */
static const struct siommu_map *siommu_find(const struct emu_ctx *e,
					    uint64_t addr, size_t len)
{
	size_t lo = 0, hi = e->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (e->maps[mid].iova <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return NULL;
	lo--;
	if (addr - e->maps[lo].iova >= e->maps[lo].len ||
	    len > e->maps[lo].len - (addr - e->maps[lo].iova))
		return NULL;
	return &e->maps[lo];
}

static int fault(struct emu_card *ec, const char *dir, uint64_t addr,
		 size_t len)
{
	__atomic_add_fetch(&ec->ctx->iommu_faults, 1, __ATOMIC_RELAXED);
	npi_log(ec->ctx, LOG_ERR,
		"np: card %s: IOMMU fault: DMA %s of %zu bytes at IOVA 0x%llx "
		"is outside every mapping",
		ec->card->name, dir, len, (unsigned long long)addr);
	return -EFAULT;
}

static int bus_dma_read(void *opaque, uint64_t addr, void *buf, size_t len)
{
	struct emu_card *ec = opaque;
	struct emu_ctx *e = ectx_of(ec->ctx);
	const struct siommu_map *m;
	int ret = 0;

	pthread_rwlock_rdlock(&e->lock);
	m = siommu_find(e, addr, len);
	if (m && m->kind == MAP_MEMORY) {
		memcpy(buf, m->host + (addr - m->iova), len);
	} else if (m && len == 4 && !(addr & 3)) {
		uint32_t v = np_emu_mmio_read(
			emu_of(m->card), NP_MBOX_OFFSET + (addr - m->iova));

		memcpy(buf, &v, 4);
	} else {
		ret = -EFAULT;
	}
	pthread_rwlock_unlock(&e->lock);
	return ret ? fault(ec, "read", addr, len) : 0;
}

static int bus_dma_write(void *opaque, uint64_t addr, const void *buf,
			 size_t len)
{
	struct emu_card *ec = opaque;
	struct emu_ctx *e = ectx_of(ec->ctx);
	const struct siommu_map *m;
	int ret = 0;

	pthread_rwlock_rdlock(&e->lock);
	m = siommu_find(e, addr, len);
	if (m && m->kind == MAP_MEMORY) {
		memcpy(m->host + (addr - m->iova), buf, len);
	} else if (m && len == 4 && !(addr & 3)) {
		uint32_t v;

		memcpy(&v, buf, 4);
		np_emu_mmio_write(emu_of(m->card),
				  NP_MBOX_OFFSET + (addr - m->iova), v);
	} else {
		ret = -EFAULT;
	}
	pthread_rwlock_unlock(&e->lock);
	return ret ? fault(ec, "write", addr, len) : 0;
}

static void bus_irq(void *opaque, unsigned int vector)
{
	struct emu_card *ec = opaque;
	uint64_t one = 1;
	int fd;

	if (vector >= NP_NUM_IRQS)
		return;
	/* Coalesce: while the fd is still readable another write (a system
	 * call per descriptor) wakes nobody. */
	if (__atomic_exchange_n(&ec->card->irq_pending[vector], 1,
				__ATOMIC_SEQ_CST))
		return;
	fd = ec->card->irq_fd[vector];
	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0)
		return; /* counter saturated: the reader is woken anyway */
}

static void bus_log(void *opaque, int level, const char *msg)
{
	struct emu_card *ec = opaque;

	npi_log(ec->ctx, level, "np: card %s: %s", ec->card->name, msg);
}

static int siommu_insert(struct emu_ctx *e, const struct siommu_map *m)
{
	size_t i;

	pthread_rwlock_wrlock(&e->lock);
	if (e->n == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 64;
		struct siommu_map *n = realloc(e->maps, cap * sizeof(*n));

		if (!n) {
			pthread_rwlock_unlock(&e->lock);
			return -ENOMEM;
		}
		e->maps = n;
		e->cap = cap;
	}
	for (i = e->n; i > 0 && e->maps[i - 1].iova > m->iova; i--)
		e->maps[i] = e->maps[i - 1];
	e->maps[i] = *m;
	e->n++;
	pthread_rwlock_unlock(&e->lock);
	return 0;
}

static void siommu_remove(struct emu_ctx *e, uint64_t iova)
{
	size_t i;

	pthread_rwlock_wrlock(&e->lock);
	for (i = 0; i < e->n; i++) {
		if (e->maps[i].iova == iova) {
			memmove(&e->maps[i], &e->maps[i + 1],
				(e->n - i - 1) * sizeof(e->maps[0]));
			e->n--;
			break;
		}
	}
	pthread_rwlock_unlock(&e->lock);
}

static int emu_open(struct np_ctx *ctx, const struct np_spec *spec)
{
	const struct np_emu_bus bus = {
		.dma_read = bus_dma_read,
		.dma_write = bus_dma_write,
		.irq = bus_irq,
		.log = bus_log,
	};
	struct np_emu_config cfg = {
		.sram_size = ctx->emu.sram_size,
		.fb_size = ctx->emu.fb_size,
		.dma_engines = ctx->emu.dma_engines,
	};
	unsigned int n = spec->count, i;
	struct emu_ctx *e;
	int ret;

	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	pthread_rwlock_init(&e->lock, NULL);
	ctx->priv = e;
	for (i = 0; i < n; i++) {
		struct np_emu_bus b = bus;
		struct emu_card *ec;
		struct np_card *card;
		char name[32];

		ec = calloc(1, sizeof(*ec));
		if (!ec)
			return -ENOMEM;
		snprintf(name, sizeof(name), "emu:%u", i);
		ret = npi_card_add(ctx, name, ec, &card);
		if (ret) {
			free(ec);
			return ret;
		}
		ec->ctx = ctx;
		ec->card = card;
		b.opaque = ec;
		cfg.card_index = i;
		cfg.serial = 0x4e50454d00000000ull | i; /* "NPEM" */
		ret = np_emu_create(&cfg, &b, &ec->emu);
		if (ret) {
			npi_log(ctx, LOG_ERR,
				"np: card %s: emulator creation failed: %s",
				name, strerror(-ret));
			return ret;
		}
		card->info.vendor_id = NP_PCI_VENDOR_ID;
		card->info.device_id = NP_PCI_DEVICE_ID;
		card->info.subsys_vendor_id = NP_PCI_SUBSYS_VENDOR_ID;
		card->info.subsys_id = NP_PCI_SUBSYS_ID;
		card->info.revision = NP_PCI_REVISION;
	}
	return 0;
}

static void emu_close(struct np_ctx *ctx)
{
	struct emu_ctx *e = ectx_of(ctx);
	unsigned int i;

	for (i = 0; i < ctx->num_cards; i++) {
		struct emu_card *ec = ctx->cards[i]->priv;

		if (ec)
			np_emu_destroy(ec->emu);
		free(ec);
		ctx->cards[i]->priv = NULL;
	}
	if (!e)
		return;
	pthread_rwlock_destroy(&e->lock);
	free(e->maps);
	free(e);
	ctx->priv = NULL;
}

/* Start timing access kind k if it is the sampled one (internal.h). */
static uint64_t acct_start(int k)
{
	if (npi_reg_acct.n[k]++ % NPI_REG_SAMPLE)
		return 0;
	npi_thread_cpu_cost();
	return npi_thread_cpu_ns();
}

static void acct_end(int k, uint64_t t0)
{
	uint64_t dt, c;

	if (!t0)
		return;
	dt = npi_thread_cpu_ns() - t0;
	c = npi_thread_cpu_cost();
	npi_reg_acct.timed[k]++;
	npi_reg_acct.ns[k] += dt > c ? dt - c : 0;
}

static uint32_t emu_reg_read(struct np_card *card, uint32_t off)
{
	uint64_t t0 = acct_start(0);
	uint32_t v = np_emu_mmio_read(emu_of(card), off);

	acct_end(0, t0);
	return v;
}

static void emu_reg_write(struct np_card *card, uint32_t off, uint32_t value)
{
	uint64_t t0 = acct_start(1);

	np_emu_mmio_write(emu_of(card), off, value);
	acct_end(1, t0);
}

static int emu_dma_map(struct np_ctx *ctx, void *vaddr, uint64_t iova,
		       size_t len)
{
	const struct siommu_map m = {
		.iova = iova, .len = len, .kind = MAP_MEMORY, .host = vaddr};

	return siommu_insert(ectx_of(ctx), &m);
}

static void emu_dma_unmap(struct np_ctx *ctx, uint64_t iova, size_t len)
{
	siommu_remove(ectx_of(ctx), iova);
}

static int emu_peer_map(struct np_card *card, uint64_t fb_iova,
			uint64_t mbox_iova)
{
	struct emu_ctx *e = ectx_of(card->ctx);
	struct siommu_map m = {.iova = fb_iova, .kind = MAP_MEMORY};
	int ret;

	m.host = np_emu_fb(emu_of(card), &m.len);
	ret = siommu_insert(e, &m);
	if (ret)
		return ret;
	m = (struct siommu_map){
		.iova = mbox_iova,
		.len = NP_MBOX_SIZE,
		.kind = MAP_MAILBOX,
		.card = card,
	};
	ret = siommu_insert(e, &m);
	if (ret)
		siommu_remove(e, fb_iova);
	return ret;
}

static void emu_peer_unmap(struct np_card *card, uint64_t fb_iova,
			   uint64_t mbox_iova)
{
	siommu_remove(ectx_of(card->ctx), mbox_iova);
	siommu_remove(ectx_of(card->ctx), fb_iova);
}

static int emu_irq_enable(struct np_card *card)
{
	return 0; /* bus_irq reads card->irq_fd directly */
}

static int emu_reset(struct np_card *card)
{
	np_emu_reset(emu_of(card));
	return 0;
}

static int emu_inject(struct np_card *card, const char *fault)
{
	struct np_emu_fault_args args;
	enum np_emu_fault kind;

	if (!strcmp(fault, "remove")) {
		/* Surprise removal: the card stops answering, as after
		 * "dead", but for good; what it had in flight fails. A card
		 * that is gone does no more DMA either: its queues stop
		 * first (a dead card's keep running), so no forward it had
		 * queued lands in a peer after the peer's reset. */
		int ret;

		np_emu_reset(emu_of(card));
		ret = np_emu_inject(emu_of(card), NP_EMU_FAULT_DEAD);
		if (!ret)
			npi_card_set_removed(card);
		return ret;
	}
	if (np_emu_fault_parse(fault, &kind, &args))
		return -EINVAL;
	return np_emu_inject_args(emu_of(card), kind, &args);
}

const struct npi_backend npi_backend_emu = {
	.name = "emu",
	.open = emu_open,
	.close = emu_close,
	.reg_read = emu_reg_read,
	.reg_write = emu_reg_write,
	.dma_map = emu_dma_map,
	.dma_unmap = emu_dma_unmap,
	.peer_map = emu_peer_map,
	.peer_unmap = emu_peer_unmap,
	.irq_enable = emu_irq_enable,
	.reset = emu_reset,
	.inject = emu_inject,
	.pins_memory = 0,
};
