/* worker.h - run blocking work (SQLite, file I/O, key derivation) on a
 * thread of its own and get the result back on the event loop.
 *
 *   worker_submit(w, work, done, data):
 *     work(data) runs on the worker thread, in submission order, one at a time;
 *     done(data) then runs on the loop thread (from an eventfd event), also in order.
 *
 * The loop thread never blocks on the worker: the queue is unbounded in
 * principle but each job is one small allocation; the caller owns data and
 * must keep it alive until done() has run.
 */
#pragma once
#include "loop/loop-t.h"

struct worker;
typedef void (*worker_fn)(void *data);

/* Start the thread and register its completion eventfd on loop.
 * Returns 0 or -errno (*ret untouched). */
int worker_start(struct loop *loop, struct worker **ret);
/* Queue a job.  Returns 0 or -ENOMEM (nothing queued). */
int worker_submit(struct worker *w, worker_fn work, worker_fn done, void *data);
/* Number of jobs submitted whose done() has not run yet. */
unsigned worker_pending(const struct worker *w);
/* Finish every queued job (work and done), stop the thread, free w.
 * Must be called on the loop thread; accepts NULL. */
void worker_stop(struct worker *w);
