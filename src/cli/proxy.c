/* proxy.c - `cutover proxy --listen ADDR --target ADDR...`: the same proxy
 * without a configuration file, for trying it and for benchmarks.  Every
 * request goes to one service, "default", spread over the targets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "base/log.h"
#include "base/util.h"
#include "config/config.h"

struct proxy_options {
	struct config *cfg;
	const char *listen, *admin;
	const char **targets;
	size_t ntargets;
};

static int set_addr(const struct cli *c, struct config_addr *a, const char *text, const char *what)
{
	if (parse_sockaddr(text, &a->sa, &a->salen) < 0)
		return cli_fail(c, EXIT_USAGE, NULL, "%s: invalid address '%s' (expected IP:PORT or [IPv6]:PORT)",
				what, text);
	a->text = strdup(text);
	return a->text ? 0 : cli_fail(c, EXIT_FAILED, NULL, "out of memory");
}

static int proxy_option(struct cli *c, int opt, const char *arg)
{
	struct proxy_options *o = c->data;
	char **field = opt == 'L' ? &o->cfg->log.access : &o->cfg->admin_socket;

	switch (opt) {
	case 'l':
		o->listen = arg;
		return -1;
	case 't':
		o->targets[o->ntargets++] = arg;
		return -1;
	case 'a':
		o->admin = arg;
		return -1;
	case 'F':
		if (strcmp(arg, "logfmt") && strcmp(arg, "json"))
			return cli_fail(c, EXIT_USAGE, NULL, "--access-log-format: expected logfmt or json, got '%s'",
					arg);
		o->cfg->log.access_format = strcmp(arg, "json") ? CONFIG_LOG_LOGFMT : CONFIG_LOG_JSON;
		return -1;
	case 'L':
	case 'S':
		free(*field);
		*field = strdup(arg);
		return *field ? -1 : cli_fail(c, EXIT_FAILED, NULL, "out of memory");
	}
	return EXIT_USAGE;
}

/* Fill the listener, the admin address and the one service "default" with
 * its targets and route.  Returns 0 or an exit code (message printed). */
static int build(const struct cli *c, struct proxy_options *o)
{
	struct config *cfg = o->cfg;
	struct config_service *svc;
	int rc;

	if (!o->listen || !o->ntargets)
		return cli_fail(c, EXIT_USAGE, NULL, "--listen and at least one --target are required (see --help)");
	cfg->listen = calloc(1, sizeof(*cfg->listen));
	cfg->services = calloc(1, sizeof(*cfg->services));
	cfg->routes = calloc(1, sizeof(*cfg->routes));
	if (!cfg->listen || !cfg->services || !cfg->routes)
		return cli_fail(c, EXIT_FAILED, NULL, "out of memory");
	cfg->nlisten = 1;
	if ((rc = set_addr(c, &cfg->listen[0], o->listen, "--listen")) != 0)
		return rc;
	if (o->admin && (rc = set_addr(c, &cfg->admin, o->admin, "--admin")) != 0)
		return rc;
	cfg->nservices = 1;
	svc = &cfg->services[0];
	svc->name = strdup("default");
	svc->targets = calloc(o->ntargets, sizeof(*svc->targets));
	if (!svc->name || !svc->targets)
		return cli_fail(c, EXIT_FAILED, NULL, "out of memory");
	svc->ntargets = o->ntargets;
	for (size_t i = 0; i < o->ntargets; i++) {
		if ((rc = set_addr(c, &svc->targets[i].addr, o->targets[i], "--target")) != 0)
			return rc;
		svc->targets[i].weight = 1;
	}
	cfg->nroutes = 1;
	cfg->routes[0].path_prefix = strdup("/");
	cfg->routes[0].service = 0;
	if (!cfg->routes[0].path_prefix)
		return cli_fail(c, EXIT_FAILED, NULL, "out of memory");
	return 0;
}

int cli_proxy(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "target", required_argument, NULL, 't' },
		{ "admin", required_argument, NULL, 'a' },
		{ "access-log", required_argument, NULL, 'L' },
		{ "access-log-format", required_argument, NULL, 'F' },
		{ "admin-socket", required_argument, NULL, 'S' },
		{ 0 },
	};
	struct proxy_options o = { .cfg = calloc(1, sizeof(*o.cfg)), .targets = calloc((size_t)argc, sizeof(char *)) };
	struct cli c = {
		.verb = "proxy",
		.error_log = true,
		.options = opts,
		.shortopts = "l:t:a:L:S:F:",
		.option = proxy_option,
		.data = &o,
	};
	int rc = EXIT_FAILED;

	if (!o.cfg || !o.targets || config_defaults(o.cfg) < 0) {
		rc = cli_fail(&c, EXIT_FAILED, NULL, "out of memory");
		goto out;
	}
	/* no Unix-socket API unless asked for: `cutover proxy` owns no state dir */
	free(o.cfg->admin_socket);
	o.cfg->admin_socket = NULL;
	rc = cli_parse(&c, argc, argv);
	if (rc >= 0)
		goto out;
	rc = build(&c, &o);
	if (rc)
		goto out;
	free(o.targets);
	return cli_run_proxy(&c, o.cfg, argv);
out:
	config_free(o.cfg);
	free(o.targets);
	return rc;
}
