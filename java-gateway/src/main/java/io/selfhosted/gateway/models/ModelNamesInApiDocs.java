package io.selfhosted.gateway.models;

import io.swagger.v3.oas.models.OpenAPI;
import io.swagger.v3.oas.models.Operation;
import io.swagger.v3.oas.models.media.MediaType;
import io.swagger.v3.oas.models.media.Schema;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.springdoc.core.customizers.OpenApiCustomizer;
import org.springframework.stereotype.Component;

/**
 * Lists the configured model names as the enum of the {@code model} field of every request body in
 * the OpenAPI document, so that clients (and fuzzers) know them: they are configuration, not code,
 * and no annotation can name them.
 */
@Component
class ModelNamesInApiDocs implements OpenApiCustomizer {

  private static final String REF_PREFIX = "#/components/schemas/";

  private final ModelProfiles profiles;

  ModelNamesInApiDocs(ModelProfiles profiles) {
    this.profiles = profiles;
  }

  @Override
  public void customise(OpenAPI openApi) {
    if (openApi.getComponents() == null
        || openApi.getComponents().getSchemas() == null
        || openApi.getPaths() == null) {
      return;
    }
    Map<String, Schema> schemas = openApi.getComponents().getSchemas();
    List<String> names = profiles.all().stream().map(ModelProperties.ModelProfile::name).toList();
    openApi.getPaths().values().stream()
        .flatMap(path -> path.readOperations().stream())
        .map(Operation::getRequestBody)
        .filter(Objects::nonNull)
        .filter(body -> body.getContent() != null)
        .flatMap(body -> body.getContent().values().stream())
        .map(MediaType::getSchema)
        .filter(schema -> schema != null && schema.get$ref() != null)
        .filter(schema -> schema.get$ref().startsWith(REF_PREFIX))
        .map(schema -> schemas.get(schema.get$ref().substring(REF_PREFIX.length())))
        .filter(body -> body != null && body.getProperties() != null)
        .map(body -> (Schema<?>) body.getProperties().get("model"))
        .filter(Objects::nonNull)
        .forEach(model -> setEnum(model, names));
  }

  @SuppressWarnings("unchecked")
  private static void setEnum(Schema<?> model, List<String> names) {
    ((Schema<String>) model).setEnum(names);
  }
}
