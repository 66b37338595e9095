/* list-t.h - intrusive doubly linked list node. */
#pragma once

struct list_head {
	struct list_head *next, *prev;
};
