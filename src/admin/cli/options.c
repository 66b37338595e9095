/* options.c - option parsing shared by the verbs that read a configuration
 * file (`daemon`, `check`). */
#include <getopt.h>
#include <stdio.h>
#include "admin/cli/cli.h"

int cli_config_option(int argc, char **argv, const char *help, const char **path)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	*path = "cutover.yml";
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			*path = optarg;
			break;
		case 'h':
			fputs(help, stdout);
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "cutover %s: unexpected argument '%s'\n", argv[0], argv[optind]);
		return EXIT_USAGE;
	}
	return -1;
}
