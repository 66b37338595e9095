/* test_base.c - unit tests of src/base: parsing helpers and bounded buffers.
 *
 * parse_duration_ms, parse_size and parse_sockaddr are table-driven: every
 * row is checked, each mismatch is printed with input, got and want, and the
 * outputs are checked untouched on error.  format_sockaddr is checked by
 * round trip.  The buf_* tests follow the cursors through append, appendf,
 * compact and consume.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <inttypes.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "base/buf.h"
#include "base/util.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define UNTOUCHED UINT64_C(0x5eed5eed5eed5eed)

struct u64_case {
	const char *in;     /* NULL: a NULL argument */
	int ret;            /* 0 or -EINVAL */
	uint64_t want;      /* when ret == 0 */
};

/* Check one row of a uint64 parser; print and count a mismatch. */
static int check_u64(const char *what, int (*parse)(const char *, uint64_t *), const struct u64_case *c)
{
	uint64_t v = UNTOUCHED;
	int ret = parse(c->in, &v);
	uint64_t want = c->ret == 0 ? c->want : UNTOUCHED;

	if (ret != c->ret || v != want) {
		print_error("%s(%s%s%s): got ret %d value %" PRIu64 ", want ret %d value %" PRIu64 "%s\n", what,
			    c->in ? "\"" : "", c->in ? c->in : "NULL", c->in ? "\"" : "", ret, v, c->ret, want,
			    c->ret ? " (untouched)" : "");
		return 1;
	}
	return 0;
}

/* --- parse_duration_ms --- */

static void test_parse_duration(void **state)
{
	(void)state;
	static const struct u64_case cases[] = {
		{ "250ms", 0, 250 },
		{ "0ms", 0, 0 },
		{ "1ms", 0, 1 },
		{ "10s", 0, 10000 },
		{ "0s", 0, 0 },
		{ "5m", 0, 300000 },
		{ "1h", 0, 3600000 },
		{ "24h", 0, 86400000 },
		{ "10", 0, 10000 },              /* bare number: seconds */
		{ "0", 0, 0 },
		{ "007s", 0, 7000 },
		/* overflow, at each unit's boundary */
		{ "18446744073709551616ms", -EINVAL, 0 },
		{ "99999999999999999999ms", -EINVAL, 0 },
		{ "18446744073709551s", 0, UINT64_C(18446744073709551000) },
		{ "18446744073709552s", -EINVAL, 0 },
		{ "18446744073709552", -EINVAL, 0 },
		{ "307445734561825m", 0, UINT64_C(307445734561825) * 60000 },
		{ "307445734561826m", -EINVAL, 0 },
		{ "5124095576030h", 0, UINT64_C(5124095576030) * 3600000 },
		{ "5124095576031h", -EINVAL, 0 },
		/* junk */
		{ "", -EINVAL, 0 },
		{ NULL, -EINVAL, 0 },
		{ "ms", -EINVAL, 0 },
		{ "s", -EINVAL, 0 },
		{ "10x", -EINVAL, 0 },
		{ "10 s", -EINVAL, 0 },
		{ " 10s", -EINVAL, 0 },
		{ "10s ", -EINVAL, 0 },
		{ "10sec", -EINVAL, 0 },
		{ "10hms", -EINVAL, 0 },
		{ "5mm", -EINVAL, 0 },
		{ "10ms5", -EINVAL, 0 },
		{ "1.5s", -EINVAL, 0 },
		{ "0x10", -EINVAL, 0 },
		{ "1e3ms", -EINVAL, 0 },
		/* negative or signed */
		{ "-5s", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },
		{ "+5s", -EINVAL, 0 },
	};
	int failures = 0;

	for (size_t i = 0; i < N(cases); i++)
		failures += check_u64("parse_duration_ms", parse_duration_ms, &cases[i]);
	assert_int_equal(failures, 0);
}

/* --- parse_size --- */

