/* store.c - the shop's data in SQLite.
 *
 * Schema versions (PRAGMA user_version), expand-only so that every release
 * can run on a database another release migrated:
 *   1  products, carts, cart_items, orders, order_items; the seed catalog.
 *   2  products.badge (1.1.0 and later), set on a few products.
 * A release migrates up to its own version and accepts a newer database
 * (an older release simply ignores the columns it does not know).  Migrations
 * run in one BEGIN IMMEDIATE transaction, so two releases starting at once on
 * the same file apply each step once. */
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "shop.h"

#define BUSY_TIMEOUT_MS 5000

static const char schema_v1[] =
    "CREATE TABLE IF NOT EXISTS products ("
    "  id INTEGER PRIMARY KEY,"
    "  sku TEXT NOT NULL UNIQUE,"
    "  name TEXT NOT NULL,"
    "  price_cents INTEGER NOT NULL CHECK (price_cents >= 0),"
    "  currency TEXT NOT NULL,"
    "  stock INTEGER NOT NULL CHECK (stock >= 0));"
    "CREATE TABLE IF NOT EXISTS carts ("
    "  id TEXT PRIMARY KEY,"
    "  created_at TEXT NOT NULL,"
    "  status TEXT NOT NULL DEFAULT 'open',"
    "  order_id INTEGER);"
    "CREATE TABLE IF NOT EXISTS cart_items ("
    "  cart_id TEXT NOT NULL REFERENCES carts(id),"
    "  product_id INTEGER NOT NULL REFERENCES products(id),"
    "  quantity INTEGER NOT NULL CHECK (quantity > 0),"
    "  PRIMARY KEY (cart_id, product_id)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS orders ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  cart_id TEXT NOT NULL UNIQUE REFERENCES carts(id),"
    "  total_cents INTEGER NOT NULL,"
    "  currency TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  created_at TEXT NOT NULL,"
    "  served_by TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS order_items ("
    "  order_id INTEGER NOT NULL REFERENCES orders(id),"
    "  product_id INTEGER NOT NULL,"
    "  name TEXT NOT NULL,"
    "  quantity INTEGER NOT NULL,"
    "  unit_price_cents INTEGER NOT NULL,"
    "  PRIMARY KEY (order_id, product_id)) WITHOUT ROWID;"
    "INSERT OR IGNORE INTO products (id, sku, name, price_cents, currency, stock) VALUES"
    "  (1,  'COAT-MER',  'Merino Wool Overcoat',               89000,  'EUR', 40),"
    "  (2,  'BAG-WKD',   'Handmade Leather Weekender',         64000,  'EUR', 30),"
    "  (3,  'WATCH-AUT', 'Swiss Automatic Watch',              249000, 'EUR', 25),"
    "  (4,  'SCARF-CSH', 'Cashmere Scarf',                     19500,  'EUR', 120),"
    "  (5,  'SQ-SILK',   'Silk Pocket Square',                 6500,   'EUR', 200),"
    "  (6,  'SHOE-LOAF', 'Italian Calfskin Loafers',           52000,  'EUR', 60),"
    "  (7,  'CUFF-SLV',  'Sterling Silver Cufflinks',          18000,  'EUR', 80),"
    "  (8,  'KNIFE-GYU', 'Japanese Chef''s Knife',             34000,  'EUR', 45),"
    "  (9,  'COF-ESP',   'Single-Origin Espresso Beans, 1 kg', 4800,   'EUR', 500),"
    "  (10, 'DEC-CRY',   'Crystal Decanter',                   27500,  'EUR', 35),"
    "  (11, 'BED-LIN',   'Linen Bedding Set',                  31000,  'EUR', 70),"
    "  (12, 'PEN-18K',   'Fountain Pen, 18k Gold Nib',         42000,  'EUR', 50);";

static const char schema_v2[] =
    "UPDATE products SET badge = 'new' WHERE sku IN ('COF-ESP', 'PEN-18K', 'BED-LIN');"
    "UPDATE products SET badge = 'bestseller' WHERE sku = 'SCARF-CSH';"
    "UPDATE products SET badge = 'limited' WHERE sku = 'WATCH-AUT';";

/* ------------------------------------------------------------ helpers */

static json_t *fail(int *rc, int code, const char *msg)
{
    *rc = code;
    return json_pack("{s:s}", "error", msg);
}

