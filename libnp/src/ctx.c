// SPDX-License-Identifier: MIT
/*
 * Contexts and cards: the device spec parser (np_spec_parse), backend
 * selection, card bring-up (ID check, engines, interrupts, peer windows)
 * and the diagnostic accessors.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "journal.h"

uint64_t npi_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t npi_thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t npi_thread_cpu_cost(void)
{
	static __thread uint64_t cost
		__attribute__((tls_model("initial-exec"))) = UINT64_MAX;

	for (int i = 0; cost == UINT64_MAX && i < 8; i++) {
		uint64_t t0 = npi_thread_cpu_ns(), t1 = npi_thread_cpu_ns();

		cost = t1 - t0 < cost ? t1 - t0 : cost;
	}
	return cost;
}

__thread struct npi_reg_acct npi_reg_acct
	__attribute__((tls_model("initial-exec")));

uint64_t npi_reg_emu_ns(const struct npi_reg_acct *rate,
			const struct npi_reg_acct *n)
{
	double ns = 0;

	for (int k = 0; k < 2; k++)
		if (rate->timed[k])
			ns += (double)rate->ns[k] / (double)rate->timed[k] *
			      (double)n->n[k];
	return (uint64_t)ns;
}

void npi_log(const struct np_ctx *ctx, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!ctx->log.fn || level > (int)ctx->log.level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctx->log.fn(ctx->log.opaque, (enum np_log_level)level, msg);
}

bool npi_resv_zero(const struct np_ctx *ctx, const char *what, const void *p,
		   size_t len)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < len; i++) {
		if (b[i]) {
			npi_log(ctx, LOG_ERR,
				"np: %s: reserved space is not zero; "
				"zero-initialize the struct",
				what);
			return false;
		}
	}
	return true;
}

int npi_card_add(struct np_ctx *ctx, const char *name, void *priv,
		 struct np_card **out)
{
	struct np_card *card;
	unsigned int i;

	if (ctx->num_cards >= NP_MAX_CARDS) {
		npi_log(ctx, LOG_ERR,
			"np: more than %d cards requested; open them as "
			"several contexts",
			NP_MAX_CARDS);
		return -EINVAL;
	}
	card = calloc(1, sizeof(*card));
	if (!card)
		return -ENOMEM;
	card->ctx = ctx;
	card->index = ctx->num_cards;
	card->priv = priv;
	snprintf(card->name, sizeof(card->name), "%s", name);
	for (i = 0; i < NP_NUM_IRQS; i++)
		card->irq_fd[i] = -1;
	card->info.index = card->index;
	card->info.iommu_group = -1;
	snprintf(card->info.name, sizeof(card->info.name), "%s", name);
	ctx->cards[ctx->num_cards++] = card;
	*out = card;
	return 0;
}

static uint32_t reg_rd(struct np_card *card, uint32_t off)
{
	return card->ctx->ops->reg_read(card, off);
}

static int card_wait_ready(struct np_card *card)
{
	uint64_t deadline =
		npi_now_ns() + (uint64_t)card->ctx->timeout_ms * 1000000ull;
	uint32_t st;

	for (;;) {
		st = reg_rd(card, NP_REG_STATUS);
		if ((st & NP_STATUS_READY) && !(st & NP_STATUS_RESETTING))
			return 0;
		if (npi_now_ns() > deadline)
			break;
		usleep(1000);
	}
	npi_log(card->ctx, LOG_ERR,
		"np: card %s: not ready after %d ms (status 0x%08x); reset "
		"it with `nptool reset %s` or power-cycle the host",
		card->name, card->ctx->timeout_ms, st, card->name);
	return -ETIMEDOUT;
}

static int card_check_id(struct np_card *card)
{
	uint32_t id = reg_rd(card, NP_REG_ID);

	if (NP_ID_GET_MAGIC(id) != NP_ID_MAGIC) {
		npi_log(card->ctx, LOG_ERR,
			"np: card %s: ID register reads 0x%08x, magic 0x%04x "
			"is not np's 0x%04x: not an np card, or BAR0 is not "
			"reachable",
			card->name, id, NP_ID_GET_MAGIC(id), NP_ID_MAGIC);
		return -EPROTO;
	}
	if (NP_ID_GET_MAJOR(id) != NP_ABI_MAJOR) {
		npi_log(card->ctx, LOG_ERR,
			"np: card %s: ABI %u.%u, libnp speaks %u.%u: update "
			"libnp or the card firmware so the majors match",
			card->name, NP_ID_GET_MAJOR(id), NP_ID_GET_MINOR(id),
			NP_ABI_MAJOR, NP_ABI_MINOR);
		return -EPROTO;
	}
	card->info.abi_major = NP_ID_GET_MAJOR(id);
	card->info.abi_minor = NP_ID_GET_MINOR(id);
	return 0;
}

static int card_read_info(struct np_card *card)
{
	struct np_card_info *in = &card->info;
	uint32_t cfg, cores, link;

	in->caps = reg_rd(card, NP_REG_CAPS);
	cfg = reg_rd(card, NP_REG_CONFIG);
	in->dma_engines = NP_CONFIG_DMA_ENGINES(cfg);
	in->compute_queues = NP_CONFIG_COMPUTE_QUEUES(cfg);
	in->events = NP_CONFIG_EVENTS(cfg);
	in->sram_size = reg_rd(card, NP_REG_SRAM_SIZE);
	in->fb_size = reg_rd(card, NP_REG_FB_SIZE);
	cores = reg_rd(card, NP_REG_CORES);
	in->cores_x = cores & 0xff;
	in->cores_y = (cores >> 8) & 0xff;
	in->fw_version = reg_rd(card, NP_REG_FW_VERSION);
	in->serial = reg_rd(card, NP_REG_SERIAL_LO) |
		     (uint64_t)reg_rd(card, NP_REG_SERIAL_HI) << 32;
	link = reg_rd(card, NP_REG_LINK);
	in->link_gen = NP_LINK_GEN(link);
	in->link_width = NP_LINK_WIDTH(link);
	if (in->events > NP_NUM_EVENTS)
		in->events = NP_NUM_EVENTS;
	if (in->dma_engines == 0 || in->dma_engines > NP_MAX_DMA_ENGINES ||
	    !(in->caps & NP_CAPS_WRITEBACK) || in->fb_size > NP_FB_SIZE ||
	    in->sram_size > NP_SRAM_SIZE) {
		npi_log(card->ctx, LOG_ERR,
			"np: card %s: unusable configuration (config 0x%08x, "
			"caps 0x%08x, SRAM %llu, FB %llu): libnp needs 1..%u "
			"DMA engines with writeback; update the card firmware",
			card->name, cfg, in->caps,
			(unsigned long long)in->sram_size,
			(unsigned long long)in->fb_size, NP_MAX_DMA_ENGINES);
		return -EPROTO;
	}
	card->num_engines = in->dma_engines;
	return 0;
}

/* Program interrupts and engines; the card is READY with a good ID. */
static int card_start(struct np_card *card)
{
	struct np_ctx *ctx = card->ctx;
	uint32_t mask = 0;
	unsigned int i;
	int ret;

	for (i = 0; i < card->num_engines; i++)
		mask |= 1u << NP_IRQ_DMA(i);
	ctx->ops->reg_write(card, NP_REG_INT_STATUS, 0xffffffffu);
	ctx->ops->reg_write(card, NP_REG_INT_ENABLE, mask);
	for (i = 0; i < card->num_engines; i++) {
		ret = npi_engine_start(&card->eng[i]);
		if (ret)
			return ret;
	}
	card->ready = true;
	return 0;
}

