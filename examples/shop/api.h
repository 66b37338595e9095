/* api.h - the shop's routes and handlers. */
#ifndef SHOP_API_H
#define SHOP_API_H

#include <sqlite3.h>

#include "http.h"

/* Per-connection state: the connection's own SQLite handle, opened on first use. */
struct api_ctx {
    sqlite3 *db;
};

void api_handle(struct api_ctx *ctx, const struct http_request *req, struct http_response *res);
void api_ctx_close(struct api_ctx *ctx);

#endif
