/**
 * Per-key rate limits (Bucket4j buckets, in memory or shared through Redis) and the per-model
 * in-flight cap.
 */
package io.selfhosted.gateway.ratelimit;
