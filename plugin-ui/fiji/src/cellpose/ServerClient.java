package cellpose;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
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

  private HttpRequest.Builder request(String path) {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofMinutes(30));
    if (token != null) b.header("Authorization", "Bearer " + token);
    return b;
  }

  private HttpResponse<byte[]> send(HttpRequest req) throws BridgeException {
    try {
      HttpResponse<byte[]> res = http.send(req, HttpResponse.BodyHandlers.ofByteArray());
      if (res.statusCode() >= 400) {
        String body = new String(res.body(), StandardCharsets.UTF_8);
        String msg = Json.string(body, "message");
        String why = msg != null ? msg : body.isEmpty() ? "no details given" : body;
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

  /** GET a path, returning the body as text. */
  String getText(String path) throws BridgeException {
    return new String(send(request(path).GET().build()).body(), StandardCharsets.UTF_8);
  }

  /** GET a path, returning the body as bytes. */
  byte[] getBytes(String path) throws BridgeException {
    return send(request(path).GET().build()).body();
  }

  /** POST a JSON body, returning the answer as text. */
  String postJson(String path, String json) throws BridgeException {
    return new String(send(request(path).header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(json)).build()).body(), StandardCharsets.UTF_8);
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
    return new String(send(req).body(), StandardCharsets.UTF_8);
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
    return new String(send(request(path).DELETE().build()).body(), StandardCharsets.UTF_8);
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
    return new String(send(req).body(), StandardCharsets.UTF_8);
  }

  /**
   * POSTs with no body and writes the answer to {@code out} as it streams; returns the
   * x-cellpose-masks header (the mask count).
   */
  String postToFile(String path, java.io.File out) throws BridgeException {
    HttpRequest req = request(path).POST(HttpRequest.BodyPublishers.noBody()).build();
    try {
      HttpResponse<java.nio.file.Path> res = http.send(req, HttpResponse.BodyHandlers.ofFile(out.toPath()));
      if (res.statusCode() >= 400) {
        String body = new String(java.nio.file.Files.readAllBytes(out.toPath()), StandardCharsets.UTF_8);
        String msg = Json.string(body, "message");
        throw new BridgeException("The Cellpose server refused the request (HTTP " + res.statusCode() + "): "
            + (msg != null ? msg : body));
      }
      return res.headers().firstValue("x-cellpose-masks").orElse("?");
    } catch (ConnectException e) {
      throw new BridgeException("No Cellpose server is running at " + base + ".");
    } catch (IOException e) {
      throw new BridgeException("Could not talk to the Cellpose server at " + base + ": " + e.getMessage());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new BridgeException("Interrupted while talking to the Cellpose server.");
    }
  }

  /** Submits an image for segmentation and returns the job id. */
  String submit(byte[] tiff, String fileName, Map<String, String> params) throws BridgeException {
    String answer = postImage("/v1/segment", tiff, fileName, params);
    String id = Json.string(answer, "id");
    if (id == null) throw new BridgeException("The Cellpose server gave no job id: " + answer);
    return id;
  }

  /** Polls a job until it ends; reports progress in 0..1. Returns the final status JSON. */
  String await(String id, DoubleConsumer progress) throws BridgeException {
    while (true) {
      String job = getText("/v1/jobs/" + id);
      String status = Json.string(job, "status");
      double f = Json.number(job, "fraction");
      if (!Double.isNaN(f)) progress.accept(f);
      if ("done".equals(status)) return job;
      if ("failed".equals(status) || "cancelled".equals(status)) {
        String msg = Json.string(job, "message");
        throw new BridgeException("Segmentation " + status + (msg != null ? ": " + msg : "."));
      }
      try {
        Thread.sleep(250);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new BridgeException("Interrupted while waiting for the segmentation.");
      }
    }
  }
}
