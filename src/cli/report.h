/* report.h - what `cutover release list|show` (release-report.c) and
 * `cutover release notes` (release-notes.c) share: the stored report of a
 * release run (docs/internals/releases.md "The report") read back, and
 * its figures as text.  Private to src/cli.
 */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cli/template.h"

struct cli;
struct state;

/* The options of `cutover release list|show|notes`. */
struct report_options {
	int64_t since_ms, until_ms;   /* list --since, --until (0: open) */
	long limit;                   /* list --limit (default 20) */
	bool markdown;                /* show --markdown */
	const char *template_file;    /* notes --template FILE */
	const char *output;           /* notes -o FILE */
};

/* A duration for people: "850ms", "12.3s", "4m05s", "2h07m".  Returns
 * out. */
const char *report_duration(int64_t ms, char *out, size_t len);
/* How long OBJ (the report, a gate, a step) took: its duration_ms, else
 * finished_at - started_at when both are set; -1 if not known (yet). */
int64_t report_elapsed(json_t *obj);
/* The same as text (report_duration), or UNKNOWN.  Returns out or UNKNOWN. */
const char *report_elapsed_text(json_t *obj, const char *unknown, char *out, size_t len);
/* A member of a report object as text: a string as is, a number in
 * decimal, anything else (null, missing) "". */
const char *report_text(json_t *obj, const char *key, char *buf, size_t len);
/* The figures of a gate of the report: its object members but
 * "threshold" ("tests", "coverage", "metric") as "tests: tests 41, passed
 * 41, failed 0" (joined by "; "), "" if it has none. */
void report_gate_figures(json_t *gate, char *out, size_t len);
/* Its threshold object as "min_tests 1, max_failed 0", "" if none. */
void report_gate_threshold(json_t *gate, char *out, size_t len);

/* Run ID_TEXT of the state as cli_open_state() finds it: *ret_run is the
 * row as state_release_run_get() gives it (its "report" the stored
 * document; the caller decrefs), *ret_st the open state (state_close()
 * it; NULL: not wanted, closed here).  Returns 0, or an exit code after
 * cli_fail(): EXIT_USAGE for an ID that is not a positive number,
 * EXIT_FAILED for a missing state or run. */
int report_load(const struct cli *c, const char *id_text, struct state **ret_st, json_t **ret_run);

/* ---- release notes (release-notes.c) ---------------------------------- */

/* `cutover release notes ID`: c->args[0] is the ID. */
int report_notes(const struct cli *c, const struct report_options *o);

/* The names a notes template may use (docs/releases.md "Templates"), and
 * the built-in template. */
extern const struct tpl_field notes_schema[];
extern const char notes_default_template[];

/* The part of changelog TEXT (LEN bytes) about VERSION: the body under the
 * first Markdown heading ("#" to "######") that names it as its first
 * word ("## 1.2.0", "## [1.2.0] - 2026-12-01", "### v1.2.0 (...)"), up to
 * the next heading of the same or a higher level.  Returns true with
 * *start and *slen (blank lines around trimmed), or false if no heading
 * names it.  Pure. */
bool notes_changelog_section(const char *text, size_t len, const char *version, size_t *start, size_t *slen);

/* The object a notes template is rendered with, from RUN (a row of
 * report_load(), borrowed); changelogs[i] (may be NULL) is the changelog
 * text of the i-th service step of the report, in report order, with
 * changelog_files[i] its file name.  A new object, or NULL (out of
 * memory). */
json_t *notes_data(json_t *run, const char *const *changelogs, const char *const *changelog_files);
