"""A self-contained HTML report of the interest tree, some users' profiles and the segment map (inline SVG)."""

from __future__ import annotations

import datetime as dt
import html
import io
import re
from pathlib import Path

import numpy as np

from arborec.hierarchy import InterestTree
from arborec.profiles._profile import SHORT_WINDOW, ProfileBatch, UserProfile, _path_of
from arborec.profiles._segments import Segmenter, readable_path

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;max-width:1250px;color:#222}
h1{font-size:1.6em;margin-bottom:0} h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#666;margin-top:4px} table{border-collapse:collapse;margin:8px 0;font-size:.9em}
td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top} th{background:#f4f4f4}
td.num{text-align:right} .fig svg{max-width:100%;height:auto} .users{display:grid;grid-template-columns:1fr 1fr;gap:18px}
.card{border:1px solid #ddd;border-radius:6px;padding:10px} .card h3{margin:0 0 6px 0;font-size:1.05em}
.muted{color:#555;font-size:.9em} .sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px}
ol.recent{margin:4px 0 8px 0;padding-left:1.4em;font-size:.9em} .wrap{overflow-x:auto}
@media (max-width:760px){body{margin:10px}.users{grid-template-columns:1fr} td,th{padding:3px 5px}}
"""


def build_report(tree: InterestTree, profiles: ProfileBatch, segmenter: Segmenter, *, titles=None,
                 vectors: np.ndarray | None = None, n_users: int = 4, dataset: str = "", projection: str = "pca",
                 max_points: int = 3000, seed: int = 0) -> str:
    """The report as one HTML string (no network access needed to open it).

    ``titles`` (n_items,) names items in the tables (default: their indices); ``vectors`` make
    the representative items medoids. Users shown: the one nearest the mean of each of the
    largest segments, up to ``n_users``.
    """
    import matplotlib

    matplotlib.use("Agg")
    # Source titles may already hold HTML entities (Amazon's do): read them as text, escape once on output.
    titles = [str(i) for i in range(tree.n_items)] if titles is None else [html.unescape(str(t)) for t in titles]
    event_share = [np.asarray(c.sum(axis=0)).ravel() for c in profiles.long]  # summed long-term profiles per node
    colours = _node_colours(tree)
    # Every user is in the segment predict gives (as in the service), whatever sample the segments were fitted on.
    labels = segmenter.predict(profiles)
    sizes = np.bincount(labels, minlength=segmenter.n_segments_)
    parts = [f"<h1>arborec interest report{': ' + html.escape(dataset) if dataset else ''}</h1>",
             f"<p class='sub'>{len(profiles):,} users, {tree.n_items:,} items, an interest tree with "
             f"{tree.n_levels} level(s) of {', '.join(map(str, tree.level_sizes))} interests "
             f"({'the catalogue categories' if tree.source == 'categories' else 'learned from the item texts'}); "
             f"{segmenter.n_segments_} user segments. "
             f"Generated {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC.</p>",
             f"<p class='muted'>A user's <b>long-term</b> interests are the share of all their events under each "
             f"interest; their <b>short-term</b> interests, the share of their last {SHORT_WINDOW} events (the "
             "same definition as the service's page).</p>"]

    rings = (f"Rings from the centre outwards are levels 1 to {tree.n_levels}" if tree.n_levels > 1
             else "One ring: the tree has one level")
    parts.append(f"<h2>The interest tree</h2><p class='muted'>{rings}; a wedge's angle is the interest's share of "
                 "the users' long-term interests (each user counts once). Colours follow the top interest; wedges "
                 "too thin for a label are named in the table below.</p>")
    parts.append(f"<div class='fig'>{_svg(_sunburst(tree, event_share, colours))}</div>")
    parts.append(_tree_table(tree, event_share))

    parts.append("<h2>User segments</h2><p class='muted'>Groups of users with similar top-level interests. The map "
                 "places each user by their interests: users close together have similar interests.</p>")
    parts.append(f"<div class='fig'>{_svg(_segment_map(profiles, segmenter, labels, sizes, max_points, seed, projection))}</div>")
    parts.append(_segment_table(segmenter, sizes))

    parts.append("<h2>Some users' interests: long term versus short term</h2><p class='muted'>One user near the "
                 "centre of each of the largest segments. Bars: the user's shares at the deepest level. Table: the "
                 "strongest interests with representative items of the user's own history under each.</p>"
                 "<div class='users'>")
    for b in _shown_users(segmenter, profiles, labels, sizes, n_users):
        p = profiles.profile(b, vectors=vectors, n_interests=3 * tree.n_levels)
        segment = int(labels[b])
        parts.append(_user_card(p, tree, titles, colours, f"segment {segment}: {segmenter.names_[segment]}"))
    parts.append("</div>")
    body = "\n".join(parts)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>arborec report {html.escape(dataset)}</title>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{CSS}</style></head><body>{body}</body></html>\n")


def write_report(path: str | Path, *args, **kwargs) -> Path:
    """Write :func:`build_report` to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(build_report(*args, **kwargs), encoding="utf-8")
    return path


# -- figures --------------------------------------------------------------------------------
def _svg(fig) -> str:
    """A matplotlib figure as inline SVG text (text kept as text: small and searchable)."""
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]


def _node_colours(tree: InterestTree) -> list[np.ndarray]:
    """RGBA per node and level: the level-1 node's hue, lighter at each deeper level."""
    import matplotlib

    # Hues go to the nodes of the shallowest level with two or more nodes (one top-level interest: its children).
    split = next((lv for lv, n in enumerate(tree.level_sizes) if n >= 2), 0)
    cmap = matplotlib.colormaps["tab20" if tree.level_sizes[split] > 10 else "tab10"]
    top = [np.array(cmap(j % cmap.N)) for j in range(tree.level_sizes[split])]
    grey = np.array([0.6, 0.64, 0.68, 1.0])
    out = [np.stack([grey] * tree.level_sizes[lv]) for lv in range(split)] + [np.stack(top)]
    for lv in range(split + 1, tree.n_levels):
        # the ancestor at the split level of every node at this level
        anc = np.arange(tree.level_sizes[lv])
        for up in range(lv, split, -1):
            anc = tree.parents[up][anc]
        lighten = 0.22 * (lv - split)
        base = np.stack([top[a] for a in anc]) if len(anc) else np.zeros((0, 4))
        base[:, :3] = base[:, :3] + (1 - base[:, :3]) * lighten
        out.append(base)
    return out


def _sunburst(tree: InterestTree, share: list[np.ndarray], colours):
    """Nested rings, one per level, wedges ordered under their parents."""
    import matplotlib.pyplot as plt

    L = tree.n_levels
    fig = plt.figure(figsize=(9, 9))
    ax = fig.add_subplot(projection="polar")
    ax.set_axis_off()
    # Order each level's nodes under their parents (depth-first), angles from the top level's.
    spans = [None] * L
    total = share[0].sum() or 1.0
    order0 = np.argsort(-share[0], kind="stable")
    start = np.zeros(len(share[0]))
    start[order0] = np.concatenate([[0], np.cumsum(share[0][order0])[:-1]]) / total * 2 * np.pi
    spans[0] = (start, share[0] / total * 2 * np.pi)
    for lv in range(1, L):
        s = np.zeros(len(share[lv]))
        w = share[lv] / total * 2 * np.pi
        for parent in range(len(share[lv - 1])):
            kids = np.flatnonzero(tree.parents[lv] == parent)
            kids = kids[np.argsort(-share[lv][kids], kind="stable")]
            s[kids] = spans[lv - 1][0][parent] + np.concatenate([[0], np.cumsum(w[kids])[:-1]])
        spans[lv] = (s, w)
    inner = 0.6
    for lv in range(L):
        start, width = spans[lv]
        keep = width > 0
        ax.bar(start[keep], 1.0, width=width[keep], bottom=inner + lv, align="edge", color=colours[lv][keep],
               edgecolor="white", linewidth=0.6)
        radius = inner + lv + 0.5
        for j in np.flatnonzero(keep):
            # repeated labels (a shallow branch continued downwards) are written once
            if lv > 0 and tree.labels[lv][j] == tree.labels[lv - 1][tree.parents[lv][j]]:
                continue
            label = _short(tree.labels[lv][j], 14)
            # horizontal text, written only where the wedge's arc holds it (about 0.075 radius units a letter)
            if width[j] * radius < 0.075 * max(len(label), 4) or width[j] < 0.05:
                continue
            theta = start[j] + width[j] / 2
            ax.text(theta, radius, label, ha="center", va="center", fontsize=11 if lv == 0 else 10, color="#111",
                    bbox=dict(boxstyle="round,pad=0.15", fc=(1, 1, 1, 0.55), ec="none"))
    ax.set_ylim(0, inner + L)
    ax.set_title("the interest tree (share of the users' long-term interests)", fontsize=12)
    return fig


def _segment_map(profiles: ProfileBatch, segmenter: Segmenter, labels: np.ndarray, sizes: np.ndarray,
                 max_points: int, seed: int, projection: str = "pca"):
    """A 2-D map of the users' profile features, coloured by segment (``labels``: every user's segment)."""
    import matplotlib
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(profiles), max_points, replace=False)) if len(profiles) > max_points \
        else np.arange(len(profiles))
    x = segmenter.transform(profiles)[rows]
    if projection == "tsne":
        from sklearn.manifold import TSNE

        xy = TSNE(n_components=2, init="pca", random_state=seed, perplexity=min(30, max(5, len(rows) // 20))
                  ).fit_transform(x)
    else:
        xy = PCA(n_components=2, random_state=seed).fit_transform(x)
    labels = labels[rows]
    k = segmenter.n_segments_
    cmap = matplotlib.colormaps["tab20" if k > 10 else "tab10"]
    fig, ax = plt.subplots(figsize=(11, 7.5))
    order = np.argsort(-sizes, kind="stable")
    for s in order:
        m = labels == s
        ax.scatter(xy[m, 0], xy[m, 1], s=10, alpha=0.6, color=cmap(s % cmap.N), linewidths=0,
                   label=f"{s}: {_short(segmenter.names_[s], 60)} ({sizes[s]:,} users)")
    for s in order:  # the segment number at the median of its points
        m = labels == s
        if m.any():
            cx, cy = np.median(xy[m], axis=0)
            ax.text(cx, cy, str(s), fontsize=12, weight="bold", ha="center", va="center",
                    bbox=dict(boxstyle="round,pad=0.2", fc="white", ec=cmap(s % cmap.N), alpha=0.85))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"{len(rows):,} users placed by their interests (close = similar), coloured by segment", fontsize=11)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, markerscale=2.5, frameon=False)
    return fig


