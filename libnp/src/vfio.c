// SPDX-License-Identifier: MIT
/*
 * vfio backend: np cards bound to vfio-pci or np_vfio_pci, driven from
 * userspace through the VFIO group/container API.
 *
 * All cards share one type1v2 container, hence one IOVA space: a DMA buffer
 * is mapped once, and each card's BAR2 (frame buffer) and the mailbox page
 * of its BAR0 are mapped into the same space so that peers reach them by
 * plain DMA. The kernel resolves the PFNs of a BAR mmap passed to
 * VFIO_IOMMU_MAP_DMA; where it refuses, the generic layer falls back to
 * host bounce buffers for that card.
 *
 * iommufd and the VFIO device cdev (Linux 6.6+) are detected and reported,
 * not used: the legacy container works on every kernel that has either,
 * including the 6.1 kernel of the guest run, which has no iommufd.
 *
 * Which cards, bound to what, in which IOMMU group: vfio_pci.c.
 *
 * A card the kernel asks back through the device request eventfd
 * (hot-unplug, unbind) is released at the next check (npi_card_gone):
 * its BAR mappings become memory that reads all-ones and its device fd is
 * closed, so that the removal completes while the context lives on.
 */
#define _GNU_SOURCE /* mremap */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/pci_regs.h>
#include <linux/vfio.h>

#include "internal.h"
#include "vfio_pci.h"

struct vfio_group {
	int num;
	int fd;
};

struct vfio_ctx {
	int container;
	unsigned int num_groups;
	struct vfio_group groups[NP_MAX_CARDS];
};

struct vfio_card {
	int fd; /* device */
	volatile uint8_t *bar0;
	size_t bar0_size;
	void *bar2;
	size_t bar2_size;
	uint64_t cfg_off; /* config space region offset in the device fd */
	bool can_reset;
	unsigned int msix_count;
	int req_fd; /* the kernel asks for the device back; -1: no channel */
};

static struct vfio_ctx *vctx(struct np_ctx *ctx)
{
	return ctx->priv;
}

static struct vfio_card *vcard(struct np_card *card)
{
	return card->priv;
}

static int cmp_bdf(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* ---------------------------------------------------------------- */
/* Groups and the container                                           */

static int group_open(struct np_ctx *ctx, const char *bdf, int num, int *fd)
{
	struct vfio_ctx *v = vctx(ctx);
	struct vfio_group_status st = {.argsz = sizeof(st)};
	struct vfio_group *g;
	char path[64];
	unsigned int i;
	int ret;

	for (i = 0; i < v->num_groups; i++) {
		if (v->groups[i].num == num) {
			*fd = v->groups[i].fd;
			return 0;
		}
	}
	ret = npi_vfio_group_viable(ctx, bdf, num);
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "/dev/vfio/%d", num);
	g = &v->groups[v->num_groups];
	g->num = num;
	g->fd = open(path, O_RDWR | O_CLOEXEC);
	if (g->fd < 0) {
		ret = -errno;
		npi_log(ctx, LOG_ERR, "np: card %s: cannot open %s: %s; %s",
			bdf, path, strerror(-ret),
			ret == -EBUSY ? "another process holds the group" :
			ret == -EACCES || ret == -EPERM ?
					"run as root or give the user the "
					"device node (chown)" :
					"is the card bound to vfio-pci?");
		return ret;
	}
	v->num_groups++;
	if (ioctl(g->fd, VFIO_GROUP_GET_STATUS, &st))
		return -errno;
	if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		npi_log(ctx, LOG_ERR,
			"np: card %s: IOMMU group %d is not viable: bind "
			"every device in /sys/kernel/iommu_groups/%d/devices "
			"to vfio-pci or np_vfio_pci",
			bdf, num, num);
		return -EBUSY;
	}
	if (ioctl(g->fd, VFIO_GROUP_SET_CONTAINER, &v->container)) {
		ret = -errno;
		npi_log(ctx, LOG_ERR,
			"np: card %s: cannot add IOMMU group %d to the "
			"container: %s",
			bdf, num, strerror(-ret));
		return ret;
	}
	/* The IOMMU model is chosen once the first group is attached. */
	if (v->num_groups == 1 &&
	    ioctl(v->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)) {
		ret = -errno;
		npi_log(ctx, LOG_ERR,
			"np: cannot select the VFIO type1v2 IOMMU: %s "
			"(modprobe vfio_iommu_type1)",
			strerror(-ret));
		return ret;
	}
	*fd = g->fd;
	return 0;
}

