#!/usr/bin/env python3
"""clihelp.py - docs/cli.md, the one source of the command line's help, made
into what the build needs: the C table that `cutover help VERB` and
`cutover VERB --help` print from, and the manual page cutover.1.

docs/cli.md keeps to the strict shape that docs/internals/help.md describes
(one `## cutover VERB [ACTION]` section per verb and action: a summary, a
synopsis, a description, then `### Options`, `### Exit codes` and
`### Examples`).  Anything else is an error naming FILE:LINE, so the build
fails rather than print help that the Markdown does not hold.

    clihelp.py c DOCS OUT.c                 the table (src/cli/help.h)
    clihelp.py man DOCS OUT.1 VERSION       the manual page
    clihelp.py text DOCS [NAME...]          sections as `cutover help` prints
                                            them (no NAME: the names)
    clihelp.py check DOCS                   parse and render, print nothing

The tests import it (tests/integration/test_help.py) to render the sections
they compare the binary's output with.  Python 3 only, no dependency: meson
runs on Python, so the build needs nothing new.
"""
import datetime, os, re, sys, textwrap

WIDTH = 80           # every line of the terminal text fits in it
TERM_COLUMN = 24     # a list item's text starts at most here (after a short term)
PROGRAM = "cutover"
SUBHEADINGS = ["Options", "Exit codes", "Examples"]
REQUIRED = {"Exit codes", "Examples"}
NAME_RE = re.compile(r"^[a-z][a-z0-9-]*$")


class DocError(Exception):
    """A departure from the shape of docs/cli.md, with where it is."""

    def __init__(self, path, line, message):
        super().__init__(f"{path}:{line}: {message}")


class Section:
    """One `## cutover ...` section: name is "" (the program itself),
    "VERB" or "VERB ACTION"; blocks are ("p", text), ("list", [text...]) or
    ("code", [line...]); items are (term, text)."""

    def __init__(self, name, line):
        self.name, self.line = name, line
        self.summary = ""
        self.synopsis = []
        self.description = []
        self.options = []
        self.exit_codes = []
        self.examples = []
        self.actions = []   # the action sections of a verb, in order

    @property
    def title(self):
        return f"{PROGRAM} {self.name}".rstrip()

    @property
    def verb(self):
        return self.name.split(" ")[0] if self.name else ""

    @property
    def action(self):
        parts = self.name.split(" ")
        return parts[1] if len(parts) == 2 else None

    def short(self):
        """The summary as the listing of `cutover help` and the manual's
        NAME line show it: no final period, its first word lowercased
        unless it is a name (two capitals, or a code span)."""
        s = self.summary.rstrip(".")
        if len(s) > 1 and s[0].isupper() and not s[1].isupper():
            s = s[0].lower() + s[1:]
        return s


# ---------------------------------------------------------------- parsing


def check_inline(path, lineno, text):
    """Text outside code spans may not hold what Markdown would render as
    something else (emphasis, HTML, links, escapes, entities)."""
    if text.count("`") % 2:
        raise DocError(path, lineno, "an unclosed code span (`)")
    if "``" in text:
        raise DocError(path, lineno, "double backticks: use single ones")
    plain = re.sub(r"`[^`]*`", "", text)
    for bad, why in (("*", "emphasis"), ("<", "HTML"), ("\\", "an escape"), ("](", "a link")):
        if bad in plain:
            raise DocError(path, lineno, f"'{bad}' outside a code span (Markdown would read {why})")
    if re.search(r"(^|[^\w])_|_($|[^\w])", plain):
        raise DocError(path, lineno, "'_' at a word's edge outside a code span (Markdown would read emphasis)")
    if re.search(r"&#?\w+;", plain):
        raise DocError(path, lineno, "an HTML entity outside a code span")


def paragraph_line(path, lineno, line):
    """A line inside a paragraph must not start what Markdown reads as
    another block."""
    s = line.lstrip()
    if re.match(r"(#|>|\||\+ |\* |\d+[.)] |\[|=+\s*$|-+\s*$)", s):
        raise DocError(path, lineno, f"a paragraph line may not start with {s.split()[0]!r} "
                                     "(Markdown would read another block)")
    check_inline(path, lineno, line)


