/**
 * The model services behind the gateway: the wire protocol (OpenAI chat completions over SSE),
 * replicas and their discovery, health, load, balancing, and circuit breakers.
 */
package io.selfhosted.gateway.upstream;
