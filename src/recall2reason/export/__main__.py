"""python -m recall2reason.export --cfg '<export section as JSON>' --model-dir ... --tokenizer ... --out ..."""

from __future__ import annotations

from recall2reason.common import ConfigError, load_cfg_arg
from recall2reason.common.cli import setup_logging, stage_parser


def main(argv: list[str] | None = None) -> int:
    p = stage_parser("python -m recall2reason.export", "Write one trained model as a Hugging Face model directory.")
    p.add_argument("--model-dir", required=True, help="results/pretrain/<model> (model.safetensors + config.json)")
    p.add_argument("--tokenizer", required=True, help="results/data/tokenizer.model (the one the model was trained with)")
    p.add_argument("--prompt-prefix", default="eos", choices=["eos", "bos", "none"],
                   help="the token the tokenizer puts before a text (sample.prompt_prefix)")
    p.add_argument("--out", required=True, help="results/export/<model> (replaced as a whole)")
    args = p.parse_args(argv)
    setup_logging(args.log_level)

    from recall2reason.export.config import ExportConfig
    from recall2reason.export.run import export_model

    try:
        cfg = ExportConfig.from_dict(load_cfg_arg(args.cfg))
    except ConfigError as e:
        p.error(str(e))
    export_model(cfg, model_dir=args.model_dir, tokenizer=args.tokenizer, prompt_prefix=args.prompt_prefix, out=args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
