package io.selfhosted.gateway;

import io.selfhosted.gateway.auth.ModelAccess;
import io.selfhosted.gateway.degrade.LoadShedding;
import io.selfhosted.gateway.degrade.SwitchStage;
import io.selfhosted.gateway.pipeline.Stage;
import io.selfhosted.gateway.pipeline.Stages;
import io.selfhosted.gateway.ratelimit.ModelCapacity;
import io.selfhosted.gateway.ratelimit.RateLimits;
import io.selfhosted.gateway.safety.ContentSafety;
import io.selfhosted.gateway.usage.Quotas;
import io.selfhosted.gateway.usage.UsageRecorder;
import java.util.List;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * The order of the stream pipeline's stages, in one place. Every generation, whatever API it came
 * through, is admitted by these in this order, and each admitted stage sees its finish.
 */
@Configuration(proxyBeanMethods = false)
class GatewayStages {

  @Bean
  Stages stages(
      ModelAccess modelAccess,
      SwitchStage switches,
      ContentSafety content,
      RateLimits limits,
      Quotas quotas,
      LoadShedding shedding,
      ModelCapacity capacity,
      UsageRecorder usage) {
    List<Stage> order =
        List.of(
            // 403 for a model the key may not use, before anything else looks at the request.
            modelAccess,
            // Operators' switches: a refusal or a maintenance reply spends no limit; a route or a
            // cap changes the call that the stages after it count.
            switches,
            // The prompt check: a refused prompt costs no rate limit or quota.
            content,
            // Per-key requests, tokens per minute and concurrent streams (429).
            limits,
            // Per-key daily and monthly token budgets (429 insufficient_quota).
            quotas,
            // Every replica too busy: 503 at once rather than a queue that times out.
            shedding,
            // The model's in-flight cap: last of the admissions, as it may wait for a slot while
            // holding what the stages before it granted.
            capacity,
            // Accounting: sees every exchange, the gateway's own replies included.
            usage);
    return new Stages(order);
  }
}
