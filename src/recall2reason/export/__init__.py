"""The export stage: each trained model as a Hugging Face model directory that other tools load.

    export/run.py           export_model(): checkpoint + tokenizer -> directory, checked by loading it back
    export/hf_modeling.py   the model as transformers remote code (exported with the package code it imports inlined)
    export/inline.py        that inlining: the exported modeling file needs only torch and transformers
    export/hf_tokenizer.py  the SentencePiece tokenizer as a transformers tokenizer (exported verbatim)
    export/llama.py         all-attention models as transformers' own LlamaForCausalLM
    export/config.py        ExportConfig (config.yaml ``export:``)
"""

from recall2reason.export.config import ExportConfig

__all__ = ["ExportConfig"]
