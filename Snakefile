# From Recall to Reasoning: the whole study as one DAG.
#
#   tokenizer, tokenize, eval_set -> pretrain (1 GPU job per model) -> sample (GPU, per model x eval set)
#   -> vote (math-verify, maj@k) -> judge (LLM, first k completions) -> tables + figures
#   pretrain -> probe (GPU, per model: greedy answers to seeded recall probes) -> recall figures + table
#
#   snakemake -c2 all --configfile configs/demo.yaml     offline demo on a laptop CPU
#   snakemake --profile slurm all                        the paper study on a SLURM cluster
#   snakemake results/figures/fig3.pdf                   one figure and only what it needs
#   snakemake results/figures/recall.pdf                 the recall probes: pretrain + probe only
#   snakemake export                                     every model as a Hugging Face directory (not in `all`)
#   snakemake ablations                                  Appendix A.3: Figures 6-8 and their variants (not in `all`)
#
# Every rule calls one stage module: rules/<stage>.smk -> src/recall2reason/<stage>/.

from snakemake.utils import min_version

min_version("9.27")


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/vote.smk"
include: "workflow/rules/judge.smk"
include: "workflow/rules/probe.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/ablations.smk"


report: "workflow/report/workflow.rst"


rule all:
    input:
        TABLES,
        FIGURES,
        f"{R}/data/train/contamination.csv",
        study_cost_note,  # a dry run prints the study's GPU-hours and judge dollars (adds no input)
    default_target: True
