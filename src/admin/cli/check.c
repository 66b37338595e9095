/* check.c - `cutover check --config FILE`: validate only, apply nothing. */
#include <getopt.h>
#include <stdio.h>
#include "admin/cli/cli.h"
#include "config/config.h"

int cli_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *path = "cutover.yml";
	struct config *cfg = NULL;
	struct config_error err;
	int c;

	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'h':
			printf("usage: cutover check [--config FILE]\nValidate FILE; exit 0 if valid, 2 if not.\n");
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	if (config_load(path, &cfg, &err) < 0) {
		fprintf(stderr, "cutover: %s\n", err.message);
		return EXIT_USAGE;
	}
	printf("%s: ok (%zu listeners, %zu services, %zu routes)\n", path, cfg->nlisten, cfg->nservices,
	       cfg->nroutes);
	config_free(cfg);
	return EXIT_OK;
}
