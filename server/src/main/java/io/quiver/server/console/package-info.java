/**
 * The operator's web console on the REST port ({@code /console/}): static files from the server jar, and a
 * small JSON API that reads the models, live figures and server facts and changes models through the
 * control plane's own service, in-process (docs/console.md).
 */
package io.quiver.server.console;
