package io.quiver.k8s;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every YAML file under k8s/ is read strictly by what it is: a kustomization (rendered), an Envoy
 * bootstrap or SDS file (Envoy's protos), the Prometheus Adapter values (its config format), or
 * Kubernetes resources (fabric8's model, or the CRD's schema for KServe and KEDA). A file that is none
 * of these fails, so nothing new goes unchecked.
 */
class ManifestFilesTest {
  @Test
  void everyYamlFile_isReadStrictlyByWhatItIs() throws Exception {
    List<Path> files = Manifests.yamlFiles(Manifests.K8S);
    assertThat(files).hasSizeGreaterThan(20);
    List<String> checked = new ArrayList<>();
    for (Path file : files) {
      String name = Manifests.K8S.relativize(file).toString();
      if (file.getFileName().toString().equals("kustomization.yaml")) {
        assertThat(Kustomize.render(file.getParent())).as(name).isNotEmpty();
      } else if (name.startsWith("envoy/") && file.getFileName().toString().equals("envoy.yaml")) {
        EnvoyConfigs.bootstrap(file);
      } else if (name.startsWith("envoy/") && file.getFileName().toString().startsWith("sds-")) {
        assertThat(EnvoyConfigs.discoveryResponse(file).getResourcesCount()).as(name).isEqualTo(1);
      } else if (name.equals("autoscaling/prometheus-adapter-values.yaml")) {
        AdapterValues.read(file);
      } else {
        for (ObjectNode doc : Manifests.documents(file)) {
          checkResource(withoutPatchDirectives(doc), name);
        }
      }
      checked.add(name);
    }
    assertThat(checked).contains("base/deployment.yaml", "kserve/cluster-serving-runtime.yaml",
        "envoy/sidecar/envoy.yaml", "overlays/keda/scaledobject.yaml");
  }

  static void checkResource(ObjectNode doc, String where) throws Exception {
    String type = Manifests.typeKey(doc);
    if (Manifests.SCHEMAS.containsKey(type)) {
      assertThat(StructuralSchema.load(Manifests.SCHEMAS.get(type)).violations(doc)).as(where + " " + type).isEmpty();
    } else {
      Manifests.bind(doc, where);
    }
  }

  /** Kustomize's {@code $patch} directives are not part of the resource. */
  static ObjectNode withoutPatchDirectives(ObjectNode doc) {
    ObjectNode copy = doc.deepCopy();
    strip(copy);
    return copy;
  }

  private static void strip(JsonNode node) {
    if (node instanceof ObjectNode object) {
      object.remove("$patch");
    }
    node.forEach(ManifestFilesTest::strip);
  }

  @Test
  void renderedOverlays_areValidResources() throws Exception {
    for (String dir : List.of("base", "overlays/canary", "overlays/gpu", "overlays/s3", "overlays/keda", "kserve")) {
      for (ObjectNode doc : Manifests.render(dir).values()) {
        checkResource(doc, dir);
      }
    }
  }

  // The checks must be able to fail: each kind of reader refuses a field it does not know.

  @Test
  void aDeploymentWithAnUnknownField_isRefusedWithItsPath(@TempDir Path dir) throws Exception {
    String yaml = Files.readString(Manifests.K8S.resolve("base/deployment.yaml"))
        .replace("          startupProbe:", "          startupProbes:");
    Path file = Files.writeString(dir.resolve("d.yaml"), yaml);
    assertThatThrownBy(() -> Manifests.bind(Manifests.documents(file).get(0), "d.yaml"))
        .hasMessageContaining("unknown fields").hasMessageContaining("startupProbes");
  }

  @Test
  void aKindWithoutModelOrSchema_isRefused() {
    ObjectNode doc = Manifests.YAML.createObjectNode();
    doc.put("apiVersion", "example.com/v1");
    doc.put("kind", "Widget");
    assertThatThrownBy(() -> Manifests.bind(doc, "w.yaml")).hasMessageContaining("no model for example.com/v1/Widget");
  }

  @Test
  void aServingRuntimeWithAnUnknownField_failsItsSchema(@TempDir Path dir) throws Exception {
    String yaml = Files.readString(Manifests.K8S.resolve("kserve/cluster-serving-runtime.yaml"))
        .replace("  protocolVersions:", "  protocolVersion:");
    ObjectNode doc = Manifests.documents(Files.writeString(dir.resolve("r.yaml"), yaml)).get(0);
    assertThat(StructuralSchema.load(Manifests.SCHEMAS.get(Manifests.typeKey(doc))).violations(doc))
        .anySatisfy(v -> assertThat(v).contains(".spec.protocolVersion: unknown field"));
  }

  @Test
  void anEnvoyConfigWithAnUnknownField_isRefused(@TempDir Path dir) throws Exception {
    String yaml = Files.readString(Manifests.K8S.resolve("envoy/sidecar/envoy.yaml"))
        .replace("require_client_certificate: true", "require_client_certs: true");
    Path file = Files.writeString(dir.resolve("envoy.yaml"), yaml);
    assertThatThrownBy(() -> EnvoyConfigs.bootstrap(file)).hasMessageContaining("require_client_certs");
  }

  @Test
  void anEnvoyClusterWithoutName_failsEnvoysOwnValidationRules(@TempDir Path dir) throws Exception {
    String yaml = Files.readString(Manifests.K8S.resolve("envoy/sidecar/envoy.yaml"))
        .replace("stat_prefix: grpc_mtls", "stat_prefix: \"\"");
    Path file = Files.writeString(dir.resolve("envoy.yaml"), yaml);
    assertThatThrownBy(() -> EnvoyConfigs.bootstrap(file)).hasMessageContaining("stat_prefix");
  }
}
