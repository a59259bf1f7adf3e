"""probe: in-context associative recall of every pretrained model, measured directly.

    probe/config.py     typed config (config.yaml ``probe:``)
    probe/generate.py   the seeded probe set: binding, distractor, update and MQAR-style probes
    probe/score.py      exact-match scoring with the vote stage's extractor; summary with intervals
    probe/run.py        the stage: greedy decoding with the sample stage's engine

Run ``python -m recall2reason.probe --help``.
"""
