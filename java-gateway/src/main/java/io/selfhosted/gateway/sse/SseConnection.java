package io.selfhosted.gateway.sse;

import io.selfhosted.gateway.system.ApiException;
import io.selfhosted.gateway.system.JsonErrors;
import jakarta.servlet.AsyncContext;
import jakarta.servlet.AsyncEvent;
import jakarta.servlet.AsyncListener;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.locks.ReentrantLock;
import org.springframework.http.HttpHeaders;

/**
 * One client's text/event-stream response on a servlet async context. Each frame is written and
 * flushed at once; headers are committed only when the stream opens, so a failure before that can
 * still answer with a real status. No async timeout: the gateway ends streams itself.
 */
public final class SseConnection implements EventSink {

  private final AsyncContext async;
  private final HttpServletResponse response;
  private final Heartbeats heartbeats;
  private final ReentrantLock lock = new ReentrantLock();
  private final List<Runnable> closeCallbacks = new CopyOnWriteArrayList<>();
  private volatile boolean closed;
  private volatile long lastWriteNanos = System.nanoTime();
  private boolean committed;

  private SseConnection(AsyncContext async, HttpServletResponse response, Heartbeats heartbeats) {
    this.async = async;
    this.response = response;
    this.heartbeats = heartbeats;
  }

  public static SseConnection start(
      HttpServletRequest request, HttpServletResponse response, Heartbeats heartbeats) {
    AsyncContext async = request.startAsync(request, response);
    async.setTimeout(0);
    SseConnection connection = new SseConnection(async, response, heartbeats);
    async.addListener(
        new AsyncListener() {
          @Override
          public void onComplete(AsyncEvent event) {
            connection.gone();
          }

          @Override
          public void onTimeout(AsyncEvent event) {
            connection.close();
          }

          @Override
          public void onError(AsyncEvent event) {
            connection.close();
          }

          @Override
          public void onStartAsync(AsyncEvent event) {}
        });
    heartbeats.register(connection);
    return connection;
  }

  /** Runs when the connection ends, whoever ended it (client, gateway, or error). */
  public void onClose(Runnable callback) {
    closeCallbacks.add(callback);
    if (closed) {
      callback.run();
    }
  }

  /** Commits 200 and the streaming headers, once. */
  public void open() {
    lock.lock();
    try {
      openLocked();
    } finally {
      lock.unlock();
    }
  }

  public void header(String name, String value) {
    lock.lock();
    try {
      if (!committed) {
        response.setHeader(name, value);
      }
    } finally {
      lock.unlock();
    }
  }

  private void openLocked() {
    if (committed || closed) {
      return;
    }
    committed = true;
    response.setStatus(200);
    response.setContentType("text/event-stream");
    response.setCharacterEncoding(StandardCharsets.UTF_8.name());
    response.setHeader(HttpHeaders.CACHE_CONTROL, "no-cache");
    // Tells nginx-style proxies not to buffer the stream.
    response.setHeader("X-Accel-Buffering", "no");
    try {
      response.flushBuffer();
    } catch (IOException e) {
      closeLocked();
    }
  }

  @Override
  public boolean send(String frame) {
    lock.lock();
    try {
      if (closed) {
        return false;
      }
      openLocked();
      if (closed) {
        return false;
      }
      var out = response.getOutputStream();
      out.write(frame.getBytes(StandardCharsets.UTF_8));
      out.flush();
      lastWriteNanos = System.nanoTime();
      return true;
    } catch (IOException | IllegalStateException e) {
      closeLocked();
      return false;
    } finally {
      lock.unlock();
    }
  }

  /** A comment line, so idle proxies and clients see the connection alive (and we see it gone). */
  void heartbeatIfIdle(long idleNanos) {
    if (!committed || closed || System.nanoTime() - lastWriteNanos < idleNanos) {
      return;
    }
    // A writer holding the lock is busy with a slow client: it is not idle, and one stuck
    // client must not hold up the heartbeats of all the others.
    if (lock.tryLock()) {
      try {
        send(": keep-alive\n\n");
      } finally {
        lock.unlock();
      }
    }
  }

  /** Answers with a status and the error envelope when nothing has been committed yet. */
  public void fail(ApiException error, String eventFrame) {
    lock.lock();
    try {
      if (closed) {
        return;
      }
      if (!committed) {
        committed = true;
        JsonErrors.write(response, error);
      } else {
        var out = response.getOutputStream();
        out.write(eventFrame.getBytes(StandardCharsets.UTF_8));
        out.flush();
      }
    } catch (IOException | IllegalStateException e) {
      // The client is gone; closing is all that is left to do.
    } finally {
      closeLocked();
      lock.unlock();
    }
  }

  @Override
  public void close() {
    lock.lock();
    try {
      closeLocked();
    } finally {
      lock.unlock();
    }
  }

  private void closeLocked() {
    if (closed) {
      return;
    }
    closed = true;
    try {
      async.complete();
    } catch (IllegalStateException alreadyCompleted) {
      // The container completed it first (client disconnect).
    }
    gone();
  }

  private void gone() {
    closed = true;
    heartbeats.unregister(this);
    for (Runnable callback : closeCallbacks) {
      if (closeCallbacks.remove(callback)) {
        callback.run();
      }
    }
  }
}
