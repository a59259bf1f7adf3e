# Answer extraction with math-verify, clustering, maj@k / pass@k curves  ->  src/recall2reason/vote/
# Long rules `exec` python: a TERM or KILL to the job (scheduler, user) reaches the stage itself,
# which leaves no orphan writing next to a rerun.


rule vote:
    input:
        eval=rules.eval_set.output[0],
        samples=sample_parts,
    output:
        problems=f"{R}/vote/{{model}}/{{dataset}}.problems.jsonl",
        curves=f"{R}/vote/{{model}}/{{dataset}}.curves.csv",
        breakdown=f"{R}/vote/{{model}}/{{dataset}}.breakdown.csv",
    params:
        cfg=cfg_json(config["vote"]),
        n=config["sample"]["n"],
    threads: 16  # scaled down to --cores; SLURM: set-threads in the profile
    log:
        f"{R}/logs/vote/{{model}}/{{dataset}}.log",
    benchmark:
        f"{R}/benchmarks/vote/{{model}}/{{dataset}}.tsv"
    conda:
        "../../envs/data.yaml"
    shell:
        "exec python -m recall2reason.vote --cfg {params.cfg:q} --eval {input.eval:q} --samples {input.samples:q} --n {params.n}"
        " --out-problems {output.problems:q} --out-curves {output.curves:q}"
        " --out-breakdown {output.breakdown:q} --threads {threads} > {log:q} 2>&1"
