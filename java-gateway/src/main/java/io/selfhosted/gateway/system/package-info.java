/** Cross-cutting web plumbing: the error envelope, request ids, body limits, CORS, threads. */
package io.selfhosted.gateway.system;
