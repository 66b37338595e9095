"""The encrypted secrets files through the command line (`cutover secrets
keygen|set|list|rm|recipients|rotate`) and their interoperability with
Debian's `age` in both directions: what cutover writes `age -d` reads, what
`age -r`/`age -R`/`age -a` writes cutover reads, for one and several
recipients.  Each damage a file can take (another key, a changed header, a
changed payload chunk, a truncation) and an identity that others may read
is refused with a message that says which, and changes nothing.  A value
never shows in argv, in any output, in the audit, or anywhere in the state
directory (SQLite included).  No daemon: these verbs work on files."""
import base64
import os
import pty
import select
import shutil
import sqlite3
import stat
import subprocess
import tempfile
from harness import *

AGE = shutil.which("age")
AGE_KEYGEN = shutil.which("age-keygen")

CONFIG = """listen: 127.0.0.1:18999
state_dir: state
services:
  shop:
    run: ./shop --port ${PORT}
    secrets:
      - DB_PASSWORD
      - {name: STRIPE_KEY, file: stripe.key}
"""


class Sandbox:
    """A directory with cutover.yml (and cutover.prod.yml), its state
    directory and the identity cutover keygen wrote there."""

    def __enter__(self):
        check(AGE and AGE_KEYGEN, "Debian's age is not installed (bash scripts/bootstrap)")
        self.root = tempfile.mkdtemp(prefix="cutover-secrets-")
        self.write("cutover.yml", CONFIG)
        self.write("cutover.prod.yml", "listen: 127.0.0.1:18998\n")
        self.identity = self.path("state", "identity.key")
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.root)

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def write(self, name, content, mode=0o644):
        p = self.path(name)
        with open(p, "wb") as f:
            f.write(content if isinstance(content, bytes) else content.encode())
        os.chmod(p, mode)
        return p

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()

    def cli(self, *args, input=None, env=None):
        e = {k: v for k, v in os.environ.items() if not k.startswith("CUTOVER_")}
        e.update(env or {})
        return subprocess.run([BIN, "secrets", *args], input=input, capture_output=True, timeout=30, env=e,
                              cwd=self.root)

    def ok(self, *args, input=None, env=None):
        r = self.cli(*args, input=input, env=env)
        eq(r.returncode, 0, f"exit status of secrets {' '.join(args)} (stderr {r.stderr!r})")
        eq(r.stderr, b"", f"stderr of secrets {' '.join(args)}")
        return r.stdout.decode()

    def fails(self, args, code, message, input=None, env=None):
        r = self.cli(*args, input=input, env=env)
        eq(r.returncode, code, f"exit status of secrets {' '.join(args)} (stdout {r.stdout!r}, stderr {r.stderr!r})")
        check(message in r.stderr.decode(), f"secrets {' '.join(args)}: expected {message!r} in {r.stderr!r}")
        return r

    def keygen(self):
        """cutover's own identity (state/identity.key); its public key."""
        out = self.ok("keygen")
        return out.split("public key: ")[1].strip()

    def age_key(self, name):
        """An identity written by age-keygen; its public key."""
        p = self.path(name)
        subprocess.run([AGE_KEYGEN, "-o", p], check=True, capture_output=True)
        os.chmod(p, 0o600)
        return subprocess.run([AGE_KEYGEN, "-y", p], check=True, capture_output=True, text=True).stdout.strip()

    def age_decrypt(self, identity, name="secrets.age"):
        return subprocess.run([AGE, "-d", "-i", identity, self.path(name)], capture_output=True)

    def state_bytes(self):
        """Every byte under the state directory (SQLite, its WAL, ...)."""
        out = b""
        for d, _, files in os.walk(self.path("state")):
            for f in files:
                with open(os.path.join(d, f), "rb") as fh:
                    out += fh.read()
        return out

    def audit_rows(self):
        db = sqlite3.connect(self.path("state", "state.db"))
        try:
            return db.execute("SELECT action, target, args, result, detail FROM audit ORDER BY id").fetchall()
        finally:
            db.close()