static int card_bringup(struct np_card *card)
{
	struct np_ctx *ctx = card->ctx;
	struct epoll_event ev = {.events = EPOLLIN};
	unsigned int i;
	int ret;

	ret = card_wait_ready(card);
	if (!ret)
		ret = card_check_id(card);
	if (!ret)
		ret = card_read_info(card);
	if (ret)
		return ret;
	for (i = 0; i < card->num_engines; i++) {
		card->irq_fd[NP_IRQ_DMA(i)] =
			eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (card->irq_fd[NP_IRQ_DMA(i)] < 0)
			return -errno;
		ev.data.ptr = &card->eng[i];
		if (epoll_ctl(ctx->epoll_fd, EPOLL_CTL_ADD,
			      card->irq_fd[NP_IRQ_DMA(i)], &ev))
			return -errno;
		ret = npi_engine_init(card, i);
		if (ret)
			return ret;
	}
	ret = ctx->ops->irq_enable(card);
	if (ret)
		return ret;
	return card_start(card);
}

static void card_map_peer(struct np_card *card)
{
	struct np_ctx *ctx = card->ctx;
	uint64_t fb, mbox;
	int ret;

	if (!(card->info.caps & NP_CAPS_MAILBOX) || !card->info.fb_size)
		return;
	if (npi_iova_alloc(ctx, card->info.fb_size, card->info.fb_size, &fb))
		return;
	if (npi_iova_alloc(ctx, NP_MBOX_SIZE, NP_MBOX_SIZE, &mbox)) {
		npi_iova_free(ctx, fb);
		return;
	}
	ret = ctx->ops->peer_map(card, fb, mbox);
	if (ret) {
		npi_log(ctx, LOG_NOTICE,
			"np: card %s: peers cannot reach its frame buffer "
			"(%s); card-to-card transfers to it bounce through "
			"host memory",
			card->name, strerror(-ret));
		npi_iova_free(ctx, mbox);
		npi_iova_free(ctx, fb);
		return;
	}
	card->info.fb_iova = fb;
	card->info.mbox_iova = mbox;
	card->p2p_mapped = true;
}

