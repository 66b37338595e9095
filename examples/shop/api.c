/* api.c - the shop's routes: JSON API, storefront page, test endpoints, and
 * what makes each release different (badges in 1.1.0, faults in 1.2.0). */
#include "api.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shop.h"
#include "store.h"

#define SLOW_MAX_MS 30000
#define DOWNLOAD_MAX_MB 512
#define ORDERS_DEFAULT 20
#define ORDERS_MAX 100
#define FAULT_DELAY_MS 400      /* 1.2.0: every answer but /health */
#define FAULT_EVERY 4           /* 1.2.0: every 4th checkout fails */

static atomic_uint checkouts;   /* POST /api/checkout requests seen by this process */

/* ------------------------------------------------------------ replies */

static void reply_json(struct http_response *res, int status, json_t *j)
{
    res->status = status;
    res->content_type = "application/json";
    res->body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    res->body_len = res->body ? strlen(res->body) : 0;
    if (!res->body)
        res->status = 500;
    json_decref(j);
}

static void reply_error(struct http_response *res, int status, const char *msg)
{
    reply_json(res, status, json_pack("{s:s}", "error", msg));
}

/* A store result; rc is read only once j has been computed (it is set by
 * the call that makes j, often written as this function's argument). */
static void reply_store(struct http_response *res, int ok_status, json_t *j, const int *rcp)
{
    int rc = *rcp;
    static const int status[] = {
        [ST_OK] = 200, [ST_NOT_FOUND] = 404, [ST_CONFLICT] = 409,
        [ST_BAD] = 400, [ST_BUSY] = 503, [ST_ERROR] = 500,
    };
    reply_json(res, rc == ST_OK ? ok_status : status[rc], j);
}

static void method_not_allowed(struct http_response *res, const char *allow)
{
    res->allow = allow;
    reply_error(res, 405, "method not allowed");
}

/* ------------------------------------------------------------ request bits */

struct seg {
    const char *s;
    size_t n;
};

#define MAX_SEGS 6

/* Split a path into its non-empty segments; -1 if there are too many. */
static int split_path(const char *p, struct seg *segs)
{
    int n = 0;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *e = strchrnul(p, '/');
        if (n == MAX_SEGS)
            return -1;
        segs[n++] = (struct seg){p, (size_t)(e - p)};
        p = e;
    }
    return n;
}

static bool seg_is(struct seg s, const char *lit)
{
    return strlen(lit) == s.n && memcmp(s.s, lit, s.n) == 0;
}

/* A positive decimal id of at most 18 digits, or -1. */
static long long seg_id(struct seg s)
{
    if (s.n == 0 || s.n > 18)
        return -1;
    long long v = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.s[i] < '0' || s.s[i] > '9')
            return -1;
        v = v * 10 + (s.s[i] - '0');
    }
    return v > 0 ? v : -1;
}

/* A cart id (lower-case hex) copied into out; false if it cannot be one. */
static bool seg_cart(struct seg s, char out[STORE_CART_ID_LEN + 1])
{
    if (s.n != STORE_CART_ID_LEN)
        return false;
    for (size_t i = 0; i < s.n; i++)
        if (!s.s[i] || !strchr("0123456789abcdef", s.s[i]))
            return false;
    memcpy(out, s.s, s.n);
    out[s.n] = '\0';
    return true;
}

/* Query parameter `name` as an integer in [0, max]: 1 and *out when present
 * and valid, 0 when absent, -1 when malformed or out of range. */
static int query_int(const char *q, const char *name, long long max, long long *out)
{
    size_t nl = strlen(name);
    while (*q) {
        const char *e = strchrnul(q, '&');
        if ((size_t)(e - q) > nl && strncmp(q, name, nl) == 0 && q[nl] == '=') {
            const char *v = q + nl + 1;
            long long x = 0;
            if (v == e || e - v > 12)
                return -1;
            for (; v < e; v++) {
                if (*v < '0' || *v > '9')
                    return -1;
                x = x * 10 + (*v - '0');
            }
            if (x > max)
                return -1;
            *out = x;
            return 1;
        }
        q = *e ? e + 1 : e;
    }
    return 0;
}

