package io.quiver.k8s;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MapperFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.PersistentVolumeClaim;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServiceAccount;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicy;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import io.fabric8.openshift.api.model.monitoring.v1.PrometheusRule;
import io.fabric8.openshift.api.model.monitoring.v1.ServiceMonitor;
import java.beans.Introspector;
import java.beans.PropertyDescriptor;
import java.io.IOException;
import java.lang.reflect.Method;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Kubernetes manifests read strictly: each YAML document is bound to fabric8's model class for its
 * apiVersion and kind (a kind we have no model for is an error, so nothing goes unchecked), and any
 * field the model does not know fails, with its path. fabric8's classes accept unknown fields into an
 * {@code additionalProperties} map so as to round-trip them; the walk below refuses every non-empty one,
 * which is what {@code kubectl apply --validate=strict} does with the server's schema.
 */
final class Manifests {
  /** The k8s/ directory of this checkout (set by the build; the working directory otherwise). */
  static final Path K8S = Path.of(System.getProperty("quiver.k8s.dir", ".")).toAbsolutePath().normalize();

  static final ObjectMapper YAML = YAMLMapper.builder(new YAMLFactory())
      .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
      .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
      .enable(DeserializationFeature.FAIL_ON_READING_DUP_TREE_KEY)
      .build();
  static final ObjectMapper JSON = JsonMapper.builder().enable(MapperFeature.SORT_PROPERTIES_ALPHABETICALLY).build();

  /** apiVersion/kind → fabric8 model class: the kinds our manifests may use. */
  static final Map<String, Class<? extends HasMetadata>> MODELS = Map.of(
      "apps/v1/Deployment", Deployment.class,
      "v1/Service", Service.class,
      "v1/ServiceAccount", ServiceAccount.class,
      "v1/ConfigMap", ConfigMap.class,
      "v1/PersistentVolumeClaim", PersistentVolumeClaim.class,
      "policy/v1/PodDisruptionBudget", PodDisruptionBudget.class,
      "autoscaling/v2/HorizontalPodAutoscaler", HorizontalPodAutoscaler.class,
      "networking.k8s.io/v1/NetworkPolicy", NetworkPolicy.class,
      "monitoring.coreos.com/v1/ServiceMonitor", ServiceMonitor.class,
      "monitoring.coreos.com/v1/PrometheusRule", PrometheusRule.class);

  /** Kinds without a Java model on Maven Central: checked against their CRD's schema instead. */
  static final Map<String, String> SCHEMAS = Map.of(
      "serving.kserve.io/v1alpha1/ClusterServingRuntime", "schemas/kserve-clusterservingruntime-v1alpha1.json",
      "serving.kserve.io/v1beta1/InferenceService", "schemas/kserve-inferenceservice-v1beta1.json",
      "keda.sh/v1alpha1/ScaledObject", "schemas/keda-scaledobject-v1alpha1.json");

  private Manifests() {}

  /** The YAML documents of a file, as trees (empty documents skipped). */
  static List<ObjectNode> documents(Path file) throws IOException {
    List<ObjectNode> docs = new ArrayList<>();
    try (var parser = YAML.getFactory().createParser(file.toFile())) {
      var it = YAML.readValues(parser, JsonNode.class);
      while (it.hasNext()) {
        JsonNode node = it.next();
        if (node == null || node.isNull() || node.isMissingNode()) {
          continue;
        }
        if (!(node instanceof ObjectNode object)) {
          throw new IllegalArgumentException(file + ": a document is not a mapping");
        }
        docs.add(object);
      }
    }
    return docs;
  }

  static String typeKey(JsonNode doc) {
    return doc.path("apiVersion").asText() + "/" + doc.path("kind").asText();
  }

  /** One document bound strictly to its model class. */
  static HasMetadata bind(ObjectNode doc, String where) {
    Class<? extends HasMetadata> type = MODELS.get(typeKey(doc));
    if (type == null) {
      throw new IllegalArgumentException(where + ": no model for " + typeKey(doc)
          + " (kinds with a model: " + MODELS.keySet() + "; with a CRD schema: " + SCHEMAS.keySet() + ")");
    }
    HasMetadata resource;
    try {
      resource = YAML.treeToValue(doc, type);
    } catch (IOException e) {
      throw new IllegalArgumentException(where + ": " + e.getMessage(), e);
    }
    List<String> unknown = new ArrayList<>();
    unknownFields(resource, typeKey(doc) + " " + resource.getMetadata().getName(), unknown, new IdentityHashMap<>());
    if (!unknown.isEmpty()) {
      throw new IllegalArgumentException(where + ": unknown fields " + unknown);
    }
    return resource;
  }

  /** Walks fabric8 model objects and collects every key that landed in an additionalProperties map. */
  static void unknownFields(Object value, String path, List<String> out, Map<Object, Boolean> seen) {
    if (value == null || value instanceof String || value instanceof Number || value instanceof Boolean
        || value instanceof Enum<?> || seen.put(value, true) != null) {
      return;
    }
    if (value instanceof Map<?, ?> map) {
      map.forEach((k, v) -> unknownFields(v, path + "." + k, out, seen));
      return;
    }
    if (value instanceof Collection<?> list) {
      int i = 0;
      for (Object item : list) {
        unknownFields(item, path + "[" + i++ + "]", out, seen);
      }
      return;
    }
    if (!value.getClass().getName().startsWith("io.fabric8.")) {
      return;
    }
    try {
      for (PropertyDescriptor property : Introspector.getBeanInfo(value.getClass()).getPropertyDescriptors()) {
        Method getter = property.getReadMethod();
        if (getter == null || getter.getParameterCount() != 0 || property.getName().equals("class")) {
          continue;
        }
        Object child = getter.invoke(value);
        if (property.getName().equals("additionalProperties") && child instanceof Map<?, ?> extra) {
          extra.keySet().forEach(k -> out.add(path + "." + k));
          continue;
        }
        unknownFields(child, path + "." + property.getName(), out, seen);
      }
    } catch (ReflectiveOperationException | java.beans.IntrospectionException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Every YAML file under {@code dir}, recursively, in a stable order. */
  static List<Path> yamlFiles(Path dir) throws IOException {
    try (var walk = Files.walk(dir)) {
      return walk.filter(p -> p.toString().endsWith(".yaml") && !p.toString().contains("/src/")
              && !p.toString().contains("/target/"))
          .sorted().toList();
    }
  }

  /** Renders one kustomization directory with {@link Kustomize}; resources keyed "Kind/name". */
  static Map<String, ObjectNode> render(String relativeDir) throws IOException {
    Map<String, ObjectNode> byKey = new LinkedHashMap<>();
    for (ObjectNode doc : Kustomize.render(K8S.resolve(relativeDir))) {
      String key = doc.path("kind").asText() + "/" + doc.path("metadata").path("name").asText();
      if (byKey.put(key, doc) != null) {
        throw new IllegalArgumentException(relativeDir + ": " + key + " appears twice");
      }
    }
    return byKey;
  }

  static <T> T as(ObjectNode doc, Class<T> type) {
    try {
      return YAML.treeToValue(doc, type);
    } catch (IOException e) {
      throw new IllegalArgumentException(e);
    }
  }
}
