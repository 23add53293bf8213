package io.selfhosted.gateway.support;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.util.Map;
import okhttp3.MediaType;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okio.BufferedSource;

/**
 * Streamed chat requests as a fairness test sends them: when each started (its first token) and
 * ended, and the tokens it was served. The fake model service reads the answer's length from the
 * message ({@link #answerLength}).
 */
public final class Flood {

  private static final MediaType JSON = MediaType.get("application/json");

  private Flood() {}

  /** One request's timings (nanoTime) and usage. */
  public record Served(
      int status, long sentNanos, long firstTokenNanos, long endNanos, int prompt, int completion) {

    /** VTC's weighted service: prompt tokens plus {@code completionWeight} per generated one. */
    public double weighted(double completionWeight) {
      return prompt + completionWeight * completion;
    }
  }

  /** The message asks for an answer of {@code tokens} tokens, read by {@link #answerLength}. */
  public static String chat(int tokens) {
    return "{\"model\":\"demo-model\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
        + "\"messages\":[{\"role\":\"user\",\"content\":\"tokens:"
        + tokens
        + "\"}]}";
  }

  /** The answer length a request made by {@link #chat} asks for. */
  public static int answerLength(JsonNode body) {
    for (JsonNode message : body.path("messages")) {
      String content = message.path("content").asText("");
      if (content.startsWith("tokens:")) {
        return Integer.parseInt(content.substring("tokens:".length()));
      }
    }
    return 4;
  }

  /** Sends one streamed request and reads it to the end. */
  public static Served send(String url, String key, int tokens) throws IOException {
    long sent = System.nanoTime();
    long first = 0;
    int prompt = 0;
    int completion = 0;
    Request request =
        new Request.Builder()
            .url(url + "/v1/chat/completions")
            .header("Authorization", "Bearer " + key)
            .post(RequestBody.create(chat(tokens), JSON))
            .build();
    try (Response response = SseClient.HTTP.newCall(request).execute()) {
      if (response.code() != 200) {
        return new Served(response.code(), sent, 0, System.nanoTime(), 0, 0);
      }
      BufferedSource source = response.body().source();
      String line;
      while ((line = source.readUtf8Line()) != null) {
        if (!line.startsWith("data: ")) {
          continue;
        }
        String data = line.substring(6);
        if (data.equals("[DONE]")) {
          break;
        }
        JsonNode chunk = Json.parse(data);
        if (first == 0 && chunk.path("choices").path(0).path("delta").has("content")) {
          first = System.nanoTime();
        }
        JsonNode usage = chunk.path("usage");
        if (usage.isObject()) {
          prompt = usage.path("prompt_tokens").asInt();
          completion = usage.path("completion_tokens").asInt();
        }
      }
    }
    return new Served(200, sent, first, System.nanoTime(), prompt, completion);
  }

  /** Jain's fairness index of {@code shares}: 1 when equal, 1/n when one has everything. */
  public static double jain(Map<String, Double> shares) {
    double sum = 0;
    double squares = 0;
    for (double x : shares.values()) {
      sum += x;
      squares += x * x;
    }
    return sum * sum / (shares.size() * squares);
  }
}
