"""test_route_classes.py - services.NAME.route_classes (issue 10, point 1,
"per route"): what `cutover check` says of them, and reloads that change
them under load (the proxy keeps a copy per configuration, and requests in
flight count into the classes of the table they started with: nothing may
fail, nothing may crash)."""
import os, subprocess, tempfile, time

from harness import *
from shopenv import YAML, Load, add_releases, cli, version_served

CHECK = """listen: 127.0.0.1:8080
services:
  shop:
    run: ./shop --port ${PORT}
    route_classes:
CLASSES
  legacy:
    targets: [127.0.0.1:9001]
LEGACY"""


def _check(classes, legacy=""):
    d = tempfile.mkdtemp(prefix="cutover-rc-")
    try:
        path = os.path.join(d, "cutover.yml")
        with open(path, "w") as f:
            f.write(CHECK.replace("CLASSES\n", classes).replace("LEGACY", legacy))
        r = subprocess.run([BIN, "check", "--config", path], capture_output=True, text=True, timeout=10)
        return r.returncode, (r.stdout + r.stderr).replace(path, "cutover.yml")
    finally:
        subprocess.run(["rm", "-rf", d])


def test_check_route_classes():
    rc, out = _check("      - POST /api/checkout\n      - /api/cart\n")
    eq(rc, 0, f"valid classes: {out}")
    cases = [
        ("      - POST /api/checkout\n      - post /api/cart\n", "",
         'cutover.yml:7:9: services.shop.route_classes[1]: the method must be upper case '
         '(like "POST /api/checkout"), got "post /api/cart"'),
        ("      - api/cart\n", "", 'cutover.yml:6:9: services.shop.route_classes[0]: must be a path prefix'),
        ("      - /api\n      - /api\n", "",
         'cutover.yml:7:9: services.shop.route_classes[1]: "/api" is the same class as route_classes[0]'),
        ("      - /a\n", "    route_classes: [/x]\n",
         "cutover.yml:9:5: services.legacy.route_classes: only applies to a service that cutover runs"),
    ]
    bad = []
    for classes, legacy, want in cases:
        rc, out = _check(classes, legacy)
        if rc == 0 or want not in out:
            bad.append(f"{classes!r}{legacy!r}: exit {rc}, {out.strip()!r}, want {want!r}")
    eq(bad, [], "cutover check of invalid route classes")


def test_reloads_changing_classes_under_load():
    """Ten reloads that add, rename, reorder and drop classes while shoppers
    keep buying: no failed request, every reload taken."""
    variants = [
        "    route_classes: [POST /api/carts, /api/catalog]\n",
        "    route_classes: [/api/catalog, GET /api/slow, POST /api/carts]\n",
        "    route_classes: [/api]\n",
        "",
        "    route_classes: [GET /, /api/download, POST /api/carts, /api/catalog/, HEAD /]\n",
    ]
    base = YAML.replace("    routes:\n", "ROUTE_CLASSES    routes:\n")
    with cutover(yaml_text=base.replace("ROUTE_CLASSES", variants[0])) as c:
        add_releases(c, "1.0.0")
        r = cli(c, "deploy", "shop", "1.0.0")
        eq(r.returncode, 0, f"deploy 1.0.0: {r.stdout}{r.stderr}")
        eq(version_served(c.port), "1.0.0", "version served")
        text = open(c.cfg_path).read()
        with Load(c.port, clients=4) as load:
            for i in range(10):
                before = c.metric("cutover_config_reloads_total", result="success")
                old = variants[i % len(variants)]
                new = variants[(i + 1) % len(variants)]
                text = text.replace(old, new, 1) if old else text.replace("    routes:\n", new + "    routes:\n", 1)
                c.reload(text)
                wait_until(lambda: c.metric("cutover_config_reloads_total", result="success") > before, 5,
                           what=f"reload {i + 1} taken")
                time.sleep(0.2)
        eq(load.failures[:5], [], f"failed requests out of {load.count}")
        check(load.count > 50, f"too little load: {load.count}")
        eq(c.metric("cutover_config_reloads_total", result="failure"), 0.0, "failed reloads")
        check(c.proc.poll() is None, "the daemon exited")
