package io.quiver.lifecycle;

import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.InferenceStats;
import io.quiver.core.ModelSignature;
import io.quiver.core.Tensor;
import io.quiver.core.spi.InferenceScheduler;
import io.quiver.core.spi.ModelRunner;
import io.quiver.core.spi.SchedulerFactory;
import io.quiver.proto.inference.ModelConfig;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A test scheduler without batching: each request runs on a worker thread, on whichever instance is
 * free (one thread per instance, so an instance never runs two requests at once).
 */
public final class WorkerThreadSchedulerFactory implements SchedulerFactory {
  final List<WorkerThreadScheduler> created = new java.util.concurrent.CopyOnWriteArrayList<>();

  @Override
  public InferenceScheduler create(String modelName, long version, ModelConfig config, ModelSignature signature,
      List<ModelRunner> instances) {
    WorkerThreadScheduler scheduler = new WorkerThreadScheduler(modelName, version, signature, instances);
    created.add(scheduler);
    return scheduler;
  }

  public static final class WorkerThreadScheduler implements InferenceScheduler {
    final String model;
    final long version;
    private final ModelSignature signature;
    private final ExecutorService workers;
    private final BlockingQueue<ModelRunner> idle;
    private final AtomicInteger queued = new AtomicInteger();
    private final AtomicInteger inFlight = new AtomicInteger();
    private final InferenceStats stats;
    volatile boolean closed;

    WorkerThreadScheduler(String model, long version, ModelSignature signature, List<ModelRunner> instances) {
      this.model = model;
      this.version = version;
      this.signature = signature;
      this.workers = Executors.newFixedThreadPool(instances.size(), r -> {
        Thread t = new Thread(r, "test-worker-" + model + "-" + version);
        t.setDaemon(true);
        return t;
      });
      this.idle = new ArrayBlockingQueue<>(instances.size(), false, instances);
      this.stats = new InferenceStats(Math.max(1, signature.maxBatchSize()));
    }

    @Override
    public void submit(InferRequest request) {
      if (closed) {
        throw InferenceException.unavailable("model '%s' version %d is not accepting requests", model, version);
      }
      if (request.batchSize() > Math.max(1, signature.maxBatchSize())) {
        throw InferenceException.invalidArgument("batch %d over max_batch_size %d", request.batchSize(),
            signature.maxBatchSize());
      }
      request.setEnqueueNanos(System.nanoTime());
      inFlight.incrementAndGet();
      queued.incrementAndGet();
      try {
        workers.execute(() -> run(request));
      } catch (RejectedExecutionException e) {
        queued.decrementAndGet();
        inFlight.decrementAndGet();
        throw InferenceException.unavailable("model '%s' version %d is not accepting requests", model, version);
      }
    }

    private void run(InferRequest request) {
      queued.decrementAndGet();
      long start = System.nanoTime();
      ModelRunner runner = null;
      try {
        runner = idle.take();
        Tensor[] outputs = runner.run(request.inputs(), request.outputIndices());
        long end = System.nanoTime();
        stats.recordExecution(request.batchSize(), 0, end - start, 0, System.currentTimeMillis());
        stats.recordSuccess(end - request.enqueueNanos(), start - request.enqueueNanos(), 0, end - start, 0);
        request.callback().onSuccess(request, outputs);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        request.callback().onFailure(request, InferenceException.cancelled("interrupted"));
      } catch (InferenceException e) {
        stats.recordFailure(System.nanoTime() - request.enqueueNanos());
        request.callback().onFailure(request, e);
      } catch (RuntimeException e) {
        stats.recordFailure(System.nanoTime() - request.enqueueNanos());
        request.callback().onFailure(request, InferenceException.internal(e.toString(), e));
      } finally {
        if (runner != null) {
          idle.add(runner);
        }
        inFlight.decrementAndGet();
      }
    }

    @Override
    public int queuedRequests() {
      return queued.get();
    }

    @Override
    public int inFlightRequests() {
      return inFlight.get();
    }

    @Override
    public InferenceStats stats() {
      return stats;
    }

    @Override
    public void close() {
      closed = true;
      workers.shutdown();
      try {
        if (!workers.awaitTermination(30, TimeUnit.SECONDS)) {
          throw new IllegalStateException("workers of " + model + " did not finish");
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }
}