static int container_open(struct np_ctx *ctx)
{
	struct vfio_ctx *v = vctx(ctx);
	int ret;

	v->container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (v->container < 0) {
		ret = -errno;
		npi_log(ctx, LOG_ERR,
			"np: cannot open /dev/vfio/vfio: %s; load VFIO with "
			"`modprobe vfio-pci` (and boot with intel_iommu=on "
			"or amd_iommu=on)",
			strerror(-ret));
		return ret == -ENOENT ? -ENOENT : ret;
	}
	if (ioctl(v->container, VFIO_GET_API_VERSION) != VFIO_API_VERSION) {
		npi_log(ctx, LOG_ERR, "np: unknown VFIO API version");
		return -EPROTO;
	}
	if (ioctl(v->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <=
	    0) {
		npi_log(ctx, LOG_ERR,
			"np: the kernel offers no VFIO type1v2 IOMMU: "
			"`modprobe vfio_iommu_type1`");
		return -ENOTSUP;
	}
	return 0;
}

static void memlock_check(struct np_ctx *ctx)
{
	const rlim_t want = 64ull << 20;
	struct rlimit rl;

	if (getrlimit(RLIMIT_MEMLOCK, &rl) || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= want || geteuid() == 0)
		return;
	npi_log(ctx, LOG_WARNING,
		"np: RLIMIT_MEMLOCK is %llu KiB: VFIO pins every DMA buffer "
		"against it, so allocations beyond it fail; raise it with "
		"`ulimit -l unlimited` or a memlock line in "
		"/etc/security/limits.conf",
		(unsigned long long)rl.rlim_cur / 1024);
}

/* ---------------------------------------------------------------- */
/* Devices                                                            */

static int region_info(int fd, unsigned int index, struct vfio_region_info *ri)
{
	memset(ri, 0, sizeof(*ri));
	ri->argsz = sizeof(*ri);
	ri->index = index;
	return ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, ri) ? -errno : 0;
}

static int map_bar(struct np_card *card, unsigned int bar, size_t min,
		   void **ptr, size_t *size)
{
	struct vfio_card *vc = vcard(card);
	struct vfio_region_info ri;
	int ret;

	ret = region_info(vc->fd, VFIO_PCI_BAR0_REGION_INDEX + bar, &ri);
	if (ret)
		return ret;
	if (ri.size < min || !(ri.flags & VFIO_REGION_INFO_FLAG_MMAP)) {
		npi_log(card->ctx, LOG_ERR,
			"np: card %s: BAR%u is %llu bytes%s; an np card needs "
			"at least %zu bytes, mmappable",
			card->name, bar, (unsigned long long)ri.size,
			ri.flags & VFIO_REGION_INFO_FLAG_MMAP ?
				"" :
				" and not mmappable",
			min);
		return -EPROTO;
	}
	*ptr = mmap(NULL, ri.size, PROT_READ | PROT_WRITE, MAP_SHARED, vc->fd,
		    (off_t)ri.offset);
	if (*ptr == MAP_FAILED) {
		ret = -errno;
		*ptr = NULL;
		npi_log(card->ctx, LOG_ERR, "np: card %s: mmap of BAR%u: %s",
			card->name, bar, strerror(-ret));
		return ret;
	}
	*size = ri.size;
	return 0;
}

