"""tailor: train, compare and inspect small FCN and CNN image classifiers from Python.

    import tailor
    data = tailor.datasets.fashion_mnist()          # NumPy arrays from Debian's data set
    run = tailor.train(data, epochs=5, lr=3e-3)     # every `tailor train` option, `-` as `_`
    run.metrics                                     # one row per epoch (a DataFrame with pandas)
    run.predict(data.x_test[:5])                    # class indices
    run.export("model.onnx")

Data is a directory (as `tailor train --data` takes it) or NumPy arrays
``(x_train, y_train, x_test, y_test)``: uint8 pictures N x H x W (grey) or N x H x W x C
(C = 1 or 3), or feature rows N x D (float: each feature scaled to 0..255 over the training
rows and kept as bytes, 8 bits a feature; the model is then an FCN), and integer labels
0 .. classes - 1. The run is written to ``out`` (default: a new directory under the system's
temporary folder): config.toml, metrics.csv, summary.json, model.ckpt, curves.png.

The interpreter's lock is released while training, so other Python threads run; Ctrl-C stops
at the next step, leaves the run resumable (``tailor.resume``) and raises KeyboardInterrupt.
Bad input raises ValueError or TypeError naming the argument.
"""
import json
import math
import os
import sys
import tempfile

import numpy as np

from . import _tailor
from ._tailor import Error

__all__ = ["train", "resume", "load", "search", "Run", "SearchResult", "Error", "train_options", "datasets", "version"]
__version__ = _tailor.version()

# Keywords of train() that are not `tailor train` options.
_OWN = {"data", "callback", "classes", "verbose"}


def version():
    """The version of tailor's engine."""
    return _tailor.version()


def train_options():
    """The options of `tailor train` (the table the program reads): a list of dicts with
    name (as a keyword: `_` for `-`), help, default (text) and flag (on/off)."""
    out = []
    for o in _tailor.train_options():
        if o["name"] in ("resume", "data"):
            continue
        out.append(dict(o, name=o["name"].replace("-", "_")))
    return out


def _option_value(name, value):
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            raise ValueError(f"{name}: {value} is not a finite number")
        return repr(float(value))
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    raise TypeError(f"{name}: expected a number, a string, a bool or a list, not {type(value).__name__}")


def _options(kwargs):
    known = {o["name"]: o for o in train_options()}
    out = []
    for key, value in kwargs.items():
        if key not in known:
            raise TypeError(f"train() got an unexpected keyword argument '{key}'")
        if value is None:
            continue
        out.append((key.replace("_", "-"), _option_value(key, value)))
    return out


class _Features:
    """Float feature rows as bytes: each feature's training range mapped onto 0..255."""

    def __init__(self, lo, hi):
        self.lo = np.asarray(lo, dtype=np.float64)
        self.hi = np.asarray(hi, dtype=np.float64)

    @classmethod
    def fit(cls, x):
        return cls(x.min(axis=0), x.max(axis=0))

    def bytes(self, x, name):
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.lo.shape[0]:
            raise ValueError(f"{name}: expected feature rows of shape (n, {self.lo.shape[0]}), got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name}: holds NaN or infinite values")
        span = np.where(self.hi > self.lo, self.hi - self.lo, 1.0)
        q = np.rint((x - self.lo) / span * 255.0)
        return np.clip(q, 0, 255).astype(np.uint8).reshape(x.shape[0], 1, 1, x.shape[1])

    def to_json(self):
        return {"lo": self.lo.tolist(), "hi": self.hi.tolist()}


def _pictures(x, name):
    """uint8 pictures N x H x W or N x H x W x C as (N, C, H, W); None for feature rows."""
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype == object or x.dtype.kind not in "uif b":
        raise TypeError(f"{name}: expected a numeric NumPy array, not dtype {x.dtype}")
    if x.ndim == 2:
        return None
    if x.dtype != np.uint8:
        raise TypeError(f"{name}: pictures must be uint8 (0..255), not {x.dtype}; feature rows are 2-D")
    if x.ndim == 3:
        return np.ascontiguousarray(x[:, None, :, :])
    if x.ndim == 4:
        if x.shape[3] not in (1, 3):
            raise ValueError(f"{name}: pictures N x H x W x C need C = 1 or 3, not {x.shape[3]}")
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    raise ValueError(f"{name}: expected pictures N x H x W or N x H x W x C, or feature rows N x D; got {x.ndim} dimensions")


