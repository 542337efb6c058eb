// SPDX-License-Identifier: MIT
/*
 * The image cache of np_model_load (docs/pipeline.md, "Image cache"): the
 * rendered card images and the calibration of a model, kept in one file
 * per key so that a later load maps them instead of calibrating and
 * rendering again; and the rendering of the images on every core.
 *
 * An entry is <dir>/<key>.npc, key the XXH3-128 of struct npi_cache_key
 * (the model file's contents, the compile options, the calibration text,
 * the card program, ABI, library and compiler versions) in hex:
 *
 *   struct npi_cache_hdr     magic, sizes, the key, the meta checksum
 *   struct npi_cache_card[n] per card: its plan, where its data is, the
 *                            XXH3-128 of its data, its weights CRC
 *   float calib[]            np_quant_calib_export()
 *   per card, 4 KiB aligned: NP_NUM_CORES segments of `stored` bytes,
 *                            core k's SRAM [0, stored) (the KV cache
 *                            above is zero and not stored)
 *
 * The meta checksum covers the header (with the checksum field zero), the
 * card table and the calibration. An entry is written to a temporary file
 * in the directory and renamed into place, so a reader sees a whole entry
 * or none, and processes building the same entry at once each rename a
 * whole one; an entry is never rewritten in place, so a mapped one never
 * changes under its reader. Every check runs before anything is used: a
 * truncated, corrupt or foreign entry is logged and rebuilt, never loaded.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "np_build_id.h"
#include "pipe.h"

#define NPI_CACHE_FORMAT 1u
#define NPI_CACHE_ALIGN 4096u
static const char cache_magic[8] = "NPCACHE";

struct npi_cache_key {
	uint32_t format; /* NPI_CACHE_FORMAT */
	uint32_t npk_version; /* NPK_VERSION */
	uint32_t abi; /* NP_ABI_MAJOR << 8 | NP_ABI_MINOR */
	uint32_t calib_tokens; /* NPI_CALIB_TOKENS */
	char lib[16]; /* libnp's version */
	char build[33]; /* NP_BUILD_ID: the compiler's sources */
	uint8_t rsvd[7];
	uint8_t model[16]; /* XXH3-128 of the GGUF file */
	uint64_t model_size;
	uint8_t calib[16]; /* XXH3-128 of the calibration text used */
	uint64_t calib_len;
	/* as np_compile gets them, the layer_precision pointer cleared:
	 * its text is hashed into lprec */
	struct np_compile_opts co;
	uint8_t lprec[16]; /* XXH3-128 of layer_precision, zero: none */
};

struct npi_cache_card {
	uint32_t kind, first_layer, n_layers, vocab_begin, vocab_end;
	uint32_t crc; /* npi_weights_sum of the image */
	uint64_t prog, core_bytes, stored; /* stored: per core */
	uint64_t off; /* file offset of the card's segments */
	uint8_t hash[16]; /* XXH3-128 of the segments */
};

struct npi_cache_hdr {
	char magic[8];
	uint32_t hdr_size; /* header, card table and calibration */
	uint32_t n_cards;
	uint64_t size; /* of the file */
	uint64_t calib_off;
	uint32_t n_calib; /* floats */
	uint32_t rsvd;
	struct npi_cache_key key;
	uint8_t meta_hash[16]; /* of hdr_size bytes, this field zero */
};

struct npi_cache {
	char path[PATH_MAX]; /* the entry; "" without a cache */
	char dir[PATH_MAX];
	struct npi_cache_key key;
	uint8_t *map; /* the entry: mapped from path, or built */
	size_t len;
	const struct npi_cache_hdr *h;
	const struct npi_cache_card *card;
	bool hit;
};

static void hash128(const void *p, size_t n, uint8_t out[16])
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits(p, n));
	memcpy(out, c.digest, 16);
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

/* ---------------------------------------------------------------- */
/* Directory and key                                                  */

/* The cache directory of the option d into dir, "" for none. */
static void resolve_dir(const char *d, char *dir, size_t len)
{
	const char *x;

	dir[0] = 0;
	if (!d)
		d = getenv("NP_CACHE_DIR");
	if (d && (!*d || !strcmp(d, "off")))
		return;
	if (d)
		snprintf(dir, len, "%s", d);
	else if (geteuid() == 0)
		snprintf(dir, len, "/var/cache/np/images");
	else if ((x = getenv("XDG_CACHE_HOME")) && *x == '/')
		snprintf(dir, len, "%s/np/images", x);
	else if ((x = getenv("HOME")) && *x == '/')
		snprintf(dir, len, "%s/.cache/np/images", x);
}