static int cfg_read16(struct vfio_card *vc, unsigned int off, uint16_t *v)
{
	return pread(vc->fd, v, 2, (off_t)(vc->cfg_off + off)) == 2 ? 0 : -EIO;
}

/* DMA from the card goes nowhere until Bus Master Enable is set. */
static int enable_bus_master(struct np_card *card)
{
	struct vfio_card *vc = vcard(card);
	uint16_t cmd;

	if (cfg_read16(vc, PCI_COMMAND, &cmd))
		return -EIO;
	cmd |= PCI_COMMAND_MASTER | PCI_COMMAND_MEMORY;
	if (pwrite(vc->fd, &cmd, 2, (off_t)(vc->cfg_off + PCI_COMMAND)) != 2) {
		npi_log(card->ctx, LOG_ERR,
			"np: card %s: cannot set Bus Master Enable",
			card->name);
		return -EIO;
	}
	return 0;
}

/*
 * The device request channel: when the device is to go away (hot-unplug,
 * unbind), the kernel signals this eventfd and waits for the device fd to
 * be closed; npi_card_gone() answers it. A kernel without one blocks the
 * removal until the context is closed.
 */
static void req_enable(struct np_card *card)
{
	struct vfio_card *vc = vcard(card);
	struct vfio_irq_info ii = {.argsz = sizeof(ii),
				   .index = VFIO_PCI_REQ_IRQ_INDEX};
	char buf[sizeof(struct vfio_irq_set) + sizeof(int32_t)];
	struct vfio_irq_set *set = (struct vfio_irq_set *)buf;
	int32_t fd;

	if (ioctl(vc->fd, VFIO_DEVICE_GET_IRQ_INFO, &ii) || !ii.count)
		return;
	fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (fd < 0)
		return;
	set->argsz = sizeof(buf);
	set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	set->index = VFIO_PCI_REQ_IRQ_INDEX;
	set->start = 0;
	set->count = 1;
	memcpy(set->data, &fd, sizeof(fd));
	if (ioctl(vc->fd, VFIO_DEVICE_SET_IRQS, set)) {
		npi_log(card->ctx, LOG_WARNING,
			"np: card %s: no device request channel (%s); a "
			"hot-unplug waits until the cards are closed",
			card->name, strerror(errno));
		close(fd);
		return;
	}
	vc->req_fd = fd;
}

/* Replace the mapping at bar with memory that reads all-ones, in one
 * step: a thread reading a register meanwhile never faults. */
