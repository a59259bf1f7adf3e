# Recall probes: one seeded probe set, answered greedily by every pretrained model (GPU)
#   ->  src/recall2reason/probe/


rule probe_set:
    output:
        f"{R}/probes/probe_set.jsonl",
    params:
        cfg=cfg_json({k: config["probe"][k] for k in SET_KEYS}),
    log:
        f"{R}/logs/probe/probe_set.log",
    benchmark:
        f"{R}/benchmarks/probe/probe_set.tsv"
    conda:
        "../../envs/data.yaml"
    shell:
        "exec python -m recall2reason.probe set --cfg {params.cfg:q} --out {output:q} > {log:q} 2>&1"


rule probe:
    input:
        model=rules.pretrain.output.weights,
        model_config=rules.pretrain.output.config,
        tokenizer=rules.tokenizer.output[0],
        probes=rules.probe_set.output[0],
    output:
        rows=f"{R}/probes/{{model}}.jsonl",
        summary=f"{R}/probes/{{model}}.summary.csv",
    params:
        cfg=cfg_json(
            {
                "probe": {k: config["probe"][k] for k in ("max_new_tokens", "batch_size")},
                "sample": {k: config["sample"][k] for k in ENGINE_KEYS},
                "vote": {"timeout_s": config["vote"]["timeout_s"]},
            }
        ),
        model_dir=lambda wc: f"{R}/pretrain/{wc.model}",
        compile_cache=COMPILE_CACHE,
    resources:
        gpu=1,  # GPUs of the job (SLURM: --gpus)
        gpu_jobs=1,  # one of the profile's concurrent GPU jobs (workstation/config.yaml)
    threads: 4
    log:
        f"{R}/logs/probe/{{model}}.log",
    benchmark:
        f"{R}/benchmarks/probe/{{model}}.tsv"
    conda:
        "../../envs/gpu.yaml"
    shell:
        KEEP_PREVIOUS_LOG + "exec python -m recall2reason.probe run --cfg {params.cfg:q} --model-dir {params.model_dir:q}"
        " --tokenizer {input.tokenizer:q} --probes {input.probes:q} --out {output.rows:q}"
        " --summary {output.summary:q} --compile-cache {params.compile_cache:q} > {log:q} 2>&1"
