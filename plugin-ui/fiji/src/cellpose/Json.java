package cellpose;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The server's small JSON answers (no dependency beyond the JDK): a strict parser with a depth
 * limit, so that a malformed, truncated or hostile answer is a clear {@link BridgeException}
 * naming what was asked and an excerpt, never a stack trace or a silent stop.
 */
final class Json {
  /** deeper answers are refused (the server's are 3 or 4 levels deep) */
  static final int MAX_DEPTH = 64;

  private final String text;
  private int pos;

  private Json(String text) {
    this.text = text;
  }

  /**
   * Parses a JSON value: objects as LinkedHashMap, arrays as List, numbers as Double, and strings,
   * booleans, null. {@code what} names the answer in the error ("GET /v1/jobs/abc").
   */
  static Object parse(String text, String what) throws BridgeException {
    Json p = new Json(text);
    try {
      p.space();
      Object v = p.value(0);
      p.space();
      if (p.pos != text.length()) throw p.fail("unexpected text after the value");
      return v;
    } catch (IllegalStateException e) {
      throw new BridgeException("The Cellpose server's answer to " + what + " is not valid JSON ("
          + e.getMessage() + "): " + excerpt(text));
    }
  }

  /** The string value of the first "key" (depth first, in order), or null. */
  static String string(Object doc, String key) {
    Object v = find(doc, key);
    return v instanceof String ? (String) v : null;
  }

  /** The numeric value of the first "key" (depth first, in order), or NaN. */
  static double number(Object doc, String key) {
    Object v = find(doc, key);
    return v instanceof Double ? (Double) v : Double.NaN;
  }

  /** The numbers of the first array "key" (depth first, in order); empty when absent. */
  static double[] numbers(Object doc, String key) {
    Object v = find(doc, key);
    if (!(v instanceof List)) return new double[0];
    List<?> l = (List<?>) v;
    double[] out = new double[l.size()];
    for (int i = 0; i < out.length; i++) out[i] = l.get(i) instanceof Double ? (Double) l.get(i) : Double.NaN;
    return out;
  }

  /** At most 200 characters of {@code s}, for error messages. */
  static String excerpt(String s) {
    String t = s.replaceAll("\\s+", " ").trim();
    if (t.isEmpty()) return "(empty)";
    return t.length() <= 200 ? t : t.substring(0, 200) + "... (" + s.length() + " characters)";
  }

  static String quote(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      if (c == '"' || c == '\\') b.append('\\').append(c);
      else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
      else b.append(c);
    }
    return b.append('"').toString();
  }

  private static Object find(Object node, String key) {
    if (node instanceof Map) {
      Map<?, ?> m = (Map<?, ?>) node;
      if (m.containsKey(key)) return m.get(key);
      for (Object v : m.values()) {
        Object r = find(v, key);
        if (r != null) return r;
      }
    } else if (node instanceof List) {
      for (Object v : (List<?>) node) {
        Object r = find(v, key);
        if (r != null) return r;
      }
    }
    return null;
  }

  private IllegalStateException fail(String why) {
    return new IllegalStateException(why + " at character " + pos);
  }

  private void space() {
    while (pos < text.length() && " \t\r\n".indexOf(text.charAt(pos)) >= 0) pos++;
  }

  private Object value(int depth) {
    if (depth > MAX_DEPTH) throw fail("nested deeper than " + MAX_DEPTH);
    if (pos >= text.length()) throw fail("the answer ends early");
    char c = text.charAt(pos);
    if (c == '{') return object(depth);
    if (c == '[') return array(depth);
    if (c == '"') return string();
    if (text.startsWith("true", pos)) return literal("true", Boolean.TRUE);
    if (text.startsWith("false", pos)) return literal("false", Boolean.FALSE);
    if (text.startsWith("null", pos)) return literal("null", null);
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    throw fail("unexpected '" + c + "'");
  }

  private Object literal(String word, Object v) {
    pos += word.length();
    return v;
  }

  private Map<String, Object> object(int depth) {
    Map<String, Object> m = new LinkedHashMap<>();
    pos++;
    space();
    if (pos < text.length() && text.charAt(pos) == '}') {
      pos++;
      return m;
    }
    while (true) {
      space();
      if (pos >= text.length() || text.charAt(pos) != '"') throw fail("expected a key");
      String k = string();
      space();
      expect(':');
      space();
      m.put(k, value(depth + 1));
      space();
      if (pos < text.length() && text.charAt(pos) == ',') {
        pos++;
        continue;
      }
      expect('}');
      return m;
    }
  }

  private List<Object> array(int depth) {
    List<Object> a = new ArrayList<>();
    pos++;
    space();
    if (pos < text.length() && text.charAt(pos) == ']') {
      pos++;
      return a;
    }
    while (true) {
      space();
      a.add(value(depth + 1));
      space();
      if (pos < text.length() && text.charAt(pos) == ',') {
        pos++;
        continue;
      }
      expect(']');
      return a;
    }
  }

  private void expect(char c) {
    if (pos >= text.length()) throw fail("the answer ends early (expected '" + c + "')");
    if (text.charAt(pos) != c) throw fail("expected '" + c + "'");
    pos++;
  }

  private String string() {
    StringBuilder b = new StringBuilder();
    pos++;
    while (true) {
      if (pos >= text.length()) throw fail("the answer ends inside a string");
      char c = text.charAt(pos++);
      if (c == '"') return b.toString();
      if (c != '\\') {
        b.append(c);
        continue;
      }
      if (pos >= text.length()) throw fail("the answer ends inside a string");
      char n = text.charAt(pos++);
      switch (n) {
        case 'n': b.append('\n'); break;
        case 't': b.append('\t'); break;
        case 'r': b.append('\r'); break;
        case 'b': b.append('\b'); break;
        case 'f': b.append('\f'); break;
        case 'u':
          if (pos + 4 > text.length()) throw fail("a short \\u escape");
          try {
            b.append((char) Integer.parseInt(text.substring(pos, pos + 4), 16));
          } catch (NumberFormatException e) {
            throw fail("a bad \\u escape");
          }
          pos += 4;
          break;
        default: b.append(n);
      }
    }
  }

  private Double number() {
    int start = pos;
    while (pos < text.length() && "+-0123456789.eE".indexOf(text.charAt(pos)) >= 0) pos++;
    try {
      return Double.valueOf(text.substring(start, pos));
    } catch (NumberFormatException e) {
      pos = start;
      throw fail("a malformed number");
    }
  }
}
