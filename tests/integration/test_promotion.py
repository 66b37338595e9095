"""test_promotion.py - the same artifact from staging to prod (issue 11,
point 2): two daemons from one cutover.yml and two overlays (--env
staging, --env prod: separate ports, state directories, sockets), the
real shop of examples/shop.

* A digest proven in staging is deployed to prod: refused while it has run
  less than the soak time (the refusal says how long is left), then
  deployed, the release copied from staging's store into prod's with the
  very same digest, recorded and audited as a promotion.
* An unproven digest is refused: nothing live in staging; a version still
  in its watch window there (not through its analysis).
* A digest rebuilt under the same version is refused: prod's store holds
  that version with other content (the CLI says so; a deploy by digest to
  the daemon fails saying so too).
* An export from staging (`cutover export-proof -o FILE`) is accepted by a
  separate prod daemon (another directory: another machine's view) that
  trusts staging's key and holds the same artifact; refused while the key
  is not trusted, and while the artifact is not in its store.
* A tampered export is refused: the digest, the soak time (live_since) or
  the signature changed, through the CLI and straight through the API;
  each refusal audited.
"""
import json
import os
import re
import shutil
import time

from harness import *
from envpair import *

PROD = "promotion:\n  from: staging\n  soak: {soak}\n{trust}"


def prod_overlay(soak="0s", trust=None):
    lines = "" if trust is None else "  trust:\n" + "".join(f"    - \"{k}\"\n" for k in trust)
    return PROD.format(soak=soak, trust=lines)


def staging_key(s):
    with open(os.path.join(s["staging"].state, "proof.pub")) as f:
        return f.read().strip()


def promote(s, *extra, config=None):
    args = ["promote", "shop", "--from", "staging", "--to", "prod", *extra]
    return s.cli(*args) if config is None else subprocess_cli(config, *args)


def subprocess_cli(config, *args):
    return subprocess.run([BIN, *args, "--config", config], capture_output=True, text=True, timeout=60,
                          cwd=os.path.dirname(config), env=clean_env())


def audit_rows(env, action):
    return [(a["action"], a["result"], a["detail"] or "") for a in env.audit() if a["action"] == action]


# ---------------------------------------------------------------- one machine

def test_proven_digest_promoted_after_its_soak():
    """prod asks for 4 s of soak.  Just after staging's deploy of 1.0.0 is
    done, the promotion is refused with the time left; once it has run 4 s
    it is deployed to prod: the release is copied from staging's store
    (prod's had none) with the same digest, prod serves it, and prod's
    history and audit say it was promoted from staging."""
    with site({"staging": "", "prod": prod_overlay(soak="4s")}) as s:
        staging, prod = s["staging"], s["prod"]
        staging.add_release("1.0.0")
        staging.deploy("1.0.0")
        digest = staging.releases()["1.0.0"]
        eq(prod.releases(), {}, "prod's store before")

        r = promote(s)
        eq(r.returncode, 1, f"promote before the soak: {r.stdout}{r.stderr}")
        # (the release is copied before prod's daemon judges the proof: the
        # very same digest, kept for the next attempt)
        check("copied shop 1.0.0 (sha256:" + digest[:12] in r.stdout, f"the copy is told: {r.stdout}")
        eq(prod.releases(), {"1.0.0": digest}, "prod's store after the copy")
        m = re.search(r"1\.0\.0 \(sha256:([0-9a-f]{12})\.\.\.\) has run (\d)s in staging; soak is 4s: (\d)s left",
                      r.stderr)
        check(m, f"the refusal says how long is left: {r.stderr!r}")
        eq(m.group(1), digest[:12], "the digest named")
        check(int(m.group(2)) + int(m.group(3)) in (4, 5), f"run + left = the soak: {m.groups()}")
        eq(prod.managed()["live"], None, "prod runs nothing after the refusal")

        time.sleep(int(m.group(3)) + 0.5)
        r = promote(s)
        eq(r.returncode, 0, f"promote after the soak: {r.stdout}{r.stderr}")
        check("copied" not in r.stdout, f"nothing copied twice: {r.stdout}")
        check(re.search(r"starting\s+promotion from staging: sha256:" + digest[:12], r.stdout), r.stdout)
        check(r.stdout.rstrip().endswith("done"), f"the promotion ends done: {r.stdout}")
        eq(prod.releases(), {"1.0.0": digest}, "prod's store: the very same digest")
        eq(prod.served(), "1.0.0", "prod serves it")
        row = prod.history()[0]
        eq((row["to_version"], row["state"], row["digest"], row["promoted_from"]),
           ("1.0.0", "done", digest, "staging"), "prod's history")
        rows = audit_rows(prod, "promote")
        eq([x[1] for x in rows], ["done", "refused"], f"prod's audit of the promotions: {rows}")
        check("soak is 4s" in rows[1][2], f"the refusal audited with its reason: {rows[1]}")
        check(any(a["action"] == "release.add" and "copied from the store of staging" in (a["detail"] or "")
                  for a in prod.audit()), "the copy audited")
        # prod's own proof now names the same digest
        proof = json.loads(prod.cli_ok("export-proof", "shop").stdout)
        eq((proof["env"], proof["version"], proof["digest"], proof["healthy"]), ("prod", "1.0.0", digest, True),
           "prod's proof")
        print(f"    refused with {m.group(3)}s left, then promoted sha256:{digest[:12]}...")


