"""The deployment files agree with the run contract, offline: no container engine, no cluster.

Kubernetes manifests are validated against the schemas of a pinned Kubernetes version (bundled in
kubernetes-validate); the compose file against the Compose Specification's JSON schema (vendored in
tests/schemas/); Dockerfiles are parsed with dockerfile-parse; the nginx template is checked by
Debian's nginx and then carries a real event stream between loopback processes.
"""

from __future__ import annotations

import ast
import http.client
import json
import re
import socket
import subprocess
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from harness.stack import NGINX_TEMPLATE, Stack, nginx_command, render_nginx_template

ROOT = Path(__file__).resolve().parent.parent
K8S_DIR = ROOT / "deploy" / "k8s"
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
COMPOSE_SCHEMA = Path(__file__).resolve().parent / "schemas" / "compose-spec" / "compose-spec.json"
MODEL_DOCKERFILE = ROOT / "python-model-service" / "Dockerfile"
GATEWAY_DOCKERFILE = ROOT / "java-gateway" / "Dockerfile"
GATEWAY_CONFIG = ROOT / "java-gateway" / "src" / "main" / "resources" / "application.yml"
MODEL_CONFIG = ROOT / "python-model-service" / "app" / "core" / "config.py"

# The oldest Kubernetes the manifests promise to work on (autoscaling/v2, policy/v1, probes as used).
KUBERNETES_VERSION = "1.33"
MODEL_PORT, GATEWAY_PORT = 8000, 8080
SECRETS = ("MODEL_SERVICE_TOKEN", "ADMIN_API_KEY", "POSTGRES_PASSWORD")
UPSTREAM_ALIAS = "model-upstream"


# ---- what the apps actually read ------------------------------------------------------------------


def model_service_env_names() -> set[str]:
    """MODEL_<FIELD> for every field of the model service's Settings, and the demo model's folder."""
    tree = ast.parse(MODEL_CONFIG.read_text())
    settings = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings")
    fields = {
        n.target.id
        for n in settings.body
        if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name) and n.target.id != "model_config"
    }
    assert 'env_prefix="MODEL_"' in MODEL_CONFIG.read_text()
    # DEMO_MODEL_DIR: app/demo_model; HF_HOME and HOME: where transformers and torch cache files.
    return {f"MODEL_{f.upper()}" for f in fields} | {"DEMO_MODEL_DIR", "HF_HOME", "HOME"}


def gateway_env_names() -> set[str]:
    """Every ${NAME} that the gateway's application.yml reads."""
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)[:}]", GATEWAY_CONFIG.read_text())) | {"JAVA_TOOL_OPTIONS"}


def test_the_contract_names_are_found_where_the_apps_read_them() -> None:
    # Guards the two readers above: if they found nothing, every subset check below would pass.
    assert {"MODEL_PATH", "MODEL_SERVICE_TOKEN", "MODEL_HOST", "MODEL_PORT", "MODEL_DEVICE"} <= (
        model_service_env_names()
    )
    assert {
        "GATEWAY_PORT",
        "GATEWAY_HOST",
        "GATEWAY_UPSTREAMS",
        "MODEL_SERVICE_TOKEN",
        "ADMIN_API_KEY",
        "GATEWAY_REDIS_URL",
        "GATEWAY_DB_URL",
        "GATEWAY_DB_USER",
        "GATEWAY_DB_PASSWORD",
    } <= gateway_env_names()


# ---- Kubernetes -----------------------------------------------------------------------------------


def k8s_files() -> list[Path]:
    return sorted(p for p in K8S_DIR.glob("*.yaml") if p.name != "kustomization.yaml")


def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in k8s_files():
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return docs


