"""The classification run's figure: the eval split's confusion matrix (counts, rows actual)."""

from __future__ import annotations


def confusion_matrix_figure(matrix: dict):
    import matplotlib.pyplot as plt
    import numpy as np

    counts = np.asarray(matrix["counts"])
    classes = matrix["classes"]
    size = 1.6 + 0.6 * len(classes)
    figure, axes = plt.subplots(figsize=(size + 1, size))
    image = axes.imshow(counts, cmap="Blues")
    axes.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    axes.set_yticks(range(len(classes)), classes)
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual")
    for i in range(len(classes)):
        for j in range(len(classes)):
            axes.text(j, i, str(counts[i, j]), ha="center", va="center",
                      color="white" if counts[i, j] > counts.max() / 2 else "black")
    axes.set_title(f"eval confusion matrix ({int(counts.sum())} examples)")
    figure.colorbar(image, ax=axes, fraction=0.046)
    return figure
