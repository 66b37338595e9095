/* test_router.c - unit tests of the Host + path-prefix router.
 *
 * Each table is a set of routes (as config_load would hand them over: host
 * NULL for any host, "*.x" for a wildcard, else an exact lower-case name)
 * and requests with the service they must reach.  Every row is checked and
 * every mismatch printed (host, target, got, want) before the test fails.
 * router_build's out-of-memory path is driven by a failing strdup() defined
 * below (it overrides libc's for this program only).  The route classes of
 * a service (router_class_match) are a table of (method, target, class).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config/config-t.h"
#include "proxy/router.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* --- strdup with failure injection ---
 * router_build copies each route's host and path with strdup().  With
 * strdup_fail_at = k > 0, the k-th call from now returns NULL. */
static int strdup_fail_at;

char *strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d;

	if (strdup_fail_at > 0 && --strdup_fail_at == 0)
		return NULL;
	d = malloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}

/* --- tables --- */

struct route_spec {
	const char *host;  /* NULL: any */
	const char *path;  /* NULL: default "/" */
	size_t service;
};

struct match_case {
	const char *host;  /* NULL: no Host field */
	const char *target;
	long want;
};

struct table {
	const char *name;
	const struct route_spec *routes;
	size_t nroutes;
	const struct match_case *cases;
	size_t ncases;
};

#define TABLE(name, routes, cases) { name, routes, N(routes), cases, N(cases) }

/* Build a struct config holding only what router_build reads. */
static void config_from_specs(struct config *cfg, struct config_route *storage, const struct route_spec *specs, size_t n)
{
	size_t nservices = 0;

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < n; i++) {
		storage[i] = (struct config_route){
			.host = (char *)specs[i].host,
			.path_prefix = (char *)specs[i].path,
			.service = specs[i].service,
			.line = (int)i + 1,
		};
		if (specs[i].service + 1 > nservices)
			nservices = specs[i].service + 1;
	}
	cfg->routes = n ? storage : NULL;
	cfg->nroutes = n;
	cfg->nservices = nservices;
}

/* Run every row of t; print each mismatch; return the number of them. */
static int run_table(const struct table *t)
{
	struct config_route storage[16];
	struct config cfg;
	struct router r;
	int failures = 0;

	assert_true(t->nroutes <= N(storage));
	config_from_specs(&cfg, storage, t->routes, t->nroutes);
	assert_int_equal(router_build(&r, &cfg), 0);
	assert_int_equal(r.nroutes, t->nroutes);
	for (size_t i = 0; i < t->ncases; i++) {
		const struct match_case *c = &t->cases[i];
		long got = router_match(&r, c->host, c->host ? strlen(c->host) : 0, c->target, strlen(c->target));
		if (got != c->want) {
			print_error("%s[%zu]: host %s%s%s target \"%s\": got %ld, want %ld\n", t->name, i,
				    c->host ? "\"" : "", c->host ? c->host : "(none)", c->host ? "\"" : "",
				    c->target, got, c->want);
			failures++;
		}
	}
	router_release(&r);
	return failures;
}

static void run_tables(const struct table *tables, size_t n)
{
	int failures = 0;

	for (size_t i = 0; i < n; i++)
		failures += run_table(&tables[i]);
	assert_int_equal(failures, 0);
}

/* --- exact host: case-insensitive, port stripped, IPv6 literal --- */

static const struct route_spec exact_routes[] = {
	{ "shop.test", "/", 0 },
	{ "[::1]", "/", 1 },
	{ "api.shop.test", "/", 2 },
};
static const struct match_case exact_cases[] = {
	{ "shop.test", "/", 0 },
	{ "SHOP.Test", "/x", 0 },
	{ "shop.test:8080", "/x", 0 },
	{ "Shop.TEST:443", "/", 0 },
	{ "shop.test:", "/", 0 },            /* empty port is allowed (RFC 3986) */
	{ "api.shop.test", "/", 2 },
	{ "API.shop.test:1", "/", 2 },
	{ "[::1]:8080", "/", 1 },
	{ "[::1]", "/", 1 },
	{ "[::1]:", "/", 1 },
	{ "[::2]:8080", "/", -1 },
	{ "shop.test.evil", "/", -1 },
	{ "xshop.test", "/", -1 },
	{ "shop.tes", "/", -1 },
	{ "hop.test", "/", -1 },
	{ "b.shop.test", "/", -1 },          /* an exact host is not a wildcard */
	{ "shop.test:abc", "/", -1 },
	{ "shop.test:80:80", "/", -1 },
	{ "", "/", -1 },
	{ NULL, "/", -1 },
};

