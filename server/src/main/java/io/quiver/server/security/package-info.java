/** TLS from reloading PEM files, authentication (API keys, JWT), per-model authorization, rate limits and the audit log. */
package io.quiver.server.security;
