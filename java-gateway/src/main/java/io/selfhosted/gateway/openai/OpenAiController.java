package io.selfhosted.gateway.openai;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.selfhosted.gateway.auth.Caller;
import io.selfhosted.gateway.models.ChatCalls;
import io.selfhosted.gateway.models.ModelProfiles;
import io.selfhosted.gateway.models.ModelProperties.ModelProfile;
import io.selfhosted.gateway.openai.OpenAiRelay.Completion;
import io.swagger.v3.oas.annotations.Operation;
import io.swagger.v3.oas.annotations.tags.Tag;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import jakarta.validation.Valid;
import org.springframework.security.core.annotation.AuthenticationPrincipal;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RestController;

/** The OpenAI-compatible API for business apps: chat completions and the model list. */
@RestController
@Tag(name = "openai")
public class OpenAiController {

  private final ModelProfiles profiles;
  private final OpenAiRelay openAi;
  private final ObjectMapper mapper;

  OpenAiController(ModelProfiles profiles, OpenAiRelay openAi, ObjectMapper mapper) {
    this.profiles = profiles;
    this.openAi = openAi;
    this.mapper = mapper;
  }

  @GetMapping("/v1/models")
  @Operation(summary = "The models this caller may use")
  public ObjectNode listModels(@AuthenticationPrincipal Caller caller) {
    ObjectNode list = mapper.createObjectNode().put("object", "list");
    ArrayNode data = list.putArray("data");
    for (ModelProfile profile : profiles.all()) {
      if (!caller.mayUse(profile.name())) {
        continue;
      }
      data.addObject()
          .put("id", profile.name())
          .put("object", "model")
          .put("created", 0)
          .put("owned_by", "self-hosted");
    }
    return list;
  }

  @PostMapping("/v1/chat/completions")
  @Operation(
      summary = "OpenAI chat completions",
      description =
          "Streamed as Server-Sent Events with stream: true (data: [DONE] last), otherwise one"
              + " chat.completion object. Rate-limit state is in the x-ratelimit-* headers.")
  public void createChatCompletion(
      @AuthenticationPrincipal Caller caller,
      @Valid @RequestBody ChatCompletionRequest body,
      HttpServletRequest request,
      HttpServletResponse response) {
    ModelProfile profile = profiles.resolve(body.model());
    Completion completion =
        new Completion(
            profile,
            body.streamed(),
            body.includeUsage(),
            ChatCalls.of(profile, body.chatMessages(), body.sampling(), body.replyOptions()));
    // The answer is written on the servlet async context as it arrives.
    if (completion.stream()) {
      openAi.stream(caller, completion, request, response);
    } else {
      openAi.reply(caller, completion, request, response);
    }
  }
}
