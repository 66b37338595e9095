/* load.c - read cutover.yml (and overlay files) into a validated struct
 * config: the entry points, reading files, overlays and the top level.
 *
 * Loading happens in four steps: read each file, turn its YAML text into a
 * tree of nodes (yaml-tree.c), merge the overlays onto the base tree in
 * order (merge.c), then walk the one resulting tree section by section,
 * filling a fresh struct config and checking every value where it is read.
 * The first problem stops the walk; the half-filled config is freed and the
 * caller gets one precise message "FILE:LINE:COLUMN: FIELD: reason", FILE
 * being the file the offending value was written in.  Only a config that
 * passed every check is returned, so a reload either swaps in a complete new
 * config or keeps the old one.
 *
 * An overlay changes what its base says (maps merge key by key, a null
 * removes a key, anything else replaces); it may change or remove services
 * but not add one, so a misspelt service name in an overlay is an error
 * instead of a silent new service.  Paths written in a file (state_dir,
 * admin_socket, workdir, secrets:) are relative to that file's directory
 * and come out absolute from config_load() and config_load_files().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "config/config-internal.h"

/* ---- the top level ----------------------------------------------------- */

static int root_state_dir(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	return load_path(L, n, "a directory path", &((struct config *)obj)->state_dir);
}

static int root_admin_socket(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	struct config *cfg = obj;
	int r = load_path(L, n, "a file path", &cfg->admin_socket);

	if (r < 0)
		return r;
	if (strlen(cfg->admin_socket) > UNIX_PATH_MAX)
		return fail(L, n, "must be at most %zu characters (a Unix socket path), got %zu",
			    (size_t)UNIX_PATH_MAX, strlen(cfg->admin_socket));
	return 0;
}

enum root_key {
	ROOT_LISTEN, ROOT_ADMIN, ROOT_TIMEOUTS, ROOT_LIMITS, ROOT_LOG, ROOT_SERVICES, ROOT_STATE_DIR,
	ROOT_ADMIN_SOCKET, ROOT_DEPLOY, ROOT_STARTUP, ROOT_COHORTS, ROOT_VARIABLES, ROOT_SECRETS, ROOT_APPROVAL,
	ROOT_PROMOTION, ROOT_RELEASE, ROOT_PIPELINE, ROOT_NOTIFICATIONS, ROOT_NKEYS,
};

static const struct keyword root_keywords[ROOT_NKEYS] = {
	[ROOT_LISTEN] = { "listen", load_listen, 0, 0, 0, 0 },
	[ROOT_ADMIN] = { "admin", load_admin, 0, 0, 0, 0 },
	[ROOT_TIMEOUTS] = { "timeouts", load_timeouts, 0, 0, 0, 0 },
	[ROOT_LIMITS] = { "limits", load_limits, 0, 0, 0, 0 },
	[ROOT_LOG] = { "log", load_log, 0, 0, 0, 0 },
	[ROOT_SERVICES] = { "services", NULL, 0, 0, 0, 0 },     /* read last: they inherit deploy: */
	[ROOT_STATE_DIR] = { "state_dir", root_state_dir, 0, 0, 0, 0 },
	[ROOT_ADMIN_SOCKET] = { "admin_socket", root_admin_socket, 0, 0, 0, 0 },
	[ROOT_DEPLOY] = { "deploy", load_deploy_defaults, 0, 0, 0, 0 },
	[ROOT_STARTUP] = { "startup", load_startup, 0, 0, 0, 0 },
	[ROOT_COHORTS] = { "cohorts", load_cohorts, 0, 0, 0, 0 },
	[ROOT_VARIABLES] = { "variables", NULL, 0, 0, 0, 0 },   /* read first: the others use them */
	[ROOT_SECRETS] = { "secrets", load_secrets, 0, 0, 0, 0 },
	[ROOT_APPROVAL] = { "approval", load_approval, 0, 0, 0, 0 },     /* promotion.c */
	[ROOT_PROMOTION] = { "promotion", load_promotion, 0, 0, 0, 0 },
	[ROOT_RELEASE] = { "release", load_release, 0, 0, 0, 0 },      /* release.c */
	[ROOT_PIPELINE] = { "pipeline", load_pipeline, 0, 0, 0, 0 },      /* pipeline.c */
	[ROOT_NOTIFICATIONS] = { "notifications", load_notifications, 0, 0, 0, 0 }, /* notify.c */
};

static const struct section root_section = SECTION("a mapping", false, root_keywords);