def _labels(y, n, name):
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of labels, got shape {y.shape}")
    if y.shape[0] != n:
        raise ValueError(f"{name}: {y.shape[0]} labels for {n} rows")
    if y.dtype.kind not in "iu":
        if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.rint(y)):
            y = y.astype(np.int64)
        else:
            raise TypeError(f"{name}: labels must be integers 0 .. classes - 1, not {y.dtype}")
    if n and (y.min() < 0 or y.max() > 255):
        raise ValueError(f"{name}: labels must lie in 0 .. 255 (classes - 1); found {y.min()} .. {y.max()}")
    return np.ascontiguousarray(y, dtype=np.uint8)


def _prepare(data, classes):
    """(engine data, features) from a directory or (x_train, y_train, x_test, y_test)."""
    if isinstance(data, (str, os.PathLike)):
        return os.fspath(data), None
    if not isinstance(data, (tuple, list)) or len(data) != 4:
        raise TypeError("data: expected a directory or a tuple (x_train, y_train, x_test, y_test)")
    x_train, y_train, x_test, y_test = data
    source = getattr(data, "source", "") or ""
    if classes is None:
        classes = getattr(data, "classes", None)
    xt = _pictures(x_train, "x_train")
    features = None
    if xt is None:
        x_train = np.asarray(x_train)
        if x_train.dtype.kind not in "uif":
            raise TypeError(f"x_train: expected numbers, not {x_train.dtype}")
        if not np.all(np.isfinite(x_train)):
            raise ValueError("x_train: holds NaN or infinite values")
        if x_train.shape[0] == 0:
            raise ValueError("x_train: no rows")
        features = _Features.fit(x_train.astype(np.float64))
        xt = features.bytes(x_train, "x_train")
        xs = features.bytes(x_test, "x_test")
    else:
        xs = _pictures(x_test, "x_test")
        if xs is None or xs.shape[1:] != xt.shape[1:]:
            raise ValueError(f"x_test: expected pictures like x_train's ({xt.shape[1:]} as channels, rows, cols)")
    yt = _labels(y_train, xt.shape[0], "y_train")
    ys = _labels(y_test, xs.shape[0], "y_test")
    names = [] if classes is None else [str(c) for c in classes]
    return (xt, yt, xs, ys, names, os.fspath(source)), features


def _resume_note(out):
    return (f"tailor: the run in {os.fspath(out)} keeps its last finished epoch: continue it with "
            f"tailor.resume({os.fspath(out)!r}, data)")


def _printer(epoch):
    val = "" if math.isnan(epoch["val_acc"]) else f"  val {epoch['val_acc']:.2f}% (loss {epoch['val_loss']:.4f})"
    print(f"epoch {epoch['epoch']:>3}/{epoch['epochs']}  loss {epoch['train_loss']:.4f}  train {epoch['train_acc']:.2f}%"
          f"{val}  test {epoch['test_acc']:.2f}%  {epoch['epoch_seconds']:.2f} s", flush=True)


def _hooks(callback, verbose):
    if not verbose:
        return callback

    def both(epoch):
        _printer(epoch)
        return True if callback is None else callback(epoch)
    return both


