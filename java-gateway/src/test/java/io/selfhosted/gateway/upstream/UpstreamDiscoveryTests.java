package io.selfhosted.gateway.upstream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.selfhosted.gateway.support.FakeModelService;
import io.selfhosted.gateway.support.FakeModelService.LiveStream;
import io.selfhosted.gateway.support.TestProperties;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Replicas behind a host name join and leave as the name resolves differently, driven by a fake
 * resolver: two fakes on one port, at 127.0.0.1 and 127.0.0.2, are the name's two addresses.
 */
class UpstreamDiscoveryTests {

  private static final ChatCall CALL =
      new ChatCall(
          "demo-model",
          List.of(new ChatCall.Message("user", "hi")),
          16,
          0.7,
          0.9,
          List.of(),
          null,
          null);

  private final FakeModelService first = new FakeModelService(address("127.0.0.1"), 0);
  private final FakeModelService second = new FakeModelService(address("127.0.0.2"), first.port());
  private volatile List<InetAddress> answer = List.of(address("127.0.0.1"));
  private volatile boolean dnsDown;
  private final SimpleMeterRegistry meters = new SimpleMeterRegistry();
  private ModelServiceClient client;
  private UpstreamPool pool;
  private HealthChecks checks;
  private LoadMonitor load;
  private UpstreamStreams streams;
  private Breakers breakers;

  private static InetAddress address(String ip) {
    try {
      return InetAddress.getByName(ip);
    } catch (UnknownHostException e) {
      throw new IllegalStateException(e);
    }
  }

  private void start(String settings) {
    UpstreamProperties properties =
        TestProperties.upstreams(
            List.of("http://model-service.test:" + first.port() + settings), Duration.ofHours(1));
    client = new ModelServiceClient(properties);
    breakers = new Breakers(TestProperties.breakers(), meters);
    UpstreamResolver resolver =
        host -> {
          assertThat(host).isEqualTo("model-service.test");
          if (dnsDown) {
            throw new UnknownHostException(host);
          }
          return answer;
        };
    pool = new UpstreamPool(properties, resolver, breakers, meters);
    checks = new HealthChecks(pool, client, properties);
    load =
        new LoadMonitor(
            pool,
            client,
            breakers,
            new io.selfhosted.gateway.upstream.SheddingProperties(
                Duration.ofSeconds(20), Duration.ofHours(1), 0.3),
            meters);
    streams = new UpstreamStreams(pool, client, new UpstreamWire(new ObjectMapper()), breakers);
  }

  @AfterEach
  void tearDown() {
    if (pool != null) {
      checks.destroy();
      load.destroy();
      client.destroy();
    }
    first.close();
    second.close();
  }

  private List<String> names() {
    return pool.replicas().stream().map(Replica::name).toList();
  }

  private static String nameOf(int port, String ip) {
    return "http://model-service.test:" + port + " (" + ip + ")";
  }

  @Test
  void everyAddressOfTheNameIsAReplicaAndNewOnesJoinOnceReady() throws Exception {
    start("");
    int port = first.port();
    assertThat(names()).containsExactly(nameOf(port, "127.0.0.1"));
    assertThat(meters.find("gateway.upstream.up").tag("replica", nameOf(port, "127.0.0.1")).gauge())
        .isNotNull();

    second.setReady(503);
    answer = List.of(address("127.0.0.1"), address("127.0.0.2"));
    pool.refresh();
    assertThat(names()).containsExactly(nameOf(port, "127.0.0.1"), nameOf(port, "127.0.0.2"));
    Replica joined = pool.replicas().get(1);
    assertThat(joined.isHealthy()).as("a replica that joins waits for its probe").isFalse();
    assertThat(breakers.all())
        .extracting(b -> b.getName())
        .contains("replica:" + nameOf(port, "127.0.0.2"));

    second.setReady(200);
    checks.checkAll();
    await().until(joined::isHealthy);

    // Both take traffic: the first holds a stream, so the next one goes to the newcomer.
    List<LiveStream> held = first.holdEveryStream();
    Recorder one = new Recorder();
    streams.prepare(CALL, "req-1", one, false).start();
    assertThat(one.take()).isEqualTo("open:" + nameOf(port, "127.0.0.1"));
    Recorder two = new Recorder();
    streams.prepare(CALL, "req-2", two, false).start();
    assertThat(two.take()).isEqualTo("open:" + nameOf(port, "127.0.0.2"));
    assertThat(second.chatRequests().get(0).getHeaders().get("Host"))
        .as("the name stays the Host of a pinned replica")
        .isEqualTo("model-service.test:" + port);
    held.get(0).finish();
    assertThat(one.drainUntilEnd()).endsWith("complete");
    assertThat(two.drainUntilEnd()).endsWith("complete");
  }

