/** The server process: command line, gRPC data plane (KServe v2), health, reflection, and the wiring of the other modules. */
package io.quiver.server;
