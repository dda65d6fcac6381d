/** TensorFlow SavedModels behind the ModelRuntime SPI: config completion from a signature and one TensorFlow session per model instance. */
package io.quiver.runtime.tensorflow;