/* admin_socket defaults to STATE_DIR/admin.sock, known once state_dir is. */
static int finish_admin_socket(struct loader *L, const struct ynode *state_dir)
{
	const char *parts[2] = { L->cfg->state_dir, "admin.sock" };
	char *path;
	size_t saved;
	int r = 0;

	path = path_join(parts, 2);
	if (!path)
		return fail_oom(L);
	free(L->cfg->admin_socket);
	L->cfg->admin_socket = path;
	if (strlen(path) > UNIX_PATH_MAX) {
		saved = field_push_key(L, "state_dir");
		r = fail(L, state_dir,
			 "is too long for the admin socket in it (STATE_DIR/admin.sock would be %zu characters, "
			 "a Unix socket path has at most %zu): choose a shorter state_dir or set admin_socket",
			 strlen(path), (size_t)UNIX_PATH_MAX);
		field_pop(L, saved);
	}
	return r;
}

/* A required top-level key that is missing. */
static int fail_required(struct loader *L, const struct ynode *root, const char *key, const char *reason)
{
	size_t saved = field_push_key(L, key);
	int r = fail(L, root, "%s", reason);

	field_pop(L, saved);
	return r;
}

static int load_root(struct loader *L, const struct ynode *root)
{
	const struct ynode *given[ROOT_NKEYS] = { 0 }, *admin, *vars;
	size_t j, saved;
	int r;

	if (root->kind != YNODE_MAP)
		return fail(L, root, "the top level must be a mapping of settings (listen:, services:, ...), got %s",
			    kind_name(root));
	if ((vars = ynode_map_get(root, "variables"))) {
		saved = field_push_key(L, "variables");
		r = load_variables(L, vars);
		field_pop(L, saved);
		if (r < 0)
			return r;
	}
	r = section_load(L, root, &root_section, L->cfg, given);
	if (r < 0)
		return r;
	if (given[ROOT_SERVICES]) {
		saved = field_push_key(L, "services");
		r = load_services(L, given[ROOT_SERVICES]);
		field_pop(L, saved);
		if (r >= 0)
			r = finish_depends_on(L, given[ROOT_SERVICES]);
		if (r < 0)
			return r;
	}
	if (given[ROOT_PIPELINE] && (r = finish_pipeline(L, given[ROOT_PIPELINE])) < 0)
		return r;
	if (!given[ROOT_LISTEN])
		return fail_required(L, root, "listen", "is required: at least one address to accept connections on");
	if (!given[ROOT_SERVICES])
		return fail_required(L, root, "services", "is required: at least one service");

	admin = given[ROOT_ADMIN];
	saved = field_push_key(L, "admin");
	for (j = 0; admin && r >= 0 && j < L->cfg->nlisten; j++)
		if (addr_equal(&L->cfg->admin, &L->cfg->listen[j]))
			r = fail(L, admin, "must differ from the proxy listener listen[%zu], got %s", j,
				 QUOTED(admin->value));
	field_pop(L, saved);
	if (r >= 0 && !given[ROOT_ADMIN_SOCKET])
		r = finish_admin_socket(L, given[ROOT_STATE_DIR]);
	if (r >= 0)
		r = finish_secrets(L);
	return r;
}

/* ---- overlays ---------------------------------------------------------- */

/* The overlay's services: must all be services of the tree it goes onto
 * (base holds the services of the file base_name, as changed by the
 * overlays before). */
static int check_overlay_services(struct loader *L, const struct ynode *base, const struct ynode *overlay,
				  const char *base_name)
{
	const struct ynode *over = ynode_map_get(overlay, "services"), *have = ynode_map_get(base, "services");
	const char **names = NULL, *best;
	size_t i, nnames = 0, saved;
	int r = 0;

	if (!over || over->kind != YNODE_MAP)
		return 0;
	if (have && have->kind == YNODE_MAP) {
		names = calloc(ynode_map_size(have) + 1, sizeof(*names));
		if (!names)
			return fail_oom(L);
		for (i = 0; i < ynode_map_size(have); i++)
			if (ynode_map_key(have, i)->kind == YNODE_SCALAR)
				names[nnames++] = ynode_map_key(have, i)->value;
	}
	for (i = 0; r == 0 && i < ynode_map_size(over); i++) {
		const struct ynode *key = ynode_map_key(over, i);

		if (key->kind != YNODE_SCALAR || ynode_map_get(have, key->value))
			continue;       /* other keys are judged by the loader */
		best = nearest_word(key->value, names, nnames, sizeof(*names));
		saved = field_push_key(L, "services");
		field_push_key(L, key->value);
		r = fail(L, key,
			 "unknown service %s%s%s%s: an overlay can change or remove the services of %s, not add one",
			 QUOTED(key->value), best ? " (did you mean \"" : "", best ? best : "", best ? "\"?)" : "",
			 base_name);
		field_pop(L, saved);
	}
	free(names);
	return r;
}

/* Parse one source into *ret (NULL for an empty one).  Returns 0 or -errno
 * with L->err filled. */
