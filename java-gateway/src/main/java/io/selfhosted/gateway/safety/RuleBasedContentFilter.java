package io.selfhosted.gateway.safety;

import io.selfhosted.gateway.system.DaemonThreads;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.lang.Nullable;
import org.springframework.stereotype.Component;

/**
 * Keyword and regex rules from a YAML file ({@code gateway.content.rules-file}; format in {@link
 * RuleFile} and content-rules.example.yml). The file is read at startup (an invalid file stops the
 * gateway), again whenever its modification time or size changes, and on {@link #reload()}. A
 * reload that fails keeps the rules in force. Scanners keep the rules they started with.
 */
@Component
public class RuleBasedContentFilter implements ContentFilter, DisposableBean {

  private static final Logger log = LoggerFactory.getLogger(RuleBasedContentFilter.class);

  private final @Nullable Path file;
  private final @Nullable ScheduledExecutorService watcher;
  private final Object reloading = new Object();
  private volatile Loaded current;
  private volatile @Nullable String lastError;

  /** The file as last seen by a reload, so an unchanged (or still invalid) file is not re-read. */
  private @Nullable Stamp seen;

  public RuleBasedContentFilter(ContentProperties properties) {
    String configured = properties.rulesFile();
    if (configured == null || configured.isBlank()) {
      this.file = null;
      this.current = new Loaded(RuleSet.EMPTY, Instant.now());
      this.watcher = null;
      return;
    }
    this.file = Path.of(configured.strip()).toAbsolutePath();
    synchronized (reloading) {
      this.current = load(file);
    }
    log.info("content rules: {} rules from {}", current.rules().rules().size(), file);
    Duration interval = properties.reloadInterval();
    if (interval == null || interval.isZero() || interval.isNegative()) {
      this.watcher = null;
      return;
    }
    this.watcher =
        Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("content-rules-watch"));
    long millis = Math.max(1, interval.toMillis());
    watcher.scheduleWithFixedDelay(this::reloadIfChanged, millis, millis, TimeUnit.MILLISECONDS);
  }

  /**
   * What the admin API shows: where the rules came from, when, and what they are.
   *
   * @param maxMatchLength the longest folded text a match spans; streams hold back one less
   * @param error why the latest reload failed, if it did: the rules shown are older than the file
   */
  public record Snapshot(
      @Nullable String file,
      Instant loadedAt,
      int maxMatchLength,
      List<RuleSummary> rules,
      @Nullable String error) {}

  /** One rule without its keywords and patterns. */
  public record RuleSummary(
      String id, String category, int keywords, int patterns, int maxMatchLength) {}

  private record Loaded(RuleSet rules, Instant loadedAt) {}

  private record Stamp(FileTime modified, long size) {}

  @Override
  public @Nullable Verdict check(String text) {
    RuleSet rules = current.rules();
    return rules.isEmpty() ? null : rules.find(TextNormalizer.fold(text));
  }

  @Override
  public StreamScanner scanner() {
    return new RuleScanner(current.rules());
  }

  /**
   * Re-reads the rules file now.
   *
   * @throws ContentRulesException when no file is configured or it is invalid (the rules in force
   *     stay)
   */
  public Snapshot reload() {
    if (file == null) {
      throw new ContentRulesException(
          "no content rules file is configured (gateway.content.rules-file)");
    }
    synchronized (reloading) {
      Loaded loaded;
      try {
        loaded = load(file);
      } catch (ContentRulesException e) {
        lastError = e.getMessage();
        log.error(
            "content rules not reloaded, the rules loaded at {} stay: {}",
            loadedAt(),
            e.getMessage());
        throw e;
      }
      current = loaded;
      lastError = null;
    }
    log.info("content rules reloaded: {} rules from {}", current.rules().rules().size(), file);
    return snapshot();
  }

  /** The rules in force, for the admin API. */
  public Snapshot snapshot() {
    Loaded loaded = current;
    List<RuleSummary> rules =
        loaded.rules().rules().stream()
            .map(
                rule ->
                    new RuleSummary(
                        rule.id(),
                        rule.category(),
                        rule.keywords().size(),
                        rule.patterns().size(),
                        rule.maxLength()))
            .toList();
    return new Snapshot(
        file == null ? null : file.toString(),
        loaded.loadedAt(),
        loaded.rules().maxLength(),
        rules,
        lastError);
  }

  private Instant loadedAt() {
    return current.loadedAt();
  }

  /** Reads and parses the file; the caller holds {@code reloading}. */
  private Loaded load(Path path) {
    // Stamp first: a write landing during the read changes the stamp, so the next check re-reads.
    seen = stamp(path);
    String text;
    try {
      text = Files.readString(path);
    } catch (IOException e) {
      throw new ContentRulesException(
          "cannot read content rules file " + path + ": " + e.getClass().getSimpleName(), e);
    }
    if (text.startsWith("\uFEFF")) {
      text = text.substring(1);
    }
    return new Loaded(RuleFile.parse(text, path.toString()), Instant.now());
  }

  private void reloadIfChanged() {
    try {
      synchronized (reloading) {
        if (Objects.equals(stamp(file), seen)) {
          return;
        }
      }
      reload();
    } catch (ContentRulesException e) {
      // logged by reload(); the next change of the file is tried again
    } catch (RuntimeException e) {
      log.error("content rules watch failed", e);
    }
  }

  private static @Nullable Stamp stamp(Path path) {
    try {
      BasicFileAttributes attributes = Files.readAttributes(path, BasicFileAttributes.class);
      return new Stamp(attributes.lastModifiedTime(), attributes.size());
    } catch (IOException e) {
      return null;
    }
  }

  @Override
  public void destroy() {
    if (watcher != null) {
      watcher.shutdownNow();
    }
  }
}