def test_unproven_digest_refused():
    """Nothing live in staging: refused.  1.1.0 switched in staging but
    still in its watch window (not through its analysis): its proof says so
    (live_since 0) and prod refuses it; once its watch is over it is
    promoted."""
    with site({"staging": "", "prod": prod_overlay()}) as s:
        staging, prod = s["staging"], s["prod"]
        r = promote(s)
        eq(r.returncode, 1, f"promote with nothing in staging: {r.stderr}")
        check("shop has no version live in staging: nothing to prove" in r.stderr, r.stderr)

        staging.add_release("1.0.0")
        staging.add_release("1.1.0")
        staging.deploy("1.0.0")
        staging.reload("services:\n  shop:\n    deploy:\n      watch: 20s\n")
        p = subprocess.Popen([BIN, "deploy", "shop", "1.1.0", "--config", s.cfg, "--env", "staging"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
        try:
            wait_until(lambda: (staging.managed()["deploying"] or {}).get("phase") == "switched", timeout=15,
                       what="1.1.0 switched in staging")
            proof = json.loads(staging.cli_ok("export-proof", "shop").stdout)
            eq((proof["version"], proof["live_since"], proof["healthy"]), ("1.1.0", 0, True),
               "the proof of a version in its watch window")
            r = promote(s)
            eq(r.returncode, 1, f"promote during the watch: {r.stdout}{r.stderr}")
            check(re.search(r"1\.1\.0 \(sha256:[0-9a-f]{12}\.\.\.\) has not run in staging through its analysis yet",
                            r.stderr), r.stderr)
            eq(prod.managed()["live"], None, "prod runs nothing")
            check(any(x[1] == "refused" and "through its analysis" in x[2] for x in audit_rows(prod, "promote")),
                  "the refusal audited")
        finally:
            p.kill()
            p.wait()
        print(f"    refused: {r.stderr.strip()}")


def test_rebuilt_version_refused():
    """prod's store holds 1.0.0 with other bytes (a rebuild of the same
    version): the promotion of staging's 1.0.0 is refused, naming both
    digests, and nothing is deployed; a deploy by digest straight to prod's
    daemon fails for the same reason."""
    with site({"staging": "", "prod": prod_overlay()}) as s:
        staging, prod = s["staging"], s["prod"]
        staging.add_release("1.0.0")
        staging.deploy("1.0.0")
        rebuilt = os.path.join(s.dir, "rebuild", "shop-1.0.0")
        os.makedirs(os.path.dirname(rebuilt))
        shutil.copy(shop_binary("1.0.0"), rebuilt)
        with open(rebuilt, "ab") as f:
            f.write(b"\0rebuilt")
        prod.add_release("1.0.0", rebuilt)
        proven, other = staging.releases()["1.0.0"], prod.releases()["1.0.0"]
        check(proven != other, "two digests")

        r = promote(s)
        eq(r.returncode, 1, f"promote of a rebuilt version: {r.stdout}{r.stderr}")
        check(f"prod's store holds shop 1.0.0 as sha256:{other[:12]}..., not the sha256:{proven[:12]}... proven in "
              "staging: 1.0.0 was rebuilt under the same version" in r.stderr, r.stderr)
        eq(prod.managed()["live"], None, "prod runs nothing")
        check(any(x[1] == "refused" and "rebuilt" in x[2] for x in audit_rows(prod, "promote")), "audited")

        st, dep = prod.api("POST", "/v1/deploy", {"service": "shop", "version": "1.0.0", "digest": proven})
        eq(st, 202, f"deploy by digest: {dep}")
        wait_until(lambda: prod.history()[0]["state"] == "failed", timeout=10, what="the deploy by digest failed")
        row = prod.history()[0]
        check(f"holds shop 1.0.0 as sha256:{other[:12]}..., not sha256:{proven[:12]}... as asked: 1.0.0 was rebuilt"
              in row["reason"], f"the failure's reason: {row['reason']}")
        eq(row["digest"], proven, "the digest asked for is recorded")
        st, dep = prod.api("POST", "/v1/deploy", {"service": "shop", "version": "1.0.0", "digest": "xyz"})
        eq(st, 400, f"a digest that is not one: {dep}")
        print(f"    refused: {r.stderr.strip()[:160]}...")


# ---------------------------------------------------------------- two machines

def exported(s, tmpdir):
    """staging (of site s) runs 1.0.0 and exports its proof into a file."""
    staging = s["staging"]
    staging.add_release("1.0.0")
    staging.deploy("1.0.0")
    path = os.path.join(tmpdir, "shop.proof")
    r = staging.cli_ok("export-proof", "shop", "-o", path)
    check(re.match(r"shop 1\.0\.0 \(sha256:[0-9a-f]{12}\.\.\.\) live in staging since \S+ \(\d+s\), healthy: "
                   r"proof written to ", r.stdout), f"export-proof said: {r.stdout}")
    return path


def test_export_accepted_by_a_separate_prod_daemon():
    """Another directory holds prod's own cutover.yml and cutover.prod.yml
    (no staging in it: another machine).  Its promotion.trust first names
    another key: the exported proof is refused as untrusted.  Trusting
    staging's key, it is refused while prod's store lacks the artifact;
    once the same artifact is added there, it is promoted."""
    with site({"staging": ""}) as a, site({"prod": prod_overlay(trust=["ed25519:" + "A" * 43 + "="])}) as b:
        path = exported(a, b.dir)
        proof = json.load(open(path))
        prod = b["prod"]
        r = promote(b, "--proof", path)
        eq(r.returncode, 1, f"promote without the artifact: {r.stdout}{r.stderr}")
        check(f"shop 1.0.0 (sha256:{proof['digest'][:12]}...) is not in prod's release store: add the very same "
              "artifact first" in r.stderr, r.stderr)

        prod.add_release("1.0.0")
        r = promote(b, "--proof", path)
        eq(r.returncode, 1, f"promote with an untrusted key: {r.stdout}{r.stderr}")
        check(f"the proof is signed by {staging_key(a)}, which prod does not trust" in r.stderr, r.stderr)

        prod.reload(prod_overlay(soak="0s", trust=[staging_key(a)]))
        r = promote(b, "--proof", path)
        eq(r.returncode, 0, f"promote with the proof file: {r.stdout}{r.stderr}")
        eq(prod.releases(), {"1.0.0": proof["digest"]}, "prod's store")
        row = prod.history()[0]
        eq((row["state"], row["digest"], row["promoted_from"]), ("done", proof["digest"], "staging"), "prod's history")
        eq(prod.served(), "1.0.0", "prod serves it")
        eq([x[1] for x in audit_rows(prod, "promote")], ["done", "refused", "refused"], "prod's audit")


def tampered(proof, what):
    p = dict(proof)
    if what == "digest":
        p["digest"] = ("0" if p["digest"][0] != "0" else "1") + p["digest"][1:]
    elif what == "live_since":
        p["live_since"] -= 3600 * 1000  # an hour more of soak
    elif what == "signature":
        sig = p["signature"]
        p["signature"] = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    return p


def test_tampered_export_refused():
    """The exported proof with its digest, its live_since (more soak) or
    its signature changed: `cutover promote --proof` refuses each (exit 1,
    "does not verify"), and so does prod's daemon when the proof is posted
    straight to POST /v1/promote (409), each refusal audited; the proof
    as exported is then accepted."""
    with site({"staging": ""}) as a, site({"prod": ""}) as b:
        path = exported(a, b.dir)
        proof = json.load(open(path))
        prod = b["prod"]
        prod.reload(prod_overlay(soak="1h", trust=[staging_key(a)]))
        prod.add_release("1.0.0")
        for what in ("digest", "live_since", "signature"):
            bad = os.path.join(b.dir, f"tampered-{what}.proof")
            with open(bad, "w") as f:
                json.dump(tampered(proof, what), f)
            r = promote(b, "--proof", bad)
            eq(r.returncode, 1, f"tampered {what} through the CLI: {r.stdout}{r.stderr}")
            check("the proof does not verify: a signed field" in r.stderr, f"tampered {what}: {r.stderr}")
            st, body = prod.api("POST", "/v1/promote", {"service": "shop", "from": "staging",
                                                        "proof": tampered(proof, what)})
            eq(st, 409, f"tampered {what} through the API: {body}")
            check("does not verify" in body["error"], body["error"])
        rows = audit_rows(prod, "promote")
        eq(len([x for x in rows if x[1] == "refused" and "does not verify" in x[2]]), 6, f"audited: {rows}")
        eq(prod.managed()["live"], None, "prod runs nothing")
        # untampered: the soak of an hour is what refuses it now, with the time left
        r = promote(b, "--proof", path)
        eq(r.returncode, 1, r.stderr)
        check(re.search(r"has run \d+s in staging; soak is 1h: (1h00m|59m\d\ds) left", r.stderr), r.stderr)
        prod.reload(prod_overlay(soak="0s", trust=[staging_key(a)]))
        r = promote(b, "--proof", path)
        eq(r.returncode, 0, f"the proof as exported: {r.stdout}{r.stderr}")
        eq(prod.served(), "1.0.0", "prod serves it")
