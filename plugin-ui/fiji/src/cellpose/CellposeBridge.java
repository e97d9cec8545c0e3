package cellpose;

import ij.IJ;
import ij.ImagePlus;
import ij.Macro;
import ij.Prefs;
import ij.WindowManager;
import ij.gui.GenericDialog;
import ij.io.FileInfo;
import ij.io.FileSaver;
import ij.plugin.BrowserLauncher;
import ij.plugin.Duplicator;
import ij.plugin.PlugIn;
import ij.plugin.frame.RoiManager;
import ij.process.LUT;
import ij.util.Tools;
import java.awt.Color;
import java.io.File;
import java.io.IOException;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Plugins > Cellpose-SAM: sends the active image to the local cellpose-deno server and brings back
 * a 16-bit label image and one polygon ROI per mask in the ROI Manager.
 *
 * <p>Macro use: {@code run("Segment...", "server=http://127.0.0.1:8000 model=nuclei diameter=0
 * flow_threshold=0.4 cellprob_threshold=0 min_size=15 send=64 give=600");} ({@code send}: images
 * above this many megapixels go by file path; {@code give}: seconds without progress before a job
 * is given up). Errors go to the Log (and a dialog unless a macro runs); a macro reads the last
 * one with {@code call("cellpose.CellposeBridge.lastError")} ("" after a success).
 */
public class CellposeBridge implements PlugIn {
  static final String TITLE = "Cellpose-SAM";
  private static final String PREF = "cellpose.";
  private static Thread connection;
  private static volatile String lastError = "";
  /** a job's label TIFF or ROI zip is read up to this size */
  private static final long MAX_RESULT = 4L << 30;

  /** Parameters shared by "Segment" (last settings) and "Segment..." (dialog). */
  static final class Settings {
    String server = Prefs.get(PREF + "server", "http://127.0.0.1:8000");
    String token = Prefs.get(PREF + "token", "");
    /** model the server should use ("nuclei", "cpsam", a fine-tuned name); empty: the server's current one */
    String model = Prefs.get(PREF + "model", "");
    double diameter = Prefs.get(PREF + "diameter", 0);
    double flowThreshold = Prefs.get(PREF + "flow_threshold", 0.4);
    double cellprobThreshold = Prefs.get(PREF + "cellprob_threshold", 0.0);
    int minSize = (int) Prefs.get(PREF + "min_size", 15);
    boolean do3D = Prefs.get(PREF + "do_3D", false);
    /** images above this many megapixels are not sent: the server reads their file (its --data_dir) */
    double sendMaxMegapixels = Prefs.get(PREF + "send_max_mp", 64);
    /** a job whose status and progress stay the same this long is given up (cancelled) */
    double stallSeconds = Prefs.get(PREF + "stall_s", 600);

    void save() {
      Prefs.set(PREF + "server", server);
      Prefs.set(PREF + "token", token);
      Prefs.set(PREF + "model", model);
      Prefs.set(PREF + "diameter", diameter);
      Prefs.set(PREF + "flow_threshold", flowThreshold);
      Prefs.set(PREF + "cellprob_threshold", cellprobThreshold);
      Prefs.set(PREF + "min_size", minSize);
      Prefs.set(PREF + "do_3D", do3D);
      Prefs.set(PREF + "send_max_mp", sendMaxMegapixels);
      Prefs.set(PREF + "stall_s", stallSeconds);
    }

    Map<String, String> params() {
      Map<String, String> p = new LinkedHashMap<>();
      if (diameter > 0) p.put("diameter", Double.toString(diameter));
      p.put("flow_threshold", Double.toString(flowThreshold));
      p.put("cellprob_threshold", Double.toString(cellprobThreshold));
      p.put("min_size", Integer.toString(minSize));
      if (do3D) p.put("do_3D", "true");
      return p;
    }
  }

  @Override
  public void run(String arg) {
    clearError();
    Settings s = new Settings();
    try {
      switch (arg) {
        case "dialog":
          if (!dialog(s)) return;
          s.save();
          segment(WindowManager.getCurrentImage(), s);
          break;
        case "panel":
          BrowserLauncher.openURL(s.server + "/");
          break;
        case "connect":
          connect(s);
          break;
        default:
          String options = Macro.getOptions();
          if (options != null) {
            s.server = Macro.getValue(options, "server", s.server);
            s.model = Macro.getValue(options, "model", s.model);
            s.stallSeconds = Tools.parseDouble(Macro.getValue(options, "give", ""), s.stallSeconds);
          }
          segment(WindowManager.getCurrentImage(), s);
      }
    } catch (BridgeException e) {
      report(e.getMessage());
    } catch (IOException e) {
      report("Could not open " + s.server + ": " + e.getMessage());
    } catch (RuntimeException e) {
      report("Unexpected error (" + e + "); please report it with the server's log.");
    }
  }

  /** The last error of a Cellpose-SAM command ("" after a success). For macros: call(...). */
  public static String lastError() {
    return lastError;
  }

  static void clearError() {
    lastError = "";
  }

  /**
   * Shows an error in the Log, and as a dialog unless a macro runs: a modal dialog would stop a
   * batch macro until someone clicks; a macro reads call("cellpose.CellposeBridge.lastError").
   */
  static void report(String message) {
    lastError = message;
    IJ.log("Cellpose-SAM error: " + message);
    if (!IJ.isMacro()) IJ.error(TITLE, message);
  }

  private static boolean dialog(Settings s) {
    GenericDialog gd = new GenericDialog(TITLE);
    gd.addStringField("Server", s.server, 30);
    gd.addStringField("Token (remote servers only)", s.token, 30);
    gd.addStringField("Model (nuclei, cpsam, ...; empty = server's)", s.model, 30);
    gd.addNumericField("Diameter (0 = not needed)", s.diameter, 1, 6, "px");
    gd.addNumericField("Flow threshold", s.flowThreshold, 2);
    gd.addNumericField("Cell probability threshold", s.cellprobThreshold, 2);
    gd.addNumericField("Minimum size", s.minSize, 0, 6, "px");
    gd.addCheckbox("3D (whole stack)", s.do3D);
    gd.addNumericField("Send images up to", s.sendMaxMegapixels, 1, 6, "megapixels (larger: by file path)");
    gd.addNumericField("Give up after no progress for", s.stallSeconds, 0, 6, "s");
    gd.addHelp("https://github.com/MouseLand/cellpose");
    gd.showDialog();
    if (gd.wasCanceled()) return false;
    s.server = gd.getNextString().trim();
    s.token = gd.getNextString().trim();
    s.model = gd.getNextString().trim();
    s.diameter = gd.getNextNumber();
    s.flowThreshold = gd.getNextNumber();
    s.cellprobThreshold = gd.getNextNumber();
    s.minSize = (int) gd.getNextNumber();
    s.do3D = gd.getNextBoolean();
    s.sendMaxMegapixels = gd.getNextNumber();
    s.stallSeconds = gd.getNextNumber();
    return true;
  }

  /** The part of the image to send: the current plane with all its channels, or the stack for 3D. */
  private static ImagePlus selection(ImagePlus imp, boolean do3D) {
    int c = imp.getNChannels();
    int z = imp.getSlice();
    int t = imp.getFrame();
    if (do3D) return new Duplicator().run(imp, 1, c, 1, imp.getNSlices(), t, t);
    return new Duplicator().run(imp, 1, c, z, z, t, t);
  }

  static void segment(ImagePlus imp, Settings s) throws BridgeException {
    if (imp == null) throw new BridgeException("Open an image first: Cellpose-SAM segments the active image.");
    ServerClient client = new ServerClient(s.server, s.token);
    boolean tooLarge = (double) imp.getWidth() * imp.getHeight() > s.sendMaxMegapixels * 1e6 && !s.do3D;
    File file = tooLarge ? serverReadableFile(imp) : null;
    if (!s.model.isEmpty()) {
      IJ.showStatus("Cellpose-SAM: loading model " + s.model);
      client.useModel(s.model);
    }
    if (tooLarge) {
      segmentByPath(client, imp, file, s);
      return;
    }
    ImagePlus part = selection(imp, s.do3D);
    File tmp = null;
    try {
      tmp = File.createTempFile("cellpose-", ".tif");
      if (!new FileSaver(part).saveAsTiff(tmp.getPath())) throw new BridgeException("Could not save the image.");
      IJ.showStatus("Cellpose-SAM: uploading " + imp.getTitle());
      String id = client.submit(Files.readAllBytes(tmp.toPath()), imp.getTitle() + ".tif", s.params());
      IJ.showStatus("Cellpose-SAM: segmenting " + imp.getTitle());
      client.await(id, f -> IJ.showProgress(f), s.stallSeconds);
      IJ.showProgress(1.0);
      showResult(client, id, imp.getTitle());
    } catch (IOException e) {
      throw new BridgeException("Could not write a temporary file: " + e.getMessage());
    } finally {
      if (tmp != null) tmp.delete();
    }
  }

  /** The image's own TIFF file, which the server can read (under its --data_dir); refuses others with the reason. */
  static File serverReadableFile(ImagePlus imp) throws BridgeException {
    FileInfo fi = imp.getOriginalFileInfo();
    File file = fi == null || fi.directory == null || fi.fileName == null ? null : new File(fi.directory, fi.fileName);
    String size = imp.getWidth() + " x " + imp.getHeight();
    if (file == null || !file.isFile() || !file.getName().toLowerCase().matches(".*\\.tiff?$")) {
      throw new BridgeException("This image (" + size + ") is too large to send, and it is not a TIFF file on "
          + "this computer that the server could read" + (file == null ? "" : " (" + file.getPath() + ")") + ".\n"
          + "Save it as TIFF in a folder the server was started with (cellpose serve --data_dir FOLDER) "
          + "and open it from there, or raise 'Send images up to'.");
    }
    return file;
  }

  /**
   * An image too large to send: the server segments its file block by block (it must lie under
   * a folder the server was started with, --data_dir); the labels open as a virtual stack.
   */
  static void segmentByPath(ServerClient client, ImagePlus imp, File file, Settings s) throws BridgeException {
    String size = imp.getWidth() + " x " + imp.getHeight();
    StringBuilder query = new StringBuilder("/v1/segment_large?path=");
    query.append(URLEncoder.encode(file.getAbsolutePath(), StandardCharsets.UTF_8));
    for (Map.Entry<String, String> p : s.params().entrySet()) {
      query.append('&').append(p.getKey()).append('=').append(URLEncoder.encode(p.getValue(), StandardCharsets.UTF_8));
    }
    try {
      File labels = File.createTempFile("cellpose-masks-", ".tif");
      IJ.showStatus("Cellpose-SAM: segmenting " + file.getName() + " (" + size + ") block by block on the server");
      ImagePlus result;
      String masks;
      try {
        masks = client.postToFile(query.toString(), labels, 8L * imp.getWidth() * imp.getHeight() + (64L << 20));
        // a virtual stack reads its planes from the file when shown (ImageJ loads a single plane whole)
        result = IJ.openVirtual(labels.getPath());
        if (result == null) throw new BridgeException("The server's label image could not be read.");
      } finally {
        labels.deleteOnExit(); // read by the virtual stack while it is open
      }
      if (!result.getStack().isVirtual()) labels.delete();
      result.setTitle(imp.getTitle().replaceAll("\\.(tif|tiff)$", "") + "_cp_masks");
      result.setLut(glasbey());
      result.setDisplayRange(0, 255);
      result.show();
      IJ.log("Cellpose-SAM: " + masks + " masks in " + imp.getTitle() + " (labels as a virtual stack)");
      IJ.showStatus("Cellpose-SAM: " + masks + " masks");
    } catch (IOException e) {
      throw new BridgeException("Could not write a temporary file: " + e.getMessage());
    }
  }

  /** Downloads a finished job's label image and ROIs and shows them. */
  static void showResult(ServerClient client, String id, String title) throws BridgeException {
    File labels = null;
    File rois = null;
    try {
      labels = File.createTempFile("cellpose-masks-", ".tif");
      client.getToFile("/v1/jobs/" + id + "/result?format=tiff", labels, MAX_RESULT);
      ImagePlus masks = IJ.openImage(labels.getPath());
      if (masks == null) throw new BridgeException("The server's label image could not be read.");
      String base = title.replaceAll("\\.(tif|tiff|png|jpg)$", "");
      masks.setTitle(base + "_cp_masks");
      masks.setLut(glasbey());
      masks.setDisplayRange(0, 255);
      masks.show();
      RoiManager rm = RoiManager.getInstance();
      if (rm == null) rm = new RoiManager();
      rm.reset();
      // no masks: an empty ROI zip would stop ImageJ at a modal "no ROIs" error (a macro waits forever)
      rois = File.createTempFile("cellpose-rois-", ".zip");
      client.getToFile("/v1/jobs/" + id + "/result?format=roi", rois, MAX_RESULT);
      if (hasEntries(rois)) rm.runCommand("Open", rois.getPath());
      int n = rm.getCount();
      IJ.log("Cellpose-SAM: " + n + " masks in " + title);
      IJ.showStatus("Cellpose-SAM: " + n + " masks");
    } catch (IOException e) {
      throw new BridgeException("Could not write a temporary file: " + e.getMessage());
    } finally {
      if (labels != null) labels.delete();
      if (rois != null) rois.delete();
    }
  }

  /** Whether a zip file holds at least one entry (ImageJ's ROI Manager refuses empty ones with a dialog). */
  private static boolean hasEntries(File zip) throws IOException {
    try (java.util.zip.ZipInputStream in = new java.util.zip.ZipInputStream(Files.newInputStream(zip.toPath()))) {
      return in.getNextEntry() != null;
    }
  }

  /** A glasbey-like LUT: 0 black, then well separated colours. */
  static LUT glasbey() {
    byte[] r = new byte[256];
    byte[] g = new byte[256];
    byte[] b = new byte[256];
    for (int i = 1; i < 256; i++) {
      float hue = (i * 0.618034f) % 1f;
      float sat = 0.55f + 0.45f * ((i * 7) % 3) / 2f;
      float bri = 0.7f + 0.3f * ((i * 5) % 2);
      Color c = Color.getHSBColor(hue, sat, bri);
      r[i] = (byte) c.getRed();
      g[i] = (byte) c.getGreen();
      b[i] = (byte) c.getBlue();
    }
    return new LUT(r, g, b);
  }

  /** Registers with the server so the web panel can take the active image and send results back. */
  private static synchronized void connect(Settings s) throws BridgeException {
    if (connection != null && connection.isAlive()) {
      IJ.showMessage(TITLE, "Already connected to " + s.server + ".");
      return;
    }
    ServerClient client = new ServerClient(s.server, s.token);
    String answer = client.postJson("/v1/bridge/register", "{\"name\":" + Json.quote("ImageJ " + IJ.getVersion()) + "}");
    String id = ServerClient.jobId(Json.parse(answer, "POST /v1/bridge/register"), "POST /v1/bridge/register");
    connection = new Thread(() -> listen(client, id, s), "cellpose-bridge");
    connection.setDaemon(true);
    connection.start();
    IJ.log("Cellpose-SAM: connected to " + s.server + " (viewer " + id + ")");
  }

  /** Long-polls the server for the panel's requests until ImageJ quits or the server goes away. */
  private static void listen(ServerClient client, String id, Settings s) {
    int failures = 0;
    while (failures < 5) {
      try {
        Object cmd = client.getJson("/v1/bridge/" + id + "/next?wait=20");
        failures = 0;
        String type = Json.string(cmd, "type");
        if ("send-image".equals(type)) {
          ImagePlus imp = WindowManager.getCurrentImage();
          if (imp == null) {
            client.postJson("/v1/bridge/" + id + "/error", "{\"message\":\"No image is open in ImageJ.\"}");
            continue;
          }
          File tmp = File.createTempFile("cellpose-", ".tif");
          try {
            new FileSaver(selection(imp, false)).saveAsTiff(tmp.getPath());
            client.postImage("/v1/bridge/" + id + "/image", Files.readAllBytes(tmp.toPath()), imp.getTitle() + ".tif",
                new LinkedHashMap<>());
          } finally {
            tmp.delete();
          }
        } else if ("show-result".equals(type)) {
          String job = ServerClient.jobId(cmd, "job", "the panel's show-result");
          String title = Json.string(cmd, "title");
          showResult(client, job, title != null ? title : "image");
        }
      } catch (BridgeException | IOException e) {
        failures++;
        IJ.log("Cellpose-SAM bridge: " + e.getMessage());
        try {
          Thread.sleep(2000);
        } catch (InterruptedException ie) {
          return;
        }
      }
    }
    IJ.log("Cellpose-SAM: disconnected from " + s.server);
  }
}
