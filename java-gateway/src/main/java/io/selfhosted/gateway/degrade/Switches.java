package io.selfhosted.gateway.degrade;

import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.selfhosted.gateway.audit.AuditLog;
import io.selfhosted.gateway.auth.AllowedModels;
import io.selfhosted.gateway.auth.Caller;
import io.selfhosted.gateway.auth.KeyLimits;
import io.selfhosted.gateway.pipeline.DegradationLog;
import io.selfhosted.gateway.system.DaemonThreads;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.dao.DataAccessException;
import org.springframework.lang.Nullable;
import org.springframework.stereotype.Component;

/**
 * The switches as this replica sees them: read from the database every {@code refresh-interval} (so
 * a change on any replica is in effect everywhere within it), at once after a local change, and at
 * once after another replica's change when replicas share a Redis ({@link SwitchNotices}). Expired
 * switches count as off immediately; the first replica to notice turns them off in the database and
 * audits it. When the database cannot be read, the last known state stays.
 */
@Component
public class Switches implements DisposableBean {

  private static final Logger log = LoggerFactory.getLogger(Switches.class);
  private static final Caller EXPIRY =
      new Caller("system", "expiry", Caller.Role.ADMIN, AllowedModels.ALL, KeyLimits.NONE);

  private final SwitchRepository repository;
  private final AuditLog audit;
  private final DegradationLog degradations;
  private final ScheduledExecutorService timer;
  private final SwitchNotices notices;
  private volatile Map<String, Switch> current = Map.of();
  private volatile boolean readFailing;

  Switches(
      SwitchRepository repository,
      AuditLog audit,
      DegradationLog degradations,
      SwitchProperties properties,
      SwitchNotices notices,
      MeterRegistry meters) {
    this.repository = repository;
    this.audit = audit;
    this.degradations = degradations;
    this.notices = notices;
    refresh();
    for (SwitchKind kind : SwitchKind.values()) {
      Gauge.builder("gateway.switches.active", this, s -> s.activeCount(kind))
          .description("switches of this kind in effect")
          .tag("kind", kind.wireName())
          .register(meters);
    }
    this.timer = Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("switch-refresh"));
    long interval = Math.max(100, properties.refreshInterval().toMillis());
    timer.scheduleWithFixedDelay(this::refresh, interval, interval, TimeUnit.MILLISECONDS);
    notices.listen(
        () -> {
          try {
            timer.execute(this::refresh);
          } catch (RejectedExecutionException stopping) {
            // shutting down: nothing to refresh for
          }
        });
  }

  /** Reads every switch from the database now; expired ones are turned off there. */
  public synchronized void refresh() {
    List<Switch> rows;
    try {
      rows = repository.findAll();
    } catch (DataAccessException e) {
      if (!readFailing) {
        readFailing = true;
        log.error("cannot read the switches; keeping the last known state: {}", e.getMessage());
      }
      return;
    }
    readFailing = false;
    Instant now = Instant.now();
    Map<String, Switch> next = new LinkedHashMap<>();
    for (Switch row : rows) {
      if (row.enabled() && !row.activeAt(now)) {
        expire(row, now);
        row =
            new Switch(
                row.kind(),
                row.model(),
                false,
                row.message(),
                row.value(),
                row.target(),
                row.reason(),
                row.expiresAt(),
                "expiry",
                now);
      }
      next.put(row.id(), row);
    }
    Map<String, Switch> before = current;
    current = Map.copyOf(next);
    for (Switch row : next.values()) {
      Switch old = before.get(row.id());
      if (old == null ? row.enabled() : old.enabled() != row.enabled()) {
        degradations.record(
            null,
            "switch",
            row.kind().wireName(),
            (row.enabled() ? "on" : "off") + (row.model() == null ? "" : " for " + row.model()));
      }
    }
  }

  private void expire(Switch row, Instant now) {
    try {
      if (repository.expire(row, now)) {
        audit.record(EXPIRY, "switch.expire", row.id(), row, null);
      }
    } catch (DataAccessException e) {
      log.warn("could not turn off the expired switch {}: {}", row.id(), e.getMessage());
    }
  }

  /** Stores a switch, audits the change, and puts it in effect on this replica at once. */
  Switch save(Caller actor, Switch value) {
    Switch before = find(value.kind(), value.model());
    repository.save(value);
    audit.record(
        actor, "switch.set", value.id(), before.updatedAt() == null ? null : before, value);
    refresh();
    notices.announce();
    return find(value.kind(), value.model());
  }

  /** Every switch that was ever set, and the global ones that never were (off). */
  public List<Switch> all() {
    Map<String, Switch> known = current;
    List<Switch> list = new ArrayList<>();
    for (SwitchKind kind : SwitchKind.values()) {
      if (kind.scope() != SwitchKind.Scope.MODEL && !known.containsKey(kind.wireName())) {
        list.add(Switch.off(kind, null));
      }
    }
    list.addAll(known.values());
    return list;
  }

  Switch find(SwitchKind kind, @Nullable String model) {
    Switch value = current.get(Switch.off(kind, model).id());
    return value == null ? Switch.off(kind, model) : value;
  }

  /** The switch of this kind in effect for {@code model}: its own, else the global one. */
  public Optional<Switch> active(SwitchKind kind, @Nullable String model) {
    Instant now = Instant.now();
    Map<String, Switch> known = current;
    if (model != null) {
      Switch own = known.get(Switch.off(kind, model).id());
      if (own != null && own.activeAt(now)) {
        return Optional.of(own);
      }
    }
    Switch global = known.get(kind.wireName());
    return global != null && global.activeAt(now) ? Optional.of(global) : Optional.empty();
  }

  private int activeCount(SwitchKind kind) {
    Instant now = Instant.now();
    return (int) current.values().stream().filter(s -> s.kind() == kind && s.activeAt(now)).count();
  }

  @Override
  public void destroy() {
    timer.shutdownNow();
  }
}
