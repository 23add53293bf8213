// @ts-check
// What several sections need to name things: the keys (usage and audit show key ids) and the
// models (pickers). Loaded on demand, refreshed when a section changes them.
import { get } from "./http.js";
import { t } from "./i18n.js";

/** @typedef {{ id: string, name: string, role: string, prefix: string, models: string[] | null, limits: Record<string, number>,
 *              expiresAt: string | null, createdAt: string, lastUsedAt: string | null, revokedAt: string | null, status: string }} Key */

/** @type {Key[]} */
let keys = [];
/** @type {string[]} */
let models = [];

/** Re-reads every key. @returns {Promise<Key[]>} */
export async function loadKeys() {
  keys = (await get("/admin/keys")).data;
  return keys;
}

/** Re-reads the model names. @returns {Promise<string[]>} */
export async function loadModels() {
  models = (await get("/v1/models")).data.map((/** @type {{ id: string }} */ m) => m.id);
  return models;
}

export const allKeys = () => keys;
export const allModels = () => models;

/** A key's name for people, or a marked id when the key is not known here. @param {string} id */
export function keyName(id) {
  return keys.find((k) => k.id === id)?.name ?? t("keys.unknown", { id });
}
