package io.selfhosted.gateway.stream.redis;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.lettuce.core.RedisClient;
import io.selfhosted.gateway.product.ConversationRepository;
import io.selfhosted.gateway.product.OwnerLeases;
import io.selfhosted.gateway.sse.EventSink;
import io.selfhosted.gateway.stream.ResumableStream;
import io.selfhosted.gateway.stream.StreamProperties;
import io.selfhosted.gateway.stream.StreamWriter;
import io.selfhosted.gateway.support.Json;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import javax.sql.DataSource;
import org.flywaydb.core.Flyway;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfEnvironmentVariable;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.jdbc.datasource.DriverManagerDataSource;

/**
 * Two (or three) gateways' stream stores sharing one real Redis server (started by
 * scripts/test-java.sh): a stream written on one is read, resumed, cancelled and ended on another
 * as if one process held it.
 */
@EnabledIfEnvironmentVariable(
    named = "GATEWAY_TEST_REDIS_URL",
    matches = ".+",
    disabledReason = "needs a Redis server: run through scripts/test-java.sh (make test)")
class RedisStreamStoreTests {

  private static final String URL = System.getenv("GATEWAY_TEST_REDIS_URL");
  private final List<RedisStreamStore> stores = new ArrayList<>();
  private final ScheduledExecutorService renewals = Executors.newSingleThreadScheduledExecutor();
  private final List<RedisClient> clients = new ArrayList<>();

  /** A client connection: records frames; {@link #cut} drops it like a closed socket. */
  static final class Client implements EventSink {
    private final List<String> frames = new ArrayList<>();
    private final CountDownLatch closed = new CountDownLatch(1);
    private boolean broken;

    @Override
    public synchronized boolean send(String frame) {
      if (broken) {
        return false;
      }
      frames.add(frame);
      return true;
    }

    @Override
    public void close() {
      closed.countDown();
    }

    /** Breaks the connection; answers the id of the last event it got. */
    synchronized long cut() {
      broken = true;
      return ids().isEmpty() ? 0 : ids().get(ids().size() - 1);
    }

    synchronized List<String> frames() {
      return List.copyOf(frames);
    }

    synchronized List<Long> ids() {
      List<Long> ids = new ArrayList<>();
      for (String frame : frames) {
        ids.add(Long.parseLong(frame.substring(4, frame.indexOf('\n'))));
      }
      return ids;
    }

    synchronized int size() {
      return frames.size();
    }

    boolean awaitClosed() throws InterruptedException {
      return closed.await(10, TimeUnit.SECONDS);
    }
  }

  private RedisStreamStore gateway(String name, Duration grace, Duration lease, Duration renew) {
    RedisStreamStore store =
        new RedisStreamStore(
            redisClient(),
            name + "-" + UUID.randomUUID(),
            new StreamProperties(
                Duration.ofMillis(400), grace, Duration.ofMinutes(1), lease, renew, "", 100_000));
    stores.add(store);
    // What the gateway's one lease timer (OwnerLeases) does for its store.
    long every = renew.toMillis();
    renewals.scheduleWithFixedDelay(
        () -> {
          try {
            store.renewLeases();
          } catch (RuntimeException closedLikeAKilledGateway) {
            // a closed store renews nothing, as a killed gateway would not
          }
        },
        every,
        every,
        TimeUnit.MILLISECONDS);
    return store;
  }

  private RedisStreamStore gateway(String name) {
    return gateway(name, Duration.ofSeconds(30), Duration.ofSeconds(10), Duration.ofSeconds(2));
  }

  /** A gateway's own Redis client, with the gateway's command timeout. */
  private RedisClient redisClient() {
    RedisClient client = RedisClient.create(URL);
    client.setDefaultTimeout(Duration.ofSeconds(2));
    clients.add(client);
    return client;
  }

  @AfterEach
  void closeStores() {
    renewals.shutdownNow();
    stores.forEach(RedisStreamStore::close);
    clients.forEach(RedisClient::shutdown);
  }

  private static String newId() {
    return UUID.randomUUID().toString();
  }

