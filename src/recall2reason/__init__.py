"""recall2reason: the pipeline of "From Recall to Reasoning".

One subpackage per stage of the Snakemake DAG, each runnable as
``python -m recall2reason.<stage> --help``:

    data -> pretrain -> sample -> vote -> judge -> report

``models`` holds the architectures (Transformer and Mamba / GLA / Gated DeltaNet
hybrids) shared by pretrain and sample; ``common`` holds small helpers every
stage uses (atomic writes, typed configs, logging).
"""

__version__ = "0.1.0"
