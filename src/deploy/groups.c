/* groups.c - the versions of a managed service: each is a group of
 * instances (slots.c) with a share of the service's traffic (struct group,
 * declarations in deploy-internal.h), and route_publish() hands them to the
 * proxy as its version groups.
 *
 * A service has at most three: the live version, the previous one kept
 * warm for an instant rollback (weight 0: no new requests), and the new
 * version of a deployment in flight.  A group owns its slots until they
 * leave it (slot_stop, slot_retire); a group is freed by its owner once it
 * has no role left.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/log.h"
#include "base/util.h"
#include "deploy/deploy-internal.h"
#include "deploy/health.h"
#include "loop/loop.h"
#include "metrics/metrics.h"
#include "proxy/proxy.h"
#include "supervisor/supervisor.h"

struct group *group_new(struct managed *m, const char *version, const char *release_dir)
{
	struct group *g = calloc(1, sizeof(*g));

	if (!g || !(g->release_dir = strdup(release_dir ? release_dir : ""))) {
		free(g);
		return NULL;
	}
	g->m = m;
	snprintf(g->version, sizeof(g->version), "%s", version);
	return g;
}

const char *group_digest(const struct group *g)
{
	const char *slash = g ? strrchr(g->release_dir, '/') : NULL;
	const char *name = slash ? slash + 1 : "";

	if (strlen(name) != STATE_DIGEST_HEX)
		return "";
	for (const char *p = name; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return "";
	return name;
}

int group_add(struct group *g, struct slot *s)
{
	if (g->n == DEPLOY_INSTANCES_MAX)
		return -ENOSPC;
	g->slots[g->n++] = s;
	s->g = g;
	return 0;
}

int group_start(struct group *g, const struct config_service *cs, uint32_t want, char *err, size_t errlen)
{
	if (want > DEPLOY_INSTANCES_MAX) {
		snprintf(err, errlen, "%s: %u instances, at most %d", cs->name, want, DEPLOY_INSTANCES_MAX);
		return -EINVAL;
	}
	while (g->n < want) {
		struct slot *s = slot_start(g->m, cs, g->version, g->release_dir, NULL, err, errlen);
		if (!s)
			return -EIO;
		group_add(g, s);
	}
	return 0;
}

/* Every slot out of g (by stop or retire), then g freed. */
static void group_end(struct group *g, void (*end)(struct slot *))
{
	if (!g)
		return;
	while (g->n) /* each call takes the slot out of g */
		end(g->slots[g->n - 1]);
	free(g->release_dir);
	free(g);
}

void group_stop(struct group *g)
{
	group_end(g, slot_stop);
}

void group_retire(struct group *g)
{
	group_end(g, slot_retire);
}

void group_free(struct group *g)
{
	group_end(g, slot_free);
}

size_t group_healthy(const struct group *g)
{
	size_t n = 0;

	for (size_t i = 0; g && i < g->n; i++)
		n += g->slots[i]->health == HEALTH_HEALTHY && !g->slots[i]->crashed;
	return n;
}

size_t group_routed(const struct group *g)
{
	size_t n = 0;

	for (size_t i = 0; g && i < g->n; i++)
		n += slot_routed(g->slots[i]);
	return n;
}

bool group_usable(const struct group *g, bool strict)
{
	if (!g || !g->n)
		return false;
	for (size_t i = 0; i < g->n; i++) {
		const struct slot *s = g->slots[i];
		if (s->crashed || s->health == HEALTH_UNHEALTHY || (strict && s->health != HEALTH_HEALTHY))
			return false;
	}
	return true;
}

bool group_crashed(const struct group *g)
{
	for (size_t i = 0; g && i < g->n; i++)
		if (g->slots[i]->crashed)
			return true;
	return false;
}

char *group_addrs(const struct group *g, char *out, size_t len)
{
	size_t used = 0;

	out[0] = 0;
	for (size_t i = 0; g && i < g->n && used < len; i++)
		used += (size_t)snprintf(out + used, len - used, "%s%s", i ? ", " : "", g->slots[i]->addr);
	return out;
}

void group_class_counts(struct group *g, const char *name, struct metrics_counts *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; g && i < g->n; i++) {
		const struct metrics_upstream *mu = slot_metrics(g->m, g->slots[i]);
		const struct metrics_counts *c = !mu ? NULL : name ? metrics_upstream_class(mu, name) : &mu->counts;
		if (c)
			metrics_counts_add(out, c);
	}
}

void group_counts(struct group *g, struct metrics_counts *out)
{
	group_class_counts(g, NULL, out);
}

/* Add g (if it has ready instances) to groups[*n], its targets from
 * targets[*nt]. */
static void publish_add(const struct group *g, struct proxy_group *groups, size_t *n, struct config_target *targets,
			size_t *nt)
{
	struct proxy_group *pg;

	if (!g)
		return;
	pg = &groups[*n];
	*pg = (struct proxy_group){ .version = g->version, .weight = g->weight, .targets = &targets[*nt] };
	for (size_t i = 0; i < g->n; i++) {
		struct slot *s = g->slots[i];
		struct config_target *t = &targets[*nt];
		if (!slot_routed(s))
			continue;
		*t = (struct config_target){ .weight = 1 };
		t->addr.text = s->addr;
		parse_sockaddr(s->addr, &t->addr.sa, &t->addr.salen);
		pg->ntargets++;
		(*nt)++;
	}
	if (pg->ntargets)
		(*n)++;
}

static uint32_t gcd(uint32_t a, uint32_t b)
{
	while (b) {
		uint32_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

int route_publish(struct managed *m)
{
	struct config_target targets[3 * DEPLOY_INSTANCES_MAX];
	struct proxy_group groups[3];
	size_t n = 0, nt = 0;
	uint32_t div = 0;

	publish_add(m->live, groups, &n, targets, &nt);
	if (m->prev != m->live)
		publish_add(m->prev, groups, &n, targets, &nt);
	/* the new version before the switch: only once a step gives it a share */
	if (m->dep && m->dep->green && m->dep->green->weight && m->dep->green != m->live) {
		size_t before = n;
		publish_add(m->dep->green, groups, &n, targets, &nt);
		if (n > before) /* a share: cohorts steer to it, the shield retries on the others */
			groups[before].canary = true;
	}
	/* the smallest whole weights with the same shares: 100 % is weight 1,
	 * 95 % and 5 % are 19 and 1 (what `versions` in the status shows) */
	for (size_t i = 0; i < n; i++)
		div = gcd(div, groups[i].weight);
	for (size_t i = 0; div > 1 && i < n; i++)
		groups[i].weight /= div;
	return proxy_set_groups(m->d->p, m->name, groups, n);
}

void prev_window_over(struct loop *loop, struct loop_timer *t)
{
	struct managed *m = container_of(t, struct managed, prev_timer);
	struct group *prev = m->prev;

	if (prev) {
		log_info("rollback window of %s over: stopping %s", m->name, prev->version);
		m->prev = NULL;
		route_publish(m); /* out of the routing table first: its idle connections close */
		group_retire(prev);
	}
}