static int parse_source(struct loader *L, const struct config_source *src, struct ynode **ret)
{
	struct ynode_error yerr;
	struct ynode *root = NULL;
	int r = ynode_parse(src->name, src->text, src->len, &root, &yerr);

	if (r < 0)
		return fail_tree(L, r, &yerr);
	if (root && ynode_is_null(root))
		root = ynode_free(root);
	*ret = root;
	return 0;
}

/* Merge src (an overlay) onto *tree, replacing it. */
static int apply_overlay(struct loader *L, struct ynode **tree, const struct config_source *src)
{
	struct ynode *overlay = NULL, *merged = NULL;
	struct ynode_error yerr;
	int r = parse_source(L, src, &overlay);

	if (r < 0 || !overlay)
		return r;   /* an empty overlay changes nothing */
	if (overlay->kind != YNODE_MAP)
		r = fail(L, overlay, "the top level must be a mapping of settings (listen:, services:, ...), got %s",
			 kind_name(overlay));
	if (r >= 0)
		r = check_overlay_services(L, *tree, overlay, L->name);
	if (r >= 0 && (r = ynode_merge(*tree, overlay, &merged, &yerr)) < 0)
		fail_tree(L, r, &yerr);
	if (r >= 0) {
		ynode_free(*tree);
		*tree = merged;
	}
	ynode_free(overlay);
	return r;
}

/* Load sources[0] with sources[1..n) merged onto it.  Relative paths are
 * made absolute when `absolute` is set (the files were read from disk);
 * env (may be NULL) names the environment, for the defaults that follow it.
 * ret_tree (may be NULL) gets the merged tree on success. */
static int load_sources(const struct config_source *sources, size_t n, bool absolute, const char *env,
			struct config **ret, struct ynode **ret_tree, struct config_error *err)
{
	struct loader L = { .name = n ? sources[0].name : "", .err = err, .absolute = absolute, .env = env };
	struct ynode *root = NULL;
	size_t i;
	int r;

	if (n == 0) {
		error_set(err, "", 0, 0, "", "no configuration file given");
		return -EINVAL;
	}
	r = parse_source(&L, &sources[0], &root);
	if (r >= 0 && !root) {
		error_set(err, L.name, 0, 0, "", "file is empty (expected at least listen: and services:)");
		r = -EINVAL;
	}
	for (i = 1; r >= 0 && i < n; i++)
		r = apply_overlay(&L, &root, &sources[i]);
	if (r < 0)
		goto out;

	L.cfg = calloc(1, sizeof(*L.cfg));
	if (!L.cfg || config_defaults(L.cfg) < 0) {
		r = fail_oom(&L);
		goto out;
	}
	r = load_root(&L, root);
	if (r >= 0)
		r = set_string(&L, &L.cfg->path, L.name);
	if (r < 0)
		goto out;
	*ret = L.cfg;
	L.cfg = NULL;
	if (ret_tree) {
		*ret_tree = root;
		root = NULL;
	}
	r = 0;
out:
	config_free(L.cfg);
	free(L.route_nodes);
	ynode_free(root);
	return r;
}

/* ---- entry points ------------------------------------------------------ */

int config_load_string(const char *name, const char *text, size_t len, struct config **ret,
		       struct config_error *err)
{
	struct config_source source = { .name = name, .text = text, .len = len };

	return load_sources(&source, 1, false, NULL, ret, NULL, err);
}

int config_load_sources(const struct config_source *sources, size_t n, struct config **ret,
			struct config_error *err)
{
	return load_sources(sources, n, false, NULL, ret, NULL, err);
}

int config_load_sources_tree(const struct config_source *sources, size_t n, struct config **ret,
			     struct ynode **ret_tree, struct config_error *err)
{
	return load_sources(sources, n, false, NULL, ret, ret_tree, err);
}

/* Read the whole file (at most CONFIG_MAX_FILE_BYTES).  Returns 0 with *ret
 * (caller frees) and *ret_len, or a negative errno with outputs untouched. */
