package io.selfhosted.gateway.safety;

/**
 * A text was flagged. Carries no part of the text itself, so it can be logged and shown freely.
 *
 * @param ruleId the rule that matched ({@code "moderation"} for the external moderation service)
 * @param category the rule's category, such as {@code violence}
 */
public record Verdict(String ruleId, String category) {}
