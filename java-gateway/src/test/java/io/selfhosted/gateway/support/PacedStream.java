package io.selfhosted.gateway.support;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import mockwebserver3.MockResponse;
import mockwebserver3.MockResponseBody;
import okio.BufferedSink;

/**
 * A streamed answer of {@code tokens} one-token chunks, one every {@code millisPerToken}, as a
 * model service generating at a steady pace; then the finish reason, usage and [DONE].
 */
public final class PacedStream implements MockResponseBody {

  private final int tokens;
  private final long millisPerToken;

  private PacedStream(int tokens, long millisPerToken) {
    this.tokens = tokens;
    this.millisPerToken = millisPerToken;
  }

  public static MockResponse of(int tokens, long millisPerToken) {
    return new MockResponse.Builder()
        .addHeader("Content-Type", "text/event-stream")
        .body(new PacedStream(tokens, millisPerToken))
        .removeHeader("Content-Length")
        .addHeader("Transfer-Encoding", "chunked")
        .build();
  }

  @Override
  public long getContentLength() {
    return -1;
  }

  private static void frame(BufferedSink sink, String frame) throws IOException {
    byte[] bytes = frame.getBytes(StandardCharsets.UTF_8);
    sink.writeHexadecimalUnsignedLong(bytes.length).writeUtf8("\r\n");
    sink.write(bytes).writeUtf8("\r\n");
    sink.flush();
  }

  @Override
  public void writeTo(BufferedSink sink) throws IOException {
    try {
      for (int i = 0; i < tokens; i++) {
        TimeUnit.MILLISECONDS.sleep(millisPerToken);
        frame(sink, FakeModelService.data(FakeModelService.chunk("t", null)));
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException(e);
    }
    frame(sink, FakeModelService.data(FakeModelService.chunk(null, "stop")));
    frame(sink, FakeModelService.data(FakeModelService.usageChunk(7, tokens)));
    frame(sink, "data: [DONE]\n\n");
    sink.writeUtf8("0\r\n"); // MockWebServer ends the chunked body
    sink.flush();
  }
}
