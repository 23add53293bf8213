package io.selfhosted.gateway.support;

import java.io.Closeable;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import okhttp3.OkHttpClient;
import okhttp3.Response;
import okio.BufferedSource;

/** Reads a text/event-stream response frame by frame, as a browser's EventSource would. */
public final class SseClient implements Closeable {

  public static final OkHttpClient HTTP =
      new OkHttpClient.Builder()
          .readTimeout(30, TimeUnit.SECONDS)
          .retryOnConnectionFailure(false)
          .build();

  /** One event; {@code id} and {@code event} are null when the frame had none. */
  public record Event(String id, String event, String data) {}

  private final Response response;
  private final BufferedSource source;
  private final List<String> comments = new ArrayList<>();

  public SseClient(Response response) {
    this.response = response;
    this.source = response.body().source();
  }

  public Response response() {
    return response;
  }

  public List<String> comments() {
    return comments;
  }

  /** The next event, or null at the end of the stream. */
  public Event next() throws IOException {
    String id = null;
    String event = null;
    StringBuilder data = null;
    while (true) {
      String line = source.readUtf8Line();
      if (line == null) {
        return null;
      }
      if (line.isEmpty()) {
        if (data != null) {
          return new Event(id, event, data.toString());
        }
        continue;
      }
      if (line.startsWith(":")) {
        comments.add(line);
        continue;
      }
      int colon = line.indexOf(':');
      String field = colon < 0 ? line : line.substring(0, colon);
      String value = colon < 0 ? "" : line.substring(colon + 1);
      if (value.startsWith(" ")) {
        value = value.substring(1);
      }
      switch (field) {
        case "id" -> id = value;
        case "event" -> event = value;
        case "data" ->
            data = data == null ? new StringBuilder(value) : data.append('\n').append(value);
        default -> {}
      }
    }
  }

  /** Reads until the next comment line (a heartbeat) and returns it. */
  public String nextComment() throws IOException {
    while (true) {
      String line = source.readUtf8Line();
      if (line == null) {
        return null;
      }
      if (line.startsWith(":")) {
        return line;
      }
    }
  }

  /** Every remaining event up to the end of the stream. */
  public List<Event> rest() throws IOException {
    List<Event> events = new ArrayList<>();
    for (Event e = next(); e != null; e = next()) {
      events.add(e);
    }
    return events;
  }

  /** Hangs up, as a browser tab being closed would. */
  @Override
  public void close() {
    response.close();
  }
}
