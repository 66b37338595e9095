/* state-internal.h - what the files of src/state share: the connection,
 * SQLite error mapping, transactions and column helpers.  Not for use
 * outside src/state (and its unit test). */
#pragma once
#include <sqlite3.h>
#include "state/state.h"

struct state {
	sqlite3 *db;
	char errmsg[256];             /* last failure, for state_errmsg() */
	unsigned depth;               /* state_begin() nesting: > 1 runs in a savepoint */
	int lock_fd;                  /* STATE_DIR/state.lock, held shared (state_open); -1: none */
};

/* The lock every connection state_open() makes holds shared for its life,
 * and `cutover state restore` exclusive (backup.c): "state.lock" in the
 * state directory. */
#define STATE_LOCK_NAME "state.lock"
/* Open (create) DIR/state.lock for flock, close-on-exec, owned by DIR's
 * owner.  Returns the fd, or -errno with a sentence in err. */
int state_lock_open(const char *dir, char *err, size_t errlen);

/* Open the SQLite file FILE as it is: no lock, no journal mode, no
 * migration (for backups, checks and restores, which look at a file that
 * may not be a cutover state at all).  FLAGS are sqlite3_open_v2()'s.
 * Extended result codes and the busy timeout are set.  Returns 0 with *ret
 * (state_close() it), or -errno with a sentence naming FILE in err. */
int state_open_raw(const char *file, int flags, struct state **ret, char *err, size_t errlen);
/* What state_open() does once it holds the lock: open FILE (created if
 * CREATE), WAL, synchronous FULL, the migrations, foreign keys.  Without
 * the lock: for a file no other process knows of (a restore's copy). */
int state_open_file(const char *file, bool create, struct state **ret, char *err, size_t errlen);

/* Map a SQLite result code to -errno, remembering SQLite's message:
 * BUSY/LOCKED -> -EBUSY, CONSTRAINT_UNIQUE/PRIMARYKEY -> -EEXIST, other
 * constraints -> -EINVAL, NOMEM -> -ENOMEM, FULL -> -ENOSPC, else -EIO. */
int state_sql_error(struct state *st, int rc);
/* Prepare SQL on the connection.  Returns 0 or -errno (*ret untouched). */
int state_prepare(struct state *st, const char *sql, sqlite3_stmt **ret);
/* Run one statement without results (no bound parameters). */
int state_exec(struct state *st, const char *sql);
/* Run SQL (no parameters) and read the first column of its first row into
 * *ret.  Returns 0 or -errno (*ret untouched). */
int state_query_int64(struct state *st, const char *sql, int64_t *ret);
/* Step a statement that returns no row.  Returns 0 or -errno. */
int state_step_done(struct state *st, sqlite3_stmt *stmt);
/* BEGIN IMMEDIATE: take the write lock up front, so that the busy timeout
 * applies (a deferred transaction upgrading to write can fail at once). */
int state_begin(struct state *st);
int state_commit(struct state *st);
void state_rollback(struct state *st);

/* Bind text (secret values hidden: secrets/redact.h), or NULL when s is NULL. */
int state_bind_text(sqlite3_stmt *stmt, int i, const char *s);
/* Copy column i into a fixed array (empty for NULL). */
void state_column_copy(sqlite3_stmt *stmt, int i, char *out, size_t outlen);
/* A malloc'd copy of column i, or NULL for NULL.  Sets *failed on ENOMEM. */
char *state_column_dup(sqlite3_stmt *stmt, int i, bool *failed);
/* -EINVAL if s is NULL/empty (when required) or longer than max bytes. */
int state_check_text(const char *s, size_t max, bool required);
/* INSERT OR IGNORE the service row (inside the caller's transaction). */
int state_service_insert(struct state *st, const char *name);
/* Upsert SERVICE's routing row (inside the caller's transaction). */
int state_routing_write(struct state *st, const char *service, const char *version, const int64_t *ids,
			size_t nids);
/* Grow an array of rows by one zeroed element: *items has *n used and *cap
 * allocated elements of size sz.  Returns a pointer to the new element or
 * NULL on ENOMEM. */
void *state_array_push(void *items_ptr, size_t *n, size_t *cap, size_t sz);

/* How to read one kind of row into its struct. */
struct state_row_kind {
	size_t size;                                /* of the struct */
	int (*read)(sqlite3_stmt *stmt, void *row); /* 0, or -ENOMEM (what it allocated stays in row) */
	void (*clear)(void *row);                   /* frees what read allocated */
};
/* Step STMT (parameters bound) to its end, each row read into a new element
 * of an array: 0 with *(T **)ret_items and *ret_n set, or -errno with
 * nothing returned.  Finalizes STMT either way. */
int state_rows(struct state *st, sqlite3_stmt *stmt, const struct state_row_kind *kind, void *ret_items,
	       size_t *ret_n);
/* The first row of STMT into *(T *)ret: 0, -ENOENT if there is none, or
 * -errno (ret untouched).  Finalizes STMT either way. */
int state_row(struct state *st, sqlite3_stmt *stmt, const struct state_row_kind *kind, void *ret);

/* The tables of the schema and the version that added each (check.c),
 * ending with a NULL name: what a check and a backup count. */
struct state_table {
	const char *name;
	int min_schema;
};
extern const struct state_table state_tables[];
