// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Unit test for user/watch_stream.c: framing of newline-delimited watch events across reads
 * (lines split over feeds, many per feed, the line cap exactly at and over its limit, memory
 * given back after an overflow) and decoding of one event line.
 */
#include "watch_stream.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "check.h"

/* What the line callback saw: the lines joined with '|'. */
struct seen {
	char out[4096];
	size_t lines;
	size_t longest;
	int fail_at; /* return -EIO on this line (1-based), 0: never */
};

static int on_line(void *arg, const char *p, size_t n)
{
	struct seen *s = arg;
	size_t len = strlen(s->out);

	s->lines++;
	if (n > s->longest)
		s->longest = n;
	if (memchr(p, '\n', n))
		return -EILSEQ; /* a line must never contain its delimiter */
	if (len + n + 2 < sizeof(s->out))
		snprintf(s->out + len, sizeof(s->out) - len, "%s%.*s", len ? "|" : "", (int)n, p);
	return s->lines == (size_t)s->fail_at ? -EIO : 0;
}

/* Feed text in pieces of `step` bytes (0: all at once). */
static int feed_steps(struct watch_stream *w, const char *text, size_t step, struct seen *s)
{
	size_t n = strlen(text);
	int ret = 0;

	if (!step)
		step = n ? n : 1;
	for (size_t i = 0; i < n && !ret; i += step)
		ret = watch_stream_feed(w, text + i, n - i < step ? n - i : step, on_line, s);
	return ret;
}

static void test_framing(void)
{
	static const char text[] = "{\"a\":1}\n{\"b\":22}\n\n{\"c\":333}\n{\"d\"";
	struct watch_stream w;
	struct seen s;

	/* Every split of the same bytes gives the same lines. */
	for (size_t step = 0; step <= sizeof(text); step++) {
		int ret;

		memset(&s, 0, sizeof(s));
		watch_stream_init(&w, 1024);
		ret = feed_steps(&w, text, step, &s);
		if (ret || strcmp(s.out, "{\"a\":1}|{\"b\":22}|{\"c\":333}") ||
		    watch_stream_pending(&w) != 4) {
			check(false, "split every %zu bytes: got \"%s\" (ret %d, pending %zu)", step,
			      s.out, ret, watch_stream_pending(&w));
			watch_stream_fini(&w);
			return;
		}
		watch_stream_fini(&w);
	}
	check(true, "a line split across any number of feeds arrives whole, once; "
		    "empty lines skipped; the unfinished tail stays pending");

	memset(&s, 0, sizeof(s));
	watch_stream_init(&w, 1024);
	check(watch_stream_feed(&w, "x\ny\nz\n", 6, on_line, &s) == 0 && s.lines == 3 &&
		      !strcmp(s.out, "x|y|z") && watch_stream_pending(&w) == 0,
	      "many lines in one feed, in order, nothing pending");
	check(watch_stream_feed(&w, "", 0, on_line, &s) == 0 && s.lines == 3,
	      "an empty feed is a no-op");
	check(watch_stream_feed(&w, "tail", 4, on_line, &s) == 0 &&
		      watch_stream_feed(&w, "\nnext\n", 6, on_line, &s) == 0 &&
		      !strcmp(s.out, "x|y|z|tail|next"),
	      "a buffered tail completed by the next feed, then a whole line after it");
	watch_stream_fini(&w);
	watch_stream_fini(&w);
	check(w.buf == NULL && watch_stream_pending(&w) == 0, "fini twice is harmless");
	watch_stream_fini(NULL);

	/* The callback's error stops the feed at that line. */
	memset(&s, 0, sizeof(s));
	s.fail_at = 2;
	watch_stream_init(&w, 1024);
	check(watch_stream_feed(&w, "a\nb\nc\n", 6, on_line, &s) == -EIO && s.lines == 2,
	      "the callback's nonzero return stops the feed and is returned");
	watch_stream_fini(&w);
}

