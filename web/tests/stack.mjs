// Starts the real tiers (model service + gateway) on free loopback ports for the browser tests, or
// with `{ scale: true }` the scale-out setup through the Python harness (python -m harness.scale).
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const PYTHON = join(ROOT, "python-model-service/.venv/bin/python");
const READY_TIMEOUT_MS = 240_000;
// The scale-out setup starts its gateways one after the other, each within the harness's own limit.
const SCALE_READY_TIMEOUT_MS = 600_000;

/** @returns {Promise<number>} */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = /** @type {import("node:net").AddressInfo} */ (srv.address());
      srv.close(() => resolve(port));
    });
  });
}

/** @param {string} name @param {import("node:child_process").ChildProcess} proc @param {string} url @param {string} log */
async function waitReady(name, proc, url, log) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`${name} exited (${proc.exitCode}):\n${readFileSync(log, "utf8").slice(-4000)}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${name} not ready after ${READY_TIMEOUT_MS} ms:\n${readFileSync(log, "utf8").slice(-4000)}`);
}

/** @param {import("node:child_process").ChildProcess} proc */
function stop(proc) {
  if (proc.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
    proc.once("exit", () => {
      clearTimeout(timer);
      resolve(undefined);
    });
    proc.kill("SIGTERM");
  });
}

/**
 * What a test sees of a running stack: the URL the browser opens, the admin key, a JSON call and
 * `stop()`.
 * @param {string} url @param {string} adminKey @param {() => Promise<void>} stopAll
 */
function stackAt(url, adminKey, stopAll) {
  return {
    url,
    adminKey,
    /**
     * A JSON call to the gateway from the test, with the admin key unless told; fails the test on a
     * non-2xx answer. Returns the parsed JSON, the text of another answer, or null for none.
     * @param {string} path @param {{ key?: string, method?: string, body?: unknown }} [options]
     */
    async call(path, { key = adminKey, method = "GET", body = undefined } = {}) {
      const res = await fetch(url + path, {
        method,
        headers: { Authorization: `Bearer ${key}`, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
      if (!text) return null;
      return (res.headers.get("content-type") ?? "").includes("json") ? JSON.parse(text) : text;
    },
    stop: stopAll,
  };
}

/**
 * Starts both tiers, or with `scale` nginx in front of two gateways that share PostgreSQL and Redis,
 * in front of two model services (`url` is then nginx's, and `gateways` each gateway's own URL);
 * `stop()` on the result ends them. `gatewayProps` are Spring properties for the one gateway
 * (`{ "gateway.limits.model-in-flight.demo-model": 1 }`), given as SPRING_APPLICATION_JSON.
 * @param {{ scale?: boolean, gatewayProps?: Record<string, string | number> }} [options]
 */
export async function startStack({ scale = false, gatewayProps = undefined } = {}) {
  const work = mkdtempSync(join(tmpdir(), "web-e2e-"));
  if (scale) return startReplicas(work);
  const modelPort = await freePort();
  const gatewayPort = await freePort();
  const adminKey = `sk-admin-${randomBytes(18).toString("base64url")}`;
  const env = {
    ...process.env,
    MODEL_HOST: "127.0.0.1",
    MODEL_PORT: String(modelPort),
    MODEL_SERVICE_TOKEN: randomBytes(32).toString("base64url"),
    GATEWAY_PORT: String(gatewayPort),
    GATEWAY_UPSTREAMS: `http://127.0.0.1:${modelPort}`,
    ADMIN_API_KEY: adminKey,
    GATEWAY_DB_URL: `jdbc:h2:file:${join(work, "gateway-db")}`,
    ...(gatewayProps ? { SPRING_APPLICATION_JSON: JSON.stringify(gatewayProps) } : {}),
  };
  delete env.MODEL_PATH;
  const modelLog = join(work, "model-service.log");
  const gatewayLog = join(work, "gateway.log");
  const model = spawn(PYTHON, ["-m", "app"], {
    cwd: join(ROOT, "python-model-service"),
    env,
    stdio: ["ignore", openSync(modelLog, "w"), openSync(modelLog, "a")],
  });
  const java = process.env.JAVA_RUN_HOME ? join(process.env.JAVA_RUN_HOME, "bin/java") : "java";
  // A copy of the jar: a `make setup-java` during the run must not pull classes from under it.
  const jar = join(work, "gateway.jar");
  copyFileSync(join(ROOT, "java-gateway/target/gateway.jar"), jar);
  const gateway = spawn(java, ["-jar", jar], {
    cwd: work,
    env,
    stdio: ["ignore", openSync(gatewayLog, "w"), openSync(gatewayLog, "a")],
  });
  const stack = stackAt(`http://127.0.0.1:${gatewayPort}`, adminKey, async () => {
    await Promise.all([stop(gateway), stop(model)]);
    rmSync(jar, { force: true }); // the logs and the database stay for a look after a failure
  });
  try {
    await waitReady("model service", model, `http://127.0.0.1:${modelPort}/ready`, modelLog);
    await waitReady("gateway", gateway, `${stack.url}/actuator/health`, gatewayLog);
  } catch (e) {
    await stack.stop();
    throw e;
  }
  return stack;
}

/**
 * The scale-out setup, started and stopped by the Python harness (the one launcher of PostgreSQL,
 * Redis and the deployment's nginx config): it prints the addresses once all is ready and stops every
 * process when its standard input closes. The logs stay in `work`.
 * @param {string} work
 */
async function startReplicas(work) {
  const log = join(work, "harness.log");
  const harness = spawn(PYTHON, ["-m", "harness.scale", "--logs", work], {
    cwd: ROOT,
    stdio: ["pipe", "pipe", openSync(log, "w")],
  });
  const exited = new Promise((resolve) => harness.once("exit", resolve));
  // Either ends the harness's block, which stops every process (each with its own grace period):
  // no SIGKILL here, which would leave them running.
  const stopAll = async () => {
    harness.stdin?.end();
    if (harness.exitCode === null && harness.signalCode === null) harness.kill("SIGTERM");
    await exited;
  };
  /** @type {{ url: string, gateways: string[], adminKey: string }} */
  let ready;
  try {
    ready = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the scale-out setup is not ready after ${SCALE_READY_TIMEOUT_MS} ms`)), SCALE_READY_TIMEOUT_MS);
      let out = "";
      harness.stdout?.on("data", (chunk) => {
        out += chunk;
        if (!out.includes("\n")) return;
        clearTimeout(timer);
        try {
          resolve(JSON.parse(out.slice(0, out.indexOf("\n"))));
        } catch (e) {
          reject(e);
        }
      });
      harness.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`the harness exited (${code}) before the scale-out setup was ready`));
      });
    });
  } catch (e) {
    await stopAll();
    throw new Error(`${e instanceof Error ? e.message : e}:\n${readFileSync(log, "utf8").slice(-4000)}\n(logs in ${work})`);
  }
  return { ...stackAt(ready.url, ready.adminKey, stopAll), gateways: ready.gateways, logs: work };
}
