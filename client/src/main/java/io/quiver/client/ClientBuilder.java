package io.quiver.client;

import io.grpc.CallCredentials;
import io.grpc.CallOptions;
import io.grpc.ChannelCredentials;
import io.grpc.ClientInterceptor;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.TlsChannelCredentials;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * The connection settings {@link QuiverClient} and {@link ModelControlClient} share: where to connect,
 * TLS or mutual TLS from PEM files, an API key or bearer token, the default deadline, the largest
 * message accepted, load balancing, keep-alive, retries, interceptors.
 *
 * <p>The transport is whichever gRPC transport is on the class path (grpc-api's registry picks it:
 * grpc-netty-shaded by default, grpc-netty or grpc-okhttp if you put those there instead), so nothing
 * here depends on Netty. For settings only a transport has, {@link #configureChannel} reaches the
 * builder before it builds, or {@link #channel} takes a channel you built entirely yourself.
 *
 * <p>Retries follow a gRPC service config: UNAVAILABLE only (the server did not start the work: not
 * ready, overloaded, shutting down, or no connection), on the calls that are safe to repeat: health,
 * metadata, config, statistics, repository index, ModelInfer (inference has no side effects), and the
 * control plane's ListModels and WatchModels. Never streams of requests (ModelStreamInfer,
 * UploadModel), loads, unloads or traffic changes. Retries are throttled (gRPC's token bucket: 10
 * tokens, 0.1 per success), and gRPC does not retry a request larger than its per-call retry buffer
 * (1 MiB by default). Not thread-safe; build once.
 *
 * @param <B> the concrete builder
 */
public abstract class ClientBuilder<B extends ClientBuilder<B>> {
  /** gRPC's own inbound default (4 MiB) is too small for images and audio; the server's default is this. */
  public static final int DEFAULT_MAX_INBOUND_MESSAGE_BYTES = 256 * 1024 * 1024;
  /** Attempts per call including the first (gRPC's service-config retry policy). */
  public static final int DEFAULT_MAX_ATTEMPTS = 3;

  static final String INFERENCE_SERVICE = "inference.GRPCInferenceService";
  static final String CONTROL_SERVICE = "quiver.control.v1.ModelControl";

  String target;
  ManagedChannel channel;
  boolean tls;
  Path trustCertificates;
  Path clientCertificate;
  Path clientKey;
  String authority;
  Supplier<String> bearerToken;
  String apiKey;
  boolean credentialsOverPlaintext;
  Duration defaultDeadline;
  int maxInboundMessageBytes = DEFAULT_MAX_INBOUND_MESSAGE_BYTES;
  String loadBalancingPolicy = "round_robin";
  Duration keepAliveTime;
  Duration keepAliveTimeout = Duration.ofSeconds(20);
  int maxAttempts = DEFAULT_MAX_ATTEMPTS;
  boolean retryInference = true;
  final List<ClientInterceptor> interceptors = new ArrayList<>();
  Executor executor;
  Consumer<ManagedChannelBuilder<?>> channelConfigurer;

  ClientBuilder(Duration defaultDeadline) {
    this.defaultDeadline = defaultDeadline;
  }

  @SuppressWarnings("unchecked")
  private B self() {
    return (B) this;
  }

  /**
   * A gRPC target: {@code "localhost:8001"}, {@code "dns:///quiver.ns.svc.cluster.local:8001"} (every
   * address of a headless Service, balanced round-robin), {@code "unix:///run/quiver.sock"}...
   */
  public B target(String target) {
    this.target = Objects.requireNonNull(target, "target");
    return self();
  }

  /** {@code target(host + ":" + port)}. */
  public B forAddress(String host, int port) {
    return target((host.indexOf(':') >= 0 && !host.startsWith("[") ? "[" + host + "]" : host) + ":" + port);
  }

  /**
   * Uses a channel built elsewhere (any transport, any settings). The client does not close it, and the
   * transport settings of this builder (target, TLS, message size, balancing, keep-alive, retries,
   * interceptors) do not apply to it; credentials and the default deadline still do.
   */
  public B channel(ManagedChannel channel) {
    this.channel = Objects.requireNonNull(channel, "channel");
    return self();
  }

  /** Plaintext (the default): for loopback, or a network where a sidecar encrypts. */
  public B plaintext() {
    this.tls = false;
    return self();
  }

  /** TLS, trusting the JVM's default certificate authorities. */
  public B tls() {
    this.tls = true;
    return self();
  }

  /** TLS, trusting the certificate authorities in this PEM file (e.g. a private CA). */
  public B tlsTrust(Path caCertificatesPem) {
    this.tls = true;
    this.trustCertificates = Objects.requireNonNull(caCertificatesPem, "caCertificatesPem");
    return self();
  }

  /**
   * Mutual TLS: presents this client certificate chain (PEM, leaf first) and its unencrypted PKCS#8 PEM
   * private key. Implies TLS.
   */
  public B tlsClientCertificate(Path certificateChainPem, Path privateKeyPem) {
    this.tls = true;
    this.clientCertificate = Objects.requireNonNull(certificateChainPem, "certificateChainPem");
    this.clientKey = Objects.requireNonNull(privateKeyPem, "privateKeyPem");
    return self();
  }

  /** The name the server's certificate must carry, when it differs from the target's host. */
  public B overrideAuthority(String authority) {
    this.authority = authority;
    return self();
  }

  /** Sends {@code x-api-key: KEY} on every call (Quiver's API keys). */
  public B apiKey(String key) {
    if (key == null || key.isEmpty()) {
      throw new IllegalArgumentException("an API key cannot be empty");
    }
    this.apiKey = key;
    this.bearerToken = null;
    return self();
  }

  /** Sends {@code authorization: Bearer TOKEN} on every call (JWT). */
  public B bearerToken(String token) {
    if (token == null || token.isEmpty()) {
      throw new IllegalArgumentException("a bearer token cannot be empty");
    }
    return bearerToken(() -> token);
  }

  /** Sends {@code authorization: Bearer TOKEN}, asking the supplier at each call (for tokens that are refreshed). */
  public B bearerToken(Supplier<String> tokens) {
    this.bearerToken = Objects.requireNonNull(tokens, "tokens");
    this.apiKey = null;
    return self();
  }

  /**
   * Allows the API key or token to travel without TLS (refused by default: the call fails UNAUTHENTICATED
   * before anything is sent). For loopback and sidecar setups.
   */
  public B credentialsOverPlaintext(boolean allowed) {
    this.credentialsOverPlaintext = allowed;
    return self();
  }

  /** The deadline of every call that sets none of its own; {@link Duration#ZERO} for none. */
  public B defaultDeadline(Duration deadline) {
    if (deadline.isNegative()) {
      throw new IllegalArgumentException("a deadline cannot be negative; was " + deadline);
    }
    this.defaultDeadline = deadline;
    return self();
  }

  /** The largest response accepted (default 256 MiB, as the server's request limit). */
  public B maxInboundMessageBytes(int bytes) {
    if (bytes <= 0) {
      throw new IllegalArgumentException("max inbound message bytes must be > 0; was " + bytes);
    }
    this.maxInboundMessageBytes = bytes;
    return self();
  }

  /** gRPC load-balancing policy over the target's addresses: {@code round_robin} (default) or {@code pick_first}. */
  public B loadBalancingPolicy(String policy) {
    this.loadBalancingPolicy = Objects.requireNonNull(policy, "policy");
    return self();
  }

  /**
   * HTTP/2 keep-alive pings after {@code time} without reads, the connection closed if no answer in
   * {@code timeout}. Off by default; the server must permit the rate (grpc-java servers, Quiver's
   * included, accept one ping per 5 minutes unless configured otherwise, and close connections that ping
   * faster).
   */
  public B keepAlive(Duration time, Duration timeout) {
    this.keepAliveTime = Objects.requireNonNull(time, "time");
    this.keepAliveTimeout = Objects.requireNonNull(timeout, "timeout");
    return self();
  }

  /** Attempts per retryable call, including the first (default 3); 1 turns retries off. */
  public B maxAttempts(int attempts) {
    if (attempts < 1 || attempts > 5) {
      throw new IllegalArgumentException("attempts must be within 1..5 (gRPC's limit); was " + attempts);
    }
    this.maxAttempts = attempts;
    return self();
  }

  /** Whether ModelInfer is retried on UNAVAILABLE (default true; turn off for models with side effects, e.g. sequences). */
  public B retryInference(boolean retry) {
    this.retryInference = retry;
    return self();
  }

  /** Adds interceptors (e.g. {@code io.quiver.client.telemetry.ClientTelemetry}); the first added runs first. */
  public B intercept(ClientInterceptor... interceptors) {
    this.interceptors.addAll(List.of(interceptors));
    return self();
  }

  /** Where responses and callbacks run (default: gRPC's shared pool). */
  public B executor(Executor executor) {
    this.executor = Objects.requireNonNull(executor, "executor");
    return self();
  }

  /** Gives the transport's channel builder to {@code configurer} just before it builds (transport-specific settings). */
  public B configureChannel(Consumer<ManagedChannelBuilder<?>> configurer) {
    this.channelConfigurer = Objects.requireNonNull(configurer, "configurer");
    return self();
  }

  // ------------------------------------------------------------------------------------------------

  /** The channel to use and whether the client owns (and so closes) it. */
  record Connection(ManagedChannel channel, boolean owned, CallOptions callOptions, Duration defaultDeadline) {
    CallOptions options(Duration deadline) {
      Duration d = deadline != null ? deadline : defaultDeadline;
      return d == null || d.isZero() ? callOptions : callOptions.withDeadlineAfter(d.toNanos(), TimeUnit.NANOSECONDS);
    }

    void close() {
      if (!owned) {
        return;
      }
      channel.shutdown();
      try {
        if (!channel.awaitTermination(5, TimeUnit.SECONDS)) {
          channel.shutdownNow();
        }
      } catch (InterruptedException e) {
        channel.shutdownNow();
        Thread.currentThread().interrupt();
      }
    }
  }

  Connection connect() {
    CallOptions options = CallOptions.DEFAULT;
    CallCredentials credentials = null;
    if (apiKey != null) {
      String key = apiKey;
      credentials = new HeaderCredentials(HeaderCredentials.API_KEY, "", () -> key, credentialsOverPlaintext);
    } else if (bearerToken != null) {
      credentials = new HeaderCredentials(HeaderCredentials.AUTHORIZATION, "Bearer ", bearerToken, credentialsOverPlaintext);
    }
    if (credentials != null) {
      options = options.withCallCredentials(credentials);
    }
    if (executor != null) {
      options = options.withExecutor(executor);
    }
    if (channel != null) {
      return new Connection(channel, false, options, defaultDeadline);
    }
    if (target == null) {
      throw new IllegalStateException("set a target (e.g. target(\"localhost:8001\")) or a channel");
    }
    ManagedChannelBuilder<?> builder;
    try {
      builder = Grpc.newChannelBuilder(target, channelCredentials());
    } catch (io.grpc.ManagedChannelRegistry.ProviderNotFoundException e) {
      throw new IllegalStateException("no gRPC transport on the class path can connect to '" + target
          + "': add io.grpc:grpc-netty-shaded (the default), grpc-netty or grpc-okhttp (" + e.getMessage() + ")", e);
    }
    builder.maxInboundMessageSize(maxInboundMessageBytes)
        .maxInboundMetadataSize(64 * 1024)
        .defaultServiceConfig(serviceConfig())
        .userAgent("quiver-client");
    if (maxAttempts > 1) {
      builder.enableRetry().maxRetryAttempts(maxAttempts);
    } else {
      builder.disableRetry();
    }
    if (keepAliveTime != null) {
      builder.keepAliveTime(keepAliveTime.toNanos(), TimeUnit.NANOSECONDS)
          .keepAliveTimeout(keepAliveTimeout.toNanos(), TimeUnit.NANOSECONDS)
          .keepAliveWithoutCalls(false);
    }
    if (authority != null) {
      builder.overrideAuthority(authority);
    }
    if (!interceptors.isEmpty()) {
      // ManagedChannelBuilder runs the last-added interceptor first; ours run in the order they were added.
      List<ClientInterceptor> reversed = new ArrayList<>(interceptors);
      java.util.Collections.reverse(reversed);
      builder.intercept(reversed);
    }
    if (executor != null) {
      builder.executor(executor);
    }
    if (channelConfigurer != null) {
      channelConfigurer.accept(builder);
    }
    return new Connection(builder.build(), true, options, defaultDeadline);
  }

  private ChannelCredentials channelCredentials() {
    if (!tls) {
      return InsecureChannelCredentials.create();
    }
    TlsChannelCredentials.Builder credentials = TlsChannelCredentials.newBuilder();
    try {
      if (trustCertificates != null) {
        credentials.trustManager(trustCertificates.toFile());
      }
    } catch (IOException | RuntimeException e) {
      throw new IllegalArgumentException("cannot read the CA certificates from " + trustCertificates + ": " + e.getMessage(), e);
    }
    try {
      if (clientCertificate != null) {
        credentials.keyManager(clientCertificate.toFile(), clientKey.toFile());
      }
    } catch (IOException | RuntimeException e) {
      throw new IllegalArgumentException("cannot read the client certificate " + clientCertificate + " or its key "
          + clientKey + " (an unencrypted PKCS#8 PEM key is needed): " + e.getMessage(), e);
    }
    return credentials.build();
  }

  /** The service config: the balancing policy, and the retry policy of the calls safe to repeat. */
  Map<String, ?> serviceConfig() {
    Map<String, Object> config = new LinkedHashMap<>();
    config.put("loadBalancingConfig", List.of(Map.of(loadBalancingPolicy, Map.of())));
    if (maxAttempts > 1) {
      List<Object> names = new ArrayList<>();
      for (String method : List.of("ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata",
          "ModelConfig", "ModelStatistics", "RepositoryIndex")) {
        names.add(Map.of("service", INFERENCE_SERVICE, "method", method));
      }
      if (retryInference) {
        names.add(Map.of("service", INFERENCE_SERVICE, "method", "ModelInfer"));
      }
      names.add(Map.of("service", CONTROL_SERVICE, "method", "ListModels"));
      names.add(Map.of("service", CONTROL_SERVICE, "method", "WatchModels"));
      Map<String, Object> retry = new LinkedHashMap<>();
      retry.put("maxAttempts", (double) maxAttempts);
      retry.put("initialBackoff", "0.1s");
      retry.put("maxBackoff", "2s");
      retry.put("backoffMultiplier", 2.0);
      retry.put("retryableStatusCodes", List.of("UNAVAILABLE"));
      config.put("methodConfig", List.of(Map.of("name", names, "retryPolicy", retry)));
      config.put("retryThrottling", Map.of("maxTokens", 10.0, "tokenRatio", 0.1));
    }
    return config;
  }
}
