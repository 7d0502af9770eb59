/* CXRViewer: a small chest X-ray viewer on a 2D canvas, an ES module, nothing fetched but the images.
 *
 *   import {CXRViewer, mountViewer} from "../imaging/viewer.js";
 *   const v = new CXRViewer(container, {keyboard: "document"});
 *   await v.load("/reading/images/<id>/meta.json");          // or
 *   await v.load({display_url, full_url, width, height, display});
 *
 * - Draws the 8-bit display rendition first (fit to window), so the default view is exactly the rendition.
 * - Zoom: mouse wheel (around the pointer), + / - keys. Pan: left drag, arrow keys.
 * - Window/level: right drag, Shift + left drag, or left drag after pressing w (window mode); Shift + arrow keys
 *   (or plain arrows in window mode): Left/Right narrower/wider, Up/Down level up/down; presets with the keys
 *   1-4 or setPreset(): "voi" (the file's VOI: the rendition as imported), "lung", "mediastinum", "bone"
 *   (PRESETS below; docs/viewer.md gives the values and where they come from).
 *   The full dynamic range (16-bit, from full_url) is fetched only when window/level is first used, never at
 *   page load: it is sent as left-delta byte planes, gzip content-encoded (imaging/image_views.py), and undone
 *   here. Until it arrives the viewer windows the 8-bit rendition and says "Loading full range"; then it carries
 *   the window over to the full range. Full-range values are modality units after
 *   `v * display.full_range.slope + intercept` (defaults 1 and 0); display.min/max/window_* are in those units;
 *   display.invert = true (MONOCHROME1) inverts the full range, which the import stores un-inverted.
 * - i invert, r reset (fit, the file's VOI, no invert, no rotation or flip, no measurement).
 * - o rotate 90 degrees clockwise, h flip horizontally, v flip vertically (setOrientation()).
 * - m magnifier: a loupe of MAGNIFY x the current zoom that follows the pointer (at the centre for the keyboard).
 * - d measure: a left drag draws a line, labelled in mm from the pixel spacing scaled to the rendition's size
 *   (meta.pixel_spacing_kind: "calibrated", "detector" (not corrected for magnification) or "unstated"), in pixels
 *   when the file has none; Escape clears the lines. From the keyboard, in measure mode: arrows move a crosshair,
 *   Enter starts a line and Enter again ends it (the focus on the image).
 * - f full screen (of the whole viewer, toolbar included).
 * Keyboard shortcuts are ignored while typing in a form field.
 * - AI boxes (the read page's AI arm): setBoxes(layer, boxes) places one focusable outline per box in `layer` (an
 *   element over the canvas, outside it: templates/imaging/_viewer.html), re-placed on every draw; b or
 *   showBoxes() shows/hides them. Box corners are in pixels of an image of box.size [w, h] (the AI's
 *   input image size; default the display image), scaled to the display image; box.image names the image
 *   (null: the first).
 * mountViewer() wires the markup of templates/imaging/_viewer.html (toolbar, image choice, status line, the
 * on-image overlay of view position, laterality and window, the loading indicator), the one viewer of the read
 * page and the rating page.
 */
import {isTyping} from "../core/common.js";

const global = window;
const MIN_SCALE = 0.05;
const MAX_SCALE = 40;
const MAGNIFY = 3;
const LOUPE_PX = 200;

/* Window presets for CR/DX, relative to the file's own VOI window (centre C, width W, in modality units):
 * CR/DX pixel values are not calibrated like CT's Hounsfield units, so absolute CT presets do not carry over.
 * Each preset gives the new centre as C + dc * W and the new width as dw * W; for MONOCHROME1 (where higher
 * values are darker) the centre offset is mirrored. docs/viewer.md explains the choice. */
export const PRESETS = {
  voi: {label: "File VOI", key: "1"},
  lung: {label: "Lung", key: "2", dc: -0.2, dw: 0.6},
  mediastinum: {label: "Mediastinum", key: "3", dc: 0.2, dw: 0.6},
  bone: {label: "Bone", key: "4", dc: 0.3, dw: 0.4},
};

/* 2D affine maps [a, b, c, d, e, f] (canvas order): x' = a x + c y + e, y' = b x + d y + f. */
function mul(m, n) {
  return [m[0] * n[0] + m[2] * n[1], m[1] * n[0] + m[3] * n[1], m[0] * n[2] + m[2] * n[3],
    m[1] * n[2] + m[3] * n[3], m[0] * n[4] + m[2] * n[5] + m[4], m[1] * n[4] + m[3] * n[5] + m[5]];
}
function inv(m) {
  const det = m[0] * m[3] - m[1] * m[2];
  return [m[3] / det, -m[1] / det, -m[2] / det, m[0] / det,
    (m[2] * m[5] - m[3] * m[4]) / det, (m[1] * m[4] - m[0] * m[5]) / det];
}
function apply(m, x, y) { return {x: m[0] * x + m[2] * y + m[4], y: m[1] * x + m[3] * y + m[5]}; }

/** Undo the full range's transfer encoding: byte planes (all low bytes, then all high bytes) of the
 *  difference of each pixel from its left neighbour, modulo 65536 (imaging/image_views.py). */
export function decodeDeltaPlanes(buf, w, h) {
  const bytes = new Uint8Array(buf);
  const n = w * h;
  const out = new Uint16Array(n);
  for (let y = 0; y < h; y++) {
    let prev = 0;
    for (let x = 0, i = y * w; x < w; x++, i++) {
      prev = (prev + (bytes[i] | (bytes[n + i] << 8))) & 0xffff;
      out[i] = prev;
    }
  }
  return out;
}

