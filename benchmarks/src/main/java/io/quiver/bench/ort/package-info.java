/** The in-process ONNX Runtime baseline: the model run directly, with Quiver's session settings, no server. */
package io.quiver.bench.ort;
