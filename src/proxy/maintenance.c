/* maintenance.c - services in maintenance (`cutover maintenance on`): the
 * proxy answers every request routed to one with 503, a Retry-After and a
 * page, itself, without touching its instances (they keep running and
 * being health-checked, so `off` brings traffic back at once).
 *
 * The table is a small array keyed by service name, apart from the routing
 * table, so that a reload keeps it; the hot path looks at it only when it
 * is not empty.  A page is refcounted: a response still being written keeps
 * its page when it is replaced.  These answers are local responses
 * (cutover_local_responses_total{status="503"}), never counted against a
 * version: a canary is not judged on them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/buf.h"
#include "http/parser.h"
#include "metrics/metrics.h"
#include "proxy/proxy.h"
#include "proxy/proxy-internal.h"

static struct proxy_page *page_new(const char *bytes, size_t len)
{
	struct proxy_page *pg = malloc(sizeof(*pg) + len);

	if (!pg)
		return NULL;
	pg->refcount = 1;
	pg->len = len;
	memcpy(pg->bytes, bytes, len);
	return pg;
}

struct proxy_page *proxy_page_unref(struct proxy_page *pg)
{
	if (pg && --pg->refcount == 0)
		free(pg);
	return NULL;
}

/* The page answered when the operator gave none: plain HTML that says to
 * come back, in about RETRY_AFTER_S. */
static struct proxy_page *builtin_page(uint32_t retry_after_s)
{
	char when[64], text[1024];
	int n;

	if (retry_after_s < 60)
		snprintf(when, sizeof(when), "in a few seconds");
	else if (retry_after_s < 120)
		snprintf(when, sizeof(when), "in a minute");
	else if (retry_after_s < 7200)
		snprintf(when, sizeof(when), "in about %u minutes", (retry_after_s + 59) / 60);
	else
		snprintf(when, sizeof(when), "in about %u hours", (retry_after_s + 3599) / 3600);
	n = snprintf(text, sizeof(text),
		     "<!doctype html>\n"
		     "<html lang=\"en\">\n"
		     "<head>\n"
		     "<meta charset=\"utf-8\">\n"
		     "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
		     "<title>Down for maintenance</title>\n"
		     "<style>body{font-family:system-ui,sans-serif;max-width:36em;margin:15vh auto;padding:0 1em;"
		     "color:#222;line-height:1.5}</style>\n"
		     "</head>\n"
		     "<body>\n"
		     "<h1>Down for maintenance</h1>\n"
		     "<p>This service is down for maintenance. Please try again %s.</p>\n"
		     "</body>\n"
		     "</html>\n",
		     when);
	return page_new(text, (size_t)n);
}

const struct proxy_maintenance *proxy_maintenance_find(const struct proxy *p, const char *service)
{
	for (size_t i = 0; i < p->nmaintenance; i++)
		if (!strcmp(p->maintenance[i].service, service))
			return &p->maintenance[i];
	return NULL;
}

static void maintenance_free(struct proxy_maintenance *m)
{
	free(m->service);
	free(m->by);
	proxy_page_unref(m->page);
}

int proxy_maintenance_set(struct proxy *p, const struct proxy_maintenance_spec *spec)
{
	struct proxy_maintenance m = { 0 }, *slot;
	size_t i;

	if (!spec->service || !*spec->service || !spec->by || spec->retry_after_s < 1 ||
	    spec->retry_after_s > PROXY_RETRY_AFTER_MAX || (spec->page && spec->page_len > PROXY_PAGE_MAX))
		return -EINVAL;
	m.service = strdup(spec->service);
	m.by = strdup(spec->by);
	m.since_ms = spec->since_ms;
	m.retry_after_s = spec->retry_after_s;
	m.custom_page = spec->page != NULL;
	m.page = spec->page ? page_new(spec->page, spec->page_len) : builtin_page(spec->retry_after_s);
	if (!m.service || !m.by || !m.page) {
		maintenance_free(&m);
		return -ENOMEM;
	}
	slot = (struct proxy_maintenance *)proxy_maintenance_find(p, spec->service);
	if (slot) {
		/* on again: the new page and Retry-After, since as it was */
		m.since_ms = slot->since_ms;
		maintenance_free(slot);
		*slot = m;
		return 0;
	}
	slot = reallocarray(p->maintenance, p->nmaintenance + 1, sizeof(*slot));
	if (!slot) {
		maintenance_free(&m);
		return -ENOMEM;
	}
	p->maintenance = slot;
	i = p->nmaintenance++;
	p->maintenance[i] = m;
	return 0;
}