static void bar_release(volatile uint8_t *bar, size_t size)
{
	void *ones = mmap(NULL, size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (ones == MAP_FAILED) {
		munmap((void *)bar, size);
		return;
	}
	memset(ones, 0xff, size);
	if (mremap(ones, size, size, MREMAP_MAYMOVE | MREMAP_FIXED,
		   (void *)bar) == MAP_FAILED) {
		munmap(ones, size);
		munmap((void *)bar, size);
	}
}

static int vfio_remove_requested(struct np_card *card)
{
	struct vfio_card *vc = vcard(card);
	uint64_t n;

	return vc->req_fd >= 0 && read(vc->req_fd, &n, sizeof(n)) == sizeof(n);
}

/* The kernel completes the removal once the device fd is closed. */
static void vfio_release(struct np_card *card)
{
	struct vfio_card *vc = vcard(card);

	bar_release(vc->bar0, vc->bar0_size);
	if (vc->bar2)
		bar_release(vc->bar2, vc->bar2_size);
	close(vc->fd);
	vc->fd = -1;
	close(vc->req_fd);
	vc->req_fd = -1;
}

static int device_open(struct np_card *card, int group_fd)
{
	struct vfio_card *vc = vcard(card);
	struct vfio_device_info di = {.argsz = sizeof(di)};
	struct vfio_irq_info ii = {.argsz = sizeof(ii)};
	struct np_card_info *in = &card->info;
	struct vfio_region_info ri;
	uint16_t v16;
	void *bar0;
	int ret;

	vc->fd = ioctl(group_fd, VFIO_GROUP_GET_DEVICE_FD, card->name);
	if (vc->fd < 0) {
		ret = -errno;
		npi_log(card->ctx, LOG_ERR,
			"np: card %s: VFIO_GROUP_GET_DEVICE_FD: %s%s",
			card->name, strerror(-ret),
			ret == -EBUSY ? " (in use by another process)" : "");
		return ret;
	}
	if (ioctl(vc->fd, VFIO_DEVICE_GET_INFO, &di))
		return -errno;
	if (!(di.flags & VFIO_DEVICE_FLAGS_PCI) ||
	    di.num_regions <= VFIO_PCI_CONFIG_REGION_INDEX ||
	    di.num_irqs <= VFIO_PCI_MSIX_IRQ_INDEX) {
		npi_log(card->ctx, LOG_ERR,
			"np: card %s: VFIO reports no PCI device (flags 0x%x)",
			card->name, di.flags);
		return -EPROTO;
	}
	vc->can_reset = di.flags & VFIO_DEVICE_FLAGS_RESET;
	ret = region_info(vc->fd, VFIO_PCI_CONFIG_REGION_INDEX, &ri);
	if (ret)
		return ret;
	vc->cfg_off = ri.offset;
	if (cfg_read16(vc, PCI_VENDOR_ID, &in->vendor_id) ||
	    cfg_read16(vc, PCI_DEVICE_ID, &in->device_id) ||
	    cfg_read16(vc, PCI_SUBSYSTEM_VENDOR_ID, &in->subsys_vendor_id) ||
	    cfg_read16(vc, PCI_SUBSYSTEM_ID, &in->subsys_id) ||
	    cfg_read16(vc, PCI_REVISION_ID, &v16))
		return -EIO;
	in->revision = (uint8_t)v16;
	if (in->vendor_id != NP_PCI_VENDOR_ID ||
	    in->device_id != NP_PCI_DEVICE_ID) {
		npi_log(card->ctx, LOG_ERR,
			"np: %s is %04x:%04x, not an np card (%04x:%04x)",
			card->name, in->vendor_id, in->device_id,
			NP_PCI_VENDOR_ID, NP_PCI_DEVICE_ID);
		return -ENODEV;
	}
	ii.index = VFIO_PCI_MSIX_IRQ_INDEX;
	if (ioctl(vc->fd, VFIO_DEVICE_GET_IRQ_INFO, &ii))
		return -errno;
	vc->msix_count = ii.count;
	ret = map_bar(card, NP_BAR_REGS, NP_REGS_SIZE, &bar0, &vc->bar0_size);
	if (ret)
		return ret;
	vc->bar0 = bar0;
	ret = map_bar(card, NP_BAR_FB, 64 * 1024, &vc->bar2, &vc->bar2_size);
	if (ret)
		return ret;
	req_enable(card);
	return enable_bus_master(card);
}

static int vfio_open(struct np_ctx *ctx, const struct np_spec *spec)
{
	char(*bdf)[BDF_LEN];
	struct vfio_ctx *v;
	struct stat sb;
	unsigned int n, i;
	int ret;

	v = calloc(1, sizeof(*v));
	bdf = calloc(NP_MAX_CARDS, BDF_LEN);
	if (!v || !bdf) {
		free(v);
		free(bdf);
		return -ENOMEM;
	}
	v->container = -1;
	ctx->priv = v;
	if (spec->kind == NP_SPEC_VFIO_ALL) {
		ret = npi_vfio_find_cards(ctx, bdf, &n);
		if (!ret && !n) {
			npi_log(ctx, LOG_ERR,
				"np: no np card (%04x:%04x) on the PCI bus; "
				"set NP_DEVICES=emu:16 to use emulated cards",
				NP_PCI_VENDOR_ID, NP_PCI_DEVICE_ID);
			ret = -ENODEV;
		}
		/* Bus order: card indices stay stable across runs. */
		if (!ret)
			qsort(bdf, n, BDF_LEN, cmp_bdf);
	} else {
		for (n = 0; n < spec->count; n++)
			memcpy(bdf[n], spec->bdf[n], NP_SPEC_BDF_LEN);
		ret = 0;
	}
	if (ret)
		goto out;
	if (stat("/dev/vfio", &sb)) {
		npi_log(ctx, LOG_ERR,
			"np: /dev/vfio does not exist: `modprobe vfio-pci` "
			"and bind the cards to np_vfio_pci or vfio-pci");
		ret = -ENOENT;
		goto out;
	}
	if (!stat("/dev/iommu", &sb))
		npi_log(ctx, LOG_DEBUG,
			"np: the kernel offers iommufd; libnp uses the VFIO "
			"type1v2 container, which iommufd kernels still "
			"provide");
	memlock_check(ctx);
	ret = container_open(ctx);
	for (i = 0; !ret && i < n; i++) {
		struct np_card *card;
		struct vfio_card *vc;
		int group = -1, gfd = -1;

		ret = npi_vfio_check_binding(ctx, bdf[i], &group);
		if (!ret)
			ret = group_open(ctx, bdf[i], group, &gfd);
		if (ret)
			break;
		vc = calloc(1, sizeof(*vc));
		if (!vc) {
			ret = -ENOMEM;
			break;
		}
		vc->fd = -1;
		vc->req_fd = -1;
		ret = npi_card_add(ctx, bdf[i], vc, &card);
		if (ret) {
			free(vc);
			break;
		}
		card->info.iommu_group = group;
		ret = device_open(card, gfd);
	}
out:
	free(bdf);
	return ret;
}

static void vfio_close(struct np_ctx *ctx)
{
	struct vfio_ctx *v = vctx(ctx);
	unsigned int i;

	for (i = 0; i < ctx->num_cards; i++) {
		struct vfio_card *vc = ctx->cards[i]->priv;
		struct vfio_irq_set off = {
			.argsz = sizeof(off),
			.flags = VFIO_IRQ_SET_DATA_NONE |
				 VFIO_IRQ_SET_ACTION_TRIGGER,
			.index = VFIO_PCI_MSIX_IRQ_INDEX,
		};

		if (!vc)
			continue;
		if (vc->fd >= 0)
			ioctl(vc->fd, VFIO_DEVICE_SET_IRQS, &off);
		if (vc->bar0)
			munmap((void *)vc->bar0, vc->bar0_size);
		if (vc->bar2)
			munmap(vc->bar2, vc->bar2_size);
		if (vc->fd >= 0)
			close(vc->fd);
		if (vc->req_fd >= 0)
			close(vc->req_fd);
		free(vc);
		ctx->cards[i]->priv = NULL;
	}
	if (!v)
		return;
	for (i = 0; i < v->num_groups; i++)
		close(v->groups[i].fd);
	if (v->container >= 0)
		close(v->container);
	free(v);
	ctx->priv = NULL;
}

static uint32_t vfio_reg_read(struct np_card *card, uint32_t off)
{
	npi_reg_acct.n[0]++;
	if (np_card_removed(card))
		return 0xffffffffu; /* as the bus answers for a missing card */
	return *(volatile uint32_t *)(vcard(card)->bar0 + off);
}

static void vfio_reg_write(struct np_card *card, uint32_t off, uint32_t value)
{
	npi_reg_acct.n[1]++;
	if (np_card_removed(card))
		return;
	*(volatile uint32_t *)(vcard(card)->bar0 + off) = value;
}

static int vfio_dma_map(struct np_ctx *ctx, void *vaddr, uint64_t iova,
			size_t len)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uintptr_t)vaddr,
		.iova = iova,
		.size = len,
	};

	return ioctl(vctx(ctx)->container, VFIO_IOMMU_MAP_DMA, &m) ? -errno : 0;
}

