/* SPDX-License-Identifier: MIT */
/* npd's HTTP server (http.c), on libmicrohttpd. */
#ifndef NPD_HTTP_H
#define NPD_HTTP_H

#include <stdint.h>

#include "npd.h"

/* Listen as c says; serve from libmicrohttpd's threads. -errno, logged. */
int npd_http_start(const struct npd_config *c);
/* The port the server listens on (the one the kernel chose for port 0). */
uint16_t npd_http_port(void);
/* Stop accepting connections (SIGTERM); those open keep being served. */
void npd_http_quiesce(void);
/* Connections still open. */
unsigned int npd_http_connections(void);
void npd_http_stop(void);
/* (Re)open the access log (start-up and SIGHUP). -errno, logged. */
int npd_http_access_log(const char *path);

#endif /* NPD_HTTP_H */
