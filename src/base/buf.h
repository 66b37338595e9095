/* buf.h - bounded byte buffers (see buf-t.h). */
#pragma once
#include <stdbool.h>
#include <string.h>
#include "base/buf-t.h"

/* Allocate storage of cap bytes.  Returns 0 or -ENOMEM (b untouched). */
int buf_init(struct buf *b, size_t cap);
/* Release storage; b becomes an empty buffer with no storage. */
void buf_release(struct buf *b);

static inline size_t buf_len(const struct buf *b) { return b->tail - b->head; }
static inline char *buf_start(const struct buf *b) { return b->data + b->head; }
static inline char *buf_end(const struct buf *b) { return b->data + b->tail; }
static inline size_t buf_room(const struct buf *b) { return b->cap - b->tail; }
static inline bool buf_empty(const struct buf *b) { return b->tail == b->head; }
static inline void buf_consume(struct buf *b, size_t n)
{
	b->head += n;
	if (b->head == b->tail)
		b->head = b->tail = 0;
}
/* Move pending bytes to the front so that buf_room() is maximal. */
void buf_compact(struct buf *b);
/* Out-of-line part of buf_append(): compacts first. */
int buf_append_slow(struct buf *b, const void *p, size_t n);
/* Append n bytes; returns 0, or -ENOSPC (nothing appended) if they do not fit. */
static inline int buf_append(struct buf *b, const void *p, size_t n)
{
	if (buf_room(b) < n)
		return buf_append_slow(b, p, n);
	memcpy(b->data + b->tail, p, n);
	b->tail += n;
	return 0;
}
static inline int buf_append_str(struct buf *b, const char *s) { return buf_append(b, s, strlen(s)); }
/* printf-style append; -ENOSPC (nothing appended) if it does not fit,
 * -ENOMEM or -EINVAL (nothing appended) on formatting failure. */
int buf_appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