class Reader:
    def __init__(self, path, text):
        self.path = path
        self.lines = text.split("\n")
        if self.lines and self.lines[-1] == "":
            self.lines.pop()
        self.i = 0

    def peek(self):
        return self.lines[self.i] if self.i < len(self.lines) else None

    def lineno(self):
        return self.i + 1

    def err(self, message, line=None):
        return DocError(self.path, line or self.lineno(), message)

    def skip_blank(self):
        while self.peek() is not None and not self.peek().strip():
            self.i += 1

    def at_heading(self):
        line = self.peek()
        return line is not None and line.startswith("#")

    def code(self):
        """A fenced code block (``` or ```sh) at the current line: its
        lines, verbatim."""
        start = self.lineno()
        fence = self.peek()
        if not re.match(r"^```[a-z]*$", fence):
            raise self.err(f"a code block opens with ``` alone (or ```sh), not {fence!r}")
        self.i += 1
        out = []
        while True:
            line = self.peek()
            if line is None:
                raise self.err("a code block is not closed", start)
            self.i += 1
            if line == "```":
                return out
            if "\t" in line:
                raise self.err("a tab in a code block: use spaces", self.i)
            out.append(line.rstrip())

    def paragraph(self):
        lines = []
        while self.peek() is not None and self.peek().strip() and not self.at_heading():
            if self.peek().startswith("```"):
                raise self.err("a code block must follow a blank line")
            paragraph_line(self.path, self.lineno(), self.peek())
            lines.append(self.peek().strip())
            self.i += 1
        return " ".join(lines)

    def list_items(self):
        """`- ` items, each continued by lines indented by two spaces or
        more; the list ends at a blank line or a heading."""
        items = []
        while self.peek() is not None and self.peek().strip() and not self.at_heading():
            line = self.peek()
            if line.startswith("- "):
                check_inline(self.path, self.lineno(), line[2:])
                items.append([self.lineno(), line[2:].strip()])
            elif line.startswith("  ") and items:
                paragraph_line(self.path, self.lineno(), line)
                items[-1][1] += " " + line.strip()
            else:
                raise self.err("in a list every line is an item (`- `) or its continuation (indented)")
            self.i += 1
        return items

    def blocks(self, allow_lists=True):
        """Paragraphs, lists and code blocks up to the next heading."""
        out = []
        self.skip_blank()
        while self.peek() is not None and not self.at_heading():
            line = self.peek()
            if line.startswith("```"):
                out.append(("code", self.code()))
            elif line.startswith("- "):
                if not allow_lists:
                    raise self.err("no list here")
                out.append(("list", [text for _, text in self.list_items()]))
            elif line.startswith(" "):
                raise self.err("an indented line outside a list (Markdown would read a code block)")
            else:
                out.append(("p", self.paragraph()))
            self.skip_blank()
        return out

    def items(self, what):
        """The items of an Options or Exit codes list: "- `TERM`: text"."""
        self.skip_blank()
        if self.peek() is None or not self.peek().startswith("- "):
            raise self.err(f"### {what} holds a list: - `TERM`: text")
        out = []
        for lineno, text in self.list_items():
            m = re.match(r"^`([^`]+)`: (\S.*)$", text)
            if not m:
                raise DocError(self.path, lineno, f"a {what} item is - `TERM`: text, not {text!r}")
            if what == "Exit codes" and not re.match(r"^(\d+|\d+\+N)$", m.group(1)):
                raise DocError(self.path, lineno, f"an exit code is a number (or 10+N), not {m.group(1)!r}")
            out.append((m.group(1), m.group(2)))
        self.skip_blank()
        if self.peek() is not None and not self.at_heading():
            raise self.err(f"### {what} holds one list and nothing else")
        return out


def parse(path, text=None):
    """Read docs/cli.md (or TEXT, said to come from PATH).  Returns the
    sections in order; raises DocError at the first departure from the
    shape."""
    if text is None:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    r = Reader(path, text)
    if not (r.peek() or "").startswith("# "):
        raise r.err("the file opens with its title: # ...")
    r.i += 1
    while r.peek() is not None and not r.peek().startswith("## "):  # the preamble: for readers only
        if r.peek().startswith("#"):
            raise r.err("before the first section only text: no other heading")
        r.i += 1
    sections, names = [], {}
    while r.peek() is not None:
        sections.append(section(r, names))
    if not sections or sections[0].name != "":
        raise DocError(path, 1, f"the first section is `## {PROGRAM}`, the program itself")
    return sections


