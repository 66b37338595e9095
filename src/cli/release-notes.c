/* release-notes.c - `cutover release notes ID [--template FILE] [-o FILE]`:
 * Markdown release notes of a stored release run, rendered from a
 * template (template.h; the names it may use are notes_schema below,
 * documented in docs/releases.md "Templates").
 *
 * The data comes from the run's report (docs/internals/releases.md "The
 * report"), which the daemon redacted before storing it, and from each
 * service's changelog: services.NAME.changelog of cutover.yml (default
 * CHANGELOG.md) in the release directory of the version the release
 * moved it to, cut down to that version's section when the headings
 * allow it (notes_changelog_section), else the whole file, capped.
 * Nothing here reads the process's environment.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli/cli.h"
#include "cli/report.h"
#include "config/config.h"
#include "config/config-t.h"
#include "state/state.h"

#define TEMPLATE_MAX (256 * 1024)     /* bytes of a template file */
#define CHANGELOG_READ_MAX (1024 * 1024) /* bytes read of a changelog file */
#define SECTION_MAX (64 * 1024)       /* bytes of a version's section kept */
#define WHOLE_MAX (8 * 1024)          /* bytes of a changelog without a section for the version */
#define DEFAULT_CHANGELOG "CHANGELOG.md"

/* ---- the names a template may use --------------------------------------------------- */

#define V(name) { name, NULL } /* a value */
static const struct tpl_field service_fields[] = {
	V("name"), V("version"), V("from_version"), V("new"), V("digest"), V("strategy"), V("state"),
	V("group"), V("critical"), V("duration"), V("reason"), V("requests"), V("failed"), V("changelog"),
	V("changelog_file"), { NULL, NULL },
};
static const struct tpl_field command_fields[] = {
	V("name"), V("state"), V("group"), V("exit_code"), V("undo_exit_code"), V("duration"), V("reason"),
	{ NULL, NULL },
};
static const struct tpl_field gate_fields[] = {
	V("name"), V("point"), V("read"), V("passed"), V("verdict"), V("reason"), V("figures"), V("threshold"),
	V("duration"), V("exit_code"), { NULL, NULL },
};
static const struct tpl_field rollback_fields[] = {
	V("name"), V("kind"), V("result"), V("detail"), V("at"), { NULL, NULL },
};
const struct tpl_field notes_schema[] = {
	V("id"), V("name"), V("env"), V("state"), V("reason"), V("file"), V("started_by"),
	V("approved_by"), V("started_at"), V("finished_at"), V("duration"), V("requests"), V("failed"),
	V("service_count"), V("command_count"), V("gate_count"), V("rollback_count"), V("changelog_count"),
	{ "services", service_fields }, { "commands", command_fields }, { "gates", gate_fields },
	{ "rollbacks", rollback_fields }, { NULL, NULL },
};
#undef V

