/**
 * Resumable product streams: where an answer's events live (this process, or Redis through {@code
 * stream.redis}) so that a reader resumes on any replica with {@code Last-Event-ID}.
 */
package io.selfhosted.gateway.stream;
