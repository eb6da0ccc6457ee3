"""The Python module: the same bits as the program, threads, scikit-learn, bad input, Ctrl-C.

Run by CTest (python_module) with build/python on PYTHONPATH and TAILOR_BINARY naming the program.
"""
import filecmp
import os
import signal
import subprocess
import sys
import textwrap
import threading
import warnings

import numpy as np
import pytest

import tailor

FASHION = "/usr/share/datasets/fashion-mnist"
BINARY = os.environ.get("TAILOR_BINARY", "tailor")


def metrics_without_times(path):
    """metrics.csv without epoch_seconds, elapsed_seconds, images_per_second."""
    with open(path) as f:
        return [",".join(line.rstrip("\n").split(",")[:7]) for line in f]


@pytest.fixture(scope="module")
def fashion():
    if not os.path.isdir(FASHION):
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    return tailor.datasets.fashion_mnist()


@pytest.fixture(scope="module")
def small(fashion):
    """3000 training and 500 test pictures, and their class names."""
    d = fashion
    return (d.x_train[:3000], d.y_train[:3000], d.x_test[:500], d.y_test[:500])


def test_arrays_give_the_bits_of_the_program_on_the_idx_files(fashion, tmp_path):
    flags = ["--epochs", "2", "--channels", "4,8", "--hidden", "16", "--threads", "2", "--seed", "3", "--flip",
             "--lr", "0.002"]
    cli = tmp_path / "cli"
    subprocess.run([BINARY, "train", *flags, "--out", str(cli), "--progress", "none"], check=True,
                   stdout=subprocess.DEVNULL)
    run = tailor.train(fashion, epochs=2, channels=[4, 8], hidden=16, threads=2, seed=3, flip=True, lr=0.002,
                       out=tmp_path / "py", verbose=False)
    assert filecmp.cmp(cli / "model.ckpt", tmp_path / "py" / "model.ckpt", shallow=False)
    assert metrics_without_times(cli / "metrics.csv") == metrics_without_times(tmp_path / "py" / "metrics.csv")
    assert run.summary["test_acc"] == pytest.approx(run.metrics["test_acc"].iloc[-1], abs=1e-4)


def test_two_threads_give_each_the_bits_of_the_run_alone(small, tmp_path):
    def go(name, **opts):
        tailor.train(small, epochs=2, threads=2, val=300, verbose=False, out=tmp_path / name, **opts)

    cnn = dict(channels=[4, 8], hidden=16, seed=1, shift=1)
    fcn = dict(model="fcn", hidden=[64], seed=2, dropout=0.2)
    go("cnn_alone", **cnn)
    go("fcn_alone", **fcn)
    threads = [threading.Thread(target=go, args=("cnn_both",), kwargs=cnn),
               threading.Thread(target=go, args=("fcn_both",), kwargs=fcn)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name in ("cnn", "fcn"):
        assert filecmp.cmp(tmp_path / f"{name}_alone" / "model.ckpt", tmp_path / f"{name}_both" / "model.ckpt",
                           shallow=False)


def test_a_run_predicts_evaluates_and_exports(small, tmp_path):
    x_train, y_train, x_test, y_test = small
    seen = []
    run = tailor.train(small, epochs=3, model="fcn", hidden=[32], val=300, verbose=False, out=tmp_path / "r",
                       callback=lambda e: seen.append(e) or e["epoch"] < 2)
    assert [e["epoch"] for e in seen] == [1, 2]
    assert run.summary["stop_reason"] == "callback"
    assert list(run.metrics["epoch"]) == [1, 2]
    p = run.predict_proba(x_test)
    assert p.shape == (500, 10) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1, atol=1e-5)
    labels = run.predict(x_test)
    np.testing.assert_array_equal(labels, p.argmax(axis=1))
    e = run.evaluate(x_test, y_test)
    assert e["count"] == 500
    assert e["accuracy"] == pytest.approx(100 * np.mean(labels == y_test))
    assert e["accuracy"] == pytest.approx(run.summary["test_acc"])
    again = tailor.load(run.dir)
    np.testing.assert_array_equal(again.predict(x_test), labels)
    run.export(tmp_path / "m.onnx")
    onnx = pytest.importorskip("onnx")
    onnx.checker.check_model(onnx.load(str(tmp_path / "m.onnx")))


