/**
 * The product API of the chat page and server callers: conversations and their stored messages,
 * turns started on the pipeline, resumable answer streams, and the owner lease on the answers this
 * gateway generates.
 */
package io.selfhosted.gateway.product;
