package io.selfhosted.gateway.upstream;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import okhttp3.Call;
import okhttp3.ConnectionPool;
import okhttp3.Dispatcher;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.sse.EventSource;
import okhttp3.sse.EventSourceListener;
import okhttp3.sse.EventSources;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.stereotype.Component;

/**
 * The HTTP client towards the model services. One OkHttpClient, sized for thousands of concurrent
 * streams: okhttp's default dispatcher admits only 5 calls per host and queues the rest silently.
 */
@Component
public class ModelServiceClient implements DisposableBean {

  static final MediaType JSON = MediaType.get("application/json");

  private final OkHttpClient client;
  private final EventSource.Factory eventSources;
  private final String token;

  public ModelServiceClient(UpstreamProperties upstream) {
    Dispatcher dispatcher = new Dispatcher(dispatcherExecutor());
    dispatcher.setMaxRequests(upstream.maxConcurrentStreams());
    dispatcher.setMaxRequestsPerHost(upstream.maxConcurrentStreams());
    this.client =
        new OkHttpClient.Builder()
            .dispatcher(dispatcher)
            // Idle connections are dropped before the model service's Uvicorn drops them (5 s):
            // a request sent on one it is closing fails, and requests are not retried here.
            .connectionPool(new ConnectionPool(1024, 4, TimeUnit.SECONDS))
            .connectTimeout(upstream.connectTimeout())
            // Read timeout = longest silence tolerated; queued requests get `: ping` comments.
            .readTimeout(upstream.readTimeout())
            .writeTimeout(upstream.connectTimeout().multipliedBy(2))
            .retryOnConnectionFailure(false)
            .build();
    this.eventSources = EventSources.createFactory(client);
    this.token = upstream.token();
  }

  /** Virtual threads where the JDK has them (21+), otherwise okhttp's own cached pool. */
  private static ExecutorService dispatcherExecutor() {
    try {
      return (ExecutorService)
          Executors.class.getMethod("newVirtualThreadPerTaskExecutor").invoke(null);
    } catch (ReflectiveOperationException e) {
      return new Dispatcher().executorService();
    }
  }

  /** Opens a streaming chat completion; callbacks arrive on a dispatcher thread. */
  EventSource openStream(
      Replica replica, byte[] body, String requestId, EventSourceListener listener) {
    Request request =
        request(replica, "/v1/chat/completions", requestId)
            .header("Accept", "text/event-stream")
            .post(RequestBody.create(body, JSON))
            .build();
    EventSource.Factory factory =
        replica.pinnedDns() == null
            ? eventSources
            : EventSources.createFactory(client.newBuilder().dns(replica.pinnedDns()).build());
    return factory.newEventSource(request, listener);
  }

  /** A non-streaming chat completion (streaming switched off); enqueue it to run. */
  Call complete(Replica replica, byte[] body, String requestId) {
    return clientFor(replica)
        .newCall(
            request(replica, "/v1/chat/completions", requestId)
                .post(RequestBody.create(body, JSON))
                .build());
  }

  /** The replica's Prometheus metrics, with the same short deadline as the readiness probe. */
  Call metrics(Replica replica) {
    return probe(replica, "/metrics");
  }

  /**
   * Readiness probe at the upstream's ready path, with a short deadline, so a hung replica cannot
   * stall health checks.
   */
  Call readiness(Replica replica) {
    return probe(replica, replica.endpoint().readyPath());
  }

  private Call probe(Replica replica, String path) {
    return clientFor(replica)
        .newBuilder()
        .callTimeout(upstreamProbeTimeoutMillis(), TimeUnit.MILLISECONDS)
        .build()
        .newCall(request(replica, path, null).get().build());
  }

  /** The shared client, pinned to the replica's address when it was found through DNS. */
  private OkHttpClient clientFor(Replica replica) {
    return replica.pinnedDns() == null
        ? client
        : client.newBuilder().dns(replica.pinnedDns()).build();
  }

  private long upstreamProbeTimeoutMillis() {
    return Math.max(1000, client.connectTimeoutMillis());
  }

  private Request.Builder request(Replica replica, String path, String requestId) {
    Request.Builder builder = new Request.Builder().url(replica.resolve(path));
    String own = replica.endpoint().token();
    String token = own != null ? own : this.token;
    if (token != null && !token.isBlank()) {
      builder.header("Authorization", "Bearer " + token);
    }
    if (requestId != null) {
      builder.header("X-Request-Id", requestId);
    }
    return builder;
  }

  @Override
  public void destroy() {
    client.dispatcher().cancelAll();
    client.dispatcher().executorService().shutdown();
    client.connectionPool().evictAll();
  }
}
