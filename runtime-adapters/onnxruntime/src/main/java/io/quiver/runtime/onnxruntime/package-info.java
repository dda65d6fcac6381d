/** ONNX Runtime behind the ModelRuntime SPI: config completion from ONNX files, and one OrtSession per model instance on the CPU (optionally pinned to cores) or on a GPU through the CUDA and TensorRT execution providers. */
package io.quiver.runtime.onnxruntime;
