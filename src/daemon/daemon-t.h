/* daemon-t.h - the composition root's type: everything one running cutover
 * is made of, owned in one place (daemon.h). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "admin/admin-t.h"
#include "config/config-t.h"
#include "loop/inherit-t.h"
#include "loop/loop-t.h"
#include "proxy/proxy-t.h"

struct state;
struct worker;
struct supervisor;
struct deployer;
struct release_runner;
struct notifier;

enum upgrade_state { UPGRADE_NONE, UPGRADE_RUNNING, UPGRADE_DONE, UPGRADE_FAILED };

/* `cutover upgrade` (upgrade.c): the new binary this daemon started, or
 * the daemon this one took over from. */
struct upgrade {
	enum upgrade_state state;
	pid_t pid;                         /* the new daemon */
	struct loop_io pid_io;             /* its pidfd: it exited */
	struct loop_io sock_io;            /* our end of the hand-off socket: "ready" */
	struct loop_timer timer;           /* timeouts.upgrade */
	char binary[4096];
	char error[512];                   /* why it failed */
	int64_t started_ms, finished_ms;   /* Unix ms */
	uid_t who;                         /* who asked (DEPLOY_BY_DAEMON-like -1: a signal) */
	pid_t from_pid;                    /* this daemon took over from from_pid (0: it did not) */
	int from_fd;                       /* ... the hand-off socket, until ready is sent (-1) */
};

/* systemd's side of the protocol (systemd.c): where to notify, how often
 * to pet the watchdog. */
struct systemd {
	char notify_path[108];             /* NOTIFY_SOCKET ("" when not under systemd) */
	uint64_t watchdog_ms;              /* WATCHDOG_USEC / 2 (0: no watchdog) */
	bool activated;                    /* the listening sockets are a socket unit's (LISTEN_FDS, or via an upgrade) */
	struct loop_timer watchdog;
};

struct daemon {
	struct loop loop;
	struct config *cfg;                /* the configuration in force (owned) */
	char **argv;                       /* the verb's arguments ("daemon", ...): for an upgrade (borrowed) */
	char self[4096];                   /* this binary's path, read at start (the default upgrade) */
	struct inherited inherited;        /* sockets from systemd or the previous daemon, until taken */
	struct proxy proxy;                /* the data plane; borrows cfg */
	struct admin admin;                /* admin listeners and API; borrows cfg, proxy, deployer */
	/* the deploy side, only when a service is managed (`run:`) */
	struct state *state;               /* SQLite, used on the worker thread only once the loop runs */
	struct worker *worker;             /* the state thread */
	struct supervisor *sup;            /* service instances */
	struct deployer *deployer;         /* deploys, rollbacks, recovery */
	struct release_runner *releases;   /* multi-service releases (src/release) */
	struct notifier *notifier;         /* webhooks on deploy and release events (NULL: libcurl failed) */
	/* maintenance mode without a deploy side (static targets only,
	 * maintenance.c): a state thread of its own, started at the first
	 * change, and the state it opens on that thread */
	struct worker *maint_worker;
	struct state *maint_state;         /* used on maint_worker only */
	struct loop_io signal_io;          /* SIGTERM, SIGINT, SIGHUP, SIGUSR2 */
	struct loop_timer hold_timer;      /* startup.unready queue: check the services starting */
	uint64_t hold_until_ms;            /* ... at most until then */
	struct upgrade upgrade;
	struct systemd systemd;
	bool shutting_down;                /* SIGTERM or POST /v1/shutdown: draining, refusing deploys */
	bool stop_services;                /* ... and stop every instance before exiting */
	bool drained;                      /* the proxy finished draining: the loop was stopped */
};
