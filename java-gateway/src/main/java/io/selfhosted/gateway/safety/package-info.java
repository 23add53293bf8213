/**
 * Content checks: rules on prompts and on the streamed text, and an optional moderation service.
 */
package io.selfhosted.gateway.safety;
