package io.selfhosted.gateway.upstream;

import java.io.IOException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import okhttp3.Call;
import okhttp3.Callback;
import okhttp3.Response;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.stereotype.Component;

/** Probes every replica's /ready on a fixed delay and puts it in or out of rotation. */
@Component
class HealthChecks implements DisposableBean {

  private final UpstreamPool pool;
  private final ModelServiceClient client;
  private final ScheduledExecutorService timer;

  HealthChecks(UpstreamPool pool, ModelServiceClient client, UpstreamProperties properties) {
    this.pool = pool;
    this.client = client;
    this.timer =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "upstream-health");
              t.setDaemon(true);
              return t;
            });
    long interval = Math.max(100, properties.healthInterval().toMillis());
    timer.scheduleWithFixedDelay(this::checkAll, 0, interval, TimeUnit.MILLISECONDS);
  }

  void checkAll() {
    for (Replica replica : pool.replicas()) {
      client
          .readiness(replica)
          .enqueue(
              new Callback() {
                @Override
                public void onResponse(Call call, Response response) {
                  try (response) {
                    pool.setHealth(replica, response.isSuccessful());
                  }
                }

                @Override
                public void onFailure(Call call, IOException e) {
                  pool.setHealth(replica, false);
                }
              });
    }
  }

  @Override
  public void destroy() {
    timer.shutdownNow();
  }
}
