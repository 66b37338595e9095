/* release-report.c - `cutover release list|show|notes`: the stored runs of
 * release files (SQLite table release_runs, one report per run written by
 * the daemon's release runner: docs/internals/releases.md "The report"),
 * as a table, on a terminal, as JSON or as Markdown.  The notes are
 * release-notes.c's.
 *
 * These verbs read the state directly (state_open_existing: nothing is
 * created, no daemon is needed; SQLite's WAL lets them read beside a running
 * daemon).  The reports were redacted by the daemon before they were
 * stored; nothing here reads the environment of the process.
 *
 * Exit codes: 0 ok; 1 no such state or run, or it cannot be read; 2 usage.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "cli/report.h"
#include "state/state.h"

/* Which options were given, to refuse those of another action. */
enum { GIVEN_LIST = 1, GIVEN_SHOW = 2, GIVEN_NOTES = 4 };

struct parsed {
	struct report_options o;
	unsigned given;
};

static int report_option(struct cli *c, int opt, const char *arg)
{
	struct parsed *p = c->data;
	char *end;

	switch (opt) {
	case 'S':
	case 'U':
		p->given |= GIVEN_LIST;
		return cli_time_option(c, opt == 'S' ? "--since" : "--until", arg,
				       opt == 'S' ? &p->o.since_ms : &p->o.until_ms);
	case 'n':
		p->given |= GIVEN_LIST;
		p->o.limit = strtol(arg, &end, 10);
		if (p->o.limit <= 0 || *end || arg[0] < '0' || arg[0] > '9')
			return cli_fail(c, EXIT_USAGE, NULL, "--limit: expected a positive number, got '%s'", arg);
		return -1;
	case 'm':
		p->given |= GIVEN_SHOW;
		p->o.markdown = true;
		return -1;
	case 'T':
		p->given |= GIVEN_NOTES;
		p->o.template_file = arg;
		return -1;
	case 'o':
		p->given |= GIVEN_NOTES;
		p->o.output = arg;
		return -1;
	}
	return EXIT_USAGE;
}

/* ---- shared with release-notes.c ------------------------------------------------- */

const char *report_duration(int64_t ms, char *out, size_t len)
{
	if (ms < 0)
		snprintf(out, len, "-");
	else if (ms < 1000)
		snprintf(out, len, "%lldms", (long long)ms);
	else if (ms < 60 * 1000)
		snprintf(out, len, "%.1fs", (double)ms / 1000.0);
	else if (ms < 3600 * 1000)
		snprintf(out, len, "%lldm%02llds", (long long)(ms / 60000), (long long)(ms / 1000 % 60));
	else
		snprintf(out, len, "%lldh%02lldm", (long long)(ms / 3600000), (long long)(ms / 60000 % 60));
	return out;
}

int64_t report_elapsed(json_t *obj)
{
	json_t *d = json_object_get(obj, "duration_ms");
	int64_t start = json_integer_value(json_object_get(obj, "started_at"));
	int64_t end = json_integer_value(json_object_get(obj, "finished_at"));

	if (json_is_integer(d))
		return json_integer_value(d);
	return start > 0 && end >= start ? end - start : -1;
}

const char *report_elapsed_text(json_t *obj, const char *unknown, char *out, size_t len)
{
	int64_t ms = report_elapsed(obj);

	return ms < 0 ? unknown : report_duration(ms, out, len);
}

const char *report_text(json_t *obj, const char *key, char *buf, size_t len)
{
	json_t *v = json_object_get(obj, key);

	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v))
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, len, "%g", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
	else
		snprintf(buf, len, "%s", "");
	return buf;
}

/* Append to out (LEN bytes, *used of them taken) as snprintf would,
 * truncating at the end. */
