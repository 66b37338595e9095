"""sdfixture.py - what systemd does for cutover.socket and cutover.service
(contrib/systemd/), done by a test, on a machine without systemd as PID 1.

    fx = SdFixture(argv, workdir, sockets=[("proxy", SdFixture.tcp(port)),
                                          ("admin", SdFixture.unix(path))],
                   watchdog_sec=1)
    fx.start(); fx.wait("READY=1"); ...; fx.restart(); ...; fx.close()

What it does, as systemd does it:
- the socket unit: it binds and listens on the sockets itself and holds them
  for as long as it lives, across every restart of the daemon, so a
  connection made while no daemon runs waits in the accept queue;
- ExecStart (Type=notify): fork; in the child setsid, the sockets moved to
  fds 3, 4, ... (LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID = the child's own
  pid, set in the child before execve), NOTIFY_SOCKET, WATCHDOG_USEC and
  WATCHDOG_PID, signals reset; then execve;
- the notify socket: a SOCK_DGRAM Unix socket with SO_PASSCRED, so each
  message comes with its sender's pid.  Every message is recorded
  (READY=1, RELOADING=1, STOPPING=1, WATCHDOG=1, MAINPID=, STATUS=, ...).
  NotifyAccess=all: MAINPID= from any process makes that pid the main
  process (an upgrade's new daemon says it);
- a STOPPING=1 while running that the fixture did not cause (no stop
  asked) is what systemd takes for "the service is stopping by itself": it
  is recorded as the event "stop-by-notify" (systemd would then wait
  TimeoutStopSec for the main process and kill it);
- the watchdog (WatchdogSec): armed at READY=1, reset by each WATCHDOG=1;
  when none came within WatchdogSec, SIGABRT and SIGCONT to the main
  process (KillMode=process: only it), SIGKILL after the abort timeout,
  then Restart=on-failure starts it again after RestartSec (at most 5
  starts in 10 s: StartLimitBurst);
- stop (systemctl stop/restart with KillMode=process): SIGTERM to the main
  process only, SIGKILL after TimeoutStopSec; restart = stop, then start.

The main process is followed with a pidfd, so a main process that is not
the fixture's child (after an upgrade) is followed too; only a child is
reaped.  Events (start, exit, watchdog, stop-by-notify, ...) are recorded
with their time in `events`.
"""
import fcntl, os, resource, select, signal, socket, struct, threading, time


class Notice:
    """One notify datagram: when, from which pid, its fields."""

    def __init__(self, t, pid, text):
        self.t, self.pid, self.text = t, pid, text
        self.wall = time.time()  # to compare with the daemon's log timestamps
        self.fields = {}
        for line in text.split("\n"):
            if "=" in line:
                k, _, v = line.partition("=")
                self.fields[k] = v

    def has(self, item):
        """item "READY=1" (that field with that value) or "MAINPID" (the field)."""
        if "=" in item:
            k, _, v = item.partition("=")
            return self.fields.get(k) == v
        return item in self.fields

    def __repr__(self):
        return f"<{self.t:.3f} pid {self.pid}: {self.text!r}>"


