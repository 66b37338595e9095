/* config.c - read cutover.yml into a validated struct config.
 *
 * Loading happens in three steps: read the file, turn the YAML text into a
 * tree of nodes (yaml-tree.c), then walk the tree section by section, filling
 * a fresh struct config and checking every value where it is read.  The first
 * problem stops the walk; the half-filled config is freed and the caller gets
 * one precise message "FILE:LINE:COLUMN: FIELD: reason".  Only a config that
 * passed every check is returned, so a reload either swaps in a complete new
 * config or keeps the old one.
 *
 * The walker tracks the dotted path of the field it is in (for example
 * services.shop.targets[1].weight) so that every message can name it.
 *
 * A service either sits at fixed targets or is run by cutover (run:, with
 * build, env, health, stop, limits and deploy settings).  Commands and
 * environment values are checked for the ${VARIABLES} cutover substitutes
 * at launch, so a typo fails here rather than at the first deploy.  Paths
 * in the file (state_dir, admin_socket, workdir) are relative to the file's
 * directory and come out absolute from config_load().
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <unistd.h>
#include "base/log.h"
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
#define CONFIG_STATE_DIR_DEFAULT "/var/lib/cutover"
#define COMMAND_MAX 16384             /* build, run, smoke */
#define ENV_MAX 1024                  /* variables per service */
#define ENV_NAME_MAX 255
#define ENV_VALUE_MAX 16384
#define HEALTH_PATH_MAX 1024
#define UNIX_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

/* Everything the walk needs besides the node it is looking at. */
struct loader {
	const char *name;             /* file name for messages */
	struct config_error *err;
	struct config *cfg;           /* being filled; freed by the caller on failure */
	size_t routes_alloc;
	const struct ynode *admin;    /* where admin: was written, for the cross-check */
	const struct ynode *state_dir;    /* where state_dir: was written (NULL: default) */
	const struct ynode *admin_socket; /* where admin_socket: was written (NULL: default) */
	const char *base_dir;         /* directory of the file, for relative paths; NULL: leave them relative */
	bool base_relative;           /* put getcwd() in front of base_dir: the file was named by a relative path */
	char field[sizeof(((struct config_error *)0)->field)];
	size_t field_len;
};

/* ---- messages ---------------------------------------------------------- */

static void error_set(struct config_error *err, const char *file, int line, int column, const char *field,
		      const char *reason)
{
	memset(err, 0, sizeof(*err));
	snprintf(err->file, sizeof(err->file), "%s", file);
	err->line = line;
	err->column = column;
	snprintf(err->field, sizeof(err->field), "%s", field);
	if (line > 0 && field[0])
		snprintf(err->message, sizeof(err->message), "%s:%d:%d: %s: %s", err->file, line, column,
			 err->field, reason);
	else if (line > 0)
		snprintf(err->message, sizeof(err->message), "%s:%d:%d: %s", err->file, line, column, reason);
	else if (field[0])
		snprintf(err->message, sizeof(err->message), "%s: %s: %s", err->file, err->field, reason);
	else
		snprintf(err->message, sizeof(err->message), "%s: %s", err->file, reason);
}

/* Record a problem at node `at` (NULL: no position) in the current field.
 * Always returns -EINVAL so callers can `return fail(...)`. */
