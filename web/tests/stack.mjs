// Starts the real tiers (model service + gateway) on free loopback ports for the browser tests.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const READY_TIMEOUT_MS = 240_000;

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

/** Starts both tiers; `stop()` on the result ends them. */
export async function startStack() {
  const work = mkdtempSync(join(tmpdir(), "web-e2e-"));
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
  };
  delete env.MODEL_PATH;
  const modelLog = join(work, "model-service.log");
  const gatewayLog = join(work, "gateway.log");
  const model = spawn(join(ROOT, "python-model-service/.venv/bin/python"), ["-m", "app"], {
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
  const url = `http://127.0.0.1:${gatewayPort}`;
  const stack = {
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
    stop: async () => {
      await Promise.all([stop(gateway), stop(model)]);
      rmSync(jar, { force: true }); // the logs and the database stay for a look after a failure
    },
  };
  try {
    await waitReady("model service", model, `http://127.0.0.1:${modelPort}/ready`, modelLog);
    await waitReady("gateway", gateway, `${stack.url}/actuator/health`, gatewayLog);
  } catch (e) {
    await stack.stop();
    throw e;
  }
  return stack;
}
