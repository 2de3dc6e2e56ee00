/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The framing of a Kubernetes watch response: newline-delimited JSON events, any read
 * holding part of one or several. Pure (no I/O, no store): the API source and the fuzzer
 * both drive it.
 */
#ifndef BPFSVC_WATCH_STREAM_H
#define BPFSVC_WATCH_STREAM_H

#include <jansson.h>
#include <stddef.h>

/*
 * Longest watch line accepted. The API server refuses an object whose etcd request exceeds
 * about 1.5 MiB (--max-request-bytes), and an event wraps one object; its JSON form is a
 * little larger than the stored protobuf. 16 MiB leaves a wide margin for any legal event
 * while bounding what a broken or hostile server can make us hold.
 */
#define WATCH_LINE_MAX (16u << 20)

struct watch_stream {
	char *buf;	 /* the unfinished line (never holds a newline) */
	size_t len, cap;
	size_t max_line; /* longest line accepted, without its newline */
};

enum watch_event_type {
	WATCH_ADDED,
	WATCH_MODIFIED,
	WATCH_DELETED,
	WATCH_BOOKMARK,
	WATCH_ERROR, /* object is a Status */
};

void watch_stream_init(struct watch_stream *w, size_t max_line);
/* Frees the buffered partial line; w may be fed again afterwards (an empty stream). */
void watch_stream_fini(struct watch_stream *w);

/*
 * Feed n bytes. line() is called once per complete non-empty line (without the newline;
 * p is valid only during the call), in order. Only the new bytes are scanned.
 * Returns 0, -E2BIG when a line exceeds max_line, -ENOMEM, or line()'s nonzero return; after
 * a nonzero return the stream is unusable until watch_stream_fini().
 */
int watch_stream_feed(struct watch_stream *w, const char *data, size_t n,
		      int (*line)(void *arg, const char *p, size_t n), void *arg);

/* Bytes buffered for the unfinished line. */
static inline size_t watch_stream_pending(const struct watch_stream *w)
{
	return w->len;
}

/*
 * Decode one event line: {"type": T, "object": {...}}. On success *type is set and *object
 * is a new reference (the caller decrefs it). Anything else (not JSON, duplicate keys, no
 * object, an unknown type, as client-go's decoder refuses) is -EBADMSG with err set.
 */
int watch_event_decode(const char *line, size_t n, enum watch_event_type *type, json_t **object,
		       char *err, size_t errlen);

#endif
