"""The attention heatmap of a few eval sentences (`attention.png` next to run_summary.json, and
in the notebook), from the summary's `attention_examples`."""

from __future__ import annotations


def attention_figure(examples: list[dict]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(examples), figsize=(5 * len(examples), 4.5), squeeze=False)
    for ax, example in zip(axes[0], examples):
        weights = example["weights"]
        ax.imshow(weights, cmap="viridis", aspect="auto", vmin=0.0, vmax=1.0)
        ax.set_xticks(range(len(example["source_pieces"])), example["source_pieces"], rotation=90, fontsize=8)
        ax.set_yticks(range(len(example["target_pieces"])), example["target_pieces"], fontsize=8)
        ax.set_xlabel("source pieces")
        ax.set_ylabel("translation pieces")
    figure.suptitle("Attention of the greedy translation (eval sentences)")
    figure.tight_layout()
    return figure
