// SPDX-License-Identifier: MIT
/* nptool's use of libnp; see dev.h. */
#include "dev.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>

#include "np_abi.h"

int npt_errno_exit(int err)
{
	switch (err) {
	case 0:
		return NPT_EXIT_OK;
	case -ENODEV:
	case -ENOENT:
		return NPT_EXIT_NODEV;
	case -ENOTSUP:
		return NPT_EXIT_UNAVAIL;
	default:
		return NPT_EXIT_DEVERR;
	}
}

int npt_open(struct npt *t, const struct np_open_opts *opts,
	     struct np_ctx **out)
{
	struct np_open_opts o = {0};
	int rc;

	if (opts)
		o = *opts;
	o.log.fn = npt_log_err;
	o.log.opaque = t;
	o.log.level = NP_LOG_WARNING;
	rc = np_open(t->spec, &o, out);
	if (rc)
		npt_err(t, "cannot open cards '%s': %s%s", t->spec,
			strerror(-rc),
			rc == -EBUSY ? " (another process may hold them; "
				       "'nptool list' and 'nptool status' "
				       "work meanwhile)" :
			rc == -ENODEV || rc == -ENOENT ?
				       " (set -d or NP_DEVICES, e.g. "
				       "NP_DEVICES=emu:16; 'nptool doctor' "
				       "checks the host)" :
				       "");
	/* libnp refuses a malformed spec with -EINVAL: the user's mistake */
	if (rc == -EINVAL)
		return NPT_EXIT_USAGE;
	return npt_errno_exit(rc);
}

bool npt_spec_is_emu(const char *spec)
{
	struct np_spec s;

	return !np_spec_parse(spec, &s, NULL, 0) && s.kind == NP_SPEC_EMU;
}

const char *npt_state_name(uint32_t st)
{
	/* the same words and order as the driver's card_state attribute */
	if (st & NP_STATUS_FATAL)
		return "fatal";
	if (st & NP_STATUS_RESETTING)
		return "resetting";
	if (st & NP_STATUS_THROTTLED)
		return "throttled";
	return st & NP_STATUS_READY ? "ready" : "not-ready";
}

const char *npt_fw_str(char *buf, size_t len, uint32_t fw)
{
	snprintf(buf, len, "%u.%u.%u", fw >> 16, (fw >> 8) & 0xff, fw & 0xff);
	return buf;
}

static const struct {
	const char *key;
	uint32_t reg, reg_hi; /* reg_hi 0: 32-bit register */
	const char *sysfs; /* attribute of the PCI device */
	const char *hwmon; /* or of its hwmon device */
	uint32_t hwmon_div; /* hwmon unit -> our unit */
} tf_desc[NPT_TF_COUNT] = {
	[NPT_TF_TEMP] = {"temp_mc", NP_REG_TEMP, 0, NULL, "temp1_input", 1},
	[NPT_TF_TEMP_MAX] = {"temp_max_mc", NP_REG_TEMP_MAX, 0, NULL,
			     "temp1_max", 1},
	[NPT_TF_TEMP_CRIT] = {"temp_crit_mc", NP_REG_TEMP_CRIT, 0, NULL,
			      "temp1_crit", 1},
	/* hwmon reports power in microwatts */
	[NPT_TF_POWER] = {"power_mw", NP_REG_POWER, 0, NULL, "power1_input",
			  1000},
	[NPT_TF_VOLTAGE] = {"voltage_mv", NP_REG_VOLTAGE, 0, NULL, "in0_input",
			    1},
	[NPT_TF_CLOCK] = {"core_clock_mhz", NP_REG_CORE_CLK, 0,
			  "core_clock_mhz", NULL, 0},
	[NPT_TF_BUSY] = {"busy_percent", NP_REG_BUSY, 0, "busy_percent", NULL,
			 0},
	[NPT_TF_UPTIME] = {"uptime_ms", NP_REG_UPTIME_LO, NP_REG_UPTIME_HI,
			   "uptime_ms", NULL, 0},
	[NPT_TF_DMA_BYTES] = {"dma_bytes", NP_REG_DMA_BYTES_LO,
			      NP_REG_DMA_BYTES_HI, "dma_bytes", NULL, 0},
	[NPT_TF_DMA_ERRORS] = {"dma_errors", NP_REG_DMA_ERRORS, 0, "dma_errors",
			       NULL, 0},
	[NPT_TF_SRAM_CE] = {"sram_ce", NP_REG_SRAM_CE, 0, "sram_ce", NULL, 0},
	[NPT_TF_SRAM_UE] = {"sram_ue", NP_REG_SRAM_UE, 0, "sram_ue", NULL, 0},
	[NPT_TF_THROTTLES] = {"throttle_count", NP_REG_THROTTLE_COUNT, 0,
			      "throttle_count", NULL, 0},
	[NPT_TF_SRAM_WEIGHTS] = {"sram_weight_bytes", NP_REG_USE_WEIGHTS, 0,
				 "sram_weight_bytes", NULL, 0},
	[NPT_TF_SRAM_KV] = {"sram_kv_bytes", NP_REG_USE_KV, 0, "sram_kv_bytes",
			    NULL, 0},
	[NPT_TF_SRAM_PROG] = {"sram_prog_bytes", NP_REG_USE_PROG, 0,
			      "sram_prog_bytes", NULL, 0},
	[NPT_TF_FB_USED] = {"fb_used_bytes", NP_REG_USE_FB, 0, "fb_used_bytes",
			    NULL, 0},
};