export class CXRViewer {
  constructor(container, options) {
    this.options = Object.assign({keyboard: "container", onchange: null}, options || {});
    this.container = container;
    this.canvas = container.querySelector("canvas");
    if (!this.canvas) {
      this.canvas = document.createElement("canvas");
      container.appendChild(this.canvas);
    }
    this.canvas.classList.add("cxr-canvas");
    if (!container.hasAttribute("tabindex")) container.setAttribute("tabindex", "0");
    this.ctx = this.canvas.getContext("2d", {willReadFrequently: true});
    this.source = null;         // offscreen canvas holding the current grey image (after window/invert)
    this.base8 = null;          // Uint8 grey values of the display rendition
    this.full = null;           // Uint16Array of the full range (once fetched)
    this.fullState = "none";    // none | loading | ready | failed | unavailable
    this.meta = null;
    this.width = 0;
    this.height = 0;
    this.view = {scale: 1, tx: 0, ty: 0, fitted: true};
    this.orient = {rotate: 0, flipH: false, flipV: false};
    this.wl = null;             // {space: "display" | "full", center, width}
    this.preset = "voi";
    this.invert = false;
    this.windowMode = false;
    this.measureMode = false;
    this.measurements = [];     // [{x0, y0, x1, y1}] in rendition pixels
    this.loupe = null;          // {canvas, ctx, x, y} while the magnifier is on (x, y: canvas pixels)
    this.cursor = null;         // the keyboard's crosshair in measure mode, canvas pixels
    this._pending = null;       // a line started with Enter, waiting for its end
    this.loading = false;
    this._drag = null;
    this.imageId = null;        // the shown image's public id (mountViewer sets it), to pick its boxes
    this.boxLayer = null;
    this.boxes = [];
    this.boxesShown = false;
    this._bind();
  }

  /* ---- loading ---- */
  async load(source) {
    this.loading = true;
    this._emit("loading");
    try {
      return await this._load(source);
    } finally {
      this.loading = false;
      this._emit("loaded");
    }
  }

  async _load(source) {
    let meta = source;
    if (typeof source === "string") {
      const r = await fetch(source, {credentials: "same-origin", headers: {"Accept": "application/json"}});
      if (!r.ok) throw new Error("Image metadata: HTTP " + r.status);
      meta = await r.json();
    }
    this.meta = meta;
    this.full = null;
    this._fullPromise = null;
    this.fullState = meta.full_url ? "none" : "unavailable";
    const img = await this._loadImage(meta.display_url);
    this.width = img.naturalWidth;
    this.height = img.naturalHeight;
    const c = document.createElement("canvas");
    c.width = this.width;
    c.height = this.height;
    const cx = c.getContext("2d", {willReadFrequently: true});
    cx.drawImage(img, 0, 0);
    const rgba = cx.getImageData(0, 0, this.width, this.height).data;
    this.base8 = new Uint8Array(this.width * this.height);
    for (let i = 0, j = 0; i < this.base8.length; i++, j += 4) this.base8[i] = rgba[j];
    this.source = c;
    this.sourceCtx = cx;
    this.sourceData = cx.createImageData(this.width, this.height);
    this.wl = null;
    this.preset = "voi";
    this.invert = false;
    this.orient = {rotate: 0, flipH: false, flipV: false};
    this.measurements = [];
    this._pending = null;
    this.cursor = null;
    this._resize();
    this.fit();
    this._emit("load");
    return this;
  }

  _loadImage(url) {
    return new Promise((resolve, reject) => {
      const img = new Image();
      img.decoding = "async";
      img.onload = () => resolve(img);
      img.onerror = () => reject(new Error("Could not load the image"));
      img.src = url;
    });
  }

  /** The full range, fetched once, on the first window/level use (never at load). Resolves to the array or null. */
  fetchFull() {
    if (this._fullPromise) return this._fullPromise;
    const url = this.meta && this.meta.full_url;
    if (!url) return Promise.resolve(null);
    this.fullState = "loading";
    this._emit("fullrange");
    const meta = this.meta;
    this._fullPromise = fetch(url, {credentials: "same-origin"})
      .then((r) => {
        if (!r.ok) throw new Error("full range: HTTP " + r.status);
        const w = parseInt(r.headers.get("X-Image-Width") || this.width, 10);
        const h = parseInt(r.headers.get("X-Image-Height") || this.height, 10);
        const enc = r.headers.get("X-Image-Encoding") || "u16le";
        return r.arrayBuffer().then((buf) => ({buf, w, h, enc}));
      })
      .then(({buf, w, h, enc}) => {
        if (meta !== this.meta) return null;  // another image was loaded meanwhile
        if (w !== this.width || h !== this.height || buf.byteLength !== w * h * 2) throw new Error("size");
        this.full = enc === "delta-planes" ? decodeDeltaPlanes(buf, w, h) : this._u16le(buf, w * h);
        this.fullState = "ready";
        this._toFullSpace();
        this._emit("fullrange");
        return this.full;
      })
      .catch(() => {
        if (meta !== this.meta) return null;
        this.fullState = "failed";
        this._emit("fullrange");
        // A preset waiting for the full range applies to the 8-bit rendition instead
        if (this.wl === null && this.preset && this.preset !== "voi") this.setPreset(this.preset);
        return null;
      });
    return this._fullPromise;
  }

  _u16le(buf, n) {
    if (new Uint8Array(new Uint16Array([1]).buffer)[0] === 1) return new Uint16Array(buf);
    const dv = new DataView(buf);
    const arr = new Uint16Array(n);
    for (let i = 0; i < n; i++) arr[i] = dv.getUint16(i * 2, true);
    return arr;
  }

  /* ---- window / level ---- */
  _fullRange() {
    const d = (this.meta && this.meta.display) || {};
    let lo = Number.isFinite(d.min) ? d.min : 0;
    let hi = Number.isFinite(d.max) ? d.max : 65535;
    if (hi <= lo) hi = lo + 1;
    return {lo, hi};
  }

