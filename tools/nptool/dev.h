/* SPDX-License-Identifier: MIT */
/*
 * nptool's use of libnp: opening the cards of the device spec, telemetry
 * from registers (any card libnp opened) or from the driver's hwmon/sysfs
 * (real cards, also while another process holds them), and the DMA helpers
 * the tests share.
 */
#ifndef NPTOOL_DEV_H
#define NPTOOL_DEV_H

#include <np/np.h>

#include "cols.h"
#include "nptool.h"
#include "sysfs.h"

/* Open t->spec. Prints libnp's messages and returns an exit code. */
int npt_open(struct npt *t, const struct np_open_opts *opts,
	     struct np_ctx **out);
/* Exit code for a libnp -errno. */
int npt_errno_exit(int err);
/* Whether the spec names emulated cards (no sysfs view exists); a spec
 * libnp refuses does not. */
bool npt_spec_is_emu(const char *spec);
/* "ready", "throttled", "resetting", "fatal", "not-ready" */
const char *npt_state_name(uint32_t status_reg);
/* "1.2.3" */
const char *npt_fw_str(char *buf, size_t len, uint32_t fw);

/* Telemetry fields; raw units as in np_abi.h. */
enum npt_tf {
	NPT_TF_TEMP, /* millidegrees C */
	NPT_TF_TEMP_MAX,
	NPT_TF_TEMP_CRIT,
	NPT_TF_POWER, /* milliwatts */
	NPT_TF_VOLTAGE, /* millivolts */
	NPT_TF_CLOCK, /* MHz */
	NPT_TF_BUSY, /* percent */
	NPT_TF_UPTIME, /* ms */
	NPT_TF_DMA_BYTES,
	NPT_TF_DMA_ERRORS,
	NPT_TF_SRAM_CE,
	NPT_TF_SRAM_UE,
	NPT_TF_THROTTLES,
	/* what a loaded model takes (NP_REG_USE_*, ABI 1.2), bytes */
	NPT_TF_SRAM_WEIGHTS,
	NPT_TF_SRAM_KV,
	NPT_TF_SRAM_PROG,
	NPT_TF_FB_USED,
	NPT_TF_COUNT,
};

struct npt_tele {
	char state[24];
	uint64_t v[NPT_TF_COUNT];
	uint32_t valid; /* bit per enum npt_tf */
};

/* JSON key of a field ("temp_mc"). */
const char *npt_tf_key(enum npt_tf f);
/* From registers through libnp. 0 or -errno. */
int npt_tele_regs(struct np_card *card, struct npt_tele *tl);
/* From the np driver's hwmon and sysfs attributes. 0, -ENOENT when the
 * card has none (not bound to the np driver), -EAGAIN when the card could
 * not be read for a second (resetting). */
int npt_tele_sysfs(const char *bdf, struct npt_tele *tl);

/* Fill len bytes with a pattern derived from seed. */
void npt_fill(void *p, size_t len, uint64_t seed);
/* Copy len bytes of buf at off to card address ca, or back. */
int npt_h2c(struct np_card *c, struct np_buf *b, size_t off, uint64_t ca,
	    size_t len);
int npt_c2h(struct np_card *c, struct np_buf *b, size_t off, uint64_t ca,
	    size_t len);

/*
 * Write len bytes of a pattern from seed to card address ca and read them
 * back (buf holds at least 2 * len). Returns 0 when they match, 1 with
 * *bad set to the card address of the first wrong byte, or -errno.
 */
int npt_roundtrip(struct np_card *c, struct np_buf *b, uint64_t ca, size_t len,
		  uint64_t seed, uint64_t *bad);

/*
 * Run n copies of spec at once (round-robin over the card's engines) and
 * return the wall time from the first submit to the last completion in
 * *secs. 0 or the -errno of the first transfer that failed.
 */
int npt_xfer_batch(struct np_card *c, const struct np_xfer_spec *spec,
		   unsigned int n, double *secs);

/* Tests of the commands that validate chains; each returns 0 when the
 * card passed, 1 when it failed (details in the out parameters), or
 * -errno when a transfer or register access failed. */