def section(r, names):
    line = r.peek()
    start = r.lineno()
    m = re.match(r"^## (\S+(?: \S+)*)$", line)
    words = m.group(1).split(" ") if m else []
    if not words or words[0] != PROGRAM or len(words) > 3 or not all(NAME_RE.match(w) for w in words[1:]):
        raise r.err(f"a section heading is `## {PROGRAM} [VERB [ACTION]]` (lowercase words), not {line!r}")
    s = Section(" ".join(words[1:]), start)
    if s.name in names:
        raise r.err(f"a second section `{s.title}` (the first at line {names[s.name].line})")
    if s.action:
        verb = names.get(s.verb)
        if not verb:
            raise r.err(f"`{s.title}` comes after its verb's section `## {PROGRAM} {s.verb}`")
        last = list(names.values())[-1]
        if last.verb != s.verb:
            raise r.err(f"`{s.title}` follows the other sections of `{PROGRAM} {s.verb}` at once")
        verb.actions.append(s)
    names[s.name] = s
    r.i += 1

    # the summary: one paragraph, one sentence
    r.skip_blank()
    if r.peek() is None or r.at_heading() or r.peek().startswith(("```", "- ", " ")):
        raise r.err(f"`{s.title}` opens with its summary: one sentence")
    at = r.lineno()
    s.summary = r.paragraph()
    if not re.match(r"^[A-Z`].*\.$", s.summary) or re.search(r"\.\s+[A-Z]", s.summary[:-1]):
        raise DocError(r.path, at, "the summary is one sentence, starting with a capital and ending with '.'")

    # the synopsis: a code block whose forms start with the section's title
    r.skip_blank()
    if r.peek() is None or not r.peek().startswith("```"):
        raise r.err(f"the synopsis of `{s.title}` follows its summary: a code block")
    at = r.lineno()
    s.synopsis = r.code()
    if not s.synopsis:
        raise DocError(r.path, at, "an empty synopsis")
    for k, form in enumerate(s.synopsis):
        cont = form.startswith(" ")
        if (k == 0 or not cont) and not (form == s.title or form.startswith(s.title + " ")):
            raise DocError(r.path, at + 1 + k, f"a synopsis line starts with `{s.title}` "
                                               f"(or with spaces: a continuation), not {form!r}")

    # the description, then the subsections in their order
    s.description = r.blocks()
    if not s.description:
        raise r.err(f"`{s.title}` has a description after its synopsis")
    seen = []
    while r.peek() is not None and r.peek().startswith("### "):
        head = r.peek()[4:].strip()
        if head not in SUBHEADINGS:
            raise r.err(f"a subsection is one of {', '.join('### ' + h for h in SUBHEADINGS)}, not {head!r}")
        if seen and SUBHEADINGS.index(head) <= SUBHEADINGS.index(seen[-1]):
            raise r.err(f"### {head}: the subsections come once each, in the order {', '.join(SUBHEADINGS)}")
        seen.append(head)
        r.i += 1
        if head == "Options":
            s.options = r.items(head)
        elif head == "Exit codes":
            s.exit_codes = r.items(head)
        else:
            s.examples = r.blocks(allow_lists=False)
            if not any(kind == "code" for kind, _ in s.examples):
                raise r.err(f"### Examples of `{s.title}` holds at least one code block")
    missing = [h for h in SUBHEADINGS if h in REQUIRED and h not in seen]
    if missing:
        raise r.err(f"`{s.title}` lacks ### {missing[0]}")
    if r.peek() is not None and not r.peek().startswith("## "):
        raise r.err(f"expected the next section (## {PROGRAM} ...), not {r.peek()!r}")
    return s


# ---------------------------------------------------------------- terminal text

NBSP = "\x00"  # a space that wrapping must not break at
KEEP_WHOLE = 40  # a code span up to this long is never broken across lines
# an option and its value ("--config FILE", "-n LINES") stay on one line
OPTION_VALUE = re.compile(r"(?<![\w-])(--?[a-z][a-z0-9-]*) (?=[A-Z][A-Z0-9_]*\b)")


def wrap(text, indent, hang=None):
    """TEXT filled to WIDTH columns, as lines: the first starts with
    INDENT, the others with HANG (default INDENT)."""
    keep = re.sub(r"`[^`]*`", lambda m: m.group(0).replace(" ", NBSP) if len(m.group(0)) <= KEEP_WHOLE
                  else m.group(0), text)
    keep = OPTION_VALUE.sub(lambda m: m.group(1) + NBSP, keep)
    lines = textwrap.wrap(keep, width=WIDTH, initial_indent=indent,
                          subsequent_indent=indent if hang is None else hang,
                          break_long_words=False, break_on_hyphens=False)
    return [line.replace(NBSP, " ") for line in lines]


def render_blocks(blocks, indent):
    out = []
    for kind, body in blocks:
        if out:
            out.append("")
        if kind == "p":
            out += wrap(body, indent)
        elif kind == "list":
            for item in body:
                out += wrap(item, indent + "  - ", indent + "    ")
        else:
            out += [(indent + "  " + line).rstrip() for line in body]
    return out


