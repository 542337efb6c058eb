// SPDX-License-Identifier: MIT
/*
 * exporter: the cards' telemetry, error and throttle counters in the
 * Prometheus text exposition format (0.0.4) over HTTP, for a cluster's
 * Prometheus to scrape, like NVIDIA's dcgm-exporter (default
 * 127.0.0.1:9400, GET /metrics).
 *
 * Each scrape reads every card afresh: real cards through the np driver's
 * hwmon and sysfs attributes (which work while a model process holds the
 * cards, so the queue statistics show its pipeline), emulated cards
 * through the registers of the exporter's own libnp context. HTTP is
 * libmicrohttpd's, with one internal thread, so scrapes are serialised.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev.h"
#include "np_abi.h"

#define EXPORTER_DEFAULT "127.0.0.1:9400"

struct exporter {
	struct npt *t;
	struct npt_source src;
	struct npt_sample *smp;
	unsigned long long scrapes;
};

/* One metric per telemetry field: name, type, help, raw value * scale. */
static const struct {
	const char *name;
	const char *type;
	const char *help;
	double scale;
} tf_metric[NPT_TF_COUNT] = {
	[NPT_TF_TEMP] = {"np_temperature_celsius", "gauge", "Card temperature.",
			 1e-3},
	[NPT_TF_TEMP_MAX] = {"np_temperature_throttle_celsius", "gauge",
			     "Temperature at which the card throttles.", 1e-3},
	[NPT_TF_TEMP_CRIT] = {"np_temperature_critical_celsius", "gauge",
			      "Temperature at which the card shuts down.",
			      1e-3},
	[NPT_TF_POWER] = {"np_power_watts", "gauge", "Board power.", 1e-3},
	[NPT_TF_VOLTAGE] = {"np_core_voltage_volts", "gauge", "Core voltage.",
			    1e-3},
	[NPT_TF_CLOCK] = {"np_core_clock_hertz", "gauge", "Core clock.", 1e6},
	[NPT_TF_BUSY] = {"np_busy_ratio", "gauge",
			 "Fraction of time the compute array is busy (0..1).",
			 1e-2},
	[NPT_TF_UPTIME] = {"np_uptime_seconds", "gauge",
			   "Time since the last card reset.", 1e-3},
	[NPT_TF_DMA_BYTES] = {"np_dma_bytes_total", "counter",
			      "Bytes moved by the card's DMA engines.", 1},
	[NPT_TF_DMA_ERRORS] = {"np_dma_errors_total", "counter",
			       "DMA descriptors that ended in an error.", 1},
	[NPT_TF_SRAM_CE] = {"np_sram_corrected_errors_total", "counter",
			    "Corrected (single-bit) SRAM ECC errors.", 1},
	[NPT_TF_SRAM_UE] = {"np_sram_uncorrected_errors_total", "counter",
			    "Uncorrected (double-bit) SRAM ECC errors.", 1},
	[NPT_TF_THROTTLES] = {"np_throttle_events_total", "counter",
			      "Thermal throttle episodes.", 1},
	[NPT_TF_SRAM_WEIGHTS] = {"np_sram_weight_bytes", "gauge",
				 "SRAM holding a loaded model's weights (0: "
				 "none loaded).",
				 1},
	[NPT_TF_SRAM_KV] = {"np_sram_kv_bytes", "gauge",
			    "SRAM reserved for a loaded model's KV cache.", 1},
	[NPT_TF_SRAM_PROG] = {"np_sram_program_bytes", "gauge",
			      "SRAM holding a loaded model's programs.", 1},
	[NPT_TF_FB_USED] = {"np_fb_used_bytes", "gauge",
			    "Frame buffer a loaded model's frames use.", 1},
};

static const char *const states[] = {"ready", "throttled", "resetting", "fatal",
				     "not-ready"};

