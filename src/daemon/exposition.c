/* exposition.c - the daemon's own families of /metrics (the admin hook
 * `metrics`): what it is built as, the free space where it writes (the
 * state directory and the release store), whether it can read its secrets
 * identity, and the alert limits of each service (services.NAME.alerts).
 *
 * Measured at each scrape, on the loop thread: a statvfs() of two
 * directories and, when secrets are configured, reading the identity file
 * (a few hundred bytes, no key derivation), as the proxy reads /proc for
 * its process families.  The text is written by metrics_host_render().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include "config/config.h"
#include "daemon/daemon-internal.h"
#include "metrics/metrics.h"
#include "secrets/secrets.h"

_Static_assert(CONFIG_ALERT_RATE_OFF == UINT32_MAX, "an alert limit that is off is left out the same way");

/* The file system under path: 0 with *disk filled (dir as its label), or
 * -errno (path missing: nothing to say). */
static int disk_measure(const char *path, const char *dir, struct metrics_disk *disk)
{
	struct statvfs st;

	if (statvfs(path, &st) < 0)
		return -errno;
	disk->dir = dir;
	disk->free_bytes = (uint64_t)st.f_bavail * st.f_frsize;
	disk->size_bytes = (uint64_t)st.f_blocks * st.f_frsize;
	return 0;
}

/* Whether this daemon uses secrets: an identity and a secrets file that
 * exists, or a service or a webhook that needs a secret (then a missing
 * file is a problem too). */
static bool secrets_configured(const struct config *cfg)
{
	if (!cfg->secrets.identity)
		return false;
	if (cfg->secrets.file && access(cfg->secrets.file, F_OK) == 0)
		return true;
	for (size_t i = 0; i < cfg->nservices; i++)
		if (cfg->services[i].nsecrets)
			return true;
	for (size_t i = 0; i < cfg->notifications.nwebhooks; i++)
		if (cfg->notifications.webhooks[i].url_secret)
			return true;
	return false;
}

/* 1 when the identity file can be read as a key (with its mode 0600, as
 * the deployer reads it), 0 when it cannot, -1 when no secrets are used. */
static int identity_readable(const struct config *cfg)
{
	struct age_identity id = { 0 };
	char err[512];

	if (!secrets_configured(cfg))
		return -1;
	if (age_identity_read(cfg->secrets.identity, &id, err, sizeof(err)) < 0)
		return 0;
	age_identity_release(&id);
	return 1;
}

char *daemon_metrics(void *data, size_t *len)
{
	struct daemon *d = data;
	const struct config *cfg = d->cfg;
	struct metrics_disk disks[2];
	struct metrics_alert_limits *limits = calloc(cfg->nservices ? cfg->nservices : 1, sizeof(*limits));
	struct metrics_host host = { .version = CUTOVER_VERSION, .disks = disks, .identity_readable = -1 };
	char store[4200];
	char *text;

	if (!limits)
		return NULL;
	if (cfg->state_dir) {
		/* the store is created with its first release: until then, where it will be */
		snprintf(store, sizeof(store), "%s/releases", cfg->state_dir);
		if (disk_measure(cfg->state_dir, "state", &disks[host.ndisks]) == 0)
			host.ndisks++;
		if (disk_measure(store, "store", &disks[host.ndisks]) == 0 ||
		    disk_measure(cfg->state_dir, "store", &disks[host.ndisks]) == 0)
			host.ndisks++;
	}
	host.identity_readable = identity_readable(cfg);
	for (size_t i = 0; i < cfg->nservices; i++)
		limits[i] = (struct metrics_alert_limits){
			.service = cfg->services[i].name,
			.max_error_rate_permille = cfg->services[i].alerts.max_error_rate_permille,
			.max_p99_ms = cfg->services[i].alerts.max_p99_ms,
		};
	host.limits = limits;
	host.nlimits = cfg->nservices;
	text = metrics_host_render(&host, len);
	free(limits);
	return text;
}
