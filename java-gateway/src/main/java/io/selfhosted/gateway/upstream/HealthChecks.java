package io.selfhosted.gateway.upstream;

import io.selfhosted.gateway.system.DaemonThreads;
import java.io.IOException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import okhttp3.Call;
import okhttp3.Callback;
import okhttp3.Response;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.stereotype.Component;

/**
 * Probes every replica's readiness path on a fixed delay and puts it in or out of rotation; a
 * replica that joins the pool is probed at once.
 */
@Component
class HealthChecks implements DisposableBean, UpstreamPool.Membership {

  private final UpstreamPool pool;
  private final ModelServiceClient client;
  private final ScheduledExecutorService timer;

  HealthChecks(UpstreamPool pool, ModelServiceClient client, UpstreamProperties properties) {
    this.pool = pool;
    this.client = client;
    this.timer = Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("upstream-health"));
    long interval = Math.max(100, properties.healthInterval().toMillis());
    timer.scheduleWithFixedDelay(this::checkAll, 0, interval, TimeUnit.MILLISECONDS);
    pool.addListener(this);
  }

  void checkAll() {
    for (Replica replica : pool.replicas()) {
      check(replica);
    }
  }

  private void check(Replica replica) {
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

  @Override
  public void joined(Replica replica) {
    check(replica);
  }

  @Override
  public void left(Replica replica) {
    // Nothing kept per replica: the next round simply no longer probes it.
  }

  @Override
  public void destroy() {
    timer.shutdownNow();
  }
}
