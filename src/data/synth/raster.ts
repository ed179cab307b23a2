/**
 * A small deterministic rasterizer for the synthetic scenes. Every shape is a closed polygon
 * (circles, ellipses and capsules are turned into polygons first), filled without
 * anti-aliasing by sampling each pixel at its centre: pixel (i, j) covers [i, i+1) x [j, j+1)
 * and is painted when (i + 0.5, j + 0.5) is inside by the even-odd rule. `polygonCovers`
 * evaluates exactly the same crossings, so the scene builder can predict which pixels a
 * shape paints without drawing it. Pure float/integer maths: identical output everywhere.
 */

/** Packed colour 0xRRGGBB. */
export type Rgb = number;

/** A closed polygon as flat [x0, y0, x1, y1, ...] in pixel coordinates. */
export type Poly = number[];

export interface Canvas {
  width: number;
  height: number;
  /** RGB, row-major, length width * height * 3. */
  rgb: Uint8Array;
  /** Optional owner map: the `id` of the last fill that painted each pixel (-1 = none). */
  ids: Int16Array | null;
}

export function createCanvas(width: number, height: number, withIds = false): Canvas {
  const ids = withIds ? new Int16Array(width * height).fill(-1) : null;
  return { width, height, rgb: new Uint8Array(width * height * 3), ids };
}

export function rgb(r: number, g: number, b: number): Rgb {
  return (clampByte(r) << 16) | (clampByte(g) << 8) | clampByte(b);
}

export function clampByte(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
}

/** Multiplies a colour by `f` (shade < 1, lighten > 1), clamped. */
export function scaleRgb(c: Rgb, f: number): Rgb {
  return rgb(((c >> 16) & 255) * f, ((c >> 8) & 255) * f, (c & 255) * f);
}

/** Linear mix of two colours: t = 0 gives a, t = 1 gives b. */
export function mixRgb(a: Rgb, b: Rgb, t: number): Rgb {
  const ar = (a >> 16) & 255, ag = (a >> 8) & 255, ab = a & 255;
  const br = (b >> 16) & 255, bg = (b >> 8) & 255, bb = b & 255;
  return rgb(ar + (br - ar) * t, ag + (bg - ag) * t, ab + (bb - ab) * t);
}

// ---------------------------------------------------------------- polygons

const crossings = new Float64Array(256);

/** x where edge (x0,y0)-(x1,y1) crosses the horizontal line y; shared by fill and point test. */
function edgeX(x0: number, y0: number, x1: number, y1: number, y: number): number {
  return x0 + ((y - y0) * (x1 - x0)) / (y1 - y0);
}

/** Even-odd point test with the same half-open crossing rule the fill uses. */
export function polygonCovers(pts: Poly, x: number, y: number): boolean {
  const n = pts.length >> 1;
  let inside = false;
  for (let i = 0, j = n - 1; i < n; j = i++) {
    const yi = pts[2 * i + 1];
    const yj = pts[2 * j + 1];
    if (yi <= y !== yj <= y) {
      if (edgeX(pts[2 * i], yi, pts[2 * j], yj, y) <= x) inside = !inside;
    }
  }
  return inside;
}

/** [x1, y1, x2, y2] of the polygon's vertices. */
export function polygonBounds(pts: Poly): [number, number, number, number] {
  let x1 = Infinity, y1 = Infinity, x2 = -Infinity, y2 = -Infinity;
  for (let i = 0; i < pts.length; i += 2) {
    const x = pts[i], y = pts[i + 1];
    if (x < x1) x1 = x;
    if (x > x2) x2 = x;
    if (y < y1) y1 = y;
    if (y > y2) y2 = y;
  }
  return [x1, y1, x2, y2];
}

/**
 * Calls span(row, xStart, xEnd) (xEnd exclusive, clipped to the canvas) for every run of
 * pixels whose centre the polygon covers.
 */
function scanPolygon(
  width: number,
  height: number,
  pts: Poly,
  span: (row: number, x0: number, x1: number) => void,
): void {
  const n = pts.length >> 1;
  if (n < 3) return;
  const [, minY, , maxY] = polygonBounds(pts);
  const r0 = Math.max(0, Math.ceil(minY - 0.5));
  const r1 = Math.min(height - 1, Math.floor(maxY - 0.5));
  for (let row = r0; row <= r1; row++) {
    const y = row + 0.5;
    let k = 0;
    for (let i = 0, j = n - 1; i < n; j = i++) {
      const yi = pts[2 * i + 1];
      const yj = pts[2 * j + 1];
      if (yi <= y !== yj <= y) crossings[k++] = edgeX(pts[2 * i], yi, pts[2 * j], yj, y);
    }
    // insertion sort: k is small (2 for convex shapes)
    for (let a = 1; a < k; a++) {
      const v = crossings[a];
      let b = a - 1;
      while (b >= 0 && crossings[b] > v) {
        crossings[b + 1] = crossings[b];
        b--;
      }
      crossings[b + 1] = v;
    }
    for (let a = 0; a + 1 < k; a += 2) {
      // pixel centre c + 0.5 in [xa, xb)  <=>  ceil(xa - 0.5) <= c <= ceil(xb - 0.5) - 1
      const x0 = Math.max(0, Math.ceil(crossings[a] - 0.5));
      const x1 = Math.min(width, Math.ceil(crossings[a + 1] - 0.5));
      if (x1 > x0) span(row, x0, x1);
    }
  }
}

