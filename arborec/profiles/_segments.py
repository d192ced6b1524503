"""User segments: clustering of interest profiles (k-means, agglomerative, mixture), labelled by their paths."""

from __future__ import annotations

import numpy as np

from arborec.diagnostics import ConfigError, NotFittedError, check_param, logger
from arborec.profiles._profile import ProfileBatch, UserProfile, _path_of

METHODS = ("kmeans", "agglomerative", "gmm")


def profile_features(profiles, levels=None) -> np.ndarray:
    """(B, D) Hellinger features: the square root of the flat combined profile (Euclidean = Hellinger).

    ``profiles`` is a :class:`ProfileBatch`, one :class:`UserProfile` or a list of them. ``levels``
    (1-based) keeps only those levels' blocks, each weighted as in the profile (None: all).
    """
    if isinstance(profiles, ProfileBatch):
        blocks = [(w * c).toarray() for w, c in zip(profiles.level_weights, profiles.combined)]
    else:
        profiles = [profiles] if isinstance(profiles, UserProfile) else list(profiles)
        if not profiles or not isinstance(profiles[0], UserProfile):
            raise ConfigError("profiles must be a ProfileBatch, a UserProfile or a list of UserProfiles")
        blocks = [np.stack([p.level_weights[lv] * p.combined[lv] for p in profiles])
                  for lv in range(profiles[0].n_levels)]
    if levels is not None:
        bad = [lv for lv in levels if not 1 <= lv <= len(blocks)]
        check_param("levels", levels, not bad and len(levels) > 0, f"1-based levels in [1, {len(blocks)}]")
        blocks = [blocks[lv - 1] for lv in levels]
    return np.sqrt(np.maximum(np.hstack(blocks), 0.0))


