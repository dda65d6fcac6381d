package io.quiver.k8s;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import com.google.protobuf.Any;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Descriptors.OneofDescriptor;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.util.JsonFormat;
import io.envoyproxy.envoy.config.bootstrap.v3.Bootstrap;
import io.envoyproxy.envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder;
import io.envoyproxy.envoy.extensions.filters.http.health_check.v3.HealthCheck;
import io.envoyproxy.envoy.extensions.filters.http.router.v3.Router;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
import io.envoyproxy.envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.Secret;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext;
import io.envoyproxy.envoy.extensions.upstreams.http.v3.HttpProtocolOptions;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse;
import io.envoyproxy.pgv.validate.Validate;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Envoy configuration files read the way Envoy reads them, strictly: YAML to JSON, then protobuf's JSON
 * parser into Envoy's own v3 API messages (io.envoyproxy.controlplane:api), which refuses unknown
 * fields, wrong types and {@code @type}s this registry does not know. On top of that, the
 * protoc-gen-validate rules Envoy enforces at load that are cheap to check (required messages and
 * oneofs, string and list minimums, numeric and duration bounds) are checked on the parsed messages.
 */
final class EnvoyConfigs {
  /** Every typed_config type our Envoy files use; anything else is a parse error. */
  static final JsonFormat.TypeRegistry TYPES = JsonFormat.TypeRegistry.newBuilder()
      .add(HttpConnectionManager.getDescriptor())
      .add(Router.getDescriptor())
      .add(GrpcJsonTranscoder.getDescriptor())
      .add(HealthCheck.getDescriptor())
      .add(DownstreamTlsContext.getDescriptor())
      .add(UpstreamTlsContext.getDescriptor())
      .add(HttpProtocolOptions.getDescriptor())
      .add(PreviousHostsPredicate.getDescriptor())
      .add(Secret.getDescriptor())
      .build();

  private static final ObjectMapper YAML = new YAMLMapper();
  private static final ObjectMapper JSON = new ObjectMapper();

  private EnvoyConfigs() {}

  /** An Envoy bootstrap file (what {@code envoy --config-path} reads). */
  static Bootstrap bootstrap(Path file) throws IOException {
    Bootstrap.Builder builder = Bootstrap.newBuilder();
    parse(file, builder);
    Bootstrap bootstrap = builder.build();
    validate(bootstrap, file.getFileName().toString());
    return bootstrap;
  }

  /** A file-based SDS/xDS resource file ({@code path_config_source}): a DiscoveryResponse. */
  static DiscoveryResponse discoveryResponse(Path file) throws IOException {
    DiscoveryResponse.Builder builder = DiscoveryResponse.newBuilder();
    parse(file, builder);
    DiscoveryResponse response = builder.build();
    for (Any resource : response.getResourcesList()) {
      validate(unpack(resource), file.getFileName() + " resource");
    }
    return response;
  }

  private static void parse(Path file, Message.Builder builder) throws IOException {
    JsonNode tree = YAML.readTree(Files.readString(file));
    try {
      JsonFormat.parser().usingTypeRegistry(TYPES).merge(JSON.writeValueAsString(tree), builder);
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalArgumentException(file + " is not a valid " + builder.getDescriptorForType().getFullName()
          + ": " + e.getMessage(), e);
    }
  }

  /** The message inside an {@code Any}, resolved through {@link #TYPES}. */
  static Message unpack(Any any) {
    String type = any.getTypeUrl().substring(any.getTypeUrl().lastIndexOf('/') + 1);
    var descriptor = TYPES.find(type);
    if (descriptor == null) {
      throw new IllegalArgumentException("unknown @type " + any.getTypeUrl());
    }
    try {
      return com.google.protobuf.DynamicMessage.parseFrom(descriptor, any.getValue());
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalArgumentException(e);
    }
  }

  /** Every typed config inside {@code message} (recursively), unpacked. */
  static List<Message> typedConfigs(Message message) {
    List<Message> out = new ArrayList<>();
    collect(message, out);
    return out;
  }

  private static void collect(Message message, List<Message> out) {
    for (Map.Entry<FieldDescriptor, Object> e : message.getAllFields().entrySet()) {
      for (Object value : values(e.getKey(), e.getValue())) {
        if (value instanceof Any any) {
          Message inner = unpack(any);
          out.add(inner);
          collect(inner, out);
        } else if (value instanceof Message m) {
          collect(m, out);
        }
      }
    }
  }

