/* test_traffic.c - unit tests for traffic_minutes (src/state/traffic.c):
 * rows are added to, never replaced; the sums take the window's bounds
 * inclusively; old minutes go when asked; a bad row writes nothing; and
 * the rows are there after the database is opened again.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "state/state.h"

#include "state-fixture.h"

static void sum_is(struct state *st, const char *service, int64_t from, int64_t to, uint64_t requests,
		   uint64_t failed)
{
	uint64_t r = 99, fl = 99;

	assert_int_equal(state_traffic_sum(st, service, from, to, &r, &fl), 0);
	assert_int_equal(r, requests);
	assert_int_equal(fl, failed);
}

static void test_add_and_sum(void **state)
{
	struct state_fixture *f = *state;
	const struct state_traffic_minute rows[] = {
		{ "shop", 1000, 60, 1 }, { "shop", 1001, 30, 0 }, { "shop", 1002, 10, 10 }, { "api", 1001, 5, 2 },
	};

	assert_int_equal(state_traffic_add(f->st, rows, 4, 0), 0);
	/* { window, expected } as a table */
	static const struct {
		const char *service;
		int64_t from, to;
		uint64_t requests, failed;
	} cases[] = {
		{ "shop", 1000, 1002, 100, 11 },  /* both ends included */
		{ "shop", 1001, 1001, 30, 0 },
		{ "shop", 1002, 5000, 10, 10 },
		{ "shop", 0, 999, 0, 0 },         /* none stored: zeros, not an error */
		{ "api", 0, 5000, 5, 2 },
		{ "nobody", 0, 5000, 0, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		sum_is(f->st, cases[i].service, cases[i].from, cases[i].to, cases[i].requests, cases[i].failed);
}

static void test_same_minute_adds_up(void **state)
{
	struct state_fixture *f = *state;
	const struct state_traffic_minute a = { "shop", 2000, 40, 2 }, b = { "shop", 2000, 25, 3 };

	/* the daemon that stops, then the next one, count parts of one minute */
	assert_int_equal(state_traffic_add(f->st, &a, 1, 0), 0);
	assert_int_equal(state_traffic_add(f->st, &b, 1, 0), 0);
	sum_is(f->st, "shop", 2000, 2000, 65, 5);
}

static void test_prune(void **state)
{
	struct state_fixture *f = *state;
	const struct state_traffic_minute old[] = { { "shop", 10, 1, 0 }, { "shop", 11, 2, 1 }, { "api", 12, 4, 0 } };
	const struct state_traffic_minute now = { "shop", 20, 8, 0 };

	assert_int_equal(state_traffic_add(f->st, old, 3, 0), 0);
	/* minutes before 12 go, 12 itself stays */
	assert_int_equal(state_traffic_add(f->st, &now, 1, 12), 0);
	sum_is(f->st, "shop", 0, 100, 8, 0);
	sum_is(f->st, "api", 0, 100, 4, 0);
	/* pruning alone (no row) */
	assert_int_equal(state_traffic_add(f->st, NULL, 0, 21), 0);
	sum_is(f->st, "shop", 0, 100, 0, 0);
	sum_is(f->st, "api", 0, 100, 0, 0);
}

static void test_bad_rows_write_nothing(void **state)
{
	struct state_fixture *f = *state;
	const struct state_traffic_minute bad[][2] = {
		{ { "shop", 1, 5, 0 }, { NULL, 1, 1, 0 } },      /* no service */
		{ { "shop", 1, 5, 0 }, { "", 1, 1, 0 } },        /* empty service */
		{ { "shop", 1, 5, 0 }, { "api", 1, 1, 2 } },     /* more failed than requests */
		{ { "shop", 1, 5, 0 }, { "api", -1, 1, 0 } },    /* a minute before 1970 */
	};
	uint64_t r, fl;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(state_traffic_add(f->st, bad[i], 2, 0), -EINVAL);
	sum_is(f->st, "shop", 0, 100, 0, 0);
	assert_int_equal(state_traffic_sum(f->st, NULL, 0, 1, &r, &fl), -EINVAL);
}

static void test_survives_reopen(void **state)
{
	struct state_fixture *f = *state;
	const struct state_traffic_minute rows[] = { { "shop", 3000, 7, 1 }, { "shop", 3001, 3, 0 } };

	assert_int_equal(state_traffic_add(f->st, rows, 2, 0), 0);
	f->st = state_close(f->st);
	f->st = state_fixture_open(f->dir);
	sum_is(f->st, "shop", 3000, 3001, 10, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_add_and_sum, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_same_minute_adds_up, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_prune, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_bad_rows_write_nothing, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_survives_reopen, state_fixture_setup, state_fixture_teardown),
	};

	return cmocka_run_group_tests_name("traffic", tests, NULL, NULL);
}
