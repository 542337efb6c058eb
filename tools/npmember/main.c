// SPDX-License-Identifier: MIT
/*
 * npmember: a member of a pipeline that spans hosts (docs/cluster.md).
 * It owns this host's cards and serves, for the head (npd --cluster or
 * any np_cluster_load caller), the range of the model's cards the head
 * assigns it: frames arrive over UCX from the host before it, go through
 * its cards, and leave for the host after it.
 *
 *   npmember --listen 10.77.1.2:7000 -m model.gguf [-d emu:16]
 *
 * Logs go to stderr, one line each. SIGTERM and SIGINT stop it.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "np/cluster.h"
#include "np/np.h"

static struct np_member *member;

static void on_signal(int sig)
{
	(void)sig;
	if (member)
		np_member_stop(member);
}

static void log_line(void *opaque, enum np_log_level level, const char *msg)
{
	static const char *const lv[] = {"",	    "",	      "",     "error",
					 "warning", "notice", "info", "debug"};
	struct timespec ts;

	(void)opaque;
	clock_gettime(CLOCK_REALTIME, &ts);
	fprintf(stderr, "npmember: %lld.%03ld %s: %s\n", (long long)ts.tv_sec,
		ts.tv_nsec / 1000000, (unsigned int)level < 8 ? lv[level] : "",
		msg);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: npmember --listen ADDRESS:PORT -m MODEL.gguf "
		"[-d SPEC] [-v]\n"
		"  --listen A:P   where the head and the host before this one "
		"connect (IPv4)\n"
		"  -m, --model F  this host's copy of the model (the head "
		"checks its hash)\n"
		"  -d, --devices  the cards: $NP_DEVICES, else emu:16\n"
		"  -v, --verbose  debug messages too\n"
		"  --inject CARD:FAULT  emulated cards (tests): a fault as "
		"np_card_inject\n"
		"                 spells it, armed when the first segment is "
		"loaded\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"listen", required_argument, NULL, 'l'},
		{"model", required_argument, NULL, 'm'},
		{"devices", required_argument, NULL, 'd'},
		{"verbose", no_argument, NULL, 'v'},
		{"inject", required_argument, NULL, 'i'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *listen = NULL, *model = NULL, *spec = getenv("NP_DEVICES");
	const char *inject = NULL;
	struct np_open_opts oo = {.log = {.fn = log_line}};
	struct np_ctx *ctx = NULL;
	struct sigaction sa = {.sa_handler = on_signal};
	int c, ret;

	while ((c = getopt_long(argc, argv, "l:m:d:vh", lo, NULL)) != -1) {
		switch (c) {
		case 'l':
			listen = optarg;
			break;
		case 'm':
			model = optarg;
			break;
		case 'd':
			spec = optarg;
			break;
		case 'v':
			oo.log.level = NP_LOG_DEBUG;
			break;
		case 'i':
			inject = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!listen || !model || optind != argc) {
		usage(stderr);
		return 2;
	}
	ret = np_open(spec && *spec ? spec : "emu:16", &oo, &ctx);
	if (ret) {
		fprintf(stderr, "npmember: cannot open the cards (%s)\n",
			strerror(-ret));
		return 1;
	}
	ret = np_member_create(ctx,
			       &(struct np_member_opts){.listen = listen,
							.model = model,
							.inject = inject},
			       &member);
	if (ret) {
		np_close(ctx);
		return 1;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	fprintf(stderr, "npmember: serving %u cards on %s\n",
		np_ctx_num_cards(ctx), listen);
	ret = np_member_run(member);
	np_member_destroy(member);
	member = NULL;
	np_close(ctx);
	return ret ? 1 : 0;
}
