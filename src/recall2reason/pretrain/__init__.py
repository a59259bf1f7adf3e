"""Pretraining stage (paper Section 3.3, Appendix B.3): one job per model.

    pretrain/config.py       TrainConfig (the ``train:`` section) + PretrainJob (name, model, train)
    pretrain/schedule.py     AdamW parameter groups and the warmup + cosine learning-rate schedule
    pretrain/data.py         deterministic data order: sequence ids as a function of (seed, epoch, step)
    pretrain/loss.py         fused linear + cross-entropy over token chunks (no full logits, no recompute)
    pretrain/flops.py        FLOPs per token (MFU convention) and datasheet peaks
    pretrain/distributed.py  torchrun detection / self-relaunch, process group, rank helpers
    pretrain/checkpoint.py   resumable state (model, optimizer, step, RNG) + signal-triggered saves
    pretrain/train.py        the training loop, top to bottom

CLI: ``python -m recall2reason.pretrain --help``.
"""
