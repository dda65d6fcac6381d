package io.quiver.k8s;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The part of the prometheus-community/prometheus-adapter chart's values that k8s/autoscaling sets,
 * read strictly (an unknown key fails): {@code prometheus.url/port} and {@code rules}, whose
 * {@code custom} entries are the adapter's discovery rules (seriesQuery, resources.overrides,
 * name.matches/as, metricsQuery) as kubernetes-sigs/prometheus-adapter's docs/config.md defines them.
 */
record AdapterValues(Prometheus prometheus, Rules rules) {
  record Prometheus(String url, int port) {}

  record Rules(boolean defaults, List<Rule> custom) {
    @com.fasterxml.jackson.annotation.JsonCreator
    Rules(@com.fasterxml.jackson.annotation.JsonProperty("default") boolean defaults,
        @com.fasterxml.jackson.annotation.JsonProperty("custom") List<Rule> custom) {
      this.defaults = defaults;
      this.custom = custom;
    }
  }

  record Rule(String seriesQuery, Resources resources, Name name, String metricsQuery) {}

  record Resources(Map<String, Override> overrides) {}

  record Override(String resource, String group) {}

  record Name(String matches, String as) {}

  private static final ObjectMapper YAML = YAMLMapper.builder()
      .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
      .build();
  private static final Pattern METRIC_NAME = Pattern.compile("\\b(quiver_[a-z_]+|nv_[a-z_]+)\\b");

  static AdapterValues read(Path file) throws IOException {
    AdapterValues values = YAML.readValue(file.toFile(), AdapterValues.class);
    for (Rule rule : values.rules().custom()) {
      if (rule.seriesQuery() == null || rule.name() == null || rule.name().as() == null || rule.metricsQuery() == null
          || rule.resources() == null) {
        throw new IllegalArgumentException(file + ": a rule needs seriesQuery, resources, name.matches/as and metricsQuery");
      }
      String series = seriesName(rule.seriesQuery());
      if (!Pattern.compile(rule.name().matches()).matcher(series).find()) {
        throw new IllegalArgumentException(file + ": name.matches " + rule.name().matches() + " does not match " + series);
      }
      if (!rule.metricsQuery().contains("<<.LabelMatchers>>") || !rule.metricsQuery().contains("<<.GroupBy>>")) {
        throw new IllegalArgumentException(file + ": metricsQuery of " + rule.name().as()
            + " must keep <<.LabelMatchers>> and <<.GroupBy>> (per-pod values)");
      }
    }
    return values;
  }

  /** The metric name a seriesQuery selects. */
  static String seriesName(String seriesQuery) {
    return seriesQuery.substring(0, seriesQuery.contains("{") ? seriesQuery.indexOf('{') : seriesQuery.length()).trim();
  }

  /** The Quiver and Triton metric names a PromQL expression reads. */
  static List<String> metricNames(String promql) {
    Matcher m = METRIC_NAME.matcher(promql);
    return m.results().map(r -> r.group(1)).distinct().toList();
  }
}
