package io.quiver.server.monitoring;

import io.quiver.core.DataType;
import io.quiver.core.InferenceException;
import io.quiver.core.ModelSignature;
import io.quiver.core.TensorSpec;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * How one monitored tensor is summarised. A tensor whose rows are vectors of a fixed length F
 * ({@code [batch, F]} for a batching model; {@code [F]} or {@code [N, F]} for one that does not) is
 * "columns": one feature per column. Anything else (images, variable widths, more than
 * {@code max_features} columns) is "whole": every element counts towards one feature, "*". BYTES
 * tensors are categorical. Immutable.
 *
 * @param position position among the monitored tensors of its role (index into a sample's data)
 * @param output whether it is an output
 * @param signatureIndex position in the signature's inputs or outputs
 * @param columns the number of columns; 0 = whole
 */
record TensorLayout(int position, boolean output, int signatureIndex, String name, DataType dataType, int columns) {
  static final String WHOLE_FEATURE = "*";

  boolean categorical() {
    return dataType == DataType.BYTES;
  }

  /** Features summarised: the columns, or 1 for a whole tensor. */
  int features() {
    return columns == 0 ? 1 : columns;
  }

  String role() {
    return output ? "output" : "input";
  }

  String layoutName() {
    return columns == 0 ? "whole" : "columns";
  }

  String featureName(int feature) {
    return columns == 0 ? WHOLE_FEATURE : Integer.toString(feature);
  }

  /** Rows a sample of {@code elements} elements holds (a whole tensor counts its elements). */
  long rows(long elements) {
    return columns == 0 ? elements : elements / columns;
  }

  /**
   * The monitored inputs then outputs of a signature.
   *
   * @throws InferenceException INVALID_ARGUMENT when {@code quiver.monitoring.tensors} names a tensor
   *     the model does not have
   */
  static List<TensorLayout> plan(String model, ModelSignature signature, MonitoringConfig config) {
    Set<String> wanted = new HashSet<>(config.tensors());
    List<TensorLayout> layouts = new ArrayList<>();
    int position = 0;
    for (int i = 0; i < signature.inputs().size(); i++) {
      TensorSpec spec = signature.inputs().get(i);
      wanted.remove(spec.name());
      if (config.tensors().isEmpty() || config.tensors().contains(spec.name())) {
        layouts.add(new TensorLayout(position++, false, i, spec.name(), spec.dataType(), columns(signature, spec, config)));
      }
    }
    position = 0;
    for (int i = 0; i < signature.outputs().size(); i++) {
      TensorSpec spec = signature.outputs().get(i);
      wanted.remove(spec.name());
      if (config.tensors().isEmpty() || config.tensors().contains(spec.name())) {
        layouts.add(new TensorLayout(position++, true, i, spec.name(), spec.dataType(), columns(signature, spec, config)));
      }
    }
    if (!wanted.isEmpty()) {
      throw InferenceException.invalidArgument("model '%s': parameters['%s'] names %s, which the model has neither as"
          + " input nor as output", model, MonitoringConfig.TENSORS, wanted);
    }
    return layouts;
  }

  private static int columns(ModelSignature signature, TensorSpec spec, MonitoringConfig config) {
    long[] dims = spec.dims();
    long[] perRow;
    if (signature.batches() || dims.length <= 1) {
      perRow = dims;
    } else {
      perRow = java.util.Arrays.copyOfRange(dims, 1, dims.length);
    }
    long columns;
    if (perRow.length == 0) {
      columns = 1;
    } else if (perRow.length == 1 && perRow[0] >= 1) {
      columns = perRow[0];
    } else {
      columns = 0;
    }
    return columns > config.maxFeatures() ? 0 : (int) columns;
  }
}
