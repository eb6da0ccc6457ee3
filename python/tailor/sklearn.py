"""TailorClassifier: tailor as a scikit-learn estimator (Pipeline, GridSearchCV, clone, pickle).

    from tailor.sklearn import TailorClassifier
    clf = TailorClassifier(epochs=5).fit(x_train, y_train)   # pictures N x H x W (x C) uint8,
    clf.score(x_test, y_test)                                 # or feature rows N x D

Pictures train a CNN (default) and feature rows an FCN; every `tailor train` option is a
parameter (None: train's default), and `options` takes any other as a dict. Labels may be any
values scikit-learn accepts (strings too), at most 256 classes. scikit-learn makes its own
validation splits, so `val` defaults to 0 here; each fit's run (model.ckpt, metrics.csv) is kept
in a temporary directory for as long as the estimator lives (`run_` is it; its test column is
the accuracy on up to 2000 of the training rows, since fit is given no test set).
"""
import os
import shutil
import tempfile
import weakref

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

import tailor

__all__ = ["TailorClassifier"]

# Rows of the training data that stand in for the (absent) test set of each fit's run.
_TEST_ROWS = 2000


class TailorClassifier(ClassifierMixin, BaseEstimator):
    """A small FCN or CNN classifier trained by tailor.

    Parameters (each None leaves `tailor train`'s default; see `tailor train --help`):
    model ('fcn' or 'cnn'; default cnn for pictures, fcn for feature rows), weights, hidden,
    channels, arch, dropout, batchnorm, activation, pool; epochs, batch_size, optimizer, lr,
    momentum, weight_decay, schedule, label_smoothing; shift, flip, erase, ema; seed, threads,
    val (default 0); options (a dict of any other train option); verbose (print each epoch).
    """

    def __init__(self, model=None, weights=None, hidden=None, channels=None, arch=None, dropout=None,
                 batchnorm=None, activation=None, pool=None, epochs=10, batch_size=None, optimizer=None,
                 lr=None, momentum=None, weight_decay=None, schedule=None, label_smoothing=None, shift=None,
                 flip=None, erase=None, ema=None, seed=1, threads=None, val=0, options=None, verbose=False):
        self.model = model
        self.weights = weights
        self.hidden = hidden
        self.channels = channels
        self.arch = arch
        self.dropout = dropout
        self.batchnorm = batchnorm
        self.activation = activation
        self.pool = pool
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.label_smoothing = label_smoothing
        self.shift = shift
        self.flip = flip
        self.erase = erase
        self.ema = ema
        self.seed = seed
        self.threads = threads
        self.val = val
        self.options = options
        self.verbose = verbose

    def _train_options(self):
        params = self.get_params(deep=False)
        extra = dict(params.pop("options") or {})
        params.pop("verbose")
        for key in extra:
            if key in params:
                raise ValueError(f"options: '{key}' is a parameter of TailorClassifier; set it there")
        return {**params, **extra}

    def _check_X(self, X, reset):
        X = np.asarray(X) if not hasattr(X, "iloc") and not hasattr(X, "toarray") else X
        if getattr(X, "ndim", 2) in (3, 4):  # pictures
            X = np.asarray(X)
            if X.dtype != np.uint8:
                raise ValueError(f"X: pictures must be uint8 (0..255), not {X.dtype}")
            if reset:
                self.n_features_in_ = int(np.prod(X.shape[1:]))
                self.picture_shape_ = X.shape[1:]
            elif X.shape[1:] != self.picture_shape_:
                raise ValueError(f"X has pictures of shape {X.shape[1:]}, but {type(self).__name__} is expecting "
                                 f"{self.picture_shape_}")
            if X.shape[0] < 1:
                raise ValueError("X: found array with 0 sample(s)")
            return X
        X = self._validate_data(X, reset=reset, dtype=np.float64, force_all_finite=True)
        if reset:
            self.picture_shape_ = None
        return X

    def fit(self, X, y):
        """Train on X (pictures or feature rows) and y; returns self."""
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        pictures = getattr(X, "ndim", 2) in (3, 4)
        if pictures:
            X = self._check_X(X, reset=True)
        else:
            X, y = self._validate_data(X, y, dtype=np.float64, force_all_finite=True)
            self.picture_shape_ = None
        y = column_or_1d(y, warn=True)
        if len(y) != X.shape[0]:
            raise ValueError(f"y: {len(y)} labels for {X.shape[0]} samples")
        check_classification_targets(y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("y: only one class is present; a classifier needs at least 2 classes")
        if len(self.classes_) > 256:
            raise ValueError(f"y: {len(self.classes_)} classes; tailor takes at most 256")
        options = self._train_options()
        if options.get("model") is None:
            options["model"] = "cnn" if pictures else "fcn"
        self._dir = tempfile.mkdtemp(prefix="tailor-fit-")
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._dir, True)
        test = slice(0, min(_TEST_ROWS, X.shape[0]))
        data = (X, encoded, X[test], encoded[test])
        self.run_ = tailor.train(data, classes=[str(c) for c in self.classes_], verbose=self.verbose,
                                 out=os.path.join(self._dir, "run"), **options)
        return self

    def predict_proba(self, X):
        """Class probabilities, (n, len(classes_)), in the order of classes_."""
        check_is_fitted(self, "run_")
        X = self._check_X(X, reset=False)
        return self.run_.predict_proba(X).astype(np.float64)

    def predict(self, X):
        """The most probable class of each sample (a value of classes_)."""
        check_is_fitted(self, "run_")
        X = self._check_X(X, reset=False)
        return self.classes_[self.run_.predict(X)]

    # A fitted estimator pickles with its run's files (model.ckpt, features.json ...) and unpickles
    # into a new temporary directory.
    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_cleanup", None)
        state.pop("_dir", None)
        run = state.pop("run_", None)
        if run is not None:
            files = {}
            for name in os.listdir(run.dir):
                path = os.path.join(run.dir, name)
                if os.path.isfile(path) and not name.startswith("."):
                    with open(path, "rb") as f:
                        files[name] = f.read()
            state["_run_files"] = files
        return state

    def __setstate__(self, state):
        files = state.pop("_run_files", None)
        self.__dict__.update(state)
        if files is not None:
            self._dir = tempfile.mkdtemp(prefix="tailor-fit-")
            self._cleanup = weakref.finalize(self, shutil.rmtree, self._dir, True)
            run_dir = os.path.join(self._dir, "run")
            os.makedirs(run_dir)
            for name, data in files.items():
                with open(os.path.join(run_dir, name), "wb") as f:
                    f.write(data)
            self.run_ = tailor.load(run_dir)

    def _more_tags(self):
        return {"non_deterministic": False, "poor_score": False}

