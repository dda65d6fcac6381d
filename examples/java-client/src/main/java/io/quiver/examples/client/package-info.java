/**
 * Runnable examples of the Java client against a Quiver serving {@code examples/models}: blocking, asynchronous
 * and streaming inference, TLS with an API key, error handling, and the control plane.
 */
package io.quiver.examples.client;
