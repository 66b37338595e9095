/* store.h - the shop's data in SQLite: schema, migrations, seed catalog and
 * the catalog, cart, checkout and order operations.
 *
 * Every operation returns a JSON value (the result, or {"error": ...}) and
 * sets *rc; the caller owns the value. */
#ifndef SHOP_STORE_H
#define SHOP_STORE_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

enum store_rc {
    ST_OK,
    ST_NOT_FOUND,       /* no such cart, product or order */
    ST_CONFLICT,        /* out of stock, cart already checked out */
    ST_BAD,             /* the request makes no sense (empty cart, quantity too big) */
    ST_BUSY,            /* the database stayed locked beyond busy_timeout */
    ST_ERROR,
};

#define STORE_CART_ID_LEN 32
#define STORE_MAX_QUANTITY 1000     /* per cart line */

/* Create or open the database at `path`, switch it to WAL, migrate it to this
 * release's schema and seed the catalog (all idempotent, safe while other
 * versions use the same file).  Returns 0, or -1 with a message in err. */
int store_init(const char *path, int *schema, char *err, size_t errlen);

/* A connection for one thread (WAL, busy_timeout, foreign keys); NULL on failure. */
sqlite3 *store_open(const char *path);

json_t *store_catalog(sqlite3 *db, bool badges, int *rc);
json_t *store_product(sqlite3 *db, long long id, bool badges, int *rc);
json_t *store_cart_create(sqlite3 *db, int *rc);
json_t *store_cart_get(sqlite3 *db, const char *cart_id, int *rc);
json_t *store_cart_add(sqlite3 *db, const char *cart_id, long long product_id, long long quantity, int *rc);
json_t *store_checkout(sqlite3 *db, const char *cart_id, const char *served_by, int *rc);
json_t *store_order_get(sqlite3 *db, long long id, int *rc);
json_t *store_orders(sqlite3 *db, long long limit, int *rc);

#endif
