/* shop.h - the demo shop service: what its parts share.
 *
 * One source tree, three releases: SHOP_VERSION ("1.0.0", "1.1.0", "1.2.0")
 * is set by the build and selects the release's behaviour (shop_features). */
#ifndef SHOP_H
#define SHOP_H

#include <stdatomic.h>
#include <stdbool.h>

#ifndef SHOP_VERSION
#error "build with -DSHOP_VERSION=\"x.y.z\""
#endif

/* What this release does differently (set once at start-up from SHOP_VERSION). */
struct shop_features {
    bool badges;        /* >= 1.1.0: catalog items carry "badge", richer storefront */
    bool faulty;        /* 1.2.0: every 4th checkout fails, API answers 400 ms late */
    int schema;         /* highest schema version this release migrates to */
};

extern struct shop_features shop_features;
extern const char *shop_db_path;
extern char shop_started_at[40];            /* ISO 8601 UTC, with milliseconds */
extern atomic_bool shop_stopping;           /* SIGTERM seen: finish in-flight work, take no more */
extern int shop_wake_fd;                    /* readable once shop_stopping is set */

double shop_now_ms(void);                   /* monotonic clock, milliseconds */
void shop_sleep_ms(long ms);                /* sleeps the whole time, even through signals */
void shop_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
