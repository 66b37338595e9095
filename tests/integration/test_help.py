"""test_help.py - one source for the help: docs/cli.md.

`cutover VERB [ACTION] --help`, `cutover help VERB [ACTION]` and the
section of docs/cli.md rendered by scripts/clihelp.py are the same bytes,
for every verb the binary dispatches and every action of it; the verbs
`cutover help` lists and the sections of docs/cli.md match both ways; the
manual page built from the same file renders without a warning (groff
-ww, and mandoc -Tlint when it is installed) and `meson install` puts it
in MANDIR/man1; the generator refuses Markdown that is not in its shape.
"""
import json, os, shutil, subprocess, sys, tempfile

from harness import *

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import clihelp  # noqa: E402

DOCS = os.path.join(ROOT, "docs", "cli.md")
BUILD = os.path.dirname(os.path.abspath(BIN))
MAN = os.path.join(BUILD, "man", "cutover.1")
# Sections written ahead of their verbs (issue 13, branch opsstate): allowed
# in docs/cli.md while the binary does not dispatch them.  Keep in step with
# pending[] in tests/unit/test_help.c; test_sections_match_verbs fails once
# one is dispatched, to say it is time to drop it from both lists.
PENDING = set()


def sections():
    return {s.name: s for s in clihelp.parse(DOCS)}


def docs_text(name):
    return clihelp.text_of(sections()[name], DOCS)[0]


def listed():
    """The verbs `cutover help --json` lists: {name: [actions]}."""
    r = run_cli("help", "--json")
    eq(r.returncode, 0, f"cutover help --json: {r.stderr}")
    return {v["name"]: v["actions"] for v in json.loads(r.stdout)["verbs"]}


def same(argv, want, what):
    r = run_cli(*argv)
    eq((r.returncode, r.stderr), (0, ""), f"{' '.join(argv)}: exit status and stderr")
    if r.stdout != want:
        raise TestFailure(f"{' '.join(argv)} differs from {what}:\n--- got\n{r.stdout}\n--- want\n{want}")


def test_sections_match_verbs():
    verbs, docs = listed(), sections()
    dispatched = {f"{v} {a}".strip() for v, actions in verbs.items() for a in [""] + actions}
    documented = {name for name in docs if name and name.split(" ")[0] not in PENDING}
    eq(sorted(dispatched - documented), [], "verbs and actions without a section in docs/cli.md")
    eq(sorted(documented - dispatched), [], "sections of docs/cli.md for no verb or action that runs")
    eq(sorted(PENDING & set(verbs)), [], "verbs still in PENDING but dispatched now: drop them from PENDING "
                                         "(here and in tests/unit/test_help.c)")
    check("log-relay" not in verbs, "the hidden verb is not listed")
    for v in PENDING:
        check(v in docs, f"PENDING names {v}, which has no section")


def test_every_help_is_the_docs_section():
    for verb, actions in listed().items():
        want = docs_text(verb)
        same([verb, "--help"], want, f"the section `## cutover {verb}` of docs/cli.md")
        same(["help", verb], want, f"the section `## cutover {verb}` of docs/cli.md")
        for action in actions:
            want = docs_text(f"{verb} {action}")
            what = f"the section `## cutover {verb} {action}` of docs/cli.md"
            same([verb, action, "--help"], want, what)
            same(["help", verb, action], want, what)
            # options before the action, --help before it, -h
            same([verb, "--config", "/nonexistent/cutover.yml", action, "--help"], want, what)
            same([verb, "--help", action], want, what)
            same([verb, action, "-h"], want, what)
        # an argument that is not an action: the verb's own help
        same([verb, "frobnicate", "--help"] if actions else [verb, "--help"], docs_text(verb), "the verb's section")


def test_help_json():
    r = run_cli("help", "release", "add", "--json")
    eq(r.returncode, 0, "help --json exit status")
    j = json.loads(r.stdout)
    s = sections()["release add"]
    eq(j, {"name": "release add", "summary": s.short(), "text": docs_text("release add")}, "help release add --json")
    verbs = listed()
    eq(verbs["release"][:3], ["add", "prune", "verify"], "actions in --json")
    eq(verbs["deploy"], [], "a verb without actions")


