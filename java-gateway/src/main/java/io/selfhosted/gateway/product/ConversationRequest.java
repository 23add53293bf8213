package io.selfhosted.gateway.product;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import io.selfhosted.gateway.system.StrictJson;
import io.swagger.v3.oas.annotations.media.Schema;
import jakarta.validation.constraints.Size;
import org.springframework.lang.Nullable;

/** A new conversation; the body is optional. */
@StrictJson
@JsonIgnoreProperties(ignoreUnknown = true)
@Schema(name = "ConversationRequest")
public record ConversationRequest(
    @Size(max = 200, message = "must be at most {max} characters") @Nullable String title) {}
