// SPDX-License-Identifier: MIT
/*
 * Session statistics (np_session_stats): the host's CPU time per phase of
 * the token loop, the forwarding engines' hop and credit figures, card
 * utilization and frames in flight.
 */
#include <string.h>
#include <unistd.h>

#include "pipe.h"

/* Start timing a token loop iteration, one in 2^NPI_PHASE_SAMPLE_BITS
 * (the CPU clock costs a system call), picked by Fibonacci hashing of the
 * count: an iteration's work has periods (micro-batches, compute jobs
 * posted 8 frames at a time) that every n-th one would alias with. */
void npi_phase_begin(struct npi_run *R)
{
	R->timing = (R->loops++ * 0x9e3779b97f4a7c15ull) >>
			    (64 - NPI_PHASE_SAMPLE_BITS) ==
		    0;
	if (!R->timing)
		return;
	R->timed_loops++;
	npi_thread_cpu_cost();
	R->cpu_t = npi_thread_cpu_ns();
	R->reg_t = npi_reg_acct;
}

/* Charge the CPU time and register accesses since the last call to
 * phase ph (np_session_stats.host_*), in a timed iteration. */
void npi_phase_end(struct npi_run *R, enum npi_phase ph)
{
	uint64_t now;
	struct npi_reg_acct b, *a = &R->reg_t;

	if (!R->timing)
		return;
	now = npi_thread_cpu_ns();
	b = npi_reg_acct;
	/* less the clock's own cost, which a loop not timed does not pay */
	R->cpu[ph] += now - R->cpu_t > npi_thread_cpu_cost() ?
			      now - R->cpu_t - npi_thread_cpu_cost() :
			      0;
	for (int k = 0; k < 2; k++)
		R->reg[ph].n[k] += b.n[k] - a->n[k];
	R->cpu_t = now;
	R->reg_t = b;
}

/* CPU time of phase ph over the whole loop without the emulated cards'
 * register handling (at the run's time per access; run: the whole call's
 * accesses) and, for NPI_SAMPLE, without the token callback. */
static uint64_t phase_host_ns(const struct npi_run *R, enum npi_phase ph,
			      const struct npi_reg_acct *run)
{
	uint64_t emu = npi_reg_emu_ns(run, &R->reg[ph]);
	uint64_t cb = ph == NPI_SAMPLE ? R->cpu_callback_timed : 0;

	if (!R->timed_loops || R->cpu[ph] < emu + cb)
		return 0;
	return (uint64_t)((double)(R->cpu[ph] - emu - cb) * (double)R->loops /
			  (double)R->timed_loops);
}

/*
 * Hop latency and credit stalls come from the card's own statistics
 * registers of the forwarding engine, exact (np_session_stats): its work
 * is the forwards (C2P), its fence waits the credit waits. A single-engine
 * card 0 also moves the host's frames on that engine: not measured; nor
 * is a card older than ABI 1.1, which has no statistics.
 */
static bool fwd_measured(const struct np_pipeline *p, uint32_t i)
{
	const struct npi_stage *st = &p->st[i];

	return i < p->n_layer && p->n_stages > 1 &&
	       st->card->info.abi_minor >= 1 && (st->fwd_engine || i);
}

static uint32_t fwd_rd(const struct npi_stage *st, uint32_t reg)
{
	return npi_ring_rd(&st->card->eng[st->fwd_engine].q, reg);
}

static void fwd_read(const struct npi_stage *st, struct npi_fwd_stats *s)
{
	s->fence_waits = fwd_rd(st, NP_Q_FENCE_WAITS);
	/* _LO first: it latches _HI */
	s->fence_ns = fwd_rd(st, NP_Q_FENCE_NS_LO);
	s->fence_ns |= (uint64_t)fwd_rd(st, NP_Q_FENCE_NS_HI) << 32;
	s->work_done = fwd_rd(st, NP_Q_WORK_DONE);
	s->work_ns = fwd_rd(st, NP_Q_WORK_NS_LO);
	s->work_ns |= (uint64_t)fwd_rd(st, NP_Q_WORK_NS_HI) << 32;
}

/*
 * Wait until the forwarding engine executed everything posted to it. A
 * forward the host saw complete (its writeback record) is in the
 * statistics once HEAD moved past it; between runs no frame is left, so
 * the engine drains.
 */
static void fwd_drain(const struct npi_stage *st, uint64_t deadline)
{
	uint32_t status;

	/* a card reading all ones is dead: nothing drains there, and the
	 * run's own checks name it at once (waiting here for the deadline
	 * made a card dead before the run cost one context timeout) */
	while ((status = fwd_rd(st, NP_Q_STATUS)) != UINT32_MAX &&
	       (fwd_rd(st, NP_Q_HEAD) != fwd_rd(st, NP_Q_TAIL) ||
		(status & NP_Q_STATUS_BUSY)) &&
	       npi_now_ns() < deadline)
		usleep(50);
}

static uint64_t fwd_deadline(const struct np_pipeline *p)
{
	return npi_now_ns() + (uint64_t)p->ctx->timeout_ms * 1000000ull;
}

void npi_fwd_start(struct npi_run *R)
{
	struct np_pipeline *p = R->p;
	uint64_t deadline = fwd_deadline(p);

	for (uint32_t i = 0; i < p->n_stages; i++) {
		struct npi_stage *st = &p->st[i];

		if (!fwd_measured(p, i))
			continue;
		/* the last forward of the previous run is not this run's */
		fwd_drain(st, deadline);
		fwd_read(st, &R->fwd0[i]);
		npi_ring_wr(&st->card->eng[st->fwd_engine].q, NP_Q_WORK_MAX_NS,
			    0);
	}
}