def plaintext(entries):
    """The secrets file format of secrets.h: (name, changed, by, value)."""
    lines = ["cutover-secrets v1"]
    for name, changed, by, value in sorted(entries):
        lines.append(f"{name} {changed} {by} {base64.b64encode(value).decode()}")
    return ("\n".join(lines) + "\n").encode()


def parse_plaintext(data):
    lines = data.decode().split("\n")
    eq(lines[0], "cutover-secrets v1", "first line of the plaintext")
    out = {}
    for line in lines[1:]:
        if line:
            name, changed, by, value = line.split(" ")
            out[name] = (int(changed), by, base64.b64decode(value))
    return out


def test_keygen_mode_and_age_keygen_agrees():
    with Sandbox() as sb:
        pub = sb.keygen()
        st = os.stat(sb.identity)
        eq(stat.S_IMODE(st.st_mode), 0o600, "mode of the identity")
        eq(stat.S_IMODE(os.stat(sb.path("state")).st_mode), 0o700, "mode of the directory keygen created")
        y = subprocess.run([AGE_KEYGEN, "-y", sb.identity], capture_output=True, text=True)
        eq(y.returncode, 0, f"age-keygen -y of cutover's identity ({y.stderr!r})")
        eq(y.stdout.strip(), pub, "public key per age-keygen -y")
        lines = sb.read("state/identity.key").decode().splitlines()
        check(lines[0].startswith("# created: 20"), f"first line: {lines[0]!r}")
        eq(lines[1], f"# public key: {pub}", "second line")
        check(lines[2].startswith("AGE-SECRET-KEY-1") and len(lines) == 3, f"the key line: {len(lines)} lines")

        # never overwritten
        before = sb.read("state/identity.key")
        sb.fails(["keygen"], 1, "already exists: an identity is never overwritten")
        eq(sb.read("state/identity.key"), before, "identity after a second keygen")

        # keygen FILE, --json; the audit names the public key, never the secret key
        j = json.loads(sb.ok("keygen", sb.path("laptop.key"), "--json"))
        eq(j["identity"], sb.path("laptop.key"), "identity in --json")
        check(j["public_key"].startswith("age1"), f"public key in --json: {j!r}")
        rows = sb.audit_rows()
        eq([r[0] for r in rows], ["secrets.keygen"], "audit of the configured identity's keygen only")
        eq(json.loads(rows[0][2]), {"public_key": pub}, "audit args of keygen")
        check(b"AGE-SECRET-KEY" not in sb.state_bytes().replace(before, b""), "a secret key in the state")


def test_identity_readable_by_others_refused():
    with Sandbox() as sb:
        pub = sb.keygen()
        sb.ok("recipients", "add", pub)
        sb.ok("set", "DB_PASSWORD", input=b"correct horse battery")
        for mode in (0o640, 0o604, 0o644, 0o620):
            os.chmod(sb.identity, mode)
            r = sb.fails(["list"], 1, f"run `chmod 600 {sb.identity}`")
            check(f"mode 0{mode:o}" in r.stderr.decode(), f"the mode in {r.stderr!r}")
            sb.fails(["set", "OTHER"], 1, "readable or writable by group or others", input=b"value-1234")
        os.chmod(sb.identity, 0o600)
        check("OTHER" not in sb.ok("list"), "a set with a refused identity changed the file")


