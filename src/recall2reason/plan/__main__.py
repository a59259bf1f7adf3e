"""``python -m recall2reason.plan``: the study's GPU-hours and judge dollars before anything runs.

    python -m recall2reason.plan [--configfile a.yaml b.yaml] [--gpu h200] [--completion-tokens 400] [--json]

Reads config.yaml (run it from the repository root) with the same ``--configfile`` overlays as the
DAG, checked the same way; options override the config's ``plan:`` section.
"""

from __future__ import annotations

import argparse
import json
import sys

from recall2reason.common import ConfigError, InputFileError, to_dict


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m recall2reason.plan", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configfile", nargs="+", default=[], help="YAML files merged over config.yaml, as snakemake's")
    p.add_argument("--base", default="config.yaml", help="the base config (default: config.yaml)")
    p.add_argument("--gpu", help="GPU kind (plan.gpu), e.g. h100, h200, a100")
    p.add_argument("--completion-tokens", type=int, help="new tokens per completion (plan.completion_tokens)")
    p.add_argument("--tokens-per-epoch", type=float, help="pretraining tokens per epoch (plan.tokens_per_epoch)")
    p.add_argument("--json", action="store_true", help="print every number as JSON")
    args = p.parse_args(argv)

    from recall2reason.plan import PlanConfig, PlanError, format_plan, load_study_config, plan_study

    try:
        config = load_study_config(args.configfile, args.base)
        section = {**(config.get("plan") or {})}
        for key in ("gpu", "completion_tokens", "tokens_per_epoch"):
            if getattr(args, key) is not None:
                section[key] = getattr(args, key)
        result = plan_study(config, PlanConfig.from_dict(section))
    except (ConfigError, PlanError, InputFileError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(to_dict(result), indent=2) if args.json else format_plan(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
