# Source on a lent GPU machine (device tool) from the project root, carrying .gpu and .smoke
# (bash ../shared/gpu/stage.sh; bash benchmarks/gpu_smoke_stage.sh):
#   source benchmarks/gpu_smoke_device.sh && smoke_setup && smoke_run 540
# (fresh machine: smoke_setup && smoke_train_without_mamba 240 && wait_mamba && smoke_run 300)
# smoke_setup: the GPU toolkit (benchmarks/gpu_toolkit.sh: Triton 3.7.1, FLA, math-verify; mamba-ssm
# built in the background), Snakemake from .smoke/, ../shared from .smoke/, and `python` /
# `snakemake` commands that run the image's Python (the one with torch). smoke_run <s>: `make
# gpu-smoke` under a deadline that ends every job, copying logs and benchmark files to $OUT as it
# goes (a command killed at the machine's limit returns nothing else).
source benchmarks/gpu_toolkit.sh
unset TRITON_CACHE_DIR  # the study's own cache (results/<dir>/.cache/compile), as a user's run has

smoke_setup() {
  local py; py="$(command -v python3)"
  if [ ! -f /tmp/snake-site/.ready ]; then
    mkdir -p /tmp/snake-site && tar xJf .smoke/snake-site.tar.xz -C /tmp/snake-site && touch /tmp/snake-site/.ready
  fi
  [ -f ../shared/data/gsm8k/train.jsonl ] || { mkdir -p ../shared && tar xJf .smoke/shared.tar.xz -C ../shared; }
  mkdir -p /tmp/bin
  printf '#!/bin/sh\nexec %s "$@"\n' "$py" > /tmp/bin/python
  printf '#!/bin/sh\nexec %s -m snakemake "$@"\n' "$py" > /tmp/bin/snakemake
  chmod +x /tmp/bin/python /tmp/bin/snakemake
  export PATH="/tmp/bin:$PATH" PYTHONPATH="$PYTHONPATH:/tmp/snake-site" PYTHONUNBUFFERED=1
  snakemake --version
}

# copies the small progress files of results/<dir> to $OUT every 15 s, in the background
smoke_progress() {
  local dir="${1:-results/gpu-smoke}" tag="${2:-}"
  ( while sleep 15; do
      tar czf "$OUT/progress$tag.tgz.tmp" "$dir/logs" "$dir/benchmarks" .snakemake/log 2>/dev/null
      mv -f "$OUT/progress$tag.tgz.tmp" "$OUT/progress$tag.tgz"
    done ) &
  echo $! > /tmp/smoke-progress.pid
}

# _smoke_after_deadline <rc> <config files...>: a Snakemake killed at its deadline (a job busy
# compiling outlives TERM) keeps its lock, and the next run would stop at once with a LockException
_smoke_after_deadline() {
  local rc="$1"; shift
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    pkill -KILL -f -- '-m (snakemake|recall2reason\.)' 2>/dev/null; sleep 1  # its jobs, not this shell
    snakemake --unlock --configfile "$@" > /dev/null 2>&1
  fi
}

# smoke_run <deadline s> [make variables...]: make gpu-smoke, TERM at the deadline (to make,
# Snakemake and every job: timeout signals its whole process group), KILL 15 s later.
# SMOKE_TAG=x names its files $OUT/smoke-x.log and $OUT/progress-x.tgz (several runs in one call);
# SMOKE_CONFIGS="configs/gpu-smoke.yaml more.yaml" merges more config files over the smoke config
# (e.g. `models: {hybrid_classes: [gla, gdn]}` to run the models that need no mamba-ssm first)
smoke_run() {
  local deadline="$1"; shift
  local t0=$SECONDS rc=0 tag="${SMOKE_TAG:+-$SMOKE_TAG}" configs="${SMOKE_CONFIGS:-configs/gpu-smoke.yaml}"
  smoke_progress "results/gpu-smoke" "$tag"
  if command -v make > /dev/null; then
    timeout -k 15 "$deadline" make gpu-smoke SMOKE="--configfile $configs" "$@" > "$OUT/smoke$tag.log" 2>&1 || rc=$?
  else  # the Makefile's gpu-smoke recipe, for an image without make
    timeout -k 15 "$deadline" bash -c "snakemake --profile workstation all --configfile $configs \
      --resources gpu_jobs=${GPU_JOBS:-8} --set-threads pretrain=2 sample=2 probe=2 vote=4 --scheduler greedy &&
      snakemake --report results/gpu-smoke/report.html --configfile $configs" > "$OUT/smoke$tag.log" 2>&1 || rc=$?
  fi
  kill "$(cat /tmp/smoke-progress.pid)" 2>/dev/null
  _smoke_after_deadline "$rc" $configs
  echo "make gpu-smoke: rc $rc after $((SECONDS - t0)) s" | tee -a "$OUT/smoke$tag.log"
  tar czf "$OUT/progress$tag.tgz" results/gpu-smoke/logs results/gpu-smoke/benchmarks .snakemake/log 2>/dev/null
  return $rc
}

# smoke_train_without_mamba <deadline s>: on a fresh machine, while mamba-ssm builds, train the 9
# models that need no mamba-ssm (Transformer, GLA, GDN); then `wait_mamba && smoke_run <s>` runs the rest
smoke_train_without_mamba() {
  local t0=$SECONDS rc=0
  printf 'models: {hybrid_classes: [gla, gdn]}\n' > /tmp/smoke-no-mamba.yaml
  smoke_progress "results/gpu-smoke" "-train"
  timeout -k 15 "$1" snakemake all --until pretrain --profile workstation --configfile configs/gpu-smoke.yaml \
    /tmp/smoke-no-mamba.yaml --resources gpu_jobs="${GPU_JOBS:-8}" --set-threads pretrain=2 --scheduler greedy \
    > "$OUT/smoke-train.log" 2>&1 || rc=$?
  kill "$(cat /tmp/smoke-progress.pid)" 2>/dev/null
  _smoke_after_deadline "$rc" configs/gpu-smoke.yaml
  echo "training without mamba-ssm: rc $rc after $((SECONDS - t0)) s" | tee -a "$OUT/smoke-train.log"
  return $rc
}

# the run's small outputs for docs/gpu-smoke/ (benchmarks/gpu_smoke_summary.py): tables, figures,
# curves, metrics, stats, judgements, benchmarks, logs, and the first 128 rows of each samples file
smoke_collect() {
  local d=results/gpu-smoke o=/tmp/smoke-out f
  rm -rf "$o" && mkdir -p "$o"
  tar cf - --exclude='*.safetensors' --exclude='.state' --exclude='.cache' --exclude='*.bin' \
    --exclude="$d/samples" "$d" .snakemake/log | tar xf - -C "$o"
  for f in "$d"/samples/*/*/part-*; do
    mkdir -p "$o/$(dirname "$f")" && head -n 128 "$f" > "$o/$f"
  done
  tar czf "$OUT/outputs.tgz" -C "$o" . && ls -la "$OUT"
}

# smoke_reset: remove the study's results but keep its compile cache (a rerun then times the DAG
# with warm torch.compile / Triton / autotune caches, as a user's second study on the node)
smoke_reset() {
  local d=results/gpu-smoke
  find "$d" -mindepth 1 -maxdepth 1 ! -name .cache -exec rm -rf {} + 2>/dev/null
  rm -rf .snakemake/incomplete .snakemake/metadata
}