def test_colour_pictures_n_h_w_c(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 60, size=(240, 8, 8, 3), dtype=np.uint8)
    y = np.arange(240) % 3
    for i in range(240):
        x[i, :, :, y[i]] += 150  # the class is the bright channel
    run = tailor.train((x[:200], y[:200], x[200:], y[200:]), epochs=10, batch_size=16, lr=0.01, channels=[4],
                       hidden=8, val=20, verbose=False, out=tmp_path / "rgb")
    assert run.shape == (3, 8, 8)
    assert run.evaluate(x[200:], y[200:])["accuracy"] > 90
    # The channels are the last axis: rolling them moves every picture to the next class.
    rolled = run.predict(np.roll(x[200:], 1, axis=3))
    assert np.mean(rolled == (y[200:] + 1) % 3) > 0.9


def test_feature_rows_train_an_fcn(tmp_path):
    from sklearn.datasets import load_iris
    x, y = load_iris(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order]
    run = tailor.train((x[:120], y[:120], x[120:], y[120:]), epochs=30, val=0, hidden=[16], lr=0.01,
                       verbose=False, out=tmp_path / "iris")
    assert run.evaluate(x[120:], y[120:])["accuracy"] >= 80
    assert tailor.load(run.dir).predict(x[:5]).shape == (5,)
    with pytest.raises(ValueError, match="model"):
        tailor.train((x, y, x, y), model="cnn", verbose=False, out=tmp_path / "cnn")


@pytest.mark.parametrize("case, error, words", [
    ("float pictures", TypeError, "x_train"),
    ("labels out of range", ValueError, "y_train"),
    ("label count", ValueError, "y_train"),
    ("nan features", ValueError, "x_train"),
    ("unknown option", TypeError, "learning_rate"),
    ("bad value", ValueError, "lr"),
    ("bad choice", ValueError, "optimizer"),
    ("wrong test shape", ValueError, "x_test"),
    ("string labels", TypeError, "y_train"),
    ("five channels", ValueError, "x_train"),
])
def test_bad_input_raises_naming_the_argument(small, tmp_path, case, error, words):
    x, y, xt, yt = small
    args, opts = (x, y, xt, yt), dict(epochs=1, verbose=False, out=tmp_path / "bad")
    if case == "float pictures":
        args = (x.astype(np.float32), y, xt, yt)
    elif case == "labels out of range":
        args = (x, y.astype(np.int64) - 1, xt, yt)
    elif case == "label count":
        args = (x, y[:-1], xt, yt)
    elif case == "nan features":
        f = np.ones((10, 3))
        f[2, 1] = np.nan
        args = (f, np.arange(10) % 2, f, np.arange(10) % 2)
    elif case == "unknown option":
        opts["learning_rate"] = 0.1
    elif case == "bad value":
        opts["lr"] = -1.0
    elif case == "bad choice":
        opts["optimizer"] = "lbfgs"
    elif case == "wrong test shape":
        args = (x, y, xt[:, :20, :20].copy(), yt)
    elif case == "string labels":
        args = (x, y.astype(str), xt, yt)
    elif case == "five channels":
        args = (np.zeros((10, 8, 8, 5), np.uint8), np.arange(10) % 2, np.zeros((4, 8, 8, 5), np.uint8), np.arange(4) % 2)
    with pytest.raises(error, match=words):
        tailor.train(args, **opts)


