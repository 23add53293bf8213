/** Token accounting: one usage record per generation, quotas, and the usage API. */
package io.selfhosted.gateway.usage;
