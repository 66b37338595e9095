/* util.h - small helpers with no dependencies: time, parsing, addresses. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define UNUSED __attribute__((unused))

/* Monotonic clock in milliseconds / nanoseconds. */
uint64_t time_now_ms(void);
uint64_t time_now_ns(void);

/* "250ms", "10s", "5m", "1h" (a bare number is seconds) -> milliseconds.
 * Returns 0, or -EINVAL for anything else (ret untouched). */
int parse_duration_ms(const char *s, uint64_t *ret);
/* ms as the configuration writes it: "1h", "5m", "30s" or "250ms" (the
 * largest unit that divides it).  Returns buf. */
const char *format_duration(uint64_t ms, char *buf, size_t size);
#define DURATION_TEXT(v) format_duration((v), (char[32]){ 0 }, 32)
/* "512", "16k", "1m", "2g" (binary multiples, case-insensitive) -> bytes.
 * Returns 0 or -EINVAL (ret untouched). */
int parse_size(const char *s, uint64_t *ret);
/* "127.0.0.1:8080", "[::1]:8080", "localhost:80" -> socket address.
 * Only numeric addresses and "localhost"; no DNS on the event loop.
 * Returns 0 or -EINVAL (outputs untouched). */
int parse_sockaddr(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len);
/* Format an address as "ip:port" / "[ip]:port" into out (at least 64 bytes). */
void format_sockaddr(const struct sockaddr *sa, char *out, size_t outlen);
/* mkdir -p: create DIR and its missing parents (parents 0755, DIR itself
 * MODE).  An existing directory is fine.  Returns 0, -ENOTDIR if DIR exists
 * and is not a directory, -ENAMETOOLONG, or the -errno of mkdir. */
int make_dirs(const char *dir, mode_t mode);
/* Replace every ${NAME} of text whose NAME is names[i] (i < n) by vals[i]
 * (NULL: empty); other text, and ${...} with another name, stay as they
 * are.  Returns a malloc'd string, or NULL (out of memory). */
char *substitute_vars(const char *text, const char *const *names, const char *const *vals, size_t n);
