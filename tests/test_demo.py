"""`arborec demo`'s pieces: which data it uses, which users it shows, and what it prints about them."""

import numpy as np

from arborec.demo import choose_data, describe_user, full_histories, pick_users


def test_demo_falls_back_to_generated_data_when_movielens_is_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("ARBOREC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ARBOREC_CACHE_DIR", str(tmp_path / "cache"))
    import arborec.data._registry as registry

    monkeypatch.setattr(registry, "fetch", lambda *a, **k: (_ for _ in ()).throw(
        registry.DatasetNotFoundError("offline")), raising=False)
    assert choose_data(str(tmp_path)) == "synthetic"
    (tmp_path / "ml-100k").mkdir()
    (tmp_path / "ml-100k" / "u.data").write_text("1\t1\t5\t881250949\n")
    assert choose_data(str(tmp_path)) == "ml-100k"


def test_users_shown_have_a_long_and_a_short_term_story_and_explained_picks(synthetic):
    from arborec.hierarchy import tree_from_categories
    from arborec.profiles import ProfileBuilder

    data, split = synthetic
    tree = tree_from_categories(data.catalog)
    histories = full_histories(data)
    profiles = ProfileBuilder(tree).fit_transform(histories, users=data.user_ids)
    users = pick_users(profiles, 2)
    assert len(users) == 2
    for b in users:
        assert len(histories.sequence(int(b))) >= 20
        long_top = profiles.long[0][int(b)].toarray().argmax()
        short_top = profiles.short[0][int(b)].toarray().argmax()
        assert long_top != short_top  # the two time scales tell different stories
    b = int(users[0])
    history = histories.sequence(b)
    scores = np.zeros(data.n_items, dtype=np.float32)
    scores[tree.codes[:, 0] == tree.codes[history[-1], 0]] = 1.0  # prefer the latest interest's items
    titles = data.catalog["title"].tolist()
    lines = describe_user(profiles.profile(b), scores, tree, titles, history, data.user_ids[b])
    text = "\n".join(lines)
    assert "long" in text and "short" in text and text.count("\n   ") >= 8
    picks = [line for line in lines if line.strip()[:2] in {f"{k}." for k in range(1, 6)}]
    assert len(picks) == 5 and all(titles[i] not in "".join(picks) for i in history)  # nothing already seen
    assert "from your history:" in text
    reasons = [line.strip() for line in lines if line.strip().startswith(("a recent", "one of your", "related to",
                                                                           "something new"))]
    assert len(reasons) == 5
