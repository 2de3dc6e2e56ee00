/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Structured logs: one line per event worth knowing, `level=.. msg=".." key=value`, stderr. */
#ifndef BPFSVC_LOG_H
#define BPFSVC_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Messages above this level are dropped (--verbose raises it to LOG_DEBUG). */
extern enum log_level log_max_level;

/* kvfmt is a printf format for the trailing key=value pairs; may be NULL. Every value a
 * conversion produces is escaped (log.c), so text from outside cannot forge lines or keys. */
void log_kv(enum log_level lvl, const char *msg, const char *kvfmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_vkv(enum log_level lvl, const char *msg, const char *kvfmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* Write s (n bytes) escaped; quoted: it sits between quotes already, else it is quoted when
 * it would not read back as one token. */
void log_escape(FILE *f, const char *s, size_t n, bool quoted);

#define log_err(msg, ...) log_kv(LOG_ERR, msg, __VA_ARGS__)
#define log_warn(msg, ...) log_kv(LOG_WARN, msg, __VA_ARGS__)
#define log_info(msg, ...) log_kv(LOG_INFO, msg, __VA_ARGS__)
#define log_debug(msg, ...) log_kv(LOG_DEBUG, msg, __VA_ARGS__)

#endif
