#!/usr/bin/env bash
# smoke.sh - quick end-to-end checks of the reference engine (a developer tool;
# the real tests are the vitest suites). Needs bash, node and a C compiler;
# python3, when present, decodes every PNG independently (zlib + CRC + filters).
#   apps/gpu-worker/reference-engine/smoke.sh            all checks, plus timings
#   SMOKE_FAST=1 apps/gpu-worker/reference-engine/smoke.sh   skip the 1024x1024 timing
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN="$HERE/bin/refengine"
MODEL="$HERE/procedural-model.txt"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
export REFENGINE_LOAD_MS=20
export PYTHONDONTWRITEBYTECODE=1
PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); printf '  ok   %s\n' "$1"; }
bad() { FAIL=$((FAIL + 1)); printf '  FAIL %s\n' "$1"; }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }
HAVE_PY=0
command -v python3 >/dev/null 2>&1 && HAVE_PY=1
pngok() { # file: valid PNG (python: full decode; else signature + IEND)
  if [ "$HAVE_PY" = 1 ]; then python3 "$HERE/test/pngcheck.py" "$1" >/dev/null 2>&1
  else [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] && tail -c 8 "$1" | grep -q IEND; fi
}
run() { # run <name> [args...]: stdout -> $TMP/name.out, stderr -> $TMP/name.err, status -> RC (the model flag first)
  local name="$1"; shift
  "$BIN" -m "$MODEL" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"; RC=$?
}

echo "== build"
node "$HERE/build.mjs" --force --strict || { echo "build failed"; exit 1; }
check "binary exists" "[ -x '$BIN' ]"
check "second build is skipped" "node '$HERE/build.mjs' | grep -q 'up to date'"

echo "== png encoder self-test"
if cc -std=c11 -O2 -Wall -Wextra -Werror -o "$TMP/png_selftest" "$HERE/test/png_selftest.c" "$HERE/png.c" && \
   mkdir -p "$TMP/st" && "$TMP/png_selftest" "$TMP/st" >/dev/null; then
  if [ "$HAVE_PY" = 1 ]; then
    check "40 PNGs + 8 zlib streams decode to the exact input" "python3 - '$TMP/st' '$HERE/test' <<'EOF'
import sys, glob, zlib
sys.path.insert(0, sys.argv[2]); import pngcheck
d = sys.argv[1]
for p in glob.glob(d + '/*.png'): pngcheck.check(p, p[:-4] + '.raw')
for z in glob.glob(d + '/*.z'): assert zlib.decompress(open(z, 'rb').read()) == open(z[:-2] + '.bin', 'rb').read()
EOF"
  else echo "  skip (no python3)"; fi
else bad "png_selftest builds and runs"; fi

echo "== flags"
"$BIN" --version >"$TMP/version.out" 2>&1; RC=$?
check "--version exits 0" "[ $RC = 0 ] && grep -q '^stable-diffusion.cpp version refengine-1.0.0, commit reference (reference engine' '$TMP/version.out'"
run help --help
check "--help exits 0 and lists --sampling-method" "[ $RC = 0 ] && grep -q -- '--sampling-method' '$TMP/help.out'"
for bad_args in "--bogus" "--sample-method euler" "--schedule karras" "-M txt2img" "-W 500" "-H 12" "-W 8192" \
                "--steps 0" "--cfg-scale 1e9" "--sampling-method foo" "positional" "--scheduler nope" "-b 0" "-M vid_gen"; do
  # shellcheck disable=SC2086
  run badarg $bad_args -o "$TMP/never.png"
  check "'$bad_args' -> exit 1 with an [ERROR] line on stderr" \
    "[ $RC = 1 ] && grep -q '^\[ERROR\] [a-z_.]*:[0-9]* *- ' '$TMP/badarg.err' && [ ! -e '$TMP/never.png' ]"
done
for abort_args in "-W abc" "-W" "--steps x" "-s zz" "--cfg-scale x" "--steps 99999999999"; do
  # shellcheck disable=SC2086
  run badnum $abort_args -o "$TMP/never.png"
  check "'$abort_args' -> abort (134), as sd-cli's uncaught std::stoi exception (a bare -W reads -o as its number)" \
    "[ $RC = 134 ] && grep -q 'terminate called after throwing' '$TMP/badnum.err' && [ ! -e '$TMP/never.png' ]"