  /** The file's VOI window in full-range units. */
  _voi() {
    const d = (this.meta && this.meta.display) || {};
    const {lo, hi} = this._fullRange();
    const width = Number.isFinite(d.window_width) && d.window_width > 0 ? d.window_width : hi - lo;
    const center = Number.isFinite(d.window_center) ? d.window_center : (lo + hi) / 2;
    return {center, width};
  }

  _startWindow() {
    if (!this.full && this.fullState === "none") this.fetchFull();
    if (this.wl) return;
    this.wl = this.full ? Object.assign({space: "full"}, this._voi()) : {space: "display", center: 127.5, width: 255};
  }

  /* The full range arrived: the same window, in its units (the rendition is the VOI window mapped to 0-255). */
  _toFullSpace() {
    if (!this.wl || this.wl.space !== "display") {
      if (this.wl === null && this.preset !== "voi") this.setPreset(this.preset);
      return;
    }
    const voi = this._voi();
    const mono1 = ((this.meta && this.meta.display) || {}).invert === true;
    const rel = (this.wl.center - 127.5) / 255;
    this.wl = {space: "full", center: voi.center + (mono1 ? -rel : rel) * voi.width,
      width: this.wl.width / 255 * voi.width};
    this._redraw("window");
  }

  setWindow(center, width) {
    this._startWindow();
    this.wl.center = center;
    this.wl.width = Math.max(1, width);
    this.preset = null;
    this._redraw("window");
  }

  _redraw(what) {
    // Re-windowing touches every pixel: coalesce a burst of drag events into one pass per frame.
    if (this._wlFrame) return;
    this._wlFrame = global.requestAnimationFrame(() => {
      this._wlFrame = null;
      this._applyGrey();
      this.draw();
      this._emit(what);
    });
  }

  adjustWindow(dx, dy) {
    this._startWindow();
    const span = this.wl.space === "full" ? this._fullRange().hi - this._fullRange().lo : 256;
    const k = span / 400;  // 400 screen pixels drag across the whole range
    this.setWindow(this.wl.center + dy * k, this.wl.width + dx * k);
  }

  /** One keyboard step: dw, dl in steps of 2% of the range (Left/Right: width, Up/Down: level). */
  stepWindow(dw, dl) {
    this._startWindow();
    const span = this.wl.space === "full" ? this._fullRange().hi - this._fullRange().lo : 256;
    this.setWindow(this.wl.center + dl * span * 0.02, this.wl.width + dw * span * 0.02);
  }

  /** A window preset (PRESETS). "voi" is the rendition exactly as imported, without fetching the full range. */
  setPreset(name) {
    const p = PRESETS[name];
    if (!p) return;
    this.preset = name;
    if (name === "voi") {
      this.wl = null;
      this._redraw("window");
      return;
    }
    if (!this.full && this.fullState !== "unavailable" && this.fullState !== "failed") {
      this.wl = null;  // applied when the full range arrives (_toFullSpace)
      this.fetchFull();
      this._emit("window");
      return;
    }
    const mono1 = ((this.meta && this.meta.display) || {}).invert === true;
    if (this.full) {
      const voi = this._voi();
      this.wl = {space: "full", center: voi.center + (mono1 ? -p.dc : p.dc) * voi.width, width: p.dw * voi.width};
    } else {  // no full range: the same proportions of the rendition's 0-255 (already inverted for MONOCHROME1)
      this.wl = {space: "display", center: 127.5 + p.dc * 255, width: p.dw * 255};
    }
    this._redraw("window");
  }

  setInvert(on) {
    this.invert = !!on;
    this._applyGrey();
    this.draw();
    this._emit("invert");
  }

  _applyGrey() {
    if (!this.sourceData) return;
    if (!this.wl && !this.invert) { this._applyBase(); return; }
    const out = this.sourceData.data;
    const n = this.width * this.height;
    const d = (this.meta && this.meta.display) || {};
    let lut;
    let src;
    if (this.wl && this.wl.space === "full" && this.full) {
      src = this.full;
      lut = new Uint8ClampedArray(65536);
      const fr = d.full_range || {};
      const slope = Number.isFinite(fr.slope) && fr.slope ? fr.slope : 1;
      const intercept = Number.isFinite(fr.intercept) ? fr.intercept : 0;
      const invertRaw = d.invert === true;  // full-range pixels are not inverted (MONOCHROME1: invert here)
      this._fillLut(lut, 65536, invertRaw, slope, intercept);
    } else {
      src = this.base8;
      lut = new Uint8ClampedArray(256);
      this._fillLut(lut, 256, false, 1, 0);
    }
    for (let i = 0, j = 0; i < n; i++, j += 4) {
      const g = lut[src[i]];
      out[j] = g; out[j + 1] = g; out[j + 2] = g; out[j + 3] = 255;
    }
    this.sourceCtx.putImageData(this.sourceData, 0, 0);
  }

  _fillLut(lut, size, invertRaw, slope, intercept) {
    // stored value v -> modality value (v * slope + intercept) -> linear window -> 0..255
    const wl = this.wl && (this.wl.space === "full") === (size === 65536) ? this.wl : {center: 127.5, width: 255};
    const lo = wl.center - wl.width / 2;
    const scale = 255 / wl.width;
    for (let v = 0; v < size; v++) {
      let g = (v * slope + intercept - lo) * scale;
      g = g < 0 ? 0 : g > 255 ? 255 : g;
      if (invertRaw) g = 255 - g;
      if (this.invert) g = 255 - g;
      lut[v] = g;
    }
  }

