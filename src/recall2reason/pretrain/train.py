"""The pretraining loop, top to bottom (nanoGPT style).

    setup:  data manifest + tokenizer check -> build_run: model -> AdamW -> (resume from the state
            dir) -> torch.compile -> CUDA-graphed micro-step -> DDP / all-reduce, as one TrainRun
    loop:   for step in start+1 .. total:
                lr = schedule(step)
                for each micro-batch of this rank: forward (bf16 autocast) + backward (grad accumulation;
                    on one GPU replayed from a CUDA graph, see graphs.py)
                clip the global grad norm, AdamW step
                every log_every steps: sync, log loss / lr / grad norm / tokens/s / MFU
                periodically and on SIGUSR1 / SIGTERM: checkpoint the resumable state (atomically)
    finish: model.safetensors + config.json + metrics.jsonl into the out dir

Nothing in the step waits for the GPU: the loss and grad norm stay on the device until a
logging step reads them.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from recall2reason.common.cfg import to_dict
from recall2reason.common.io import sha256_file
from recall2reason.models import ModelConfig, build_model, save_model
from recall2reason.common.signals import EXIT_CODE, StopSignals
from recall2reason.common.warmup import first_warmup, kernel_families
from recall2reason.pretrain.checkpoint import MetricsLog, load_state, save_state
from recall2reason.pretrain.config import PretrainJob, TrainConfig
from recall2reason.pretrain.data import DataOrder, StepBatches
from recall2reason.pretrain.distributed import Dist
from recall2reason.pretrain.flops import model_flops_per_token, peak_flops
from recall2reason.pretrain.graphs import GraphedMicroStep
from recall2reason.pretrain.loss import fused_linear_cross_entropy
from recall2reason.pretrain.schedule import build_optimizer, lr_at

log = logging.getLogger("recall2reason.pretrain")


class PretrainError(ValueError):
    """Inputs that cannot be trained on (wrong tokenizer, vocab too small, batch does not divide)."""


class LossModule(nn.Module):
    """model + fused LM-head cross-entropy as one module, so DDP sees (and syncs) the whole step."""

    def __init__(self, model, cfg: TrainConfig):
        super().__init__()
        self.model = model
        self.chunk = cfg.loss_chunk_tokens
        self.compute_dtype = torch.bfloat16 if cfg.precision == "bf16" else torch.float32
        self.residual_dtype = self.compute_dtype if cfg.residual_dtype == "compute" else torch.float32
        self.compile_loss = cfg.compile

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        h = self.model.hidden(inputs, self.residual_dtype)
        return fused_linear_cross_entropy(h, self.model.lm_head.weight, targets, self.chunk, self.compute_dtype, self.compile_loss)


def compile_model(model, scope: str = "model", mode: str | None = None) -> None:
    """torch.compile the part of ``model`` that training runs, in place; state-dict keys are unchanged.

    ``model``: ``HybridLM.hidden`` (embedding, every block, final norm) as one graph, so inductor
    fuses across block boundaries, e.g. both RMSNorm backwards of every block with their weight
    gradients (in a lone block graph only one of the two is). Where dynamo cannot trace a kernel
    call of a recurrent mixer, the graph splits there. ``blocks``: regional compilation, each block
    (mixer + MLP + norms) on its own. Blocks of the same kind share one compiled graph, so it
    compiles faster. Under DDP (``grad_sync: ddp``) each block's gradients are then all-reduced as
    its backward ends; one graph hands all of them over at the end. ``mode``: torch.compile's.
    benchmarks/reports/2026-12-06-pretrain-3-whole-model-compile.md times both."""
    if scope == "model":
        model.hidden = torch.compile(model.hidden, mode=mode)  # an instance attribute over the method
    elif scope == "blocks":
        for block in model.blocks:
            block.compile(mode=mode)
    else:
        raise ValueError(f"unknown compile scope {scope!r}; use 'model' or 'blocks'")


def train_step(step_module, ddp_module, optimizer, params, micro_batches, n_micro: int, lr: float,
               cfg: TrainConfig, device: torch.device, graphed: GraphedMicroStep | None = None, grad_sync=None):
    """One optimizer step over ``n_micro`` micro-batches; returns (mean loss, grad norm) as device tensors.
    With ``graphed``, each micro-batch's fwd + bwd is a CUDA-graph replay (pretrain/graphs.py);
    ``grad_sync(params)`` averages the accumulated gradients over ranks where DDP does not."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
    loss_sum = torch.zeros((), device=device)
    for i, (inputs, targets) in enumerate(micro_batches):
        if graphed is not None:
            loss_sum += graphed(inputs, targets)
            continue
        last = i == n_micro - 1
        no_sync = ddp_module.no_sync() if (ddp_module is not None and not last) else contextlib.nullcontext()
        with no_sync:
            with autocast:
                loss = (ddp_module or step_module)(inputs, targets)
            (loss / n_micro).backward()
        loss_sum += loss.detach()
    if grad_sync is not None:
        grad_sync(params)
    if cfg.grad_clip is not None:
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip, foreach=True)
    else:
        grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None], foreach=True)
    optimizer.step()
    optimizer.zero_grad(set_to_none=graphed is None)  # a graph's backward adds into fixed .grad buffers
    return loss_sum / n_micro, grad_norm


