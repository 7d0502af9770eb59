/* CXRViewer: a small chest X-ray viewer on a 2D canvas, an ES module, nothing fetched but the image.
 *
 *   import {CXRViewer, mountViewer} from "../imaging/viewer.js";
 *   const v = new CXRViewer(container, {keyboard: "document"});
 *   await v.load("/reading/images/<id>/meta.json");          // or
 *   await v.load({display_url, full_url, width, height, display});
 *
 * - Draws the 8-bit display rendition first (fit to window), so the default view is exactly the rendition.
 * - Zoom: mouse wheel (around the pointer), + / - keys. Pan: left drag, arrow keys.
 * - Window/level: right drag, Shift + left drag, or left drag after pressing w (window mode).
 *   Horizontal = width, vertical = level. On the first window/level gesture the viewer switches to the full
 *   dynamic range (raw uint16 from full_url, fetched in the background after the first draw) when available,
 *   starting from the import's window (display.window_center / window_width); otherwise it windows the 8-bit
 *   rendition. Full-range values are modality units after `v * display.full_range.slope + intercept`
 *   (defaults 1 and 0); display.min/max/window_* are in those units; display.invert = true (MONOCHROME1)
 *   inverts the full range, which the import stores un-inverted (trial/imaging/rendition.py).
 * - i invert, r reset (fit, rendition window, no invert).
 * Keyboard shortcuts are ignored while typing in a form field.
 * - AI boxes (the read page's AI arm): setBoxes(layer, boxes) places one focusable outline per box in `layer` (an
 *   element over the canvas, outside it: templates/imaging/_viewer.html), re-placed on every draw; b or
 *   showBoxes() shows/hides them. Box corners are in pixels of an image of box.size [w, h] (the AI's
 *   input image size; default the display image), scaled to the display image; box.image names the image
 *   (null: the first).
 * mountViewer() wires the markup of templates/imaging/_viewer.html (toolbar, image choice, status line), the one
 * viewer of the read page and the rating page.
 */
import {isTyping} from "../core/common.js";

