/* version.c - the names a release may carry: service names and strict
 * Semantic Versioning 2.0.0 versions (https://semver.org, the BNF of
 * section "Backus-Naur Form Grammar"). */
#include <string.h>
#include "store/store.h"

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static bool is_ident_char(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

bool store_service_valid(const char *name)
{
	size_t i;

	if (!name || !((name[0] >= 'a' && name[0] <= 'z') || is_digit(name[0])))
		return false;
	for (i = 1; name[i]; i++) {
		char c = name[i];

		if (i > STORE_SERVICE_MAX - 1 ||
		    !((c >= 'a' && c <= 'z') || is_digit(c) || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* A numeric identifier: "0" or [1-9][0-9]*.  Advances *p past it. */
static bool numeric(const char **p)
{
	const char *s = *p;

	if (!is_digit(*s))
		return false;
	if (*s == '0' && is_digit(s[1]))
		return false;
	while (is_digit(*s))
		s++;
	*p = s;
	return true;
}

/* Dot-separated identifiers up to the end or STOP.  For a pre-release,
 * an all-digit identifier must not have leading zeros. */
static bool identifiers(const char **p, char stop, bool prerelease)
{
	const char *s = *p;

	for (;;) {
		const char *start = s;
		bool all_digits = true;

		while (is_ident_char(*s)) {
			all_digits = all_digits && is_digit(*s);
			s++;
		}
		if (s == start)
			return false;
		if (prerelease && all_digits && *start == '0' && s - start > 1)
			return false;
		if (*s != '.')
			break;
		s++;
	}
	if (*s && *s != stop)
		return false;
	*p = s;
	return true;
}

bool store_version_valid(const char *version)
{
	const char *p = version;

	if (!p || strlen(p) > STORE_VERSION_MAX)
		return false;
	if (!numeric(&p) || *p++ != '.' || !numeric(&p) || *p++ != '.' || !numeric(&p))
		return false;
	if (*p == '-') {
		p++;
		if (!identifiers(&p, '+', true))
			return false;
	}
	if (*p == '+') {
		p++;
		if (!identifiers(&p, '\0', false))
			return false;
	}
	return *p == '\0';
}