/* The use registers came with ABI 1.2. */
static bool tf_present(enum npt_tf f, const struct np_card_info *in)
{
	return f < NPT_TF_SRAM_WEIGHTS || in->abi_minor >= 2;
}

const char *npt_tf_key(enum npt_tf f)
{
	return tf_desc[f].key;
}

/* A 64-bit _LO/_HI pair: re-read when the high half moved meanwhile. */
static int reg64(struct np_card *c, uint32_t lo, uint32_t hi, uint64_t *v)
{
	uint32_t h1, l, h2;
	int rc;

	do {
		rc = np_card_reg_read(c, hi, &h1);
		if (!rc)
			rc = np_card_reg_read(c, lo, &l);
		if (!rc)
			rc = np_card_reg_read(c, hi, &h2);
		if (rc)
			return rc;
	} while (h1 != h2);
	*v = (uint64_t)h1 << 32 | l;
	return 0;
}

int npt_tele_regs(struct np_card *card, struct npt_tele *tl)
{
	struct np_card_info in;
	uint32_t st, v;
	int rc;

	memset(tl, 0, sizeof(*tl));
	rc = np_card_reg_read(card, NP_REG_STATUS, &st);
	if (rc)
		return rc;
	snprintf(tl->state, sizeof(tl->state), "%s", npt_state_name(st));
	np_card_info(card, &in);
	for (unsigned int f = 0; f < NPT_TF_COUNT; f++) {
		if (!tf_present(f, &in))
			continue;
		if (tf_desc[f].reg_hi) {
			rc = reg64(card, tf_desc[f].reg, tf_desc[f].reg_hi,
				   &tl->v[f]);
		} else {
			rc = np_card_reg_read(card, tf_desc[f].reg, &v);
			tl->v[f] = v;
		}
		if (rc)
			return rc;
		tl->valid |= 1u << f;
	}
	return 0;
}

/* One pass over the attributes: -EAGAIN as soon as the driver says the
 * card cannot be read right now (it is resetting, or being opened). */
static int tele_sysfs_once(const char *bdf, struct npt_tele *tl)
{
	char buf[64];
	long long v = 0;
	int rc;

	memset(tl, 0, sizeof(*tl));
	for (unsigned int f = 0; f < NPT_TF_COUNT; f++) {
		if (tf_desc[f].sysfs) {
			char *end;

			rc = npt_card_attr(bdf, tf_desc[f].sysfs, buf,
					   sizeof(buf));
			if (!rc) {
				errno = 0;
				v = strtoll(buf, &end, 0);
				rc = errno || end == buf ? -EINVAL : 0;
			}
		} else {
			rc = npt_card_hwmon(bdf, tf_desc[f].hwmon, &v);
			if (!rc)
				v /= tf_desc[f].hwmon_div;
		}
		if (rc == -EAGAIN)
			return rc;
		if (rc || v < 0)
			continue;
		tl->v[f] = (uint64_t)v;
		tl->valid |= 1u << f;
	}
	rc = npt_card_attr(bdf, "card_state", tl->state, sizeof(tl->state));
	if (rc == -EAGAIN || (rc && !tl->valid))
		return rc == -EAGAIN ? rc : -ENOENT;
	if (!tl->state[0])
		snprintf(tl->state, sizeof(tl->state), "unknown");
	return 0;
}

