/** Builds ONNX models from Java code: the example repository, test fixtures and benchmark models. */
package io.quiver.examples;
