"""Training on Ray Train: the sequential models' loop under PyTorch DDP (gloo on CPU, NCCL on GPUs)."""

from __future__ import annotations

import json
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
    steps match the local engine's). With ``config["split"]``, rank 0 validates every ``eval_every``
    epochs (and after the last) as the local loop does, keeps the best weights, and broadcasts whether
    to stop (``patience`` checks without a better NDCG@10), so every rank leaves the loop at the same
    epoch; rank 0 then reports the best weights and the history."""
    import copy
    import json

    import ray.train
    import ray.train.torch
    import torch
    import torch.distributed as dist

    from arborec.sequential import adam, batch_order

    torch.set_num_threads(config["threads"])
    torch.manual_seed(config["seed"])
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    model, split, epochs = config["model"], config["split"], config["epochs"]
    inputs, targets = torch.from_numpy(config["inputs"]), torch.from_numpy(config["targets"])  # (U, T) each
    lengths = (config["inputs"] > 0).sum(1)
    model.n_items_ = config["n_items"]
    ddp = ray.train.torch.prepare_model(model._build_module(config["n_items"]))
    device = ray.train.torch.get_device()
    model.module_ = _DDPView(ddp)
    batch_size, lr = model._step_setting()
    opt = adam(ddp.parameters(), lr, model.weight_decay, torch.device(device))
    rng = np.random.default_rng(config["seed"])  # the same batch order on every rank
    history, best_state, best_ndcg, bad = [], None, -np.inf, 0
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        ddp.train()
        total, n_pos = 0.0, 0
        for batch in batch_order(lengths, batch_size, rng):  # the local engine's batches, in its order
            idx = batch[rank::world] if len(batch) >= world else batch  # this rank's share of the batch
            width = int(lengths[idx].max())  # trim the all-padding columns on the left
            loss, n = model._loss(inputs[idx, -width:].to(device), targets[idx, -width:].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, n_pos = total + loss.item() * n, n_pos + n
        record = {"epoch": epoch, "loss": total / max(n_pos, 1), "valid_ndcg@10": None,
                  "seconds": time.perf_counter() - t0, "eval_seconds": 0.0}
        history.append(record)
        stop = False
        if split is not None and (epoch % model.eval_every == 0 or epoch == epochs):
            if rank == 0:
                _validate(model, ddp.module, split, record)
                if record["valid_ndcg@10"] > best_ndcg:
                    best_ndcg, bad = record["valid_ndcg@10"], 0
                    best_state = copy.deepcopy({k: v.detach().cpu() for k, v in ddp.module.state_dict().items()})
                else:
                    bad += 1
                stop = bad >= model.patience
            if world > 1:  # rank 0 decides; every rank must stop at the same epoch (DDP's collectives)
                flag = torch.tensor([int(stop)], device=device)
                dist.broadcast(flag, src=0)
                stop = bool(flag.item())
        if (stop or epoch == epochs) and rank == 0:
            with tempfile.TemporaryDirectory() as tmp:
                state = best_state or {k: v.detach().cpu() for k, v in ddp.module.state_dict().items()}
                torch.save(state, Path(tmp) / "module.pt")
                (Path(tmp) / "history.json").write_text(json.dumps(history))
                ray.train.report(record, checkpoint=ray.train.Checkpoint.from_directory(tmp))
        else:
            ray.train.report(record)
        if stop:
            break


def _validate(model, module, split: Split, record: dict) -> None:
    """Validation NDCG@10 of the plain module (no DDP: only rank 0 runs it), into ``record``."""
    from arborec.evaluate import evaluate

    view, model.module_ = model.module_, module
    t0 = time.perf_counter()
    try:
        record["valid_ndcg@10"] = float(evaluate(model, split, "valid").metrics["ndcg@10"])
    finally:
        model.module_ = view
        module.train()
    record["eval_seconds"] = time.perf_counter() - t0
    logger.debug("%s epoch %d on Ray: loss %.4f  valid ndcg@10 %.4f", model.name, record["epoch"], record["loss"],
                 record["valid_ndcg@10"])


def fit_ray(model, split: Split, data=None, workers: int = 2, epochs: int | None = None, use_gpu: bool = False,
            threads_per_worker: int = 1, storage_path: str | Path | None = None, early_stopping: bool = True,
            **fit_kwargs):
    """Train a sequential recommender (SASRec, GRU4Rec, or any ``SequentialRecommender``) with Ray Train.

    ``workers`` DDP processes (gloo on CPU, NCCL with ``use_gpu``) each take ``1 / workers`` of the
    rows of every batch the local loop would make (same batch size, same number of steps). With
    ``early_stopping`` (the default) rank 0 validates every ``eval_every`` epochs and after the last,
    as ``model.fit`` does, and all workers stop after ``patience`` checks without a better validation
    NDCG@10; the best epoch's weights are kept (``epochs`` defaults to the model's ``max_epochs``;
    without early stopping every epoch runs and the last weights are kept). The trained weights come back to ``model``,
    which is then fitted exactly as by ``model.fit`` (``module_``, ``n_items_``, ``history_``) and
    scores, evaluates and saves the same way (an :class:`arborec.model.ArboRec` into the same bundle
    with ``save_bundle``). A model with ``_setup_fit`` / ``_finish_fit`` (ArboRec: item vectors, tree,
    path weight) gets them run on the driver around the Ray loop, with ``data`` and ``fit_kwargs``
    (e.g. ``vectors=``, ``tree=``). Must run inside :func:`ray_session`.
    """
    import torch
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    check_param("workers", workers, workers >= 1, "an integer >= 1")
    model._check_params()
    epochs = epochs or model.max_epochs
    if hasattr(model, "_setup_fit"):
        model._setup_fit(split, data, **fit_kwargs)
    model._prepare_sampling(split)  # the sampled softmax's item counts travel with the model
    inputs, targets = model._training_pairs(split)  # windows, or prefixes for a non-causal encoder (BSARec)
    config = {"model": model, "inputs": inputs, "targets": targets, "n_items": split.n_items, "epochs": epochs,
              "seed": model.seed, "threads": threads_per_worker, "split": split if early_stopping else None}
    with tempfile.TemporaryDirectory() as tmp:
        trainer = TorchTrainer(
            _train_loop, train_loop_config=config,
            scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu,
                                         resources_per_worker={"CPU": threads_per_worker}),
            run_config=RunConfig(name="arborec-fit", storage_path=str(storage_path or tmp)))
        result = trainer.fit()
        with result.checkpoint.as_directory() as folder:
            state = torch.load(Path(folder) / "module.pt")
            history = json.loads((Path(folder) / "history.json").read_text())
    model.n_items_ = split.n_items
    model.module_ = model._build_module(split.n_items)
    model.module_.load_state_dict(state)
    model.module_.eval()
    model.history_ = history
    model.epoch_seconds_ = float(np.median([r["seconds"] for r in history]))
    checked = [r for r in history if r["valid_ndcg@10"] is not None]
    if checked:
        best = max(checked, key=lambda r: r["valid_ndcg@10"])  # the first of equal bests, as the local loop
        model.best_epoch_, model.best_valid_ndcg_ = best["epoch"], best["valid_ndcg@10"]
    else:
        model.best_epoch_, model.best_valid_ndcg_ = len(history), float("nan")
    if hasattr(model, "_finish_fit"):
        model._finish_fit(split)
    logger.info("%s trained on Ray (%d workers, %d of %d epochs): final loss %.4f, best epoch %d", model.name,
                workers, len(history), epochs, model.history_[-1]["loss"], model.best_epoch_)
    return model
