/**
 * The model lifecycle: {@link io.quiver.lifecycle.ModelManager} loads, routes to, drains and unloads
 * model versions, and hands reference-counted {@link io.quiver.lifecycle.LoadedVersion} handles to
 * the data plane.
 */
package io.quiver.lifecycle;
