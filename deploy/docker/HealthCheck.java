import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

/**
 * The gateway image's HEALTHCHECK: exits 0 when GET http://127.0.0.1:$GATEWAY_PORT{path} answers
 * 200. The JRE image has no curl, and a class beats installing one.
 */
public final class HealthCheck {
  private HealthCheck() {}

  public static void main(String[] args) throws InterruptedException {
    String path = args.length > 0 ? args[0] : "/actuator/health";
    String port = System.getenv().getOrDefault("GATEWAY_PORT", "8080");
    HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
    HttpRequest request =
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
            .timeout(Duration.ofSeconds(3))
            .build();
    try {
      int status = client.send(request, HttpResponse.BodyHandlers.discarding()).statusCode();
      System.exit(status == 200 ? 0 : 1);
    } catch (java.io.IOException e) {
      System.err.println("healthcheck: " + e);
      System.exit(1);
    }
  }
}
