# Appendix A.3's ablations, not part of `all`: `snakemake ablations`, or one figure, which trains
# (and for Figure 8 samples and votes) only the variants it draws  ->  src/recall2reason/report/ablations.py
# The variants come from config["ablations"] (recall2reason.study.expand_ablations; ABLATION_* in common.smk).

rule fig6:  # Mamba: d_state; d_inner x d_xb. Training loss per variant, spikes marked
    input:
        expand(f"{R}/pretrain/{{model}}/metrics.jsonl", model=ablation_models_of(ABLATION_FIGURES.get("fig6", []))),
    output:
        pdf=f"{R}/figures/fig6.pdf",
        png=report_out(f"{R}/figures/fig6.png", "fig6", "Ablations"),
    params:
        cfg=ablation_cfg(ABLATION_FIGURES.get("fig6", [])),
        which="fig6",
    log:
        f"{R}/logs/report/fig6.log",
    benchmark:
        f"{R}/benchmarks/report/fig6.tsv"
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m recall2reason.report ablation {params.which} --cfg {params.cfg:q} --metrics {input:q}"
        " --out-pdf {output.pdf:q} --out-png {output.png:q} > {log:q} 2>&1"


use rule fig6 as fig7 with:  # Mamba: dt_rank (and dt clamped)
    input:
        expand(f"{R}/pretrain/{{model}}/metrics.jsonl", model=ablation_models_of(ABLATION_FIGURES.get("fig7", []))),
    output:
        pdf=f"{R}/figures/fig7.pdf",
        png=report_out(f"{R}/figures/fig7.png", "fig7", "Ablations"),
    params:
        cfg=ablation_cfg(ABLATION_FIGURES.get("fig7", [])),
        which="fig7",
    log:
        f"{R}/logs/report/fig7.log",
    benchmark:
        f"{R}/benchmarks/report/fig7.tsv"


rule ablation_spikes:  # loss spikes of every Figure 6 / 7 variant, by the stated rule
    input:
        expand(f"{R}/pretrain/{{model}}/metrics.jsonl", model=ablation_models_of(LOSS_SETS)),
    output:
        csv=report_out(f"{R}/tables/ablation_spikes.csv", "ablation_spikes", "Ablations"),
        md=f"{R}/tables/ablation_spikes.md",
    params:
        cfg=ablation_cfg(LOSS_SETS),
    log:
        f"{R}/logs/report/ablation_spikes.log",
    benchmark:
        f"{R}/benchmarks/report/ablation_spikes.tsv"
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m recall2reason.report ablation spikes --cfg {params.cfg:q} --metrics {input:q}"
        " --out-csv {output.csv:q} --out-md {output.md:q} > {log:q} 2>&1"


rule fig8:  # GDN: output gate, short conv, attention placement. GSM8K maj@N per variant
    input:
        expand(f"{R}/vote/{{model}}/{GSM8K}.curves.csv", model=ablation_models_of(ABLATION_FIGURES.get("fig8", []))),
    output:
        pdf=f"{R}/figures/fig8.pdf",
        png=report_out(f"{R}/figures/fig8.png", "fig8", "Ablations"),
    params:
        cfg=ablation_cfg(ABLATION_FIGURES.get("fig8", [])),
    log:
        f"{R}/logs/report/fig8.log",
    benchmark:
        f"{R}/benchmarks/report/fig8.tsv"
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m recall2reason.report ablation fig8 --cfg {params.cfg:q} --curves {input:q}"
        " --out-pdf {output.pdf:q} --out-png {output.png:q} > {log:q} 2>&1"


ABLATION_TARGETS = [f"{R}/figures/{fig}.{ext}" for fig in ABLATION_FIGURES for ext in ("pdf", "png")] + (
    [f"{R}/tables/ablation_spikes.{ext}" for ext in ("csv", "md")] if LOSS_SETS else []
)


rule ablations:  # every ablation figure with sets in config["ablations"]["figures"], and the spike table
    input:
        ABLATION_TARGETS,
