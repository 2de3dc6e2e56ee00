/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Structured logs: one line per event worth knowing, `level=.. msg=".." key=value`, stderr. */
#ifndef BPFSVC_LOG_H
#define BPFSVC_LOG_H

enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Messages above this level are dropped (--verbose raises it to LOG_DEBUG). */
extern enum log_level log_max_level;

/* kvfmt is a printf format for the trailing key=value pairs; may be NULL. */
void log_kv(enum log_level lvl, const char *msg, const char *kvfmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_err(msg, ...) log_kv(LOG_ERR, msg, __VA_ARGS__)
#define log_warn(msg, ...) log_kv(LOG_WARN, msg, __VA_ARGS__)
#define log_info(msg, ...) log_kv(LOG_INFO, msg, __VA_ARGS__)
#define log_debug(msg, ...) log_kv(LOG_DEBUG, msg, __VA_ARGS__)

#endif
