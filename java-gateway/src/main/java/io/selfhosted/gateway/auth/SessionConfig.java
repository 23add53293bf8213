package io.selfhosted.gateway.auth;

import io.selfhosted.gateway.redis.ConditionalOnRedis;
import io.selfhosted.gateway.system.DaemonThreads;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.dao.DataAccessException;
import org.springframework.data.redis.connection.RedisConnection;
import org.springframework.data.redis.connection.lettuce.LettuceConnectionFactory;
import org.springframework.data.redis.core.RedisTemplate;
import org.springframework.data.redis.listener.ChannelTopic;
import org.springframework.data.redis.listener.RedisMessageListenerContainer;
import org.springframework.data.redis.serializer.RedisSerializer;
import org.springframework.session.SessionIdGenerator;
import org.springframework.session.data.redis.RedisIndexedSessionRepository;
import org.springframework.session.data.redis.config.ConfigureNotifyKeyspaceEventsAction;

/**
 * Where browser sessions live. With GATEWAY_REDIS_URL, in Redis through Spring Session's indexed
 * repository: a session opened on one replica works on all of them and outlives a restart, and the
 * index by key id lets a revoked key's sessions be deleted, which ends them everywhere at once
 * because every request reads its session from Redis. Without it, in this process.
 *
 * <p>Only Spring Session's repositories are used, not its servlet filter and HttpSession: {@link
 * SessionStore} reads a session only for requests that carry the cookie and never writes it back,
 * so a request costs one Redis read, the expiry stays absolute, streamed responses are not wrapped,
 * and the cookie keeps its contract (see SessionController). Boot's session auto-configuration is
 * off (GatewayApplication), so no HttpSession is ever created.
 */
@Configuration(proxyBeanMethods = false)
class SessionConfig {

  /** Key prefix in Redis, beside the gateway's other keys. */
  static final String NAMESPACE = "gateway:session";

  private static final Logger log = LoggerFactory.getLogger(SessionConfig.class);

  /** Session ids are 256 random bits, base64url: as unguessable as the API keys they stand for. */
  @Bean
  SessionIdGenerator sessionIdGenerator() {
    SecureRandom random = new SecureRandom();
    return () -> {
      byte[] bytes = new byte[32];
      random.nextBytes(bytes);
      return Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
    };
  }

  @Bean
  @ConditionalOnRedis(false)
  LocalSessionRepository localSessionRepository(AuthProperties auth, SessionIdGenerator ids) {
    log.info("browser sessions are kept in this process (set GATEWAY_REDIS_URL to share them)");
    return new LocalSessionRepository(auth.sessionTtl(), ids);
  }

  @Bean
  @ConditionalOnRedis
  RedisIndexedSessionRepository redisSessionRepository(
      LettuceConnectionFactory redis, AuthProperties auth, SessionIdGenerator ids) {
    log.info("browser sessions are shared through Redis");
    RedisTemplate<String, Object> template = new RedisTemplate<>();
    template.setConnectionFactory(redis);
    template.setKeySerializer(RedisSerializer.string());
    template.setHashKeySerializer(RedisSerializer.string());
    template.afterPropertiesSet();
    RedisIndexedSessionRepository sessions = new RedisIndexedSessionRepository(template);
    sessions.setRedisKeyNamespace(NAMESPACE);
    sessions.setDatabase(redis.getDatabase());
    sessions.setDefaultMaxInactiveInterval(auth.sessionTtl());
    sessions.setSessionIdGenerator(ids);
    return sessions;
  }

  /**
   * Hears Redis expire a session, so that the session leaves its key's index (the repository does
   * that on the event). Deleted sessions leave the index as they are deleted, so the busier channel
   * of every DEL in the database is not subscribed.
   */
  @Bean
  @ConditionalOnRedis
  RedisMessageListenerContainer sessionExpiryListener(
      LettuceConnectionFactory redis, RedisIndexedSessionRepository sessions) {
    enableExpiryEvents(redis);
    // Handling an event reads Redis, so never on Lettuce's event loop; and one thread, not the
    // container's default of a new thread per event (it hears every expiry in the database).
    ExecutorService events =
        Executors.newSingleThreadExecutor(DaemonThreads.named("session-expiry"));
    RedisMessageListenerContainer container =
        new RedisMessageListenerContainer() {
          @Override
          public void destroy() throws Exception {
            super.destroy();
            events.shutdownNow();
          }
        };
    container.setConnectionFactory(redis);
    container.setTaskExecutor(events);
    container.addMessageListener(
        sessions, List.of(new ChannelTopic(sessions.getSessionExpiredChannel())));
    return container;
  }

  /**
   * Turns on Redis's expiry events (notify-keyspace-events), as Spring Session would. A Redis that
   * refuses CONFIG (many managed ones) still serves sessions: only the ids of expired sessions stay
   * in their key's index, a few bytes per sign-in, until the setting is made on the server.
   */
  private static void enableExpiryEvents(LettuceConnectionFactory redis) {
    try (RedisConnection connection = redis.getConnection()) {
      new ConfigureNotifyKeyspaceEventsAction().configure(connection);
    } catch (DataAccessException e) {
      log.warn(
          "could not turn on Redis's expiry events ({}); set notify-keyspace-events to Egx on the"
              + " server so that expired browser sessions leave their key's index",
          e.getMessage());
    }
  }
}
