/* release.c - what cutover.yml says about multi-service releases: the
 * top-level release: section (how many services of a group deploy at
 * once, the release notes template, the default gate timeout) and two keys
 * of a managed service: depends_on (the services a release must deploy
 * before it) and changelog (its changelog file in a release's directory,
 * quoted in the release notes).
 *
 * The release files themselves are read by src/release/file.c; the order
 * (and any cycle) is judged by src/release/plan.c, which names the cycle's
 * path.  Here a dependency must only name another configured service.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "config/config-internal.h"

#define CONCURRENCY_MAX 64
#define GATE_TIMEOUT_MAX_MS (24ull * 3600 * 1000)

static int release_notes_template(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	return load_path(L, n, "the path of a Markdown template", &((struct config_release *)obj)->notes_template);
}

static const struct keyword release_keywords[] = {
	{ "concurrency", keyword_integer, offsetof(struct config_release, concurrency), 1, CONCURRENCY_MAX,
	  KEYWORD_U32 },
	{ "notes_template", release_notes_template, 0, 0, 0, 0 },
	{ "gate_timeout", keyword_duration, offsetof(struct config_release, gate_timeout_ms), 1000, GATE_TIMEOUT_MAX_MS,
	  0 },
};

static const struct section release_section =
	SECTION("a mapping {concurrency, notes_template, gate_timeout}", true, release_keywords);

int load_release(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	int r = section_load(L, n, &release_section, &((struct config *)obj)->release, NULL);

	return r < 0 ? r : 0;
}

int service_depends_on(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	struct config_service *svc = obj;
	int r = expect_list(L, n, true, "a list of service names");

	if (r != 0)
		return r < 0 ? r : 0;
	if (!n->nitems)
		return 0;
	svc->depends_on = calloc(n->nitems, sizeof(*svc->depends_on));
	if (!svc->depends_on)
		return fail_oom(L);
	for (size_t i = 0; i < n->nitems; i++) {
		const struct ynode *it = n->items[i];
		size_t saved = field_push_index(L, i);

		r = expect_value(L, it, "a service name");
		if (r >= 0 && !strcmp(it->value, svc->name))
			r = fail(L, it, "a service cannot depend on itself");
		for (size_t j = 0; r >= 0 && j < i; j++)
			if (!strcmp(svc->depends_on[j], it->value))
				r = fail(L, it, "%s is already listed (depends_on[%zu])", QUOTED(it->value), j);
		if (r >= 0)
			r = set_string(L, &svc->depends_on[i], it->value);
		if (r >= 0)
			svc->ndepends_on++;
		field_pop(L, saved);
		if (r < 0)
			return r;
	}
	return 0;
}

int service_changelog(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	struct config_service *svc = obj;
	int r = expect_value(L, n, "a file name relative to the release's directory, like CHANGELOG.md");

	if (r >= 0 && (n->value[0] == '/' || strstr(n->value, "..") || !n->value[0]))
		r = fail(L, n, "must be a relative path inside the release (no leading / and no ..), got %s",
			 QUOTED(n->value));
	if (r >= 0)
		r = set_string(L, &svc->changelog, n->value);
	return r;
}

/* Once every service is read: each dependency names a configured service. */
int finish_depends_on(struct loader *L, const struct ynode *services)
{
	const struct config *cfg = L->cfg;

	for (size_t i = 0; i < cfg->nservices; i++) {
		const struct config_service *svc = &cfg->services[i];
		const struct ynode *deps = NULL, *node = ynode_map_get(services, svc->name);

		if (node && node->kind == YNODE_MAP)
			deps = ynode_map_get(node, "depends_on");
		for (size_t k = 0; k < svc->ndepends_on; k++) {
			bool found = false;
			size_t saved;
			int r;

			for (size_t j = 0; j < cfg->nservices && !found; j++)
				found = !strcmp(cfg->services[j].name, svc->depends_on[k]);
			if (found)
				continue;
			saved = field_push_key(L, "services");
			field_push_key(L, svc->name);
			field_push_key(L, "depends_on");
			field_push_index(L, k);
			r = fail(L, deps && k < deps->nitems ? deps->items[k] : node,
				 "%s is not a service of this configuration", QUOTED(svc->depends_on[k]));
			field_pop(L, saved);
			return r;
		}
	}
	return 0;
}
