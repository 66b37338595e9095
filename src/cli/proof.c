/* proof.c - `cutover export-proof SERVICE [-o FILE]`: the signed record of
 * what runs of SERVICE in this environment (its version, the digest of its
 * release, whether it is healthy, since when it has been live after its
 * analysis), as the daemon states and signs it (GET
 * /v1/services/NAME/proof), for `cutover promote --proof FILE` on another
 * machine (docs/internals/promotion.md).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli/cli.h"
#include "state/proof.h"
#include "state/state.h"

static int proof_option(struct cli *c, int opt, const char *arg)
{
	if (opt != 'o')
		return EXIT_USAGE;
	if (!*arg)
		return cli_fail(c, EXIT_USAGE, NULL, "-o: empty path");
	*(const char **)c->data = arg;
	return -1;
}

/* Write proof to FILE (through FILE.tmp, renamed: never half a proof). */
static int write_proof(const struct cli *c, const char *file, json_t *proof)
{
	char tmp[4200];

	snprintf(tmp, sizeof(tmp), "%s.tmp-%d", file, (int)getpid());
	if (json_dump_file(proof, tmp, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0 || rename(tmp, file) < 0) {
		int e = errno;
		unlink(tmp);
		return cli_fail(c, EXIT_FAILED, NULL, "-o %s: cannot write it: %s", file, strerror(e));
	}
	return 0;
}

/* What the proof says, for a person: "shop 1.4.0 (sha256:ab12...) live in
 * staging since ..., healthy". */
static void describe(const struct proof *p, char *out, size_t len)
{
	char since[40];

	state_format_time(p->live_since, since, sizeof(since));
	if (p->live_since)
		snprintf(out, len, "%s %s (sha256:%.12s...) live in %s since %s (%llds), %s", p->service, p->version,
			 p->digest, p->env[0] ? p->env : "this environment", since,
			 (long long)((p->exported_at - p->live_since) / 1000), p->healthy ? "healthy" : "NOT healthy");
	else
		snprintf(out, len, "%s %s (sha256:%.12s...) live in %s, its deployment not done yet (not through its "
			 "analysis: a promotion refuses it), %s", p->service, p->version, p->digest,
			 p->env[0] ? p->env : "this environment", p->healthy ? "healthy" : "NOT healthy");
}

int cli_export_proof(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ 0 },
	};
	const char *file = NULL;
	struct cli c = {
		.verb = "export-proof",
		.flags = CLI_CONFIG | CLI_SOCKET,
		.synopsis = "SERVICE",
		.min_args = 1,
		.max_args = 1,
		.options = opts,
		.shortopts = "o:",
		.option = proof_option,
		.data = &file,
	};
	char *sock = NULL, *answer = NULL, path[200], text[600], err[256];
	struct proof p;
	json_t *proof = NULL;
	int status, rc = cli_parse(&c, argc, argv);

	if (rc >= 0)
		return rc;
	if (strchr(c.args[0], '/') || strlen(c.args[0]) > 100)
		return cli_fail(&c, EXIT_USAGE, NULL, "not a service name: %s", c.args[0]);
	rc = cli_socket_path(&c, &sock);
	if (rc)
		return rc;
	snprintf(path, sizeof(path), "/v1/services/%s/proof", c.args[0]);
	rc = cli_call(&c, sock, "GET", path, NULL, &status, &answer);
	if (rc)
		goto out;
	proof = json_loads(answer, 0, NULL);
	if (status != 200 || !proof || proof_parse(proof, &p, err, sizeof(err)) < 0) {
		const char *e = json_string_value(json_object_get(proof, "error"));
		rc = cli_fail(&c, status == 404 ? EXIT_USAGE : EXIT_FAILED, json_pack("{si}", "status", status), "%s",
			      e ? e : status == 200 ? err : answer);
		goto out;
	}
	describe(&p, text, sizeof(text));
	if (file && (rc = write_proof(&c, file, proof)))
		goto out;
	if (c.json && file)
		cli_print_json(json_pack("{s:b, s:s, s:s, s:O}", "ok", 1, "file", file, "summary", text, "proof", proof));
	else if (!file)
		cli_print_json(json_incref(proof));
	else
		printf("%s: proof written to %s (signed by %s)\n", text, file, p.key);
	rc = EXIT_OK;
out:
	json_decref(proof);
	free(answer);
	free(sock);
	return rc;
}
