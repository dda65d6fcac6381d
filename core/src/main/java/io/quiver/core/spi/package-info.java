/** Service provider interfaces that the modules plug into: model repositories, runtimes and their runners, schedulers. */
package io.quiver.core.spi;
