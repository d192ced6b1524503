"""What the prefix-regime timing scripts here share: an untrained arborec on a dataset's training split and one
epoch's training pairs (validation and test are never read)."""
import numpy as np
import torch

from arborec.data import leave_one_out, load_prepared
from arborec.model import ArboRec


def untrained_arborec(dataset: str, **params):
    """(model with its module built, in training mode; inputs, targets (n, window) tensors; lengths (n,) array)
    for the suite's Beauty setting (window 50, dropout 0.4, lr 1e-3, seed 0) unless ``params`` say otherwise."""
    torch.set_num_threads(1)
    data = load_prepared(dataset)
    split = leave_one_out(data)
    model = ArboRec(**{"max_len": 50, "dropout": 0.4, "lr": 1e-3, "seed": 0, **params})
    model._setup_fit(split, data)
    model.n_items_ = split.n_items
    model.module_ = model._build_module(split.n_items)
    model.module_.train()
    inputs, targets = model._training_pairs(split)
    lengths = (inputs > 0).sum(1)
    return model, torch.from_numpy(inputs), torch.from_numpy(targets), np.asarray(lengths)