def _profile_bars(p: UserProfile, level: int, colours, top: int = 8):
    """Long- versus short-term shares of the user's strongest nodes at ``level`` (0-based)."""
    import matplotlib
    import matplotlib.pyplot as plt

    nodes = np.argsort(-p.combined[level], kind="stable")[:top]
    nodes = nodes[p.combined[level][nodes] > 0][::-1]
    fig, ax = plt.subplots(figsize=(5.6, 0.38 * len(nodes) + 0.9))
    y = np.arange(len(nodes))
    ax.barh(y + 0.2, p.long[level][nodes], height=0.38, color=[colours[level][j] for j in nodes],
            edgecolor="#555", label="long term (all events)")
    ax.barh(y - 0.2, p.short[level][nodes], height=0.38, color="white", edgecolor="#333", hatch="///",
            label=f"short term (last {min(SHORT_WINDOW, len(p.history))})")
    names = [" > ".join(readable_path(p.path_labels(level + 1, int(j))).split(" > ")[-2:]) for j in nodes]
    ax.set_yticks(y, [_short(name, 34) for name in names], fontsize=9)
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
    ax.set_xlim(0, min(1.0, 1.1 * max(p.long[level][nodes].max(), p.short[level][nodes].max())))
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig


# -- tables and cards -------------------------------------------------------------------------
def _tree_table(tree: InterestTree, share: list[np.ndarray], top: int = 12) -> str:
    rows = []
    for lv in range(tree.n_levels):
        total = share[lv].sum() or 1.0
        best = np.argsort(-share[lv], kind="stable")[:top]
        cells = ", ".join(f"{html.escape(_node_name(tree, lv, j))} ({share[lv][j] / total:.0%})" for j in best
                          if share[lv][j] > 0)
        rows.append(f"<tr><td>{lv + 1}</td><td class='num'>{tree.level_sizes[lv]}</td><td>{cells}</td></tr>")
    return ("<div class='wrap'><table><tr><th>level</th><th>interests</th>"
            "<th>the largest (share of the users' long-term interests)</th></tr>"
            + "".join(rows) + "</table></div>")


