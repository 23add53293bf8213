/**
 * Product streams in Redis Streams, shared by every gateway replica: key names, the Lua scripts,
 * the owner's writer, the readers attached here, and the store that ties them together.
 */
package io.selfhosted.gateway.stream.redis;