static json_t *body_object(const struct http_request *req, struct http_response *res)
{
    json_error_t err;
    json_t *j = req->body_len ? json_loadb(req->body, req->body_len, 0, &err) : NULL;
    if (!json_is_object(j)) {
        json_decref(j);
        reply_error(res, 400, "expected a JSON object in the body");
        return NULL;
    }
    return j;
}

static bool need_db(struct api_ctx *ctx, struct http_response *res)
{
    if (!ctx->db)
        ctx->db = store_open(shop_db_path);
    if (!ctx->db)
        reply_error(res, 503, "database unavailable");
    return ctx->db != NULL;
}

/* ------------------------------------------------------------ pages */

static void html_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

static void storefront(struct api_ctx *ctx, struct http_response *res)
{
    int rc = ST_ERROR;
    if (!need_db(ctx, res))
        return;
    json_t *list = store_catalog(ctx->db, shop_features.badges, &rc);
    if (rc != ST_OK) {
        reply_store(res, 200, list, &rc);
        return;
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        json_decref(list);
        reply_error(res, 500, "out of memory");
        return;
    }
    size_t i;
    json_t *p;
    if (!shop_features.badges) {
        fputs("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Shop " SHOP_VERSION "</title></head>\n"
              "<body>\n<h1>Shop</h1>\n<table>\n<tr><th>Product</th><th>Price</th><th>In stock</th></tr>\n", f);
        json_array_foreach(list, i, p) {
            json_int_t cents = json_integer_value(json_object_get(p, "price_cents"));
            fputs("<tr><td>", f);
            html_escape(f, json_string_value(json_object_get(p, "name")));
            fprintf(f, "</td><td>%lld.%02lld %s</td><td>%lld</td></tr>\n", (long long)(cents / 100),
                    (long long)(cents % 100), json_string_value(json_object_get(p, "currency")),
                    (long long)json_integer_value(json_object_get(p, "stock")));
        }
        fputs("</table>\n<p>Version " SHOP_VERSION "</p>\n</body></html>\n", f);
    } else {
        fputs("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Shop " SHOP_VERSION " &middot; New arrivals</title>\n"
              "<style>body{font-family:Georgia,serif;background:#faf7f2;color:#222;margin:2em}"
              "h1{font-weight:normal;letter-spacing:.1em}.grid{display:flex;flex-wrap:wrap;gap:1em}"
              ".card{background:#fff;border:1px solid #e5ddd0;padding:1em;width:14em}"
              ".badge{background:#8a6d3b;color:#fff;font-size:.75em;padding:.1em .5em;text-transform:uppercase}"
              ".price{font-size:1.2em}</style></head>\n<body>\n<h1>THE SHOP</h1>\n"
              "<p>New this season: hand-picked arrivals, marked <span class=\"badge\">new</span>.</p>\n"
              "<div class=\"grid\">\n", f);
        json_array_foreach(list, i, p) {
            json_int_t cents = json_integer_value(json_object_get(p, "price_cents"));
            const char *badge = json_string_value(json_object_get(p, "badge"));
            fputs("<div class=\"card\">", f);
            if (badge) {
                fputs("<span class=\"badge\">", f);
                html_escape(f, badge);
                fputs("</span>", f);
            }
            fputs("<h3>", f);
            html_escape(f, json_string_value(json_object_get(p, "name")));
            fprintf(f, "</h3><div class=\"price\">%lld.%02lld %s</div><small>%lld in stock</small></div>\n",
                    (long long)(cents / 100), (long long)(cents % 100),
                    json_string_value(json_object_get(p, "currency")),
                    (long long)json_integer_value(json_object_get(p, "stock")));
        }
        fputs("</div>\n<p><small>Version " SHOP_VERSION "</small></p>\n</body></html>\n", f);
    }
    json_decref(list);
    if (fclose(f) != 0 || !buf) {
        free(buf);
        reply_error(res, 500, "out of memory");
        return;
    }
    res->status = 200;
    res->content_type = "text/html; charset=utf-8";
    res->body = buf;
    res->body_len = len;
}

