/* SPDX-License-Identifier: MIT */
/*
 * npd: the np inference server. An OpenAI-compatible HTTP API
 * (libmicrohttpd, JSON by jansson) in front of a pipeline of np cards fed
 * by libnp's scheduler, plus /health and Prometheus /metrics.
 *
 *   config.c   flags and the configuration file
 *   http.c     the HTTP server: routing, authentication, bodies, errors,
 *              access log, streaming
 *   openai.c   the OpenAI request and response documents
 *   metrics.c  counters and histograms, the Prometheus text format
 *   engine.c   the model on the cards: requests in, tokens out
 *   main.c     start-up, signals, drain
 */
#ifndef NPD_H
#define NPD_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NPD_MAX_KEYS 64
#define NPD_MAX_STOP 4 /* stop strings per request, as OpenAI */
#define NPD_MAX_INJECT 4

struct npd_config {
	char *model; /* GGUF path */
	char *cluster; /* cluster file: head of a multi-host pipeline */
	char *model_name; /* id in /v1/models; NULL: file name */
	char *devices; /* device spec; NULL: NP_DEVICES, else emu:16 */
	char *listen; /* address; default 127.0.0.1 */
	uint16_t port; /* default 8080 */
	uint32_t slots; /* KV slots (N); 0: library default */
	uint32_t micro_batches; /* M; 0: library default */
	uint32_t max_seq; /* tokens per request; 0: library default */
	char *precision; /* card arithmetic (np_precision_parse); NULL: the
			  * library default */
	char *layer_precision; /* per-layer override; NULL: none */
	char *cache_dir; /* image cache; NULL: libnp's default, "off": none */
	char *chat_template; /* family name; NULL: from the model */
	char *api_keys[NPD_MAX_KEYS];
	unsigned int n_api_keys;
	uint32_t max_queue; /* requests waiting for a slot */
	size_t max_body; /* bytes of a request body */
	uint32_t max_connections;
	uint32_t timeout_s; /* idle connection timeout */
	uint32_t threads; /* HTTP threads */
	uint32_t max_tokens_default; /* when a request gives none */
	char *access_log; /* path; NULL or "-": stderr */
	bool recover; /* survive card faults */
	/* testing the recovery path on emulated cards: "CARD:FAULT" as
	 * np_card_inject spells faults, armed after inject_after tokens */
	char *inject[NPD_MAX_INJECT];
	unsigned int n_inject;
	uint32_t inject_after;
};

/* config.c */
void npd_config_defaults(struct npd_config *c);
/* Parse argv (after the program name) into c. Returns 0, 1 when help or
 * version was printed, or -EINVAL with err (len bytes) naming the option
 * and the problem. --config FILE is read where it appears: later options
 * override it. */
int npd_config_args(struct npd_config *c, int argc, char **argv, char *err,
		    size_t len);
/* Read "key = value" lines, keys as the long options; -errno with err. */
int npd_config_file(struct npd_config *c, const char *path, char *err,
		    size_t len);
void npd_config_free(struct npd_config *c);
void npd_usage(void);

/* logging (main.c): one line to stderr, "npd: " first */
__attribute__((format(printf, 1, 2))) void npd_log(const char *fmt, ...);

/* metrics.c */
enum npd_hist { NPD_H_TTFT, NPD_H_ITL, NPD_H_E2E, NPD_H_QUEUE, NPD_H_COUNT };
enum npd_counter {
	NPD_C_PROMPT_TOKENS,
	NPD_C_GEN_TOKENS,
	NPD_C_REQ_OK, /* finished: stop or length */
	NPD_C_REQ_CANCELLED, /* client went away */
	NPD_C_REQ_ERROR, /* failed on the server */
	NPD_C_REQ_REJECTED, /* 4xx before running */
	NPD_C_RECOVERIES,
	NPD_C_COUNT,
};
void npd_metrics_init(void);
void npd_metric_add(enum npd_counter c, uint64_t n);
void npd_metric_observe(enum npd_hist h, double seconds);
void npd_metric_http(unsigned int status);
/* The Prometheus text (malloc()ed, NUL-terminated) or NULL. The engine
 * adds its gauges through npd_engine_metrics(). */
char *npd_metrics_render(void);

/* A growable string. */
struct npd_buf {
	char *s;
	size_t len, cap;
};
int npd_buf_add(struct npd_buf *b, const char *s, size_t n);
__attribute__((format(printf, 2, 3))) int npd_buf_printf(struct npd_buf *b,
							 const char *fmt, ...);
void npd_buf_free(struct npd_buf *b);

/* engine.c: length of the valid UTF-8 sequence at s (n bytes left), 0 if
 * invalid (overlong, surrogate, beyond U+10FFFF, cut short). */
size_t npd_utf8_seq(const unsigned char *s, size_t n);

#endif /* NPD_H */
