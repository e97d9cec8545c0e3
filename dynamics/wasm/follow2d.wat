;; 2-D flow following (dynamics/follow_flows.ts `follow2D` + `integrate`), bit-identical to the
;; TypeScript reference: every Math.fround of a double op on float32 operands is the f32 op,
;; every value the reference keeps in double (the - 0.5, the bilinear fractions) is f64 here,
;; rounded to f32 (demote) exactly where the reference rounds.
;;
;; Memory (imported, sized per job): the field in normalised units, (x, y) interleaved per pixel,
;; at byte 0 (2 * ly * lx f32); the points' (y, x) normalised start states at `pts` (2 * np f32),
;; overwritten by their final states.
(module
  (import "env" "mem" (memory 1))
  (global $ly (mut i32) (i32.const 0))
  (global $lx (mut i32) (i32.const 0))
  (global $oy (mut i32) (i32.const 0))
  (global $ox (mut i32) (i32.const 0))
  (global $hy (mut f32) (f32.const 0))
  (global $hx (mut f32) (f32.const 0))

  ;; field value at f32 index `k` when `in`, else 0 (border corners: zero padding)
  (func $at (param $k i32) (param $in i32) (result f32)
    (if (result f32) (local.get $in)
      (then (f32.load (i32.shl (local.get $k) (i32.const 2))))
      (else (f32.const 0))))

  (func $clamp1 (param $v f32) (result f32)
    (select (f32.const -1)
      (select (f32.const 1) (local.get $v) (f32.gt (local.get $v) (f32.const 1)))
      (f32.lt (local.get $v) (f32.const -1))))

  ;; one Euler step of the state (uy, ux): grid_sample's bilinear read, zero padding
  (func $step (param $uy f32) (param $ux f32) (result f32 f32)
    (local $iy f64) (local $ix f64) (local $fy f64) (local $fx f64) (local $gy0 i32) (local $gx0 i32)
    (local $nn f32) (local $s f32) (local $w f32) (local $e f32)
    (local $wnw f32) (local $wne f32) (local $wsw f32) (local $wse f32)
    (local $y0 i32) (local $x0 i32) (local $k i32) (local $k2 i32)
    (local $gx f32) (local $gy f32)
    (local $yIn0 i32) (local $yIn1 i32) (local $xIn0 i32) (local $xIn1 i32)
    ;; i = f(f(u + 1) * L/2) - 0.5, the subtraction in double (L/2 is a float32: L < 2^23)
    (local.set $iy (f64.sub (f64.promote_f32
      (f32.mul (f32.add (local.get $uy) (f32.const 1)) (global.get $hy))) (f64.const 0.5)))
    (local.set $ix (f64.sub (f64.promote_f32
      (f32.mul (f32.add (local.get $ux) (f32.const 1)) (global.get $hx))) (f64.const 0.5)))
    ;; the corner (the reference's ((i + 1) | 0) - 1 is the floor, as i >= -0.5) and the
    ;; fractions: the reference rounds them to float32 when i < 0.5; when i >= 0.5 they (and 1 -
    ;; them) are float32 values already, so rounding always changes nothing
    (local.set $fy (f64.floor (local.get $iy)))
    (local.set $fx (f64.floor (local.get $ix)))
    (local.set $nn (f32.demote_f64 (f64.sub (local.get $iy) (local.get $fy))))
    (local.set $w (f32.demote_f64 (f64.sub (local.get $ix) (local.get $fx))))
    (local.set $gy0 (i32.trunc_sat_f64_s (local.get $fy)))
    (local.set $gx0 (i32.trunc_sat_f64_s (local.get $fx)))
    (local.set $s (f32.sub (f32.const 1) (local.get $nn)))
    (local.set $e (f32.sub (f32.const 1) (local.get $w)))
    (local.set $wnw (f32.mul (local.get $s) (local.get $e)))
    (local.set $wne (f32.mul (local.get $s) (local.get $w)))
    (local.set $wsw (f32.mul (local.get $nn) (local.get $e)))
    (local.set $wse (f32.mul (local.get $nn) (local.get $w)))
    ;; corner in the block, its f32 index in the field
    (local.set $y0 (i32.sub (local.get $gy0) (global.get $oy)))
    (local.set $x0 (i32.sub (local.get $gx0) (global.get $ox)))
    (local.set $k (i32.shl
      (i32.add (i32.mul (local.get $y0) (global.get $lx)) (local.get $x0)) (i32.const 1)))
    (local.set $k2 (i32.add (local.get $k) (i32.shl (global.get $lx) (i32.const 1))))
    (if (i32.and
          (i32.and (i32.ge_s (local.get $y0) (i32.const 0)) (i32.ge_s (local.get $x0) (i32.const 0)))
          (i32.and
            (i32.lt_s (i32.add (local.get $y0) (i32.const 1)) (global.get $ly))
            (i32.lt_s (i32.add (local.get $x0) (i32.const 1)) (global.get $lx))))
      (then
        (local.set $k (i32.shl (local.get $k) (i32.const 2)))
        (local.set $k2 (i32.shl (local.get $k2) (i32.const 2)))
        (local.set $gx (f32.add (f32.add (f32.add
          (f32.mul (f32.load (local.get $k)) (local.get $wnw))
          (f32.mul (f32.load offset=8 (local.get $k)) (local.get $wne)))
          (f32.mul (f32.load (local.get $k2)) (local.get $wsw)))
          (f32.mul (f32.load offset=8 (local.get $k2)) (local.get $wse))))
        (local.set $gy (f32.add (f32.add (f32.add
          (f32.mul (f32.load offset=4 (local.get $k)) (local.get $wnw))
          (f32.mul (f32.load offset=12 (local.get $k)) (local.get $wne)))
          (f32.mul (f32.load offset=4 (local.get $k2)) (local.get $wsw)))
          (f32.mul (f32.load offset=12 (local.get $k2)) (local.get $wse)))))
      (else
        (local.set $yIn0 (i32.and (i32.ge_s (local.get $y0) (i32.const 0))
          (i32.lt_s (local.get $y0) (global.get $ly))))
        (local.set $yIn1 (i32.and (i32.ge_s (local.get $y0) (i32.const -1))
          (i32.lt_s (i32.add (local.get $y0) (i32.const 1)) (global.get $ly))))
        (local.set $xIn0 (i32.and (i32.ge_s (local.get $x0) (i32.const 0))
          (i32.lt_s (local.get $x0) (global.get $lx))))
        (local.set $xIn1 (i32.and (i32.ge_s (local.get $x0) (i32.const -1))
          (i32.lt_s (i32.add (local.get $x0) (i32.const 1)) (global.get $lx))))
        (local.set $gx (f32.add (f32.add (f32.add
          (f32.mul (call $at (local.get $k)
            (i32.and (local.get $yIn0) (local.get $xIn0))) (local.get $wnw))
          (f32.mul (call $at (i32.add (local.get $k) (i32.const 2))
            (i32.and (local.get $yIn0) (local.get $xIn1))) (local.get $wne)))
          (f32.mul (call $at (local.get $k2)
            (i32.and (local.get $yIn1) (local.get $xIn0))) (local.get $wsw)))
          (f32.mul (call $at (i32.add (local.get $k2) (i32.const 2))
            (i32.and (local.get $yIn1) (local.get $xIn1))) (local.get $wse))))
        (local.set $gy (f32.add (f32.add (f32.add
          (f32.mul (call $at (i32.add (local.get $k) (i32.const 1))
            (i32.and (local.get $yIn0) (local.get $xIn0))) (local.get $wnw))
          (f32.mul (call $at (i32.add (local.get $k) (i32.const 3))
            (i32.and (local.get $yIn0) (local.get $xIn1))) (local.get $wne)))
          (f32.mul (call $at (i32.add (local.get $k2) (i32.const 1))
            (i32.and (local.get $yIn1) (local.get $xIn0))) (local.get $wsw)))
          (f32.mul (call $at (i32.add (local.get $k2) (i32.const 3))
            (i32.and (local.get $yIn1) (local.get $xIn1))) (local.get $wse))))))
    (call $clamp1 (f32.add (local.get $uy) (local.get $gy)))
    (call $clamp1 (f32.add (local.get $ux) (local.get $gx))))

  ;; Runs `niter` steps for each of the `np` points at byte `pts`, in blocks of 256 that advance
  ;; together (their independent float chains overlap on the CPU), stopping a point once its state
  ;; repeats (Brent's cycle detection, plus periods 1 and 2): only the remainder of the steps
  ;; modulo the period is then run. Scratch at byte `tmp` (256 * 36 bytes): per point of a block
  ;; its previous state (qy, qx), checkpoint (cy, cx), checkpoint step, steps since, power (8
  ;; words), then the list of active points.
  (func (export "follow2d")
    (param $pts i32) (param $np i32) (param $niter i32) (param $tmp i32)
    (param $ly i32) (param $lx i32) (param $oy i32) (param $ox i32) (param $hy f32) (param $hx f32)
    (local $b0 i32) (local $nb i32) (local $j i32) (local $n i32) (local $kept i32)
    (local $a i32) (local $r i32) (local $act i32)
    (local $uy f32) (local $ux f32) (local $sy f32) (local $sx f32)
    (local $t i32) (local $done i32) (local $lam i32) (local $left i32)
    (global.set $ly (local.get $ly))
    (global.set $lx (local.get $lx))
    (global.set $oy (local.get $oy))
    (global.set $ox (local.get $ox))
    (global.set $hy (local.get $hy))
    (global.set $hx (local.get $hx))
    (local.set $act (i32.add (local.get $tmp) (i32.const 8192)))
    (block $blocks
      (loop $block
        (br_if $blocks (i32.ge_u (local.get $b0) (local.get $np)))
        (local.set $nb (i32.sub (local.get $np) (local.get $b0)))
        (if (i32.gt_u (local.get $nb) (i32.const 256)) (then (local.set $nb (i32.const 256))))
        (local.set $j (i32.const 0))
        (block $inited
          (loop $init
            (br_if $inited (i32.ge_u (local.get $j) (local.get $nb)))
            (local.set $a (i32.add (local.get $pts)
              (i32.shl (i32.add (local.get $b0) (local.get $j)) (i32.const 3))))
            (local.set $r (i32.add (local.get $tmp) (i32.shl (local.get $j) (i32.const 5))))
            (f32.store (local.get $r) (f32.const nan))
            (f32.store offset=4 (local.get $r) (f32.const nan))
            (f32.store offset=8 (local.get $r) (f32.load (local.get $a)))
            (f32.store offset=12 (local.get $r) (f32.load offset=4 (local.get $a)))
            (i32.store offset=16 (local.get $r) (i32.const 0))
            (i32.store offset=20 (local.get $r) (i32.const 0))
            (i32.store offset=24 (local.get $r) (i32.const 1))
            (i32.store (i32.add (local.get $act) (i32.shl (local.get $j) (i32.const 2)))
              (local.get $j))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $init)))
        (local.set $n (local.get $nb))
        (local.set $t (i32.const 0))
        (block $stepped
          (loop $steps
            (br_if $stepped (i32.or (i32.ge_s (local.get $t) (local.get $niter))
              (i32.eqz (local.get $n))))
            (local.set $done (i32.add (local.get $t) (i32.const 1)))
            (local.set $kept (i32.const 0))
            (local.set $j (i32.const 0)) ;; index in the active list
            (block $swept
              (loop $sweep
                (br_if $swept (i32.ge_u (local.get $j) (local.get $n)))
                (block $next
                  (local.set $r (i32.load (i32.add (local.get $act)
                    (i32.shl (local.get $j) (i32.const 2)))))
                  (local.set $a (i32.add (local.get $pts)
                    (i32.shl (i32.add (local.get $b0) (local.get $r)) (i32.const 3))))
                  (local.set $r (i32.add (local.get $tmp) (i32.shl (local.get $r) (i32.const 5))))
                  (local.set $uy (f32.load (local.get $a)))
                  (local.set $ux (f32.load offset=4 (local.get $a)))
                  (call $step (local.get $uy) (local.get $ux))
                  (local.set $sx)
                  (local.set $sy)
                  ;; fixed point
                  (br_if $next (i32.and (f32.eq (local.get $sy) (local.get $uy))
                    (f32.eq (local.get $sx) (local.get $ux))))
                  ;; 2-cycle: an even number of steps left lands on the new state, an odd one on
                  ;; the old
                  (if (i32.and (f32.eq (local.get $sy) (f32.load (local.get $r)))
                        (f32.eq (local.get $sx) (f32.load offset=4 (local.get $r))))
                    (then
                      (if (i32.eqz (i32.and (i32.sub (local.get $niter) (local.get $done))
                            (i32.const 1)))
                        (then
                          (f32.store (local.get $a) (local.get $sy))
                          (f32.store offset=4 (local.get $a) (local.get $sx))))
                      (br $next)))
                  (f32.store (local.get $r) (local.get $uy))
                  (f32.store offset=4 (local.get $r) (local.get $ux))
                  (local.set $uy (local.get $sy))
                  (local.set $ux (local.get $sx))
                  ;; periodic since the checkpoint: only the remainder of the steps matters
                  (if (i32.and (f32.eq (local.get $uy) (f32.load offset=8 (local.get $r)))
                        (f32.eq (local.get $ux) (f32.load offset=12 (local.get $r))))
                    (then
                      (local.set $left (i32.rem_s (i32.sub (local.get $niter) (local.get $done))
                        (i32.sub (local.get $done) (i32.load offset=16 (local.get $r)))))
                      (block $rest
                        (loop $more
                          (br_if $rest (i32.le_s (local.get $left) (i32.const 0)))
                          (call $step (local.get $uy) (local.get $ux))
                          (local.set $ux)
                          (local.set $uy)
                          (local.set $left (i32.sub (local.get $left) (i32.const 1)))
                          (br $more)))
                      (f32.store (local.get $a) (local.get $uy))
                      (f32.store offset=4 (local.get $a) (local.get $ux))
                      (br $next)))
                  (f32.store (local.get $a) (local.get $uy))
                  (f32.store offset=4 (local.get $a) (local.get $ux))
                  (local.set $lam (i32.add (i32.load offset=20 (local.get $r)) (i32.const 1)))
                  (if (i32.eq (local.get $lam) (i32.load offset=24 (local.get $r)))
                    (then
                      (f32.store offset=8 (local.get $r) (local.get $uy))
                      (f32.store offset=12 (local.get $r) (local.get $ux))
                      (i32.store offset=16 (local.get $r) (local.get $done))
                      (i32.store offset=24 (local.get $r)
                        (i32.shl (i32.load offset=24 (local.get $r)) (i32.const 1)))
                      (local.set $lam (i32.const 0))))
                  (i32.store offset=20 (local.get $r) (local.get $lam))
                  ;; still active
                  (i32.store (i32.add (local.get $act) (i32.shl (local.get $kept) (i32.const 2)))
                    (i32.load (i32.add (local.get $act) (i32.shl (local.get $j) (i32.const 2)))))
                  (local.set $kept (i32.add (local.get $kept) (i32.const 1))))
                (local.set $j (i32.add (local.get $j) (i32.const 1)))
                (br $sweep)))
            (local.set $n (local.get $kept))
            (local.set $t (local.get $done))
            (br $steps)))
        (local.set $b0 (i32.add (local.get $b0) (i32.const 256)))
        (br $block)))
  )
)
