package io.selfhosted.gateway.stream;

import java.util.UUID;

/**
 * This gateway's name in leases: GATEWAY_INSTANCE_ID (unique per replica), or a random one per
 * start.
 *
 * @param fixed whether the name was configured, i.e. survives a restart
 */
public record GatewayInstance(String id, boolean fixed) {

  static GatewayInstance of(StreamProperties properties) {
    String configured = properties.instanceId();
    if (configured != null && !configured.isBlank()) {
      return new GatewayInstance(configured.trim(), true);
    }
    return new GatewayInstance("gw-" + UUID.randomUUID().toString().substring(0, 13), false);
  }
}
