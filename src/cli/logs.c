/* logs.c - `cutover logs SERVICE [VERSION] [-f]`: what a service's
 * instances wrote to stdout and stderr.
 *
 * Instances write their own log files (STATE_DIR/logs/SERVICE/VERSION.log,
 * rotated by copy-and-truncate; see docs/internals/supervisor.md), so this
 * reads files and needs no daemon.  -f follows like `tail -f`, and starts
 * over at the top of the file when a rotation truncated it.  --json prints
 * one JSON object per line, {"service", "version", "line"}, also with -f.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli/cli.h"

/* The most recently written VERSION.log in dir, into out.  Returns 0 or -ENOENT. */
static int newest_log(const char *dir, char *out, size_t outlen)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct timespec best = { 0, 0 };
	int rc = -ENOENT;

	if (!d)
		return -ENOENT;
	while ((e = readdir(d))) {
		char p[PATH_MAX + 256]; /* dir (< PATH_MAX) + '/' + a name (< 256) */
		struct stat st;
		size_t n = strlen(e->d_name);
		if (n < 5 || strcmp(e->d_name + n - 4, ".log") || !strncmp(e->d_name, "smoke", 5))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (stat(p, &st) == 0 && (st.st_mtim.tv_sec > best.tv_sec ||
					  (st.st_mtim.tv_sec == best.tv_sec && st.st_mtim.tv_nsec >= best.tv_nsec))) {
			best = st.st_mtim;
			snprintf(out, outlen, "%s", p);
			rc = 0;
		}
	}
	closedir(d);
	return rc;
}

/* Where the lines go: stdout as they are, or (--json) one JSON object per
 * line, assembled here from what was read. */
struct log_output {
	bool json;
	const char *service;
	char version[256];            /* VERSION of VERSION.log */
	char line[65536];             /* the line being assembled; a longer one is split */
	size_t len;
};

/* A JSON string of s[0..n): jansson's, or, if s is not valid UTF-8 (an
 * instance may write anything), a copy with U+FFFD for each invalid byte. */
static json_t *json_text(const char *s, size_t n)
{
	json_t *str = json_stringn(s, n), *one;
	char *clean;
	size_t out = 0;

	if (str || !(clean = malloc(3 * n + 1)))
		return str;
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		size_t len = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
		if (len && i + len <= n && (one = json_stringn(s + i, len))) {
			json_decref(one);
			memcpy(clean + out, s + i, len);
			out += len;
			i += len;
		} else {
			memcpy(clean + out, "\xef\xbf\xbd", 3);
			out += 3;
			i++;
		}
	}
	str = json_stringn(clean, out);
	free(clean);
	return str;
}

/* Print the line assembled so far as one JSON object (an empty one only
 * when it was a line, i.e. ended by a newline). */
static void flush_line(struct log_output *o, bool ended)
{
	json_t *obj;

	if (!o->len && !ended)
		return;
	obj = json_pack("{ss ss so*}", "service", o->service, "version", o->version, "line",
			json_text(o->line, o->len));
	if (obj) {
		json_dumpf(obj, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
		json_decref(obj);
	}
	o->len = 0;
}

static void emit(struct log_output *o, const char *data, size_t n)
{
	if (!o->json) {
		fwrite(data, 1, n, stdout);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (data[i] == '\n') {
			flush_line(o, true);
			continue;
		}
		if (o->len == sizeof(o->line))
			flush_line(o, false);
		o->line[o->len++] = data[i];
	}
}

/* Print from f's position to its end. */
static void copy_rest(FILE *f, struct log_output *o)
{
	char buf[8192];
	size_t n;

	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		emit(o, buf, n);
}

/* Print the last `lines` lines of f. */
static void print_tail(FILE *f, long lines, struct log_output *o)
{
	long size, pos, seen = 0;
	int ch;

	fseek(f, 0, SEEK_END);
	size = ftell(f);
	for (pos = size - 1; pos >= 0; pos--) {
		fseek(f, pos, SEEK_SET);
		ch = fgetc(f);
		if (ch == '\n' && pos != size - 1 && ++seen == lines) {
			pos++;
			break;
		}
	}
	fseek(f, pos < 0 ? 0 : pos, SEEK_SET);
	copy_rest(f, o);
	fflush(stdout);
}

struct logs_options {
	long lines;                   /* -n */
	bool follow;                  /* -f */
};

static int logs_option(struct cli *c, int opt, const char *arg)
{
	struct logs_options *o = c->data;
	char *end;

	switch (opt) {
	case 'f':
		o->follow = true;
		return -1;
	case 'n':
		o->lines = strtol(arg, &end, 10);
		if (o->lines <= 0 || *end)
			return cli_fail(c, EXIT_USAGE, NULL, "--lines: expected a positive number, got '%s'", arg);
		return -1;
	}
	return EXIT_USAGE;
}

int cli_logs(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "follow", no_argument, NULL, 'f' },
		{ "lines", required_argument, NULL, 'n' },
		{ 0 },
	};
	struct logs_options lo = { .lines = 50 };
	struct cli c = {
		.verb = "logs",
		.flags = CLI_CONFIG | CLI_STATE_DIR,
		.synopsis = "SERVICE [VERSION]",
		.min_args = 1,
		.max_args = 2,
		.options = opts,
		.shortopts = "fn:",
		.option = logs_option,
		.data = &lo,
	};
	struct log_output *o = NULL;
	char *dir = NULL, logdir[PATH_MAX], path[PATH_MAX + 300];
	const char *slash;
	FILE *f = NULL;
	int rc;

	rc = cli_parse(&c, argc, argv);
	if (rc >= 0)
		return rc;
	if (strchr(c.args[0], '/') || (c.nargs == 2 && strchr(c.args[1], '/')))
		return cli_fail(&c, EXIT_USAGE, NULL, "service and version names cannot contain '/'");
	rc = cli_state_dir(&c, true, &dir);
	if (rc)
		return rc;
	o = calloc(1, sizeof(*o));
	if (!o) {
		rc = cli_fail(&c, EXIT_FAILED, NULL, "out of memory");
		goto out;
	}
	o->json = c.json;
	o->service = c.args[0];
	snprintf(logdir, sizeof(logdir), "%s/logs/%s", dir, c.args[0]);
	if (c.nargs == 2) {
		snprintf(path, sizeof(path), "%s/%s.log", logdir, c.args[1]);
	} else if (newest_log(logdir, path, sizeof(path)) < 0) {
		rc = cli_fail(&c, EXIT_FAILED, json_pack("{ss}", "service", c.args[0]),
			      "no logs for service '%s' in %s", c.args[0], logdir);
		goto out;
	}
	slash = strrchr(path, '/');
	snprintf(o->version, sizeof(o->version), "%.*s", (int)strlen(slash + 1) - 4, slash + 1);
	f = fopen(path, "r");
	if (!f) {
		rc = cli_fail(&c, EXIT_FAILED, json_pack("{ss ss}", "service", c.args[0], "version", o->version),
			      "cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	print_tail(f, lo.lines, o);
	while (lo.follow) {
		struct stat st;
		long pos = ftell(f);
		if (stat(path, &st) == 0 && st.st_size < pos) {
			flush_line(o, false);
			fseek(f, 0, SEEK_SET); /* truncated by a rotation: start over */
		}
		clearerr(f);
		copy_rest(f, o);
		fflush(stdout);
		usleep(200 * 1000);
	}
	flush_line(o, false); /* a last line without its newline */
	rc = EXIT_OK;
out:
	if (f)
		fclose(f);
	free(o);
	free(dir);
	return rc;
}
