"""What each JSON-lines file the stages hand on holds, worded for error messages ("expected ...").

docs/design.md has the full formats; these name the keys a reader needs and who writes the file.
"""

EVAL_SET = ("one eval problem per line: an object with keys id, question, prompt, gold, answer_style, ... "
            "(data stage: data/eval/<dataset>.jsonl)")
SAMPLES = ("one completion per line: an object with keys problem_id, sample_idx, text, n_tokens, ... "
           "(sample stage: samples/<model>/<dataset>/part-<k>.jsonl)")
VOTE_PROBLEMS = ("one problem per line: an object with keys id, correct, answers, ... "
                 "(vote stage: vote/<model>/<dataset>.problems.jsonl)")
JUDGEMENTS = ("one judged completion per line: an object with keys problem_id, sample_idx, error_category, "
              "error_group, ... (judge stage: judge/<model>/<dataset>.jsonl)")
METRICS = "one logged step per line: an object with keys step, loss, lr, ... (pretrain's metrics log)"
