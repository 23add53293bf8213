package io.selfhosted.gateway.stream;

import static org.assertj.core.api.Assertions.assertThat;

import io.selfhosted.gateway.sse.EventSink;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** The resume buffer: replay plus live events are every event exactly once, in order. */
class GenerationStreamTests {

  /** A client connection that records frames; it can be made to fail like a closed socket. */
  static final class RecordingSink implements EventSink {
    final List<String> frames = new CopyOnWriteArrayList<>();
    volatile boolean broken;
    volatile boolean closed;

    @Override
    public boolean send(String frame) {
      if (broken) {
        return false;
      }
      frames.add(frame);
      return true;
    }

    @Override
    public void close() {
      closed = true;
    }

    List<String> ids() {
      List<String> ids = new ArrayList<>();
      for (String frame : frames) {
        ids.add(frame.substring(4, frame.indexOf('\n')));
      }
      return ids;
    }
  }

  private final AtomicInteger graceStarted = new AtomicInteger();
  private final List<Runnable> pendingGrace = new ArrayList<>();

  private GenerationStream stream() {
    return new GenerationStream(
        "m1",
        "c1",
        "k1",
        action -> {
          graceStarted.incrementAndGet();
          pendingGrace.add(action);
          return null;
        });
  }

  @Test
  void framesCarryIdEventAndData() {
    GenerationStream stream = stream();
    RecordingSink sink = new RecordingSink();
    stream.attach(0, sink);

    stream.appendText("hi", "{\"text\":\"hi\"}");

    assertThat(sink.frames).containsExactly("id: 1\nevent: message\ndata: {\"text\":\"hi\"}\n\n");
  }

  @Test
  void aReconnectWhileEventsKeepComingGetsEveryEventOnce() throws Exception {
    GenerationStream stream = stream();
    RecordingSink first = new RecordingSink();
    stream.attach(0, first);
    Thread producer =
        new Thread(
            () -> {
              for (int i = 1; i <= 2000; i++) {
                stream.appendText("x", "{}");
              }
              if (stream.beginEnd()) {
                stream.end("finish", "{}");
              }
            });
    producer.start();
    while (first.frames.size() < 500) {
      Thread.onSpinWait();
    }
    first.broken = true;
    stream.detach(first);
    String lastSeen = first.ids().get(first.ids().size() - 1);

    RecordingSink second = new RecordingSink();
    stream.attach(Long.parseLong(lastSeen), second);
    producer.join();

    List<String> all = new ArrayList<>(first.ids());
    all.addAll(second.ids());
    List<String> expected = new ArrayList<>();
    for (int i = 1; i <= 2001; i++) {
      expected.add(Integer.toString(i));
    }
    assertThat(all).isEqualTo(expected);
    assertThat(second.closed).isTrue();
    assertThat(stream.text()).hasSize(2000);
  }

  @Test
  void startsTheGracePeriodOnlyWhenTheLastClientLeaves() {
    GenerationStream stream = stream();
    RecordingSink a = new RecordingSink();
    RecordingSink b = new RecordingSink();
    stream.attach(0, a);
    stream.attach(0, b);

    stream.detach(a);
    assertThat(graceStarted).hasValue(0);
    b.broken = true;
    stream.appendText("x", "{}");

    assertThat(graceStarted).hasValue(1);
  }

  @Test
  void answersResumeChecks() {
    GenerationStream stream = stream();
    stream.appendText("a", "{}");
    stream.appendText("b", "{}");

    assertThat(stream.checkResume(0)).isEqualTo(GenerationStream.Resume.OK);
    assertThat(stream.checkResume(2)).isEqualTo(GenerationStream.Resume.OK);
    assertThat(stream.checkResume(3)).isEqualTo(GenerationStream.Resume.BEYOND_STREAM);
    assertThat(stream.checkResume(-1)).isEqualTo(GenerationStream.Resume.BEYOND_STREAM);
    stream.beginEnd();
    stream.end("finish", "{}");
    assertThat(stream.checkResume(3)).isEqualTo(GenerationStream.Resume.NOTHING_LEFT);
  }

  @Test
  void ignoresTextThatArrivesAfterTheEndWasClaimed() {
    GenerationStream stream = stream();
    stream.appendText("kept", "{}");
    assertThat(stream.beginEnd()).isTrue();
    assertThat(stream.beginEnd()).as("only one ending").isFalse();

    stream.appendText("late", "{}");
    stream.end("finish", "{}");

    assertThat(stream.text()).isEqualTo("kept");
    assertThat(stream.eventCount()).isEqualTo(2);
  }
}