def test_overview():
    r = run_cli("help")
    eq((r.returncode, r.stderr), (0, ""), "cutover help")
    for argv in (["--help"], ["-h"]):
        eq(run_cli(*argv).stdout, r.stdout, f"cutover {argv[0]} prints what cutover help does")
    bare = run_cli()
    eq((bare.returncode, bare.stdout, bare.stderr), (2, "", r.stdout), "cutover alone: the overview on stderr, exit 2")
    # the section `## cutover`, the verbs listed after its description
    text, at = clihelp.text_of(sections()[""], DOCS)
    head = text.encode()[:at].decode()
    tail = text.encode()[at:].decode()
    check(r.stdout.startswith(head + "\nVerbs:\n"), f"the overview opens with the program's section:\n{r.stdout}")
    check(r.stdout.endswith(tail), "the overview ends with the program's options, exit codes and examples")
    middle = r.stdout[len(head):len(r.stdout) - len(tail)]
    names = [line.split()[0] for line in middle.splitlines()[2:] if line.startswith("  ") and line[2] != " "]
    eq(names, list(listed()), "the verbs listed, in order")
    for line in r.stdout.splitlines():
        check(len(line) <= 80, f"a line over 80 columns: {line!r}")
    unknown = run_cli("frobnicate")
    eq(unknown.returncode, 2, "unknown verb exit status")
    check(unknown.stderr.startswith("cutover: unknown verb 'frobnicate'") and r.stdout in unknown.stderr,
          f"unknown verb: {unknown.stderr[:200]!r}")


def test_help_errors():
    cases = [
        (["help", "nosuchverb"], "unknown verb 'nosuchverb'"),
        (["help", "log-relay"], "unknown verb 'log-relay'"),
        (["help", "deploy", "extra"], "cutover deploy has no action 'extra' (it takes none)"),
        (["help", "release", "nosuch"], "cutover release has no action 'nosuch' (its actions: add, prune"),
        (["help", "release", "add", "more"], "expected [VERB [ACTION]], got 3 arguments"),
        (["help", "--frob"], "unknown option '--frob'"),
    ]
    for argv, words in cases:
        r = run_cli(*argv)
        eq(r.returncode, 2, f"{' '.join(argv)}: exit status")
        eq(r.stdout, "", f"{' '.join(argv)}: stdout")
        check(words in r.stderr, f"{' '.join(argv)}: {r.stderr!r} lacks {words!r}")
    r = run_cli("help", "nosuchverb", "--json")
    eq((r.returncode, json.loads(r.stdout)["exit_code"]), (2, 2), "help nosuchverb --json")


def test_actions_are_dispatched():
    """Every action the help lists reaches code of its own: `cutover VERB
    ACTION` (bare, else with one argument) does not answer as
    `cutover VERB frobnicate` does, which is refused (exit 2): the action
    lists of src/cli/verbs.c are what the verbs take.  Nothing can reach a
    daemon or a state (both point into an empty directory)."""
    with tempfile.TemporaryDirectory(prefix="cutover-help-") as d:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": d,
               "CUTOVER_STATE_DIR": os.path.join(d, "state"), "CUTOVER_SOCKET": os.path.join(d, "admin.sock")}

        def answer(*argv):
            r = subprocess.run([BIN, *argv], capture_output=True, text=True, cwd=d, env=env,
                               stdin=subprocess.DEVNULL, timeout=10)
            return r.returncode, r.stderr

        for verb, actions in listed().items():
            if not actions:
                continue
            refused = [answer(verb, "frobnicate"), answer(verb, "frobnicate", "x")]
            for code, err in refused:
                eq(code, 2, f"{verb} frobnicate: exit status ({err!r})")
            for action in actions:
                if all(answer(verb, action, *extra) == (code, err.replace("frobnicate", action))
                       for extra, (code, err) in zip(([], ["x"]), refused)):
                    raise TestFailure(f"cutover {verb} {action} answers as an unknown action: {refused[0][1]!r}")
        eq(os.listdir(d), [], "nothing was created")


def test_man_page_renders_cleanly():
    check(os.path.exists(MAN), f"{MAN} is built")
    with open(MAN, encoding="ascii") as f:  # non-ASCII goes as \[uXXXX]
        page = f.read()
    # the same file regenerated from docs/cli.md: only the date may differ
    with tempfile.TemporaryDirectory(prefix="cutover-man-") as d:
        again = os.path.join(d, "cutover.1")
        r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "clihelp.py"), "man", DOCS, again,
                            page.split('"cutover ')[1].split('"')[0]], capture_output=True, text=True)
        eq(r.returncode, 0, f"clihelp.py man: {r.stderr}")
        with open(again) as f:
            fresh = f.read()
    strip = lambda p: [l for l in p.splitlines() if not l.startswith(".TH ")]
    check(strip(fresh) == strip(page), "build/man/cutover.1 is what docs/cli.md gives now")
    r = subprocess.run(["groff", "-man", "-ww", "-z", "-Tutf8", MAN], capture_output=True, text=True)
    eq((r.returncode, r.stderr), (0, ""), "groff -ww: no warning")
    if shutil.which("mandoc"):
        r = subprocess.run(["mandoc", "-Tlint", "-Wstyle", MAN], capture_output=True, text=True)
        eq((r.returncode, r.stdout + r.stderr), (0, ""), "mandoc -Tlint: nothing to say")
    r = subprocess.run(["groff", "-man", "-Tutf8", "-P-c", "-P-b", "-P-u", MAN], capture_output=True, text=True,
                       env={**os.environ, "MANWIDTH": "80"})
    eq(r.returncode, 0, "groff renders it")
    text = " ".join(r.stdout.split())
    for name, s in sections().items():
        if name:
            check(f"cutover {name} " in text, f"the page has the section of cutover {name}")
        summary = s.summary if name else s.short()  # the program's: its NAME line
        check(" ".join(summary.replace("`", "").split()) in text, f"the page has the summary of {name!r}")
    for head in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS", "EXIT STATUS", "EXAMPLES"):
        check(f"\n{head}\n" in r.stdout, f"the page has {head}")


