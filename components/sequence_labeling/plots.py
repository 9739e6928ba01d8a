"""The sequence labeling run's figure: entity F1 per type on the eval split, and an eval sentence
as the pushed model tagged it in serving validation (its round trip rows)."""

from __future__ import annotations

COLORS = {"PER": "#f4a582", "LOC": "#92c5de", "ORG": "#b8e186", "MISC": "#d5b3ff"}
_OTHER = ["#fee08b", "#c2a5cf", "#a6dba0", "#f1b6da"]


def tagged_sentence(summary: dict) -> tuple[list[str], list[str]] | None:
    """(tokens, tags) of the first round-trip sentence with an entity, else the first one."""
    outputs = ((summary.get("serving_validation") or {}).get("round_trip") or {}).get("outputs") or {}
    rows = list(zip(outputs.get("tokens", []), outputs.get("tags", [])))
    if not rows:
        return None
    real = [([t for t in tokens if t], [g for g in tags if g]) for tokens, tags in rows]
    return next((row for row in real if any(g != "O" for g in row[1])), real[0])


def entities_figure(summary: dict):
    import matplotlib.pyplot as plt

    scores = summary.get("entity_scores") or {}
    sentence = tagged_sentence(summary)
    figure, (bars, text) = plt.subplots(2, 1, figsize=(10, 5), gridspec_kw={"height_ratios": [3, 2]})
    kinds = list(scores)
    for offset, metric in enumerate(("precision", "recall", "f1")):
        bars.bar([i + (offset - 1) * 0.27 for i in range(len(kinds))], [scores[k][metric] for k in kinds],
                 width=0.27, label=metric)
    bars.set_xticks(range(len(kinds)), kinds)
    bars.set_ylim(0, 1)
    bars.legend(loc="lower right")
    overall = (summary.get("metrics") or {}).get("entity_f1")
    bars.set_title(f"eval entity scores by type (overall F1 {overall:.3f})" if overall is not None else
                   "eval entity scores by type")
    text.axis("off")
    if sentence:
        tokens, tags = sentence
        x, palette = 0.0, dict(COLORS)
        for token, tag in zip(tokens[:30], tags[:30]):
            kind = tag[2:] if tag != "O" else None
            if kind and kind not in palette:
                palette[kind] = _OTHER[len(palette) % len(_OTHER)]
            label = text.text(x, 0.5, token, fontsize=10, va="center",
                              bbox={"facecolor": palette[kind], "edgecolor": "none", "pad": 2} if kind else None)
            figure.canvas.draw()
            box = label.get_window_extent().transformed(text.transData.inverted())
            x = box.x1 + 0.008
            if kind and tag.startswith("B-"):
                text.text(box.x0, 0.15, kind, fontsize=7, color="#444")
        text.set_xlim(0, max(x, 1.0))
        text.set_title("an eval sentence as the pushed model tags it", fontsize=9)
    figure.tight_layout()
    return figure
