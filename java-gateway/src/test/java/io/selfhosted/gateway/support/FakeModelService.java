package io.selfhosted.gateway.support;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.Closeable;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import mockwebserver3.Dispatcher;
import mockwebserver3.MockResponse;
import mockwebserver3.MockResponseBody;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import okio.BufferedSink;

/**
 * A model service on MockWebServer speaking the upstream protocol: /ready, /v1/models and
 * /v1/chat/completions, with scripted answers per request and live streams driven by the test.
 */
public final class FakeModelService implements Closeable {

  private final MockWebServer server = new MockWebServer();
  private final BlockingQueue<Function<RecordedRequest, MockResponse>> plans =
      new LinkedBlockingQueue<>();
  private final List<RecordedRequest> chatRequests = new CopyOnWriteArrayList<>();
  private volatile Function<RecordedRequest, MockResponse> fallback = FakeModelService::hello;
  private volatile int readyStatus = 200;
  private volatile String readyPath = "/ready";
  private volatile java.util.function.Supplier<String> metrics = null;

  public FakeModelService() {
    this(0);
  }

  /** A fake on a chosen port (0: any free one), so a test can bring one back where it was. */
  public FakeModelService(int port) {
    this(null, port);
  }

  /**
   * A fake on a free port below the kernel's ephemeral range, for a test that kills it and brings
   * it back on the same port: a port from the ephemeral range may meanwhile become the local port
   * of one of the test's outgoing connections (to PostgreSQL, Redis, another fake), and the fake
   * could not bind it again.
   */
  public static FakeModelService restartable() {
    java.util.Random random = new java.util.Random();
    for (int attempt = 0; ; attempt++) {
      int port = 20_000 + random.nextInt(12_000); // under 32768, where Linux's range starts
      try {
        return new FakeModelService(port);
      } catch (UncheckedIOException taken) {
        if (attempt == 50) {
          throw taken;
        }
      }
    }
  }

