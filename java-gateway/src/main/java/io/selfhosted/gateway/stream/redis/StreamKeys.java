package io.selfhosted.gateway.stream.redis;

/**
 * The Redis names of one answer's stream. The braces keep one answer's keys in one cluster slot.
 */
final class StreamKeys {

  private static final String PREFIX = "gw:stream:{";
  private static final String WAKE_SUFFIX = "}:wake";

  private StreamKeys() {}

  static String stream(String id) {
    return PREFIX + id + "}";
  }

  static String meta(String id) {
    return stream(id) + ":meta";
  }

  static String lease(String id) {
    return stream(id) + ":lease";
  }

  static String readers(String id) {
    return stream(id) + ":readers";
  }

  static String wakeChannel(String id) {
    return stream(id) + ":wake";
  }

  /** The message id of a wake-up channel, or null for any other channel. */
  static String ofWakeChannel(String channel) {
    if (channel.startsWith(PREFIX) && channel.endsWith(WAKE_SUFFIX)) {
      return channel.substring(PREFIX.length(), channel.length() - WAKE_SUFFIX.length());
    }
    return null;
  }

  static String cancelChannel(String instance) {
    return "gw:cancel:" + instance;
  }

  /** The event number of a stream entry id ({@code <seq>-0}). */
  static long seq(String entryId) {
    return Long.parseLong(entryId.substring(0, entryId.indexOf('-')));
  }
}
