/* host.c - the exposition of what is not counted on the hot path: the
 * histogram of long spans (a deploy's duration, which the deploy engine
 * writes into its own families), and the daemon's families about its host
 * and configuration (build, free disk space, the secrets identity, the
 * alert limits of each service), which the daemon measures at each scrape
 * and hands over as a struct metrics_host.
 *
 * Values are written as exact decimals (a ratio of 5 % is 0.05, a limit of
 * 250 ms is 0.25), never through floating point.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "metrics/metrics.h"

/* The upper bounds of the span buckets, in seconds, as the le label. */
static const uint64_t span_bounds_s[METRICS_SPAN_BUCKETS] = { 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600 };

void metrics_span_observe(struct metrics_span_histogram *h, uint64_t ms)
{
	unsigned i = 0;

	while (i < METRICS_SPAN_BUCKETS && ms > span_bounds_s[i] * 1000)
		i++;
	h->buckets[i]++;
	h->count++;
	h->sum_ms += ms;
}

/* value / 10^digits as an exact decimal without trailing zeros ("0.05",
 * "1", "0.25"). */
static void write_fixed(FILE *f, uint64_t value, unsigned digits)
{
	uint64_t scale = 1;
	char frac[24];
	int n;

	for (unsigned i = 0; i < digits; i++)
		scale *= 10;
	if (value % scale == 0) {
		fprintf(f, "%" PRIu64, value / scale);
		return;
	}
	n = snprintf(frac, sizeof(frac), "%0*" PRIu64, (int)digits, value % scale);
	while (n > 0 && frac[n - 1] == '0')
		frac[--n] = 0;
	fprintf(f, "%" PRIu64 ".%s", value / scale, frac);
}

int metrics_span_write(FILE *f, const char *name, const char *labels, const struct metrics_span_histogram *h)
{
	const char *sep = labels[0] ? "," : "";
	uint64_t cumulative = 0;

	for (unsigned i = 0; i <= METRICS_SPAN_BUCKETS; i++) {
		cumulative += h->buckets[i];
		if (i < METRICS_SPAN_BUCKETS)
			fprintf(f, "%s_bucket{%s%sle=\"%" PRIu64 "\"} %" PRIu64 "\n", name, labels, sep, span_bounds_s[i],
				cumulative);
		else
			fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, sep, cumulative);
	}
	fprintf(f, "%s_sum{%s} ", name, labels);
	write_fixed(f, h->sum_ms, 3);
	fprintf(f, "\n%s_count{%s} %" PRIu64 "\n", name, labels, h->count);
	return ferror(f) ? -EIO : 0;
}

/* A label value escaped as the text format wants (\\, \", \n). */
static void write_label_value(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void write_family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP cutover_%s %s\n# TYPE cutover_%s %s\n", name, help, name, type);
}

/* One series cutover_NAME{LABEL="VALUE"} followed by its value's text
 * (the caller writes the value and the line feed). */
static void write_series_open(FILE *f, const char *name, const char *label, const char *value)
{
	fprintf(f, "cutover_%s{%s=\"", name, label);
	write_label_value(f, value);
	fputs("\"} ", f);
}

char *metrics_host_render(const struct metrics_host *h, size_t *len)
{
	char *text = NULL;
	size_t size = 0, i;
	FILE *f = open_memstream(&text, &size);

	if (!f)
		return NULL;
	write_family(f, "build_info", "gauge", "Always 1; the version of the cutover binary that runs, in its label.");
	write_series_open(f, "build_info", "version", h->version ? h->version : "unknown");
	fputs("1\n", f);
	write_family(f, "disk_free_bytes", "gauge",
		     "Bytes free for the daemon on the file system of the state directory (dir=\"state\") and of the "
		     "release store (dir=\"store\").");
	for (i = 0; i < h->ndisks; i++) {
		write_series_open(f, "disk_free_bytes", "dir", h->disks[i].dir);
		fprintf(f, "%" PRIu64 "\n", h->disks[i].free_bytes);
	}
	write_family(f, "disk_size_bytes", "gauge", "Size of the same file systems, in bytes.");
	for (i = 0; i < h->ndisks; i++) {
		write_series_open(f, "disk_size_bytes", "dir", h->disks[i].dir);
		fprintf(f, "%" PRIu64 "\n", h->disks[i].size_bytes);
	}
	write_family(f, "secrets_identity_readable", "gauge",
		     "1 when the daemon can read its secrets identity (a key, mode 0600), 0 when it cannot; only "
		     "when secrets are configured.");
	if (h->identity_readable >= 0)
		fprintf(f, "cutover_secrets_identity_readable %d\n", h->identity_readable ? 1 : 0);
	write_family(f, "alert_max_error_rate", "gauge",
		     "The error rate above which a service's alert fires (services.NAME.alerts.max_error_rate), as a "
		     "ratio.");
	for (i = 0; i < h->nlimits; i++) {
		if (h->limits[i].max_error_rate_permille == UINT32_MAX)
			continue;
		write_series_open(f, "alert_max_error_rate", "service", h->limits[i].service);
		write_fixed(f, h->limits[i].max_error_rate_permille, 3);
		fputc('\n', f);
	}
	write_family(f, "alert_max_p99_seconds", "gauge",
		     "The p99 latency above which a service's alert fires (services.NAME.alerts.max_p99), in "
		     "seconds.");
	for (i = 0; i < h->nlimits; i++) {
		if (!h->limits[i].max_p99_ms)
			continue;
		write_series_open(f, "alert_max_p99_seconds", "service", h->limits[i].service);
		write_fixed(f, h->limits[i].max_p99_ms, 3);
		fputc('\n', f);
	}
	if (fclose(f) != 0 || !text) {
		free(text);
		return NULL;
	}
	if (len)
		*len = size;
	return text;
}
