/**
 * The styles of `<cellpose-panel>`: the side bar, the view, the tool bar and status bar.
 * @module
 */
import { css } from "lit";

/** The panel's shadow-root styles. */
export const panelStyles = css`
  :host {
    display: grid;
    grid-template-columns: 330px 1fr;
    height: 100%;
    min-height: 600px;
    font: 13px system-ui, sans-serif;
    color: #223;
    background: #f6f7f9;
  }
  aside {
    overflow: auto;
    padding: 12px;
    display: grid;
    gap: 12px;
    align-content: start;
    grid-template-columns: minmax(0, 1fr);
    border-right: 1px solid #dde;
  }
  h1 {
    font-size: 16px;
    margin: 0;
  }
  h2 {
    font-size: 13px;
    margin: 0 0 4px;
    text-transform: uppercase;
    color: #556;
    letter-spacing: .04em;
  }
  section {
    display: grid;
    gap: 6px;
  }
  .drop {
    box-sizing: border-box;
    border: 2px dashed #aab;
    border-radius: 6px;
    padding: 14px;
    text-align: center;
    color: #556;
  }
  .drop.over {
    border-color: #48f;
    background: #eef4ff;
  }
  main {
    display: grid;
    grid-template-rows: auto 1fr auto;
    min-width: 0;
  }
  .toolbar,
  .statusbar {
    display: flex;
    flex-wrap: wrap;
    gap: 8px;
    align-items: center;
    padding: 6px 10px;
    background: #fff;
    border-bottom: 1px solid #dde;
  }
  .statusbar {
    border-top: 1px solid #dde;
    border-bottom: 0;
  }
  cellpose-image-view {
    min-height: 400px;
  }
  progress {
    width: 100%;
  }
  button {
    font: inherit;
    padding: 4px 10px;
  }
  button[aria-pressed="true"] {
    background: #48f;
    color: #fff;
  }
  .error {
    color: #b00;
    white-space: pre-wrap;
  }
  .jobs {
    list-style: none;
    padding: 0;
    margin: 0;
    display: grid;
    gap: 2px;
  }
  .jobs button {
    width: 100%;
    text-align: left;
  }
  .count {
    font-weight: 600;
  }
`;