int npt_tele_sysfs(const char *bdf, struct npt_tele *tl)
{
	const struct timespec pause = {.tv_nsec = 50 * 1000 * 1000};
	int rc;

	/* a reset or an open by another process lasts a moment: wait it out
	 * for up to a second */
	for (int i = 0; (rc = tele_sysfs_once(bdf, tl)) == -EAGAIN && i < 20;
	     i++)
		nanosleep(&pause, NULL);
	return rc;
}

void npt_fill(void *p, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull | 1;
	unsigned char *b = p;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(b + i, &x, 8);
	}
	for (; i < len; i++)
		b[i] = (unsigned char)(seed + i);
}

static int xfer_host(struct np_card *c, enum np_xfer_op op, struct np_buf *b,
		     size_t off, uint64_t ca, size_t len)
{
	struct np_xfer_spec s = {
		.op = op,
		.engine = -1,
		.buf = b,
		.buf_offset = off,
		.card_addr = ca,
		.len = len,
	};

	return np_xfer_run(c, &s);
}

int npt_h2c(struct np_card *c, struct np_buf *b, size_t off, uint64_t ca,
	    size_t len)
{
	return xfer_host(c, NP_XFER_H2C, b, off, ca, len);
}

int npt_c2h(struct np_card *c, struct np_buf *b, size_t off, uint64_t ca,
	    size_t len)
{
	return xfer_host(c, NP_XFER_C2H, b, off, ca, len);
}

int npt_roundtrip(struct np_card *c, struct np_buf *b, uint64_t ca, size_t len,
		  uint64_t seed, uint64_t *bad)
{
	unsigned char *w = np_buf_ptr(b), *r = w + len;
	int rc;

	npt_fill(w, len, seed);
	memset(r, 0, len);
	rc = npt_h2c(c, b, 0, ca, len);
	if (!rc)
		rc = npt_c2h(c, b, len, ca, len);
	if (rc)
		return rc;
	for (size_t i = 0; i < len; i++) {
		if (w[i] != r[i]) {
			*bad = ca + i;
			return 1;
		}
	}
	return 0;
}

int npt_xfer_batch(struct np_card *c, const struct np_xfer_spec *spec,
		   unsigned int n, double *secs)
{
	struct np_xfer **x = calloc(n, sizeof(*x));
	unsigned int sub = 0;
	double t0;
	int rc = 0;

	if (!x)
		return -ENOMEM;
	t0 = npt_now();
	for (; sub < n && !rc; sub++)
		rc = np_xfer_submit(c, spec, &x[sub]);
	if (rc)
		sub--;
	for (unsigned int i = 0; i < sub; i++) {
		int err = np_xfer_wait(x[i], NP_TIMEOUT_DEFAULT);

		if (err && !rc)
			rc = err;
		np_xfer_free(x[i]);
	}
	*secs = npt_now() - t0;
	free(x);
	return rc;
}

bool npt_card_arg_is(const char *arg, unsigned int idx, const char *name,
		     const char *serial)
{
	size_t n = strlen(arg);
	char *end;
	unsigned long v;

	if (!n)
		return false;
	/* 16 hex digits are a serial, even when all of them are decimal */
	if (n == 16 && strspn(arg, "0123456789abcdefABCDEF") == 16)
		return serial && !strcasecmp(arg, serial);
	if (isdigit((unsigned char)arg[0])) {
		errno = 0;
		v = strtoul(arg, &end, 10);
		if (!*end)
			return !errno && v == idx;
	}
	if (name && !strcasecmp(arg, name))
		return true;
	/* BB:DD.F, the domain 0000 left out (as lspci prints it) */
	if (name && n == 7 && strlen(name) == 12 &&
	    !strncmp(name, "0000:", 5) && !strcasecmp(arg, name + 5))
		return true;
	return false;
}

int npt_card_find(struct npt *t, struct np_ctx *ctx, const char *what,
		  const char *arg, unsigned int *idx)
{
	unsigned int n = np_ctx_num_cards(ctx);

	for (unsigned int i = 0; i < n; i++) {
		struct np_card_info in;
		char serial[17] = "";

		if (!np_card_info(np_ctx_card(ctx, i), &in) && in.serial)
			snprintf(serial, sizeof(serial), "%016llx",
				 (unsigned long long)in.serial);
		if (npt_card_arg_is(arg, i, np_card_name(np_ctx_card(ctx, i)),
				    serial)) {
			*idx = i;
			return NPT_EXIT_OK;
		}
	}
	npt_err(t,
		"%s: no card %s in '%s': give an index 0..%u, a name (PCI "
		"address or emu:N) or a serial, as 'nptool list' shows them",
		what, arg, t->spec, n ? n - 1 : 0);
	return NPT_EXIT_USAGE;
}

