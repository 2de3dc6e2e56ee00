// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Watch-stream framing and event decoding: bytes -> watch_stream_feed() in reads of varying
 * sizes -> each line -> watch_event_decode(). The lines handed over are checked against a
 * plain split of the input, whatever the read boundaries.
 *
 * Input: byte 0 picks the line limit, byte 1 seeds the read sizes, the rest is the stream.
 */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>

#include "fuzz.h"
#include "watch_stream.h"

struct ref {
	const char *p, *end; /* what the stream has not yet handed over */
	size_t lines;
};

/* The next non-empty complete line of the reference split, or false. */
static bool ref_next(struct ref *r, const char **line, size_t *n)
{
	for (;;) {
		const char *nl = memchr(r->p, '\n', (size_t)(r->end - r->p));

		if (!nl)
			return false;
		*line = r->p;
		*n = (size_t)(nl - r->p);
		r->p = nl + 1;
		if (*n)
			return true;
	}
}

static int on_line(void *arg, const char *p, size_t n)
{
	struct ref *r = arg;
	enum watch_event_type type = (enum watch_event_type)-1;
	json_t *obj = (json_t *)1;
	const char *want;
	size_t wn;
	char err[256];
	int ret;

	FUZZ_ASSERT(ref_next(r, &want, &wn));
	FUZZ_ASSERT(n == wn && !memcmp(p, want, n) && !memchr(p, '\n', n));
	r->lines++;
	memset(err, 0x55, sizeof(err));
	ret = watch_event_decode(p, n, &type, &obj, err, sizeof(err));
	if (ret) {
		FUZZ_ASSERT(ret == -EBADMSG);
		FUZZ_ASSERT(!obj);
		FUZZ_ASSERT_ERR(err);
		return 0;
	}
	FUZZ_ASSERT(type >= WATCH_ADDED && type <= WATCH_ERROR);
	FUZZ_ASSERT(json_is_object(obj));
	free(json_dumps(obj, JSON_COMPACT));
	json_decref(obj);
	return 0;
}

/* Longest segment (complete line or unterminated tail) in [p, end). */
static size_t longest_segment(const char *p, const char *end)
{
	size_t max = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);

		if (n > max)
			max = n;
		p = nl ? nl + 1 : end;
	}
	return max;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t limits[] = { WATCH_LINE_MAX, 16, 256, 4096 };
	struct watch_stream w;
	struct ref r;
	const char *p, *end;
	uint32_t rng;
	size_t max_line;
	int ret = 0;

	if (size < 2)
		return 0;
	max_line = limits[data[0] & 3];
	rng = 0x9e3779b9u ^ data[1];
	p = (const char *)data + 2;
	end = (const char *)data + size;
	r = (struct ref){ .p = p, .end = end };
	watch_stream_init(&w, max_line);
	while (p < end) {
		size_t n;

		rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
		/* Mostly small reads, which split lines anywhere; sometimes large ones. */
		n = (rng & 0x100) ? 1 + (rng >> 20) : 1 + ((rng >> 24) & 15);
		if (n > (size_t)(end - p))
			n = (size_t)(end - p);
		ret = watch_stream_feed(&w, p, n, on_line, &r);
		if (ret)
			break;
		p += n;
	}
	if (longest_segment((const char *)data + 2, end) > max_line) {
		FUZZ_ASSERT(ret == -E2BIG);
	} else {
		const char *line;
		size_t n;

		FUZZ_ASSERT(ret == 0);
		/* Every complete line was handed over; the tail is what stays pending. */
		FUZZ_ASSERT(!ref_next(&r, &line, &n));
		FUZZ_ASSERT(watch_stream_pending(&w) == (size_t)(end - r.p));
		FUZZ_ASSERT(!memchr(r.p, '\n', (size_t)(end - r.p)));
	}
	watch_stream_fini(&w);
	/* After fini the stream is empty and usable again. */
	FUZZ_ASSERT(watch_stream_pending(&w) == 0);
	return 0;
}