class Run:
    """A finished run: its directory and its model.

    Attributes: dir, classes, weights, shape (channels, rows, cols of the pictures it takes),
    metrics (one row per epoch: a pandas DataFrame where pandas is installed, else a list of
    dicts), summary (summary.json as a dict).
    """

    def __init__(self, engine, features=None):
        self._run = engine
        self._features = features
        path = os.path.join(engine.dir, "features.json")
        if features is None and os.path.exists(path):
            with open(path) as f:
                j = json.load(f)
            self._features = _Features(j["lo"], j["hi"])

    def __repr__(self):
        return f"tailor.Run({self.dir!r}, {self.weights} weights, {len(self.classes)} classes)"

    @property
    def dir(self):
        return self._run.dir

    @property
    def classes(self):
        return list(self._run.classes)

    @property
    def weights(self):
        return self._run.weights

    @property
    def shape(self):
        return self._run.shape

    @property
    def metrics(self):
        rows = self._run.metrics()
        try:
            import pandas
        except ImportError:
            return rows
        return pandas.DataFrame(rows)

    @property
    def summary(self):
        text = self._run.summary_json()
        return json.loads(text) if text else {}

    def _input(self, x, name="x"):
        if self._features is not None:
            return self._features.bytes(x, name)
        p = _pictures(x, name)
        if p is None:
            raise ValueError(f"{name}: this model takes pictures of (channels, rows, cols) {self.shape}, not feature rows")
        return p

    def predict_proba(self, x):
        """Class probabilities, (n, classes) float32, as the run evaluates (its test-time flips)."""
        return self._run.predict_proba(self._input(x))

    def predict(self, x):
        """The most probable class index of each picture or feature row."""
        return self._run.predict(self._input(x))

    def predict_picture(self, picture):
        """Class probabilities of one picture file (a path, or its bytes: PNG, JPEG or PGM, any size
        and colour), converted as `tailor predict` converts it."""
        if isinstance(picture, (bytes, bytearray)):
            return self._run.predict_picture(bytes(picture), "picture")
        with open(picture, "rb") as f:
            return self._run.predict_picture(f.read(), os.fspath(picture))

    def evaluate(self, x, y):
        """{'accuracy': percent, 'loss': mean cross-entropy, 'count': n} on labelled pictures."""
        p = self._input(x)
        return self._run.evaluate(p, _labels(y, p.shape[0], "y"))

    def export(self, path, opset=13):
        """The model as an ONNX file (tailor export's graph; pictures as raw 0..255 floats)."""
        if self._features is not None:
            raise ValueError("export: a model of feature rows takes them scaled to bytes (features.json), "
                             "which the ONNX graph does not do; export a model of pictures")
        self._run.export_onnx(os.fspath(path), opset)


def train(data=None, callback=None, *, classes=None, verbose=True, **options):
    """Train one model as `tailor train` would and return its Run.

    data: a directory (IDX files or an image folder), or (x_train, y_train, x_test, y_test) NumPy
      arrays (see the module's docstring); default Debian's Fashion-MNIST directory.
    callback: called after every epoch with a dict of its metrics (epoch, train_loss, train_acc,
      val_loss, val_acc, test_acc, lr, epoch_seconds, ...); return False to stop there.
    classes: class names for arrays (default "0", "1", ...; a tailor.datasets set brings its own).
    verbose: print one line per epoch (terminals and notebooks alike).
    **options: every `tailor train` option by keyword, `-` written `_` (epochs=5, lr=3e-3,
      batch_size=128, hidden=[120, 60], flip=True); see tailor.train_options(). `out` names the
      run directory (default: a new one under the temporary folder).
    """
    if data is None:
        data = "/usr/share/datasets/fashion-mnist"
    engine_data, features = _prepare(data, classes)
    if features is not None:
        if options.get("model", "fcn") != "fcn":
            raise ValueError("model: feature rows train an FCN (model='fcn'), not a " + str(options["model"]))
        options = dict(options, model="fcn")
    if options.get("out") is None:
        options = dict(options, out=tempfile.mkdtemp(prefix="tailor-run-"))
    opts = _options(options)
    if features is not None:
        os.makedirs(options["out"], exist_ok=True)
    try:
        engine = _tailor.train(engine_data, opts, _hooks(callback, verbose))
    except KeyboardInterrupt as e:
        e.add_note(_resume_note(options["out"]))
        raise
    except Exception as e:
        if os.path.exists(os.path.join(options["out"], "resume.state")):
            e.add_note(_resume_note(options["out"]))
        raise
    if features is not None:
        tmp = os.path.join(engine.dir, "features.json.tmp")
        with open(tmp, "w") as f:
            json.dump(features.to_json(), f)
        os.replace(tmp, os.path.join(engine.dir, "features.json"))
    return Run(engine, features)


