/**
 * `<cellpose-train>`: the panel's Train section, the human-in-the-loop step. The corrected images
 * of this session (segmentations whose masks were edited and added with "Add to training set")
 * are listed with a check box each; a model name, epochs and learning rate; Start runs
 * `POST /v1/train` on the server, the loss curve (a plot of the mean loss per epoch) grows as the
 * epochs end, Cancel stops it, and "Use this model" makes the trained model the one later
 * segmentations use (fires `model-changed` with the name).
 *
 * @example
 * ```html
 * <cellpose-train .api=${new ServerApi("http://127.0.0.1:8000")} .examples=${[
 *   { job: "3f2a...", name: "cells.png", nMasks: 41 },
 * ]}></cellpose-train>
 * ```
 * @module
 */
import { paramSpec, TRAIN_PARAMS } from "../../core/params.ts";
import { css, html, LitElement, nothing, svg } from "lit";
import { ApiError, type ServerApi, type TrainStatus } from "./api.ts";

/** A corrected image of this session: a finished job whose masks were edited. */
export interface TrainingExample {
  job: string;
  name: string;
  nMasks: number;
}

/** The points of a loss curve in a `width` x `height` box (y: 0 at the top, log-free). */
export function lossCurve(
  losses: readonly number[],
  nEpochs: number,
  width: number,
  height: number,
): string {
  if (!losses.length) return "";
  const max = Math.max(...losses), min = Math.min(0, ...losses);
  const span = max - min || 1;
  const dx = width / Math.max(1, nEpochs - 1);
  return losses.map((l, i) =>
    `${(i * dx).toFixed(1)},${(height - ((l - min) / span) * height).toFixed(1)}`
  ).join(" ");
}

/** The Train section element. */
export class CellposeTrain extends LitElement {
  static override styles = css`
    :host {
      display: grid;
      gap: 6px;
    }
    ul {
      list-style: none;
      padding: 0;
      margin: 0;
    }
    label {
      display: grid;
      grid-template-columns: 1fr 110px;
      align-items: center;
    }
    ul label {
      display: block;
    }
    .buttons {
      display: flex;
      gap: 6px;
      flex-wrap: wrap;
    }
    button {
      font: inherit;
      padding: 4px 10px;
    }
    svg {
      background: #fff;
      border: 1px solid #dde;
    }
    .error {
      color: #b00;
      white-space: pre-wrap;
    }
  `;
  static override properties = {
    api: { attribute: false },
    examples: { attribute: false },
    excluded: { state: true },
    modelName: { state: true },
    epochs: { state: true },
    learningRate: { state: true },
    job: { state: true },
    losses: { state: true },
    error: { state: true },
    used: { state: true },
  };
  declare api: ServerApi | null;
  declare examples: TrainingExample[];
  declare excluded: Set<string>;
  declare modelName: string;
  declare epochs: number;
  declare learningRate: number;
  declare job: TrainStatus | null;
  declare losses: number[];
  declare error: string;
  declare used: string;

  constructor() {
    super();
    this.api = null;
    this.examples = [];
    this.excluded = new Set();
    this.modelName = `my_cells_${new Date().toISOString().slice(0, 10).replaceAll("-", "")}`;
    this.epochs = paramSpec(TRAIN_PARAMS, "n_epochs").default as number;
    this.learningRate = paramSpec(TRAIN_PARAMS, "learning_rate").default as number;
    this.job = null;
    this.losses = [];
    this.error = "";
    this.used = "";
  }

  private get chosen(): TrainingExample[] {
    return this.examples.filter((e) => !this.excluded.has(e.job));
  }

  private get running(): boolean {
    return !!this.job && (this.job.status === "queued" || this.job.status === "running");
  }