/* ------------------------------------------------------------ handlers */

static void cart_items(struct api_ctx *ctx, const struct http_request *req, struct http_response *res,
                       const char *cart_id)
{
    json_t *b = body_object(req, res);
    if (!b)
        return;
    json_t *pid = json_object_get(b, "product_id"), *qty = json_object_get(b, "quantity");
    json_int_t q = qty ? (json_is_integer(qty) ? json_integer_value(qty) : -1) : 1;
    if (!json_is_integer(pid) || json_integer_value(pid) <= 0) {
        reply_error(res, 400, "product_id must be a positive integer");
    } else if (q < 1 || q > STORE_MAX_QUANTITY) {
        reply_error(res, 400, "quantity must be an integer from 1 to 1000");
    } else if (need_db(ctx, res)) {
        int rc = ST_ERROR;
        json_t *cart = store_cart_add(ctx->db, cart_id, json_integer_value(pid), q, &rc);
        reply_store(res, 200, cart, &rc);
    }
    json_decref(b);
}

static void checkout(struct api_ctx *ctx, const struct http_request *req, struct http_response *res)
{
    unsigned n = atomic_fetch_add(&checkouts, 1) + 1;
    if (shop_features.faulty && n % FAULT_EVERY == 0) {
        reply_error(res, 500, "payment provider timed out");
        return;
    }
    json_t *b = body_object(req, res);
    if (!b)
        return;
    const char *id = json_string_value(json_object_get(b, "cart_id"));
    if (!id) {
        reply_error(res, 400, "cart_id must be a string");
    } else if (strlen(id) != STORE_CART_ID_LEN || strspn(id, "0123456789abcdef") != STORE_CART_ID_LEN) {
        reply_error(res, 404, "no such cart");
    } else if (need_db(ctx, res)) {
        int rc = ST_ERROR;
        json_t *order = store_checkout(ctx->db, id, SHOP_VERSION, &rc);
        if (rc == ST_OK)
            snprintf(res->location, sizeof res->location, "/api/orders/%lld",
                     (long long)json_integer_value(json_object_get(order, "order_id")));
        reply_store(res, 201, order, &rc);
    }
    json_decref(b);
}

static void version(struct http_response *res)
{
    reply_json(res, 200, json_pack("{s:s, s:i, s:s}", "version", SHOP_VERSION, "pid", (int)getpid(),
                                   "started_at", shop_started_at));
}

static void slow(const struct http_request *req, struct http_response *res)
{
    long long ms = 1000;
    if (query_int(req->query, "ms", SLOW_MAX_MS, &ms) < 0) {
        reply_error(res, 400, "ms must be an integer from 0 to 30000");
        return;
    }
    shop_sleep_ms((long)ms);
    reply_json(res, 200, json_pack("{s:I, s:s}", "slept_ms", (json_int_t)ms, "version", SHOP_VERSION));
}

static void download(const struct http_request *req, struct http_response *res)
{
    long long mb = 1;
    if (query_int(req->query, "mb", DOWNLOAD_MAX_MB, &mb) < 0) {
        reply_error(res, 400, "mb must be an integer from 0 to 512");
        return;
    }
    res->status = 200;
    res->content_type = "application/octet-stream";
    res->stream_len = (int64_t)mb << 20;
}

