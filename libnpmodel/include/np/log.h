/* SPDX-License-Identifier: MIT */
/*
 * np/log.h - the log sink of libnp and libnpmodel.
 *
 * Neither library prints. Both hand their messages to one kind of sink: a
 * struct np_log given to np_open (np_open_opts.log) or to the model
 * functions that take a log argument. A message has no trailing newline,
 * is valid only during the call and names the thing, the value and the
 * fix. The callback may run on any thread, including emulator workers.
 * The levels are syslog(3)'s, so LOG_ERR and NP_LOG_ERR are the same.
 */
#ifndef NP_LOG_H
#define NP_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

enum np_log_level {
	NP_LOG_ERR = 3, /* a call failed: what, where and the fix */
	NP_LOG_WARNING = 4, /* worked, but something needs attention */
	NP_LOG_NOTICE = 5,
	NP_LOG_INFO = 6,
	NP_LOG_DEBUG = 7,
};

typedef void (*np_log_fn)(void *opaque, enum np_log_level level,
			  const char *msg);

struct np_log {
	np_log_fn fn; /* NULL: messages are dropped */
	void *opaque;
	enum np_log_level level; /* highest level delivered; 0: NP_LOG_INFO */
};

#ifdef __cplusplus
}
#endif

#endif /* NP_LOG_H */
