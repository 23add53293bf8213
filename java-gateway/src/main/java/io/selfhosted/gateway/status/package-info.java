/** The live status the ops console shows: streams, rates, replicas, breakers, history. */
package io.selfhosted.gateway.status;
