/* sections.c - the proxy's own top-level sections: listen, admin,
 * timeouts, limits, log, startup and cohorts.
 *
 * Each is a keyword_load_fn called by the top-level table (load.c) with the
 * struct config being filled as obj.  timeouts and limits are plain tables
 * of durations and numbers; limits then checks max_uri_bytes against
 * max_header_bytes once both are known; cohorts checks that its two
 * cookies have different names.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/log.h"
#include "config/config-internal.h"

int load_listen(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	struct config *cfg = obj;
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

int load_admin(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	struct config *cfg = obj;
	int r = load_addr(L, n, &cfg->admin);

	if (r < 0)
		return r;
	/* an address that is not loopback needs admin_token: the secrets are
	 * not read here, config_admin_token() says (the daemon, cutover check) */
	snprintf(cfg->admin_file, sizeof(cfg->admin_file), "%s", n->file ? n->file->name : L->name);
	cfg->admin_line = n->line;
	cfg->admin_column = n->column;
	return 0;
}

#define TIMEOUT(name, min) \
	{ #name, keyword_duration, offsetof(struct config_timeouts, name), (min), TIMEOUT_MAX_MS, 0 }

static const struct keyword timeout_keywords[] = {
	TIMEOUT(client_header, 1), TIMEOUT(client_idle, 1),      TIMEOUT(client_body, 1),
	TIMEOUT(upstream_connect, 1), TIMEOUT(upstream_header, 1), TIMEOUT(upstream_body, 1),
	TIMEOUT(upstream_idle, 1),   TIMEOUT(drain, 0),       TIMEOUT(upgrade, 1000),
};

static const struct section timeouts_section = SECTION("a mapping of durations", true, timeout_keywords);

int load_timeouts(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	int r = section_load(L, n, &timeouts_section, &((struct config *)obj)->timeouts, NULL);

	return r < 0 ? r : 0;
}

const char *const unready_words[2] = {
	[CONFIG_UNREADY_QUEUE] = "queue",
	[CONFIG_UNREADY_RETRY_AFTER] = "retry-after",
};

static int startup_unready(struct loader *L, const struct ynode *value, void *obj, const struct keyword *kw)
{
	size_t i;
	int r = load_word(L, value, unready_words, ARRAY_SIZE(unready_words), "queue or retry-after", &i);

	if (r >= 0)
		((struct config_startup *)obj)->unready = (enum config_unready)i;
	return r;
}

#define STARTUP(name, load, field, min, max) \
	{ #name, (load), offsetof(struct config_startup, field), (min), (max), 0 }

static const struct keyword startup_keywords[] = {
	STARTUP(unready, startup_unready, unready, 0, 0),
	STARTUP(max_wait, keyword_duration, max_wait_ms, 0, TIMEOUT_MAX_MS),
	STARTUP(retry_after, keyword_duration, retry_after_ms, 1000, 3600 * 1000),
};

static const struct section startup_section = SECTION("a mapping", true, startup_keywords);

int load_startup(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	int r = section_load(L, n, &startup_section, &((struct config *)obj)->startup, NULL);

	return r < 0 ? r : 0;
}

enum { LIMIT_MAX_HEADER, LIMIT_MAX_URI };

#define LIMIT(name, load, min, max) \
	{ #name, (load), offsetof(struct config_limits, name), (min), (max), KEYWORD_U32 }

static const struct keyword limit_keywords[] = {
	[LIMIT_MAX_HEADER] = LIMIT(max_header_bytes, keyword_size, 1024, 1u << 20),
	/* Also at most max_header_bytes, checked once both are known. */
	[LIMIT_MAX_URI] = LIMIT(max_uri_bytes, keyword_size, 256, 1u << 20),
	LIMIT(buffer_bytes, keyword_size, 4096, 1u << 20),
	LIMIT(max_connections, keyword_integer, 1, 1000000),
	LIMIT(upstream_idle_per_target, keyword_integer, 0, 10000),
	LIMIT(max_retries, keyword_integer, 0, 10),
};

static const struct section limits_section = SECTION("a mapping of limits", true, limit_keywords);

int load_limits(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	struct config_limits *limits = &((struct config *)obj)->limits;
	const struct ynode *given[ARRAY_SIZE(limit_keywords)] = { 0 }, *uri;
	size_t saved;
	int r = section_load(L, n, &limits_section, limits, given);

	if (r != 0)
		return r < 0 ? r : 0;
	/* A request line longer than the whole head cannot be accepted anyway.
	 * An explicit value must fit; the default shrinks to fit. */
	if (limits->max_uri_bytes <= limits->max_header_bytes)
		return 0;
	uri = given[LIMIT_MAX_URI];
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

/* ---- log --------------------------------------------------------------- */

const char *const log_format_words[2] = { [CONFIG_LOG_LOGFMT] = "logfmt", [CONFIG_LOG_JSON] = "json" };
const char *const log_level_words[4] = {
	[LOG_LEVEL_DEBUG] = "debug", [LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_WARN] = "warn",   [LOG_LEVEL_ERROR] = "error",
};

/* access: a path, "-" or off (NULL); error: a path or "-". */
static int log_file(struct loader *L, const struct ynode *value, void *obj, const struct keyword *kw)
{
	bool access = kw->offset == offsetof(struct config_log, access);
	const char *expected = access ? "a file path, \"-\" for stdout, or off" : "a file path or \"-\" for stderr";
	int r = expect_value(L, value, expected);

	if (r < 0)
		return r;
	if (!value->value[0])
		return fail(L, value, "must be %s, got \"\"", expected);
	if (access && !strcmp(value->value, "off"))
		return 0; /* stays NULL */
	return set_string(L, (char **)(void *)((char *)obj + kw->offset), value->value);
}

/* format (the access log's) or error_format (the error log's) */
static int log_format(struct loader *L, const struct ynode *value, void *obj, const struct keyword *kw)
{
	size_t index;
	int r = load_word(L, value, log_format_words, ARRAY_SIZE(log_format_words), "logfmt or json", &index);

	if (r >= 0)
		*(enum config_log_format *)(void *)((char *)obj + kw->offset) = (enum config_log_format)index;
	return r;
}

static int log_level(struct loader *L, const struct ynode *value, void *obj, const struct keyword *kw)
{
	size_t index;
	int r = load_word(L, value, log_level_words, ARRAY_SIZE(log_level_words), "debug, info, warn or error", &index);

	if (r >= 0)
		((struct config_log *)obj)->level = (int)index;
	return r;
}

static const struct keyword log_keywords[] = {
	{ "access", log_file, offsetof(struct config_log, access), 0, 0, 0 },
	{ "format", log_format, offsetof(struct config_log, access_format), 0, 0, 0 },
	{ "error", log_file, offsetof(struct config_log, error), 0, 0, 0 },
	{ "error_format", log_format, offsetof(struct config_log, error_format), 0, 0, 0 },
	{ "level", log_level, 0, 0, 0, 0 },
};

static const struct section log_section = SECTION("a mapping of log settings", true, log_keywords);

int load_log(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	int r = section_load(L, n, &log_section, &((struct config *)obj)->log, NULL);

	return r < 0 ? r : 0;
}

/* ---- cohorts ----------------------------------------------------------- */

#define COHORT_NAME_MAX 64
#define DAY_MS (24ull * 3600 * 1000)

static bool is_tchar(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A cookie name or a header field name: an RFC 9110 token. */
static int cohort_name(struct loader *L, const struct ynode *value, void *obj, const struct keyword *kw)
{
	const char *what = kw->flags ? "a header field name" : "a cookie name";
	const char *v;
	int r = expect_value(L, value, what);

	if (r < 0)
		return r;
	v = value->value;
	if (!v[0] || strlen(v) > COHORT_NAME_MAX)
		return fail(L, value, "must be %s of 1..%d characters, got %s", what, COHORT_NAME_MAX, QUOTED(v));
	for (const char *p = v; *p; p++)
		if (!is_tchar(*p))
			return fail(L, value, "must be %s (letters, digits and !#$%%&'*+-.^_`|~), got %s", what,
				    QUOTED(v));
	return set_string(L, (char **)(void *)((char *)obj + kw->offset), v);
}

/* max_age: a duration, or whole days ("30d"; browsers keep a cookie 400
 * days at most). */
static int cohort_max_age(struct loader *L, const struct ynode *value, void *obj, const struct keyword *kw)
{
	const char *v = value->value;
	size_t len;
	uint64_t ms;
	char digits[24];
	int r = expect_value(L, value, "a duration like 30d");

	if (r < 0)
		return r;
	len = strlen(v);
	if (len >= 2 && len <= sizeof(digits) && v[len - 1] == 'd') {
		memcpy(digits, v, len - 1);
		digits[len - 1] = 0;
		r = parse_uint(digits, &ms) < 0 || ms > UINT64_MAX / DAY_MS ? -EINVAL : 0;
		if (r == 0)
			ms *= DAY_MS;
	} else {
		r = parse_duration_ms(v, &ms);
	}
	if (r < 0)
		return fail(L, value, "must be a duration (30d, 12h, 10m; a bare number is seconds), got %s", QUOTED(v));
	if (ms < kw->min || ms > kw->max)
		return fail(L, value, "must be between %s and %llud, got %s", DURATION_TEXT(kw->min),
			    (unsigned long long)(kw->max / DAY_MS), QUOTED(v));
	((struct config_cohorts *)obj)->max_age_ms = ms;
	return 0;
}

enum { COHORTS_COOKIE, COHORTS_MAX_AGE, COHORTS_OVERRIDE_COOKIE, COHORTS_OVERRIDE_HEADER };

static const struct keyword cohorts_keywords[] = {
	[COHORTS_COOKIE] = { "cookie", cohort_name, offsetof(struct config_cohorts, cookie), 0, 0, 0 },
	[COHORTS_MAX_AGE] = { "max_age", cohort_max_age, 0, 60 * 1000, 400 * DAY_MS, 0 },
	[COHORTS_OVERRIDE_COOKIE] = { "override_cookie", cohort_name, offsetof(struct config_cohorts, override_cookie),
				      0, 0, 0 },
	/* flags 1: a header name (for the messages) */
	[COHORTS_OVERRIDE_HEADER] = { "override_header", cohort_name,
				      offsetof(struct config_cohorts, override_header), 0, 0, 1 },
};

static const struct section cohorts_section = SECTION("a mapping of cohort settings", true, cohorts_keywords);

int load_cohorts(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	struct config_cohorts *cc = &((struct config *)obj)->cohorts;
	const struct ynode *given[ARRAY_SIZE(cohorts_keywords)] = { 0 }, *at;
	size_t saved;
	int r = section_load(L, n, &cohorts_section, cc, given);

	if (r != 0)
		return r < 0 ? r : 0;
	if (strcmp(cc->cookie, cc->override_cookie))
		return 0;
	/* the one written last names the clash */
	at = given[COHORTS_OVERRIDE_COOKIE] ? given[COHORTS_OVERRIDE_COOKIE] : given[COHORTS_COOKIE];
	saved = field_push_key(L, at == given[COHORTS_COOKIE] ? "cookie" : "override_cookie");
	r = fail(L, at, "the cohort cookie and the override cookie must have different names, got %s for both",
		 QUOTED(cc->cookie));
	field_pop(L, saved);
	return r;
}