/* sel[i] for each card named by an index, a name or a serial; all for
 * none */
static int select_cards(struct npt *t, struct npt_cards *cs, int argc,
			char **argv)
{
	for (unsigned int i = 0; i < cs->n; i++)
		cs->sel[i] = argc == 0;
	for (int a = 0; a < argc; a++) {
		unsigned int idx;
		int rc = npt_card_find(t, cs->ctx, "CARD", argv[a], &idx);

		if (rc)
			return rc;
		cs->sel[idx] = true;
	}
	for (unsigned int i = 0; i < cs->n; i++)
		cs->nsel += cs->sel[i];
	return NPT_EXIT_OK;
}

int npt_cards_open(struct npt *t, const struct np_open_opts *opts, int argc,
		   char **argv, size_t buf_size, struct npt_cards *cs)
{
	char sz[32];
	int rc;

	memset(cs, 0, sizeof(*cs));
	rc = npt_open(t, opts, &cs->ctx);
	if (rc)
		return rc;
	cs->n = np_ctx_num_cards(cs->ctx);
	cs->sel = calloc(cs->n, sizeof(*cs->sel));
	if (!cs->sel)
		return NPT_EXIT_DEVERR;
	rc = select_cards(t, cs, argc, argv);
	if (rc)
		return rc;
	rc = np_buf_alloc(cs->ctx, buf_size, &cs->buf);
	if (rc) {
		npt_err(t,
			"cannot allocate a %s DMA buffer: %s; 'nptool doctor' "
			"checks the memlock limit",
			npt_fmt_size(sz, sizeof(sz), buf_size), strerror(-rc));
		return npt_errno_exit(rc);
	}
	return NPT_EXIT_OK;
}

void npt_cards_close(struct npt_cards *cs)
{
	np_buf_free(cs->buf);
	free(cs->sel);
	np_close(cs->ctx);
	memset(cs, 0, sizeof(*cs));
}

void npt_row_use(struct npt_card_row *r, const struct npt_tele *tl)
{
	const uint32_t sram = 1u << NPT_TF_SRAM_WEIGHTS | 1u << NPT_TF_SRAM_KV |
			      1u << NPT_TF_SRAM_PROG;

	r->sram_used = tl && (tl->valid & sram) == sram ?
			       (int64_t)(tl->v[NPT_TF_SRAM_WEIGHTS] +
					 tl->v[NPT_TF_SRAM_KV] +
					 tl->v[NPT_TF_SRAM_PROG]) :
			       -1;
	r->fb_used = tl && (tl->valid & 1u << NPT_TF_FB_USED) ?
			     (int64_t)tl->v[NPT_TF_FB_USED] :
			     -1;
}

static int row_from_card(struct npt_card_row *r, struct np_card *c)
{
	struct npt_tele tl;
	struct np_card_info in;
	struct npt_pci p;
	uint32_t st;
	int rc;

	memset(r, 0, sizeof(*r));
	rc = np_card_info(c, &in);
	if (!rc)
		rc = np_card_reg_read(c, NP_REG_STATUS, &st);
	if (rc)
		return rc;
	r->index = in.index;
	snprintf(r->name, sizeof(r->name), "%s", in.name);
	r->vendor = in.vendor_id;
	r->device = in.device_id;
	r->subsys_vendor = in.subsys_vendor_id;
	r->subsys_device = in.subsys_id;
	r->revision = in.revision;
	npt_fw_str(r->fw, sizeof(r->fw), in.fw_version);
	snprintf(r->serial, sizeof(r->serial), "%016llx",
		 (unsigned long long)in.serial);
	r->link_gen = (int)in.link_gen;
	r->link_width = (int)in.link_width;
	r->max_link_gen = -1;
	r->max_link_width = -1;
	r->iommu_group = in.iommu_group;
	r->numa_node = -1;
	snprintf(r->state, sizeof(r->state), "%s", npt_state_name(st));
	npt_row_use(r, npt_tele_regs(c, &tl) ? NULL : &tl);
	if (!npt_pci_read(in.name, &p)) {
		snprintf(r->bdf, sizeof(r->bdf), "%s", p.bdf);
		snprintf(r->driver, sizeof(r->driver), "%s", p.driver);
		r->numa_node = p.numa_node;
		r->max_link_gen = npt_speed_to_gen(p.max_link_speed);
		r->max_link_width = p.max_link_width;
		r->nholders = npt_card_holders(p.bdf, in.iommu_group,
					       r->holders, NPT_MAX_HOLDERS);
		if (r->nholders < 0)
			r->nholders = 0;
	}
	return 0;
}

