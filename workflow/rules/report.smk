# The paper's tables and figures, and the recall probes' (beyond the paper), one rule per
# artefact so that a single figure builds only what it needs  ->  src/recall2reason/report/

GSM8K = config["report"]["datasets"]["gsm8k"]  # eval set behind Table 1, Figures 2, 3, 5
MATH500 = config["report"]["datasets"]["math500"]  # eval set behind Table 7, Figures 4, 9
REPORT_CFG = cfg_json({**config["report"], "models": [s.summary() for s in MODEL_SPECS.values()]})


rule table1:
    input:
        judged(GSM8K),
    output:
        csv=report_out(f"{R}/tables/table1.csv", "table1", "Tables"),
        md=f"{R}/tables/table1.md",
        tex=f"{R}/tables/table1.tex",
    params:
        cfg=REPORT_CFG,
        which="table1",
    log:
        f"{R}/logs/report/table1.log",
    benchmark:
        f"{R}/benchmarks/report/table1.tsv"
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m recall2reason.report table --which {params.which} --cfg {params.cfg:q} --judge {input:q}"
        " --out-csv {output.csv:q} --out-md {output.md:q} --out-tex {output.tex:q} > {log:q} 2>&1"


use rule table1 as table7 with:
    input:
        judged(MATH500),
    output:
        csv=report_out(f"{R}/tables/table7.csv", "table7", "Tables"),
        md=f"{R}/tables/table7.md",
        tex=f"{R}/tables/table7.tex",
    log:
        f"{R}/logs/report/table7.log",
    benchmark:
        f"{R}/benchmarks/report/table7.tsv"


rule extraction:  # completions without an answer, per model and eval set (they count as wrong)
    input:
        expand(f"{R}/vote/{{model}}/{{dataset}}.problems.jsonl", model=MODELS, dataset=[GSM8K, MATH500]),
    output:
        csv=report_out(f"{R}/tables/extraction.csv", "extraction", "Tables"),
        md=f"{R}/tables/extraction.md",
    params:
        cfg=REPORT_CFG,
    log:
        f"{R}/logs/report/extraction.log",
    benchmark:
        f"{R}/benchmarks/report/extraction.tsv"
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m recall2reason.report extraction --cfg {params.cfg:q} --problems {input:q}"
        " --out-csv {output.csv:q} --out-md {output.md:q} > {log:q} 2>&1"


rule fig2:  # accuracy vs N under majority voting, GSM8K
    input:
        curves(GSM8K),
    output:
        pdf=f"{R}/figures/fig2.pdf",
        png=report_out(f"{R}/figures/fig2.png", "fig2", "Figures"),
    params:
        cfg=REPORT_CFG,
        which="fig2",
    log:
        f"{R}/logs/report/fig2.log",
    benchmark:
        f"{R}/benchmarks/report/fig2.tsv"
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m recall2reason.report figure {params.which} --cfg {params.cfg:q} --curves {input:q}"
        " --out-pdf {output.pdf:q} --out-png {output.png:q} > {log:q} 2>&1"


use rule fig2 as fig4 with:  # the same for MATH500
    input:
        curves(MATH500),
    output:
        pdf=f"{R}/figures/fig4.pdf",
        png=report_out(f"{R}/figures/fig4.png", "fig4", "Figures"),
    params:
        cfg=REPORT_CFG,
        which="fig4",
    log:
        f"{R}/logs/report/fig4.log",
    benchmark:
        f"{R}/benchmarks/report/fig4.tsv"


rule fig3:  # errors and Key-Value Binding errors vs attention share, GSM8K
    input:
        judged(GSM8K),
    output:
        pdf=f"{R}/figures/fig3.pdf",
        png=report_out(f"{R}/figures/fig3.png", "fig3", "Figures"),
    params:
        cfg=REPORT_CFG,
        which="fig3",
    log:
        f"{R}/logs/report/fig3.log",
    benchmark:
        f"{R}/benchmarks/report/fig3.tsv"
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m recall2reason.report figure {params.which} --cfg {params.cfg:q} --judge {input:q}"
        " --out-pdf {output.pdf:q} --out-png {output.png:q} > {log:q} 2>&1"


use rule fig3 as fig9 with:  # the same for MATH500
    input:
        judged(MATH500),
    output:
        pdf=f"{R}/figures/fig9.pdf",
        png=report_out(f"{R}/figures/fig9.png", "fig9", "Figures"),
    params:
        cfg=REPORT_CFG,
        which="fig9",
    log:
        f"{R}/logs/report/fig9.log",
    benchmark:
        f"{R}/benchmarks/report/fig9.tsv"