bool proxy_maintenance_clear(struct proxy *p, const char *service)
{
	for (size_t i = 0; i < p->nmaintenance; i++) {
		if (strcmp(p->maintenance[i].service, service))
			continue;
		maintenance_free(&p->maintenance[i]);
		p->maintenance[i] = p->maintenance[--p->nmaintenance];
		return true;
	}
	return false;
}

void proxy_maintenance_release(struct proxy *p)
{
	for (size_t i = 0; i < p->nmaintenance; i++)
		maintenance_free(&p->maintenance[i]);
	free(p->maintenance);
	p->maintenance = NULL;
	p->nmaintenance = 0;
}

void exchange_maintenance_response(struct exchange *ex, const struct proxy_maintenance *m)
{
	struct client *c = ex->client;
	struct proxy *p = c->proxy;
	bool head = ex->method == HTTP_METHOD_HEAD;

	ex->status = 503;
	ex->local = true;
	ex->maintenance = true;
	ex->error = "service in maintenance";
	metrics_local_response(&p->metrics, 503);
	/* the connection stays usable only if the request was read entirely */
	if (!ex->req_done || !(ex->req.flags & HTTP_MSG_KEEP_ALIVE) || p->draining)
		c->close_after = true;
	if (buf_appendf(&c->out,
			"HTTP/1.1 503 %s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %zu\r\n"
			"Retry-After: %u\r\nCache-Control: no-store\r\nX-Request-Id: %s\r\n%s\r\n",
			http_status_reason(503), m->page->len, m->retry_after_s, ex->request_id,
			c->close_after ? "Connection: close\r\n" : "") < 0) {
		/* no room for a head: the only honest answer left is to close */
		ex->aborted = true;
		c->close_after = true;
	} else if (!head) {
		ex->page = m->page;
		ex->page->refcount++;
	}
	ex->close_sent = c->close_after;
	ex->resp_head_done = true;
	ex->resp_done = true;
}

char *proxy_metrics_render(struct proxy *p, size_t *len)
{
	static const char family[] = "# HELP cutover_maintenance Whether a service is in maintenance (answered 503 "
				     "by cutover maintenance on): 1, else 0.\n# TYPE cutover_maintenance gauge\n";
	size_t n = 0, cap, used;
	char *text = metrics_render(&p->metrics, &n), *grown;
	const struct route_table *rt = p->routes;

	if (!text)
		return NULL;
	/* service names are [a-z0-9][a-z0-9_-]*: nothing to escape in a label */
	cap = n + sizeof(family);
	for (size_t i = 0; rt && i < rt->nservices; i++)
		cap += sizeof("cutover_maintenance{service=\"\"} 1\n") + strlen(rt->services[i]->name);
	grown = realloc(text, cap);
	if (!grown) {
		free(text);
		return NULL;
	}
	text = grown;
	used = n;
	used += (size_t)snprintf(text + used, cap - used, "%s", family);
	for (size_t i = 0; rt && i < rt->nservices; i++)
		used += (size_t)snprintf(text + used, cap - used, "cutover_maintenance{service=\"%s\"} %d\n",
					 rt->services[i]->name, proxy_maintenance_find(p, rt->services[i]->name) != NULL);
	if (len)
		*len = used;
	return text;
}