static void test_cap(void)
{
	enum { MAX = 100 };
	char line[MAX + 2];
	struct watch_stream w;
	struct seen s;

	memset(line, 'x', sizeof(line));

	/* Exactly max_line bytes (newline not counted): accepted, whole or in pieces. */
	for (int piece = 0; piece < 3; piece++) {
		int ret = 0;

		memset(&s, 0, sizeof(s));
		watch_stream_init(&w, MAX);
		if (piece == 0) {
			line[MAX] = '\n';
			ret = watch_stream_feed(&w, line, MAX + 1, on_line, &s);
		} else if (piece == 1) {
			ret = watch_stream_feed(&w, line, 60, on_line, &s);
			ret = ret ? ret : watch_stream_feed(&w, line, MAX - 60, on_line, &s);
			ret = ret ? ret : watch_stream_feed(&w, "\n", 1, on_line, &s);
		} else {
			for (int i = 0; i < MAX && !ret; i++)
				ret = watch_stream_feed(&w, "x", 1, on_line, &s);
			ret = ret ? ret : watch_stream_feed(&w, "\ny\n", 3, on_line, &s);
		}
		check(ret == 0 && s.lines == (piece == 2 ? 2u : 1u) && s.longest == MAX &&
			      w.cap <= MAX,
		      "a line of exactly max_line bytes is accepted (%s), buffer never above max_line",
		      piece == 0 ? "one feed" : piece == 1 ? "two feeds" : "byte by byte");
		watch_stream_fini(&w);
	}

	/* One byte more: refused, whether it arrives in one piece or grows across feeds. */
	memset(&s, 0, sizeof(s));
	watch_stream_init(&w, MAX);
	line[MAX] = 'x';
	line[MAX + 1] = '\n';
	check(watch_stream_feed(&w, line, MAX + 2, on_line, &s) == -E2BIG && s.lines == 0,
	      "a whole line of max_line + 1 bytes in one feed: -E2BIG");
	watch_stream_fini(&w);

	memset(&s, 0, sizeof(s));
	watch_stream_init(&w, MAX);
	check(watch_stream_feed(&w, line, MAX, on_line, &s) == 0 &&
		      watch_stream_pending(&w) == MAX &&
		      watch_stream_feed(&w, "x", 1, on_line, &s) == -E2BIG && s.lines == 0,
	      "an unfinished line growing past max_line: -E2BIG as soon as it does "
	      "(no newline needed)");
	watch_stream_fini(&w);
	check(w.buf == NULL && w.cap == 0 && watch_stream_pending(&w) == 0,
	      "fini after the overflow gives the buffer back");
	check(watch_stream_feed(&w, "ok\n", 3, on_line, &s) == 0 && s.lines == 1,
	      "the stream is usable again after fini");
	watch_stream_fini(&w);

	/* The real cap, fed like a server that never sends a newline: stops at the cap. */
	{
		static char chunk[65536];
		size_t fed = 0;
		int ret = 0;

		memset(chunk, 'x', sizeof(chunk));
		memset(&s, 0, sizeof(s));
		watch_stream_init(&w, WATCH_LINE_MAX);
		while (!ret && fed < 2u * WATCH_LINE_MAX) {
			ret = watch_stream_feed(&w, chunk, sizeof(chunk), on_line, &s);
			fed += sizeof(chunk);
		}
		check(ret == -E2BIG && fed == WATCH_LINE_MAX + sizeof(chunk) &&
			      w.cap <= WATCH_LINE_MAX,
		      "endless line: refused after %zu bytes (cap %u), buffer %zu bytes", fed,
		      WATCH_LINE_MAX, w.cap);
		watch_stream_fini(&w);
	}
}

static void test_decode(void)
{
	static const struct {
		const char *line;
		int want;
		enum watch_event_type type;
		const char *desc;
	} cases[] = {
		{ "{\"type\":\"ADDED\",\"object\":{\"a\":1}}", 0, WATCH_ADDED, "ADDED" },
		{ "{\"type\":\"MODIFIED\",\"object\":{}}", 0, WATCH_MODIFIED, "MODIFIED" },
		{ "{\"type\":\"DELETED\",\"object\":{}}", 0, WATCH_DELETED, "DELETED" },
		{ "{\"object\":{},\"type\":\"BOOKMARK\"}", 0, WATCH_BOOKMARK, "BOOKMARK, keys in any order" },
		{ "{\"type\":\"ERROR\",\"object\":{\"code\":410}}", 0, WATCH_ERROR, "ERROR" },
		{ "{\"type\":\"ADDED\",\"object\":{", -EBADMSG, 0, "truncated JSON" },
		{ "not json", -EBADMSG, 0, "not JSON" },
		{ "[1,2]", -EBADMSG, 0, "an array" },
		{ "{\"object\":{}}", -EBADMSG, 0, "no type" },
		{ "{\"type\":7,\"object\":{}}", -EBADMSG, 0, "a type that is not a string" },
		{ "{\"type\":\"ADDED\"}", -EBADMSG, 0, "no object" },
		{ "{\"type\":\"ADDED\",\"object\":\"x\"}", -EBADMSG, 0, "object not an object" },
		{ "{\"type\":\"SYNC\",\"object\":{}}", -EBADMSG, 0, "an unknown type (client-go refuses it)" },
		{ "{\"type\":\"added\",\"object\":{}}", -EBADMSG, 0, "type names are case-sensitive" },
		{ "{\"type\":\"ADDED\\u0000x\",\"object\":{}}", -EBADMSG, 0, "a NUL inside the type" },
		{ "{\"type\":\"ADDED\",\"object\":{},\"object\":{\"a\":1}}", -EBADMSG, 0,
		  "duplicate keys" },
		{ "{\"type\":\"ADDED\",\"object\":{}} trailing", -EBADMSG, 0, "trailing garbage" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum watch_event_type t = WATCH_ERROR + 1;
		json_t *obj = (json_t *)&t; /* must be overwritten */
		char err[256] = "";
		int ret = watch_event_decode(cases[i].line, strlen(cases[i].line), &t, &obj, err,
					     sizeof(err));
		bool good = ret == cases[i].want &&
			    (ret ? obj == NULL && err[0] : json_is_object(obj) && t == cases[i].type);

		check(good, "decode %s -> %d%s%s", cases[i].desc, ret, ret ? ": " : "", err);
		if (!ret)
			json_decref(obj);
	}

	/* Only n bytes are read: a line handed over in place is not NUL-terminated. */
	{
		static const char buf[] = "{\"type\":\"DELETED\",\"object\":{\"k\":\"v\"}}GARBAGE";
		enum watch_event_type t;
		json_t *obj = NULL;
		char err[256] = "";
		int ret = watch_event_decode(buf, strlen(buf) - 7, &t, &obj, err, sizeof(err));

		check(ret == 0 && t == WATCH_DELETED &&
			      !strcmp(json_string_value(json_object_get(obj, "k")), "v"),
		      "decode reads exactly n bytes");
		json_decref(obj);
	}
	/* The object outlives the event it came in. */
	{
		static const char l[] = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}";
		enum watch_event_type t;
		json_t *obj = NULL;
		char err[256];

		watch_event_decode(l, strlen(l), &t, &obj, err, sizeof(err));
		check(obj && obj->refcount == 1, "the object is the caller's only reference");
		json_decref(obj);
	}
}

int main(void)
{
	test_framing();
	test_cap();
	test_decode();
	return check_summary();
}
