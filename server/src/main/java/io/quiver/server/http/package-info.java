/** The REST v2 data plane (KServe v2 HTTP/JSON with Triton's extras and binary tensor extension), served by Netty. */
package io.quiver.server.http;
