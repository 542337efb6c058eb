// SPDX-License-Identifier: MIT
/*
 * np_bench_kernels: how close the emulator's layer kernels come to this
 * machine's limits. In one run, on all its threads at once:
 *
 *   1. the INT8 SIMD peak: independent vpdpbusd (AVX-512 VNNI) or
 *      vpmaddubsw + vpmaddwd (AVX2) chains on registers, no memory;
 *   2. the memory bandwidth: a streaming read of a buffer far larger than
 *      the last-level cache;
 *   3. the layer kernels (npk_linear_isa, as npk_run calls them) of the
 *      reference "medium" shape (dim 1024, 14 layers, 16/4 heads, FFN
 *      2816, vocab 32000, w4a4 and an INT8 output layer; -w 2 or 8:
 *      INT2 or INT8 layer weights with INT8 activations), every variant
 *      this CPU runs, weights laid out as the 16 emulated cards hold them:
 *      one 192 MiB SRAM per layer and per output half, each matrix split
 *      over the 256 cores' 768 KiB blocks;
 *
 * and prints ns per MAC, the fraction of the INT8 peak (in MACs) and of
 * the memory bandwidth (weight bytes streamed) each variant reaches, and
 * the tokens/s the kernels alone would allow, with one token per pass
 * over the weights, with 4 and with 14 (decode passes of 2 and 7 joined
 * frames) and with npk_run's groups of 32 tokens; and the tokens per CPU
 * second of a thread, which other
 * processes on a shared machine disturb less than the wall-clock rates.
 *
 *   np_bench_kernels [-t THREADS] [-s SECONDS_PER_FIGURE] [-w 2|4|8]
 */
#include <errno.h>
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "np_abi.h"
#include "npk.h"
#include "npk_simd.h"

#define MED_DIM 1024u
#define MED_LAYERS 14u
#define MED_HEADS 16u
#define MED_KV 4u
#define MED_FFN 2816u
#define MED_VOCAB 32000u
#define MED_HD (MED_DIM / MED_HEADS)

static double clock_s(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double now(void)
{
	return clock_s(CLOCK_MONOTONIC);
}

/* ---- 1. INT8 SIMD peak ---- */

/* 8 independent chains of vpdpbusd: 8 x 64 MACs per iteration */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static uint64_t
peak_vnni(uint64_t iters, int32_t *sink)
{
	__m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-5);
	__m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0, s4 = s0,
		s5 = s0, s6 = s0, s7 = s0;

	for (uint64_t i = 0; i < iters; i++) {
		s0 = _mm512_dpbusd_epi32(s0, a, b);
		s1 = _mm512_dpbusd_epi32(s1, a, b);
		s2 = _mm512_dpbusd_epi32(s2, a, b);
		s3 = _mm512_dpbusd_epi32(s3, a, b);
		s4 = _mm512_dpbusd_epi32(s4, a, b);
		s5 = _mm512_dpbusd_epi32(s5, a, b);
		s6 = _mm512_dpbusd_epi32(s6, a, b);
		s7 = _mm512_dpbusd_epi32(s7, a, b);
		/* keep the compiler from folding the chains */
		__asm__ volatile("" : "+v"(a));
	}
	s0 = _mm512_add_epi32(_mm512_add_epi32(s0, s1),
			      _mm512_add_epi32(s2, s3));
	s4 = _mm512_add_epi32(_mm512_add_epi32(s4, s5),
			      _mm512_add_epi32(s6, s7));
	_mm512_storeu_si512(sink, _mm512_add_epi32(s0, s4));
	return iters * 8 * 64;
}

/* AVX2: vpmaddubsw + vpmaddwd + vpaddd, 8 chains x 32 MACs */
__attribute__((target("avx2"))) static uint64_t peak_avx2(uint64_t iters,
							  int32_t *sink)
{
	__m256i a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(-5);
	__m256i one = _mm256_set1_epi16(1);
	__m256i s[8];

	for (int k = 0; k < 8; k++)
		s[k] = _mm256_setzero_si256();
	for (uint64_t i = 0; i < iters; i++) {
		for (int k = 0; k < 8; k++)
			s[k] = _mm256_add_epi32(
				s[k], _mm256_madd_epi16(
					      _mm256_maddubs_epi16(a, b), one));
		__asm__ volatile("" : "+x"(a));
	}
	for (int k = 1; k < 8; k++)
		s[0] = _mm256_add_epi32(s[0], s[k]);
	_mm256_storeu_si256((void *)sink, s[0]);
	return iters * 8 * 32;
}

/* ---- 2. memory bandwidth ---- */