/* memtest of [base, base + size) at level 0 quick, 1 medium, 2 long;
 * b holds at least NPT_MEMTEST_BUF bytes. */
#define NPT_MEMTEST_BUF (8u << 20)
int npt_memtest_region(struct np_card *c, struct np_buf *b, uint64_t base,
		       uint64_t size, unsigned int level, uint64_t *nbad,
		       uint64_t *first_bad);
/* src's SRAM [0, size) -> dst's FB iters times; b holds 2 * size bytes
 * and its first half the pattern already written to src's SRAM. */
int npt_p2p_pair(struct np_card *src, struct np_card *dst, struct np_buf *b,
		 size_t size, unsigned int iters, double *bytes_per_s,
		 uint64_t *bad_addr);
/* Reset the card, then check that it came back healthy; why says what
 * was wrong. b holds at least 128 KiB. */
int npt_reset_verify(struct np_card *c, struct np_buf *b, double *ms, char *why,
		     size_t len);

/*
 * Card selection, the same on every command (CARD arguments, --card,
 * --inject CARD:FAULT): a card is named by its index in the context (in
 * decimal), its name (a PCI address, also BB:DD.F without the domain, in
 * any case; emu:N) or its serial (16 hex digits, any case).
 * npt_card_arg_is: whether arg names the card of index idx, name and
 * serial ("" or NULL when unknown). npt_card_find: the card of ctx that
 * arg names into *idx, else a usage error naming what (the option), arg
 * and the forms.
 */
bool npt_card_arg_is(const char *arg, unsigned int idx, const char *name,
		     const char *serial);
int npt_card_find(struct npt *t, struct np_ctx *ctx, const char *what,
		  const char *arg, unsigned int *idx);

/* The cards a test command works on. */
struct npt_cards {
	struct np_ctx *ctx;
	unsigned int n; /* cards in the context */
	bool *sel; /* sel[i]: card i was named (all when none was) */
	unsigned int nsel;
	struct np_buf *buf; /* DMA buffer for the command */
};

/*
 * Open t->spec with opts (may be NULL), select the cards named by the
 * "CARD..." arguments (indices or names; none: all) and allocate a DMA
 * buffer of buf_size bytes. Returns 0, or an exit code after printing
 * what was wrong; npt_cards_close() is safe either way.
 */
int npt_cards_open(struct npt *t, const struct np_open_opts *opts, int argc,
		   char **argv, size_t buf_size, struct npt_cards *cs);
void npt_cards_close(struct npt_cards *cs);

/* One card as list and info show it; unknown fields are empty / -1. */
struct npt_card_row {
	unsigned int index;
	char name[32];
	char bdf[NPT_BDF_LEN];
	unsigned int vendor, device, subsys_vendor, subsys_device, revision;
	char fw[24];
	char serial[40];
	int link_gen, link_width, max_link_gen, max_link_width;
	char driver[64];
	int iommu_group;
	int numa_node;
	char state[24];
	struct npt_holder holders[NPT_MAX_HOLDERS]; /* npt_card_holders() */
	int nholders;
	/* bytes a loaded model takes (the use registers): SRAM for weights,
	 * KV cache and programs, and frame buffer; -1 when unknown */
	int64_t sram_used, fb_used;
};
/* r's sram_used and fb_used from a telemetry read (-1 where it has
 * none). */
void npt_row_use(struct npt_card_row *r, const struct npt_tele *tl);

/* Rows of the cards of a libnp context. Returns an exit code. */
int npt_card_rows(struct npt *t, struct np_ctx *ctx, struct npt_card_row **out,
		  size_t *n);
/* The members of a card object shared by list and info. */
void npt_card_row_json(struct npt_json *j, const struct npt_card_row *r);
/* The "holders" array of a card object: [{"pid": 42, "name": "..."}]. */
void npt_holders_json(struct npt_json *j, const struct npt_holder *h, int n);
/* "name[pid] name[pid]" into buf; "" when n is 0. */
const char *npt_holders_str(char *buf, size_t len, const struct npt_holder *h,
			    int n);