class Segmenter:
    """Cluster users into interest segments over their profiles.

    Parameters
    ----------
    method : {"kmeans", "agglomerative", "gmm"}, default "kmeans"
        k-means (n_init restarts), Ward agglomerative clustering (fitted on at most ``max_fit``
        users, the rest assigned to the nearest segment mean), or a diagonal Gaussian mixture.
    n_segments : "auto" or int, default "auto"
        "auto" picks k in ``k_range`` by the silhouette (k-means, agglomerative) or the BIC (gmm),
        ties going to the smaller k.
    k_range : tuple (low, high), default (2, 12)
        Inclusive range of k that "auto" tries.
    seed : int, default 0
    n_init : int, default 10
        Restarts of k-means / the mixture (the best is kept). Interest profiles form a continuum
        more than separate clusters: on Beauty, 10 restarts instead of 4 raise the agreement
        between seeds (ARI, k=8) from 0.48 to 0.63.
    silhouette_sample : int, default 4000
        Users sampled (with ``seed``) to compute silhouettes.
    select_sample : int, default 4000
        Users sampled (with ``seed``) on which "auto" compares the values of k; the chosen k is
        then fitted on every user.
    max_fit : int, default 6000
        Most users the agglomerative method clusters (memory grows with the square).
    n_components : int or None, default None
        Cluster in a PCA projection of the features with this many components (None: the
        features themselves for k-means and agglomerative, 20 components for gmm, whose
        diagonal covariances fit poorly to many near-empty dimensions).
    n_representatives : int, default 5
        Representative users kept per segment (closest to the segment mean).
    levels : sequence of int or None, default None
        Tree levels (1-based) whose distributions form the features (None: all). Coarse levels
        give better separated segments; names still read every level.
    min_share : float, default 0.2
        A segment's name lists its (up to three) level-1 nodes holding at least this share of the
        segment's mean profile, each followed down while one child holds most of it.

    Attributes
    ----------
    n_segments_ : int
    labels_ : (B,) int, segment of each fitted user
    centers_ : (k, D') float, segment centres in the clustering space (k-means and agglomerative
        assign every user, fitted or new, to the nearest; gmm: the component means)
    pca_ : fitted sklearn PCA or None
    sizes_ : (k,) int
    names_ : list of k str, readable labels from the dominant interest paths
    interests_ : list of k lists of (path labels, level, share), the top nodes of each segment
    representatives_ : list of k lists, the ids (or rows) of the users nearest each segment mean
    representative_rows_ : list of k int arrays, their rows in the fitted profiles
    silhouette_ : float, on the fitted users (sampled), in the Hellinger feature space
    scores_ : dict k -> silhouette (or BIC for gmm), when n_segments="auto"
    """

    def __init__(self, method: str = "kmeans", n_segments="auto", k_range=(2, 12), seed: int = 0, n_init: int = 10,
                 silhouette_sample: int = 4000, select_sample: int = 4000, max_fit: int = 6000,
                 n_components: int | None = None, levels=None, n_representatives: int = 5,
                 min_share: float = 0.2):
        self.method = method
        self.n_segments = n_segments
        self.k_range = k_range
        self.seed = seed
        self.n_init = n_init
        self.silhouette_sample = silhouette_sample
        self.select_sample = select_sample
        self.max_fit = max_fit
        self.n_components = n_components
        self.levels = levels
        self.n_representatives = n_representatives
        self.min_share = min_share

    def _validate(self, n_users: int) -> None:
        check_param("method", self.method, self.method in METHODS, f"one of {METHODS}")
        auto = self.n_segments == "auto"
        check_param("n_segments", self.n_segments,
                    auto or (isinstance(self.n_segments, (int, np.integer)) and 2 <= self.n_segments <= n_users),
                    f"'auto' or an integer in [2, {n_users}] (the number of users)")
        lo, hi = self.k_range
        check_param("k_range", self.k_range, 2 <= lo <= hi, "(low, high) with 2 <= low <= high")
        check_param("n_init", self.n_init, self.n_init >= 1, "an integer >= 1")
        check_param("min_share", self.min_share, 0 < self.min_share <= 1, "a number in (0, 1]")

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, profiles: ProfileBatch) -> "Segmenter":
        """Cluster the users of ``profiles``; label, size and describe each segment."""
        from sklearn.decomposition import PCA

        features = profile_features(profiles, self.levels)
        self._validate(len(features))
        n_components = self.n_components if self.n_components is not None else (20 if self.method == "gmm" else None)
        self.pca_ = None
        if n_components is not None and n_components < min(features.shape):
            self.pca_ = PCA(n_components=n_components, random_state=self.seed).fit(features)
        x = self._space(features)
        if self.n_segments == "auto":
            # k is chosen on a sample of users (the criterion costs O(n^2) or many fits), then fitted on all.
            rng = np.random.default_rng(self.seed)
            sample = (np.sort(rng.choice(len(x), self.select_sample, replace=False)) if len(x) > self.select_sample
                      else np.arange(len(x)))
            lo, hi = self.k_range
            ks = list(range(lo, min(hi, len(sample) - 1) + 1))
            self.scores_ = {}
            cuts = self._ward_cuts(x[sample], ks) if self.method == "agglomerative" else None
            for k in ks:
                if self.method == "gmm":
                    self.scores_[k] = -float(self._cluster(x[sample], k)[1].bic(x[sample]))
                else:
                    labels = cuts[k] if cuts is not None else self._cluster(x[sample], k)[0]
                    self.scores_[k] = self._silhouette(x[sample], labels)
            k = max(ks, key=lambda k: (self.scores_[k], -k))
            logger.info("segments: k=%d chosen by %s among %s", k, "BIC" if self.method == "gmm" else "silhouette", ks)
        else:
            k = int(self.n_segments)
        labels, self.model_, self.centers_ = self._cluster(x, k)
        self.n_segments_ = k
        self.labels_ = labels
        self.sizes_ = np.bincount(labels, minlength=k)
        self.silhouette_ = self._silhouette(features, labels)
        self._describe(profiles, x)
        return self

    def _space(self, features: np.ndarray) -> np.ndarray:
        """The space the clustering runs in: the features, or their PCA projection."""
        return features if self.pca_ is None else self.pca_.transform(features)

    def _ward_cuts(self, x: np.ndarray, ks) -> dict:
        """Ward clusterings of ``x`` for every k in ``ks`` from one linkage tree (scipy)."""
        from scipy.cluster.hierarchy import fcluster, linkage

        tree = linkage(x, method="ward")
        return {k: fcluster(tree, t=k, criterion="maxclust").astype(np.int64) - 1 for k in ks}

    def _cluster(self, x: np.ndarray, k: int):
        """(labels, fitted model, (k, D') segment centers that ``predict`` assigns to) for k segments."""
        from sklearn.cluster import KMeans
        from sklearn.mixture import GaussianMixture

        if self.method == "kmeans":
            model = KMeans(n_clusters=k, n_init=self.n_init, random_state=self.seed).fit(x)
            return _nearest(x, model.cluster_centers_), model, model.cluster_centers_
        if self.method == "gmm":
            model = GaussianMixture(n_components=k, covariance_type="diag", n_init=self.n_init, reg_covar=1e-4,
                                    random_state=self.seed).fit(x)
            return model.predict(x).astype(np.int64), model, model.means_
        # Ward on at most max_fit users; everyone is then assigned to the nearest segment mean.
        rng = np.random.default_rng(self.seed)
        rows = np.sort(rng.choice(len(x), self.max_fit, replace=False)) if len(x) > self.max_fit else np.arange(len(x))
        sub = self._ward_cuts(x[rows], [k])[k]
        centers = np.stack([x[rows][sub == s].mean(axis=0) for s in range(k)])
        return _nearest(x, centers), None, centers

    def _silhouette(self, x: np.ndarray, labels: np.ndarray) -> float:
        from sklearn.metrics import silhouette_score

        if len(np.unique(labels)) < 2:
            return float("nan")
        n = min(self.silhouette_sample, len(x))
        return float(silhouette_score(x, labels, sample_size=n if n < len(x) else None, random_state=self.seed))

    def _describe(self, profiles, x: np.ndarray) -> None:
        """Names, top interests and representative users of each segment."""
        k = self.n_segments_
        self.interests_, self.names_, self.representatives_, self.representative_rows_ = [], [], [], []
        tree = profiles.tree if isinstance(profiles, ProfileBatch) else None
        combined = profiles.combined if tree is not None else None
        population = np.asarray(combined[0].mean(axis=0)).ravel() if tree is not None else None
        ids = profiles.users if tree is not None and profiles.users is not None else np.arange(len(x))
        for s in range(k):
            rows = np.flatnonzero(self.labels_ == s)
            d = np.linalg.norm(x[rows] - self.centers_[s], axis=1)
            near = rows[np.lexsort((rows, d))][:self.n_representatives]
            self.representative_rows_.append(near)
            self.representatives_.append([ids[r].item() if hasattr(ids[r], "item") else ids[r] for r in near])
            if tree is None or len(rows) == 0:
                self.interests_.append([])
                self.names_.append(f"segment {s}")
                continue
            means = [np.asarray(c[rows].mean(axis=0)).ravel() for c in combined]
            self.interests_.append(_segment_interests(tree, means))
            self.names_.append(_segment_name(tree, means, self.min_share, population))

    # -- new users ---------------------------------------------------------------------------
    def predict(self, profiles) -> np.ndarray:
        """Segment of each profile (a ProfileBatch, a UserProfile or a list of them), without re-clustering.

        Deterministic: k-means and agglomerative assign to the nearest segment mean, gmm to the
        most probable component (no randomness at prediction time).
        """
        if not hasattr(self, "centers_"):
            raise NotFittedError("Segmenter.predict called before fit")
        x = self._space(profile_features(profiles, self.levels))
        if self.method == "gmm":
            return self.model_.predict(x).astype(np.int64)
        return _nearest(x, self.centers_)

    def transform(self, profiles) -> np.ndarray:
        """(B, D') the profiles in the space the segments live in (features, PCA-projected if set)."""
        if not hasattr(self, "centers_"):
            raise NotFittedError("Segmenter.transform called before fit")
        return self._space(profile_features(profiles, self.levels))

    def fit_predict(self, profiles) -> np.ndarray:
        return self.fit(profiles).labels_

    def summary(self) -> list[dict]:
        """One JSON-able dict per segment: id, name, size, share, top interests, representative users."""
        if not hasattr(self, "centers_"):
            raise NotFittedError("Segmenter.summary called before fit")
        total = int(self.sizes_.sum())
        return [{"segment": s, "name": self.names_[s], "size": int(self.sizes_[s]),
                 "share": float(self.sizes_[s] / total),
                 "interests": [{"path": p, "level": lv, "share": sh} for p, lv, sh in self.interests_[s]],
                 "representatives": list(self.representatives_[s])} for s in range(self.n_segments_)]


