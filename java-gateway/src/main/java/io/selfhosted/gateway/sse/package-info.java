/**
 * Server-Sent Events to clients: one connection per response on the servlet async context,
 * heartbeats that also tell when a client left, and the socket probe of whole replies.
 */
package io.selfhosted.gateway.sse;