static void json_int_or_null(struct npt_json *j, const char *k, int v)
{
	if (v < 0)
		npt_json_knull(j, k);
	else
		npt_json_kint(j, k, v);
}

static void json_str_or_null(struct npt_json *j, const char *k, const char *v)
{
	if (v[0])
		npt_json_kstr(j, k, v);
	else
		npt_json_knull(j, k);
}

/* The members of a card object shared by list and info. */
void npt_card_row_json(struct npt_json *j, const struct npt_card_row *r)
{
	npt_json_kuint(j, "index", r->index);
	npt_json_kstr(j, "name", r->name);
	json_str_or_null(j, "bdf", r->bdf);
	npt_json_key(j, "ids");
	npt_json_obj_open(j);
	npt_json_key(j, "vendor");
	npt_json_strf(j, "0x%04x", r->vendor);
	npt_json_key(j, "device");
	npt_json_strf(j, "0x%04x", r->device);
	npt_json_key(j, "subsystem_vendor");
	npt_json_strf(j, "0x%04x", r->subsys_vendor);
	npt_json_key(j, "subsystem_device");
	npt_json_strf(j, "0x%04x", r->subsys_device);
	npt_json_key(j, "revision");
	npt_json_strf(j, "0x%02x", r->revision);
	npt_json_obj_close(j);
	json_str_or_null(j, "fw_version", r->fw);
	json_str_or_null(j, "serial", r->serial);
	npt_json_key(j, "link");
	npt_json_obj_open(j);
	json_int_or_null(j, "gen", r->link_gen);
	json_int_or_null(j, "width", r->link_width);
	json_int_or_null(j, "max_gen", r->max_link_gen);
	json_int_or_null(j, "max_width", r->max_link_width);
	npt_json_obj_close(j);
	json_str_or_null(j, "driver", r->driver);
	json_int_or_null(j, "iommu_group", r->iommu_group);
	json_int_or_null(j, "numa_node", r->numa_node);
	npt_json_kstr(j, "state", r->state);
	if (r->sram_used >= 0)
		npt_json_kuint(j, "sram_used_bytes", (uint64_t)r->sram_used);
	else
		npt_json_knull(j, "sram_used_bytes");
	if (r->fb_used >= 0)
		npt_json_kuint(j, "fb_used_bytes", (uint64_t)r->fb_used);
	else
		npt_json_knull(j, "fb_used_bytes");
	npt_holders_json(j, r->holders, r->nholders);
}

void npt_holders_json(struct npt_json *j, const struct npt_holder *h, int n)
{
	npt_json_key(j, "holders");
	npt_json_arr_open(j);
	for (int i = 0; i < n; i++) {
		npt_json_obj_open(j);
		npt_json_kint(j, "pid", h[i].pid);
		npt_json_kstr(j, "name", h[i].comm);
		npt_json_obj_close(j);
	}
	npt_json_arr_close(j);
}

const char *npt_holders_str(char *buf, size_t len, const struct npt_holder *h,
			    int n)
{
	size_t k = 0;

	buf[0] = '\0';
	for (int i = 0; i < n && k < len; i++)
		k += (size_t)snprintf(buf + k, len - k, "%s%s[%d]",
				      i ? " " : "", h[i].comm, h[i].pid);
	return buf;
}

/* Rows of the cards of a libnp context. */
int npt_card_rows(struct npt *t, struct np_ctx *ctx, struct npt_card_row **out,
		  size_t *n)
{
	unsigned int cnt = np_ctx_num_cards(ctx);
	struct npt_card_row *rows = calloc(cnt, sizeof(*rows));

	if (!rows)
		return NPT_EXIT_DEVERR;
	for (unsigned int i = 0; i < cnt; i++) {
		int rc = row_from_card(&rows[i], np_ctx_card(ctx, i));

		if (rc) {
			npt_err(t, "card %u: cannot read its registers: %s", i,
				strerror(-rc));
			free(rows);
			return NPT_EXIT_DEVERR;
		}
	}
	*out = rows;
	*n = cnt;
	return NPT_EXIT_OK;
}

