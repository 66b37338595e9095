/* daemon-t.h - the composition root's type: everything one running cutover
 * is made of, owned in one place (daemon.h). */
#pragma once
#include <stdbool.h>
#include "admin/admin-t.h"
#include "config/config-t.h"
#include "loop/loop-t.h"
#include "proxy/proxy-t.h"

struct state;
struct worker;
struct supervisor;
struct deployer;

struct daemon {
	struct loop loop;
	struct config *cfg;                /* the configuration in force (owned) */
	struct proxy proxy;                /* the data plane; borrows cfg */
	struct admin admin;                /* admin listeners and API; borrows cfg, proxy, deployer */
	/* the deploy side, only when a service is managed (`run:`) */
	struct state *state;               /* SQLite, used on the worker thread only once the loop runs */
	struct worker *worker;             /* the state thread */
	struct supervisor *sup;            /* service instances */
	struct deployer *deployer;         /* deploys, rollbacks, recovery */
	struct loop_io signal_io;          /* SIGTERM, SIGINT, SIGHUP */
	bool drained;                      /* the proxy finished draining: the loop was stopped */
};
