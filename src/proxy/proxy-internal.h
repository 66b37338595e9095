/* proxy-internal.h - functions shared between the files of src/proxy only. */
#pragma once
#include "proxy/proxy-t.h"

/* Buffers of p->buf_size bytes, recycled through a bounded free list.
 * get: 0 or -ENOMEM (b untouched); a buffer that already has storage is kept.
 * put: accepts a buffer without storage. */
int proxy_buf_get(struct proxy *p, struct buf *b);
void proxy_buf_put(struct proxy *p, struct buf *b);

/* An upstream timer fired for the exchange that owns the connection. */
void exchange_upstream_timeout(struct exchange *ex);
void upstream_set_deadline(struct upstream *u, uint64_t timeout_ms);
/* Close t's pooled connections idle for max_idle_ms or more (called once a
 * second, so idle expiry is accurate to a second). */
void upstream_expire_idle(struct target *t, uint64_t now_ms, uint64_t max_idle_ms);

/* Access log (accesslog.c). */
struct accesslog;
int accesslog_open(const char *path, int format, struct accesslog **ret);
void accesslog_write(struct accesslog *al, const struct exchange *ex, uint64_t now_ns);
void accesslog_flush(struct accesslog *al);
struct accesslog *accesslog_close(struct accesslog *al);
