/* metrics-internal.h - what metrics.c (the registry) and render.c (its
 * exposition) share. */
#pragma once
#include "metrics/metrics-t.h"

/* The swept instances' totals of (service, version), or NULL. */
struct metrics_version *version_find(const struct metrics *m, const char *service, const char *version);
/* The per-service totals of SERVICE, or NULL. */
struct metrics_service *service_find(const struct metrics *m, const char *service);
