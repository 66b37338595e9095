/* scalars.c - single values of the configuration: integers, sizes,
 * durations, words, percentages, strings, addresses, host names and paths.
 *
 * Each load_* function takes the node holding the value, checks it and
 * either stores it or records a message naming the value as written.  Paths
 * are relative to the directory of the file the node was read from, so a
 * path in an overlay file is relative to the overlay.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "config/config-internal.h"

/* ---- numbers ----------------------------------------------------------- */

/* Strict decimal: digits only, no sign, no suffix. */
int parse_uint(const char *s, uint64_t *ret)
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
const char *format_size(uint64_t v, char *buf, size_t size)
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

int load_integer(struct loader *L, const struct ynode *n, uint64_t min, uint64_t max, uint64_t *ret)
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

int load_size(struct loader *L, const struct ynode *n, uint64_t min, uint64_t max, uint64_t *ret)
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

int load_duration(struct loader *L, const struct ynode *n, uint64_t min, uint64_t max, uint64_t *ret)
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

int load_rate(struct loader *L, const struct ynode *n, uint32_t *ret)
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

/* ---- words and strings ------------------------------------------------- */

int load_word(struct loader *L, const struct ynode *n, const char *const *words, size_t nwords,
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

int set_string(struct loader *L, char **dst, const char *value)
{
	char *copy = strdup(value);

	if (!copy)
		return fail_oom(L);
	free(*dst);
	*dst = copy;
	return 0;
}

/* ---- addresses --------------------------------------------------------- */

bool addr_equal(const struct config_addr *a, const struct config_addr *b)
{
	return a->salen == b->salen && !memcmp(&a->sa, &b->sa, a->salen);
}

bool addr_is_loopback(const struct config_addr *a)
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

bool addr_is_unspecified(const struct config_addr *a)
{
	if (a->sa.ss_family == AF_INET)
		return ((const struct sockaddr_in *)&a->sa)->sin_addr.s_addr == htonl(INADDR_ANY);
	if (a->sa.ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&a->sa)->sin6_addr);
	return false;
}

int load_addr(struct loader *L, const struct ynode *n, struct config_addr *addr)
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

/* ---- host names and URL paths ------------------------------------------ */

/* An exact host name, or "*." and a host name. */
const char *check_host(char *s)
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

/* A route prefix (no query) or a health check target (query allowed). */
const char *check_path(const char *s, bool allow_query)
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

/* ---- file system paths ------------------------------------------------- */

char *path_join(const char *const *parts, size_t nparts)
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

/* The directory part of path ("/" for "/x") in *ret (caller frees), or NULL
 * when it has none.  Returns 0 or -ENOMEM. */
static int directory_of(const char *path, char **ret)
{
	const char *slash = strrchr(path, '/');

	*ret = NULL;
	if (!slash)
		return 0;
	*ret = strndup(path, slash == path ? 1 : (size_t)(slash - path));
	return *ret ? 0 : -ENOMEM;
}

/* Checks that hold for every path, absolute or not. */
static int check_path_text(struct loader *L, const struct ynode *n, const char *expected)
{
	const unsigned char *p;
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
	return 0;
}

int load_path(struct loader *L, const struct ynode *n, const char *expected, char **dst)
{
	const char *file = n->file ? n->file->name : L->name;
	const char *rel, *parts[3] = { NULL, NULL, NULL };
	char cwd[PATH_MAX], *dir = NULL, *path;
	int r = check_path_text(L, n, expected);

	if (r < 0)
		return r;
	rel = n->value;
	if (rel[0] != '/') {
		while (rel[0] == '.' && rel[1] == '/') {
			rel += 2;
			while (*rel == '/')
				rel++;
		}
		if (!strcmp(rel, "."))
			rel = "";
		if (L->absolute && file[0] != '/') {
			if (!getcwd(cwd, sizeof(cwd)))
				return fail(L, n, "is relative and the current directory is unknown (%s): write an absolute path",
					    strerror(errno));
			parts[0] = cwd;
		}
		if (directory_of(file, &dir) < 0)
			return fail_oom(L);
		parts[1] = dir;
	}
	parts[2] = rel;
	path = path_join(parts, ARRAY_SIZE(parts));
	free(dir);
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
