package io.quiver.server;

import com.google.protobuf.CodedInputStream;
import com.google.protobuf.ExtensionRegistryLite;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageLite;
import com.google.protobuf.Parser;
import com.google.protobuf.UnsafeByteOperations;
import io.grpc.KnownLength;
import io.grpc.MethodDescriptor;
import io.grpc.ServerMethodDefinition;
import io.grpc.ServerServiceDefinition;
import io.grpc.ServiceDescriptor;
import io.grpc.Status;
import io.quiver.proto.inference.GRPCInferenceServiceGrpc;
import io.quiver.proto.inference.ModelInferRequest;
import java.io.IOException;
import java.io.InputStream;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * Parses inference requests with one copy of the tensor bytes instead of two: the whole message is
 * read from gRPC's stream into one heap array this marshaller allocates per message, and the message
 * is parsed over that array with aliasing on, so {@code raw_input_contents} (and every other bytes
 * field) are {@code ByteString}s that point into it rather than copies. grpc-java's default protobuf
 * marshaller copies each bytes field out of its read buffer; the batcher's gather then copies again.
 *
 * <p>Ownership: the array belongs to the parsed message alone and is never reused, so the aliased
 * bytes stay valid for as long as anything (the queued request, a running batch) holds the message;
 * the garbage collector frees it with the message. No Netty buffer is retained, so there is nothing
 * to release when the request completes. Cost: the array is the message's size (what the copied
 * fields would have cost anyway). Thread-safe and stateless.
 */
final class AliasingRequestMarshaller<T extends MessageLite> implements MethodDescriptor.PrototypeMarshaller<T> {
  /** The first read buffer for a stream that does not tell its length; it grows by doubling. */
  private static final int UNKNOWN_LENGTH_INITIAL_BYTES = 8 * 1024;

  private final T prototype;
  private final MethodDescriptor.Marshaller<T> writer; // the default marshaller, for the client side (stream())
  private final Parser<T> parser;

  @SuppressWarnings("unchecked")
  AliasingRequestMarshaller(T prototype, MethodDescriptor.Marshaller<T> writer) {
    this.prototype = prototype;
    this.writer = writer;
    this.parser = (Parser<T>) prototype.getParserForType();
  }

  @Override
  public T getMessagePrototype() {
    return prototype;
  }

  @Override
  public Class<T> getMessageClass() {
    @SuppressWarnings("unchecked")
    Class<T> type = (Class<T>) prototype.getClass();
    return type;
  }

  @Override
  public InputStream stream(T value) {
    return writer.stream(value);
  }

  /** Allocates the message's size once; the message's bytes fields share that array. */
  @Override
  public T parse(InputStream stream) {
    try {
      byte[] buffer;
      int length;
      if (stream instanceof KnownLength) {
        length = stream.available(); // gRPC's message streams know their exact remaining size
        buffer = new byte[length];
        int read = readFully(stream, buffer, 0, length);
        if (read != length || stream.read() != -1) {
          throw new IOException("message stream said " + length + " bytes, had " + (read == length ? "more" : read));
        }
      } else {
        buffer = new byte[UNKNOWN_LENGTH_INITIAL_BYTES];
        length = 0;
        for (;;) {
          if (length == buffer.length) {
            buffer = Arrays.copyOf(buffer, Math.max(buffer.length, Math.min(Integer.MAX_VALUE - 8, 2 * buffer.length)));
          }
          int n = stream.read(buffer, length, buffer.length - length);
          if (n < 0) {
            break;
          }
          length += n;
        }
      }
      // Aliasing needs an input that knows its bytes are immutable; newInstance(byte[]) does not.
      CodedInputStream input = UnsafeByteOperations.unsafeWrap(buffer, 0, length).newCodedInput();
      input.enableAliasing(true); // bytes fields become views of `buffer`, which no one else holds
      T message = parser.parseFrom(input, ExtensionRegistryLite.getEmptyRegistry());
      // A top-level end-group tag stops parsing early; the whole buffer must have been one message.
      input.checkLastTagWas(0);
      return message;
    } catch (InvalidProtocolBufferException e) {
      // The same status grpc-java's default protobuf marshaller gives.
      throw Status.INTERNAL.withDescription("Invalid protobuf byte sequence").withCause(e).asRuntimeException();
    } catch (IOException e) {
      throw Status.INTERNAL.withDescription("could not read the request message").withCause(e).asRuntimeException();
    }
  }

  private static int readFully(InputStream stream, byte[] buffer, int offset, int length) throws IOException {
    int done = 0;
    while (done < length) {
      int n = stream.read(buffer, offset + done, length - done);
      if (n < 0) {
        break;
      }
      done += n;
    }
    return done;
  }

  /**
   * The inference service with its ModelInfer and ModelStreamInfer marshallers replaced: answers are
   * written by {@link InferResponseStream#marshaller} (successful answers straight from the output
   * tensors), and, with {@code aliasingRequests}, requests are parsed by this marshaller. Every other
   * method, the handlers and the schema descriptor (reflection) are unchanged.
   */
  static ServerServiceDefinition withInferMarshallers(ServerServiceDefinition service, boolean aliasingRequests) {
    Map<String, MethodDescriptor<?, ?>> replaced = new HashMap<>();
    for (MethodDescriptor<?, ?> method : new MethodDescriptor<?, ?>[] {
        GRPCInferenceServiceGrpc.getModelInferMethod(), GRPCInferenceServiceGrpc.getModelStreamInferMethod()}) {
      @SuppressWarnings("unchecked")
      MethodDescriptor<ModelInferRequest, Object> infer = (MethodDescriptor<ModelInferRequest, Object>) method;
      MethodDescriptor.Builder<ModelInferRequest, Object> rebuilt = infer.toBuilder()
          .setResponseMarshaller(InferResponseStream.marshaller(infer.getResponseMarshaller()));
      if (aliasingRequests) {
        rebuilt.setRequestMarshaller(new AliasingRequestMarshaller<>(ModelInferRequest.getDefaultInstance(),
            infer.getRequestMarshaller()));
      }
      replaced.put(method.getFullMethodName(), rebuilt.build());
    }
    ServiceDescriptor original = service.getServiceDescriptor();
    ServiceDescriptor.Builder descriptor = ServiceDescriptor.newBuilder(original.getName())
        .setSchemaDescriptor(original.getSchemaDescriptor());
    for (MethodDescriptor<?, ?> method : original.getMethods()) {
      descriptor.addMethod(replaced.getOrDefault(method.getFullMethodName(), method));
    }
    ServerServiceDefinition.Builder builder = ServerServiceDefinition.builder(descriptor.build());
    for (ServerMethodDefinition<?, ?> method : service.getMethods()) {
      addMethod(builder, method, replaced.get(method.getMethodDescriptor().getFullMethodName()));
    }
    return builder.build();
  }

  @SuppressWarnings("unchecked")
  private static <Q, R> void addMethod(ServerServiceDefinition.Builder builder, ServerMethodDefinition<Q, R> method,
      MethodDescriptor<?, ?> replacement) {
    builder.addMethod(replacement == null ? method
        : ServerMethodDefinition.create((MethodDescriptor<Q, R>) replacement, method.getServerCallHandler()));
  }
}