  /* ---- geometry ---- */
  _resize() {
    const rect = this.container.getBoundingClientRect();
    const dpr = global.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(rect.width * dpr));
    const h = Math.max(1, Math.round(rect.height * dpr));
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
    }
    this.canvas.style.width = rect.width + "px";
    this.canvas.style.height = rect.height + "px";
  }

  /** The oriented image's size: width and height swap at 90 and 270 degrees. */
  _orientedSize() {
    return this.orient.rotate % 180 ? {w: this.height, h: this.width} : {w: this.width, h: this.height};
  }

  /** Rendition pixels -> oriented image pixels (rotation clockwise, then the flips). */
  _orientMatrix() {
    const W = this.width;
    const H = this.height;
    const r = {0: [1, 0, 0, 1, 0, 0], 90: [0, 1, -1, 0, H, 0], 180: [-1, 0, 0, -1, W, H],
      270: [0, -1, 1, 0, 0, W]}[this.orient.rotate];
    const o = this._orientedSize();
    let m = r;
    if (this.orient.flipH) m = mul([-1, 0, 0, 1, o.w, 0], m);
    if (this.orient.flipV) m = mul([1, 0, 0, -1, 0, o.h], m);
    return m;
  }

  /** Rendition pixels -> canvas pixels. */
  matrix() {
    const v = this.view;
    return mul([v.scale, 0, 0, v.scale, v.tx, v.ty], this._orientMatrix());
  }

  /** A canvas point (canvas pixels) -> rendition pixels. */
  toImage(x, y) { return apply(inv(this.matrix()), x, y); }

  setOrientation(change) {
    const o = this.orient;
    if (change.rotate !== undefined) o.rotate = ((change.rotate % 360) + 360) % 360;
    if (change.flipH !== undefined) o.flipH = !!change.flipH;
    if (change.flipV !== undefined) o.flipV = !!change.flipV;
    this.fit();
    this._emit("orient");
  }

  rotate() { this.setOrientation({rotate: this.orient.rotate + 90}); }

  fit() {
    if (!this.width) return;
    const cw = this.canvas.width;
    const ch = this.canvas.height;
    const o = this._orientedSize();
    const s = Math.min(cw / o.w, ch / o.h);
    this.view = {scale: s, tx: (cw - o.w * s) / 2, ty: (ch - o.h * s) / 2, fitted: true};
    this.draw();
  }

  zoomAt(factor, px, py) {
    const v = this.view;
    const s = Math.min(MAX_SCALE, Math.max(MIN_SCALE, v.scale * factor));
    const f = s / v.scale;
    if (px === undefined) { px = this.canvas.width / 2; py = this.canvas.height / 2; }
    v.tx = px - (px - v.tx) * f;
    v.ty = py - (py - v.ty) * f;
    v.scale = s;
    v.fitted = false;
    this.draw();
    this._emit("zoom");
  }

  pan(dx, dy) {
    this.view.tx += dx;
    this.view.ty += dy;
    this.view.fitted = false;
    this.draw();
  }

  reset() {
    if (this._wlFrame) { global.cancelAnimationFrame(this._wlFrame); this._wlFrame = null; }
    this.wl = null;
    this.preset = "voi";
    this.invert = false;
    this.orient = {rotate: 0, flipH: false, flipV: false};
    this.measurements = [];
    this._pending = null;
    this.cursor = null;
    if (this.base8) this._applyBase();
    this.fit();
    this._emit("reset");
  }

  _applyBase() {
    // The rendition exactly as made by the import.
    this.sourceCtx.putImageData(this._baseImageData(), 0, 0);
  }

  _baseImageData() {
    const data = this.sourceCtx.createImageData(this.width, this.height);
    const out = data.data;
    for (let i = 0, j = 0; i < this.base8.length; i++, j += 4) {
      const g = this.base8[i];
      out[j] = g; out[j + 1] = g; out[j + 2] = g; out[j + 3] = 255;
    }
    return data;
  }

  draw() {
    const ctx = this.ctx;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    if (!this.source) return;
    const m = this.matrix();
    ctx.imageSmoothingEnabled = this.view.scale < 4;
    ctx.imageSmoothingQuality = "high";
    ctx.setTransform(m[0], m[1], m[2], m[3], m[4], m[5]);
    ctx.drawImage(this.source, 0, 0);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    this._drawMeasurements(m);
    this._drawCursor();
    this._placeBoxes();
    this._drawLoupe();
  }

  /* ---- measurement ---- */
  /** Millimetres per rendition pixel [row, column] and what the spacing is, from the stored DICOM's spacing
   *  scaled from the stored size (rows x columns) to the rendition's. */
  spacing() {
    const m = this.meta || {};
    const ps = m.pixel_spacing;
    if (!Array.isArray(ps) || ps.length !== 2 || !(ps[0] > 0) || !(ps[1] > 0)) return null;
    const cols = m.columns || this.width;
    const rows = m.rows || this.height;
    const kind = m.pixel_spacing_kind || "";
    return {row: ps[0] * rows / this.height, col: ps[1] * cols / this.width, kind, calibrated: kind === "calibrated"};
  }

  /** A line's length: {value, unit} in mm when the spacing is known, else in rendition pixels. */
  lengthOf(line) {
    const dx = line.x1 - line.x0;
    const dy = line.y1 - line.y0;
    const sp = this.spacing();
    if (!sp) return {value: Math.hypot(dx, dy), unit: "px"};
    return {value: Math.hypot(dx * sp.col, dy * sp.row), unit: "mm"};
  }

  _label(line) {
    const l = this.lengthOf(line);
    return l.unit === "mm" ? `${l.value.toFixed(1)} mm` : `${Math.round(l.value)} px`;
  }

  _drawMeasurements(m) {
    if (!this.measurements.length) return;
    const ctx = this.ctx;
    const dpr = global.devicePixelRatio || 1;
    ctx.save();
    ctx.lineWidth = 2 * dpr;
    ctx.font = `${13 * dpr}px system-ui, sans-serif`;
    for (const line of this.measurements) {
      const a = apply(m, line.x0, line.y0);
      const b = apply(m, line.x1, line.y1);
      ctx.strokeStyle = "#00e5ff";
      ctx.beginPath(); ctx.moveTo(a.x, a.y); ctx.lineTo(b.x, b.y); ctx.stroke();
      for (const p of [a, b]) { ctx.beginPath(); ctx.arc(p.x, p.y, 3 * dpr, 0, 2 * Math.PI); ctx.stroke(); }
      const text = this._label(line);
      const tw = ctx.measureText(text).width;
      ctx.fillStyle = "rgba(0,0,0,.75)";
      ctx.fillRect(b.x + 6 * dpr, b.y - 16 * dpr, tw + 8 * dpr, 20 * dpr);
      ctx.fillStyle = "#fff";
      ctx.fillText(text, b.x + 10 * dpr, b.y - 1 * dpr);
    }
    ctx.restore();
  }

  /* Measuring from the keyboard: arrows move a crosshair (from the centre), Enter starts a line there and
   * Enter again ends it; Escape drops a started line, else clears the lines. */
  _moveCursor(key) {
    const dpr = global.devicePixelRatio || 1;
    const step = 4 * dpr;
    if (!this.cursor) this.cursor = {x: this.canvas.width / 2, y: this.canvas.height / 2};
    const d = {ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step]}[key];
    this.cursor.x = Math.min(this.canvas.width, Math.max(0, this.cursor.x + d[0]));
    this.cursor.y = Math.min(this.canvas.height, Math.max(0, this.cursor.y + d[1]));
    if (this.loupe) { this.loupe.x = this.cursor.x; this.loupe.y = this.cursor.y; }
    if (this._pending) {
      const p = this.toImage(this.cursor.x, this.cursor.y);
      this._pending.x1 = p.x;
      this._pending.y1 = p.y;
    }
    this.draw();
  }

  _enterPoint() {
    if (!this.cursor) this.cursor = {x: this.canvas.width / 2, y: this.canvas.height / 2};
    const p = this.toImage(this.cursor.x, this.cursor.y);
    if (!this._pending) {
      this._pending = {x0: p.x, y0: p.y, x1: p.x, y1: p.y};
      this.measurements.push(this._pending);
      this.draw();
      this._emit("measure-start");
      return;
    }
    const line = this._pending;
    this._pending = null;
    line.x1 = p.x;
    line.y1 = p.y;
    if (Math.hypot(line.x1 - line.x0, line.y1 - line.y0) < 1) this.measurements.pop();
    this.draw();
    this._emit("measure");
  }

  _escape() {
    if (this._pending) {
      this.measurements.pop();
      this._pending = null;
      this.draw();
      this._emit("measure");
    } else if (this.measurements.length) {
      this.clearMeasurements();
    }
  }

  _drawCursor() {
    if (!this.measureMode || !this.cursor) return;
    const ctx = this.ctx;
    const r = 10 * (global.devicePixelRatio || 1);
    const {x, y} = this.cursor;
    ctx.save();
    ctx.strokeStyle = "#00e5ff";
    ctx.lineWidth = 1.5 * (global.devicePixelRatio || 1);
    ctx.beginPath();
    ctx.moveTo(x - r, y); ctx.lineTo(x + r, y); ctx.moveTo(x, y - r); ctx.lineTo(x, y + r);
    ctx.stroke();
    ctx.restore();
  }

  toggleMeasure(on) {
    this.measureMode = on === undefined ? !this.measureMode : !!on;
    if (this.measureMode && this.windowMode) this.toggleWindowMode(false);
    if (!this.measureMode && this._pending) this._escape();
    this.draw();
    this.container.classList.toggle("measure-mode", this.measureMode);
    this._emit("mode");
  }

  clearMeasurements() {
    this.measurements = [];
    this._pending = null;
    this.draw();
    this._emit("measure");
  }

  /* ---- magnifier ---- */
  toggleLoupe(on) {
    const want = on === undefined ? !this.loupe : !!on;
    if (want && !this.loupe) {
      const c = document.createElement("canvas");
      const dpr = global.devicePixelRatio || 1;
      c.className = "viewer-loupe";
      c.width = c.height = Math.round(LOUPE_PX * dpr);
      c.setAttribute("aria-hidden", "true");
      this.container.appendChild(c);
      this.loupe = {canvas: c, ctx: c.getContext("2d"), x: this.canvas.width / 2, y: this.canvas.height / 2};
    } else if (!want && this.loupe) {
      this.loupe.canvas.remove();
      this.loupe = null;
    }
    this.draw();
    this._emit("loupe");
  }

  _drawLoupe() {
    const l = this.loupe;
    if (!l || !this.source) return;
    const size = l.canvas.width;
    const css = this.canvas.clientWidth / this.canvas.width;
    l.canvas.style.left = (l.x * css - LOUPE_PX / 2) + "px";
    l.canvas.style.top = (l.y * css - LOUPE_PX / 2) + "px";
    const ctx = l.ctx;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, size, size);
    const m = mul([MAGNIFY, 0, 0, MAGNIFY, size / 2 - MAGNIFY * l.x, size / 2 - MAGNIFY * l.y], this.matrix());
    ctx.imageSmoothingEnabled = this.view.scale * MAGNIFY < 4;
    ctx.setTransform(m[0], m[1], m[2], m[3], m[4], m[5]);
    ctx.drawImage(this.source, 0, 0);
  }

  /* ---- full screen ---- */
  toggleFullscreen(target) {
    const el = target || this.container;
    if (document.fullscreenElement) return document.exitFullscreen();
    if (el.requestFullscreen) return el.requestFullscreen().catch(() => null);
    return Promise.resolve(null);
  }

  /* ---- AI boxes ---- */
  setBoxes(layer, boxes) {
    this.boxLayer = layer;
    this.boxes = boxes || [];
    this._boxesFor = undefined;
    this._placeBoxes();
  }

  showBoxes(on) {
    if (!this.boxLayer) return;
    this.boxesShown = !!on;
    this.boxLayer.hidden = !this.boxesShown;
    this._placeBoxes();
    this._emit("boxes");
  }

  _buildBoxes(layer) {
    this._boxesFor = this.imageId;
    layer.replaceChildren();
    const first = this.options.firstImageId;
    for (const b of this.boxes) {
      if ((b.image || first || null) !== (this.imageId || first || null)) continue;
      const el = document.createElement("div");
      el.className = "ai-box";
      el.tabIndex = 0;
      el.setAttribute("role", "img");
      el.setAttribute("aria-label", "AI box: " + b.text);
      el.dataset.finding = b.finding || "";
      const label = document.createElement("span");
      label.className = "ai-box-label";
      label.setAttribute("aria-hidden", "true");
      label.textContent = b.text;
      el.appendChild(label);
      el._box = b;
      layer.appendChild(el);
    }
  }

  _placeBoxes() {
    const layer = this.boxLayer;
    if (!layer || !this.width) return;
    if (this._boxesFor !== this.imageId) this._buildBoxes(layer);  // the shown image's boxes
    if (!this.boxesShown) return;
    const m = this.matrix();
    const css = this.canvas.clientWidth / this.canvas.width;  // canvas pixels -> CSS pixels
    for (const el of layer.children) {
      const b = el._box;
      const sx = b.size && b.size[0] ? this.width / b.size[0] : 1;
      const sy = b.size && b.size[1] ? this.height / b.size[1] : 1;
      const p = apply(m, b.x0 * sx, b.y0 * sy);
      const q = apply(m, b.x1 * sx, b.y1 * sy);
      el.style.left = Math.min(p.x, q.x) * css + "px";
      el.style.top = Math.min(p.y, q.y) * css + "px";
      el.style.width = Math.abs(q.x - p.x) * css + "px";
      el.style.height = Math.abs(q.y - p.y) * css + "px";
    }
  }

  state() {
    return {
      scale: this.view.scale, tx: this.view.tx, ty: this.view.ty, invert: this.invert,
      window: this.wl ? Object.assign({}, this.wl) : null, windowMode: this.windowMode, preset: this.preset,
      fullRange: !!this.full, fullState: this.fullState, width: this.width, height: this.height,
      orient: Object.assign({}, this.orient), measureMode: this.measureMode, loupe: !!this.loupe,
      measurements: this.measurements.map((l) => Object.assign({}, l, this.lengthOf(l))), loading: this.loading,
    };
  }

  /* ---- input ---- */
  _canvasPoint(e) {
    const rect = this.canvas.getBoundingClientRect();
    const sx = this.canvas.width / rect.width;
    return {x: (e.clientX - rect.left) * sx, y: (e.clientY - rect.top) * sx};
  }

  _dragMode(e) {
    if (e.button === 2 || (e.button === 0 && (e.shiftKey || this.windowMode))) return "window";
    return this.measureMode ? "measure" : "pan";
  }

  _onPointerDown(e) {
    this.container.focus({preventScroll: true});
    if (e.button !== 0 && e.button !== 2) return;
    const mode = this._dragMode(e);
    if (mode === "window") this._startWindow();
    this._drag = {x: e.clientX, y: e.clientY, mode};
    if (mode === "measure" && this.source) {
      const p = this._canvasPoint(e);
      const a = this.toImage(p.x, p.y);
      this._drag.line = {x0: a.x, y0: a.y, x1: a.x, y1: a.y};
      this.measurements.push(this._drag.line);
    }
    this.canvas.setPointerCapture(e.pointerId);
    e.preventDefault();
  }

  _onPointerMove(e) {
    if (this.loupe) {
      const p = this._canvasPoint(e);
      this.loupe.x = p.x;
      this.loupe.y = p.y;
      if (!this._drag) this.draw();
    }
    const d = this._drag;
    if (!d) return;
    const dx = e.clientX - d.x;
    const dy = e.clientY - d.y;
    d.x = e.clientX;
    d.y = e.clientY;
    if (d.mode === "window") {
      this.adjustWindow(dx, dy);
    } else if (d.mode === "measure") {
      const p = this._canvasPoint(e);
      const b = this.toImage(p.x, p.y);
      d.line.x1 = b.x;
      d.line.y1 = b.y;
      this.draw();
    } else {
      const k = this.canvas.width / this.canvas.getBoundingClientRect().width;
      this.pan(dx * k, dy * k);
    }
  }

  _onPointerUp(e) {
    const d = this._drag;
    if (!d) return;
    this._drag = null;
    try { this.canvas.releasePointerCapture(e.pointerId); } catch (err) { /* already released */ }
    if (d.mode === "measure") {
      const l = d.line;
      if (Math.hypot(l.x1 - l.x0, l.y1 - l.y0) < 1) this.measurements.pop();  // a click, not a line
      this.draw();
      this._emit("measure");
    }
  }

  _bind() {
    const c = this.canvas;
    c.addEventListener("contextmenu", (e) => e.preventDefault());
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      const p = this._canvasPoint(e);
      this.zoomAt(Math.exp(-e.deltaY * 0.0015), p.x, p.y);
    }, {passive: false});
    c.addEventListener("pointerdown", (e) => this._onPointerDown(e));
    c.addEventListener("pointermove", (e) => this._onPointerMove(e));
    c.addEventListener("pointerup", (e) => this._onPointerUp(e));
    c.addEventListener("pointercancel", (e) => this._onPointerUp(e));
    if ("ResizeObserver" in global) {
      this._ro = new ResizeObserver(() => {
        const fitted = this.view.fitted;
        this._resize();
        if (fitted) this.fit(); else this.draw();
      });
      this._ro.observe(this.container);
    }
    const target = this.options.keyboard === "document" ? document : this.container;
    if (this.options.keyboard) target.addEventListener("keydown", (e) => this._onKey(e));
  }

  _arrow(key, shift) {
    if (this.measureMode && !shift) { this._moveCursor(key); return; }
    const wl = shift || this.windowMode;
    const step = 40 * (global.devicePixelRatio || 1);
    const moves = wl
      ? {ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1]}
      : {ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step], ArrowDown: [0, -step]};
    const mv = moves[key];
    if (wl) this.stepWindow(mv[0], mv[1]); else this.pan(mv[0], mv[1]);
  }

  /** Enter measures only when the focus is on the image (or nowhere), never on a button or link. */
  _keyTarget(e) {
    const t = e.target;
    return t === this.container || t === document.body || t === document.documentElement || t === this.canvas;
  }

  _onKey(e) {
    if (isTyping(e.target) || e.ctrlKey || e.metaKey || e.altKey || !this.source) return;
    if (e.key.startsWith("Arrow")) { this._arrow(e.key, e.shiftKey); e.preventDefault(); return; }
    const preset = Object.keys(PRESETS).find((k) => PRESETS[k].key === e.key);
    if (preset) { this.setPreset(preset); e.preventDefault(); return; }
    const actions = {
      "+": () => this.zoomAt(1.25), "=": () => this.zoomAt(1.25), "-": () => this.zoomAt(0.8),
      "_": () => this.zoomAt(0.8), r: () => this.reset(), i: () => this.setInvert(!this.invert),
      w: () => this.toggleWindowMode(), m: () => this.toggleLoupe(), d: () => this.toggleMeasure(),
      o: () => this.rotate(), h: () => this.setOrientation({flipH: !this.orient.flipH}),
      v: () => this.setOrientation({flipV: !this.orient.flipV}),
      f: () => this.toggleFullscreen(this.options.fullscreenTarget),
      b: this.boxLayer ? () => this.showBoxes(!this.boxesShown) : null,
      Escape: this.measurements.length ? () => this._escape() : null,
      Enter: this.measureMode && this._keyTarget(e) ? () => this._enterPoint() : null,
    };
    const fn = actions[e.key.length === 1 ? e.key.toLowerCase() : e.key];
    if (!fn) return;
    fn();
    e.preventDefault();
  }

  /** Window mode: a left drag windows instead of panning (the w key and the toolbar's W/L button). */
  toggleWindowMode(on) {
    this.windowMode = on === undefined ? !this.windowMode : !!on;
    if (this.windowMode && this.measureMode) this.toggleMeasure(false);
    this.container.classList.toggle("window-mode", this.windowMode);
    if (this.windowMode && this.fullState === "none") this.fetchFull();
    this._emit("mode");
  }

  _emit(what) {
    const s = this.state();
    if (typeof this.options.onchange === "function") this.options.onchange(what, s);
    this.container.dispatchEvent(new CustomEvent("cxrviewer:" + what, {detail: s}));
  }
}


