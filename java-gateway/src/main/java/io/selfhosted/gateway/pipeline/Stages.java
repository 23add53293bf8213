package io.selfhosted.gateway.pipeline;

import java.util.List;

/**
 * The pipeline's stages in the order they run, declared in one place ({@code GatewayStages} in the
 * application's root package), so that a reader sees the order instead of numbers spread over
 * packages.
 */
public record Stages(List<Stage> inOrder) {

  public Stages {
    inOrder = List.copyOf(inOrder);
  }
}
