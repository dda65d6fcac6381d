package io.quiver.k8s;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The canary Deployment is a copy of the base pod (deployment-canary.yaml is kept by hand, since
 * kustomize cannot duplicate a resource within one overlay): its pod spec must equal the stable one's
 * but for the server image, and its track labels must keep the two Deployments' selectors apart.
 */
class CanaryOverlayTest {
  @Test
  void canaryPod_isTheStablePod_withAnotherImage_andSelectorsThatDoNotOverlap() throws Exception {
    Map<String, ObjectNode> resources = Manifests.render("overlays/canary");
    ObjectNode stable = resources.get("Deployment/quiver").deepCopy();
    ObjectNode canary = resources.get("Deployment/quiver-canary").deepCopy();
    String stableImage = image(stable);
    String canaryImage = image(canary);
    assertThat(canaryImage).isNotEqualTo(stableImage);
    assertThat(stableImage).startsWith("registry.example.com/quiver:");
    assertThat(canaryImage).startsWith("registry.example.com/quiver:");

    ObjectNode stableSpec = (ObjectNode) stable.path("spec").path("template").path("spec");
    ObjectNode canarySpec = (ObjectNode) canary.path("spec").path("template").path("spec");
    String normalized = canarySpec.toString().replace(canaryImage, stableImage);
    assertThat(Manifests.YAML.readTree(normalized)).isEqualTo(stableSpec);

    var stableSelector = stable.path("spec").path("selector").path("matchLabels");
    var canarySelector = canary.path("spec").path("selector").path("matchLabels");
    assertThat(stableSelector.path("quiver.io/track").asText()).isEqualTo("stable");
    assertThat(canarySelector.path("quiver.io/track").asText()).isEqualTo("canary");
    assertThat(stable.path("spec").path("template").path("metadata").path("labels").path("quiver.io/track").asText())
        .isEqualTo("stable");
    assertThat(canary.path("spec").path("template").path("metadata").path("labels").path("quiver.io/track").asText())
        .isEqualTo("canary");
  }

  private static String image(ObjectNode deployment) {
    for (var c : deployment.path("spec").path("template").path("spec").path("containers")) {
      if (c.path("name").asText().equals("quiver")) {
        return c.path("image").asText();
      }
    }
    throw new AssertionError("no quiver container");
  }
}
