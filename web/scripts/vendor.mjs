// Copies the browser builds of the page's runtime dependencies next to the page, so the gateway
// serves them from its own origin (no CDN: deployments are often offline).
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const web = join(dirname(fileURLToPath(import.meta.url)), "..");
const files = {
  "node_modules/marked/lib/marked.esm.js": "vendor/marked.esm.js",
  "node_modules/dompurify/dist/purify.es.mjs": "vendor/purify.es.mjs",
};
mkdirSync(join(web, "vendor"), { recursive: true });
for (const [from, to] of Object.entries(files)) {
  copyFileSync(join(web, from), join(web, to));
}