def render_items(items):
    """Terms at column 2; their text at a column after the longest short
    term (at most TERM_COLUMN), or on the next lines when the term is
    longer."""
    short = [len(t) for t, _ in items if len(t) <= TERM_COLUMN - 4]
    col = 2 + (max(short) if short else 0) + 2
    out = []
    for term, text in items:
        if len(term) <= col - 4:
            first = "  " + term.ljust(col - 2)
            out += wrap(text, first, " " * col)
        else:
            out.append("  " + term)
            out += wrap(text, " " * col)
    return out


def render_text(s):
    """The text `cutover help NAME` prints for section s: a list of lines
    (no newlines), and the index of the line where its description (and,
    for a verb with actions, the list of its actions) ends: where the
    program's overview lists the verbs."""
    out = ["usage: " + s.synopsis[0]]
    out += [(" " * 7 + line).rstrip() for line in s.synopsis[1:]]
    out.append("")
    out += wrap(s.summary, "")
    out.append("")
    out += render_blocks(s.description, "")
    if s.actions:
        out += ["", "Actions:"]
        out += render_items([(a.action, a.short()) for a in s.actions])
    at = len(out)
    for head, items in (("Options", s.options), ("Exit codes", s.exit_codes)):
        if items:
            out += ["", head + ":"]
            out += render_items(items)
    out += ["", "Examples:"]
    out += render_blocks(s.examples, "  ")
    return out, at


def text_of(s, path="docs/cli.md"):
    """The help of section s as one string ending in a newline, checked:
    no line longer than WIDTH."""
    lines, at = render_text(s)
    for line in lines:
        if len(line) > WIDTH:
            raise DocError(path, s.line, f"`{s.title}`: a line of its help is {len(line)} columns "
                                         f"(at most {WIDTH}): {line!r}")
    text = "\n".join(lines) + "\n"
    head = len(("\n".join(lines[:at]) + "\n").encode())  # C counts bytes
    return text, head


# ---------------------------------------------------------------- C

def c_string(text, indent="\t\t"):
    """TEXT as concatenated C string literals, one per line of text."""
    pieces = []
    for line in text.splitlines(keepends=True):
        esc = line.replace("\\", "\\\\").replace('"', '\\"').replace("??", "?\\?").replace("\n", "\\n")
        pieces.append(f'{indent}"{esc}"')
    return "\n".join(pieces) if pieces else f'{indent}""'


def write_c(sections, path):
    rows = []
    for s in sections:
        text, head = text_of(s, path)
        rows.append(f'\t{{ "{s.name}", "{s.short()}",\n{c_string(text)},\n\t  {head} }},')
    return ("/* help-table.c - generated by scripts/clihelp.py from docs/cli.md: do not edit.\n"
            " * What `cutover help NAME` and `cutover NAME --help` print (src/cli/help.h). */\n"
            "#include \"cli/help.h\"\n\n"
            "const struct cli_help cli_help_table[] = {\n" + "\n".join(rows) + "\n};\n"
            f"const size_t cli_help_count = {len(rows)};\n")


# ---------------------------------------------------------------- roff

def roff_escape(text):
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\e")
        elif ch == "-":
            out.append("\\-")
        elif ord(ch) > 126:
            out.append(f"\\[u{ord(ch):04X}]")
        else:
            out.append(ch)
    return "".join(out)


ROFF_WIDTH = 80  # bytes per line of the page's source (mandoc -Tlint's style)
SENTENCE_END = re.compile(r"(?<=[a-z0-9)`][.!?]) (?=[A-Z`$(])")


def roff_line(line):
    """A text line that roff cannot read as a request."""
    return "\\&" + line if line.startswith((".", "'")) else line


def roff_inline(text):
    """Text with code spans in bold, as roff text lines: a sentence starts
    a line (roff then spaces sentences right), a long one goes on over
    more lines."""
    out = []
    for sentence in SENTENCE_END.split(text):
        parts = re.split(r"(`[^`]*`)", sentence)
        line = "".join("\\fB" + roff_escape(p[1:-1]) + "\\fR" if p.startswith("`") else roff_escape(p)
                       for p in parts)
        out += [roff_line(piece) for piece in textwrap.wrap(line, width=ROFF_WIDTH, break_long_words=False,
                                                              break_on_hyphens=False)]
    return "\n".join(out)


def roff_verbatim(lines):
    out = [".nf"]
    for line in lines:
        out.append(roff_line(roff_escape(line)))
    return out + [".fi"]


