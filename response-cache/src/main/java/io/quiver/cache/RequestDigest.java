package io.quiver.cache;

import com.google.protobuf.CodedOutputStream;
import io.quiver.core.InferRequest;
import io.quiver.core.Tensor;
import io.quiver.proto.inference.ModelConfig;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * The SHA-256 that identifies a request's answer: a tag of the model version (name, version number,
 * and its complete config, serialized deterministically) followed by everything in the request that
 * changes the answer: each input in signature order (present or not, datatype, shape, byte length,
 * bytes) and the outputs asked for. Priority, timeout, the request id and transport details do not
 * change the answer and are left out. Every field is length-prefixed, so two different requests
 * never feed the same bytes.
 *
 * <p>Thread-safe: each thread hashes with its own {@link MessageDigest} (SHA-256 runs on the CPU's
 * SHA extensions where the JDK has an intrinsic for them). Allocates the 32-byte result and one
 * buffer view per input.
 */
final class RequestDigest {
  private static final byte[] DOMAIN = "quiver-response-cache/1".getBytes(StandardCharsets.US_ASCII);
  private static final ThreadLocal<Hasher> HASHER = ThreadLocal.withInitial(Hasher::new);

  private final byte[] versionTag;

  /** @param config the version's complete config */
  RequestDigest(String model, long version, ModelConfig config) {
    Hasher h = HASHER.get();
    h.digest.reset();
    h.digest.update(DOMAIN);
    h.string(model);
    h.putLong(version);
    h.bytes(deterministic(config));
    this.versionTag = h.digest.digest();
  }

  /** The per-thread digest, already fed with the version tag; add what the key depends on, then {@link Hasher#finish}. */
  Hasher begin() {
    Hasher h = HASHER.get();
    h.digest.reset();
    h.digest.update(versionTag);
    return h;
  }

  /** The request's digest: {@code begin()}, the request's inputs and outputs, then finish. */
  byte[] of(InferRequest request) {
    return begin().request(request).finish();
  }

  /** One thread's SHA-256 and a scratch buffer for numbers. Not thread-safe (one per thread). */
  static final class Hasher {
    final MessageDigest digest;
    private final ByteBuffer scratch = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);

    Hasher() {
      try {
        digest = MessageDigest.getInstance("SHA-256");
      } catch (NoSuchAlgorithmException e) {
        throw new IllegalStateException("the JDK has no SHA-256", e); // every JDK has it
      }
    }

    Hasher putLong(long value) {
      scratch.clear();
      scratch.putLong(value);
      digest.update(scratch.array(), 0, 8);
      return this;
    }

    Hasher string(String value) {
      return bytes(value.getBytes(StandardCharsets.UTF_8));
    }

    Hasher bytes(byte[] value) {
      putLong(value.length);
      digest.update(value);
      return this;
    }

    /** The request's inputs (in signature order) and requested outputs. */
    Hasher request(InferRequest request) {
      Tensor[] inputs = request.inputs();
      putLong(inputs.length);
      for (Tensor input : inputs) {
        if (input == null) {
          putLong(-1); // an absent optional input
          continue;
        }
        putLong(input.dataType().ordinal());
        long[] shape = input.shape();
        putLong(shape.length);
        for (long dim : shape) {
          putLong(dim);
        }
        putLong(input.byteSize());
        digest.update(input.data());
      }
      int[] outputs = request.outputIndices();
      putLong(outputs.length);
      for (int output : outputs) {
        putLong(output);
      }
      return this;
    }

    byte[] finish() {
      return digest.digest();
    }
  }

  /** The config's bytes in protobuf's deterministic serialization (map entries in key order). */
  private static byte[] deterministic(ModelConfig config) {
    try {
      ByteArrayOutputStream out = new ByteArrayOutputStream(config.getSerializedSize());
      CodedOutputStream coded = CodedOutputStream.newInstance(out);
      coded.useDeterministicSerialization();
      config.writeTo(coded);
      coded.flush();
      return out.toByteArray();
    } catch (IOException e) {
      throw new IllegalStateException("serializing into memory cannot fail", e);
    }
  }
}
