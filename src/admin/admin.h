/* admin.h - the admin HTTP listener on loopback: /metrics, /healthz.
 * (The Unix-socket admin API for the CLI comes with the deploy engine.) */
#pragma once
#include "proxy/proxy-t.h"

/* Open, move or close the admin listener to match p->cfg->admin.
 * Returns 0 or -errno (logged); on failure the old listener stays. */
int admin_apply(struct proxy *p);
/* Free admin connections closed during this loop iteration. */
void admin_reap(struct proxy *p);
/* Close the listener and every admin connection. */
void admin_close(struct proxy *p);
