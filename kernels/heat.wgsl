// One Jacobi iteration of cellpose v4's masks -> flows heat diffusion (`_extend_centers_gpu`),
// all masks at once: every mask pixel takes the sum over its stencil of the previous heat (+1
// where the neighbour is a mask centre), neighbours of another label or outside the image
// counting 0, divided by the stencil size. Background pixels are never written (stay 0).
//
// Heat is double-float ("df64"): hi + lo in two f32, about 48 significant bits, because the
// reference diffuses in float64 and the flows are differences of nearly equal heats.
//
// One invocation per mask pixel. The host prepends `STENCIL` (9 in 2D, 7 in 3D) and the chunked
// accessors, bound from @binding(1) on: `pixels_get` (linear index of each mask pixel),
// `links_get` (per mask pixel: bit s = stencil neighbour s has the same label, bit 16 + s = that
// neighbour is its mask's centre), `heat_in_get` and `heat_out_set` (vec2<f32>, per pixel).

struct Params {
  offsets: array<vec4<i32>, 3>, // linear offset of stencil neighbour s in offsets[s / 4][s % 4]
  one: f32, // 1.0, read at run time so that compilers cannot fold the df64 error terms away
  count: u32, // number of mask pixels
}

@group(0) @binding(0) var<uniform> P: Params;

// a + b = s + e exactly (Knuth's two-sum)
fn two_sum(a: f32, b: f32) -> vec2<f32> {
  let s = a + b;
  let bb = s * P.one - a;
  return vec2<f32>(s, (a - (s - bb)) + (b - bb));
}

// a + b = s + e exactly, for |a| >= |b|
fn quick_two_sum(a: f32, b: f32) -> vec2<f32> {
  let s = a + b;
  return vec2<f32>(s, b - (s * P.one - a));
}

// df64 sum of two non-negative values
fn df_add(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let s = two_sum(a.x, b.x);
  return quick_two_sum(s.x, s.y + (a.y + b.y));
}

// df64 a / d for d = 8 +- 1: q * d = 8q + (d - 8)q is exact as a two-sum, so the remainder is too
fn df_div(a: vec2<f32>, d: f32) -> vec2<f32> {
  let q = a.x / d;
  let p = two_sum(q * 8.0, q * (d - 8.0));
  let r = ((a.x - p.x) - p.y) + a.y;
  return quick_two_sum(q, r / d);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = gid.x + gid.y * nwg.x * 64u;
  if (k >= P.count) {
    return;
  }
  let i = i32(pixels_get(k));
  let links = links_get(k);
  var sum = vec2<f32>(0.0);
  for (var s = 0u; s < STENCIL; s++) {
    if ((links & (1u << s)) == 0u) {
      continue;
    }
    var t = heat_in_get(u32(i + P.offsets[s / 4u][s % 4u]));
    if ((links & (0x10000u << s)) != 0u) {
      t = df_add(t, vec2<f32>(1.0, 0.0));
    }
    sum = df_add(sum, t);
  }
  heat_out_set(u32(i), df_div(sum, f32(STENCIL)));
}
