/* buf.c - bounded byte buffers.
 *
 * Used for every socket's input and output; the capacity is fixed when the
 * buffer is created so that a slow or hostile peer cannot grow memory.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "base/buf.h"

int buf_init(struct buf *b, size_t cap)
{
	char *d = malloc(cap);

	if (!d)
		return -ENOMEM;
	b->data = d;
	b->cap = cap;
	b->head = b->tail = 0;
	return 0;
}

void buf_release(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->cap = b->head = b->tail = 0;
}

void buf_compact(struct buf *b)
{
	if (b->head == 0)
		return;
	memmove(b->data, b->data + b->head, b->tail - b->head);
	b->tail -= b->head;
	b->head = 0;
}

int buf_append_slow(struct buf *b, const void *p, size_t n)
{
	buf_compact(b);
	if (buf_room(b) < n)
		return -ENOSPC;
	memcpy(b->data + b->tail, p, n);
	b->tail += n;
	return 0;
}

int buf_appendf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	char *tmp;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b->data + b->tail, buf_room(b), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n < buf_room(b)) {
		b->tail += (size_t)n;
		return 0;
	}
	/* did not fit with its NUL: compact, and format aside if the text
	 * fills the room exactly (a buffer holds bytes, it owes no NUL) */
	buf_compact(b);
	if ((size_t)n > buf_room(b))
		return -ENOSPC;
	tmp = malloc((size_t)n + 1);
	if (!tmp)
		return -ENOMEM;
	va_start(ap, fmt);
	vsnprintf(tmp, (size_t)n + 1, fmt, ap);
	va_end(ap);
	memcpy(b->data + b->tail, tmp, (size_t)n);
	b->tail += (size_t)n;
	free(tmp);
	return 0;
}