/* A failed SQLite call: BUSY/LOCKED is worth a retry by the client (503);
 * anything else is logged and reported as an internal error. */
static json_t *db_fail(sqlite3 *db, int *rc, int r)
{
    int primary = r & 0xff;
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
        return fail(rc, ST_BUSY, "database busy, try again");
    fprintf(stderr, "shop: sqlite: %s (%d)\n", sqlite3_errmsg(db), r);
    return fail(rc, ST_ERROR, "database error");
}

static int exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static void rollback(sqlite3 *db)
{
    if (!sqlite3_get_autocommit(db))
        exec(db, "ROLLBACK");
}

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    return sqlite3_prepare_v2(db, sql, -1, st, NULL);
}

static int step_done(sqlite3_stmt *st)
{
    int r = sqlite3_step(st);
    return r == SQLITE_DONE || r == SQLITE_ROW ? SQLITE_OK : r;
}

static int configure(sqlite3 *db)
{
    int r = sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    if (r == SQLITE_OK)
        r = exec(db, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;");
    return r;
}

static int user_version(sqlite3 *db, int *v)
{
    sqlite3_stmt *st;
    int r = prep(db, "PRAGMA user_version", &st);
    if (r != SQLITE_OK)
        return r;
    r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        *v = sqlite3_column_int(st, 0);
        r = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return r;
}

static int set_user_version(sqlite3 *db, int v)
{
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v);
    return exec(db, sql);
}

static int has_column(sqlite3 *db, const char *table, const char *column, bool *yes)
{
    sqlite3_stmt *st;
    int r = prep(db, "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2", &st);
    if (r != SQLITE_OK)
        return r;
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, column, -1, SQLITE_STATIC);
    r = sqlite3_step(st);
    *yes = r == SQLITE_ROW;
    r = r == SQLITE_ROW || r == SQLITE_DONE ? SQLITE_OK : r;
    sqlite3_finalize(st);
    return r;
}

/* ------------------------------------------------------------ set-up */

static int migrate(sqlite3 *db, int *schema)
{
    int v = 0, r = exec(db, "BEGIN IMMEDIATE");
    if (r != SQLITE_OK)
        return r;
    if ((r = user_version(db, &v)) != SQLITE_OK)
        goto out;
    if (v < 1) {
        if ((r = exec(db, schema_v1)) != SQLITE_OK || (r = set_user_version(db, 1)) != SQLITE_OK)
            goto out;
        v = 1;
    }
    if (v < 2 && shop_features.schema >= 2) {
        bool yes;
        if ((r = has_column(db, "products", "badge", &yes)) != SQLITE_OK)
            goto out;
        if (!yes && (r = exec(db, "ALTER TABLE products ADD COLUMN badge TEXT")) != SQLITE_OK)
            goto out;
        if ((r = exec(db, schema_v2)) != SQLITE_OK || (r = set_user_version(db, 2)) != SQLITE_OK)
            goto out;
        v = 2;
    }
    r = exec(db, "COMMIT");
out:
    if (r != SQLITE_OK)
        rollback(db);
    *schema = v;
    return r;
}

int store_init(const char *path, int *schema, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    int r = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (r == SQLITE_OK)
        r = configure(db);
    /* Switching to WAL needs a moment alone with the file: retry while another
     * process holds it (it is a no-op once the file is in WAL). */
    for (int i = 0; r == SQLITE_OK; i++) {
        sqlite3_stmt *st;
        if ((r = prep(db, "PRAGMA journal_mode = WAL", &st)) != SQLITE_OK)
            break;
        r = sqlite3_step(st);
        bool wal = r == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
        sqlite3_finalize(st);
        if (wal) {
            r = SQLITE_OK;
            break;
        }
        if ((r == SQLITE_BUSY || r == SQLITE_ROW) && i < 100) {
            shop_sleep_ms(50);
            r = SQLITE_OK;
            continue;
        }
        if (r == SQLITE_ROW)
            r = SQLITE_ERROR;
    }
    if (r == SQLITE_OK)
        r = migrate(db, schema);
    if (r != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(r));
        sqlite3_close(db);
        return -1;
    }
    sqlite3_close(db);
    return 0;
}

