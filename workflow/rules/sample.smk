# n completions per problem for every (model, eval set), split over sample.jobs GPU jobs
#   ->  src/recall2reason/sample/



rule sample:
    input:
        model=rules.pretrain.output.weights,
        model_config=rules.pretrain.output.config,
        tokenizer=rules.tokenizer.output[0],
        eval=rules.eval_set.output[0],
    output:
        samples=f"{R}/samples/{{model}}/{{dataset}}/part-{{part}}.jsonl",
        stats=f"{R}/samples/{{model}}/{{dataset}}/part-{{part}}.stats.json",
    params:
        cfg=cfg_json(config["sample"]),
        model_dir=lambda wc: f"{R}/pretrain/{wc.model}",
        compile_cache=COMPILE_CACHE,
        state_dir=lambda wc: f"{R}/.state/sample/{wc.model}/{wc.dataset}/part-{wc.part}",
    priority: 1  # before the probes: vote, judge and most tables wait on the samples
    resources:
        gpu=1,  # GPUs of the job (SLURM: --gpus)
        gpu_jobs=1,  # one of the profile's concurrent GPU jobs (workstation/config.yaml)
    threads: 4
    log:
        f"{R}/logs/sample/{{model}}/{{dataset}}/part-{{part}}.log",
    benchmark:
        f"{R}/benchmarks/sample/{{model}}/{{dataset}}/part-{{part}}.tsv"
    conda:
        "../../envs/gpu.yaml"
    shell:
        # exec: a TERM to the job (an interrupt, a time limit) must reach python, which flushes and exits
        KEEP_PREVIOUS_LOG + "exec python -m recall2reason.sample --cfg {params.cfg:q} --model-dir {params.model_dir:q}"
        " --tokenizer {input.tokenizer:q} --eval {input.eval:q} --part {wildcards.part}"
        " --out {output.samples:q} --stats {output.stats:q} --state-dir {params.state_dir:q}"
        " --compile-cache {params.compile_cache:q} > {log:q} 2>&1"