  /** Starts a training on the checked images and follows it to its end. */
  async start(): Promise<void> {
    if (!this.api || !this.chosen.length) return;
    this.error = "";
    this.losses = [];
    this.used = "";
    try {
      const job = await this.api.train(this.chosen.map((e) => e.job), {
        model_name: this.modelName,
        n_epochs: this.epochs,
        learning_rate: this.learningRate,
      });
      this.job = job;
      const end = await this.api.follow<TrainStatus>(job.id, (s) => {
        if (s.event === "epoch" && s.epoch !== undefined && s.loss !== undefined) {
          const losses = this.losses.slice(0, s.epoch - 1);
          losses[s.epoch - 1] = s.loss;
          this.losses = losses;
        }
        this.job = { ...this.job!, ...s };
      }, "train");
      if (end.trainLosses) this.losses = end.trainLosses;
      if (end.status === "failed") this.error = end.error?.message ?? "training failed";
    } catch (e) {
      this.error = e instanceof ApiError ? `${e.message} (HTTP ${e.status})` : (e as Error).message;
    }
  }

  private async cancel() {
    if (this.job) {
      await this.api?.cancelTraining(this.job.id).catch((e) => (this.error = e.message));
    }
  }

  private async use() {
    const name = this.job?.modelName;
    if (!name || !this.api) return;
    try {
      await this.api.useModel(name);
      this.used = name;
      this.dispatchEvent(new CustomEvent("model-changed", { detail: name, bubbles: true }));
    } catch (e) {
      this.error = (e as Error).message;
    }
  }

  private toggle(job: string, on: boolean) {
    const s = new Set(this.excluded);
    if (on) s.delete(job);
    else s.add(job);
    this.excluded = s;
  }

  private plot() {
    const W = 300, H = 120, n = this.job?.nEpochs ?? this.epochs;
    const last = this.losses.at(-1);
    return html`
      <svg id="loss-curve" role="img" aria-label="training loss per epoch" width=${W}
        height=${H + 20} viewBox="0 0 ${W} ${H + 20}">
            ${svg`
              <polyline fill="none" stroke="#48f" stroke-width="2"
                points=${lossCurve(this.losses, n, W, H)}></polyline>
              <text x="4" y=${H + 16} font-size="11" fill="#556">epoch ${this.losses
                .length}/${n}${last !== undefined ? ` · loss ${last.toFixed(4)}` : ""}</text>
            `}
          </svg>
    `;
  }

  override render() {
    const j = this.job;
    const done = j?.status === "done";
    return html`
      ${this.examples.length
        ? html`<ul>${
          this.examples.map((e) =>
            html`<li><label><input type="checkbox" .checked=${!this.excluded.has(e.job)}
            @change=${(ev: Event) => this.toggle(e.job, (ev.target as HTMLInputElement).checked)}>
            ${e.name} · ${e.nMasks} masks</label></li>`
          )
        }</ul>`
        : html`<small>Segment an image, correct its masks, then "Add to training set".</small>`}
      <label>Model name <input aria-label="model name" .value=${this.modelName}
        @input=${(e: Event) => (this.modelName = (e.target as HTMLInputElement).value)}></label>
      <label>Epochs <input type="number" min="1" aria-label="epochs" .value=${String(this.epochs)}
        @input=${(
          e: Event,
        ) => (this.epochs = Number((e.target as HTMLInputElement).value))}></label>
      <label>Learning rate <input type="number" min="0" step="any" aria-label="learning rate"
        .value=${String(this.learningRate)}
        @input=${(
          e: Event,
        ) => (this.learningRate = Number((e.target as HTMLInputElement).value))}></label>
      <div class="buttons">
        <button id="train-start" ?disabled=${!this.chosen.length || this.running}
          @click=${this.start}>Start training</button>
        <button id="train-cancel" ?disabled=${!this.running} @click=${this
          .cancel}>Cancel training</button>
        ${done ? html`<button id="train-use" @click=${this.use}>Use this model</button>` : nothing}
      </div>
      ${j
        ? html`<progress max="1" .value=${
          j.fraction ?? 0
        } aria-label="training progress"></progress>
          <small id="train-status">${j.status}${j.epoch ? ` · epoch ${j.epoch}/${j.nEpochs}` : ""}${
          j.eta !== undefined && this.running ? ` · ${Math.round(j.eta)} s left` : ""
        }${done ? ` · model ${j.modelName}` : ""}${
          this.used ? ` · segmenting with ${this.used}` : ""
        }</small>
          ${this.plot()}`
        : nothing}
      ${this.error ? html`<div class="error" role="alert">${this.error}</div>` : nothing}
    `;
  }
}
customElements.define("cellpose-train", CellposeTrain);
