/**
 * `<cellpose-image-view>`: the image with its masks. Zoom (wheel, +/-), pan (drag, arrow keys),
 * fit (0); hover reports the label under the cursor; tools edit the label image in place:
 * `delete` removes the clicked mask, `brush` paints a new mask, `erase` clears pixels.
 * Events: `hover` {x, y, label}, `edit` {labels}.
 * @module
 */
import { css, html, LitElement, type PropertyValues } from "lit";
import { maxLabel } from "../../core/labels.ts";
import { cellprobToRgba, deleteMask, flowsToRgba, overlay, paintDisc } from "./render.ts";

/** What the view shows under the masks. */
export type ViewMode = "image" | "flows" | "cellprob";
/** What a click or drag does. */
export type Tool = "pan" | "delete" | "brush" | "erase";

/** Image view element. */
export class CellposeImageView extends LitElement {
  static override styles = css`
    :host {
      display: block;
      position: relative;
      background: #111;
      overflow: hidden;
      outline: none;
    }
    :host(:focus-visible) {
      box-shadow: inset 0 0 0 2px #4af;
    }
    canvas {
      display: block;
      width: 100%;
      height: 100%;
      image-rendering: pixelated;
      touch-action: none;
    }
  `;
  static override properties = {
    width: { type: Number },
    height: { type: Number },
    base: { attribute: false },
    labels: { attribute: false },
    flows: { attribute: false },
    cellprob: { attribute: false },
    mode: { type: String },
    opacity: { type: Number },
    outlines: { type: Boolean },
    tool: { type: String },
    brushRadius: { type: Number },
  };
  declare width: number;
  declare height: number;
  declare base: Uint8ClampedArray | null;
  declare labels: Uint16Array | Uint32Array | null;
  declare flows: Float32Array | null;
  declare cellprob: Float32Array | null;
  declare mode: ViewMode;
  declare opacity: number;
  declare outlines: boolean;
  declare tool: Tool;
  declare brushRadius: number;

  private scale = 1;
  private ox = 0;
  private oy = 0;
  private drag: { x: number; y: number; ox: number; oy: number } | null = null;
  private painting = 0;
  private offscreen: HTMLCanvasElement | null = null;

  constructor() {
    super();
    this.width = 0;
    this.height = 0;
    this.base = null;
    this.labels = null;
    this.flows = null;
    this.cellprob = null;
    this.mode = "image";
    this.opacity = 0.4;
    this.outlines = true;
    this.tool = "pan";
    this.brushRadius = 4;
    this.tabIndex = 0;
    this.addEventListener("keydown", (e) => this.onKey(e));
  }

  private get canvas(): HTMLCanvasElement | null {
    return this.renderRoot.querySelector("canvas");
  }

  /** Fits the whole image in the view. */
  fit(): void {
    const c = this.canvas;
    if (!c || !this.width) return;
    this.scale = Math.min(c.width / this.width, c.height / this.height);
    this.ox = (c.width - this.width * this.scale) / 2;
    this.oy = (c.height - this.height * this.scale) / 2;
    this.draw();
  }

  /** Redraws the composed image (call after editing `labels` in place). */
  compose(): void {
    if (!this.width || !this.height) return;
    const n = this.width * this.height;
    let under: Uint8ClampedArray | null = this.base;
    if (this.mode === "flows" && this.flows) {
      under = flowsToRgba(this.flows, this.width, this.height);
    }
    if (this.mode === "cellprob" && this.cellprob) under = cellprobToRgba(this.cellprob);
    if (!under || under.length !== 4 * n) return;
    const rgba = this.labels && this.mode === "image"
      ? overlay(under, this.labels, this.width, this.height, {
        opacity: this.opacity,
        outlines: this.outlines,
      })
      : under;
    this.offscreen ??= document.createElement("canvas");
    this.offscreen.width = this.width;
    this.offscreen.height = this.height;
    this.offscreen.getContext("2d")!.putImageData(
      new ImageData(rgba as Uint8ClampedArray<ArrayBuffer>, this.width, this.height),
      0,
      0,
    );
    this.draw();
  }

  private draw() {
    const c = this.canvas;
    if (!c || !this.offscreen) return;
    const g = c.getContext("2d")!;
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.fillStyle = "#111";
    g.fillRect(0, 0, c.width, c.height);
    g.imageSmoothingEnabled = false;
    g.setTransform(this.scale, 0, 0, this.scale, this.ox, this.oy);
    g.drawImage(this.offscreen, 0, 0);
  }

  override firstUpdated(): void {
    const c = this.canvas!;
    new ResizeObserver(() => {
      c.width = Math.max(1, this.clientWidth);
      c.height = Math.max(1, this.clientHeight);
      this.fit();
    }).observe(this);
  }