def test_meson_install_puts_the_man_page():
    check(os.path.isdir(os.path.join(BUILD, "meson-private")), f"{BUILD} is a meson build directory")
    with tempfile.TemporaryDirectory(prefix="cutover-install-") as d:
        r = subprocess.run(["meson", "install", "-C", BUILD, "--no-rebuild", "--quiet", "--destdir", d],
                           capture_output=True, text=True, timeout=120)
        eq(r.returncode, 0, f"meson install: {r.stdout}{r.stderr}")
        found = [os.path.join(p, f) for p, _, files in os.walk(d) for f in files if f == "cutover.1"]
        eq(len(found), 1, f"one cutover.1 installed: {found}")
        check(found[0].endswith(os.path.join("share", "man", "man1", "cutover.1")), f"in MANDIR/man1: {found[0]}")
        with open(found[0]) as a, open(MAN) as b:
            eq(a.read(), b.read(), "the installed page is the built one")
        check(any(f == "cutover" for p, _, files in os.walk(d) if p.endswith("bin") for f in files),
              "the binary is installed beside it")
        r = subprocess.run(["man", "-l", found[0]], capture_output=True, text=True,
                           env={**os.environ, "MANWIDTH": "80", "MANPAGER": "cat", "PAGER": "cat"})
        eq(r.returncode, 0, f"man -l: {r.stderr}")
        check("cutover help VERB" in " ".join(r.stdout.split()), "man -l shows it")


# Markdown that is not in the shape: each must be refused, naming its line.
GOOD = """# t

## cutover

The program.

```
cutover VERB
```

What it does.

### Exit codes

- `0`: ok.

### Examples

```
cutover x
```
"""


def test_generator_refuses_what_is_not_in_shape():
    clihelp.parse("t.md", GOOD)  # the base is fine
    cases = [
        (GOOD.replace("## cutover\n", "## deploy\n"), 3, "a section heading is"),
        (GOOD.replace("The program.", "the program"), 5, "one sentence"),
        (GOOD.replace("What it does.", "What *it* does."), 11, "'*' outside a code span"),
        (GOOD.replace("What it does.", "What `it does."), 11, "an unclosed code span"),
        (GOOD.replace("What it does.", "What <b>it</b> does."), 11, "HTML"),
        (GOOD.replace("What it does.", "What [it](x) does."), 11, "a link"),
        (GOOD.replace("What it does.", "What _it_ does."), 11, "emphasis"),
        (GOOD.replace("What it does.", "What it\n1. does."), 12, "Markdown would read another block"),
        (GOOD.replace("cutover VERB\n", "kutover VERB\n"), 8, "a synopsis line starts with"),
        (GOOD.replace("### Exit codes\n\n- `0`: ok.\n\n", ""), None, "lacks ### Exit codes"),
        (GOOD.replace("- `0`: ok.", "- 0: ok."), 15, "a Exit codes item is"),
        (GOOD.replace("- `0`: ok.", "- `zero`: ok."), 15, "an exit code is a number"),
        (GOOD.replace("### Exit codes", "### Exit status"), 13, "a subsection is one of"),
        (GOOD + GOOD.split("\n", 2)[2], 22, "a second section"),
        (GOOD + GOOD.split("\n", 2)[2].replace("## cutover", "## cutover x y").replace("cutover VERB", "cutover x y"),
         22, "comes after its verb's section"),
        (GOOD.replace("What it does.", "What " + "it does " * 12 + "`" + "x" * 81 + "`."), None, "at most 80"),
        (GOOD.replace("```\ncutover x\n```", "cutover x"), None, "at least one code block"),
    ]
    for text, line, words in cases:
        try:
            for s in clihelp.parse("t.md", text):
                clihelp.text_of(s, "t.md")
        except clihelp.DocError as e:
            check(words in str(e), f"{words!r}: {e}")
            if line:
                check(str(e).startswith(f"t.md:{line}: "), f"{words!r}: the line of {e}")
            continue
        raise TestFailure(f"accepted, though {words!r}:\n{text}")