  @Test
  void aReconnectToAnotherGatewayGetsEveryEventOnceWhileEventsKeepComing() throws Exception {
    RedisStreamStore owner = gateway("a");
    RedisStreamStore other = gateway("b");
    String id = newId();
    StreamWriter writer = owner.create(id, "c1", "k1", why -> {});
    Client first = new Client();
    other.find(id).orElseThrow().attach(0, first);

    Thread producer =
        new Thread(
            () -> {
              for (int i = 1; i <= 1000; i++) {
                writer.appendText("x", "{\"text\":\"x\",\"n\":" + i + "}");
              }
              if (writer.beginEnd()) {
                writer.end("finish", "{\"finish_reason\":\"stop\"}");
              }
            });
    producer.start();
    await().atMost(Duration.ofSeconds(20)).until(() -> first.size() >= 200);
    long lastSeen = first.cut();
    ResumableStream onOwner = owner.find(id).orElseThrow();
    assertThat(onOwner.checkResume(lastSeen)).isEqualTo(ResumableStream.Resume.OK);
    Client second = new Client();
    onOwner.attach(lastSeen, second);
    producer.join();

    assertThat(second.awaitClosed()).as("closed after the final event").isTrue();
    List<Long> all = new ArrayList<>(first.ids());
    all.addAll(second.ids());
    List<Long> expected = new ArrayList<>();
    for (long i = 1; i <= 1001; i++) {
      expected.add(i);
    }
    assertThat(all).isEqualTo(expected);
    assertThat(first.frames().get(0))
        .isEqualTo("id: 1\nevent: message\ndata: {\"text\":\"x\",\"n\":1}\n\n");
    List<String> frames = second.frames();
    assertThat(frames.get(frames.size() - 1))
        .isEqualTo("id: 1001\nevent: finish\ndata: {\"finish_reason\":\"stop\"}\n\n");
    assertThat(other.liveText(id)).hasValue("x".repeat(1000));
  }

  @Test
  void aRedisThatForgotItsScriptsStillTakesEveryEvent() {
    RedisStreamStore owner = gateway("a");
    String id = newId();
    StreamWriter writer = owner.create(id, "c1", "k1", why -> {});
    writer.appendText("a", "{}");
    RedisClient admin = RedisClient.create(URL);
    try (var connection = admin.connect()) {
      connection.sync().scriptFlush(); // as after a Redis restart
    } finally {
      admin.shutdown();
    }
    writer.appendText("b", "{}");
    writer.beginEnd();
    writer.end("finish", "{}");

    Client reader = new Client();
    gateway("b").find(id).orElseThrow().attach(0, reader);
    assertThat(reader.ids()).containsExactly(1L, 2L, 3L);
    assertThat(owner.liveText(id)).hasValue("ab");
  }

  @Test
  void answersResumeChecksOnEveryGatewayAsOneProcessDoes() {
    RedisStreamStore owner = gateway("a");
    RedisStreamStore other = gateway("b");
    String id = newId();
    StreamWriter writer = owner.create(id, "c1", "k1", why -> {});
    writer.appendText("a", "{}");
    writer.appendText("b", "{}");

    ResumableStream stream = other.find(id).orElseThrow();
    assertThat(stream.ownerKeyId()).isEqualTo("k1");
    assertThat(stream.conversationId()).isEqualTo("c1");
    assertThat(stream.checkResume(0)).isEqualTo(ResumableStream.Resume.OK);
    assertThat(stream.checkResume(2)).isEqualTo(ResumableStream.Resume.OK);
    assertThat(stream.checkResume(3)).isEqualTo(ResumableStream.Resume.BEYOND_STREAM);
    assertThat(stream.checkResume(-1)).isEqualTo(ResumableStream.Resume.BEYOND_STREAM);
    writer.beginEnd();
    writer.end("finish", "{}");
    assertThat(stream.checkResume(3)).isEqualTo(ResumableStream.Resume.NOTHING_LEFT);
    assertThat(stream.checkResume(2)).isEqualTo(ResumableStream.Resume.OK);
    assertThat(other.find(newId())).isEmpty();
  }

