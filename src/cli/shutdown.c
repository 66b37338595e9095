/* shutdown.c - `cutover shutdown [--stop-services]`: stop the daemon on
 * purpose.  Without the flag it is SIGTERM: drain and exit, the service
 * instances keep running for the next daemon.  With it every instance is
 * stopped first (the machine goes down: the systemd unit's ExecStop). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <time.h>
#include <unistd.h>
#include "admin/client.h"
#include "base/util.h"
#include "cli/cli.h"

struct shutdown_opts {
	bool stop_services;
	bool no_wait;
};

static int shutdown_option(struct cli *c, int opt, const char *arg)
{
	struct shutdown_opts *o = c->data;

	if (opt == 'S')
		o->stop_services = true;
	else if (opt == 'W')
		o->no_wait = true;
	else
		return EXIT_USAGE;
	return -1;
}

/* Wait until process pid (the daemon, which answered on its Unix socket:
 * the same machine) has exited, up to limit_ms.  Not by polling the socket:
 * under socket activation systemd holds it, and a connection would start a
 * new daemon.  Exited means a zombie too: the daemon's parent (a shell, a
 * test, whoever started it) may reap it only after this command returns,
 * and kill(pid, 0) succeeds on a zombie.  A pidfd becomes readable at the
 * exit; kill() is the fallback where there is no pidfd.  Returns true once
 * it has exited. */
static bool wait_gone(pid_t pid, uint64_t limit_ms)
{
	uint64_t end = time_now_ms() + limit_ms;
	int fd = pidfd_open(pid, 0);

	if (fd < 0 && errno == ESRCH)
		return true;
	while (time_now_ms() < end) {
		if (fd >= 0) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			uint64_t left = end - time_now_ms();
			int n = poll(&p, 1, left > 1000 ? 1000 : (int)left);
			if (n > 0) {
				close(fd);
				return true;
			}
			continue;
		}
		if (kill(pid, 0) < 0 && errno == ESRCH)
			return true;
		nanosleep(&(struct timespec){ 0, 50 * 1000 * 1000 }, NULL);
	}
	if (fd >= 0)
		close(fd);
	return false;
}

int cli_shutdown(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "stop-services", no_argument, NULL, 'S' },
		{ "no-wait", no_argument, NULL, 'W' },
		{ 0 },
	};
	struct shutdown_opts o = { 0 };
	struct cli c = {
		.verb = "shutdown",
		.flags = CLI_CONFIG | CLI_SOCKET,
		.options = opts,
		.option = shutdown_option,
		.data = &o,
	};
	char *path = NULL, req[64];
	json_t *answer = NULL;
	int rc;

	rc = cli_parse(&c, argc, argv);
	if (rc >= 0)
		return rc;
	rc = cli_socket_path(&c, &path);
	if (rc)
		return rc;
	snprintf(req, sizeof(req), "{\"stop_services\": %s}", o.stop_services ? "true" : "false");
	rc = cli_post_accepted(&c, path, "/v1/shutdown", req, &answer);
	if (rc)
		goto out;
	if (!c.json)
		printf("daemon pid %lld: draining%s\n", (long long)json_integer_value(json_object_get(answer, "pid")),
		       o.stop_services ? ", then stopping every service instance" : "; the service instances keep running");
	/* the drain is bounded by timeouts.drain (30 s by default), the stop
	 * grace by the services' own: give it that and some */
	if (!o.no_wait && !wait_gone((pid_t)json_integer_value(json_object_get(answer, "pid")), 120 * 1000)) {
		rc = cli_fail(&c, EXIT_FAILED, NULL, "the daemon (pid %lld) still runs after 120 s",
			      (long long)json_integer_value(json_object_get(answer, "pid")));
		goto out;
	}
	if (c.json)
		cli_print_json(json_pack("{sb sb sI}", "ok", 1, "stop_services", o.stop_services, "pid",
					 json_integer_value(json_object_get(answer, "pid"))));
	else if (!o.no_wait)
		printf("stopped\n");
	rc = EXIT_OK;
out:
	json_decref(answer);
	free(path);
	return rc;
}