/* "Gen3 x8", or "-" when the link is unknown */
void npt_link_str(char *buf, size_t len, int gen, int width);

/*
 * Telemetry of every card of t->spec, for status, top and pipeline. Real
 * cards are read through the np driver's hwmon and sysfs attributes, which
 * work while another process holds the cards through VFIO; emulated cards
 * through libnp's register access.
 */

struct npt_npd;

struct npt_source {
	struct np_ctx *ctx; /* emulated cards: registers */
	struct npt_pci *pci; /* real cards: sysfs */
	struct npt_npd *npd; /* a running npd's cards (emulated) */
	size_t n;
};

struct npt_sample {
	struct npt_tele tl;
	int err; /* 0 or -errno of the read */
	/* npd: the time this card of the pipeline had a frame to compute
	 * since npd's scheduler started; -1 when unknown */
	int64_t pipe_busy_ns;
};

/*
 * npd_src.c: the cards of a running npd (GET /v1/np/cards). npt_npd_url:
 * where to look, $NP_NPD or npd's default http://127.0.0.1:8080, NULL
 * when NP_NPD is "off" or empty. npt_npd_open: 0 and the card count, or
 * -ENOENT when no npd answers there. npt_npd_sample fetches again.
 */
const char *npt_npd_url(void);
int npt_npd_open(const char *url, struct npt_npd **out, size_t *n);
void npt_npd_close(struct npt_npd *d);
const char *npt_npd_devices(const struct npt_npd *d);
const char *npt_npd_model(const struct npt_npd *d);
long npt_npd_pid(const struct npt_npd *d);
const char *npt_npd_where(const struct npt_npd *d);
/* card i's string field (name, serial, state), "" when absent */
const char *npt_npd_card_str(const struct npt_npd *d, size_t i,
			     const char *key);
void npt_npd_sample(struct npt_npd *d, struct npt_sample *out, size_t n);

/* Open the cards of t->spec. Returns an exit code; close it either way. */
int npt_source_open(struct npt *t, struct npt_source *s);
/* The same, but never a running npd's cards: own emulated cards (nptool
 * pipeline runs its own model on them). */
int npt_source_open_own(struct npt *t, struct npt_source *s);
void npt_source_close(struct npt_source *s);
/* Name of card i: libnp's name or the BDF. */
const char *npt_source_name(const struct npt_source *s, size_t i);
/* Card i's serial, 16 hex digits, or "" when unknown. */
void npt_source_serial(const struct npt_source *s, size_t i, char *buf,
		       size_t len);
/* The processes holding card i (none for emulated cards); see
 * npt_card_holders(). Returns how many, never an error. */
int npt_source_holders(const struct npt_source *s, size_t i,
		       struct npt_holder *h);
/* Read every card into out[0..s->n). */
void npt_sample_all(const struct npt_source *s, struct npt_sample *out);
/* Whether field f of the sample was read. */
bool npt_sample_has(const struct npt_sample *s, enum npt_tf f);
/* Bytes per second between two samples, or -1 if unknown. */
double npt_dma_rate(const struct npt_sample *a, const struct npt_sample *b,
		    double secs);
/* Report unreadable cards once; returns the exit code of the sample. */
int npt_tele_errors(struct npt *t, const struct npt_source *s,
		    const struct npt_sample *smp);
/* The cards of status and top as JSON members; the DMA rate is the
 * difference of the samples a and b, secs apart. */
void npt_tele_json(struct npt *t, const struct npt_source *s,
		   const struct npt_sample *a, const struct npt_sample *b,
		   double secs);
/* The status table of status and top (cmd_status.c): the columns o
 * picks, in its format. Returns an exit code. */
int npt_status_print(const struct npt_cols_opts *o, const struct npt_source *s,
		     const struct npt_sample *a, const struct npt_sample *b,
		     double secs);
/* The default columns of status, as a table. */
void npt_status_default(struct npt_cols_opts *o);

#endif /* NPTOOL_DEV_H */