const VIEW_NAMES = {PA: "PA", AP: "AP", LL: "Left lateral", RL: "Right lateral", LAT: "Lateral", LATERAL: "Lateral"};

function windowText(s) {
  if (s.preset && PRESETS[s.preset] && (s.preset === "voi" || s.window)) {
    const w = s.window ? ` · W ${Math.round(s.window.width)} L ${Math.round(s.window.center)}` : "";
    return `${PRESETS[s.preset].label}${w}`;
  }
  if (s.preset && !s.window) return `${PRESETS[s.preset].label} (loading full range)`;
  return s.window ? `W ${Math.round(s.window.width)} L ${Math.round(s.window.center)}` : PRESETS.voi.label;
}

function orientText(o) {
  const parts = [];
  if (o.rotate) parts.push(`rotated ${o.rotate}°`);
  if (o.flipH) parts.push("flipped horizontally");
  if (o.flipV) parts.push("flipped vertically");
  return parts.join(", ");
}

function describe(s) {
  const range = s.window && s.window.space === "full" ? " (full range)" : s.window ? " (8-bit)" : "";
  const extra = [orientText(s.orient), s.invert ? "inverted" : "", s.windowMode ? "W/L mode" : "",
    s.measureMode ? "measure mode" : "", s.loupe ? "magnifier" : ""].filter(Boolean);
  if (s.measurements.length) {
    const l = s.measurements[s.measurements.length - 1];
    extra.push(`last line ${l.value.toFixed(l.unit === "mm" ? 1 : 0)} ${l.unit}`);
  }
  return [`${Math.round(s.scale * 100)}%`, windowText(s) + range, ...extra].join(" · ");
}

