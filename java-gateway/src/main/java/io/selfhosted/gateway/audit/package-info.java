/** Who changed what and when (keys, switches, rules), with the before and after. */
package io.selfhosted.gateway.audit;
