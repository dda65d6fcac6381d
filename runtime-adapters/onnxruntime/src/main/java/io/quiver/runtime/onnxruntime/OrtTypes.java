package io.quiver.runtime.onnxruntime;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.TensorInfo.OnnxTensorType;
import io.quiver.core.DataType;

/**
 * Maps between ONNX Runtime's element types and the protocol's datatypes.
 *
 * <p>ONNX Runtime Java 1.23 has no {@link OnnxJavaType} for UINT16, UINT32 or UINT64: it can read
 * such outputs (their bytes are copied out unchanged) but cannot create input tensors of them, so
 * models with unsigned 16/32/64-bit inputs are rejected at load.
 */
final class OrtTypes {
  private OrtTypes() {}

  /** The protocol datatype of an ONNX element type, or null when the protocol has none (complex, float8, int4). */
  static DataType toDataType(OnnxTensorType type) {
    switch (type) {
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: return DataType.BOOL;
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return DataType.UINT8;
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16: return DataType.UINT16;
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32: return DataType.UINT32;
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64: return DataType.UINT64;
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: return DataType.INT8;
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16: return DataType.INT16;
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return DataType.INT32;
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return DataType.INT64;
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return DataType.FP16;
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return DataType.FP32;
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return DataType.FP64;
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16: return DataType.BF16;
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING: return DataType.BYTES;
      default: return null;
    }
  }

  /**
   * The Java type to create an input tensor of this datatype from a ByteBuffer, or null when ONNX
   * Runtime Java cannot create one (UINT16, UINT32, UINT64). BYTES maps to STRING (created from a
   * String[], not a buffer).
   */
  static OnnxJavaType inputJavaType(DataType type) {
    switch (type) {
      case BOOL: return OnnxJavaType.BOOL;
      case UINT8: return OnnxJavaType.UINT8;
      case INT8: return OnnxJavaType.INT8;
      case INT16: return OnnxJavaType.INT16;
      case INT32: return OnnxJavaType.INT32;
      case INT64: return OnnxJavaType.INT64;
      case FP16: return OnnxJavaType.FLOAT16;
      case BF16: return OnnxJavaType.BFLOAT16;
      case FP32: return OnnxJavaType.FLOAT;
      case FP64: return OnnxJavaType.DOUBLE;
      case BYTES: return OnnxJavaType.STRING;
      default: return null;
    }
  }
}
