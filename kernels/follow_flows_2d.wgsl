// Euler integration of cell pixels through a 2D flow field, cellpose v4 `steps_interp`:
// PyTorch grid_sample(align_corners=False, padding_mode="zeros") semantics in float32, vectorised
// CPU kernel order of operations. One invocation follows one cell for all `niter` steps.
// The host prepends `field_get(i)`: the field in normalised units, `f32(flow * scale)`, as
// (x, y) pairs per pixel, maybe over several bindings from @binding(4) on.

struct Params {
  size: vec4<u32>, // Ly, Lx of the field (a block of the full image, or all of it)
  half: vec4<f32>, // Ly / 2, Lx / 2 of the full image: grid_sample's scaling factor
  last: vec4<f32>, // L - 1 per axis of the full image
  start: vec4<u32>, // offset of each axis' table in `starts`
  origin: vec4<i32>, // the field's first pixel in the full image (0, 0 without a frame)
  niter: u32,
  // 1.0, read at run time: every product that feeds a sum is multiplied by it, so that a compiler
  // which fuses multiply-adds (WGSL allows it) can only fuse this exact product, and the result
  // keeps the separately rounded products of the float32 reference
  one: f32,
}

@group(0) @binding(0) var<uniform> P: Params;
// normalised start coordinate of every pixel index, per axis (computed on the host, exact)
@group(0) @binding(1) var<storage, read> starts: array<f32>;
@group(0) @binding(2) var<storage, read> cells: array<u32>;
@group(0) @binding(3) var<storage, read_write> ends: array<i32>;

// the field (x, y) at full-image pixel (gy, gx); 0 outside the field
fn corner(gy: i32, gx: i32) -> vec2<f32> {
  let y = gy - P.origin.x;
  let x = gx - P.origin.y;
  if (y < 0 || x < 0 || y >= i32(P.size.x) || x >= i32(P.size.y)) {
    return vec2<f32>(0.0);
  }
  return field_get(u32(y) * P.size.y + u32(x));
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= arrayLength(&cells)) {
    return;
  }
  let p = cells[i];
  var uy = starts[P.start.x + p / P.size.y];
  var ux = starts[P.start.y + p % P.size.y];
  for (var t = 0u; t < P.niter; t++) {
    let x = (ux + 1.0) * P.half.y * P.one - 0.5;
    let y = (uy + 1.0) * P.half.x * P.one - 0.5;
    let xw = floor(x);
    let yn = floor(y);
    let w = x - xw;
    let e = 1.0 - w;
    let n = y - yn;
    let s = 1.0 - n;
    let nw = s * e;
    let ne = s * w;
    let sw = n * e;
    let se = n * w;
    let ix = i32(xw);
    let iy = i32(yn);
    let d = corner(iy, ix) * nw * P.one + corner(iy, ix + 1) * ne * P.one +
      corner(iy + 1, ix) * sw * P.one + corner(iy + 1, ix + 1) * se * P.one;
    ux = clamp(ux + d.x, -1.0, 1.0);
    uy = clamp(uy + d.y, -1.0, 1.0);
  }
  ends[2u * i] = i32(((uy + 1.0) * 0.5) * P.last.x) - P.origin.x;
  ends[2u * i + 1u] = i32(((ux + 1.0) * 0.5) * P.last.y) - P.origin.y;
}
