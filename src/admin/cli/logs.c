/* logs.c - `cutover logs SERVICE [VERSION] [-f]`: what a service's
 * instances wrote to stdout and stderr.
 *
 * Instances write their own log files (STATE_DIR/logs/SERVICE/VERSION.log,
 * rotated by copy-and-truncate; see docs/internals/supervisor.md), so this
 * reads files and needs no daemon.  -f follows like `tail -f`, and starts
 * over at the top of the file when a rotation truncated it.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "admin/cli/cli.h"

/* The most recently written VERSION.log in dir, into out.  Returns 0 or -ENOENT. */
static int newest_log(const char *dir, char *out, size_t outlen)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	time_t best = 0;
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
		if (stat(p, &st) == 0 && st.st_mtime >= best) {
			best = st.st_mtime;
			snprintf(out, outlen, "%s", p);
			rc = 0;
		}
	}
	closedir(d);
	return rc;
}

/* Print the last `lines` lines of f. */
static void print_tail(FILE *f, long lines)
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
	while ((ch = fgetc(f)) != EOF)
		putchar(ch);
	fflush(stdout);
}

int cli_logs(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "follow", no_argument, NULL, 'f' },         { "lines", required_argument, NULL, 'n' },
		{ "state-dir", required_argument, NULL, 'd' }, { "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *dir = NULL;
	char logdir[PATH_MAX], path[PATH_MAX + 300];
	bool follow = false;
	long lines = 50;
	FILE *f;
	int c;

	while ((c = getopt_long(argc, argv, "fn:d:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			follow = true;
			break;
		case 'n':
			lines = strtol(optarg, NULL, 10);
			if (lines <= 0) {
				fprintf(stderr, "cutover logs: --lines: expected a positive number, got '%s'\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'd':
			dir = optarg;
			break;
		case 'h':
			printf("usage: cutover logs SERVICE [VERSION] [-f] [-n LINES] [--state-dir DIR]\n"
			       "The last lines an instance of SERVICE wrote (the newest version's unless VERSION\n"
			       "is given); -f keeps printing as it writes.  State dir: --state-dir,\n"
			       "$CUTOVER_STATE_DIR, /var/lib/cutover.\n");
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	if (argc - optind < 1 || argc - optind > 2) {
		fprintf(stderr, "usage: cutover logs SERVICE [VERSION] [-f] (see --help)\n");
		return EXIT_USAGE;
	}
	if (!dir || !*dir)
		dir = getenv("CUTOVER_STATE_DIR");
	if (!dir || !*dir)
		dir = "/var/lib/cutover";
	if (strchr(argv[optind], '/') || (argc - optind == 2 && strchr(argv[optind + 1], '/'))) {
		fprintf(stderr, "cutover logs: service and version names cannot contain '/'\n");
		return EXIT_USAGE;
	}
	snprintf(logdir, sizeof(logdir), "%s/logs/%s", dir, argv[optind]);
	if (argc - optind == 2) {
		snprintf(path, sizeof(path), "%s/%s.log", logdir, argv[optind + 1]);
	} else if (newest_log(logdir, path, sizeof(path)) < 0) {
		fprintf(stderr, "cutover logs: no logs for service '%s' in %s\n", argv[optind], logdir);
		return EXIT_FAILED;
	}
	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "cutover logs: cannot read %s: %s\n", path, strerror(errno));
		return EXIT_FAILED;
	}
	print_tail(f, lines);
	while (follow) {
		char buf[8192];
		size_t n;
		struct stat st;
		long pos = ftell(f);
		if (stat(path, &st) == 0 && st.st_size < pos)
			fseek(f, 0, SEEK_SET); /* truncated by a rotation: start over */
		clearerr(f);
		while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
			fwrite(buf, 1, n, stdout);
		fflush(stdout);
		usleep(200 * 1000);
	}
	fclose(f);
	return EXIT_OK;
}
