/**
 * The model lifecycle: {@link io.quiver.control.ModelManager} loads, routes to, drains and unloads
 * model versions, and hands reference-counted {@link io.quiver.control.LoadedVersion} handles to
 * the data plane.
 */
package io.quiver.control;