static void vfio_dma_unmap(struct np_ctx *ctx, uint64_t iova, size_t len)
{
	struct vfio_iommu_type1_dma_unmap u = {
		.argsz = sizeof(u),
		.iova = iova,
		.size = len,
	};

	if (ioctl(vctx(ctx)->container, VFIO_IOMMU_UNMAP_DMA, &u))
		npi_log(ctx, LOG_WARNING,
			"np: VFIO_IOMMU_UNMAP_DMA of IOVA 0x%llx: %s",
			(unsigned long long)iova, strerror(errno));
}

static int vfio_peer_map(struct np_card *card, uint64_t fb_iova,
			 uint64_t mbox_iova)
{
	struct vfio_card *vc = vcard(card);
	size_t fb = card->info.fb_size;
	int ret;

	if (fb > vc->bar2_size)
		return -ERANGE;
	ret = vfio_dma_map(card->ctx, vc->bar2, fb_iova, fb);
	if (ret)
		return ret;
	ret = vfio_dma_map(card->ctx, (void *)(vc->bar0 + NP_MBOX_OFFSET),
			   mbox_iova, NP_MBOX_SIZE);
	if (ret)
		vfio_dma_unmap(card->ctx, fb_iova, fb);
	return ret;
}

static void vfio_peer_unmap(struct np_card *card, uint64_t fb_iova,
			    uint64_t mbox_iova)
{
	vfio_dma_unmap(card->ctx, mbox_iova, NP_MBOX_SIZE);
	vfio_dma_unmap(card->ctx, fb_iova, card->info.fb_size);
}