function spacingText(sp) {
  if (!sp) return "No pixel spacing: lengths in pixels";
  const mm = ((sp.row + sp.col) / 2).toFixed(3);
  if (sp.calibrated) return `${mm} mm/px, calibrated to the patient (Pixel Spacing)`;
  if (sp.kind === "detector") return `${mm} mm/px at the detector (Imager Pixel Spacing), not corrected for magnification`;
  if (sp.kind === "unstated") return `${mm} mm/px (Pixel Spacing; the file does not say whether it is calibrated)`;
  return `${mm} mm/px (what the spacing means was not recorded at import)`;
}

function shortSpacingText(sp) {
  if (!sp) return "no pixel spacing";
  const mm = ((sp.row + sp.col) / 2).toFixed(3);
  if (sp.calibrated) return `${mm} mm/px, calibrated`;
  if (sp.kind === "detector") return `${mm} mm/px, detector spacing (not calibrated)`;
  return `${mm} mm/px, calibration not stated`;
}

/* The on-image overlay (#viewer-overlay, aria-hidden: the status line says the same). */
function updateOverlay(viewer, s) {
  const el = document.getElementById("viewer-overlay");
  if (!el || !viewer.meta) return;
  const m = viewer.meta;
  const vp = (m.view_position || "").toUpperCase();
  const lat = (m.laterality || "").toUpperCase();
  const set = (cls, text) => { const t = el.querySelector(cls); if (t) t.textContent = text; };
  set(".ov-view", [vp ? VIEW_NAMES[vp] || vp : "View not recorded", lat ? `laterality ${lat}` : ""]
    .filter(Boolean).join(" · "));
  set(".ov-window", windowText(s) + (s.invert ? " · inverted" : ""));
  set(".ov-orient", orientText(s.orient));
  set(".ov-spacing", shortSpacingText(viewer.spacing()));
  const last = s.measurements.length ? s.measurements[s.measurements.length - 1] : null;
  set(".ov-measure", last ? `Last line ${last.value.toFixed(last.unit === "mm" ? 1 : 0)} ${last.unit} ·` : "");
}