void npt_link_str(char *buf, size_t len, int gen, int width)
{
	if (gen < 0 || width < 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "Gen%d x%d", gen, width);
}

static int source_open(struct npt *t, struct npt_source *s, bool npd)
{
	int rc;

	memset(s, 0, sizeof(*s));
	if (npt_spec_is_emu(t->spec)) {
		const char *url = npd ? npt_npd_url() : NULL;

		/* emulated cards live inside the process that made them:
		 * those of a running npd are seen through npd */
		if (url && !npt_npd_open(url, &s->npd, &s->n)) {
			if (!t->json)
				fprintf(stderr,
					"nptool: %s: showing the %zu emulated "
					"cards of npd[%ld] at %s (devices %s, "
					"model %s)\n",
					t->spec, s->n, npt_npd_pid(s->npd),
					npt_npd_where(s->npd),
					npt_npd_devices(s->npd),
					npt_npd_model(s->npd));
			return NPT_EXIT_OK;
		}
		rc = npt_open(t, NULL, &s->ctx);
		if (!rc)
			s->n = np_ctx_num_cards(s->ctx);
		/* these are ours, not those of a run in another process */
		if (!rc && !t->json)
			fprintf(stderr,
				"nptool: %s: these are %zu emulated cards this "
				"nptool created, idle; another process's "
				"emulated cards cannot be seen from here (no "
				"npd answered at %s; NP_NPD=http://HOST:PORT "
				"names a running npd)\n",
				t->spec, s->n,
				url ? url :
				npd ? "NP_NPD=off" :
				      "-");
		return rc;
	}
	return npt_sysfs_cards(t, &s->pci, &s->n);
}

int npt_source_open(struct npt *t, struct npt_source *s)
{
	return source_open(t, s, true);
}

int npt_source_open_own(struct npt *t, struct npt_source *s)
{
	return source_open(t, s, false);
}

void npt_source_close(struct npt_source *s)
{
	np_close(s->ctx);
	free(s->pci);
	npt_npd_close(s->npd);
}

const char *npt_source_name(const struct npt_source *s, size_t i)
{
	if (s->npd)
		return npt_npd_card_str(s->npd, i, "name");
	return s->ctx ? np_card_name(np_ctx_card(s->ctx, (unsigned int)i)) :
			s->pci[i].bdf;
}

void npt_source_serial(const struct npt_source *s, size_t i, char *buf,
		       size_t len)
{
	struct np_card_info in;

	buf[0] = 0;
	if (s->npd)
		snprintf(buf, len, "%s", npt_npd_card_str(s->npd, i, "serial"));
	else if (s->ctx &&
		 !np_card_info(np_ctx_card(s->ctx, (unsigned int)i), &in))
		snprintf(buf, len, "%016llx", (unsigned long long)in.serial);
	else if (s->pci)
		npt_card_attr(s->pci[i].bdf, "serial", buf, len);
}

int npt_source_holders(const struct npt_source *s, size_t i,
		       struct npt_holder *h)
{
	int n;

	/* npd's cards: npd holds them all */
	if (s->npd) {
		h[0].pid = (int)npt_npd_pid(s->npd);
		snprintf(h[0].comm, sizeof(h[0].comm), "npd");
		return 1;
	}
	if (s->ctx)
		return 0;
	n = npt_card_holders(s->pci[i].bdf, s->pci[i].iommu_group, h,
			     NPT_MAX_HOLDERS);
	return n < 0 ? 0 : n;
}

void npt_sample_all(const struct npt_source *s, struct npt_sample *out)
{
	if (s->npd) {
		npt_npd_sample(s->npd, out, s->n);
		return;
	}
	for (size_t i = 0; i < s->n; i++) {
		out[i].pipe_busy_ns = -1;
		if (s->ctx)
			out[i].err = npt_tele_regs(
				np_ctx_card(s->ctx, (unsigned int)i),
				&out[i].tl);
		else
			out[i].err = npt_tele_sysfs(s->pci[i].bdf, &out[i].tl);
	}
}

