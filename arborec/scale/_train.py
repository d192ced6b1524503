"""Training on Ray Train: the sequential models' loop under PyTorch DDP (gloo on CPU, NCCL on GPUs)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from arborec.data import Split
from arborec.diagnostics import check_param, logger


class _DDPView:
    """The DDP-wrapped module seen as the plain one: calls go through DDP (gradients are all-reduced),
    attributes (``item_emb``, ``heads``...) come from the wrapped module, so a model's ``_loss`` runs as is."""

    def __init__(self, ddp):
        self._ddp = ddp

    def __call__(self, *args, **kwargs):
        return self._ddp(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._ddp.module, name)


def _train_loop(config: dict) -> None:
    """Runs on every worker: same initial weights (seeded; DDP broadcasts rank 0's anyway), the same batches
    as the local loop, each rank taking every world-th row of each (DDP averages the gradients, so the
    steps match the local engine's); rank 0 reports the weights at the end."""
    import ray.train
    import ray.train.torch
    import torch

    from arborec.baselines._sequential import batch_order

    torch.set_num_threads(config["threads"])
    torch.manual_seed(config["seed"])
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    model = config["model"]
    inputs, targets = torch.from_numpy(config["inputs"]), torch.from_numpy(config["targets"])  # (U, T) each
    lengths = (config["inputs"] > 0).sum(1)
    model.n_items_ = config["n_items"]
    ddp = ray.train.torch.prepare_model(model._build_module(config["n_items"]))
    device = ray.train.torch.get_device()
    model.module_ = _DDPView(ddp)
    opt = torch.optim.Adam(ddp.parameters(), lr=model.lr, weight_decay=model.weight_decay)
    rng = np.random.default_rng(config["seed"])  # the same batch order on every rank
    for epoch in range(1, config["epochs"] + 1):
        t0 = time.perf_counter()
        ddp.train()
        total, n_pos = 0.0, 0
        for batch in batch_order(lengths, model.batch_size, rng):  # the local engine's batches, in its order
            idx = batch[rank::world] if len(batch) >= world else batch  # this rank's share of the batch
            width = int(lengths[idx].max())  # trim the all-padding columns on the left
            loss, n = model._loss(inputs[idx, -width:].to(device), targets[idx, -width:].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, n_pos = total + loss.item() * n, n_pos + n
        metrics = {"epoch": epoch, "loss": total / max(n_pos, 1), "seconds": time.perf_counter() - t0}
        if epoch == config["epochs"] and rank == 0:
            with tempfile.TemporaryDirectory() as tmp:
                torch.save({k: v.cpu() for k, v in ddp.module.state_dict().items()}, Path(tmp) / "module.pt")
                ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))
        else:
            ray.train.report(metrics)


def fit_ray(model, split: Split, data=None, workers: int = 2, epochs: int | None = None, use_gpu: bool = False,
            threads_per_worker: int = 1, storage_path: str | Path | None = None, **fit_kwargs):
    """Train a sequential recommender (SASRec, GRU4Rec, or any ``SequentialRecommender``) with Ray Train.

    ``workers`` DDP processes (gloo on CPU, NCCL with ``use_gpu``) each take ``1 / workers`` of the
    rows of every batch the local loop would make (same batch size, same number of steps); there is
    no early stopping (``epochs`` defaults to the model's ``max_epochs``). The trained weights come back to ``model``,
    which is then fitted exactly as by ``model.fit`` (``module_``, ``n_items_``, ``history_``) and
    scores, evaluates and saves the same way (an :class:`arborec.model.ArboRec` into the same bundle
    with ``save_bundle``). A model with ``_setup_fit`` / ``_finish_fit`` (ArboRec: item vectors, tree,
    path weight) gets them run on the driver around the Ray loop, with ``data`` and ``fit_kwargs``
    (e.g. ``vectors=``, ``tree=``). Must run inside :func:`ray_session`.
    """
    import torch
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from arborec.baselines._sequential import training_windows

    check_param("workers", workers, workers >= 1, "an integer >= 1")
    model._check_params()
    epochs = epochs or model.max_epochs
    if hasattr(model, "_setup_fit"):
        model._setup_fit(split, data, **fit_kwargs)
    inputs, targets = training_windows(split.train_indptr, split.train_items, model.max_len, model.earlier_windows)
    config = {"model": model, "inputs": inputs, "targets": targets, "n_items": split.n_items, "epochs": epochs,
              "seed": model.seed, "threads": threads_per_worker}
    with tempfile.TemporaryDirectory() as tmp:
        trainer = TorchTrainer(
            _train_loop, train_loop_config=config,
            scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu,
                                         resources_per_worker={"CPU": threads_per_worker}),
            run_config=RunConfig(name="arborec-fit", storage_path=str(storage_path or tmp)))
        result = trainer.fit()
        with result.checkpoint.as_directory() as folder:
            state = torch.load(Path(folder) / "module.pt")
    model.n_items_ = split.n_items
    model.module_ = model._build_module(split.n_items)
    model.module_.load_state_dict(state)
    model.module_.eval()
    model.history_ = [{"epoch": int(result.metrics["epoch"]), "loss": float(result.metrics["loss"]),
                       "valid_ndcg@10": None, "seconds": float(result.metrics["seconds"]), "eval_seconds": 0.0}]
    model.epoch_seconds_ = model.history_[-1]["seconds"]
    model.best_epoch_, model.best_valid_ndcg_ = epochs, float("nan")
    if hasattr(model, "_finish_fit"):
        model._finish_fit(split)
    logger.info("%s trained on Ray (%d workers, %d epochs): final loss %.4f", model.name, workers, epochs,
                model.history_[-1]["loss"])
    return model
