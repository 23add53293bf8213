package io.selfhosted.gateway.auth;

import io.selfhosted.gateway.system.DaemonThreads;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.beans.factory.SmartInitializingSingleton;
import org.springframework.dao.DataAccessException;
import org.springframework.lang.Nullable;
import org.springframework.stereotype.Service;

/**
 * Issues, finds and revokes API keys. A key is 256 random bits; only its SHA-256 and a short
 * visible prefix are stored (a fast hash suffices for keys this random: there is nothing to guess).
 * Lookups are cached for a few seconds so that authentication costs no database round trip.
 */
@Service
public class ApiKeyService implements SmartInitializingSingleton, DisposableBean {

  /** The id of the admin key that ADMIN_API_KEY bootstraps. */
  public static final String BOOTSTRAP_ID = "bootstrap-admin";

  /** The lead of every generated key; a prefix shows it whole, since it tells nothing. */
  static final String KEY_PREFIX = "sk-";

  /** How many characters after the lead a prefix shows at most. */
  static final int VISIBLE_CHARACTERS = 4;

  private static final char[] ALPHABET =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".toCharArray();
  private static final Duration TOUCH_EVERY = Duration.ofMinutes(1);
  private static final Logger log = LoggerFactory.getLogger(ApiKeyService.class);

  private final ApiKeyRepository keys;
  private final AuthProperties properties;
  private final SessionStore sessions;
  private final Clock clock = Clock.systemUTC();
  private final SecureRandom random = new SecureRandom();
  private final Map<String, Cached> byHash = new ConcurrentHashMap<>();
  private final Map<String, Cached> byId = new ConcurrentHashMap<>();
  private final Map<String, Instant> touched = new ConcurrentHashMap<>();
  private final ExecutorService toucher =
      Executors.newSingleThreadExecutor(DaemonThreads.named("api-key-touch"));

  public ApiKeyService(ApiKeyRepository keys, AuthProperties properties, SessionStore sessions) {
    this.keys = keys;
    this.properties = properties;
    this.sessions = sessions;
  }

  /** A new key and the secret shown once. */
  public record Issued(ApiKey key, String secret) {}

  private record Cached(ApiKey key, long loadedNanos) {}

  @Override
  public void afterSingletonsInstantiated() {
    String admin = properties.adminApiKey();
    if (admin == null || admin.isBlank()) {
      keys.revoke(BOOTSTRAP_ID, clock.instant());
      log.info("ADMIN_API_KEY is not set: the bootstrap admin key is disabled");
      return;
    }
    ApiKey bootstrap =
        new ApiKey(
            BOOTSTRAP_ID,
            "admin (ADMIN_API_KEY)",
            Caller.Role.ADMIN,
            visiblePrefix(admin),
            AllowedModels.ALL,
            KeyLimits.NONE,
            null,
            clock.instant(),
            null,
            null);
    boolean rotated = keys.findByHash(hash(admin)).isEmpty();
    keys.upsertBootstrap(bootstrap, hash(admin));
    if (rotated) { // sessions outlive restarts, but not the ADMIN_API_KEY they were opened with
      sessions.closeAll(BOOTSTRAP_ID);
    }
  }

  public Issued create(
      String name,
      Caller.Role role,
      AllowedModels models,
      KeyLimits limits,
      @Nullable Instant expiresAt) {
    String secret = newSecret();
    ApiKey key =
        new ApiKey(
            UUID.randomUUID().toString(),
            name,
            role,
            visiblePrefix(secret),
            models,
            limits,
            expiresAt,
            clock.instant(),
            null,
            null);
    keys.insert(key, hash(secret));
    return new Issued(key, secret);
  }

  public void update(ApiKey key) {
    keys.update(key);
    forget(key.id());
  }

  public void revoke(String id) {
    keys.revoke(id, clock.instant());
    forget(id);
    sessions.closeAll(id); // on every replica at once, where their key caches would take seconds
  }

  public List<ApiKey> list() {
    return keys.list();
  }

  public Optional<ApiKey> find(String id) {
    return keys.findById(id);
  }

  /** The caller a presented key stands for, if it is a known, active key. */
  public Optional<Caller> authenticate(String presented) {
    if (presented == null || presented.isEmpty() || presented.length() > 256) {
      return Optional.empty();
    }
    String digest = hash(presented);
    ApiKey key = cached(byHash, digest, () -> keys.findByHash(digest).orElse(null));
    return active(key);
  }

  /** The caller of a key by id (a browser session's key), if the key is still active. */
  public Optional<Caller> authenticateById(String id) {
    return active(cached(byId, id, () -> keys.findById(id).orElse(null)));
  }

  private Optional<Caller> active(@Nullable ApiKey key) {
    Instant now = clock.instant();
    if (key == null || !key.isActive(now)) {
      return Optional.empty();
    }
    touch(key.id(), now);
    return Optional.of(key.caller());
  }

  private ApiKey cached(Map<String, Cached> cache, String id, Supplier<ApiKey> load) {
    long now = System.nanoTime();
    Cached hit = cache.get(id);
    if (hit != null && now - hit.loadedNanos() < properties.keyCacheTtl().toNanos()) {
      return hit.key();
    }
    ApiKey key = load.get();
    if (key != null) { // only real keys are kept: unknown ones cannot grow the cache
      cache.put(id, new Cached(key, now));
    }
    return key;
  }

  private void forget(String id) {
    byId.remove(id);
    byHash.values().removeIf(c -> c.key().id().equals(id));
  }

  /** Records last use at most once a minute per key, off the request path. */
  private void touch(String id, Instant now) {
    Instant last = touched.get(id);
    if (last != null && last.plus(TOUCH_EVERY).isAfter(now)) {
      return;
    }
    touched.put(id, now);
    toucher.execute(
        () -> {
          try {
            keys.touch(id, now);
          } catch (DataAccessException e) {
            log.warn("could not record the last use of key {}: {}", id, e.getMessage());
          }
        });
  }

  private String newSecret() {
    StringBuilder key = new StringBuilder(KEY_PREFIX);
    for (int i = 0; i < 43; i++) { // 43 base-62 characters: 256 bits
      key.append(ALPHABET[random.nextInt(ALPHABET.length)]);
    }
    return key.toString();
  }

  /**
   * The part of a key that is stored and listed, for people to tell keys apart: the lead {@code
   * sk-} when the key has it and at most {@value #VISIBLE_CHARACTERS} characters after it, and
   * never more than a quarter of the key, so that a short ADMIN_API_KEY gives little away.
   */
  static String visiblePrefix(String secret) {
    int lead = secret.startsWith(KEY_PREFIX) ? KEY_PREFIX.length() : 0;
    return secret.substring(0, Math.min(lead + VISIBLE_CHARACTERS, secret.length() / 4));
  }

  static String hash(String secret) {
    try {
      byte[] digest =
          MessageDigest.getInstance("SHA-256").digest(secret.getBytes(StandardCharsets.UTF_8));
      return HexFormat.of().formatHex(digest);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  @Override
  public void destroy() {
    toucher.shutdown();
  }
}
