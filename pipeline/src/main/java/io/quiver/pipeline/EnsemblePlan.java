package io.quiver.pipeline;

import io.quiver.core.DataType;
import io.quiver.core.InferenceException;
import io.quiver.core.ModelSignature;
import io.quiver.core.TensorSpec;
import io.quiver.core.spi.ModelHandle;
import io.quiver.core.spi.ModelRouter;
import io.quiver.core.spi.SchedulerDecorator;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelEnsembling;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An ensemble's graph, checked against its step models and turned into index tables once, at load.
 *
 * <p>Every tensor the ensemble names gets a number: the ensemble's inputs first (in signature order),
 * then each tensor a step writes. A step reads tensors by number and writes tensors by number; which
 * steps a request needs follows from the outputs it asks for ({@link #stepsFor}), as a bit mask (at
 * most 64 steps). Every error names the step (its position in {@code ensemble_scheduling.step}, from
 * 0, and its model) and the tensor.
 *
 * <p>Immutable after {@link #build}, apart from each step's cached {@link Binding} to the signature of
 * the step model version it last ran on (a volatile reference, replaced when a hot swap brings a new
 * signature). Thread-safe.
 */
final class EnsemblePlan {
  private static final Logger log = LoggerFactory.getLogger(EnsemblePlan.class);
  /** How deep ensembles of ensembles may nest. */
  static final int MAX_NESTING = 8;

  final String name;
  final long version;
  final String label;
  final ModelSignature signature;
  final int inputCount;
  final String[] tensorNames;
  final DataType[] tensorTypes;
  /** Full shapes: with the batch dimension (-1) first when the writer (or the ensemble, for its inputs) batches. */
  final long[][] tensorShapes;
  /** Per tensor: the step that writes it, or -1 for an ensemble input. */
  final int[] producer;
  /** Per tensor: the steps that read it, as a bit mask. */
  final long[] consumers;
  final Step[] steps;
  /** Per ensemble output (signature order): its tensor. */
  final int[] outputTensor;
  /** Per step: itself and every step it depends on, transitively, as a bit mask. */
  final long[] ancestors;
  // Written by link() during build, before the plan is handed to its scheduler (whose final field publishes it).
  private long allOutputsSteps;

  /** One step: what it reads and writes, by tensor number, and the steps around it. */
  static final class Step {
    final int index;
    final String model;
    /** The version a request asks the router for: "" for -1 (the routed version). */
    final String version;
    final String label;
    /** Mapped step-model input names and the tensor each reads, sorted by input name. */
    final String[] inputNames;
    final int[] inputTensors;
    /** Mapped step-model output names and the tensor each writes, sorted by output name. */
    final String[] outputNames;
    final int[] outputTensors;
    /** Steps that read a tensor this step writes (distinct). */
    int[] dependents;
    /** Distinct steps whose tensors this step reads: how many must finish before it can start. */
    int producerCount;
    // The binding to the signature of the step model version last seen; replaced after a hot swap.
    private volatile Binding binding;

    Step(int index, String model, long version, String[] inputNames, int[] inputTensors, String[] outputNames,
        int[] outputTensors) {
      this.index = index;
      this.model = model;
      this.version = version < 0 ? "" : Long.toString(version);
      this.label = "step " + index + " (model '" + model + "'" + (version < 0 ? "" : " version " + version) + ")";
      this.inputNames = inputNames;
      this.inputTensors = inputTensors;
      this.outputNames = outputNames;
      this.outputTensors = outputTensors;
    }
  }

  /**
   * A step laid onto one step-model signature: which tensor feeds each of the model's inputs (in its
   * signature order) and which of its outputs to ask for. Immutable.
   */
  static final class Binding {
    final ModelSignature signature;
    /** Per signature input: the tensor it reads, or -1 (an optional input left unmapped). */
    final int[] inputTensorBySlot;
    /** Per signature input: its name (what the step request's tensor must be called). */
    final String[] inputNameBySlot;
    /** Aligned with {@link Step#outputTensors}: the signature position of each mapped output. */
    final int[] outputIndices;

    Binding(ModelSignature signature, int[] inputTensorBySlot, String[] inputNameBySlot, int[] outputIndices) {
      this.signature = signature;
      this.inputTensorBySlot = inputTensorBySlot;
      this.inputNameBySlot = inputNameBySlot;
      this.outputIndices = outputIndices;
    }
  }

  private EnsemblePlan(String name, long version, ModelSignature signature, List<String> names, List<DataType> types,
      List<long[]> shapes, List<Integer> producers, Step[] steps, int[] outputTensor) {
    this.name = name;
    this.version = version;
    this.label = "ensemble '" + name + "' version " + version;
    this.signature = signature;
    this.inputCount = signature.inputs().size();
    this.tensorNames = names.toArray(new String[0]);
    this.tensorTypes = types.toArray(new DataType[0]);
    this.tensorShapes = shapes.toArray(new long[0][]);
    this.producer = producers.stream().mapToInt(Integer::intValue).toArray();
    this.steps = steps;
    this.outputTensor = outputTensor;
    this.consumers = new long[tensorNames.length];
    for (Step step : steps) {
      for (int t : step.inputTensors) {
        consumers[t] |= 1L << step.index;
      }
    }
    this.ancestors = new long[steps.length];
  }

  /** The steps a request asking for these outputs must run (ancestors of the outputs' writers), as a bit mask. */
  long stepsFor(int[] outputIndices) {
    if (outputIndices == signature.allOutputIndices()) {
      return allOutputsSteps;
    }
    long mask = 0;
    for (int o : outputIndices) {
      mask |= ancestors[producer[outputTensor[o]]];
    }
    return mask;
  }

  /** The step models this ensemble calls, by step. */
  List<String> stepModels() {
    List<String> out = new ArrayList<>(steps.length);
    for (Step step : steps) {
      out.add(step.model);
    }
    return out;
  }

  /**
   * The binding of {@code step} to {@code stepSignature}: the cached one when the signature is the one
   * seen last (an identity check), else a new one, checked as at load.
   *
   * @throws InferenceException INVALID_ARGUMENT naming the step and tensor when the step model's
   *     current version no longer fits the graph (a hot swap to an incompatible signature)
   */
  Binding binding(Step step, ModelSignature stepSignature) {
    Binding b = step.binding;
    if (b != null && b.signature == stepSignature) {
      return b;
    }
    List<String> problems = new ArrayList<>();
    b = bind(step, stepSignature, problems);
    if (!problems.isEmpty()) {
      throw InferenceException.invalidArgument("%s: %s no longer fits the ensemble: %s", label, step.label,
          String.join("; ", problems));
    }
    step.binding = b;
    return b;
  }

  /**
   * Checks the ensemble config against its step models (each acquired through {@code router} for the
   * check and released) and builds the plan.
   *
   * @throws InferenceException INVALID_ARGUMENT listing every problem, each naming the step and tensor;
   *     UNAVAILABLE or NOT_FOUND (naming the step) when a step model is not loaded
   */
  static EnsemblePlan build(String name, long version, ModelConfig config, ModelSignature signature,
      ModelRouter router) {
    String label = "ensemble '" + name + "' version " + version;
    List<ModelEnsembling.Step> specs = config.getEnsembleScheduling().getStepList();
    if (specs.isEmpty() || specs.size() > 64) {
      throw InferenceException.invalidArgument("%s: ensemble_scheduling must have between 1 and 64 steps; has %d",
          label, specs.size());
    }
    List<String> problems = new ArrayList<>();
    boolean batches = signature.batches();

    // The step models' signatures, each from the version a request would reach now.
    ModelSignature[] stepSignatures = new ModelSignature[specs.size()];
    for (int i = 0; i < specs.size(); i++) {
      ModelEnsembling.Step spec = specs.get(i);
      String stepLabel = "step " + i + " (model '" + spec.getModelName() + "')";
      ModelHandle handle;
      try {
        handle = router.acquire(spec.getModelName(), spec.getModelVersion() < 0 ? "" : Long.toString(spec.getModelVersion()), "");
      } catch (InferenceException e) {
        throw new InferenceException(e.code(), label + ": " + stepLabel + " cannot be used: " + e.getMessage(), null, 0L, e);
      }
      try {
        stepSignatures[i] = handle.signature();
        checkNoCycle(name, handle, router, stepLabel, problems);
      } finally {
        handle.release();
      }
      ModelSignature s = stepSignatures[i];
      if (batches && !s.batches()) {
        problems.add(stepLabel + ": the ensemble batches (max_batch_size " + signature.maxBatchSize()
            + ") but the step model does not (max_batch_size 0)");
      } else if (batches && s.maxBatchSize() < signature.maxBatchSize()) {
        problems.add(stepLabel + ": its max_batch_size " + s.maxBatchSize() + " is below the ensemble's "
            + signature.maxBatchSize() + "; a full ensemble batch would not fit");
      }
    }
    if (!problems.isEmpty()) {
      throw invalid(label, problems);
    }

    // Tensors: the ensemble's inputs, then what each step writes.
    List<String> names = new ArrayList<>();
    List<DataType> types = new ArrayList<>();
    List<long[]> shapes = new ArrayList<>();
    List<Integer> producers = new ArrayList<>();
    Map<String, Integer> tensorIndex = new HashMap<>();
    for (TensorSpec input : signature.inputs()) {
      tensorIndex.put(input.name(), names.size());
      names.add(input.name());
      types.add(input.dataType());
      shapes.add(fullShape(batches, input.dims()));
      producers.add(-1);
    }
    int[][] outputTensors = new int[specs.size()][];
    String[][] outputNames = new String[specs.size()][];
    for (int i = 0; i < specs.size(); i++) {
      ModelEnsembling.Step spec = specs.get(i);
      String stepLabel = "step " + i + " (model '" + spec.getModelName() + "')";
      ModelSignature s = stepSignatures[i];
      TreeMap<String, String> map = new TreeMap<>(spec.getOutputMapMap());
      outputNames[i] = map.keySet().toArray(new String[0]);
      outputTensors[i] = new int[map.size()];
      int k = 0;
      for (Map.Entry<String, String> e : map.entrySet()) {
        int position = s.outputIndex(e.getKey());
        String tensor = e.getValue();
        outputTensors[i][k++] = -1;
        if (position < 0) {
          problems.add(stepLabel + ": output_map names output '" + e.getKey() + "', which the model does not have;"
              + " its outputs are " + specNames(s.outputs()));
          continue;
        }
        Integer existing = tensorIndex.get(tensor);
        if (existing != null) {
          int writer = producers.get(existing);
          problems.add(stepLabel + ": output '" + e.getKey() + "' writes tensor '" + tensor + "', which "
              + (writer < 0 ? "is an input of the ensemble" : "step " + writer + " (model '"
                  + specs.get(writer).getModelName() + "') already writes"));
          continue;
        }
        TensorSpec out = s.outputs().get(position);
        tensorIndex.put(tensor, names.size());
        outputTensors[i][k - 1] = names.size();
        names.add(tensor);
        types.add(out.dataType());
        shapes.add(fullShape(s.batches(), out.dims()));
        producers.add(i);
      }
    }

    // Reads: each mapped step input from a known tensor of the same datatype and a compatible shape.
    Step[] steps = new Step[specs.size()];
    for (int i = 0; i < specs.size(); i++) {
      ModelEnsembling.Step spec = specs.get(i);
      String stepLabel = "step " + i + " (model '" + spec.getModelName() + "')";
      TreeMap<String, String> map = new TreeMap<>(spec.getInputMapMap());
      String[] inputNames = map.keySet().toArray(new String[0]);
      int[] inputTensors = new int[map.size()];
      int k = 0;
      for (Map.Entry<String, String> e : map.entrySet()) {
        Integer t = tensorIndex.get(e.getValue());
        inputTensors[k++] = t == null ? -1 : t;
        if (t == null) {
          problems.add(stepLabel + ": input '" + e.getKey() + "' reads tensor '" + e.getValue()
              + "', which is neither an input of the ensemble nor written by any step");
        } else if (producers.get(t) == i) {
          problems.add(stepLabel + ": input '" + e.getKey() + "' reads tensor '" + e.getValue()
              + "', which the same step writes");
        }
      }
      steps[i] = new Step(i, spec.getModelName(), spec.getModelVersion(), inputNames, inputTensors,
          outputNames[i], outputTensors[i]);
    }
    if (!problems.isEmpty()) {
      throw invalid(label, problems);
    }

    // Ensemble outputs: each written by a step, with the declared datatype and a compatible shape.
    int[] outputTensor = new int[signature.outputs().size()];
    for (int o = 0; o < outputTensor.length; o++) {
      TensorSpec out = signature.outputs().get(o);
      Integer t = tensorIndex.get(out.name());
      outputTensor[o] = t == null ? -1 : t;
      if (t == null || producers.get(t) < 0) {
        problems.add("output '" + out.name() + "' of the ensemble is not written by any step (no output_map names it)");
        continue;
      }
      int writer = producers.get(t);
      String writerLabel = "step " + writer + " (model '" + specs.get(writer).getModelName() + "')";
      if (types.get(t) != out.dataType()) {
        problems.add("output '" + out.name() + "' of the ensemble is declared " + out.dataType().wireName() + ", but "
            + writerLabel + " writes it as " + types.get(t).wireName());
      }
      long[] declared = fullShape(batches, out.dims());
      if (!compatible(declared, shapes.get(t))) {
        problems.add("output '" + out.name() + "' of the ensemble is declared with shape " + Arrays.toString(declared)
            + ", but " + writerLabel + " writes shape " + Arrays.toString(shapes.get(t)));
      }
    }

    EnsemblePlan plan = new EnsemblePlan(name, version, signature, names, types, shapes, producers, steps, outputTensor);
    for (Step step : steps) {
      step.binding = plan.bind(step, stepSignatures[step.index], problems);
    }
    if (!problems.isEmpty()) {
      throw invalid(label, problems);
    }
    plan.link(problems);
    if (!problems.isEmpty()) {
      throw invalid(label, problems);
    }
    plan.warnAboutUnused();
    return plan;
  }

  /**
   * Fills the step graph: producers and dependents of each step, cycles (an error naming the steps),
   * and each step's ancestors.
   */
  private void link(List<String> problems) {
    int n = steps.length;
    List<List<Integer>> dependents = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      dependents.add(new ArrayList<>());
    }
    long[] producerMask = new long[n];
    for (Step step : steps) {
      for (int t : step.inputTensors) {
        int p = producer[t];
        if (p >= 0 && (producerMask[step.index] & (1L << p)) == 0) {
          producerMask[step.index] |= 1L << p;
          dependents.get(p).add(step.index);
        }
      }
      step.producerCount = Long.bitCount(producerMask[step.index]);
    }
    for (Step step : steps) {
      step.dependents = dependents.get(step.index).stream().mapToInt(Integer::intValue).toArray();
    }
    // Kahn's algorithm: what cannot be ordered lies on or behind a cycle.
    int[] pending = new int[n];
    ArrayDeque<Integer> ready = new ArrayDeque<>();
    for (Step step : steps) {
      pending[step.index] = step.producerCount;
      if (pending[step.index] == 0) {
        ready.add(step.index);
      }
    }
    int ordered = 0;
    while (!ready.isEmpty()) {
      int s = ready.poll();
      ordered++;
      long anc = 1L << s;
      for (int p = 0; p < n; p++) {
        if ((producerMask[s] & (1L << p)) != 0) {
          anc |= ancestors[p];
        }
      }
      ancestors[s] = anc;
      for (int d : steps[s].dependents) {
        if (--pending[d] == 0) {
          ready.add(d);
        }
      }
    }
    if (ordered < n) {
      problems.add("the steps form a cycle: " + describeCycle(producerMask, pending));
      return;
    }
    long all = 0;
    for (int t : outputTensor) {
      all |= ancestors[producer[t]];
    }
    allOutputsSteps = all;
  }

  private String describeCycle(long[] producerMask, int[] pending) {
    // Walk back from an unordered step along unordered producers until a step repeats.
    int start = 0;
    while (pending[start] == 0) {
      start++;
    }
    List<Integer> path = new ArrayList<>();
    int[] seenAt = new int[steps.length];
    Arrays.fill(seenAt, -1);
    int s = start;
    while (seenAt[s] < 0) {
      seenAt[s] = path.size();
      path.add(s);
      int next = -1;
      for (int p = 0; p < steps.length; p++) {
        if ((producerMask[s] & (1L << p)) != 0 && pending[p] > 0) {
          next = p;
          break;
        }
      }
      s = next;
    }
    List<Integer> cycle = new ArrayList<>(path.subList(seenAt[s], path.size()));
    java.util.Collections.reverse(cycle); // producers first: the direction data flows
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < cycle.size(); i++) {
      Step from = steps[cycle.get(i)];
      Step to = steps[cycle.get((i + 1) % cycle.size())];
      sb.append(i == 0 ? "" : ", ").append(from.label).append(" writes ").append(tensorBetween(from, to))
          .append(" read by ").append(to.label);
    }
    return sb.toString();
  }

  private String tensorBetween(Step from, Step to) {
    for (int t : to.inputTensors) {
      if (producer[t] == from.index) {
        return "'" + tensorNames[t] + "'";
      }
    }
    return "a tensor";
  }

  private void warnAboutUnused() {
    long used = allOutputsSteps;
    for (Step step : steps) {
      if ((used & (1L << step.index)) == 0) {
        log.warn("{}: {} writes nothing the ensemble's outputs depend on; it never runs", label, step.label);
      }
    }
    for (int t = 0; t < inputCount; t++) {
      if (consumers[t] == 0) {
        log.warn("{}: input '{}' is read by no step", label, tensorNames[t]);
      }
    }
  }

  /** Lays {@code step} onto a step-model signature, adding every mismatch to {@code problems}. */
  private Binding bind(Step step, ModelSignature s, List<String> problems) {
    int size = problems.size();
    int[] bySlot = new int[s.inputs().size()];
    String[] slotNames = new String[bySlot.length];
    Arrays.fill(bySlot, -1);
    for (int k = 0; k < step.inputNames.length; k++) {
      String input = step.inputNames[k];
      int slot = s.inputIndex(input);
      if (slot < 0) {
        problems.add(step.label + ": input_map names input '" + input + "', which the model does not have;"
            + " its inputs are " + specNames(s.inputs()));
        continue;
      }
      int t = step.inputTensors[k];
      TensorSpec spec = s.inputs().get(slot);
      String source = producer[t] < 0 ? "the ensemble's input '" + tensorNames[t] + "'"
          : "tensor '" + tensorNames[t] + "' (written by " + steps[producer[t]].label + ")";
      if (tensorTypes[t] != spec.dataType()) {
        problems.add(step.label + ": input '" + input + "' is " + spec.dataType().wireName() + ", but it reads "
            + source + ", which is " + tensorTypes[t].wireName());
      }
      long[] wanted = fullShape(s.batches(), spec.dims());
      if (!compatible(wanted, tensorShapes[t])) {
        problems.add(step.label + ": input '" + input + "' has shape " + Arrays.toString(wanted) + ", but it reads "
            + source + ", which has shape " + Arrays.toString(tensorShapes[t]));
      }
      bySlot[slot] = t;
    }
    for (int slot = 0; slot < bySlot.length; slot++) {
      slotNames[slot] = s.inputs().get(slot).name();
      if (bySlot[slot] < 0 && !s.inputs().get(slot).optional()) {
        problems.add(step.label + ": input '" + slotNames[slot] + "' of the model is not in input_map;"
            + " every required input must read a tensor");
      }
    }
    int[] outputIndices = new int[step.outputNames.length];
    for (int k = 0; k < step.outputNames.length; k++) {
      int position = s.outputIndex(step.outputNames[k]);
      outputIndices[k] = position;
      int t = step.outputTensors[k];
      if (position < 0) {
        problems.add(step.label + ": output_map names output '" + step.outputNames[k]
            + "', which the model does not have; its outputs are " + specNames(s.outputs()));
        continue;
      }
      TensorSpec spec = s.outputs().get(position);
      if (t >= 0 && tensorTypes[t] != spec.dataType()) {
        problems.add(step.label + ": output '" + spec.name() + "' is " + spec.dataType().wireName()
            + ", but tensor '" + tensorNames[t] + "' was planned as " + tensorTypes[t].wireName());
      }
      if (t >= 0 && !compatible(fullShape(s.batches(), spec.dims()), tensorShapes[t])) {
        problems.add(step.label + ": output '" + spec.name() + "' has shape "
            + Arrays.toString(fullShape(s.batches(), spec.dims())) + ", but tensor '" + tensorNames[t]
            + "' was planned with shape " + Arrays.toString(tensorShapes[t]));
      }
    }
    return problems.size() > size ? null : new Binding(s, bySlot, slotNames, outputIndices);
  }

  /**
   * Refuses a step model that leads back to this ensemble through ensembles of ensembles (which would
   * recurse without end), and nesting deeper than {@link #MAX_NESTING}.
   */
  private static void checkNoCycle(String ensemble, ModelHandle step, ModelRouter router, String stepLabel,
      List<String> problems) {
    ArrayDeque<String> path = new ArrayDeque<>();
    path.add(step.name());
    walk(ensemble, step, router, path, problems, stepLabel);
  }

  private static boolean walk(String ensemble, ModelHandle handle, ModelRouter router, ArrayDeque<String> path,
      List<String> problems, String stepLabel) {
    EnsembleScheduler nested = SchedulerDecorator.find(handle.scheduler(), EnsembleScheduler.class);
    if (nested == null) {
      return true;
    }
    if (path.size() > MAX_NESTING) {
      problems.add(stepLabel + ": ensembles nest deeper than " + MAX_NESTING + " levels: " + String.join(" -> ", path));
      return false;
    }
    for (String model : nested.plan().stepModels()) {
      if (model.equals(ensemble) || path.contains(model)) {
        problems.add(stepLabel + ": leads back to '" + model + "' through " + String.join(" -> ", path) + " -> "
            + model + "; ensembles must not form a cycle");
        return false;
      }
      ModelHandle inner;
      try {
        inner = router.acquire(model, "", "");
      } catch (InferenceException e) {
        continue; // that ensemble's own step is not loaded: its requests fail, but no cycle comes from it
      }
      try {
        path.addLast(model);
        if (!walk(ensemble, inner, router, path, problems, stepLabel)) {
          return false;
        }
        path.removeLast();
      } finally {
        inner.release();
      }
    }
    return true;
  }

  static long[] fullShape(boolean batches, long[] dims) {
    if (!batches) {
      return dims;
    }
    long[] shape = new long[dims.length + 1];
    shape[0] = -1;
    System.arraycopy(dims, 0, shape, 1, dims.length);
    return shape;
  }

  /** Same rank, and every dimension equal or variable (-1) on either side. */
  static boolean compatible(long[] a, long[] b) {
    if (a.length != b.length) {
      return false;
    }
    for (int i = 0; i < a.length; i++) {
      if (a[i] >= 0 && b[i] >= 0 && a[i] != b[i]) {
        return false;
      }
    }
    return true;
  }

  private static String specNames(List<TensorSpec> specs) {
    List<String> names = new ArrayList<>(specs.size());
    for (TensorSpec spec : specs) {
      names.add(spec.name());
    }
    return names.toString();
  }

  private static InferenceException invalid(String label, List<String> problems) {
    return InferenceException.invalidArgument("invalid %s: %s", label, String.join("; ", problems));
  }
}
