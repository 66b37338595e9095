/* demo.c - `cutover demo`: the shop, shipped three times under load.
 *
 * Starts a daemon on a generated configuration (free loopback ports, a
 * state directory of its own), puts the three shop releases in the store,
 * deploys 1.0.0, starts clients that check every response, ships 1.1.0 as a
 * canary, 25 % then all (must cost zero failed requests), ships the faulty
 * 1.2.0 (its canary step must be aborted by the daemon itself), then prints
 * what happened.  Everything it
 * starts it stops, by PID; --keep leaves the daemon running.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>
#include "cli/cli.h"
#include "admin/client.h"
#include "base/util.h"
#include "http/parser.h"
#include "store/store.h"
#include "state/state.h"
#include "supervisor/supervisor.h"

#define DEMO_CLIENTS 6

static const char *const versions[] = { "1.0.0", "1.1.0", "1.2.0" };

struct load {
	uint16_t port;
	atomic_bool stop;
	atomic_ullong requests, failed;
	pthread_t threads[DEMO_CLIENTS];
	char last_error[160];
	pthread_mutex_t lock;
};

static struct load demo_load;
static bool quiet;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	if (quiet)
		return;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

/* One request on *fd (reconnecting if needed); reads the whole response.
 * Returns the status, or -1 on a transport failure (*fd closed). */