function loadingText(s) {
  if (s.loading) return "Loading image…";
  if (s.fullState === "loading") return "Loading full range…";
  return "";
}

/* The loading indicator (#viewer-loading) and the pressed state of the toggles. */
function updateControls(viewer, s) {
  const loading = document.getElementById("viewer-loading");
  if (loading) {
    const text = loadingText(s);
    loading.hidden = !text;
    const t = loading.querySelector(".viewer-loading-text");
    if (t) t.textContent = text;
  }
  const pressed = {window: s.windowMode, magnifier: s.loupe, measure: s.measureMode, "flip-h": s.orient.flipH,
    "flip-v": s.orient.flipV};
  for (const [action, on] of Object.entries(pressed)) {
    const b = document.querySelector(`[data-viewer="${action}"]`);
    if (b) b.setAttribute("aria-pressed", String(!!on));
  }
  const preset = document.getElementById("viewer-preset");
  if (preset) preset.value = s.preset && PRESETS[s.preset] ? s.preset : "";
  const measure = document.querySelector('[data-viewer="measure"]');
  if (measure && viewer.meta) measure.title = `Measure a distance (d): ${spacingText(viewer.spacing())}`;
}

const ACTIONS = {
  "zoom-in": (v) => v.zoomAt(1.25), "zoom-out": (v) => v.zoomAt(0.8), reset: (v) => v.reset(),
  invert: (v) => v.setInvert(!v.invert), window: (v) => v.toggleWindowMode(), boxes: (v) => v.showBoxes(!v.boxesShown),
  magnifier: (v) => v.toggleLoupe(), measure: (v) => v.toggleMeasure(), rotate: (v) => v.rotate(),
  "flip-h": (v) => v.setOrientation({flipH: !v.orient.flipH}), "flip-v": (v) => v.setOrientation({flipV: !v.orient.flipV}),
  fullscreen: (v) => v.toggleFullscreen(document.getElementById("viewer-root")),
};