const global = window;
const MIN_SCALE = 0.05;
const MAX_SCALE = 40;

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
    this.meta = null;
    this.width = 0;
    this.height = 0;
    this.view = {scale: 1, tx: 0, ty: 0, fitted: true};
    this.wl = null;             // {space: "display" | "full", center, width}
    this.invert = false;
    this.windowMode = false;
    this._drag = null;
    this.imageId = null;        // the shown image's public id (mountViewer sets it), to pick its boxes
    this.boxLayer = null;
    this.boxes = [];
    this.boxesShown = false;
    this._bind();
  }

  /* ---- loading ---- */
  async load(source) {
    let meta = source;
    if (typeof source === "string") {
      const r = await fetch(source, {credentials: "same-origin", headers: {"Accept": "application/json"}});
      if (!r.ok) throw new Error("Image metadata: HTTP " + r.status);
      meta = await r.json();
    }
    this.meta = meta;
    this.full = null;
    this._fullPromise = null;
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
    this.invert = false;
    this._resize();
    this.fit();
    this._emit("load");
    if (meta.full_url) {
      // Fetch the full range in the background: the first window/level gesture uses it.
      const idle = global.requestIdleCallback || ((fn) => setTimeout(fn, 50));
      idle(() => this._fetchFull());
    }
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

  _fetchFull() {
    if (this._fullPromise) return this._fullPromise;
    const url = this.meta && this.meta.full_url;
    if (!url) return Promise.resolve(null);
    this._fullPromise = fetch(url, {credentials: "same-origin"})
      .then((r) => {
        if (!r.ok) throw new Error("full range: HTTP " + r.status);
        const w = parseInt(r.headers.get("X-Image-Width") || this.width, 10);
        const h = parseInt(r.headers.get("X-Image-Height") || this.height, 10);
        return r.arrayBuffer().then((buf) => ({buf, w, h}));
      })
      .then(({buf, w, h}) => {
        if (w !== this.width || h !== this.height || buf.byteLength !== w * h * 2) return null;
        // Little-endian uint16; convert explicitly on a big-endian machine.
        const le = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
        let arr;
        if (le) {
          arr = new Uint16Array(buf);
        } else {
          const dv = new DataView(buf);
          arr = new Uint16Array(w * h);
          for (let i = 0; i < arr.length; i++) arr[i] = dv.getUint16(i * 2, true);
        }
        this.full = arr;
        this._emit("fullrange");
        return arr;
      })
      .catch(() => null);
    return this._fullPromise;
  }

  /* ---- window / level ---- */
  _fullRange() {
    const d = (this.meta && this.meta.display) || {};
    let lo = Number.isFinite(d.min) ? d.min : 0;
    let hi = Number.isFinite(d.max) ? d.max : 65535;
    if (hi <= lo) hi = lo + 1;
    return {lo, hi};
  }

  _startWindow() {
    if (this.wl) return;
    const d = (this.meta && this.meta.display) || {};
    if (this.full) {
      const {lo, hi} = this._fullRange();
      const width = Number.isFinite(d.window_width) && d.window_width > 0 ? d.window_width : hi - lo;
      const center = Number.isFinite(d.window_center) ? d.window_center : (lo + hi) / 2;
      this.wl = {space: "full", center, width};
    } else {
      this.wl = {space: "display", center: 127.5, width: 255};
    }
  }

  setWindow(center, width) {
    this._startWindow();
    this.wl.center = center;
    this.wl.width = Math.max(1, width);
    // Re-windowing touches every pixel: coalesce a burst of drag events into one pass per frame.
    if (!this._wlFrame) {
      this._wlFrame = global.requestAnimationFrame(() => {
        this._wlFrame = null;
        this._applyGrey();
        this.draw();
        this._emit("window");
      });
    }
  }

  adjustWindow(dx, dy) {
    this._startWindow();
    const span = this.wl.space === "full" ? this._fullRange().hi - this._fullRange().lo : 256;
    const k = span / 400;  // 400 screen pixels drag across the whole range
    this.setWindow(this.wl.center + dy * k, this.wl.width + dx * k);
  }

  setInvert(on) {
    this.invert = !!on;
    this._applyGrey();
    this.draw();
    this._emit("invert");
  }

  _applyGrey() {
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
    const wl = this.wl || {center: 127.5, width: 255};
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

  fit() {
    if (!this.width) return;
    const cw = this.canvas.width;
    const ch = this.canvas.height;
    const s = Math.min(cw / this.width, ch / this.height);
    this.view = {scale: s, tx: (cw - this.width * s) / 2, ty: (ch - this.height * s) / 2, fitted: true};
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
    this.invert = false;
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
    const v = this.view;
    ctx.imageSmoothingEnabled = v.scale < 4;
    ctx.imageSmoothingQuality = "high";
    ctx.setTransform(v.scale, 0, 0, v.scale, v.tx, v.ty);
    ctx.drawImage(this.source, 0, 0);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    this._placeBoxes();
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

  _placeBoxes() {
    const layer = this.boxLayer;
    if (!layer || !this.width) return;
    if (this._boxesFor !== this.imageId) {  // (re)build the outlines of the shown image's boxes
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
    if (!this.boxesShown) return;
    const v = this.view;
    const css = this.canvas.clientWidth / this.canvas.width;  // canvas pixels -> CSS pixels
    for (const el of layer.children) {
      const b = el._box;
      const sx = b.size && b.size[0] ? this.width / b.size[0] : 1;
      const sy = b.size && b.size[1] ? this.height / b.size[1] : 1;
      const left = (v.tx + Math.min(b.x0, b.x1) * sx * v.scale) * css;
      const top = (v.ty + Math.min(b.y0, b.y1) * sy * v.scale) * css;
      el.style.left = left + "px";
      el.style.top = top + "px";
      el.style.width = Math.abs(b.x1 - b.x0) * sx * v.scale * css + "px";
      el.style.height = Math.abs(b.y1 - b.y0) * sy * v.scale * css + "px";
    }
  }

  state() {
    return {
      scale: this.view.scale, tx: this.view.tx, ty: this.view.ty, invert: this.invert,
      window: this.wl ? Object.assign({}, this.wl) : null, windowMode: this.windowMode,
      fullRange: !!this.full, width: this.width, height: this.height,
    };
  }

  /* ---- input ---- */
  _canvasPoint(e) {
    const rect = this.canvas.getBoundingClientRect();
    const sx = this.canvas.width / rect.width;
    return {x: (e.clientX - rect.left) * sx, y: (e.clientY - rect.top) * sx};
  }

  _bind() {
    const c = this.canvas;
    c.addEventListener("contextmenu", (e) => e.preventDefault());
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      const p = this._canvasPoint(e);
      this.zoomAt(Math.exp(-e.deltaY * 0.0015), p.x, p.y);
    }, {passive: false});
    c.addEventListener("pointerdown", (e) => {
      this.container.focus({preventScroll: true});
      const wl = e.button === 2 || (e.button === 0 && (e.shiftKey || this.windowMode));
      if (e.button !== 0 && e.button !== 2) return;
      if (wl) this._startWindow();
      if (wl && this.meta && this.meta.full_url && !this.full) this._fetchFull();
      this._drag = {x: e.clientX, y: e.clientY, mode: wl ? "window" : "pan"};
      c.setPointerCapture(e.pointerId);
      e.preventDefault();
    });
    c.addEventListener("pointermove", (e) => {
      const d = this._drag;
      if (!d) return;
      const dx = e.clientX - d.x;
      const dy = e.clientY - d.y;
      d.x = e.clientX;
      d.y = e.clientY;
      if (d.mode === "window") {
        this.adjustWindow(dx, dy);
      } else {
        const k = this.canvas.width / this.canvas.getBoundingClientRect().width;
        this.pan(dx * k, dy * k);
      }
    });
    const end = (e) => {
      if (this._drag) {
        this._drag = null;
        try { c.releasePointerCapture(e.pointerId); } catch (err) { /* already released */ }
      }
    };
    c.addEventListener("pointerup", end);
    c.addEventListener("pointercancel", end);
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

  _onKey(e) {
    if (isTyping(e.target) || e.ctrlKey || e.metaKey || e.altKey || !this.source) return;
    const step = 40 * (global.devicePixelRatio || 1);
    let handled = true;
    switch (e.key) {
      case "+": case "=": this.zoomAt(1.25); break;
      case "-": case "_": this.zoomAt(0.8); break;
      case "r": case "R": this.reset(); break;
      case "i": case "I": this.setInvert(!this.invert); break;
      case "w": case "W": this.toggleWindowMode(); break;
      case "b": case "B": if (this.boxLayer) this.showBoxes(!this.boxesShown); else handled = false; break;
      case "ArrowLeft": this.pan(step, 0); break;
      case "ArrowRight": this.pan(-step, 0); break;
      case "ArrowUp": this.pan(0, step); break;
      case "ArrowDown": this.pan(0, -step); break;
      default: handled = false;
    }
    if (handled) e.preventDefault();
  }

  /** Window mode: a left drag windows instead of panning (the w key and the toolbar's W/L button). */
  toggleWindowMode() {
    this.windowMode = !this.windowMode;
    this.container.classList.toggle("window-mode", this.windowMode);
    if (this.windowMode) this._fetchFull();
    this._emit("mode");
  }

  _emit(what) {
    if (typeof this.options.onchange === "function") this.options.onchange(what, this.state());
    this.container.dispatchEvent(new CustomEvent("cxrviewer:" + what, {detail: this.state()}));
  }
}


function describe(s) {
  const wl = s.window
    ? ` · W ${Math.round(s.window.width)} L ${Math.round(s.window.center)}${s.window.space === "full" ? " (full range)" : ""}`
    : "";
  return `${Math.round(s.scale * 100)}%${wl}${s.invert ? " · inverted" : ""}${s.windowMode ? " · W/L mode" : ""}`;
}

/**
 * Starts the viewer of templates/imaging/_viewer.html on `images` ([{meta_url}, ...]): the toolbar buttons, the
 * image choice and the status line. If the canvas viewer cannot start or load, the display image is shown as a
 * plain <img> instead. `boxes` (the AI arm's boxes, {x0, y0, x1, y1, text, image, size}) go over the image,
 * behind the #ai-boxes-toggle button. Returns the CXRViewer, or null when there is no image or no canvas viewer.
 */
export function mountViewer(images, boxes) {
  const el = document.getElementById("viewer");
  const statusEl = document.getElementById("viewer-status");
  const setStatus = (text) => { if (statusEl) statusEl.textContent = text; };
  if (!el) return null;
  if (!images.length) { setStatus("This case has no image."); return null; }
  let viewer = null;
  try {
    viewer = new CXRViewer(el, {keyboard: "document", onchange: (what, s) => setStatus(describe(s)),
      firstImageId: images.length ? images[0].id : null});
  } catch (e) {
    viewer = null;
  }
  function fallback(image) {
    el.innerHTML = "";
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
    setStatus("Loading image…");
    if (!viewer) { fallback(image); return; }
    viewer.imageId = image.id || null;
    viewer.load(image.meta_url).catch((err) => { setStatus(err.message); viewer = null; fallback(image); });
  }
  const select = document.getElementById("image-select");
  if (select) select.addEventListener("change", () => show(+select.value));
  document.querySelectorAll("[data-viewer]").forEach((b) => b.addEventListener("click", () => {
    if (!viewer) return;
    const action = b.dataset.viewer;
    if (action === "zoom-in") viewer.zoomAt(1.25);
    else if (action === "zoom-out") viewer.zoomAt(0.8);
    else if (action === "reset") viewer.reset();
    else if (action === "invert") viewer.setInvert(!viewer.invert);
    else if (action === "window") viewer.toggleWindowMode();
    else if (action === "boxes") viewer.showBoxes(!viewer.boxesShown);
  }));
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
