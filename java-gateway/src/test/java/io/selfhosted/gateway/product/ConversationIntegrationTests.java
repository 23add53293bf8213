package io.selfhosted.gateway.product;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.selfhosted.gateway.support.FakeModelService;
import io.selfhosted.gateway.support.FakeModelService.LiveStream;
import io.selfhosted.gateway.support.GatewayIntegrationTest;
import io.selfhosted.gateway.support.Json;
import io.selfhosted.gateway.support.SseClient;
import io.selfhosted.gateway.support.SseClient.Event;
import java.util.ArrayList;
import java.util.List;
import okhttp3.Response;
import org.junit.jupiter.api.Test;

/** The browser's product API: conversations, resumable streams, cancel, persistence. */
class ConversationIntegrationTests extends GatewayIntegrationTest {

  private String newConversation() throws Exception {
    try (Response response = post("/api/conversations", "{}")) {
      assertThat(response.code()).isEqualTo(201);
      return Json.parse(response.body().string()).get("id").asText();
    }
  }

  private JsonNode ask(String conversationId, String query) throws Exception {
    try (Response response =
        post(
            "/api/conversations/" + conversationId + "/messages",
            "{\"model\":\"demo-model\",\"query\":" + Json.quote(query) + "}")) {
      assertThat(response.code()).isEqualTo(202);
      return Json.parse(response.body().string());
    }
  }

  private SseClient open(String streamUrl, String lastEventId) throws Exception {
    var request = request(streamUrl).header("Accept", "text/event-stream");
    if (lastEventId != null) {
      request.header("Last-Event-ID", lastEventId);
    }
    return openStream(request.get().build());
  }

  private static String text(List<Event> events) {
    StringBuilder text = new StringBuilder();
    for (Event e : events) {
      if ("message".equals(e.event())) {
        text.append(Json.parse(e.data()).get("text").asText());
      }
    }
    return text.toString();
  }

  /** The messages of the {@code n}th upstream request, as "role:content". */
  private static List<String> sentTurns(int n) {
    JsonNode sent = Json.parse(UPSTREAM.chatRequests().get(n).getBody().utf8()).get("messages");
    List<String> turns = new ArrayList<>();
    sent.forEach(m -> turns.add(m.get("role").asText() + ":" + m.get("content").asText()));
    return turns;
  }

  private JsonNode messages(String conversationId) throws Exception {
    return body(get("/api/conversations/" + conversationId + "/messages")).get("data");
  }

  @Test
  void streamsAnAnswerWithEventIdsAndStoresItComplete() throws Exception {
    String conversation = newConversation();
    JsonNode turn = ask(conversation, "hello");
    String messageId = turn.get("messageId").asText();
    assertThat(turn.get("streamUrl").asText()).isEqualTo("/api/streams/" + messageId);

    List<Event> events;
    try (SseClient stream = open(turn.get("streamUrl").asText(), null)) {
      events = stream.rest();
    }

    assertThat(events).extracting(Event::id).containsExactly("1", "2", "3", "4", "5");
    assertThat(text(events)).isEqualTo("Hello, world!");
    assertThat(Json.parse(events.get(0).data()).get("message_id").asText()).isEqualTo(messageId);
    Event finish = events.get(4);
    assertThat(finish.event()).isEqualTo("finish");
    JsonNode data = Json.parse(finish.data());
    assertThat(data.get("finish_reason").asText()).isEqualTo("stop");
    assertThat(data.at("/usage/completion_tokens").asInt()).isEqualTo(4);
    assertThat(data.get("degraded").asBoolean()).isFalse();

    JsonNode stored = messages(conversation);
    assertThat(stored).hasSize(2);
    assertThat(stored.get(0).get("role").asText()).isEqualTo("user");
    assertThat(stored.get(0).get("content").asText()).isEqualTo("hello");
    assertThat(stored.get(1).get("content").asText()).isEqualTo("Hello, world!");
    assertThat(stored.get(1).get("status").asText()).isEqualTo("complete");

    JsonNode list = body(get("/api/conversations")).get("data");
    assertThat(list.findValuesAsText("id")).contains(conversation);
  }

  @Test
  void sendsEarlierTurnsUpstreamAsHistory() throws Exception {
    String conversation = newConversation();
    try (SseClient stream =
        open(ask(conversation, "first question").get("streamUrl").asText(), null)) {
      stream.rest();
    }
    try (SseClient stream =
        open(ask(conversation, "second question").get("streamUrl").asText(), null)) {
      stream.rest();
    }

    assertThat(sentTurns(1))
        .containsExactly(
            "system:你是一个乐于助人的人工智能助手。",
            "user:first question",
            "assistant:Hello, world!",
            "user:second question");
  }