  override updated(changed: PropertyValues): void {
    if (changed.has("width") || changed.has("height")) {
      this.compose();
      this.fit();
    } else this.compose();
  }

  /** Image pixel under a pointer event. */
  private pixelAt(e: PointerEvent | WheelEvent): { x: number; y: number } {
    const r = this.canvas!.getBoundingClientRect();
    const cx = (e.clientX - r.left) * (this.canvas!.width / r.width);
    const cy = (e.clientY - r.top) * (this.canvas!.height / r.height);
    return {
      x: Math.floor((cx - this.ox) / this.scale),
      y: Math.floor((cy - this.oy) / this.scale),
    };
  }

  private labelAt(x: number, y: number): number {
    if (!this.labels || x < 0 || y < 0 || x >= this.width || y >= this.height) return 0;
    return this.labels[y * this.width + x];
  }

  private edited() {
    this.compose();
    this.dispatchEvent(new CustomEvent("edit", { detail: { labels: this.labels } }));
  }

  private onDown(e: PointerEvent) {
    this.focus();
    const p = this.pixelAt(e);
    if (this.tool === "pan" || !this.labels) {
      this.drag = { x: e.clientX, y: e.clientY, ox: this.ox, oy: this.oy };
    } else if (this.tool === "delete") {
      if (deleteMask(this.labels, this.labelAt(p.x, p.y)) > 0) this.edited();
    } else {
      this.painting = this.tool === "erase"
        ? 0
        : (this.labelAt(p.x, p.y) || maxLabel(this.labels) + 1);
      paintDisc(this.labels, this.width, this.height, p.x, p.y, this.brushRadius, this.painting);
      this.drag = { x: e.clientX, y: e.clientY, ox: this.ox, oy: this.oy };
      this.compose();
    }
    (e.target as Element).setPointerCapture(e.pointerId);
  }

  private onMove(e: PointerEvent) {
    const p = this.pixelAt(e);
    this.dispatchEvent(
      new CustomEvent("hover", { detail: { x: p.x, y: p.y, label: this.labelAt(p.x, p.y) } }),
    );
    if (!this.drag) return;
    if (this.tool === "brush" || this.tool === "erase") {
      if (this.labels) {
        paintDisc(this.labels, this.width, this.height, p.x, p.y, this.brushRadius, this.painting);
        this.compose();
      }
      return;
    }
    const r = this.canvas!.getBoundingClientRect();
    this.ox = this.drag.ox + (e.clientX - this.drag.x) * (this.canvas!.width / r.width);
    this.oy = this.drag.oy + (e.clientY - this.drag.y) * (this.canvas!.height / r.height);
    this.draw();
  }

  private onUp() {
    if (this.drag && (this.tool === "brush" || this.tool === "erase")) this.edited();
    this.drag = null;
  }

  private zoomAt(cx: number, cy: number, factor: number) {
    const s = Math.min(64, Math.max(0.05, this.scale * factor));
    this.ox = cx - ((cx - this.ox) * s) / this.scale;
    this.oy = cy - ((cy - this.oy) * s) / this.scale;
    this.scale = s;
    this.draw();
  }

  private onWheel(e: WheelEvent) {
    e.preventDefault();
    const r = this.canvas!.getBoundingClientRect();
    this.zoomAt(
      (e.clientX - r.left) * (this.canvas!.width / r.width),
      (e.clientY - r.top) * (this.canvas!.height / r.height),
      e.deltaY < 0 ? 1.2 : 1 / 1.2,
    );
  }

  private onKey(e: KeyboardEvent) {
    const c = this.canvas;
    if (!c) return;
    const step = 40;
    const keys: Record<string, () => void> = {
      "+": () => this.zoomAt(c.width / 2, c.height / 2, 1.25),
      "=": () => this.zoomAt(c.width / 2, c.height / 2, 1.25),
      "-": () => this.zoomAt(c.width / 2, c.height / 2, 0.8),
      "0": () => this.fit(),
      ArrowLeft: () => (this.ox += step, this.draw()),
      ArrowRight: () => (this.ox -= step, this.draw()),
      ArrowUp: () => (this.oy += step, this.draw()),
      ArrowDown: () => (this.oy -= step, this.draw()),
    };
    const f = keys[e.key];
    if (f) {
      e.preventDefault();
      f();
    }
  }

  override render() {
    return html`
      <canvas role="img" aria-label="image with masks"
        @pointerdown=${this.onDown} @pointermove=${this.onMove} @pointerup=${this.onUp}
        @pointercancel=${this.onUp} @wheel=${this.onWheel}></canvas>
    `;
  }
}
customElements.define("cellpose-image-view", CellposeImageView);