  /**
   * The protoc-gen-validate rules of Envoy's API that this test enforces (Envoy itself enforces all of
   * them when it loads a config): {@code message.required}, required oneofs, {@code string.min_len},
   * {@code repeated.min_items}, {@code uint32} bounds, {@code duration} lower bounds, {@code enum.defined_only}.
   *
   * @throws IllegalArgumentException naming the field path and the rule
   */
  static void validate(Message message, String path) {
    var descriptor = message.getDescriptorForType();
    for (OneofDescriptor oneof : descriptor.getRealOneofs()) {
      if (oneof.getOptions().getExtension(Validate.required) && !message.hasOneof(oneof)) {
        throw new IllegalArgumentException(path + ": one of oneof '" + oneof.getName() + "' is required");
      }
    }
    for (FieldDescriptor field : descriptor.getFields()) {
      String fieldPath = path + "." + field.getName();
      Validate.FieldRules rules = field.getOptions().getExtension(Validate.rules);
      boolean present = field.isRepeated() ? message.getRepeatedFieldCount(field) > 0
          : !field.hasPresence() || message.hasField(field);
      // (a required member of a oneof only matters when that member is the one set)
      if (rules.hasMessage() && rules.getMessage().getRequired() && field.getRealContainingOneof() == null
          && !message.hasField(field)) {
        throw new IllegalArgumentException(fieldPath + " is required");
      }
      if (rules.hasRepeated() && rules.getRepeated().hasMinItems()
          && message.getRepeatedFieldCount(field) < rules.getRepeated().getMinItems()) {
        throw new IllegalArgumentException(fieldPath + " needs at least " + rules.getRepeated().getMinItems() + " items");
      }
      if (present && !field.isRepeated()) {
        Object value = message.getField(field);
        if (rules.hasString() && rules.getString().hasMinLen() && ((String) value).length() < rules.getString().getMinLen()) {
          throw new IllegalArgumentException(fieldPath + " must have at least " + rules.getString().getMinLen() + " characters");
        }
        if (rules.hasUint32() && value instanceof Integer n) {
          long v = Integer.toUnsignedLong(n);
          var r = rules.getUint32();
          if ((r.hasGt() && v <= r.getGt()) || (r.hasGte() && v < r.getGte()) || (r.hasLte() && v > r.getLte())
              || (r.hasLt() && v >= r.getLt())) {
            throw new IllegalArgumentException(fieldPath + " = " + v + " is out of range " + r);
          }
        }
        if (rules.hasDuration() && value instanceof com.google.protobuf.Message d
            && d.getDescriptorForType().getFullName().equals("google.protobuf.Duration")) {
          long nanos = com.google.protobuf.util.Durations.toNanos(com.google.protobuf.Duration.newBuilder().mergeFrom(d).build());
          var r = rules.getDuration();
          if ((r.hasGt() && nanos <= com.google.protobuf.util.Durations.toNanos(r.getGt()))
              || (r.hasGte() && nanos < com.google.protobuf.util.Durations.toNanos(r.getGte()))) {
            throw new IllegalArgumentException(fieldPath + " is below its minimum " + r);
          }
        }
        if (rules.hasEnum() && rules.getEnum().getDefinedOnly()
            && value instanceof com.google.protobuf.Descriptors.EnumValueDescriptor ev && ev.getIndex() < 0) {
          throw new IllegalArgumentException(fieldPath + " is not a defined enum value");
        }
      }
      if (field.getJavaType() == FieldDescriptor.JavaType.MESSAGE && (field.isRepeated() || message.hasField(field))) {
        for (Object value : values(field, message.getField(field))) {
          Message child = (Message) value;
          if (field.isMapField()) {
            FieldDescriptor valueField = field.getMessageType().findFieldByName("value");
            if (valueField.getJavaType() != FieldDescriptor.JavaType.MESSAGE) {
              continue;
            }
            child = (Message) child.getField(valueField);
          }
          if (child instanceof Any any) {
            validate(unpack(any), fieldPath);
          } else {
            validate(child, fieldPath);
          }
        }
      }
    }
  }

  private static List<?> values(FieldDescriptor field, Object value) {
    return field.isRepeated() ? (List<?>) value : List.of(value);
  }
}