def _segment_table(seg: Segmenter, sizes: np.ndarray) -> str:
    rows = []
    total = max(int(sizes.sum()), 1)
    for d in seg.summary():
        interests = "<br>".join(f"{html.escape(readable_path(i['path']))} ({i['share']:.0%})" for i in d["interests"]
                                if i["share"] >= 0.05)
        reps = ", ".join(map(str, d["representatives"]))
        n = int(sizes[d["segment"]])
        rows.append(f"<tr><td class='num'>{d['segment']}</td><td>{html.escape(d['name'])}</td>"
                    f"<td class='num'>{n:,}</td><td class='num'>{n / total:.1%}</td>"
                    f"<td>{interests}</td><td>{html.escape(reps)}</td></tr>")
    return ("<div class='wrap'><table><tr><th>#</th><th>what its users share</th><th>users</th><th>share</th>"
            "<th>their strongest interests (average share)</th><th>typical users</th></tr>" + "".join(rows)
            + "</table></div>")


def _user_card(p: UserProfile, tree: InterestTree, titles, colours, segment: str) -> str:
    level = p.n_levels - 1
    recent = "".join(f"<li>{html.escape(_short(titles[i], 60))} <span class='muted'>"
                     f"({html.escape(' > '.join(tree.path_labels(i)[-2:]))})</span></li>" for i in p.history[::-1][:5])
    rows = "".join(
        f"<tr><td>{html.escape(readable_path(i.path))}</td><td class='num'>{i.long:.0%}</td>"
        f"<td class='num'>{i.short:.0%}</td><td>{'<br>'.join(html.escape(_short(titles[t], 48)) for t in i.items)}"
        f"</td></tr>" for i in _distinct_interests(p.interests)[:6])
    return (f"<div class='card'><h3>user {html.escape(str(p.user))}</h3><div class='muted'>{html.escape(segment)}; "
            f"{len(p.history)} events. Most recent:</div><ol class='recent'>{recent}</ol>"
            f"<div class='fig'>{_svg(_profile_bars(p, level, colours))}</div>"
            "<div class='wrap'><table><tr><th>interest</th><th>all events</th><th>last "
            f"{min(SHORT_WINDOW, len(p.history))}</th><th>items of theirs under it</th></tr>{rows}</table></div></div>")