/**
 * Starts the viewer of templates/imaging/_viewer.html on `images` ([{meta_url}, ...]): the toolbar buttons, the
 * image choice, the status line, the overlay and the loading indicator. If the canvas viewer cannot start or load,
 * the display image is shown as a plain <img> instead. `boxes` (the AI arm's boxes, {x0, y0, x1, y1, text, image,
 * size}) go over the image, behind the #ai-boxes-toggle button. Returns the CXRViewer, or null when there is no
 * image or no canvas viewer.
 */
export function mountViewer(images, boxes) {
  const el = document.getElementById("viewer");
  const statusEl = document.getElementById("viewer-status");
  const setStatus = (text) => { if (statusEl) statusEl.textContent = text; };
  if (!el) return null;
  if (!images.length) { setStatus("This case has no image."); return null; }
  let viewer = null;
  const onchange = (what, s) => {
    if (s.loading) setStatus("Loading image…");
    else if (what === "fullrange" && s.fullState === "failed") setStatus("The full range could not be loaded: windowing the 8-bit image");
    else setStatus((s.fullState === "loading" ? "Loading full range… · " : "") + describe(s));
    if (viewer) { updateOverlay(viewer, s); updateControls(viewer, s); }
  };
  try {
    viewer = new CXRViewer(el, {keyboard: "document", onchange, firstImageId: images.length ? images[0].id : null,
      fullscreenTarget: document.getElementById("viewer-root")});
  } catch (e) {
    viewer = null;
  }
  function fallback(image) {
    el.innerHTML = "";
    const loading = document.getElementById("viewer-loading");
    if (loading) loading.hidden = true;
    fetch(image.meta_url, {credentials: "same-origin"}).then((r) => r.json()).then((m) => {
      const img = document.createElement("img");
      img.src = m.display_url;
      img.alt = "Chest radiograph";
      img.className = "viewer-fallback";
      el.appendChild(img);
    }).catch(() => setStatus("The image could not be loaded."));
  }
  function show(index) {
    const image = images[index];
    if (!viewer) { fallback(image); return; }
    viewer.imageId = image.id || null;
    viewer.load(image.meta_url).catch((err) => { setStatus(err.message); viewer = null; fallback(image); });
  }
  const select = document.getElementById("image-select");
  if (select) select.addEventListener("change", () => show(+select.value));
  document.querySelectorAll("[data-viewer]").forEach((b) => b.addEventListener("click", () => {
    if (viewer && ACTIONS[b.dataset.viewer]) ACTIONS[b.dataset.viewer](viewer);
  }));
  const preset = document.getElementById("viewer-preset");
  if (preset) preset.addEventListener("change", () => { if (viewer && preset.value) viewer.setPreset(preset.value); });
  const toggle = document.getElementById("ai-boxes-toggle");
  const layer = document.getElementById("viewer-boxes");
  if (viewer && toggle && layer && boxes && boxes.length) {
    viewer.setBoxes(layer, boxes);
    el.addEventListener("cxrviewer:boxes", () => toggle.setAttribute("aria-pressed", String(viewer.boxesShown)));
  } else if (toggle) {
    toggle.hidden = true;  // no canvas viewer: nothing to draw the boxes on
  }
  show(0);
  return viewer;
}
