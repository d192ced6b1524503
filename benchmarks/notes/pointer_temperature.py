"""What choosing the text pointer's temperature on validation bought: for every arborec fit in the suite's records
that measured the pointer's candidates, the best validation NDCG@10 over all candidates against the best with the
temperature fixed at each value (weight 0, no pointer, counts for every temperature). Reads records only.

    python benchmarks/notes/pointer_temperature.py [benchmarks/results/suite]
"""
import json
import re
import sys
from pathlib import Path

root = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/suite")
print("| dataset | seed | chosen (weight, temperature) | best over all | best at T = 0.01 / 0.02 / 0.03 |")
print("|---|---|---|---|---|")
for path in sorted(root.glob("*.json")):
    records = json.loads(path.read_text())
    for r in records if isinstance(records, list) else []:
        scores = r.get("chosen_in_fit", {}).get("pointer_scores") if r["model"] == "arborec" else None
        if not scores:
            continue
        cand = {tuple(map(float, re.match(r"pointer ([\d.]+), temperature ([\d.]+)", k).groups())): v
                for k, v in scores.items()}
        temps = sorted({t for w, t in cand if w})
        at = [max(v for (w, t), v in cand.items() if t == temp or w == 0) for temp in temps]
        c = r["chosen_in_fit"]
        print(f"| {r['dataset']} | {r['seed']} | {c['pointer_weight']:g}, {c['pointer_temperature']:g} | "
              f"{max(cand.values()):.4f} | {' / '.join(f'{v:.4f}' for v in at)} |")