static void append(char *out, size_t len, size_t *used, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void append(char *out, size_t len, size_t *used, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*used + 1 >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(out + *used, len - *used, fmt, ap);
	va_end(ap);
	if (n > 0)
		*used = *used + (size_t)n < len ? *used + (size_t)n : len - 1;
}

/* The members of OBJ as "k v, k v" after PREFIX, appended to out. */
static void members(json_t *obj, const char *prefix, char *out, size_t len, size_t *used)
{
	const char *sep = prefix, *k;
	json_t *x;

	json_object_foreach(obj, k, x) {
		char buf[64];
		if (json_is_object(x) || json_is_array(x))
			continue;
		append(out, len, used, "%s%s %s", sep, k, report_text(obj, k, buf, sizeof(buf)));
		sep = ", ";
	}
}

void report_gate_figures(json_t *gate, char *out, size_t len)
{
	const char *key;
	json_t *v;
	size_t used = 0;

	out[0] = 0;
	json_object_foreach(gate, key, v) {
		if (!json_is_object(v) || !strcmp(key, "threshold"))
			continue;
		append(out, len, &used, "%s%s:", used ? "; " : "", key);
		members(v, " ", out, len, &used);
	}
}

void report_gate_threshold(json_t *gate, char *out, size_t len)
{
	size_t used = 0;

	out[0] = 0;
	members(json_object_get(gate, "threshold"), "", out, len, &used);
}

int report_load(const struct cli *c, const char *id_text, struct state **ret_st, json_t **ret_run)
{
	struct state *st = NULL;
	char *dir = NULL, *end;
	long long id;
	int rc, r;

	errno = 0;
	id = strtoll(id_text, &end, 10);
	if (errno || *end || id <= 0 || id_text[0] < '0' || id_text[0] > '9')
		return cli_fail(c, EXIT_USAGE, NULL, "expected a release run id (a positive number), got '%s'", id_text);
	if ((rc = cli_open_state(c, true, &st, &dir)))
		return rc;
	r = state_release_run_get(st, id, ret_run);
	if (r == -ENOENT)
		rc = cli_fail(c, EXIT_FAILED, json_pack("{sI}", "id", (json_int_t)id), "no release run %lld in %s", id,
			      dir);
	else if (r < 0)
		rc = cli_fail(c, EXIT_FAILED, NULL, "cannot read release run %lld in %s: %s", id, dir,
			      state_errmsg(st));
	free(dir);
	if (rc || !ret_st)
		state_close(st);
	else
		*ret_st = st;
	return rc;
}

/* ---- list ------------------------------------------------------------------------- */

static int64_t integer(json_t *obj, const char *key)
{
	return json_integer_value(json_object_get(obj, key));
}

/* A row of state_release_run_list() (with its report) as `release list
 * --json` gives it: the columns, and what the report says of its
 * services, approval and traffic. */
static json_t *list_entry(json_t *row)
{
	json_t *report = json_object_get(row, "report"), *step, *traffic = json_object_get(report, "traffic");
	json_t *approved = json_object_get(report, "approved_by");
	int64_t started = integer(row, "started_at"), finished = integer(row, "finished_at");
	size_t i, services = 0, steps = 0;

	json_array_foreach(json_object_get(report, "steps"), i, step) {
		const char *kind = json_string_value(json_object_get(step, "kind"));
		steps++;
		services += kind && !strcmp(kind, "service");
	}
	return json_pack("{sO sO sO sO sO sO sO sO so so sI sI so so}", "id", json_object_get(row, "id"), "name",
			 json_object_get(row, "name"), "env", json_object_get(row, "env"), "state",
			 json_object_get(row, "state"), "started_by", json_object_get(row, "started_by"),
			 "started_uid", json_object_get(row, "started_uid"), "started_at",
			 json_object_get(row, "started_at"), "finished_at", json_object_get(row, "finished_at"),
			 "duration_ms", finished ? json_integer(finished - started) : json_null(), "approved_by",
			 json_is_string(approved) ? json_copy(approved) : json_null(), "services", (json_int_t)services,
			 "steps", (json_int_t)steps, "requests",
			 json_is_integer(json_object_get(traffic, "requests")) ? json_integer(integer(traffic, "requests"))
									       : json_null(),
			 "failed",
			 json_is_integer(json_object_get(traffic, "failed")) ? json_integer(integer(traffic, "failed"))
									     : json_null());
}

static void print_list(json_t *entries, bool filtered)
{
	json_t *e;
	size_t i;

	if (!json_array_size(entries)) {
		printf("%s\n", filtered ? "no release runs match" : "no release runs recorded");
		return;
	}
	printf("%-5s %-20s %-10s %-17s %-24s %9s %-12s %8s %s\n", "ID", "NAME", "ENV", "STATE", "STARTED", "DURATION",
	       "BY", "SERVICES", "REQUESTS/FAILED");
	json_array_foreach(entries, i, e) {
		char started[32], dur[32], traffic[64] = "-";
		json_t *ms = json_object_get(e, "duration_ms");
		const char *env = json_string_value(json_object_get(e, "env"));

		state_format_time(integer(e, "started_at"), started, sizeof(started));
		if (json_is_integer(json_object_get(e, "requests")))
			snprintf(traffic, sizeof(traffic), "%lld/%lld", (long long)integer(e, "requests"),
				 (long long)integer(e, "failed"));
		printf("%-5lld %-20s %-10s %-17s %-24s %9s %-12s %8lld %s\n", (long long)integer(e, "id"),
		       json_string_value(json_object_get(e, "name")), env ? env : "-",
		       json_string_value(json_object_get(e, "state")), started,
		       json_is_integer(ms) ? report_duration(json_integer_value(ms), dur, sizeof(dur)) : "-",
		       json_string_value(json_object_get(e, "started_by")), (long long)integer(e, "services"), traffic);
	}
}

static int list_run(const struct cli *c, const struct report_options *o)
{
	struct state_release_run_filter f = { .env = c->env, .since_ms = o->since_ms, .until_ms = o->until_ms,
					       .with_report = true, .limit = (size_t)o->limit };
	struct state *st = NULL;
	json_t *rows = NULL, *entries = json_array(), *row, *e;
	char *dir = NULL;
	size_t i;
	int rc;

	if (!entries)
		return cli_fail(c, EXIT_FAILED, NULL, "out of memory");
	if ((rc = cli_open_state(c, true, &st, &dir)))
		goto out;
	if (state_release_run_list(st, &f, &rows) < 0) {
		rc = cli_fail(c, EXIT_FAILED, NULL, "cannot read the release runs in %s: %s", dir, state_errmsg(st));
		goto out;
	}
	json_array_foreach(rows, i, row) {
		if (!(e = list_entry(row)) || json_array_append_new(entries, e) < 0) {
			rc = cli_fail(c, EXIT_FAILED, NULL, "out of memory");
			goto out;
		}
	}
	if (c->json)
		cli_print_json(json_incref(entries));
	else
		print_list(entries, c->env || o->since_ms || o->until_ms);
out:
	json_decref(entries);
	json_decref(rows);
	state_close(st);
	free(dir);
	return rc;
}

/* ---- show: on a terminal ------------------------------------------------------------ */

static const char *string(json_t *obj, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s && *s ? s : dflt;
}

static void print_header(json_t *r)
{
	char started[32], finished[32], dur[32], buf[32];
	const char *approved = string(r, "approved_by", NULL), *reason = string(r, "reason", NULL);
	json_t *traffic = json_object_get(r, "traffic");

	state_format_time(integer(r, "started_at"), started, sizeof(started));
	state_format_time(integer(r, "finished_at"), finished, sizeof(finished));
	printf("release %s  %s  env %s  %s\n", report_text(r, "id", buf, sizeof(buf)), string(r, "name", "?"),
	       string(r, "env", "-"), string(r, "state", "?"));
	if (string(r, "file", NULL))
		printf("  file       %s\n", string(r, "file", ""));
	printf("  started    %s by %s (uid %lld)\n", started, string(r, "started_by", "?"),
	       (long long)integer(r, "started_uid"));
	if (approved)
		printf("  approved   by %s (uid %lld)\n", approved, (long long)integer(r, "approved_uid"));
	if (integer(r, "finished_at"))
		printf("  finished   %s after %s\n", finished, report_elapsed_text(r, "?", dur, sizeof(dur)));
	else
		printf("  finished   not yet\n");
	if (reason)
		printf("  reason     %s\n", reason);
	if (json_is_object(traffic))
		printf("  traffic    %lld requests, %lld failed\n", (long long)integer(traffic, "requests"),
		       (long long)integer(traffic, "failed"));
}

static void print_gates(json_t *r)
{
	json_t *gates = json_object_get(r, "gates"), *g;
	size_t i;

	printf("\ngates\n");
	if (!json_array_size(gates))
		printf("  none\n");
	json_array_foreach(gates, i, g) {
		char figures[512], dur[32];
		json_t *passed = json_object_get(g, "passed");

		report_gate_figures(g, figures, sizeof(figures));
		printf("  %-7s %-20s %-8s %-9s %8s  %s\n",
		       json_is_true(passed) ? "PASSED" : json_is_false(passed) ? "FAILED" : "PENDING",
		       string(g, "name", "?"), string(g, "point", "-"), string(g, "read", "-"),
		       report_elapsed_text(g, "-", dur, sizeof(dur)),
		       string(g, "reason", ""));
		if (figures[0])
			printf("          %s\n", figures);
		report_gate_threshold(g, figures, sizeof(figures));
		if (figures[0])
			printf("          threshold: %s\n", figures);
	}
}

/* A phase's name, "rollback: NAME" for a phase of the step's rollback
 * deployment. */
static const char *phase_name(json_t *ph, char *out, size_t len)
{
	const char *name = string(ph, "phase", "?");

	if (!json_is_true(json_object_get(ph, "rollback")))
		return name;
	snprintf(out, len, "rollback: %s", name);
	return out;
}

/* A step's phases: each with its offset from the step's start and how long
 * it lasted (to the next phase, or to the step's end). */
static void print_phases(json_t *step)
{
	json_t *phases = json_object_get(step, "phases"), *ph;
	int64_t start = integer(step, "started_at"), end = integer(step, "finished_at");
	size_t i;

	json_array_foreach(phases, i, ph) {
		int64_t at = integer(ph, "at"), until = i + 1 < json_array_size(phases)
								 ? integer(json_array_get(phases, i + 1), "at") : end;
		char off[32], dur[32], name[80];

		snprintf(off, sizeof(off), "+%s", start && at >= start ? report_duration(at - start, dur, sizeof(dur)) : "?");
		printf("        %-9s %-28s %-9s %s\n", off, phase_name(ph, name, sizeof(name)),
		       until && until >= at ? report_duration(until - at, dur, sizeof(dur)) : "", string(ph, "detail", ""));
	}
}

static void step_version(json_t *s, char *out, size_t len)
{
	const char *kind = string(s, "kind", "");

	if (strcmp(kind, "service"))
		snprintf(out, len, "exit %s", json_is_integer(json_object_get(s, "exit_code"))
						       ? report_text(s, "exit_code", (char[24]){ 0 }, 24) : "-");
	else
		snprintf(out, len, "%s -> %s", string(s, "from_version", "none"), string(s, "version", "?"));
}

static void print_steps(json_t *r)
{
	json_t *steps = json_object_get(r, "steps"), *s;
	size_t i;

	printf("\nsteps\n");
	if (!json_array_size(steps)) {
		printf("  none\n");
		return;
	}
	printf("  %-5s %-16s %-8s %-26s %-13s %9s  %s\n", "GROUP", "NAME", "KIND", "VERSION", "STATE", "DURATION",
	       "REASON");
	json_array_foreach(steps, i, s) {
		char version[300], dur[32];

		step_version(s, version, sizeof(version));
		printf("  %-5lld %-16s %-8s %-26s %-13s %9s  %s\n", (long long)integer(s, "group"), string(s, "name", "?"),
		       string(s, "kind", "?"), version, string(s, "state", "?"),
		       report_elapsed_text(s, "-", dur, sizeof(dur)),
		       string(s, "reason", ""));
		print_phases(s);
	}
}

static void print_traffic(json_t *r)
{
	json_t *services = json_object_get(json_object_get(r, "traffic"), "services"), *versions, *v;
	const char *service, *version;

	printf("\ntraffic\n");
	if (!json_object_size(services)) {
		printf("  none recorded\n");
		return;
	}
	printf("  %-16s %-20s %10s %8s\n", "SERVICE", "VERSION", "REQUESTS", "FAILED");
	json_object_foreach(services, service, versions) {
		json_object_foreach(versions, version, v)
			printf("  %-16s %-20s %10lld %8lld\n", service, version, (long long)integer(v, "requests"),
			       (long long)integer(v, "failed"));
	}
}

static void print_rollbacks_and_timeline(json_t *r)
{
	json_t *rollbacks = json_object_get(r, "rollbacks"), *timeline = json_object_get(r, "timeline"), *x;
	size_t i;

	if (json_array_size(rollbacks)) {
		printf("\nrollbacks (in the order they ran)\n");
		json_array_foreach(rollbacks, i, x) {
			char at[32];
			state_format_time(integer(x, "at"), at, sizeof(at));
			printf("  %-24s %-16s %-8s %-8s %s\n", at, string(x, "name", "?"), string(x, "kind", "?"),
			       string(x, "result", "?"), string(x, "detail", ""));
		}
	}
	if (json_array_size(timeline)) {
		printf("\ntimeline\n");
		json_array_foreach(timeline, i, x) {
			char at[32];
			state_format_time(integer(x, "at"), at, sizeof(at));
			printf("  %-24s %s\n", at, string(x, "text", ""));
		}
	}
}

static void print_terminal(json_t *r)
{
	print_header(r);
	print_gates(r);
	print_steps(r);
	print_traffic(r);
	print_rollbacks_and_timeline(r);
}

/* ---- show --markdown ---------------------------------------------------------------- */

/* S in a Markdown table cell: "|" escaped, line breaks as spaces. */
static void cell(const char *s)
{
	for (; s && *s; s++) {
		if (*s == '|')
			fputs("\\|", stdout);
		else if (*s == '\n' || *s == '\r')
			putchar(' ');
		else
			putchar(*s);
	}
}

/* One row of a table: "| a | b |" with each cell escaped. */
static void row(size_t n, const char *const *cells)
{
	for (size_t i = 0; i < n; i++) {
		fputs("| ", stdout);
		cell(cells[i] && *cells[i] ? cells[i] : "-");
		putchar(' ');
	}
	puts("|");
}

#define ROW(...) row(sizeof((const char *[]){ __VA_ARGS__ }) / sizeof(const char *), (const char *[]){ __VA_ARGS__ })

static void md_header(json_t *r)
{
	char started[32], finished[32], dur[32], buf[32], who[300], traffic[64] = "";
	json_t *t = json_object_get(r, "traffic");

	state_format_time(integer(r, "started_at"), started, sizeof(started));
	state_format_time(integer(r, "finished_at"), finished, sizeof(finished));
	printf("# Release %s: ", report_text(r, "id", buf, sizeof(buf)));
	cell(string(r, "name", "?"));
	printf("\n\n");
	ROW("", "");
	puts("|---|---|");
	ROW("Environment", string(r, "env", "-"));
	snprintf(who, sizeof(who), "**%s**", string(r, "state", "?"));
	ROW("State", who);
	if (string(r, "reason", NULL))
		ROW("Reason", string(r, "reason", ""));
	ROW("File", string(r, "file", "-"));
	snprintf(who, sizeof(who), "%s by %s", started, string(r, "started_by", "?"));
	ROW("Started", who);
	ROW("Approved by", string(r, "approved_by", "-"));
	snprintf(who, sizeof(who), "%s (%s)", finished, report_elapsed_text(r, "?", dur, sizeof(dur)));
	ROW("Finished", integer(r, "finished_at") ? who : "not yet");
	if (json_is_object(t))
		snprintf(traffic, sizeof(traffic), "%lld (%lld failed)", (long long)integer(t, "requests"),
			 (long long)integer(t, "failed"));
	ROW("Requests", traffic);
}

static void md_gates(json_t *r)
{
	json_t *g;
	size_t i;

	printf("\n## Gates\n\n");
	if (!json_array_size(json_object_get(r, "gates"))) {
		puts("No gates.");
		return;
	}
	ROW("Gate", "When", "Read", "Verdict", "Reason", "Figures", "Threshold", "Duration");
	puts("|---|---|---|---|---|---|---|---|");
	json_array_foreach(json_object_get(r, "gates"), i, g) {
		char figures[512], threshold[512], dur[32];
		json_t *passed = json_object_get(g, "passed");

		report_gate_figures(g, figures, sizeof(figures));
		report_gate_threshold(g, threshold, sizeof(threshold));
		ROW(string(g, "name", "?"), string(g, "point", "-"), string(g, "read", "-"),
		    json_is_true(passed) ? "passed" : json_is_false(passed) ? "**failed**" : "pending",
		    string(g, "reason", ""), figures, threshold,
		    report_elapsed_text(g, "", dur, sizeof(dur)));
	}
}

static void md_steps(json_t *r)
{
	json_t *steps = json_object_get(r, "steps"), *s, *ph;
	size_t i, k;

	printf("\n## Steps\n\n");
	if (!json_array_size(steps)) {
		puts("No steps.");
		return;
	}
	ROW("Group", "Step", "Kind", "Version", "State", "Duration", "Reason");
	puts("|---|---|---|---|---|---|---|");
	json_array_foreach(steps, i, s) {
		char version[300], dur[32], group[24];

		step_version(s, version, sizeof(version));
		ROW(report_text(s, "group", group, sizeof(group)), string(s, "name", "?"), string(s, "kind", "?"), version,
		    string(s, "state", "?"),
		    report_elapsed_text(s, "", dur, sizeof(dur)),
		    string(s, "reason", ""));
	}
	json_array_foreach(steps, i, s) {
		json_t *phases = json_object_get(s, "phases");
		if (!json_array_size(phases))
			continue;
		printf("\n### ");
		cell(string(s, "name", "?"));
		printf("\n\n");
		ROW("Phase", "At", "Duration", "Detail");
		puts("|---|---|---|---|");
		json_array_foreach(phases, k, ph) {
			int64_t at = integer(ph, "at"), until = k + 1 < json_array_size(phases)
								  ? integer(json_array_get(phases, k + 1), "at")
								  : integer(s, "finished_at");
			char when[32], dur[32];
			state_format_time(at, when, sizeof(when));
			char name[80];
			ROW(phase_name(ph, name, sizeof(name)), when, until && until >= at ? report_duration(until - at, dur, sizeof(dur)) : "",
			    string(ph, "detail", ""));
		}
	}
}

static void md_rest(json_t *r)
{
	json_t *services = json_object_get(json_object_get(r, "traffic"), "services"), *versions, *v, *x;
	const char *service, *version;
	size_t i;

	printf("\n## Traffic\n\n");
	if (!json_object_size(services)) {
		puts("None recorded.");
	} else {
		ROW("Service", "Version", "Requests", "Failed");
		puts("|---|---|---|---|");
		json_object_foreach(services, service, versions) {
			json_object_foreach(versions, version, v) {
				char req[24], failed[24];
				ROW(service, version, report_text(v, "requests", req, sizeof(req)),
				    report_text(v, "failed", failed, sizeof(failed)));
			}
		}
	}
	printf("\n## Rollbacks\n\n");
	if (!json_array_size(json_object_get(r, "rollbacks"))) {
		puts("None.");
	} else {
		ROW("At", "Step", "Kind", "Result", "Detail");
		puts("|---|---|---|---|---|");
		json_array_foreach(json_object_get(r, "rollbacks"), i, x) {
			char at[32];
			state_format_time(integer(x, "at"), at, sizeof(at));
			ROW(at, string(x, "name", "?"), string(x, "kind", "?"), string(x, "result", "?"), string(x, "detail", ""));
		}
	}
	if (json_array_size(json_object_get(r, "timeline"))) {
		printf("\n## Timeline\n\n");
		json_array_foreach(json_object_get(r, "timeline"), i, x) {
			char at[32];
			state_format_time(integer(x, "at"), at, sizeof(at));
			printf("- `%s` %s\n", at, string(x, "text", ""));
		}
	}
}

static void print_markdown(json_t *r)
{
	md_header(r);
	md_gates(r);
	md_steps(r);
	md_rest(r);
}

static int show_run(const struct cli *c, const struct report_options *o)
{
	json_t *run = NULL, *report;
	int rc = report_load(c, c->args[0], NULL, &run);

	if (rc)
		return rc;
	report = json_object_get(run, "report");
	if (c->json)
		cli_print_json(json_incref(report));
	else if (o->markdown)
		print_markdown(report);
	else
		print_terminal(report);
	json_decref(run);
	return 0;
}

/* ---- the actions -------------------------------------------------------------------- */

bool cli_release_is_report(const char *action)
{
	return !strcmp(action, "list") || !strcmp(action, "show") || !strcmp(action, "notes");
}

int cli_release_report(int argc, char **argv, const char *action)
{
	static const struct option opts[] = {
		{ "since", required_argument, NULL, 'S' },  { "until", required_argument, NULL, 'U' },
		{ "limit", required_argument, NULL, 'n' },  { "markdown", no_argument, NULL, 'm' },
		{ "template", required_argument, NULL, 'T' }, { "output", required_argument, NULL, 'o' },
		{ 0 },
	};
	bool list = !strcmp(action, "list"), show = !strcmp(action, "show");
	struct parsed p = { .o.limit = 20 };
	char verb[32];
	struct cli c = {
		.verb = verb,
		.flags = CLI_CONFIG | CLI_STATE_DIR,
		.min_args = 1,
		.max_args = -1,
		.options = opts,
		.shortopts = "n:o:",
		.option = report_option,
		.data = &p,
	};
	unsigned mine = list ? GIVEN_LIST : show ? GIVEN_SHOW : GIVEN_NOTES;
	int rc;

	snprintf(verb, sizeof(verb), "release %s", action);
	rc = cli_parse(&c, argc, argv);
	if (rc >= 0)
		return rc;
	c.args++; /* the action */
	c.nargs--;
	c.synopsis = list ? "no argument" : "ID";
	c.min_args = c.max_args = list ? 0 : 1;
	if ((rc = cli_check_args(&c)) >= 0)
		return rc;
	if (p.given & ~mine)
		return cli_fail(&c, EXIT_USAGE, NULL, "%s",
				p.given & ~mine & GIVEN_LIST ? "--since, --until and --limit: only for `cutover release list`"
				: p.given & ~mine & GIVEN_SHOW ? "--markdown: only for `cutover release show`"
							       : "--template and -o: only for `cutover release notes`");
	if (p.o.markdown && c.json)
		return cli_fail(&c, EXIT_USAGE, NULL, "--json and --markdown: choose one");
	if (p.o.since_ms && p.o.until_ms && p.o.until_ms <= p.o.since_ms)
		return cli_fail(&c, EXIT_USAGE, NULL, "--until must come after --since");
	if (list)
		return list_run(&c, &p.o);
	if (show)
		return show_run(&c, &p.o);
	return report_notes(&c, &p.o);
}