def test_a_student_learns_from_a_teacher_run_and_bad_teachers_raise(small, tmp_path):
    """teacher= (train --teacher): the student's config names the teacher; at distill_weight 0
    it ends with the bits of a run without one; a teacher that cannot teach raises ValueError
    naming teacher."""
    common = dict(epochs=2, model="fcn", hidden=[16], val=300, threads=1, verbose=False)
    teacher = tailor.train(small, out=tmp_path / "teacher", **common)
    student = tailor.train(small, teacher=teacher.dir, distill_temperature=2.0, out=tmp_path / "student", **common)
    with open(os.path.join(student.dir, "config.toml")) as f:
        assert f"teacher = '{os.path.abspath(teacher.dir)}'" in f.read()
    alone = tailor.train(small, out=tmp_path / "alone", **common)
    silent = tailor.train(small, teacher=teacher.dir, distill_weight=0.0, out=tmp_path / "weight0", **common)
    assert filecmp.cmp(os.path.join(alone.dir, "model.ckpt"), os.path.join(silent.dir, "model.ckpt"), shallow=False)
    assert not filecmp.cmp(os.path.join(alone.dir, "model.ckpt"), os.path.join(student.dir, "model.ckpt"),
                           shallow=False)
    with pytest.raises(ValueError, match="teacher"):
        tailor.train(small, teacher=tmp_path / "nowhere", out=tmp_path / "bad1", **common)
    with pytest.raises(ValueError, match="teacher"):
        tailor.train(small, teacher=teacher.dir, shift=1, out=tmp_path / "bad2", **common)
    with pytest.raises(ValueError, match="distill_weight|distill-weight"):
        tailor.train(small, teacher=teacher.dir, distill_weight=2.0, out=tmp_path / "bad3", **common)


def test_predict_refuses_pictures_of_another_shape(small, tmp_path):
    run = tailor.train(small, epochs=1, model="fcn", hidden=[8], val=300, verbose=False, out=tmp_path / "s")
    with pytest.raises(ValueError, match="x"):
        run.predict(np.zeros((2, 20, 20), np.uint8))


CTRL_C = textwrap.dedent("""
    import sys, tailor
    d = tailor.datasets.fashion_mnist()
    small = (d.x_train[:6000], d.y_train[:6000], d.x_test[:500], d.y_test[:500])
    opts = dict(epochs=6, channels=[4, 8], hidden=16, threads=2, seed=4, val=500, verbose=False)
    try:
        tailor.train(small, out=sys.argv[1], callback=lambda e: print("epoch", e["epoch"], flush=True), **opts)
        print("not interrupted", flush=True)
    except KeyboardInterrupt:
        print("KeyboardInterrupt", flush=True)
        tailor.resume(sys.argv[1], small, verbose=False)
        tailor.train(small, out=sys.argv[2], **opts)
""")


