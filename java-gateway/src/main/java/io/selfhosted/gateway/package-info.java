/**
 * The gateway between business apps and browsers and the model services. Each sub-package is one
 * feature; {@code GatewayStages} declares the order in which the feature stages admit every
 * generation.
 */
package io.selfhosted.gateway;
