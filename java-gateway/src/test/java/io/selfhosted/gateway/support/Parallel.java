package io.selfhosted.gateway.support;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.IntFunction;

/** Fires calls at the same moment, one thread each, and collects what they returned. */
public final class Parallel {

  private Parallel() {}

  /**
   * Opens {@code count} streams at once and returns their statuses; those answered 200 are left
   * open in {@code open}, the others are closed.
   */
  public static List<Integer> openStreams(
      int count, IntFunction<Callable<SseClient>> opener, List<SseClient> open) throws Exception {
    return run(
        count,
        i ->
            () -> {
              SseClient stream = opener.apply(i).call();
              int code = stream.response().code();
              if (code == 200) {
                open.add(stream);
              } else {
                stream.close();
              }
              return code;
            });
  }

  public static <T> List<T> run(int count, Callable<T> call) throws Exception {
    return run(count, i -> call);
  }

  /** Call {@code i} of {@code count} is {@code calls.apply(i)}. */
  public static <T> List<T> run(int count, IntFunction<Callable<T>> calls) throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(count);
    CountDownLatch go = new CountDownLatch(1);
    try {
      List<Future<T>> futures = new ArrayList<>();
      for (int i = 0; i < count; i++) {
        Callable<T> call = calls.apply(i);
        futures.add(
            pool.submit(
                () -> {
                  go.await();
                  return call.call();
                }));
      }
      go.countDown();
      List<T> results = new ArrayList<>();
      for (Future<T> future : futures) {
        results.add(future.get());
      }
      return results;
    } finally {
      pool.shutdownNow();
    }
  }
}