static int roundtrip(int *fd, uint16_t port, const char *path, size_t *body_len)
{
	char req[256], buf[65536];
	struct http_response *resp = NULL;
	struct http_error err;
	size_t len = 0;
	int n, rc = -1;

	if (*fd < 0) {
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
		struct timeval tv = { .tv_sec = 30 };
		int one = 1;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (*fd < 0)
			return -1;
		setsockopt(*fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(*fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(*fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
			goto fail;
	}
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: shop.demo\r\nUser-Agent: cutover-demo\r\n\r\n", path);
	if (send(*fd, req, (size_t)n, MSG_NOSIGNAL) != n)
		goto fail;
	resp = malloc(sizeof(*resp));
	if (!resp)
		goto fail;
	for (;;) {
		ssize_t r = recv(*fd, buf + len, sizeof(buf) - len, 0);
		if (r <= 0)
			goto fail;
		len += (size_t)r;
		rc = http_response_parse(buf, len, NULL, HTTP_METHOD_GET, resp, &err);
		if (rc < 0)
			goto fail;
		if (rc > 0)
			break;
		if (len == sizeof(buf))
			goto fail;
	}
	{
		uint64_t want = resp->framing == HTTP_FRAMING_LENGTH ? resp->content_length : 0;
		uint64_t have = len - (size_t)rc;
		while (have < want) {
			ssize_t r = recv(*fd, buf, sizeof(buf), 0);
			if (r <= 0)
				goto fail;
			have += (uint64_t)r;
		}
		if (have != want || resp->framing == HTTP_FRAMING_CHUNKED || resp->framing == HTTP_FRAMING_CLOSE)
			goto fail; /* the shop always sends Content-Length; anything else is wrong */
		*body_len = (size_t)have;
	}
	rc = resp->status;
	if (!(resp->flags & HTTP_MSG_KEEP_ALIVE)) {
		close(*fd);
		*fd = -1;
	}
	free(resp);
	return rc;
fail:
	free(resp);
	close(*fd);
	*fd = -1;
	return -1;
}

static void *load_main(void *arg)
{
	struct load *l = &demo_load;
	static const char *const paths[] = { "/api/catalog", "/api/catalog/2", "/api/slow?ms=150",
					     "/api/download?mb=1", "/api/catalog", "/version" };
	long id = (long)arg, n = 0;
	int fd = -1;

	while (!atomic_load(&l->stop)) {
		const char *path = paths[(size_t)(n++ + id) % (sizeof(paths) / sizeof(paths[0]))];
		size_t body = 0;
		int status = roundtrip(&fd, l->port, path, &body);
		bool ok = status == 200 && (strncmp(path, "/api/download", 13) || body == 1 << 20);
		atomic_fetch_add(&l->requests, 1);
		if (!ok) {
			atomic_fetch_add(&l->failed, 1);
			pthread_mutex_lock(&l->lock);
			snprintf(l->last_error, sizeof(l->last_error), "GET %s: %s %d", path,
				 status < 0 ? "connection failed or response incomplete" : "status", status);
			pthread_mutex_unlock(&l->lock);
		}
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* Follow a deployment through the API.  Returns its final JSON (caller
 * decrefs) or NULL (message printed). */
static json_t *deploy(const struct cli *c, const char *sock, const char *version)
{
	char body[128], path[64], *answer = NULL;
	json_t *dep = NULL;
	int status;
	time_t deadline = time(NULL) + 120;

	snprintf(body, sizeof(body), "{\"service\":\"shop\",\"version\":\"%s\"}", version);
	if (cli_call(c, sock, "POST", "/v1/deploy", body, &status, &answer))
		return NULL;
	dep = json_loads(answer, 0, NULL);
	free(answer);
	if (status != 202 || !dep) {
		cli_fail(c, EXIT_FAILED, NULL, "deploy %s refused (%d)", version, status);
		json_decref(dep);
		return NULL;
	}
	snprintf(path, sizeof(path), "/v1/deployments/%lld", (long long)json_integer_value(json_object_get(dep, "id")));
	while (!json_is_true(json_object_get(dep, "finished")) && time(NULL) < deadline) {
		usleep(100 * 1000);
		json_decref(dep);
		dep = NULL;
		if (cli_call(c, sock, "GET", path, NULL, &status, &answer))
			return NULL;
		dep = json_loads(answer, 0, NULL);
		free(answer);
		if (!dep) {
			cli_fail(c, EXIT_FAILED, NULL, "lost track of the deploy of %s", version);
			return NULL;
		}
	}
	return dep;
}

/* A figure recorded in the deployment's events (switch_ms, rollback_ms). */
static double event_figure(json_t *dep, const char *key)
{
	json_t *e;
	size_t i;

	json_array_foreach(json_object_get(dep, "events"), i, e)
		if (json_is_number(json_object_get(e, key)))
			return json_number_value(json_object_get(e, key));
	return -1;
}

static void print_deploy(json_t *dep)
{
	json_t *e;
	size_t i;

	json_array_foreach(json_object_get(dep, "events"), i, e) {
		char line[1024];
		cli_event_line(e, line, sizeof(line));
		say("    %s\n", line);
	}
}

static int write_config(const char *dir, uint16_t port, uint16_t admin, char *path, size_t pathlen)
{
	FILE *f;

	snprintf(path, pathlen, "%s/cutover.yml", dir);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f,
		"# generated by `cutover demo`\n"
		"state_dir: %s/state\n"
		"listen: 127.0.0.1:%u\n"
		"admin: 127.0.0.1:%u\n"
		"log:\n  access: %s/access.log\n"
		"services:\n"
		"  shop:\n"
		"    run: ${RELEASE_DIR}/shop-${VERSION} --port ${PORT}\n"
		"    env:\n      SHOP_DB: %s/shop.db\n"
		"    health:\n      path: /health\n      interval: 200ms\n      timeout: 150ms\n"
		"    stop_grace: 10s\n"
		"    deploy:\n      strategy: canary\n      steps: 25%% 4s, 100%%\n"
		"      timeout: 30s\n      watch: 5s\n      rollback_window: 2m\n"
		"      max_error_rate: 2%%\n      max_p99: 300ms\n      min_requests: 20\n"
		"    routes:\n      - path: /\n",
		dir, port, admin, dir, dir);
	return fclose(f) == 0 ? 0 : -EIO;
}

static pid_t start_daemon(const char *dir, const char *cfg)
{
	char exe[PATH_MAX], log[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	pid_t pid;

	if (n < 0)
		return -1;
	exe[n] = 0;
	snprintf(log, sizeof(log), "%s/daemon.log", dir);
	pid = fork();
	if (pid == 0) {
		FILE *f = freopen(log, "a", stdout);
		if (f)
			dup2(fileno(stdout), 2);
		setpgid(0, 0); /* Ctrl-C on the demo is handled by the demo */
		execl(exe, exe, "daemon", "--config", cfg, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static bool socket_ready(const char *sock)
{
	char err[256], *answer = NULL;
	int status;

	for (int i = 0; i < 100; i++) {
		if (admin_client_call(sock, "GET", "/v1/status", NULL, &status, &answer, err, sizeof(err)) == 0) {
			free(answer);
			return status == 200;
		}
		usleep(50 * 1000);
	}
	return false;
}

/* Stop the demo's daemon and the shop instances it runs (SIGTERM alone
 * would leave them running for a next daemon). */
static void stop_daemon(pid_t pid, const char *sock)
{
	char err[256], *answer = NULL;
	int st, status;

	if (pid <= 0)
		return;
	if (admin_client_call(sock, "POST", "/v1/shutdown", "{\"stop_services\": true}", &status, &answer, err,
			      sizeof(err)) < 0 || status != 202)
		kill(pid, SIGTERM);
	free(answer);
	for (int i = 0; i < 300; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return;
		usleep(100 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
}

struct demo_options {
	bool keep;                    /* --keep */
	bool shop_dir_given;
	char shop_dir[PATH_MAX];      /* --shop-dir, else examples/shop next to the binary */
};

static int demo_option(struct cli *c, int opt, const char *arg)
{
	struct demo_options *o = c->data;
	struct stat st;

	switch (opt) {
	case 'k':
		o->keep = true;
		return -1;
	case 's':
		errno = 0;
		if (stat(arg, &st) < 0 || !S_ISDIR(st.st_mode))
			return cli_fail(c, EXIT_USAGE, NULL,
					"--shop-dir %s: %s (the directory of shop-1.0.0, shop-1.1.0 and shop-1.2.0, "
					"e.g. build/examples/shop)",
					arg, errno ? strerror(errno) : "not a directory");
		snprintf(o->shop_dir, sizeof(o->shop_dir), "%s", arg);
		o->shop_dir_given = true;
		return -1;
	}
	return EXIT_USAGE;
}

/* One run of the demo: what it made and started, so that it can be
 * reported and undone. */
struct demo {
	struct cli *c;
	bool json, keep;
	const char *shop_dir;
	char dir[sizeof("/tmp/cutover-demo-XXXXXX")]; /* the work dir, made by mkdtemp() */
	char cfg[PATH_MAX], sock[PATH_MAX];
	uint16_t port, admin;
	pid_t daemon_pid;             /* -1 until started */
	json_t *deps[3];              /* the final JSON of each deploy (owned) */
	uint64_t t0;                  /* when the demo started (ms) */
};

/* Fill in o->shop_dir (examples/shop next to this binary unless --shop-dir
 * gave it) and check that the three shop executables are there.  Returns
 * EXIT_OK, or the exit code after cli_fail(): EXIT_USAGE for a --shop-dir
 * without them, EXIT_FAILED for a missing build. */
static int find_shop(const struct cli *c, struct demo_options *o)
{
	char *shop_dir = o->shop_dir;

	if (!shop_dir[0]) {
		char exe[PATH_MAX - 32]; /* room for "/examples/shop" in shop_dir */
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n > 0) {
			exe[n] = 0;
			*strrchr(exe, '/') = 0;
			snprintf(shop_dir, sizeof(o->shop_dir), "%s/examples/shop", exe);
		}
	}
	for (size_t i = 0; i < 3; i++) {
		char p[PATH_MAX + 16];
		snprintf(p, sizeof(p), "%s/shop-%s", shop_dir, versions[i]);
		if (access(p, X_OK) < 0 && o->shop_dir_given)
			return cli_fail(c, EXIT_USAGE, NULL, "--shop-dir %s: no executable shop-%s in it", shop_dir,
					versions[i]);
		if (access(p, X_OK) < 0)
			return cli_fail(c, EXIT_FAILED, NULL,
					"%s not found: build the project first (`make`) or give --shop-dir", p);
	}
	return EXIT_OK;
}

/* Make the work dir, pick two free loopback ports (proxy and admin) and
 * write the daemon's configuration there.  Returns EXIT_OK, or EXIT_FAILED
 * after cli_fail() (the work dir, if made, stays). */
static int prepare_work_dir(struct demo *d)
{
	if (!mkdtemp(d->dir) || sup_free_port(&d->port) < 0 || sup_free_port(&d->admin) < 0 ||
	    write_config(d->dir, d->port, d->admin, d->cfg, sizeof(d->cfg)) < 0) {
		return cli_fail(d->c, EXIT_FAILED, NULL, "cannot prepare %s: %s", d->dir, strerror(errno));
	}
	snprintf(d->sock, sizeof(d->sock), "%s/state/admin.sock", d->dir);
	return EXIT_OK;
}

/* The releases: put the three shop versions in the store of the work
 * dir's state, as immutable artifacts.  Returns EXIT_OK, or EXIT_FAILED
 * after cli_fail(); the state is closed either way. */
static int add_releases(const struct demo *d)
{
	char statedir[PATH_MAX], store[PATH_MAX + 16], err[1024];
	struct state *st = NULL;
	int rc = EXIT_OK;

	snprintf(statedir, sizeof(statedir), "%s/state", d->dir);
	snprintf(store, sizeof(store), "%s/releases", statedir);
	if (state_open(statedir, &st, err, sizeof(err)) < 0)
		return cli_fail(d->c, EXIT_FAILED, NULL, "%s", err);
	for (size_t i = 0; i < 3; i++) {
		char src[PATH_MAX + 16];
		struct store_result rel = { 0 };
		snprintf(src, sizeof(src), "%s/shop-%s", d->shop_dir, versions[i]);
		if (store_add(st, store, "shop", versions[i], src, &rel, err, sizeof(err)) < 0) {
			rc = cli_fail(d->c, EXIT_FAILED, NULL, "release add %s: %s", versions[i], err);
			break;
		}
		say("   release shop %s  sha256 %.12s\n", versions[i], rel.release.digest);
		store_result_clear(&rel);
	}
	state_close(st);
	return rc;
}

/* Start the daemon on the work dir's configuration and wait for its admin
 * socket.  d->daemon_pid is set whenever a child was forked, so that
 * finish() stops it.  Returns EXIT_OK, or EXIT_FAILED after cli_fail(). */
static int launch_daemon(struct demo *d)
{
	d->daemon_pid = start_daemon(d->dir, d->cfg);
	if (d->daemon_pid < 0 || !socket_ready(d->sock))
		return cli_fail(d->c, EXIT_FAILED, NULL, "the daemon did not start; see %s/daemon.log", d->dir);
	say("   daemon pid %d: proxy http://127.0.0.1:%u/  metrics http://127.0.0.1:%u/metrics\n\n",
	    (int)d->daemon_pid, d->port, d->admin);
	return EXIT_OK;
}

/* Start the DEMO_CLIENTS checking clients on the proxy at PORT, and give
 * them a second to get going.  load_stop() ends them. */
static void load_start(uint16_t port)
{
	demo_load.port = port;
	pthread_mutex_init(&demo_load.lock, NULL);
	for (long i = 0; i < DEMO_CLIENTS; i++)
		pthread_create(&demo_load.threads[i], NULL, load_main, (void *)i);
	say("\n== load: %d clients checking every response (catalog, slow requests, 1 MiB downloads)\n",
	    DEMO_CLIENTS);
	sleep(1);
}

static void load_stop(void)
{
	atomic_store(&demo_load.stop, true);
	for (int i = 0; i < DEMO_CLIENTS; i++)
		pthread_join(demo_load.threads[i], NULL);
}

/* The two acts under load: ship 1.1.0 (which must cost no request), then
 * the faulty 1.2.0 (which the daemon must roll back).  Keeps each deploy's
 * final JSON in d->deps.  Returns EXIT_OK when both deploys finished
 * (whatever their outcome; the summary judges), else EXIT_FAILED with the
 * message printed. */
static int ship_under_load(struct demo *d)
{
	say("\n== deploy shop 1.1.0 under load\n");
	d->deps[1] = deploy(d->c, d->sock, "1.1.0");
	if (!d->deps[1])
		return EXIT_FAILED;
	print_deploy(d->deps[1]);
	say("   failed requests so far: %llu of %llu\n", (unsigned long long)atomic_load(&demo_load.failed),
	    (unsigned long long)atomic_load(&demo_load.requests));

	say("\n== deploy shop 1.2.0 under load (faulty: slow answers)\n");
	d->deps[2] = deploy(d->c, d->sock, "1.2.0");
	if (!d->deps[2])
		return EXIT_FAILED;
	print_deploy(d->deps[2]);
	sleep(1);
	return EXIT_OK;
}

/* The summary for a person, on stdout (nothing with --json). */
static void print_summary(const struct demo *d, unsigned long long requests, unsigned long long failed,
			  bool rolled)
{
	say("\n== summary (%.1f s)\n", (double)(time_now_ms() - d->t0) / 1000.0);
	say("   requests %llu, failed %llu%s%s\n", requests, failed, failed ? "  last: " : "",
	    failed ? demo_load.last_error : "");
	say("   deploys 3: 1.0.0 done, 1.1.0 %s, 1.2.0 %s\n",
	    json_string_value(json_object_get(d->deps[1], "phase")),
	    json_string_value(json_object_get(d->deps[2], "phase")));
	say("   switch %.3f ms at the proxy, automatic rollback %.3f ms\n",
	    event_figure(d->deps[1], "switch_ms"), event_figure(d->deps[2], "rollback_ms"));
	if (rolled)
		say("   why: %s\n", json_string_value(json_object_get(d->deps[2], "reason")));
}

/* Judge the three finished deploys and the load (stopped): no failed
 * request, 1.1.0 done, 1.2.0 rolled back.  Prints the summary (one JSON
 * object with --json) and, if something went wrong, says what on stderr.
 * Returns EXIT_OK or EXIT_FAILED. */
static int summarize(const struct demo *d)
{
	unsigned long long requests = atomic_load(&demo_load.requests), failed = atomic_load(&demo_load.failed);
	bool rolled = !strcmp(json_string_value(json_object_get(d->deps[2], "phase")), "rolled-back");
	bool good = !strcmp(json_string_value(json_object_get(d->deps[1], "phase")), "done");
	const char *wrong = failed ? "requests failed during the deploys"
			    : !good ? "shop 1.1.0 was not deployed"
			    : !rolled ? "the faulty shop 1.2.0 was not rolled back" : NULL;
	const char *reason = json_string_value(json_object_get(d->deps[2], "reason"));
	json_t *summary = json_pack("{s:I, s:I, s:i, s:i, s:f, s:f, s:b, s:s, s:s}", "requests",
				   (json_int_t)requests, "failed", (json_int_t)failed, "deploys", 3, "rollbacks",
				   rolled ? 1 : 0, "switch_ms", event_figure(d->deps[1], "switch_ms"),
				   "rollback_ms", event_figure(d->deps[2], "rollback_ms"), "rolled_back_automatically",
				   rolled, "reason", reason ? reason : "", "work_dir", d->dir);
	int rc = wrong ? EXIT_FAILED : EXIT_OK;

	json_object_set_new(summary, "status_page", json_sprintf("http://127.0.0.1:%u/", d->admin));
	json_object_set_new(summary, "ok", json_boolean(!wrong));
	json_object_set_new(summary, "exit_code", json_integer(rc));
	if (wrong)
		json_object_set_new(summary, "error", json_string(wrong));
	if (d->json) {
		char *text = json_dumps(summary, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(4));
		puts(text ? text : "{}");
		free(text);
	} else {
		print_summary(d, requests, failed, rolled);
	}
	json_decref(summary);
	if (wrong)
		fprintf(stderr, "cutover demo: %s\n", wrong);
	return rc;
}

/* The show, once the work dir is ready: releases, daemon, 1.0.0, load,
 * the two acts under load, the summary.  Returns the exit code (failures
 * reported); the load is stopped, the daemon is left to finish(). */
static int run_demo(struct demo *d)
{
	int rc;

	if (add_releases(d) != EXIT_OK || launch_daemon(d) != EXIT_OK)
		return EXIT_FAILED;

	say("== deploy shop 1.0.0 (first version)\n");
	d->deps[0] = deploy(d->c, d->sock, "1.0.0");
	if (!d->deps[0])
		return EXIT_FAILED;
	print_deploy(d->deps[0]);

	say("\n   the status page, live while the demo runs: http://127.0.0.1:%u/\n", d->admin);
	load_start(d->port);
	rc = ship_under_load(d);
	load_stop();
	if (rc == EXIT_OK)
		rc = summarize(d);
	return rc;
}

/* Undo what the demo made: drop the deploys' JSON; with --keep and
 * success, leave the daemon and the work dir running and say how to reach
 * and stop them; otherwise stop the daemon, then remove the work dir on
 * success or keep it for inspection on failure.  Returns RC. */
static int finish(struct demo *d, int rc)
{
	for (int i = 0; i < 3; i++) {
		json_decref(d->deps[i]);
		d->deps[i] = NULL;
	}
	if (d->keep && rc == EXIT_OK && d->daemon_pid > 0) {
		say("\n   still running (--keep): the shop http://127.0.0.1:%u/, the status page http://127.0.0.1:%u/,\n"
		    "   `cutover status --socket %s`\n"
		    "   stop it (and the shop) with: cutover shutdown --stop-services --socket %s\n",
		    d->port, d->admin, d->sock, d->sock);
		return rc;
	}
	stop_daemon(d->daemon_pid, d->sock);
	if (rc == EXIT_OK) {
		char cmd[PATH_MAX + 16];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", d->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cutover demo: could not remove %s\n", d->dir);
	} else {
		fprintf(stderr, "cutover demo: kept %s for inspection (daemon.log, state/logs/)\n", d->dir);
	}
	return rc;
}

int cli_demo(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "keep", no_argument, NULL, 'k' },
		{ "shop-dir", required_argument, NULL, 's' },
		{ 0 },
	};
	struct demo_options o = { 0 };
	struct cli c = {
		.verb = "demo",
		.options = opts,
		.shortopts = "ks:",
		.option = demo_option,
		.data = &o,
	};
	struct demo d = {
		.c = &c,
		.dir = "/tmp/cutover-demo-XXXXXX",
		.daemon_pid = -1,
		.t0 = time_now_ms(),
	};
	int rc = cli_parse(&c, argc, argv);

	if (rc >= 0)
		return rc;
	d.json = c.json;
	d.keep = o.keep;
	quiet = d.json;
	rc = find_shop(&c, &o);
	if (rc != EXIT_OK)
		return rc;
	d.shop_dir = o.shop_dir;
	rc = prepare_work_dir(&d);
	if (rc != EXIT_OK)
		return rc;
	say("== cutover demo: the shop, shipped three times under load\n   work dir %s\n\n", d.dir);
	return finish(&d, run_demo(&d));
}
