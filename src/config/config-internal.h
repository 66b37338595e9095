/* config-internal.h - what the files of the configuration loader share.
 *
 * The loader walks a tree of YAML nodes (yaml-tree.h), section by section,
 * filling a struct config.  `struct loader` carries the walk's state: the
 * config being filled, where to report the first problem, and the dotted
 * path of the field being read.  Each section is described by a table of
 * keywords (`struct keyword`), read by section_load() (walk.c); the values
 * are read by the loaders of scalars.c and the sections' own files:
 *
 *   load.c      entry points, reading files, overlays, the top level
 *   sections.c  listen, admin, timeouts, limits, log, startup, cohorts
 *   service.c   services.NAME: targets, routes, env, health, limits
 *   command.c   commands and the ${VARIABLES} cutover substitutes
 *   deploy.c    services.NAME.deploy and the top-level deploy: defaults
 *   secrets.c   the top-level secrets: and services.NAME.secrets
 *   promotion.c approval: and promotion:
 *   pipeline.c  pipeline: (the stages of `cutover pipeline run`)
 *   notify.c    notifications: (webhooks)
 *   scalars.c   integers, sizes, durations, words, addresses, paths
 *   defaults.c  defaults, config_free
 *   walk.c      messages, field paths, node shapes, keyword tables
 *
 * Every loader returns 0 or a negative errno; on failure L->err holds the
 * message "FILE:LINE:COLUMN: FIELD: reason", FILE being the file the node
 * was read from.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>
#include "base/util.h"
#include "config/config.h"
#include "config/yaml-tree.h"

#define CONFIG_MAX_FILE_BYTES (4u << 20)
#define SERVICE_NAME_MAX 63
#define HOST_MAX 253
#define HOST_LABEL_MAX 63
#define ROUTE_PATH_MAX 1024
#define TIMEOUT_MAX_MS (24ull * 3600 * 1000)
#define WEIGHT_MAX 1000
#define INSTANCES_MAX 64
#define CONFIG_STATE_DIR_DEFAULT "/var/lib/cutover"
#define COMMAND_MAX 16384             /* build, run, smoke */
#define ENV_MAX 1024                  /* variables per service */
#define ENV_NAME_MAX 255
#define ENV_VALUE_MAX 16384
#define HEALTH_PATH_MAX 1024
#define ROUTE_CLASS_METHOD_MAX 15     /* the proxy keeps a request's method in 16 bytes */
#define ROUTE_CLASS_PATH_MAX 128      /* ... and its target in 256: a prefix is matched within */
#define UNIX_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

/* Everything the walk needs besides the node it is looking at. */
struct loader {
	const char *name;             /* the (base) file, for messages not tied to a node */
	struct config_error *err;
	struct config *cfg;           /* being filled; freed by the caller on failure */
	bool absolute;                /* make relative paths absolute (the files were read from disk) */
	const char *env;              /* the environment being loaded (config_load_env), or NULL */
	size_t routes_alloc;
	const struct ynode **route_nodes; /* where each of cfg->routes was written (routes_alloc entries) */
	const struct ynode *deploy_defaults; /* the top-level deploy: mapping, NULL if none */
	char field[sizeof(((struct config_error *)0)->field)];
	size_t field_len;
};

/* ---- keyword tables ---------------------------------------------------- */

struct keyword;

/* Read value into the section's struct obj as kw says.  The field path
 * already names the key. */
typedef int keyword_load_fn(struct loader *L, const struct ynode *value, void *obj, const struct keyword *kw);

enum {
	KEYWORD_U32 = 1u << 0,        /* the field at offset is a uint32_t (else a uint64_t) */
	KEYWORD_MANAGED = 1u << 1,    /* services.NAME: only for a service that cutover runs */
};

/* One key of a section. */
struct keyword {
	const char *key;              /* first member: unknown_key() reads tables of these */
	keyword_load_fn *load;        /* NULL: the section's own code reads it */
	size_t offset;                /* of the field in the section's struct (generic loaders) */
	uint64_t min, max;            /* range of a number, size or duration */
	unsigned flags;               /* KEYWORD_* */
};

/* A mapping read through a keyword table. */
struct section {
	const char *expected;         /* what it must be, for "must be ..., got ..." */
	bool allow_null;              /* an empty value is an empty section (all defaults) */
	const struct keyword *keywords;
	size_t nkeywords;
};

#define SECTION(expected, allow_null, table) { (expected), (allow_null), (table), ARRAY_SIZE(table) }

/* Read mapping n through s, in the order the keys are written: an unknown
 * key is an error suggesting the nearest keyword, a known one is read by its
 * load() into obj (keys with no load() are only recorded).  given (NULL, or
 * s->nkeywords entries, zeroed by the caller) gets the value node of each
 * keyword present.  Returns 0, 1 for null when s->allow_null, or -errno. */
int section_load(struct loader *L, const struct ynode *n, const struct section *s, void *obj,
		 const struct ynode **given);
