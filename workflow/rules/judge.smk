# LLM judge of the first judge.first_k completions into the paper's 8 error categories
#   ->  src/recall2reason/judge/
# Calls are cached under results/.cache/judge, so reruns and resumed runs never pay twice.
# Long rules `exec` python: a TERM or KILL to the job (scheduler, user) reaches the stage itself,
# which leaves no orphan writing next to a rerun.


rule judge:
    input:
        eval=rules.eval_set.output[0],
        samples=sample_parts,
        vote=rules.vote.output.problems,
        preflight=judge_preflight_warning,  # no file: warns in a dry run (see common.smk)
    output:
        judgements=f"{R}/judge/{{model}}/{{dataset}}.jsonl",
        ledger=f"{R}/judge/{{model}}/{{dataset}}.ledger.json",
    params:
        cfg=cfg_json(config["judge"]),
        cache_dir=f"{R}/.cache/judge",
    log:
        f"{R}/logs/judge/{{model}}/{{dataset}}.log",
    benchmark:
        f"{R}/benchmarks/judge/{{model}}/{{dataset}}.tsv"
    conda:
        "../../envs/judge.yaml"
    shell:
        "exec python -m recall2reason.judge run --cfg {params.cfg:q} --model-name {wildcards.model}"
        " --dataset {wildcards.dataset} --eval {input.eval:q} --samples {input.samples:q}"
        " --vote {input.vote:q} --cache {params.cache_dir:q} --out {output.judgements:q}"
        " --ledger {output.ledger:q} > {log:q} 2>&1"


rule judge_validation:  # the judge backend against the validation set's known labels
    input:
        Path(workflow.basedir) / "src/recall2reason/judge/data/validation_v1.jsonl",
    output:
        report=f"{R}/judge/validation.json",
        md=report_out(f"{R}/tables/judge_validation.md", "judge_validation", "Tables"),
    params:
        # the keys that decide a verdict (first_k and the like only decide which completions)
        cfg=cfg_json({k: v for k, v in config["judge"].items() if k != "first_k"}),
        cache_dir=f"{R}/.cache/judge",
    log:
        f"{R}/logs/judge/validation.log",
    benchmark:
        f"{R}/benchmarks/judge/validation.tsv"
    conda:
        "../../envs/judge.yaml"
    shell:
        "python -m recall2reason.judge validate --cfg {params.cfg:q} --set {input:q} --cache {params.cache_dir:q}"
        " --json {output.report:q} --md {output.md:q} > {log:q} 2>&1"
