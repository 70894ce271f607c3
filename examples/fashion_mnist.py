"""fastmlp and scikit-learn side by side on Fashion-MNIST.

Trains fastmlp.MLPClassifier and sklearn.neural_network.MLPClassifier with the
same settings on Fashion-MNIST (70,000 greyscale images of 28 x 28 pixels, 10
kinds of clothing; 60,000 for training, 10,000 for testing), then prints the
test accuracy and fit time of each and the speed ratio. scikit-learn runs with
its BLAS on one thread, as in ``python -m fastmlp``; fastmlp uses all cores.

The data are read from the original idx files, which the Debian package
``dataset-fashion-mnist`` installs under /usr/share/datasets/fashion-mnist/
(no network access here). ``--n-train`` and ``--n-test`` take the first rows
of each set for a quick run.
"""

import argparse
import gzip
import sys
from pathlib import Path

import numpy as np

from fastmlp.__main__ import compare_with_scikit_learn

DEFAULT_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
HOW_TO_GET_THEM = """\
On Debian or Ubuntu:  sudo apt-get install dataset-fashion-mnist
  (installs them under /usr/share/datasets/fashion-mnist/)
Otherwise download the four .gz files from
  https://github.com/zalandoresearch/fashion-mnist  (folder data/fashion)
into a directory and pass it as --data-dir."""


def read_idx(path):
    """Array stored in a gzipped idx file of unsigned bytes.

    The idx header is two zero bytes, a type code (8 for unsigned bytes), the
    number of dimensions, then each dimension as a big-endian 32-bit integer.
    """
    with gzip.open(path, "rb") as f:
        data = f.read()
    zeros, type_code, n_dims = data[:2], data[2], data[3]
    if zeros != b"\x00\x00" or type_code != 0x08:
        raise ValueError(f"{path} is not an idx file of unsigned bytes")
    shape = tuple(np.frombuffer(data, dtype=">u4", count=n_dims, offset=4))
    values = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * n_dims)
    if values.size != np.prod(shape):
        raise ValueError(f"{path} holds {values.size} values, expected {shape}")
    return values.reshape(shape)


def load_fashion_mnist(data_dir, n_train=None, n_test=None):
    """Training and test images (flattened, scaled to [0, 1]) and labels."""
    sets = []
    for name, n_rows in (("train", n_train), ("test", n_test)):
        images_file, labels_file = (data_dir / f for f in FILES[name])
        images = read_idx(images_file)[:n_rows]
        labels = read_idx(labels_file)[:n_rows]
        sets += [images.reshape(len(images), -1) / 255.0, labels]
    return sets


def missing_files(data_dir):
    return [f for pair in FILES.values() for f in pair if not (data_dir / f).is_file()]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="directory holding the four idx .gz files (default: %(default)s)",
    )
    parser.add_argument(
        "--n-train", type=int, default=None, help="training images used (all)"
    )
    parser.add_argument("--n-test", type=int, default=None, help="test images (all)")
    parser.add_argument("--hidden", type=int, nargs="+", default=[100])
    parser.add_argument("--max-iter", type=int, default=20, help="epochs")
    parser.add_argument(
        "--repeats", type=int, default=1, help="timed fits per library (median)"
    )
    parser.add_argument(
        "--n-jobs", type=int, default=None, help="fastmlp threads (all cores)"
    )
    args = parser.parse_args(argv)

    missing = missing_files(args.data_dir)
    if missing:
        print(
            f"Fashion-MNIST not found: {args.data_dir} lacks {', '.join(missing)}.\n"
            + HOW_TO_GET_THEM,
            file=sys.stderr,
        )
        return 1
    X_train, y_train, X_test, y_test = load_fashion_mnist(
        args.data_dir, args.n_train, args.n_test
    )
    settings = dict(
        hidden_layer_sizes=tuple(args.hidden),
        solver="adam",
        batch_size=200,
        max_iter=args.max_iter,
        random_state=0,
    )
    compare_with_scikit_learn(
        "Fashion-MNIST",
        X_train,
        y_train,
        X_test,
        y_test,
        settings,
        args.repeats,
        n_jobs=args.n_jobs,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
