package io.selfhosted.gateway.upstream;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.SocketTimeoutException;
import java.util.HashSet;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import okhttp3.Response;
import okhttp3.ResponseBody;
import okhttp3.sse.EventSource;
import okhttp3.sse.EventSourceListener;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;
import org.springframework.lang.Nullable;
import org.springframework.stereotype.Component;

/**
 * Streams chat completions from the pool with failover: connection errors and 5xx are retried on
 * another replica, but only before the first chunk was delivered.
 */
@Component
public class UpstreamStreams {

  private static final Logger log = LoggerFactory.getLogger(UpstreamStreams.class);

  private final UpstreamPool pool;
  private final ModelServiceClient client;
  private final UpstreamWire wire;

  public UpstreamStreams(UpstreamPool pool, ModelServiceClient client, UpstreamWire wire) {
    this.pool = pool;
    this.client = client;
    this.wire = wire;
  }

  /** Starts streaming {@code call}; the returned handle cancels it. */
  public Handle open(ChatCall call, String requestId, UpstreamListener listener) {
    Handle handle = new Handle(wire.body(call), requestId, listener);
    handle.next();
    return handle;
  }

  /**
   * One logical stream across attempts. Attempts run one after another, each with its own listener
   * adapter, so callbacks never interleave.
   */
  public final class Handle {
    private final byte[] body;
    private final String requestId;
    private final UpstreamListener listener;
    private final Set<Replica> tried = new HashSet<>();
    private final AtomicBoolean finished = new AtomicBoolean();
    private volatile boolean opened;
    private volatile boolean chunkDelivered;
    private volatile @Nullable EventSource current;
    private volatile @Nullable Replica currentReplica;

    private Handle(byte[] body, String requestId, UpstreamListener listener) {
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

    /** The replica of the current attempt, if any. */
    public @Nullable String replica() {
      Replica replica = currentReplica;
      return replica == null ? null : replica.name();
    }

    private synchronized void next() {
      Optional<Replica> replica = pool.choose(tried);
      if (replica.isEmpty()) {
        fail(UpstreamError.noReplica());
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
          withRequestId(() -> listener.onOpen(replica.name()));
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
            withRequestId(listener::onComplete);
          }
          return;
        }
        UpstreamWire.Parsed parsed = wire.parse(data);
        if (parsed.error() != null) {
          withRequestId(() -> failed(parsed.error()));
          eventSource.cancel();
          return;
        }
        chunkDelivered = true;
        withRequestId(() -> listener.onChunk(parsed.chunk()));
      }

      @Override
      public void onClosed(EventSource eventSource) {
        if (!done) {
          withRequestId(
              () -> failed(UpstreamError.connection("the model service closed the stream early")));
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
          error = wire.httpError(response, bodyOf(response));
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
        withRequestId(() -> failed(error));
      }

      private void failed(UpstreamError error) {
        done = true;
        release();
        if (finished.get()) {
          return; // cancelled by the caller: not a replica failure
        }
        pool.recordFailure(replica, error);
        log.warn(
            "upstream {} failed: {} ({}){}",
            replica,
            error.message(),
            error.kind(),
            chunkDelivered ? " after the first token" : "");
        if (!chunkDelivered && error.retryable() && pool.choose(tried).isPresent()) {
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

      /** Relay threads log with the request id of the stream they serve. */
      private void withRequestId(Runnable action) {
        MDC.put("requestId", requestId);
        try {
          action.run();
        } finally {
          MDC.remove("requestId");
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
}