sqlite3 *store_open(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK
        || configure(db) != SQLITE_OK) {
        fprintf(stderr, "shop: cannot open %s: %s\n", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

/* ------------------------------------------------------------ catalog */

static json_t *product_row(sqlite3_stmt *st, bool badges)
{
    json_t *p = json_pack("{s:I, s:s, s:I, s:s, s:I}",
        "id", (json_int_t)sqlite3_column_int64(st, 0),
        "name", (const char *)sqlite3_column_text(st, 1),
        "price_cents", (json_int_t)sqlite3_column_int64(st, 2),
        "currency", (const char *)sqlite3_column_text(st, 3),
        "stock", (json_int_t)sqlite3_column_int64(st, 4));
    if (p && badges) {
        const char *b = (const char *)sqlite3_column_text(st, 5);
        json_object_set_new(p, "badge", b ? json_string(b) : json_null());
    }
    return p;
}

#define PRODUCT_COLUMNS "id, name, price_cents, currency, stock"

json_t *store_catalog(sqlite3 *db, bool badges, int *rc)
{
    sqlite3_stmt *st;
    int r = prep(db, badges ? "SELECT " PRODUCT_COLUMNS ", badge FROM products ORDER BY id"
                            : "SELECT " PRODUCT_COLUMNS " FROM products ORDER BY id", &st);
    if (r != SQLITE_OK)
        return db_fail(db, rc, r);
    json_t *list = json_array();
    while ((r = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(list, product_row(st, badges));
    sqlite3_finalize(st);
    if (r != SQLITE_DONE) {
        json_decref(list);
        return db_fail(db, rc, r);
    }
    *rc = ST_OK;
    return list;
}

json_t *store_product(sqlite3 *db, long long id, bool badges, int *rc)
{
    sqlite3_stmt *st;
    int r = prep(db, badges ? "SELECT " PRODUCT_COLUMNS ", badge FROM products WHERE id = ?1"
                            : "SELECT " PRODUCT_COLUMNS " FROM products WHERE id = ?1", &st);
    if (r != SQLITE_OK)
        return db_fail(db, rc, r);
    sqlite3_bind_int64(st, 1, id);
    json_t *p = NULL;
    r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        p = product_row(st, badges);
    sqlite3_finalize(st);
    if (r == SQLITE_DONE)
        return fail(rc, ST_NOT_FOUND, "no such product");
    if (!p)
        return db_fail(db, rc, r);
    *rc = ST_OK;
    return p;
}

/* ------------------------------------------------------------ carts */

json_t *store_cart_create(sqlite3 *db, int *rc)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char rnd[STORE_CART_ID_LEN / 2];
    char id[STORE_CART_ID_LEN + 1];
    size_t got = 0;
    while (got < sizeof rnd) {
        ssize_t n = getrandom(rnd + got, sizeof rnd - got, 0);
        if (n < 0 && errno != EINTR)
            return fail(rc, ST_ERROR, "no randomness for a cart id");
        got += n > 0 ? (size_t)n : 0;
    }
    for (size_t i = 0; i < sizeof rnd; i++) {
        id[2 * i] = hex[rnd[i] >> 4];
        id[2 * i + 1] = hex[rnd[i] & 15];
    }
    id[STORE_CART_ID_LEN] = '\0';

    sqlite3_stmt *st;
    int r = prep(db, "INSERT INTO carts (id, created_at) VALUES (?1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))", &st);
    if (r != SQLITE_OK)
        return db_fail(db, rc, r);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    r = step_done(st);
    sqlite3_finalize(st);
    if (r != SQLITE_OK)
        return db_fail(db, rc, r);
    return store_cart_get(db, id, rc);
}

json_t *store_cart_get(sqlite3 *db, const char *cart_id, int *rc)
{
    sqlite3_stmt *st;
    int r = prep(db, "SELECT status, created_at, order_id FROM carts WHERE id = ?1", &st);
    if (r != SQLITE_OK)
        return db_fail(db, rc, r);
    sqlite3_bind_text(st, 1, cart_id, -1, SQLITE_TRANSIENT);
    r = sqlite3_step(st);
    if (r != SQLITE_ROW) {
        sqlite3_finalize(st);
        return r == SQLITE_DONE ? fail(rc, ST_NOT_FOUND, "no such cart") : db_fail(db, rc, r);
    }
    json_t *cart = json_pack("{s:s, s:s, s:s}", "cart_id", cart_id,
        "status", (const char *)sqlite3_column_text(st, 0),
        "created_at", (const char *)sqlite3_column_text(st, 1));
    if (sqlite3_column_type(st, 2) != SQLITE_NULL)
        json_object_set_new(cart, "order_id", json_integer(sqlite3_column_int64(st, 2)));
    sqlite3_finalize(st);

    r = prep(db, "SELECT p.id, p.name, ci.quantity, p.price_cents FROM cart_items ci"
                 " JOIN products p ON p.id = ci.product_id WHERE ci.cart_id = ?1 ORDER BY p.id", &st);
    if (r != SQLITE_OK) {
        json_decref(cart);
        return db_fail(db, rc, r);
    }
    sqlite3_bind_text(st, 1, cart_id, -1, SQLITE_TRANSIENT);
    json_t *items = json_array();
    long long total = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        long long q = sqlite3_column_int64(st, 2), price = sqlite3_column_int64(st, 3);
        total += q * price;
        json_array_append_new(items, json_pack("{s:I, s:s, s:I, s:I, s:I}",
            "product_id", (json_int_t)sqlite3_column_int64(st, 0),
            "name", (const char *)sqlite3_column_text(st, 1),
            "quantity", (json_int_t)q, "unit_price_cents", (json_int_t)price,
            "line_total_cents", (json_int_t)(q * price)));
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE) {
        json_decref(items);
        json_decref(cart);
        return db_fail(db, rc, r);
    }
    json_object_set_new(cart, "items", items);
    json_object_set_new(cart, "total_cents", json_integer(total));
    json_object_set_new(cart, "currency", json_string("EUR"));
    *rc = ST_OK;
    return cart;
}

/* Bind ?1 = text (when given) and the next parameter = num (when the
 * statement has one). */
static void bind_tn(sqlite3_stmt *st, const char *text, long long num)
{
    int i = 1;
    if (text)
        sqlite3_bind_text(st, i++, text, -1, SQLITE_TRANSIENT);
    if (i <= sqlite3_bind_parameter_count(st))
        sqlite3_bind_int64(st, i, num);
}

/* One-row query: SQLITE_ROW (the statement left in *keep to read, when keep
 * is given; the caller finalizes it), SQLITE_DONE, or an error. */
static int lookup(sqlite3 *db, const char *sql, const char *text, long long num, sqlite3_stmt **keep)
{
    sqlite3_stmt *st;
    int r = prep(db, sql, &st);
    if (r != SQLITE_OK)
        return r;
    bind_tn(st, text, num);
    r = sqlite3_step(st);
    if (r == SQLITE_ROW && keep)
        *keep = st;
    else
        sqlite3_finalize(st);
    return r;
}

/* Status of an existing cart: SQLITE_ROW and whether it is open, SQLITE_DONE
 * when there is none, or an error. */
static int cart_open(sqlite3 *db, const char *cart_id, bool *open)
{
    sqlite3_stmt *st = NULL;
    int r = lookup(db, "SELECT status FROM carts WHERE id = ?1", cart_id, 0, &st);
    if (r == SQLITE_ROW) {
        *open = strcmp((const char *)sqlite3_column_text(st, 0), "open") == 0;
        sqlite3_finalize(st);
    }
    return r;
}

json_t *store_cart_add(sqlite3 *db, const char *cart_id, long long product_id, long long quantity, int *rc)
{
    sqlite3_stmt *st = NULL;
    bool open = false;
    json_t *err = NULL;
    int r = exec(db, "BEGIN IMMEDIATE");
    if (r != SQLITE_OK)
        return db_fail(db, rc, r);
    r = cart_open(db, cart_id, &open);
    if (r == SQLITE_DONE) {
        err = fail(rc, ST_NOT_FOUND, "no such cart");
        goto out;
    }
    if (r != SQLITE_ROW)
        goto out;
    if (!open) {
        err = fail(rc, ST_CONFLICT, "cart already checked out");
        goto out;
    }
    r = lookup(db, "SELECT 1 FROM products WHERE id = ?1", NULL, product_id, NULL);
    if (r == SQLITE_DONE) {
        err = fail(rc, ST_NOT_FOUND, "no such product");
        goto out;
    }
    if (r != SQLITE_ROW)
        goto out;
    r = lookup(db, "SELECT quantity FROM cart_items WHERE cart_id = ?1 AND product_id = ?2", cart_id, product_id, &st);
    if (r == SQLITE_ROW) {
        long long have = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        if (have + quantity > STORE_MAX_QUANTITY) {
            err = fail(rc, ST_BAD, "too many of one product in a cart");
            goto out;
        }
    } else if (r != SQLITE_DONE) {
        goto out;
    }
    if ((r = prep(db, "INSERT INTO cart_items (cart_id, product_id, quantity) VALUES (?1, ?2, ?3)"
                      " ON CONFLICT (cart_id, product_id) DO UPDATE SET quantity = quantity + excluded.quantity",
                  &st)) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, cart_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, product_id);
    sqlite3_bind_int64(st, 3, quantity);
    r = step_done(st);
    sqlite3_finalize(st);
    if (r == SQLITE_OK)
        r = exec(db, "COMMIT");
    if (r == SQLITE_OK)
        return store_cart_get(db, cart_id, rc);
out:
    rollback(db);
    return err ? err : db_fail(db, rc, r);
}

/* ------------------------------------------------------------ checkout and orders */

/* Run a statement that returns nothing, parameters as in bind_tn(). */
static int run(sqlite3 *db, const char *sql, const char *text, long long num)
{
    sqlite3_stmt *st;
    int r = prep(db, sql, &st);
    if (r != SQLITE_OK)
        return r;
    bind_tn(st, text, num);
    r = step_done(st);
    sqlite3_finalize(st);
    return r;
}

json_t *store_checkout(sqlite3 *db, const char *cart_id, const char *served_by, int *rc)
{
    sqlite3_stmt *st = NULL;
    json_t *err = NULL;
    bool open = false;
    long long order_id = 0;
    int r = exec(db, "BEGIN IMMEDIATE");
    if (r != SQLITE_OK)
        return db_fail(db, rc, r);

    r = cart_open(db, cart_id, &open);
    if (r == SQLITE_DONE) {
        err = fail(rc, ST_NOT_FOUND, "no such cart");
        goto out;
    }
    if (r != SQLITE_ROW)
        goto out;
    if (!open) {
        r = lookup(db, "SELECT order_id FROM carts WHERE id = ?1", cart_id, 0, &st);
        if (r == SQLITE_ROW) {
            err = json_pack("{s:s, s:I}", "error", "cart already checked out",
                            "order_id", (json_int_t)sqlite3_column_int64(st, 0));
            sqlite3_finalize(st);
            *rc = ST_CONFLICT;
        }
        goto out;
    }

    /* The write lock is ours (BEGIN IMMEDIATE): what we read now stays true
     * until COMMIT, in this process and in every other one on the file. */
    r = lookup(db, "SELECT ci.product_id, ci.quantity, p.stock FROM cart_items ci"
                   " JOIN products p ON p.id = ci.product_id"
                   " WHERE ci.cart_id = ?1 AND p.stock < ci.quantity ORDER BY p.id LIMIT 1",
               cart_id, 0, &st);
    if (r == SQLITE_ROW) {
        err = json_pack("{s:s, s:I, s:I, s:I}", "error", "out of stock",
                        "product_id", (json_int_t)sqlite3_column_int64(st, 0),
                        "requested", (json_int_t)sqlite3_column_int64(st, 1),
                        "available", (json_int_t)sqlite3_column_int64(st, 2));
        sqlite3_finalize(st);
        *rc = ST_CONFLICT;
        goto out;
    }
    if (r != SQLITE_DONE)
        goto out;

    r = lookup(db, "SELECT count(*), coalesce(sum(ci.quantity * p.price_cents), 0) FROM cart_items ci"
                   " JOIN products p ON p.id = ci.product_id WHERE ci.cart_id = ?1",
               cart_id, 0, &st);
    if (r != SQLITE_ROW)
        goto out;
    long long lines = sqlite3_column_int64(st, 0), total = sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    if (lines == 0) {
        err = fail(rc, ST_BAD, "cart is empty");
        goto out;
    }

    if ((r = run(db, "UPDATE products SET stock = stock -"
                      " (SELECT quantity FROM cart_items WHERE cart_id = ?1 AND product_id = products.id)"
                      " WHERE id IN (SELECT product_id FROM cart_items WHERE cart_id = ?1)",
                  cart_id, 0)) != SQLITE_OK)
        goto out;
    if ((r = prep(db, "INSERT INTO orders (cart_id, total_cents, currency, status, created_at, served_by)"
                      " VALUES (?1, ?2, 'EUR', 'paid', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?3)", &st)) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, cart_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, total);
    sqlite3_bind_text(st, 3, served_by, -1, SQLITE_STATIC);
    r = step_done(st);
    sqlite3_finalize(st);
    if (r != SQLITE_OK)
        goto out;
    order_id = sqlite3_last_insert_rowid(db);
    if ((r = run(db, "INSERT INTO order_items (order_id, product_id, name, quantity, unit_price_cents)"
                      " SELECT ?2, p.id, p.name, ci.quantity, p.price_cents FROM cart_items ci"
                      " JOIN products p ON p.id = ci.product_id WHERE ci.cart_id = ?1",
                  cart_id, order_id)) != SQLITE_OK
        || (r = run(db, "UPDATE carts SET status = 'ordered', order_id = ?2 WHERE id = ?1", cart_id, order_id)) != SQLITE_OK
        || (r = exec(db, "COMMIT")) != SQLITE_OK)
        goto out;
    return store_order_get(db, order_id, rc);
out:
    rollback(db);
    return err ? err : db_fail(db, rc, r);
}

static json_t *order_row(sqlite3_stmt *st)
{
    return json_pack("{s:I, s:s, s:s, s:I, s:s, s:s, s:s}",
        "order_id", (json_int_t)sqlite3_column_int64(st, 0),
        "cart_id", (const char *)sqlite3_column_text(st, 1),
        "status", (const char *)sqlite3_column_text(st, 2),
        "total_cents", (json_int_t)sqlite3_column_int64(st, 3),
        "currency", (const char *)sqlite3_column_text(st, 4),
        "created_at", (const char *)sqlite3_column_text(st, 5),
        "served_by", (const char *)sqlite3_column_text(st, 6));
}

#define ORDER_COLUMNS "id, cart_id, status, total_cents, currency, created_at, served_by"

json_t *store_order_get(sqlite3 *db, long long id, int *rc)
{
    sqlite3_stmt *st = NULL;
    int r = lookup(db, "SELECT " ORDER_COLUMNS " FROM orders WHERE id = ?1", NULL, id, &st);
    if (r == SQLITE_DONE)
        return fail(rc, ST_NOT_FOUND, "no such order");
    if (r != SQLITE_ROW)
        return db_fail(db, rc, r);
    json_t *order = order_row(st);
    sqlite3_finalize(st);

    r = prep(db, "SELECT product_id, name, quantity, unit_price_cents FROM order_items"
                 " WHERE order_id = ?1 ORDER BY product_id", &st);
    if (r != SQLITE_OK) {
        json_decref(order);
        return db_fail(db, rc, r);
    }
    sqlite3_bind_int64(st, 1, id);
    json_t *items = json_array();
    while ((r = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(items, json_pack("{s:I, s:s, s:I, s:I}",
            "product_id", (json_int_t)sqlite3_column_int64(st, 0),
            "name", (const char *)sqlite3_column_text(st, 1),
            "quantity", (json_int_t)sqlite3_column_int64(st, 2),
            "unit_price_cents", (json_int_t)sqlite3_column_int64(st, 3)));
    sqlite3_finalize(st);
    if (r != SQLITE_DONE) {
        json_decref(items);
        json_decref(order);
        return db_fail(db, rc, r);
    }
    json_object_set_new(order, "items", items);
    *rc = ST_OK;
    return order;
}

json_t *store_orders(sqlite3 *db, long long limit, int *rc)
{
    sqlite3_stmt *st;
    int r = prep(db, "SELECT " ORDER_COLUMNS " FROM orders ORDER BY id DESC LIMIT ?1", &st);
    if (r != SQLITE_OK)
        return db_fail(db, rc, r);
    sqlite3_bind_int64(st, 1, limit);
    json_t *list = json_array();
    while ((r = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(list, order_row(st));
    sqlite3_finalize(st);
    if (r != SQLITE_DONE) {
        json_decref(list);
        return db_fail(db, rc, r);
    }
    *rc = ST_OK;
    return list;
}
