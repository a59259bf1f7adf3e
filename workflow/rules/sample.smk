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
        state_dir=lambda wc: f"{R}/.state/sample/{wc.model}/{wc.dataset}/part-{wc.part}",
    resources:
        gpu=1,
    threads: 4
    log:
        f"{R}/logs/sample/{{model}}/{{dataset}}/part-{{part}}.log",
    benchmark:
        f"{R}/benchmarks/sample/{{model}}/{{dataset}}/part-{{part}}.tsv"
    conda:
        "../../envs/gpu.yaml"
    shell:
        "python -m recall2reason.sample --cfg {params.cfg:q} --model-dir {params.model_dir:q}"
        " --tokenizer {input.tokenizer:q} --eval {input.eval:q} --part {wildcards.part}"
        " --out {output.samples:q} --stats {output.stats:q} --state-dir {params.state_dir:q} > {log:q} 2>&1"
