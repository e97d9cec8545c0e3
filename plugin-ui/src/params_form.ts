/**
 * `<cellpose-params>`: the segmentation parameters the panel shows (those with a `label` in the
 * parameter table, `core/params.ts`), with the table's defaults, ranges and help. Fires
 * `params-change` with `detail` = the parameters as the server takes them (cellpose names;
 * "automatic" values left out).
 * @module
 */
import { css, html, LitElement } from "lit";
import { FIELDS, UNSET } from "./params_fields.ts";

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

  /** The parameters to send: "automatic" values and false switches are left out. */
  get params(): Record<string, number | boolean> {
    const out: Record<string, number | boolean> = {};
    for (const [k, v] of Object.entries(this.values)) {
      if (v === false || (UNSET.get(k) !== undefined && v === UNSET.get(k))) continue;
      out[k] = v;
    }
    return out;
  }

  private set(name: string, value: number | boolean) {
    this.values = { ...this.values, [name]: value };
    this.dispatchEvent(
      new CustomEvent("params-change", { detail: this.params, bubbles: true, composed: true }),
    );
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
          <label><span>${f.label}</span><input type="number" name=${f.name} step=${f.step ?? "any"}
                      min=${f.min ?? ""} max=${f.max ?? ""} .value=${String(this.values[f.name])}
                      @change=${(e: Event) =>
                        this.set(f.name, Number((e.target as HTMLInputElement).value))}></label>
          <small>${f.help}</small>
        `
    );
  }
}
customElements.define("cellpose-params", CellposeParams);
