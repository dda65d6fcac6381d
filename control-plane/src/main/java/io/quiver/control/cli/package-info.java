/** {@code quiver models ...}: the command-line client of the control API. */
package io.quiver.control.cli;