rule fig5:  # accuracy vs inference FLOPs, GSM8K
    input:
        curves=curves(GSM8K),
        configs=expand(f"{R}/pretrain/{{model}}/config.json", model=MODELS),
        samples=sample_files(GSM8K),
        eval=f"{R}/data/eval/{GSM8K}.jsonl",
        tokenizer=rules.tokenizer.output[0],
    output:
        pdf=f"{R}/figures/fig5.pdf",
        png=report_out(f"{R}/figures/fig5.png", "fig5", "Figures"),
    params:
        cfg=REPORT_CFG,
    log:
        f"{R}/logs/report/fig5.log",
    benchmark:
        f"{R}/benchmarks/report/fig5.tsv"
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m recall2reason.report figure fig5 --cfg {params.cfg:q} --curves {input.curves:q}"
        " --model-configs {input.configs:q} --samples {input.samples:q} --eval {input.eval:q}"
        " --tokenizer {input.tokenizer:q} --out-pdf {output.pdf:q} --out-png {output.png:q} > {log:q} 2>&1"


rule gpu_seconds:  # beyond the paper: accuracy vs measured sampling GPU-seconds, GSM8K
    input:
        curves=curves(GSM8K),
        stats=sample_stats(GSM8K),
    output:
        pdf=f"{R}/figures/gpu_seconds.pdf",
        png=report_out(f"{R}/figures/gpu_seconds.png", "gpu_seconds", "Figures"),
    params:
        cfg=REPORT_CFG,
    log:
        f"{R}/logs/report/gpu_seconds.log",
    benchmark:
        f"{R}/benchmarks/report/gpu_seconds.tsv"
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m recall2reason.report figure gpu_seconds --cfg {params.cfg:q} --curves {input.curves:q}"
        " --sample-stats {input.stats:q} --out-pdf {output.pdf:q} --out-png {output.png:q} > {log:q} 2>&1"


rule recall:  # beyond the paper: recall-probe accuracy vs bindings k, a panel per class
    input:
        probe_summaries(),
    output:
        pdf=f"{R}/figures/recall.pdf",
        png=report_out(f"{R}/figures/recall.png", "recall", "Figures"),
    params:
        cfg=REPORT_CFG,
    log:
        f"{R}/logs/report/recall.log",
    benchmark:
        f"{R}/benchmarks/report/recall.tsv"
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m recall2reason.report figure recall --cfg {params.cfg:q} --probes {input:q}"
        " --out-pdf {output.pdf:q} --out-png {output.png:q} > {log:q} 2>&1"


rule recall_vs_reasoning:  # across models: recall accuracy vs GSM8K KV-binding error share and maj@N
    input:
        probes=probe_summaries(),
        judge=judged(GSM8K),
        curves=curves(GSM8K),
    output:
        pdf=f"{R}/figures/recall_vs_reasoning.pdf",
        png=report_out(f"{R}/figures/recall_vs_reasoning.png", "recall_vs_reasoning", "Figures"),
    params:
        cfg=REPORT_CFG,
    log:
        f"{R}/logs/report/recall_vs_reasoning.log",
    benchmark:
        f"{R}/benchmarks/report/recall_vs_reasoning.tsv"
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m recall2reason.report figure recall_vs_reasoning --cfg {params.cfg:q} --probes {input.probes:q}"
        " --judge {input.judge:q} --curves {input.curves:q} --out-pdf {output.pdf:q} --out-png {output.png:q} > {log:q} 2>&1"


rule recall_table:  # the same per model, with the rank correlations
    input:
        probes=probe_summaries(),
        judge=judged(GSM8K),
        curves=curves(GSM8K),
    output:
        csv=report_out(f"{R}/tables/recall.csv", "recall_table", "Tables"),
        md=f"{R}/tables/recall.md",
        tex=f"{R}/tables/recall.tex",
        correlation=f"{R}/tables/recall_correlation.csv",
    params:
        cfg=REPORT_CFG,
    log:
        f"{R}/logs/report/recall_table.log",
    benchmark:
        f"{R}/benchmarks/report/recall_table.tsv"
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m recall2reason.report table --which recall --cfg {params.cfg:q} --probes {input.probes:q}"
        " --judge {input.judge:q} --curves {input.curves:q} --out-csv {output.csv:q} --out-md {output.md:q}"
        " --out-tex {output.tex:q} --out-correlation {output.correlation:q} > {log:q} 2>&1"


TABLES = [
    f"{R}/tables/{t}.{ext}" for t in ("table1", "table7", "recall") for ext in ("csv", "md", "tex")
] + [f"{R}/tables/recall_correlation.csv"] + [f"{R}/tables/extraction.{ext}" for ext in ("csv", "md")] + [
    f"{R}/tables/judge_validation.md"
]
FIGURES = [
    f"{R}/figures/{f}.{ext}"
    for f in ("fig2", "fig3", "fig4", "fig5", "fig9", "gpu_seconds", "recall", "recall_vs_reasoning")
    for ext in ("pdf", "png")
]