def test_cutover_writes_age_reads_three_recipients():
    with Sandbox() as sb:
        mine = sb.keygen()
        alice = sb.age_key("alice.key")
        server = sb.age_key("server.key")
        for pub in (mine, alice, server):
            sb.ok("recipients", "add", pub)
        eq(sb.ok("recipients").split(), [mine, alice, server], "recipients listed")
        # the recipients file is what age -R reads
        eq([l for l in sb.read("secrets.recipients").decode().splitlines() if not l.startswith("#")],
           [mine, alice, server], "recipients file lines")
        value = b"pa55 word with spaces and \xe2\x82\xac"
        sb.ok("set", "DB_PASSWORD", input=value + b"\n")
        sb.ok("set", "STRIPE_KEY", input=b"sk_live_0123456789\n\n")   # only one newline is dropped

        for key in (sb.identity, sb.path("alice.key"), sb.path("server.key")):
            d = sb.age_decrypt(key)
            eq(d.returncode, 0, f"age -d -i {key} ({d.stderr!r})")
            got = parse_plaintext(d.stdout)
            eq(sorted(got), ["DB_PASSWORD", "STRIPE_KEY"], "names age decrypted")
            eq(got["DB_PASSWORD"][2], value, "value age decrypted")
            eq(got["STRIPE_KEY"][2], b"sk_live_0123456789\n", "value with its second newline")
            # and cutover reads it with each identity
            out = sb.ok("list", "--identity", key)
            check("DB_PASSWORD" in out and "STRIPE_KEY" in out, f"list with {key}: {out!r}")

        # the binary format: version line, one X25519 stanza per recipient, the MAC
        head = sb.read("secrets.age").split(b"\n---")[0].decode().split("\n")
        eq(head[0], "age-encryption.org/v1", "version line")
        eq(len([l for l in head if l.startswith("-> X25519 ")]), 3, f"stanzas: {head!r}")
        eq(stat.S_IMODE(os.stat(sb.path("secrets.age")).st_mode), 0o600, "mode of the secrets file")


def test_age_writes_cutover_reads():
    with Sandbox() as sb:
        mine = sb.keygen()
        other = sb.age_key("other.key")
        text = plaintext([("API_TOKEN", 1700000000, "alice", b"t0ken-from-age"),
                          ("DB_PASSWORD", 1700000001, "-", b"hunter2!")])
        sb.write("plain.txt", text)
        # age -r, age -R (cutover's recipients file), age -a (armored)
        sb.ok("recipients", "add", mine)
        sb.ok("recipients", "add", other)
        for how in (["-r", mine, "-r", other], ["-R", sb.path("secrets.recipients")],
                    ["-a", "-R", sb.path("secrets.recipients")]):
            os.unlink(sb.path("secrets.age")) if os.path.exists(sb.path("secrets.age")) else None
            e = subprocess.run([AGE, "-e", *how, "-o", sb.path("secrets.age"), sb.path("plain.txt")],
                               capture_output=True)
            eq(e.returncode, 0, f"age -e {how} ({e.stderr!r})")
            j = json.loads(sb.ok("list", "--json"))
            eq([(s["name"], s["changed_unix"], s["changed_by"]) for s in j["secrets"]],
               [("API_TOKEN", 1700000000, "alice"), ("DB_PASSWORD", 1700000001, None)], f"list after age {how}")
            eq(j["secrets"][0]["changed"], "2023-11-14T22:13:20Z", "changed as a date")
        # a change to the file age wrote keeps what was there
        sb.ok("set", "NEW_ONE", input=b"brand new value")
        got = parse_plaintext(sb.age_decrypt(sb.path("other.key")).stdout)
        eq(sorted(got), ["API_TOKEN", "DB_PASSWORD", "NEW_ONE"], "names after set")
        eq(got["API_TOKEN"], (1700000000, "alice", b"t0ken-from-age"), "an untouched secret")
        check(not sb.read("secrets.age").startswith(b"-----BEGIN"), "cutover writes the binary format")

        # a file that is not in the secrets format: a clear error naming the line, never the value
        sb.write("plain.txt", b"cutover-secrets v1\nDB_PASSWORD 1 - not base64!\n")
        subprocess.run([AGE, "-e", "-r", mine, "-o", sb.path("secrets.age") + ".new", sb.path("plain.txt")],
                       check=True)
        os.replace(sb.path("secrets.age") + ".new", sb.path("secrets.age"))
        r = sb.fails(["list"], 1, "secrets.age (decrypted): line 2: expected NAME CHANGED_UNIX CHANGED_BY BASE64")
        check(b"not base64" not in r.stderr, "the message quotes the line")