def roff_blocks(blocks):
    out = []
    for kind, body in blocks:
        if kind == "p":
            out += [".PP", roff_inline(body)]
        elif kind == "list":
            for item in body:
                out += [".IP \\(bu 2", roff_inline(item)]
        else:
            out += [".PP", ".RS 4"] + roff_verbatim(body) + [".RE"]
    return out


def roff_items(items):
    out = []
    for term, text in items:
        out += [".TP", "\\fB" + roff_escape(term) + "\\fR", roff_inline(text)]
    return out


def roff_section_body(s, heading):
    """The parts of a verb's section, under `.SS`: HEADING(s) labels the
    lists."""
    out = [".PP", roff_inline(s.summary), ".PP"] + roff_verbatim(s.synopsis)
    out += roff_blocks(s.description)
    if s.actions:
        out += [".PP", heading("Actions")] + roff_items([(a.action, a.short()) for a in s.actions])
    for head, items in (("Options", s.options), ("Exit codes", s.exit_codes)):
        if items:
            out += [".PP", heading(head)] + roff_items(items)
    out += [".PP", heading("Examples")] + roff_blocks(s.examples)
    return out


def man_date():
    """The page's date: $SOURCE_DATE_EPOCH (reproducible builds), else
    today, in UTC."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc) if epoch else \
        datetime.datetime.now(datetime.timezone.utc)
    return when.strftime("%Y-%m-%d")


def no_paragraph_after_heading(lines):
    """Drop a .PP that follows .SH or .SS: a heading starts a paragraph."""
    out = []
    for line in lines:
        if line == ".PP" and out and out[-1].startswith((".SH", ".SS")):
            continue
        out.append(line)
    return out


def write_man(sections, version):
    top, verbs = sections[0], sections[1:]
    out = [
        '.\\" cutover.1 - generated by scripts/clihelp.py from docs/cli.md: do not edit.',
        f'.TH CUTOVER 1 "{man_date()}" "cutover {roff_escape(version)}" "cutover manual"',
        ".nh",    # no hyphenation: names, paths and options are written whole
        ".ad l",  # ragged right: no wide gaps around long code words
        ".SH NAME",
        f"cutover \\- {roff_inline(top.short())}",
        ".SH SYNOPSIS",
    ] + roff_verbatim(top.synopsis)
    out += [".SH DESCRIPTION"] + roff_blocks(top.description)
    if top.options:
        out += [".SH OPTIONS"] + roff_items(top.options)
    out += [".SH COMMANDS",
            "Each command below is also printed by",
            "\\fBcutover help\\fR \\fIVERB\\fR [\\fIACTION\\fR] and by",
            "\\fBcutover\\fR \\fIVERB\\fR [\\fIACTION\\fR] \\fB\\-\\-help\\fR."]
    for s in verbs:
        out += [f'.SS "{roff_escape(s.title)}"']
        out += roff_section_body(s, lambda h: f"\\fI{h}:\\fR")
    out += [".SH EXIT STATUS"] + roff_items(top.exit_codes)
    out += [".SH EXAMPLES"] + roff_blocks(top.examples)
    out = no_paragraph_after_heading("\n".join(out).split("\n"))
    verbatim = False
    for line in out:
        verbatim = line == ".nf" or (verbatim and line != ".fi")
        if not verbatim and len(line.encode()) > ROFF_WIDTH:
            raise DocError("docs/cli.md", 1, f"a line of the manual page is longer than {ROFF_WIDTH} bytes "
                                            f"(a code span too long to break?): {line!r}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- main

def write(path, content):
    """Write only when it changes (ninja then need not rebuild what
    depends on it)."""
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == content:
                return
    except OSError:
        pass
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(content)
    os.replace(path + ".tmp", path)


def main(argv):
    if len(argv) < 3 or argv[1] not in ("c", "man", "text", "check"):
        print(__doc__.split("\n\n")[2], file=sys.stderr)
        return 2
    what, docs = argv[1], argv[2]
    try:
        sections = parse(docs)
        texts = {s.name: text_of(s, docs)[0] for s in sections}
        if what == "c" and len(argv) == 4:
            write(argv[3], write_c(sections, docs))
        elif what == "man" and len(argv) == 5:
            write(argv[3], write_man(sections, argv[4]))
        elif what == "text":
            for name in argv[3:] or [s.name for s in sections]:
                if not argv[3:]:
                    print(name)
                elif name not in texts:
                    raise DocError(docs, 1, f"no section `{PROGRAM} {name}`")
                else:
                    sys.stdout.write(texts[name])
        elif what != "check":
            print(__doc__.split("\n\n")[2], file=sys.stderr)
            return 2
    except DocError as e:
        print(f"clihelp: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
