package io.quiver.bench.tools;

import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Draws throughput (x, requests/s, linear) against p99 latency (y, µs, log scale) as an SVG: one
 * panel per benchmark case, one line per series. Plain SVG 1.1, no scripts, no external fonts.
 */
final class SvgPlot {
  private static final int PANEL_W = 460;
  private static final int PANEL_H = 300;
  private static final int MARGIN_L = 70;
  private static final int MARGIN_R = 20;
  private static final int MARGIN_T = 30;
  private static final int MARGIN_B = 45;
  private static final String[] COLORS = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};

  private SvgPlot() {}

  static String render(Map<String, Map<String, List<double[]>>> panels) {
    int columns = 2;
    int rows = Math.max(1, (panels.size() + columns - 1) / columns);
    StringBuilder svg = new StringBuilder();
    svg.append(String.format(Locale.ROOT,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"11\">%n",
        columns * PANEL_W, rows * PANEL_H));
    svg.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    int i = 0;
    for (Map.Entry<String, Map<String, List<double[]>>> panel : panels.entrySet()) {
      panel(svg, panel.getKey(), panel.getValue(), (i % columns) * PANEL_W, (i / columns) * PANEL_H);
      i++;
    }
    return svg.append("</svg>\n").toString();
  }

  private static void panel(StringBuilder svg, String title, Map<String, List<double[]>> series, int ox, int oy) {
    double maxX = 0;
    double minY = Double.MAX_VALUE;
    double maxY = 0;
    for (List<double[]> points : series.values()) {
      for (double[] p : points) {
        if (valid(p)) {
          maxX = Math.max(maxX, p[0]);
          minY = Math.min(minY, p[1]);
          maxY = Math.max(maxY, p[1]);
        }
      }
    }
    int w = PANEL_W - MARGIN_L - MARGIN_R;
    int h = PANEL_H - MARGIN_T - MARGIN_B;
    int x0 = ox + MARGIN_L;
    int y0 = oy + MARGIN_T;
    svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">%s</text>%n", x0, oy + 18, escape(title)));
    svg.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#888\"/>%n", x0, y0, w, h));
    if (maxX <= 0) {
      svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\">no data</text>%n", x0 + 10, y0 + 20));
      return;
    }
    maxX *= 1.05;
    double lo = Math.floor(Math.log10(minY));
    double hi = Math.ceil(Math.log10(maxY));
    if (hi <= lo) {
      hi = lo + 1;
    }
    // Axes: x ticks at fifths of the range, y ticks at powers of ten.
    for (int t = 0; t <= 5; t++) {
      double v = maxX * t / 5;
      int x = x0 + (int) Math.round(w * t / 5.0);
      svg.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#eee\"/>%n", x, y0, x, y0 + h));
      svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>%n", x, y0 + h + 14, human(v)));
    }
    for (double e = lo; e <= hi; e++) {
      int y = y0 + h - (int) Math.round(h * (e - lo) / (hi - lo));
      svg.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#eee\"/>%n", x0, y, x0 + w, y));
      svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>%n", x0 - 4, y + 4,
          human(Math.pow(10, e))));
    }
    svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">throughput (req/s)</text>%n",
        x0 + w / 2, y0 + h + 32));
    svg.append(String.format(Locale.ROOT,
        "<text transform=\"translate(%d,%d) rotate(-90)\" text-anchor=\"middle\">p99 latency (µs, log)</text>%n",
        ox + 14, y0 + h / 2));
    int c = 0;
    for (Map.Entry<String, List<double[]>> s : series.entrySet()) {
      String color = COLORS[c % COLORS.length];
      StringBuilder path = new StringBuilder();
      for (double[] p : s.getValue()) {
        if (!valid(p)) {
          continue;
        }
        double x = x0 + w * p[0] / maxX;
        double y = y0 + h - h * (Math.log10(p[1]) - lo) / (hi - lo);
        path.append(path.length() == 0 ? "" : " ").append(String.format(Locale.ROOT, "%.1f,%.1f", x, y));
        svg.append(String.format(Locale.ROOT, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>%n", x, y, color));
      }
      svg.append(String.format(Locale.ROOT, "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\"/>%n", path, color));
      svg.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/>%n", x0 + 8, y0 + 8 + c * 15, color));
      svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\">%s</text>%n", x0 + 22, y0 + 17 + c * 15, escape(s.getKey())));
      c++;
    }
  }

  private static boolean valid(double[] p) {
    return !Double.isNaN(p[0]) && !Double.isNaN(p[1]) && p[1] > 0;
  }

  static String human(double v) {
    if (v >= 1e6) {
      return String.format(Locale.ROOT, "%.1fM", v / 1e6);
    }
    if (v >= 1e3) {
      return String.format(Locale.ROOT, "%.0fk", v / 1e3);
    }
    return String.format(Locale.ROOT, "%.0f", v);
  }

  private static String escape(String s) {
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
  }
}
