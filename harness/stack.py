"""The one launcher of the Python tests and benchmarks: the tiers and their services as child processes.

A ``Stack`` owns every process it starts, writes each one's output to ``<logs>/<name>.log`` and stops
them all, newest first, when its block ends (SIGTERM, then SIGKILL after a grace period)::

    with Stack(tmp_path) as stack:
        pg, redis = stack.add_postgres(), stack.add_redis()
        models = [stack.add_model_service(wait=False) for _ in range(2)]
        gateways = [stack.add_gateway(models, postgres=pg, redis=redis, wait=False) for _ in range(2)]
        stack.wait_ready(*models, *gateways)
        stack.kill(models[0])  # SIGKILL: a replica dies

Model services share the stack's internal token and gateways its admin key unless told otherwise, so
that any gateway can call any model service and one key works on every gateway.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from harness.compose import ComposeStack

ROOT = Path(__file__).resolve().parent.parent
SERVICE_DIR = ROOT / "python-model-service"
GATEWAY_JAR = ROOT / "java-gateway" / "target" / "gateway.jar"
NGINX_TEMPLATE = ROOT / "deploy" / "nginx" / "nginx.conf.template"
READY_TIMEOUT_S = 240.0
STOP_GRACE_S = 30.0

# Variables the tiers read that a launcher decides itself: inherited values (a developer's shell) are
# dropped so that what runs is what the caller asked for.
_TIER_ENV = re.compile(r"^(MODEL_|GATEWAY_|ADMIN_API_KEY$)")


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def java_binary() -> str:
    """The newest JDK present (JAVA_RUN_HOME; 21+ runs the gateway on virtual threads), else ``java``."""
    home = os.environ.get("JAVA_RUN_HOME")
    return str(Path(home) / "bin" / "java") if home else "java"


def new_key(prefix: str = "sk-admin-") -> str:
    """A fresh API key."""
    return prefix + secrets.token_urlsafe(24)


class MissingBinaryError(RuntimeError):
    """A server program (PostgreSQL, Redis, nginx) is not installed."""


def find_binary(name: str, *candidates: str, package: str) -> str:
    """The first of ``candidates`` (globs allowed, newest version last) or ``name`` on PATH."""
    for pattern in candidates:
        found = sorted(Path("/").glob(pattern.lstrip("/")), key=lambda p: _version_key(str(p)))
        if found:
            return str(found[-1])
    path = shutil.which(name)
    if path is None:
        raise MissingBinaryError(f"{name} not found; install it with: scripts/apt-install.sh {package}")
    return path


def _version_key(path: str) -> list[int | str]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", path)]


def render_nginx_template(runtime_dir: Path, listen: str, gateways: Sequence[tuple[str, int]]) -> Path:
    """The deployment's nginx config (deploy/nginx/nginx.conf.template) filled as compose's envsubst
    step fills it, written to ``runtime_dir/nginx.conf``: nginx on ``listen`` in front of two gateways."""
    if len(gateways) != 2:
        raise ValueError(f"the template has two gateway slots, got {len(gateways)}")
    runtime_dir.mkdir(parents=True, exist_ok=True)
    values = {
        "NGINX_LISTEN": listen,
        "NGINX_RUNTIME_DIR": str(runtime_dir),
        "GATEWAY_UPSTREAM_1": f"{gateways[0][0]}:{gateways[0][1]}",
        "GATEWAY_UPSTREAM_2": f"{gateways[1][0]}:{gateways[1][1]}",
    }
    text = NGINX_TEMPLATE.read_text()
    for key, value in values.items():
        text = text.replace("${" + key + "}", value)
    uncommented = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    leftover = re.findall(r"\$\{[A-Z0-9_]+\}", uncommented)
    if leftover:
        raise ValueError(f"unfilled placeholders in the nginx template: {sorted(set(leftover))}")
    conf = runtime_dir / "nginx.conf"
    conf.write_text(text)
    return conf


def nginx_command(conf: Path, *args: str, directives: str = "") -> list[str]:
    """Debian's nginx with its prefix, config and error log pointed away from the system's."""
    binary = find_binary("nginx", "/usr/sbin/nginx", package="nginx")
    # As root, workers would run as `nobody`, which cannot enter a test's private temp folder; nginx
    # keeps only the last -g, so every extra global directive goes into one.
    extra = ("user root; " if os.geteuid() == 0 else "") + directives
    return [
        binary,
        "-e",
        "stderr",
        "-p",
        str(conf.parent),
        "-c",
        str(conf),
        *(["-g", extra] if extra else []),
        *args,
    ]


@dataclass(eq=False)
class Process:
    """A child process of a stack."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    port: int | None
    ready: str | Callable[[], bool] | None  # an HTTP path answering 200, a check, or None: the port accepts
    stop_signal: int = signal.SIGTERM
    grace: float | None = None  # seconds between the stop signal and SIGKILL (None: the stack's)
    launch: dict[str, Any] = field(default_factory=dict, repr=False)  # Popen's arguments, for a restart

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def url(self) -> str:
        """The base URL of its HTTP port."""
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self, tail: int | None = None) -> str:
        """What it printed so far (the last ``tail`` characters)."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text if tail is None else text[-tail:]

    def wait(self, timeout: float | None = None) -> int:
        """Waits for it to exit; its exit status (negative: the signal that ended it)."""
        return self.popen.wait(timeout)

    def is_ready(self) -> bool:
        """Whether it answers its readiness check now."""
        if callable(self.ready):
            return self.ready()
        if self.port is None:
            return True
        if self.ready is None:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return True
            except OSError:
                return False
        try:
            return httpx.get(self.url + self.ready, timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False


@dataclass(eq=False)
class ModelService(Process):
    token: str = ""

    def client(self, timeout: float = 120.0) -> httpx.Client:
        """An httpx client that speaks to it with the internal token."""
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=timeout
        )


@dataclass(eq=False)
class Gateway(Process):
    admin_key: str = ""
    upstreams: list[str] = field(default_factory=list)

    def client(self, key: str | None = None, timeout: float = 120.0) -> httpx.Client:
        """An httpx client that speaks to it with ``key`` (default the admin key)."""
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {key or self.admin_key}"},
            timeout=timeout,
        )


@dataclass(eq=False)
class Redis(Process):
    """A throwaway redis-server, spoken to in RESP over a fresh connection per command."""

    _own: int = field(default=0, init=False)  # commands sent through this object (Redis counts them too)

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def command(self, *args: str, timeout: float = 5.0) -> bytes:
        """One command; its reply's payload (a status, an integer's digits or a bulk string)."""
        assert self.port is not None
        parts = [f"*{len(args)}\r\n".encode()]
        for arg in args:
            data = arg.encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(b"".join(parts))
            buf = b""

            def more() -> bytes:
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("redis closed the connection mid-reply")
                return data

            while b"\r\n" not in buf:
                buf += more()
            line, _, rest = buf.partition(b"\r\n")
            self._own += 1
            kind, head = line[:1], line[1:]
            if kind == b"-":
                raise RuntimeError(f"redis: {head.decode(errors='replace')}")
            if kind != b"$":
                return head
            size = int(head)
            if size < 0:
                return b""
            while len(rest) < size + 2:
                rest += more()
            return rest[:size]

    def info(self, section: str) -> dict[str, str]:
        """One INFO section as a dict."""
        text = self.command("INFO", section).decode(errors="replace")
        pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line and line[0] != "#")
        return {k: v.strip() for k, v in pairs}

    def commands(self) -> int:
        """Commands processed so far by others than this object (the gateways)."""
        # The INFO reply counts every earlier command, its own excluded; _own counts it already.
        total = int(self.info("stats")["total_commands_processed"])
        return total - (self._own - 1)

    def ping(self) -> bool:
        try:
            return self.command("PING", timeout=1) == b"PONG"
        except OSError:
            return False


@dataclass(eq=False)
class Postgres(Process):
    """A throwaway PostgreSQL cluster with one database, ``gateway``, owned by user ``gateway``."""

    user: str = "gateway"
    password: str = ""
    database: str = "gateway"

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:postgresql://127.0.0.1:{self.port}/{self.database}"


@dataclass(eq=False)
class Replicas:
    """The compose ``scale`` profile as processes: nginx in front of two gateways that share one
    PostgreSQL and one Redis, and two model services behind both gateways."""

    postgres: Postgres
    redis: Redis
    models: list[ModelService]
    gateways: list[Gateway]
    balancer: Process


class Stack:
    """Processes started for one test session or benchmark run; a context manager that stops them all.

    ``workdir`` holds each process's own folder (a gateway's jar copy and H2 file, a database
    cluster); a temporary folder, removed at the end, when not given. ``logs`` (default ``workdir``)
    gets ``<name>.log`` per process.
    """

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        logs: Path | None = None,
        ready_timeout: float = READY_TIMEOUT_S,
        stop_grace: float = STOP_GRACE_S,
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="stack-")
            workdir = Path(self._tmp.name)
        self.workdir = workdir
        self.logs = logs or self.workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.ready_timeout, self.stop_grace = ready_timeout, stop_grace
        self.model_token = secrets.token_urlsafe(32)
        self.admin_key = new_key()
        self.processes: list[Process] = []
        self._jars: dict[Path, Path] = {}
        self._cleanups: list[Callable[[], None]] = []

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stops every process, newest first; removes a temporary workdir."""
        for proc in reversed(self.processes):
            self.stop(proc)
        for cleanup in reversed(self._cleanups):
            cleanup()
        if self._tmp is not None:
            self._tmp.cleanup()

    # ---- any process ------------------------------------------------------------------------------

    def dir(self, name: str) -> Path:
        """A process's own folder under the workdir (made if missing)."""
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _name(self, base: str) -> str:
        taken = {p.name for p in self.processes}
        if base not in taken:
            return base
        return next(f"{base}-{i}" for i in range(2, 10_000) if f"{base}-{i}" not in taken)

    def start(
        self,
        name: str,
        cmd: Sequence[str],
        *,
        port: int | None = None,
        ready: str | Callable[[], bool] | None = None,
        env: Mapping[str, str | None] | None = None,
        cwd: Path | None = None,
        wait: bool = True,
        user: str | None = None,
        stop_signal: int = signal.SIGTERM,
        grace: float | None = None,
        kind: type[Process] = Process,
        **fields: object,
    ) -> Process:
        """Starts ``cmd`` with this environment plus ``env`` (None removes a variable), output to its log.

        With ``wait``, returns once it is ready: ``ready`` is an HTTP path that answers 200 on ``port``, a
        check, or None for "the port accepts connections". ``name`` is made unique within the stack.
        """
        name = self._name(name)
        full = {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}
        log = self.logs / f"{name}.log"
        launch = {"args": list(cmd), "cwd": cwd, "env": full, "user": user}
        log.write_bytes(b"")
        proc = kind(
            name=name,
            popen=_popen(launch, log),
            log=log,
            port=port,
            ready=ready,
            stop_signal=stop_signal,
            grace=grace,
            launch=launch,
            **fields,
        )
        self.processes.append(proc)
        if wait:
            self.wait_ready(proc)
        return proc

    def wait_ready(self, *procs: Process, timeout: float | None = None) -> None:
        """Waits until every one of ``procs`` is ready; fails with its log's end when one exits first."""
        deadline = time.monotonic() + (timeout or self.ready_timeout)
        pending = list(procs)
        while pending:
            for proc in list(pending):
                if not proc.alive():
                    raise RuntimeError(
                        f"{proc.name} exited with {proc.popen.returncode} before it was ready:\n"
                        f"{proc.output(4000)}"
                    )
                if proc.is_ready():
                    pending.remove(proc)
            if not pending:
                return
            if time.monotonic() > deadline:
                names = ", ".join(p.name for p in pending)
                tails = "\n".join(f"--- {p.name}:\n{p.output(4000)}" for p in pending)
                raise RuntimeError(f"not ready after {timeout or self.ready_timeout:g} s: {names}\n{tails}")
            time.sleep(0.2)

    def kill(self, proc: Process, sig: int = signal.SIGKILL) -> None:
        """Sends ``sig`` to one of the stack's processes: SIGKILL (the default) is a crash, SIGTERM a
        graceful stop, SIGSTOP and SIGCONT freeze and thaw it."""
        if proc not in self.processes:
            raise ValueError(f"{proc.name} was not started by this stack")
        if proc.alive():
            proc.popen.send_signal(sig)

    def restart(self, proc: Process, *, wait: bool = True) -> Process:
        """Starts a process again as it was started (same command, environment and port), once the
        previous run has ended (it is stopped first if it has not); its log goes on in the same file."""
        self.stop(proc)
        proc.popen = _popen(proc.launch, proc.log)
        if wait:
            self.wait_ready(proc)
        return proc

    def stop(self, proc: Process, grace: float | None = None) -> None:
        """Stops a process: its stop signal, then SIGKILL if it has not exited within ``grace`` seconds."""
        if proc.alive():
            proc.popen.send_signal(proc.stop_signal)
            proc.popen.send_signal(signal.SIGCONT)  # a frozen process gets its stop signal too
            try:
                proc.popen.wait(next(g for g in (grace, proc.grace, self.stop_grace) if g is not None))
            except subprocess.TimeoutExpired:
                proc.popen.kill()
        proc.popen.wait()

    # ---- the tiers --------------------------------------------------------------------------------

    def add_model_service(
        self,
        *,
        env: Mapping[str, str | None] | None = None,
        port: int | None = None,
        token: str | None = None,
        name: str = "model-service",
        wait: bool = True,
    ) -> ModelService:
        """``python -m app`` (this interpreter) on a loopback port; ready when ``/ready`` answers 200.

        Inherited MODEL_* variables are dropped: ``env`` says everything else (MODEL_PATH, ...).
        """
        port = port or free_port()
        token = token or self.model_token
        own = {"MODEL_HOST": "127.0.0.1", "MODEL_PORT": str(port), "MODEL_SERVICE_TOKEN": token}
        proc = self.start(
            name,
            [sys.executable, "-m", "app"],
            port=port,
            ready="/ready",
            env={**_cleared(), **own, **(env or {})},
            cwd=SERVICE_DIR,
            wait=wait,
            kind=ModelService,
            token=token,
        )
        assert isinstance(proc, ModelService)
        return proc

    def add_gateway(
        self,
        upstreams: Sequence[str | Process],
        *,
        env: Mapping[str, str | None] | None = None,
        port: int | None = None,
        admin_key: str | None = None,
        model_token: str | None = None,
        redis: Redis | None = None,
        postgres: Postgres | None = None,
        jar: Path = GATEWAY_JAR,
        name: str = "gateway",
        wait: bool = True,
    ) -> Gateway:
        """The gateway jar in front of ``upstreams`` (model services or base URLs); ready when
        ``/actuator/health`` answers 200.

        It runs a copy of the jar, made once per stack: a rebuild during a long run must not pull
        classes from under it. Its database is ``postgres`` or else an H2 file of its own; its shared
        state is in ``redis`` or else in its memory (whatever the calling shell's GATEWAY_* say).
        """
        port = port or free_port()
        name = self._name(name)
        urls = [u.url if isinstance(u, Process) else u for u in upstreams]
        tokens = {u.token for u in upstreams if isinstance(u, ModelService)}
        if model_token is None:
            if len(tokens) > 1:
                raise ValueError("the upstream model services have different tokens: pass model_token")
            model_token = tokens.pop() if tokens else self.model_token
        admin_key = admin_key or self.admin_key
        own: dict[str, str | None] = {
            "GATEWAY_PORT": str(port),
            "GATEWAY_UPSTREAMS": ",".join(urls),
            "ADMIN_API_KEY": admin_key,
            "MODEL_SERVICE_TOKEN": model_token,
            "GATEWAY_REDIS_URL": redis.redis_url if redis else None,
        }
        if postgres is not None:
            own |= {
                "GATEWAY_DB_URL": postgres.jdbc_url,
                "GATEWAY_DB_USER": postgres.user,
                "GATEWAY_DB_PASSWORD": postgres.password,
            }
        else:
            own["GATEWAY_DB_URL"] = f"jdbc:h2:file:{self.dir(name) / 'db'}"
        proc = self.start(
            name,
            [java_binary(), "-jar", str(self._jar_copy(jar))],
            port=port,
            ready="/actuator/health",
            env={**_cleared(), **own, **(env or {})},
            cwd=self.dir(name),
            wait=wait,
            kind=Gateway,
            admin_key=admin_key,
            upstreams=urls,
        )
        assert isinstance(proc, Gateway)
        return proc

    def _jar_copy(self, jar: Path) -> Path:
        jar = jar.resolve()
        if jar not in self._jars:
            if not jar.is_file():
                raise FileNotFoundError(f"no gateway jar at {jar} (make setup-java builds it)")
            folder = self.dir(f"jar-{len(self._jars) + 1}")
            self._jars[jar] = Path(shutil.copy2(jar, folder / jar.name))
        return self._jars[jar]

    # ---- services ---------------------------------------------------------------------------------

    def add_redis(self, *, binary: str | None = None, name: str = "redis", wait: bool = True) -> Redis:
        """A redis-server on a loopback port, no persistence; ready when it answers PING."""
        binary = binary or find_binary("redis-server", "/usr/bin/redis-server", package="redis-server")
        port = free_port()
        work = self.dir(self._name(name))
        cmd = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        cmd += ["--dir", str(work), "--daemonize", "no"]
        holder: list[Redis] = []
        proc = self.start(
            name, cmd, port=port, ready=lambda: holder[0].ping(), wait=False, grace=10, kind=Redis
        )
        assert isinstance(proc, Redis)
        holder.append(proc)
        if wait:
            self.wait_ready(proc, timeout=30)
        return proc

    def add_postgres(self, *, name: str = "postgres", wait: bool = True) -> Postgres:
        """A PostgreSQL cluster made with initdb on a loopback port (fsync off), with user and database
        ``gateway`` and a random password; ready once that database exists.

        As root, the cluster belongs to the ``postgres`` user: initdb refuses to run as root.
        """
        bindir = Path(find_binary("initdb", "/usr/lib/postgresql/*/bin/initdb", package="postgresql")).parent
        name = self._name(name)
        user = "postgres" if os.geteuid() == 0 else None
        work = self.dir(name)
        if user:
            # The postgres user cannot enter a root-only workdir (pytest's tmp_path): a folder of its own.
            work = Path(tempfile.mkdtemp(prefix=f"stack-{name}-"))
            self._cleanups.append(lambda: shutil.rmtree(work, ignore_errors=True))
            shutil.chown(work, user)
        password = secrets.token_hex(16)
        pwfile = work / "pwfile"
        pwfile.write_text(password + "\n")
        if user:
            shutil.chown(pwfile, user)
        data = work / "data"
        initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "gateway", f"--pwfile={pwfile}"]
        initdb += ["--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--locale=C.UTF-8"]
        init = subprocess.run(
            initdb,
            user=user,
            capture_output=True,
            text=True,
        )
        pwfile.unlink()
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{init.stdout}{init.stderr}")
        port = free_port()
        cmd = [str(bindir / "postgres"), "-D", str(data), "-c", "listen_addresses=127.0.0.1"]
        cmd += ["-p", str(port), "-k", str(work), "-c", "fsync=off", "-c", "full_page_writes=off"]
        # SIGINT is PostgreSQL's fast shutdown: it does not wait for clients to leave.
        proc = self.start(
            name, cmd, port=port, wait=False, user=user, stop_signal=signal.SIGINT, kind=Postgres
        )
        assert isinstance(proc, Postgres)
        proc.password = password
        isready = [str(bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)]
        proc.ready = lambda: subprocess.run(isready, check=False).returncode == 0
        if wait:
            self.wait_ready(proc, timeout=60)
            subprocess.run(
                [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "gateway", "gateway"],
                env={**os.environ, "PGPASSWORD": password},
                check=True,
            )
        return proc

    def add_nginx(
        self,
        config: Path,
        *,
        port: int | None = None,
        values: Mapping[str, str] | None = None,
        ready: str | None = None,
        name: str = "nginx",
        wait: bool = True,
    ) -> Process:
        """nginx in the foreground from ``config``, on a loopback port.

        ``@PORT@``, ``@WORKDIR@`` (its own folder) and ``@KEY@`` for each of ``values`` in the file are
        replaced first. The file may not set ``daemon`` or ``pid``; ``ready`` is an HTTP path that
        answers 200, else the port accepting connections is enough.
        """
        port = port or free_port()
        name = self._name(name)
        work = self.dir(name)
        text = config.read_text()
        for key, value in {"PORT": str(port), "WORKDIR": str(work), **(values or {})}.items():
            text = text.replace(f"@{key}@", value)
        (work / "logs").mkdir(exist_ok=True)
        conf = work / "nginx.conf"
        conf.write_text(text)
        # Its error log goes to stderr, which is its log file.
        cmd = nginx_command(
            conf, directives=f"daemon off; pid {work / 'nginx.pid'}; error_log stderr notice;"
        )
        # SIGQUIT is nginx's graceful shutdown; SIGTERM its fast one, which a throwaway server wants.
        return self.start(name, cmd, port=port, ready=ready, wait=wait)

    def add_load_balancer(
        self, gateways: Sequence[Process | tuple[str, int]], *, name: str = "nginx", wait: bool = True
    ) -> Process:
        """The deployment's own nginx config (the compose ``scale`` profile's) in front of two gateways,
        on a loopback port: SSE-safe, and a refused connection is tried on the other gateway."""
        port = free_port()
        name = self._name(name)
        servers = [g if isinstance(g, tuple) else ("127.0.0.1", int(g.port or 0)) for g in gateways]
        conf = render_nginx_template(self.dir(name), f"127.0.0.1:{port}", servers)
        return self.start(name, nginx_command(conf, directives="daemon off;"), port=port, wait=wait)

    # ---- the scale-out setup ----------------------------------------------------------------------------

    def add_replicas(
        self,
        *,
        model_env: Mapping[str, str | None] | None = None,
        gateway_env: Mapping[str, str | None] | None = None,
    ) -> Replicas:
        """PostgreSQL, Redis, two model services, two gateways in front of both and nginx in front of
        the gateways (the deployment's config); returns once all are ready."""
        postgres, redis = self.add_postgres(), self.add_redis()
        models = [self.add_model_service(env=model_env, wait=False) for _ in range(2)]
        # One gateway first: it creates the schema (Flyway) before the second one starts.
        first = self.add_gateway(models, postgres=postgres, redis=redis, env=gateway_env, wait=False)
        self.wait_ready(first)
        second = self.add_gateway(models, postgres=postgres, redis=redis, env=gateway_env, wait=False)
        self.wait_ready(second, *models)
        return Replicas(postgres, redis, models, [first, second], self.add_load_balancer([first, second]))

    # ---- the compose stack in containers --------------------------------------------------------------

    def add_compose(self, profile: str, *, wait: bool = True) -> ComposeStack:
        """docker-compose.yml's ``profile`` run with podman from the images ``make images`` built, as a
        compose project of its own (free host ports, this stack's admin key); ``up`` and, with
        ``wait``, every container healthy. At the stack's end its containers' output goes to the logs
        and it is taken down, volumes included."""
        from harness.compose import ComposeStack, compose_env

        project = f"llm{secrets.token_hex(3)}{profile}"
        models = self.dir(f"{project}-models")
        env = compose_env(
            profile,
            admin_key=self.admin_key,
            gateway_port=free_port(),
            lb_port=free_port(),
            models_dir=models,
        )
        compose = ComposeStack(
            profile, project=project, env=env, workdir=self.workdir, logs=self.logs, admin_key=self.admin_key
        )

        def take_down() -> None:
            compose.save_logs()
            compose.down(volumes=True)

        self._cleanups.append(take_down)
        if wait:
            compose.up()
        else:
            compose.compose("up", "-d", "--no-build")
        return compose

    # ---- the two-tier stack of the cross-tier tests ----------------------------------------------------

    @property
    def model(self) -> ModelService:
        """The first model service."""
        return next(p for p in self.processes if isinstance(p, ModelService))

    @property
    def gateway(self) -> Gateway:
        """The first gateway."""
        return next(p for p in self.processes if isinstance(p, Gateway))

    @property
    def model_url(self) -> str:
        return self.model.url

    @property
    def gateway_url(self) -> str:
        return self.gateway.url

    def model_client(self, timeout: float = 120.0) -> httpx.Client:
        """A client of the first model service, with the internal token."""
        return self.model.client(timeout)

    def gateway_client(self, timeout: float = 120.0) -> httpx.Client:
        """A client of the first gateway, with the admin key."""
        return self.gateway.client(timeout=timeout)


def _popen(launch: Mapping[str, Any], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(**launch, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)


def _cleared() -> dict[str, str | None]:
    """Removes every inherited tier variable."""
    return dict.fromkeys((k for k in os.environ if _TIER_ENV.match(k)), None)


@contextmanager
def running_stack(workdir: Path, model_env: Mapping[str, str] | None = None) -> Iterator[Stack]:
    """One model service and one gateway in front of it, started side by side, until the block ends;
    logs and state go to ``workdir``."""
    with Stack(workdir) as stack:
        model = stack.add_model_service(env=model_env, wait=False)
        gateway = stack.add_gateway([model], wait=False)
        stack.wait_ready(model, gateway)
        yield stack
