"""curves.png: the loss and metric curves of a run (matplotlib, when installed)."""

from __future__ import annotations

import io
from pathlib import Path

from archc.train.checkpoint import write_atomic


def preload() -> None:
    """Import matplotlib in a background thread while the first epochs train (about a
    second of imports that would otherwise come after the last epoch)."""
    import threading

    def load():
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot  # noqa: F401
        except Exception:  # missing or broken: write_curves says so at the end
            pass

    threading.Thread(target=load, name="archc-preload-matplotlib", daemon=True).start()


def write_curves(path: Path, history: list) -> str | None:
    """Draw ``history`` (metrics.jsonl's records) to ``path``; returns a note when skipped."""
    if not history:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        return "curves.png skipped: matplotlib is not installed (pip install 'archc[train]')"
    metrics = sorted({k.split("_", 1)[1] for k in history[0] if k.startswith(("train_", "val_"))},
                     key=lambda m: (m != "loss", m))
    epochs = [r["epoch"] for r in history]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        for part in ("train", "val"):
            key = f"{part}_{m}"
            if key in history[0]:
                ax.plot(epochs, [r[key] for r in history], marker="o", markersize=3, label=part)
        ax.set_xlabel("epoch")
        ax.set_title(m)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    write_atomic(path, buffer.getvalue())
    return None