/* every byte of buf[0, len) read once, len a multiple of 128 */
__attribute__((target("avx2"))) static size_t
stream_read(const uint8_t *buf, size_t len, int32_t *sink)
{
	__m256i s = _mm256_setzero_si256();

	for (size_t i = 0; i < len; i += 128) {
		const uint8_t *p = buf + i;
		__m256i x = _mm256_or_si256(
			_mm256_or_si256(
				_mm256_loadu_si256((const void *)p),
				_mm256_loadu_si256((const void *)(p + 32))),
			_mm256_or_si256(
				_mm256_loadu_si256((const void *)(p + 64)),
				_mm256_loadu_si256((const void *)(p + 96))));

		s = _mm256_add_epi64(
			s, _mm256_sad_epu8(x, _mm256_setzero_si256()));
	}
	_mm256_storeu_si256((void *)sink, s);
	return len;
}

/* ---- threads: every figure runs on all threads at once ---- */

struct job {
	int kind; /* 0 peak, 1 stream, 2 layer kernels */
	enum npk_isa isa;
	unsigned int group; /* layer kernels: tokens per weight pass */
	double seconds;
	/* stream */
	const uint8_t *buf;
	size_t len;
	/* results */
	double work, elapsed, cpu; /* cpu: the thread's CPU seconds */
	int32_t sink[16];
};

static pthread_barrier_t start_line;

/* the medium shape's weights, shared read-only by all threads: blocked
 * as on a card (npk_wmat: a core's rows, then the next core's 768 KiB on) */
struct matrix {
	struct npk_wmat m;
	uint32_t row_bytes;
};
static struct matrix layers[MED_LAYERS][7];
static struct matrix out_half[2];
static uint8_t *srams[MED_LAYERS + 2]; /* one card's SRAM each */
static int8_t act4[MED_FFN], act8[MED_FFN];
static uint32_t wbits = 4; /* -w: the layers' weights */

static uint64_t macs_per_token(void)
{
	uint64_t m = 0;

	for (unsigned int l = 0; l < MED_LAYERS; l++)
		for (unsigned int k = 0; k < 7; k++)
			m += (uint64_t)layers[l][k].m.rows *
			     layers[l][k].m.cols;
	for (unsigned int k = 0; k < 2; k++)
		m += (uint64_t)out_half[k].m.rows * out_half[k].m.cols;
	return m;
}

static uint64_t bytes_per_token(void)
{
	uint64_t b = 0;

	for (unsigned int l = 0; l < MED_LAYERS; l++)
		for (unsigned int k = 0; k < 7; k++)
			b += (uint64_t)layers[l][k].m.rows *
			     layers[l][k].row_bytes;
	for (unsigned int k = 0; k < 2; k++)
		b += (uint64_t)out_half[k].m.rows * out_half[k].row_bytes;
	return b;
}

/* tokens through one matrix as npk_run does: the whole blocked matrix
 * in one call, every token of the group (the tokens share one activation
 * vector here; the work is the same) */
static void pass_matrix(enum npk_isa isa, const struct matrix *m,
			const int8_t *a, unsigned int group, int32_t *acc,
			void *tmp)
{
	npk_linear_isa(isa, &m->m, a, 0, group, acc, MED_VOCAB, tmp);
}

/* a group of tokens through every matrix of the model */
static void one_pass(enum npk_isa isa, unsigned int group, int32_t *acc,
		     void *tmp)
{
	for (unsigned int l = 0; l < MED_LAYERS; l++)
		for (unsigned int k = 0; k < 7; k++)
			/* FFN down (k 6) takes int8 activations */
			pass_matrix(isa, &layers[l][k],
				    k == 6 || wbits != 4 ? act8 : act4, group,
				    acc, tmp);
	for (unsigned int k = 0; k < 2; k++)
		pass_matrix(isa, &out_half[k], act8, group, acc, tmp);
}

static void *worker(void *arg)
{
	struct job *j = arg;
	static int32_t acc_dummy;
	int32_t *acc = malloc((size_t)32 * MED_VOCAB * sizeof(*acc));
	void *tmp = malloc(npk_linear_tmp_size(MED_FFN));
	double c0, t0, t;
	uint64_t rounds = 0;

	if (!acc || !tmp) {
		free(acc);
		free(tmp);
		return NULL;
	}
	pthread_barrier_wait(&start_line);
	c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
	t0 = now();
	do {
		switch (j->kind) {
		case 0:
			j->work +=
				(double)(j->isa == NPK_ISA_AVX512_VNNI ?
						 peak_vnni(1 << 20, j->sink) :
						 peak_avx2(1 << 20, j->sink));
			break;
		case 1:
			j->work += (double)stream_read(j->buf, j->len, j->sink);
			break;
		default:
			one_pass(j->isa, j->group, acc, tmp);
			j->work += j->group;
			break;
		}
		rounds++;
		t = now() - t0;
	} while (t < j->seconds);
	j->elapsed = t;
	j->cpu = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
	acc_dummy += acc[0];
	free(acc);
	free(tmp);
	return NULL;
}

