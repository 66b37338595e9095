/* proxy.c - `cutover proxy --listen ADDR --target ADDR...`: the same proxy
 * without a configuration file, for trying it and for benchmarks.  Every
 * request goes to one service, "default", spread over the targets. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "admin/cli/cli.h"
#include "base/log.h"
#include "base/util.h"
#include "config/config.h"

static int set_addr(struct config_addr *a, const char *text, const char *what)
{
	if (parse_sockaddr(text, &a->sa, &a->salen) < 0) {
		fprintf(stderr, "cutover proxy: %s: invalid address '%s' (expected IP:PORT or [IPv6]:PORT)\n", what,
			text);
		return -1;
	}
	a->text = strdup(text);
	return a->text ? 0 : -1;
}

int cli_proxy(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "target", required_argument, NULL, 't' },
		{ "admin", required_argument, NULL, 'a' },
		{ "access-log", required_argument, NULL, 'L' },
		{ "admin-socket", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct config *cfg = calloc(1, sizeof(*cfg));
	struct config_service *svc;
	const char *listen = NULL, *admin = NULL;
	const char **targets = calloc((size_t)argc, sizeof(char *));
	size_t ntargets = 0;
	int c, rc = EXIT_USAGE;

	if (!cfg || !targets) {
		free(cfg);
		free(targets);
		return EXIT_FAILED;
	}
	if (config_defaults(cfg) < 0)
		goto fail;
	/* no Unix-socket API unless asked for: `cutover proxy` owns no state dir */
	free(cfg->admin_socket);
	cfg->admin_socket = NULL;
	while ((c = getopt_long(argc, argv, "l:t:a:L:S:h", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			listen = optarg;
			break;
		case 't':
			targets[ntargets++] = optarg;
			break;
		case 'a':
			admin = optarg;
			break;
		case 'L':
			free(cfg->log.access);
			cfg->log.access = strdup(optarg);
			break;
		case 'S':
			free(cfg->admin_socket);
			cfg->admin_socket = strdup(optarg);
			break;
		case 'h':
			printf("usage: cutover proxy --listen ADDR --target ADDR [--target ADDR ...] [--admin ADDR]\n"
			       "                     [--access-log FILE|-] [--admin-socket PATH]\n"
			       "Proxy every request on ADDR to the targets (round-robin); --admin serves /metrics.\n");
			rc = EXIT_OK;
			goto out;
		default:
			goto out;
		}
	}
	if (!listen || !ntargets) {
		fprintf(stderr, "cutover proxy: --listen and at least one --target are required (see --help)\n");
		goto out;
	}
	cfg->listen = calloc(1, sizeof(*cfg->listen));
	cfg->services = calloc(1, sizeof(*cfg->services));
	cfg->routes = calloc(1, sizeof(*cfg->routes));
	if (!cfg->listen || !cfg->services || !cfg->routes)
		goto fail;
	cfg->nlisten = 1;
	if (set_addr(&cfg->listen[0], listen, "--listen") < 0)
		goto out;
	if (admin && set_addr(&cfg->admin, admin, "--admin") < 0)
		goto out;
	cfg->nservices = 1;
	svc = &cfg->services[0];
	svc->name = strdup("default");
	svc->targets = calloc(ntargets, sizeof(*svc->targets));
	if (!svc->name || !svc->targets)
		goto fail;
	svc->ntargets = ntargets;
	for (size_t i = 0; i < ntargets; i++) {
		if (set_addr(&svc->targets[i].addr, targets[i], "--target") < 0)
			goto out;
		svc->targets[i].weight = 1;
	}
	cfg->nroutes = 1;
	cfg->routes[0].path_prefix = strdup("/");
	cfg->routes[0].service = 0;
	if (!cfg->routes[0].path_prefix)
		goto fail;
	free(targets);
	return cli_run_proxy(cfg);
fail:
	fprintf(stderr, "cutover proxy: out of memory\n");
	rc = EXIT_FAILED;
out:
	config_free(cfg);
	free(targets);
	return rc;
}