static int vfio_irq_enable(struct np_card *card)
{
	struct vfio_card *vc = vcard(card);
	unsigned int n = card->num_engines, i;
	struct vfio_irq_set *set;
	size_t sz = sizeof(*set) + n * sizeof(int32_t);
	int32_t *fds;
	int ret = 0;

	if (vc->msix_count < n) {
		npi_log(card->ctx, LOG_ERR,
			"np: card %s: %u MSI-X vectors, %u DMA engines need "
			"one each",
			card->name, vc->msix_count, n);
		return -EPROTO;
	}
	set = calloc(1, sz);
	if (!set)
		return -ENOMEM;
	set->argsz = (uint32_t)sz;
	set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	set->index = VFIO_PCI_MSIX_IRQ_INDEX;
	set->start = 0;
	set->count = n;
	fds = (int32_t *)set->data;
	for (i = 0; i < n; i++)
		fds[i] = card->irq_fd[NP_IRQ_DMA(i)];
	if (ioctl(vc->fd, VFIO_DEVICE_SET_IRQS, set)) {
		ret = -errno;
		npi_log(card->ctx, LOG_ERR,
			"np: card %s: VFIO_DEVICE_SET_IRQS (MSI-X, %u "
			"vectors): %s",
			card->name, n, strerror(-ret));
	}
	free(set);
	return ret;
}

static int vfio_reset(struct np_card *card)
{
	struct vfio_card *vc = vcard(card);
	int ret;

	if (vc->can_reset) {
		if (ioctl(vc->fd, VFIO_DEVICE_RESET))
			return -errno;
	} else {
		vfio_reg_write(card, NP_REG_CONTROL, NP_CONTROL_RESET);
	}
	/* A function reset clears the command register and MSI-X. */
	ret = enable_bus_master(card);
	if (!ret)
		ret = vfio_irq_enable(card);
	return ret;
}

const struct npi_backend npi_backend_vfio = {
	.name = "vfio",
	.open = vfio_open,
	.close = vfio_close,
	.reg_read = vfio_reg_read,
	.reg_write = vfio_reg_write,
	.dma_map = vfio_dma_map,
	.dma_unmap = vfio_dma_unmap,
	.peer_map = vfio_peer_map,
	.peer_unmap = vfio_peer_unmap,
	.irq_enable = vfio_irq_enable,
	.reset = vfio_reset,
	.remove_requested = vfio_remove_requested,
	.release = vfio_release,
	.pins_memory = 1,
};
