/* api-releases.c - the release endpoints of the admin API (docs/api.md):
 *
 *   POST /v1/releases {"plan": PLAN}       start a run (201 {id, name, state})
 *   GET  /v1/releases                       the active runs
 *   GET  /v1/releases/ID                    an active run with its report (404 once finished:
 *                                           the state keeps it, `cutover release show ID`)
 *   POST /v1/releases/ID/abort {"reason"?}  roll it back
 *   POST /v1/releases/ID/approve            start one that awaits approval
 *   POST /v1/releases/ID/reject {"reason"?}
 *
 * Who asks is the socket's peer (SO_PEERCRED), for the audit and
 * approval.distinct.  Handlers only touch memory; the runner writes SQLite
 * through the state worker.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include "admin/admin-internal.h"
#include "admin/api.h"
#include "release/release.h"

static bool releases_now(struct admin *a, const char *what, struct admin_reply *out)
{
	if (!api_deploys_now(a, what, out))
		return false;
	if (!a->releases) {
		api_reply_error(out, 409, "this daemon runs no release (no service it manages)");
		return false;
	}
	return true;
}

void api_release_run(struct admin *a, const struct api_call *call, struct admin_reply *out)
{
	json_t *root, *plan;
	char err[1024];
	int64_t id;

	if (!releases_now(a, "release", out) || !(root = api_body_object(call, out)))
		return;
	plan = json_object_get(root, "plan");
	if (!json_is_object(plan)) {
		api_reply_error(out, 400, "body: expected {\"plan\": PLAN} (cutover release plan --json)");
		json_decref(root);
		return;
	}
	id = release_runner_start(a->releases, plan, call->peer_uid, err, sizeof(err));
	if (id < 0)
		api_reply_error(out, id == -EINVAL ? 400 : 409, "%s", err);
	else {
		json_t *run = release_runner_get(a->releases, id);

		api_reply_json(out, 201, json_pack("{sI s:O? s:O?}", "id", (json_int_t)id, "name",
						   json_object_get(run, "name"), "state", json_object_get(run, "state")));
		json_decref(run);
	}
	json_decref(root);
}

void api_releases(struct admin *a, const struct api_call *call, struct admin_reply *out)
{
	(void)call;
	api_reply_json(out, 200, a->releases ? release_runner_status(a->releases) : json_array());
}

static int64_t release_id(const struct api_call *call, struct admin_reply *out)
{
	char *end;
	long long id = strtoll(call->param, &end, 10);

	if (*end || id <= 0) {
		api_reply_error(out, 404, "no such release: '%s' (ids are positive integers)", call->param);
		return -1;
	}
	return id;
}

void api_release(struct admin *a, const struct api_call *call, struct admin_reply *out)
{
	int64_t id = release_id(call, out);
	json_t *run;

	if (id < 0)
		return;
	run = a->releases ? release_runner_get(a->releases, id) : NULL;
	if (!run)
		api_reply_error(out, 404, "release %lld is not running (finished ones: cutover release show %lld)",
				(long long)id, (long long)id);
	else
		api_reply_json(out, 200, run);
}

enum decision { ABORT, APPROVE, REJECT };

static void decide(struct admin *a, const struct api_call *call, enum decision what, struct admin_reply *out)
{
	int64_t id = release_id(call, out), r;
	json_t *root, *reason;
	char err[1024];

	if (id < 0 || !(root = api_body_object(call, out)))
		return;
	if (!a->releases) {
		api_reply_error(out, 409, "this daemon runs no release");
		json_decref(root);
		return;
	}
	reason = json_object_get(root, "reason");
	if (reason && (what == APPROVE || !json_is_string(reason))) {
		api_reply_error(out, 400, what == APPROVE ? "body: expected {}" : "body: expected {\"reason\": TEXT (optional)}");
		json_decref(root);
		return;
	}
	r = what == ABORT     ? release_runner_abort(a->releases, id, call->peer_uid, json_string_value(reason), err,
						     sizeof(err))
	    : what == APPROVE ? release_runner_approve(a->releases, id, call->peer_uid, err, sizeof(err))
			      : release_runner_reject(a->releases, id, call->peer_uid, json_string_value(reason), err,
						      sizeof(err));
	if (r < 0)
		api_reply_error(out, r == -ENOENT ? 404 : r == -EPERM ? 403 : 409, "%s", err);
	else
		api_reply_json(out, 202, json_pack("{sI}", "id", (json_int_t)id));
	json_decref(root);
}

void api_release_abort(struct admin *a, const struct api_call *call, struct admin_reply *out)
{
	decide(a, call, ABORT, out);
}

void api_release_approve(struct admin *a, const struct api_call *call, struct admin_reply *out)
{
	if (api_deploys_now(a, "approved release", out))
		decide(a, call, APPROVE, out);
}

void api_release_reject(struct admin *a, const struct api_call *call, struct admin_reply *out)
{
	decide(a, call, REJECT, out);
}
