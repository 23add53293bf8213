package io.selfhosted.gateway.upstream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.selfhosted.gateway.system.ApiException;
import io.selfhosted.gateway.system.GatewayProperties;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.SocketTimeoutException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import okhttp3.Call;
import okhttp3.Callback;
import okhttp3.HttpUrl;
import okhttp3.Response;
import okhttp3.ResponseBody;
import okhttp3.sse.EventSource;
import okhttp3.sse.EventSourceListener;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.http.HttpStatus;
import org.springframework.lang.Nullable;
import org.springframework.stereotype.Component;

/**
 * The model-service replicas from GATEWAY_UPSTREAMS: least-outstanding-requests balancing, active
 * health checks on /ready, passive ejection, and failover before the first token.
 */
@Component
public class UpstreamPool implements DisposableBean {

  private static final Logger log = LoggerFactory.getLogger(UpstreamPool.class);

  private final List<Replica> replicas;
  private final ModelServiceClient client;
  private final ObjectMapper mapper;
  private final MeterRegistry meters;
  private final int ejectAfter;
  private final ScheduledExecutorService healthChecks;

  public UpstreamPool(
      GatewayProperties properties,
      ModelServiceClient client,
      ObjectMapper mapper,
      MeterRegistry meters) {
    this.client = client;
    this.mapper = mapper;
    this.meters = meters;
    this.ejectAfter = Math.max(1, properties.upstream().ejectAfterFailures());
    List<Replica> list = new ArrayList<>();
    for (String url : properties.upstreams()) {
      HttpUrl parsed = HttpUrl.parse(url.trim());
      if (parsed == null) {
        throw new IllegalArgumentException("GATEWAY_UPSTREAMS holds an invalid URL: " + url);
      }
      Replica replica = new Replica(parsed);
      list.add(replica);
      Gauge.builder("gateway.upstream.up", replica, r -> r.isHealthy() ? 1 : 0)
          .description("1 while the replica takes traffic, 0 while ejected")
          .tag("replica", replica.name())
          .register(meters);
      Gauge.builder("gateway.upstream.outstanding", replica, Replica::outstanding)
          .description("requests in flight per replica")
          .tag("replica", replica.name())
          .register(meters);
    }
    this.replicas = List.copyOf(list);
    this.healthChecks =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "upstream-health");
              t.setDaemon(true);
              return t;
            });
    long interval = Math.max(100, properties.upstream().healthInterval().toMillis());
    healthChecks.scheduleWithFixedDelay(this::checkHealth, 0, interval, TimeUnit.MILLISECONDS);
  }

  public List<Replica> replicas() {
    return replicas;
  }

  /** Streams a chat completion with failover; the returned handle cancels it. */
  public StreamHandle stream(JsonNode body, String requestId, UpstreamListener listener) {
    StreamHandle handle = new StreamHandle(body, requestId, listener);
    handle.next();
    return handle;
  }

  /** A blocking JSON call with failover on connection errors and 5xx. */
  public JsonNode call(String path, @Nullable JsonNode body, String requestId) {
    Set<Replica> tried = new HashSet<>();
    UpstreamError last = null;
    for (Optional<Replica> next = choose(tried); next.isPresent(); next = choose(tried)) {
      Replica replica = next.get();
      tried.add(replica);
      replica.acquire();
      try (Response response = client.call(replica, path, body, requestId).execute()) {
        String text = response.body().string();
        if (response.isSuccessful()) {
          replica.recordSuccess();
          return mapper.readTree(text);
        }
        last = httpError(response, text);
      } catch (SocketTimeoutException e) {
        last = UpstreamError.timeout();
      } catch (IOException e) {
        last = UpstreamError.connection("the model service is unreachable");
      } finally {
        replica.release();
      }
      recordFailure(replica, last);
      if (!last.retryable()) {
        break;
      }
    }
    throw (last == null ? noReplica() : last).toApiException();
  }

  Optional<Replica> choose(Set<Replica> excluded) {
    Comparator<Replica> byLoad = Comparator.comparingInt(Replica::outstanding);
    Optional<Replica> healthy =
        replicas.stream().filter(r -> r.isHealthy() && !excluded.contains(r)).min(byLoad);
    if (healthy.isPresent()) {
      return healthy;
    }
    // All remaining replicas are ejected: trying one beats refusing while health checks lag.
    return replicas.stream().filter(r -> !excluded.contains(r)).min(byLoad);
  }

  private static UpstreamError noReplica() {
    return new UpstreamError(
        UpstreamError.Kind.NO_REPLICA,
        0,
        "no model service is available",
        "upstream_error",
        "no_upstream",
        null,
        5L);
  }

  UpstreamError httpError(Response response, @Nullable String body) {
    Long retryAfter = null;
    String header = response.header("Retry-After");
    if (header != null) {
      try {
        retryAfter = Long.parseLong(header.trim());
      } catch (NumberFormatException ignored) {
        retryAfter = 1L;
      }
    }
    String message = "the model service answered HTTP " + response.code();
    String type = response.code() >= 500 ? "upstream_error" : "invalid_request_error";
    String code =
        response.code() == 503 ? "upstream_overloaded" : "upstream_http_" + response.code();
    String param = null;
    if (body != null && !body.isBlank()) {
      try {
        JsonNode error = mapper.readTree(body).path("error");
        if (error.path("message").isTextual()) {
          message = error.get("message").asText();
        }
        if (error.path("type").isTextual()) {
          type = error.get("type").asText();
        }
        if (error.path("code").isTextual()) {
          code = error.get("code").asText();
        }
        if (error.path("param").isTextual()) {
          param = error.get("param").asText();
        }
      } catch (IOException notJson) {
        // Keep the generic message: upstream bodies are not echoed verbatim.
      }
    }
    return new UpstreamError(
        UpstreamError.Kind.HTTP, response.code(), message, type, code, param, retryAfter);
  }

  private void recordFailure(Replica replica, UpstreamError error) {
    Counter.builder("gateway.upstream.errors")
        .description("failed upstream calls by replica and kind")
        .tag("replica", replica.name())
        .tag("kind", error.kind().name().toLowerCase())
        .register(meters)
        .increment();
    if (error.retryable() && replica.recordFailure(ejectAfter)) {
      log.warn("upstream {} ejected after {} consecutive failures", replica, ejectAfter);
    }
  }

  void checkHealth() {
    for (Replica replica : replicas) {
      client
          .readiness(replica)
          .enqueue(
              new Callback() {
                @Override
                public void onResponse(Call call, Response response) {
                  try (response) {
                    setHealth(replica, response.isSuccessful());
                  }
                }

                @Override
                public void onFailure(Call call, IOException e) {
                  setHealth(replica, false);
                }
              });
    }
  }

  private void setHealth(Replica replica, boolean healthy) {
    if (replica.isHealthy() != healthy) {
      log.info("upstream {} is now {}", replica, healthy ? "in rotation" : "ejected");
    }
    replica.markHealthy(healthy);
  }

  @Override
  public void destroy() {
    healthChecks.shutdownNow();
  }

  /**
   * One logical stream across attempts. Attempts run one after another, each with its own listener
   * adapter, so callbacks never interleave.
   */
  public final class StreamHandle {
    private final JsonNode body;
    private final String requestId;
    private final UpstreamListener listener;
    private final Set<Replica> tried = new HashSet<>();
    private final AtomicBoolean finished = new AtomicBoolean();
    private volatile boolean opened;
    private volatile boolean chunkDelivered;
    private volatile @Nullable EventSource current;
    private volatile @Nullable Replica currentReplica;

    private StreamHandle(JsonNode body, String requestId, UpstreamListener listener) {
      this.body = body;
      this.requestId = requestId;
      this.listener = listener;
    }

    /** Stops the upstream generation; no callback follows. */
    public void cancel() {
      if (finished.compareAndSet(false, true)) {
        EventSource source = current;
        if (source != null) {
          source.cancel();
        }
      }
    }

    public boolean isFinished() {
      return finished.get();
    }

    public @Nullable String replica() {
      Replica replica = currentReplica;
      return replica == null ? null : replica.name();
    }

    private synchronized void next() {
      Optional<Replica> replica = choose(tried);
      if (replica.isEmpty()) {
        fail(noReplica());
        return;
      }
      Replica chosen = replica.get();
      tried.add(chosen);
      chosen.acquire();
      currentReplica = chosen;
      current = client.openStream(chosen, body, requestId, new Attempt(chosen));
      if (finished.get()) {
        current.cancel();
      }
    }

    private void fail(UpstreamError error) {
      if (finished.compareAndSet(false, true)) {
        listener.onError(error, chunkDelivered);
      }
    }

    /** The okhttp-sse listener adapter for one attempt on one replica. */
    private final class Attempt extends EventSourceListener {
      private final Replica replica;
      private final AtomicBoolean released = new AtomicBoolean();
      private boolean done;

      Attempt(Replica replica) {
        this.replica = replica;
      }

      @Override
      public void onOpen(EventSource eventSource, Response response) {
        if (!finished.get() && !opened) {
          opened = true;
          listener.onOpen();
        }
      }

      @Override
      public void onEvent(EventSource eventSource, String id, String type, String data) {
        if (finished.get() || done) {
          return;
        }
        if ("[DONE]".equals(data.trim())) {
          done = true;
          release();
          replica.recordSuccess();
          if (finished.compareAndSet(false, true)) {
            listener.onComplete();
          }
          return;
        }
        JsonNode chunk;
        try {
          chunk = mapper.readTree(data);
        } catch (IOException e) {
          failed(
              new UpstreamError(
                  UpstreamError.Kind.IN_STREAM,
                  0,
                  "the model service sent an unreadable event",
                  "upstream_error",
                  "upstream_protocol_error",
                  null,
                  null));
          eventSource.cancel();
          return;
        }
        JsonNode error = chunk.get("error");
        if (error != null && error.isObject()) {
          failed(
              new UpstreamError(
                  UpstreamError.Kind.IN_STREAM,
                  0,
                  error.path("message").asText("the model service failed"),
                  error.path("type").asText("upstream_error"),
                  error.path("code").asText("upstream_error"),
                  null,
                  null));
          eventSource.cancel();
          return;
        }
        chunkDelivered = true;
        listener.onChunk(chunk);
      }

      @Override
      public void onClosed(EventSource eventSource) {
        if (!done) {
          failed(UpstreamError.connection("the model service closed the stream early"));
        }
      }

      @Override
      public void onFailure(
          EventSource eventSource, @Nullable Throwable t, @Nullable Response response) {
        if (done) {
          return;
        }
        UpstreamError error;
        if (response != null && !response.isSuccessful()) {
          error = httpError(response, bodyOf(response));
        } else if (t instanceof SocketTimeoutException
            || (t instanceof InterruptedIOException && "timeout".equals(t.getMessage()))) {
          error = UpstreamError.timeout();
        } else if (response != null && t instanceof IllegalStateException) {
          error =
              new UpstreamError(
                  UpstreamError.Kind.HTTP,
                  502,
                  "the model service did not answer with an event stream",
                  "upstream_error",
                  "upstream_protocol_error",
                  null,
                  null);
        } else {
          error = UpstreamError.connection("the model service is unreachable or reset the stream");
        }
        failed(error);
      }

      private void failed(UpstreamError error) {
        done = true;
        release();
        if (finished.get()) {
          return; // cancelled by the caller: not a replica failure
        }
        recordFailure(replica, error);
        log.warn(
            "request {} upstream {} failed: {} ({}){}",
            requestId,
            replica,
            error.message(),
            error.kind(),
            chunkDelivered ? " after the first token" : "");
        if (!chunkDelivered && error.retryable() && choose(tried).isPresent()) {
          next();
        } else {
          fail(error);
        }
      }

      private void release() {
        if (released.compareAndSet(false, true)) {
          replica.release();
        }
      }

      private @Nullable String bodyOf(Response response) {
        try {
          ResponseBody body = response.body();
          return body.string();
        } catch (IOException | IllegalStateException e) {
          return null;
        }
      }
    }
  }

  /** Maps a terminal upstream error of a not-yet-started stream to the client's status. */
  public static ApiException asApiException(UpstreamError error) {
    return error == null
        ? new ApiException(
            HttpStatus.BAD_GATEWAY, "upstream_error", "upstream_error", null, "upstream failed")
        : error.toApiException();
  }
}
