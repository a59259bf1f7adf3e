# Source on the device machine from the project root, instead of .gpu/setup.sh, to overlap the
# kernel builds with other work:   source benchmarks/gpu_toolkit.sh && ... && wait_mamba && ...
# Installs Triton 3.7.1, fla 0.6.0 and math-verify from .gpu/ at once (seconds), then builds
# mamba-ssm for sm_90 in the background (MAX_JOBS=8, leaving cores for the foreground);
# `wait_mamba` blocks until it is importable. Triton's compile and autotune cache (FLA caches its
# autotune winners there) lives in /tmp/triton-cache, so it outlives a call while the machine stays
# warm; the autotune winners in .triton-cache/ (carried in from an earlier machine, see
# save_autotune_cache) seed it. Not the carried folder itself: a carry replaces it on every call,
# which throws away each call's compiled kernels (a test that compiles its kernels afresh then runs
# out of its slot: benchmarks/reports/2026-12-06-pretrain-4-packed-mlp.md).
# GPU_NO_MAMBA=1 skips the build (its 16 compiler threads also slow a benchmark's host side).
# GPU_WITH_CAUSAL_CONV1D=1 also builds causal-conv1d 1.7.0 (about 5 minutes) into its own folder,
# on PYTHONPATH but importable only once built (`wait_causal_conv1d`); a benchmark can leave it out
# by dropping that folder from PYTHONPATH.
_g="$(pwd)/.gpu"; _site=/tmp/gpu-site; _msite=/tmp/gpu-mamba; _csite=/tmp/gpu-cc1d
export PYTHONPATH="$_site:$_msite:$_csite:$(pwd)/src${PYTHONPATH:+:$PYTHONPATH}"
export TRITON_CACHE_DIR=/tmp/triton-cache
mkdir -p "$_site" "$_msite" "$_csite" /tmp/gpu-build "$TRITON_CACHE_DIR"
[ -d .triton-cache ] && cp -rn .triton-cache/. "$TRITON_CACHE_DIR"/ 2>/dev/null
if [ ! -f "$_site/.ready" ]; then
  tar xJf "$_g"/triton-3.7.1-slim.tar.xz -C "$_site" &&
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$_site" "$_g"/*.whl && touch "$_site/.ready"
fi
# _build_sm90 <package-version> <target dir> <log name>: build a CUDA source package for sm_90 only, in the background
# A build dies with the device call that started it (the machine stays warm, its /tmp too):
# /tmp/gpu-build/<log name>.pid names the builder, and a later call restarts a dead one.
_build_sm90() {
  [ -f "$2/.ready" ] && return
  kill -0 "$(cat "/tmp/gpu-build/$3.pid" 2>/dev/null)" 2>/dev/null && return
  rm -f "$2/.failed"
  ( cd /tmp/gpu-build && tar xzf "$_g/$1.tar.gz" && cd "$1" &&
    python3 -c "s=open('setup.py').read();s=s.replace('    # HACK: The compiler flag','    cc_flag = [\"-gencode\", \"arch=compute_90,code=sm_90\"]\n    # HACK: The compiler flag',1);open('setup.py','w').write(s)" &&
    MAMBA_FORCE_BUILD=TRUE CAUSAL_CONV1D_FORCE_BUILD=TRUE MAX_JOBS=8 NVCC_THREADS=2 nice -n 19 \
      python3 -m pip wheel -q --no-build-isolation --no-deps -w "/tmp/gpu-build/wheels-$3" . > "/tmp/gpu-build/$3.log" 2>&1 &&
    python3 -m pip install -q --no-index --no-deps --no-compile --target "$2" "/tmp/gpu-build/wheels-$3"/*.whl &&
    touch "$2/.ready" || { echo "$1 build failed:"; tail -20 "/tmp/gpu-build/$3.log"; touch "$2/.failed"; } ) &
  echo $! > "/tmp/gpu-build/$3.pid"
}
_wait_built() {  # _wait_built <target dir> <name> <log name>
  local t0=$SECONDS
  while [ ! -f "$1/.ready" ] && [ ! -f "$1/.failed" ]; do
    if ! kill -0 "$(cat "/tmp/gpu-build/$3.pid" 2>/dev/null)" 2>/dev/null; then
      [ -f "$1/.ready" ] && break  # it finished between the two checks
      echo "$2: not built and no build running (was it asked for? GPU_NO_MAMBA / GPU_WITH_CAUSAL_CONV1D)"; return 1
    fi
    sleep 2
  done
  echo "$2: waited $((SECONDS - t0)) s"; [ -f "$1/.ready" ]
}
[ "${GPU_NO_MAMBA:-0}" != 1 ] && _build_sm90 mamba_ssm-2.3.2.post1 "$_msite" mamba
[ "${GPU_WITH_CAUSAL_CONV1D:-0}" = 1 ] && _build_sm90 causal_conv1d-1.7.0 "$_csite" causal_conv1d
wait_mamba() { _wait_built "$_msite" mamba-ssm mamba; }
wait_causal_conv1d() { _wait_built "$_csite" causal-conv1d causal_conv1d; }
# keep only the autotune winners (small), not every compiled variant, for carrying back:
# `tar xzf <file>` in the project root unpacks them into .triton-cache/
save_autotune_cache() {
  (cd "$TRITON_CACHE_DIR" && find . -name '*.autotune.json' | tar czf "$1" --transform 's,^\./,.triton-cache/,' -T -) && ls -la "$1"
}
python3 -c "import torch, triton, fla; print('gpu toolkit:', torch.cuda.get_device_name(), 'torch', torch.__version__, 'triton', triton.__version__, 'fla', fla.__version__)"
