"""Data sets as NumPy arrays, read from Debian's packages (nothing is downloaded)."""
import collections
import os

import numpy as np

from . import _tailor

__all__ = ["DataSet", "fashion_mnist", "load"]


class DataSet(collections.namedtuple("DataSet", "x_train y_train x_test y_test")):
    """(x_train, y_train, x_test, y_test) NumPy arrays, with `classes` (names in label order)
    and `source` (the directory they came from: a run trained on them records it, so
    `tailor eval` finds the test set). Unpacks as a tuple; tailor.train takes it as it is."""

    __slots__ = ()
    classes = ()
    source = ""


def load(dir, image_size="auto", color="auto"):
    """The pictures of a directory as tailor train reads them: IDX files ({train,t10k}-*-ubyte[.gz])
    or an image folder (train/<class>/*.png ...). Grey pictures come as N x H x W uint8, colour
    as N x H x W x 3; labels as uint8."""
    x_train, y_train, x_test, y_test, classes, source = _tailor.read_data(os.fspath(dir), str(image_size), str(color))

    def layout(x):  # (N, C, H, W) -> N x H x W or N x H x W x C
        return np.ascontiguousarray(x[:, 0] if x.shape[1] == 1 else x.transpose(0, 2, 3, 1))

    ds = type("DataSet", (DataSet,), {"classes": tuple(classes), "source": source, "__slots__": ()})
    return ds(layout(x_train), y_train, layout(x_test), y_test)


def fashion_mnist(dir="/usr/share/datasets/fashion-mnist"):
    """Fashion-MNIST from Debian's dataset-fashion-mnist: 60000 training and 10000 test pictures,
    28 x 28 grey uint8, ten classes (T-shirt/top ... Ankle boot)."""
    return load(dir)
