"""The deployment's nginx (deploy/nginx/nginx.conf.template) rendered and run on loopback for tests.

A multi-process test puts real nginx in front of gateway processes on loopback ports::

    with running_nginx(tmp_path / "nginx", [("127.0.0.1", gw1), ("127.0.0.1", gw2)]) as lb_port:
        httpx.get(f"http://127.0.0.1:{lb_port}/actuator/health")

nginx itself comes from Debian (`make setup-services` installs it).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NGINX_TEMPLATE = ROOT / "deploy" / "nginx" / "nginx.conf.template"
# Exactly the placeholders the template documents; anything else left as ${...} is an error.
TEMPLATE_VARIABLES = ("NGINX_LISTEN", "NGINX_RUNTIME_DIR", "GATEWAY_UPSTREAM_1", "GATEWAY_UPSTREAM_2")
START_TIMEOUT_S = 10.0


def nginx_binary() -> str:
    """Debian's nginx, which `make setup-services` installs."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").is_file() else None)
    if found is None:
        raise RuntimeError("nginx is not installed: run `make setup-services`")
    return found


def render_nginx_conf(runtime_dir: Path, listen: str, gateways: Sequence[tuple[str, int]]) -> Path:
    """Fill the template (as envsubst would) into runtime_dir/nginx.conf and return its path."""
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
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    leftover = re.findall(r"\$\{[A-Z0-9_]+\}", _without_comments(text))
    if leftover:
        raise ValueError(f"unfilled placeholders in the nginx template: {sorted(set(leftover))}")
    conf = runtime_dir / "nginx.conf"
    conf.write_text(text)
    return conf


def nginx_command(conf: Path, *args: str, directives: str = "") -> list[str]:
    """nginx with its prefix, config and error log pointed away from the system's."""
    # As root, workers would run as `nobody`, which cannot enter a test's private temp folder.
    # nginx keeps only the last -g, so every extra global directive goes into one.
    extra = ("user root; " if os.geteuid() == 0 else "") + directives
    globals_ = ["-g", extra] if extra else []
    return [nginx_binary(), "-e", "stderr", "-p", str(conf.parent), "-c", str(conf), *globals_, *args]


@contextmanager
def running_nginx(runtime_dir: Path, gateways: Sequence[tuple[str, int]]) -> Iterator[int]:
    """Start nginx on a free loopback port in front of two gateways; yield the port; stop it."""
    port = _free_port()
    conf = render_nginx_conf(runtime_dir, f"127.0.0.1:{port}", gateways)
    log = (runtime_dir / "nginx.log").open("wb")
    proc = subprocess.Popen(
        nginx_command(conf, directives="daemon off;"), stdout=log, stderr=subprocess.STDOUT
    )
    try:
        _wait_listening(proc, port, runtime_dir / "nginx.log")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _without_comments(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited with {proc.returncode}: {log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not listen on {port} in {START_TIMEOUT_S} s") from None
            time.sleep(0.05)
