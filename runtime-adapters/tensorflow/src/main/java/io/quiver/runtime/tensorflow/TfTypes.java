package io.quiver.runtime.tensorflow;

import io.quiver.core.DataType;
import org.tensorflow.types.TBfloat16;
import org.tensorflow.types.TBool;
import org.tensorflow.types.TFloat16;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TFloat64;
import org.tensorflow.types.TInt32;
import org.tensorflow.types.TInt64;
import org.tensorflow.types.TString;
import org.tensorflow.types.TUint16;
import org.tensorflow.types.TUint8;
import org.tensorflow.types.family.TType;

/**
 * Maps between TensorFlow's element types ({@code org.tensorflow.proto.DataType}) and the protocol's
 * datatypes. Only the types TensorFlow Java 1.1 has a tensor class for can be fed or fetched:
 *
 * <pre>
 *   DT_BOOL     BOOL   (1 byte)      DT_INT32    INT32      DT_HALF     FP16
 *   DT_UINT8    UINT8                DT_INT64    INT64      DT_BFLOAT16 BF16
 *   DT_UINT16   UINT16               DT_FLOAT    FP32       DT_DOUBLE   FP64
 *   DT_STRING   BYTES (arbitrary bytes per element, no UTF-8 requirement)
 * </pre>
 *
 * DT_INT8, DT_INT16, DT_UINT32, DT_UINT64 (no tensor class in TensorFlow Java 1.1), complex,
 * quantized, resource and variant types have no mapping: a signature using them fails to load.
 */
final class TfTypes {
  private TfTypes() {}

  /** The protocol datatype of a TensorFlow element type, or null when this runtime cannot feed or fetch it. */
  static DataType toDataType(org.tensorflow.proto.DataType type) {
    switch (type) {
      case DT_BOOL: return DataType.BOOL;
      case DT_UINT8: return DataType.UINT8;
      case DT_UINT16: return DataType.UINT16;
      case DT_INT32: return DataType.INT32;
      case DT_INT64: return DataType.INT64;
      case DT_HALF: return DataType.FP16;
      case DT_BFLOAT16: return DataType.BF16;
      case DT_FLOAT: return DataType.FP32;
      case DT_DOUBLE: return DataType.FP64;
      case DT_STRING: return DataType.BYTES;
      default: return null;
    }
  }

  /** The TensorFlow Java tensor class for a protocol datatype, or null when there is none. */
  static Class<? extends TType> tensorClass(DataType type) {
    switch (type) {
      case BOOL: return TBool.class;
      case UINT8: return TUint8.class;
      case UINT16: return TUint16.class;
      case INT32: return TInt32.class;
      case INT64: return TInt64.class;
      case FP16: return TFloat16.class;
      case BF16: return TBfloat16.class;
      case FP32: return TFloat32.class;
      case FP64: return TFloat64.class;
      case BYTES: return TString.class;
      default: return null;
    }
  }
}
