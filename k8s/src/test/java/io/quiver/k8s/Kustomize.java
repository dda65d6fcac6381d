package io.quiver.k8s;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Just enough of kustomize to render our kustomizations the way {@code kubectl kustomize} does, so the
 * overlays' final Deployments can be checked (no kustomize binary runs here). It knows exactly the
 * fields our kustomization.yaml files use and refuses any other, so an overlay cannot quietly depend
 * on something this renderer would get wrong:
 *
 * <ul>
 *   <li>{@code resources}: files (multi-document) and directories holding a kustomization.yaml;
 *   <li>{@code patches} with {@code path} (strategic merge patches; the target is the patch's own
 *       kind and name, or {@code target.kind}/{@code target.name}); lists merge by the Kubernetes
 *       patch merge keys of the fields we patch (containers, initContainers, volumes, env,
 *       volumeMounts, ports, imagePullSecrets) and are replaced otherwise (args, command, tolerations);
 *       {@code $patch: delete} on a document or a list element;
 *   <li>{@code images} ({@code name}, {@code newName}, {@code newTag}) on every container image;
 *   <li>{@code configMapGenerator} with {@code files} ({@code key=file} or {@code file}).
 * </ul>
 * Not modelled: the content hash kustomize appends to generated ConfigMap names (references keep the
 * plain name here), which changes nothing the tests check.
 */
final class Kustomize {
  static final Set<String> KNOWN_FIELDS = Set.of("apiVersion", "kind", "resources", "patches", "images",
      "configMapGenerator");
  private static final Map<String, String> MERGE_KEYS = Map.of(
      "containers", "name", "initContainers", "name", "volumes", "name", "env", "name",
      "volumeMounts", "mountPath", "imagePullSecrets", "name");

  private Kustomize() {}

  /** The resources {@code dir}'s kustomization produces. */
  static List<ObjectNode> render(Path dir) throws IOException {
    Path file = dir.resolve("kustomization.yaml");
    if (!Files.isRegularFile(file)) {
      throw new IllegalArgumentException(dir + " has no kustomization.yaml");
    }
    ObjectNode k = Manifests.documents(file).get(0);
    for (Iterator<String> it = k.fieldNames(); it.hasNext(); ) {
      String field = it.next();
      if (!KNOWN_FIELDS.contains(field)) {
        throw new IllegalArgumentException(file + ": field '" + field + "' is not one the test's renderer knows ("
            + KNOWN_FIELDS + "); extend Kustomize or keep to these");
      }
    }
    if (!"kustomize.config.k8s.io/v1beta1".equals(k.path("apiVersion").asText())
        || !"Kustomization".equals(k.path("kind").asText())) {
      throw new IllegalArgumentException(file + ": not a kustomize.config.k8s.io/v1beta1 Kustomization");
    }
    List<ObjectNode> out = new ArrayList<>();
    for (JsonNode resource : k.path("resources")) {
      Path target = dir.resolve(resource.asText()).normalize();
      if (Files.isDirectory(target)) {
        out.addAll(render(target));
      } else if (Files.isRegularFile(target)) {
        out.addAll(Manifests.documents(target));
      } else {
        throw new IllegalArgumentException(file + ": resource " + resource.asText() + " does not exist");
      }
    }
    for (JsonNode generator : k.path("configMapGenerator")) {
      out.add(configMap(dir, file, generator));
    }
    for (JsonNode patch : k.path("patches")) {
      applyPatch(dir, file, patch, out);
    }
    for (JsonNode image : k.path("images")) {
      for (ObjectNode doc : out) {
        setImages(doc, image);
      }
    }
    return out;
  }

  private static ObjectNode configMap(Path dir, Path file, JsonNode generator) throws IOException {
    only(generator, file, "name", "files");
    ObjectNode cm = JsonNodeFactory.instance.objectNode();
    cm.put("apiVersion", "v1");
    cm.put("kind", "ConfigMap");
    cm.putObject("metadata").put("name", generator.path("name").asText());
    ObjectNode data = cm.putObject("data");
    for (JsonNode entry : generator.path("files")) {
      String spec = entry.asText();
      String key = spec.contains("=") ? spec.substring(0, spec.indexOf('=')) : Path.of(spec).getFileName().toString();
      Path source = dir.resolve(spec.contains("=") ? spec.substring(spec.indexOf('=') + 1) : spec).normalize();
      if (!source.startsWith(dir)) {
        throw new IllegalArgumentException(file + ": " + spec + " is outside the kustomization's directory"
            + " (kustomize's load restrictor refuses it)");
      }
      data.put(key, Files.readString(source));
    }
    return cm;
  }