const char notes_default_template[] =
	"# {{name}}{{#env}} ({{env}}){{/env}}\n"
	"\n"
	"Release {{id}}: **{{state}}**. Started {{started_at}} by {{started_by}}"
	"{{#approved_by}}, approved by {{approved_by}}{{/approved_by}}"
	"{{#finished_at}}; finished {{finished_at}} after {{duration}}{{/finished_at}}.\n"
	"{{#reason}}\n"
	"\n"
	"> {{reason}}\n"
	"{{/reason}}\n"
	"\n"
	"## What changed\n"
	"\n"
	"{{#service_count}}\n"
	"| Service | Before | After | Strategy | Result |\n"
	"|---|---|---|---|---|\n"
	"{{/service_count}}\n"
	"{{#services}}\n"
	"| {{name}} | {{^new}}{{from_version}}{{/new}}{{#new}}(new){{/new}} | {{version}} | {{strategy}} | {{state}} |\n"
	"{{/services}}\n"
	"{{#command_count}}\n"
	"\n"
	"Command steps:\n"
	"\n"
	"{{/command_count}}\n"
	"{{#commands}}\n"
	"- **{{name}}**: {{state}}{{#reason}} ({{reason}}){{/reason}}\n"
	"{{/commands}}\n"
	"{{^service_count}}\n"
	"{{^command_count}}\n"
	"Nothing.\n"
	"{{/command_count}}\n"
	"{{/service_count}}\n"
	"{{#requests}}\n"
	"\n"
	"During the release the proxy served {{requests}} requests, {{failed}} of them failed.\n"
	"{{/requests}}\n"
	"\n"
	"## Gates\n"
	"\n"
	"{{#gates}}\n"
	"- **{{name}}** ({{point}}, {{read}}): {{verdict}}: {{reason}}{{#figures}} [{{figures}}]{{/figures}}\n"
	"{{/gates}}\n"
	"{{^gates}}\n"
	"No gates.\n"
	"{{/gates}}\n"
	"{{#rollback_count}}\n"
	"\n"
	"## Rollbacks\n"
	"\n"
	"{{/rollback_count}}\n"
	"{{#rollbacks}}\n"
	"- {{name}} ({{kind}}): {{result}}: {{detail}}\n"
	"{{/rollbacks}}\n"
	"{{#changelog_count}}\n"
	"\n"
	"## Changelogs\n"
	"{{/changelog_count}}\n"
	"{{#services}}\n"
	"{{#changelog}}\n"
	"\n"
	"### {{name}} {{version}}\n"
	"\n"
	"{{changelog}}\n"
	"{{/changelog}}\n"
	"{{/services}}\n";

/* ---- changelogs --------------------------------------------------------------------- */

/* The heading level of the line [s, e) ("#".."######" and a blank), 0 if
 * it is none; *title is where its text begins. */
static int heading(const char *s, const char *e, const char **title)
{
	int level = 0;

	while (s < e && *s == '#' && level < 7)
		s++, level++;
	if (level == 0 || level > 6 || (s < e && *s != ' ' && *s != '\t'))
		return 0;
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	*title = s;
	return level;
}

/* Does heading text [t, e) name VERSION first ("1.2.0", "[1.2.0]", "v1.2.0")? */
static bool names_version(const char *t, const char *e, const char *version)
{
	size_t n = strlen(version);

	if (t < e && *t == '[')
		t++;
	if (t + 1 < e && (*t == 'v' || *t == 'V') && t[1] >= '0' && t[1] <= '9')
		t++;
	if ((size_t)(e - t) < n || memcmp(t, version, n))
		return false;
	t += n;
	return t == e || strchr(" \t]),:\r", *t);
}

static bool fence(const char *s, const char *e)
{
	for (int i = 0; i < 3 && s < e && *s == ' '; i++)
		s++;
	return e - s >= 3 && (!memcmp(s, "```", 3) || !memcmp(s, "~~~", 3));
}

static bool blank_line(const char *s, const char *e)
{
	for (; s < e; s++)
		if (*s != ' ' && *s != '\t' && *s != '\r')
			return false;
	return true;
}

bool notes_changelog_section(const char *text, size_t len, const char *version, size_t *start, size_t *slen)
{
	const char *p = text, *end = text + len, *body = NULL, *stop = end, *title;
	bool in_fence = false;
	int level, section_level = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end;

		if (fence(p, le))
			in_fence = !in_fence;
		else if (!in_fence && (level = heading(p, le, &title))) {
			if (body && level <= section_level) {
				stop = p;
				break;
			}
			if (!body && names_version(title, le, version)) {
				body = nl ? nl + 1 : end;
				section_level = level;
			}
		}
		p = nl ? nl + 1 : end;
	}
	if (!body)
		return false;
	/* blank lines around it trimmed */
	while (body < stop) {
		const char *nl = memchr(body, '\n', (size_t)(stop - body));
		if (!nl || !blank_line(body, nl))
			break;
		body = nl + 1;
	}
	while (stop > body && (stop[-1] == '\n' || stop[-1] == ' ' || stop[-1] == '\t' || stop[-1] == '\r'))
		stop--;
	*start = (size_t)(body - text);
	*slen = (size_t)(stop - body);
	return true;
}

