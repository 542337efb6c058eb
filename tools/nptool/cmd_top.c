// SPDX-License-Identifier: MIT
/*
 * top: status, refreshed every interval until interrupted; one JSON
 * document per refresh.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "dev.h"

static void on_signal(int sig)
{
	npt_stop = 1;
}

int npt_cmd_top(struct npt *t, int argc, char **argv)
{
	double interval = 1.0, t0;
	struct npt_sample *a = NULL, *b = NULL, *tmp;
	struct npt_source s;
	bool tty = isatty(STDOUT_FILENO);
	struct npt_cols_opts table;
	long count = 0;
	int rc, prc;

	rc = npt_parse_interval(t, argc, argv, &interval, &count, true);
	if (!rc) {
		rc = npt_source_open(t, &s);
		if (rc)
			npt_source_close(&s);
	}
	if (rc) {
		/* one document carrying the errors */
		npt_doc_begin(t);
		npt_doc_end(t, rc);
		return rc;
	}
	a = calloc(s.n, sizeof(*a));
	b = calloc(s.n, sizeof(*b));
	if (!a || !b) {
		rc = NPT_EXIT_DEVERR;
		goto out;
	}
	npt_status_default(&table);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	npt_sample_all(&s, a);
	t0 = npt_now();
	for (long k = 0; !npt_stop && (!count || k < count); k++) {
		double now;

		npt_sleep(interval);
		if (npt_stop)
			break;
		npt_sample_all(&s, b);
		now = npt_now();
		npt_doc_begin(t);
		rc = npt_tele_errors(t, &s, b);
		if (t->j) {
			npt_tele_json(t, &s, a, b, now - t0);
		} else {
			if (tty)
				fputs("\033[H\033[J", stdout);
			printf("nptool top: %zu cards, every %.1fs "
			       "(Ctrl-C quits)\n",
			       s.n, interval);
			prc = npt_status_print(&table, &s, a, b, now - t0);
			if (prc)
				rc = prc;
		}
		npt_doc_end(t, rc);
		fflush(stdout);
		tmp = a;
		a = b;
		b = tmp;
		t0 = now;
	}
out:
	free(a);
	free(b);
	npt_source_close(&s);
	return rc;
}
