package io.selfhosted.gateway.ratelimit;

import io.selfhosted.gateway.ratelimit.LimitProperties.Admission;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One model's in-flight slots on this gateway and the requests waiting for one. A free slot goes to
 * the waiting key with the smallest virtual token counter (fair), or to the oldest waiting request
 * (fifo); within one key, first come first served. A request arriving while others wait queues
 * behind them rather than taking a slot that just came free.
 */
final class AdmissionQueue {

  private static final Logger log = LoggerFactory.getLogger(AdmissionQueue.class);

  private final String model;
  private final int capacity;
  private final Admission order;
  private final TokenCounters counters;
  private final ReentrantLock lock = new ReentrantLock();
  private final Map<String, ArrayDeque<Waiter>> waiting = new LinkedHashMap<>();
  private int inFlight;
  private long arrivals;

  private static final class Waiter {
    final String keyId;
    final long arrival;
    final double promptCharge;
    final CompletableFuture<Void> granted = new CompletableFuture<>();

    Waiter(String keyId, long arrival, double promptCharge) {
      this.keyId = keyId;
      this.arrival = arrival;
      this.promptCharge = promptCharge;
    }
  }

  AdmissionQueue(String model, int capacity, Admission order, TokenCounters counters) {
    this.model = model;
    this.capacity = capacity;
    this.order = order;
    this.counters = counters;
  }

  int capacity() {
    return capacity;
  }

  /**
   * Takes a slot for a request of {@code keyId}, waiting at most {@code wait} for one; {@code
   * promptCharge} is added to the key's counter when it gets the slot (VTC counts a request's
   * prompt when it is served). False when no slot came in time.
   */
  boolean acquire(String keyId, double promptCharge, Duration wait) {
    Waiter waiter;
    lock.lock();
    try {
      if (waiting.isEmpty() && inFlight < capacity) {
        inFlight++;
        counters.charge(model, keyId, promptCharge);
        return true;
      }
      waiter = new Waiter(keyId, arrivals++, promptCharge);
      waiting.computeIfAbsent(keyId, k -> new ArrayDeque<>()).add(waiter);
      counters.join(model, keyId);
      dispatch();
    } finally {
      lock.unlock();
    }
    try {
      waiter.granted.get(wait.toNanos(), TimeUnit.NANOSECONDS);
      return true;
    } catch (TimeoutException e) {
      return giveUp(waiter);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      if (giveUp(waiter)) {
        release(); // granted as the wait was interrupted: nobody will use it
      }
      return false;
    } catch (ExecutionException e) {
      throw new IllegalStateException(e); // never completed exceptionally
    }
  }

  /** Leaves the queue; true when the slot was granted meanwhile (it is then the caller's). */
  private boolean giveUp(Waiter waiter) {
    lock.lock();
    try {
      if (waiter.granted.isDone()) {
        return true;
      }
      ArrayDeque<Waiter> queue = waiting.get(waiter.keyId);
      if (queue != null && queue.remove(waiter)) {
        if (queue.isEmpty()) {
          waiting.remove(waiter.keyId);
        }
        counters.leave(model, waiter.keyId);
      }
      return false;
    } finally {
      lock.unlock();
    }
  }

  /** Gives a slot back; the next waiting request gets it. */
  void release() {
    lock.lock();
    try {
      inFlight--;
      dispatch();
    } finally {
      lock.unlock();
    }
  }

  private void dispatch() {
    while (inFlight < capacity && !waiting.isEmpty()) {
      String key = next();
      ArrayDeque<Waiter> queue = waiting.get(key);
      Waiter waiter = queue.poll();
      if (queue.isEmpty()) {
        waiting.remove(key);
      }
      counters.leave(model, key);
      inFlight++;
      counters.charge(model, key, waiter.promptCharge);
      waiter.granted.complete(null);
    }
  }

  /** The key whose oldest waiting request goes next. */
  private String next() {
    Comparator<String> oldestFirst = Comparator.comparingLong(k -> waiting.get(k).peek().arrival);
    if (order == Admission.FIFO) {
      return waiting.keySet().stream().min(oldestFirst).orElseThrow();
    }
    Map<String, Double> counter;
    try {
      counter = counters.counters(model, waiting.keySet());
    } catch (RuntimeException e) {
      // Counters out of reach (Redis down): first come first served until they are back.
      log.warn(
          "fair admission: counters unavailable ({}), admitting in arrival order", e.toString());
      return waiting.keySet().stream().min(oldestFirst).orElseThrow();
    }
    return waiting.keySet().stream()
        .min(
            Comparator.<String>comparingDouble(k -> counter.getOrDefault(k, 0.0))
                .thenComparing(oldestFirst))
        .orElseThrow();
  }

  /** What the status view shows: slots in use and the requests waiting here, per key. */
  State state() {
    lock.lock();
    try {
      Map<String, Integer> perKey = new HashMap<>();
      waiting.forEach((key, queue) -> perKey.put(key, queue.size()));
      return new State(capacity, inFlight, Map.copyOf(perKey));
    } finally {
      lock.unlock();
    }
  }

  record State(int capacity, int inFlight, Map<String, Integer> waiting) {}
}