def test_ctrl_c_raises_keyboard_interrupt_and_leaves_the_run_resumable(fashion, tmp_path):
    # SIGINT from outside, as a terminal's Ctrl-C, while the interpreter's lock is released in a step.
    child = subprocess.Popen([sys.executable, "-c", CTRL_C, str(tmp_path / "stopped"), str(tmp_path / "whole")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in child.stdout:
        lines.append(line.strip())
        if line.startswith("epoch 2"):
            child.send_signal(signal.SIGINT)
        if line.startswith("KeyboardInterrupt") or line.startswith("not interrupted"):
            break
    rest, err = child.communicate(timeout=300)
    assert child.returncode == 0, err
    assert "KeyboardInterrupt" in lines, lines
    assert filecmp.cmp(tmp_path / "stopped" / "model.ckpt", tmp_path / "whole" / "model.ckpt", shallow=False)
    assert metrics_without_times(tmp_path / "stopped" / "metrics.csv") == \
        metrics_without_times(tmp_path / "whole" / "metrics.csv")


def test_a_callback_that_raises_stops_the_run_resumable(small, tmp_path):
    opts = dict(epochs=3, model="fcn", hidden=[16], val=300, threads=2, seed=9, verbose=False)

    def fail(epoch):
        if epoch["epoch"] == 2:
            raise RuntimeError("enough")

    with pytest.raises(RuntimeError, match="enough") as caught:
        tailor.train(small, callback=fail, out=tmp_path / "cb", **opts)
    assert any("tailor.resume" in note for note in caught.value.__notes__)
    assert (tmp_path / "cb" / "resume.state").exists()
    tailor.resume(tmp_path / "cb", small, verbose=False)
    tailor.train(small, out=tmp_path / "whole", **opts)
    assert filecmp.cmp(tmp_path / "cb" / "model.ckpt", tmp_path / "whole" / "model.ckpt", shallow=False)


def test_check_estimator_passes():
    from sklearn.utils.estimator_checks import check_estimator
    from tailor.sklearn import TailorClassifier
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_estimator(TailorClassifier())


def test_grid_search_over_two_learning_rates_on_pictures(small):
    from sklearn.model_selection import GridSearchCV
    from tailor.sklearn import TailorClassifier
    x, y, xt, yt = small
    search = GridSearchCV(TailorClassifier(epochs=2, channels=[4, 8], hidden=16, threads=1),
                          {"lr": [1e-3, 3e-3]}, cv=2)
    search.fit(x[:1500], y[:1500])
    assert search.best_params_["lr"] in (1e-3, 3e-3)
    assert len(search.cv_results_["mean_test_score"]) == 2
    assert search.score(xt, yt) > 0.5


def test_grid_search_in_a_pipeline_on_tabular_features():
    from sklearn.datasets import load_wine
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from tailor.sklearn import TailorClassifier
    x, y = load_wine(return_X_y=True)
    names = np.array(["barolo", "grignolino", "barbera"])[y]  # string labels
    pipe = make_pipeline(StandardScaler(), TailorClassifier(epochs=40, hidden=[16], threads=1))
    search = GridSearchCV(pipe, {"tailorclassifier__lr": [3e-3, 1e-2]}, cv=3)
    search.fit(x, names)
    assert search.best_score_ > 0.85
    assert set(search.predict(x[:10])) <= set(names)


def test_a_fitted_estimator_pickles_with_its_model(small):
    import pickle
    from sklearn.base import clone
    from tailor.sklearn import TailorClassifier
    x, y, xt, _ = small
    clf = TailorClassifier(epochs=1, model="fcn", hidden=[16]).fit(x[:1000], y[:1000])
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(xt), clf.predict_proba(xt))
    assert clone(clf).get_params() == clf.get_params()
    assert not hasattr(clone(clf), "run_")


SPACE = """name = "py"
trials = 5
objectives = ["max val_acc", "min weights"]
constraints = ["weights <= 60k"]
[base]
model = "fcn"
val = 2000
[space]
lr = { log_uniform = [1e-3, 1e-2] }
hidden = { choice = [[16], [32], [64]] }
[schedule]
min-epochs = 1
max-epochs = 2
eta = 2
"""


def test_search_writes_its_tables_continues_and_refuses_bad_flags(fashion, tmp_path):
    space = tmp_path / "space.toml"
    space.write_text(SPACE)
    out = tmp_path / "search"
    r = tailor.search(space, out=out, jobs=1, threads_per_job=2, data=FASHION, verbose=False)
    assert r.complete
    assert r.counts["trials"] == 5
    trials = r.trials
    assert len(trials) == 5
    assert set(trials["status"]) <= {"finished", "pruned"}
    assert (trials["weights"] <= 60000).all()
    assert "test_acc" not in trials.columns
    pareto = r.pareto
    assert len(pareto) >= 1 and pareto["test_acc"].notna().all()
    assert os.path.exists(r.best_toml) and os.path.exists(r.report)
    # Called again: nothing left to do, the same tables.
    again = tailor.search(space, out=out, threads_per_job=2, data=FASHION, verbose=False)
    assert again.counts["epochs"] == 0
    assert again.trials.drop(columns="train_seconds").equals(trials.drop(columns="train_seconds"))
    with pytest.raises(TypeError, match="frobnicate"):
        tailor.search(space, frobnicate=1)
    with pytest.raises(tailor.Error, match="--time"):
        tailor.search(space, out=tmp_path / "bad", time="-5m")
    with pytest.raises(TypeError, match="space"):
        tailor.search(42)