  /**
   * A fake on one address (null: localhost), so that several fakes on one port stand for the
   * replicas a host name resolves to.
   */
  public FakeModelService(java.net.InetAddress address, int port) {
    server.setDispatcher(
        new Dispatcher() {
          @Override
          public MockResponse dispatch(RecordedRequest request) {
            String path = request.getUrl().encodedPath();
            if (path.equals(readyPath)) {
              return new MockResponse.Builder().code(readyStatus).body("{}").build();
            }
            if (path.equals("/metrics") && metrics != null) {
              return new MockResponse.Builder().body(metrics.get()).build();
            }
            if (path.equals("/v1/chat/completions")) {
              chatRequests.add(request);
              Function<RecordedRequest, MockResponse> plan = plans.poll();
              return (plan == null ? fallback : plan).apply(request);
            }
            return new MockResponse.Builder().code(404).body("{}").build();
          }
        });
    try {
      if (address == null) {
        server.start(port);
      } else {
        server.start(address, port);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Forgets scripted answers and recorded requests between tests sharing one service. */
  public void reset() {
    plans.clear();
    chatRequests.clear();
    fallback = FakeModelService::hello;
    readyStatus = 200;
    readyPath = "/ready";
    metrics = null;
  }

  public String url() {
    String url = server.url("/").toString();
    return url.substring(0, url.length() - 1);
  }

  /** The next chat request gets this answer; later ones fall back to the default. */
  public void enqueue(MockResponse response) {
    plans.add(r -> response);
  }

  public void enqueue(LiveStream stream) {
    plans.add(r -> stream.response());
  }

  /** From now on every chat request gets a new live stream, held open until the test ends it. */
  public List<LiveStream> holdEveryStream() {
    List<LiveStream> held = new CopyOnWriteArrayList<>();
    setDefault(
        r -> {
          LiveStream live = new LiveStream();
          held.add(live);
          return live.response();
        });
    return held;
  }

  public void setDefault(Function<RecordedRequest, MockResponse> answer) {
    this.fallback = answer;
  }

  /** What /metrics answers (Prometheus text); null: 404, as an engine without metrics. */
  public void setMetrics(java.util.function.Supplier<String> text) {
    this.metrics = text;
  }

  public int port() {
    return server.getPort();
  }

  /** Where readiness is answered, as another engine's health endpoint would be. */
  public void setReadyPath(String path) {
    this.readyPath = path;
  }

  public void setReady(int status) {
    this.readyStatus = status;
  }

  public List<RecordedRequest> chatRequests() {
    return chatRequests;
  }

  public int chatRequestCount() {
    return chatRequests.size();
  }

  @Override
  public void close() {
    server.close();
  }

  // ---- canned answers --------------------------------------------------------------------------

  public static String chunk(String content, String finishReason) {
    return chunk(content, finishReason, null);
  }

  /** A chunk that carries {@code logprobs} ({@link #logprobs}) in its choice when not null. */
  public static String chunk(String content, String finishReason, String logprobs) {
    String delta = content == null ? "{}" : "{\"content\":" + Json.quote(content) + "}";
    return "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
        + "\"model\":\"demo-model\",\"choices\":[{\"index\":0,\"delta\":"
        + delta
        + (logprobs == null ? "" : ",\"logprobs\":" + logprobs)
        + ",\"finish_reason\":"
        + (finishReason == null ? "null" : Json.quote(finishReason))
        + "}]}";
  }

  /**
   * A choice's logprobs object as OpenAI sends it: one entry per token, the token being the text it
   * stands for, with {@code top} alternatives each (made-up numbers, the same every time).
   */
  public static String logprobs(int top, String... tokens) {
    StringBuilder content = new StringBuilder("{\"content\":[");
    for (int i = 0; i < tokens.length; i++) {
      content.append(i == 0 ? "" : ",").append(logprobEntry(tokens[i], top));
    }
    return content.append("],\"refusal\":null}").toString();
  }

  private static String logprobEntry(String token, int top) {
    StringBuilder alternatives = new StringBuilder("[");
    for (int i = 0; i < top; i++) {
      String alternative = i == 0 ? token : token + "#" + i;
      alternatives
          .append(i == 0 ? "" : ",")
          .append("{\"token\":")
          .append(Json.quote(alternative))
          .append(",\"logprob\":")
          .append(-0.25 * (i + 1))
          .append(",\"bytes\":")
          .append(bytes(alternative))
          .append("}");
    }
    return "{\"token\":"
        + Json.quote(token)
        + ",\"logprob\":-0.25,\"bytes\":"
        + bytes(token)
        + ",\"top_logprobs\":"
        + alternatives
        + "]}";
  }

  private static String bytes(String token) {
    StringBuilder list = new StringBuilder("[");
    byte[] utf8 = token.getBytes(java.nio.charset.StandardCharsets.UTF_8);
    for (int i = 0; i < utf8.length; i++) {
      list.append(i == 0 ? "" : ",").append(utf8[i] & 0xff);
    }
    return list.append("]").toString();
  }

  /**
   * The answer {@code deltas} to {@code request} as the real service gives it: streamed or whole as
   * asked, with each delta's logprobs entry (one token per delta) when it asks for logprobs.
   */
  public static MockResponse answer(RecordedRequest request, String... deltas) {
    JsonNode asked = Json.parse(request.getBody().utf8());
    boolean logprobs = asked.path("logprobs").asBoolean(false);
    int top = asked.path("top_logprobs").asInt(0);
    if (!asked.path("stream").asBoolean(false)) {
      String content = String.join("", deltas);
      return logprobs ? whole(content, logprobs(top, deltas)) : whole(content);
    }
    StringBuilder body = new StringBuilder(": ping\n\n");
    for (String delta : deltas) {
      String entries = logprobs ? logprobs(top, delta) : null;
      body.append("data: ").append(chunk(delta, null, entries)).append("\n\n");
    }
    body.append("data: ").append(chunk(null, "stop")).append("\n\n");
    body.append("data: ").append(usageChunk(7, deltas.length)).append("\n\n");
    body.append("data: [DONE]\n\n");
    return sse(body.toString());
  }

  public static String usageChunk(int prompt, int completion) {
    return "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
        + "\"model\":\"demo-model\",\"choices\":[],\"usage\":{\"prompt_tokens\":"
        + prompt
        + ",\"completion_tokens\":"
        + completion
        + ",\"total_tokens\":"
        + (prompt + completion)
        + "}}";
  }

  /** A complete, well-formed stream of the given deltas, a usage chunk and [DONE]. */
  public static MockResponse stream(String... deltas) {
    StringBuilder body = new StringBuilder(": ping\n\n");
    for (String delta : deltas) {
      body.append("data: ").append(chunk(delta, null)).append("\n\n");
    }
    body.append("data: ").append(chunk(null, "stop")).append("\n\n");
    body.append("data: ").append(usageChunk(7, deltas.length)).append("\n\n");
    body.append("data: [DONE]\n\n");
    return sse(body.toString());
  }

  /** "Hello, world!": streamed, or as one whole reply when the request asks for no stream. */
  private static MockResponse hello(RecordedRequest request) {
    return answer(request, "Hello", ",", " world", "!");
  }

  /** A non-streamed chat.completion with the given content. */
  public static MockResponse whole(String content) {
    return whole(content, null);
  }

  /** A non-streamed chat.completion whose choice carries {@code logprobs} when not null. */
  public static MockResponse whole(String content, String logprobs) {
    return new MockResponse.Builder()
        .addHeader("Content-Type", "application/json")
        .body(
            "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1,"
                + "\"model\":\"demo-model\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                + "\"assistant\",\"content\":"
                + Json.quote(content)
                + "}"
                + (logprobs == null ? "" : ",\"logprobs\":" + logprobs)
                + ",\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":7,"
                + "\"completion_tokens\":4,\"total_tokens\":11}}")
        .build();
  }

  /** A chunk of choice {@code choice} with the given delta object (JSON) and finish reason. */
  public static String choiceChunk(int choice, String delta, String finishReason) {
    return "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
        + "\"model\":\"demo-model\",\"choices\":[{\"index\":"
        + choice
        + ",\"delta\":"
        + delta
        + ",\"finish_reason\":"
        + (finishReason == null ? "null" : Json.quote(finishReason))
        + "}]}";
  }

  /**
   * A delta with one tool-call fragment, as OpenAI streams them: the first of a call ({@code id}
   * not null) carries the id, type and function name with empty arguments, the others only a piece
   * of the arguments.
   */
  public static String toolCallDelta(int index, String id, String name, String arguments) {
    String function =
        id == null
            ? "{\"arguments\":" + Json.quote(arguments) + "}"
            : "{\"name\":" + Json.quote(name) + ",\"arguments\":" + Json.quote(arguments) + "}";
    return "{"
        + (id == null ? "" : "\"role\":\"assistant\",")
        + "\"tool_calls\":[{\"index\":"
        + index
        + (id == null ? "" : ",\"id\":" + Json.quote(id) + ",\"type\":\"function\"")
        + ",\"function\":"
        + function
        + "}]}";
  }

  /**
   * A reply that calls {@code name} with arguments streamed in {@code pieces}, as our model service
   * gives it: streamed (first fragment, argument pieces, finish reason tool_calls, usage, [DONE])
   * or whole ({@code message.tool_calls}, content null) as the request asks.
   */
  public static MockResponse toolCall(
      RecordedRequest request, String id, String name, String... pieces) {
    JsonNode asked = Json.parse(request.getBody().utf8());
    if (!asked.path("stream").asBoolean(false)) {
      return wholeJson(
          "[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,"
              + "\"tool_calls\":[{\"id\":"
              + Json.quote(id)
              + ",\"type\":\"function\",\"function\":{\"name\":"
              + Json.quote(name)
              + ",\"arguments\":"
              + Json.quote(String.join("", pieces))
              + "}}]},\"finish_reason\":\"tool_calls\"}]",
          7,
          pieces.length);
    }
    StringBuilder body = new StringBuilder(": ping\n\n");
    body.append(data(choiceChunk(0, toolCallDelta(0, id, name, ""), null)));
    for (String piece : pieces) {
      body.append(data(choiceChunk(0, toolCallDelta(0, null, null, piece), null)));
    }
    body.append(data(choiceChunk(0, "{}", "tool_calls")));
    body.append(data(usageChunk(7, pieces.length)));
    body.append("data: [DONE]\n\n");
    return sse(body.toString());
  }

  /**
   * {@code n} choices, choice {@code i} saying {@code texts[i]} one character a token: streamed
   * interleaved, each choice with its own finish chunk, or whole; usage counts every choice.
   */
  public static MockResponse choices(RecordedRequest request, String... texts) {
    JsonNode asked = Json.parse(request.getBody().utf8());
    int completion = 0;
    for (String text : texts) {
      completion += text.length();
    }
    if (!asked.path("stream").asBoolean(false)) {
      StringBuilder choices = new StringBuilder("[");
      for (int i = 0; i < texts.length; i++) {
        choices
            .append(i == 0 ? "" : ",")
            .append("{\"index\":")
            .append(i)
            .append(",\"message\":{\"role\":\"assistant\",\"content\":")
            .append(Json.quote(texts[i]))
            .append("},\"finish_reason\":\"stop\"}");
      }
      return wholeJson(choices.append("]").toString(), 7, completion);
    }
    StringBuilder body = new StringBuilder(": ping\n\n");
    int longest = 0;
    for (String text : texts) {
      longest = Math.max(longest, text.length());
    }
    for (int at = 0; at < longest; at++) {
      for (int i = 0; i < texts.length; i++) {
        if (at < texts[i].length()) {
          String token = texts[i].substring(at, at + 1);
          body.append(data(choiceChunk(i, "{\"content\":" + Json.quote(token) + "}", null)));
        }
      }
    }
    for (int i = 0; i < texts.length; i++) {
      body.append(data(choiceChunk(i, "{}", "stop")));
    }
    body.append(data(usageChunk(7, completion)));
    body.append("data: [DONE]\n\n");
    return sse(body.toString());
  }

  /** One SSE data event. */
  public static String data(String json) {
    return "data: " + json + "\n\n";
  }

  private static MockResponse wholeJson(String choices, int prompt, int completion) {
    return new MockResponse.Builder()
        .addHeader("Content-Type", "application/json")
        .body(
            "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1,"
                + "\"model\":\"demo-model\",\"choices\":"
                + choices
                + ",\"usage\":{\"prompt_tokens\":"
                + prompt
                + ",\"completion_tokens\":"
                + completion
                + ",\"total_tokens\":"
                + (prompt + completion)
                + "}}")
        .build();
  }

  /** A complete stream whose first byte comes only after {@code millis} (a slow first token). */
  public static MockResponse slow(long millis, String... deltas) {
    return stream(deltas).newBuilder().headersDelay(millis, TimeUnit.MILLISECONDS).build();
  }

  public static MockResponse sse(String body) {
    return new MockResponse.Builder()
        .addHeader("Content-Type", "text/event-stream")
        .body(body)
        .build();
  }

  public static MockResponse error(int status, String type, String code, String message) {
    MockResponse.Builder builder =
        new MockResponse.Builder()
            .code(status)
            .addHeader("Content-Type", "application/json")
            .body(
                "{\"error\":{\"message\":"
                    + Json.quote(message)
                    + ",\"type\":"
                    + Json.quote(type)
                    + ",\"param\":null,\"code\":"
                    + Json.quote(code)
                    + "}}");
    if (status == 503) {
      builder.addHeader("Retry-After", "3");
    }
    return builder.build();
  }

  /**
   * A stream the test drives token by token. It pings while idle, as the real service does, so a
   * gateway that hangs up is noticed without the test sending anything.
   */
  public static final class LiveStream implements MockResponseBody {
    private static final String END = "\u0000end";
    private final BlockingQueue<String> frames = new LinkedBlockingQueue<>();
    private final CountDownLatch started = new CountDownLatch(1);
    private final CountDownLatch clientGone = new CountDownLatch(1);
    private final java.util.concurrent.atomic.AtomicInteger pings =
        new java.util.concurrent.atomic.AtomicInteger();

    public MockResponse response() {
      return new MockResponse.Builder()
          .addHeader("Content-Type", "text/event-stream")
          .body(this)
          .removeHeader("Content-Length")
          .addHeader("Transfer-Encoding", "chunked")
          .build();
    }

    @Override
    public long getContentLength() {
      return -1;
    }

    @Override
    public void writeTo(BufferedSink sink) throws IOException {
      started.countDown();
      try {
        while (true) {
          String frame = frames.poll(50, TimeUnit.MILLISECONDS);
          if (frame == null) {
            frame = ": ping\n\n";
            pings.incrementAndGet();
          }
          if (frame.equals(END)) {
            sink.writeUtf8("0\r\n");
            sink.flush();
            return;
          }
          byte[] bytes = frame.getBytes(java.nio.charset.StandardCharsets.UTF_8);
          sink.writeHexadecimalUnsignedLong(bytes.length).writeUtf8("\r\n");
          sink.write(bytes).writeUtf8("\r\n");
          sink.flush();
        }
      } catch (IOException e) {
        clientGone.countDown();
        throw e;
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IOException(e);
      }
    }

    public LiveStream token(String text) {
      frames.add("data: " + chunk(text, null) + "\n\n");
      return this;
    }

    /** A token with its logprobs entry ({@code top} alternatives), as when they are asked for. */
    public LiveStream token(String text, int top) {
      frames.add("data: " + chunk(text, null, logprobs(top, text)) + "\n\n");
      return this;
    }

    public LiveStream raw(String frame) {
      frames.add(frame);
      return this;
    }

    /** Finishes like the real service: finish reason, usage, [DONE], end of body. */
    public void finish() {
      frames.add("data: " + chunk(null, "stop") + "\n\n");
      frames.add("data: " + usageChunk(7, 3) + "\n\n");
      frames.add("data: [DONE]\n\n");
      frames.add(END);
    }

    /** Ends the body without [DONE], as a crashing model service would. */
    public void breakOff() {
      frames.add(END);
    }

    public boolean awaitStarted() throws InterruptedException {
      return started.await(10, TimeUnit.SECONDS);
    }

    /** True once the gateway has closed this upstream connection. */
    public boolean awaitClientGone() throws InterruptedException {
      return clientGone.await(20, TimeUnit.SECONDS);
    }

    /** How many keep-alive comments were sent while the test sent nothing. */
    public int pingsSent() {
      return pings.get();
    }

    public boolean isClientGone() {
      return clientGone.getCount() == 0;
    }
  }
}