/** Fills a polygon with an opaque colour; records `id` in the owner map when there is one. */
export function fillPolygon(c: Canvas, pts: Poly, color: Rgb, id = -1): void {
  const r = (color >> 16) & 255, g = (color >> 8) & 255, b = color & 255;
  const data = c.rgb, ids = c.ids, w = c.width;
  scanPolygon(c.width, c.height, pts, (row, x0, x1) => {
    let o = (row * w + x0) * 3;
    for (let x = x0; x < x1; x++, o += 3) {
      data[o] = r;
      data[o + 1] = g;
      data[o + 2] = b;
    }
    if (ids) ids.fill(id, row * w + x0, row * w + x1);
  });
}

/** Multiplies the pixels under a polygon by `factor` (shadows); leaves the owner map alone. */
export function shadePolygon(c: Canvas, pts: Poly, factor: number): void {
  const data = c.rgb, w = c.width;
  scanPolygon(c.width, c.height, pts, (row, x0, x1) => {
    const end = (row * w + x1) * 3;
    for (let o = (row * w + x0) * 3; o < end; o++) data[o] = Math.round(data[o] * factor);
  });
}

export function translatePolygon(pts: Poly, dx: number, dy: number): void {
  for (let i = 0; i < pts.length; i += 2) {
    pts[i] += dx;
    pts[i + 1] += dy;
  }
}

// ---------------------------------------------------------------- shape builders

export function rectPoly(x1: number, y1: number, x2: number, y2: number): Poly {
  return [x1, y1, x2, y1, x2, y2, x1, y2];
}

/** Number of vertices for a round outline of radius r px: about one per 2.5 px, 10..64. */
function segmentsFor(r: number): number {
  return Math.max(10, Math.min(64, Math.ceil((2 * Math.PI * r) / 2.5)));
}

/** Ellipse with semi-axes rx, ry, its rx axis rotated by `angle` (radians, y down). */
export function ellipsePoly(cx: number, cy: number, rx: number, ry: number, angle = 0): Poly {
  const n = segmentsFor(Math.max(rx, ry));
  const ca = Math.cos(angle), sa = Math.sin(angle);
  const pts: Poly = new Array(2 * n);
  for (let i = 0; i < n; i++) {
    const t = (2 * Math.PI * i) / n;
    const u = rx * Math.cos(t), v = ry * Math.sin(t);
    pts[2 * i] = cx + u * ca - v * sa;
    pts[2 * i + 1] = cy + u * sa + v * ca;
  }
  return pts;
}

/** Part of an ellipse outline from angle t0 to t1 (in the ellipse frame), closed by a chord. */
export function ellipseArcPoly(
  cx: number, cy: number, rx: number, ry: number, angle: number, t0: number, t1: number,
): Poly {
  const n = Math.max(4, Math.ceil((segmentsFor(Math.max(rx, ry)) * (t1 - t0)) / (2 * Math.PI)));
  const ca = Math.cos(angle), sa = Math.sin(angle);
  const pts: Poly = [];
  for (let i = 0; i <= n; i++) {
    const t = t0 + ((t1 - t0) * i) / n;
    const u = rx * Math.cos(t), v = ry * Math.sin(t);
    pts.push(cx + u * ca - v * sa, cy + u * sa + v * ca);
  }
  return pts;
}

/**
 * Tapered capsule: the convex hull of circle (x0, y0, r0) and circle (x1, y1, r1) -- limbs,
 * bat, knife handle, thick lines.
 */
export function capsulePoly(x0: number, y0: number, r0: number, x1: number, y1: number, r1: number): Poly {
  const dx = x1 - x0, dy = y1 - y0;
  const d = Math.sqrt(dx * dx + dy * dy);
  if (d <= Math.abs(r0 - r1) + 1e-9) {
    return r0 >= r1 ? ellipsePoly(x0, y0, r0, r0) : ellipsePoly(x1, y1, r1, r1);
  }
  const theta = Math.atan2(dy, dx);
  const beta = Math.acos((r0 - r1) / d); // tangent points at theta +- beta on both circles
  const n1 = Math.max(3, Math.ceil((segmentsFor(r1) * beta) / Math.PI));
  const n0 = Math.max(3, Math.ceil((segmentsFor(r0) * (Math.PI - beta)) / Math.PI));
  const pts: Poly = [];
  for (let i = 0; i <= n1; i++) {
    const t = theta - beta + (2 * beta * i) / n1;
    pts.push(x1 + r1 * Math.cos(t), y1 + r1 * Math.sin(t));
  }
  for (let i = 0; i <= n0; i++) {
    const t = theta + beta + (2 * (Math.PI - beta) * i) / n0;
    pts.push(x0 + r0 * Math.cos(t), y0 + r0 * Math.sin(t));
  }
  return pts;
}