  private static void applyPatch(Path dir, Path file, JsonNode patchSpec, List<ObjectNode> resources) throws IOException {
    only(patchSpec, file, "path", "target");
    Path patchFile = dir.resolve(patchSpec.path("path").asText()).normalize();
    for (ObjectNode patch : Manifests.documents(patchFile)) {
      String kind = patchSpec.path("target").path("kind").asText(patch.path("kind").asText());
      String name = patchSpec.path("target").path("name").asText(patch.path("metadata").path("name").asText());
      ObjectNode target = null;
      for (ObjectNode doc : resources) {
        if (doc.path("kind").asText().equals(kind) && doc.path("metadata").path("name").asText().equals(name)) {
          target = doc;
        }
      }
      if (target == null) {
        throw new IllegalArgumentException(patchFile + ": no " + kind + "/" + name + " to patch");
      }
      if ("delete".equals(patch.path("$patch").asText())) {
        resources.remove(target);
        continue;
      }
      merge(target, patch, patchFile + " " + kind + "/" + name);
    }
  }

  /** Strategic merge of {@code patch} into {@code target}, in place. */
  static void merge(ObjectNode target, ObjectNode patch, String where) {
    for (Iterator<Map.Entry<String, JsonNode>> it = patch.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      String field = e.getKey();
      JsonNode value = e.getValue();
      JsonNode current = target.get(field);
      if (value.isNull()) {
        target.remove(field);
      } else if (value.isObject() && current != null && current.isObject()) {
        merge((ObjectNode) current, (ObjectNode) value, where + "." + field);
      } else if (value.isArray() && current != null && current.isArray() && mergeKey(field, (ArrayNode) value) != null) {
        mergeList((ArrayNode) current, (ArrayNode) value, mergeKey(field, (ArrayNode) value), where + "." + field);
      } else {
        target.set(field, value.deepCopy());
      }
    }
  }

  private static String mergeKey(String field, ArrayNode patchList) {
    if (field.equals("ports")) {
      return patchList.size() > 0 && patchList.get(0).has("containerPort") ? "containerPort" : "port";
    }
    return MERGE_KEYS.get(field);
  }

  private static void mergeList(ArrayNode current, ArrayNode patch, String key, String where) {
    for (JsonNode item : patch) {
      if (!item.has(key)) {
        throw new IllegalArgumentException(where + ": a patch element has no merge key '" + key + "'");
      }
      ObjectNode match = null;
      int index = -1;
      for (int i = 0; i < current.size(); i++) {
        if (current.get(i).path(key).equals(item.get(key))) {
          match = (ObjectNode) current.get(i);
          index = i;
        }
      }
      if ("delete".equals(item.path("$patch").asText())) {
        if (match == null) {
          throw new IllegalArgumentException(where + ": nothing with " + key + "=" + item.get(key) + " to delete");
        }
        current.remove(index);
      } else if (match == null) {
        current.add(item.deepCopy());
      } else {
        merge(match, (ObjectNode) item, where + "[" + key + "=" + item.get(key) + "]");
      }
    }
  }

  private static void setImages(JsonNode node, JsonNode image) {
    if (node.isObject()) {
      for (String list : List.of("containers", "initContainers")) {
        for (JsonNode container : node.path(list)) {
          String ref = container.path("image").asText();
          String name = ref.contains("@") ? ref.substring(0, ref.indexOf('@'))
              : ref.lastIndexOf(':') > ref.lastIndexOf('/') ? ref.substring(0, ref.lastIndexOf(':')) : ref;
          if (name.equals(image.path("name").asText())) {
            String newName = image.path("newName").asText(name);
            String tag = image.has("newTag") ? ":" + image.path("newTag").asText()
                : ref.substring(name.length());
            ((ObjectNode) container).put("image", newName + tag);
          }
        }
      }
      node.forEach(child -> setImages(child, image));
    } else if (node.isArray()) {
      node.forEach(child -> setImages(child, image));
    }
  }

  private static void only(JsonNode node, Path file, String... fields) {
    Set<String> allowed = Set.of(fields);
    node.fieldNames().forEachRemaining(f -> {
      if (!allowed.contains(f)) {
        throw new IllegalArgumentException(file + ": '" + f + "' is not supported by the test's renderer here");
      }
    });
  }
}
