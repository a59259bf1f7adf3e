"""Data stage: tokenizer, training token shards, eval sets, contamination report.

Modules: ``template`` (the text format), ``tokenizer`` (SentencePiece wrapper), ``sources``
(training sources -> documents), ``synthetic`` (demo generator), ``pack`` (encode, mix,
shard), ``shards`` (reader used by pretrain), ``evalsets``, ``contamination``.
Importing this package loads no heavy dependency.
"""