static int fail(struct loader *L, const struct ynode *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct loader *L, const struct ynode *at, const char *fmt, ...)
{
	char reason[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	error_set(L->err, L->name, at ? at->line : 0, at ? at->column : 0, L->field, reason);
	return -EINVAL;
}

static int fail_oom(struct loader *L)
{
	error_set(L->err, L->name, 0, 0, "", "out of memory");
	return -ENOMEM;
}

/* Quote s for a message: "..." with control characters escaped, cut after
 * 48 characters so one long value cannot drown the message. */
static const char *quote(const char *s, char *buf, size_t size)
{
	size_t o = 0, shown = 0;

	buf[o++] = '"';
	for (; *s && o + 8 < size; s++) {
		unsigned char c = (unsigned char)*s;

		if (shown++ == 48) {
			o += (size_t)snprintf(buf + o, size - o, "...");
			break;
		}
		if (c == '"' || c == '\\')
			o += (size_t)snprintf(buf + o, size - o, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
		else
			buf[o++] = (char)c;
	}
	buf[o++] = '"';
	buf[o] = 0;
	return buf;
}

#define QUOTED(s) quote((s), (char[80]){ 0 }, 80)

/* Append ".key" (or "key" at the top) or "[index]" to the current field.
 * Returns the previous length, to hand back to field_pop(). */
static size_t field_push_key(struct loader *L, const char *key)
{
	size_t saved = L->field_len;
	int n = snprintf(L->field + saved, sizeof(L->field) - saved, "%s%s", saved ? "." : "", key);

	L->field_len = n < 0 ? saved : saved + (size_t)n;
	if (L->field_len >= sizeof(L->field))
		L->field_len = sizeof(L->field) - 1;
	return saved;
}

static size_t field_push_index(struct loader *L, size_t index)
{
	size_t saved = L->field_len;
	int n = snprintf(L->field + saved, sizeof(L->field) - saved, "[%zu]", index);

	L->field_len = n < 0 ? saved : saved + (size_t)n;
	if (L->field_len >= sizeof(L->field))
		L->field_len = sizeof(L->field) - 1;
	return saved;
}

static void field_pop(struct loader *L, size_t saved)
{
	L->field_len = saved;
	L->field[saved] = 0;
}

/* ---- "did you mean" ---------------------------------------------------- */

/* Case-insensitive edit distance where swapping two neighbours counts as one
 * edit ("hots" is one typo away from "host").  Capped: strings longer than 32
 * characters are never close to one of our keys. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	size_t d[33][33];

	if (la > 32 || lb > 32)
		return SIZE_MAX;
	for (i = 0; i <= la; i++)
		d[i][0] = i;
	for (j = 0; j <= lb; j++)
		d[0][j] = j;
	for (i = 1; i <= la; i++) {
		for (j = 1; j <= lb; j++) {
			int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
			size_t best = d[i - 1][j - 1] + (ca != cb);

			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
			    tolower((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

/* table points to n entries of `stride` bytes, each starting with the key
 * (const char *): a plain array of strings, or an array of structs whose first
 * member is the key. */
static int unknown_key(struct loader *L, const struct ynode *key, const void *table, size_t n, size_t stride)
{
	const char *best = NULL;
	size_t best_distance = SIZE_MAX, i;

	for (i = 0; i < n; i++) {
		const char *candidate = *(const char *const *)(const void *)((const char *)table + i * stride);
		size_t d = edit_distance(key->value, candidate);
		size_t allowed = strlen(candidate) >= 5 ? 2 : 1;

		if (d <= allowed && d < best_distance) {
			best = candidate;
			best_distance = d;
		}
	}
	if (best)
		return fail(L, key, "unknown key %s (did you mean \"%s\"?)", QUOTED(key->value), best);
	return fail(L, key, "unknown key %s", QUOTED(key->value));
}

#define UNKNOWN_KEY(L, key, table) unknown_key((L), (key), (table), ARRAY_SIZE(table), sizeof((table)[0]))

/* ---- node shapes ------------------------------------------------------- */

static const char *kind_name(const struct ynode *n)
{
	switch (n->kind) {
	case YNODE_SCALAR:
		return ynode_is_null(n) ? "nothing" : "a single value";
	case YNODE_LIST:
		return "a list";
	case YNODE_MAP:
		return "a mapping";
	case YNODE_ALIAS:
		break;
	}
	return "an alias";
}

static int fail_alias(struct loader *L, const struct ynode *n)
{
	return fail(L, n, "aliases (*%s) are not supported: write the value out in full", n->value);
}

/* A mapping: keys are plain values, no key twice, no merge keys.
 * Returns 0 for a mapping, 1 for null (an empty section) when allow_null,
 * or -EINVAL. */
static int expect_map(struct loader *L, const struct ynode *n, bool allow_null, const char *expected)
{
	size_t i, j;

	if (n->kind == YNODE_ALIAS)
		return fail_alias(L, n);
	if (allow_null && ynode_is_null(n))
		return 1;
	if (n->kind != YNODE_MAP)
		return fail(L, n, "must be %s, got %s", expected, kind_name(n));
	for (i = 0; i < ynode_map_size(n); i++) {
		const struct ynode *key = ynode_map_key(n, i);

		if (key->kind == YNODE_ALIAS)
			return fail_alias(L, key);
		if (key->kind != YNODE_SCALAR)
			return fail(L, key, "keys must be plain names, got %s", kind_name(key));
		if (key->plain && !strcmp(key->value, "<<"))
			return fail(L, key, "merge keys (<<) are not supported: write the values out in full");
		for (j = 0; j < i; j++) {
			const struct ynode *other = ynode_map_key(n, j);

			if (!strcmp(other->value, key->value)) {
				size_t saved = field_push_key(L, key->value);
				int r = fail(L, key, "duplicate key %s (first at line %d)", QUOTED(key->value),
					     other->line);

				field_pop(L, saved);
				return r;
			}
		}
	}
	return 0;
}

/* A list; 1 for null when allow_null (an empty list), 0 or -EINVAL. */
static int expect_list(struct loader *L, const struct ynode *n, bool allow_null, const char *expected)
{
	if (n->kind == YNODE_ALIAS)
		return fail_alias(L, n);
	if (allow_null && ynode_is_null(n))
		return 1;
	if (n->kind != YNODE_LIST)
		return fail(L, n, "must be %s, got %s", expected, kind_name(n));
	return 0;
}

/* A single, non-null value.  expected describes it for the message. */
static int expect_value(struct loader *L, const struct ynode *n, const char *expected)
{
	if (n->kind == YNODE_ALIAS)
		return fail_alias(L, n);
	if (ynode_is_null(n))
		return fail(L, n, "missing value: expected %s", expected);
	if (n->kind != YNODE_SCALAR)
		return fail(L, n, "must be %s, got %s", expected, kind_name(n));
	return 0;
}

/* ---- values ------------------------------------------------------------ */

/* Strict decimal: digits only, no sign, no suffix. */
static int parse_uint(const char *s, uint64_t *ret)
{
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*ret = v;
	return 0;
}

/* "16k" for 16384, "1m" for 1048576, "2g", else the number of bytes. */
static const char *format_size(uint64_t v, char *buf, size_t size)
{
	if (v && v % (1024 * 1024 * 1024) == 0)
		snprintf(buf, size, "%llug", (unsigned long long)(v / (1024 * 1024 * 1024)));
	else if (v && v % (1024 * 1024) == 0)
		snprintf(buf, size, "%llum", (unsigned long long)(v / (1024 * 1024)));
	else if (v && v % 1024 == 0)
		snprintf(buf, size, "%lluk", (unsigned long long)(v / 1024));
	else
		snprintf(buf, size, "%llu", (unsigned long long)v);
	return buf;
}

#define SIZE_TEXT(v) format_size((v), (char[32]){ 0 }, 32)

static const char *format_duration(uint64_t ms, char *buf, size_t size)
{
	if (ms && ms % 3600000 == 0)
		snprintf(buf, size, "%lluh", (unsigned long long)(ms / 3600000));
	else if (ms && ms % 60000 == 0)
		snprintf(buf, size, "%llum", (unsigned long long)(ms / 60000));
	else if (ms && ms % 1000 == 0)
		snprintf(buf, size, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, size, "%llums", (unsigned long long)ms);
	return buf;
}

#define DURATION_TEXT(v) format_duration((v), (char[32]){ 0 }, 32)

static int load_integer(struct loader *L, const struct ynode *n, uint64_t min, uint64_t max, uint64_t *ret)
{
	uint64_t v;
	int r = expect_value(L, n, "an integer");

	if (r < 0)
		return r;
	if (parse_uint(n->value, &v) < 0 || v < min || v > max)
		return fail(L, n, "must be an integer %llu..%llu, got %s", (unsigned long long)min,
			    (unsigned long long)max, QUOTED(n->value));
	*ret = v;
	return 0;
}

static int load_size(struct loader *L, const struct ynode *n, uint64_t min, uint64_t max, uint64_t *ret)
{
	uint64_t v;
	int r = expect_value(L, n, "a size like 16k");

	if (r < 0)
		return r;
	if (parse_size(n->value, &v) < 0)
		return fail(L, n, "must be a size (bytes, or with k, m, g suffix like 16k), got %s", QUOTED(n->value));
	if (v < min || v > max)
		return fail(L, n, "must be between %s and %s, got %s", SIZE_TEXT(min), SIZE_TEXT(max),
			    QUOTED(n->value));
	*ret = v;
	return 0;
}

static int load_duration(struct loader *L, const struct ynode *n, uint64_t min, uint64_t max, uint64_t *ret)
{
	uint64_t v;
	int r = expect_value(L, n, "a duration like 10s");

	if (r < 0)
		return r;
	if (parse_duration_ms(n->value, &v) < 0)
		return fail(L, n, "must be a duration (250ms, 10s, 5m, 1h; a bare number is seconds), got %s",
			    QUOTED(n->value));
	if (v < min || v > max)
		return fail(L, n, "must be between %s and %s, got %s", DURATION_TEXT(min), DURATION_TEXT(max),
			    QUOTED(n->value));
	*ret = v;
	return 0;
}

/* One of a fixed set of words; returns its index in words[]. */
static int load_word(struct loader *L, const struct ynode *n, const char *const *words, size_t nwords,
		     const char *expected, size_t *ret)
{
	size_t i;
	int r = expect_value(L, n, expected);

	if (r < 0)
		return r;
	for (i = 0; i < nwords; i++) {
		if (!strcmp(n->value, words[i])) {
			*ret = i;
			return 0;
		}
	}
	return fail(L, n, "must be %s, got %s", expected, QUOTED(n->value));
}

static int set_string(struct loader *L, char **dst, const char *value)
{
	char *copy = strdup(value);

	if (!copy)
		return fail_oom(L);
	free(*dst);
	*dst = copy;
	return 0;
}

static bool addr_equal(const struct config_addr *a, const struct config_addr *b)
{
	return a->salen == b->salen && !memcmp(&a->sa, &b->sa, a->salen);
}

static bool addr_is_loopback(const struct config_addr *a)
{
	if (a->sa.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&a->sa;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (a->sa.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->sa;

		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
	}
	return false;
}

static bool addr_is_unspecified(const struct config_addr *a)
{
	if (a->sa.ss_family == AF_INET)
		return ((const struct sockaddr_in *)&a->sa)->sin_addr.s_addr == htonl(INADDR_ANY);
	if (a->sa.ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&a->sa)->sin6_addr);
	return false;
}

/* Fill *addr from an "ip:port" value.  On success addr->text is owned by
 * addr (and so by the config); on failure addr is untouched. */
static int load_addr(struct loader *L, const struct ynode *n, struct config_addr *addr)
{
	struct config_addr parsed = { 0 };
	int r = expect_value(L, n, "an address like 127.0.0.1:8080");

	if (r < 0)
		return r;
	if (parse_sockaddr(n->value, &parsed.sa, &parsed.salen) < 0)
		return fail(L, n,
			    "must be an address like 127.0.0.1:8080 or [::1]:8080 (numeric IP or localhost, "
			    "no DNS), got %s",
			    QUOTED(n->value));
	parsed.text = strdup(n->value);
	if (!parsed.text)
		return fail_oom(L);
	*addr = parsed;
	return 0;
}

/* Host pattern of a route: an exact host name, or "*." and a host name.
 * Returns NULL when valid (and lower-cases s in place), else the reason. */
static const char *check_host(char *s)
{
	char *name = s, *p;
	size_t label = 0;

	if (!*s)
		return "must not be empty (leave host out to match any host)";
	if (!strcmp(s, "*"))
		return "\"*\" alone is not a pattern (leave host out to match any host)";
	if (strchr(s, ':') || strchr(s, '['))
		return "must be a host name without a port (routes match on the host only)";
	if (!strncmp(s, "*.", 2))
		name = s + 2;
	if (strchr(name, '*'))
		return "\"*\" is only allowed as the whole first label, like *.example.com";
	if (!*name)
		return "a wildcard needs a domain after \"*.\", like *.example.com";
	if (strlen(name) > HOST_MAX)
		return "must be at most 253 characters";
	for (p = name;; p++) {
		if (*p == '.' || !*p) {
			if (label == 0)
				return "has an empty label (check the dots)";
			if (p[-1] == '-')
				return "labels must not end with '-'";
			if (!*p)
				break;
			label = 0;
			continue;
		}
		*p = (char)tolower((unsigned char)*p);
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
			return "may only contain letters, digits, '-', '_' and '.'";
		if (label == 0 && *p == '-')
			return "labels must not start with '-'";
		if (++label > HOST_LABEL_MAX)
			return "labels must be at most 63 characters";
	}
	return NULL;
}

/* A path: a route prefix (no query) or a health check target (query
 * allowed).  Returns NULL when valid, else the reason. */
static const char *check_path(const char *s, bool allow_query)
{
	const unsigned char *p;

	if (s[0] != '/')
		return "must start with \"/\"";
	if (strlen(s) > (allow_query ? HEALTH_PATH_MAX : ROUTE_PATH_MAX))
		return "must be at most 1024 characters";
	for (p = (const unsigned char *)s; *p; p++) {
		if (*p <= 0x20 || *p == 0x7f)
			return "must not contain spaces or control characters";
		if (*p >= 0x80)
			return "must be ASCII (percent-encode other characters)";
		if (*p == '#')
			return allow_query ? "must not contain '#'"
					   : "must not contain '?' or '#' (routes match on the path only)";
		if (*p == '?' && !allow_query)
			return "must not contain '?' or '#' (routes match on the path only)";
	}
	return NULL;
}

static bool service_name_valid(const char *s)
{
	size_t i;

	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (i = 1; s[i]; i++) {
		if (i >= SERVICE_NAME_MAX)
			return false;
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
			return false;
	}
	return true;
}

/* ---- sections ---------------------------------------------------------- */

static int load_listen(struct loader *L, const struct ynode *n)
{
	struct config *cfg = L->cfg;
	size_t count, i, j;
	int r;

	if (n->kind == YNODE_SCALAR && !ynode_is_null(n)) {
		cfg->listen = calloc(1, sizeof(*cfg->listen));
		if (!cfg->listen)
			return fail_oom(L);
		cfg->nlisten = 1;
		return load_addr(L, n, &cfg->listen[0]);
	}
	r = expect_list(L, n, false, "an address or a list of addresses");
	if (r < 0)
		return r;
	count = n->nitems;
	if (count == 0)
		return fail(L, n, "at least one address is required");
	cfg->listen = calloc(count, sizeof(*cfg->listen));
	if (!cfg->listen)
		return fail_oom(L);
	cfg->nlisten = count;
	for (i = 0; i < count; i++) {
		size_t saved = field_push_index(L, i);

		r = load_addr(L, n->items[i], &cfg->listen[i]);
		for (j = 0; r >= 0 && j < i; j++)
			if (addr_equal(&cfg->listen[i], &cfg->listen[j]))
				r = fail(L, n->items[i], "address %s is listed twice (same as listen[%zu])",
					 QUOTED(n->items[i]->value), j);
		field_pop(L, saved);
		if (r < 0)
			return r;
	}
	return 0;
}

static int load_admin(struct loader *L, const struct ynode *n)
{
	int r = load_addr(L, n, &L->cfg->admin);

	if (r < 0)
		return r;
	L->admin = n;
	if (!addr_is_loopback(&L->cfg->admin))
		return fail(L, n, "must be a loopback address (127.0.0.0/8 or [::1]) so the admin API is "
			    "not reachable from the network, got %s", QUOTED(n->value));
	return 0;
}

static const struct timeout_field {
	const char *key;
	size_t offset;
	uint64_t min_ms;
} timeout_fields[] = {
	{ "client_header", offsetof(struct config_timeouts, client_header), 1 },
	{ "client_idle", offsetof(struct config_timeouts, client_idle), 1 },
	{ "client_body", offsetof(struct config_timeouts, client_body), 1 },
	{ "upstream_connect", offsetof(struct config_timeouts, upstream_connect), 1 },
	{ "upstream_header", offsetof(struct config_timeouts, upstream_header), 1 },
	{ "upstream_body", offsetof(struct config_timeouts, upstream_body), 1 },
	{ "upstream_idle", offsetof(struct config_timeouts, upstream_idle), 1 },
	{ "drain", offsetof(struct config_timeouts, drain), 0 },
};

static int load_timeouts(struct loader *L, const struct ynode *n)
{
	size_t i, k;
	int r = expect_map(L, n, true, "a mapping of durations");

	if (r != 0)
		return r < 0 ? r : 0;
	for (i = 0; i < ynode_map_size(n); i++) {
		const struct ynode *key = ynode_map_key(n, i), *value = ynode_map_value(n, i);
		size_t saved = field_push_key(L, key->value);

		for (k = 0; k < ARRAY_SIZE(timeout_fields); k++)
			if (!strcmp(key->value, timeout_fields[k].key))
				break;
		if (k == ARRAY_SIZE(timeout_fields))
			r = UNKNOWN_KEY(L, key, timeout_fields);
		else
			r = load_duration(L, value, timeout_fields[k].min_ms, TIMEOUT_MAX_MS,
					  (uint64_t *)(void *)((char *)&L->cfg->timeouts + timeout_fields[k].offset));
		field_pop(L, saved);
		if (r < 0)
			return r;
	}
	return 0;
}

enum limit_kind { LIMIT_SIZE, LIMIT_COUNT };

static const struct limit_field {
	const char *key;
	size_t offset;
	enum limit_kind kind;
	uint32_t min, max;
} limit_fields[] = {
	{ "max_header_bytes", offsetof(struct config_limits, max_header_bytes), LIMIT_SIZE, 1024, 1u << 20 },
	/* Also at most max_header_bytes, checked once both are known. */
	{ "max_uri_bytes", offsetof(struct config_limits, max_uri_bytes), LIMIT_SIZE, 256, 1u << 20 },
	{ "buffer_bytes", offsetof(struct config_limits, buffer_bytes), LIMIT_SIZE, 4096, 1u << 20 },
	{ "max_connections", offsetof(struct config_limits, max_connections), LIMIT_COUNT, 1, 1000000 },
	{ "upstream_idle_per_target", offsetof(struct config_limits, upstream_idle_per_target), LIMIT_COUNT, 0,
	  10000 },
	{ "max_retries", offsetof(struct config_limits, max_retries), LIMIT_COUNT, 0, 10 },
};

static int load_limits(struct loader *L, const struct ynode *n)
{
	struct config_limits *limits = &L->cfg->limits;
	const struct ynode *uri = NULL;
	size_t i, k;
	int r = expect_map(L, n, true, "a mapping of limits");

	if (r != 0)
		return r < 0 ? r : 0;
	for (i = 0; i < ynode_map_size(n); i++) {
		const struct ynode *key = ynode_map_key(n, i), *value = ynode_map_value(n, i);
		size_t saved = field_push_key(L, key->value);
		uint64_t v = 0;

		for (k = 0; k < ARRAY_SIZE(limit_fields); k++)
			if (!strcmp(key->value, limit_fields[k].key))
				break;
		if (k == ARRAY_SIZE(limit_fields))
			r = UNKNOWN_KEY(L, key, limit_fields);
		else if (limit_fields[k].kind == LIMIT_SIZE)
			r = load_size(L, value, limit_fields[k].min, limit_fields[k].max, &v);
		else
			r = load_integer(L, value, limit_fields[k].min, limit_fields[k].max, &v);
		field_pop(L, saved);
		if (r < 0)
			return r;
		*(uint32_t *)(void *)((char *)limits + limit_fields[k].offset) = (uint32_t)v;
		if (limit_fields[k].offset == offsetof(struct config_limits, max_uri_bytes))
			uri = value;
	}

	/* A request line longer than the whole head cannot be accepted anyway.
	 * An explicit value must fit; the default shrinks to fit. */
	if (limits->max_uri_bytes > limits->max_header_bytes) {
		size_t saved;

		if (!uri) {
			limits->max_uri_bytes = limits->max_header_bytes;
			return 0;
		}
		saved = field_push_key(L, "max_uri_bytes");
		r = fail(L, uri, "must not exceed max_header_bytes (%s), got %s", SIZE_TEXT(limits->max_header_bytes),
			 QUOTED(uri->value));
		field_pop(L, saved);
		return r;
	}
	return 0;
}

static const char *const log_keys[] = { "access", "format", "error", "level" };
static const char *const log_formats[] = { [CONFIG_LOG_LOGFMT] = "logfmt", [CONFIG_LOG_JSON] = "json" };
static const char *const log_levels[] = {
	[LOG_LEVEL_DEBUG] = "debug", [LOG_LEVEL_INFO] = "info", [LOG_LEVEL_WARN] = "warn", [LOG_LEVEL_ERROR] = "error",
};

static int load_log(struct loader *L, const struct ynode *n)
{
	struct config_log *log = &L->cfg->log;
	size_t i, index;
	int r = expect_map(L, n, true, "a mapping of log settings");

	if (r != 0)
		return r < 0 ? r : 0;
	for (i = 0; i < ynode_map_size(n); i++) {
		const struct ynode *key = ynode_map_key(n, i), *value = ynode_map_value(n, i);
		size_t saved = field_push_key(L, key->value);

		if (!strcmp(key->value, "access") || !strcmp(key->value, "error")) {
			bool access = key->value[0] == 'a';
			const char *expected = access ? "a file path, \"-\" for stdout, or off"
						      : "a file path or \"-\" for stderr";

			r = expect_value(L, value, expected);
			if (r >= 0 && !value->value[0])
				r = fail(L, value, "must be %s, got \"\"", expected);
			if (r >= 0 && access && !strcmp(value->value, "off"))
				; /* stays NULL */
			else if (r >= 0)
				r = set_string(L, access ? &log->access : &log->error, value->value);
		} else if (!strcmp(key->value, "format")) {
			r = load_word(L, value, log_formats, ARRAY_SIZE(log_formats), "logfmt or json", &index);
			if (r >= 0)
				log->access_format = (enum config_log_format)index;
		} else if (!strcmp(key->value, "level")) {
			r = load_word(L, value, log_levels, ARRAY_SIZE(log_levels), "debug, info, warn or error",
				      &index);
			if (r >= 0)
				log->level = (int)index;
		} else {
			r = UNKNOWN_KEY(L, key, log_keys);
		}
		field_pop(L, saved);
		if (r < 0)
			return r;
	}
	return 0;
}

static const char *const target_keys[] = { "address", "weight" };

/* One target: "ip:port", or a mapping with address: and weight:. */
static int load_target(struct loader *L, const struct ynode *n, struct config_target *target)
{
	const struct ynode *address = NULL, *weight = NULL;
	uint64_t w = 1;
	size_t i, saved;
	int r;

	if (n->kind != YNODE_MAP) {
		if (n->kind == YNODE_LIST)
			return fail(L, n, "must be an address or a mapping with address: and weight:, got a list");
		r = load_addr(L, n, &target->addr);
		if (r < 0)
			return r;
		target->weight = 1;
		return 0;
	}
	r = expect_map(L, n, false, "a mapping");
	if (r < 0)
		return r;
	for (i = 0; i < ynode_map_size(n); i++) {
		const struct ynode *key = ynode_map_key(n, i);

		if (!strcmp(key->value, "address")) {
			address = ynode_map_value(n, i);
		} else if (!strcmp(key->value, "weight")) {
			weight = ynode_map_value(n, i);
		} else {
			saved = field_push_key(L, key->value);
			r = UNKNOWN_KEY(L, key, target_keys);
			field_pop(L, saved);
			return r;
		}
	}
	if (!address) {
		saved = field_push_key(L, "address");
		r = fail(L, n, "is required (like address: 127.0.0.1:9001)");
		field_pop(L, saved);
		return r;
	}
	saved = field_push_key(L, "address");
	r = load_addr(L, address, &target->addr);
	field_pop(L, saved);
	if (r < 0)
		return r;
	if (weight) {
		saved = field_push_key(L, "weight");
		r = load_integer(L, weight, 1, WEIGHT_MAX, &w);
		field_pop(L, saved);
		if (r < 0)
			return r;
	}
	target->weight = (uint32_t)w;
	return 0;
}

/* The node holding a target's address, for messages about it. */
static const struct ynode *target_address_node(const struct ynode *n)
{
	size_t i;

	if (n->kind != YNODE_MAP)
		return n;
	for (i = 0; i < ynode_map_size(n); i++)
		if (!strcmp(ynode_map_key(n, i)->value, "address"))
			return ynode_map_value(n, i);
	return n;
}

static int load_targets(struct loader *L, const struct ynode *n, struct config_service *svc)
{
	size_t i, j;
	int r = expect_list(L, n, true, "a list of targets");

	if (r < 0)
		return r;
	if (r > 0 || n->nitems == 0)
		return fail(L, n, "at least one target is required");
	svc->targets = calloc(n->nitems, sizeof(*svc->targets));
	if (!svc->targets)
		return fail_oom(L);
	svc->ntargets = n->nitems;
	for (i = 0; i < n->nitems; i++) {
		size_t saved = field_push_index(L, i);
		const struct ynode *at = target_address_node(n->items[i]);

		r = load_target(L, n->items[i], &svc->targets[i]);
		if (at != n->items[i])
			field_push_key(L, "address");
		if (r >= 0 && addr_is_unspecified(&svc->targets[i].addr))
			r = fail(L, at, "must be an address to connect to, not %s", QUOTED(at->value));
		for (j = 0; r >= 0 && j < i; j++)
			if (addr_equal(&svc->targets[i].addr, &svc->targets[j].addr))
				r = fail(L, at, "duplicate target %s (same address as targets[%zu])", QUOTED(at->value),
					 j);
		field_pop(L, saved);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Index of route r among the routes of its own service (routes of one
 * service are contiguous, in declaration order). */
static size_t route_index_in_service(const struct config *cfg, size_t r)
{
	size_t first = r;

	while (first > 0 && cfg->routes[first - 1].service == cfg->routes[r].service)
		first--;
	return r - first;
}

static bool route_same(const struct config_route *a, const struct config_route *b)
{
	if ((a->host == NULL) != (b->host == NULL))
		return false;
	if (a->host && strcmp(a->host, b->host))
		return false;
	return !strcmp(a->path_prefix, b->path_prefix);
}

static const char *const route_keys[] = { "host", "path" };

static int load_route(struct loader *L, const struct ynode *n, size_t service, struct config_route *route)
{
	const char *reason;
	size_t i, saved;
	int r = expect_map(L, n, false, "a mapping with host: and/or path:");

	if (r < 0)
		return r;
	route->service = service;
	route->line = n->line;
	for (i = 0; i < ynode_map_size(n); i++) {
		const struct ynode *key = ynode_map_key(n, i), *value = ynode_map_value(n, i);

		saved = field_push_key(L, key->value);
		if (!strcmp(key->value, "host")) {
			r = expect_value(L, value, "a host name like shop.example.com or *.example.com");
			if (r >= 0)
				r = set_string(L, &route->host, value->value);
			if (r >= 0 && (reason = check_host(route->host)))
				r = fail(L, value, "%s, got %s", reason, QUOTED(value->value));
		} else if (!strcmp(key->value, "path")) {
			r = expect_value(L, value, "a path prefix like /api/");
			if (r >= 0 && (reason = check_path(value->value, false)))
				r = fail(L, value, "%s, got %s", reason, QUOTED(value->value));
			if (r >= 0)
				r = set_string(L, &route->path_prefix, value->value);
		} else {
			r = UNKNOWN_KEY(L, key, route_keys);
		}
		field_pop(L, saved);
		if (r < 0)
			return r;
	}
	if (!route->path_prefix)
		return set_string(L, &route->path_prefix, "/");
	return 0;
}

static int load_routes(struct loader *L, const struct ynode *n, size_t service)
{
	struct config *cfg = L->cfg;
	size_t i, j;
	int r = expect_list(L, n, true, "a list of routes");

	if (r != 0)
		return r < 0 ? r : 0;
	for (i = 0; i < n->nitems; i++) {
		struct config_route *route;
		size_t saved;

		if (cfg->nroutes == L->routes_alloc) {
			size_t alloc = L->routes_alloc ? L->routes_alloc * 2 : 8;
			struct config_route *routes = reallocarray(cfg->routes, alloc, sizeof(*routes));

			if (!routes)
				return fail_oom(L);
			cfg->routes = routes;
			L->routes_alloc = alloc;
		}
		route = &cfg->routes[cfg->nroutes++];
		*route = (struct config_route){ 0 };

		saved = field_push_index(L, i);
		r = load_route(L, n->items[i], service, route);
		for (j = 0; r >= 0 && j + 1 < cfg->nroutes; j++) {
			const struct config_route *other = &cfg->routes[j];

			if (!route_same(route, other))
				continue;
			r = fail(L, n->items[i],
				 "route (host %s, path %s) is already declared at services.%s.routes[%zu] (line %d)",
				 route->host ? QUOTED(route->host) : "any", QUOTED(route->path_prefix),
				 cfg->services[other->service].name, route_index_in_service(cfg, j), other->line);
		}
		field_pop(L, saved);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- paths ------------------------------------------------------------- */

/* Join parts with single slashes, skipping empty parts ("." if all are). */
static char *path_join(const char *const *parts, size_t nparts)
{
	size_t i, len = 2;
	char *out;

	for (i = 0; i < nparts; i++)
		len += (parts[i] ? strlen(parts[i]) : 0) + 1;
	out = malloc(len);
	if (!out)
		return NULL;
	out[0] = 0;
	len = 0;
	for (i = 0; i < nparts; i++) {
		size_t n = parts[i] ? strlen(parts[i]) : 0;

		if (!n)
			continue;
		if (len && out[len - 1] != '/')
			out[len++] = '/';
		memcpy(out + len, parts[i], n);
		len += n;
	}
	if (!len)
		out[len++] = '.';
	while (len > 1 && out[len - 1] == '/')
		len--;
	out[len] = 0;
	return out;
}

/* A file system path written in the file: absolute, or relative to the
 * directory of the file (made absolute when the file was read from disk).
 * On success *dst (freed first) owns the result. */
static int load_path(struct loader *L, const struct ynode *n, const char *expected, char **dst)
{
	char cwd[PATH_MAX];
	const char *rel, *parts[3] = { NULL, NULL, NULL };
	const unsigned char *p;
	char *path;
	int r = expect_value(L, n, expected);

	if (r < 0)
		return r;
	if (!n->value[0])
		return fail(L, n, "must be %s, got \"\"", expected);
	if (n->value[0] == '~')
		return fail(L, n, "\"~\" is not expanded: write the full path, got %s", QUOTED(n->value));
	if (strstr(n->value, "${"))
		return fail(L, n, "variables are not substituted in paths, got %s", QUOTED(n->value));
	for (p = (const unsigned char *)n->value; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return fail(L, n, "must not contain control characters, got %s", QUOTED(n->value));

	rel = n->value;
	if (rel[0] != '/') {
		while (rel[0] == '.' && rel[1] == '/') {
			rel += 2;
			while (*rel == '/')
				rel++;
		}
		if (!strcmp(rel, "."))
			rel = "";
		if (L->base_relative) {
			if (!getcwd(cwd, sizeof(cwd)))
				return fail(L, n, "is relative and the current directory is unknown (%s): write an absolute path",
					    strerror(errno));
			parts[0] = cwd;
		}
		parts[1] = L->base_dir;
	}
	parts[2] = rel;
	path = path_join(parts, ARRAY_SIZE(parts));
	if (!path)
		return fail_oom(L);
	if (strlen(path) >= PATH_MAX) {
		free(path);
		return fail(L, n, "must be shorter than %d characters once made absolute, got %s", PATH_MAX,
			    QUOTED(n->value));
	}
	free(*dst);
	*dst = path;
	return 0;
}

/* ---- managed services -------------------------------------------------- */

/* Variables cutover substitutes when it runs a command or starts an instance. */
enum {
	VAR_PORT = 1u << 0,
	VAR_VERSION = 1u << 1,
	VAR_SERVICE = 1u << 2,
	VAR_RELEASE_DIR = 1u << 3,
	VAR_URL = 1u << 4,            /* deploy.smoke only */
};
#define VARS_INSTANCE (VAR_PORT | VAR_VERSION | VAR_SERVICE | VAR_RELEASE_DIR)
#define VARS_BUILD (VAR_VERSION | VAR_SERVICE | VAR_RELEASE_DIR)
#define VARS_SMOKE (VARS_INSTANCE | VAR_URL)

static const struct variable {
	const char *name;
	unsigned bit;
} variables[] = {
	{ "PORT", VAR_PORT }, { "VERSION", VAR_VERSION }, { "SERVICE", VAR_SERVICE },
	{ "RELEASE_DIR", VAR_RELEASE_DIR }, { "URL", VAR_URL },
};

static bool env_name_valid_len(const char *s, size_t len)
{
	size_t i;

	if (!len || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (i = 1; i < len; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
			return false;
	return true;
}

/* "${PORT}, ${VERSION} and ${URL}" for the variables in `allowed`. */
static const char *variables_text(unsigned allowed, char *buf, size_t size)
{
	size_t i, count = 0, shown = 0, o = 0;

	buf[0] = 0;
	for (i = 0; i < ARRAY_SIZE(variables); i++)
		count += (allowed & variables[i].bit) != 0;
	for (i = 0; i < ARRAY_SIZE(variables) && o < size; i++) {
		if (!(allowed & variables[i].bit))
			continue;
		o += (size_t)snprintf(buf + o, size - o, "%s${%s}",
				      shown == 0 ? "" : shown + 1 == count ? " and " : ", ", variables[i].name);
		shown++;
	}
	return buf;
}

#define VARIABLES_TEXT(allowed) variables_text((allowed), (char[128]){ 0 }, 128)

/* Check every ${NAME} in a command (shell) or environment value: each must
 * be one of `allowed`.  *ret_seen (may be NULL) gets the variables used. */
static int check_variables(struct loader *L, const struct ynode *n, unsigned allowed, bool shell,
			   unsigned *ret_seen)
{
	const char *p = n->value;
	unsigned seen = 0;

	while ((p = strstr(p, "${"))) {
		const char *name = p + 2, *end = strchr(name, '}');
		const char *suggest = NULL;
		size_t len, i, best = SIZE_MAX;
		char var[48];

		if (!end)
			return fail(L, n, "\"${\" without a closing \"}\" (cutover variables are written like ${PORT})");
		len = (size_t)(end - name);
		for (i = 0; i < ARRAY_SIZE(variables); i++)
			if (strlen(variables[i].name) == len && !memcmp(variables[i].name, name, len))
				break;
		if (i < ARRAY_SIZE(variables) && (allowed & variables[i].bit)) {
			seen |= variables[i].bit;
			p = end + 1;
			continue;
		}
		if (i < ARRAY_SIZE(variables) && variables[i].bit == VAR_URL)
			return fail(L, n, "${URL} is only known in deploy.smoke (the address of the new instance)");
		if (i < ARRAY_SIZE(variables) && variables[i].bit == VAR_PORT)
			return fail(L, n, "${PORT} is not known here: the build runs once per release, before any "
				    "instance has a port");
		if (!env_name_valid_len(name, len) || len >= 40) {
			snprintf(var, sizeof(var), "${%.*s}", (int)(len < 40 ? len : 40), name);
			return fail(L, n, "%s is not a variable name (cutover substitutes %s)", QUOTED(var),
				    VARIABLES_TEXT(allowed));
		}
		snprintf(var, sizeof(var), "%.*s", (int)len, name);
		for (i = 0; i < ARRAY_SIZE(variables); i++) {
			size_t d = edit_distance(var, variables[i].name);

			if ((allowed & variables[i].bit) && d <= (strlen(variables[i].name) >= 5 ? 2u : 1u) && d < best) {
				best = d;
				suggest = variables[i].name;
			}
		}
		if (suggest)
			return fail(L, n, "unknown variable ${%s} (did you mean ${%s}?)", var, suggest);
		return fail(L, n, "unknown variable ${%s}: cutover substitutes only %s%s%s", var, VARIABLES_TEXT(allowed),
			    shell ? "; for a shell variable write $" : "", shell ? var : "");
	}
	if (ret_seen)
		*ret_seen = seen;
	return 0;
}

/* A shell command (build, run, smoke): non-empty, bounded, with only the
 * `allowed` variables.  *ret_seen (may be NULL) gets the variables used. */
static int load_command(struct loader *L, const struct ynode *n, unsigned allowed, char **dst, unsigned *ret_seen)
{
	int r = expect_value(L, n, "a shell command");

	if (r < 0)
		return r;
	if (!n->value[0])
		return fail(L, n, "must be a shell command, got \"\"");
	if (strlen(n->value) > COMMAND_MAX)
		return fail(L, n, "must be at most %d characters, got %zu", COMMAND_MAX, strlen(n->value));
	r = check_variables(L, n, allowed, true, ret_seen);
	if (r < 0)
		return r;
	return set_string(L, dst, n->value);
}

static int load_env(struct loader *L, const struct ynode *n, struct config_service *svc)
{
	size_t i, count;
	int r = expect_map(L, n, true, "a mapping of variable names to values");

	if (r != 0)
		return r < 0 ? r : 0;
	count = ynode_map_size(n);
	if (count > ENV_MAX)
		return fail(L, n, "at most %d variables, got %zu", ENV_MAX, count);
	if (!count)
		return 0;
	svc->env = calloc(count, sizeof(*svc->env));
	if (!svc->env)
		return fail_oom(L);
	svc->nenv = count;
	for (i = 0; i < count; i++) {
		const struct ynode *key = ynode_map_key(n, i), *value = ynode_map_value(n, i);
		size_t saved = field_push_key(L, key->value);

		if (!env_name_valid_len(key->value, strlen(key->value)))
			r = fail(L, key, "variable names must match [A-Za-z_][A-Za-z0-9_]*, got %s", QUOTED(key->value));
		else if (strlen(key->value) > ENV_NAME_MAX)
			r = fail(L, key, "variable names must be at most %d characters", ENV_NAME_MAX);
		else if (!strcmp(key->value, "PORT"))
			r = fail(L, key, "PORT is reserved: cutover sets it to the port it chose for the instance "
				 "(to pass it under another name as well, write e.g. APP_PORT: ${PORT})");
		else
			r = expect_value(L, value, "a value (write \"\" for an empty one)");
		if (r >= 0 && strlen(value->value) > ENV_VALUE_MAX)
			r = fail(L, value, "must be at most %d characters, got %zu", ENV_VALUE_MAX, strlen(value->value));
		if (r >= 0)
			r = check_variables(L, value, VARS_INSTANCE, false, NULL);
		if (r >= 0)
			r = set_string(L, &svc->env[i].name, key->value);
		if (r >= 0)
			r = set_string(L, &svc->env[i].value, value->value);
		field_pop(L, saved);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Host header of a health check: a host name or address, optionally with
 * a port.  Returns NULL when valid, else the reason. */
static const char *check_header_host(const char *s)
{
	const unsigned char *p;

	if (!*s)
		return "must not be empty (leave host out to send the service name)";
	if (strlen(s) > HOST_MAX + 8)
		return "must be at most 261 characters";
	for (p = (const unsigned char *)s; *p; p++)
		if (!isalnum(*p) && !strchr("-_.:[]", *p))
			return "may only contain letters, digits, '-', '_', '.', ':' and '[' ']' (a host name or "
			       "address, optionally with a port)";
	return NULL;
}

static const char *const health_keys[] = {
	"path", "host", "interval", "timeout", "healthy_threshold", "unhealthy_threshold", "start_grace",
};

static int load_health(struct loader *L, const struct ynode *n, struct config_health *h)
{
	const struct ynode *interval = NULL, *timeout = NULL;
	const char *reason;
	size_t i, saved;
	uint64_t v;
	int r = expect_map(L, n, true, "a mapping of health check settings");

	if (r != 0)
		return r < 0 ? r : 0;
	for (i = 0; i < ynode_map_size(n); i++) {
		const struct ynode *key = ynode_map_key(n, i), *value = ynode_map_value(n, i);
		const char *k = key->value;

		saved = field_push_key(L, k);
		if (!strcmp(k, "path")) {
			r = expect_value(L, value, "a path like /health");
			if (r >= 0 && (reason = check_path(value->value, true)))
				r = fail(L, value, "%s, got %s", reason, QUOTED(value->value));
			if (r >= 0)
				r = set_string(L, &h->path, value->value);
		} else if (!strcmp(k, "host")) {
			r = expect_value(L, value, "a host name like shop.internal");
			if (r >= 0 && (reason = check_header_host(value->value)))
				r = fail(L, value, "%s, got %s", reason, QUOTED(value->value));
			if (r >= 0)
				r = set_string(L, &h->host, value->value);
		} else if (!strcmp(k, "interval")) {
			interval = value;
			r = load_duration(L, value, 100, 3600 * 1000, &h->interval_ms);
		} else if (!strcmp(k, "timeout")) {
			timeout = value;
			r = load_duration(L, value, 1, 3600 * 1000, &h->timeout_ms);
		} else if (!strcmp(k, "healthy_threshold") || !strcmp(k, "unhealthy_threshold")) {
			r = load_integer(L, value, 1, 100, &v);
			if (r >= 0)
				*(k[0] == 'h' ? &h->healthy_threshold : &h->unhealthy_threshold) = (uint32_t)v;
		} else if (!strcmp(k, "start_grace")) {
			r = load_duration(L, value, 0, 3600 * 1000, &h->start_grace_ms);
		} else {
			r = UNKNOWN_KEY(L, key, health_keys);
		}
		field_pop(L, saved);
		if (r < 0)
			return r;
	}

	/* One check at a time: a check must end before the next is due.  An
	 * explicit timeout must fit; the default follows the interval. */
	if (!timeout) {
		h->timeout_ms = h->interval_ms / 2 < 2000 ? h->interval_ms / 2 : 2000;
		return 0;
	}
	if (h->timeout_ms >= h->interval_ms) {
		saved = field_push_key(L, "timeout");
		r = fail(L, timeout, "must be shorter than interval (%s%s), got %s", DURATION_TEXT(h->interval_ms),
			 interval ? "" : ", the default", QUOTED(timeout->value));
		field_pop(L, saved);
	}
	return r;
}

static const struct stop_signal {
	const char *name;
	int signo;
} stop_signals[] = {
	{ "TERM", SIGTERM }, { "INT", SIGINT }, { "QUIT", SIGQUIT },
	{ "HUP", SIGHUP },   { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 },
};

static int load_signal(struct loader *L, const struct ynode *n, int *ret)
{
	const char *expected = "TERM, INT, QUIT, HUP, USR1 or USR2 (with or without SIG)";
	const char *name;
	size_t i;
	int r = expect_value(L, n, expected);

	if (r < 0)
		return r;
	name = n->value;
	if (!strncasecmp(name, "SIG", 3))
		name += 3;
	for (i = 0; i < ARRAY_SIZE(stop_signals); i++) {
		if (!strcasecmp(name, stop_signals[i].name)) {
			*ret = stop_signals[i].signo;
			return 0;
		}
	}
	return fail(L, n, "must be %s, got %s", expected, QUOTED(n->value));
}

/* An integer percentage of one CPU ("200" or "200%"). */
static int load_cpu_percent(struct loader *L, const struct ynode *n, uint32_t *ret)
{
	char digits[32];
	size_t len;
	uint64_t v;
	int r = expect_value(L, n, "a percentage of one CPU like 200%");

	if (r < 0)
		return r;
	len = strlen(n->value);
	if (len && n->value[len - 1] == '%')
		len--;
	if (len >= sizeof(digits) || (memcpy(digits, n->value, len), digits[len] = 0, parse_uint(digits, &v) < 0) ||
	    v < 1 || v > 100000)
		return fail(L, n, "must be a percentage of one CPU 1..100000 (200%% = two CPUs), got %s",
			    QUOTED(n->value));
	*ret = (uint32_t)v;
	return 0;
}

static const char *const proc_limit_keys[] = { "nofile", "nproc", "core", "memory_max", "cpu_max_percent" };

static int load_proc_limits(struct loader *L, const struct ynode *n, struct config_proc_limits *lim)
{
	size_t i;
	int r = expect_map(L, n, true, "a mapping of resource limits");

	if (r != 0)
		return r < 0 ? r : 0;
	for (i = 0; i < ynode_map_size(n); i++) {
		const struct ynode *key = ynode_map_key(n, i), *value = ynode_map_value(n, i);
		size_t saved = field_push_key(L, key->value);

		if (!strcmp(key->value, "nofile")) {
			r = load_integer(L, value, 1, 1u << 30, &lim->nofile);
		} else if (!strcmp(key->value, "nproc")) {
			r = load_integer(L, value, 1, 4194304, &lim->nproc);
		} else if (!strcmp(key->value, "core")) {
			r = load_size(L, value, 0, 1ull << 40, &lim->core);
			lim->core_set = r >= 0;
		} else if (!strcmp(key->value, "memory_max")) {
			r = load_size(L, value, 1u << 20, 1ull << 44, &lim->memory_max);
		} else if (!strcmp(key->value, "cpu_max_percent")) {
			r = load_cpu_percent(L, value, &lim->cpu_max_percent);
		} else {
			r = UNKNOWN_KEY(L, key, proc_limit_keys);
		}
		field_pop(L, saved);
		if (r < 0)
			return r;
	}
	return 0;
}

/* "5%", "5", "0.5%", "100": 0..100 with at most one decimal, in permille. */
static int load_rate(struct loader *L, const struct ynode *n, uint32_t *ret)
{
	const char *p;
	uint64_t v = 0;
	size_t digits = 0;
	int r = expect_value(L, n, "a percentage like 5%");

	if (r < 0)
		return r;
	for (p = n->value; *p >= '0' && *p <= '9' && digits < 4; p++, digits++)
		v = v * 10 + (uint64_t)(*p - '0');
	v *= 10;
	if (digits && *p == '.' && p[1] >= '0' && p[1] <= '9') {
		v += (uint64_t)(p[1] - '0');
		p += 2;
	}
	if (*p == '%')
		p++;
	if (!digits || digits > 3 || *p || v > 1000)
		return fail(L, n, "must be a percentage 0..100 with at most one decimal, like 5%% or 0.5%%, got %s",
			    QUOTED(n->value));
	*ret = (uint32_t)v;
	return 0;
}

static const char *const deploy_keys[] = {
	"strategy", "timeout", "drain", "rollback_window", "watch", "max_error_rate", "max_p99", "min_requests", "smoke",
};

static int load_deploy(struct loader *L, const struct ynode *n, struct config_deploy *d)
{
	const struct ynode *window_node = NULL, *watch_node = NULL;
	size_t i;
	uint64_t v;
	int r = expect_map(L, n, true, "a mapping of deploy settings");

	if (r != 0)
		return r < 0 ? r : 0;
	for (i = 0; i < ynode_map_size(n); i++) {
		const struct ynode *key = ynode_map_key(n, i), *value = ynode_map_value(n, i);
		const char *k = key->value;
		size_t saved = field_push_key(L, k);

		if (!strcmp(k, "strategy")) {
			r = expect_value(L, value, "blue-green");
			if (r >= 0 && (!strcmp(value->value, "canary") || !strcmp(value->value, "rolling")))
				r = fail(L, value, "%s is not supported yet (blue-green only)", value->value);
			else if (r >= 0 && strcmp(value->value, "blue-green"))
				r = fail(L, value, "must be blue-green, got %s", QUOTED(value->value));
			if (r >= 0)
				d->strategy = CONFIG_STRATEGY_BLUE_GREEN;
		} else if (!strcmp(k, "timeout")) {
			r = load_duration(L, value, 1000, TIMEOUT_MAX_MS, &d->timeout_ms);
		} else if (!strcmp(k, "drain")) {
			r = load_duration(L, value, 0, TIMEOUT_MAX_MS, &d->drain_ms);
		} else if (!strcmp(k, "rollback_window")) {
			r = load_duration(L, value, 0, TIMEOUT_MAX_MS, &d->rollback_window_ms);
			window_node = value;
		} else if (!strcmp(k, "watch")) {
			r = load_duration(L, value, 0, TIMEOUT_MAX_MS, &d->watch_ms);
			watch_node = value;
		} else if (!strcmp(k, "max_error_rate")) {
			r = load_rate(L, value, &d->max_error_rate_permille);
		} else if (!strcmp(k, "max_p99")) {
			if (value->kind == YNODE_SCALAR && !strcmp(value->value, "off"))
				d->max_p99_ms = 0;
			else
				r = load_duration(L, value, 0, 3600 * 1000, &d->max_p99_ms);
		} else if (!strcmp(k, "min_requests")) {
			r = load_integer(L, value, 0, 1000000, &v);
			if (r >= 0)
				d->min_requests = (uint32_t)v;
		} else if (!strcmp(k, "smoke")) {
			r = load_command(L, value, VARS_SMOKE, &d->smoke, NULL);
		} else {
			r = UNKNOWN_KEY(L, key, deploy_keys);
		}
		field_pop(L, saved);
		if (r < 0)
			return r;
	}
	/* the watch window rolls back to the warm previous version: it must
	 * still be warm until the watch ends */
	if (d->rollback_window_ms < d->watch_ms) {
		const struct ynode *at = window_node ? window_node : watch_node;
		size_t saved = field_push_key(L, window_node ? "rollback_window" : "watch");
		char window[32], watch[32];
		snprintf(window, sizeof(window), "%s", DURATION_TEXT(d->rollback_window_ms));
		snprintf(watch, sizeof(watch), "%s", DURATION_TEXT(d->watch_ms));
		if (window_node || !watch_node)
			r = fail(L, at ? at : n,
				 "must be at least the watch window (%s%s), got %s: the previous version has to stay warm "
				 "while the new one is watched",
				 watch, watch_node ? "" : ", the default", window);
		else
			r = fail(L, watch_node,
				 "must not be longer than rollback_window (%s, the default), got %s: the previous version "
				 "has to stay warm while the new one is watched",
				 window, watch);
		field_pop(L, saved);
		return r;
	}
	return 0;
}

/* ---- services ---------------------------------------------------------- */

enum service_key {
	SERVICE_TARGETS, SERVICE_ROUTES, SERVICE_RUN, SERVICE_BUILD, SERVICE_WORKDIR, SERVICE_ENV,
	SERVICE_HEALTH, SERVICE_STOP_SIGNAL, SERVICE_STOP_GRACE, SERVICE_LIMITS, SERVICE_DEPLOY,
	SERVICE_NKEYS,
};
static const char *const service_keys[SERVICE_NKEYS] = {
	[SERVICE_TARGETS] = "targets", [SERVICE_ROUTES] = "routes",           [SERVICE_RUN] = "run",
	[SERVICE_BUILD] = "build",     [SERVICE_WORKDIR] = "workdir",         [SERVICE_ENV] = "env",
	[SERVICE_HEALTH] = "health",   [SERVICE_STOP_SIGNAL] = "stop_signal", [SERVICE_STOP_GRACE] = "stop_grace",
	[SERVICE_LIMITS] = "limits",   [SERVICE_DEPLOY] = "deploy",
};

/* Load the value of one key of a service that cutover runs. */
static int load_managed_key(struct loader *L, enum service_key k, const struct ynode *value, struct config_service *svc)
{
	switch (k) {
	case SERVICE_BUILD:
		return load_command(L, value, VARS_BUILD, &svc->build, NULL);
	case SERVICE_WORKDIR:
		return load_path(L, value, "a directory path", &svc->workdir);
	case SERVICE_ENV:
		return load_env(L, value, svc);
	case SERVICE_HEALTH:
		return load_health(L, value, &svc->health);
	case SERVICE_STOP_SIGNAL:
		return load_signal(L, value, &svc->stop_signal);
	case SERVICE_STOP_GRACE:
		return load_duration(L, value, 0, 10 * 60 * 1000, &svc->stop_grace_ms);
	case SERVICE_LIMITS:
		return load_proc_limits(L, value, &svc->limits);
	case SERVICE_DEPLOY:
		return load_deploy(L, value, &svc->deploy);
	default:
		return 0;
	}
}

static int load_service(struct loader *L, const struct ynode *key, const struct ynode *n, size_t index)
{
	struct config_service *svc = &L->cfg->services[index];
	const struct ynode *keys[SERVICE_NKEYS] = { 0 }, *values[SERVICE_NKEYS] = { 0 };
	unsigned seen = 0;
	size_t i, k, saved;
	int r;

	if (!service_name_valid(key->value))
		return fail(L, key, "service names must match [a-z0-9][a-z0-9_-]{0,62}, got %s", QUOTED(key->value));
	r = set_string(L, &svc->name, key->value);
	if (r < 0)
		return r;
	svc->line = key->line;
	if (config_service_defaults(svc) < 0)
		return fail_oom(L);
	r = expect_map(L, n, true, "a mapping with targets: or run:, and optionally routes:");
	if (r < 0)
		return r;
	for (i = 0; r == 0 && i < ynode_map_size(n); i++) {
		const struct ynode *name = ynode_map_key(n, i);

		for (k = 0; k < SERVICE_NKEYS; k++)
			if (!strcmp(name->value, service_keys[k]))
				break;
		if (k == SERVICE_NKEYS) {
			saved = field_push_key(L, name->value);
			r = UNKNOWN_KEY(L, name, service_keys);
			field_pop(L, saved);
			return r;
		}
		keys[k] = name;
		values[k] = ynode_map_value(n, i);
	}

	/* Either cutover runs the service (run:, and it picks the ports), or
	 * the service runs elsewhere at fixed targets. */
	if (values[SERVICE_RUN]) {
		saved = field_push_key(L, "run");
		r = load_command(L, values[SERVICE_RUN], VARS_INSTANCE, &svc->run, &seen);
		if (r >= 0 && !(seen & VAR_PORT))
			r = fail(L, values[SERVICE_RUN], "must contain ${PORT}: the instance has to listen on the port "
				 "cutover chose for it");
		field_pop(L, saved);
		if (r < 0)
			return r;
	}
	saved = field_push_key(L, "targets");
	if (values[SERVICE_TARGETS] && values[SERVICE_RUN])
		r = fail(L, keys[SERVICE_TARGETS], "cannot be combined with run: (cutover runs the instances and "
			 "chooses their ports): keep one of them");
	else if (values[SERVICE_TARGETS])
		r = load_targets(L, values[SERVICE_TARGETS], svc);
	else if (!values[SERVICE_RUN])
		r = fail(L, key, "is required: at least one target (or run:, a command for cutover to run)");
	field_pop(L, saved);
	if (r < 0)
		return r;

	for (k = 0; k < SERVICE_NKEYS; k++) {
		if (!keys[k] || k == SERVICE_TARGETS || k == SERVICE_ROUTES || k == SERVICE_RUN)
			continue;
		saved = field_push_key(L, service_keys[k]);
		if (!values[SERVICE_RUN])
			r = fail(L, keys[k], "only applies to a service that cutover runs (add run:, a command with "
				 "${PORT})");
		else
			r = load_managed_key(L, (enum service_key)k, values[k], svc);
		field_pop(L, saved);
		if (r < 0)
			return r;
	}

	if (!values[SERVICE_ROUTES])
		return 0;
	saved = field_push_key(L, "routes");
	r = load_routes(L, values[SERVICE_ROUTES], index);
	field_pop(L, saved);
	return r;
}

static int load_services(struct loader *L, const struct ynode *n)
{
	struct config *cfg = L->cfg;
	size_t i;
	int r = expect_map(L, n, true, "a mapping of service names to services");

	if (r < 0)
		return r;
	if (r > 0 || ynode_map_size(n) == 0)
		return fail(L, n, "at least one service is required");
	cfg->services = calloc(ynode_map_size(n), sizeof(*cfg->services));
	if (!cfg->services)
		return fail_oom(L);
	cfg->nservices = ynode_map_size(n);
	for (i = 0; i < cfg->nservices; i++) {
		size_t saved = field_push_key(L, ynode_map_key(n, i)->value);

		r = load_service(L, ynode_map_key(n, i), ynode_map_value(n, i), i);
		field_pop(L, saved);
		if (r < 0)
			return r;
	}
	return 0;
}

static const char *const root_keys[] = {
	"listen", "admin", "timeouts", "limits", "log", "services", "state_dir", "admin_socket",
};

static int load_admin_socket(struct loader *L, const struct ynode *n)
{
	int r = load_path(L, n, "a file path", &L->cfg->admin_socket);

	if (r < 0)
		return r;
	L->admin_socket = n;
	if (strlen(L->cfg->admin_socket) > UNIX_PATH_MAX)
		return fail(L, n, "must be at most %zu characters (a Unix socket path), got %zu",
			    (size_t)UNIX_PATH_MAX, strlen(L->cfg->admin_socket));
	return 0;
}

/* admin_socket defaults to STATE_DIR/admin.sock, known once state_dir is. */
static int finish_admin_socket(struct loader *L)
{
	const char *parts[2] = { L->cfg->state_dir, "admin.sock" };
	char *path;
	size_t saved;
	int r = 0;

	if (L->admin_socket)
		return 0;
	path = path_join(parts, 2);
	if (!path)
		return fail_oom(L);
	free(L->cfg->admin_socket);
	L->cfg->admin_socket = path;
	if (strlen(path) > UNIX_PATH_MAX) {
		saved = field_push_key(L, "state_dir");
		r = fail(L, L->state_dir,
			 "is too long for the admin socket in it (STATE_DIR/admin.sock would be %zu characters, "
			 "a Unix socket path has at most %zu): choose a shorter state_dir or set admin_socket",
			 strlen(path), (size_t)UNIX_PATH_MAX);
		field_pop(L, saved);
	}
	return r;
}

static int load_root(struct loader *L, const struct ynode *root)
{
	const struct ynode *listen = NULL, *services = NULL;
	size_t i, j, saved;
	int r;

	if (root->kind != YNODE_MAP)
		return fail(L, root, "the top level must be a mapping of settings (listen:, services:, ...), got %s",
			    kind_name(root));
	r = expect_map(L, root, false, "a mapping");
	if (r < 0)
		return r;
	for (i = 0; i < ynode_map_size(root); i++) {
		const struct ynode *key = ynode_map_key(root, i), *value = ynode_map_value(root, i);

		saved = field_push_key(L, key->value);
		if (!strcmp(key->value, "listen")) {
			listen = value;
			r = load_listen(L, value);
		} else if (!strcmp(key->value, "admin")) {
			r = load_admin(L, value);
		} else if (!strcmp(key->value, "timeouts")) {
			r = load_timeouts(L, value);
		} else if (!strcmp(key->value, "limits")) {
			r = load_limits(L, value);
		} else if (!strcmp(key->value, "log")) {
			r = load_log(L, value);
		} else if (!strcmp(key->value, "services")) {
			services = value;
			r = load_services(L, value);
		} else if (!strcmp(key->value, "state_dir")) {
			L->state_dir = value;
			r = load_path(L, value, "a directory path", &L->cfg->state_dir);
		} else if (!strcmp(key->value, "admin_socket")) {
			r = load_admin_socket(L, value);
		} else {
			r = UNKNOWN_KEY(L, key, root_keys);
		}
		field_pop(L, saved);
		if (r < 0)
			return r;
	}

	saved = field_push_key(L, "listen");
	if (!listen)
		r = fail(L, root, "is required: at least one address to accept connections on");
	field_pop(L, saved);
	if (r < 0)
		return r;
	saved = field_push_key(L, "services");
	if (!services)
		r = fail(L, root, "is required: at least one service");
	field_pop(L, saved);
	if (r < 0)
		return r;

	if (L->admin) {
		saved = field_push_key(L, "admin");
		for (j = 0; r >= 0 && j < L->cfg->nlisten; j++)
			if (addr_equal(&L->cfg->admin, &L->cfg->listen[j]))
				r = fail(L, L->admin, "must differ from the proxy listener listen[%zu], got %s", j,
					 QUOTED(L->admin->value));
		field_pop(L, saved);
		if (r < 0)
			return r;
	}
	return finish_admin_socket(L);
}

/* ---- entry points ------------------------------------------------------ */

int config_service_defaults(struct config_service *svc)
{
	svc->health.interval_ms = 1000;
	svc->health.timeout_ms = 500;         /* half the interval, at most 2s */
	svc->health.healthy_threshold = 2;
	svc->health.unhealthy_threshold = 3;
	svc->health.start_grace_ms = 30 * 1000;
	svc->stop_signal = SIGTERM;
	svc->stop_grace_ms = 10 * 1000;
	svc->deploy.strategy = CONFIG_STRATEGY_BLUE_GREEN;
	svc->deploy.timeout_ms = 60 * 1000;
	svc->deploy.drain_ms = 30 * 1000;
	svc->deploy.rollback_window_ms = 5 * 60 * 1000;
	svc->deploy.watch_ms = 60 * 1000;
	svc->deploy.max_error_rate_permille = 50;
	svc->deploy.max_p99_ms = 0;
	svc->deploy.min_requests = 20;
	if (!svc->health.path && !(svc->health.path = strdup("/health")))
		return -ENOMEM;
	return 0;
}

int config_defaults(struct config *cfg)
{
	size_t i;
	int r;

	cfg->timeouts = (struct config_timeouts){
		.client_header = 10 * 1000,
		.client_idle = 60 * 1000,
		.client_body = 60 * 1000,
		.upstream_connect = 5 * 1000,
		.upstream_header = 60 * 1000,
		.upstream_body = 60 * 1000,
		.upstream_idle = 30 * 1000,
		.drain = 30 * 1000,
	};
	cfg->limits = (struct config_limits){
		.max_header_bytes = 16 * 1024,
		.max_uri_bytes = 8 * 1024,
		.buffer_bytes = 16 * 1024,
		.max_connections = 20000,
		.upstream_idle_per_target = 64,
		.max_retries = 2,
	};
	cfg->log.access_format = CONFIG_LOG_LOGFMT;
	cfg->log.level = LOG_LEVEL_INFO;
	if (!cfg->state_dir && !(cfg->state_dir = strdup(CONFIG_STATE_DIR_DEFAULT)))
		return -ENOMEM;
	if (!cfg->admin_socket) {
		const char *parts[2] = { cfg->state_dir, "admin.sock" };

		cfg->admin_socket = path_join(parts, 2);
		if (!cfg->admin_socket)
			return -ENOMEM;
	}
	for (i = 0; i < cfg->nservices; i++) {
		r = config_service_defaults(&cfg->services[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Free cfg and everything it owns; also safe on a partly filled config, as
 * long as each count covers only zeroed or filled entries (how the loader
 * builds it). */
struct config *config_free(struct config *cfg)
{
	size_t i, j;

	if (!cfg)
		return NULL;
	for (i = 0; i < cfg->nlisten; i++)
		free(cfg->listen[i].text);
	free(cfg->listen);
	free(cfg->admin.text);
	for (i = 0; i < cfg->nservices; i++) {
		struct config_service *svc = &cfg->services[i];

		for (j = 0; j < svc->ntargets; j++)
			free(svc->targets[j].addr.text);
		free(svc->targets);
		free(svc->name);
		free(svc->build);
		free(svc->run);
		free(svc->workdir);
		for (j = 0; j < svc->nenv; j++) {
			free(svc->env[j].name);
			free(svc->env[j].value);
		}
		free(svc->env);
		free(svc->health.path);
		free(svc->health.host);
		free(svc->deploy.smoke);
	}
	free(cfg->services);
	for (i = 0; i < cfg->nroutes; i++) {
		free(cfg->routes[i].host);
		free(cfg->routes[i].path_prefix);
	}
	free(cfg->routes);
	free(cfg->log.access);
	free(cfg->log.error);
	free(cfg->state_dir);
	free(cfg->admin_socket);
	free(cfg->path);
	free(cfg);
	return NULL;
}

/* The directory part of path ("/" for "/x"), or NULL when it has none.
 * Caller frees. */
static char *directory_of(const char *path, bool *ret_oom)
{
	const char *slash = strrchr(path, '/');
	char *dir;

	*ret_oom = false;
	if (!slash)
		return NULL;
	dir = strndup(path, slash == path ? 1 : (size_t)(slash - path));
	*ret_oom = !dir;
	return dir;
}

/* Load text read from `name`.  Relative paths in it are joined to the
 * directory of name, with the current directory in front when absolute is
 * set and name is relative. */
static int load_text(const char *name, bool absolute, const char *text, size_t len, struct config **ret,
		     struct config_error *err)
{
	struct loader L = { .name = name, .err = err };
	struct ynode *root = NULL;
	char *base_dir = NULL;
	bool oom;
	struct ynode_error yerr;
	int r;

	r = ynode_parse(text, len, &root, &yerr);
	if (r < 0) {
		error_set(err, name, yerr.line, yerr.column, "", yerr.message);
		goto out;
	}
	if (!root || ynode_is_null(root)) {
		error_set(err, name, 0, 0, "", "file is empty (expected at least listen: and services:)");
		r = -EINVAL;
		goto out;
	}

	L.cfg = calloc(1, sizeof(*L.cfg));
	if (!L.cfg) {
		r = fail_oom(&L);
		goto out;
	}
	base_dir = directory_of(name, &oom);
	if (oom || config_defaults(L.cfg) < 0) {
		r = fail_oom(&L);
		goto out;
	}
	L.base_dir = base_dir;
	L.base_relative = absolute && name[0] != '/';
	r = load_root(&L, root);
	if (r < 0)
		goto out;
	r = set_string(&L, &L.cfg->path, name);
	if (r < 0)
		goto out;

	*ret = L.cfg;
	L.cfg = NULL;
	r = 0;
out:
	config_free(L.cfg);
	ynode_free(root);
	free(base_dir);
	return r;
}

int config_load_string(const char *name, const char *text, size_t len, struct config **ret,
		       struct config_error *err)
{
	return load_text(name, false, text, len, ret, err);
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

int config_load(const char *path, struct config **ret, struct config_error *err)
{
	char reason[128];
	char *text = NULL;
	size_t len = 0;
	int r;

	r = read_file(path, &text, &len);
	if (r < 0) {
		if (r == -EFBIG)
			snprintf(reason, sizeof(reason), "cannot read: larger than %u bytes", CONFIG_MAX_FILE_BYTES);
		else
			snprintf(reason, sizeof(reason), "cannot read: %s", strerror(-r));
		error_set(err, path, 0, 0, "", reason);
		return r;
	}
	r = load_text(path, true, text, len, ret, err);
	free(text);
	return r;
}
