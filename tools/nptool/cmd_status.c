// SPDX-License-Identifier: MIT
/*
 * status: telemetry of every card.
 *
 * Real cards are read through the np driver's hwmon and sysfs attributes,
 * which work while another process (a model run) holds the cards through
 * VFIO. Emulated cards are read through libnp's register access. The DMA
 * rate is the difference of two dma_bytes samples an interval apart.
 */
#include <stdlib.h>

#include "dev.h"

int npt_cmd_status(struct npt *t, int argc, char **argv)
{
	double interval = 0.25, t0;
	struct npt_sample *a, *b;
	struct npt_source s;
	long count = 0;
	int rc;

	rc = npt_parse_interval(t, argc, argv, &interval, &count, false);
	if (rc)
		return rc;
	rc = npt_source_open(t, &s);
	if (rc) {
		npt_source_close(&s);
		return rc;
	}
	a = calloc(s.n, sizeof(*a));
	b = calloc(s.n, sizeof(*b));
	if (!a || !b) {
		rc = NPT_EXIT_DEVERR;
		goto out;
	}
	npt_sample_all(&s, a);
	t0 = npt_now();
	npt_sleep(interval);
	npt_sample_all(&s, b);
	interval = npt_now() - t0;
	rc = npt_tele_errors(t, &s, b);
	if (t->j)
		npt_tele_json(t, &s, a, b, interval);
	else
		npt_tele_table(&s, a, b, interval);
out:
	free(a);
	free(b);
	npt_source_close(&s);
	return rc;
}
