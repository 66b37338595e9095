/* buf-t.h - types of the bounded byte buffer.
 *
 * A struct buf is a fixed-capacity byte array with a read cursor (head) and
 * a write cursor (tail).  Bytes in [head, tail) are pending.  Capacity never
 * grows on its own: everything a peer controls is bounded.
 */
#pragma once
#include <stddef.h>

struct buf {
	char *data;
	size_t cap;
	size_t head; /* first pending byte */
	size_t tail; /* one past the last pending byte */
};
