/** The inference domain in plain Java: datatypes, tensors, requests, model signatures, validation and the one error type. */
package io.quiver.core;
