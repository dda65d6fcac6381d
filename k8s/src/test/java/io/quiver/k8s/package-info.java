/** Tests that check the Kubernetes manifests, Envoy configs, KServe runtime and image layout in k8s/ against the real server. */
package io.quiver.k8s;
