"""Progress of a run, on stderr (stdout is kept for ``--json``).

- a terminal: a rich progress bar per epoch with the running loss and metric, the
  throughput (examples/s) and the ETA, and one summary line per finished epoch;
- not a terminal (a log file, CI): one plain line per epoch;
- ``--quiet``: nothing but errors.
"""

from __future__ import annotations

import sys
import time


def _fmt(key: str, value) -> str:
    if isinstance(value, float):
        if key == "lr":
            return f"{key} {value:.3g}"
        return f"{key} {value:.4f}"
    return f"{key} {value}"


def epoch_line(epoch: int, epochs: int, metrics: dict, seconds: float, examples: int, eta: float = 0.0) -> str:
    shown = {k: v for k, v in metrics.items() if k not in ("epoch", "time")}
    rate = examples / seconds if seconds > 0 else 0.0
    left = f"  eta {int(eta) // 60}:{int(eta) % 60:02d}" if epoch < epochs else ""
    return (f"epoch {epoch}/{epochs}  " + "  ".join(_fmt(k, v) for k, v in shown.items())
            + f"  {rate:,.0f} ex/s  {seconds:.1f}s{left}")


class Progress:
    """``mode``: "auto" (rich on a terminal, else plain), "plain" or "quiet"."""

    def __init__(self, mode: str = "auto", stream=None):
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "rich" if self.stream.isatty() else "plain"
        self.mode, self.bar, self.task = mode, None, None
        self.t0, self.seen, self.spent, self.epoch, self.epochs = 0.0, 0, [], 0, 0

    def message(self, text: str) -> None:
        if self.mode != "quiet":
            self._print(text)

    def _print(self, text: str) -> None:
        if self.bar is not None:
            self.bar.console.print(text, highlight=False, markup=False)
        else:
            print(text, file=self.stream, flush=True)

    def start_epoch(self, epoch: int, epochs: int, steps: int) -> None:
        self.t0, self.seen, self.epoch, self.epochs = time.perf_counter(), 0, epoch, epochs
        if self.mode != "rich":
            return
        if self.bar is None:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn,
                                       TimeRemainingColumn)

            self.bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                           TextColumn("{task.fields[stats]}"), TimeRemainingColumn(),
                           console=Console(file=self.stream), transient=True)
            self.bar.start()
        if self.task is not None:
            self.bar.remove_task(self.task)
        self.task = self.bar.add_task(f"epoch {epoch}/{epochs}", total=steps, stats="")

    def update(self, steps: int, examples: int, loss: float | None, metric: tuple | None) -> None:
        """``steps`` batches of ``examples`` examples done in this epoch; the running loss and metric."""
        self.seen = examples
        if self.mode != "rich":
            return
        rate = examples / max(time.perf_counter() - self.t0, 1e-9)
        stats = f"loss {loss:.4f}" if loss is not None else ""
        if metric:
            stats += f"  {metric[0]} {metric[1]:.4f}"
        self.bar.update(self.task, completed=steps, stats=f"{stats}  {rate:,.0f} ex/s")

    def end_epoch(self, metrics: dict) -> None:
        seconds = time.perf_counter() - self.t0
        self.spent.append(seconds)
        eta = (self.epochs - self.epoch) * sum(self.spent) / len(self.spent)  # the run's, not the epoch's
        if self.mode != "quiet":
            self._print(epoch_line(self.epoch, self.epochs, metrics, seconds, self.seen, eta))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