def _nearest(x, centers: np.ndarray) -> np.ndarray:
    """Index of the nearest center (Euclidean) of each row of ``x`` (dense or sparse; ties: the lower index).

    Plain matrix products rather than sklearn's ``pairwise_distances_argmin``: that one costs about 5 ms a call
    whatever the batch (measured on 100 profiles), which the service pays on every event batch."""
    centers = np.asarray(centers, dtype=np.float64)
    cross = np.asarray(x @ centers.T, dtype=np.float64)  # (B, K), also for a sparse x
    # |x|^2 is the same for every center of a row: the nearest center minimises |c|^2 - 2 x.c
    return np.argmin((centers ** 2).sum(axis=1)[None, :] - 2.0 * cross, axis=1).astype(np.int64)


def readable_path(path) -> str:
    """'A > B > C' with consecutive repeated labels (a shallow branch continued downwards) written once."""
    out = [p for i, p in enumerate(path) if i == 0 or p != path[i - 1]]
    return " > ".join(out)


def _segment_interests(tree, means: list[np.ndarray], top: int = 3) -> list[tuple[list[str], int, float]]:
    """The top nodes of a segment at its most telling level (the deepest with a node >= 10 %), plus level 1."""
    lv = max([l for l, m in enumerate(means) if m.max() >= 0.1], default=0)
    out = []
    for l in sorted({0, lv}):
        for j in np.argsort(-means[l], kind="stable")[:top]:
            if means[l][j] > 0:
                out.append((_path_of(tree, l, int(j)), l + 1, round(float(means[l][j]), 4)))
    return out


