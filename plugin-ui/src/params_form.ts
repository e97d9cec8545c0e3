/**
 * `<cellpose-params>`: the cellpose parameters with their v4 defaults and one line of help each.
 * Fires `change` with `detail` = the parameters as the server takes them (cellpose names).
 * @module
 */
import { css, html, LitElement } from "lit";

/** One parameter of the form. */
interface Field {
  name: string;
  label: string;
  value: number | boolean;
  help: string;
  step?: number;
  min?: number;
}

/** The fields, cellpose v4 names and defaults. */
export const FIELDS: readonly Field[] = [
  {
    name: "diameter",
    label: "Diameter (px)",
    value: 0,
    min: 0,
    step: 1,
    help: "0: not needed (Cellpose-SAM is size invariant)",
  },
  {
    name: "flow_threshold",
    label: "Flow threshold",
    value: 0.4,
    min: 0,
    step: 0.05,
    help: "higher keeps more, less regular masks; 0 skips the check",
  },
  {
    name: "cellprob_threshold",
    label: "Cell probability threshold",
    value: 0,
    step: 0.5,
    help: "lower finds more and larger cells",
  },
  {
    name: "min_size",
    label: "Minimum size (px)",
    value: 15,
    min: -1,
    step: 1,
    help: "smaller masks are removed; -1 keeps all",
  },
  {
    name: "niter",
    label: "Iterations",
    value: 0,
    min: 0,
    step: 10,
    help: "0: automatic (200, scaled with the diameter)",
  },
  {
    name: "stitch_threshold",
    label: "Stitch threshold",
    value: 0,
    min: 0,
    step: 0.05,
    help: "a stack plane by plane: masks of adjacent planes overlapping by this IoU are joined " +
      "(a stack needs this > 0 or 3D)",
  },
  {
    name: "do_3D",
    label: "3D (whole stack)",
    value: false,
    help: "segment a Z stack in 3D instead of plane by plane",
  },
];

/** Parameter form element. */
export class CellposeParams extends LitElement {
  static override styles = css`
    :host {
      display: grid;
      gap: 6px;
      font: 13px system-ui, sans-serif;
    }
    label {
      display: grid;
      grid-template-columns: 11em 6em;
      align-items: center;
      gap: 6px;
    }
    small {
      color: #667;
      display: block;
      margin: -4px 0 2px;
    }
    input[type="number"] {
      width: 6em;
    }
  `;
  static override properties = { values: { state: true } };
  declare values: Record<string, number | boolean>;

  constructor() {
    super();
    this.values = Object.fromEntries(FIELDS.map((f) => [f.name, f.value]));
  }

  /** The parameters to send: defaults that mean "automatic" are left out. */
  get params(): Record<string, number | boolean> {
    const out: Record<string, number | boolean> = {};
    for (const [k, v] of Object.entries(this.values)) {
      if ((k === "diameter" || k === "niter" || k === "stitch_threshold") && v === 0) continue;
      if (k === "do_3D" && v === false) continue;
      out[k] = v;
    }
    return out;
  }

  private set(name: string, value: number | boolean) {
    this.values = { ...this.values, [name]: value };
    this.dispatchEvent(new CustomEvent("change", { detail: this.params }));
  }

  override render() {
    return FIELDS.map((f) =>
      typeof f.value === "boolean"
        ? html`
          <label><span>${f.label}</span><input type="checkbox" name=${f.name}
                      .checked=${this.values[f.name] as boolean}
                      @change=${(e: Event) =>
                        this.set(f.name, (e.target as HTMLInputElement).checked)}></label>
          <small>${f.help}</small>
        `
        : html`
          <label><span>${f.label}</span><input type="number" name=${f.name} step=${f.step ?? 0.1}
                      min=${f.min ?? ""} .value=${String(this.values[f.name])}
                      @change=${(e: Event) =>
                        this.set(f.name, Number((e.target as HTMLInputElement).value))}></label>
          <small>${f.help}</small>
        `
    );
  }
}
customElements.define("cellpose-params", CellposeParams);
