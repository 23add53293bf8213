package io.selfhosted.gateway.system;

import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * Marks a request body type that {@link StrictJsonConverter} binds: a value of the wrong JSON type
 * is refused rather than coerced (no {@code "5"} for an integer, no {@code 5} for a string, no
 * {@code 1.5} for an integer), and unknown fields are refused unless the type says
 * {@code @JsonIgnoreProperties(ignoreUnknown = true)}. An {@link java.time.Instant} is ISO-8601
 * text, never a number. An {@link java.util.Optional} component tells a field left out ({@code
 * null}) from one sent as {@code null} ({@code Optional.empty()}), for bodies where the two mean
 * different things (a PATCH). Bind it with {@code @Valid @RequestBody}; {@link ErrorHandling} names
 * the offending field by its wire path.
 */
@Documented
@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.TYPE)
public @interface StrictJson {}
