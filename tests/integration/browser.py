"""browser.py - a real browser for the tests: Debian's headless Chromium,
driven through chromedriver's W3C WebDriver HTTP API with nothing but the
standard library (urllib, json), no selenium.

    with Browser(workdir) as b:
        b.open("http://127.0.0.1:PORT/")
        b.wait("return document.querySelector('[data-service]') !== null")
        b.screenshot(path)

chromedriver listens on a free loopback port and starts Chromium with
--headless=new --no-sandbox (the tests run as root) --disable-gpu and a
user-data-dir of its own under workdir.  Both are ended by PID when the
`with` block ends: the session is deleted (Chromium quits), chromedriver
gets SIGTERM, and any process of the tree that is still there gets SIGKILL.
A missing chromium or chromedriver is a test FAILURE, never a skip (CI
installs them: scripts/bootstrap).
"""
import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from harness import TestFailure, free_port

CHROMIUM = ("chromium", "chromium-browser")
DRIVER = ("chromedriver",)


def find(names, what):
    for n in names:
        p = shutil.which(n) or (f"/usr/bin/{n}" if os.path.exists(f"/usr/bin/{n}") else None)
        if p:
            return p
    raise TestFailure(f"{what} is missing: install Debian's chromium and chromium-driver "
                      f"(apt-get install -y chromium chromium-driver, or bash scripts/bootstrap)")


def _proc_start(pid):
    """The start time of pid (field 22 of /proc/PID/stat), or None when it
    is gone or a zombie: with the pid it names one process, not a later one
    that reused the pid."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def descendants(root):
    """[(pid, start time)] of every live process below root."""
    children = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append((int(p), fields[19]))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child[0])
    return out


class Browser:
    def __init__(self, workdir, width=1400, height=1000, args=()):
        """workdir: where the profile and chromedriver.log go; width x
        height: the window; args: more Chromium flags."""
        self.workdir, self.width, self.height, self.extra = workdir, width, height, list(args)
        self.driver = self.session = None
        self.profile = None
        self.tree = []

    # ------------------------------------------------------------ life

    def __enter__(self):
        chromium, chromedriver = find(CHROMIUM, "chromium"), find(DRIVER, "chromedriver")
        self.port = free_port()
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=self.workdir)
        self.log = open(os.path.join(self.workdir, "chromedriver.log"), "w")
        self.driver = subprocess.Popen([chromedriver, f"--port={self.port}", "--allowed-ips=127.0.0.1"],
                                       stdout=self.log, stderr=subprocess.STDOUT)
        try:
            self._wait_ready()
            args = ["--headless=new", "--no-sandbox", "--disable-gpu", f"--user-data-dir={self.profile}",
                    f"--window-size={self.width},{self.height}", "--force-device-scale-factor=1",
                    "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                    "--disable-extensions", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-default-apps", "--lang=en-US", "--hide-scrollbars"] + self.extra
            caps = {"capabilities": {"alwaysMatch": {
                "browserName": "chrome", "pageLoadStrategy": "normal",
                "goog:chromeOptions": {"binary": chromium, "args": args},
                "goog:loggingPrefs": {"browser": "ALL"}}}}
            v = self._call("POST", "/session", caps, timeout=60)
            self.session = v["sessionId"]
            self.version = v.get("capabilities", {}).get("browserVersion", "?")
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_ready(self):
        end = time.time() + 20
        while time.time() < end:
            if self.driver.poll() is not None:
                raise TestFailure(f"chromedriver exited ({self.driver.returncode}): {self._log_tail()}")
            try:
                if self._call("GET", "/status", timeout=2).get("ready"):
                    return
            except (OSError, TestFailure):
                pass
            time.sleep(0.1)
        raise TestFailure(f"chromedriver not ready after 20s: {self._log_tail()}")

    def _log_tail(self):
        try:
            with open(os.path.join(self.workdir, "chromedriver.log"), errors="replace") as f:
                return f.read()[-1500:]
        except OSError:
            return ""

    def __exit__(self, *exc):
        if self.driver and self.driver.poll() is None:
            self.tree = descendants(self.driver.pid)
        if self.session:
            try:
                self._call("DELETE", f"/session/{self.session}", timeout=20)
            except (OSError, TestFailure):
                pass
            self.session = None
        if self.driver:
            if self.driver.poll() is None:
                self.driver.send_signal(signal.SIGTERM)
                try:
                    self.driver.wait(10)
                except subprocess.TimeoutExpired:
                    self.driver.kill()
                    self.driver.wait()
            self.driver = None
        # what Chromium left (its processes, identified by pid and start time)
        end = time.time() + 5   # Chromium's processes end once the browser has quit
        while self.left_behind() and time.time() < end:
            time.sleep(0.05)
        left = [(pid, start) for pid, start in self.tree if _proc_start(pid) == start]
        if left:
            print(f"    (browser processes left after chromedriver: {[self._cmd(p) for p, _ in left]}; killed)")
        for pid, start in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        end = time.time() + 5
        while self.left_behind() and time.time() < end:
            time.sleep(0.05)
        if getattr(self, "log", None):
            self.log.close()
        if self.profile:
            shutil.rmtree(self.profile, ignore_errors=True)
            self.profile = None

    @staticmethod
    def _cmd(pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                return f"{pid} " + f.read().replace(b"\0", b" ").decode(errors="replace")[:100]
        except OSError:
            return f"{pid} (gone)"

    def left_behind(self):
        """The processes of the browser still alive after the with block."""
        return [pid for pid, start in self.tree if _proc_start(pid) == start]

    # ------------------------------------------------------------ WebDriver

    def _call(self, method, path, body=None, timeout=30):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json; charset=utf-8"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                out = json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            try:
                v = json.loads(e.read()).get("value", {})
            except ValueError:
                v = {}
            raise TestFailure(f"WebDriver {method} {path}: {e.code} {v.get('error')}: {str(v.get('message'))[:600]}")
        return out.get("value")

    def _s(self, path):
        return f"/session/{self.session}{path}"

    def open(self, url):
        self._call("POST", self._s("/url"), {"url": url}, timeout=60)

    def run(self, script, *args):
        """Run script (a function body: `return ...`) in the page."""
        return self._call("POST", self._s("/execute/sync"), {"script": script, "args": list(args)})

    def wait(self, script, *args, timeout=20, what=None):
        """Run script until it returns something truthy; return that."""
        end, last = time.time() + timeout, None
        while True:
            last = self.run(script, *args)
            if last:
                return last
            if time.time() > end:
                raise TestFailure(f"{what or script} not true in the page after {timeout}s (last: {last!r})")
            time.sleep(0.2)

    def url(self):
        return self._call("GET", self._s("/url"))

    def resize(self, width, height):
        self._call("POST", self._s("/window/rect"), {"width": width, "height": height})

    def screenshot(self, path, full_page=True):
        """A PNG of the page (the whole page: the window is made as tall as
        the document first, then set back)."""
        if full_page:
            hgt = self.run("return Math.ceil(document.documentElement.scrollHeight)")
            self.resize(self.width, min(max(int(hgt) + 140, self.height), 6000))
            time.sleep(0.5)     # the charts redraw on resize
        png = base64.b64decode(self._call("GET", self._s("/screenshot"), timeout=60))
        if full_page:
            self.resize(self.width, self.height)
        with open(path, "wb") as f:
            f.write(png)
        return path

    def console(self):
        """The browser's console log since the last call (Chromium's
        goog:loggingPrefs): [{level, message}]."""
        return self._call("POST", self._s("/se/log"), {"type": "browser"}) or []
