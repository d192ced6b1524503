"""What the benchmark suite runs: its datasets with their published anchors, its models with their search spaces."""

from __future__ import annotations

from dataclasses import dataclass, field

#: every model gets at most this many tuning trials on a small dataset (fewer when its whole space is smaller)
TRIAL_BUDGET = 8
#: ... and on a large one, where one trial of a sequential model takes 5-20 minutes on 2 CPU cores: the whole
#: suite must fit in about 12 hours of such a machine. On a dataset the budget is the same for every model.
LARGE_BUDGET = 4
#: training settings every epoch-trained model shares on a dataset (the same early stopping for all)
EVAL_EVERY = 2


@dataclass(frozen=True)
class Anchor:
    """A published full-ranking leave-one-out figure on the same data, to put beside ours."""

    label: str
    recall10: float
    ndcg10: float
    source: str
    #: the suite models that implement the published model (the report checks them against it)
    ours: tuple[str, ...] = ()


#: an implementation reproduces a published figure when its seed mean is within this share of it (issue 14)
ANCHOR_TOLERANCE = 0.05


@dataclass(frozen=True)
class SuiteDataset:
    """A suite dataset: its registered name, the epoch cap and the tuning budget every model shares on it,
    its anchors."""

    name: str
    max_epochs: int
    anchors: tuple[Anchor, ...] = field(default_factory=tuple)
    budget: int = LARGE_BUDGET
    #: whether its items have text (without, the text-aware peers have nothing to read: no such comparison)
    has_text: bool = True


_SASREC = ("sasrec", "sasrec-prefix")  # SASRec as published is trained either way, depending on the code
DATASETS: dict[str, SuiteDataset] = {d.name: d for d in (
    SuiteDataset("ml-100k", 100, budget=TRIAL_BUDGET),
    SuiteDataset("amazon-beauty", 100, (
        Anchor("BSARec", 0.1008, 0.0611, "BSARec's own log (AAAI 2024)", ("bsarec",)),
        Anchor("SASRec, sampled softmax, tuned", 0.0921, 0.0531, "eSASRec benchmark", _SASREC),
    )),
    SuiteDataset("amazon-toys", 100, (
        Anchor("SASRec, sampled softmax", 0.0970, 0.0580, "eSASRec benchmark", _SASREC),
        Anchor("eSASRec", 0.0939, 0.0538, "eSASRec benchmark"),
    )),
    SuiteDataset("amazon-sports", 100, (
        Anchor("SASRec, sampled softmax", 0.0569, 0.0314, "eSASRec benchmark", _SASREC),
        Anchor("eSASRec", 0.0560, 0.0323, "eSASRec benchmark"),
    ), has_text=False),
    SuiteDataset("ml-1m", 100, (
        Anchor("LRURec", 0.3264, 0.1930, "LRURec paper, Table 3"),
        Anchor("SASRec, cross-entropy", 0.3181, 0.1902, "LRURec paper, Table 3", _SASREC),
    )),
)}

# The few parameters that matter for each model, with their candidate values. Window length and
# patience are searched for every sequential model alike. Names must be the model's parameters.
_SEQ = {"lr": [1e-3, 3e-3], "max_len": [50, 200], "patience": [3, 5]}
SPACES: dict[str, dict[str, list]] = {
    "mostpop": {},
    "ease": {"l2": [10.0, 50.0, 200.0, 500.0, 1000.0, 3000.0]},
    "gru4rec": {"hidden_size": [64, 128], "dropout": [0.2, 0.3, 0.5], **_SEQ},
    "sasrec": {"dropout": [0.2, 0.3, 0.5], "n_layers": [1, 2], **_SEQ},
    # SASRec on BSARec's regime (one prefix per target): the same cost growth with the window, so the same window
    "sasrec-prefix": {"dropout": [0.2, 0.3, 0.5], "n_layers": [1, 2], **_SEQ, "max_len": [50]},
    # BSARec trains on one prefix per target (its filter is not causal): its cost grows with the window, so it
    # keeps the paper's window of 50 (the space is as large as the others' in every other respect)
    "bsarec": {"dropout": [0.2, 0.3, 0.5], "alpha": [0.3, 0.5, 0.7, 0.9], "c": [3, 5, 7], **_SEQ, "max_len": [50]},
    "sasrec-text": {"dropout": [0.2, 0.3, 0.5], "n_layers": [1, 2], **_SEQ},
    "unisrec": {"dropout": [0.2, 0.3, 0.5], "n_layers": [1, 2], **_SEQ},
    "unisrec-t": {"dropout": [0.2, 0.3, 0.5], "n_layers": [1, 2], **_SEQ},
    "text-ft": {"decay": [0.5, 0.7, 0.9]},
    "arborec": {"dropout": [0.3, 0.4, 0.5], **_SEQ},
}
#: the order of the suite's models (the ID-only sequential ones are what "never loses" is measured against)
MODELS = tuple(SPACES)
ID_ONLY = ("gru4rec", "sasrec", "sasrec-prefix", "bsarec")
#: the peers that read the same item text as arborec ("ahead of the text-aware peers" is measured against them)
TEXT_AWARE = ("sasrec-text", "unisrec", "unisrec-t", "text-ft")
OURS = "arborec"
#: arborec with one part switched off, run with arborec's chosen setting on every seed (``--ablations``): what
#: each part is worth, paired per user against the whole model. Not rivals: never "the best other model".
#: (``arborec-no-tree`` changes the ranking only where the tree's nodes are in the item table: a catalogue without
#: text; with text the tree is out of the ranking path, see benchmarks/results/tree_in_ranking.md.)
ABLATIONS: dict[str, dict] = {
    "arborec-no-tree": {"use_heads": False},  # no tree at all: no path nodes in the item table, no level heads
    "arborec-no-text": {"use_text": False, "text_weight": 0.0, "pointer_weight": 0.0},  # no language-model vector
    "arborec-no-long": {"use_long": False},  # no recurrent long-term stream over the whole history
    "arborec-no-short": {"use_short": False},  # no attention short-term stream over the window
    # not a part switched off but the fast encoder: item vectors from a model2vec model distilled from MiniLM
    "arborec-static-text": {"text_backend": "static"},
    # no text pointer: the text term alone mixes text into the score
    "arborec-no-pointer": {"pointer_weight": 0.0},
}
#: ablations that change only what arborec chooses after training (its score knobs): read from arborec's own
#: fit of the same seed (the same network a fit with them would train), at no training cost
AFTER_TRAINING = ("arborec-no-pointer",)
