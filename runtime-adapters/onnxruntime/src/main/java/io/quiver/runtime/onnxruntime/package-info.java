/** ONNX Runtime (CPU) behind the ModelRuntime SPI: config completion from ONNX files and one OrtSession per model instance. */
package io.quiver.runtime.onnxruntime;