  @Test
  void regenerateReplacesTheLastAnswerAndKeepsTheOldOneOutOfTheContext() throws Exception {
    String conversation = newConversation();
    for (String question : List.of("first question", "second question")) {
      try (SseClient stream = open(ask(conversation, question).get("streamUrl").asText(), null)) {
        stream.rest();
      }
    }
    UPSTREAM.enqueue(FakeModelService.stream("another", " answer"));
    JsonNode again;
    try (Response response =
        post(
            "/api/conversations/" + conversation + "/messages",
            "{\"model\":\"demo-model\",\"regenerate\":true}")) {
      assertThat(response.code()).isEqualTo(202);
      again = Json.parse(response.body().string());
    }
    try (SseClient stream = open(again.get("streamUrl").asText(), null)) {
      assertThat(text(stream.rest())).isEqualTo("another answer");
    }

    assertThat(sentTurns(2))
        .containsExactly(
            "system:你是一个乐于助人的人工智能助手。",
            "user:first question",
            "assistant:Hello, world!",
            "user:second question");
    List<String> stored = new ArrayList<>();
    messages(conversation).forEach(m -> stored.add(m.get("content").asText()));
    assertThat(stored)
        .containsExactly("first question", "Hello, world!", "second question", "another answer");
  }

  @Test
  void regenerateNeedsAFinishedAnswerAndNoQuery() throws Exception {
    String conversation = newConversation();
    String regenerate = "{\"model\":\"demo-model\",\"regenerate\":true}";
    try (Response response = post("/api/conversations/" + conversation + "/messages", regenerate)) {
      assertThat(response.code()).isEqualTo(409);
      assertThat(Json.parse(response.body().string()).at("/error/code").asText())
          .isEqualTo("nothing_to_regenerate");
    }
    LiveStream live = new LiveStream();
    UPSTREAM.enqueue(live);
    ask(conversation, "hi");
    live.awaitStarted();
    try (Response response = post("/api/conversations/" + conversation + "/messages", regenerate)) {
      assertThat(response.code()).isEqualTo(409);
      assertThat(Json.parse(response.body().string()).at("/error/code").asText())
          .isEqualTo("answer_in_progress");
    }
    live.finish();
    for (String bad :
        List.of(
            "{\"model\":\"demo-model\",\"regenerate\":true,\"query\":\"x\"}",
            "{\"model\":\"demo-model\",\"regenerate\":\"yes\"}")) {
      try (Response response = post("/api/conversations/" + conversation + "/messages", bad)) {
        assertThat(response.code()).as(bad).isEqualTo(400);
      }
    }
  }

  @Test
  void aBadTurnNamesItsFieldAndStoresNothing() throws Exception {
    String conversation = newConversation();
    record Case(String json, String param) {}
    for (Case c :
        List.of(
            new Case("{\"query\":\"hi\"}", "model"),
            new Case("{\"model\":\"demo-model\"}", "query"),
            new Case("{\"model\":\"demo-model\",\"query\":\"  \"}", "query"),
            new Case("{\"model\":\"demo-model\",\"query\":7}", "query"),
            new Case("{\"model\":\"demo-model\",\"regenerate\":false}", "query"),
            new Case("{\"model\":\"demo-model\",\"regenerate\":1}", "regenerate"),
            new Case("{\"model\":\"demo-model\",\"regenerate\":true,\"query\":\"x\"}", "query"))) {
      try (Response response = post("/api/conversations/" + conversation + "/messages", c.json())) {
        assertThat(response.code()).as(c.json()).isEqualTo(400);
        assertThat(Json.parse(response.body().string()).at("/error/param").asText())
            .as(c.json())
            .isEqualTo(c.param());
      }
    }
    assertThat(body(get("/api/conversations/" + conversation + "/messages")).get("data")).isEmpty();
    assertThat(UPSTREAM.chatRequestCount()).isZero();
  }

  @Test
  void anUnknownModelLeavesNoConversationBehind() throws Exception {
    int before = body(get("/api/conversations")).get("data").size();
    try (Response response = post("/api/chat/messages", "{\"model\":\"gpt-9\",\"query\":\"hi\"}")) {
      assertThat(response.code()).isEqualTo(404);
    }
    assertThat(body(get("/api/conversations")).get("data")).hasSize(before);
  }

