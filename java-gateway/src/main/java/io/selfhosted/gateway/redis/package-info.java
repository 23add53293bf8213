/**
 * The Redis wiring: one setting (GATEWAY_REDIS_URL) and one client, shared by every feature that
 * keeps state across gateway replicas (rate limits, streams, switch notices, browser sessions).
 */
package io.selfhosted.gateway.redis;
