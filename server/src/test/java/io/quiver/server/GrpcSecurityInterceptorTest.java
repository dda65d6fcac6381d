package io.quiver.server;

import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.assertThatNoException;

import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.server.security.Operations;
import io.quiver.server.security.SecurityConfig;
import io.quiver.server.security.SecurityPolicy;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The handlers' per-model check fails closed: with security on, a call that reaches a handler without an
 * authenticated principal (a service wired without the interceptor, a context lost on the way) is
 * refused, never let through; open operations and security off stay no-ops.
 */
class GrpcSecurityInterceptorTest {
  @TempDir Path dir;

  @Test
  void check_withoutAPrincipal_isUnauthenticated_whenSecurityIsOn() throws Exception {
    SecurityPolicy policy = new SecurityPolicy(SecurityConfig.parse("""
        {"roles": {"reader": {"models": {"*": ["metadata", "infer"]}}}, "anonymous_roles": ["reader"]}""", dir));
    // No interceptor ran, so no principal is in the context: even an anonymous-friendly policy refuses.
    for (String method : new String[] {"ModelInfer", "ModelMetadata", Operations.MONITORING_REPORT}) {
      assertThatThrownBy(() -> GrpcSecurityInterceptor.check(policy, method, "simple"))
          .as(method)
          .isInstanceOfSatisfying(InferenceException.class,
              e -> org.assertj.core.api.Assertions.assertThat(e.code()).isEqualTo(ErrorCode.UNAUTHENTICATED))
          .hasMessageContaining("no authenticated caller");
    }
    assertThatNoException().isThrownBy(() -> GrpcSecurityInterceptor.check(policy, "ServerLive", ""));
    assertThatNoException().isThrownBy(() -> GrpcSecurityInterceptor.check(null, "ModelInfer", "simple"));
  }
}
