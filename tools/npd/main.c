// SPDX-License-Identifier: MIT
/*
 * npd: start-up, signals and shutdown.
 *
 * Every signal npd handles is blocked in all threads and taken by the main
 * thread with sigwait(): SIGTERM and SIGINT drain (stop accepting, finish
 * the requests that run, then exit 0), SIGHUP reopens the access log.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "http.h"
#include "npd.h"

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

void npd_log(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&log_mu);
	fputs("npd: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	pthread_mutex_unlock(&log_mu);
}

/* Many idle clients each hold a descriptor: take what the hard limit
 * allows. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void drain(void)
{
	struct timespec ts = {0, 10 * 1000 * 1000};

	npd_log("draining: no new connections; finishing %u requests",
		npd_engine_busy());
	npd_http_quiesce();
	npd_engine_drain();
	while (npd_engine_busy() || npd_http_connections())
		nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
	struct npd_config c;
	char err[512];
	sigset_t set;
	int ret, sig;

	npd_config_defaults(&c);
	ret = npd_config_args(&c, argc, argv, err, sizeof(err));
	if (ret) {
		if (ret < 0)
			fprintf(stderr, "npd: %s\n", err);
		npd_config_free(&c);
		return ret < 0 ? 2 : 0;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGPIPE);
	sigaddset(&set, SIGUSR1); /* the engine: the model cannot be served */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	raise_nofile();
	npd_metrics_init();
	if (npd_http_access_log(c.access_log)) {
		npd_config_free(&c);
		return 1;
	}
	ret = npd_engine_start(&c);
	if (!ret)
		ret = npd_http_start(&c);
	if (ret) {
		npd_engine_stop();
		npd_http_stop();
		npd_config_free(&c);
		return 1;
	}
	npd_log("listening on http://%s:%u (model %s, cards %s)",
		c.listen ? c.listen : "127.0.0.1", c.port, c.model,
		c.devices	     ? c.devices :
		getenv("NP_DEVICES") ? getenv("NP_DEVICES") :
				       "emu:16");
	for (;;) {
		if (sigwait(&set, &sig))
			continue;
		if (sig == SIGHUP) {
			npd_http_access_log(c.access_log);
			continue;
		}
		if (sig == SIGPIPE)
			continue;
		break;
	}
	if (sig == SIGUSR1)
		npd_log("exiting: the model cannot be served (a supervisor "
			"such as systemd's Restart=on-failure starts it "
			"again)");
	drain();
	npd_http_stop();
	npd_engine_stop();
	npd_log("stopped");
	npd_config_free(&c);
	return sig == SIGUSR1 ? 1 : 0;
}
