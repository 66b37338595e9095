/* worker.c - one background thread fed by a FIFO queue; completions come
 * back to the loop through an eventfd (contract in worker.h). */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "base/list.h"
#include "loop/loop.h"
#include "loop/worker.h"

struct job {
	struct list_head node;
	worker_fn work, done;
	void *data;
};

struct worker {
	struct loop_io io;           /* the completion eventfd */
	struct loop *loop;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct list_head todo;       /* submitted, not yet worked (under lock) */
	struct list_head finished;   /* worked, done() not yet run (under lock) */
	unsigned pending;            /* loop thread only */
	bool stopping;               /* under lock */
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct job *j;
		while (list_empty(&w->todo) && !w->stopping)
			pthread_cond_wait(&w->cond, &w->lock);
		if (list_empty(&w->todo))
			break; /* stopping and nothing left */
		j = container_of(w->todo.next, struct job, node);
		list_del(&j->node);
		pthread_mutex_unlock(&w->lock);
		if (j->work)
			j->work(j->data);
		pthread_mutex_lock(&w->lock);
		list_add_tail(&w->finished, &j->node);
		if (write(w->io.fd, &one, sizeof(one)) < 0) {
			/* the counter cannot overflow in practice; nothing else to do */
		}
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Run done() for every finished job, in order, outside the lock. */
static void worker_complete(struct worker *w)
{
	struct list_head batch;

	list_init(&batch);
	pthread_mutex_lock(&w->lock);
	while (!list_empty(&w->finished)) {
		struct list_head *n = w->finished.next;
		list_del(n);
		list_add_tail(&batch, n);
	}
	pthread_mutex_unlock(&w->lock);
	while (!list_empty(&batch)) {
		struct job *j = container_of(batch.next, struct job, node);
		list_del(&j->node);
		w->pending--;
		if (j->done)
			j->done(j->data);
		free(j);
	}
}

static void worker_on_event(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct worker *w = container_of(io, struct worker, io);
	uint64_t n;

	(void)loop;
	(void)events;
	if (read(io->fd, &n, sizeof(n)) < 0) {
		/* EAGAIN: another event already drained it */
	}
	worker_complete(w);
}

int worker_start(struct loop *loop, struct worker **ret)
{
	struct worker *w = calloc(1, sizeof(*w));
	int fd, rc;

	if (!w)
		return -ENOMEM;
	fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		free(w);
		return rc;
	}
	w->loop = loop;
	list_init(&w->todo);
	list_init(&w->finished);
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	rc = loop_add(loop, &w->io, fd, EPOLLIN, worker_on_event);
	if (rc < 0)
		goto fail;
	rc = -pthread_create(&w->thread, NULL, worker_main, w);
	if (rc < 0) {
		loop_del(loop, &w->io);
		goto fail;
	}
	*ret = w;
	return 0;
fail:
	close(fd);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w);
	return rc;
}

int worker_submit(struct worker *w, worker_fn work, worker_fn done, void *data)
{
	struct job *j = malloc(sizeof(*j));

	if (!j)
		return -ENOMEM;
	j->work = work;
	j->done = done;
	j->data = data;
	pthread_mutex_lock(&w->lock);
	list_add_tail(&w->todo, &j->node);
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	w->pending++;
	return 0;
}

unsigned worker_pending(const struct worker *w)
{
	return w->pending;
}

void worker_stop(struct worker *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL); /* works off the queue first */
	worker_complete(w);
	loop_del(w->loop, &w->io);
	close(w->io.fd);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w);
}
