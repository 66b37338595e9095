/* router-t.h - types of the request router (Host + path prefix -> service)
 * and of the services' route classes (method + path prefix -> class). */
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

/* A route class of a service (config_route_class): requests its deploys
 * judge apart. */
struct router_class {
	char *name;          /* as configured: "POST /api/checkout" */
	char *method;        /* upper case, compared exactly; NULL: any */
	char *path;          /* prefix, starts with '/' */
	size_t path_len;
};

struct router_classes {
	struct router_class *v;
	size_t n;
};

struct router {
	struct router_route *routes;
	size_t nroutes;
	struct router_classes *classes; /* per service index (nservices); NULL when no service has any */
	size_t nservices;
};
