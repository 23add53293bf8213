/**
 * The model profiles clients see: names, defaults and limits, and the upstream model each maps to.
 */
package io.selfhosted.gateway.models;
