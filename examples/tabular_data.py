"""Write two real tabular data sets that ship inside scikit-learn as .npz files for
`archc train` (no download): Wisconsin breast cancer (569 × 30, binary) and diabetes
progression (442 × 10, regression). Features are standardised; targets kept as they are
(0/1 labels; the regression target scaled to unit variance).

    python examples/tabular_data.py runs/data    # writes cancer.npz and diabetes.npz
"""

import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes


def standardise(x):
    return ((x - x.mean(0)) / x.std(0)).astype(np.float32)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    cancer = load_breast_cancer()
    np.savez(out / "cancer.npz", x=standardise(cancer.data), y=cancer.target.astype(np.int64))
    diabetes = load_diabetes()
    y = diabetes.target.astype(np.float32)
    np.savez(out / "diabetes.npz", x=standardise(diabetes.data), y=((y - y.mean()) / y.std())[:, None])
    print(f"wrote {out / 'cancer.npz'} and {out / 'diabetes.npz'}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/data"))
