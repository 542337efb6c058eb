// SPDX-License-Identifier: MIT
/*
 * np emulator core: deterministic fault injection.
 *
 * Every fault strikes at a place the host names (a queue's n-th descriptor,
 * an SRAM word), never at a random time, so a test that injects one sees
 * the same failure on every run. Queue faults live in the queue (q->lock)
 * and are consumed by its worker; the dead flag is read on the MMIO and
 * interrupt paths; bit flips are a short table under emu->lock, checked
 * where the card reads SRAM, with an atomic length so that reads skip the
 * lock while nothing is armed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "emu_priv.h"
#include "np_prog.h"

_Static_assert(NP_EMU_ENGINE_COMPUTE == NP_EMU_COMPUTE_Q,
	       "the compute queue's engine number is its queue index");

#define ECC_WORD 8u

/* emu->lock held: drop flip i. */
static void flip_remove_locked(struct np_emu *emu, unsigned int i)
{
	unsigned int n = atomic_load(&emu->n_flips);

	emu->flips[i] = emu->flips[n - 1];
	atomic_store(&emu->n_flips, n - 1);
}

/* emu->lock held. */
static int flip_arm_locked(struct np_emu *emu, uint64_t addr, unsigned int bits)
{
	uint64_t word = addr & ~(uint64_t)(ECC_WORD - 1);
	unsigned int n = atomic_load(&emu->n_flips);
	struct np_emu_flip *f = NULL;
	unsigned int before = 0;

	for (unsigned int i = 0; i < n; i++)
		if (emu->flips[i].word == word)
			f = &emu->flips[i];
	if (!f) {
		if (n == NP_EMU_MAX_FLIPS)
			return -ENOSPC;
		f = &emu->flips[n];
		f->word = word;
		f->bits = 0;
		atomic_store(&emu->n_flips, n + 1);
	}
	before = f->bits;
	f->bits = before + bits > 2 ? 2 : before + bits;
	/* ECC hides one flipped bit from every reader; two corrupt the data
	 * that the word holds. */
	if (f->bits == 2 && before < 2) {
		emu->sram[addr] ^= 0x3;
		atomic_fetch_add(&emu->sram_gen, 1);
	}
	return 0;
}

/* emu->lock held: the read of flip i. Returns true for an uncorrected
 * error (the flip stays), false for a corrected one (scrubbed). */
static bool flip_read_locked(struct np_emu *emu, unsigned int i)
{
	if (emu->flips[i].bits < 2) {
		atomic_fetch_add(&emu->sram_ce, 1);
		flip_remove_locked(emu, i);
		return false;
	}
	atomic_fetch_add(&emu->sram_ue, 1);
	emu->status |= NP_STATUS_FATAL;
	np_emu_error_irq_locked(emu);
	return true;
}

uint32_t np_emu_fault_sram_read(struct np_emu *emu, uint64_t addr, uint64_t len,
				uint64_t *err_addr)
{
	uint32_t err = NP_ERR_NONE;

	if (!atomic_load(&emu->n_flips) ||
	    addr - NP_CA_SRAM_BASE >= emu->sram_size)
		return NP_ERR_NONE;
	addr -= NP_CA_SRAM_BASE;
	pthread_mutex_lock(&emu->lock);
	for (unsigned int i = 0; i < atomic_load(&emu->n_flips);) {
		const struct np_emu_flip *f = &emu->flips[i];

		if (f->word + ECC_WORD <= addr || f->word >= addr + len) {
			i++;
			continue;
		}
		if (flip_read_locked(emu, i)) {
			*err_addr = NP_CA_SRAM_BASE + emu->flips[i].word;
			err = NP_ERR_SRAM_UE;
			break;
		}
	}
	pthread_mutex_unlock(&emu->lock);
	return err;
}

void np_emu_fault_sram_write(struct np_emu *emu, uint64_t addr, uint64_t len)
{
	if (!atomic_load(&emu->n_flips) ||
	    addr - NP_CA_SRAM_BASE >= emu->sram_size)
		return;
	addr -= NP_CA_SRAM_BASE;
	pthread_mutex_lock(&emu->lock);
	/* A write covering the whole word stores fresh check bits. */
	for (unsigned int i = 0; i < atomic_load(&emu->n_flips);) {
		const struct np_emu_flip *f = &emu->flips[i];

		if (f->word >= addr && f->word + ECC_WORD <= addr + len)
			flip_remove_locked(emu, i);
		else
			i++;
	}
	pthread_mutex_unlock(&emu->lock);
}

