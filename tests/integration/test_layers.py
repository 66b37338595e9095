"""test_layers.py - the layering of src/, read from the #include lines.

docs/internals/style.md orders the folders of src/ in layers; a file may
include headers of its own layer or of a layer below, never above, and the
folders' include graph has no circle.  Types headers (`*-t.h`) include only
other types headers, so that the data model never drags behaviour in.
These tests read the sources; they need no binary."""
import os, re

from harness import TestFailure

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRC = os.path.join(ROOT, "src")

# Lowest first.  Keep in step with docs/internals/style.md ("Layers").
LAYERS = [
    ["base"],
    ["http", "secrets"],
    ["loop", "config", "metrics", "state"],
    ["proxy", "supervisor", "store", "notify"],
    ["deploy"],
    ["release"],
    ["admin"],
    ["daemon"],
    ["cli"],
    ["."],  # src/main.c
]
RANK = {folder: i for i, layer in enumerate(LAYERS) for folder in layer}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def sources():
    for dirpath, _, files in os.walk(SRC):
        for f in sorted(files):
            if f.endswith((".c", ".h")):
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, SRC)
                folder = rel.split(os.sep)[0] if os.sep in rel else "."
                with open(path, encoding="utf-8") as fh:
                    yield rel, folder, INCLUDE.findall(fh.read())


def included_folder(inc):
    return inc.split("/")[0] if "/" in inc else "."


def test_every_folder_has_a_layer():
    unknown = sorted({folder for _, folder, _ in sources()} - set(RANK))
    if unknown:
        raise TestFailure(f"src/ folders with no layer in test_layers.py and style.md: {unknown}")


def upward_includes(files):
    """[(rel, folder, includes)] -> the includes against the layering."""
    bad = []
    for rel, folder, incs in files:
        for inc in incs:
            g = included_folder(inc)
            if g not in RANK:
                bad.append(f"src/{rel}: #include \"{inc}\": unknown folder {g}")
            elif folder in RANK and RANK[g] > RANK[folder]:
                bad.append(f"src/{rel} (layer {RANK[folder]}, {folder}) includes \"{inc}\" "
                           f"(layer {RANK[g]}, {g}): a layer above its own")
    return bad


def test_no_include_from_a_layer_above():
    bad = upward_includes(sources())
    if bad:
        raise TestFailure("includes against the layering:\n  " + "\n  ".join(bad))


def test_no_circle_between_folders():
    edges = {}
    for rel, folder, incs in sources():
        for inc in incs:
            g = included_folder(inc)
            if g != folder:
                edges.setdefault(folder, set()).add(g)
    # depth-first search for a back edge; report the circle's path
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(edges.get(n, ())):
            if state.get(m) == 1:
                circle = stack[stack.index(m):] + [m]
                raise TestFailure("include circle between folders: " + " -> ".join(circle))
            if not state.get(m):
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(edges):
        if not state.get(n):
            visit(n)


def test_types_headers_include_only_types_headers():
    bad = []
    for rel, _, incs in sources():
        if rel.endswith("-t.h"):
            bad += [f"src/{rel} includes \"{inc}\"" for inc in incs if not inc.endswith("-t.h")]
    if bad:
        raise TestFailure("types headers (-t.h) including behaviour:\n  " + "\n  ".join(bad))


def test_the_checker_sees_a_violation():
    """The checker itself: the include that made the old circle (proxy.c
    including admin/admin.h) is caught, a downward one is not."""
    caught = upward_includes([("proxy/proxy.c", "proxy", ["admin/admin.h", "loop/loop.h"])])
    if len(caught) != 1 or "admin/admin.h" not in caught[0]:
        raise TestFailure(f"an upward include went unnoticed: {caught}")