/* --- wildcard: "*.shop.test" is any name strictly below shop.test --- */

static const struct route_spec wild_routes[] = {
	{ "*.shop.test", "/", 0 },
};
static const struct match_case wild_cases[] = {
	{ "a.shop.test", "/", 0 },
	{ "a.b.shop.test", "/", 0 },
	{ "A.Shop.TEST", "/", 0 },
	{ "a.shop.test:8443", "/", 0 },
	{ "shop.test", "/", -1 },
	{ "shop.test:80", "/", -1 },
	{ "ashop.test", "/", -1 },
	{ "xashop.test", "/", -1 },
	{ "a.shop.test.evil", "/", -1 },
	{ "a.shop.tes", "/", -1 },
	{ "test", "/", -1 },
	{ "", "/", -1 },
	{ NULL, "/", -1 },
};

/* --- a longer wildcard suffix beats a shorter one, whatever the order --- */

static const struct route_spec wild_len_routes[] = {
	{ "*.test", "/", 0 },
	{ "*.shop.test", "/", 1 },
	{ "*.eu.shop.test", "/", 2 },
};
static const struct route_spec wild_len_rev_routes[] = {
	{ "*.eu.shop.test", "/", 2 },
	{ "*.shop.test", "/", 1 },
	{ "*.test", "/", 0 },
};
static const struct match_case wild_len_cases[] = {
	{ "x.test", "/", 0 },
	{ "shop.test", "/", 0 },
	{ "a.shop.test", "/", 1 },
	{ "eu.shop.test", "/", 1 },
	{ "a.eu.shop.test", "/", 2 },
	{ "b.a.eu.shop.test:1", "/", 2 },
	{ "a.us.shop.test", "/", 1 },
	{ "test", "/", -1 },
};

/* --- host classes: exact > wildcard > any, before path length --- */

static const struct route_spec class_routes[] = {
	{ NULL, "/", 0 },
	{ NULL, "/api/v1", 3 },
	{ "*.shop.test", "/", 1 },
	{ "a.shop.test", "/", 2 },
	{ "b.shop.test", "/only", 4 },
};
static const struct route_spec class_rev_routes[] = {
	{ "b.shop.test", "/only", 4 },
	{ "a.shop.test", "/", 2 },
	{ "*.shop.test", "/", 1 },
	{ NULL, "/api/v1", 3 },
	{ NULL, "/", 0 },
};
static const struct match_case class_cases[] = {
	{ "a.shop.test", "/", 2 },
	{ "A.SHOP.TEST:80", "/x", 2 },
	{ "c.shop.test", "/", 1 },
	{ "other.test", "/", 0 },
	{ NULL, "/", 0 },
	{ "", "/", 0 },
	{ "a.shop.test", "/api/v1/x", 2 },   /* exact host with "/" beats any host with a longer prefix */
	{ "c.shop.test", "/api/v1/x", 1 },   /* wildcard likewise */
	{ "other.test", "/api/v1/x", 3 },
	{ "b.shop.test", "/only/x", 4 },
	{ "b.shop.test", "/other", 1 },      /* exact host, path misses: the wildcard route serves it */
};

/* --- longest path prefix within one host class --- */

static const struct route_spec prefix_routes[] = {
	{ "shop.test", "/api/v1", 2 },
	{ "shop.test", "/", 0 },
	{ "shop.test", "/api", 1 },
	{ NULL, "/api/v1/deep", 9 },
	{ "*.shop.test", "/a", 5 },
	{ "*.shop.test", "/a/b/c", 7 },
	{ "*.shop.test", "/a/b", 6 },
};
static const struct match_case prefix_cases[] = {
	{ "shop.test", "/", 0 },
	{ "shop.test", "/a", 0 },
	{ "shop.test", "/api", 1 },
	{ "shop.test", "/api/v", 1 },
	{ "shop.test", "/api/v1", 2 },
	{ "shop.test", "/api/v1/x", 2 },
	{ "shop.test", "/api/v1?x=1", 2 },
	{ "shop.test", "/api/v10", 1 },
	{ "shop.test", "/api/v1/deep", 2 },  /* any-host prefix is longer but loses on host */
	{ "x.shop.test", "/a", 5 },
	{ "x.shop.test", "/a/b", 6 },
	{ "x.shop.test", "/a/b/c/d", 7 },
	{ "x.shop.test", "/a/bc", 5 },
	{ "x.shop.test", "/b", -1 },           /* no "/" for the wildcard; the any-host prefix misses */
	{ "other", "/api/v1/deep/x", 9 },
};

