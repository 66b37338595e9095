/* state-fixture.h - what the test programs of src/state share: a state
 * directory of their own under /tmp, opened, and removed afterwards.
 *
 * struct state_fixture is ROOT (the test's directory, removed whole) and
 * DIR = ROOT/state (the state directory, created by state_open() itself).
 * state_fixture_setup/_teardown are cmocka setup and teardown functions;
 * *state is the fixture.  Include after unit.h (cmocka).
 */
#pragma once
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include "state/state.h"

struct state_fixture {
	char root[40];                /* the test's directory */
	char dir[64];                 /* root/state: the state directory */
	struct state *st;
};

static inline int state_fixture_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Remove DIR and everything under it (errors ignored: a test's leftovers). */
static inline void state_fixture_rm_rf(const char *dir)
{
	nftw(dir, state_fixture_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* state_open(DIR), failing the test with SQLite's words if it fails. */
static inline struct state *state_fixture_open(const char *dir)
{
	char err[512];
	struct state *st = NULL;
	int r = state_open(dir, &st, err, sizeof(err));

	if (r < 0)
		fail_msg("state_open(%s) = %d: %s", dir, r, err);
	assert_non_null(st);
	return st;
}

static inline int state_fixture_setup(void **state)
{
	struct state_fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->root, sizeof(f->root), "/tmp/cutover-state-XXXXXX");
	assert_non_null(mkdtemp(f->root));
	snprintf(f->dir, sizeof(f->dir), "%s/state", f->root);
	f->st = state_fixture_open(f->dir);
	*state = f;
	return 0;
}

static inline int state_fixture_teardown(void **state)
{
	struct state_fixture *f = *state;

	state_close(f->st);
	state_fixture_rm_rf(f->root);
	free(f);
	return 0;
}
