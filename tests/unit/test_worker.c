/* test_worker.c - the background worker: work on its own thread, done on
 * the loop thread, both in submission order; stop finishes the queue. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>
#include "loop/loop.h"
#include "loop/worker.h"

#define NJOBS 1000

struct ctx {
	struct loop *loop;
	pthread_t main_thread;
	int worked[NJOBS];
	int done_order[NJOBS];
	int ndone;
	int work_seq;            /* touched by the worker thread only */
	int work_off_main;       /* jobs whose work ran off the loop thread */
	int done_off_main;       /* jobs whose done ran off the loop thread (must stay 0) */
};

struct job {
	struct ctx *ctx;
	int id;
};

static void job_work(void *data)
{
	struct job *j = data;

	j->ctx->worked[j->id] = ++j->ctx->work_seq;
	if (!pthread_equal(pthread_self(), j->ctx->main_thread))
		j->ctx->work_off_main++;
}

static void job_done(void *data)
{
	struct job *j = data;
	struct ctx *c = j->ctx;

	if (!pthread_equal(pthread_self(), c->main_thread))
		c->done_off_main++;
	c->done_order[c->ndone++] = j->id;
	if (c->ndone == NJOBS)
		c->loop->stop = true;
}

static void guard_fired(struct loop *loop, struct loop_timer *t)
{
	loop->stop = true;
}

static void test_order_and_threads(void **state)
{
	static struct job jobs[NJOBS];
	struct ctx c = { 0 };
	struct loop loop;
	struct loop_timer guard = { 0 };
	struct worker *w;

	(void)state;
	assert_int_equal(loop_init(&loop), 0);
	c.loop = &loop;
	c.main_thread = pthread_self();
	assert_int_equal(worker_start(&loop, &w), 0);
	for (int i = 0; i < NJOBS; i++) {
		jobs[i] = (struct job){ &c, i };
		assert_int_equal(worker_submit(w, job_work, job_done, &jobs[i]), 0);
	}
	assert_int_equal(worker_pending(w), NJOBS);
	loop_timer_set(&loop, &guard, loop.now_ms + 5000, guard_fired);
	assert_int_equal(loop_run(&loop), 0);
	loop_timer_cancel(&loop, &guard);
	assert_int_equal(c.ndone, NJOBS);
	assert_int_equal(worker_pending(w), 0);
	for (int i = 0; i < NJOBS; i++) {
		assert_int_equal(c.done_order[i], i);   /* done in submission order */
		assert_int_equal(c.worked[i], i + 1);   /* work in submission order */
	}
	assert_int_equal(c.work_off_main, NJOBS);
	assert_int_equal(c.done_off_main, 0);
	worker_stop(w);
	loop_release(&loop);
}

static void test_stop_finishes_the_queue(void **state)
{
	static struct job jobs[50];
	struct ctx c = { 0 };
	struct loop loop;
	struct worker *w;

	(void)state;
	assert_int_equal(loop_init(&loop), 0);
	c.loop = &loop;
	c.main_thread = pthread_self();
	assert_int_equal(worker_start(&loop, &w), 0);
	for (int i = 0; i < 50; i++) {
		jobs[i] = (struct job){ &c, i };
		assert_int_equal(worker_submit(w, job_work, job_done, &jobs[i]), 0);
	}
	worker_stop(w); /* no loop iteration ran: stop itself must finish all */
	assert_int_equal(c.ndone, 50);
	for (int i = 0; i < 50; i++)
		assert_int_equal(c.done_order[i], i);
	assert_int_equal(c.done_off_main, 0);
	worker_stop(NULL);
	loop_release(&loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_threads),
		cmocka_unit_test(test_stop_finishes_the_queue),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
