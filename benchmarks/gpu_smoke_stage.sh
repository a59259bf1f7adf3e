#!/usr/bin/env bash
# Stages what the GPU smoke study needs on a lent GPU machine that has no network and no Snakemake
# (run here, in the project root, where pip reaches the package registry):
#   .smoke/snake-site.tar.xz   Snakemake 9.27.1 and the packages it needs that the machine's image
#                              lacks, unpacked (cp312 wheels; pulp left out: pass --scheduler greedy)
#   .smoke/shared.tar.xz       ../shared's GSM8K / MATH / MATH500 files and the Llama-2 tokenizer
# Carry .gpu (bash ../shared/gpu/stage.sh) and .smoke; benchmarks/gpu_smoke_device.sh uses both.
set -euo pipefail
root="$(git rev-parse --show-toplevel)"
cd "$root"
grep -qxF '/.smoke/' .git/info/exclude 2>/dev/null || echo '/.smoke/' >> .git/info/exclude
mkdir -p .smoke
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
pip=(python3 -m pip)
[ -x .venv/bin/pip ] && pip=(.venv/bin/pip)
plat=(--only-binary=:all: --python-version 3.12 --implementation cp)
for p in manylinux_2_34 manylinux_2_31 manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014 manylinux1; do
  plat+=(--platform "${p}_x86_64")
done
"${pip[@]}" wheel -q --no-deps -w "$tmp/whl" connection_pool==0.0.3   # an sdist only
"${pip[@]}" download -q "${plat[@]}" --find-links "$tmp/whl" -d "$tmp/whl" snakemake==9.27.1
# already in the device image (KINDS.md's package list), or not needed with --scheduler greedy
for name in pulp pyyaml jinja2 markupsafe requests urllib3 idna certifi charset_normalizer psutil wrapt \
            tabulate packaging typing_extensions attrs; do
  rm -f "$tmp/whl/${name}"-[0-9]*.whl
done
mkdir -p "$tmp/site"
for w in "$tmp"/whl/*.whl; do python3 -m zipfile -e "$w" "$tmp/site"; done
find "$tmp/site" -name __pycache__ -prune -exec rm -rf {} +
tar cJf .smoke/snake-site.tar.xz -C "$tmp/site" .
shared="$root/../shared"
tar cJf .smoke/shared.tar.xz -C "$shared" data/gsm8k/train.jsonl data/gsm8k/test.jsonl data/math/train.jsonl \
  data/math500/test.jsonl tokenizer/llama2/tokenizer.model
du -sh .smoke/*
echo 'carry [".gpu", ".smoke"]; on the device: source benchmarks/gpu_smoke_device.sh'
