package io.selfhosted.gateway.system;

import java.util.concurrent.ThreadFactory;

/** Threads of the gateway's own timers and workers: named, and never holding the JVM open. */
public final class DaemonThreads {

  private DaemonThreads() {}

  /** A factory of daemon threads that all carry {@code name}. */
  public static ThreadFactory named(String name) {
    return task -> {
      Thread thread = new Thread(task, name);
      thread.setDaemon(true);
      return thread;
    };
  }
}