class SdFixture:
    def __init__(self, argv, workdir, sockets=(), watchdog_sec=None, stop_timeout=45.0,
                 abort_timeout=None, restart_sec=0.1, env=None, log_path=None):
        self.argv, self.workdir = list(argv), workdir
        self.sockets = list(sockets)  # [(name, socket)]: owned (closed by close())
        self.watchdog_sec, self.stop_timeout = watchdog_sec, stop_timeout
        self.abort_timeout = stop_timeout if abort_timeout is None else abort_timeout
        self.restart_sec = restart_sec
        self.log_path = log_path or os.path.join(workdir, "stderr.log")
        self.base_env = {k: v for k, v in {**os.environ, **(env or {})}.items()
                         if not k.startswith(("LISTEN_", "WATCHDOG_", "NOTIFY_SOCKET"))}
        self.notices, self.events = [], []
        self.cond = threading.Condition()
        self.main_pid, self.pidfd, self.state = None, None, "dead"
        self.last_pet = None          # monotonic time of READY=1 or the last WATCHDOG=1
        self.stopping = False         # a stop (or restart) was asked: no auto-restart
        self.restart_at = None        # Restart=on-failure: when to start again
        self.children = set()         # pids this process forked (reaped here)
        self.closed = False
        self.notify_path = os.path.join(workdir, "notify.sock")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.notify.bind(self.notify_path)
        self.notify.settimeout(0.2)  # the reader looks at self.closed this often
        self.t0 = time.monotonic()
        self.threads = [threading.Thread(target=self._read_notices, daemon=True),
                        threading.Thread(target=self._supervise, daemon=True)]
        for t in self.threads:
            t.start()

    # ------------------------------------------------------- socket unit

    @staticmethod
    def tcp(port, host="127.0.0.1", backlog=4096):
        """ListenStream=HOST:PORT (systemd sets SO_REUSEADDR too)."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        s.listen(backlog)
        return s

    @staticmethod
    def unix(path, mode=0o600, backlog=4096):
        """ListenStream=/PATH with SocketMode=MODE."""
        if os.path.exists(path):
            os.unlink(path)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        os.chmod(path, mode)
        s.listen(backlog)
        return s

    # ------------------------------------------------------- the service

    def now(self):
        return time.monotonic() - self.t0

    def _event(self, kind, **kw):
        with self.cond:
            self.events.append({"t": self.now(), "kind": kind, **kw})
            self.cond.notify_all()

    def start(self):
        """ExecStart: fork and exec the daemon with the sockets and the
        environment systemd gives it.  Returns its pid."""
        env = dict(self.base_env, NOTIFY_SOCKET=self.notify_path)
        fds = [s.fileno() for _, s in self.sockets]
        if fds:
            env["LISTEN_FDS"] = str(len(fds))
            env["LISTEN_FDNAMES"] = ":".join(name for name, _ in self.sockets)
        if self.watchdog_sec:
            env["WATCHDOG_USEC"] = str(int(self.watchdog_sec * 1_000_000))
        log = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        devnull = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        argv = self.argv
        with self.cond:
            pid = os.fork()
            if pid == 0:  # the child: a few system calls and the environment, then execve
                try:
                    os.setsid()
                    os.dup2(devnull, 0)
                    os.dup2(log, 1)
                    os.dup2(log, 2)
                    # out of the way first: a socket may sit on 3 or 4 already
                    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in fds]
                    for i, fd in enumerate(high):
                        os.dup2(fd, 3 + i)
                    for fd in high:
                        os.close(fd)
                    if fds:
                        env["LISTEN_PID"] = str(os.getpid())
                    if self.watchdog_sec:
                        env["WATCHDOG_PID"] = str(os.getpid())
                    signal.pthread_sigmask(signal.SIG_SETMASK, [])
                    for sig in (signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                        signal.signal(sig, signal.SIG_DFL)
                    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the SIGABRT of the watchdog
                    os.chdir(self.workdir)
                    os.execve(argv[0], argv, env)
                finally:
                    os._exit(127)
            os.close(log)
            os.close(devnull)
            self.children.add(pid)
            self._set_main(pid)
            self.state, self.stopping, self.restart_at, self.last_pet = "starting", False, None, None
        self._event("start", pid=pid)
        return pid

    def _set_main(self, pid):
        """With self.cond held."""
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        self.main_pid = pid
        try:
            self.pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            self.pidfd = None  # already gone: _supervise sees it
        self.cond.notify_all()

    def _exited(self, pid):
        """The main process is gone: reap it when it is ours, then decide
        (Restart=on-failure).  With self.cond held."""
        status = None
        if pid in self.children:
            try:
                _, st = os.waitpid(pid, 0)
                status = os.waitstatus_to_exitcode(st)
            except ChildProcessError:
                pass
            self.children.discard(pid)
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        self.main_pid, self.state, self.last_pet = None, "dead", None
        self.events.append({"t": self.now(), "kind": "exit", "pid": pid, "status": status})
        # exit 0 after STOPPING=1 (or a stop we asked) is a clean stop; a
        # signal, a non-zero status, or a watchdog kill is a failure
        failed = status is not None and status != 0
        if not self.stopping and not self.closed and (failed or self._watchdog_fired(pid)):
            # StartLimitBurst=5 in StartLimitIntervalSec=10s, systemd's defaults
            recent = [e for e in self.events if e["kind"] == "start" and e["t"] > self.now() - 10]
            if len(recent) >= 5:
                self.events.append({"t": self.now(), "kind": "start-limit-hit"})
            else:
                self.restart_at = time.monotonic() + self.restart_sec
        self.cond.notify_all()

    def _watchdog_fired(self, pid):
        return any(e["kind"] == "watchdog" and e["pid"] == pid for e in self.events)

    def _gone(self):
        """Has the main process exited?  With self.cond held."""
        if self.pidfd is None:
            return True
        ready, _, _ = select.select([self.pidfd], [], [], 0)
        return bool(ready)

    def _reap_others(self):
        """Children that are no longer the main process (the daemon an
        upgrade replaced): reap them when they exit.  With self.cond held."""
        for pid in list(self.children - {self.main_pid}):
            try:
                done, st = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, st = pid, 0
            if done:
                self.children.discard(pid)
                self.events.append({"t": self.now(), "kind": "exit-other", "pid": pid,
                                    "status": os.waitstatus_to_exitcode(st)})

    def _supervise(self):
        """A tick every 10 ms: the main process's exit, Restart=, the
        watchdog and its abort timeout."""
        abort_deadline = None
        while not self.closed:
            time.sleep(0.01)
            restart = False
            with self.cond:
                if self.closed:
                    return
                self._reap_others()
                pid = self.main_pid
                if pid is not None and self._gone():
                    self._exited(pid)
                    abort_deadline, pid = None, None
                if self.restart_at is not None and time.monotonic() >= self.restart_at:
                    self.restart_at, restart = None, True
                wd_due = (pid and self.watchdog_sec and self.state in ("running", "reloading")
                          and self.last_pet is not None and time.monotonic() - self.last_pet > self.watchdog_sec)
                if wd_due:
                    self.events.append({"t": self.now(), "kind": "watchdog", "pid": pid,
                                        "since_pet": round(time.monotonic() - self.last_pet, 3)})
                    self.state = "stop-watchdog"
                    self.cond.notify_all()
            if restart:
                self._event("auto-restart")
                self.start()
                continue
            if wd_due:
                # systemd: WatchdogSignal (SIGABRT) and SIGCONT, so that a
                # stopped process gets it too; SIGKILL after TimeoutAbortSec
                self._signal(pid, signal.SIGABRT)
                self._signal(pid, signal.SIGCONT)
                abort_deadline = time.monotonic() + self.abort_timeout
            if abort_deadline is not None and pid and time.monotonic() > abort_deadline:
                self._event("sigkill", pid=pid)
                self._signal(pid, signal.SIGKILL)
                abort_deadline = None

    @staticmethod
    def _signal(pid, sig):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def _read_notices(self):
        while not self.closed:
            try:
                data, anc, _, _ = self.notify.recvmsg(4096, socket.CMSG_SPACE(12))
            except socket.timeout:
                continue
            except OSError:
                return
            pid = None
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", cdata[:12])[0]
            n = Notice(self.now(), pid, data.decode(errors="replace"))
            with self.cond:
                self.notices.append(n)
                self._apply(n)
                self.cond.notify_all()

    def _apply(self, n):
        """What systemd does with a message (NotifyAccess=all).  With
        self.cond held."""
        if "MAINPID" in n.fields and self.state in ("starting", "running", "reloading"):
            new = int(n.fields["MAINPID"])
            if new != self.main_pid:
                self.events.append({"t": n.t, "kind": "mainpid", "pid": new, "from": self.main_pid,
                                    "sender": n.pid})
                self._set_main(new)
        if n.has("STOPPING=1"):
            if self.state in ("running", "reloading") and not self.stopping:
                self.events.append({"t": n.t, "kind": "stop-by-notify", "pid": n.pid})
            self.state = "stopping"
        elif n.has("READY=1"):
            if self.state in ("starting", "reloading"):
                self.state = "running"
            self.last_pet = time.monotonic()
        elif n.has("RELOADING=1") and self.state == "running":
            self.state = "reloading"
        if n.has("WATCHDOG=1") and self.last_pet is not None:
            self.last_pet = time.monotonic()

    # ------------------------------------------------------- for tests

    def mark(self):
        """An index into notices: wait(..., after=mark) sees only later ones."""
        with self.cond:
            return len(self.notices)

    def wait(self, item, after=0, timeout=15.0, pid=None):
        """The first notice after index `after` that has item ("READY=1",
        "MAINPID", ...), from pid if given.  Raises AssertionError at the
        timeout."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                for n in self.notices[after:]:
                    if n.has(item) and (pid is None or n.pid == pid):
                        return n
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {item} from {pid or 'anyone'} within {timeout}s; "
                                         f"notices: {self.notices[after:][-8:]}")
                self.cond.wait(left)

    def wait_event(self, kind, after_t=0.0, timeout=15.0):
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                for e in self.events:
                    if e["kind"] == kind and e["t"] >= after_t:
                        return e
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {kind} event within {timeout}s; events: {self.events[-8:]}")
                self.cond.wait(left)

    def wait_dead(self, timeout):
        end = time.monotonic() + timeout
        with self.cond:
            while self.main_pid is not None:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True

    def reload(self):
        """ExecReload=/bin/kill -HUP $MAINPID."""
        os.kill(self.main_pid, signal.SIGHUP)

    def stop(self):
        """systemctl stop with KillMode=process: SIGTERM to the main
        process, SIGKILL after stop_timeout.  Returns how long it took."""
        t = time.monotonic()
        with self.cond:
            self.stopping, self.restart_at = True, None
            pid = self.main_pid
        if pid is None:
            return 0.0
        self._signal(pid, signal.SIGTERM)
        if not self.wait_dead(self.stop_timeout):
            self._event("sigkill", pid=pid)
            self._signal(pid, signal.SIGKILL)
            if not self.wait_dead(5):
                raise AssertionError(f"main process {pid} still there after SIGKILL")
        return time.monotonic() - t

    def restart(self):
        """systemctl restart: stop, then start (the sockets stay open)."""
        self.stop()
        return self.start()

    def close(self):
        """Kill what is left of the service (its main process; processes it
        started are the caller's), close the sockets and the notify socket."""
        with self.cond:
            self.stopping = True
            pid = self.main_pid
        if pid:
            self._signal(pid, signal.SIGKILL)
            self.wait_dead(5)
        self.closed = True
        for pid in list(self.children):
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        self.notify.close()
        for _, s in self.sockets:
            s.close()
        for t in self.threads:
            t.join(2)
