# Tokenizer, pretraining shards and eval sets  ->  src/recall2reason/data/


rule tokenizer:
    output:
        f"{R}/data/tokenizer.model",
    params:
        cfg=cfg_json({"tokenizer": config["tokenizer"], "data": config["data"]}),
    log:
        f"{R}/logs/data/tokenizer.log",
    benchmark:
        f"{R}/benchmarks/data/tokenizer.tsv"
    conda:
        "../../envs/data.yaml"
    shell:
        "python -m recall2reason.data tokenizer --cfg {params.cfg:q} --out {output:q} > {log:q} 2>&1"


rule tokenize:
    input:
        tokenizer=rules.tokenizer.output[0],
    output:
        manifest=f"{R}/data/train/manifest.json",
    params:
        cfg=cfg_json(config["data"]),
        state_dir=f"{R}/.state/data/train",
    threads: workflow.cores
    log:
        f"{R}/logs/data/tokenize.log",
    benchmark:
        f"{R}/benchmarks/data/tokenize.tsv"
    conda:
        "../../envs/data.yaml"
    shell:
        "python -m recall2reason.data tokenize --cfg {params.cfg:q} --tokenizer {input.tokenizer:q}"
        " --out {output.manifest:q} --state-dir {params.state_dir:q} --workers {threads} > {log:q} 2>&1"


rule eval_set:
    output:
        f"{R}/data/eval/{{dataset}}.jsonl",
    params:
        cfg=lambda wc: cfg_json(config["eval"][wc.dataset]),
    log:
        f"{R}/logs/data/eval_{{dataset}}.log",
    benchmark:
        f"{R}/benchmarks/data/eval_{{dataset}}.tsv"
    conda:
        "../../envs/data.yaml"
    shell:
        "python -m recall2reason.data eval --name {wildcards.dataset} --cfg {params.cfg:q} --out {output:q} > {log:q} 2>&1"


rule contamination:
    input:
        manifest=rules.tokenize.output.manifest,
        tokenizer=rules.tokenizer.output[0],
        evals=expand(f"{R}/data/eval/{{dataset}}.jsonl", dataset=DATASETS),
    output:
        f"{R}/data/train/contamination.csv",
    params:
        cfg=cfg_json(config["data"]),
    log:
        f"{R}/logs/data/contamination.log",
    benchmark:
        f"{R}/benchmarks/data/contamination.tsv"
    conda:
        "../../envs/data.yaml"
    shell:
        "python -m recall2reason.data contamination --cfg {params.cfg:q} --manifest {input.manifest:q}"
        " --tokenizer {input.tokenizer:q} --eval {input.evals:q} --out {output:q} > {log:q} 2>&1"
