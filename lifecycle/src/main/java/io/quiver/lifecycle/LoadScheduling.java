package io.quiver.lifecycle;

/**
 * How a load thread shares the CPU with the threads that serve requests while it loads a version.
 *
 * <p>A load is mostly the runtime's session set-up (graph optimization over the weights) and a warm-up
 * run: milliseconds to seconds of CPU that, on a machine without a spare core, would otherwise be taken
 * from the models already serving (docs/benchmarks/lifecycle.md, "A hot set while a cold tail churns").
 * The {@link ModelManager} brackets with {@link #enter()} the CPU-heavy part of every load on the load
 * thread (session set-up, warm-up), the closing of every version that leaves (an eviction's, an
 * unload's, a reload's old copy) on whichever thread closes it, once its requests have drained, and an
 * on-demand load's whole run on its loader thread (repository, config, evictions). An implementation
 * may lower that thread's priority until the section closes, and lower other background work while any
 * section is open (the server's lowers the JIT's compiler threads). {@link #NORMAL} changes nothing;
 * the server's Linux implementation lives beside its other CPU policies ({@code io.quiver.server.IdleLoads}).
 *
 * <p>Implementations are thread-safe: several load threads enter sections at once.
 */
public interface LoadScheduling extends AutoCloseable {
  /** Loads run at the priority of the thread that runs them. */
  LoadScheduling NORMAL = () -> Section.NONE;

  /**
   * Called on a load thread before the CPU-heavy part of one load; the load closes the section on the
   * same thread when that part ends, however it ends. Never throws: a priority that cannot be changed
   * leaves the load at the one it has. Sections nest: one entered on a thread that already has a section
   * open changes nothing, and the outer one's close ends the lowering.
   */
  Section enter();

  /** Releases what the implementation holds (a timer thread, lowered threads); called once, after the last load. */
  @Override
  default void close() {}

  /** One load's lowered section. {@link #close()} is called once, on the thread that entered it. */
  interface Section extends AutoCloseable {
    /** A section that changed nothing. */
    Section NONE = () -> {};

    /** Ends the section: the thread (and any thread it started meanwhile) runs at normal priority again. */
    @Override
    void close();
  }
}