/* The run's statistics of every forwarding engine into stats. */
static void fwd_end(struct npi_run *R, struct np_session_stats *stats)
{
	struct np_pipeline *p = R->p;
	uint64_t deadline = fwd_deadline(p);

	for (uint32_t i = 0; i < p->n_stages; i++) {
		const struct npi_fwd_stats *a = &R->fwd0[i];
		struct npi_stage *st = &p->st[i];
		struct np_card_stats *c = i < stats->n_card && stats->card ?
						  &stats->card[i] :
						  NULL;
		struct npi_fwd_stats b;

		if (!fwd_measured(p, i))
			continue;
		fwd_drain(st, deadline);
		fwd_read(st, &b);
		/* a reset during the run cleared the counters */
		if (b.fence_ns < a->fence_ns || b.work_ns < a->work_ns)
			continue;
		if (!c)
			continue;
		c->hop_frames = b.work_done - a->work_done;
		c->hop_mean_ns = c->hop_frames ? (b.work_ns - a->work_ns) /
							 c->hop_frames :
						 0;
		c->hop_max_ns = fwd_rd(st, NP_Q_WORK_MAX_NS);
		c->credit_stalls = b.fence_waits - a->fence_waits;
		c->credit_stall_ns = b.fence_ns - a->fence_ns;
	}
}

/*
 * Card utilization: a card is busy while it has a frame to compute, its
 * input arrived (DATA) and its layer job has not finished (DONE). The
 * host samples the counters when it wakes, at most every NPI_SAMPLE_NS
 * and at least every NPI_POLL_MS, and charges the interval since the
 * last sample to the cards busy now.
 */
void npi_busy_sample(struct npi_run *R)
{
	struct np_pipeline *p = R->p;
	uint64_t now = npi_now_ns(), dt = now - R->busy_t;

	/* register reads cost a PCIe round trip each on real cards */
	if (dt < NPI_SAMPLE_NS)
		return;

	for (uint32_t i = 0; i < p->n_stages; i++) {
		struct npi_stage *st = &p->st[i];
		uint32_t data = 0, done = 0;

		np_card_event_read(st->card, EV_DATA, &data);
		np_card_event_read(st->card, EV_DONE, &done);
		if ((int32_t)((data - st->ev[EV_DATA]) -
			      (done - st->ev[EV_DONE])) > 0)
			R->busy_ns[i] += dt;
	}
	R->busy_t = now;
}

void npi_in_flight(struct npi_run *R, int delta)
{
	uint64_t now = npi_now_ns();

	R->in_flight_acc += (now - R->in_flight_t) * R->in_flight;
	R->in_flight_t = now;
	R->in_flight += delta;
	npi_busy_sample(R);
}

/* The run's statistics, before its buffers are freed (ret: its
 * result). */
void npi_stats_run(struct npi_run *R, struct np_session_stats *stats, int ret)
{
	struct np_pipeline *p = R->p;
	uint64_t wall = npi_now_ns() - R->t0;
	struct np_request_stats *rs = stats->req;
	struct np_card_stats *cs = stats->card;
	uint32_t n_cs = cs ? stats->n_card : 0;

	memset(stats, 0, sizeof(*stats));
	stats->req = rs;
	stats->card = cs;
	stats->n_card = n_cs;
	if (cs)
		memset(cs, 0, n_cs * sizeof(*cs));
	stats->wall_ns = wall;
	stats->tokens = R->tokens;
	stats->prompt_tokens = R->prompt_tokens;
	stats->frames = R->frames;
	stats->tokens_per_s = wall ? R->tokens * 1e9 / wall : 0;
	stats->avg_in_flight = wall ? (double)R->in_flight_acc / wall : 0;
	for (uint32_t i = 0; i < p->n_stages && wall; i++) {
		double busy = (double)R->busy_ns[i] / wall;

		if (i < n_cs)
			cs[i].busy = busy;
		stats->utilization += busy / p->n_stages;
	}
	if (!ret)
		fwd_end(R, stats);
}

/* The host's share, after they are: CPU time and register accesses
 * since cpu0 and reg0 (the start of np_session_run). */
void npi_stats_host(const struct npi_run *R, struct np_session_stats *stats,
		    uint64_t cpu0, const struct npi_reg_acct *reg0)
{
	struct npi_reg_acct d = npi_reg_acct;
	uint64_t cpu = npi_thread_cpu_ns() - cpu0 - R->cpu_callback;

	for (int k = 0; k < 2; k++) {
		d.n[k] -= reg0->n[k];
		d.timed[k] -= reg0->timed[k];
		d.ns[k] -= reg0->ns[k];
	}
	stats->host_emu_ns = npi_reg_emu_ns(&d, &d);
	stats->host_reg_reads = d.n[0];
	stats->host_reg_writes = d.n[1];
	stats->host_cpu_ns =
		cpu > stats->host_emu_ns ? cpu - stats->host_emu_ns : 0;
	stats->host_submit_ns = phase_host_ns(R, NPI_SUBMIT, &d);
	stats->host_wait_ns = phase_host_ns(R, NPI_WAIT, &d);
	stats->host_sample_ns = phase_host_ns(R, NPI_SAMPLE, &d);
}