/* run kind on n threads at once; the sum of each thread's rate, and into
 * *per_cpu (if not NULL) its work per CPU second, averaged over the threads */
static double run_all(int n, int kind, enum npk_isa isa, unsigned int group,
		      double seconds, const uint8_t *buf, size_t len,
		      double *per_cpu)
{
	pthread_t th[64];
	struct job jobs[64];
	double rate = 0;

	pthread_barrier_init(&start_line, NULL, (unsigned int)n);
	for (int i = 0; i < n; i++) {
		jobs[i] = (struct job){.kind = kind,
				       .isa = isa,
				       .group = group,
				       .seconds = seconds,
				       .buf = buf + (len / n) * i,
				       .len = (len / n) & ~(size_t)127};
		pthread_create(&th[i], NULL, worker, &jobs[i]);
	}
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		rate += jobs[i].work / jobs[i].elapsed;
		if (per_cpu)
			*per_cpu += jobs[i].work / jobs[i].cpu / n;
	}
	pthread_barrier_destroy(&start_line);
	return rate;
}

static uint64_t rng_state = 0x853c49e6748fea9bull;

static uint8_t rnd8(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint8_t)(rng_state >> 56);
}

/* matrix m of the card whose SRAM is sram, its rows at *off in every
 * core's block (the compiler's layout: rows / 256 per core, rounded up,
 * rows NPK_ALIGN apart), random bytes */
static void matrix_init(struct matrix *m, uint8_t *sram, uint64_t *off,
			uint32_t rows, uint32_t cols, uint32_t bits)
{
	uint32_t rpc = (rows + NP_NUM_CORES - 1) / NP_NUM_CORES;

	m->row_bytes = ((cols * bits / 8) + NPK_ALIGN - 1) & ~(NPK_ALIGN - 1);
	m->m = (struct npk_wmat){
		.w = sram + *off,
		.stride = NP_CORE_SRAM_SIZE,
		.rows = rows,
		.cols = cols,
		.row_bytes = m->row_bytes,
		.bits = bits,
		.rpc = rpc,
	};
	for (uint32_t core = 0; core < NP_NUM_CORES; core++)
		for (size_t i = 0; i < (size_t)rpc * m->row_bytes; i++)
			sram[(size_t)core * NP_CORE_SRAM_SIZE + *off + i] =
				rnd8();
	*off += (uint64_t)rpc * m->row_bytes;
}