/* At most MAX bytes of TEXT (LEN), cut after a whole line, with a note
 * when something was left out.  malloc'd (NULL: out of memory). */
static char *capped(const char *text, size_t len, size_t max, const char *file)
{
	size_t keep = len;
	char *out;

	if (len > max) {
		keep = max;
		while (keep > 0 && text[keep - 1] != '\n')
			keep--;
		if (!keep)
			keep = max;
	}
	while (keep > 0 && (text[keep - 1] == '\n' || text[keep - 1] == '\r'))
		keep--;
	if (len <= max)
		return strndup(text, keep);
	if (asprintf(&out, "%.*s\n\n*(cut here: %s holds %zu bytes more)*", (int)keep, text, file, len - keep) < 0)
		return NULL;
	return out;
}

/* The changelog of SERVICE at VERSION (FILE in its release directory) for
 * the notes: its section, else the whole file capped.  NULL when there is
 * none (no such release or file); a file that cannot be read is said on
 * stderr and left out. */
static char *changelog(const struct cli *c, struct state *st, const char *service, const char *version,
		       const char *file)
{
	struct state_release rel = { 0 };
	char *path = NULL, *text = NULL, *out = NULL;
	size_t len = 0, start, slen;
	struct stat sb;
	ssize_t n;
	int fd = -1;

	if (state_release_get(st, service, version, &rel) < 0 || asprintf(&path, "%s/%s", rel.path, file) < 0) {
		path = NULL;
		goto out;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		if (errno != ENOENT)
			fprintf(stderr, "cutover %s: %s: %s; its changelog is left out\n", c->verb, path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		fprintf(stderr, "cutover %s: %s: not a regular file; its changelog is left out\n", c->verb, path);
		goto out;
	}
	if (!(text = malloc(CHANGELOG_READ_MAX + 1)))
		goto out;
	while (len < CHANGELOG_READ_MAX && (n = read(fd, text + len, CHANGELOG_READ_MAX - len)) > 0)
		len += (size_t)n;
	if (memchr(text, 0, len)) {
		fprintf(stderr, "cutover %s: %s: not text; its changelog is left out\n", c->verb, path);
		goto out;
	}
	if (notes_changelog_section(text, len, version, &start, &slen))
		out = capped(text + start, slen, SECTION_MAX, file);
	else
		out = capped(text, len, WHOLE_MAX, file);
out:
	if (fd >= 0)
		close(fd);
	free(text);
	free(path);
	state_release_clear(&rel);
	return out;
}

/* ---- the data of a template --------------------------------------------------------- */

static json_t *text_of(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_string(v) || json_is_number(v) || json_is_boolean(v) ? json_copy(v) : json_string("");
}

/* How long OBJ took as text, "" if not known. */
static json_t *duration_of(json_t *obj)
{
	char buf[32];

	return json_string(report_elapsed_text(obj, "", buf, sizeof(buf)));
}

static json_t *time_of(json_t *obj, const char *key)
{
	int64_t ms = json_integer_value(json_object_get(obj, key));
	char buf[32];

	if (ms <= 0)
		return json_string("");
	state_format_time(ms, buf, sizeof(buf));
	return json_string(buf);
}

/* Requests and failures of SERVICE over its versions (traffic.services). */
static void service_traffic(json_t *report, const char *service, json_int_t *requests, json_int_t *failed)
{
	json_t *versions = json_object_get(json_object_get(json_object_get(report, "traffic"), "services"), service);
	const char *version;
	json_t *v;

	*requests = *failed = 0;
	json_object_foreach(versions, version, v) {
		*requests += json_integer_value(json_object_get(v, "requests"));
		*failed += json_integer_value(json_object_get(v, "failed"));
	}
}

static json_t *service_entry(json_t *report, json_t *s, const char *changelog, const char *file)
{
	const char *from = json_string_value(json_object_get(s, "from_version"));
	json_int_t requests, failed;

	service_traffic(report, json_string_value(json_object_get(s, "name")), &requests, &failed);
	return json_pack("{so so so sb so so so so sb so so sI sI ss ss}", "name", text_of(s, "name"), "version",
			 text_of(s, "version"), "from_version", text_of(s, "from_version"), "new", !from || !*from,
			 "digest", text_of(s, "digest"), "strategy", text_of(s, "strategy"), "state", text_of(s, "state"),
			 "group", text_of(s, "group"), "critical", !json_is_false(json_object_get(s, "critical")),
			 "duration", duration_of(s), "reason", text_of(s, "reason"), "requests", requests,
			 "failed", failed, "changelog", changelog ? changelog : "", "changelog_file",
			 changelog && file ? file : "");
}

static json_t *command_entry(json_t *s)
{
	return json_pack("{so so so so so so so}", "name", text_of(s, "name"), "state", text_of(s, "state"), "group",
			 text_of(s, "group"), "exit_code", text_of(s, "exit_code"), "undo_exit_code",
			 text_of(s, "undo_exit_code"), "duration", duration_of(s), "reason",
			 text_of(s, "reason"));
}

static json_t *gate_entry(json_t *g)
{
	json_t *passed = json_object_get(g, "passed");
	char figures[512], threshold[512];

	report_gate_figures(g, figures, sizeof(figures));
	report_gate_threshold(g, threshold, sizeof(threshold));
	return json_pack("{so so so sb ss so ss ss so so}", "name", text_of(g, "name"), "point", text_of(g, "point"),
			 "read", text_of(g, "read"), "passed", json_is_true(passed), "verdict",
			 json_is_true(passed) ? "passed" : json_is_false(passed) ? "FAILED" : "pending", "reason",
			 text_of(g, "reason"), "figures", figures, "threshold", threshold, "duration", duration_of(g),
			 "exit_code", text_of(g, "exit_code"));
}

static json_t *rollback_entry(json_t *x)
{
	return json_pack("{so so so so so}", "name", text_of(x, "name"), "kind", text_of(x, "kind"), "result",
			 text_of(x, "result"), "detail", text_of(x, "detail"), "at", time_of(x, "at"));
}

/* Append item (consumed) to the array member KEY of obj; false if NULL. */
static bool add(json_t *obj, const char *key, json_t *item)
{
	return item && json_array_append_new(json_object_get(obj, key), item) == 0;
}

json_t *notes_data(json_t *run, const char *const *changelogs, const char *const *changelog_files)
{
	json_t *r = json_object_get(run, "report"), *traffic = json_object_get(r, "traffic"), *x, *d;
	size_t i, nservice = 0, nchangelog = 0;
	bool ok = true;

	d = json_pack("{so so so so so so so so so so so so so s[] s[] s[] s[]}", "id", text_of(run, "id"), "name",
		      text_of(r, "name"), "env", text_of(r, "env"), "state", text_of(r, "state"), "reason",
		      text_of(r, "reason"), "file", text_of(r, "file"), "started_by", text_of(r, "started_by"),
		      "approved_by", text_of(r, "approved_by"), "started_at", time_of(r, "started_at"), "finished_at",
		      time_of(r, "finished_at"), "duration", duration_of(r), "requests",
		      json_is_object(traffic) ? text_of(traffic, "requests") : json_string(""), "failed",
		      json_is_object(traffic) ? text_of(traffic, "failed") : json_string(""), "services", "commands",
		      "gates", "rollbacks");
	if (!d)
		return NULL;
	json_array_foreach(json_object_get(r, "steps"), i, x) {
		const char *kind = json_string_value(json_object_get(x, "kind"));
		if (kind && !strcmp(kind, "service")) {
			const char *cl = changelogs ? changelogs[nservice] : NULL;
			ok = ok && add(d, "services", service_entry(r, x, cl, changelog_files ? changelog_files[nservice] : NULL));
			nchangelog += cl && *cl;
			nservice++;
		} else {
			ok = ok && add(d, "commands", command_entry(x));
		}
	}
	json_array_foreach(json_object_get(r, "gates"), i, x)
		ok = ok && add(d, "gates", gate_entry(x));
	json_array_foreach(json_object_get(r, "rollbacks"), i, x)
		ok = ok && add(d, "rollbacks", rollback_entry(x));
	ok = ok && json_object_set_new(d, "service_count", json_integer((json_int_t)nservice)) == 0 &&
	     json_object_set_new(d, "command_count", json_integer((json_int_t)json_array_size(json_object_get(d, "commands")))) == 0 &&
	     json_object_set_new(d, "gate_count", json_integer((json_int_t)json_array_size(json_object_get(d, "gates")))) == 0 &&
	     json_object_set_new(d, "rollback_count", json_integer((json_int_t)json_array_size(json_object_get(d, "rollbacks")))) == 0 &&
	     json_object_set_new(d, "changelog_count", json_integer((json_int_t)nchangelog)) == 0;
	if (!ok) {
		json_decref(d);
		return NULL;
	}
	return d;
}

/* ---- the verb ----------------------------------------------------------------------- */

/* Read template FILE into *ret (malloc'd, *ret_len bytes).  Returns 0 or an
 * exit code after cli_fail(). */
static int read_template(const struct cli *c, const char *file, char **ret, size_t *ret_len)
{
	FILE *f = fopen(file, "re");
	char *text = NULL;
	size_t len = 0;
	int rc = 0;

	if (!f)
		return cli_fail(c, EXIT_USAGE, json_pack("{ss}", "template", file), "cannot read the template %s: %s",
				file, strerror(errno));
	if (!(text = malloc(TEMPLATE_MAX + 1)))
		rc = cli_fail(c, EXIT_FAILED, NULL, "out of memory");
	else if ((len = fread(text, 1, TEMPLATE_MAX + 1, f)) > TEMPLATE_MAX || ferror(f))
		rc = cli_fail(c, EXIT_USAGE, json_pack("{ss}", "template", file), "%s: %s", file,
			      ferror(f) ? strerror(errno) : "larger than 256 KiB");
	else if (memchr(text, 0, len))
		rc = cli_fail(c, EXIT_USAGE, json_pack("{ss}", "template", file), "%s: not text (a NUL byte)", file);
	fclose(f);
	if (rc) {
		free(text);
		return rc;
	}
	*ret = text;
	*ret_len = len;
	return 0;
}

/* The template of the notes, compiled: --template FILE, else
 * release.notes_template of the configuration, else the built-in one. */
static int load_template(const struct cli *c, const struct report_options *o, const struct config *cfg,
			 struct tpl **ret)
{
	const char *file = o->template_file ? o->template_file : cfg ? cfg->release.notes_template : NULL;
	char *text = NULL, err[1200];
	size_t len = 0;
	int rc = 0, r;

	if (file && (rc = read_template(c, file, &text, &len)))
		return rc;
	r = file ? tpl_compile(text, len, file, notes_schema, ret, err, sizeof(err))
		 : tpl_compile(notes_default_template, strlen(notes_default_template), "(built-in template)",
			       notes_schema, ret, err, sizeof(err));
	if (r < 0)
		rc = cli_fail(c, r == -ENOMEM ? EXIT_FAILED : EXIT_USAGE,
			      json_pack("{ss}", "template", file ? file : "(built-in template)"), "%s", err);
	free(text);
	return rc;
}

static const char *changelog_file(const struct config *cfg, const char *service)
{
	for (size_t i = 0; cfg && service && i < cfg->nservices; i++)
		if (!strcmp(cfg->services[i].name, service) && cfg->services[i].changelog)
			return cfg->services[i].changelog;
	return DEFAULT_CHANGELOG;
}

/* Write TEXT to FILE whole or not at all (a temporary file renamed).
 * Returns 0 or an exit code after cli_fail(). */
static int write_output(const struct cli *c, const char *file, const char *text)
{
	char *tmp = NULL;
	FILE *f;
	int rc = 0;

	if (asprintf(&tmp, "%s.tmp.%d", file, (int)getpid()) < 0)
		return cli_fail(c, EXIT_FAILED, NULL, "out of memory");
	if (!(f = fopen(tmp, "we"))) {
		rc = cli_fail(c, EXIT_FAILED, json_pack("{ss}", "file", file), "cannot write %s: %s", file,
			      strerror(errno));
	} else {
		bool bad = fputs(text, f) < 0;
		bad = fclose(f) != 0 || bad;
		if (bad || rename(tmp, file) < 0) {
			rc = cli_fail(c, EXIT_FAILED, json_pack("{ss}", "file", file), "cannot write %s: %s", file,
				      strerror(errno));
			unlink(tmp);
		}
	}
	free(tmp);
	return rc;
}

/* The changelog of each service step of RUN's report, in order, into
 * texts[] and files[] (NSTEPS entries each, zeroed by the caller). */
static void read_changelogs(const struct cli *c, struct state *st, const struct config *cfg, json_t *run,
			    char **texts, const char **files)
{
	json_t *s;
	size_t i, n = 0;

	json_array_foreach(json_object_get(json_object_get(run, "report"), "steps"), i, s) {
		const char *kind = json_string_value(json_object_get(s, "kind"));
		const char *name = json_string_value(json_object_get(s, "name"));
		const char *version = json_string_value(json_object_get(s, "version"));

		if (!kind || strcmp(kind, "service"))
			continue;
		files[n] = changelog_file(cfg, name);
		if (name && version)
			texts[n] = changelog(c, st, name, version, files[n]);
		n++;
	}
}

int report_notes(const struct cli *c, const struct report_options *o)
{
	const char *path = cli_config_path(c);
	struct config *cfg = NULL;
	struct state *st = NULL;
	struct tpl *t = NULL;
	json_t *run = NULL, *data = NULL;
	char **texts = NULL, *notes = NULL;
	const char **files = NULL;
	size_t nsteps = 0;
	int rc;

	if ((path && (rc = cli_load_config(c, path, &cfg))) || (rc = load_template(c, o, cfg, &t)) ||
	    (rc = report_load(c, c->args[0], &st, &run)))
		goto out;
	nsteps = json_array_size(json_object_get(json_object_get(run, "report"), "steps"));
	texts = calloc(nsteps + 1, sizeof(*texts));
	files = calloc(nsteps + 1, sizeof(*files));
	if (!texts || !files) {
		rc = cli_fail(c, EXIT_FAILED, NULL, "out of memory");
		goto out;
	}
	read_changelogs(c, st, cfg, run, texts, files);
	if (!(data = notes_data(run, (const char *const *)texts, files)) || tpl_render(t, data, &notes) < 0) {
		rc = cli_fail(c, EXIT_FAILED, NULL, "out of memory");
		goto out;
	}
	if (o->output)
		rc = write_output(c, o->output, notes);
	if (rc == 0 && c->json)
		cli_print_json(json_pack("{sO ss so}", "id", json_object_get(run, "id"), "notes", notes, "file",
					 o->output ? json_string(o->output) : json_null()));
	else if (rc == 0 && !o->output)
		fputs(notes, stdout);
	else if (rc == 0)
		fprintf(stderr, "release notes of release %lld written to %s\n",
			(long long)json_integer_value(json_object_get(run, "id")), o->output);
out:
	for (size_t i = 0; texts && i < nsteps; i++)
		free(texts[i]);
	free(texts);
	free(files);
	free(notes);
	json_decref(data);
	json_decref(run);
	tpl_free(t);
	state_close(st);
	config_free(cfg);
	return rc;
}
