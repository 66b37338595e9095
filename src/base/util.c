/* util.c - time, duration/size/address parsing. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include "base/util.h"

uint64_t time_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t time_now_ms(void) { return time_now_ns() / 1000000u; }

static int parse_number(const char *s, uint64_t *num, const char **rest)
{
	uint64_t v = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		uint64_t d = (uint64_t)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*num = v;
	*rest = p;
	return 0;
}

int parse_duration_ms(const char *s, uint64_t *ret)
{
	static const struct { const char *suffix; uint64_t mult; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "", 1000 }, { "m", 60000 }, { "h", 3600000 },
	};
	const char *rest;
	uint64_t v;
	size_t i;

	if (!s || parse_number(s, &v, &rest) < 0)
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(units); i++) {
		if (!strcmp(rest, units[i].suffix)) {
			if (v > UINT64_MAX / units[i].mult)
				return -EINVAL;
			*ret = v * units[i].mult;
			return 0;
		}
	}
	return -EINVAL;
}

int parse_size(const char *s, uint64_t *ret)
{
	const char *rest;
	uint64_t v, mult;

	if (!s || parse_number(s, &v, &rest) < 0)
		return -EINVAL;
	if (!*rest)
		mult = 1;
	else if (!strcasecmp(rest, "k") || !strcasecmp(rest, "kb") || !strcasecmp(rest, "kib"))
		mult = 1024;
	else if (!strcasecmp(rest, "m") || !strcasecmp(rest, "mb") || !strcasecmp(rest, "mib"))
		mult = 1024 * 1024;
	else if (!strcasecmp(rest, "g") || !strcasecmp(rest, "gb") || !strcasecmp(rest, "gib"))
		mult = 1024ull * 1024 * 1024;
	else
		return -EINVAL;
	if (v > UINT64_MAX / mult)
		return -EINVAL;
	*ret = v * mult;
	return 0;
}

int parse_sockaddr(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len)
{
	struct sockaddr_storage ss;
	char host[64];
	const char *colon, *port_s;
	size_t hlen;
	uint64_t port;
	const char *rest;

	if (!s)
		return -EINVAL;
	memset(&ss, 0, sizeof(ss));
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end || end[1] != ':')
			return -EINVAL;
		hlen = (size_t)(end - s - 1);
		if (hlen >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, hlen);
		host[hlen] = 0;
		port_s = end + 2;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		hlen = (size_t)(colon - s);
		if (hlen >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, hlen);
		host[hlen] = 0;
		port_s = colon + 1;
	}
	if (parse_number(port_s, &port, &rest) < 0 || *rest || port == 0 || port > 65535)
		return -EINVAL;
	if (!strcmp(host, "localhost"))
		strcpy(host, "127.0.0.1");
	if (s[0] != '[' && inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		*ret_len = sizeof(*in);
	} else if (s[0] == '[' && inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*ret_len = sizeof(*in6);
	} else {
		return -EINVAL;
	}
	*ret = ss;
	return 0;
}

void format_sockaddr(const struct sockaddr *sa, char *out, size_t outlen)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(out, outlen, "%s:%u", ip, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(out, outlen, "[%s]:%u", ip, ntohs(in6->sin6_port));
	} else {
		snprintf(out, outlen, "unix");
	}
}

int make_dirs(const char *dir, mode_t mode)
{
	char path[4096];
	struct stat sb;
	size_t len = strlen(dir);

	if (!len || len >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, len + 1);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return -errno;
	if (stat(path, &sb) < 0)
		return -errno;
	return S_ISDIR(sb.st_mode) ? 0 : -ENOTDIR;
}

char *substitute_vars(const char *text, const char *const *names, const char *const *vals, size_t n)
{
	size_t cap = strlen(text) + 1024, len = 0;
	char *out = malloc(cap);

	if (!out)
		return NULL;
	for (const char *s = text; *s;) {
		const char *val = NULL;
		size_t skip = 0;
		if (s[0] == '$' && s[1] == '{') {
			for (size_t i = 0; i < n; i++) {
				size_t l = strlen(names[i]);
				if (!strncmp(s + 2, names[i], l) && s[2 + l] == '}') {
					val = vals[i] ? vals[i] : "";
					skip = l + 3;
					break;
				}
			}
		}
		size_t add = val ? strlen(val) : 1;
		if (len + add + 1 > cap) {
			char *nb = realloc(out, cap = (len + add + 1) * 2);
			if (!nb) {
				free(out);
				return NULL;
			}
			out = nb;
		}
		if (val) {
			memcpy(out + len, val, add);
			s += skip;
		} else {
			out[len] = *s++;
		}
		len += add;
	}
	out[len] = 0;
	return out;
}

const char *format_duration(uint64_t ms, char *buf, size_t size)
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