/* --- segment boundaries --- */

static const struct route_spec seg_routes[] = {
	{ NULL, "/api", 0 },
};
static const struct match_case seg_cases[] = {
	{ "h", "/api", 0 },
	{ "h", "/api/", 0 },
	{ "h", "/api/x", 0 },
	{ "h", "/api?q=1", 0 },
	{ "h", "/api#frag", 0 },
	{ "h", "/apix", -1 },
	{ "h", "/api-v2", -1 },
	{ "h", "/ap", -1 },
	{ "h", "/API", -1 },                 /* paths are case-sensitive */
	{ "h", "/", -1 },
	{ "h", "api", -1 },
	{ "h", "", -1 },
};

static const struct route_spec seg_slash_routes[] = {
	{ NULL, "/api/", 0 },
};
static const struct match_case seg_slash_cases[] = {
	{ "h", "/api/x", 0 },
	{ "h", "/api/", 0 },
	{ "h", "/api/?q", 0 },
	{ "h", "/api", -1 },
	{ "h", "/api?q=1", -1 },
	{ "h", "/apix", -1 },
	{ "h", "/", -1 },
};

/* --- "/" catches all --- */

static const struct route_spec root_routes[] = {
	{ NULL, "/", 0 },
};
static const struct match_case root_cases[] = {
	{ "h", "/", 0 },
	{ "h", "/anything/at/all", 0 },
	{ "h", "/?q=1", 0 },
	{ "h", "//double", 0 },
	{ NULL, "/x", 0 },
	{ "h", "", -1 },
};

/* path_prefix NULL is the default "/" */
static const struct route_spec default_path_routes[] = {
	{ "shop.test", NULL, 4 },
};
static const struct match_case default_path_cases[] = {
	{ "shop.test", "/", 4 },
	{ "shop.test", "/x/y", 4 },
	{ "other.test", "/", -1 },
};

/* --- no match --- */

static const struct route_spec nomatch_routes[] = {
	{ "shop.test", "/api", 0 },
	{ "*.shop.test", "/api", 1 },
};
static const struct match_case nomatch_cases[] = {
	{ "other.test", "/api", -1 },
	{ "shop.test", "/", -1 },
	{ "shop.test", "/apix", -1 },
	{ "a.shop.test", "/", -1 },
	{ NULL, "/api", -1 },
};

/* --- absolute-form targets route on their path --- */

static const struct route_spec abs_routes[] = {
	{ NULL, "/", 0 },
	{ NULL, "/api", 1 },
};
static const struct match_case abs_cases[] = {
	{ "h", "http://h/api", 1 },
	{ "h", "http://h/api/x", 1 },
	{ "h", "http://h/apix", 0 },
	{ "h", "http://h/", 0 },
	{ "h", "https://h:8443/api?q=1", 1 },
	{ "h", "HTTP://h/api", 1 },
	{ "h", "http://user@h/api", 1 },
	{ "h", "http://[::1]:8080/api", 1 },
};

/* The authority of an absolute-form target ends at the first '/', '?' or
 * '#' (RFC 3986 3.2), and an empty path is "/" (RFC 9110 4.2.3). */
static const struct match_case abs_authority_cases[] = {
	{ "h", "http://h", 0 },
	{ "h", "http://h?q=1", 0 },
	{ "h", "http://h?q=/api", 0 },       /* the query's "/api" is not the path */
	{ "h", "http://h:8080?next=/api/x", 0 },
};

