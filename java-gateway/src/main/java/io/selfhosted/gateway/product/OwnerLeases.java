package io.selfhosted.gateway.product;

import io.lettuce.core.RedisException;
import io.selfhosted.gateway.stream.GatewayInstance;
import io.selfhosted.gateway.stream.StreamProperties;
import io.selfhosted.gateway.stream.StreamStore;
import io.selfhosted.gateway.system.DaemonThreads;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.dao.DataAccessException;
import org.springframework.stereotype.Component;

/**
 * Which gateway owns a generation: one lease per answer, renewed by one timer. Each streaming
 * answer names its gateway instance and a lease end in the database, which the owner renews for all
 * its live answers in one statement every renew interval; in the same round the stream store renews
 * the same lease where readers on other replicas look for it (Redis, when streams are shared).
 * Every replica sweeps answers whose lease ran out (their gateway died): it ends their stream with
 * an interruption error (when streams are shared) and marks them failed, each step conditional, so
 * replicas racing for the same answer do it once. This replaces failing every streaming answer at
 * start-up, which broke the live answers of other gateways sharing the database.
 */
@Component
public class OwnerLeases implements DisposableBean {

  private static final Logger log = LoggerFactory.getLogger(OwnerLeases.class);
  private static final int SWEEP_BATCH = 100;

  private final ConversationRepository conversations;
  private final StreamStore streams;
  private final Clock clock;
  private final String instance;
  private final Duration leaseDuration;
  private final Set<String> live = ConcurrentHashMap.newKeySet();
  private final ScheduledExecutorService timer;

  @Autowired
  OwnerLeases(
      ConversationRepository conversations,
      StreamStore streams,
      StreamProperties properties,
      GatewayInstance instance) {
    this(conversations, streams, instance.id(), properties, Clock.systemUTC());
    if (instance.fixed()) {
      failLeftovers(conversations, instance.id());
    }
  }

  /** Leases of the instance {@code instance} on the given clock. */
  public OwnerLeases(
      ConversationRepository conversations,
      StreamStore streams,
      String instance,
      StreamProperties properties,
      Clock clock) {
    this.conversations = conversations;
    this.streams = streams;
    this.clock = clock;
    this.instance = instance;
    this.leaseDuration = properties.leaseDuration();
    streams.onOrphan(this::interrupt);
    this.timer = Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("owner-leases"));
    long renew = Math.max(10, properties.leaseRenewInterval().toMillis());
    timer.scheduleWithFixedDelay(this::renewAndSweep, renew, renew, TimeUnit.MILLISECONDS);
  }

  public String instance() {
    return instance;
  }

  /** The lease end a new answer starts with. */
  public Instant firstLeaseEnd() {
    return clock.instant().plus(leaseDuration);
  }

  /** This gateway generates the answer from now on: its lease is renewed until {@link #ended}. */
  public void started(String messageId) {
    live.add(messageId);
  }

  public void ended(String messageId) {
    live.remove(messageId);
  }

  /** Ends an answer whose gateway died: its stream (once, across replicas), then its row. */
  void interrupt(String messageId) {
    if (live.contains(messageId)) {
      return; // this gateway generates it: never an orphan, whatever the clocks say
    }
    // Whoever ended the stream, its events hold the partial text; the row keeps its own without.
    Optional<String> claimed = streams.interrupt(messageId);
    String text = claimed.or(() -> streams.liveText(messageId)).orElse(null);
    // A claimed stream proves the owner's lease ran out where readers look: the row follows at once
    // (its own lease may end a moment later), so that a reader who got the error finds it failed.
    boolean failed =
        claimed.isPresent()
            ? conversations.failOrphan(messageId, text, clock.instant())
            : conversations.failInterrupted(messageId, text, clock.instant());
    if (failed) {
      log.warn("answer {} was interrupted: its gateway stopped; marked failed", messageId);
    }
  }

  /** One round: renew this gateway's leases, then fail the answers of gateways that died. */
  public void renewAndSweep() {
    try {
      conversations.renewLeases(instance, List.copyOf(live), clock.instant().plus(leaseDuration));
      streams.renewLeases();
      List<String> expired = conversations.expiredAnswers(clock.instant(), SWEEP_BATCH);
      for (String messageId : expired) {
        interrupt(messageId);
      }
    } catch (DataAccessException | RedisException e) {
      log.warn("could not renew or sweep generation leases: {}", e.toString());
    } catch (RuntimeException e) {
      log.error("generation lease round failed", e);
    }
  }

  /**
   * At start-up with a fixed instance id, before this run generates anything: the answers an
   * earlier run of the same id left streaming are over.
   */
  private static void failLeftovers(ConversationRepository conversations, String instance) {
    int count = conversations.failAnswersOf(instance);
    if (count > 0) {
      log.warn("{} answers were interrupted by a restart and are now marked failed", count);
    }
  }

  @Override
  public void destroy() {
    timer.shutdownNow();
  }
}
