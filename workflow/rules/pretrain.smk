# One pretraining job per model (GPU)  ->  src/recall2reason/pretrain/
# Only the final checkpoint and the metrics log are declared outputs; resumable state lives in
# results/.state/pretrain/<model>/ so that a retried or preempted job continues where it stopped.



rule pretrain:
    input:
        manifest=rules.tokenize.output.manifest,
        tokenizer=rules.tokenizer.output[0],
    output:
        weights=f"{R}/pretrain/{{model}}/model.safetensors",
        config=f"{R}/pretrain/{{model}}/config.json",
        metrics=f"{R}/pretrain/{{model}}/metrics.jsonl",
    params:
        cfg=pretrain_cfg,
        out_dir=lambda wc: f"{R}/pretrain/{wc.model}",
        compile_cache=COMPILE_CACHE,
        state_dir=lambda wc: f"{R}/.state/pretrain/{wc.model}",
    # every model's training starts before other models' sampling and probes: it is the long head
    # of each model's chain, so the last model to train decides when the study ends
    priority: 2
    resources:
        gpu=1,  # GPUs of the job (SLURM: --gpus)
        gpu_jobs=1,  # one of the profile's concurrent GPU jobs (workstation/config.yaml)
    threads: 8
    log:
        f"{R}/logs/pretrain/{{model}}.log",
    benchmark:
        f"{R}/benchmarks/pretrain/{{model}}.tsv"
    conda:
        "../../envs/gpu.yaml"
    shell:
        # exec: SLURM's warning signal (TERM) must reach python, which checkpoints and exits
        KEEP_PREVIOUS_LOG + "exec python -m recall2reason.pretrain --cfg {params.cfg:q} --data {input.manifest:q}"
        " --tokenizer {input.tokenizer:q} --out-dir {params.out_dir:q} --state-dir {params.state_dir:q}"
        " --compile-cache {params.compile_cache:q}"
        " > {log:q} 2>&1"
