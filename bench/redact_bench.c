/* redact_bench - throughput of the redaction engine (src/secrets/redact.c)
 * on access-log-like lines, for bench/redact.  Built by that script with
 * the engine's source (cc -O2 ... redact_bench.c ../src/secrets/redact.c
 * -lsodium -lpthread).
 *
 *   redact_bench [--lines N] [--reps R] [--hits PERCENT]
 *
 * For 0, 1, 10 and 50 secret values (random 24..40-byte tokens, some with a
 * common prefix such as "sk_live_", one with a quote so that its JSON forms
 * exist), it redacts N lines of about 150 bytes one by one with
 * redact_text (as the access log would), R times, and prints per case
 * MB/s, ns per line, and how many lines were changed; then the same text
 * through a stream in 64 KiB writes (as the log relay does).  PERCENT of
 * the lines (default 1) carry one of the values.  The median of R is
 * reported.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>
#include "secrets/redact.h"

#define MAX_VALUES 50

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void random_token(char *out, size_t len, unsigned *seed)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

	for (size_t i = 0; i < len; i++)
		out[i] = alphabet[rand_r(seed) % (sizeof(alphabet) - 1)];
	out[len] = '\0';
}

/* values[i]: tokens; a few with a prefix real keys have, one with a quote. */
static void make_values(char values[MAX_VALUES][48], unsigned *seed)
{
	for (int i = 0; i < MAX_VALUES; i++) {
		size_t len = 24 + (size_t)(rand_r(seed) % 17);
		random_token(values[i], len, seed);
		if (i % 10 == 1)
			memcpy(values[i], "sk_live_", 8);
		if (i % 10 == 2)
			memcpy(values[i], "ghp_", 4);
	}
	values[3][5] = '"';
}

/* Lines like a combined access log, some carrying a value. */
static char *make_lines(size_t n, int hits, char values[MAX_VALUES][48], size_t **ret_off, size_t *ret_len,
			unsigned *seed)
{
	static const char *paths[] = { "/", "/cart", "/checkout", "/api/v1/orders", "/static/app.js", "/login" };
	static const char *agents[] = { "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36", "curl/8.5.0",
					"Go-http-client/1.1" };
	size_t cap = n * 256, len = 0, *off = malloc((n + 1) * sizeof(*off));
	char *text = malloc(cap), query[64];

	if (!text || !off)
		exit(1);
	for (size_t i = 0; i < n; i++) {
		if (rand_r(seed) % 100 < hits)
			snprintf(query, sizeof(query), "?token=%s", values[rand_r(seed) % MAX_VALUES]);
		else
			snprintf(query, sizeof(query), "?page=%d", rand_r(seed) % 50);
		off[i] = len;
		len += (size_t)snprintf(text + len, cap - len,
					"127.0.0.%d - - [05/Dec/2026:01:32:%02d +0000] \"GET %s%s HTTP/1.1\" %d %d "
					"\"-\" \"%s\" rt=%d.%03d\n",
					rand_r(seed) % 255, rand_r(seed) % 60, paths[rand_r(seed) % 6], query,
					rand_r(seed) % 10 ? 200 : 404, rand_r(seed) % 20000, agents[rand_r(seed) % 3],
					rand_r(seed) % 2, rand_r(seed) % 1000);
	}
	off[n] = len;
	*ret_off = off;
	*ret_len = len;
	return text;
}

static int discard(void *ctx, const char *data, size_t len)
{
	*(size_t *)ctx += len;
	(void)data;
	return 0;
}

/* Median ns over reps: one redact_text per line, or the whole text
 * through a stream in 64 KiB writes.  *changed: lines changed. */
static uint64_t run(const struct redactor *r, const char *text, size_t len, const size_t *off, size_t n, int reps,
		    int stream, size_t *changed)
{
	uint64_t t[64];

	for (int rep = 0; rep < reps; rep++) {
		uint64_t start = now_ns();
		size_t c = 0;

		if (stream) {
			struct redact_stream *s;
			size_t out = 0;
			if (redact_stream_new(r, discard, &out, &s) < 0)
				exit(1);
			for (size_t at = 0; at < len; at += 65536)
				redact_stream_feed(s, text + at, len - at < 65536 ? len - at : 65536);
			redact_stream_finish(s);
			redact_stream_free(s);
			c = out;
		} else {
			for (size_t i = 0; i < n; i++) {
				char *got;
				size_t got_len;
				if (redact_text(r, text + off[i], off[i + 1] - off[i], &got, &got_len) == 1) {
					c++;
					free(got);
				}
			}
		}
		t[rep] = now_ns() - start;
		*changed = c;
	}
	qsort(t, (size_t)reps, sizeof(t[0]), cmp_u64);
	return t[reps / 2];
}

int main(int argc, char **argv)
{
	static const int counts[] = { 0, 1, 10, 50 };
	char values[MAX_VALUES][48];
	size_t n = 200000, len, *off;
	int reps = 5, hits = 1;
	unsigned seed = 42;
	char *text;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--lines"))
			n = strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--reps"))
			reps = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--hits"))
			hits = atoi(argv[i + 1]);
	}
	if (n == 0 || reps < 1 || reps > 64 || hits < 0 || hits > 100 || sodium_init() < 0) {
		fprintf(stderr, "usage: redact_bench [--lines N>0] [--reps 1..64] [--hits 0..100]\n");
		return 2;
	}
	make_values(values, &seed);
	text = make_lines(n, hits, values, &off, &len, &seed);
	printf("%zu lines, %.1f MB, %.0f bytes per line, %d%% with a value, median of %d\n", n, len / 1e6,
	       (double)len / (double)n, hits, reps);
	printf("%-7s %-11s %10s %12s %14s\n", "values", "mode", "MB/s", "ns/line", "lines changed");
	for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
		struct redactor *r;
		size_t changed;
		uint64_t ns;

		if (redactor_new(&r) < 0)
			return 1;
		for (int i = 0; i < counts[k]; i++) {
			char name[16];
			snprintf(name, sizeof(name), "S%d", i);
			if (redactor_add(r, name, (const uint8_t *)values[i], strlen(values[i])) < 0)
				return 1;
		}
		ns = run(r, text, len, off, n, reps, 0, &changed);
		printf("%-7d %-11s %10.0f %12.1f %14zu\n", counts[k], "redact_text", (double)len * 1e3 / (double)ns,
		       (double)ns / (double)n, changed);
		ns = run(r, text, len, off, n, reps, 1, &changed);
		printf("%-7d %-11s %10.0f %12.1f %14s\n", counts[k], "stream", (double)len * 1e3 / (double)ns,
		       (double)ns / (double)n, "-");
		redactor_free(r);
	}
	free(text);
	free(off);
	return 0;
}
