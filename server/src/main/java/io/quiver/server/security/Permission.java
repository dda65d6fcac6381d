package io.quiver.server.security;

/** What a role may do: per model (infer, metadata) or on the server as a whole (administration). */
public enum Permission {
  /** ModelInfer, ModelStreamInfer, POST .../infer. */
  INFER,
  /** ModelMetadata, ModelConfig, ModelStatistics, ModelReady and their REST twins. */
  METADATA,
  /** Repository index/load/unload, logging settings (and, later, the control plane). */
  ADMIN,
  /** Any authenticated caller: ServerMetadata, GET /v2. */
  AUTHENTICATED
}