  @Test
  void aReplicaThatLeavesFinishesItsStreamsAndTakesItsStateAlong() throws Exception {
    answer = List.of(address("127.0.0.1"), address("127.0.0.2"));
    start("");
    int port = first.port();
    await().until(() -> pool.replicas().stream().allMatch(Replica::isHealthy));
    List<LiveStream> held = second.holdEveryStream();
    first.holdEveryStream();
    Recorder onFirst = new Recorder();
    streams.prepare(CALL, "req-1", onFirst, false).start();
    onFirst.take();
    Recorder onSecond = new Recorder();
    streams.prepare(CALL, "req-2", onSecond, false).start();
    assertThat(onSecond.take()).isEqualTo("open:" + nameOf(port, "127.0.0.2"));
    assertThat(held).hasSize(1);

    answer = List.of(address("127.0.0.1"));
    pool.refresh();
    assertThat(names()).containsExactly(nameOf(port, "127.0.0.1"));
    assertThat(breakers.all())
        .extracting(b -> b.getName())
        .doesNotContain("replica:" + nameOf(port, "127.0.0.2"));
    assertThat(meters.find("gateway.upstream.up").tag("replica", nameOf(port, "127.0.0.2")).gauge())
        .isNull();
    assertThat(
            meters
                .find("resilience4j.circuitbreaker.state")
                .tag("name", "replica:" + nameOf(port, "127.0.0.2"))
                .meters())
        .isEmpty();
    assertThat(
            meters
                .find("resilience4j.circuitbreaker.state")
                .tag("name", "replica:" + nameOf(port, "127.0.0.1"))
                .meters())
        .isNotEmpty();

    held.get(0).token("still here").finish();
    assertThat(onSecond.drainUntilEnd()).containsSubsequence("text:still here", "complete");
  }

  @Test
  void aFailedLookupKeepsTheReplicasItHad() {
    answer = List.of(address("127.0.0.1"), address("127.0.0.2"));
    start("");
    dnsDown = true;
    pool.refresh();
    assertThat(pool.replicas()).hasSize(2);
    dnsDown = false;
    answer = List.of(address("127.0.0.2"));
    pool.refresh();
    assertThat(names()).containsExactly(nameOf(first.port(), "127.0.0.2"));
  }

  @Test
  void withResolveOffTheNameIsOneReplicaAsItResolvesOnConnect() {
    answer = List.of(address("127.0.0.1"), address("127.0.0.2"));
    start("#resolve=false");
    assertThat(names()).containsExactly("http://model-service.test:" + first.port());
    assertThat(pool.discovers()).isFalse();
  }

  /** Records callbacks in order. */
  static final class Recorder implements UpstreamListener {
    final BlockingQueue<String> calls = new LinkedBlockingQueue<>();

    @Override
    public void onOpen(String replica) {
      calls.add("open:" + replica);
    }

    @Override
    public void onChunk(Chunk chunk) {
      if (!chunk.text().isEmpty()) {
        calls.add("text:" + chunk.text());
      }
    }

    @Override
    public void onComplete() {
      calls.add("complete");
    }

    @Override
    public void onError(UpstreamError error, boolean afterFirstChunk) {
      calls.add("error:" + error.kind());
    }

    String take() throws InterruptedException {
      String call = calls.poll(20, TimeUnit.SECONDS);
      assertThat(call).as("expected another callback").isNotNull();
      return call;
    }

    List<String> drainUntilEnd() throws InterruptedException {
      List<String> seen = new ArrayList<>();
      while (true) {
        String call = take();
        seen.add(call);
        if (call.equals("complete") || call.startsWith("error:")) {
          assertThat(calls.poll(100, TimeUnit.MILLISECONDS)).as("nothing after the end").isNull();
          return seen;
        }
      }
    }
  }
}
