/**
 * Model repositories (Triton's directory layout), config.pbtxt parsing and validation, and version
 * policies: what models and versions exist, and which of them should serve.
 */
package io.quiver.registry;