@dataclass
class TrainRun:
    """The wired training step of one model: what ``build_run`` returns and the loop (``train``)
    and the GPU benchmarks (benchmarks/train_throughput.py, benchmarks/profile_gpu.py) drive.
    ``step(micro_batches, lr)`` is one optimizer step (``train_step``)."""

    cfg: TrainConfig
    model: nn.Module
    optimizer: torch.optim.Optimizer
    params: list
    step_module: LossModule
    graphed: GraphedMicroStep | None
    device: torch.device
    n_micro: int
    ddp: nn.Module | None = None  # DistributedDataParallel around step_module (grad_sync ddp)
    grad_sync: Callable | None = None  # averages the accumulated gradients over ranks (grad_sync allreduce)

    def step(self, micro_batches, lr: float):
        """One optimizer step over ``n_micro`` micro-batches; (mean loss, grad norm) as device tensors."""
        return train_step(self.step_module, self.ddp, self.optimizer, self.params, micro_batches, self.n_micro, lr,
                          self.cfg, self.device, self.graphed, self.grad_sync)


def build_run(cfg: TrainConfig, model_cfg: ModelConfig | dict, device: torch.device, n_micro: int, dist: Dist | None = None,
              restore: Callable[[nn.Module, torch.optim.Optimizer], None] | None = None,
              compile_mode: str | None = None) -> TrainRun:
    """Model, AdamW, torch.compile, the CUDA-graphed micro-step and (several ranks) DDP or the
    all-reduce, in the trainer's order. ``restore(model, optimizer)`` runs once both exist and
    before anything wraps them (the trainer's resume: load the state, then the barrier);
    ``compile_mode``: torch.compile's (the benchmarks' ``--compile-mode``; the trainer's is None)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(cfg.seed)
    model = build_model(model_cfg).to(device)
    optimizer = build_optimizer(model, cfg, device)
    params = [q for q in model.parameters() if q.requires_grad]
    if restore is not None:
        restore(model, optimizer)

    if cfg.compile:
        compile_model(model, cfg.compile_scope, compile_mode)
    step_module = LossModule(model, cfg)
    graphed = GraphedMicroStep.from_config(step_module, params, n_micro, cfg, device)
    ddp, grad_sync = None, None
    multi = dist is not None and dist.enabled
    if multi and (cfg.grad_sync == "ddp" or (cfg.grad_sync == "auto" and graphed is None)):
        from torch.nn.parallel import DistributedDataParallel

        if graphed is not None:  # DDP's hooks cannot run inside a replayed backward
            graphed = None
            if dist.is_main:
                log.info("train.grad_sync ddp: micro-steps run eagerly (no CUDA graph)")
        ddp = DistributedDataParallel(step_module, device_ids=[device.index] if device.type == "cuda" else None)
    elif multi:
        dist.broadcast_params(step_module)
        grad_sync = dist.average_grads
    return TrainRun(cfg, model, optimizer, params, step_module, graphed, device, n_micro, ddp, grad_sync)


def plan(cfg: TrainConfig, shards, world: int) -> dict:
    """Batch geometry and run length from the config and the data manifest (errors name the fix)."""
    T = shards.seq_len
    if cfg.global_batch_tokens % T:
        raise PretrainError(f"train.global_batch_tokens {cfg.global_batch_tokens} is not a multiple of the data seq_len {T}")
    G = cfg.global_batch_tokens // T
    if G % (world * cfg.micro_batch_size):
        raise PretrainError(
            f"global batch of {G} sequences ({cfg.global_batch_tokens} tokens / {T}) does not split into "
            f"{world} rank(s) x micro_batch_size {cfg.micro_batch_size}; change train.global_batch_tokens or micro_batch_size"
        )
    epochs = float(shards.manifest.get("epochs", 1))
    run_steps = math.floor(shards.n_sequences * epochs / G)
    total = cfg.max_steps or run_steps
    if total < 1:
        raise PretrainError(
            f"{shards.n_sequences} sequences x {epochs:g} epochs is less than one global batch of {G} sequences; "
            "lower train.global_batch_tokens or make more data"
        )
    return {"seq_len": T, "global_batch": G, "accum": G // (world * cfg.micro_batch_size), "total_steps": total,
            "epochs": epochs, "data_steps": run_steps}


def check_inputs(shards, model_cfg: ModelConfig, tokenizer_path: str | Path) -> None:
    shards.check_tokenizer(tokenizer_path)  # raises TokenizerMismatchError with both hashes
    vocab = int(shards.manifest["vocab_size"])
    if model_cfg.vocab_size < vocab:
        raise PretrainError(
            f"model vocab_size {model_cfg.vocab_size} is smaller than the tokenizer's {vocab} "
            f"(ids up to {vocab - 1} would index past the embedding); set models.base.vocab_size >= {vocab}"
        )
    if shards.seq_len > model_cfg.max_seq_len:
        raise PretrainError(f"data seq_len {shards.seq_len} exceeds the model's max_seq_len {model_cfg.max_seq_len}")


class Trackers:
    """Optional TensorBoard / W&B scalars (rank 0 only, only when configured)."""

    def __init__(self, cfg: TrainConfig, name: str, state_dir: Path, config: dict):
        self.tb = self.wandb = None
        if cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise PretrainError("train.tensorboard is true but the tensorboard package is not installed") from e
            self.tb = SummaryWriter(str(state_dir / "tensorboard"))
        if cfg.wandb_project:
            try:
                import wandb
            except ImportError as e:
                raise PretrainError("train.wandb_project is set but the wandb package is not installed") from e
            self.wandb = wandb.init(project=cfg.wandb_project, name=name, config=config, resume="allow", id=name)

    def log(self, row: dict) -> None:
        if self.tb is not None:
            for k, v in row.items():
                if k != "step" and v is not None:
                    self.tb.add_scalar(f"train/{k}", v, row["step"])
        if self.wandb is not None:
            self.wandb.log({f"train/{k}": v for k, v in row.items() if k != "step"}, step=row["step"])

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()


def train(job: PretrainJob, data: str | Path, tokenizer: str | Path, out_dir: str | Path, state_dir: str | Path,
          dist: Dist | None = None) -> dict:
    from recall2reason.data.shards import TokenShards

    t_enter = time.perf_counter()
    dist = dist or Dist()
    cfg, device = job.train, dist.device
    out_dir, state_dir = Path(out_dir), Path(state_dir)

    # ---- inputs and run geometry -----------------------------------------------------------
    shards = TokenShards(data)
    model_cfg = ModelConfig.from_dict(job.model)
    check_inputs(shards, model_cfg, tokenizer)
    if dist.is_main:  # once per job; the other ranks wait at the barrier below (or torchrun stops them)
        t0 = time.perf_counter()
        shards.verify()
        log.info("%d shards match their sha256 in %s (%.1f s)", len(shards.files), data, time.perf_counter() - t0)
    p = plan(cfg, shards, dist.world)
    T, total_steps, n_micro = p["seq_len"], p["total_steps"], p["accum"]
    tokens_per_step = p["global_batch"] * T

    # ---- model, optimizer, resume, torch.compile, CUDA graph, DDP --------------------------
    fingerprint = {
        "train": cfg.resume_fingerprint(),
        # backends and kernel choices share one state-dict layout and function: a resume may change them
        "model": model_cfg.to_dict() | {"backend": None, "kernels": None},
        "data": {"tokenizer_sha256": shards.tokenizer_sha256, "n_sequences": shards.n_sequences, "seq_len": T,
                 "manifest_sha256": sha256_file(shards.manifest_path)},
    }
    state_path = state_dir / "state.pt"
    start_step, elapsed_before = 0, 0.0

    def resume(model, optimizer) -> None:  # before compile / graph / DDP wrap them
        nonlocal start_step, elapsed_before
        if state_path.exists():
            st = load_state(state_path, model, optimizer, fingerprint, device)
            start_step, elapsed_before = int(st["step"]), float(st["elapsed_s"])
            if dist.is_main:
                log.info("resuming %s from %s at step %d / %d", job.name, state_path, start_step, total_steps)
        dist.barrier()

    run = build_run(cfg, model_cfg, device, n_micro, dist, restore=resume)
    model, optimizer, graphed, ddp = run.model, run.optimizer, run.graphed, run.ddp
    metrics = MetricsLog(state_dir / "metrics.jsonl", keep_until=start_step) if dist.is_main else None

    order = DataOrder(shards.n_sequences, p["global_batch"], cfg.seed)
    batches = StepBatches(shards, order, dist.rank, dist.world, cfg.micro_batch_size, device)
    flops_per_token = model_flops_per_token(model, T)
    peak = peak_flops(device, cfg.peak_tflops)
    n_params, n_non_embed = model.num_params(), model.num_params(non_embedding=True)
    if dist.is_main:
        log.info(
            "%s: %.1fM params (%.1fM non-embedding), backend %s, %d steps x %d tokens (%d x %d seq x %d accum x %d ranks), "
            "%.3g FLOPs/token, device %s, CUDA-graph micro-step %s%s", job.name, n_params / 1e6, n_non_embed / 1e6,
            model.backend, total_steps, tokens_per_step, cfg.micro_batch_size, T, n_micro, dist.world, flops_per_token,
            device, "on" if graphed else "off",
            "" if not dist.enabled else f", gradients averaged by {'DDP' if ddp is not None else 'all-reduce after accumulation'}")
    trackers = Trackers(cfg, job.name, state_dir, {"model": model_cfg.to_dict(), "train": to_dict(cfg)}) if dist.is_main else None

    # ---- the loop -----------------------------------------------------------------------------
    # one cold warm-up per recurrent kernel family among the study's concurrent jobs (common/warmup.py);
    # single-process jobs only: the ranks of one job wait on each other inside the first step
    warmup = contextlib.nullcontext()
    if device.type == "cuda" and dist.world == 1:
        run_shape = {"micro_batch": cfg.micro_batch_size, "seq_len": T, "precision": cfg.precision,
                     "compile": cfg.compile, "gpu": torch.cuda.get_device_name(device)}
        warmup = first_warmup(kernel_families(model_cfg.to_dict(), "train", run_shape))
    signals = StopSignals(checkpoint_signal=True)  # TERM exits at once until the first step is done
    bar = None
    if dist.is_main:
        from tqdm import tqdm

        bar = tqdm(total=total_steps, initial=start_step, unit="step", desc=f"pretrain {job.name}",
                   dynamic_ncols=True, file=sys.stderr, mininterval=1.0)
    run_t0 = time.perf_counter()
    last_ckpt_t = log_t = run_t0
    log_step = start_step
    step = start_step

    def checkpoint(step: int, done: bool = False) -> None:
        if dist.is_main:
            save_state(state_path, model, optimizer, step, elapsed_before + time.perf_counter() - run_t0, fingerprint, done)
        dist.barrier()

    try:
        for step in range(start_step + 1, total_steps + 1):
            lr = lr_at(step, cfg.lr, cfg.warmup_steps, total_steps, cfg.final_lr_ratio)
            first = signals.nothing_to_save  # the first step of this run: compile, autotune and capture
            with warmup if first else contextlib.nullcontext():
                loss, grad_norm = run.step(batches(step), lr)
                if first:
                    loss.item()  # wait for it
            if first:
                signals.nothing_to_save = False
                if dist.is_main:
                    log.info("first step done %.1f s after start (model build, compile, kernel autotune, CUDA-graph capture)",
                             time.perf_counter() - t_enter)

            is_log = step % cfg.log_every == 0 or step == total_steps or step == 1
            if is_log:
                loss_v = dist.mean(loss).item()  # the only host syncs: on logging steps
                gn_v = grad_norm.item()
                now = time.perf_counter()
                tok_s = (step - log_step) * tokens_per_step / (now - log_t)
                mfu = tok_s * flops_per_token / (peak * dist.world) if peak else None
                log_t, log_step = now, step
                if not math.isfinite(loss_v):
                    raise FloatingPointError(f"loss is {loss_v} at step {step}; last checkpoint kept in {state_dir}")
                if dist.is_main:
                    row = {"step": step, "tokens": step * tokens_per_step, "loss": loss_v, "lr": lr, "grad_norm": gn_v,
                           "tokens_per_s": tok_s, "mfu": mfu, "elapsed_s": elapsed_before + now - run_t0}
                    metrics.append(row)
                    trackers.log(row)
                    bar.set_postfix(loss=f"{loss_v:.4f}", tok_s=f"{tok_s:,.0f}", mfu=f"{mfu:.1%}" if mfu else "n/a",
                                    lr=f"{lr:.2e}", refresh=False)
            if bar is not None:
                bar.update(1)

            # checkpoint: every N steps, every M minutes, on SIGUSR1 / SIGTERM (ranks agree on log steps)
            due_steps = cfg.checkpoint_every_steps is not None and step % cfg.checkpoint_every_steps == 0
            flags = [time.perf_counter() - last_ckpt_t >= cfg.checkpoint_every_minutes * 60, signals.checkpoint_requested,
                     signals.exit_requested]
            if dist.enabled:
                flags = dist.any(flags) if is_log else [False, False, False]
            if (due_steps or any(flags)) and step < total_steps:
                checkpoint(step)
                last_ckpt_t = time.perf_counter()
                signals.checkpoint_requested = False
                if dist.is_main:
                    log.info("checkpoint at step %d -> %s", step, state_path)
                if flags[2]:
                    if dist.is_main:
                        log.warning("SIGTERM: checkpointed at step %d; exiting (re-run to resume)", step)
                    raise SystemExit(EXIT_CODE)
    finally:
        signals.restore()
        if bar is not None:
            bar.close()

    # ---- final outputs ------------------------------------------------------------------------
    checkpoint(total_steps, done=True)
    result = {
        "name": job.name,
        "tokenizer_sha256": shards.tokenizer_sha256,
        "train": to_dict(cfg),
        "tokens_seen": total_steps * tokens_per_step,
        "steps": total_steps,
        "global_batch_sequences": p["global_batch"],
        "seq_len": T,
        "data": {"manifest": str(data), "epochs": p["epochs"], "data_steps": p["data_steps"],
                 "total_tokens": shards.manifest.get("total_tokens")},
        "world_size": dist.world,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "backend": model.backend,
        "kernels_used": model.kernels_used(),  # model.kernels with "auto" resolved on this machine
        "flops_per_token": flops_per_token,
        "train_wall_s": elapsed_before + time.perf_counter() - run_t0,
    }
    if dist.is_main:
        save_model(model, out_dir, extra=result)
        metrics.publish(out_dir / "metrics.jsonl")
        metrics.close()
        trackers.close()
        log.info("wrote %s (model.safetensors, config.json, metrics.jsonl)", out_dir)
    dist.barrier()
    return result