done
"$BIN" -p x -o "$TMP/never.png" >"$TMP/nomodelflag.out" 2>"$TMP/nomodelflag.err"; RC=$?
check "no -m -> exit 1, model_path/diffusion_model required" \
  "[ $RC = 1 ] && grep -q 'required: model_path/diffusion_model' '$TMP/nomodelflag.err'"

echo "== model files"
run nomodel -m "$TMP/missing.safetensors" -o "$TMP/never.png"
check "missing -m file -> exit 1, 'init model loader from file failed'" \
  "[ $RC = 1 ] && grep -q 'init model loader from file failed' '$TMP/nomodel.err'"
run dirvae --vae "$TMP" -W 64 -H 64 --steps 2 -o "$TMP/m0.png"
check "--vae pointing at a directory -> only a warning, as sd-cli" "[ $RC = 0 ] && grep -q 'loading vae from .* failed' '$TMP/dirvae.out'"
head -c 100000 /dev/zero >"$TMP/fake.safetensors"
run withmodel -m "$TMP/fake.safetensors" -W 64 -H 64 --steps 2 -o "$TMP/m1.png"
check "the last -m wins, any existing file is accepted" "[ $RC = 0 ] && pngok '$TMP/m1.png'"

echo "== defaults and output"
(cd "$TMP" && "$BIN" -m "$MODEL" >"$TMP/def.out" 2>"$TMP/def.err"); RC=$?
check "no flags: exit 0, writes ./output.png, 512x512" \
  "[ $RC = 0 ] && pngok '$TMP/output.png' && [ \"\$(od -An -tu1 -j16 -N8 '$TMP/output.png' | tr -s ' ')\" = ' 0 0 2 0 0 0 2 0' ]"
check "defaults: seed 42, 20 steps, Euler A" \
  "grep -q 'generating image: 1/1 - seed 42' '$TMP/def.out' && grep -q '20/20 - ' '$TMP/def.out' && grep -q 'sampling using Euler A method' '$TMP/def.out'"
check "stderr is empty on success" "[ ! -s '$TMP/def.err' ]"
check "save line" "grep -q \"save result image 0 to 'output.png' (success)\" '$TMP/def.out'"
check "PNG has the Software and parameters texts" \
  "grep -aq 'Pingvas reference engine - no model' '$TMP/output.png' && grep -aq 'Steps: 20, Sampler: euler_a' '$TMP/output.png'"

