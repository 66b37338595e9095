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
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Everything the walk needs besides the node it is looking at. */
struct loader {
	const char *name;             /* file name for messages */
	struct config_error *err;
	struct config *cfg;           /* being filled; freed by the caller on failure */
	size_t routes_alloc;
	const struct ynode *admin;    /* where admin: was written, for the cross-check */
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

/* "16k" for 16384, "1m" for 1048576, else the number of bytes. */
static const char *format_size(uint64_t v, char *buf, size_t size)
{
	if (v && v % (1024 * 1024) == 0)
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
		return fail(L, n, "must be a size (bytes, or with k, m suffix like 16k), got %s", QUOTED(n->value));
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

/* Path prefix of a route.  Returns NULL when valid, else the reason. */
static const char *check_path(const char *s)
{
	const unsigned char *p;

	if (s[0] != '/')
		return "must start with \"/\"";
	if (strlen(s) > ROUTE_PATH_MAX)
		return "must be at most 1024 characters";
	for (p = (const unsigned char *)s; *p; p++) {
		if (*p <= 0x20 || *p == 0x7f)
			return "must not contain spaces or control characters";
		if (*p >= 0x80)
			return "must be ASCII (percent-encode other characters)";
		if (*p == '?' || *p == '#')
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
			if (r >= 0 && (reason = check_path(value->value)))
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

static const char *const service_keys[] = { "targets", "routes" };

static int load_service(struct loader *L, const struct ynode *key, const struct ynode *n, size_t index)
{
	struct config_service *svc = &L->cfg->services[index];
	const struct ynode *targets = NULL, *routes = NULL;
	size_t i, saved;
	int r;

	if (!service_name_valid(key->value))
		return fail(L, key, "service names must match [a-z0-9][a-z0-9_-]{0,62}, got %s", QUOTED(key->value));
	r = set_string(L, &svc->name, key->value);
	if (r < 0)
		return r;
	r = expect_map(L, n, true, "a mapping with targets: and optionally routes:");
	if (r < 0)
		return r;
	for (i = 0; r == 0 && i < ynode_map_size(n); i++) {
		const struct ynode *k = ynode_map_key(n, i);

		if (!strcmp(k->value, "targets")) {
			targets = ynode_map_value(n, i);
		} else if (!strcmp(k->value, "routes")) {
			routes = ynode_map_value(n, i);
		} else {
			saved = field_push_key(L, k->value);
			r = UNKNOWN_KEY(L, k, service_keys);
			field_pop(L, saved);
			return r;
		}
	}

	saved = field_push_key(L, "targets");
	r = targets ? load_targets(L, targets, svc) : fail(L, key, "is required: at least one target");
	field_pop(L, saved);
	if (r < 0 || !routes)
		return r;
	saved = field_push_key(L, "routes");
	r = load_routes(L, routes, index);
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

static const char *const root_keys[] = { "listen", "admin", "timeouts", "limits", "log", "services" };

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
	}
	return r;
}

/* ---- entry points ------------------------------------------------------ */

/* Set timeouts, limits and log settings to their defaults.  Touches nothing
 * else, allocates nothing and frees nothing: call it on a zeroed struct (a
 * log path set before would be forgotten, not freed). */
void config_defaults(struct config *cfg)
{
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
		for (j = 0; j < cfg->services[i].ntargets; j++)
			free(cfg->services[i].targets[j].addr.text);
		free(cfg->services[i].targets);
		free(cfg->services[i].name);
	}
	free(cfg->services);
	for (i = 0; i < cfg->nroutes; i++) {
		free(cfg->routes[i].host);
		free(cfg->routes[i].path_prefix);
	}
	free(cfg->routes);
	free(cfg->log.access);
	free(cfg->log.error);
	free(cfg->path);
	free(cfg);
	return NULL;
}

int config_load_string(const char *name, const char *text, size_t len, struct config **ret,
		       struct config_error *err)
{
	struct loader L = { .name = name, .err = err };
	struct ynode *root = NULL;
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
	config_defaults(L.cfg);
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
	return r;
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
	r = config_load_string(path, text, len, ret, err);
	free(text);
	return r;
}
