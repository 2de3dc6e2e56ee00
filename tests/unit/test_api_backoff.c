// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Unit test for the API source's retry backoff (api_backoff_next in user/source_api.c):
 * exponential from 0.8 s, jittered within [0.75, 1.25), capped, reset after two quiet
 * minutes; a server's Retry-After only ever lengthens a wait.
 */
#include "source_api.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "check.h"

#define MS 1000000ULL
#define SEC (1000 * MS)
#define MAX (30 * SEC)

/* n failures one right after the other (each after the previous wait), all with the same
 * Retry-After and jitter draw; the waits go to out. */
static void run(struct api_backoff *b, uint64_t *now, int n, long ra, double rnd, uint64_t *out)
{
	for (int i = 0; i < n; i++) {
		out[i] = api_backoff_next(b, *now, MAX, ra, rnd);
		*now += out[i];
	}
}

static bool near(uint64_t a, uint64_t b)
{
	return a + MS / 10 >= b && b + MS / 10 >= a;
}

int main(void)
{
	struct api_backoff b = {};
	uint64_t now = 1000 * SEC, w[12];
	bool grow, ok;

	run(&b, &now, 8, -1, 0.5, w);
	ok = near(w[0], 800 * MS) && near(w[1], 1600 * MS) && near(w[2], 3200 * MS) &&
	     near(w[5], 25600 * MS) && near(w[6], MAX) && near(w[7], MAX);
	check(ok, "no Retry-After: 0.8 s doubling to the 30 s cap (%llu %llu %llu ... %llu ms)",
	      (unsigned long long)(w[0] / MS), (unsigned long long)(w[1] / MS),
	      (unsigned long long)(w[2] / MS), (unsigned long long)(w[7] / MS));

	b = (struct api_backoff){};
	run(&b, &now, 1, -1, 0.0, w);
	run(&b, &now, 1, -1, 0.999999, w + 1);
	check(near(w[0], 600 * MS) && w[1] < 2000 * MS && w[1] > 1990 * MS,
	      "jitter spans [0.75, 1.25) of the step (%llu ms at the low end, %llu ms at the "
	      "high end of the second)",
	      (unsigned long long)(w[0] / MS), (unsigned long long)(w[1] / MS));

	/* The bug: a 429 with Retry-After: 0 was retried every second, forever. */
	b = (struct api_backoff){};
	run(&b, &now, 6, 0, 0.5, w);
	grow = true;
	for (int i = 1; i < 6; i++)
		grow = grow && w[i] > w[i - 1];
	check(grow && near(w[0], 800 * MS) && near(w[5], 25600 * MS),
	      "Retry-After: 0 repeated: the wait still grows (%llu, %llu, %llu, %llu, %llu, %llu ms)",
	      (unsigned long long)(w[0] / MS), (unsigned long long)(w[1] / MS),
	      (unsigned long long)(w[2] / MS), (unsigned long long)(w[3] / MS),
	      (unsigned long long)(w[4] / MS), (unsigned long long)(w[5] / MS));

	/* Worst-case jitter: each wait is still longer than the one before (1.25x < 1.5x). */
	b = (struct api_backoff){};
	run(&b, &now, 1, 0, 0.999999, w);
	run(&b, &now, 1, 0, 0.0, w + 1);
	run(&b, &now, 1, 0, 0.999999, w + 2);
	run(&b, &now, 1, 0, 0.0, w + 3);
	check(w[1] > w[0] && w[3] > w[2], "the wait grows whatever the jitter draws");

	b = (struct api_backoff){};
	run(&b, &now, 3, 1, 0.5, w);
	check(near(w[0], 1000 * MS) && near(w[1], 1600 * MS) && near(w[2], 3200 * MS),
	      "Retry-After: 1 lengthens the first wait (0.8 -> 1 s) and then no longer counts "
	      "(%llu, %llu, %llu ms)",
	      (unsigned long long)(w[0] / MS), (unsigned long long)(w[1] / MS),
	      (unsigned long long)(w[2] / MS));

	b = (struct api_backoff){};
	run(&b, &now, 3, 5, 0.5, w);
	run(&b, &now, 1, -1, 0.5, w + 3);
	check(near(w[0], 5 * SEC) && near(w[1], 5 * SEC) && near(w[2], 5 * SEC) &&
		      near(w[3], 6400 * MS),
	      "Retry-After: 5 waits 5 s while longer than the backoff, and the backoff kept "
	      "growing underneath (then %llu ms)",
	      (unsigned long long)(w[3] / MS));

	b = (struct api_backoff){};
	run(&b, &now, 10, 60, 0.5, w);
	check(near(w[9], 60 * SEC), "Retry-After above the cap is honoured (the server asked)");

	b = (struct api_backoff){};
	run(&b, &now, 5, -1, 0.5, w);
	now += 121 * SEC;
	run(&b, &now, 1, -1, 0.5, w + 5);
	check(near(w[5], 800 * MS), "two quiet minutes reset the backoff to 0.8 s");
	run(&b, &now, 1, -1, 0.5, w + 6);
	now += 60 * SEC;
	run(&b, &now, 1, -1, 0.5, w + 7);
	check(near(w[7], 3200 * MS), "a shorter pause does not reset it");

	b = (struct api_backoff){};
	for (int i = 0; i < 4; i++) {
		w[i] = api_backoff_next(&b, now, 2 * SEC, -1, 0.5);
		now += w[i];
	}
	check(near(w[0], 800 * MS) && near(w[1], 1600 * MS) && near(w[2], 2 * SEC) &&
		      near(w[3], 2 * SEC),
	      "a smaller maximum (--api-backoff-max 2) caps the step");

	/* Waits longer than the reset period must not reset themselves (review of issue 7). */
	b = (struct api_backoff){};
	for (int i = 0; i < 12; i++) {
		w[i] = api_backoff_next(&b, now, 300 * SEC, -1, 0.5);
		now += w[i];
	}
	check(near(w[8], 204800 * MS) && near(w[9], 300 * SEC) && near(w[11], 300 * SEC),
	      "--api-backoff-max 300: waits grow to 300 s and stay there (%llu, %llu ms)",
	      (unsigned long long)(w[9] / MS), (unsigned long long)(w[11] / MS));
	return check_summary();
}
