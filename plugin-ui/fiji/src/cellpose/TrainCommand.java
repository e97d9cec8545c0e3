package cellpose;

import ij.IJ;
import ij.ImagePlus;
import ij.Prefs;
import ij.WindowManager;
import ij.gui.GenericDialog;
import ij.gui.Roi;
import ij.io.FileSaver;
import ij.plugin.Duplicator;
import ij.plugin.PlugIn;
import ij.plugin.frame.RoiManager;
import ij.process.ShortProcessor;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Plugins > Cellpose-SAM > Train...: the human-in-the-loop step in ImageJ. The chosen image with
 * its labels (a label image from the open windows, or the ROI Manager's ROIs: Segment, fix the
 * ROIs, Train) trains a model on the cellpose-deno server (POST /v1/train, cellpose's recipe);
 * the epochs, loss and time left show in the status bar and the Log, Esc cancels, and the new
 * model's name comes back: with "use" it becomes the server's model, so Segment uses it next.
 *
 * <p>Macro use: {@code run("Train...", "server=http://127.0.0.1:8000 image=cells.tif
 * labels=cells_masks.tif model=my_cells epochs=100 learning=0.00001 use");} then
 * {@code call("cellpose.TrainCommand.lastModel")} is the trained model's name.
 */
public class TrainCommand implements PlugIn {
  static final String ROI_MANAGER = "<ROI Manager>";
  private static final String PREF = "cellpose.train.";
  private static volatile String lastModel = "";

  /** The name of the model the last Train... made ("" before). For macros: call(...). */
  public static String lastModel() {
    return lastModel;
  }

  @Override
  public void run(String arg) {
    CellposeBridge.clearError();
    String server = Prefs.get("cellpose.server", "http://127.0.0.1:8000");
    String token = Prefs.get("cellpose.token", "");
    int[] ids = WindowManager.getIDList();
    if (ids == null) {
      IJ.error(CellposeBridge.TITLE, "Open the image to train on and its label image first\n"
          + "(or segment it and correct the ROIs in the ROI Manager).");
      return;
    }
    List<String> titles = new ArrayList<>();
    for (int id : ids) titles.add(WindowManager.getImage(id).getTitle());
    List<String> labelChoices = new ArrayList<>(titles);
    labelChoices.add(0, ROI_MANAGER);
    ImagePlus current = WindowManager.getCurrentImage();
    GenericDialog gd = new GenericDialog(CellposeBridge.TITLE + ": Train");
    gd.addStringField("Server", server, 30);
    gd.addChoice("Image", titles.toArray(new String[0]), current != null ? current.getTitle() : titles.get(0));
    gd.addChoice("Labels", labelChoices.toArray(new String[0]), guessLabels(titles, current));
    gd.addStringField("Model name", Prefs.get(PREF + "model", "my_cells"), 20);
    gd.addNumericField("Epochs", Prefs.get(PREF + "epochs", 100), 0);
    gd.addNumericField("Learning rate", Prefs.get(PREF + "learning_rate", 1e-5), 6, 10, "");
    gd.addCheckbox("Use the model for the next Segment", Prefs.get(PREF + "use", true));
    gd.addMessage("Esc cancels the training.");
    gd.showDialog();
    if (gd.wasCanceled()) return;
    server = gd.getNextString().trim();
    ImagePlus image = WindowManager.getImage(gd.getNextChoice());
    String labels = gd.getNextChoice();
    String model = gd.getNextString().trim();
    int epochs = (int) gd.getNextNumber();
    double lr = gd.getNextNumber();
    boolean use = gd.getNextBoolean();
    Prefs.set(PREF + "model", model);
    Prefs.set(PREF + "epochs", epochs);
    Prefs.set(PREF + "learning_rate", lr);
    Prefs.set(PREF + "use", use);
    try {
      ServerClient client = new ServerClient(server, token);
      String trained = train(client, image, labels, model, epochs, lr);
      lastModel = trained;
      if (use) {
        client.useModel(trained);
        IJ.log("Cellpose-SAM: the server now segments with " + trained);
      }
    } catch (BridgeException e) {
      CellposeBridge.report(e.getMessage());
    } catch (RuntimeException e) {
      CellposeBridge.report("Unexpected error while training (" + e + "); please report it with the server's log.");
    }
  }

  /** A label image among the windows named like the image (e.g. x_masks, x_cp_masks). */
  private static String guessLabels(List<String> titles, ImagePlus current) {
    if (current == null) return ROI_MANAGER;
    String base = current.getTitle().replaceAll("\\.(tif|tiff|png|jpg)$", "");
    for (String t : titles) if (!t.equals(current.getTitle()) && t.startsWith(base) && t.contains("mask")) return t;
    return ROI_MANAGER;
  }

  /** Uploads the image and its labels, follows the training, returns the model name. */
  static String train(ServerClient client, ImagePlus image, String labels, String model, int epochs, double lr)
      throws BridgeException {
    if (image == null) throw new BridgeException("The image to train on is not open any more.");
    ImagePlus plane = new Duplicator().run(image, 1, image.getNChannels(), image.getSlice(), image.getSlice(),
        image.getFrame(), image.getFrame());
    ImagePlus mask = ROI_MANAGER.equals(labels) ? fromRois(image) : WindowManager.getImage(labels);
    if (mask == null) throw new BridgeException("The label image " + labels + " is not open any more.");
    if (mask.getWidth() != image.getWidth() || mask.getHeight() != image.getHeight()) {
      throw new BridgeException("The labels " + mask.getTitle() + " are " + mask.getWidth() + " x " + mask.getHeight()
          + " but the image " + image.getTitle() + " is " + image.getWidth() + " x " + image.getHeight() + ".");
    }
    Map<String, String> fields = new LinkedHashMap<>();
    fields.put("model_name", model);
    fields.put("n_epochs", Integer.toString(epochs));
    fields.put("learning_rate", Double.toString(lr));
    String answer = client.postParts("/v1/train", fields,
        new String[][] {{"image", image.getTitle() + ".tif"}, {"masks", mask.getTitle() + ".tif"}},
        new byte[][] {tiff(plane), tiff(mask)});
    String id = ServerClient.jobId(Json.parse(answer, "POST /v1/train"), "POST /v1/train");
    IJ.log("Cellpose-SAM: training " + model + " on " + image.getTitle() + " (" + epochs + " epochs)");
    return follow(client, id, model);
  }

  /** Polls the training: status bar, progress bar, one Log line per epoch; Esc cancels. */
  private static String follow(ServerClient client, String id, String model) throws BridgeException {
    IJ.resetEscape();
    int logged = 0;
    java.util.Set<Integer> seen = new java.util.HashSet<>();
    Stall stall = new Stall("The training", Prefs.get("cellpose.stall_s", 600));
    while (true) {
      Object job = client.getJson("/v1/train/" + id);
      String status = Json.string(job, "status");
      double epoch = Json.number(job, "epoch");
      double n = Json.number(job, "nEpochs");
      double loss = Json.number(job, "loss");
      double f = Json.number(job, "fraction");
      if (!Double.isNaN(f)) IJ.showProgress(f);
      if (!Double.isNaN(epoch) && !Double.isNaN(loss)) {
        double eta = Json.number(job, "eta");
        IJ.showStatus(String.format("Cellpose-SAM: training epoch %d/%d, loss %.4f%s", (int) epoch, (int) n, loss,
            Double.isNaN(eta) ? "" : String.format(", %d s left (Esc cancels)", Math.round(eta))));
        if ("epoch".equals(Json.string(job, "event")) && (int) epoch > logged) {
          logged = (int) epoch;
          seen.add(logged);
          IJ.log(String.format("Cellpose-SAM: epoch %d/%d loss %.4f", logged, (int) n, loss));
        }
      }
      if ("done".equals(status)) {
        IJ.showProgress(1.0);
        // epochs shorter than the polling interval were not seen running: log them from the result
        double[] losses = Json.numbers(job, "trainLosses");
        for (int e = 1; e <= losses.length; e++) {
          if (!seen.contains(e)) IJ.log(String.format("Cellpose-SAM: epoch %d/%d loss %.4f", e, losses.length, losses[e - 1]));
        }
        String name = Json.string(job, "modelName");
        IJ.log(String.format("Cellpose-SAM: trained model %s (%.1f s/epoch)", name, Json.number(job, "secondsPerEpoch")));
        IJ.showStatus("Cellpose-SAM: trained " + name);
        return name;
      }
      if ("failed".equals(status) || "cancelled".equals(status)) {
        IJ.showProgress(1.0);
        String msg = Json.string(job, "message");
        throw new BridgeException("Training " + status + (msg != null ? ": " + msg : "."));
      }
      if (status == null) throw new BridgeException("The Cellpose server's training " + id + " has no status.");
      try {
        stall.check(status + " " + f + " " + loss);
      } catch (BridgeException e) {
        client.cancelQuietly("/v1/train/" + id);
        throw e;
      }
      if (IJ.escapePressed()) {
        client.delete("/v1/train/" + id);
        IJ.resetEscape();
      }
      try {
        Thread.sleep(500);
      } catch (InterruptedException e) {
        client.delete("/v1/train/" + id);
        Thread.currentThread().interrupt();
        throw new BridgeException("Training cancelled.");
      }
    }
  }

  /** A 16-bit label image from the ROI Manager's ROIs: ROI i filled with i + 1. */
  static ImagePlus fromRois(ImagePlus image) throws BridgeException {
    RoiManager rm = RoiManager.getInstance();
    if (rm == null || rm.getCount() == 0) {
      throw new BridgeException("The ROI Manager has no ROIs: segment the image (Segment...) and correct the ROIs,\n"
          + "or choose a label image.");
    }
    if (rm.getCount() > 65535) throw new BridgeException("More than 65535 ROIs: use a label image.");
    ShortProcessor ip = new ShortProcessor(image.getWidth(), image.getHeight());
    Roi[] rois = rm.getRoisAsArray();
    for (int i = 0; i < rois.length; i++) {
      ip.setValue(i + 1);
      ip.fill(rois[i]);
    }
    return new ImagePlus(image.getTitle() + "_roi_labels", ip);
  }

  private static byte[] tiff(ImagePlus imp) throws BridgeException {
    File tmp = null;
    try {
      tmp = File.createTempFile("cellpose-train-", ".tif");
      if (!new FileSaver(imp).saveAsTiff(tmp.getPath())) throw new BridgeException("Could not save " + imp.getTitle());
      return Files.readAllBytes(tmp.toPath());
    } catch (IOException e) {
      throw new BridgeException("Could not write a temporary file: " + e.getMessage());
    } finally {
      if (tmp != null) tmp.delete();
    }
  }
}