  @Test
  void aCancelOnAnotherGatewayReachesTheOwnerWithinASecond() throws Exception {
    RedisStreamStore owner = gateway("a");
    RedisStreamStore other = gateway("b");
    String id = newId();
    CompletableFuture<String> cancelled = new CompletableFuture<>();
    AtomicReference<StreamWriter> writer = new AtomicReference<>();
    writer.set(
        owner.create(
            id,
            "c1",
            "k1",
            why -> {
              cancelled.complete(why);
              if (writer.get().beginEnd()) {
                writer.get().end("finish", "{\"finish_reason\":\"cancelled\"}");
              }
            }));
    writer.get().appendText("partial", "{}");
    Client reader = new Client();
    other.find(id).orElseThrow().attach(0, reader);

    long start = System.nanoTime();
    other.cancel(other.find(id).orElseThrow(), "cancelled by the user");

    assertThat(cancelled.get(1, TimeUnit.SECONDS)).isEqualTo("cancelled by the user");
    assertThat(Duration.ofNanos(System.nanoTime() - start))
        .as("the cancel call returns once the owner ended the stream")
        .isLessThan(Duration.ofSeconds(1));
    assertThat(reader.awaitClosed()).isTrue();
    assertThat(reader.frames().get(1)).contains("event: finish").contains("cancelled");
  }

  @Test
  void theGracePeriodCountsReadersOnEveryGateway() throws Exception {
    Duration grace = Duration.ofMillis(600);
    RedisStreamStore owner = gateway("a", grace, Duration.ofSeconds(10), Duration.ofMillis(200));
    RedisStreamStore other = gateway("b", grace, Duration.ofSeconds(10), Duration.ofMillis(200));
    String id = newId();
    CompletableFuture<String> cancelled = new CompletableFuture<>();
    StreamWriter writer = owner.create(id, "c1", "k1", cancelled::complete);
    Client reader = new Client();
    other.find(id).orElseThrow().attach(0, reader);
    writer.scheduleGraceIfUnattended();

    await()
        .during(Duration.ofMillis(1500))
        .atMost(Duration.ofSeconds(3))
        .until(() -> !cancelled.isDone());

    other.find(id).orElseThrow().detach(reader);
    assertThat(cancelled.get(5, TimeUnit.SECONDS)).isEqualTo("no client within the grace period");
  }

  @Test
  void aStreamWhoseOwnerDiedEndsWithOneInterruptionErrorForEveryReader() throws Exception {
    Duration lease = Duration.ofMillis(800);
    Duration renew = Duration.ofMillis(200);
    RedisStreamStore owner = gateway("a", Duration.ofSeconds(30), lease, renew);
    RedisStreamStore other = gateway("b", Duration.ofSeconds(30), lease, renew);
    String id = newId();
    StreamWriter writer = owner.create(id, "c1", "k1", why -> {});
    writer.appendText("half ", "{\"text\":\"half \"}");
    writer.appendText("an answer", "{\"text\":\"an answer\"}");
    Client attached = new Client();
    other.find(id).orElseThrow().attach(0, attached);
    await().until(() -> attached.size() == 2);
    // Held past two renewals: the owner keeps its lease while alive.
    await()
        .during(Duration.ofMillis(1200))
        .atMost(Duration.ofSeconds(2))
        .until(() -> attached.size() == 2);

    owner.close(); // kill -9: nothing renews the lease any more

    assertThat(attached.awaitClosed()).as("the reader is ended, not left hanging").isTrue();
    List<String> frames = attached.frames();
    assertThat(frames).hasSize(3);
    assertThat(frames.get(2)).startsWith("id: 3\nevent: error\ndata: ");
    var error = Json.parse(frames.get(2).substring(frames.get(2).indexOf("data: ") + 6).trim());
    assertThat(error.get("message_id").asText()).isEqualTo(id);
    assertThat(error.at("/error/code").asText()).isEqualTo("generation_interrupted");
    assertThat(error.at("/error/type").asText()).isEqualTo("server_error");

    RedisStreamStore third = gateway("c");
    ResumableStream late = third.find(id).orElseThrow();
    assertThat(late.checkResume(3)).isEqualTo(ResumableStream.Resume.NOTHING_LEFT);
    Client reconnect = new Client();
    late.attach(1, reconnect);
    assertThat(reconnect.awaitClosed()).isTrue();
    assertThat(reconnect.ids()).containsExactly(2L, 3L);
    assertThat(third.interrupt(id)).as("already ended").isEmpty();
  }