/* absolute-form path against a router without "/" */
static const struct route_spec abs_api_routes[] = {
	{ NULL, "/api", 1 },
};
static const struct match_case abs_api_cases[] = {
	{ "h", "http://h/api/x", 1 },
	{ "h", "http://h/other", -1 },
};
static const struct match_case abs_api_authority_cases[] = {
	{ "h", "http://h?next=/api/x", -1 },
	{ "h", "http://h?/api", -1 },
};

static void test_exact_host(void **state)
{
	(void)state;
	const struct table t[] = { TABLE("exact", exact_routes, exact_cases) };
	run_tables(t, N(t));
}

static void test_wildcard(void **state)
{
	(void)state;
	const struct table t[] = {
		TABLE("wildcard", wild_routes, wild_cases),
		TABLE("wildcard-length", wild_len_routes, wild_len_cases),
		TABLE("wildcard-length-reversed", wild_len_rev_routes, wild_len_cases),
	};
	run_tables(t, N(t));
}

static void test_host_classes(void **state)
{
	(void)state;
	const struct table t[] = {
		TABLE("classes", class_routes, class_cases),
		TABLE("classes-reversed", class_rev_routes, class_cases),
	};
	run_tables(t, N(t));
}

static void test_path_prefix(void **state)
{
	(void)state;
	const struct table t[] = {
		TABLE("prefix", prefix_routes, prefix_cases),
		TABLE("segment", seg_routes, seg_cases),
		TABLE("segment-slash", seg_slash_routes, seg_slash_cases),
		TABLE("root", root_routes, root_cases),
		TABLE("default-path", default_path_routes, default_path_cases),
		TABLE("no-match", nomatch_routes, nomatch_cases),
	};
	run_tables(t, N(t));
}

static void test_absolute_form(void **state)
{
	(void)state;
	const struct table t[] = {
		TABLE("absolute", abs_routes, abs_cases),
		TABLE("absolute-api", abs_api_routes, abs_api_cases),
	};
	run_tables(t, N(t));
}

static void test_absolute_form_authority_end(void **state)
{
	(void)state;
	const struct table t[] = {
		TABLE("absolute-authority", abs_routes, abs_authority_cases),
		TABLE("absolute-api-authority", abs_api_routes, abs_api_authority_cases),
	};
	run_tables(t, N(t));
}

static void test_empty_router(void **state)
{
	(void)state;
	static const struct match_case cases[] = {
		{ "shop.test", "/", -1 }, { NULL, "/", -1 }, { "h", "http://h/", -1 }, { "h", "", -1 },
	};
	struct config cfg;
	struct router r;

	config_from_specs(&cfg, NULL, NULL, 0);
	assert_int_equal(router_build(&r, &cfg), 0);
	assert_int_equal(r.nroutes, 0);
	for (size_t i = 0; i < N(cases); i++) {
		const struct match_case *c = &cases[i];
		long got = router_match(&r, c->host, c->host ? strlen(c->host) : 0, c->target, strlen(c->target));
		assert_int_equal(got, c->want);
	}
	router_release(&r);
	assert_null(r.routes);
	assert_int_equal(r.nroutes, 0);
	router_release(&r); /* twice is harmless */
}

/* The built table mirrors the config: kinds, wildcard suffix kept with its
 * dot, default path, copies (not aliases) of the strings. */
static void test_build_release(void **state)
{
	(void)state;
	static const struct route_spec specs[] = {
		{ "shop.test", "/api", 3 },
		{ "*.shop.test", NULL, 1 },
		{ NULL, "/x/", 0 },
	};
	struct config_route storage[N(specs)];
	struct config cfg;
	struct router r;

	config_from_specs(&cfg, storage, specs, N(specs));
	assert_int_equal(router_build(&r, &cfg), 0);
	assert_int_equal(r.nroutes, 3);

	assert_int_equal(r.routes[0].host_kind, ROUTER_HOST_EXACT);
	assert_string_equal(r.routes[0].host, "shop.test");
	assert_int_equal(r.routes[0].host_len, 9);
	assert_ptr_not_equal(r.routes[0].host, specs[0].host);
	assert_string_equal(r.routes[0].path, "/api");
	assert_int_equal(r.routes[0].path_len, 4);
	assert_int_equal(r.routes[0].service, 3);

	assert_int_equal(r.routes[1].host_kind, ROUTER_HOST_WILDCARD);
	assert_string_equal(r.routes[1].host, ".shop.test");
	assert_int_equal(r.routes[1].host_len, 10);
	assert_string_equal(r.routes[1].path, "/");
	assert_int_equal(r.routes[1].path_len, 1);
	assert_int_equal(r.routes[1].service, 1);

	assert_int_equal(r.routes[2].host_kind, ROUTER_HOST_ANY);
	assert_null(r.routes[2].host);
	assert_string_equal(r.routes[2].path, "/x/");
	assert_int_equal(r.routes[2].service, 0);

	router_release(&r);
	assert_null(r.routes);
	assert_int_equal(r.nroutes, 0);
}

