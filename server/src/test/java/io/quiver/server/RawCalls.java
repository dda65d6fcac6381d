package io.quiver.server;

import com.google.protobuf.Descriptors;
import com.google.protobuf.DynamicMessage;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.MethodDescriptor;
import io.grpc.ServiceDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.ProtoServiceDescriptorSupplier;
import io.grpc.stub.ClientCalls;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * gRPC calls with raw message bytes, for sending what no stub would: any method by name, one message,
 * then half-close (the wire is the same whatever the method's declared kind). Stateless.
 */
final class RawCalls {
  private RawCalls() {}

  static final MethodDescriptor.Marshaller<byte[]> BYTES = new MethodDescriptor.Marshaller<>() {
    @Override
    public InputStream stream(byte[] value) {
      return new ByteArrayInputStream(value);
    }

    @Override
    public byte[] parse(InputStream stream) {
      try {
        return stream.readAllBytes();
      } catch (IOException e) {
        throw new IllegalStateException(e);
      }
    }
  };

  /** A method of the service as a unary call of bytes. */
  static MethodDescriptor<byte[], byte[]> method(String fullName) {
    return MethodDescriptor.<byte[], byte[]>newBuilder()
        .setType(MethodDescriptor.MethodType.UNARY)
        .setFullMethodName(fullName)
        .setRequestMarshaller(BYTES)
        .setResponseMarshaller(BYTES)
        .build();
  }

  /** The status of one call (OK when it answered). */
  static Status call(Channel channel, String fullName, byte[] message, long timeoutMillis) {
    try {
      ClientCalls.blockingUnaryCall(channel, method(fullName),
          CallOptions.DEFAULT.withDeadlineAfter(timeoutMillis, TimeUnit.MILLISECONDS), message);
      return Status.OK;
    } catch (StatusRuntimeException e) {
      return e.getStatus();
    }
  }

  /** One method of a service: its full name and its request message type. */
  record Method(String fullName, Descriptors.Descriptor requestType) {
    /** Whether these bytes parse as the request type (as the server's marshaller would parse them). */
    boolean parses(byte[] bytes) {
      try {
        com.google.protobuf.CodedInputStream in = com.google.protobuf.CodedInputStream.newInstance(bytes);
        DynamicMessage.newBuilder(requestType).mergeFrom(in).build();
        in.checkLastTagWas(0);
        return true;
      } catch (IOException e) { // InvalidProtocolBufferException
        return false;
      }
    }

    /** Whether field 1 of the request is a string (where invalid UTF-8 is a parse error). */
    boolean firstFieldIsString() {
      Descriptors.FieldDescriptor first = requestType.findFieldByNumber(1);
      return first != null && first.getType() == Descriptors.FieldDescriptor.Type.STRING;
    }
  }

  /** Every method of a generated service, from its schema descriptor. */
  static List<Method> methods(ServiceDescriptor service) {
    Descriptors.ServiceDescriptor schema =
        ((ProtoServiceDescriptorSupplier) service.getSchemaDescriptor()).getServiceDescriptor();
    List<Method> out = new ArrayList<>();
    for (Descriptors.MethodDescriptor m : schema.getMethods()) {
      out.add(new Method(schema.getFullName() + "/" + m.getName(), m.getInputType()));
    }
    return out;
  }
}
