"""Report stage: Tables 1 and 7 and Figures 2, 3, 4, 5, 9 (+ accuracy vs GPU-seconds).

CLI shapes: see ``recall2reason.report.__main__``; FLOP model: ``recall2reason.report.flops``.
"""