/* Every strdup in router_build failing in turn: -ENOMEM, r untouched, and
 * nothing leaked (valgrind checks the latter). */
static void test_build_out_of_memory(void **state)
{
	(void)state;
	static const struct route_spec specs[] = {
		{ "shop.test", "/api", 0 },
		{ NULL, "/", 1 },
		{ "*.shop.test", "/x", 2 },
	};
	struct config_route storage[N(specs)];
	struct config cfg;
	int k, calls = 0;

	config_from_specs(&cfg, storage, specs, N(specs));
	/* 5 strdups: host+path, path, host+path */
	for (k = 1;; k++) {
		struct router sentinel = { (struct router_route *)&sentinel, 777, NULL, 0 };
		struct router r = sentinel;
		int ret;

		strdup_fail_at = k;
		ret = router_build(&r, &cfg);
		if (strdup_fail_at > 0) { /* the k-th strdup never came: success */
			strdup_fail_at = 0;
			assert_int_equal(ret, 0);
			router_release(&r);
			break;
		}
		calls++;
		if (ret != -ENOMEM)
			print_error("strdup #%d failing: router_build returned %d, want %d\n", k, ret, -ENOMEM);
		assert_int_equal(ret, -ENOMEM);
		assert_ptr_equal(r.routes, sentinel.routes);
		assert_int_equal(r.nroutes, sentinel.nroutes);
	}
	assert_int_equal(calls, 5);
}

/* --- route classes --- */

struct class_spec {
	const char *method; /* NULL: any */
	const char *path;
};

struct class_case {
	const char *method;
	const char *target;
	long want;          /* class index, -1: none */
};

/* Classes of service 1 (service 0 has none, service 2 others). */
static const struct class_spec shop_classes[] = {
	{ "POST", "/api/checkout" },   /* 0 */
	{ NULL, "/api/cart" },         /* 1 */
	{ NULL, "/api" },              /* 2 */
	{ "GET", "/api/cart" },        /* 3: the same prefix as 1, with a method: wins a tie */
	{ NULL, "/static/" },          /* 4: only below /static/ */
	{ "DELETE", "/" },             /* 5 */
};
static const struct class_spec other_classes[] = {
	{ NULL, "/" },
};

static const struct class_case shop_cases[] = {
	{ "POST", "/api/checkout", 0 },
	{ "POST", "/api/checkout/", 0 },
	{ "POST", "/api/checkout?step=2", 0 },
	{ "POST", "/api/checkout#x", 0 },
	{ "GET", "/api/checkout", 2 },          /* the method differs: the longest prefix of the rest */
	{ "post", "/api/checkout", 2 },         /* methods are case-sensitive */
	{ "POST", "/api/checkouts", 2 },        /* not at a segment boundary */
	{ "POST", "/api/cart", 1 },
	{ "GET", "/api/cart", 3 },              /* tie on the prefix: the class naming the method */
	{ "GET", "/api/cart/3/items", 3 },
	{ "HEAD", "/api/cart?x=1", 1 },
	{ "PUT", "/api/carts", 2 },
	{ "PUT", "/api", 2 },
	{ "PUT", "/apix", -1 },
	{ "GET", "/static/app.js", 4 },
	{ "GET", "/static", -1 },               /* "/static/" only below it */
	{ "DELETE", "/static", 5 },
	{ "DELETE", "/api/cart", 1 },           /* longer prefix beats the method */
	{ "GET", "/", -1 },
	{ "GET", "*", -1 },                     /* asterisk-form: no path */
	{ "POST", "http://shop.test/api/checkout", 0 },  /* absolute form: on its path */
	{ "POST", "http://shop.test:8080/api/checkout?x", 0 },
	{ "DELETE", "http://shop.test", 5 },    /* authority alone: "/" */
	{ "GET", "", -1 },
};

