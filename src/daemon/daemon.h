/* daemon.h - the composition root: `cutover daemon` and `cutover proxy`.
 *
 * The daemon owns the loop, the configuration, the proxy, the admin
 * listeners and API, and (when a service is managed) the state and its
 * worker thread, the supervisor and the deployer.  It wires them together,
 * handles the signals (SIGHUP reloads, SIGTERM/SIGINT drain, SIGUSR2
 * upgrades) and tears them down in order.  Nothing below it knows it
 * exists: the dependencies point one way (docs/internals/style.md).
 */
#pragma once
#include "daemon/daemon-t.h"

/* Run until SIGTERM/SIGINT (or POST /v1/shutdown, or a completed upgrade)
 * and the drain that follows.  Takes ownership of cfg in every case; argv
 * (the verb's arguments, NULL-terminated, borrowed) is what a new binary
 * is started with by `cutover upgrade`.  Returns 0 after a clean stop, or
 * -errno when the daemon could not start (the cause is logged) or its loop
 * failed. */
int daemon_run(struct config *cfg, char **argv);