/* The queue statistics of docs/driver.md (dma<e>_stat, compute_stat). */
static const struct {
	const char *name;
	const char *type;
	const char *help;
	unsigned int field; /* of the seven numbers */
	double scale;
} q_metric[] = {
	{"np_queue_work_seconds_total", "counter",
	 "Time the queue spent executing descriptors; its rate is the "
	 "queue's occupancy.",
	 5, 1e-9},
	{"np_queue_work_done_total", "counter", "Descriptors the queue ran.", 4,
	 1},
	{"np_queue_fence_wait_seconds_total", "counter",
	 "Time the queue waited on fences (for a forwarding engine: credit "
	 "stalls).",
	 1, 1e-9},
	{"np_queue_fence_waits_total", "counter", "Fence waits.", 0, 1},
};

/* A label value with \, " and newline escaped. */
static void label(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', f);
		if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

static void card_labels(FILE *f, const struct exporter *e, size_t i)
{
	fprintf(f, "card=\"%zu\",name=\"", i);
	label(f, npt_source_name(&e->src, i));
	fputc('"', f);
}

static void family(FILE *f, const char *name, const char *type,
		   const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void info_metric(FILE *f, const struct exporter *e)
{
	family(f, "np_card_info", "gauge",
	       "Card identity: firmware and serial number (always 1).");
	for (size_t i = 0; i < e->src.n; i++) {
		char fw[24] = "", serial[40] = "";

		if (e->src.ctx) {
			struct np_card_info in;

			if (!np_card_info(
				    np_ctx_card(e->src.ctx, (unsigned int)i),
				    &in))
				npt_fw_str(fw, sizeof(fw), in.fw_version);
		} else if (e->src.pci) {
			npt_card_attr(e->src.pci[i].bdf, "fw_version", fw,
				      sizeof(fw));
		}
		npt_source_serial(&e->src, i, serial, sizeof(serial));
		fputs("np_card_info{", f);
		card_labels(f, e, i);
		fputs(",fw_version=\"", f);
		label(f, fw);
		fputs("\",serial=\"", f);
		label(f, serial);
		fputs("\"} 1\n", f);
	}
}

static void state_metrics(FILE *f, const struct exporter *e)
{
	struct npt_holder h[NPT_MAX_HOLDERS];

	family(f, "np_card_up", "gauge",
	       "1 when the card's telemetry could be read in this scrape.");
	for (size_t i = 0; i < e->src.n; i++) {
		fputs("np_card_up{", f);
		card_labels(f, e, i);
		fprintf(f, "} %d\n", e->smp[i].err ? 0 : 1);
	}
	family(f, "np_card_state", "gauge",
	       "1 for the card's current state, 0 for the others.");
	for (size_t i = 0; i < e->src.n; i++)
		for (size_t s = 0; s < sizeof(states) / sizeof(states[0]);
		     s++) {
			fputs("np_card_state{", f);
			card_labels(f, e, i);
			fprintf(f, ",state=\"%s\"} %d\n", states[s],
				!e->smp[i].err &&
					!strcmp(e->smp[i].tl.state, states[s]));
		}
	family(f, "np_card_holders", "gauge",
	       "Processes holding the card's VFIO group or device open.");
	for (size_t i = 0; i < e->src.n; i++) {
		fputs("np_card_holders{", f);
		card_labels(f, e, i);
		fprintf(f, "} %d\n", npt_source_holders(&e->src, i, h));
	}
}

static void tf_metrics(FILE *f, const struct exporter *e)
{
	for (unsigned int m = 0; m < NPT_TF_COUNT; m++) {
		family(f, tf_metric[m].name, tf_metric[m].type,
		       tf_metric[m].help);
		for (size_t i = 0; i < e->src.n; i++) {
			if (!npt_sample_has(&e->smp[i], m))
				continue;
			fprintf(f, "%s{", tf_metric[m].name);
			card_labels(f, e, i);
			fprintf(f, "} %.15g\n",
				(double)e->smp[i].tl.v[m] * tf_metric[m].scale);
		}
	}
}

/* Pipeline occupancy of a running npd's cards: the time each card of its
 * pipeline had a frame to compute; rate() of it is the occupancy. (Real
 * cards give the same through np_queue_work_seconds_total.) */
static void pipeline_metrics(FILE *f, const struct exporter *e)
{
	if (!e->src.npd)
		return;
	family(f, "np_pipeline_busy_seconds_total", "counter",
	       "Time this card of the model's pipeline had a frame to "
	       "compute (npd's emulated cards); rate() is its occupancy.");
	for (size_t i = 0; i < e->src.n; i++) {
		if (e->smp[i].err || e->smp[i].pipe_busy_ns < 0)
			continue;
		fputs("np_pipeline_busy_seconds_total{", f);
		card_labels(f, e, i);
		fprintf(f, "} %.9f\n", (double)e->smp[i].pipe_busy_ns / 1e9);
	}
}

/* Queue statistics of real cards: compute_stat and dma0_stat.. */
static void queue_metrics(FILE *f, const struct exporter *e)
{
	if (!e->src.pci)
		return;
	for (size_t m = 0; m < sizeof(q_metric) / sizeof(q_metric[0]); m++) {
		family(f, q_metric[m].name, q_metric[m].type, q_metric[m].help);
		for (size_t i = 0; i < e->src.n; i++) {
			for (unsigned int q = 0; q <= NP_MAX_DMA_ENGINES; q++) {
				unsigned long long v[7];
				char attr[16], line[160], qname[16];

				if (q == NP_MAX_DMA_ENGINES) {
					snprintf(attr, sizeof(attr),
						 "compute_stat");
					snprintf(qname, sizeof(qname),
						 "compute");
				} else {
					snprintf(attr, sizeof(attr),
						 "dma%u_stat", q);
					snprintf(qname, sizeof(qname), "dma%u",
						 q);
				}
				if (npt_card_attr(e->src.pci[i].bdf, attr, line,
						  sizeof(line)) ||
				    sscanf(line,
					   "%llu %llu %llu %llu %llu %llu %llu",
					   &v[0], &v[1], &v[2], &v[3], &v[4],
					   &v[5], &v[6]) != 7)
					continue;
				fprintf(f, "%s{", q_metric[m].name);
				card_labels(f, e, i);
				fprintf(f, ",queue=\"%s\"} %.15g\n", qname,
					(double)v[q_metric[m].field] *
						q_metric[m].scale);
			}
		}
	}
}

/* The whole exposition of one scrape, in a malloc()ed buffer. */
static int scrape(struct exporter *e, char **out, size_t *len)
{
	double t0 = npt_now();
	FILE *f = open_memstream(out, len);

	if (!f)
		return -ENOMEM;
	npt_sample_all(&e->src, e->smp);
	info_metric(f, e);
	state_metrics(f, e);
	tf_metrics(f, e);
	queue_metrics(f, e);
	pipeline_metrics(f, e);
	e->scrapes++;
	family(f, "np_exporter_scrapes_total", "counter",
	       "Scrapes this exporter served.");
	fprintf(f, "np_exporter_scrapes_total %llu\n", e->scrapes);
	family(f, "np_exporter_scrape_duration_seconds", "gauge",
	       "Time this scrape took to read the cards.");
	fprintf(f, "np_exporter_scrape_duration_seconds %.6f\n",
		npt_now() - t0);
	return fclose(f) ? -ENOMEM : 0;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned int status,
			     const char *type, char *body, size_t len,
			     enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result ret;

	if (!r) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c,
			      const char *url, const char *method,
			      const char *version, const char *upload_data,
			      size_t *upload_size, void **req)
{
	static const char index_page[] =
		"<html><head><title>np exporter</title></head><body>"
		"<h1>np exporter</h1><p><a href=\"/metrics\">Metrics</a></p>"
		"</body></html>\n";
	static const char text[] = "text/plain; charset=utf-8";
	struct exporter *e = cls;
	char *body;
	size_t len;

	if (strcmp(method, MHD_HTTP_METHOD_GET) &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, text,
			     (char *)"only GET and HEAD\n", 18,
			     MHD_RESPMEM_PERSISTENT);
	if (!strcmp(url, "/"))
		return reply(c, MHD_HTTP_OK, "text/html; charset=utf-8",
			     (char *)index_page, sizeof(index_page) - 1,
			     MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/metrics"))
		return reply(c, MHD_HTTP_NOT_FOUND, text,
			     (char *)"not found; the metrics are at "
				     "/metrics\n",
			     39, MHD_RESPMEM_PERSISTENT);
	if (scrape(e, &body, &len))
		return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, text,
			     (char *)"out of memory\n", 14,
			     MHD_RESPMEM_PERSISTENT);
	return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
		     body, len, MHD_RESPMEM_MUST_FREE);
}

/* "ADDR:PORT", "[ADDR6]:PORT" or ":PORT" (all IPv4 addresses). */
static int parse_listen(const char *s, struct sockaddr_storage *ss)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	const char *colon = strrchr(s, ':');
	char host[64], *end;
	unsigned long port;
	size_t hl;

	if (!colon)
		return -EINVAL;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || colon[1] == '\0' || port > 65535)
		return -EINVAL;
	hl = (size_t)(colon - s);
	if (hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, hl);
	host[hl] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
		host[hl - 1] = '\0';
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		return inet_pton(AF_INET6, host + 1, &in6->sin6_addr) == 1 ?
			       0 :
			       -EINVAL;
	}
	in4->sin_family = AF_INET;
	in4->sin_port = htons((uint16_t)port);
	if (!hl) {
		in4->sin_addr.s_addr = htonl(INADDR_ANY);
		return 0;
	}
	return inet_pton(AF_INET, host, &in4->sin_addr) == 1 ? 0 : -EINVAL;
}