static void test_parse_size(void **state)
{
	(void)state;
	static const struct u64_case cases[] = {
		{ "512", 0, 512 },
		{ "0", 0, 0 },
		{ "16k", 0, 16384 },
		{ "16K", 0, 16384 },
		{ "16kb", 0, 16384 },
		{ "16KB", 0, 16384 },
		{ "16kib", 0, 16384 },
		{ "16KiB", 0, 16384 },
		{ "1m", 0, 1048576 },
		{ "1M", 0, 1048576 },
		{ "1mb", 0, 1048576 },
		{ "1MiB", 0, 1048576 },
		{ "2g", 0, UINT64_C(2147483648) },
		{ "2G", 0, UINT64_C(2147483648) },
		{ "2gb", 0, UINT64_C(2147483648) },
		{ "2GiB", 0, UINT64_C(2147483648) },
		{ "0k", 0, 0 },
		/* overflow */
		{ "18446744073709551616", -EINVAL, 0 },
		{ "18014398509481983k", 0, UINT64_C(18014398509481983) * 1024 },
		{ "18014398509481984k", -EINVAL, 0 },
		{ "17592186044415m", 0, UINT64_C(17592186044415) << 20 },
		{ "17592186044416m", -EINVAL, 0 },
		{ "17179869183g", 0, UINT64_C(17179869183) << 30 },
		{ "17179869184g", -EINVAL, 0 },
		{ "99999999999999999999999g", -EINVAL, 0 },
		/* junk */
		{ "", -EINVAL, 0 },
		{ NULL, -EINVAL, 0 },
		{ "k", -EINVAL, 0 },
		{ "16 k", -EINVAL, 0 },
		{ " 16", -EINVAL, 0 },
		{ "16kk", -EINVAL, 0 },
		{ "16ki", -EINVAL, 0 },
		{ "16kbs", -EINVAL, 0 },
		{ "16t", -EINVAL, 0 },
		{ "16b", -EINVAL, 0 },
		{ "1.5m", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },
		{ "+1", -EINVAL, 0 },
		{ "0x10", -EINVAL, 0 },
	};
	int failures = 0;

	for (size_t i = 0; i < N(cases); i++)
		failures += check_u64("parse_size", parse_size, &cases[i]);
	assert_int_equal(failures, 0);
}

/* The largest value, UINT64_MAX itself, is a valid number of ms / bytes;
 * one more is not. */
static void test_parse_u64_max(void **state)
{
	(void)state;
	static const struct u64_case durations[] = {
		{ "18446744073709551615ms", 0, UINT64_MAX },
		{ "18446744073709551610ms", 0, UINT64_MAX - 5 },
		{ "18446744073709551609ms", 0, UINT64_MAX - 6 },
		{ "18446744073709551616ms", -EINVAL, 0 },
	};
	static const struct u64_case sizes[] = {
		{ "18446744073709551615", 0, UINT64_MAX },
		{ "18446744073709551610", 0, UINT64_MAX - 5 },
		{ "18446744073709551609", 0, UINT64_MAX - 6 },
		{ "18446744073709551616", -EINVAL, 0 },
	};
	int failures = 0;

	for (size_t i = 0; i < N(durations); i++)
		failures += check_u64("parse_duration_ms", parse_duration_ms, &durations[i]);
	for (size_t i = 0; i < N(sizes); i++)
		failures += check_u64("parse_size", parse_size, &sizes[i]);
	assert_int_equal(failures, 0);
}

/* --- parse_sockaddr / format_sockaddr --- */

struct addr_case {
	const char *in;
	int family;            /* 0: must fail with -EINVAL */
	const char *formatted; /* format_sockaddr of the result */
	uint16_t port;
};

