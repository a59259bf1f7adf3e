# Each trained model as a Hugging Face model directory (transformers' AutoModelForCausalLM /
# AutoTokenizer with trust_remote_code=True)  ->  src/recall2reason/export/
# Optional, not part of `all`:  snakemake export  (every model)  |  snakemake results/export/gdn50



rule export_model:
    input:
        weights=rules.pretrain.output.weights,
        config=rules.pretrain.output.config,
        tokenizer=rules.tokenizer.output[0],
    output:
        directory(f"{R}/export/{{model}}"),
    params:
        cfg=cfg_json(config["export"]),
        prompt_prefix=config["sample"]["prompt_prefix"],
        model_dir=lambda wc: f"{R}/pretrain/{wc.model}",
    log:
        f"{R}/logs/export/{{model}}.log",
    benchmark:
        f"{R}/benchmarks/export/{{model}}.tsv"
    conda:
        "../../envs/export.yaml"
    shell:
        "python -m recall2reason.export --cfg {params.cfg:q} --model-dir {params.model_dir:q}"
        " --tokenizer {input.tokenizer:q} --prompt-prefix {params.prompt_prefix} --out {output:q} > {log:q} 2>&1"


rule export:
    input:
        expand(f"{R}/export/{{model}}", model=MODELS),