def test_damaged_files_refused():
    with Sandbox() as sb:
        mine = sb.keygen()
        stranger = sb.age_key("stranger.key")
        sb.ok("recipients", "add", mine)
        # two values of 48000 bytes: 128 KB of plaintext in base64, two payload chunks
        sb.ok("set", "BIG", input=os.urandom(24000).hex().encode())
        sb.ok("set", "BIGGER", input=os.urandom(24000).hex().encode())
        sb.ok("set", "DB_PASSWORD", input=b"hunter22")
        good = sb.read("secrets.age")
        header_end = good.index(b"\n---") + 4
        header_end = good.index(b"\n", header_end) + 1

        def damaged(data, message, code=1):
            sb.write("secrets.age", data, 0o600)
            for args in (["list"], ["rotate"], ["rm", "DB_PASSWORD"]):
                sb.fails(args, code, message)
            sb.fails(["set", "OTHER"], code, message, input=b"other value")
            eq(sb.read("secrets.age"), data, "the damaged file after the failed verbs")

        sb.write("secrets.age", good, 0o600)
        sb.fails(["list", "--identity", sb.path("stranger.key")], 1,
                 f"not encrypted to this identity ({stranger})")
        stanza = good.index(b"-> X25519 ") + 10
        damaged(good[:stanza] + bytes([good[stanza] ^ 1]) + good[stanza + 1:], "secrets.age: ")
        mac = header_end - 10
        damaged(good[:mac] + (b"A" if good[mac:mac + 1] != b"A" else b"B") + good[mac + 1:],
                "header MAC mismatch: the header was changed after it was written")
        chunk = header_end + 16 + 65536 + 16 + 5
        damaged(good[:chunk] + bytes([good[chunk] ^ 0x20]) + good[chunk + 1:],
                "payload chunk 2 failed authentication")
        damaged(good[:header_end + 16 + 100], "payload chunk 1 failed authentication")
        damaged(good[:header_end + 5], "truncated: the payload nonce is missing")
        damaged(good[:40], "malformed header")
        damaged(good + b"trailing", "payload chunk 2 failed authentication")
        damaged(b"", "not an age file")

        # the good file still works, and age agrees about the damage it refuses
        sb.write("secrets.age", good, 0o600)
        check("BIG" in sb.ok("list"), "list of the good file")


