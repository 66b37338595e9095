/* test_inherit.c - unit tests of the handed-over sockets (src/loop/inherit.h).
 *
 * Real sockets: listening TCP sockets on 127.0.0.1 and [::1] with ports the
 * kernel picks, a listening Unix socket in a temporary directory, and
 * sockets that must be refused (a datagram socket, a stream socket that is
 * not listening, a pipe).  Each test counts the process's fds before and
 * after: what was taken is the caller's, the rest is closed by release.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>
#include "loop/inherit.h"
#include "loop/loop.h"
#include "unit.h"

/* A listening TCP socket on addr:0 (family af); its address in *sa. */
static int tcp_listener(int af, struct sockaddr_storage *sa, socklen_t *len)
{
	int fd = socket(af, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(sa, 0, sizeof(*sa));
	if (af == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)sa;
		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
		in6->sin6_family = AF_INET6;
		in6->sin6_addr = in6addr_loopback;
		*len = sizeof(*in6);
	}
	if (bind(fd, (struct sockaddr *)sa, *len) < 0) {
		close(fd);
		return -1; /* no IPv6 here */
	}
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)sa, len), 0);
	return fd;
}

static void test_take_by_address(void **state)
{
	struct inherited h = { .from = "a test" };
	struct sockaddr_storage a4, a6, other;
	socklen_t l4, l6, lo;
	int before = count_fds(), f4 = tcp_listener(AF_INET, &a4, &l4), f6 = tcp_listener(AF_INET6, &a6, &l6);
	int fo = tcp_listener(AF_INET, &other, &lo), got;
	char text[128];

	assert_int_equal(inherited_add(&h, f4, "web"), 0);
	if (f6 >= 0)
		assert_int_equal(inherited_add(&h, f6, NULL), 0);
	/* made non-blocking and close-on-exec */
	assert_true(fcntl(f4, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(f4, F_GETFD) & FD_CLOEXEC);
	inherited_describe(&h.socks[0], text, sizeof(text));
	assert_non_null(strstr(text, "127.0.0.1:"));
	assert_string_equal(h.socks[0].name, "web");
	/* another port on the same address is not it */
	assert_int_equal(inherited_take(&h, (struct sockaddr *)&other, lo), -1);
	got = inherited_take(&h, (struct sockaddr *)&a4, l4);
	assert_int_equal(got, f4);
	/* taken once only */
	assert_int_equal(inherited_take(&h, (struct sockaddr *)&a4, l4), -1);
	if (f6 >= 0) {
		inherited_describe(&h.socks[1], text, sizeof(text));
		assert_true(text[0] == '[');
		assert_int_equal(inherited_take(&h, (struct sockaddr *)&a6, l6), f6);
		close(f6);
	}
	assert_int_equal(inherited_take(NULL, (struct sockaddr *)&a4, l4), -1);
	inherited_release(&h);
	assert_int_equal(h.n, 0);
	close(got);
	close(fo);
	assert_int_equal(count_fds(), before);
}

static void test_unix_and_release_closes_the_rest(void **state)
{
	struct inherited h = { .from = "a test" };
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct sockaddr_storage a4;
	socklen_t l4;
	char dir[] = "/tmp/cutover-inherit-XXXXXX";
	int before = count_fds(), fu, f4, got;

	assert_non_null(mkdtemp(dir));
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/admin.sock", dir);
	fu = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fu, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(fu, 4), 0);
	f4 = tcp_listener(AF_INET, &a4, &l4);
	assert_int_equal(inherited_add(&h, fu, NULL), 0);
	assert_int_equal(inherited_add(&h, f4, NULL), 0);
	assert_int_equal(inherited_take_unix(&h, "/tmp/elsewhere.sock"), -1);
	got = inherited_take_unix(&h, sun.sun_path);
	assert_int_equal(got, fu);
	/* f4 was not taken: release closes it */
	inherited_release(&h);
	assert_int_equal(fcntl(f4, F_GETFD), -1);
	close(got);
	unlink(sun.sun_path);
	rmdir(dir);
	assert_int_equal(count_fds(), before);
}

static void test_refuses_what_is_not_a_listener(void **state)
{
	struct inherited h = { .from = "a test" };
	int before = count_fds(), dgram = socket(AF_INET, SOCK_DGRAM, 0), idle = socket(AF_INET, SOCK_STREAM, 0), p[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(inherited_add(&h, dgram, NULL), -EINVAL);
	assert_int_equal(inherited_add(&h, idle, NULL), -EINVAL);
	assert_int_equal(inherited_add(&h, p[0], NULL), -ENOTSOCK);
	/* each was closed, nothing was kept */
	assert_int_equal(h.n, 0);
	assert_int_equal(fcntl(dgram, F_GETFD), -1);
	close(p[1]);
	inherited_release(&h);
	assert_int_equal(count_fds(), before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_take_by_address),
		cmocka_unit_test(test_unix_and_release_closes_the_rest),
		cmocka_unit_test(test_refuses_what_is_not_a_listener),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