def resume(dir, data=None, callback=None, *, classes=None, verbose=True, threads=0):
    """Continue an interrupted run in `dir` from its last finished epoch (bit for bit as one never
    stopped), on the data it was trained on: its directory by default, or the same arrays."""
    features = None
    if data is None:
        import tomllib
        with open(os.path.join(dir, "config.toml"), "rb") as f:
            engine_data = tomllib.load(f).get("data", {}).get("dir", "")
        if not engine_data:
            raise ValueError("data: the run was trained on arrays: pass the same arrays again")
    else:
        engine_data, features = _prepare(data, classes)
    try:
        return Run(_tailor.resume(os.fspath(dir), engine_data, _hooks(callback, verbose), threads), features)
    except KeyboardInterrupt as e:
        e.add_note(_resume_note(dir))
        raise


def load(dir):
    """The run in `dir` (or its model.ckpt), to predict, evaluate or export."""
    return Run(_tailor.Run.load(os.fspath(dir)))


_SEARCH_FLAGS = ("out", "jobs", "threads_per_job", "time", "trials", "seed", "schedule", "sampler", "data")


def _table(path):
    """A CSV file as a pandas DataFrame where pandas is installed, else a list of dicts."""
    try:
        import pandas
    except ImportError:
        import csv
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    return pandas.read_csv(path)


class SearchResult:
    """What a search wrote (in `out`): `trials` (trials.csv: every trial, its options, status and
    validation metrics), `pareto` (pareto.csv: the Pareto set, with test accuracy reported apart),
    `best_toml` (a sweep file that retrains the Pareto set with 3 seeds), `report` (report.html),
    `complete` (nothing left to sample or promote) and `summary` (the lines `tailor search` prints)."""

    def __init__(self, r):
        self.out = r["out"]
        self.complete = r["complete"]
        self.timed_out = r["timed_out"]
        self.counts = {k: r[k] for k in ("trials", "finished", "pruned", "failed", "epochs")}
        self.summary = r["text"]
        self.best_toml = os.path.join(self.out, "best.toml")
        self.report = os.path.join(self.out, "report.html")

    @property
    def trials(self):
        return _table(os.path.join(self.out, "trials.csv"))

    @property
    def pareto(self):
        return _table(os.path.join(self.out, "pareto.csv"))

    def __repr__(self):
        c = self.counts
        return (f"SearchResult({self.out!r}: {c['trials']} trials, {c['finished']} finished, {c['pruned']} pruned, "
                f"{c['failed']} failed{', complete' if self.complete else ''})")


def search(space, *, verbose=True, **flags):
    """Search a space of `tailor train` options for the best validation accuracy (and the fewest
    weights, MFLOPs or seconds) as `tailor search` does: asynchronous successive halving with
    several objectives, TPE sampling, every step journaled (docs/search.md). Returns a SearchResult.

    space: a search space file (TOML; experiments/search/ has examples).
    **flags: the command's flags by keyword, `-` written `_`: out, jobs, threads_per_job,
      time ("30m", "2h", or seconds), trials, seed, schedule ("asha" or "none"), sampler ("tpe"
      or "random"), data (a directory).
    verbose: print the summary (the Pareto set and where the files are) at the end.

    Called again with the same space and out, it continues where it stopped. Ctrl-C lets the
    trials under way finish their epoch, writes every output and raises KeyboardInterrupt (a second
    Ctrl-C stops them at their next step).
    """
    if not isinstance(space, (str, os.PathLike)):
        raise TypeError(f"space: expected the path of a search space file, not {type(space).__name__}")
    opts = []
    for key, value in flags.items():
        if key not in _SEARCH_FLAGS:
            raise TypeError(f"search() got an unexpected keyword argument '{key}'")
        if value is None:
            continue
        if key == "time" and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = repr(float(value))
        opts.append((key.replace("_", "-"), _option_value(key, value)))
    try:
        r = _tailor.search(os.fspath(space), opts)
    except KeyboardInterrupt as e:
        e.add_note("the search's outputs are written; call tailor.search with the same arguments to continue")
        raise
    result = SearchResult(r)
    if verbose:
        print(result.summary, end="")
    return result


from . import datasets  # noqa: E402  (uses the engine above)