static const struct addr_case addr_cases[] = {
	{ "127.0.0.1:8080", AF_INET, "127.0.0.1:8080", 8080 },
	{ "0.0.0.0:1", AF_INET, "0.0.0.0:1", 1 },
	{ "255.255.255.255:65535", AF_INET, "255.255.255.255:65535", 65535 },
	{ "10.1.2.3:080", AF_INET, "10.1.2.3:80", 80 },
	{ "localhost:80", AF_INET, "127.0.0.1:80", 80 },
	{ "[::1]:8080", AF_INET6, "[::1]:8080", 8080 },
	{ "[::]:443", AF_INET6, "[::]:443", 443 },
	{ "[2001:DB8::1]:443", AF_INET6, "[2001:db8::1]:443", 443 },
	{ "[::ffff:192.0.2.1]:80", AF_INET6, "[::ffff:192.0.2.1]:80", 80 },
	/* missing port */
	{ "127.0.0.1", 0, NULL, 0 },
	{ "127.0.0.1:", 0, NULL, 0 },
	{ "[::1]", 0, NULL, 0 },
	{ "[::1]:", 0, NULL, 0 },
	{ "localhost", 0, NULL, 0 },
	/* port range */
	{ "127.0.0.1:0", 0, NULL, 0 },
	{ "[::1]:0", 0, NULL, 0 },
	{ "127.0.0.1:65536", 0, NULL, 0 },
	{ "[::1]:65536", 0, NULL, 0 },
	{ "127.0.0.1:99999999999999999999", 0, NULL, 0 },
	{ "127.0.0.1:-1", 0, NULL, 0 },
	{ "127.0.0.1:+80", 0, NULL, 0 },
	{ "127.0.0.1:80x", 0, NULL, 0 },
	{ "127.0.0.1:8 0", 0, NULL, 0 },
	/* host names: no DNS */
	{ "example.com:80", 0, NULL, 0 },
	{ "shop.test:443", 0, NULL, 0 },
	{ "localhost.localdomain:80", 0, NULL, 0 },
	{ "[localhost]:80", 0, NULL, 0 },
	/* junk */
	{ NULL, 0, NULL, 0 },
	{ "", 0, NULL, 0 },
	{ "junk", 0, NULL, 0 },
	{ ":80", 0, NULL, 0 },
	{ "[]:80", 0, NULL, 0 },
	{ "[", 0, NULL, 0 },
	{ "[::1]8080", 0, NULL, 0 },
	{ "::1:8080", 0, NULL, 0 },          /* IPv6 needs brackets */
	{ "[127.0.0.1]:80", 0, NULL, 0 },
	{ "1.2.3:80", 0, NULL, 0 },
	{ "256.0.0.1:80", 0, NULL, 0 },
	{ " 127.0.0.1:80", 0, NULL, 0 },
	{ "1111111111111111111111111111111111111111111111111111111111111111111111:80", 0, NULL, 0 },
};

