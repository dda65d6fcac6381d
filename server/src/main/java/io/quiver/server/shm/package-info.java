/** Triton's system shared memory extension: client-registered POSIX shared memory regions, mapped once, read and written in place. */
package io.quiver.server.shm;