int main(int argc, char **argv)
{
	long nproc = sysconf(_SC_NPROCESSORS_ONLN);
	int threads = nproc > 0 && nproc <= 64 ? (int)nproc : 1, c;
	double secs = 2, peak, bw, layer_rate[NPK_ISA_N] = {0};
	size_t stream_len = (size_t)1 << 30;
	uint8_t *stream;
	uint64_t macs, wbytes;
	enum npk_isa pisa = npk_isa_best();

	while ((c = getopt(argc, argv, "t:s:w:")) != -1) {
		switch (c) {
		case 'w':
			wbits = (uint32_t)atoi(optarg);
			if (wbits != 2 && wbits != 4 && wbits != 8) {
				fprintf(stderr, "np_bench_kernels: -w takes 2, "
						"4 or 8 bits\n");
				return 2;
			}
			break;
		case 't':
			threads = atoi(optarg);
			break;
		case 's':
			secs = atof(optarg);
			break;
		default:
			fprintf(stderr, "usage: np_bench_kernels [-t THREADS] "
					"[-s SECONDS_PER_FIGURE] [-w 2|4|8]\n");
			return 2;
		}
	}
	if (threads < 1 || threads > 64 || !(secs > 0)) {
		fprintf(stderr, "np_bench_kernels: -t takes 1..64 threads, -s "
				"a positive number of seconds\n");
		return 2;
	}
	if (pisa == NPK_ISA_C) {
		fprintf(stderr, "np_bench_kernels: this CPU has neither AVX2 "
				"nor AVX-512 VNNI; no SIMD peak to measure\n");
		return 1;
	}
	for (unsigned int i = 0; i < MED_LAYERS + 2; i++) {
		/* untouched pages stay unallocated, as in the emulator */
		srams[i] = calloc(1, NP_SRAM_SIZE);
		if (!srams[i])
			return 1;
	}
	for (unsigned int l = 0; l < MED_LAYERS; l++) {
		uint64_t off = 0;
		static const uint32_t shape[7][2] = {
			{MED_DIM, MED_DIM}, /* Q */
			{MED_KV * MED_HD, MED_DIM}, /* K */
			{MED_KV * MED_HD, MED_DIM}, /* V */
			{MED_DIM, MED_DIM}, /* O */
			{MED_FFN, MED_DIM}, /* gate */
			{MED_FFN, MED_DIM}, /* up */
			{MED_DIM, MED_FFN}, /* down */
		};

		for (unsigned int k = 0; k < 7; k++)
			matrix_init(&layers[l][k], srams[l], &off, shape[k][0],
				    shape[k][1], wbits);
	}
	for (unsigned int k = 0; k < 2; k++) {
		uint64_t off = 0;

		matrix_init(&out_half[k], srams[MED_LAYERS + k], &off,
			    MED_VOCAB / 2, MED_DIM, 8);
	}
	for (unsigned int i = 0; i < MED_FFN; i++) {
		act4[i] = (int8_t)((int)(rnd8() & 15) - 8);
		act8[i] = (int8_t)rnd8();
	}
	stream = aligned_alloc(64, stream_len);
	if (!stream)
		return 1;
	memset(stream, 1, stream_len);
	macs = macs_per_token();
	wbytes = bytes_per_token();

	printf("np_bench_kernels: %d thread%s, %.1f s per figure, best "
	       "kernel %s\n",
	       threads, threads == 1 ? "" : "s", secs, npk_isa_name(pisa));
	peak = run_all(threads, 0, pisa, 1, secs, NULL, 0, NULL);
	printf("INT8 SIMD peak (%s, registers only)  %8.1f GMAC/s  "
	       "(%.1f GOPS)\n",
	       pisa == NPK_ISA_AVX512_VNNI ? "vpdpbusd" : "vpmaddubsw",
	       peak / 1e9, 2 * peak / 1e9);
	bw = run_all(threads, 1, pisa, 1, secs, stream, stream_len, NULL);
	printf("memory bandwidth (streaming read, %zu MiB)  %6.1f GB/s\n\n",
	       stream_len >> 20, bw / 1e9);
	printf("medium shape, one token through 14 %s layers and the "
	       "INT8 output layer:\n%.1f M MACs, %.1f MB of weights per "
	       "token\n",
	       wbits == 4 ? "w4a4" :
	       wbits == 2 ? "w2a8" :
			    "w8a8",
	       macs / 1e6, wbytes / 1e6);
	printf("%-12s %6s %10s %10s %9s %9s %10s %13s\n", "kernel", "tokens",
	       "ns/MAC", "GMAC/s", "of peak", "of mem bw", "tokens/s",
	       "tok/CPU-s/thr");
	for (int isa = 0; isa < NPK_ISA_N; isa++) {
		/* 1 token per weight pass, 4 and 14 (decode passes of 2
		 * and 7 joined frames) and npk_run's group of 32 (SIMD
		 * only: the portable kernel would take minutes) */
		static const unsigned int groups[] = {1, 4, 14, 32};

		for (unsigned int g = 0; g < 4; g++) {
			unsigned int group = groups[g];
			double tok, gmac, gbs, tok_cpu = 0;

			if (!npk_isa_available((enum npk_isa)isa) ||
			    (isa == NPK_ISA_C && group > 1))
				continue;
			tok = run_all(threads, 2, (enum npk_isa)isa, group,
				      secs, NULL, 0, &tok_cpu);
			if (group == 1)
				layer_rate[isa] = tok;
			gmac = tok * macs;
			gbs = tok * wbytes / group;
			printf("%-12s %6u %10.4f %10.2f %8.1f%% %8.1f%% "
			       "%10.1f %13.1f\n",
			       npk_isa_name((enum npk_isa)isa), group,
			       threads * 1e9 / gmac, gmac / 1e9,
			       100 * gmac / peak, 100 * gbs / bw, tok, tok_cpu);
		}
	}
	printf("\nspeedup of %s over the portable C, one token per pass: "
	       "%.1fx (ns/MAC is per thread)\n",
	       npk_isa_name(pisa), layer_rate[pisa] / layer_rate[NPK_ISA_C]);
	free(stream);
	for (unsigned int i = 0; i < MED_LAYERS + 2; i++)
		free(srams[i]);
	return 0;
}