static int parse(struct npt *t, int argc, char **argv, const char **listen)
{
	static const struct option opts[] = {
		{"listen", required_argument, NULL, 'l'},
		{0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "l:", opts, NULL)) != -1) {
		if (c != 'l')
			return npt_usage(t, "%s: bad option", argv[0]);
		*listen = optarg;
	}
	if (optind < argc)
		return npt_usage(t, "%s: unexpected argument '%s'", argv[0],
				 argv[optind]);
	return NPT_EXIT_OK;
}

int npt_cmd_exporter(struct npt *t, int argc, char **argv)
{
	const char *listen = EXPORTER_DEFAULT;
	struct exporter e = {.t = t};
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *di;
	struct MHD_Daemon *d;
	sigset_t stop, old;
	int rc, sig;

	rc = parse(t, argc, argv, &listen);
	if (rc)
		return rc;
	if (parse_listen(listen, &ss))
		return npt_usage(t,
				 "%s: --listen '%s' is not ADDRESS:PORT "
				 "(127.0.0.1:9400, [::1]:9400, :9400)",
				 argv[0], listen);
	/* Blocked here, so also in MHD's thread: sigwait() below takes them. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, &old);
	rc = npt_source_open(t, &e.src);
	if (!rc) {
		e.smp = calloc(e.src.n ? e.src.n : 1, sizeof(*e.smp));
		if (!e.smp)
			rc = NPT_EXIT_DEVERR;
	}
	if (rc)
		goto out;
	d = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
			(ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
		0, NULL, NULL, handle, &e, MHD_OPTION_SOCK_ADDR,
		(struct sockaddr *)&ss, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
		MHD_OPTION_END);
	if (!d) {
		npt_err(t,
			"exporter: cannot listen on %s: %s; is the port in "
			"use? choose another with --listen",
			listen, strerror(errno ? errno : EADDRINUSE));
		rc = NPT_EXIT_DEVERR;
		goto out;
	}
	di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	/* Tests and scripts read the port from this line (--listen :0). */
	fprintf(stderr,
		"nptool exporter: %zu cards, serving http://%.*s:%u/metrics "
		"(Ctrl-C stops)\n",
		e.src.n, (int)(strrchr(listen, ':') - listen), listen,
		di ? di->port : 0);
	sigwait(&stop, &sig);
	MHD_stop_daemon(d);
	if (t->j) {
		npt_json_kstr(t->j, "listen", listen);
		npt_json_kuint(t->j, "scrapes", e.scrapes);
	}
out:
	free(e.smp);
	npt_source_close(&e.src);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}
