package cellpose;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.time.Duration;
import java.util.Map;
import java.util.UUID;
import java.util.function.DoubleConsumer;

/** HTTP client for the cellpose-deno server's /v1 API (java.net.http only). */
final class ServerClient {
  private final String base;
  private final String token;
  private final HttpClient http;

  ServerClient(String baseUrl, String token) {
    this.base = baseUrl.replaceAll("/+$", "");
    this.token = token == null || token.isEmpty() ? null : token;
    // HTTP/1.1: the JDK's default HTTP/2 upgrade over plain http (h2c) is refused by Deno's server
    this.http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(5)).build();
  }

  String baseUrl() {
    return base;
  }

  /** A request whose answer must start within 30 min (uploads included). */
  private HttpRequest.Builder request(String path) {
    return request(path, Duration.ofMinutes(30));
  }

  private HttpRequest.Builder request(String path, Duration timeout) {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path)).timeout(timeout);
    if (token != null) b.header("Authorization", "Bearer " + token);
    return b;
  }

  /** JSON answers are read up to this many bytes (the server's are a few KiB) */
  static final long MAX_TEXT = 4L << 20;
  /** an error answer's text is read up to this many bytes */
  private static final long MAX_ERROR = 64L << 10;

  /** Sends, checks the status, returns the body read up to {@code limit} bytes. */
  private byte[] send(HttpRequest req, long limit) throws BridgeException {
    HttpResponse<InputStream> res = open(req);
    try (InputStream in = res.body()) {
      ByteArrayOutputStream body = new ByteArrayOutputStream();
      copy(in, body, limit, req);
      return body.toByteArray();
    } catch (IOException e) {
      throw new BridgeException("Could not read the Cellpose server's answer to " + what(req) + ": " + e.getMessage());
    }
  }

  /** Sends and checks the status (an error answer becomes a BridgeException with its message). */
  private HttpResponse<InputStream> open(HttpRequest req) throws BridgeException {
    try {
      HttpResponse<InputStream> res = http.send(req, HttpResponse.BodyHandlers.ofInputStream());
      if (res.statusCode() >= 400) {
        String body;
        try (InputStream in = res.body()) {
          body = new String(in.readNBytes((int) MAX_ERROR), StandardCharsets.UTF_8);
        }
        String msg = null;
        try {
          msg = Json.string(Json.parse(body, what(req)), "message");
        } catch (BridgeException notJson) {
          // a proxy's or another program's error page: shown as an excerpt
        }
        String why = msg != null ? msg : Json.excerpt(body);
        throw new BridgeException("The Cellpose server refused the request (HTTP " + res.statusCode() + "): " + why);
      }
      return res;
    } catch (ConnectException e) {
      throw new BridgeException("No Cellpose server is running at " + base + ".\n"
          + "Start it in the cellpose-deno folder with:\n    npx deno task serve\n"
          + "or set the server address in Plugins > Cellpose-SAM > Segment...");
    } catch (IOException e) {
      throw new BridgeException("Could not talk to the Cellpose server at " + base + ": " + e.getMessage());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new BridgeException("Interrupted while talking to the Cellpose server.");
    }
  }

  private static String what(HttpRequest req) {
    return req.method() + " " + req.uri().getRawPath();
  }

  /** Copies at most {@code limit} bytes; a longer answer is an error (the connection is dropped). */
  private static void copy(InputStream in, OutputStream out, long limit, HttpRequest req)
      throws IOException, BridgeException {
    byte[] buf = new byte[1 << 16];
    long total = 0;
    for (int n; (n = in.read(buf)) > 0; ) {
      total += n;
      if (total > limit) {
        throw new BridgeException("The Cellpose server's answer to " + what(req) + " is larger than "
            + (limit >> 20) + " MiB; stopped reading it (is the server address right?)");
      }
      out.write(buf, 0, n);
    }
  }

  /** GET a path, returning the body as text (at most {@link #MAX_TEXT} bytes). */
  String getText(String path) throws BridgeException {
    // status and long-poll answers come within seconds; a server that never answers is given up
    return new String(send(request(path, Duration.ofMinutes(2)).GET().build(), MAX_TEXT), StandardCharsets.UTF_8);
  }

  /** GET a path's JSON answer, parsed. */
  Object getJson(String path) throws BridgeException {
    return Json.parse(getText(path), "GET " + path);
  }

  /** GET a path into {@code out}, streamed, at most {@code limit} bytes. */
  void getToFile(String path, File out, long limit) throws BridgeException {
    HttpRequest req = request(path).GET().build();
    try (InputStream in = open(req).body(); OutputStream o = Files.newOutputStream(out.toPath())) {
      copy(in, o, limit, req);
    } catch (IOException e) {
      throw new BridgeException("Could not save the Cellpose server's answer to " + what(req) + ": " + e.getMessage());
    }
  }

  /** POST a JSON body, returning the answer as text. */
  String postJson(String path, String json) throws BridgeException {
    return new String(send(request(path).header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(json)).build(), MAX_TEXT), StandardCharsets.UTF_8);
  }

  /** POST an image file plus parameters as multipart/form-data, returning the answer as text. */
  String postImage(String path, byte[] image, String fileName, Map<String, String> params) throws BridgeException {
    String boundary = "cellpose" + UUID.randomUUID().toString().replace("-", "");
    ByteArrayOutputStream body = new ByteArrayOutputStream();
    try {
      for (Map.Entry<String, String> p : params.entrySet()) {
        body.write(("--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + p.getKey() + "\"\r\n\r\n"
            + p.getValue() + "\r\n").getBytes(StandardCharsets.UTF_8));
      }
      body.write(("--" + boundary + "\r\nContent-Disposition: form-data; name=\"image\"; filename=\"" + fileName
          + "\"\r\nContent-Type: image/tiff\r\n\r\n").getBytes(StandardCharsets.UTF_8));
      body.write(image);
      body.write(("\r\n--" + boundary + "--\r\n").getBytes(StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new BridgeException("Could not prepare the upload: " + e.getMessage());
    }
    HttpRequest req = request(path).header("Content-Type", "multipart/form-data; boundary=" + boundary)
        .POST(HttpRequest.BodyPublishers.ofByteArray(body.toByteArray())).build();
    return new String(send(req, MAX_TEXT), StandardCharsets.UTF_8);
  }

  /** Makes the server load model {@code name} (shipped, cached or downloadable) for the next jobs. */
  void useModel(String name) throws BridgeException {
    try {
      postJson("/v1/models/" + java.net.URLEncoder.encode(name, StandardCharsets.UTF_8) + "/load", "{}");
    } catch (BridgeException e) {
      throw new BridgeException("The server could not load model \"" + name + "\": " + e.getMessage());
    }
  }

  /** DELETE a path (e.g. cancel a job), returning the answer as text. */
  String delete(String path) throws BridgeException {
    return new String(send(request(path).DELETE().build(), MAX_TEXT), StandardCharsets.UTF_8);
  }

  /**
   * POST multipart/form-data: text fields, then TIFF file parts given as {part name, file name}
   * with their bytes. Returns the answer as text.
   */
  String postParts(String path, Map<String, String> fields, String[][] names, byte[][] files)
      throws BridgeException {
    String boundary = "cellpose" + UUID.randomUUID().toString().replace("-", "");
    ByteArrayOutputStream body = new ByteArrayOutputStream();
    try {
      for (Map.Entry<String, String> p : fields.entrySet()) {
        body.write(("--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + p.getKey() + "\"\r\n\r\n"
            + p.getValue() + "\r\n").getBytes(StandardCharsets.UTF_8));
      }
      for (int i = 0; i < files.length; i++) {
        body.write(("--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + names[i][0] + "\"; filename=\""
            + names[i][1].replace("\"", "_") + "\"\r\nContent-Type: image/tiff\r\n\r\n").getBytes(StandardCharsets.UTF_8));
        body.write(files[i]);
        body.write("\r\n".getBytes(StandardCharsets.UTF_8));
      }
      body.write(("--" + boundary + "--\r\n").getBytes(StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new BridgeException("Could not prepare the upload: " + e.getMessage());
    }
    HttpRequest req = request(path).header("Content-Type", "multipart/form-data; boundary=" + boundary)
        .POST(HttpRequest.BodyPublishers.ofByteArray(body.toByteArray())).build();
    return new String(send(req, MAX_TEXT), StandardCharsets.UTF_8);
  }

  /**
   * POSTs with no body and writes the answer to {@code out} as it streams (at most {@code limit}
   * bytes); returns the x-cellpose-masks header (the mask count).
   */
  String postToFile(String path, File out, long limit) throws BridgeException {
    // the answer starts when the whole image is segmented: hours for a huge one on a CPU
    HttpRequest req = request(path, Duration.ofHours(48)).POST(HttpRequest.BodyPublishers.noBody()).build();
    HttpResponse<InputStream> res = open(req);
    try (InputStream in = res.body(); OutputStream o = Files.newOutputStream(out.toPath())) {
      copy(in, o, limit, req);
    } catch (IOException e) {
      throw new BridgeException("Could not save the Cellpose server's answer to " + what(req) + ": " + e.getMessage());
    }
    return res.headers().firstValue("x-cellpose-masks").orElse("?");
  }

  /** A job id from an answer ("id" field): letters, digits, '-' and '_' only (it goes into URLs). */
  static String jobId(Object answer, String what) throws BridgeException {
    return jobId(answer, "id", what);
  }

  /** A job id from an answer's {@code key} field. */
  static String jobId(Object answer, String key, String what) throws BridgeException {
    String id = Json.string(answer, key);
    if (id == null) throw new BridgeException("The Cellpose server gave no job id for " + what + ".");
    if (!id.matches("[A-Za-z0-9_-]{1,128}")) {
      throw new BridgeException("The Cellpose server gave an unexpected job id for " + what + ": "
          + Json.excerpt(Json.quote(id)));
    }
    return id;
  }

  /** Submits an image for segmentation and returns the job id. */
  String submit(byte[] tiff, String fileName, Map<String, String> params) throws BridgeException {
    String answer = postImage("/v1/segment", tiff, fileName, params);
    return jobId(Json.parse(answer, "POST /v1/segment"), "POST /v1/segment");
  }

  /**
   * Polls a job until it ends; reports progress in 0..1. Gives up (and cancels the job) when its
   * status and progress have not changed for {@code stallSeconds}. Returns the final status.
   */
  Object await(String id, DoubleConsumer progress, double stallSeconds) throws BridgeException {
    Stall stall = new Stall("The segmentation", stallSeconds);
    while (true) {
      Object job = getJson("/v1/jobs/" + id);
      String status = Json.string(job, "status");
      double f = Json.number(job, "fraction");
      if (!Double.isNaN(f)) progress.accept(f);
      if ("done".equals(status)) return job;
      if ("failed".equals(status) || "cancelled".equals(status)) {
        String msg = Json.string(job, "message");
        throw new BridgeException("Segmentation " + status + (msg != null ? ": " + msg : "."));
      }
      if (status == null) throw new BridgeException("The Cellpose server's job " + id + " has no status: " + Json.excerpt(job.toString()));
      try {
        stall.check(status + " " + f);
      } catch (BridgeException e) {
        cancelQuietly("/v1/jobs/" + id);
        throw e;
      }
      try {
        Thread.sleep(250);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new BridgeException("Interrupted while waiting for the segmentation.");
      }
    }
  }

  /** DELETE a job, ignoring a failure (the server may be the reason we give up). */
  void cancelQuietly(String path) {
    try {
      delete(path);
    } catch (BridgeException ignored) {
      // already reported by the caller
    }
  }
}