bool npt_sample_has(const struct npt_sample *s, enum npt_tf f)
{
	return !s->err && (s->tl.valid & (1u << f));
}

/* Bytes per second between two samples, or -1 if unknown. */
double npt_dma_rate(const struct npt_sample *a, const struct npt_sample *b,
		    double secs)
{
	if (!npt_sample_has(a, NPT_TF_DMA_BYTES) ||
	    !npt_sample_has(b, NPT_TF_DMA_BYTES) || secs <= 0 ||
	    b->tl.v[NPT_TF_DMA_BYTES] < a->tl.v[NPT_TF_DMA_BYTES])
		return -1;
	return (double)(b->tl.v[NPT_TF_DMA_BYTES] - a->tl.v[NPT_TF_DMA_BYTES]) /
	       secs;
}

/* Report unreadable cards once; returns the exit code of the sample. */
int npt_tele_errors(struct npt *t, const struct npt_source *s,
		    const struct npt_sample *smp)
{
	int rc = NPT_EXIT_OK;

	for (size_t i = 0; i < s->n; i++) {
		if (!smp[i].err)
			continue;
		if (s->pci && smp[i].err == -ENOENT &&
		    strcmp(s->pci[i].driver, NPT_DRIVER))
			npt_err(t,
				"card %s: no telemetry: bound to '%s', not "
				"%s; 'nptool doctor' prints the command "
				"that binds it",
				s->pci[i].bdf,
				s->pci[i].driver[0] ? s->pci[i].driver :
						      "no driver",
				NPT_DRIVER);
		else if (s->npd)
			npt_err(t,
				"card %s: npd at %s no longer answers or "
				"lists it (%s)",
				npt_source_name(s, i), npt_npd_where(s->npd),
				strerror(-smp[i].err));
		else if (smp[i].err == -EAGAIN)
			npt_err(t,
				"card %s: telemetry unavailable for a second: "
				"the card is resetting or being opened; run "
				"the command again",
				npt_source_name(s, i));
		else
			npt_err(t, "card %s: cannot read telemetry: %s",
				npt_source_name(s, i), strerror(-smp[i].err));
		rc = NPT_EXIT_DEVERR;
	}
	return rc;
}

void npt_tele_json(struct npt *t, const struct npt_source *s,
		   const struct npt_sample *a, const struct npt_sample *b,
		   double secs)
{
	struct npt_json *j = t->j;
	struct npt_holder h[NPT_MAX_HOLDERS];
	int nh;

	npt_json_kstr(j, "source",
		      s->npd ? "npd" :
		      s->ctx ? "registers" :
			       "sysfs");
	npt_json_kdouble(j, "interval_s", secs);
	npt_json_key(j, "cards");
	npt_json_arr_open(j);
	for (size_t i = 0; i < s->n; i++) {
		double rate = npt_dma_rate(&a[i], &b[i], secs);

		npt_json_obj_open(j);
		npt_json_kuint(j, "index", i);
		npt_json_kstr(j, "name", npt_source_name(s, i));
		if (b[i].err)
			npt_json_knull(j, "state");
		else
			npt_json_kstr(j, "state", b[i].tl.state);
		for (unsigned int f = 0; f < NPT_TF_COUNT; f++) {
			if (npt_sample_has(&b[i], f))
				npt_json_kuint(j, npt_tf_key(f), b[i].tl.v[f]);
			else
				npt_json_knull(j, npt_tf_key(f));
		}
		if (rate >= 0)
			npt_json_kdouble(j, "dma_bytes_per_s", rate);
		else
			npt_json_knull(j, "dma_bytes_per_s");
		if (npt_sample_has(&b[i], NPT_TF_SRAM_WEIGHTS) &&
		    npt_sample_has(&b[i], NPT_TF_SRAM_KV) &&
		    npt_sample_has(&b[i], NPT_TF_SRAM_PROG))
			npt_json_kuint(j, "sram_used_bytes",
				       b[i].tl.v[NPT_TF_SRAM_WEIGHTS] +
					       b[i].tl.v[NPT_TF_SRAM_KV] +
					       b[i].tl.v[NPT_TF_SRAM_PROG]);
		else
			npt_json_knull(j, "sram_used_bytes");
		nh = npt_source_holders(s, i, h);
		npt_holders_json(j, h, nh);
		npt_json_obj_close(j);
	}
	npt_json_arr_close(j);
}
