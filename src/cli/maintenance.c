/* maintenance.c - `cutover maintenance on SERVICE [--page FILE]
 * [--retry-after SECONDS]` and `cutover maintenance off SERVICE`: the
 * daemon answers every request of SERVICE with 503, a Retry-After and a
 * page, without stopping its instances, until `off` (docs/api.md,
 * POST /v1/services/NAME/maintenance).  The page's bytes are read here and
 * sent in the request: the daemon reads no file for it.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"

#define PAGE_MAX (64 * 1024)   /* the daemon's limit too (PROXY_PAGE_MAX) */
#define RETRY_AFTER_MAX 86400

struct maintenance_options {
	const char *page;             /* --page FILE */
	long retry_after;             /* --retry-after SECONDS; 0: not given */
};

static int maintenance_option(struct cli *c, int opt, const char *arg)
{
	struct maintenance_options *o = c->data;
	char *end;

	switch (opt) {
	case 'p':
		o->page = arg;
		return -1;
	case 'r':
		o->retry_after = strtol(arg, &end, 10);
		if (arg[0] < '0' || arg[0] > '9' || *end || o->retry_after < 1 || o->retry_after > RETRY_AFTER_MAX)
			return cli_fail(c, EXIT_USAGE, NULL, "--retry-after: expected whole seconds, 1 to %d, got '%s'",
					RETRY_AFTER_MAX, arg);
		return -1;
	}
	return EXIT_USAGE;
}

/* The page file as a JSON string (UTF-8 text, at most PAGE_MAX bytes)
 * into *ret, or EXIT_USAGE after cli_fail(). */
static int read_page(const struct cli *c, const char *path, json_t **ret)
{
	char *bytes = malloc(PAGE_MAX + 1);
	FILE *fp = fopen(path, "rb");
	size_t n = 0;
	json_t *s;
	int rc = 0;

	if (!bytes || !fp) {
		rc = cli_fail(c, EXIT_USAGE, json_pack("{ss}", "page", path), "--page %s: %s", path,
			      !bytes ? "out of memory" : strerror(errno));
		goto out;
	}
	n = fread(bytes, 1, PAGE_MAX + 1, fp);
	if (ferror(fp)) {
		rc = cli_fail(c, EXIT_USAGE, json_pack("{ss}", "page", path), "--page %s: cannot read it", path);
	} else if (n > PAGE_MAX) {
		rc = cli_fail(c, EXIT_USAGE, json_pack("{ss}", "page", path),
			      "--page %s: larger than %d KiB: a maintenance page is one small HTML file (inline its "
			      "style, link its images from elsewhere)", path, PAGE_MAX / 1024);
	} else if (!n) {
		rc = cli_fail(c, EXIT_USAGE, json_pack("{ss}", "page", path), "--page %s: the file is empty", path);
	} else if (memchr(bytes, 0, n) || !(s = json_stringn(bytes, n))) {
		rc = cli_fail(c, EXIT_USAGE, json_pack("{ss}", "page", path),
			      "--page %s: not text (expected HTML in UTF-8)", path);
	} else {
		*ret = s;
	}
out:
	if (fp)
		fclose(fp);
	free(bytes);
	return rc;
}

static void print_answer(json_t *answer, const char *service, bool on, const char *page)
{
	json_t *m = json_object_get(answer, "maintenance");
	bool was = json_is_true(json_object_get(answer, "was"));

	if (!on) {
		if (was)
			printf("%s is out of maintenance: its versions answer its requests again\n", service);
		else
			printf("%s was not in maintenance: nothing changed\n", service);
		return;
	}
	printf("%s %s in maintenance: its requests are answered 503 (Retry-After: %lld s) with %s%s\n", service,
	       was ? "stays" : "is", (long long)json_integer_value(json_object_get(m, "retry_after")),
	       page ? "the page " : "the built-in page", page ? page : "");
	printf("its instances keep running and being health-checked; cutover maintenance off %s brings the "
	       "traffic back\n", service);
}

int cli_maintenance(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "page", required_argument, NULL, 'p' },
		{ "retry-after", required_argument, NULL, 'r' },
		{ 0 },
	};
	struct maintenance_options o = { 0 };
	struct cli c = {
		.verb = "maintenance",
		.flags = CLI_CONFIG | CLI_SOCKET,
		.synopsis = "on|off SERVICE",
		.min_args = 2,
		.max_args = 2,
		.options = opts,
		.option = maintenance_option,
		.data = &o,
	};
	char *sock = NULL, *answer_text = NULL, *body = NULL, path[160];
	json_t *req = NULL, *page = NULL, *answer = NULL;
	const char *service, *err;
	int rc, status;
	bool on;

	rc = cli_parse(&c, argc, argv);
	if (rc >= 0)
		return rc;
	if (strcmp(c.args[0], "on") && strcmp(c.args[0], "off"))
		return cli_fail(&c, EXIT_USAGE, NULL, "expected on or off, got '%s' (see --help)", c.args[0]);
	on = !strcmp(c.args[0], "on");
	service = c.args[1];
	if (!on && (o.page || o.retry_after))
		return cli_fail(&c, EXIT_USAGE, NULL, "%s: only for cutover maintenance on",
				o.page ? "--page" : "--retry-after");
	if ((size_t)snprintf(path, sizeof(path), "/v1/services/%s/maintenance", service) >= sizeof(path) ||
	    strchr(service, '/') || strchr(service, '?'))
		return cli_fail(&c, EXIT_USAGE, NULL, "unknown service '%s'", service);
	if (on && o.page && (rc = read_page(&c, o.page, &page)))
		return rc;
	req = json_pack("{s:b}", "on", on);
	if (page)
		json_object_set_new(req, "page", page);
	if (o.retry_after)
		json_object_set_new(req, "retry_after", json_integer(o.retry_after));
	body = json_dumps(req, JSON_COMPACT);
	rc = cli_socket_path(&c, &sock);
	if (rc)
		goto out;
	rc = cli_call(&c, sock, "POST", path, body, &status, &answer_text);
	if (rc)
		goto out;
	answer = json_loads(answer_text, 0, NULL);
	if (status != 200 || !answer) {
		err = json_string_value(json_object_get(answer, "error"));
		rc = cli_fail(&c, status == 404 || status == 400 ? EXIT_USAGE : EXIT_FAILED,
			      json_pack("{si ss}", "status", status, "service", service), "%s", err ? err : answer_text);
		goto out;
	}
	if (c.json)
		cli_print_json(json_incref(answer));
	else
		print_answer(answer, service, on, o.page);
	rc = EXIT_OK;
out:
	json_decref(answer);
	json_decref(req);
	free(answer_text);
	free(body);
	free(sock);
	return rc;
}