static void card_free(struct np_card *card)
{
	struct np_ctx *ctx = card->ctx;
	unsigned int i;

	for (i = 0; i < card->num_engines; i++)
		npi_engine_fini(&card->eng[i]);
	if (card->p2p_mapped) {
		ctx->ops->peer_unmap(card, card->info.fb_iova,
				     card->info.mbox_iova);
		npi_iova_free(ctx, card->info.mbox_iova);
		npi_iova_free(ctx, card->info.fb_iova);
	}
}

static void card_release_fds(struct np_card *card)
{
	unsigned int i;

	for (i = 0; i < NP_NUM_IRQS; i++)
		if (card->irq_fd[i] >= 0)
			close(card->irq_fd[i]);
	free(card);
}

static int parse_opts(struct np_ctx *ctx, const struct np_open_opts *o)
{
	struct np_open_opts def = {0};

	if (!o)
		o = &def;
	ctx->flags = o->flags;
	ctx->timeout_ms =
		o->timeout_ms ? o->timeout_ms : NPI_DEFAULT_TIMEOUT_MS;
	ctx->ring_entries =
		o->ring_entries ? o->ring_entries : NPI_DEFAULT_RING;
	ctx->log = o->log;
	if (!ctx->log.level)
		ctx->log.level = NP_LOG_INFO;
	if (o->emu)
		ctx->emu = *o->emu;
	if (!npi_resv_zero(ctx, "np_open_opts", o->resv, sizeof(o->resv)) ||
	    (o->emu && (!npi_resv_zero(ctx, "np_emu_opts", &o->emu->resv0,
				       sizeof(o->emu->resv0)) ||
			!npi_resv_zero(ctx, "np_emu_opts", o->emu->resv,
				       sizeof(o->emu->resv)))))
		return -EINVAL;
	if (o->flags & ~NP_OPEN_F_FORCE_BOUNCE) {
		npi_log(ctx, LOG_ERR, "np: unknown open flags 0x%x",
			o->flags & ~NP_OPEN_F_FORCE_BOUNCE);
		return -EINVAL;
	}
	if (o->timeout_ms < 0) {
		npi_log(ctx, LOG_ERR, "np: timeout_ms %d is negative",
			o->timeout_ms);
		return -EINVAL;
	}
	if (ctx->ring_entries < 16 || ctx->ring_entries > NP_RING_MAX_ENTRIES ||
	    (ctx->ring_entries & (ctx->ring_entries - 1))) {
		npi_log(ctx, LOG_ERR,
			"np: ring_entries %u: use a power of two in [16, %u]",
			ctx->ring_entries, NP_RING_MAX_ENTRIES);
		return -EINVAL;
	}
	return 0;
}

