;; Hand-written wasm SIMD (128-bit) kernels over the tfjs wasm backend's own heap: the module
;; imports that heap as its memory and every pointer below is a byte offset into it.
;; `npm run build:simd` compiles this file (wabt) into ./wasm_binary.ts, twice: memory "shared"
;; (the threaded tfjs wasm build) and not; test/backend/simd.test.ts checks that the embedded
;; bytes are this file's. Pointers need no alignment (v128.load/store accept any).
(module
  (import "env" "memory" (memory 1 65536 shared))

  ;; AdamW, one parameter of n float32 values (PyTorch's torch.optim.AdamW, float32 throughout):
  ;;   g = grad * gs;  m = b1 m + c1 g;  v = b2 v + c2 g^2      (c1 = 1 - b1, c2 = 1 - b2, rounded from float64
  ;;   p = p * decay - step * m / (sqrt(v) * inv + eps)       as PyTorch does; step = lr / (1 - b1^t),
  ;;                                                          inv = 1 / sqrt(1 - b2^t))
  ;; Outputs may not overlap the inputs except in place (po = p, mo = m, vo = v).
  (func (export "adamw")
    (param $p i32) (param $g i32) (param $m i32) (param $v i32)
    (param $po i32) (param $mo i32) (param $vo i32) (param $n i32)
    (param $b1 f32) (param $c1 f32) (param $b2 f32) (param $c2 f32) (param $step f32) (param $inv f32) (param $eps f32) (param $decay f32) (param $gs f32)
    (local $o i32) (local $end i32) (local $bytes i32)
    (local $gv v128) (local $mv v128) (local $vv v128)
    (local $gf f32) (local $mf f32) (local $vf f32)
    (local.set $bytes (i32.shl (local.get $n) (i32.const 2)))
    (local.set $end (i32.and (local.get $bytes) (i32.const -16)))
    (block $done
      (loop $vec
        (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
        (local.set $gv (f32x4.mul (v128.load (i32.add (local.get $g) (local.get $o))) (f32x4.splat (local.get $gs))))
        (local.set $mv (f32x4.add
          (f32x4.mul (v128.load (i32.add (local.get $m) (local.get $o))) (f32x4.splat (local.get $b1)))
          (f32x4.mul (local.get $gv) (f32x4.splat (local.get $c1)))))
        (local.set $vv (f32x4.add
          (f32x4.mul (v128.load (i32.add (local.get $v) (local.get $o))) (f32x4.splat (local.get $b2)))
          (f32x4.mul (f32x4.mul (local.get $gv) (local.get $gv)) (f32x4.splat (local.get $c2)))))
        (v128.store (i32.add (local.get $mo) (local.get $o)) (local.get $mv))
        (v128.store (i32.add (local.get $vo) (local.get $o)) (local.get $vv))
        (v128.store (i32.add (local.get $po) (local.get $o))
          (f32x4.sub
            (f32x4.mul (v128.load (i32.add (local.get $p) (local.get $o))) (f32x4.splat (local.get $decay)))
            (f32x4.div
              (f32x4.mul (local.get $mv) (f32x4.splat (local.get $step)))
              (f32x4.add (f32x4.mul (f32x4.sqrt (local.get $vv)) (f32x4.splat (local.get $inv))) (f32x4.splat (local.get $eps))))))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (br $vec)))
    ;; the last n % 4 values, one at a time, same formulas
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $o) (local.get $bytes)))
        (local.set $gf (f32.mul (f32.load (i32.add (local.get $g) (local.get $o))) (local.get $gs)))
        (local.set $mf (f32.add
          (f32.mul (f32.load (i32.add (local.get $m) (local.get $o))) (local.get $b1))
          (f32.mul (local.get $gf) (local.get $c1))))
        (local.set $vf (f32.add
          (f32.mul (f32.load (i32.add (local.get $v) (local.get $o))) (local.get $b2))
          (f32.mul (f32.mul (local.get $gf) (local.get $gf)) (local.get $c2))))
        (f32.store (i32.add (local.get $mo) (local.get $o)) (local.get $mf))
        (f32.store (i32.add (local.get $vo) (local.get $o)) (local.get $vf))
        (f32.store (i32.add (local.get $po) (local.get $o))
          (f32.sub
            (f32.mul (f32.load (i32.add (local.get $p) (local.get $o))) (local.get $decay))
            (f32.div
              (f32.mul (local.get $mf) (local.get $step))
              (f32.add (f32.mul (f32.sqrt (local.get $vf)) (local.get $inv)) (local.get $eps)))))
        (local.set $o (i32.add (local.get $o) (i32.const 4)))
        (br $tail))))

  ;; Sum of squares of n float32 values, in float64 (two f64x2 accumulators).
  (func (export "sumSquares") (param $x i32) (param $n i32) (result f64)
    (local $o i32) (local $end i32) (local $bytes i32)
    (local $xv v128) (local $lo v128) (local $hi v128) (local $f f64)
    (local.set $bytes (i32.shl (local.get $n) (i32.const 2)))
    (local.set $end (i32.and (local.get $bytes) (i32.const -16)))
    (local.set $lo (f64x2.splat (f64.const 0)))
    (local.set $hi (f64x2.splat (f64.const 0)))
    (block $done
      (loop $vec
        (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
        (local.set $xv (v128.load (i32.add (local.get $x) (local.get $o))))
        (local.set $lo (f64x2.add (local.get $lo)
          (f64x2.mul (f64x2.promote_low_f32x4 (local.get $xv)) (f64x2.promote_low_f32x4 (local.get $xv)))))
        (local.set $xv (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $xv) (local.get $xv)))
        (local.set $hi (f64x2.add (local.get $hi)
          (f64x2.mul (f64x2.promote_low_f32x4 (local.get $xv)) (f64x2.promote_low_f32x4 (local.get $xv)))))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (br $vec)))
    (local.set $lo (f64x2.add (local.get $lo) (local.get $hi)))
    (local.set $f (f64.add (f64x2.extract_lane 0 (local.get $lo)) (f64x2.extract_lane 1 (local.get $lo))))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $o) (local.get $bytes)))
        (local.set $f (f64.add (local.get $f)
          (f64.mul (f64.promote_f32 (f32.load (i32.add (local.get $x) (local.get $o))))
                   (f64.promote_f32 (f32.load (i32.add (local.get $x) (local.get $o)))))))
        (local.set $o (i32.add (local.get $o) (i32.const 4)))
        (br $tail)))
    (local.get $f))

  ;; Per-channel sums over [rows, c] float32 arrays u, w (channels fastest, c a multiple of 4), in
  ;; float64: s1[j] = sum (u - us[j]),  s2[j] = sum (u - us[j]) (w - ws[j]), us / ws float32 [c]
  ;; (shifts), s1 / s2 float64 [c] (written). Rows in chunks of ~32 KB of u, so that the c / 4
  ;; channel blocks re-read a chunk from cache; per block, four f64x2 accumulators.
  (func (export "channelSums")
    (param $u i32) (param $us i32) (param $w i32) (param $ws i32) (param $rows i32) (param $c i32) (param $s1 i32) (param $s2 i32)
    (local $rowBytes i32) (local $chunk i32) (local $r0 i32) (local $r1 i32) (local $j i32) (local $o i32) (local $end i32)
    (local $uLo v128) (local $uHi v128) (local $wLo v128) (local $wHi v128)
    (local $a1 v128) (local $a2 v128) (local $b1 v128) (local $b2 v128)
    (local $x v128) (local $eLo v128) (local $eHi v128)
    (local.set $rowBytes (i32.shl (local.get $c) (i32.const 2)))
    ;; zero the sums
    (local.set $j (i32.const 0))
    (block $z_done (loop $z
      (br_if $z_done (i32.ge_u (local.get $j) (local.get $c)))
      (f64.store (i32.add (local.get $s1) (i32.shl (local.get $j) (i32.const 3))) (f64.const 0))
      (f64.store (i32.add (local.get $s2) (i32.shl (local.get $j) (i32.const 3))) (f64.const 0))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $z)))
    (local.set $chunk (i32.div_u (i32.const 8192) (local.get $c)))
    (if (i32.eqz (local.get $chunk)) (then (local.set $chunk (i32.const 1))))
    (local.set $r0 (i32.const 0))
    (block $chunks_done (loop $chunks
      (br_if $chunks_done (i32.ge_u (local.get $r0) (local.get $rows)))
      (local.set $r1 (i32.add (local.get $r0) (local.get $chunk)))
      (if (i32.gt_u (local.get $r1) (local.get $rows)) (then (local.set $r1 (local.get $rows))))
      (local.set $j (i32.const 0))
      (block $blocks_done (loop $blocks
        (br_if $blocks_done (i32.ge_u (local.get $j) (local.get $c)))
        ;; this block's shifts, as float64 pairs
        (local.set $x (v128.load (i32.add (local.get $us) (i32.shl (local.get $j) (i32.const 2)))))
        (local.set $uLo (f64x2.promote_low_f32x4 (local.get $x)))
        (local.set $uHi (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $x) (local.get $x))))
        (local.set $x (v128.load (i32.add (local.get $ws) (i32.shl (local.get $j) (i32.const 2)))))
        (local.set $wLo (f64x2.promote_low_f32x4 (local.get $x)))
        (local.set $wHi (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $x) (local.get $x))))
        (local.set $a1 (f64x2.splat (f64.const 0)))
        (local.set $a2 (f64x2.splat (f64.const 0)))
        (local.set $b1 (f64x2.splat (f64.const 0)))
        (local.set $b2 (f64x2.splat (f64.const 0)))
        (local.set $o (i32.add (i32.mul (local.get $r0) (local.get $rowBytes)) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $end (i32.mul (local.get $r1) (local.get $rowBytes)))
        (block $rows_done (loop $row
          (br_if $rows_done (i32.ge_u (local.get $o) (local.get $end)))
          (local.set $x (v128.load (i32.add (local.get $u) (local.get $o))))
          (local.set $eLo (f64x2.sub (f64x2.promote_low_f32x4 (local.get $x)) (local.get $uLo)))
          (local.set $eHi (f64x2.sub (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $x) (local.get $x))) (local.get $uHi)))
          (local.set $a1 (f64x2.add (local.get $a1) (local.get $eLo)))
          (local.set $a2 (f64x2.add (local.get $a2) (local.get $eHi)))
          (local.set $x (v128.load (i32.add (local.get $w) (local.get $o))))
          (local.set $b1 (f64x2.add (local.get $b1) (f64x2.mul (local.get $eLo)
            (f64x2.sub (f64x2.promote_low_f32x4 (local.get $x)) (local.get $wLo)))))
          (local.set $b2 (f64x2.add (local.get $b2) (f64x2.mul (local.get $eHi)
            (f64x2.sub (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $x) (local.get $x))) (local.get $wHi)))))
          (local.set $o (i32.add (local.get $o) (local.get $rowBytes)))
          (br $row)))
        ;; add the chunk's sums into s1 / s2 (channels j .. j+3: bytes 8j .. 8j+31)
        (local.set $o (i32.shl (local.get $j) (i32.const 3)))
        (v128.store (i32.add (local.get $s1) (local.get $o)) (f64x2.add (v128.load (i32.add (local.get $s1) (local.get $o))) (local.get $a1)))
        (v128.store offset=16 (i32.add (local.get $s1) (local.get $o)) (f64x2.add (v128.load offset=16 (i32.add (local.get $s1) (local.get $o))) (local.get $a2)))
        (v128.store (i32.add (local.get $s2) (local.get $o)) (f64x2.add (v128.load (i32.add (local.get $s2) (local.get $o))) (local.get $b1)))
        (v128.store offset=16 (i32.add (local.get $s2) (local.get $o)) (f64x2.add (v128.load offset=16 (i32.add (local.get $s2) (local.get $o))) (local.get $b2)))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $blocks)))
      (local.set $r0 (local.get $r1))
      (br $chunks))))

  ;; out[r, j] = max(floor, a[j] u[r, j] + b[j] w[r, j] + k[j]) over [rows, c] float32 (c a
  ;; multiple of 4; a, b, k float32 [c]; floor 0 for a ReLU, -infinity for none; NaN stays NaN):
  ;; batch norm's output (b = 0, or 1 with a residual w) and its input gradient.
  (func (export "channelAffine2")
    (param $u i32) (param $w i32) (param $a i32) (param $b i32) (param $k i32) (param $out i32) (param $rows i32) (param $c i32) (param $floor f32)
    (local $rowBytes i32) (local $o i32) (local $j i32) (local $end i32) (local $row i32) (local $fl v128)
    (local.set $fl (f32x4.splat (local.get $floor)))
    (local.set $rowBytes (i32.shl (local.get $c) (i32.const 2)))
    (local.set $end (i32.mul (local.get $rows) (local.get $rowBytes)))
    (block $done (loop $rowsL
      (br_if $done (i32.ge_u (local.get $row) (local.get $end)))
      (local.set $j (i32.const 0))
      (block $row_done (loop $cols
        (br_if $row_done (i32.ge_u (local.get $j) (local.get $rowBytes)))
        (local.set $o (i32.add (local.get $row) (local.get $j)))
        (v128.store (i32.add (local.get $out) (local.get $o))
          (f32x4.max (local.get $fl)
            (f32x4.add
              (f32x4.add
                (f32x4.mul (v128.load (i32.add (local.get $a) (local.get $j))) (v128.load (i32.add (local.get $u) (local.get $o))))
                (f32x4.mul (v128.load (i32.add (local.get $b) (local.get $j))) (v128.load (i32.add (local.get $w) (local.get $o)))))
              (v128.load (i32.add (local.get $k) (local.get $j))))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $cols)))
      (local.set $row (i32.add (local.get $row) (local.get $rowBytes)))
      (br $rowsL))))

  ;; out = dy where y > 0, else 0, over n float32 values: the gradient through a ReLU whose output
  ;; is y. out may be dy (in place).
  (func (export "reluGrad") (param $dy i32) (param $y i32) (param $out i32) (param $n i32)
    (local $o i32) (local $end i32) (local $bytes i32)
    (local.set $bytes (i32.shl (local.get $n) (i32.const 2)))
    (local.set $end (i32.and (local.get $bytes) (i32.const -16)))
    (block $done (loop $vec
      (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
      (v128.store (i32.add (local.get $out) (local.get $o))
        (v128.and (v128.load (i32.add (local.get $dy) (local.get $o)))
          (f32x4.gt (v128.load (i32.add (local.get $y) (local.get $o))) (f32x4.splat (f32.const 0)))))
      (local.set $o (i32.add (local.get $o) (i32.const 16)))
      (br $vec)))
    (block $tail_done (loop $tail
      (br_if $tail_done (i32.ge_u (local.get $o) (local.get $bytes)))
      (f32.store (i32.add (local.get $out) (local.get $o))
        (select (f32.load (i32.add (local.get $dy) (local.get $o))) (f32.const 0)
          (f32.gt (f32.load (i32.add (local.get $y) (local.get $o))) (f32.const 0))))
      (local.set $o (i32.add (local.get $o) (i32.const 4)))
      (br $tail))))

  ;; MaxPoolGrad, NHWC float32 with C a multiple of 4: dx (zeroed here) gets each window's dy at
  ;; the window's first maximum of x (strictly greater replaces, as tfjs and PyTorch pick; padding
  ;; cells are not candidates; a window without a value above -infinity passes nothing). Four
  ;; channels at a time: the best values and their byte offsets in lanes, then four scalar adds.
  (func (export "maxPoolGrad")
    (param $x i32) (param $dy i32) (param $dx i32)
    (param $batch i32) (param $h i32) (param $w i32) (param $c i32) (param $oh i32) (param $ow i32)
    (param $kh i32) (param $kw i32) (param $sh i32) (param $sw i32) (param $pt i32) (param $pl i32)
    (local $b i32) (local $oy i32) (local $ox i32) (local $j i32) (local $ky i32) (local $kx i32)
    (local $iy i32) (local $ix i32) (local $off i32) (local $rowBytes i32) (local $o i32)
    (local $best v128) (local $idx v128) (local $v v128) (local $m v128) (local $g v128) (local $lanes v128)
    (local.set $rowBytes (i32.shl (local.get $c) (i32.const 2)))
    (memory.fill (local.get $dx) (i32.const 0)
      (i32.mul (i32.mul (i32.mul (local.get $batch) (local.get $h)) (local.get $w)) (local.get $rowBytes)))
    (local.set $lanes (v128.const i32x4 0 4 8 12))
    (block $b_done (loop $bL
      (br_if $b_done (i32.ge_u (local.get $b) (local.get $batch)))
      (local.set $oy (i32.const 0))
      (block $oy_done (loop $oyL
        (br_if $oy_done (i32.ge_u (local.get $oy) (local.get $oh)))
        (local.set $ox (i32.const 0))
        (block $ox_done (loop $oxL
          (br_if $ox_done (i32.ge_u (local.get $ox) (local.get $ow)))
          (local.set $j (i32.const 0))
          (block $j_done (loop $jL
            (br_if $j_done (i32.ge_u (local.get $j) (local.get $rowBytes)))
            (local.set $best (f32x4.splat (f32.const -inf)))
            (local.set $idx (i32x4.splat (i32.const -1)))
            (local.set $ky (i32.const 0))
            (block $ky_done (loop $kyL
              (br_if $ky_done (i32.ge_u (local.get $ky) (local.get $kh)))
              (local.set $iy (i32.sub (i32.add (i32.mul (local.get $oy) (local.get $sh)) (local.get $ky)) (local.get $pt)))
              (if (i32.and (i32.ge_s (local.get $iy) (i32.const 0)) (i32.lt_s (local.get $iy) (local.get $h))) (then
                (local.set $kx (i32.const 0))
                (block $kx_done (loop $kxL
                  (br_if $kx_done (i32.ge_u (local.get $kx) (local.get $kw)))
                  (local.set $ix (i32.sub (i32.add (i32.mul (local.get $ox) (local.get $sw)) (local.get $kx)) (local.get $pl)))
                  (if (i32.and (i32.ge_s (local.get $ix) (i32.const 0)) (i32.lt_s (local.get $ix) (local.get $w))) (then
                    ;; byte offset of x[b, iy, ix, j/4 .. j/4+3] from the tensor start
                    (local.set $off (i32.add
                      (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $h)) (local.get $iy)) (local.get $w)) (local.get $ix)) (local.get $rowBytes))
                      (local.get $j)))
                    (local.set $v (v128.load (i32.add (local.get $x) (local.get $off))))
                    (local.set $m (f32x4.gt (local.get $v) (local.get $best)))
                    (local.set $best (v128.bitselect (local.get $v) (local.get $best) (local.get $m)))
                    (local.set $idx (v128.bitselect (i32x4.add (i32x4.splat (local.get $off)) (local.get $lanes)) (local.get $idx) (local.get $m)))))
                  (local.set $kx (i32.add (local.get $kx) (i32.const 1)))
                  (br $kxL)))))
              (local.set $ky (i32.add (local.get $ky) (i32.const 1)))
              (br $kyL)))
            (local.set $g (v128.load (i32.add (local.get $dy) (i32.add
              (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $oh)) (local.get $oy)) (local.get $ow)) (local.get $ox)) (local.get $rowBytes))
              (local.get $j)))))
            (local.set $o (i32x4.extract_lane 0 (local.get $idx)))
            (if (i32.ge_s (local.get $o) (i32.const 0)) (then
              (f32.store (i32.add (local.get $dx) (local.get $o)) (f32.add (f32.load (i32.add (local.get $dx) (local.get $o))) (f32x4.extract_lane 0 (local.get $g))))))
            (local.set $o (i32x4.extract_lane 1 (local.get $idx)))
            (if (i32.ge_s (local.get $o) (i32.const 0)) (then
              (f32.store (i32.add (local.get $dx) (local.get $o)) (f32.add (f32.load (i32.add (local.get $dx) (local.get $o))) (f32x4.extract_lane 1 (local.get $g))))))
            (local.set $o (i32x4.extract_lane 2 (local.get $idx)))
            (if (i32.ge_s (local.get $o) (i32.const 0)) (then
              (f32.store (i32.add (local.get $dx) (local.get $o)) (f32.add (f32.load (i32.add (local.get $dx) (local.get $o))) (f32x4.extract_lane 2 (local.get $g))))))
            (local.set $o (i32x4.extract_lane 3 (local.get $idx)))
            (if (i32.ge_s (local.get $o) (i32.const 0)) (then
              (f32.store (i32.add (local.get $dx) (local.get $o)) (f32.add (f32.load (i32.add (local.get $dx) (local.get $o))) (f32x4.extract_lane 3 (local.get $g))))))
            (local.set $j (i32.add (local.get $j) (i32.const 16)))
            (br $jL)))
          (local.set $ox (i32.add (local.get $ox) (i32.const 1)))
          (br $oxL)))
        (local.set $oy (i32.add (local.get $oy) (i32.const 1)))
        (br $oyL)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $bL))))
)
