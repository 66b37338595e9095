/* daemon-internal.h - what the files of src/daemon/ share: daemon.c (the
 * parts, start-up, signals, shutdown), upgrade.c (handing the sockets to a
 * new binary), systemd.c (notify, watchdog, socket activation) and
 * exposition.c (its own families of /metrics). */
#pragma once
#include <jansson.h>
#include "daemon/daemon-t.h"

/* --- daemon.c --- */
/* Start the deploy side (state, worker, supervisor, deployer, recovery).
 * Returns 0 or -errno (logged; nothing is left). */
int deploy_side_start(struct daemon *d);
/* Stop and free it; stop_instances false leaves them running (for the next
 * daemon, or the new binary of an upgrade). */
void deploy_side_stop(struct daemon *d, bool stop_instances);
/* Drain and exit (SIGTERM, POST /v1/shutdown). */
void daemon_shutdown(struct daemon *d, bool stop_services, const char *why);
bool daemon_has_managed(const struct daemon *d);

/* --- exposition.c --- */
/* The admin hook `metrics` (data: the daemon): its own families of
 * /metrics, measured now.  Malloc'd text and its length, or NULL. */
char *daemon_metrics(void *data, size_t *len);

/* --- maintenance.c --- */
struct proxy_maintenance;
/* The admin API's maintenance hook (admin-t.h): record the change (m NULL:
 * off) through the state thread, tell the event streams.  Returns 0 or
 * -errno with err when the write cannot even be queued. */
int daemon_maintenance_changed(void *data, const char *service, const struct proxy_maintenance *m, uid_t who,
			       char *err, size_t errlen);
/* At start, before the loop: put the services the state says are in
 * maintenance back in it (logged).  Nothing for `cutover proxy`. */
void daemon_maintenance_load(struct daemon *d);
/* Finish the writes queued on maintenance's own state thread, if any,
 * and close its state. */
void daemon_maintenance_stop(struct daemon *d);

/* --- upgrade.c --- */
/* POST /v1/upgrade and SIGUSR2: start binary (NULL: d->self) with this
 * daemon's arguments and hand it the listening sockets.  Returns 0 once it
 * runs (the outcome comes later: upgrade_json), or -errno with err. */
int upgrade_start(struct daemon *d, const char *binary, uid_t who, char *err, size_t errlen);
json_t *upgrade_json(struct daemon *d);
/* At start: when CUTOVER_UPGRADE_FD names a hand-off socket, receive the
 * sockets into d->inherited.  Returns 0 (also when there is none) or
 * -errno (logged). */
int upgrade_receive(struct daemon *d);
/* Once listening and recovered: after an upgrade, tell systemd that this
 * is the main process now and ready (MAINPID, READY), then the previous
 * daemon, so it stops accepting and drains.  Returns true after an
 * upgrade (systemd was told), false otherwise. */
bool upgrade_ready(struct daemon *d);
void upgrade_release(struct daemon *d);

/* --- systemd.c --- */
/* Read NOTIFY_SOCKET and WATCHDOG_USEC, and under socket activation
 * (LISTEN_PID is us, LISTEN_FDS) add the sockets to d->inherited.  The
 * variables are removed from the environment (instances must not see
 * them).  Returns 0 or -errno (logged). */
int systemd_init(struct daemon *d);
/* Send one notify message ("READY=1", "STOPPING=1", ...); nothing when
 * not under systemd. */
void systemd_notify(struct daemon *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Start petting the watchdog from the loop (a stuck loop stops petting). */
void systemd_watchdog_start(struct daemon *d);
/* An upgrade handed the service to a new daemon (which told systemd
 * MAINPID): say nothing more to systemd, the watchdog included. */
void systemd_handed_over(struct daemon *d);
void systemd_release(struct daemon *d);
