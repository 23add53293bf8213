/**
 * The one lifecycle of every generation, whatever API it serves: an {@code Exchange} admitted by
 * each {@code Stage} in order, the upstream stream, per-chunk hooks, and a finish every admitted
 * stage sees once; entry points adapt it through a {@code Delivery}. The fallback chain and the
 * degradation log are here because the pipeline decides them.
 */
package io.selfhosted.gateway.pipeline;