  @Test
  void aReconnectWithLastEventIdResumesExactly() throws Exception {
    LiveStream live = new LiveStream();
    UPSTREAM.enqueue(live);
    String conversation = newConversation();
    JsonNode turn = ask(conversation, "count");
    String streamUrl = turn.get("streamUrl").asText();

    List<Event> seen = new ArrayList<>();
    SseClient first = open(streamUrl, null);
    for (String word : List.of("one", " two", " three")) {
      live.token(word);
      seen.add(first.next());
    }
    first.close();

    // Generation goes on while the browser is away.
    live.token(" four").token(" five");
    await().until(() -> messages(conversation).get(1).get("content").asText().endsWith(" five"));

    try (SseClient second = open(streamUrl, seen.get(seen.size() - 1).id())) {
      seen.add(second.next());
      seen.add(second.next());
      live.token(" six");
      live.finish();
      seen.addAll(second.rest());
    }

    assertThat(seen).extracting(Event::id).containsExactly("1", "2", "3", "4", "5", "6", "7");
    assertThat(text(seen)).isEqualTo("one two three four five six");
    assertThat(seen.get(6).event()).isEqualTo("finish");
    assertThat(live.isClientGone()).isFalse();
  }

  @Test
  void aReconnectAfterTheEndGetsTheTailOrNoContent() throws Exception {
    String conversation = newConversation();
    String streamUrl = ask(conversation, "hi").get("streamUrl").asText();
    try (SseClient stream = open(streamUrl, null)) {
      stream.rest();
    }

    try (SseClient tail = open(streamUrl, "3")) {
      assertThat(tail.rest()).extracting(Event::id).containsExactly("4", "5");
    }
    try (Response done = get(streamUrl + "?lastEventId=5")) {
      assertThat(done.code()).as("204 stops an EventSource from reconnecting").isEqualTo(204);
    }
  }

  @Test
  void refusesALastEventIdThatIsNotANumberOrLiesBeyondTheStream() throws Exception {
    String conversation = newConversation();
    String streamUrl = ask(conversation, "hi").get("streamUrl").asText();
    try (SseClient stream = open(streamUrl, null)) {
      stream.rest();
    }

    try (SseClient notANumber = open(streamUrl, "abc")) {
      assertThat(notANumber.response().code()).isEqualTo(400);
      assertThat(notANumber.response().body().string()).contains("\"param\":\"Last-Event-ID\"");
    }
    try (SseClient beyond = open(streamUrl, "99")) {
      assertThat(beyond.response().code()).isEqualTo(400);
    }
    try (SseClient negative = open(streamUrl, "-1")) {
      assertThat(negative.response().code()).isEqualTo(400);
    }
  }

  @Test
  void answers404ForUnknownStreamsAndConversations() throws Exception {
    try (SseClient unknown = open("/api/streams/no-such-message", null)) {
      assertThat(unknown.response().code()).isEqualTo(404);
    }
    try (Response response = get("/api/conversations/nope/messages")) {
      assertThat(response.code()).isEqualTo(404);
    }
    try (Response response =
        post("/api/conversations/nope/messages", "{\"model\":\"demo-model\",\"query\":\"hi\"}")) {
      assertThat(response.code()).isEqualTo(404);
    }
    try (Response response = post("/api/streams/nope/cancel", "")) {
      assertThat(response.code()).isEqualTo(404);
    }
    assertThat(UPSTREAM.chatRequestCount()).isZero();
  }

  @Test
  void cancelStopsTheGenerationAndKeepsThePartialAnswer() throws Exception {
    LiveStream live = new LiveStream();
    UPSTREAM.enqueue(live);
    String conversation = newConversation();
    JsonNode turn = ask(conversation, "tell me a long story");
    String messageId = turn.get("messageId").asText();
    try (SseClient stream = open(turn.get("streamUrl").asText(), null)) {
      live.token("Once upon");
      assertThat(stream.next().id()).isEqualTo("1");

      JsonNode cancelled = body(post("/api/streams/" + messageId + "/cancel", ""));
      assertThat(cancelled.get("status").asText()).isEqualTo("cancelled");

      List<Event> rest = stream.rest();
      assertThat(rest).hasSize(1);
      assertThat(rest.get(0).event()).isEqualTo("finish");
      assertThat(Json.parse(rest.get(0).data()).get("finish_reason").asText())
          .isEqualTo("cancelled");
    }
    assertThat(live.awaitClientGone()).isTrue();

    JsonNode stored = messages(conversation).get(1);
    assertThat(stored.get("status").asText()).isEqualTo("cancelled");
    assertThat(stored.get("content").asText()).isEqualTo("Once upon");

    JsonNode again = body(post("/api/streams/" + messageId + "/cancel", ""));
    assertThat(again.get("status").asText()).as("cancel is idempotent").isEqualTo("cancelled");
  }

  @Test
  void cancellingAFinishedStreamChangesNothing() throws Exception {
    String conversation = newConversation();
    JsonNode turn = ask(conversation, "hi");
    try (SseClient stream = open(turn.get("streamUrl").asText(), null)) {
      stream.rest();
    }

    JsonNode result = body(post("/api/streams/" + turn.get("messageId").asText() + "/cancel", ""));

    assertThat(result.get("status").asText()).isEqualTo("complete");
    assertThat(messages(conversation).get(1).get("content").asText()).isEqualTo("Hello, world!");
  }

