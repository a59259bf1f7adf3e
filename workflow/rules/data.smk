# Tokenizer, pretraining shards and eval sets  ->  src/recall2reason/data/
# Long rules `exec` python: a TERM or KILL to the job (scheduler, user) reaches the stage itself,
# which leaves no orphan writing next to a rerun.


rule tokenizer:
    output:
        f"{R}/data/tokenizer.model",
    params:
        cfg=cfg_json(config["tokenizer"]),
        data_cfg=cfg_json(config["data"]),  # the corpus, for source: train
    log:
        f"{R}/logs/data/tokenizer.log",
    benchmark:
        f"{R}/benchmarks/data/tokenizer.tsv"
    conda:
        "../../envs/data.yaml"
    shell:
        "exec python -m recall2reason.data tokenizer --cfg {params.cfg:q} --data-cfg {params.data_cfg:q} --out {output:q} > {log:q} 2>&1"


rule tokenize:
    input:
        tokenizer=rules.tokenizer.output[0],
    output:
        manifest=f"{R}/data/train/manifest.json",
    params:
        cfg=cfg_json(config["data"]),
        state_dir=f"{R}/.state/data/train",
    threads: 16  # scaled down to --cores; SLURM: set-threads in the profile
    log:
        f"{R}/logs/data/tokenize.log",
    benchmark:
        f"{R}/benchmarks/data/tokenize.tsv"
    conda:
        "../../envs/data.yaml"
    shell:
        "exec python -m recall2reason.data tokenize --cfg {params.cfg:q} --tokenizer {input.tokenizer:q}"
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


rule contamination:  # eval problems with a 13-gram overlap in the training documents, per source
    input:
        evals=expand(f"{R}/data/eval/{{dataset}}.jsonl", dataset=DATASETS),
    output:
        f"{R}/data/train/contamination.csv",
    params:
        cfg=cfg_json(config["data"]),
    threads: 16  # scaled down to --cores; SLURM: set-threads in the profile
    log:
        f"{R}/logs/data/contamination.log",
    benchmark:
        f"{R}/benchmarks/data/contamination.tsv"
    conda:
        "../../envs/data.yaml"
    shell:
        "exec python -m recall2reason.data contamination --cfg {params.cfg:q} --eval {input.evals:q}"
        " --out {output:q} --workers {threads} > {log:q} 2>&1"
