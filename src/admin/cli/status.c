/* status.c - `cutover status`: what the daemon is serving right now. */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "admin/cli/cli.h"
#include "admin/client.h"

static void print_duration(json_int_t s)
{
	if (s >= 86400)
		printf("%lldd%02lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
	else if (s >= 3600)
		printf("%lldh%02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
	else if (s >= 60)
		printf("%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
	else
		printf("%llds", (long long)s);
}

static void print_status(json_t *st)
{
	json_t *services = json_object_get(st, "services"), *svc;
	size_t i, j;

	printf("cutover %s  pid %lld  up ", json_string_value(json_object_get(st, "version")),
	       (long long)json_integer_value(json_object_get(st, "pid")));
	print_duration(json_integer_value(json_object_get(st, "uptime_s")));
	printf("%s\n", json_is_true(json_object_get(st, "draining")) ? "  DRAINING" : "");
	if (json_string_value(json_object_get(st, "config")))
		printf("config %s\n", json_string_value(json_object_get(st, "config")));
	printf("client connections %lld, requests in flight %lld\n\n",
	       (long long)json_integer_value(json_object_get(st, "client_connections")),
	       (long long)json_integer_value(json_object_get(st, "requests_in_flight")));
	printf("%-16s %-24s %-22s %6s %10s %7s %6s %5s\n", "SERVICE", "ROUTES", "TARGET", "WEIGHT", "REQUESTS",
	       "5XX", "CONNS", "IDLE");
	json_array_foreach(services, i, svc) {
		json_t *targets = json_object_get(svc, "targets"), *routes = json_object_get(svc, "routes"), *t, *r;
		char rtext[256] = "";
		size_t off = 0;
		json_array_foreach(routes, j, r) {
			const char *h = json_string_value(json_object_get(r, "host"));
			off += (size_t)snprintf(rtext + off, off < sizeof(rtext) ? sizeof(rtext) - off : 0, "%s%s%s",
						j ? " " : "", strcmp(h, "*") ? h : "",
						json_string_value(json_object_get(r, "path")));
			if (off >= sizeof(rtext))
				break;
		}
		if (!json_array_size(targets))
			printf("%-16s %-24s %-22s\n", json_string_value(json_object_get(svc, "name")),
			       rtext[0] ? rtext : "(no route)", "(no targets)");
		json_array_foreach(targets, j, t) {
			printf("%-16s %-24s %-22s %6lld %10lld %7lld %6lld %5lld\n",
			       j ? "" : json_string_value(json_object_get(svc, "name")),
			       j ? "" : (rtext[0] ? rtext : "(no route)"),
			       json_string_value(json_object_get(t, "address")),
			       (long long)json_integer_value(json_object_get(t, "weight")),
			       (long long)json_integer_value(json_object_get(t, "requests")),
			       (long long)json_integer_value(json_object_get(t, "errors_5xx")),
			       (long long)json_integer_value(json_object_get(t, "open_connections")),
			       (long long)json_integer_value(json_object_get(t, "idle_connections")));
		}
	}
}

int cli_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *socket_opt = NULL, *config_opt = NULL;
	char err[512], *path, *body = NULL;
	json_error_t jerr;
	json_t *st;
	bool json = false;
	int c, status, rc;

	while ((c = getopt_long(argc, argv, "s:c:jh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			socket_opt = optarg;
			break;
		case 'c':
			config_opt = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			printf("usage: cutover status [--socket PATH | --config FILE] [--json]\n"
			       "Show the services the daemon serves, their routes and targets, with counters.\n");
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	path = admin_client_socket_path(socket_opt, config_opt, err, sizeof(err));
	if (!path) {
		fprintf(stderr, "cutover: %s\n", err);
		return EXIT_USAGE;
	}
	rc = admin_client_call(path, "GET", "/v1/status", NULL, &status, &body, err, sizeof(err));
	free(path);
	if (rc < 0) {
		fprintf(stderr, "cutover: %s\n", err);
		return EXIT_UNREACHABLE;
	}
	st = json_loads(body, 0, &jerr);
	if (status != 200 || !st) {
		fprintf(stderr, "cutover: status failed (%d): %s", status, body);
		json_decref(st);
		free(body);
		return EXIT_FAILED;
	}
	if (json)
		fputs(body, stdout);
	else
		print_status(st);
	json_decref(st);
	free(body);
	return EXIT_OK;
}