  @Test
  void anAbandonedStreamIsCancelledAfterTheGracePeriod() throws Exception {
    LiveStream live = new LiveStream();
    UPSTREAM.enqueue(live);
    String conversation = newConversation();
    JsonNode turn = ask(conversation, "hi");
    SseClient stream = open(turn.get("streamUrl").asText(), null);
    live.token("still");
    stream.next();
    stream.close();

    live.token(" here");
    await().until(() -> messages(conversation).get(1).get("content").asText().equals("still here"));

    assertThat(live.awaitClientGone())
        .as("cancelled upstream once the grace period ran out")
        .isTrue();
    await().until(() -> messages(conversation).get(1).get("status").asText().equals("cancelled"));
    assertThat(messages(conversation).get(1).get("content").asText()).isEqualTo("still here");
  }

  @Test
  void anUpstreamFailureBecomesAnErrorEventAndIsStored() throws Exception {
    LiveStream live = new LiveStream();
    UPSTREAM.enqueue(live);
    live.token("half an ans").breakOff();
    String conversation = newConversation();
    JsonNode turn = ask(conversation, "hi");

    List<Event> events;
    try (SseClient stream = open(turn.get("streamUrl").asText(), null)) {
      events = stream.rest();
    }

    assertThat(events).extracting(Event::event).containsExactly("message", "error");
    JsonNode error = Json.parse(events.get(1).data());
    assertThat(error.get("message_id").asText()).isEqualTo(turn.get("messageId").asText());
    assertThat(error.at("/error/code").asText()).isEqualTo("upstream_unavailable");
    JsonNode stored = messages(conversation).get(1);
    assertThat(stored.get("status").asText()).isEqualTo("failed");
    assertThat(stored.get("content").asText()).isEqualTo("half an ans");
  }

  @Test
  void anUpstreamRefusalBeforeTheFirstTokenIsAnErrorEvent() throws Exception {
    UPSTREAM.enqueue(
        FakeModelService.error(
            400, "invalid_request_error", "context_length_exceeded", "prompt is too long"));
    JsonNode turn = ask(newConversation(), "hi");

    try (SseClient stream = open(turn.get("streamUrl").asText(), null)) {
      List<Event> events = stream.rest();
      assertThat(events).extracting(Event::event).containsExactly("error");
      assertThat(Json.parse(events.get(0).data()).at("/error/message").asText())
          .isEqualTo("prompt is too long");
    }
  }

  @Test
  void theFinishEventSaysWhenItsUsageIsTheGatewaysEstimate() throws Exception {
    UPSTREAM.enqueue(
        FakeModelService.sse(
            "data: "
                + FakeModelService.chunk("Hi", null)
                + "\n\ndata: "
                + FakeModelService.chunk(" there", "stop")
                + "\n\n"));
    List<Event> events;
    try (SseClient stream =
        postStream("/api/chat/messages", "{\"model\":\"demo-model\",\"query\":\"hi\"}")) {
      events = stream.rest();
    }
    assertThat(text(events)).isEqualTo("Hi there");
    Event finish = events.get(events.size() - 1);
    assertThat(finish.event()).isEqualTo("finish");
    JsonNode usage = Json.parse(finish.data()).path("usage");
    assertThat(usage.path("completion_tokens").asInt()).isPositive();
    assertThat(usage.path("estimated").asBoolean()).isTrue();

    try (SseClient stream =
        postStream("/api/chat/messages", "{\"model\":\"demo-model\",\"query\":\"hi\"}")) {
      events = stream.rest();
    }
    JsonNode reported = Json.parse(events.get(events.size() - 1).data()).path("usage");
    assertThat(reported.has("estimated")).as("the upstream's own count").isFalse();
  }

  @Test
  void serverSideCallersGetProductEventsInTheReply() throws Exception {
    List<Event> events;
    String conversation;
    try (SseClient stream =
        postStream("/api/chat/messages", "{\"model\":\"demo-model\",\"query\":\"hi\"}")) {
      assertThat(stream.response().code()).isEqualTo(200);
      conversation = stream.response().header("X-Conversation-Id");
      events = stream.rest();
    }
    assertThat(text(events)).isEqualTo("Hello, world!");
    assertThat(events.get(events.size() - 1).event()).isEqualTo("finish");

    try (SseClient stream =
        postStream(
            "/api/chat/messages",
            "{\"conversationId\":\""
                + conversation
                + "\",\"model\":\"demo-model\",\"query\":\"again\"}")) {
      stream.rest();
    }
    assertThat(messages(conversation)).hasSize(4);
  }
}
