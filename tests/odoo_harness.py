"""Run the add-on ``mcp_guard`` inside a real Odoo 18.0 or 19.0, from pytest or a script.

Where Odoo comes from, per series (:data:`ODOO18`, :data:`ODOO19`): ``ODOO_BIN`` /
``ODOO19_BIN`` (a shell-style command line, e.g.
``"/opt/odoo18/venv/bin/python /opt/odoo18/src/odoo-bin"``), else ``odoo`` / ``odoo19`` on
PATH. Every function takes the series (Odoo 18 when omitted); the add-on is loaded from
``odoo_addon/series/<series>`` (see the add-on section of the README).
PostgreSQL: ``ODOO_DB_HOST`` / ``ODOO_DB_PORT`` / ``ODOO_DB_USER`` / ``ODOO_DB_PASSWORD``
(falling back to ``PGHOST``... and to 127.0.0.1:5432 as the current OS user; Odoo refuses
the ``postgres`` role). ``ODOO_ADDONS_PATH`` adds directories (comma separated) in front
of this repository's ``odoo_addon`` folder, for an Odoo whose ``mail``/``web`` are not in
its base addons folder.

What it offers:

* :func:`run_module_tests` - a fresh database, the module installed with
  ``--test-enable``, the log parsed into a :class:`TestRunResult`, the database dropped;
* :func:`create_database` / :func:`drop_database` / :func:`fresh_database` - a database
  with the module installed, e.g. for integration tests;
* :func:`odoo_server` - a context manager running an Odoo HTTP server on a free port.

Browser tests (the tour) need the Python package ``websocket-client`` in Odoo's
interpreter. When Odoo lacks it, :func:`odoo_environ` installs it with pip ``--target``
into a cache folder and puts that folder on ``PYTHONPATH`` of the Odoo process only, so
Odoo's own environment is never modified.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ADDONS_DIR = REPO / "odoo_addon"
MODULE = "mcp_guard"
DB_PREFIX = "mcpg_addon_"


@dataclass(frozen=True)
class Series:
    """An Odoo major version the add-on supports, and how the tests find its ``odoo-bin``."""

    version: str
    bin_env: str
    bin_name: str

    @property
    def addons_dir(self) -> Path:
        return ADDONS_DIR / "series" / self.version

    @property
    def not_found_reason(self) -> str:
        return (
            f"Odoo {self.version} not found: set {self.bin_env} or put {self.bin_name} on PATH"
            f" — Odoo {self.version} tests NOT RUN"
        )


ODOO18 = Series("18.0", "ODOO_BIN", "odoo")
ODOO19 = Series("19.0", "ODOO19_BIN", "odoo19")
SERIES = (ODOO18, ODOO19)
NOT_FOUND_REASON = ODOO18.not_found_reason
EXTRAS_DIR = Path(
    os.environ.get("MCPG_ODOO_EXTRAS", Path.home() / ".cache" / "odoo-mcp-guard" / "odoo-extras")
)
EXTRA_PACKAGES = ("websocket-client",)
# Odoo's --data-dir for every database the harness creates (filestores), removed on drop
DATA_DIR = Path(
    os.environ.get("MCPG_ODOO_DATA_DIR", Path.home() / ".cache" / "odoo-mcp-guard" / "odoo-data")
)

# "odoo.tests.result: 1 failed, 0 error(s) of 34 tests when loading database 'x'"
# (odoo/tests/result.py OdooTestResult.__str__, logged by odoo/service/server.py)
_SUMMARY_RE = re.compile(
    r"odoo\.tests\.result: (\d+) failed, (\d+) error\(s\) of (\d+) tests? when loading database"
)
# "<time> <pid> LEVEL <db> <logger>: <message>"
_LINE_RE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ \d+ (DEBUG|INFO|WARNING|ERROR|CRITICAL|RUNBOT|TEST) "
    r"(\S+) ([\w.]+): (.*)$"
)
# OdooTestResult.addSkip: "skipped <test> : <reason>"
_SKIP_RE = re.compile(r"^skipped (.+?) : (.*)$")
_POST_TESTS_RE = re.compile(r"^(\d+) post-tests in ")


def find_odoo(series: Series = ODOO18) -> list[str] | None:
    """The command that starts Odoo of ``series``, or None when it is not available."""
    configured = os.environ.get(series.bin_env, "").strip()
    if configured:
        cmd = shlex.split(configured)
        exe = cmd[0]
        if shutil.which(exe) or (os.path.isfile(exe) and os.access(exe, os.X_OK)):
            return cmd
        return None
    found = shutil.which(series.bin_name)
    return [found] if found else None


@dataclass(frozen=True)
class DbParams:
    host: str
    port: int
    user: str
    password: str | None = None

    @classmethod
    def from_env(cls) -> DbParams:
        env = os.environ
        return cls(
            host=env.get("ODOO_DB_HOST") or env.get("PGHOST") or "127.0.0.1",
            port=int(env.get("ODOO_DB_PORT") or env.get("PGPORT") or 5432),
            user=env.get("ODOO_DB_USER") or env.get("PGUSER") or _os_user(),
            password=env.get("ODOO_DB_PASSWORD") or env.get("PGPASSWORD") or None,
        )

    def odoo_args(self) -> list[str]:
        args = [f"--db_host={self.host}", f"--db_port={self.port}", f"--db_user={self.user}"]
        if self.password:
            args.append(f"--db_password={self.password}")
        return args

    def pg_args(self) -> list[str]:
        return ["-h", self.host, "-p", str(self.port), "-U", self.user]

    def pg_env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.password:
            env["PGPASSWORD"] = self.password
        return env


def _os_user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except Exception:  # no passwd entry (containers)
        return "odoo"


def unique_db_name(prefix: str = DB_PREFIX + "test") -> str:
    return f"{prefix}_{time.strftime('%Y%m%d%H%M%S')}_{os.getpid()}_{secrets.token_hex(3)}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listens_on(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds the listening TCP socket of ``port`` (Linux /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{inode}]")
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fd) in inodes for fd in fd_dir.iterdir())
    except OSError:  # the process is gone, or a descriptor closed while we looked
        return False


def addons_path(series: Series = ODOO18) -> str:
    extra = [p.strip() for p in os.environ.get("ODOO_ADDONS_PATH", "").split(",") if p.strip()]
    return ",".join([*extra, str(series.addons_dir)])


def _odoo_python(cmd: list[str]) -> str | None:
    """Best guess of the interpreter behind the Odoo command (to probe its packages)."""
    exe = cmd[0]
    if re.search(r"python[\d.]*$", os.path.basename(exe)):
        return exe
    path = shutil.which(exe) or exe
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096).decode("utf-8", "replace")
    except OSError:
        return None
    for line in head.splitlines():
        if line.startswith("#!") and "python" in line:
            return line[2:].strip().split()[0]
        match = re.search(r"exec\s+(\S*python[\d.]*)\s", line)
        if match:
            return match.group(1)
    return None


def ensure_extras(cmd: list[str]) -> Path | None:
    """A folder with the packages Odoo's browser tests need, if Odoo's Python lacks them."""
    python = _odoo_python(cmd)
    if python:
        probe = subprocess.run(
            [python, "-c", "import websocket"], capture_output=True, check=False, timeout=60
        )
        if probe.returncode == 0:
            return None
    if (EXTRAS_DIR / "websocket").is_dir():
        return EXTRAS_DIR
    EXTRAS_DIR.mkdir(parents=True, exist_ok=True)
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--target",
            str(EXTRAS_DIR),
            *EXTRA_PACKAGES,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if install.returncode != 0:  # the browser test will then be reported as skipped
        sys.stderr.write(f"odoo_harness: could not install {EXTRA_PACKAGES}: {install.stderr}\n")
        return None
    return EXTRAS_DIR


def odoo_environ(cmd: list[str]) -> dict[str, str]:
    env = dict(os.environ)
    extras = ensure_extras(cmd)
    if extras:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(extras), env.get("PYTHONPATH")]))
    return env


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=False, **kwargs)


def drop_database(name: str, params: DbParams | None = None, series: Series = ODOO18) -> None:
    params = params or DbParams.from_env()
    shutil.rmtree(DATA_DIR / "filestore" / name, ignore_errors=True)
    if shutil.which("dropdb"):
        _run(
            ["dropdb", *params.pg_args(), "--if-exists", "--force", name],
            env=params.pg_env(),
            capture_output=True,
            timeout=120,
        )
        return
    cmd = find_odoo(series)
    if cmd:  # Odoo's own "db drop" command
        _run([*cmd, "db", *params.odoo_args(), "drop", name], capture_output=True, timeout=120)


@dataclass
class TestRunResult:
    __test__ = False  # not a pytest test class

    db: str
    returncode: int
    log_path: Path
    ran: int = 0
    failed: int = 0
    errors: int = 0
    summary_seen: bool = False
    skipped: list[str] = field(default_factory=list)
    error_lines: list[str] = field(default_factory=list)
    post_tests: int | None = None
    duration: float = 0.0

    def problems(self) -> list[str]:
        out = []
        if self.returncode != 0:
            out.append(f"odoo exited with status {self.returncode}")
        if not self.summary_seen:
            out.append("no 'odoo.tests.result' summary line in the log")
        if self.ran == 0:
            out.append("no Odoo test ran")
        if self.failed or self.errors:
            out.append(f"{self.failed} failed, {self.errors} error(s)")
        if self.error_lines:
            out.append(f"{len(self.error_lines)} ERROR/CRITICAL log line(s)")
        if self.skipped:  # e.g. the browser tour without Chromium: not run is not passed
            out.append(f"{len(self.skipped)} test(s) skipped: " + "; ".join(self.skipped))
        return out

    @property
    def ok(self) -> bool:
        return not self.problems()

    def summary(self) -> str:
        passed = max(self.ran - self.failed - self.errors - len(self.skipped), 0)
        return (
            f"Odoo tests: {self.ran} ran, {passed} passed, {self.failed} failed, "
            f"{self.errors} error(s), {len(self.skipped)} skipped (log: {self.log_path})"
        )


def parse_test_log(text: str, result: TestRunResult) -> TestRunResult:
    """Fill ``result`` from an Odoo log; the summary line wins over the per-test counts."""
    for line in text.splitlines():
        match = _SUMMARY_RE.search(line)
        if match:
            result.summary_seen = True
            result.failed = max(result.failed, int(match.group(1)))
            result.errors = max(result.errors, int(match.group(2)))
            result.ran = max(result.ran, int(match.group(3)))
        parsed = _LINE_RE.match(line)
        if not parsed:
            continue
        level, _db, _logger, message = parsed.groups()
        if level in ("ERROR", "CRITICAL"):
            result.error_lines.append(line)
        skip = _SKIP_RE.match(message)
        if skip:
            result.skipped.append(f"{skip.group(1)}: {skip.group(2)}")
        post = _POST_TESTS_RE.match(message)
        if post:
            result.post_tests = int(post.group(1))
    return result


def _odoo_base_args(cmd: list[str], db: str, params: DbParams, series: Series) -> list[str]:
    return [
        *cmd,
        "-d",
        db,
        *params.odoo_args(),
        f"--addons-path={addons_path(series)}",
        f"--db-filter=^{re.escape(db)}$",
        f"--data-dir={DATA_DIR}",
        # a boolean both series read as "no demo data" (19 warns on 18's "=all")
        "--without-demo=True",
        "--max-cron-threads=0",
    ]


def _createdb(db: str, params: DbParams) -> None:
    if shutil.which("createdb"):
        proc = _run(
            ["createdb", *params.pg_args(), "-E", "UTF8", "-T", "template0", db],
            env=params.pg_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"createdb {db} failed: {proc.stderr.strip()}")
    # without createdb, Odoo creates the database itself on first start


def run_module_tests(
    module: str = MODULE,
    test_tags: str | None = None,
    *,
    keep_db: bool = False,
    log_dir: Path | None = None,
    timeout: float = 3600,
    series: Series = ODOO18,
) -> TestRunResult:
    """Install ``module`` in a fresh database with ``--test-enable`` and parse the result."""
    cmd = find_odoo(series)
    if cmd is None:
        raise RuntimeError(series.not_found_reason)
    params = DbParams.from_env()
    db = unique_db_name()
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="mcpg_odoo_"))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{db}.log"
    args = [
        *_odoo_base_args(cmd, db, params, series),
        "-i",
        module,
        "--test-enable",
        f"--test-tags=/{module}" if test_tags is None else f"--test-tags={test_tags}",
        "--stop-after-init",
        f"--http-port={free_port()}",
        "--log-level=info",
    ]
    started = time.monotonic()
    try:
        _createdb(db, params)
        with open(log_path, "w", encoding="utf-8") as log:
            proc = subprocess.run(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=odoo_environ(cmd),
                timeout=timeout,
                check=False,
            )
        result = TestRunResult(db=db, returncode=proc.returncode, log_path=log_path)
        result.duration = time.monotonic() - started
        return parse_test_log(log_path.read_text(encoding="utf-8", errors="replace"), result)
    finally:
        if not keep_db:
            drop_database(db, params, series)


def create_database(
    name: str | None = None,
    modules: tuple[str, ...] = (MODULE,),
    timeout: float = 1800,
    series: Series = ODOO18,
) -> str:
    """Create a database with ``modules`` installed (no tests) and return its name."""
    cmd = find_odoo(series)
    if cmd is None:
        raise RuntimeError(series.not_found_reason)
    params = DbParams.from_env()
    name = name or unique_db_name(DB_PREFIX + "db")
    _createdb(name, params)
    proc = subprocess.run(
        [
            *_odoo_base_args(cmd, name, params, series),
            "-i",
            ",".join(modules),
            "--stop-after-init",
            f"--http-port={free_port()}",
        ],
        capture_output=True,
        text=True,
        env=odoo_environ(cmd),
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        drop_database(name, params, series)
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        raise RuntimeError(f"installing {modules} into {name} failed:\n{tail}")
    return name


def run_odoo_on(
    db: str,
    extra: list[str],
    *,
    stdin: str | None = None,
    timeout: float = 1800,
    series: Series = ODOO18,
) -> subprocess.CompletedProcess:
    """Run Odoo once on an existing database; output captured. ``extra``: e.g.
    ``["-u", MODULE, "--stop-after-init"]``, or ``["shell"]`` with a script on ``stdin``."""
    cmd = find_odoo(series)
    if cmd is None:
        raise RuntimeError(series.not_found_reason)
    params = DbParams.from_env()
    base = _odoo_base_args(cmd, db, params, series)
    if extra and extra[0] == "shell":  # the subcommand comes before the options
        base = [*cmd, "shell", *base[len(cmd) :]]
        extra = extra[1:]
    return subprocess.run(
        [*base, *extra, f"--http-port={free_port()}"],
        input=stdin,
        capture_output=True,
        text=True,
        env=odoo_environ(cmd),
        timeout=timeout,
        check=False,
    )


@contextlib.contextmanager
def fresh_database(modules: tuple[str, ...] = (MODULE,), series: Series = ODOO18) -> Iterator[str]:
    """A database with the module installed for the duration of the block, then dropped."""
    name = create_database(modules=modules, series=series)
    try:
        yield name
    finally:
        drop_database(name, series=series)


@dataclass
class OdooServer:
    db: str
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def odoo_server(
    db: str,
    port: int | None = None,
    extra_args: tuple[str, ...] = (),
    start_timeout: float = 120,
    series: Series = ODOO18,
) -> Iterator[OdooServer]:
    """Run ``odoo`` serving ``db`` over HTTP on a free port until the block ends."""
    cmd = find_odoo(series)
    if cmd is None:
        raise RuntimeError(series.not_found_reason)
    params = DbParams.from_env()
    port = port or free_port()
    log_path = Path(tempfile.mkdtemp(prefix="mcpg_odoo_srv_")) / "odoo.log"
    args = [
        *_odoo_base_args(cmd, db, params, series),
        f"--http-port={port}",
        "--http-interface=127.0.0.1",
        "--workers=0",
        *extra_args,
    ]
    log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        args, stdout=log, stderr=subprocess.STDOUT, env=odoo_environ(cmd), start_new_session=True
    )
    server = OdooServer(db=db, port=port, process=proc, log_path=log_path)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"odoo exited with {proc.returncode}; see {log_path}")
            try:
                with urllib.request.urlopen(f"{server.url}/web/health", timeout=2) as resp:
                    # ours, not another server that took the free port first (ours then exits)
                    if resp.status == 200 and listens_on(proc.pid, port):
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"odoo did not answer on {server.url}; see {log_path}")
            time.sleep(0.5)
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
        log.close()


if __name__ == "__main__":  # python tests/odoo_harness.py [19.0]: run the add-on tests once
    wanted = sys.argv[1] if len(sys.argv) > 1 else ODOO18.version
    chosen = next((s for s in SERIES if s.version == wanted), None)
    if chosen is None:
        print(f"unknown Odoo series {wanted!r}: one of {', '.join(s.version for s in SERIES)}")
        sys.exit(2)
    if find_odoo(chosen) is None:
        print(chosen.not_found_reason)
        sys.exit(2)
    outcome = run_module_tests(series=chosen)
    print(outcome.summary())
    for problem in outcome.problems():
        print("PROBLEM:", problem)
    for line in outcome.error_lines[:20]:
        print(line)
    sys.exit(0 if outcome.ok else 1)
