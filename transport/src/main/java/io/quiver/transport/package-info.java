/**
 * What every network port shares: connection limits and timeouts, the one error-to-gRPC-status mapper,
 * malformed messages answered INVALID_ARGUMENT, and the bound on answers a connection holds unsent.
 */
package io.quiver.transport;