def _segment_name(tree, means: list[np.ndarray], min_share: float, population: np.ndarray | None = None,
                  narrow: float = 0.6, min_lift: float = 1.5) -> str:
    """The (up to) three strongest interest paths of a segment, e.g. 'Makeup > Lips (50%) + Eyes (48%)'.

    The level-1 nodes holding at least ``min_share`` of the segment's mean profile are its interests
    (the top one when none does); a single one is split into its children when two or more hold
    ``min_share``. Each interest then goes down its path while one child holds at least ``narrow``
    of its share (the deeper path still describes most of it). With the ``population``'s level-1
    distribution, the level-1 node most over-represented in the segment (lift >= ``min_lift``, share
    >= 5 %) is added when it is not named yet: ' · Horror ×3.2'.
    """
    def strong(lv, nodes):
        nodes = np.asarray(nodes, dtype=np.int64)
        nodes = nodes[means[lv][nodes] >= min_share]
        return [int(j) for j in nodes[np.argsort(-means[lv][nodes], kind="stable")][:3]]

    def descend(lv, j):
        while lv + 1 < len(means):
            kids = np.flatnonzero(tree.parents[lv + 1] == j)
            if not len(kids):
                break
            best = int(kids[np.argmax(means[lv + 1][kids])])
            if means[lv + 1][best] < narrow * means[lv][j]:
                break
            lv, j = lv + 1, best
        return lv, j

    top = strong(0, np.arange(len(means[0]))) or [int(np.argmax(means[0]))]
    start = [(0, j) for j in top]
    if len(top) == 1 and len(means) > 1:
        kids = strong(1, np.flatnonzero(tree.parents[1] == top[0]))
        start = [(1, j) for j in kids] if len(kids) >= 2 else start
    parts, previous = [], None
    ends = sorted((descend(lv, j) for lv, j in start), key=lambda e: -means[e[0]][e[1]])  # strongest first
    for lv, j in ends:
        path = readable_path(_path_of(tree, lv, j)).split(" > ")
        shown = path
        if previous is not None:  # drop the prefix shared with the first path: "Makeup > Lips + Eyes"
            common = next((i for i, (a, b) in enumerate(zip(previous, path)) if a != b), min(len(path), len(previous)))
            shown = path[common:] if common < len(path) else path
        parts.append(f"{' > '.join(shown)} ({means[lv][j]:.0%})")
        previous = path
    name = " + ".join(parts)
    if population is not None:
        lift = np.where((means[0] >= 0.05) & (population > 0), means[0] / np.maximum(population, 1e-12), 0.0)
        named = {_path_of(tree, lv, j)[0] for lv, j in start}
        j = int(np.argmax(lift))
        if lift[j] >= min_lift and tree.labels[0][j] not in named:
            name += f" · {tree.labels[0][j]} ×{lift[j]:.1f}"
    return name


# The one segmentation recipe, shared by `arborec report`, `arborec demo` and the service
# (arborec.serve.segments uses the same values): k-means on the level-1 interests, k by the silhouette.
SEGMENT_K_RANGE = (4, 12)  # 2 or 3 segments say little
SEGMENT_LEVELS = (1,)
SEGMENT_N_INIT = 4
SEGMENT_SELECT_SAMPLE = 2000  # users on which "auto" compares the values of k
SEGMENT_FIT_USERS = 5000  # the segments are fitted on a seeded sample of at most this many users


def fit_segments(profiles, n_segments="auto", max_users: int = SEGMENT_FIT_USERS, seed: int = 0) -> Segmenter:
    """The user segments as the service makes them: a seeded sample of at most ``max_users`` users of
    ``profiles`` (in their order), k-means on their level-1 interests, k chosen by the silhouette in
    ``SEGMENT_K_RANGE``. The same profiles and seed give the same segments, numbered the same."""
    n = len(profiles)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, max_users, replace=False)) if n > max_users else np.arange(n)
    segmenter = Segmenter(method="kmeans", n_segments=n_segments, k_range=SEGMENT_K_RANGE, seed=seed,
                          n_init=SEGMENT_N_INIT, select_sample=SEGMENT_SELECT_SAMPLE,
                          silhouette_sample=SEGMENT_SELECT_SAMPLE,
                          levels=[lv for lv in SEGMENT_LEVELS if lv <= profiles.tree.n_levels])
    return segmenter.fit(profiles if len(rows) == n else profiles.rows(rows))

