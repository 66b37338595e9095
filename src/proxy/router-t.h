/* router-t.h - types of the request router (Host + path prefix -> service). */
#pragma once
#include <stddef.h>

enum router_host_kind { ROUTER_HOST_ANY = 0, ROUTER_HOST_EXACT, ROUTER_HOST_WILDCARD };

struct router_route {
	enum router_host_kind host_kind;
	char *host;          /* EXACT: "shop.example.com"; WILDCARD: ".example.com" (the suffix, dot included) */
	size_t host_len;
	char *path;          /* prefix, starts with '/' */
	size_t path_len;
	size_t service;      /* index into the runtime's service table */
};

struct router {
	struct router_route *routes;
	size_t nroutes;
};