uint32_t np_emu_fault_job_read(struct np_emu *emu, uint64_t prog,
			       uint64_t *err_addr)
{
	uint64_t off = prog - NP_CA_SRAM_BASE;
	uint32_t err = NP_ERR_NONE;
	struct npk_card c;
	uint64_t reach;

	if (!atomic_load(&emu->n_flips) || off >= emu->sram_size ||
	    emu->sram_size - off < sizeof(c))
		return NP_ERR_NONE;
	/* A layer program reads weights and KV cache on every core, up to
	 * the high-water mark its header declares; a header the job will
	 * refuse anyway reads only itself. */
	memcpy(&c, emu->sram + off, sizeof(c));
	reach = c.magic == NPK_MAGIC && c.core_bytes <= NP_CORE_SRAM_SIZE ?
			c.core_bytes :
			sizeof(c);
	pthread_mutex_lock(&emu->lock);
	for (unsigned int i = 0; i < atomic_load(&emu->n_flips);) {
		const struct np_emu_flip *f = &emu->flips[i];
		uint64_t core_off = f->word % NP_CORE_SRAM_SIZE;

		if (core_off >= reach) {
			i++;
			continue;
		}
		if (flip_read_locked(emu, i)) {
			*err_addr = NP_CA_SRAM_BASE + emu->flips[i].word;
			err = NP_ERR_SRAM_UE;
			break;
		}
	}
	pthread_mutex_unlock(&emu->lock);
	return err;
}

void np_emu_fault_clear(struct np_emu *emu)
{
	atomic_store(&emu->n_flips, 0);
}

static int arm_queue(struct np_emu *emu, enum np_emu_fault fault,
		     const struct np_emu_fault_args *args)
{
	struct np_emu_queue *q;
	int rc = 0;

	if (!args || !args->n ||
	    (args->engine >= emu->cfg.dma_engines &&
	     args->engine != NP_EMU_ENGINE_COMPUTE))
		return -EINVAL;
	q = &emu->q[args->engine];
	pthread_mutex_lock(&q->lock);
	if (q->hold) {
		rc = -EBUSY;
	} else {
		q->fault = fault;
		q->fault_countdown = args->n;
	}
	pthread_mutex_unlock(&q->lock);
	return rc;
}

int np_emu_inject_args(struct np_emu *emu, enum np_emu_fault fault,
		       const struct np_emu_fault_args *args)
{
	int rc = 0;

	pthread_mutex_lock(&emu->lock);
	if (emu->status & NP_STATUS_RESETTING) {
		pthread_mutex_unlock(&emu->lock);
		return -EBUSY;
	}
	switch (fault) {
	case NP_EMU_FAULT_SRAM_CE:
		atomic_fetch_add(&emu->sram_ce, 1);
		break;
	case NP_EMU_FAULT_SRAM_UE:
		atomic_fetch_add(&emu->sram_ue, 1);
		emu->status |= NP_STATUS_FATAL;
		np_emu_error_irq_locked(emu);
		break;
	case NP_EMU_FAULT_OVERHEAT:
		np_emu_telemetry_overheat(emu, np_emu_now_ns());
		break;
	case NP_EMU_FAULT_DEAD:
		atomic_store(&emu->dead, true);
		break;
	case NP_EMU_FAULT_SRAM_FLIP:
		if (!args || args->addr - NP_CA_SRAM_BASE >= emu->sram_size ||
		    args->bits < 1 || args->bits > 2)
			rc = -EINVAL;
		else
			rc = flip_arm_locked(emu, args->addr - NP_CA_SRAM_BASE,
					     args->bits);
		break;
	case NP_EMU_FAULT_DMA_ERROR:
	case NP_EMU_FAULT_HANG:
		/* Queue locks come before emu->lock. */
		pthread_mutex_unlock(&emu->lock);
		return arm_queue(emu, fault, args);
	default:
		rc = -EINVAL;
		break;
	}
	pthread_mutex_unlock(&emu->lock);
	return rc;
}

