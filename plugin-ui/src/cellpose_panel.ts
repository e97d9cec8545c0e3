/**
 * `<cellpose-panel server="http://127.0.0.1:8000">`: open an image (file picker, drag and drop,
 * or the active image of a connected viewer such as Fiji), set parameters, run Cellpose-SAM on
 * the local server with live progress and cancel, inspect the masks (overlay, outlines, flows,
 * cell probability, hover label), edit them (delete, brush, erase) and export them (label TIFF,
 * ImageJ ROI zip, outlines, CSV) or send them back to the viewer; add corrected results to a
 * training set and train a model on them (the Train section, `train_section.ts`).
 *
 * Embeddable in any web-based viewer: it needs only the server's URL. Against `serve --token`,
 * the token is entered in the panel's Server token field (or set as the `token` attribute); the
 * field keeps it in the page's session storage and every call sends it. A Z-stack result exports
 * whole (label TIFF, ROIs, CSV); its outlines are those of the plane shown.
 *
 * @example
 * ```html
 * <script type="module" src="http://127.0.0.1:8000/cellpose-panel.js"></script>
 * <cellpose-panel server="http://127.0.0.1:8000"></cellpose-panel>
 * ```
 * @module
 */
import { html, LitElement, nothing } from "lit";
import { ApiError, ServerApi, type Viewer } from "./api.ts";
import { JobFollower } from "./job_follower.ts";
import { panelStyles } from "./panel_styles.ts";
import { countMasks } from "./render.ts";
import { type Displayable, displayPlane, openImage } from "./display.ts";
import { exportFile, type ExportKind } from "./exports.ts";
import { readNpy } from "../../io/npy.ts";
import type { CellposeImageView, Tool, ViewMode } from "./image_view.ts";
import "./image_view.ts";
import "./params_form.ts";
import type { TrainingExample } from "./train_section.ts";
import "./train_section.ts";

/** Where the panel keeps the server token: the page's session storage (gone with the tab). */
const TOKEN_KEY = "cellpose.token";

function storedToken(): string {
  try {
    return globalThis.sessionStorage?.getItem(TOKEN_KEY) ?? "";
  } catch {
    return "";
  }
}

interface Result {
  job: string;
  name: string;
  width: number;
  height: number;
  /** all planes: [Z, H, W] or [H, W] */
  labels: Uint16Array | Uint32Array;
  planes: number;
  flows: Float32Array | null;
  cellprob: Float32Array | null;
}

