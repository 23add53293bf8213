/**
 * Who is calling: API keys (hashed at rest), browser sessions opened with a key, roles, the model
 * access stage, and the security rules of every endpoint.
 */
package io.selfhosted.gateway.auth;