/*
 * Device specs: the one parser of libnp, and through np_spec_parse() of
 * the tools. A PCI address is parsed into numbers and written back in the
 * full form, so "3:0.0", "03:00.0" and "0000:03:00.0" name one card.
 */
static int spec_err(char *why, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int spec_err(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (why && len) {
		va_start(ap, fmt);
		vsnprintf(why, len, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int parse_emu(const char *args, struct np_spec *out, char *why,
		     size_t len)
{
	unsigned long n;
	char *end;

	errno = 0;
	n = strtoul(args, &end, 10);
	if (errno || end == args || *end || n < 1 || n > NP_MAX_CARDS)
		return spec_err(why, len,
				"device spec \"emu:%s\": the card count must "
				"be a number in 1..%d, e.g. emu:16",
				args, NP_MAX_CARDS);
	out->kind = NP_SPEC_EMU;
	out->count = (unsigned int)n;
	return 0;
}

static int parse_bdf(const char *s, char *out)
{
	unsigned int dom = 0, bus, dev, fn;
	int n = 0;

	if (sscanf(s, "%x:%x:%x.%u%n", &dom, &bus, &dev, &fn, &n) != 4 ||
	    s[n]) {
		n = 0;
		dom = 0;
		if (sscanf(s, "%x:%x.%u%n", &bus, &dev, &fn, &n) != 3 || s[n])
			return -EINVAL;
	}
	if (dom > 0xffff || bus > 0xff || dev > 0x1f || fn > 7)
		return -EINVAL;
	snprintf(out, NP_SPEC_BDF_LEN, "%04x:%02x:%02x.%u", dom, bus, dev, fn);
	return 0;
}

static int parse_vfio(const char *args, struct np_spec *out, char *why,
		      size_t len)
{
	char *copy, *tok, *save = NULL;
	int ret = 0;

	if (!strcmp(args, "all")) {
		out->kind = NP_SPEC_VFIO_ALL;
		return 0;
	}
	copy = strdup(args);
	if (!copy)
		return -ENOMEM;
	out->kind = NP_SPEC_VFIO_LIST;
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (out->count == NP_MAX_CARDS ||
		    parse_bdf(tok, out->bdf[out->count])) {
			ret = spec_err(why, len,
				       "device spec \"vfio:%s\": \"%s\" is not "
				       "a PCI address like 0000:03:00.0 (at "
				       "most %d)",
				       args, tok, NP_MAX_CARDS);
			break;
		}
		out->count++;
	}
	free(copy);
	if (!ret && !out->count)
		ret = spec_err(why, len,
			       "device spec \"vfio:%s\" names no card: use "
			       "vfio:all or vfio:0000:03:00.0[,...]",
			       args);
	return ret;
}

int np_spec_parse(const char *spec, struct np_spec *out, char *why, size_t len)
{
	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!spec)
		spec = "";
	if (!strncmp(spec, "emu:", 4))
		return parse_emu(spec + 4, out, why, len);
	if (!strncmp(spec, "vfio:", 5))
		return parse_vfio(spec + 5, out, why, len);
	return spec_err(why, len,
			"device spec \"%s\" is not understood: use emu:N (N in "
			"1..%d), vfio:all or vfio:<pci address>[,<pci "
			"address>...]",
			spec, NP_MAX_CARDS);
}

/* implicit: the spec is NP_DEVICES's, or the default vfio:all */
static int open_backend(struct np_ctx *ctx, const char *spec, bool implicit)
{
	struct np_spec s;
	char why[512];
	int ret = np_spec_parse(spec, &s, why, sizeof(why));

	if (ret == -EINVAL)
		npi_log(ctx, LOG_ERR, "np: %s%s",
			implicit ? "NP_DEVICES: " : "", why);
	if (ret)
		return ret;
	if (s.kind == NP_SPEC_EMU) {
		ctx->ops = &npi_backend_emu;
	} else {
#ifdef NP_HAVE_VFIO
		ctx->ops = &npi_backend_vfio;
#else
		npi_log(ctx, LOG_ERR,
			"np: device spec \"%s\": this libnp was built without "
			"the vfio backend (linux/vfio.h missing at build time)",
			spec);
		return -ENOTSUP;
#endif
	}
	return ctx->ops->open(ctx, &s);
}

int np_open(const char *spec, const struct np_open_opts *opts,
	    struct np_ctx **out)
{
	struct np_ctx *ctx;
	bool implicit = false;
	unsigned int i;
	int ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	pthread_mutex_init(&ctx->lock, NULL);
	ctx->epoll_fd = -1;
	ret = parse_opts(ctx, opts);
	if (ret)
		goto err_free;
	ctx->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (ctx->epoll_fd < 0) {
		ret = -errno;
		goto err_free;
	}
	if (!spec || !*spec) {
		spec = getenv("NP_DEVICES");
		implicit = true;
	}
	if (spec && *spec) {
		ret = open_backend(ctx, spec, implicit);
	} else {
#ifdef NP_HAVE_VFIO
		ret = open_backend(ctx, "vfio:all", true);
#else
		ret = -ENODEV;
#endif
		if (ret == -ENODEV || ret == -ENOENT) {
			npi_log(ctx, LOG_ERR,
				"np: no np card found and NP_DEVICES is not "
				"set: bind cards to vfio-pci, or set "
				"NP_DEVICES=emu:16 for 16 emulated cards");
			ret = -ENODEV;
		}
	}
	if (ret)
		goto err_close;
	for (i = 0; i < ctx->num_cards; i++) {
		ret = card_bringup(ctx->cards[i]);
		if (ret)
			goto err_close;
	}
	if (!(ctx->flags & NP_OPEN_F_FORCE_BOUNCE))
		for (i = 0; i < ctx->num_cards; i++)
			card_map_peer(ctx->cards[i]);
	*out = ctx;
	return 0;

err_close:
	np_close(ctx);
	return ret;
err_free:
	if (ctx->epoll_fd >= 0)
		close(ctx->epoll_fd);
	pthread_mutex_destroy(&ctx->lock);
	free(ctx);
	return ret;
}

void np_close(struct np_ctx *ctx)
{
	struct npi_iova_range *r;
	unsigned int i;

	if (!ctx)
		return;
	for (i = 0; i < ctx->num_cards; i++)
		card_free(ctx->cards[i]);
	while (ctx->bufs)
		np_buf_free(ctx->bufs);
	if (ctx->ops)
		ctx->ops->close(ctx);
	for (i = 0; i < ctx->num_cards; i++)
		card_release_fds(ctx->cards[i]);
	while ((r = ctx->iova_used)) {
		ctx->iova_used = r->next;
		free(r);
	}
	close(ctx->epoll_fd);
	pthread_mutex_destroy(&ctx->lock);
	free(ctx);
}

unsigned int np_ctx_num_cards(const struct np_ctx *ctx)
{
	return ctx->num_cards;
}

struct np_card *np_ctx_card(const struct np_ctx *ctx, unsigned int idx)
{
	return idx < ctx->num_cards ? ctx->cards[idx] : NULL;
}

const char *np_ctx_backend(const struct np_ctx *ctx)
{
	return ctx->ops->name;
}

int np_ctx_timeout_ms(const struct np_ctx *ctx)
{
	return ctx->timeout_ms;
}

uint64_t np_ctx_iommu_faults(const struct np_ctx *ctx)
{
	return __atomic_load_n(&ctx->iommu_faults, __ATOMIC_RELAXED);
}

int np_ctx_fd(const struct np_ctx *ctx)
{
	return ctx->epoll_fd;
}

int np_ctx_process(struct np_ctx *ctx)
{
	unsigned int c, e;
	int n = 0;

	for (c = 0; c < ctx->num_cards; c++)
		for (e = 0; e < ctx->cards[c]->num_engines; e++)
			n += npi_engine_process(&ctx->cards[c]->eng[e]);
	return n;
}

int np_card_info(const struct np_card *card, struct np_card_info *info)
{
	if (!card || !info)
		return -EINVAL;
	*info = card->info;
	return 0;
}

void npi_card_set_removed(struct np_card *card)
{
	__atomic_store_n(&card->removed, true, __ATOMIC_RELEASE);
	for (unsigned int e = 0; e < card->num_engines; e++)
		npi_engine_abort(&card->eng[e], -ENODEV);
}

bool npi_card_gone(struct np_card *card)
{
	if (np_card_removed(card))
		return true;
	if (!card->ctx->ops->remove_requested ||
	    !card->ctx->ops->remove_requested(card))
		return false;
	npi_card_set_removed(card);
	card->ctx->ops->release(card);
	npi_log(card->ctx, LOG_ERR,
		"np: card %s was removed (the kernel asked for it back: "
		"hot-unplug or unbind); released",
		card->name);
	return true;
}

int np_card_removed(const struct np_card *card)
{
	return card && __atomic_load_n(&card->removed, __ATOMIC_ACQUIRE);
}

const char *np_card_name(const struct np_card *card)
{
	return card->name;
}

enum np_p2p_mode np_card_p2p_mode(const struct np_card *src,
				  const struct np_card *dst)
{
	if (src == dst)
		return NP_P2P_DIRECT;
	if (src->ctx != dst->ctx || !dst->p2p_mapped ||
	    !(src->info.caps & NP_CAPS_P2P))
		return NP_P2P_BOUNCE;
	return NP_P2P_DIRECT;
}

int np_card_reg_read(struct np_card *card, uint32_t off, uint32_t *value)
{
	if (!card || !value || (off & 3) || off >= NP_REGS_SIZE)
		return -EINVAL;
	*value = reg_rd(card, off);
	return 0;
}

int np_card_event_add(struct np_card *card, unsigned int event, uint32_t value)
{
	if (!card || event >= card->info.events)
		return -EINVAL;
	card->ctx->ops->reg_write(card, NP_MBOX_EVENT(event), value);
	return 0;
}

int np_card_event_read(struct np_card *card, unsigned int event, uint32_t *out)
{
	if (!card || !out || event >= card->info.events)
		return -EINVAL;
	*out = reg_rd(card, NP_MBOX_EVENT(event));
	return 0;
}

int np_card_reset(struct np_card *card)
{
	struct np_ctx *ctx;
	unsigned int i, attempt;
	uint32_t thermal;
	int ret;

	if (!card)
		return -EINVAL;
	ctx = card->ctx;
	if (npi_card_gone(card)) {
		npi_log(ctx, LOG_ERR,
			"np: card %s was removed; it cannot be reset",
			card->name);
		return -ENODEV;
	}
	thermal = ctx->ops->reg_read(card, NP_REG_THROTTLE_COUNT);
	if (thermal && thermal != 0xffffffffu)
		npi_journal(card, NPI_EV_THERMAL,
			    "%u thermal throttle episodes since the last reset",
			    thermal);
	for (i = 0; i < card->num_engines; i++)
		npi_engine_abort(&card->eng[i], -ECANCELED);
	card->ready = false;
	for (attempt = 0;; attempt++) {
		ret = ctx->ops->reset(card);
		if (ret) {
			npi_log(ctx, LOG_ERR, "np: card %s: reset failed: %s",
				card->name, strerror(-ret));
			npi_journal(card, NPI_EV_RESET, "reset failed: %s",
				    strerror(-ret));
			return ret;
		}
		ret = card_wait_ready(card);
		if (!ret)
			ret = card_check_id(card);
		if (ret) {
			npi_journal(card, NPI_EV_RESET,
				    "reset: the card did not come back (%s)",
				    strerror(-ret));
			return ret;
		}
		/* Verify: every engine must take its ring again. */
		ret = card_start(card);
		if (ret != -EIO || attempt)
			break;
		npi_log(ctx, LOG_WARNING,
			"np: card %s: an engine refused its ring after the "
			"reset; resetting once more",
			card->name);
	}
	if (!ret) {
		__atomic_store_n(&card->dma_failed, 0, __ATOMIC_RELEASE);
		card->failure_journaled = false;
		npi_log(ctx, LOG_INFO, "np: card %s: reset, ID verified",
			card->name);
		npi_journal(card, NPI_EV_RESET, "reset, ID verified");
	} else {
		npi_journal(card, NPI_EV_RESET,
			    "reset: an engine still refuses its ring (%s)",
			    strerror(-ret));
	}
	return ret;
}
