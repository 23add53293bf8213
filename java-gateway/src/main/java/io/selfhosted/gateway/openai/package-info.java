/**
 * The OpenAI-compatible API for business apps ({@code /v1}): request binding, and the streamed and
 * whole replies as thin deliveries of the stream pipeline.
 */
package io.selfhosted.gateway.openai;