def k8s(kind: str, name: str) -> dict[str, Any]:
    found = [d for _, d in k8s_documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    for _, doc in k8s_documents():
        if doc["kind"] in ("Deployment", "StatefulSet"):
            yield doc["metadata"]["name"], doc["spec"]["template"]


@pytest.mark.parametrize(("name", "doc"), k8s_documents(), ids=[n for n, _ in k8s_documents()])
def test_every_kubernetes_manifest_validates_against_the_pinned_schemas(
    name: str, doc: dict[str, Any]
) -> None:
    # strict: a misspelt field (readinesProbe) is an error, not something the API server drops.
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_kubernetes_validation_rejects_a_misspelt_field() -> None:
    doc = k8s("Deployment", "gateway")
    container = doc["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_kustomization_applies_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in k8s_files())
    namespaces = {d["metadata"].get("namespace") for _, d in k8s_documents() if d["kind"] != "Namespace"}
    assert namespaces == {kustomization["namespace"]}
    assert k8s("Namespace", kustomization["namespace"])


def test_every_workload_runs_as_non_root_with_requests_and_limits() -> None:
    for name, template in pod_specs():
        spec = template["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        for c in spec["containers"]:
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, name
            assert c["securityContext"]["capabilities"]["drop"] == ["ALL"], name
            assert {"cpu", "memory"} <= c["resources"]["requests"].keys(), name
            assert {"cpu", "memory"} <= c["resources"]["limits"].keys(), name
            assert re.search(r":\d+(\.\d+)+", c["image"]), f"{name}: image {c['image']} has no pinned version"


def test_services_hpa_and_budgets_reach_their_pods() -> None:
    labels = {name: t["metadata"]["labels"] for name, t in pod_specs()}
    ports = {
        name: {p["name"]: p["containerPort"] for c in t["spec"]["containers"] for p in c["ports"]}
        for name, t in pod_specs()
    }
    for _, doc in k8s_documents():
        kind, spec = doc["kind"], doc.get("spec", {})
        if kind in ("Deployment", "StatefulSet"):
            assert (
                spec["selector"]["matchLabels"].items()
                <= doc["spec"]["template"]["metadata"]["labels"].items()
            )
        if kind == "Service":
            targets = [n for n, lab in labels.items() if spec["selector"].items() <= lab.items()]
            assert targets, f"Service {doc['metadata']['name']} selects no pods"
            for port in spec["ports"]:
                assert port["targetPort"] in ports[targets[0]], f"{doc['metadata']['name']}: {port}"
        if kind == "PodDisruptionBudget":
            assert any(spec["selector"]["matchLabels"].items() <= lab.items() for lab in labels.values())
    hpa = k8s("HorizontalPodAutoscaler", "gateway")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gateway"}
    assert hpa["minReplicas"] >= 2, "one gateway is a single point of failure"
    for name in ("gateway", "model-service"):
        assert k8s("PodDisruptionBudget", name)
    assert k8s("Service", k8s("StatefulSet", "postgres")["spec"]["serviceName"])


def container_env(template: dict[str, Any]) -> tuple[set[str], list[dict[str, Any]]]:
    """The env names one pod's first container gets (envFrom ConfigMaps included), and its env list."""
    container = template["spec"]["containers"][0]
    names = {e["name"] for e in container.get("env", [])}
    for source in container.get("envFrom", []):
        names |= k8s("ConfigMap", source["configMapRef"]["name"])["data"].keys()
    return names, container.get("env", [])


def test_kubernetes_env_names_are_read_by_the_apps_and_refs_resolve() -> None:
    readers = {"model-service": model_service_env_names(), "gateway": gateway_env_names()}
    for name, template in pod_specs():
        names, env = container_env(template)
        if name in readers:
            assert names <= readers[name], f"{name} sets variables nobody reads: {names - readers[name]}"
        for entry in env:
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["key"] in k8s("Secret", ref["name"])["stringData"], f"{name}: {ref}"
    secret = k8s("Secret", "llm-secrets")["stringData"]
    assert set(SECRETS) <= secret.keys()
    assert all(v == "" for v in secret.values()), "the committed Secret template must hold no secret"


def http_probe_paths(container: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    return {
        probe: (container[probe]["httpGet"]["path"], container[probe]["httpGet"]["port"])
        for probe in ("startupProbe", "readinessProbe", "livenessProbe")
    }


def test_model_service_pods_get_a_gpu_the_model_volume_and_probe_ready() -> None:
    template = k8s("Deployment", "model-service")["spec"]["template"]
    container = template["spec"]["containers"][0]
    assert container["ports"] == [{"name": "http", "containerPort": MODEL_PORT}]
    assert set(http_probe_paths(container).values()) == {("/ready", "http")}
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["resources"]["requests"]["nvidia.com/gpu"] == "1"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/models"].get("readOnly") is True
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    claim = volumes[mounts["/models"]["name"]]["persistentVolumeClaim"]["claimName"]
    assert k8s("PersistentVolumeClaim", claim)
    names, env = container_env(template)
    assert {"MODEL_PATH", "MODEL_SERVICE_TOKEN"} <= names
    assert {"name": "MODEL_HOST", "value": "0.0.0.0"} in env, "bound to loopback the pod is unreachable"
    model_path = k8s("ConfigMap", "model-service-config")["data"]["MODEL_PATH"]
    assert model_path == "" or model_path.startswith("/models/")


def test_gateway_pods_probe_actuator_health_and_resolve_every_model_pod() -> None:
    template = k8s("Deployment", "gateway")["spec"]["template"]
    container = template["spec"]["containers"][0]
    assert container["ports"] == [{"name": "http", "containerPort": GATEWAY_PORT}]
    for path, port in http_probe_paths(container).values():
        assert path.startswith("/actuator/health") and port == "http"
    # Spring serves these groups only with management.endpoint.health.probes.enabled.
    management = yaml.safe_load(GATEWAY_CONFIG.read_text())["management"]
    assert management["endpoint"]["health"]["probes"]["enabled"] is True
    names, env = container_env(template)
    assert set(SECRETS[:2]) | {"GATEWAY_DB_PASSWORD", "GATEWAY_UPSTREAMS", "GATEWAY_REDIS_URL"} <= names
    assert {"name": "GATEWAY_HOST", "value": "0.0.0.0"} in env
    upstreams = k8s("ConfigMap", "gateway-config")["data"]["GATEWAY_UPSTREAMS"]
    host, port = re.fullmatch(r"http://([a-z0-9-]+):(\d+)", upstreams).groups()  # type: ignore[union-attr]
    service = k8s("Service", host)["spec"]
    assert service["clusterIP"] == "None", "only a headless Service's name resolves to every pod"
    assert service["selector"] == {"app.kubernetes.io/name": "model-service"}
    assert int(port) == service["ports"][0]["port"] == MODEL_PORT
    assert k8s("Service", "model-service")["spec"]["type"] == "ClusterIP"


# ---- compose --------------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\})")


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def compose_variables() -> list[tuple[str, str | None]]:
    """Every ${VAR} in the compose file with its operator (None, ':-', '-', ':?', '?')."""
    return [(m.group(1), m.group(2)) for m in _VARIABLE.finditer(COMPOSE_FILE.read_text()) if m.group(1)]


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err}, $$."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.groups()
        if name is None:
            return "$"
        if op in (":?", "?") and (name not in env or (op == ":?" and not env[name])):
            raise KeyError(f"compose would stop: {name}: {arg}")
        if (op == ":-" and not env.get(name)) or (op == "-" and name not in env):
            return arg
        return env.get(name, "")

    if isinstance(value, str):
        return _VARIABLE.sub(one, value)
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    return value


def user_env() -> dict[str, str]:
    """.env.example with its secrets filled in, as a user's .env would be."""
    return env_example() | {name: f"{name.lower()}-0123456789abcdef" for name in SECRETS}


def compose() -> dict[str, Any]:
    return interpolate(yaml.safe_load(COMPOSE_FILE.read_text()), user_env())


def active_services(profiles: set[str]) -> dict[str, dict[str, Any]]:
    """The services compose starts with these profiles: those without profiles, and matching ones."""
    return {
        name: svc
        for name, svc in compose()["services"].items()
        if not svc.get("profiles") or profiles & set(svc["profiles"])
    }


def model_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services.items() if "python-model-service" in str(s.get("build", {}))}


def gateways(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services.items() if "java-gateway" in str(s.get("build", {}))}


def test_compose_file_validates_against_the_compose_specification() -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator = jsonschema.Draft201909Validator(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose())]
    assert errors == []
    broken = compose()
    broken["services"]["gateway"]["depends_on"]["redis"]["condition"] = "service_healty"
    assert list(validator.iter_errors(broken)), "the schema must catch a misspelt condition"


def test_every_compose_variable_is_defaulted_or_in_env_example() -> None:
    example = env_example()
    missing = {name for name, op in compose_variables() if op not in (":-", "-") and name not in example}
    assert missing == set()
    for name in SECRETS:
        assert example.get(name) == "", f".env.example must name {name} and leave it empty"
    # The secrets must be demanded, not defaulted: a stack with a guessable password must not start.
    ops = {op for name, op in compose_variables() if name in SECRETS}
    assert ops == {":?"}
    with pytest.raises(KeyError, match="MODEL_SERVICE_TOKEN"):
        interpolate(yaml.safe_load(COMPOSE_FILE.read_text()), env_example())
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()


@pytest.mark.parametrize(
    ("profiles", "n_models", "n_gateways", "lb"),
    [({"cpu"}, 1, 1, False), ({"gpu"}, 1, 1, False), ({"scale"}, 2, 2, True)],
    ids=["cpu", "gpu", "scale"],
)
def test_each_profile_starts_a_complete_stack(
    profiles: set[str], n_models: int, n_gateways: int, lb: bool
) -> None:
    services = active_services(profiles)
    models, gws = model_services(services), gateways(services)
    assert len(models) == n_models and len(gws) == n_gateways
    assert {"postgres", "redis"} <= services.keys()
    assert ("nginx" in services) is lb
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on {dep}, which profile {profiles} does not start"
    # One DNS name for every model replica: what the gateway balances over.
    for svc in models.values():
        assert UPSTREAM_ALIAS in svc["networks"]["default"]["aliases"]
    for svc in gws.values():
        assert svc["environment"]["GATEWAY_UPSTREAMS"] == f"http://{UPSTREAM_ALIAS}:{MODEL_PORT}"
    devices = [
        s.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices")
        for s in models.values()
    ]
    if "gpu" in profiles:
        assert devices == [[{"driver": "nvidia", "count": "1", "capabilities": ["gpu"]}]]
    else:
        assert devices == [None] * n_models, "the CPU stack must start on machines without a GPU"


def test_without_a_profile_flag_env_example_selects_the_cpu_stack() -> None:
    assert env_example()["COMPOSE_PROFILES"] == "cpu"
    # The always-on services are the shared ones; a model service always comes from a profile, so
    # that two different models never sit behind one gateway.
    assert set(active_services(set())) == {"gateway", "postgres", "redis"}


def test_compose_services_use_the_contract_env_ports_and_healthchecks() -> None:
    services = compose()["services"]
    models, gws = model_services(services), gateways(services)
    for name, svc in models.items():
        assert set(svc["environment"]) <= model_service_env_names(), name
        assert svc["environment"]["MODEL_SERVICE_TOKEN"].endswith("0123456789abcdef")
        assert svc["expose"] == [str(MODEL_PORT)]
        assert f"http://127.0.0.1:{MODEL_PORT}/ready" in " ".join(svc["healthcheck"]["test"])
        assert any(v.endswith(":/models:ro") for v in svc["volumes"]), f"{name}: no read-only model volume"
    assert models["model-service-gpu"]["environment"]["MODEL_PATH"] == env_example()["MODEL_PATH"]
    for name, svc in gws.items():
        assert set(svc["environment"]) <= gateway_env_names(), name
        assert svc["environment"]["GATEWAY_REDIS_URL"] == "redis://redis:6379"
        assert svc["environment"]["GATEWAY_DB_URL"].startswith("jdbc:postgresql://postgres:5432/")
        assert svc["expose"] == [str(GATEWAY_PORT)]
        assert "/actuator/health" in svc["healthcheck"]["test"]
        for dep in ("postgres", "redis"):
            assert svc["depends_on"][dep] == {"condition": "service_healthy"}
    assert services["gateway"]["ports"] == [f"127.0.0.1:{GATEWAY_PORT}:{GATEWAY_PORT}"]
    assert (
        services["postgres"]["environment"]["POSTGRES_PASSWORD"]
        == (services["gateway"]["environment"]["GATEWAY_DB_PASSWORD"])
    )
    for name in ("postgres", "redis", "nginx"):
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
    assert set(compose()["volumes"]) == {"pgdata", "hf-cache"}


def test_compose_nginx_fills_every_template_variable() -> None:
    nginx = compose()["services"]["nginx"]
    template_vars = set(re.findall(r"\$\{([A-Z0-9_]+)\}", strip_comments(NGINX_TEMPLATE.read_text())))
    assert template_vars <= nginx["environment"].keys()
    gws = gateways(compose()["services"])
    upstreams = {nginx["environment"][f"GATEWAY_UPSTREAM_{i}"] for i in (1, 2)}
    assert upstreams == {f"{name}:{GATEWAY_PORT}" for name in gws}
    assert nginx["environment"]["NGINX_LISTEN"] == str(GATEWAY_PORT)
    assert any(v.endswith(":/etc/nginx/templates/nginx.conf.template:ro") for v in nginx["volumes"])


# ---- Dockerfiles ----------------------------------------------------------------------------------


def dockerfile(path: Path) -> DockerfileParser:
    return DockerfileParser(fileobj=path.open("rb"))


def final_stage(parser: DockerfileParser) -> list[dict[str, Any]]:
    instructions = parser.structure
    last_from = max(i for i, ins in enumerate(instructions) if ins["instruction"] == "FROM")
    return instructions[last_from:]


def only(stage: list[dict[str, Any]], instruction: str) -> str:
    values = [ins["value"] for ins in stage if ins["instruction"] == instruction]
    assert len(values) == 1, f"expected one {instruction} in the final stage, found {values}"
    return values[0]


def dockerignored(path: str) -> bool:
    patterns = [p for p in (ROOT / ".dockerignore").read_text().splitlines() if p and not p.startswith("#")]
    parts = Path(path).parts
    for pattern in patterns:
        bare = pattern.removeprefix("**/")
        if pattern.startswith("**/") and bare in parts:
            return True
        if not pattern.startswith("**/") and (path == pattern or path.startswith(pattern.rstrip("/") + "/")):
            return True
    return False


@pytest.mark.parametrize(
    ("path", "port", "health_path"),
    [(MODEL_DOCKERFILE, MODEL_PORT, "/ready"), (GATEWAY_DOCKERFILE, GATEWAY_PORT, "/actuator/health")],
    ids=["model-service", "gateway"],
)
def test_dockerfile_is_multi_stage_non_root_and_checks_health(
    path: Path, port: int, health_path: str
) -> None:
    parser = dockerfile(path)
    froms = [ins["value"] for ins in parser.structure if ins["instruction"] == "FROM"]
    assert len(froms) >= 2, "build tools must stay out of the runtime image"
    stages = {f.split()[-1] for f in froms if " AS " in f.upper()}
    for base in set(parser.parent_images) - stages:
        assert re.search(r":\d+(\.\d+)+", base), f"unpinned base image {base}"
    stage = final_stage(parser)
    user = only(stage, "USER").split(":")[0]
    assert user not in ("root", "0")
    assert only(stage, "EXPOSE") == str(port)
    healthcheck = only(stage, "HEALTHCHECK")
    assert health_path in healthcheck
    if "/actuator/health" not in healthcheck:
        assert "MODEL_PORT" in healthcheck and "'8000'" in healthcheck
    # Every file the build copies from the context exists and is not excluded by .dockerignore.
    for ins in parser.structure:
        if ins["instruction"] in ("COPY", "ADD") and "--from=" not in ins["value"]:
            *sources, _ = ins["value"].split()
            for source in sources:
                assert (ROOT / source).exists(), f"{path.name}: COPY {source}: no such file"
                assert not dockerignored(source.rstrip("/")), (
                    f"{path.name}: COPY {source} is in .dockerignore"
                )


@pytest.mark.parametrize(
    ("path", "official"),
    [
        (MODEL_DOCKERFILE, {"PYTHON_IMAGE": "python:3.11"}),
        (
            GATEWAY_DOCKERFILE,
            {"NODE_IMAGE": "node:20", "MAVEN_IMAGE": "maven:3.9", "JRE_IMAGE": "eclipse-temurin:21"},
        ),
    ],
    ids=["model-service", "gateway"],
)
def test_dockerfile_base_images_are_build_args_that_default_to_the_official_images(
    path: Path, official: dict[str, str]
) -> None:
    # A machine that reaches no registry passes local bases (scripts/build-base-images.sh); a user's
    # `docker compose build` gets the official ones.
    parser = dockerfile(path)
    froms = [ins["value"].split()[0] for ins in parser.structure if ins["instruction"] == "FROM"]
    stages = {ins["value"].split()[-1] for ins in parser.structure if ins["instruction"] == "FROM"}
    assert {f for f in froms if f not in stages} == {"${" + arg + "}" for arg in official}
    defaults = dict(
        ins["value"].split("=", 1)
        for ins in parser.structure[
            : min(i for i, ins in enumerate(parser.structure) if ins["instruction"] == "FROM")
        ]
        if ins["instruction"] == "ARG"
    )
    for arg, prefix in official.items():
        assert defaults[arg].startswith(prefix + "."), f"{arg}={defaults[arg]}"
        assert re.search(r":\d+(\.\d+)+", defaults[arg]), f"unpinned default {defaults[arg]}"


def test_compose_builds_the_cpu_variant_for_cpu_and_scale_and_the_default_for_gpu() -> None:
    services = compose()["services"]
    models = model_services(services)
    for name in ("model-service", "model-service-2"):
        assert models[name]["build"]["args"]["TORCH_VARIANT"] == "cpu", name
        assert models[name]["image"].endswith("-cpu"), "two variants must not share a tag"
    gpu = models["model-service-gpu"]
    assert "args" not in gpu["build"] and not gpu["image"].endswith("-cpu")
    variants = re.search(r"TORCH_VARIANT=(\w+)", MODEL_DOCKERFILE.read_text())
    assert variants is not None and variants.group(1) == "cuda", "the Dockerfile's default is the GPU one"
    # The third-party images can be replaced (local stand-ins) but default to the official ones.
    raw = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    for name, official in (("postgres", "postgres:17"), ("redis", "redis:7"), ("nginx", "nginx:1")):
        assert re.fullmatch(
            r"\$\{[A-Z_]+_IMAGE:-" + re.escape(official) + r"[.\d]+-bookworm\}", raw[name]["image"]
        )


def test_the_images_install_the_runtime_lock_a_subset_of_the_lock_without_dev_tools() -> None:
    def pins(path: Path) -> dict[str, str]:
        lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
        return {re.sub(r"[-_.]+", "-", n).lower(): v for n, v in (ln.split("==", 1) for ln in lines)}

    service = ROOT / "python-model-service"
    full, runtime = pins(service / "requirements.lock"), pins(service / "requirements-runtime.lock")
    # setuptools: torch needs it, and pip freeze leaves it out of requirements.lock.
    assert {n: v for n, v in runtime.items() if n != "setuptools"}.items() <= full.items()
    for tool in ("pytest", "ruff", "mypy", "openai", "kubernetes-validate", "dockerfile-parse", "matplotlib"):
        assert tool not in runtime, f"{tool} is not needed at run time"
    declared = tomllib.loads((service / "pyproject.toml").read_text())["project"]["dependencies"]
    for needed in [re.split(r"[\[=<>!~ ]", d, maxsplit=1)[0].lower() for d in declared] + ["jinja2"]:
        assert needed in runtime, f"{needed} is a runtime dependency (pyproject.toml): make runtime-lock"
    assert "requirements-runtime.lock" in MODEL_DOCKERFILE.read_text()


def test_model_service_image_serves_the_demo_model_the_gateway_expects() -> None:
    parser = dockerfile(MODEL_DOCKERFILE)
    env = parser.envs  # the final stage's environment
    assert env["MODEL_HOST"] == "0.0.0.0" and env["MODEL_PORT"] == str(MODEL_PORT)
    assert "MODEL_PATH" not in env, "an image default would hide the demo model"
    # The demo model is trained at build time into DEMO_MODEL_DIR; its folder name is the served id.
    assert any("python -m app.demo_model" in ins["value"] for ins in parser.structure)
    assert Path(env["DEMO_MODEL_DIR"]).name == "demo-model"
    profiles = yaml.safe_load(GATEWAY_CONFIG.read_text())["gateway"]["models"]["profiles"]
    assert "demo-model" in {p["upstream-model"] for p in profiles}
    stage = final_stage(parser)
    assert any(ins["instruction"] == "VOLUME" and "/models" in ins["value"] for ins in stage)
    assert parser.baseimage.startswith("python:3.11"), "requirements.lock is resolved for Python 3.11"


def test_gateway_image_runs_on_jre_21_or_newer_and_compose_probes_it_the_same_way() -> None:
    parser = dockerfile(GATEWAY_DOCKERFILE)
    runtime = parser.baseimage
    major = int(re.search(r":(\d+)", runtime).group(1))  # type: ignore[union-attr]
    assert "jre" in runtime and major >= 21, f"{runtime}: virtual threads need Java 21+"
    assert parser.envs["GATEWAY_HOST"] == "0.0.0.0" and parser.envs["GATEWAY_PORT"] == str(GATEWAY_PORT)
    image_check = json.loads(only(final_stage(parser), "HEALTHCHECK").split("CMD", 1)[1])
    compose_check = compose()["services"]["gateway"]["healthcheck"]["test"]
    assert compose_check == ["CMD", *image_check]
    # The web assets go into the jar the way `make setup-web` + Maven put them there.
    copies = [ins["value"] for ins in parser.structure if ins["instruction"] == "COPY"]
    assert "--from=web /src/web web/" in copies


# ---- nginx ----------------------------------------------------------------------------------------


def strip_comments(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def directives(conf: str, block: str) -> dict[str, list[str]]:
    """The directives directly inside the first `block {` (e.g. 'location /'), name -> arguments."""
    text = strip_comments(conf)
    start = text.index(block + " {") + len(block) + 2
    depth, body = 1, []
    for ch in text[start:]:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth == 0:
            break
        body.append(ch if depth == 1 else "")
    found: dict[str, list[str]] = {}
    for statement in "".join(body).split(";"):
        words = statement.split(None, 1)
        if words:
            found.setdefault(words[0], []).append(words[1].strip() if len(words) > 1 else "")
    return found


@pytest.fixture
def rendered_conf(tmp_path: Path) -> str:
    return render_nginx_template(
        tmp_path / "nginx", "127.0.0.1:18080", [("127.0.0.1", 1), ("127.0.0.1", 2)]
    ).read_text()


def test_nginx_accepts_the_rendered_config(tmp_path: Path) -> None:
    conf = render_nginx_template(
        tmp_path / "nginx", "127.0.0.1:18080", [("127.0.0.1", 18081), ("127.0.0.1", 18082)]
    )
    result = subprocess.run(nginx_command(conf, "-t"), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr
    conf.write_text(conf.read_text().replace("proxy_buffering off;", "proxy_buffering of;"))
    assert subprocess.run(nginx_command(conf, "-t"), capture_output=True, timeout=30).returncode != 0


def test_nginx_config_has_the_sse_safe_settings(rendered_conf: str) -> None:
    location = directives(rendered_conf, "location /")
    http = directives(rendered_conf, "http")
    upstream = directives(rendered_conf, "upstream gateways")
    assert location["proxy_pass"] == ["http://gateways"]
    assert location["proxy_buffering"] == ["off"] and location["proxy_cache"] == ["off"]
    assert location["proxy_http_version"] == ["1.1"]
    headers = dict(h.split(None, 1) for h in location["proxy_set_header"])
    assert headers["Connection"] == '""', "keep-alive to the gateways needs an empty Connection header"
    assert headers["Last-Event-ID"] == "$http_last_event_id"
    assert headers["X-Forwarded-For"] == "$proxy_add_x_forwarded_for"
    assert headers["X-Forwarded-Proto"] == "$scheme"
    read_timeout = location["proxy_read_timeout"][0]
    assert (
        read_timeout.endswith("h")
        or int(read_timeout.rstrip("sm")) * (60 if "m" in read_timeout else 1) >= 600
    )
    assert http["gzip"] == ["off"] and "gzip" not in location
    assert int(upstream["keepalive"][0]) > 0
    assert len(upstream["server"]) == 2


class _FakeGateway(BaseHTTPRequestHandler):
    """Streams one event, then waits until the test has received it before sending the next."""

    protocol_version = "HTTP/1.1"
    seen: list[dict[str, str]]
    released: threading.Event

    def do_GET(self) -> None:
        self.seen.append({"version": self.request_version, **{k.lower(): v for k, v in self.headers.items()}})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._chunk(b"id: 8\nevent: message\ndata: first\n\n")
        second = b"released" if self.released.wait(10) else b"late"
        self._chunk(b"id: 9\nevent: message\ndata: " + second + b"\n\n")
        self._chunk(b"")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        return


def read_event(response: http.client.HTTPResponse) -> str:
    lines = []
    while (line := response.readline().decode()) not in ("\n", ""):
        lines.append(line.rstrip("\n"))
    return "\n".join(lines)


def test_nginx_relays_each_event_at_once_and_skips_a_dead_gateway(tmp_path: Path) -> None:
    handler = type("Gateway", (_FakeGateway,), {"seen": [], "released": threading.Event()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]  # nothing listens there once the socket closes
    try:
        gateways_ = [("127.0.0.1", dead_port), ("127.0.0.1", server.server_address[1])]
        with Stack(tmp_path) as stack:
            port = stack.add_load_balancer(gateways_).port
            for attempt in range(3):
                handler.released.clear()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
                conn.request(
                    "GET", "/api/streams/m1", headers={"Last-Event-ID": "7", "Accept-Encoding": "gzip"}
                )
                response = conn.getresponse()
                assert response.status == 200, f"attempt {attempt}: the dead gateway was not skipped"
                assert response.getheader("Content-Encoding") is None
                # Buffered, this event would arrive only after the fake gateway gave up waiting.
                assert read_event(response) == "id: 8\nevent: message\ndata: first"
                handler.released.set()
                assert read_event(response) == "id: 9\nevent: message\ndata: released"
                conn.close()
    finally:
        server.shutdown()
        server.server_close()
    first = handler.seen[0]
    assert first["last-event-id"] == "7"
    assert first["x-forwarded-for"] == "127.0.0.1"
    assert first["version"] == "HTTP/1.1" and first.get("connection", "") != "close"
