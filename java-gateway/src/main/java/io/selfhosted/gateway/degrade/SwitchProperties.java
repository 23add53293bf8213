package io.selfhosted.gateway.degrade;

import java.time.Duration;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;

/**
 * The operators' switches.
 *
 * @param refreshInterval how often every replica reads the switches from the database: a change
 *     made on one replica reaches the others within this interval
 * @param maintenanceMessage what clients get in maintenance when the switch sets no message
 * @param disabledMessage what clients get for a disabled model when the switch sets no message
 */
@ConfigurationProperties("gateway.switches")
public record SwitchProperties(
    @DefaultValue("1s") Duration refreshInterval,
    @DefaultValue(
            "The assistant is down for maintenance and will be back shortly. Thank you for your"
                + " patience.")
        String maintenanceMessage,
    @DefaultValue(
            "This model is switched off for now. Please try another model or come back later.")
        String disabledMessage) {}
