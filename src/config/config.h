/* config.h - load and validate cutover.yml into a struct config. */
#pragma once
#include "config/config-t.h"

/* Read and fully validate path.  Returns 0 and *ret (caller frees with
 * config_free), or a negative errno (-ENOENT, -EINVAL, ...) with *err filled
 * and *ret untouched; nothing is half-built on failure.  Relative paths in
 * the file (state_dir, admin_socket, workdir) are made absolute against the
 * directory of path. */
int config_load(const char *path, struct config **ret, struct config_error *err);
/* Same, from a string in memory (name is used in messages).  For tests.
 * Relative paths are joined to the directory part of name, if any, and
 * otherwise left relative. */
int config_load_string(const char *name, const char *text, size_t len, struct config **ret,
		       struct config_error *err);
/* Read paths[0] (the base) and merge paths[1..n) onto it in order, each an
 * overlay (see docs/internals/config.md): mappings merge key by key, a null
 * removes a key, lists and single values replace.  An overlay may change or
 * remove services of the base but not add one (an unknown service name is
 * an error naming the overlay).  Then the merged configuration is validated
 * as config_load() does; each message names the file the offending value
 * came from.  n >= 1; config_load(path) is config_load_files(&path, 1).
 * Returns 0 and *ret (cfg->path is paths[0]), or a negative errno with *err
 * filled and *ret untouched. */
int config_load_files(const char *const *paths, size_t n, struct config **ret, struct config_error *err);
/* The configuration of environment ENV: base_path (cutover.yml) with the
 * overlay cutover.ENV.yml of the same directory merged onto it
 * (config_load_files).  ENV NULL or "": the base alone (config_load).  ENV
 * must be a valid environment name (config_env_name_valid) and its overlay
 * must exist: a missing one is an error naming the file, never a silent
 * base.  On success cfg->env and cfg->overlay are set.  Returns as
 * config_load_files(). */
int config_load_env(const char *base_path, const char *env, struct config **ret, struct config_error *err);
/* The overlay path of ENV for base_path: DIR/cutover.ENV.yml, DIR being
 * base_path's directory.  Returns a malloc'd string, or NULL (no memory). */
char *config_overlay_path(const char *base_path, const char *env);
/* Is name a valid environment name: [a-z0-9][a-z0-9_-]{0,31}? */
bool config_env_name_valid(const char *name);
/* Same, from texts in memory (relative paths are handled as by
 * config_load_string). */
int config_load_sources(const struct config_source *sources, size_t n, struct config **ret,
			struct config_error *err);
/* As config_load_env() and config_load_sources(); on success *ret_tree
 * also gets the merged tree of YAML nodes the configuration was read from
 * (yaml-tree.h: each node with the file, line and column it was written
 * at), which config_show_json() needs.  The caller frees it with
 * ynode_free(); *ret_tree is untouched on failure. */
struct ynode;
int config_load_env_tree(const char *base_path, const char *env, struct config **ret, struct ynode **ret_tree,
			 struct config_error *err);
int config_load_sources_tree(const struct config_source *sources, size_t n, struct config **ret,
			     struct ynode **ret_tree, struct config_error *err);
/* What cfg was read from, for a person: "cutover.yml" or, in an
 * environment, "cutover.yml + cutover.prod.yml (env prod)"; "(no
 * configuration file)" for a configuration made from flags.  Writes at most
 * size bytes to buf and returns buf. */
const char *config_describe(const struct config *cfg, char *buf, size_t size);
/* Fill defaults (used by config_load, and by `cutover proxy` without a file):
 * timeouts, limits and log settings are set; state_dir and admin_socket are
 * allocated when NULL; each of services[0..nservices) gets
 * config_service_defaults().  Call it on a zeroed struct, before filling it:
 * values set before are overwritten (strings set before are kept).  Returns 0
 * or -ENOMEM (what was allocated stays owned by cfg: config_free frees it). */
int config_defaults(struct config *cfg);
/* Defaults of one service (health check, stop signal and grace, instances,
 * deploy settings; limits stay 0 = not set).  Allocates health.path when NULL, keeps
 * every other string.  Returns 0 or -ENOMEM. */
int config_service_defaults(struct config_service *svc);
/* The names of enum config_notify_event as notifications: writes them
 * ("started", "step", "succeeded", "rolled-back", "failed",
 * "approval-needed"), and of enum config_webhook_format ("slack", "json"). */
extern const char *const config_notify_event_names[CONFIG_NOTIFY_NEVENTS];
extern const char *const config_webhook_format_names[2];
/* Is url a webhook's URL: http:// or https://, a host, printable ASCII
 * without spaces, at most CONFIG_WEBHOOK_URL_MAX characters?  Returns NULL
 * with what may be shown of it ("https://hooks.slack.com": scheme and
 * host[:port], never the path or user:password@) in origin[len] (origin
 * may be NULL), or the reason it is not ("must be an http:// or https://
 * URL"); the reason never quotes the URL. */
const char *config_webhook_url_check(const char *url, char *origin, size_t len);
/* Returns NULL. Accepts NULL. */
struct config *config_free(struct config *cfg);
/* The admin token of cfg: the secret admin_token of its secrets file, read
 * with the identity IDENTITY (NULL: cfg's secrets.identity).  An admin
 * address that is not loopback needs one: then a secrets file, identity or
 * secret that cannot be read is an error naming the admin address.  On
 * loopback (or without admin) the token is optional: a secrets file that
 * is missing is none, one that cannot be read is none too, with why in
 * err->message (a warning; err->message is "" otherwise).  A token that is
 * not CONFIG_ADMIN_TOKEN_MIN..MAX visible ASCII characters is an error
 * either way.  Returns 0 with *ret (sodium_malloc'd NUL-terminated copy,
 * free with sodium_free; NULL: no token) and *ret_len, or -errno with err
 * filled (*ret untouched).  Reads files: not for the proxy's hot path. */
#define CONFIG_ADMIN_TOKEN_MIN 16
#define CONFIG_ADMIN_TOKEN_MAX 512
int config_admin_token(const struct config *cfg, const char *identity, char **ret, size_t *ret_len,
		       struct config_error *err);
