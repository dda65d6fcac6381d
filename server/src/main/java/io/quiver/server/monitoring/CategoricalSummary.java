package io.quiver.server.monitoring;

import io.quiver.proto.monitoring.v1.CategoryCount;
import io.quiver.proto.monitoring.v1.FeatureProfile;
import io.quiver.proto.monitoring.v1.FeatureStats;
import java.nio.charset.StandardCharsets;
import org.apache.datasketches.common.ArrayOfStringsSerDe;
import org.apache.datasketches.frequencies.ErrorType;
import org.apache.datasketches.frequencies.ItemsSketch;
import org.apache.datasketches.memory.Memory;

/**
 * Streaming statistics of one categorical (BYTES) feature: counts of values, empty values (counted as
 * "nan", the missing value of a string) and values absent from the reference, and a frequent-items
 * sketch (Apache DataSketches; exact while fewer than {@value #EXACT_CATEGORIES} distinct values were
 * seen, then an estimate with error ≤ 3.5 / {@value #MAP_SIZE} of the count). Values are read as UTF-8
 * (invalid bytes replaced) and cut to {@value #MAX_VALUE_BYTES} bytes. Not thread-safe: owned by the
 * monitoring thread (or one reference builder).
 */
final class CategoricalSummary {
  static final int MAP_SIZE = 1024;
  static final int EXACT_CATEGORIES = MAP_SIZE * 3 / 4;
  static final int MAX_VALUE_BYTES = 128;
  static final int REPORT_TOP = 10;
  static final ArrayOfStringsSerDe SERDE = new ArrayOfStringsSerDe();

  long count;
  long empty;
  long outOfRange;
  final ItemsSketch<String> items;

  CategoricalSummary() {
    this(new ItemsSketch<>(MAP_SIZE));
  }

  private CategoricalSummary(ItemsSketch<String> items) {
    this.items = items;
  }

  /** The category of a BYTES element: its bytes as UTF-8, cut to {@link #MAX_VALUE_BYTES}. */
  static String category(byte[] data, int offset, int length) {
    return new String(data, offset, Math.min(length, MAX_VALUE_BYTES), StandardCharsets.UTF_8);
  }

  /** @param known the reference's categories, or null without a reference */
  void add(String value, java.util.Set<String> known) {
    count++;
    if (value.isEmpty()) {
      empty++;
    }
    if (known != null && !known.contains(value)) {
      outOfRange++;
    }
    items.update(value);
  }

  void merge(CategoricalSummary other) {
    count += other.count;
    empty += other.empty;
    outOfRange += other.outOfRange;
    if (!other.items.isEmpty()) {
      items.merge(other.items);
    }
  }

  void reset() {
    count = empty = outOfRange = 0;
    items.reset();
  }

  CategoricalSummary copy() {
    CategoricalSummary c = new CategoricalSummary(items.isEmpty() ? new ItemsSketch<>(MAP_SIZE)
        : ItemsSketch.getInstance(Memory.wrap(items.toByteArray(SERDE)), SERDE));
    c.count = count;
    c.empty = empty;
    c.outOfRange = outOfRange;
    return c;
  }

  /** Every value the sketch keeps, most frequent first (all of them while it is exact). */
  ItemsSketch.Row<String>[] rows() {
    return items.getFrequentItems(0, ErrorType.NO_FALSE_NEGATIVES);
  }

  FeatureStats toStats() {
    FeatureStats.Builder b = FeatureStats.newBuilder().setCount(count).setNanCount(empty)
        .setOutOfRangeCount(outOfRange).setMean(Double.NaN).setStddev(Double.NaN).setMin(Double.NaN)
        .setMax(Double.NaN);
    if (!items.isEmpty()) {
      ItemsSketch.Row<String>[] rows = rows();
      for (int i = 0; i < rows.length && i < REPORT_TOP; i++) {
        b.addTopCategories(CategoryCount.newBuilder().setValue(rows[i].getItem()).setCount(rows[i].getEstimate()));
      }
    }
    return b.build();
  }

  FeatureProfile toProfile() {
    return FeatureProfile.newBuilder().setCount(count).setNanCount(empty)
        .setFrequentItems(com.google.protobuf.ByteString.copyFrom(items.toByteArray(SERDE))).build();
  }

  static CategoricalSummary fromProfile(FeatureProfile p) {
    CategoricalSummary s = new CategoricalSummary(p.getFrequentItems().isEmpty() ? new ItemsSketch<>(MAP_SIZE)
        : ItemsSketch.getInstance(Memory.wrap(p.getFrequentItems().toByteArray()), SERDE));
    s.count = p.getCount();
    s.empty = p.getNanCount();
    return s;
  }
}