  @Test
  void gatewaysRacingToInterruptADeadOwnersStreamEndItOnce() throws Exception {
    Duration lease = Duration.ofMillis(500);
    RedisStreamStore owner = gateway("a", Duration.ofSeconds(30), lease, Duration.ofMillis(100));
    RedisStreamStore b = gateway("b");
    RedisStreamStore c = gateway("c");
    String id = newId();
    StreamWriter writer = owner.create(id, "c1", "k1", why -> {});
    writer.appendText("partial", "{}");
    assertThat(b.interrupt(id)).as("the owner holds its lease").isEmpty();
    owner.close();
    await().atMost(Duration.ofSeconds(3)).until(() -> b.find(id).isPresent() && leaseGone(id));

    ExecutorService pool = Executors.newFixedThreadPool(8);
    List<Future<Optional<String>>> claims = new ArrayList<>();
    CountDownLatch go = new CountDownLatch(1);
    for (int i = 0; i < 8; i++) {
      RedisStreamStore store = i % 2 == 0 ? b : c;
      claims.add(
          pool.submit(
              () -> {
                go.await();
                return store.interrupt(id);
              }));
    }
    go.countDown();
    List<Optional<String>> results = new ArrayList<>();
    for (Future<Optional<String>> claim : claims) {
      results.add(claim.get(10, TimeUnit.SECONDS));
    }
    pool.shutdown();

    assertThat(results.stream().filter(Optional::isPresent)).hasSize(1);
    assertThat(results.stream().filter(Optional::isPresent).findFirst().orElseThrow())
        .hasValue("partial");
    Client reader = new Client();
    c.find(id).orElseThrow().attach(0, reader);
    assertThat(reader.awaitClosed()).isTrue();
    assertThat(reader.frames()).hasSize(2);
    assertThat(reader.frames().get(1)).contains("event: error").contains("generation_interrupted");
  }

  @Test
  void aDeadGatewaysAnswerEndsWithOneErrorAndIsFailedInTheDatabase() throws Exception {
    DataSource dataSource =
        new DriverManagerDataSource(
            "jdbc:h2:mem:" + UUID.randomUUID() + ";DB_CLOSE_DELAY=-1", "sa", "");
    Flyway.configure().dataSource(dataSource).locations("classpath:db/migration").load().migrate();
    ConversationRepository repository = new ConversationRepository(JdbcClient.create(dataSource));
    Duration lease = Duration.ofMillis(800);
    Duration renew = Duration.ofMillis(200);
    StreamProperties properties =
        new StreamProperties(
            Duration.ofMillis(400),
            Duration.ofSeconds(30),
            Duration.ofMinutes(1),
            lease,
            renew,
            "",
            100_000);
    RedisStreamStore dyingStore = gateway("a", Duration.ofSeconds(30), lease, renew);
    RedisStreamStore survivingStore = gateway("b", Duration.ofSeconds(30), lease, renew);
    OwnerLeases dying = new OwnerLeases(repository, dyingStore, "a", properties, Clock.systemUTC());
    OwnerLeases surviving =
        new OwnerLeases(repository, survivingStore, "b", properties, Clock.systemUTC());
    try {
      String conversation = repository.createConversation("k1", null).id();
      var answer = repository.insertStreamingAnswer(conversation, "m", "a", dying.firstLeaseEnd());
      StreamWriter writer = dyingStore.create(answer.id(), conversation, "k1", why -> {});
      dying.started(answer.id());
      writer.appendText("half an ", "{}");
      writer.appendText("answer", "{}");
      Client attached = new Client();
      survivingStore.find(answer.id()).orElseThrow().attach(0, attached);

      dying.destroy();
      dyingStore.close(); // kill -9

      assertThat(attached.awaitClosed()).isTrue();
      assertThat(attached.frames()).hasSize(3);
      assertThat(attached.frames().get(2)).contains("generation_interrupted");
      await()
          .atMost(Duration.ofSeconds(5))
          .until(
              () ->
                  repository
                      .findMessage("k1", answer.id())
                      .orElseThrow()
                      .status()
                      .equals("failed"));
      assertThat(repository.findMessage("k1", answer.id()).orElseThrow().content())
          .isEqualTo("half an answer");
      surviving.renewAndSweep();
      Client late = new Client();
      survivingStore.find(answer.id()).orElseThrow().attach(0, late);
      assertThat(late.awaitClosed()).isTrue();
      assertThat(late.frames()).as("one error, whoever noticed").hasSize(3);
    } finally {
      surviving.destroy();
      dying.destroy();
    }
  }

  private static boolean leaseGone(String id) {
    RedisClient client = RedisClient.create(URL);
    try (var connection = client.connect()) {
      return connection.sync().exists(RedisStreamStore.leaseKey(id)) == 0;
    } finally {
      client.shutdown();
    }
  }
}