static void fill_classes(struct config_route_class *out, const struct class_spec *spec, size_t n)
{
	char name[64];

	for (size_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s%s%s", spec[i].method ? spec[i].method : "",
			 spec[i].method ? " " : "", spec[i].path);
		out[i] = (struct config_route_class){ .name = strdup(name), .method = (char *)spec[i].method,
						      .path_prefix = (char *)spec[i].path };
	}
}

/* Every row; the classes are copies; a service without classes, an index
 * out of range and a configuration without any class match nothing. */
static void test_classes(void **state)
{
	(void)state;
	struct config_route_class shop[N(shop_classes)], other[N(other_classes)];
	struct config_service services[3] = { 0 };
	struct config cfg = { 0 };
	struct router r;
	int failures = 0;

	fill_classes(shop, shop_classes, N(shop_classes));
	fill_classes(other, other_classes, N(other_classes));
	services[1].route_classes = shop;
	services[1].nroute_classes = N(shop);
	services[2].route_classes = other;
	services[2].nroute_classes = N(other);
	cfg.services = services;
	cfg.nservices = 3;
	assert_int_equal(router_build(&r, &cfg), 0);
	assert_true(router_has_classes(&r));
	assert_int_equal(r.classes[1].n, N(shop_classes));
	assert_string_equal(r.classes[1].v[0].name, "POST /api/checkout");
	assert_ptr_not_equal(r.classes[1].v[0].name, shop[0].name);
	assert_ptr_not_equal(r.classes[1].v[0].method, shop[0].method);
	assert_null(r.classes[1].v[1].method);
	assert_int_equal(r.classes[1].v[4].path_len, 8);
	for (size_t i = 0; i < N(shop_cases); i++) {
		const struct class_case *c = &shop_cases[i];
		long got = router_class_match(&r, 1, c->method, c->target, strlen(c->target));
		if (got != c->want) {
			print_error("classes[%zu]: %s \"%s\": got %ld, want %ld\n", i, c->method, c->target, got, c->want);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
	assert_int_equal(router_class_match(&r, 0, "POST", "/api/checkout", 13), -1);
	assert_int_equal(router_class_match(&r, 2, "GET", "/anything", 9), 0);
	assert_int_equal(router_class_match(&r, 3, "GET", "/", 1), -1);
	router_release(&r);
	assert_null(r.classes);

	/* no service with a class: none kept, nothing matches */
	services[1].nroute_classes = 0;
	services[2].nroute_classes = 0;
	assert_int_equal(router_build(&r, &cfg), 0);
	assert_false(router_has_classes(&r));
	assert_int_equal(router_class_match(&r, 1, "POST", "/api/checkout", 13), -1);
	router_release(&r);

	/* every strdup of the classes failing in turn: -ENOMEM, nothing leaked */
	services[1].nroute_classes = 2; /* "POST /api/checkout" (3 copies), "/api/cart" (2) */
	for (int k = 1; k <= 5; k++) {
		struct router untouched = { (struct router_route *)&untouched, 777, NULL, 0 };
		r = untouched;
		strdup_fail_at = k;
		assert_int_equal(router_build(&r, &cfg), -ENOMEM);
		assert_int_equal(strdup_fail_at, 0);
		assert_ptr_equal(r.routes, untouched.routes);
	}
	strdup_fail_at = 6;
	assert_int_equal(router_build(&r, &cfg), 0);
	strdup_fail_at = 0;
	router_release(&r);
	for (size_t i = 0; i < N(shop); i++)
		free(shop[i].name);
	for (size_t i = 0; i < N(other); i++)
		free(other[i].name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_host),
		cmocka_unit_test(test_wildcard),
		cmocka_unit_test(test_host_classes),
		cmocka_unit_test(test_path_prefix),
		cmocka_unit_test(test_absolute_form),
		cmocka_unit_test(test_absolute_form_authority_end),
		cmocka_unit_test(test_empty_router),
		cmocka_unit_test(test_build_release),
		cmocka_unit_test(test_build_out_of_memory),
		cmocka_unit_test(test_classes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