/**
 * Maps points given in an object's local frame to the image: `u` along the axis at `angle`,
 * `v` perpendicular (v = +1 is the axis rotated +90 degrees, i.e. "below" for angle 0),
 * scaled by `s` and placed at (ox, oy). `mirror` = -1 flips v.
 */
export function localPoly(
  local: number[], ox: number, oy: number, angle: number, s: number, mirror = 1,
): Poly {
  const ca = Math.cos(angle), sa = Math.sin(angle);
  const out: Poly = new Array(local.length);
  for (let i = 0; i < local.length; i += 2) {
    const u = local[i] * s, v = local[i + 1] * s * mirror;
    out[i] = ox + u * ca - v * sa;
    out[i + 1] = oy + u * sa + v * ca;
  }
  return out;
}

// ---------------------------------------------------------------- whole-image operations

/** Fills rows [y0, y1) with a vertical gradient from `top` to `bottom`. */
export function fillVerticalGradient(c: Canvas, y0: number, y1: number, top: Rgb, bottom: Rgb): void {
  const a = Math.max(0, Math.floor(y0)), b = Math.min(c.height, Math.floor(y1));
  const w = c.width, data = c.rgb;
  for (let y = a; y < b; y++) {
    const t = b - a > 1 ? (y - a) / (b - a - 1) : 0;
    const col = mixRgb(top, bottom, t);
    const r = (col >> 16) & 255, g = (col >> 8) & 255, bl = col & 255;
    let o = y * w * 3;
    for (let x = 0; x < w; x++, o += 3) {
      data[o] = r;
      data[o + 1] = g;
      data[o + 2] = bl;
    }
  }
}

/**
 * Separable box blur of radius r (window n = 2r+1), edges clamped; `passes` times (two passes
 * approximate a Gaussian). Integer running sums over an edge-padded row, then one running sum
 * per column walking down the rows (cache friendly); sum / n rounded through a lookup table.
 */
export function boxBlur(c: Canvas, r: number, passes: number): void {
  if (r < 1 || passes < 1) return;
  const w = c.width, h = c.height, data = c.rgb;
  const stride = w * 3, n = 2 * r + 1;
  const div = new Uint8Array(255 * n + 1);
  for (let i = 0; i < div.length; i++) div[i] = Math.floor((2 * i + n) / (2 * n)); // round(i / n), halves up
  const tmp = new Uint8Array(data.length);
  const pad = new Uint8Array((w + 2 * r + 1) * 3);
  const sums = new Int32Array(stride);
  for (let p = 0; p < passes; p++) {
    // horizontal: data -> tmp
    for (let y = 0; y < h; y++) {
      const row = y * stride;
      pad.set(data.subarray(row, row + stride), r * 3);
      for (let k = 0; k < r; k++) pad.copyWithin(k * 3, r * 3, r * 3 + 3);
      for (let k = r + w; k < w + 2 * r + 1; k++) pad.copyWithin(k * 3, (r + w - 1) * 3, (r + w) * 3);
      let s0 = 0, s1 = 0, s2 = 0;
      for (let k = 0; k < n; k++) {
        s0 += pad[k * 3];
        s1 += pad[k * 3 + 1];
        s2 += pad[k * 3 + 2];
      }
      const lag = n * 3;
      for (let o = 0; o < stride; o += 3) {
        tmp[row + o] = div[s0];
        tmp[row + o + 1] = div[s1];
        tmp[row + o + 2] = div[s2];
        s0 += pad[o + lag] - pad[o];
        s1 += pad[o + lag + 1] - pad[o + 1];
        s2 += pad[o + lag + 2] - pad[o + 2];
      }
    }
    // vertical: tmp -> data
    sums.fill(0);
    for (let k = -r; k <= r; k++) {
      const src = Math.min(h - 1, Math.max(0, k)) * stride;
      for (let i = 0; i < stride; i++) sums[i] += tmp[src + i];
    }
    for (let y = 0; y < h; y++) {
      const row = y * stride;
      const addRow = Math.min(h - 1, y + r + 1) * stride, subRow = Math.max(0, y - r) * stride;
      for (let i = 0; i < stride; i++) {
        const sum = sums[i];
        data[row + i] = div[sum];
        sums[i] = sum + tmp[addRow + i] - tmp[subRow + i];
      }
    }
  }
}