def test_value_never_leaks():
    with Sandbox() as sb:
        value = b"Leaky-Secret-Value-7f3a9c"
        pub = sb.keygen()
        sb.ok("recipients", "add", pub)
        outputs = []
        for args in (["set", "DB_PASSWORD"], ["set", "DB_PASSWORD", "--json"], ["list"], ["list", "--json"],
                     ["rotate"], ["recipients"]):
            r = sb.cli(*args, input=value if args[0] == "set" else None)
            eq(r.returncode, 0, f"secrets {args} ({r.stderr!r})")
            outputs += [r.stdout, r.stderr]
        for out in outputs:
            check(value not in out and base64.b64encode(value) not in out, f"the value in an output: {out!r}")
        state = sb.state_bytes()
        check(value not in state and base64.b64encode(value) not in state, "the value in the state directory")
        check(value not in sb.read("secrets.age"), "the value in clear in the secrets file")
        rows = sb.audit_rows()
        eq([r[0] for r in rows], ["secrets.keygen", "secrets.recipients.add", "secrets.set", "secrets.set",
                                  "secrets.rotate"], "audit actions")
        eq([json.loads(r[2]) for r in rows if r[0] == "secrets.set"], [{"name": "DB_PASSWORD"}] * 2,
           "audit args of set: the name only")
        eq({r[1] for r in rows}, {None}, "audit target without an environment")
        eq({r[3] for r in rows}, {"ok"}, "audit results")

        # the value is passed on stdin: no argument of the process holds it
        p = subprocess.Popen([BIN, "secrets", "set", "API_KEY"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, cwd=sb.root)
        with open(f"/proc/{p.pid}/cmdline", "rb") as f:
            check(b"Leaky" not in f.read(), "the value in the command line")
        out, err = p.communicate(value, timeout=30)
        eq(p.returncode, 0, f"set API_KEY ({err!r})")
        check(value not in out + err, "the value in the output of set")


def test_set_refuses_bad_input():
    with Sandbox() as sb:
        pub = sb.keygen()
        sb.fails(["set", "DB_PASSWORD"], 1, "no recipients: add one with `cutover secrets recipients add age1...`",
                 input=b"value-1234")
        check(not os.path.exists(sb.path("secrets.age")), "a secrets file without recipients")
        sb.ok("recipients", "add", pub)
        sb.fails(["set", "DB-PASSWORD"], 2, "secret names are [A-Za-z_][A-Za-z0-9_]*", input=b"value-1234")
        sb.fails(["set", "X"], 2, "the value has 3 bytes, at least 4 are needed", input=b"abc\n")
        sb.fails(["set", "X"], 2, "the value is empty", input=b"")
        sb.fails(["set", "X"], 2, "the value is longer than 65536 bytes", input=b"x" * 65537)
        sb.fails(["set"], 2, "expected NAME, got 0 arguments")
        sb.fails(["set", "X", "value-on-argv"], 2, "expected NAME, got 2 arguments")
        sb.fails(["frobnicate"], 2, "unknown action 'frobnicate'")
        sb.fails(["recipients", "add", "age1notakey"], 2, "is not an X25519 recipient")
        sb.fails(["recipients", "add", "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0"],
                 2, "is not an X25519 recipient")
        sb.fails(["rm", "NOPE"], 1, "no secrets file (set a secret first)")
        sb.ok("set", "X", input=b"x" * 65536)
        sb.fails(["rm", "NOPE"], 1, "no secret NOPE in")
        os.unlink(sb.path("cutover.yml"))
        sb.fails(["list"], 2, "no configuration: give --config FILE")


def test_rotate_rm_and_recipients():
    with Sandbox() as sb:
        mine = sb.keygen()
        bob = sb.age_key("bob.key")
        sb.ok("recipients", "add", mine)
        out = sb.ok("recipients", "add", mine)
        check(f"{mine} is already a recipient of" in out and "nothing changed" in out, f"add twice: {out!r}")
        sb.ok("set", "DB_PASSWORD", input=b"first-password")
        sb.ok("set", "API_KEY", input=b"api-key-value")
        before = sb.read("secrets.age")
        plain_before = sb.age_decrypt(sb.identity).stdout

        # rotate: a new file key (a different header), the same plaintext
        sb.ok("rotate")
        after = sb.read("secrets.age")
        check(before.split(b"\n---")[0] != after.split(b"\n---")[0], "the header after rotate")
        eq(sb.age_decrypt(sb.identity).stdout, plain_before, "the plaintext after rotate")

        # recipients add: bob can read it now; rm: he cannot any more
        eq(sb.age_decrypt(sb.path("bob.key")).returncode, 1, "bob before he is added")
        out = sb.ok("recipients", "add", bob)
        check("is encrypted to them with a new file key" in out, f"add output: {out!r}")
        eq(sb.age_decrypt(sb.path("bob.key")).stdout, plain_before, "bob after he is added")
        out = sb.ok("recipients", "rm", bob)
        check(f"removed {bob}" in out, f"rm output: {out!r}")
        eq(sb.age_decrypt(sb.path("bob.key")).returncode, 1, "bob after he is removed")
        eq(sb.age_decrypt(sb.identity).stdout, plain_before, "mine after bob is removed")
        sb.fails(["recipients", "rm", bob], 1, "is not a recipient")
        sb.fails(["recipients", "rm", mine], 1, "is the last recipient")
        j = json.loads(sb.ok("recipients", "list", "--json"))
        eq(j["recipients"], [mine], "recipients in --json")

        # a recipient that cannot read the file cannot change who reads it
        sb.ok("recipients", "add", bob)
        other = sb.age_key("other.key")
        sb.fails(["recipients", "add", other, "--identity", sb.path("stranger.key")], 1, "no identity there")
        st = sb.age_key("stranger.key")
        before = (sb.read("secrets.age"), sb.read("secrets.recipients"))
        sb.fails(["recipients", "add", other, "--identity", sb.path("stranger.key")], 1,
                 f"not encrypted to this identity ({st})")
        eq((sb.read("secrets.age"), sb.read("secrets.recipients")), before, "files after a refused add")

        # rm a secret
        out = sb.ok("rm", "API_KEY")
        check("removed API_KEY" in out, f"rm output: {out!r}")
        eq(sorted(parse_plaintext(sb.age_decrypt(sb.identity).stdout)), ["DB_PASSWORD"], "names after rm")
        actions = [r[0] for r in sb.audit_rows()]
        eq(actions, ["secrets.keygen", "secrets.recipients.add", "secrets.set", "secrets.set", "secrets.rotate",
                     "secrets.recipients.add", "secrets.recipients.rm", "secrets.recipients.add", "secrets.rm"],
           "audit actions")


def test_environment_has_its_own_file():
    with Sandbox() as sb:
        mine = sb.keygen()
        sb.ok("--env", "prod", "recipients", "add", mine)
        sb.ok("set", "DB_PASSWORD", "--env", "prod", input=b"prod-password")
        check(os.path.exists(sb.path("secrets.prod.age")), "secrets.prod.age")
        check(not os.path.exists(sb.path("secrets.age")), "the base's file was not written")
        j = json.loads(sb.ok("list", "--json", env={"CUTOVER_ENV": "prod"}))
        eq((j["env"], j["file"], [s["name"] for s in j["secrets"]]),
           ("prod", sb.path("secrets.prod.age"), ["DB_PASSWORD"]), "list of prod")
        eq(json.loads(sb.ok("list", "--json"))["secrets"], [], "list of the base")
        eq({r[1] for r in sb.audit_rows() if r[0] != "secrets.keygen"}, {"prod"}, "audit target")
        sb.fails(["list", "--env", "staging"], 2, "environment \"staging\" has no overlay")


def run_on_tty(sb, args, typed):
    """Run cutover on a pseudo-terminal, typing each of typed when asked.
    Returns (exit status, what the terminal showed)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(sb.root)
        os.execv(BIN, [BIN, "secrets", *args])
    shown, asked = b"", 0
    while True:
        r, _, _ = select.select([fd], [], [], 10)
        if not r:
            os.kill(pid, 9)
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
        if asked < len(typed) and shown.count(b": ") > asked:
            os.write(fd, typed[asked] + b"\n")
            asked += 1
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), shown


def test_prompt_without_echo():
    with Sandbox() as sb:
        pub = sb.keygen()
        sb.ok("recipients", "add", pub)
        code, shown = run_on_tty(sb, ["set", "DB_PASSWORD"], [b"typed-secret-1", b"typed-secret-1"])
        eq(code, 0, f"set on a terminal: {shown!r}")
        check(b"value of DB_PASSWORD: " in shown and b"again: " in shown, f"prompts: {shown!r}")
        check(b"typed-secret" not in shown, f"the value was echoed: {shown!r}")
        eq(parse_plaintext(sb.age_decrypt(sb.identity).stdout)["DB_PASSWORD"][2], b"typed-secret-1",
           "the typed value")
        code, shown = run_on_tty(sb, ["set", "DB_PASSWORD"], [b"one-value", b"another-value"])
        eq(code, 1, f"two different values: {shown!r}")
        check(b"the two values differ; nothing was changed" in shown, f"message: {shown!r}")
        eq(parse_plaintext(sb.age_decrypt(sb.identity).stdout)["DB_PASSWORD"][2], b"typed-secret-1",
           "the value after a mismatch")
