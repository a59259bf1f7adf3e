"""The study's cost before it starts: ``python -m recall2reason.plan`` (and one line of ``snakemake -n``).

Per stage and model: tokens, expected GPU-hours on a named GPU kind from the measured throughputs in
``throughputs.yaml`` (each from a report under ``benchmarks/reports/``, with its date and commit),
the judge's calls and dollars (``judge.estimate``), and the total. Figures that are not a current measurement of that
model on that GPU are marked (``table.resolve``).
"""

from recall2reason.plan.config import PlanConfig
from recall2reason.plan.study import format_plan, load_study_config, plan_study, total_line
from recall2reason.plan.table import PlanError, load_table, resolve

__all__ = ["PlanConfig", "PlanError", "format_plan", "load_study_config", "load_table", "plan_study", "resolve",
           "total_line"]