echo "== progress format (the worker's parser)"
check "sampling phase: exactly 20 step bars 1..20 matching the sd-cli regex; load bars never match" "node - '$TMP/def.out' <<'EOF'
const text = require('fs').readFileSync(process.argv[2], 'utf8');
const re = /(\d+)\/(\d+) - ([\d.]+)(s\/it|it\/s)/;
let phase = false, steps = [], loadBars = 0, otherBars = 0;
for (const raw of text.split(/[\r\n]/)) {
  const line = raw.replace(/\x1b\[K/g, '');
  if (line.includes('generating image: ')) phase = true;
  if (line.includes('sampling completed')) phase = false;
  const m = line.match(re);
  if (/[MG]B\/s/.test(line)) { loadBars++; if (m) process.exit(3); }
  if (!m) continue;
  if (phase) steps.push(+m[1]); else otherBars++;
}
const want = Array.from({ length: 20 }, (_, i) => i + 1).join();
if (steps.join() !== want || loadBars < 2 || otherBars < 1) process.exit(1);
EOF"
check "a newline only after the last step" "grep -c \$'20/20 - [0-9.]*\\(it/s\\|s/it\\)\\x1b\\[K\$' '$TMP/def.out' | grep -q 1"

echo "== determinism"
A=(-p "a red fox in a snowy forest at sunset" -W 256 -H 192 --steps 8)
run d1 "${A[@]}" -o "$TMP/d1.png"; run d2 "${A[@]}" -o "$TMP/d2.png"
check "same inputs -> byte-identical PNG" "cmp -s '$TMP/d1.png' '$TMP/d2.png'"
run d3 "${A[@]}" -t 8 -v -o "$TMP/d3.png"
check "-t and -v do not change the image" "cmp -s '$TMP/d1.png' '$TMP/d3.png'"
run d4 "${A[@]}" -s 43 -o "$TMP/d4.png";              check "seed changes it" "! cmp -s '$TMP/d1.png' '$TMP/d4.png'"
run d5 -p "a blue whale" -W 256 -H 192 --steps 8 -o "$TMP/d5.png"; check "prompt changes it" "! cmp -s '$TMP/d1.png' '$TMP/d5.png'"
run d6 "${A[@]}" -n "trees" -o "$TMP/d6.png";          check "negative prompt changes it" "! cmp -s '$TMP/d1.png' '$TMP/d6.png'"
run d7 "${A[@]}" --cfg-scale 12 -o "$TMP/d7.png";      check "cfg changes it" "! cmp -s '$TMP/d1.png' '$TMP/d7.png'"
for s in euler euler_a heun dpm2 'dpm++2s_a' 'dpm++2m' 'dpm++2mv2' ipndm ipndm_v lcm ddim_trailing tcd; do
  run samp "${A[@]}" --sampling-method "$s" -o "$TMP/s.png"
  check "sampler $s -> valid PNG" "[ $RC = 0 ] && pngok '$TMP/s.png'"
done
run b2 "${A[@]}" -b 3 -o "$TMP/batch.png"
check "-b 3 writes batch_0.png, batch_1.png, batch_2.png (no batch.png) with seeds 42..44" \
  "pngok '$TMP/batch_0.png' && pngok '$TMP/batch_1.png' && pngok '$TMP/batch_2.png' && [ ! -e '$TMP/batch.png' ] && grep -q 'generating image: 3/3 - seed 44' '$TMP/b2.out' && cmp -s '$TMP/batch_0.png' '$TMP/d1.png'"
run rnd "${A[@]}" -s -1 -o "$TMP/r.png"
check "negative seed -> a random seed is shown" "[ $RC = 0 ] && ! grep -q 'seed -1' '$TMP/rnd.out' && grep -q 'generating image: 1/1 - seed [0-9]' '$TMP/rnd.out'"
run small -W 8 -H 8 --steps 1 -o "$TMP/small.png"
check "8x8, 1 step" "[ $RC = 0 ] && pngok '$TMP/small.png'"
run utf -p "café — 猫" -W 64 -H 64 --steps 2 -o "$TMP/utf.png"
check "UTF-8 prompt -> iTXt parameters" "[ $RC = 0 ] && pngok '$TMP/utf.png' && grep -aq iTXt '$TMP/utf.png'"
run newdir -W 64 -H 64 --steps 2 -o "$TMP/no/such/dir/x.png"
check "missing output folders are made, as sd-cli" "[ $RC = 0 ] && pngok '$TMP/no/such/dir/x.png'"
run unwritable -W 64 -H 64 --steps 2 -o "/dev/null/x.png"
check "an output folder that cannot be made -> [ERROR] failed to create directory, exit 1" \
  "[ $RC = 1 ] && grep -q \"failed to create directory '/dev/null'\" '$TMP/unwritable.err'"

echo "== fault switches"
S=(-m "$MODEL" -W 64 -H 64 --steps 5)
start=$(date +%s%N); REFENGINE_STEP_MS=100 "$BIN" "${S[@]}" -o "$TMP/f1.png" >"$TMP/f1.out" 2>&1; RC=$?; ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "REFENGINE_STEP_MS=100 x 5 steps takes >= 500 ms (took ${ms} ms) and shows it/s ~10" \
  "[ $RC = 0 ] && [ $ms -ge 500 ] && grep -q '5/5 - [0-9.]*it/s' '$TMP/f1.out'"
REFENGINE_STEP_MS=1100 "$BIN" -m "$MODEL" -W 64 -H 64 --steps 2 -o "$TMP/f1b.png" >"$TMP/f1b.out" 2>&1
check "steps over a second are shown as s/it" "grep -q '2/2 - 1.[0-9]*s/it' '$TMP/f1b.out'"
REFENGINE_OOM_AT_STEP=3 "$BIN" "${S[@]}" -o "$TMP/f2.png" >"$TMP/f2.out" 2>"$TMP/f2.err"; RC=$?
check "REFENGINE_OOM_AT_STEP=3 -> exit 1, OOM text on stderr, no file, 2 steps shown" \
  "[ $RC = 1 ] && grep -q 'cudaMalloc failed: out of memory' '$TMP/f2.err' && grep -q 'failed to allocate the compute buffer' '$TMP/f2.err' && [ ! -e '$TMP/f2.png' ] && grep -q '2/5 - ' '$TMP/f2.out' && ! grep -q '3/5 - ' '$TMP/f2.out'"
REFENGINE_ABORT_AT_STEP=2 "$BIN" "${S[@]}" -o "$TMP/f3.png" >"$TMP/f3.out" 2>"$TMP/f3.err"; RC=$?
check "REFENGINE_ABORT_AT_STEP=2 -> SIGABRT (status $RC = 128+6), CUDA error text" \
  "[ $RC = 134 ] && grep -q 'CUDA error: an illegal memory access was encountered' '$TMP/f3.err' && [ ! -e '$TMP/f3.png' ]"
REFENGINE_HANG_AT_STEP=2 "$BIN" "${S[@]}" -o "$TMP/f4.png" >"$TMP/f4.out" 2>&1 &
HPID=$!; sleep 1
check "REFENGINE_HANG_AT_STEP=2 -> still running after 1 s, stopped at step 1" "kill -0 $HPID 2>/dev/null && grep -q '1/5 - ' '$TMP/f4.out' && ! grep -q '2/5 - ' '$TMP/f4.out'"
kill -TERM $HPID; wait $HPID; RC=$?
check "hung engine dies on SIGTERM (status $RC = 128+15)" "[ $RC = 143 ]"
REFENGINE_NO_OUTPUT=1 "$BIN" "${S[@]}" -o "$TMP/f5.png" >"$TMP/f5.out" 2>&1; RC=$?
check "REFENGINE_NO_OUTPUT=1 -> exit 0, no file (the save line still claims success)" "[ $RC = 0 ] && [ ! -e '$TMP/f5.png' ] && grep -q '(success)' '$TMP/f5.out'"
REFENGINE_PRINT_FAILURE=1 "$BIN" "${S[@]}" -o "$TMP/f6.png" >"$TMP/f6.out" 2>"$TMP/f6.err"; RC=$?
check "REFENGINE_PRINT_FAILURE=1 -> exit 1, '(failure)' and '0/1 images saved' at INFO, nothing on stderr, no file" \
  "[ $RC = 1 ] && [ ! -e '$TMP/f6.png' ] && [ ! -s '$TMP/f6.err' ] && grep -q \"save result image 0 to '$TMP/f6.png' (failure)\" '$TMP/f6.out' && grep -q '0/1 images saved' '$TMP/f6.out'"

echo "== timings (REFENGINE_LOAD_MS=100, the default)"
unset REFENGINE_LOAD_MS
timeit() { # label args...
  local label="$1"; shift
  local s e; s=$(date +%s%N); "$BIN" -m "$MODEL" "$@" >"$TMP/t.out" 2>&1; e=$(date +%s%N)
  printf '  %-24s %6d ms total, %s, PNG %s bytes\n' "$label" $(( (e - s) / 1000000 )) \
    "$(grep -o 'sampling completed, taking [0-9.]*s' "$TMP/t.out")" "$(wc -c <"${@: -1}")"
}
timeit "512x512, 20 steps" -p "a red fox in a snowy forest at sunset" -o "$TMP/t512.png"
[ "${SMOKE_FAST:-0}" = 1 ] || timeit "1024x1024, 30 steps" -p "a red fox in a snowy forest at sunset" -W 1024 -H 1024 --steps 30 -o "$TMP/t1024.png"

echo "== $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