int np_emu_inject(struct np_emu *emu, enum np_emu_fault fault)
{
	return np_emu_inject_args(emu, fault, NULL);
}

#define ARG_ENGINE (1u << 0)
#define ARG_N (1u << 1)
#define ARG_ADDR (1u << 2)
#define ARG_BITS (1u << 3)

static const struct {
	const char *name;
	enum np_emu_fault fault;
	unsigned int args;
} fault_kinds[] = {
	{"sram-ce", NP_EMU_FAULT_SRAM_CE, 0},
	{"sram-ue", NP_EMU_FAULT_SRAM_UE, 0},
	{"overheat", NP_EMU_FAULT_OVERHEAT, 0},
	{"dead", NP_EMU_FAULT_DEAD, 0},
	{"dma-error", NP_EMU_FAULT_DMA_ERROR, ARG_ENGINE | ARG_N},
	{"hang", NP_EMU_FAULT_HANG, ARG_ENGINE | ARG_N},
	{"sram-flip", NP_EMU_FAULT_SRAM_FLIP, ARG_ADDR | ARG_BITS},
};

/* A whole number in C syntax, up to max, ending at the next ',' or end. */
static int parse_num(const char **p, uint64_t max, uint64_t *out)
{
	char *end;

	if (**p < '0' || **p > '9')
		return -EINVAL;
	errno = 0;
	*out = strtoull(*p, &end, 0);
	if (errno || *out > max || (*end && *end != ','))
		return -EINVAL;
	*p = end;
	return 0;
}

static int parse_arg(const char **p, unsigned int *seen,
		     struct np_emu_fault_args *args)
{
	static const struct {
		const char *key;
		unsigned int bit;
	} keys[] = {{"engine=", ARG_ENGINE},
		    {"n=", ARG_N},
		    {"addr=", ARG_ADDR},
		    {"bits=", ARG_BITS}};
	uint64_t v;

	for (unsigned int k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		size_t len = strlen(keys[k].key);

		if (strncmp(*p, keys[k].key, len))
			continue;
		if (*seen & keys[k].bit)
			return -EINVAL;
		*seen |= keys[k].bit;
		*p += len;
		switch (keys[k].bit) {
		case ARG_ENGINE:
			if (!strncmp(*p, "compute", 7) &&
			    ((*p)[7] == ',' || !(*p)[7])) {
				args->engine = NP_EMU_ENGINE_COMPUTE;
				*p += 7;
				return 0;
			}
			if (parse_num(p, NP_MAX_DMA_ENGINES - 1, &v))
				return -EINVAL;
			args->engine = (unsigned int)v;
			return 0;
		case ARG_N:
			if (parse_num(p, UINT32_MAX, &v) || !v)
				return -EINVAL;
			args->n = (uint32_t)v;
			return 0;
		case ARG_ADDR:
			if (parse_num(p, UINT64_MAX, &v))
				return -EINVAL;
			args->addr = v;
			return 0;
		default:
			if (parse_num(p, 2, &v) || !v)
				return -EINVAL;
			args->bits = (unsigned int)v;
			return 0;
		}
	}
	return -EINVAL;
}

int np_emu_fault_parse(const char *spec, enum np_emu_fault *fault,
		       struct np_emu_fault_args *args)
{
	const char *colon, *p;
	unsigned int seen = 0;
	size_t len;

	memset(args, 0, sizeof(*args));
	if (!spec)
		return -EINVAL;
	colon = strchr(spec, ':');
	len = colon ? (size_t)(colon - spec) : strlen(spec);
	for (unsigned int i = 0;
	     i < sizeof(fault_kinds) / sizeof(fault_kinds[0]); i++) {
		if (strlen(fault_kinds[i].name) != len ||
		    strncmp(spec, fault_kinds[i].name, len))
			continue;
		if (!fault_kinds[i].args != !colon)
			return -EINVAL;
		for (p = colon ? colon + 1 : spec + len; *p;) {
			if (parse_arg(&p, &seen, args))
				return -EINVAL;
			if (*p == ',' && !*++p)
				return -EINVAL; /* trailing ',' */
		}
		if (seen != fault_kinds[i].args)
			return -EINVAL;
		*fault = fault_kinds[i].fault;
		return 0;
	}
	return -EINVAL;
}