function download(bytes: Uint8Array | string, name: string, type: string) {
  const url = URL.createObjectURL(new Blob([bytes as BlobPart], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** The panel element. */
export class CellposePanel extends LitElement {
  static override styles = panelStyles;
  static override properties = {
    server: { type: String },
    token: { type: String },
    image: { state: true },
    plane: { state: true },
    result: { state: true },
    error: { state: true },
    mode: { state: true },
    tool: { state: true },
    opacity: { state: true },
    outlines: { state: true },
    hover: { state: true },
    viewers: { state: true },
    health: { state: true },
    models: { state: true },
    model: { state: true },
    nMasks: { state: true },
    over: { state: true },
    examples: { state: true },
  };
  declare server: string;
  declare token: string;
  declare image: Displayable | null;
  declare plane: number;
  declare result: Result | null;
  declare error: string;
  declare mode: ViewMode;
  declare tool: Tool;
  declare opacity: number;
  declare outlines: boolean;
  declare hover: { x: number; y: number; label: number } | null;
  declare viewers: Viewer[];
  declare health: string;
  /** models the server offers, and the one it has loaded (or is loading) */
  declare models: string[];
  declare model: string;
  declare nMasks: number;
  declare over: boolean;
  declare examples: TrainingExample[];
  private file: { blob: Blob; name: string } | null = null;

  constructor() {
    super();
    this.server = globalThis.location?.origin ?? "http://127.0.0.1:8000";
    this.token = storedToken();
    this.image = null;
    this.plane = 0;
    this.result = null;
    this.error = "";
    this.mode = "image";
    this.tool = "pan";
    this.opacity = 0.4;
    this.outlines = true;
    this.hover = null;
    this.viewers = [];
    this.health = "";
    this.models = [];
    this.model = "";
    this.nMasks = 0;
    this.over = false;
    this.examples = [];
  }

  private client: { key: string; api: ServerApi } | null = null;

  /** The client for the current server and token (one object while they stay the same). */
  private get api(): ServerApi {
    const key = `${this.server} ${this.token}`;
    if (this.client?.key !== key) {
      this.client = { key, api: new ServerApi(this.server, this.token || undefined) };
    }
    return this.client.api;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    this.refreshServer();
  }

  private async refreshServer() {
    try {
      const h = await this.api.health();
      const model = h.model as { name?: string; state?: string } | undefined;
      const device = h.device as { network?: string | null } | undefined;
      this.health = `server ok · model ${model?.name ?? "none"} (${model?.state ?? "?"}) · device ${
        device?.network ?? "not loaded yet"
      }`;
      this.model = model?.name ?? "";
      this.models = await this.api.models().catch(() => []);
      this.viewers = await this.api.viewers().catch(() => []);
    } catch (e) {
      this.health = e instanceof ApiError && e.status === 401
        ? `the server at ${this.server} needs its token: enter it under Server token`
        : `server not reachable at ${this.server}: ${(e as Error).message}`;
    }
  }

  /** Switches the server's model (the shipped `nuclei`, `cpsam`, a fine-tuned one). */
  async useModel(name: string): Promise<void> {
    this.error = "";
    this.model = name;
    this.health = `loading model ${name} ...`;
    try {
      await this.api.useModel(name);
    } catch (e) {
      this.error = `model ${name}: ${(e as Error).message}`;
    }
    await this.refreshServer();
  }

  /** Opens an image file (also used by tests and by drag and drop). */
  async open(blob: Blob, name: string): Promise<void> {
    this.error = "";
    try {
      this.image = await openImage(new Uint8Array(await blob.arrayBuffer()), name);
      this.file = { blob, name };
      this.plane = 0;
      this.result = null;
      this.nMasks = 0;
    } catch (e) {
      this.error = (e as Error).message;
    }
  }

  private onFile(e: Event) {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) this.open(f, f.name);
  }

  private onDrop(e: DragEvent) {
    e.preventDefault();
    this.over = false;
    const f = e.dataTransfer?.files?.[0];
    if (f) this.open(f, f.name);
  }

  private async fromViewer(id: string) {
    this.error = "";
    try {
      const { blob, name } = await this.api.imageFromViewer(id);
      await this.open(blob, name);
    } catch (e) {
      this.error = (e as Error).message;
    }
  }

  /** The form's parameters, as its last `params-change` event gave them (events up). */
  private params: Record<string, number | boolean> = {};

  /** The submitted jobs and the one followed (a reactive controller: updates re-render). */
  private readonly follower = new JobFollower(this, () => this.api);

  /** Submits the open image and follows the job to its end. */
  async run(): Promise<void> {
    if (!this.file) return;
    this.error = "";
    const { name } = this.file;
    try {
      const { job, end } = await this.follower.run(this.file.blob, name, { ...this.params });
      if (end.status === "done") await this.showResult(job.id, name);
      else if (end.status === "failed") {
        this.error = end.error?.message ?? end.message ?? "segmentation failed";
      }
    } catch (e) {
      this.error = e instanceof ApiError ? `${e.message} (HTTP ${e.status})` : (e as Error).message;
    }
  }

  private async cancel() {
    await this.follower.cancel().catch((e) => (this.error = e.message));
  }

  private async optionalNpy(job: string, format: string): Promise<Float32Array | null> {
    try {
      return readNpy(new Uint8Array(await this.api.result(job, format))).data as Float32Array;
    } catch {
      return null;
    }
  }

  private async showResult(job: string, name: string) {
    const masks = readNpy(new Uint8Array(await this.api.result(job, "npy")));
    const [height, width] = masks.shape.slice(-2);
    this.result = {
      job,
      name,
      width,
      height,
      labels: masks.data as Uint16Array | Uint32Array,
      planes: masks.shape.length === 3 ? masks.shape[0] : 1,
      // flow and probability views are offered for 2D results
      flows: masks.shape.length === 2 ? await this.optionalNpy(job, "flows") : null,
      cellprob: masks.shape.length === 2 ? await this.optionalNpy(job, "cellprob") : null,
    };
    this.nMasks = countMasks(this.result.labels);
  }

  private doExport(kind: ExportKind) {
    const r = this.result;
    if (!r) return;
    this.error = "";
    try {
      const f = exportFile(kind, r.labels, r.width, r.height, r.name, r.planes, this.plane);
      download(f.bytes, f.name, f.type);
    } catch (e) {
      this.error = `export failed: ${(e as Error).message}`;
    }
  }

  /** The labels of the plane shown (a view: edits change the result's labels). */
  private shownLabels(r: Result): Uint16Array | Uint32Array {
    if (r.planes === 1) return r.labels;
    const n = r.width * r.height;
    const z = Math.min(this.plane, r.planes - 1);
    return r.labels.subarray(z * n, (z + 1) * n);
  }

  /** Sets the bearer token for `serve --token`, kept in the page's session storage. */
  setToken(token: string): void {
    this.token = token.trim();
    try {
      if (this.token) sessionStorage.setItem(TOKEN_KEY, this.token);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch { /* storage disabled: the token lasts as long as the panel */ }
    this.refreshServer();
  }

  private async sendToViewer(id: string) {
    if (!this.result) return;
    try {
      const r = this.result;
      const tiff = exportFile("tiff", r.labels, r.width, r.height, r.name, r.planes);
      await this.api.sendToViewer(id, this.result.job, this.result.name, tiff.bytes as Uint8Array);
    } catch (e) {
      this.error = (e as Error).message;
    }
  }

  /** Sends the (edited) masks to the server as the job's corrected masks and adds it to training. */
  async addToTraining(): Promise<void> {
    const r = this.result;
    if (!r || r.planes > 1) return;
    this.error = "";
    try {
      const tiff = exportFile("tiff", r.labels, r.width, r.height, r.name);
      const job = await this.api.putMasks(r.job, tiff.bytes as Uint8Array);
      const example = { job: r.job, name: r.name, nMasks: job.nMasks ?? this.nMasks };
      this.examples = [...this.examples.filter((e) => e.job !== r.job), example];
    } catch (e) {
      this.error = e instanceof ApiError ? `${e.message} (HTTP ${e.status})` : (e as Error).message;
    }
  }

  private toolButton(t: Tool, label: string) {
    return html`<button aria-pressed=${
      this.tool === t
    } @click=${() => (this.tool = t)}>${label}</button>`;
  }

  private modeButton(m: ViewMode, label: string, enabled: boolean) {
    return html`<button aria-pressed=${
      this.mode === m
    } ?disabled=${!enabled} @click=${() => (this.mode = m)}>${label}</button>`;
  }

  /** The Image section: drop zone, file picker, viewers' images, the open image's shape. */
  private imageSection(img: Displayable | null) {
    return html`
      <section>
        <h2>Image</h2>
        <div class="drop ${this.over ? "over" : ""}" @dragover=${(
          e: DragEvent,
        ) => (e.preventDefault(), this.over = true)}
          @dragleave=${() => (this.over = false)} @drop=${this.onDrop}>
          Drop an image here, or
          <label><input type="file" aria-label="Open image" accept=".tif,.tiff,.png,.jpg,.jpeg,.npy" @change=${this
            .onFile}></label>
        </div>
        ${this.viewers.length
          ? html`<div>From viewer: ${
            this.viewers.map((v) =>
              html`<button @click=${() => this.fromViewer(v.id)}>${v.name}</button>`
            )
          }</div>`
          : nothing}
        ${img
          ? html`<div class="info">${img.name}: ${img.shape.join(" × ")} (${img.axes})${
            img.zAxis !== undefined
              ? html`<label>Z plane <input type="range" min="0" max=${img.planes - 1} .value=${
                String(this.plane)
              }
                    aria-label="Z plane" @input=${(
                e: Event,
              ) => (this.plane = Number((e.target as HTMLInputElement).value))}>
                    ${this.plane + 1}/${img.planes}</label>`
              : nothing
          }${
            img.channels > 1
              ? html`<div>${img.channels} channels (order does not matter)</div>`
              : nothing
          }</div>`
          : nothing}
      </section>
    `;
  }

  /** Run and Cancel, the followed job's progress, the last error. */
  private runSection() {
    const cur = this.follower.current;
    const running = cur && (cur.status === "queued" || cur.status === "running");
    const frac = cur?.fraction ??
      (cur?.tilesTotal ? (cur.tilesDone ?? 0) / cur.tilesTotal : undefined);
    const img = this.image;
    return html`
      <section>
        <button id="run" ?disabled=${!img || !!running} @click=${this.run}>Run</button>
        <button id="cancel" ?disabled=${!running} @click=${this.cancel}>Cancel</button>
        ${this.follower.current
          ? html`
            <progress max="1" .value=${frac ?? 0} aria-label="progress"></progress>
            <small>${this.follower.current.status}${this.follower.current.stage
              ? ` · ${this.follower.current.stage}`
              : ""}${this.follower.current.tilesTotal
              ? ` · tiles ${
                this.follower.current.tilesDone ?? 0
              }/${this.follower.current.tilesTotal}`
              : ""}</small>
          `
          : nothing}
        ${this.error ? html`<div class="error" role="alert">${this.error}</div>` : nothing}
      </section>
    `;
  }

  /** The jobs submitted, newest first; a done one shows its result again. */
  private jobsSection() {
    return this.follower.jobs.length
      ? html`
        <section>
          <h2>Jobs</h2>
          <ul class="jobs">${this.follower.jobs.map((j) =>
            html`<li><button @click=${() =>
              j.status === "done" && this.showResult(j.id, this.file?.name ?? "image")}>
              ${j.id.slice(0, 8)} · ${j.status}${
              j.nMasks !== undefined ? ` · ${j.nMasks} masks` : ""
            }</button></li>`
          )}</ul>
        </section>
      `
      : nothing;
  }

  /** Exports of the result, sending it to a viewer, adding it to the training set. */
  private exportSection(r: Result) {
    return html`<section>
            <h2>Export</h2>
            <div>
              <button @click=${() => this.doExport("tiff")}>Label TIFF</button>
              <button @click=${() => this.doExport("roi")}>ROI zip</button>
              <button @click=${() => this.doExport("outlines")}>Outlines</button>
              <button @click=${() => this.doExport("csv")}>CSV</button>
            </div>
            ${
      this.viewers.map((v) =>
        html`<button @click=${() => this.sendToViewer(v.id)}>Send to ${v.name}</button>`
      )
    }
            ${
      r.planes === 1
        ? html`<button id="add-training" @click=${this.addToTraining}>Add to training set</button>`
        : nothing
    }
          </section>`;
  }

  /** View modes, overlay settings and editing tools. */
  private toolbar(r: Result | null) {
    return html`
      <div class="toolbar" role="toolbar" aria-label="view and tools">
        ${this.modeButton("image", "Image", true)} ${this.modeButton(
          "flows",
          "Flows",
          !!r?.flows,
        )}
        ${this.modeButton("cellprob", "Cell probability", !!r?.cellprob)}
        <label>Opacity <input type="range" min="0" max="1" step="0.05" .value=${String(
          this.opacity,
        )}
          aria-label="mask opacity" @input=${(
            e: Event,
          ) => (this.opacity = Number((e.target as HTMLInputElement).value))}></label>
        <label><input type="checkbox" .checked=${this.outlines} @change=${(
          e: Event,
        ) => (this.outlines = (e.target as HTMLInputElement).checked)}> Outlines</label>
        ${this.toolButton("pan", "Pan")} ${this.toolButton("delete", "Delete mask")}
        ${this.toolButton("brush", "Brush")} ${this.toolButton("erase", "Erase")}
      </div>
    `;
  }

  override render() {
    const img = this.image;
    const shown = img ? displayPlane(img, this.plane) : null;
    const r = this.result;
    return html`
      <aside>
        <h1>Cellpose-SAM</h1>
        <small id="health">${this.health}</small>
        <label>Server token <input type="password" aria-label="Server token" autocomplete="off"
          placeholder="for serve --token" .value=${this.token} @change=${(e: Event) =>
            this.setToken((e.target as HTMLInputElement).value)}></label>
        ${this.imageSection(img)}
        ${this.models.length
          ? html`<label>Model <select aria-label="Model" @change=${(e: Event) =>
            this.useModel((e.target as HTMLSelectElement).value)}>${
            this.models.map((m) => html`<option .selected=${m === this.model}>${m}</option>`)
          }</select></label>`
          : nothing}
        <section>
          <h2>Parameters</h2>
          <cellpose-params @params-change=${(
            e: CustomEvent<Record<string, number | boolean>>,
          ) => (this.params = e.detail)}></cellpose-params>
        </section>
        ${this.runSection()}
        ${this.jobsSection()} ${r ? this.exportSection(r) : nothing}
        <section>
          <h2>Train</h2>
          <cellpose-train .api=${this.api} .examples=${this.examples}
            @model-changed=${() => this.refreshServer()}></cellpose-train>
        </section>
      </aside>
      <main>
        ${this.toolbar(r)}
        <cellpose-image-view .width=${shown?.width ?? 0} .height=${shown?.height ??
          0} .base=${shown?.rgba ?? null}
          .labels=${r && shown && r.width === shown.width && r.height === shown.height
            ? this.shownLabels(r)
            : null}
          .flows=${r?.flows ?? null} .cellprob=${r?.cellprob ?? null} .mode=${this
            .mode} .opacity=${this.opacity}
          .outlines=${this.outlines} .tool=${this.tool}
          @hover=${(e: CustomEvent) => (this.hover = e.detail)}
          @edit=${() => (this.nMasks = countMasks(r!.labels))}></cellpose-image-view>
        <div class="statusbar">
          ${r
            ? html`<span class="count" id="mask-count">${this.nMasks} masks</span>`
            : html`<span>no result yet</span>`}
          ${this.hover
            ? html`<span id="hover">x ${this.hover.x}, y ${this.hover.y} · label ${this.hover.label}</span>`
            : nothing}
          <span>wheel/+/-: zoom · drag/arrows: pan · 0: fit</span>
        </div>
      </main>
    `;
  }

  /** The image view element (for tests and embedding tools). */
  get view(): CellposeImageView | null {
    return this.renderRoot.querySelector("cellpose-image-view");
  }
}
customElements.define("cellpose-panel", CellposePanel);