/* Check mapping n against s without reading values: keys[k] and values[k]
 * (s->nkeywords entries each, zeroed by the caller) get the key and value
 * nodes of keyword k.  Returns 0, 1 for null when allowed, or -errno. */
int section_collect(struct loader *L, const struct ynode *n, const struct section *s, const struct ynode **keys,
		    const struct ynode **values);
/* Generic loaders: the field at kw->offset, in kw->min..kw->max. */
keyword_load_fn keyword_duration;     /* uint64_t milliseconds */
keyword_load_fn keyword_integer;      /* uint32_t with KEYWORD_U32, else uint64_t */
keyword_load_fn keyword_size;         /* uint32_t with KEYWORD_U32, else uint64_t */

/* ---- messages and field paths (walk.c) --------------------------------- */

/* Fill *err; parts left out when line is 0 or field "". */
void error_set(struct config_error *err, const char *file, int line, int column, const char *field,
	       const char *reason);
/* Record a problem at node `at` (NULL: no position) in the current field.
 * Always returns -EINVAL so callers can `return fail(...)`. */
int fail(struct loader *L, const struct ynode *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int fail_oom(struct loader *L);
/* Turn a parse or merge failure into L->err, the field path of *yerr
 * appended to the current one.  Returns r. */
int fail_tree(struct loader *L, int r, const struct ynode_error *yerr);

/* Quote s for a message: "..." with control characters escaped, cut after
 * 48 characters. */
const char *quote(const char *s, char *buf, size_t size);
#define QUOTED(s) quote((s), (char[80]){ 0 }, 80)

/* Append ".key" (or "key" at the top) or "[index]" to the current field.
 * Return the previous length, to hand back to field_pop(). */
size_t field_push_key(struct loader *L, const char *key);
size_t field_push_index(struct loader *L, size_t index);
void field_pop(struct loader *L, size_t saved);

/* Case-insensitive edit distance (a swap of neighbours counts as one). */
size_t edit_distance(const char *a, const char *b);
/* The entry of table (n entries of `stride` bytes, each starting with a
 * const char *) close enough to word to be a typo of it, or NULL. */
const char *nearest_word(const char *word, const void *table, size_t n, size_t stride);
int unknown_key(struct loader *L, const struct ynode *key, const void *table, size_t n, size_t stride);
#define UNKNOWN_KEY(L, key, table) unknown_key((L), (key), (table), ARRAY_SIZE(table), sizeof((table)[0]))

/* ---- node shapes (walk.c) ---------------------------------------------- */

const char *kind_name(const struct ynode *n);
/* A mapping with plain, unique keys and no merge keys: 0, 1 for null when
 * allow_null, or -EINVAL.  expected describes it for the message. */
int expect_map(struct loader *L, const struct ynode *n, bool allow_null, const char *expected);
/* A list: 0, 1 for null when allow_null, or -EINVAL. */
int expect_list(struct loader *L, const struct ynode *n, bool allow_null, const char *expected);
/* A single, non-null value: 0 or -EINVAL. */
int expect_value(struct loader *L, const struct ynode *n, const char *expected);

/* ---- values (scalars.c) ------------------------------------------------ */

int parse_uint(const char *s, uint64_t *ret);
const char *format_size(uint64_t v, char *buf, size_t size);
#define SIZE_TEXT(v) format_size((v), (char[32]){ 0 }, 32)

int load_integer(struct loader *L, const struct ynode *n, uint64_t min, uint64_t max, uint64_t *ret);
int load_size(struct loader *L, const struct ynode *n, uint64_t min, uint64_t max, uint64_t *ret);
int load_duration(struct loader *L, const struct ynode *n, uint64_t min, uint64_t max, uint64_t *ret);
/* One of words[0..nwords); *ret gets its index. */
int load_word(struct loader *L, const struct ynode *n, const char *const *words, size_t nwords,
	      const char *expected, size_t *ret);
/* "5%", "0.5%", "100": 0..100 with at most one decimal, in permille. */
int load_rate(struct loader *L, const struct ynode *n, uint32_t *ret);
/* *dst (freed first) becomes a copy of value. */
int set_string(struct loader *L, char **dst, const char *value);

bool addr_equal(const struct config_addr *a, const struct config_addr *b);
bool addr_is_loopback(const struct config_addr *a);
bool addr_is_unspecified(const struct config_addr *a);
/* "ip:port" into *addr (its text owned by addr); addr untouched on failure. */
int load_addr(struct loader *L, const struct ynode *n, struct config_addr *addr);
/* A route's host pattern (lower-cased in place) or a path: NULL when valid,
 * else the reason. */
const char *check_host(char *s);
const char *check_path(const char *s, bool allow_query);

/* Join parts with single slashes, skipping empty ones ("." if all are).
 * Returns a malloc'd string or NULL. */
char *path_join(const char *const *parts, size_t nparts);
/* A path, relative to the directory of the file n was read from (made
 * absolute when L->absolute).  *dst (freed first) owns the result. */
int load_path(struct loader *L, const struct ynode *n, const char *expected, char **dst);

/* A mapping of environment variables (services.NAME.env, a pipeline
 * stage's env:) into *ret / *ret_n: names [A-Za-z_][A-Za-z0-9_]* of at
 * most ENV_NAME_MAX, none that reserved() refuses (it returns the reason
 * that follows the name, "is reserved: ..."; NULL: fine; reserved may be NULL), values with the ${VARIABLES} of vars
 * (seen ones or'ed into *ret_seen, may be NULL) and the variables:
 * substituted.  Returns 0 or -EINVAL / -ENOMEM (what was read stays in
 * *ret for config_free). (command.c) */
int load_env_map(struct loader *L, const struct ynode *n, unsigned vars, const char *(*reserved)(const char *name),
		 struct config_env **ret, size_t *ret_n, unsigned *ret_seen);

/* ---- sections ---------------------------------------------------------- */

/* sections.c: the top-level sections of the proxy. */
keyword_load_fn load_listen, load_admin, load_timeouts, load_limits, load_log, load_startup, load_cohorts;
extern const char *const unready_words[2];    /* enum config_unready */
extern const char *const log_format_words[2]; /* enum config_log_format */
extern const char *const log_level_words[4];  /* enum log_level */
/* service.c: the names of the stop signals (TERM, ...), NULL if none. */
const char *stop_signal_name(int signo);
/* promotion.c: approval: and promotion: */
keyword_load_fn load_approval, load_promotion;
/* release.c: release:, services.NAME.depends_on and .changelog; the check
 * that every dependency names a service (services: the node of services:). */
keyword_load_fn load_release, service_depends_on, service_changelog;
int finish_depends_on(struct loader *L, const struct ynode *services);
/* pipeline.c: pipeline: (read before services:), then the services its
 * stages name checked against services: (n: the pipeline: node, may be
 * NULL); pipeline_release() frees what the loader filled. */
keyword_load_fn load_pipeline;
int finish_pipeline(struct loader *L, const struct ynode *n);
void pipeline_release(struct config_pipeline *p);
/* notify.c: notifications: */
keyword_load_fn load_notifications;
/* service.c: the services: mapping. */
int load_services(struct loader *L, const struct ynode *n);
/* command.c */
enum {
	VAR_PORT = 1u << 0,
	VAR_VERSION = 1u << 1,
	VAR_SERVICE = 1u << 2,
	VAR_RELEASE_DIR = 1u << 3,
	VAR_URL = 1u << 4,            /* deploy.smoke only */
	VAR_USER = 1u << 5,           /* the configuration's variables: (not in build) */	VAR_ENV = 1u << 6,            /* the environment's name: pipeline run: and env: only */
};
#define VARS_INSTANCE (VAR_PORT | VAR_VERSION | VAR_SERVICE | VAR_RELEASE_DIR | VAR_USER)
#define VARS_BUILD (VAR_VERSION | VAR_SERVICE | VAR_RELEASE_DIR)
#define VARS_SMOKE (VARS_INSTANCE | VAR_URL)
bool env_name_valid_len(const char *s, size_t len);
/* The top-level variables: mapping n into L->cfg->variables (read before
 * anything that may use them). */
int load_variables(struct loader *L, const struct ynode *n);
/* Every ${NAME} in n's value must be one of `allowed` (VAR_USER: a name of
 * variables:); *ret_seen (may be NULL) gets those used. */
int check_variables(struct loader *L, const struct ynode *n, unsigned allowed, bool shell, unsigned *ret_seen);
/* n's value (checked by check_variables) with each ${NAME} of variables:
 * replaced by its value, cutover's own ${PORT}... left for the launch, into
 * *dst (freed first); at most max characters once substituted. */
int expand_variables(struct loader *L, const struct ynode *n, size_t max, char **dst);
/* A shell command with only the `allowed` variables into *dst, those of
 * variables: substituted. */
int load_command(struct loader *L, const struct ynode *n, unsigned allowed, char **dst, unsigned *ret_seen);
/* deploy.c */
extern const char *const strategy_words[4];   /* enum config_strategy */
extern const char *const inconclusive_words[2]; /* enum config_inconclusive */
keyword_load_fn load_deploy_defaults;         /* the top-level deploy: */
/* The deploy settings of a service: the top-level defaults (if any), with
 * the service's own deploy: mapping n (NULL if none) over them. */
int load_service_deploy(struct loader *L, const struct ynode *n, struct config_deploy *d);
/* secrets.c */
keyword_load_fn load_secrets;                 /* the top-level secrets: */
keyword_load_fn load_service_secrets;         /* services.NAME.secrets */
/* The defaults of secrets: once the rest of the top level is read (they
 * follow state_dir and the environment). */
int finish_secrets(struct loader *L);
/* defaults.c */
void config_deploy_defaults(struct config_deploy *d);
