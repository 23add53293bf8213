package io.selfhosted.gateway.sse;

import jakarta.servlet.ServletRequest;
import jakarta.servlet.ServletRequestWrapper;
import jakarta.servlet.http.HttpServletRequest;
import java.io.IOException;
import java.lang.reflect.Field;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Tells whether the client of a request still waiting for its whole reply has hung up. The servlet
 * API has no way to learn that without writing (and a whole JSON reply has nothing to write until
 * it is done), so this asks Tomcat's socket for a non-blocking read: data stays in Tomcat's buffer
 * for the connection's next request; end-of-stream means the client is gone. Where the container is
 * not the Tomcat this was built against, {@link #of} is empty and the gateway notices only when it
 * writes the reply.
 */
public final class ClientSocket {

  private static final Logger log = LoggerFactory.getLogger(ClientSocket.class);
  private static final Access ACCESS = Access.load();

  private final Object socketWrapper;

  private ClientSocket(Object socketWrapper) {
    this.socketWrapper = socketWrapper;
  }

  public static Optional<ClientSocket> of(HttpServletRequest request) {
    if (ACCESS == null) {
      return Optional.empty();
    }
    try {
      ServletRequest inner = request;
      while (inner instanceof ServletRequestWrapper wrapper) {
        inner = wrapper.getRequest();
      }
      if (!ACCESS.facade.isInstance(inner)) {
        return Optional.empty();
      }
      Object connectorRequest = ACCESS.facadeRequest.get(inner);
      Object coyoteRequest = ACCESS.getCoyoteRequest.invoke(connectorRequest);
      Object processor = ACCESS.hook.get(coyoteRequest);
      if (!ACCESS.processor.isInstance(processor)) {
        return Optional.empty();
      }
      Object wrapper = ACCESS.getSocketWrapper.invoke(processor);
      return wrapper == null ? Optional.empty() : Optional.of(new ClientSocket(wrapper));
    } catch (ReflectiveOperationException | RuntimeException e) {
      return Optional.empty();
    }
  }

  /**
   * True when the client closed its end. Call only while the request is async and no container
   * thread reads this connection (that is, before the response is completed).
   */
  public boolean isClosedByClient() {
    try {
      ACCESS.isReadyForRead.invoke(socketWrapper);
      return false;
    } catch (InvocationTargetException e) {
      return e.getCause() instanceof IOException;
    } catch (ReflectiveOperationException | RuntimeException e) {
      return false;
    }
  }

  /** The reflective handles on Tomcat's request and socket, resolved once. */
  private record Access(
      Class<?> facade,
      Field facadeRequest,
      Method getCoyoteRequest,
      Field hook,
      Class<?> processor,
      Method getSocketWrapper,
      Method isReadyForRead) {

    static Access load() {
      try {
        Class<?> facade = Class.forName("org.apache.catalina.connector.RequestFacade");
        Field facadeRequest = facade.getDeclaredField("request");
        facadeRequest.setAccessible(true);
        Method getCoyoteRequest =
            Class.forName("org.apache.catalina.connector.Request").getMethod("getCoyoteRequest");
        Field hook = Class.forName("org.apache.coyote.Request").getDeclaredField("hook");
        hook.setAccessible(true);
        Class<?> processor = Class.forName("org.apache.coyote.AbstractProcessor");
        Method getSocketWrapper = processor.getDeclaredMethod("getSocketWrapper");
        getSocketWrapper.setAccessible(true);
        Method isReadyForRead =
            Class.forName("org.apache.tomcat.util.net.SocketWrapperBase")
                .getMethod("isReadyForRead");
        return new Access(
            facade,
            facadeRequest,
            getCoyoteRequest,
            hook,
            processor,
            getSocketWrapper,
            isReadyForRead);
      } catch (ReflectiveOperationException | RuntimeException e) {
        log.info(
            "client disconnects of whole-reply calls are noticed only at the reply: {}",
            e.toString());
        return null;
      }
    }
  }
}