static void cache_dir(const struct np_pipeline_opts *o, char *dir, size_t len)
{
	dir[0] = 0;
	if (!(o->flags & NP_LOAD_NO_CACHE))
		resolve_dir(o->cache_dir, dir, len);
}

int np_cache_dir(const char *dir, char *buf, size_t len)
{
	char d[PATH_MAX];

	resolve_dir(dir, d, sizeof(d));
	if (!d[0])
		return -ENOENT;
	if ((size_t)snprintf(buf, len, "%s", d) >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* mkdir -p of dir, mode 0755 */
static int make_dir(char *dir)
{
	for (char *s = dir + 1;; s++) {
		char c = *s;

		if (c != '/' && c)
			continue;
		*s = 0;
		if (mkdir(dir, 0755) && errno != EEXIST) {
			int ret = -errno;

			*s = c;
			return ret;
		}
		*s = c;
		if (!c)
			return 0;
	}
}

/* XXH3-128 of the file at path */
static int hash_file(struct np_ctx *ctx, const char *path, uint8_t out[16],
		     uint64_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;
	struct stat st;
	void *m;

	if (fd < 0 || fstat(fd, &st)) {
		ret = -errno;
		npi_log(ctx, LOG_ERR, "pipeline: cannot read model %s (%s)",
			path, strerror(-ret));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	*size = (uint64_t)st.st_size;
	m = st.st_size ? mmap(NULL, (size_t)st.st_size, PROT_READ,
			      MAP_PRIVATE | MAP_POPULATE, fd, 0) :
			 NULL;
	close(fd);
	if (m == MAP_FAILED)
		return -errno;
	hash128(m ? m : "", (size_t)st.st_size, out);
	if (m)
		munmap(m, (size_t)st.st_size);
	return 0;
}

int npi_cache_init(struct np_pipeline *p, const char *model,
		   const struct np_pipeline_opts *o,
		   const struct np_compile_opts *co, const char *calib,
		   size_t calib_len, struct npi_cache **out)
{
	struct npi_cache *k = calloc(1, sizeof(*k));
	uint8_t id[16];
	char hex[33];
	int ret;

	*out = NULL;
	if (!k)
		return -ENOMEM;
	k->key.format = NPI_CACHE_FORMAT;
	k->key.npk_version = NPK_VERSION;
	k->key.abi = NP_ABI_MAJOR << 8 | NP_ABI_MINOR;
	k->key.calib_tokens = NPI_CALIB_TOKENS;
	snprintf(k->key.lib, sizeof(k->key.lib), "%s", NP_LIB_VERSION);
	snprintf(k->key.build, sizeof(k->key.build), "%s", NP_BUILD_ID);
	k->key.co = *co;
	k->key.co.layer_precision = NULL;
	if (co->layer_precision && co->layer_precision[0])
		hash128(co->layer_precision, strlen(co->layer_precision),
			k->key.lprec);
	if (calib && calib_len) {
		hash128(calib, calib_len, k->key.calib);
		k->key.calib_len = calib_len;
	}
	cache_dir(o, k->dir, sizeof(k->dir));
	if (k->dir[0]) {
		ret = hash_file(p->ctx, model, k->key.model,
				&k->key.model_size);
		if (ret) {
			free(k);
			return ret;
		}
		hash128(&k->key, sizeof(k->key), id);
		for (int i = 0; i < 16; i++)
			snprintf(hex + 2 * i, 3, "%02x", id[i]);
		if (snprintf(k->path, sizeof(k->path), "%s/%s.npc", k->dir,
			     hex) >= (int)sizeof(k->path))
			k->path[0] = 0;
	}
	*out = k;
	return 0;
}

void npi_cache_free(struct npi_cache *k)
{
	if (!k)
		return;
	if (k->map)
		munmap(k->map, k->len);
	free(k);
}

bool npi_cache_hit(const struct npi_cache *k)
{
	return k && k->hit;
}

/* ---------------------------------------------------------------- */
/* Lookup                                                             */

/* What is wrong with the entry of len bytes at m, or NULL. */
static const char *entry_check(const struct npi_cache *k, const uint8_t *m,
			       size_t len, uint32_t *bad_card,
			       np_progress_fn progress, void *opaque)
{
	struct npi_cache_hdr h;
	const struct npi_cache_card *c;
	uint8_t sum[16];
	uint64_t total = 0, done = 0;

	if (len < sizeof(h))
		return "truncated: shorter than its header";
	memcpy(&h, m, sizeof(h));
	if (memcmp(h.magic, cache_magic, sizeof(h.magic)))
		return "not an np image cache entry (bad magic)";
	if (h.size != len)
		return "truncated or extended: its size differs from the "
		       "size its header records";
	if (h.hdr_size < sizeof(h) || h.hdr_size > len || !h.n_cards ||
	    h.n_cards > NP_MAX_CARDS ||
	    sizeof(h) + (uint64_t)h.n_cards * sizeof(*c) > h.hdr_size ||
	    h.calib_off + (uint64_t)h.n_calib * sizeof(float) > h.hdr_size)
		return "header out of bounds";
	{
		uint8_t *meta = malloc(h.hdr_size);

		if (!meta)
			return "no memory to check it";
		memcpy(meta, m, h.hdr_size);
		memset(meta + offsetof(struct npi_cache_hdr, meta_hash), 0,
		       sizeof(h.meta_hash));
		hash128(meta, h.hdr_size, sum);
		free(meta);
	}
	if (memcmp(sum, h.meta_hash, sizeof(sum)))
		return "header checksum mismatch (corrupt)";
	if (memcmp(&h.key, &k->key, sizeof(h.key)))
		return "stale: written for another model, options or version";
	c = (const struct npi_cache_card *)(m + sizeof(h));
	for (uint32_t i = 0; i < h.n_cards; i++) {
		uint64_t n = c[i].stored * NP_NUM_CORES;

		if (c[i].off % NPI_CACHE_ALIGN || c[i].off < h.hdr_size ||
		    c[i].off > len || n > len - c[i].off ||
		    c[i].stored > c[i].core_bytes ||
		    c[i].core_bytes > NP_CORE_SRAM_SIZE) {
			*bad_card = i;
			return "card data out of bounds";
		}
		total += n;
	}
	if (progress)
		progress(opaque, NP_LOAD_CACHE_VERIFY, 0, total);
	for (uint32_t i = 0; i < h.n_cards; i++) {
		uint64_t n = c[i].stored * NP_NUM_CORES;

		hash128(m + c[i].off, n, sum);
		if (memcmp(sum, c[i].hash, sizeof(sum))) {
			*bad_card = i;
			return "card data checksum mismatch (corrupt)";
		}
		done += n;
		if (progress)
			progress(opaque, NP_LOAD_CACHE_VERIFY, done, total);
	}
	return NULL;
}

int npi_cache_lookup(struct np_pipeline *p, struct npi_cache *k,
		     const struct np_pipeline_opts *o)
{
	uint32_t bad = UINT32_MAX;
	const char *why;
	struct stat st;
	void *m;
	int fd;

	if (!k->path[0])
		return 0;
	fd = open(k->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			npi_log(p->ctx, LOG_WARNING,
				"pipeline: image cache %s: cannot open (%s); "
				"compiling",
				k->path, strerror(errno));
		else
			npi_log(p->ctx, LOG_INFO,
				"pipeline: image cache miss (%s); compiling",
				k->path);
		return 0;
	}
	if (fstat(fd, &st) ||
	    st.st_size < (off_t)sizeof(struct npi_cache_hdr)) {
		close(fd);
		why = "truncated: shorter than its header";
		goto bad;
	}
	m = mmap(NULL, (size_t)st.st_size, PROT_READ,
		 MAP_PRIVATE | MAP_POPULATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		npi_log(p->ctx, LOG_WARNING,
			"pipeline: image cache %s: cannot map (%s); compiling",
			k->path, strerror(errno));
		return 0;
	}
	why = entry_check(k, m, (size_t)st.st_size, &bad, o->progress,
			  o->progress_opaque);
	if (why) {
		munmap(m, (size_t)st.st_size);
		goto bad;
	}
	k->map = m;
	k->len = (size_t)st.st_size;
	k->h = (const struct npi_cache_hdr *)k->map;
	k->card = (const struct npi_cache_card *)(k->map + sizeof(*k->h));
	k->hit = true;
	/* its time is its last use: np_cache_trim removes the least
	 * recently used first */
	utimensat(AT_FDCWD, k->path, NULL, 0);
	npi_log(p->ctx, LOG_INFO, "pipeline: image cache hit (%s)", k->path);
	return 1;
bad:
	if (bad != UINT32_MAX)
		npi_log(p->ctx, LOG_WARNING,
			"pipeline: image cache %s: card %u: %s; rebuilding it",
			k->path, bad, why);
	else
		npi_log(p->ctx, LOG_WARNING,
			"pipeline: image cache %s: %s; rebuilding it", k->path,
			why);
	unlink(k->path);
	return 0;
}

/* A bad entry found after lookup: forgotten and removed */
static void drop(struct npi_cache *k)
{
	unlink(k->path);
	munmap(k->map, k->len);
	k->map = NULL;
	k->h = NULL;
	k->card = NULL;
	k->hit = false;
}

int npi_cache_calib(struct np_pipeline *p, struct npi_cache *k,
		    struct np_quant_calib **out)
{
	const float *f = (const float *)(k->map + k->h->calib_off);
	int ret = np_quant_calib_import(p->model, f, k->h->n_calib, out);

	if (ret) {
		npi_log(p->ctx, LOG_WARNING,
			"pipeline: image cache %s: its calibration does not "
			"fit the model (%s); rebuilding it",
			k->path, strerror(-ret));
		drop(k);
	}
	return ret;
}

/* Per-core bytes below the KV cache: the program and the weights */
static uint64_t plan_stored(const struct np_card_plan *pl)
{
	return pl->prog_bytes + pl->weight_bytes / NP_NUM_CORES;
}

bool npi_cache_matches(struct np_pipeline *p, struct npi_cache *k,
		       const struct np_compiled *c)
{
	uint32_t n = np_compiled_n_cards(c);

	for (uint32_t i = 0; i < n && n == k->h->n_cards; i++) {
		const struct np_card_plan *pl = np_compiled_card(c, i);
		const struct npi_cache_card *e = &k->card[i];

		if (e->kind != (uint32_t)pl->kind ||
		    e->first_layer != pl->first_layer ||
		    e->n_layers != pl->n_layers ||
		    e->vocab_begin != pl->vocab_begin ||
		    e->vocab_end != pl->vocab_end || e->prog != pl->prog ||
		    e->core_bytes != pl->core_bytes ||
		    e->stored != plan_stored(pl))
			n = 0;
	}
	if (n && n == k->h->n_cards)
		return true;
	npi_log(p->ctx, LOG_WARNING,
		"pipeline: image cache %s: stale: its card layout differs from "
		"the compiler's; rebuilding it",
		k->path);
	drop(k);
	return false;
}

const uint8_t *npi_cache_card(const struct npi_cache *k, uint32_t i,
			      uint64_t *stored, struct npi_weights_sum *sum)
{
	*stored = k->card[i].stored;
	sum->reach = k->card[i].stored;
	sum->crc = k->card[i].crc;
	return k->map + k->card[i].off;
}

/* ---------------------------------------------------------------- */
/* Build                                                              */

struct build {
	const struct np_compiled *c;
	struct npi_cache *k;
	struct npi_cache_card *card;
	uint32_t n, next, done;
	int err;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

/* Render card i with scratch SRAM sram into its place in the entry. */
static int render(struct build *b, uint32_t i, uint8_t *sram)
{
	struct npi_cache_card *e = &b->card[i];
	const struct np_card_plan *pl = np_compiled_card(b->c, i);
	uint8_t *dst = b->k->map + e->off;
	struct npi_weights_sum sum;
	int ret;

	for (uint32_t c = 0; c < NP_NUM_CORES; c++)
		memset(sram + (uint64_t)c * NP_CORE_SRAM_SIZE, 0, e->stored);
	ret = np_compile_card_image(b->c, i, sram);
	if (ret)
		return ret;
	npi_weights_sum(sram, pl, &sum);
	if (sum.reach != e->stored)
		return -EPROTO;
	e->crc = sum.crc;
	for (uint32_t c = 0; c < NP_NUM_CORES; c++)
		memcpy(dst + (uint64_t)c * e->stored,
		       sram + (uint64_t)c * NP_CORE_SRAM_SIZE, e->stored);
	hash128(dst, e->stored * NP_NUM_CORES, e->hash);
	return 0;
}

static void *worker(void *arg)
{
	struct build *b = arg;
	/* fresh zero pages; render() zeroes what the previous card used */
	uint8_t *sram =
		mmap(NULL, NP_SRAM_SIZE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	pthread_mutex_lock(&b->lock);
	if (sram == MAP_FAILED && !b->err)
		b->err = -ENOMEM;
	while (!b->err && b->next < b->n) {
		uint32_t i = b->next++;
		int ret;

		pthread_mutex_unlock(&b->lock);
		ret = render(b, i, sram);
		pthread_mutex_lock(&b->lock);
		if (ret && !b->err)
			b->err = ret;
		b->done++;
		pthread_cond_signal(&b->cond);
	}
	b->done = b->err ? b->n : b->done;
	pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->lock);
	if (sram != MAP_FAILED)
		munmap(sram, NP_SRAM_SIZE);
	return NULL;
}

static uint32_t thread_count(const struct np_pipeline_opts *o, uint32_t n)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	uint32_t t = o->threads ? o->threads : cpus > 0 ? (uint32_t)cpus : 1;

	return t < n ? t : n;
}

/* Render every card on up to thread_count() threads, reporting progress
 * on the calling thread. */
static int render_all(struct np_pipeline *p, struct build *b,
		      const struct np_pipeline_opts *o)
{
	uint32_t nt = thread_count(o, b->n), started = 0, seen = UINT32_MAX;
	pthread_t tid[NP_MAX_CARDS];
	int ret = 0;

	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, NULL);
	for (uint32_t t = 0; t < nt; t++) {
		if (pthread_create(&tid[t], NULL, worker, b))
			break;
		started++;
	}
	if (!started)
		worker(b); /* no thread to be had: render here */
	pthread_mutex_lock(&b->lock);
	for (;;) {
		uint32_t d = b->done;

		if (d != seen) {
			seen = d;
			if (o->progress && !b->err) {
				pthread_mutex_unlock(&b->lock);
				o->progress(o->progress_opaque, NP_LOAD_COMPILE,
					    d, b->n);
				pthread_mutex_lock(&b->lock);
			}
			continue;
		}
		if (d >= b->n)
			break;
		pthread_cond_wait(&b->cond, &b->lock);
	}
	pthread_mutex_unlock(&b->lock);
	for (uint32_t t = 0; t < started; t++)
		pthread_join(tid[t], NULL);
	ret = b->err;
	pthread_cond_destroy(&b->cond);
	pthread_mutex_destroy(&b->lock);
	if (ret == -EPROTO)
		npi_log(p->ctx, LOG_ERR,
			"pipeline: a card image's weights end elsewhere than "
			"its plan says; the compiler and libnp disagree: "
			"rebuild both");
	else if (ret)
		npi_log(p->ctx, LOG_ERR,
			"pipeline: rendering the card images failed (%s)",
			strerror(-ret));
	return ret;
}

static int write_all(int fd, const uint8_t *b, size_t n,
		     const struct np_pipeline_opts *o)
{
	size_t done = 0;

	if (o->progress)
		o->progress(o->progress_opaque, NP_LOAD_CACHE_WRITE, 0, n);
	while (done < n) {
		size_t chunk = n - done < (8u << 20) ? n - done : (8u << 20);
		ssize_t w = write(fd, b + done, chunk);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		done += (size_t)w;
		if (o->progress)
			o->progress(o->progress_opaque, NP_LOAD_CACHE_WRITE,
				    done, n);
	}
	return 0;
}

/* ---------------------------------------------------------------- */
/* Listing and trimming                                               */

struct found {
	char name[NAME_MAX + 1];
	uint64_t size;
	int64_t mtime;
};

/* The entries of dir (name, size, time), or -errno */
static int scan(const char *dir, struct found **out, size_t *n)
{
	DIR *d = opendir(dir);
	struct found *f = NULL;
	struct dirent *e;
	size_t cap = 0;

	*out = NULL;
	*n = 0;
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		struct stat st;

		if (l < 5 || strcmp(e->d_name + l - 4, ".npc") ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
		    !S_ISREG(st.st_mode))
			continue;
		if (*n == cap) {
			struct found *g =
				realloc(f, (cap ? 2 * cap : 16) * sizeof(*f));

			if (!g) {
				free(f);
				closedir(d);
				return -ENOMEM;
			}
			f = g;
			cap = cap ? 2 * cap : 16;
		}
		snprintf(f[*n].name, sizeof(f[*n].name), "%s", e->d_name);
		f[*n].size = (uint64_t)st.st_size;
		f[*n].mtime = st.st_mtim.tv_sec;
		(*n)++;
	}
	closedir(d);
	*out = f;
	return 0;
}

static int by_age(const void *a, const void *b)
{
	const struct found *x = a, *y = b;

	return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

/* Remove the least recently used entries of dir, but keep, until at most
 * keep_bytes remain; how many went into *removed */
static int trim(const char *dir, uint64_t keep_bytes, const char *keep,
		uint32_t *removed)
{
	uint64_t total = 0;
	struct found *f;
	size_t n;
	int ret = scan(dir, &f, &n);

	if (removed)
		*removed = 0;
	if (ret)
		return ret;
	for (size_t i = 0; i < n; i++)
		total += f[i].size;
	qsort(f, n, sizeof(*f), by_age);
	for (size_t i = 0; i < n && total > keep_bytes; i++) {
		char path[PATH_MAX];

		snprintf(path, sizeof(path), "%s/%s", dir, f[i].name);
		if (keep && !strcmp(path, keep))
			continue;
		if (unlink(path) && errno != ENOENT) {
			ret = -errno;
			break;
		}
		total -= f[i].size;
		if (removed)
			(*removed)++;
	}
	free(f);
	return ret;
}

/* The cache's bound: $NP_CACHE_MAX bytes (K, M, G suffixes), else
 * NPI_CACHE_MAX_DEFAULT */
#define NPI_CACHE_MAX_DEFAULT (16ull << 30)
static uint64_t max_bytes(void)
{
	const char *s = getenv("NP_CACHE_MAX");
	char *end;
	unsigned long long v;

	if (!s || !*s)
		return NPI_CACHE_MAX_DEFAULT;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return NPI_CACHE_MAX_DEFAULT;
	switch (*end) {
	case 'K':
	case 'k':
		return v << 10;
	case 'M':
	case 'm':
		return v << 20;
	case 'G':
	case 'g':
		return v << 30;
	default:
		return v;
	}
}

int np_cache_trim(const char *dir, uint64_t keep_bytes, uint32_t *removed)
{
	char d[PATH_MAX];
	int ret = np_cache_dir(dir, d, sizeof(d));

	if (removed)
		*removed = 0;
	return ret ? ret : trim(d, keep_bytes, NULL, removed);
}

int np_cache_list(const char *dir, np_cache_fn fn, void *opaque)
{
	char d[PATH_MAX], path[PATH_MAX + NAME_MAX + 2];
	struct found *f;
	size_t n;
	int ret = np_cache_dir(dir, d, sizeof(d));

	if (!ret)
		ret = scan(d, &f, &n);
	if (ret)
		return ret;
	for (size_t i = 0; i < n && !ret; i++) {
		struct np_cache_entry e = {
			.path = path, .size = f[i].size, .mtime = f[i].mtime};
		struct npi_cache_hdr h;
		int fd;

		snprintf(path, sizeof(path), "%s/%s", d, f[i].name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || pread(fd, &h, sizeof(h), 0) != sizeof(h))
			e.problem = "unreadable or shorter than its header";
		else if (memcmp(h.magic, cache_magic, sizeof(h.magic)))
			e.problem = "not an np image cache entry";
		else if (h.size != f[i].size)
			e.problem = "truncated or extended";
		else if (h.key.format != NPI_CACHE_FORMAT ||
			 strncmp(h.key.build, NP_BUILD_ID, sizeof(h.key.build)))
			e.problem = "stale: another compiler or format";
		if (fd >= 0)
			close(fd);
		if (!e.problem) {
			e.n_cards = h.n_cards;
			e.batch = h.key.co.batch;
			e.max_seq = h.key.co.max_seq;
			e.precision = h.key.co.precision;
			e.model_size = h.key.model_size;
		}
		ret = fn(opaque, &e);
	}
	free(f);
	return ret;
}

/* The built entry into its file: a temporary one, renamed into place. */
static void store(struct np_pipeline *p, struct npi_cache *k,
		  const struct np_pipeline_opts *o)
{
	char tmp[PATH_MAX + 16];
	int fd, ret;

	if (!k->path[0])
		return;
	ret = make_dir(k->dir);
	if (ret) {
		npi_log(p->ctx, LOG_NOTICE,
			"pipeline: image cache directory %s cannot be created "
			"(%s); loading without the cache (set NP_CACHE_DIR "
			"to a writable directory, or to off)",
			k->dir, strerror(-ret));
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", k->path);
	fd = mkstemp(tmp);
	if (fd < 0) {
		npi_log(p->ctx, LOG_NOTICE,
			"pipeline: image cache directory %s is not writable "
			"(%s); loading without the cache (set NP_CACHE_DIR "
			"to a writable directory, or to off)",
			k->dir, strerror(errno));
		return;
	}
	ret = write_all(fd, k->map, k->len, o);
	if (!ret && fchmod(fd, 0644))
		ret = -errno;
	if (close(fd) && !ret)
		ret = -EIO;
	if (!ret && rename(tmp, k->path))
		ret = -errno;
	if (ret) {
		npi_log(p->ctx, LOG_WARNING,
			"pipeline: image cache %s cannot be written (%s); "
			"loading without the cache",
			k->path, strerror(-ret));
		unlink(tmp);
		return;
	}
	npi_log(p->ctx, LOG_INFO, "pipeline: image cache entry written (%s)",
		k->path);
	trim(k->dir, max_bytes(), k->path, NULL);
}

int npi_cache_build(struct np_pipeline *p, struct npi_cache *k,
		    const struct np_pipeline_opts *o)
{
	const struct np_compiled *c = p->c;
	uint32_t n = np_compiled_n_cards(c);
	size_t n_calib = np_quant_calib_len(p->calib);
	struct build b = {.c = c, .k = k, .n = n};
	struct npi_cache_hdr *h;
	uint64_t off;
	int ret;

	off = sizeof(*h) + (uint64_t)n * sizeof(struct npi_cache_card);
	off = align_up(off, sizeof(float));
	{
		uint64_t calib_off = off, hdr_size;

		off += n_calib * sizeof(float);
		hdr_size = off;
		off = align_up(off, NPI_CACHE_ALIGN);
		b.card = calloc(n, sizeof(*b.card));
		if (!b.card)
			return -ENOMEM;
		for (uint32_t i = 0; i < n; i++) {
			const struct np_card_plan *pl = np_compiled_card(c, i);
			struct npi_cache_card *e = &b.card[i];

			e->kind = (uint32_t)pl->kind;
			e->first_layer = pl->first_layer;
			e->n_layers = pl->n_layers;
			e->vocab_begin = pl->vocab_begin;
			e->vocab_end = pl->vocab_end;
			e->prog = pl->prog;
			e->core_bytes = pl->core_bytes;
			e->stored = plan_stored(pl);
			e->off = off;
			off = align_up(off + e->stored * NP_NUM_CORES,
				       NPI_CACHE_ALIGN);
		}
		k->len = off;
		k->map = mmap(NULL, k->len, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (k->map == MAP_FAILED) {
			k->map = NULL;
			free(b.card);
			return -ENOMEM;
		}
		h = (struct npi_cache_hdr *)k->map;
		memcpy(h->magic, cache_magic, sizeof(h->magic));
		h->hdr_size = (uint32_t)hdr_size;
		h->n_cards = n;
		h->size = k->len;
		h->calib_off = calib_off;
		h->n_calib = (uint32_t)n_calib;
		h->key = k->key;
	}
	ret = np_quant_calib_export(p->calib, (float *)(k->map + h->calib_off),
				    n_calib);
	ret = ret ? ret : render_all(p, &b, o);
	if (!ret) {
		memcpy(k->map + sizeof(*h), b.card, n * sizeof(*b.card));
		hash128(k->map, h->hdr_size, h->meta_hash);
		k->h = h;
		k->card = (const struct npi_cache_card *)(k->map + sizeof(*h));
		store(p, k, o);
	}
	free(b.card);
	return ret;
}
