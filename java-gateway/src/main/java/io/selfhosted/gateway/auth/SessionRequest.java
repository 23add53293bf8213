package io.selfhosted.gateway.auth;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import io.selfhosted.gateway.system.StrictJson;
import io.swagger.v3.oas.annotations.media.Schema;
import jakarta.validation.constraints.NotNull;

/**
 * The body of {@code POST /api/session}. Other fields are ignored, as they always were: a misspelt
 * apiKey is refused all the same, as missing.
 */
@StrictJson
@JsonIgnoreProperties(ignoreUnknown = true)
@Schema(name = "SessionRequest", description = "An API key to trade for a browser session")
record SessionRequest(
    @NotNull(message = "must be a string")
        @Schema(
            requiredMode = Schema.RequiredMode.REQUIRED,
            format = "password",
            description = "the API key; the browser keeps only the session cookie")
        String apiKey) {}