static int read_file(const char *path, char **ret, size_t *ret_len)
{
	char *buf = NULL, *grown;
	size_t len = 0, alloc = 0;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n;

		if (len == alloc) {
			alloc = alloc ? alloc * 2 : 8192;
			if (alloc > CONFIG_MAX_FILE_BYTES + 1)
				alloc = CONFIG_MAX_FILE_BYTES + 1;
			if (len == alloc) {
				r = -EFBIG;
				goto out;
			}
			grown = realloc(buf, alloc);
			if (!grown) {
				r = -ENOMEM;
				goto out;
			}
			buf = grown;
		}
		n = read(fd, buf + len, alloc - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*ret = buf;
	*ret_len = len;
	buf = NULL;
	r = 0;
out:
	free(buf);
	close(fd);
	return r;
}

/* config_load_files() for the environment env (may be NULL), and the
 * merged tree into ret_tree (may be NULL). */
static int load_files(const char *const *paths, size_t n, const char *env, struct config **ret,
		      struct ynode **ret_tree, struct config_error *err)
{
	struct config_source *sources = calloc(n + 1, sizeof(*sources));
	char reason[128];
	char *text = NULL;
	size_t i, len = 0;
	int r = 0;

	if (!sources) {
		error_set(err, n ? paths[0] : "", 0, 0, "", "out of memory");
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		r = read_file(paths[i], &text, &len);
		if (r < 0) {
			if (r == -EFBIG)
				snprintf(reason, sizeof(reason), "cannot read: larger than %u bytes",
					 CONFIG_MAX_FILE_BYTES);
			else
				snprintf(reason, sizeof(reason), "cannot read: %s", strerror(-r));
			error_set(err, paths[i], 0, 0, "", reason);
			goto out;
		}
		sources[i] = (struct config_source){ .name = paths[i], .text = text, .len = len };
	}
	r = load_sources(sources, n, true, env, ret, ret_tree, err);
out:
	for (i = 0; i < n; i++)
		free((char *)sources[i].text);
	free(sources);
	return r;
}

int config_load_files(const char *const *paths, size_t n, struct config **ret, struct config_error *err)
{
	return load_files(paths, n, NULL, ret, NULL, err);
}

int config_load(const char *path, struct config **ret, struct config_error *err)
{
	return load_files(&path, 1, NULL, ret, NULL, err);
}

bool config_env_name_valid(const char *name)
{
	size_t i;

	if (!name || !((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9')))
		return false;
	for (i = 1; name[i]; i++)
		if (i >= 32 || !((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
				 name[i] == '-' || name[i] == '_'))
			return false;
	return true;
}

char *config_overlay_path(const char *base_path, const char *env)
{
	const char *slash = strrchr(base_path, '/');
	char *path;
	int n = slash ? asprintf(&path, "%.*s/cutover.%s.yml", (int)(slash - base_path), base_path, env)
		      : asprintf(&path, "cutover.%s.yml", env);

	return n < 0 ? NULL : path;
}

/* config_load_env(), and the merged tree into ret_tree (may be NULL). */
static int load_env(const char *base_path, const char *env, struct config **ret, struct ynode **ret_tree,
		    struct config_error *err)
{
	const char *paths[2] = { base_path, NULL };
	struct config *cfg = NULL;
	struct ynode *tree = NULL;
	char reason[256];
	int r;

	if (!env || !*env)
		return load_files(paths, 1, NULL, ret, ret_tree, err);
	if (!config_env_name_valid(env)) {
		snprintf(reason, sizeof(reason),
			 "invalid environment name \"%.64s\" (expected [a-z0-9][a-z0-9_-]*, at most 32 characters)", env);
		error_set(err, base_path, 0, 0, "", reason);
		return -EINVAL;
	}
	paths[1] = config_overlay_path(base_path, env);
	if (!paths[1]) {
		error_set(err, base_path, 0, 0, "", "out of memory");
		return -ENOMEM;
	}
	if (access(base_path, F_OK) < 0) {
		/* the base first: without it, the overlay's absence is not the news */
		r = -errno;
		snprintf(reason, sizeof(reason), "cannot read: %s", strerror(-r));
		error_set(err, base_path, 0, 0, "", reason);
		goto out;
	}
	if (access(paths[1], F_OK) < 0) {
		snprintf(reason, sizeof(reason), "environment \"%s\" has no overlay: %s", env, strerror(errno));
		error_set(err, paths[1], 0, 0, "", reason);
		r = -ENOENT;
		goto out;
	}
	r = load_files(paths, 2, env, &cfg, ret_tree ? &tree : NULL, err);
	if (r < 0)
		goto out;
	cfg->env = strdup(env);
	cfg->overlay = realpath(paths[1], NULL);
	if (!cfg->env || !cfg->overlay) {
		cfg = config_free(cfg);
		tree = ynode_free(tree);
		error_set(err, base_path, 0, 0, "", "out of memory");
		r = -ENOMEM;
		goto out;
	}
	*ret = cfg;
	if (ret_tree)
		*ret_tree = tree;
out:
	free((char *)paths[1]);
	return r;
}

int config_load_env(const char *base_path, const char *env, struct config **ret, struct config_error *err)
{
	return load_env(base_path, env, ret, NULL, err);
}

int config_load_env_tree(const char *base_path, const char *env, struct config **ret, struct ynode **ret_tree,
			 struct config_error *err)
{
	return load_env(base_path, env, ret, ret_tree, err);
}
