package io.selfhosted.gateway.degrade;

import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisException;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.pubsub.RedisPubSubAdapter;
import io.lettuce.core.pubsub.StatefulRedisPubSubConnection;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.lang.Nullable;
import org.springframework.stereotype.Component;

/**
 * Tells the other gateway replicas that a switch changed, through Redis pub/sub when
 * GATEWAY_REDIS_URL is set, so that they re-read the switches at once instead of at their next
 * refresh. Only a hint: the database holds the switches, and the periodic refresh still brings
 * every replica up to date when a notice is lost or Redis is down.
 */
@Component
class SwitchNotices implements DisposableBean {

  static final String CHANNEL = "gw:switches";
  private static final Logger log = LoggerFactory.getLogger(SwitchNotices.class);

  @Nullable private final StatefulRedisConnection<String, String> publisher;
  @Nullable private final StatefulRedisPubSubConnection<String, String> subscriber;
  private volatile boolean failing;

  SwitchNotices(ObjectProvider<RedisClient> redis) {
    RedisClient client = redis.getIfAvailable();
    if (client == null) {
      publisher = null;
      subscriber = null;
      return;
    }
    publisher = client.connect();
    subscriber = client.connectPubSub();
  }

  /** Runs {@code onChange} (on Lettuce's event loop: it must only hand the work off) per notice. */
  void listen(Runnable onChange) {
    if (subscriber == null) {
      return;
    }
    subscriber.addListener(
        new RedisPubSubAdapter<>() {
          @Override
          public void message(String channel, String message) {
            onChange.run();
          }
        });
    subscriber.sync().subscribe(CHANNEL);
  }

  /** Tells every replica (this one included) that the switches changed. */
  void announce() {
    if (publisher == null) {
      return;
    }
    try {
      publisher.sync().publish(CHANNEL, "changed");
      failing = false;
    } catch (RedisException e) {
      if (!failing) {
        failing = true;
        log.warn(
            "cannot announce a switch change through Redis ({}); replicas see it at their next"
                + " refresh",
            e.getMessage());
      }
    }
  }

  @Override
  public void destroy() {
    if (publisher != null) { // the client is shared: its owner shuts it down
      subscriber.close();
      publisher.close();
    }
  }
}
