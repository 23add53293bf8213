/**
 * Degradation the operators control: switches (maintenance, read-only, streaming off, routes, caps,
 * disabled models) in the database and announced to replicas, and load shedding when every replica
 * is too busy. The circuit breakers live with the replicas in {@code upstream}, the fallback chain
 * with the pipeline.
 */
package io.selfhosted.gateway.degrade;