def _shown_users(seg: Segmenter, profiles: ProfileBatch, labels: np.ndarray, sizes: np.ndarray, n: int,
                 pool: int = 25) -> list[int]:
    """Users near the segment means with long histories: the longest of each segment's ``pool`` nearest,
    largest segments first, then the next longest, until ``n``."""
    lengths = profiles.histories.lengths()
    x = seg.transform(profiles)
    ranked = []
    for s in np.argsort(-sizes, kind="stable"):
        rows = np.flatnonzero(labels == s)
        near = rows[np.argsort(np.linalg.norm(x[rows] - seg.centers_[s], axis=1), kind="stable")[:pool]]
        ranked.append([int(r) for r in near[np.argsort(-lengths[near], kind="stable")]])
    out = []
    for depth in range(pool):
        for users in ranked:
            if depth < len(users) and len(out) < n:
                out.append(users[depth])
    return out


def _node_name(tree: InterestTree, lv: int, j: int) -> str:
    """A node's label with its parent's ('Makeup > Face'), so equal labels under different parents differ."""
    return " > ".join(readable_path(_path_of(tree, lv, j)).split(" > ")[-2:])


def _distinct_interests(interests) -> list:
    """Drop an interest whose deeper descendant in the list carries the same weights (it says nothing more)."""
    return [i for i in interests if not any(j.level > i.level and j.path[:i.level] == i.path
                                            and abs(j.combined - i.combined) < 1e-9 for j in interests)]


def _short(text: str, n: int) -> str:
    text = re.sub(r"\s+", " ", str(text)).strip()
    return text if len(text) <= n else text[:n - 1] + "…"
