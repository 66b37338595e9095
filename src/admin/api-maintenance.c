/* api-maintenance.c - POST /v1/services/NAME/maintenance: put a service in
 * maintenance (the proxy answers it 503 with Retry-After and a page) or
 * take it out, and how /v1/status shows it (docs/api.md).
 *
 * The change is made in the proxy here, on the loop thread, so the next
 * request sees it; the daemon's hook records it (the state, the audit log)
 * on its state thread and tells the event streams.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include "admin/admin-internal.h"
#include "admin/api.h"
#include "proxy/proxy.h"
#include "state/state.h"

json_t *api_maintenance_json(const struct proxy *p, const char *service)
{
	const struct proxy_maintenance *m = proxy_maintenance_find(p, service);

	if (!m)
		return json_null();
	return json_pack("{s:I, s:s, s:I, s:b}", "since", (json_int_t)m->since_ms, "by", m->by, "retry_after",
			 (json_int_t)m->retry_after_s, "page", m->custom_page);
}

/* The body's fields for "on": *page (NULL: the built-in one) and
 * *retry_after.  Returns false with a 400 answer set. */
static bool read_on(json_t *root, const char **page, size_t *page_len, uint32_t *retry_after,
		    struct admin_reply *out)
{
	json_t *jpage = json_object_get(root, "page"), *jretry = json_object_get(root, "retry_after");

	if (jpage && !json_is_null(jpage) && !json_is_string(jpage)) {
		api_reply_error(out, 400, "page: expected the page's HTML as a string (or null for the built-in page)");
		return false;
	}
	if (json_is_string(jpage) && json_string_length(jpage) > PROXY_PAGE_MAX) {
		api_reply_error(out, 400, "page: %zu bytes, at most %d", json_string_length(jpage), PROXY_PAGE_MAX);
		return false;
	}
	if (json_is_string(jpage) && memchr(json_string_value(jpage), 0, json_string_length(jpage))) {
		api_reply_error(out, 400, "page: holds a NUL byte: expected HTML text");
		return false;
	}
	if (jretry && (!json_is_integer(jretry) || json_integer_value(jretry) < 1 ||
		       json_integer_value(jretry) > PROXY_RETRY_AFTER_MAX)) {
		api_reply_error(out, 400, "retry_after: expected whole seconds, 1 to %d", PROXY_RETRY_AFTER_MAX);
		return false;
	}
	*page = json_is_string(jpage) ? json_string_value(jpage) : NULL;
	*page_len = json_is_string(jpage) ? json_string_length(jpage) : 0;
	*retry_after = jretry ? (uint32_t)json_integer_value(jretry) : 300;
	return true;
}

/* Body {"on": true, "page": "<html>..." (optional), "retry_after": 300
 * (optional)} or {"on": false}.  200 with {"service", "maintenance": as
 * in /v1/status, "was": whether it was in maintenance before}. */
void api_maintenance(struct admin *a, const struct api_call *call, struct admin_reply *out)
{
	struct proxy *p = a->proxy;
	const char *service = call->param, *page = NULL;
	struct proxy_maintenance_spec spec = { .service = service };
	json_t *root, *on;
	char by[96], err[512];
	size_t page_len = 0;
	uint32_t retry = 300;
	bool was;
	int r;

	if (!(root = api_body_object(call, out)))
		return;
	on = json_object_get(root, "on");
	if (!json_is_boolean(on)) {
		api_reply_error(out, 400, "body: expected {\"on\": true, \"page\": HTML (optional), \"retry_after\": "
				      "SECONDS (optional)} or {\"on\": false}");
		goto out;
	}
	if (json_is_true(on) && !read_on(root, &page, &page_len, &retry, out))
		goto out;
	was = proxy_maintenance_find(p, service) != NULL;
	/* off is taken for a service a reload removed: its row must go too */
	if (!proxy_route_service(p, service) && !(was && json_is_false(on))) {
		api_reply_error(out, 404, "unknown service '%s' (cutover status lists the services)", service);
		goto out;
	}
	if (!a->hooks.maintenance) {
		api_reply_error(out, 409, "this process keeps no state (it is `cutover proxy`): maintenance needs "
				      "`cutover daemon`");
		goto out;
	}
	if (json_is_true(on)) {
		/* a person's rare decision: the name is looked up on the loop */
		state_actor_name((unsigned)call->peer_uid, false, by, sizeof(by));
		spec.by = by;
		spec.since_ms = state_now_ms();
		spec.retry_after_s = retry;
		spec.page = page;
		spec.page_len = page_len;
		r = proxy_maintenance_set(p, &spec);
		if (r < 0) {
			api_reply_error(out, r == -ENOMEM ? 500 : 400, "%s", r == -ENOMEM ? "out of memory: nothing changed"
										 : "invalid maintenance");
			goto out;
		}
	} else if (!was) {
		api_reply_json(out, 200, json_pack("{s:s, s:n, s:b}", "service", service, "maintenance", "was", 0));
		goto out;
	} else {
		proxy_maintenance_clear(p, service);
	}
	r = a->hooks.maintenance(a->hooks.data, service, proxy_maintenance_find(p, service), call->peer_uid, err,
				 sizeof(err));
	if (r < 0) {
		api_reply_error(out, 500, "%s is %s maintenance, but it could not be recorded: %s", service,
				json_is_true(on) ? "in" : "out of", err);
		goto out;
	}
	api_reply_json(out, 200, json_pack("{s:s, s:o, s:b}", "service", service, "maintenance",
					   api_maintenance_json(p, service), "was", was));
out:
	json_decref(root);
}
