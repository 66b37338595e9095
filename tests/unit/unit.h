/* unit.h - helpers shared by the unit test programs.  Include after
 * <cmocka.h> (and its prerequisites) and "loop/loop.h". */
#pragma once
#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>

/* Open file descriptors of this process, not counting the one used to list
 * them: equal before and after a test that cleaned up after itself. */
static inline int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

/* A timer that stops a loop run which would otherwise hang; fired tells. */
struct run_guard {
	struct loop_timer timer;
	bool fired;
};

static inline void run_guard_cb(struct loop *loop, struct loop_timer *t)
{
	((struct run_guard *)((char *)t - offsetof(struct run_guard, timer)))->fired = true;
	loop->stop = true;
}
