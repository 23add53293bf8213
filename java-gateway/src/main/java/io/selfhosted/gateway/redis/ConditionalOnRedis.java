package io.selfhosted.gateway.redis;

import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import java.util.Map;
import org.springframework.context.annotation.Condition;
import org.springframework.context.annotation.ConditionContext;
import org.springframework.context.annotation.Conditional;
import org.springframework.core.type.AnnotatedTypeMetadata;
import org.springframework.util.StringUtils;

/**
 * Declares a bean only when GATEWAY_REDIS_URL is set ({@code true}, the default) or only when it is
 * not ({@code false}). Boot's {@code @ConditionalOnProperty} cannot say this: it counts the blank
 * value of an unset {@code ${GATEWAY_REDIS_URL:}} as present.
 */
@Target({ElementType.TYPE, ElementType.METHOD})
@Retention(RetentionPolicy.RUNTIME)
@Documented
@Conditional(ConditionalOnRedis.UrlCondition.class)
public @interface ConditionalOnRedis {

  /** {@code true}: only with a Redis URL; {@code false}: only without one. */
  boolean value() default true;

  /** Compares the annotation's wish with whether {@code gateway.redis.url} has text. */
  final class UrlCondition implements Condition {

    @Override
    public boolean matches(ConditionContext context, AnnotatedTypeMetadata metadata) {
      Map<String, Object> attributes =
          metadata.getAnnotationAttributes(ConditionalOnRedis.class.getName());
      boolean withRedis = attributes == null || Boolean.TRUE.equals(attributes.get("value"));
      boolean configured =
          StringUtils.hasText(context.getEnvironment().getProperty(RedisProperties.URL));
      return withRedis == configured;
    }
  }
}
