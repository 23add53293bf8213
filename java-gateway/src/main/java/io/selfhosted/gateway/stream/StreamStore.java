package io.selfhosted.gateway.stream;

import java.util.Optional;
import java.util.function.Consumer;

/**
 * Where product streams live so that a browser can resume them: this process (the embedded default)
 * or Redis, shared by every gateway replica. The relay and the controller see only this.
 */
public interface StreamStore {

  /**
   * Opens the stream of an answer this gateway generates. {@code cancel} runs, with the reason,
   * when the generation must stop: no reader anywhere for the resume grace, or a cancel asked on
   * any replica.
   */
  StreamWriter create(
      String messageId, String conversationId, String ownerKeyId, Consumer<String> cancel);

  /** The stream of a message, live or ended within the retention, whichever gateway owns it. */
  Optional<ResumableStream> find(String messageId);

  /** Asks the stream's generation to stop, on whichever gateway generates it. */
  void cancel(ResumableStream stream, String why);

  /** The text so far of an answer still streaming, if its stream is known here. */
  Optional<String> liveText(String messageId);

  /**
   * Ends the stream of an answer whose gateway died with an {@code error} event, exactly once
   * across replicas: the text it had when this call claimed it, empty when the stream is unknown,
   * already ended, or its owner still holds the lease.
   */
  Optional<String> interrupt(String messageId);

  /**
   * Renews this gateway's lease on the streams it writes, where other replicas look for it, and
   * picks up what happened to them meanwhile (a cancel asked elsewhere, a stream another replica
   * ended). Called by the one lease timer, {@link io.selfhosted.gateway.product.OwnerLeases}.
   */
  void renewLeases();

  /** Installs what runs when a reader here finds a live stream whose owner's lease ran out. */
  void onOrphan(Consumer<String> handler);

  /** "memory" or "redis", for logs. */
  String kind();
}