void api_handle(struct api_ctx *ctx, const struct http_request *req, struct http_response *res)
{
    struct seg s[MAX_SEGS];
    int n = split_path(req->path, s);
    bool get = strcmp(req->method, "GET") == 0 || req->head;
    bool post = strcmp(req->method, "POST") == 0;
    long long id;
    char cart[STORE_CART_ID_LEN + 1];
    int rc = ST_ERROR;

    if (n == 1 && seg_is(s[0], "health")) {
        if (!get)
            method_not_allowed(res, "GET, HEAD");
        else
            reply_json(res, 200, json_pack("{s:s, s:s}", "status", "ok", "version", SHOP_VERSION));
        return;
    }
    if (shop_features.faulty)
        shop_sleep_ms(FAULT_DELAY_MS);

    if (n == 0) {
        if (!get)
            method_not_allowed(res, "GET, HEAD");
        else
            storefront(ctx, res);
    } else if (n == 1 && seg_is(s[0], "version")) {
        if (!get)
            method_not_allowed(res, "GET, HEAD");
        else
            version(res);
    } else if (n < 2 || !seg_is(s[0], "api")) {
        reply_error(res, 404, "not found");
    } else if (seg_is(s[1], "catalog") && n <= 3) {
        if (!get)
            method_not_allowed(res, "GET, HEAD");
        else if (n == 3 && (id = seg_id(s[2])) < 0)
            reply_error(res, 404, "no such product");
        else if (need_db(ctx, res))
            reply_store(res, 200, n == 2 ? store_catalog(ctx->db, shop_features.badges, &rc)
                                         : store_product(ctx->db, id, shop_features.badges, &rc), &rc);
    } else if (seg_is(s[1], "carts") && n == 2) {
        if (!post) {
            method_not_allowed(res, "POST");
        } else if (need_db(ctx, res)) {
            json_t *c = store_cart_create(ctx->db, &rc);
            if (rc == ST_OK)
                snprintf(res->location, sizeof res->location, "/api/carts/%s",
                         json_string_value(json_object_get(c, "cart_id")));
            reply_store(res, 201, c, &rc);
        }
    } else if (seg_is(s[1], "carts") && n == 3) {
        if (!get)
            method_not_allowed(res, "GET, HEAD");
        else if (!seg_cart(s[2], cart))
            reply_error(res, 404, "no such cart");
        else if (need_db(ctx, res))
            reply_store(res, 200, store_cart_get(ctx->db, cart, &rc), &rc);
    } else if (seg_is(s[1], "carts") && n == 4 && seg_is(s[3], "items")) {
        if (!post)
            method_not_allowed(res, "POST");
        else if (!seg_cart(s[2], cart))
            reply_error(res, 404, "no such cart");
        else
            cart_items(ctx, req, res, cart);
    } else if (seg_is(s[1], "checkout") && n == 2) {
        if (!post)
            method_not_allowed(res, "POST");
        else
            checkout(ctx, req, res);
    } else if (seg_is(s[1], "orders") && n <= 3) {
        long long limit = ORDERS_DEFAULT;
        if (!get)
            method_not_allowed(res, "GET, HEAD");
        else if (n == 3 && (id = seg_id(s[2])) < 0)
            reply_error(res, 404, "no such order");
        else if (n == 2 && (query_int(req->query, "limit", ORDERS_MAX, &limit) < 0 || limit < 1))
            reply_error(res, 400, "limit must be an integer from 1 to 100");
        else if (need_db(ctx, res))
            reply_store(res, 200, n == 2 ? store_orders(ctx->db, limit, &rc) : store_order_get(ctx->db, id, &rc), &rc);
    } else if (seg_is(s[1], "slow") && n == 2) {
        if (!get)
            method_not_allowed(res, "GET, HEAD");
        else
            slow(req, res);
    } else if (seg_is(s[1], "download") && n == 2) {
        if (!get)
            method_not_allowed(res, "GET, HEAD");
        else
            download(req, res);
    } else {
        reply_error(res, 404, "not found");
    }
}

void api_ctx_close(struct api_ctx *ctx)
{
    sqlite3_close(ctx->db);
    ctx->db = NULL;
}
