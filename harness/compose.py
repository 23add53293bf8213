"""The compose stack in containers: docker-compose.yml run with podman and podman-compose, for the image
tests (``make test-images``). ``Stack.add_compose`` starts one and takes it down when the stack closes::

    with Stack(tmp_path) as stack:
        cpu = stack.add_compose("cpu")           # up, then waits until every container is healthy
        with cpu.gateway_client() as gw: ...     # the gateway's published port, the admin key
        cpu.crash("model-service")               # SIGKILL to its main process: compose restarts it

Each stack is its own compose project (containers, network and volumes named after it), with its
secrets, host ports and image names in an env file of its own, as a user's ``.env`` would hold them.
Podman runs the containers' healthchecks from systemd timers, which a machine without systemd lacks:
while waiting, the harness runs each container's own healthcheck (``podman healthcheck run``) on its
interval instead, as the timer would.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
# The local stand-ins for the official images (scripts/build-base-images.sh).
LOCAL_IMAGES = {
    "POSTGRES_IMAGE": "localhost/llm-base/postgres:15-bookworm",
    "REDIS_IMAGE": "localhost/llm-base/redis:7.0-bookworm",
    "NGINX_IMAGE": "localhost/llm-base/nginx:1.22-bookworm",
}
HEALTH_INTERVAL_S = 5.0
UP_TIMEOUT_S = 600.0


def podman_compose() -> str:
    """The podman-compose to run: $PODMAN_COMPOSE (the Makefile's), else the one on PATH."""
    found = os.environ.get("PODMAN_COMPOSE") or shutil.which("podman-compose")
    if not found:
        raise FileNotFoundError("podman-compose not found: make setup-containers installs it")
    return found


class ComposeStack:
    """One compose project: ``up`` with a profile, its containers inspected, killed and restarted."""

    def __init__(
        self,
        profile: str,
        *,
        project: str,
        env: Mapping[str, str],
        workdir: Path,
        logs: Path,
        admin_key: str,
    ) -> None:
        self.profile, self.project, self.workdir, self.logs = profile, project, workdir, logs
        self.admin_key = admin_key
        self.env = dict(env)
        self.env_file = workdir / f"{project}.env"
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in self.env.items()))
        self.log = logs / f"compose-{project}.log"
        self.started_in: float | None = None  # seconds from `up` to every container healthy

    # ---- compose ---------------------------------------------------------------------------------

    def compose(self, *args: str, timeout: float = 600.0, check: bool = True) -> str:
        """podman-compose with this project, profile and env file; its output (also in the log)."""
        cmd = [podman_compose(), "--project-name", self.project, "--profile", self.profile]
        cmd += ["--env-file", str(self.env_file), "-f", str(COMPOSE_FILE), *args]
        # podman-compose reads the variables it interpolates from its environment too.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MODEL_", "GATEWAY_"))} | self.env
        done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        with self.log.open("a") as log:
            log.write(f"$ {' '.join(cmd)}\n{done.stdout}{done.stderr}\n")
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
        return done.stdout

    def up(self, timeout: float = UP_TIMEOUT_S) -> float:
        """Starts the profile's containers (images as built: no --build) and waits until all are
        healthy; the seconds that took."""
        start = time.monotonic()
        self.compose("up", "-d", "--no-build")
        self.wait_healthy(timeout=timeout)
        self.started_in = time.monotonic() - start
        return self.started_in

    def down(self, *, volumes: bool = False) -> None:
        """Stops and removes the containers and network; with ``volumes`` the named volumes too."""
        self.compose("down", *(["--volumes"] if volumes else []), "--timeout", "20", check=False)

    # ---- containers ------------------------------------------------------------------------------

    def containers(self) -> dict[str, str]:
        """The project's containers by service: service name -> container name."""
        out = _podman("ps", "-a", "--filter", f"label=io.podman.compose.project={self.project}",
                      "--format", "{{.Names}} {{index .Labels \"com.docker.compose.service\"}}")  # fmt: skip
        return {svc: name for name, svc in (line.split() for line in out.splitlines() if line.strip())}

    def container(self, service: str) -> str:
        return self.containers()[service]

    def inspect(self, service: str) -> dict[str, Any]:
        return dict(json.loads(_podman("inspect", self.container(service)))[0])

    def state(self, service: str) -> dict[str, Any]:
        """The container's State: Status, Pid, Health ({Status: healthy|unhealthy|starting}), ..."""
        return dict(self.inspect(service)["State"])

    def health(self, service: str) -> str:
        """healthy, unhealthy or starting; "" for a container without a healthcheck or not running."""
        state = self.state(service)
        if state["Status"] != "running":
            return ""
        return str((state.get("Health") or state.get("Healthcheck") or {}).get("Status", ""))

    def wait_healthy(self, services: Iterable[str] | None = None, timeout: float = UP_TIMEOUT_S) -> None:
        """Waits until every one of ``services`` (default all the project's) runs and is healthy,
        running each healthcheck on its interval; fails with the containers' logs."""
        names = list(services or self.containers())
        deadline = time.monotonic() + timeout
        pending = set(names)
        while pending:
            for service in sorted(pending):
                container = self.container(service)
                if self.state(service)["Status"] == "running":
                    # 0: healthy; 1: unhealthy for now (the start period covers a slow start).
                    subprocess.run(["podman", "healthcheck", "run", container], capture_output=True)
                if self.health(service) == "healthy":
                    pending.discard(service)
            if not pending:
                return
            if time.monotonic() > deadline:
                tails = "\n".join(f"--- {s}: {self.logs_of(s)[-3000:]}" for s in sorted(pending))
                raise RuntimeError(f"not healthy after {timeout:g} s: {sorted(pending)}\n{tails}")
            time.sleep(HEALTH_INTERVAL_S)

    def logs_of(self, service: str) -> str:
        """What the service's container printed."""
        done = subprocess.run(["podman", "logs", self.container(service)], capture_output=True, text=True)
        return done.stdout + done.stderr

    def save_logs(self) -> None:
        """Each container's output into the logs folder."""
        for service in self.containers():
            (self.logs / f"{self.project}-{service}.log").write_text(self.logs_of(service))

    def crash(self, service: str) -> int:
        """SIGKILL to the container's main process, from outside, as a crash would end it (not
        ``podman kill``, which counts as stopped by the user and is never restarted); its pid."""
        pid = int(self.state(service)["Pid"])
        os.kill(pid, signal.SIGKILL)
        return pid

    def stop(self, service: str) -> None:
        _podman("stop", "--time", "20", self.container(service))

    def start(self, service: str) -> None:
        _podman("start", self.container(service))

    def process_uid(self, service: str) -> int:
        """The real uid of the container's main process as the host sees it (rootful podman maps no
        user ids: 0 here is root on the host)."""
        pid = int(self.state(service)["Pid"])
        status = Path(f"/proc/{pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:")))

    def image_size(self, service: str) -> int:
        """The size in bytes of the image the service runs."""
        image = self.inspect(service)["Image"]
        return int(json.loads(_podman("image", "inspect", image))[0]["Size"])

    # ---- clients ---------------------------------------------------------------------------------

    @property
    def gateway_url(self) -> str:
        """The gateway's published port (GATEWAY_PORT)."""
        return f"http://127.0.0.1:{self.env['GATEWAY_PORT']}"

    @property
    def balancer_url(self) -> str:
        """nginx's published port (LB_PORT; the scale profile)."""
        return f"http://127.0.0.1:{self.env['LB_PORT']}"

    def client(self, base: str, key: str | None = None, timeout: float = 120.0) -> httpx.Client:
        """An httpx client of ``base`` with ``key`` (default the admin key)."""
        return httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {key or self.admin_key}"}, timeout=timeout
        )

    def gateway_client(self, key: str | None = None, timeout: float = 120.0) -> httpx.Client:
        return self.client(self.gateway_url, key, timeout)


def compose_env(
    profile: str, *, admin_key: str, gateway_port: int, lb_port: int, models_dir: Path
) -> dict[str, str]:
    """What a user's ``.env`` holds (.env.example with its secrets filled), with free host ports and
    the local stand-ins for the official PostgreSQL, Redis and nginx images."""
    return {
        "COMPOSE_PROFILES": profile,
        "MODEL_SERVICE_TOKEN": secrets.token_urlsafe(32),
        "ADMIN_API_KEY": admin_key,
        "POSTGRES_PASSWORD": secrets.token_hex(16),
        "MODEL_PATH": "",
        "MODELS_DIR": str(models_dir),
        "MODEL_TRUST_REMOTE_CODE": "false",
        "MODEL_LOG_LEVEL": "INFO",
        "GATEWAY_PORT": str(gateway_port),
        "LB_PORT": str(lb_port),
        **LOCAL_IMAGES,
    }


def _podman(*args: str) -> str:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout
