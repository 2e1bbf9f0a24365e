"""The trainer: one loop for every family, on one process or many.

Processes: Accelerate sets up the process group (``accelerate launch`` or ``torchrun``); each
process takes a contiguous slice of every global batch, and gradients are averaged with one flat
all-reduce per optimizer update (as StyleGAN2-ADA does: GAN steps run several forward passes per
backward, which DDP's bucketed hooks do not expect). Every random draw of a step comes from a
generator seeded by (seed, step) and is made for the whole global batch before slicing, so two
processes compute what one process computes on the same global batch.

Exact resume: weights, EMA copies, optimizer state and counters are checkpointed; data order,
augmentation and latents are functions of (seed, step). A run killed between two checkpoints and
resumed ends bit-identical to one that was never interrupted.
"""

from __future__ import annotations

import shutil
import signal
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from pixelforge import runs
from pixelforge.data import ImageDataset, augment_batch, open_dataset
from pixelforge.devices import as_device
from pixelforge.errors import ConfigError, Interrupted, TrainingError
from pixelforge.hub import load as load_model
from pixelforge.hub import save_model
from pixelforge.io.atomic import atomic_directory
from pixelforge.io.images import write_png
from pixelforge.training.logging import RunLogger
from pixelforge.training.run import RunSpec, resume_mismatch, write_run
from pixelforge.training.state import StateMismatch, load_state, save_state
from pixelforge.training.task import StepContext, TrainTask
from pixelforge.version import __version__
from pixelforge.viz import make_grid

Callback = Callable[["Trainer", int, dict[str, float]], None]


class TrainingInterrupted(Interrupted):
    """Ctrl-C: a checkpoint was written; running the same command again resumes."""


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers (SeedSequence mixing: nearby inputs give unrelated seeds)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0] >> 1)


class Trainer:
    """Trains ``spec`` into ``run_dir``, resuming from its latest checkpoint when there is one."""

    def __init__(
        self,
        spec: RunSpec,
        run_dir: str | Path,
        *,
        callbacks: Sequence[Callback] = (),
        progress: bool = True,
        dataset: ImageDataset | None = None,
    ) -> None:
        self.spec = spec
        self.run_dir = Path(run_dir)
        self.callbacks = list(callbacks)
        self.progress = progress
        self.cfg = spec.train
        self._setup_processes()
        torch.manual_seed(self.cfg.seed)
        self.task: TrainTask = spec.family.task_cls(spec.model, spec.train)
        # train.eval_every logs the task's own evaluation, else FID of samples from noise
        self._fid_eval = bool(self.cfg.eval_every) and not hasattr(self.task, "evaluate")
        if self._fid_eval and spec.family.kind != "generator":
            raise ConfigError(
                f"train.eval_every measures FID of generated samples, and a {spec.family.name} "
                "model generates none: leave it 0, and measure the run on held-out images with "
                "its command and `pixelforge eval psnr RESULTS/ ORIGINALS/` (`pixelforge eval "
                "matting` for a matting model)."
            )
        for module in self.task.modules.values():
            module.to(self.device)
        for opt in self.task.optimizers.values():
            for group in opt.param_groups:
                group.setdefault("initial_lr", group["lr"])
        if self.world_size > 1:
            self._sync_batch_norm()
            self._broadcast_modules()
        if dataset is None and spec.family.open_data is not None:
            dataset = spec.family.open_data(spec.data, spec.model, spec.train)
        self.dataset = (
            dataset
            if dataset is not None
            else open_dataset(
                spec.data,
                image_size=spec.model.image_size,
                channels=spec.model.channels,
                config=spec.data_config,
                progress=progress and self.is_main,
                mattes=spec.family.data_kind == "mattes",
            )
        )
        self.task.attach_data(self.dataset)
        if len(self.dataset) < self.cfg.batch_size:
            raise ConfigError(
                f"train.batch_size={self.cfg.batch_size} is larger than the dataset ({len(self.dataset)} "
                f"images in {spec.data}); lower it with --set train.batch_size=N."
            )
        self.step = 0
        self.nonfinite_total = 0
        self.nonfinite_run = 0
        self._perm_epoch = -1
        self._perm: torch.Tensor | None = None
        self._stop_requested = False
        self._ema_lists: list[tuple[list[torch.Tensor], ...]] | None = None
        self._one = torch.ones((), device=self.device)

    # ------------------------------------------------------------------ processes and devices

    def _setup_processes(self) -> None:
        from accelerate import PartialState

        device = as_device(self.cfg.device)
        state = PartialState(cpu=device.type == "cpu")
        self.world_size = state.num_processes
        self.rank = state.process_index
        self.is_main = state.is_main_process
        self.device = state.device if self.world_size > 1 else device
        if self.cfg.batch_size % self.world_size:
            fits = -(-self.cfg.batch_size // self.world_size) * self.world_size
            raise ConfigError(
                f"train.batch_size={self.cfg.batch_size} is the global batch, split evenly "
                f"across the {self.world_size} processes: use a multiple of {self.world_size}, "
                f"such as --set train.batch_size={fits}."
            )
        self.local_batch = self.cfg.batch_size // self.world_size
        self.autocast_dtype = torch.bfloat16 if self.cfg.precision == "bf16" else None

    def _sync_batch_norm(self) -> None:
        """Batch statistics over the global batch where torch supports it (GPUs), so that N
        processes train like one; on CPUs each process normalises its own slice."""
        has_bn = any(
            isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
            for module in self.task.modules.values()
            for m in module.modules()
        )
        if not has_bn:
            return
        if self.device.type == "cuda":
            for module in self.task.modules.values():
                torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
        elif self.is_main:
            import warnings

            warnings.warn(
                "batch norm with several CPU processes normalises each process's slice "
                "(torch's SyncBatchNorm needs GPUs); results differ slightly from one process.",
                stacklevel=2,
            )

    def _broadcast_modules(self) -> None:
        for module in self.task.modules.values():
            for t in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(t.data, src=0)

    def _barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    # ------------------------------------------------------------------ data order

    def batch_indices(self, step: int) -> torch.Tensor:
        """Dataset indices of this process's share of the global batch of ``step``."""
        n, b = len(self.dataset), self.cfg.batch_size
        per_epoch = n // b
        epoch, i = divmod(step, per_epoch)
        if epoch != self._perm_epoch:
            g = torch.Generator().manual_seed(derive_seed(self.cfg.seed, epoch, 1))
            self._perm = torch.randperm(n, generator=g)
            self._perm_epoch = epoch
        assert self._perm is not None
        start = i * b + self.rank * self.local_batch
        return self._perm[start : start + self.local_batch]

    # ------------------------------------------------------------------ optimisation

    def _optimize(self, name: str, loss: torch.Tensor, ctx: StepContext) -> bool:
        opt = self.task.optimizers[name]
        params = self.task.trained_parameters(name)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        loss_bad = (~torch.isfinite(loss.detach().float())).float().reshape(1)
        if self.world_size > 1:
            flat = torch.cat([g.reshape(-1) for g in grads] + [loss_bad.to(grads[0].device)])
            dist.all_reduce(flat)
            finite = bool(torch.isfinite(flat).all()) and float(flat[-1]) == 0.0
            flat /= self.world_size
            offset = 0
            for p, g in zip(params, grads, strict=True):
                n = g.numel()
                p.grad = flat[offset : offset + n].view_as(g)
                offset += n
        else:
            # One fused check over every gradient (the one GradScaler uses; multiplying by 1
            # leaves finite values bit-identical) instead of one synchronising check per tensor.
            found = torch.zeros(1, device=grads[0].device)
            torch._amp_foreach_non_finite_check_and_unscale_(grads, found, self._one)
            finite = float(loss_bad) == 0.0 and float(found) == 0.0
        if not finite:
            opt.zero_grad(set_to_none=True)
            ctx.skipped.append(name)
            return False
        opt.step()
        return True

    @torch.no_grad()
    def _update_ema(self, step: int) -> None:
        beta = self.cfg.ema_beta(step)
        if self._ema_lists is None:  # the tensors never change identity, so list them once
            self._ema_lists = []
            for ema_name, src_name in self.task.ema.items():
                ema, src = self.task.modules[ema_name], self.task.modules[src_name]
                self._ema_lists.append(
                    (
                        list(ema.parameters()),
                        list(src.parameters()),
                        list(ema.buffers()),
                        list(src.buffers()),
                    )
                )
        for ema_p, src_p, ema_b, src_b in self._ema_lists:
            if beta == 0.0:
                torch._foreach_copy_(ema_p, src_p)
            else:
                torch._foreach_lerp_(ema_p, src_p, 1.0 - beta)
            if ema_b:
                torch._foreach_copy_(ema_b, src_b)

    def _set_lr(self, step: int) -> float:
        factor = self.cfg.lr_factor(step)
        lr = 0.0
        for opt in self.task.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = group["initial_lr"] * factor
                lr = group["lr"]
        return lr

    def _seed_global_rng(self, seed: int) -> None:
        """Seed the global generators a family's layers may use (dropout): cheaper than
        torch.manual_seed, which also queues seeds for every other device type."""
        torch.default_generator.manual_seed(seed)
        if self.device.type == "cuda":
            torch.cuda.manual_seed(seed)

    def run_step(self, step: int) -> dict[str, float]:
        """Train one global step; returns the logged values."""
        lr = self._set_lr(step)
        gen = torch.Generator().manual_seed(derive_seed(self.cfg.seed, step, 2))
        self._seed_global_rng(derive_seed(self.cfg.seed, step, 3, self.rank))
        batch = self.dataset.get_batch(self.batch_indices(step))
        offset = self.rank * self.local_batch
        if "image" in batch:
            batch["image"] = augment_batch(
                batch["image"],
                gen,
                self.spec.data_config,
                global_batch=self.cfg.batch_size,
                offset=offset,
            )
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        ctx = StepContext(
            step=step,
            generator=gen,
            global_batch=self.cfg.batch_size,
            offset=offset,
            local_batch=self.local_batch,
            device=self.device,
            autocast_dtype=self.autocast_dtype,
            optimize=lambda name, loss: False,
        )
        ctx.optimize = lambda name, loss: self._optimize(name, loss, ctx)
        for module_name, module in self.task.modules.items():
            if module_name not in self.task.ema and not module.training:
                module.train()
        losses = self.task.train_step(batch, ctx)
        if self.task.ema:
            self._update_ema(step)
        if ctx.skipped:
            self.nonfinite_total += 1
            self.nonfinite_run += 1
            if self.nonfinite_run >= self.cfg.max_nonfinite:
                raise TrainingError(
                    f"{self.nonfinite_run} steps in a row had a non-finite loss or gradient (last at step "
                    f"{step + 1}); stopping. The last checkpoint is intact. Try a lower train.lr, "
                    "train.precision=fp32, or check the data."
                )
        else:
            self.nonfinite_run = 0
        values = torch.stack(
            [v.detach().float().reshape(()).to(self.device) for v in losses.values()]
        )
        if self.world_size > 1:  # the losses of the global batch, not of this process's slice
            dist.all_reduce(values)
            values /= self.world_size
        out = dict(zip(losses, values.tolist(), strict=True))
        out["lr"] = lr
        return out

    # ------------------------------------------------------------------ checkpoints

    def _counters(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "nonfinite_total": self.nonfinite_total,
            "nonfinite_run": self.nonfinite_run,
            "world_size": self.world_size,
        }

    def save_checkpoint(self) -> Path | None:
        """Write a checkpoint of the current step atomically and prune old ones (main process)."""
        target = self.run_dir / runs.CHECKPOINTS / runs.checkpoint_name(self.step)
        if self.is_main:
            for name, module in self.task.modules.items():
                for key, t in module.state_dict().items():
                    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                        raise TrainingError(
                            f"refusing to save a checkpoint: {name}.{key} is not finite."
                        )
            if target.exists():
                shutil.rmtree(target)
            card = {"data": self.spec.data, "steps": self.step, "pixelforge_version": __version__}
            card |= {"init": self.spec.init} if self.spec.init else {}
            card |= self.task.card()
            with atomic_directory(target) as tmp:
                save_model(self.task.export(), tmp / runs.MODEL_SUBDIR, card=card)
                save_state(
                    tmp,
                    modules=self.task.modules,
                    optimizers=self.task.optimizers,
                    counters=self._counters(),
                )
            for _, old in runs.list_checkpoints(self.run_dir)[: -self.cfg.keep_checkpoints]:
                shutil.rmtree(old, ignore_errors=True)
        self._barrier()
        return target

    def _resume(self) -> bool:
        latest = runs.latest_checkpoint(self.run_dir)
        if latest is None:
            return False
        step, folder = latest
        try:
            counters = load_state(
                folder, modules=self.task.modules, optimizers=self.task.optimizers
            )
        except StateMismatch as exc:  # --set train.adv_weight=... on a run without a D
            raise resume_mismatch(self.run_dir, self.spec, str(exc)) from None
        for module in self.task.modules.values():
            module.to(self.device)
        self.step = int(counters["step"])
        self.nonfinite_total = int(counters.get("nonfinite_total", 0))
        self.nonfinite_run = int(counters.get("nonfinite_run", 0))
        if step != self.step:
            raise TrainingError(
                f"checkpoint {folder} is named for step {step} but holds step {self.step}."
            )
        return True

    def _init_from(self, model_spec: str) -> None:
        model = load_model(model_spec, device=self.device)
        self.task.init_from(model)

    # ------------------------------------------------------------------ the loop

    @contextmanager
    def _interrupts(self) -> Iterator[None]:
        """First Ctrl-C: finish the step, checkpoint, stop. Second: stop at once."""

        def handler(signum: int, frame: Any) -> None:
            if self._stop_requested:
                raise KeyboardInterrupt
            self._stop_requested = True

        try:
            previous = signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _stop_agreed(self) -> bool:
        if self.world_size == 1:
            return self._stop_requested
        flag = torch.tensor([1.0 if self._stop_requested else 0.0], device=self.device)
        dist.all_reduce(flag)
        return bool(flag.item() > 0)

    def fit(self) -> Path:
        """Train to ``train.steps``; returns the path of the last checkpoint."""
        resumed = self._resume()
        if not resumed and self.spec.init:
            self._init_from(self.spec.init)
        self.task.prepare(self.device)
        if self.is_main:
            write_run(self.run_dir, self.spec)
        self._barrier()
        logger = RunLogger(
            self.run_dir,
            enabled=self.is_main,
            tensorboard=self.cfg.tensorboard,
            progress=self.progress,
            total=self.cfg.steps,
            start=self.step,
            log_every=self.cfg.log_every,
        )
        last: Path | None = None
        try:
            with self._interrupts(), logger:
                if self._fid_eval and self.is_main:  # said before the first step, not after
                    self._fid_reference()
                if self.step == 0 and self.is_main and self.cfg.sample_every:
                    self._write_samples()
                while self.step < self.cfg.steps:
                    values = self.run_step(self.step)
                    self.step += 1
                    logger.step(
                        self.step,
                        values,
                        nonfinite_total=self.nonfinite_total,
                        images=self.cfg.batch_size,
                    )
                    if (
                        self.cfg.sample_every
                        and self.step % self.cfg.sample_every == 0
                        and self.is_main
                    ):
                        self._write_samples()
                    if self.cfg.eval_every and self.step % self.cfg.eval_every == 0:
                        if self.is_main:
                            logger.extra(self.step, self.evaluate())
                        self._barrier()
                    saved = (
                        self.step % self.cfg.checkpoint_every == 0 or self.step == self.cfg.steps
                    )
                    if saved:
                        last = self.save_checkpoint()
                    for cb in self.callbacks:
                        cb(self, self.step, values)
                    if self._stop_agreed():
                        if not saved:  # not again: that would delete the step's checkpoint first
                            last = self.save_checkpoint()
                        raise TrainingInterrupted(
                            f"interrupted at step {self.step}; checkpoint written to {last}. "
                            "Run the same command again to resume."
                        )
        except KeyboardInterrupt:
            raise TrainingInterrupted(
                f"stopped at once at step {self.step} (second Ctrl-C); the last checkpoint is intact. "
                "Run the same command again to resume."
            ) from None
        if last is None:
            latest = runs.latest_checkpoint(self.run_dir)
            last = latest[1] if latest else self.save_checkpoint()
        return last  # type: ignore[return-value]

    def _fid_reference(self) -> tuple[str, Path]:
        """The extractor of the FID logged during training, and the real side's statistics
        (computed on first use and cached in the run folder). A missing extractor or real side
        is said here, which :meth:`fit` calls before the first step: not after steps that no
        checkpoint holds yet."""
        from pixelforge.data import parse_spec
        from pixelforge.features import get_extractor
        from pixelforge.features.weights import WeightsNotFoundError
        from pixelforge.tasks.evaluate import make_stats

        name, _ = parse_spec(self.spec.data)
        extractor = self.cfg.eval_extractor
        if extractor == "auto":
            extractor = {"digits": "digits-cnn", "shapes": "shapes-cnn"}.get(
                name, "inception-v3-fid"
            )
        ref_path = self.run_dir / "eval" / f"ref-{extractor}.npz"
        if ref_path.is_file():
            return extractor, ref_path
        real = self.cfg.eval_data
        if real == "auto":
            real = f"{name}:test" if name in ("digits", "shapes") else self.spec.data
        try:
            get_extractor(extractor)
        except WeightsNotFoundError as exc:
            raise WeightsNotFoundError(
                f"train.eval_every={self.cfg.eval_every} logs FID with {extractor}: {exc} Or "
                "set train.eval_every=0 to train without it."
            ) from None
        make_stats(real, ref_path, extractor=extractor, gather=False)
        return extractor, ref_path

    def evaluate(self) -> dict[str, float]:
        """The task's own evaluation when it defines ``evaluate()`` (radiance fields: PSNR of
        held-out views); otherwise FID of ``train.eval_samples`` images from the EMA model (fixed
        seeds) against the real side's statistics, computed once and cached in the run folder."""
        task_evaluate = getattr(self.task, "evaluate", None)
        if task_evaluate is not None:
            return dict(task_evaluate())
        from pixelforge.features import get_extractor
        from pixelforge.io.stats import load_stats
        from pixelforge.metrics import frechet_distance
        from pixelforge.tasks.evaluate import extract_images

        extractor, ref_path = self._fid_reference()
        ref, _ = load_stats(ref_path)
        model: Any = self.task.export().to(self.device)
        n, b = self.cfg.eval_samples, 100
        images = (
            model.sample(min(b, n - i), seed=self.cfg.seed + 10_000 + i // b)
            for i in range(0, n, b)
        )
        got = extract_images(
            images,
            get_extractor(extractor),
            label="eval samples",
            total=n,
            device=self.device,
            gather=False,
        )
        fid = frechet_distance(ref.mu, ref.sigma, got.stats.mean.numpy(), got.stats.cov.numpy())
        return {"fid": float(fid)}

    @torch.no_grad()
    def _write_samples(self) -> None:
        images = self.task.sample_grid(self.cfg.sample_count, seed=self.cfg.seed)
        grid = make_grid(images)
        provenance = {
            "family": self.spec.family.name,
            "step": self.step,
            "seed": self.cfg.seed,
            "pixelforge_version": __version__,
            "kind": "training sample grid",
        }
        write_png(
            self.run_dir / runs.SAMPLES / f"{runs.checkpoint_name(self.step)}.png", grid, provenance
        )
