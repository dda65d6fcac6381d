package io.quiver.server.security;

/**
 * A request refused for who sent it: no valid credential (UNAUTHENTICATED, HTTP 401) or a credential
 * whose roles do not allow the operation (PERMISSION_DENIED, HTTP 403). The message says what was
 * missing without echoing secrets. No stack trace (thrown on the request path).
 */
public final class SecurityDenial extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public enum Kind { UNAUTHENTICATED, PERMISSION_DENIED }

  private final Kind kind;

  public SecurityDenial(Kind kind, String message) {
    super(message, null, false, false);
    this.kind = kind;
  }

  public Kind kind() {
    return kind;
  }

  static SecurityDenial unauthenticated(String message) {
    return new SecurityDenial(Kind.UNAUTHENTICATED, message);
  }

  static SecurityDenial permissionDenied(String message) {
    return new SecurityDenial(Kind.PERMISSION_DENIED, message);
  }
}