static void test_parse_sockaddr(void **state)
{
	(void)state;
	int failures = 0;

	for (size_t i = 0; i < N(addr_cases); i++) {
		const struct addr_case *c = &addr_cases[i];
		struct sockaddr_storage ss, poison;
		socklen_t len = 12345;
		char text[64] = "";
		int ret;

		memset(&poison, 0xa5, sizeof(poison));
		ss = poison;
		ret = parse_sockaddr(c->in, &ss, &len);
		if (!c->family) {
			if (ret != -EINVAL || len != 12345 || memcmp(&ss, &poison, sizeof(ss))) {
				print_error("parse_sockaddr(%s): got ret %d (len %u%s), want %d with outputs untouched\n",
					    c->in ? c->in : "NULL", ret, (unsigned)len,
					    memcmp(&ss, &poison, sizeof(ss)) ? ", address written" : "", -EINVAL);
				failures++;
			}
			continue;
		}
		if (ret != 0) {
			print_error("parse_sockaddr(%s): got ret %d, want 0\n", c->in, ret);
			failures++;
			continue;
		}
		socklen_t want_len = c->family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
		uint16_t port = ntohs(c->family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
							   : ((struct sockaddr_in6 *)&ss)->sin6_port);
		format_sockaddr((struct sockaddr *)&ss, text, sizeof(text));
		if (ss.ss_family != c->family || len != want_len || port != c->port || strcmp(text, c->formatted)) {
			print_error("parse_sockaddr(%s): got family %d len %u port %u \"%s\", want family %d len %u port %u \"%s\"\n",
				    c->in, ss.ss_family, (unsigned)len, port, text, c->family, (unsigned)want_len,
				    c->port, c->formatted);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

/* parse(format(parse(s))) == parse(s), byte for byte */
static void test_format_sockaddr_round_trip(void **state)
{
	(void)state;
	int failures = 0;

	for (size_t i = 0; i < N(addr_cases); i++) {
		const struct addr_case *c = &addr_cases[i];
		struct sockaddr_storage a, b;
		socklen_t alen, blen;
		char text[64], text2[64];

		if (!c->family)
			continue;
		memset(&a, 0, sizeof(a));
		memset(&b, 0, sizeof(b));
		assert_int_equal(parse_sockaddr(c->in, &a, &alen), 0);
		format_sockaddr((struct sockaddr *)&a, text, sizeof(text));
		if (parse_sockaddr(text, &b, &blen) != 0 || alen != blen || memcmp(&a, &b, alen)) {
			print_error("round trip %s -> \"%s\" does not parse back to the same address\n", c->in, text);
			failures++;
			continue;
		}
		format_sockaddr((struct sockaddr *)&b, text2, sizeof(text2));
		if (strcmp(text, text2)) {
			print_error("round trip %s: \"%s\" then \"%s\"\n", c->in, text, text2);
			failures++;
		}
	}
	assert_int_equal(failures, 0);

	/* a long IPv6 text fits in 64 bytes */
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(65535) };
	char out[64];
	memset(&in6.sin6_addr, 0xff, sizeof(in6.sin6_addr));
	format_sockaddr((struct sockaddr *)&in6, out, sizeof(out));
	assert_string_equal(out, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");

	struct sockaddr other = { .sa_family = AF_UNIX };
	format_sockaddr(&other, out, sizeof(out));
	assert_string_equal(out, "unix");
}

/* --- buf --- */

/* b holds exactly the pending bytes want, between cursors head and tail. */
static void assert_buf(const struct buf *b, const char *want, size_t head, size_t tail)
{
	size_t n = strlen(want);
	char *got = strndup(buf_start(b), buf_len(b));

	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
	assert_int_equal(buf_len(b), n);
	assert_int_equal(b->head, head);
	assert_int_equal(b->tail, tail);
	assert_int_equal(buf_room(b), b->cap - tail);
	assert_int_equal(buf_empty(b), n == 0);
}

static void test_buf_init_release(void **state)
{
	(void)state;
	struct buf b;

	assert_int_equal(buf_init(&b, 32), 0);
	assert_non_null(b.data);
	assert_int_equal(b.cap, 32);
	assert_buf(&b, "", 0, 0);
	buf_release(&b);
	assert_null(b.data);
	assert_int_equal(b.cap, 0);
	assert_int_equal(b.head, 0);
	assert_int_equal(b.tail, 0);
	buf_release(&b); /* twice is harmless */
}

static void test_buf_append(void **state)
{
	(void)state;
	struct buf b;

	assert_int_equal(buf_init(&b, 8), 0);
	assert_int_equal(buf_append(&b, "abc", 3), 0);
	assert_buf(&b, "abc", 0, 3);
	assert_int_equal(buf_append_str(&b, "defgh"), 0); /* exactly full */
	assert_buf(&b, "abcdefgh", 0, 8);
	assert_int_equal(buf_append(&b, "x", 1), -ENOSPC);
	assert_buf(&b, "abcdefgh", 0, 8);
	assert_int_equal(buf_append(&b, "", 0), 0);
	assert_buf(&b, "abcdefgh", 0, 8);

	/* room at the front is reclaimed by compaction */
	buf_consume(&b, 3);
	assert_buf(&b, "defgh", 3, 8);
	assert_int_equal(buf_append(&b, "xyz", 3), 0);
	assert_buf(&b, "defghxyz", 0, 8);

	/* too big even after compaction: nothing appended */
	buf_consume(&b, 2);
	assert_int_equal(buf_append(&b, "123", 3), -ENOSPC);
	assert_int_equal(buf_len(&b), 6);
	assert_memory_equal(buf_start(&b), "fghxyz", 6);
	buf_release(&b);
}

struct appendf_case {
	const char *name;
	size_t cap;
	const char *pre;    /* appended first */
	size_t consume;     /* then consumed */
	const char *text;   /* appended with "%s" */
	int ret;
	const char *want;   /* pending bytes afterwards */
};

static int run_appendf_cases(const struct appendf_case *cases, size_t n)
{
	int failures = 0;

	for (size_t i = 0; i < n; i++) {
		const struct appendf_case *c = &cases[i];
		struct buf b;
		int ret;

		assert_int_equal(buf_init(&b, c->cap), 0);
		assert_int_equal(buf_append_str(&b, c->pre), 0);
		buf_consume(&b, c->consume);
		ret = buf_appendf(&b, "%s", c->text);
		if (ret != c->ret || buf_len(&b) != strlen(c->want) || memcmp(buf_start(&b), c->want, buf_len(&b))) {
			print_error("buf_appendf %s (cap %zu, %zu pending, %zu bytes): got %d \"%.*s\", want %d \"%s\"\n",
				    c->name, c->cap, strlen(c->pre) - c->consume, strlen(c->text), ret, (int)buf_len(&b),
				    buf_start(&b), c->ret, c->want);
			failures++;
		}
		buf_release(&b);
	}
	return failures;
}

/* Text that fills the room exactly fits: a buf holds bytes, not a C string,
 * so no room is owed to vsnprintf's terminating NUL (buf_append of the same
 * bytes succeeds). */
static void test_buf_appendf_exact_fit(void **state)
{
	(void)state;
	static const struct appendf_case cases[] = {
		{ "empty, fitting exactly", 16, "", 0, "0123456789abcdef", 0, "0123456789abcdef" },
		{ "after data, fitting exactly", 16, "abcd", 0, "0123456789ab", 0, "abcd0123456789ab" },
		{ "after consume, fitting exactly after compaction", 16, "0123456789", 8, "abcdefghijklmn", 0,
		  "89abcdefghijklmn" },
		{ "full, empty text", 4, "abcd", 0, "", 0, "abcd" },
	};
	assert_int_equal(run_appendf_cases(cases, N(cases)), 0);
}

static void test_buf_appendf(void **state)
{
	(void)state;
	static const struct appendf_case cases[] = {
		{ "empty, with room to spare", 16, "", 0, "hello", 0, "hello" },
		{ "empty, one byte short of full", 16, "", 0, "0123456789abcde", 0, "0123456789abcde" },
		{ "after consume, fitting after compaction", 16, "0123456789", 8, "abcdefghij", 0, "89abcdefghij" },
		{ "empty, one byte too many", 16, "", 0, "0123456789abcdefg", -ENOSPC, "" },
		{ "after data, not fitting", 16, "abcd", 0, "0123456789abc", -ENOSPC, "abcd" },
		{ "after consume, not fitting after compaction", 16, "0123456789", 8, "abcdefghijklmno", -ENOSPC, "89" },
		{ "full", 4, "abcd", 0, "x", -ENOSPC, "abcd" },
		{ "much longer than the buffer", 8, "ab", 0,
		  "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789",
		  -ENOSPC, "ab" },
	};
	assert_int_equal(run_appendf_cases(cases, N(cases)), 0);

	/* formatting proper */
	struct buf b;
	assert_int_equal(buf_init(&b, 64), 0);
	assert_int_equal(buf_appendf(&b, "HTTP/1.1 %d %s\r\n", 404, "Not Found"), 0);
	assert_int_equal(buf_appendf(&b, "Content-Length: %zu\r\n", (size_t)0), 0);
	assert_buf(&b, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n", 0, 43);
	buf_release(&b);
}

static void test_buf_compact(void **state)
{
	(void)state;
	struct buf b;

	assert_int_equal(buf_init(&b, 8), 0);
	buf_compact(&b); /* empty: no-op */
	assert_buf(&b, "", 0, 0);
	assert_int_equal(buf_append_str(&b, "abcdef"), 0);
	buf_compact(&b); /* head already 0: no-op */
	assert_buf(&b, "abcdef", 0, 6);
	buf_consume(&b, 4);
	assert_buf(&b, "ef", 4, 6);
	assert_int_equal(buf_room(&b), 2);
	buf_compact(&b);
	assert_buf(&b, "ef", 0, 2);
	assert_int_equal(buf_room(&b), 6);
	buf_release(&b);
}

static void test_buf_consume(void **state)
{
	(void)state;
	struct buf b;

	assert_int_equal(buf_init(&b, 8), 0);
	assert_int_equal(buf_append_str(&b, "abcdef"), 0);
	buf_consume(&b, 0);
	assert_buf(&b, "abcdef", 0, 6);
	buf_consume(&b, 2);
	assert_buf(&b, "cdef", 2, 6);
	buf_consume(&b, 4); /* to empty: both cursors back to 0 */
	assert_buf(&b, "", 0, 0);
	assert_int_equal(buf_room(&b), 8);
	assert_int_equal(buf_append_str(&b, "12345678"), 0);
	buf_consume(&b, 8);
	assert_buf(&b, "", 0, 0);
	buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_u64_max),
		cmocka_unit_test(test_parse_sockaddr),
		cmocka_unit_test(test_format_sockaddr_round_trip),
		cmocka_unit_test(test_buf_init_release),
		cmocka_unit_test(test_buf_append),
		cmocka_unit_test(test_buf_appendf),
		cmocka_unit_test(test_buf_appendf_exact_fit),
		cmocka_unit_test(test_buf_compact),
		cmocka_unit_test(test_buf_consume),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
