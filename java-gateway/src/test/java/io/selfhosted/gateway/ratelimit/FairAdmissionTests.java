package io.selfhosted.gateway.ratelimit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.selfhosted.gateway.ratelimit.LimitProperties.Admission;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The Virtual Token Counter scheduler of a full model, in this process. */
class FairAdmissionTests {

  private static final Duration LONG = Duration.ofSeconds(10);

  /** Starts {@code keyId}'s request waiting; its key id lands in {@code order} once admitted. */
  private static CompletableFuture<Boolean> waitFor(
      AdmissionQueue queue, String keyId, double charge, List<String> order) {
    CompletableFuture<Boolean> admitted =
        CompletableFuture.supplyAsync(
            () -> {
              boolean ok = queue.acquire(keyId, charge, LONG);
              if (ok) {
                order.add(keyId);
              }
              return ok;
            });
    return admitted;
  }

  private static void awaitWaiting(AdmissionQueue queue, int count) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (queue.state().waiting().values().stream().mapToInt(Integer::intValue).sum() < count) {
      assertThat(System.nanoTime()).isLessThan(deadline);
      Thread.sleep(2);
    }
  }

  /** A flood of one key waits; another key's requests, arriving later, go in between. */
  private static List<String> admissionOrder(Admission order) throws Exception {
    LocalTokenCounters counters = new LocalTokenCounters();
    AdmissionQueue queue = new AdmissionQueue("m", 1, order, counters);
    assertThat(queue.acquire("batch", 10, LONG)).isTrue();
    List<String> admitted = new CopyOnWriteArrayList<>();
    List<CompletableFuture<Boolean>> waiting = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      waiting.add(waitFor(queue, "batch", 10, admitted));
      awaitWaiting(queue, i + 1);
    }
    waiting.add(waitFor(queue, "chat", 10, admitted));
    awaitWaiting(queue, 5);
    for (int i = 0; i < 5; i++) {
      counters.charge("m", admitted.isEmpty() ? "batch" : admitted.get(i - 1), 100);
      queue.release();
      int done = i + 1;
      CompletableFuture.anyOf(waiting.toArray(CompletableFuture[]::new)).get(5, TimeUnit.SECONDS);
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
      while (admitted.size() < done) {
        assertThat(System.nanoTime()).isLessThan(deadline);
        Thread.sleep(1);
      }
    }
    return admitted;
  }

  @Test
  void theKeyServedFewerTokensGoesFirstNotTheOldestRequest() throws Exception {
    assertThat(admissionOrder(Admission.FAIR))
        .containsExactly("chat", "batch", "batch", "batch", "batch");
  }

  @Test
  void fifoAdmitsInArrivalOrderWhateverTheKey() throws Exception {
    assertThat(admissionOrder(Admission.FIFO))
        .containsExactly("batch", "batch", "batch", "batch", "chat");
  }

  @Test
  void aKeyThatBecomesBackloggedIsLiftedToTheLeastBackloggedCounter() {
    LocalTokenCounters counters = new LocalTokenCounters();
    counters.join("m", "busy");
    counters.charge("m", "busy", 500);
    counters.join("m", "other"); // lifted to 500 on joining
    counters.charge("m", "other", 800);

    // Idle so far: starts level with the least backlogged key, not 500 tokens ahead of it.
    counters.join("m", "idle");
    assertThat(counters.counters("m", List.of("idle"))).containsEntry("idle", 500.0);

    // A key already ahead keeps its counter: being lifted never lowers one.
    counters.join("m", "other");
    assertThat(counters.counters("m", List.of("other"))).containsEntry("other", 1300.0);
    assertThat(counters.waiting("m")).containsEntry("other", 2L).containsEntry("busy", 1L);
  }

  @Test
  void withNobodyWaitingAReturningKeyIsLiftedToTheLastKeyThatLeft() {
    LocalTokenCounters counters = new LocalTokenCounters();
    counters.join("m", "a");
    counters.charge("m", "a", 300);
    counters.leave("m", "a");
    assertThat(counters.waiting("m")).isEmpty();

    counters.join("m", "b");
    assertThat(counters.counters("m", List.of("b"))).containsEntry("b", 300.0);
  }

  @Test
  void aRequestThatGivesUpLeavesTheQueueAndTheBacklog() {
    LocalTokenCounters counters = new LocalTokenCounters();
    AdmissionQueue queue = new AdmissionQueue("m", 1, Admission.FAIR, counters);
    assertThat(queue.acquire("a", 1, LONG)).isTrue();

    assertThat(queue.acquire("b", 1, Duration.ofMillis(30))).isFalse();

    assertThat(queue.state().waiting()).isEmpty();
    assertThat(counters.waiting("m")).isEmpty();
    queue.release();
    assertThat(queue.acquire("b", 1, Duration.ZERO)).isTrue();
  }

  /**
   * Two keys that always have requests waiting, one of weight 2 and with answers four times as
   * long: each is served in proportion to its weight (Jain's index of the weighted shares).
   */
  @Test
  void keysThatStayBackloggedShareTheWeightedTokensByWeight() throws Exception {
    // One slot, held here; both keys queue far more requests than the slots given out below, so
    // that both stay backlogged throughout, and the slot is given back one grant at a time: the
    // order is the scheduler's alone, whatever the threads' timing on a busy machine.
    LocalTokenCounters counters = new LocalTokenCounters();
    AdmissionQueue queue = new AdmissionQueue("m", 1, Admission.FAIR, counters);
    assertThat(queue.acquire("holder", 0, LONG)).isTrue();
    Map<String, Double> weights = Map.of("a", 1.0, "b", 2.0);
    Map<String, Integer> answer = Map.of("a", 40, "b", 10);
    Map<String, Integer> queued = Map.of("a", 40, "b", 150);
    BlockingQueue<String> granted = new LinkedBlockingQueue<>();
    ExecutorService workers = Executors.newCachedThreadPool();
    queued.forEach(
        (key, count) -> {
          double weight = weights.get(key);
          for (int i = 0; i < count; i++) {
            workers.submit(
                () -> {
                  if (queue.acquire(key, 5 / weight, LONG)) {
                    // prompt 5 when admitted, then the answer's tokens at weight 2, as they stream
                    counters.charge("m", key, 2.0 * answer.get(key) / weight);
                    granted.add(key);
                  }
                  return null;
                });
          }
        });
    await().until(() -> queue.state().waiting().values().stream().mapToInt(i -> i).sum() == 190);

    Map<String, Double> served = new HashMap<>();
    for (int grant = 0; grant < 120; grant++) {
      queue.release();
      String key = granted.poll(10, TimeUnit.SECONDS);
      assertThat(key).as("grant %d", grant).isNotNull();
      served.merge(key, 5 + 2.0 * answer.get(key), Double::sum);
    }
    assertThat(queue.state().waiting()).as("both keys still backlogged").containsOnlyKeys("a", "b");
    workers.shutdownNow();

    double a = served.get("a") / weights.get("a");
    double b = served.get("b") / weights.get("b");
    assertThat(jain(a, b)).isGreaterThanOrEqualTo(0.95);
    assertThat(served.get("b") / served.get("a")).isBetween(1.8, 2.2);
  }

  static double jain(double... shares) {
    double sum = 0;
    double squares = 0;
    for (double x : shares) {
      sum += x;
      squares += x * x;
    }
    return sum * sum / (shares.length * squares);
  }
}
