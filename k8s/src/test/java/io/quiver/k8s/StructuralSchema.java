package io.quiver.k8s;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Validates a custom resource against its CRD's structural OpenAPI v3 schema as the API server does
 * with strict field validation ({@code kubectl apply --validate=strict}): unknown fields are errors
 * (unless {@code x-kubernetes-preserve-unknown-fields}), types, {@code required}, {@code enum},
 * {@code x-kubernetes-int-or-string}, {@code anyOf}/{@code allOf}, numeric and length bounds,
 * {@code pattern}. {@code metadata} is checked as the API server checks an ObjectMeta's shape here
 * only for being an object. Not evaluated: {@code x-kubernetes-validations} (CEL rules) and
 * {@code format}; list-type annotations only matter to merges. A schema keyword this class does not
 * know fails the check, so a newer schema cannot silently weaken it.
 */
final class StructuralSchema {
  private static final Set<String> KEYWORDS = Set.of("type", "properties", "required", "items",
      "additionalProperties", "enum", "default", "format", "nullable", "anyOf", "allOf", "oneOf", "pattern",
      "maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum", "maxLength", "minLength", "maxItems",
      "minItems", "maxProperties", "minProperties", "x-kubernetes-int-or-string",
      "x-kubernetes-preserve-unknown-fields", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
      "x-kubernetes-map-type", "x-kubernetes-validations", "x-kubernetes-embedded-resource", "description", "title");

  private final JsonNode root;

  private StructuralSchema(JsonNode root) {
    this.root = root;
  }

  static StructuralSchema load(String resource) throws IOException {
    try (InputStream in = StructuralSchema.class.getClassLoader().getResourceAsStream(resource)) {
      if (in == null) {
        throw new IllegalArgumentException("no schema " + resource + " on the test class path");
      }
      return new StructuralSchema(new ObjectMapper().readTree(in));
    }
  }

  /** Every violation, each with its path; empty when {@code document} is valid. */
  List<String> violations(JsonNode document) {
    List<String> out = new ArrayList<>();
    check(root, document, "", out);
    return out;
  }

  private void check(JsonNode schema, JsonNode value, String path, List<String> out) {
    for (Iterator<String> it = schema.fieldNames(); it.hasNext(); ) {
      String keyword = it.next();
      if (!KEYWORDS.contains(keyword)) {
        throw new IllegalStateException("schema keyword '" + keyword + "' at " + path + " is not handled");
      }
    }
    if (value.isNull()) {
      if (!schema.path("nullable").asBoolean(false)) {
        out.add(path + ": null is not allowed");
      }
      return;
    }
    for (JsonNode sub : schema.path("allOf")) {
      check(sub, value, path, out);
    }
    if (schema.has("anyOf") && !schema.path("x-kubernetes-int-or-string").asBoolean(false)) {
      boolean any = false;
      for (JsonNode sub : schema.path("anyOf")) {
        List<String> trial = new ArrayList<>();
        check(sub, value, path, trial);
        any |= trial.isEmpty();
      }
      if (!any) {
        out.add(path + ": matches none of anyOf");
      }
    }
    if (schema.path("x-kubernetes-int-or-string").asBoolean(false)) {
      if (!(value.isIntegralNumber() || value.isTextual())) {
        out.add(path + ": must be an integer or a string");
      }
      return;
    }
    String type = schema.path("type").asText("");
    switch (type) {
      case "object" -> checkObject(schema, value, path, out);
      case "array" -> {
        if (!value.isArray()) {
          out.add(path + ": must be an array");
          return;
        }
        bound(schema, "minItems", value.size(), true, path, out);
        bound(schema, "maxItems", value.size(), false, path, out);
        for (int i = 0; i < value.size(); i++) {
          check(schema.path("items"), value.get(i), path + "[" + i + "]", out);
        }
      }
      case "string" -> {
        if (!value.isTextual()) {
          out.add(path + ": must be a string; was " + value);
          return;
        }
        bound(schema, "minLength", value.asText().length(), true, path, out);
        bound(schema, "maxLength", value.asText().length(), false, path, out);
        if (schema.has("pattern") && !java.util.regex.Pattern.compile(schema.get("pattern").asText())
            .matcher(value.asText()).find()) {
          out.add(path + ": '" + value.asText() + "' does not match " + schema.get("pattern").asText());
        }
      }
      case "integer" -> {
        if (!value.isIntegralNumber()) {
          out.add(path + ": must be an integer; was " + value);
          return;
        }
        bound(schema, "minimum", value.asLong(), true, path, out);
        bound(schema, "maximum", value.asLong(), false, path, out);
      }
      case "number" -> {
        if (!value.isNumber()) {
          out.add(path + ": must be a number; was " + value);
        }
      }
      case "boolean" -> {
        if (!value.isBoolean()) {
          out.add(path + ": must be a boolean; was " + value);
        }
      }
      case "" -> {
        if (!schema.path("x-kubernetes-preserve-unknown-fields").asBoolean(false) && !schema.has("allOf")
            && !schema.has("anyOf")) {
          out.add(path + ": schema has no type");
        }
      }
      default -> throw new IllegalStateException("type '" + type + "' at " + path);
    }
    if (schema.has("enum")) {
      boolean found = false;
      for (JsonNode allowed : schema.get("enum")) {
        found |= allowed.equals(value);
      }
      if (!found) {
        out.add(path + ": " + value + " is not one of " + schema.get("enum"));
      }
    }
  }

  private void checkObject(JsonNode schema, JsonNode value, String path, List<String> out) {
    if (!value.isObject()) {
      out.add(path + ": must be an object; was " + value);
      return;
    }
    if (path.equals(".metadata")) {
      return; // ObjectMeta: the API server's own type, not part of the CRD's schema
    }
    JsonNode properties = schema.path("properties");
    JsonNode additional = schema.get("additionalProperties");
    boolean preserve = schema.path("x-kubernetes-preserve-unknown-fields").asBoolean(false);
    Set<String> present = new HashSet<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = value.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> field = it.next();
      present.add(field.getKey());
      String childPath = path + "." + field.getKey();
      if (properties.has(field.getKey())) {
        check(properties.get(field.getKey()), field.getValue(), childPath, out);
      } else if (additional != null && additional.isObject()) {
        check(additional, field.getValue(), childPath, out);
      } else if (!preserve && !(additional != null && additional.asBoolean(false))) {
        out.add(childPath + ": unknown field");
      }
    }
    for (JsonNode required : schema.path("required")) {
      if (!present.contains(required.asText())) {
        out.add(path + "." + required.asText() + ": required");
      }
    }
  }

  private static void bound(JsonNode schema, String keyword, long actual, boolean lower, String path, List<String> out) {
    if (schema.has(keyword)) {
      long limit = schema.get(keyword).asLong();
      if (lower ? actual < limit : actual > limit) {
        out.add(path + ": " + keyword + " " + limit + " violated (" + actual + ")");
      }
    }
  }
}
