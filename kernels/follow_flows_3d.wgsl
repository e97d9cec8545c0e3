// Euler integration of cell voxels through a 3D flow field, cellpose v4 `steps_interp`:
// PyTorch grid_sample(align_corners=False, padding_mode="zeros") semantics in float32, scalar
// CPU kernel order of operations (trilinear corners accumulated tnw, tne, tsw, tse, bnw, bne,
// bsw, bse). One invocation follows one cell for all `niter` steps.
// The host prepends `field_get(i)`: the field in normalised units, `f32(flow * scale)`, as
// (z, y, x, 0) per voxel, maybe over several bindings from @binding(4) on.

struct Params {
  size: vec4<u32>, // Lz, Ly, Lx of the field (a block of the full stack, or all of it)
  len: vec4<f32>, // Lz, Ly, Lx of the full stack as floats
  last: vec4<f32>, // L - 1 per axis of the full stack
  start: vec4<u32>, // offset of each axis' table in `starts`
  origin: vec4<i32>, // the field's first voxel in the full stack (0 without a frame)
  niter: u32,
  // 1.0, read at run time: every product that feeds a sum is multiplied by it, so that a compiler
  // which fuses multiply-adds (WGSL allows it) can only fuse this exact product, and the result
  // keeps the separately rounded products of the float32 reference
  one: f32,
}

@group(0) @binding(0) var<uniform> P: Params;
// normalised start coordinate of every voxel index, per axis (computed on the host, exact)
@group(0) @binding(1) var<storage, read> starts: array<f32>;
@group(0) @binding(2) var<storage, read> cells: array<u32>;
@group(0) @binding(3) var<storage, read_write> ends: array<i32>;

// the field (z, y, x) at full-stack voxel g, or zeros outside the field
fn corner(g: vec3<i32>) -> vec3<f32> {
  let v = g - P.origin.xyz;
  if (any(v < vec3<i32>(0)) || any(v >= vec3<i32>(P.size.xyz))) {
    return vec3<f32>(0.0);
  }
  return field_get((u32(v.x) * P.size.y + u32(v.y)) * P.size.z + u32(v.z)).xyz;
}

// grid_sampler_unnormalize(align_corners=False): ((u + 1) * L - 1) / 2
fn unnormalize(u: vec3<f32>) -> vec3<f32> {
  return ((u + 1.0) * P.len.xyz * P.one - 1.0) * 0.5;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= arrayLength(&cells)) {
    return;
  }
  let p = cells[i];
  let yx = P.size.y * P.size.z;
  var u = vec3<f32>(
    starts[P.start.x + p / yx],
    starts[P.start.y + (p % yx) / P.size.z],
    starts[P.start.z + p % P.size.z],
  );
  for (var t = 0u; t < P.niter; t++) {
    let c = unnormalize(u); // (z, y, x) in voxels
    let f0 = floor(c);
    let f1 = f0 + 1.0;
    let lo = c - f0; // distance to the lower corner per axis
    let hi = f1 - c; // distance to the upper corner per axis
    let i0 = vec3<i32>(f0);
    // weight of a corner = product over axes of the distance to the opposite corner, x * y * z
    var acc = corner(i0) * (hi.z * hi.y * hi.x) * P.one;
    acc += corner(i0 + vec3<i32>(0, 0, 1)) * (lo.z * hi.y * hi.x) * P.one;
    acc += corner(i0 + vec3<i32>(0, 1, 0)) * (hi.z * lo.y * hi.x) * P.one;
    acc += corner(i0 + vec3<i32>(0, 1, 1)) * (lo.z * lo.y * hi.x) * P.one;
    acc += corner(i0 + vec3<i32>(1, 0, 0)) * (hi.z * hi.y * lo.x) * P.one;
    acc += corner(i0 + vec3<i32>(1, 0, 1)) * (lo.z * hi.y * lo.x) * P.one;
    acc += corner(i0 + vec3<i32>(1, 1, 0)) * (hi.z * lo.y * lo.x) * P.one;
    acc += corner(i0 + vec3<i32>(1, 1, 1)) * (lo.z * lo.y * lo.x) * P.one;
    u = clamp(u + acc, vec3<f32>(-1.0), vec3<f32>(1.0));
  }
  let end = vec3<i32>(((u + 1.0) * 0.5) * P.last.xyz) - P.origin.xyz;
  ends[3u * i] = end.x;
  ends[3u * i + 1u] = end.y;
  ends[3u * i + 2u] = end.z;
}
